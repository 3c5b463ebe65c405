//! Real `redis-server` / `valkey-server` processes on loopback, each with its own directory.
//!
//! Each server gets a `redis.conf` written by us (mode 0600), so a password is never on a
//! command line. Servers daemonize and write a pidfile; the sandbox records `port pid` per
//! node and stops exactly those PIDs, after checking that each still runs a server binary.

use std::fmt::Write as _;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clustersmith_core::model::{ServerFlavour, ServerVersion};

use crate::conn::Secret;

/// Ports and their bus ports (+10000) stay below the kernel's ephemeral range (32768 by
/// default), where a listening socket can collide with an outgoing connection's port.
pub const MAX_SAFE_PORT: u16 = 22767;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "no server binary found: install one (`apt-get install redis-server`) or pass --server-bin PATH"
    )]
    NoServerBinary,
    #[error("server binary `{0}` does not exist")]
    MissingBinary(PathBuf),
    #[error("port {port} or its bus port {} is in use", port + 10000)]
    PortInUse { port: u16 },
    #[error("port {port}: the bus port {} would be at or above 32768, in the ephemeral range; use ports up to {MAX_SAFE_PORT}", port + 10000)]
    UnsafePort { port: u16 },
    #[error("server on port {port} did not start: {reason}")]
    StartFailed { port: u16, reason: String },
    #[error("no sandbox in `{0}`")]
    NoSandbox(PathBuf),
    #[error("`{0}` is not a Redis or Valkey server binary (`--version` says: {1})")]
    NotAServer(PathBuf, String),
    #[error(
        "`{0}` exists and is not empty, but holds no sandbox: choose another --dir or remove it (nothing was started)"
    )]
    DirNotEmpty(PathBuf),
    #[error("{} still running after SIGKILL (PIDs {}); `{}` was kept", crate::sandbox::servers_word(.pids.len()), .pids.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "), .dir.display())]
    StillRunning { pids: Vec<u32>, dir: PathBuf },
    #[error(
        "`{0}` was built without TLS support, so it cannot run TLS-only nodes (it said: {1}); use a server built with TLS (Debian's redis-server is) or leave out --tls"
    )]
    NoTlsSupport(PathBuf, String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn tls_err(reason: String) -> SandboxError {
    SandboxError::Io {
        context: "prepare TLS".to_owned(),
        source: io::Error::other(reason),
    }
}

/// A random password for a sandbox, from the kernel's generator.
pub fn generate_password() -> Result<Secret, SandboxError> {
    use std::io::Read as _;
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_err("read /dev/urandom"))?;
    Ok(Secret::new(
        bytes.iter().map(|b| format!("{b:02x}")).collect(),
    ))
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> SandboxError {
    let context = context.into();
    move |source| SandboxError::Io { context, source }
}

/// Finds the server binary: the given path, else `redis-server`, else `valkey-server` on PATH.
pub fn find_server_binary(given: Option<&Path>) -> Result<PathBuf, SandboxError> {
    if let Some(path) = given {
        return if path.exists() {
            Ok(path.to_owned())
        } else {
            Err(SandboxError::MissingBinary(path.to_owned()))
        };
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    for name in ["redis-server", "valkey-server"] {
        for dir in std::env::split_paths(&path_var) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(SandboxError::NoServerBinary)
}

/// True for a `valkey-server` binary: `--version` prints `Valkey server v=…`.
pub fn is_valkey_binary(bin: &Path) -> bool {
    std::process::Command::new(bin)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"Valkey"))
}

/// One server to start.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub bin: PathBuf,
    /// The node's own directory (created).
    pub dir: PathBuf,
    pub port: u16,
    pub password: Option<Secret>,
    /// Further `redis.conf` directives, written as given.
    pub directives: Vec<(String, String)>,
}

/// A started server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalServer {
    pub port: u16,
    pub pid: u32,
    /// When the process started (clock ticks after boot, from `/proc/PID/stat`): with the PID,
    /// what identifies the process we started, whatever its binary is called. `None` for a
    /// state file written before start times were recorded.
    pub start_time: Option<u64>,
    pub dir: PathBuf,
}

fn servers_word(count: usize) -> String {
    clustersmith_core::plural(count as u64, "server", "servers")
}

/// The fields of `/proc/PID/stat` that identify a process and count its CPU time: the sandbox
/// and the benchmark tell their own servers by PID and start time.
#[derive(Debug, PartialEq, Eq)]
pub struct ProcStat {
    pub zombie: bool,
    /// User and system CPU time, in clock ticks (fields 14 and 15).
    pub utime: u64,
    pub stime: u64,
    /// Clock ticks after boot (field 22): with the PID, what identifies a process.
    pub start_time: u64,
}

impl ProcStat {
    pub fn read(pid: u32) -> Option<ProcStat> {
        ProcStat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// Fields are counted after the parenthesised command name, which may hold spaces.
    pub fn parse(text: &str) -> Option<ProcStat> {
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `fields[0]` is field 3 (state), so field k is at index k - 3.
        let field = |k: usize| fields.get(k - 3)?.parse::<u64>().ok();
        Some(ProcStat {
            zombie: fields.first() == Some(&"Z"),
            utime: field(14)?,
            stime: field(15)?,
            start_time: field(22)?,
        })
    }
}

/// The start time of a live (non-zombie) process.
pub fn process_start_time(pid: u32) -> Option<u64> {
    ProcStat::read(pid).and_then(|stat| (!stat.zombie).then_some(stat.start_time))
}

impl LocalServer {
    /// True while the very process we started runs: same PID and same start time (a PID can
    /// be reused by an unrelated process once ours has exited).
    pub fn is_running(&self) -> bool {
        match (process_start_time(self.pid), self.start_time) {
            (Some(now), Some(recorded)) => now == recorded,
            // No recorded start time: fall back to what the process works in. A server
            // chdirs to its `dir`, which is this node's own directory.
            (Some(_), None) => runs_in(self.pid, &self.dir),
            (None, _) => false,
        }
    }

    /// The process serving this node now: the one we started, or one restarted by hand from
    /// the node's own config (found by the pidfile it writes and the directory it runs in).
    pub fn running_process(&self) -> Option<LocalServer> {
        if self.is_running() {
            return Some(self.clone());
        }
        let pid: u32 = std::fs::read_to_string(self.dir.join("server.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let start_time = process_start_time(pid)?;
        runs_in(pid, &self.dir).then(|| LocalServer {
            pid,
            start_time: Some(start_time),
            ..self.clone()
        })
    }

    /// SIGTERM, then SIGKILL after 5 s; true once the process is gone (bounded: 7 s).
    pub fn stop(&self) -> bool {
        if !self.is_running() {
            return true;
        }
        signal(self.pid, libc::SIGTERM);
        if wait_gone(self, Duration::from_secs(5)) {
            return true;
        }
        signal(self.pid, libc::SIGKILL);
        wait_gone(self, Duration::from_secs(2))
    }
}

fn wait_gone(server: &LocalServer, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while server.is_running() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Waits (bounded) until none of `servers` runs any more.
fn wait_all_gone(servers: &[LocalServer], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while servers.iter().any(LocalServer::is_running) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// True when `pid` runs with `dir` as its working directory.
fn runs_in(pid: u32, dir: &Path) -> bool {
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"));
    let dir = dir.canonicalize();
    matches!((cwd, dir), (Ok(a), Ok(b)) if a == b)
}

/// Checks that `bin` is a Redis or Valkey server before anything is started with it.
pub fn check_server_binary(bin: &Path) -> Result<(), SandboxError> {
    binary_version(bin).map(|_| ())
}

/// The server and version a binary says it is (`Redis server v=7.0.15 sha=…`); an error for
/// anything that is not a Redis or Valkey server.
pub fn binary_version(bin: &Path) -> Result<ServerVersion, SandboxError> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(io_err(format!("run `{} --version`", bin.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = |flavour, rest: &str| {
        ServerVersion::parse(flavour, rest.split_whitespace().next().unwrap_or_default())
    };
    let parsed = if let Some(rest) = text.strip_prefix("Redis server v=") {
        version(ServerFlavour::Redis, rest)
    } else if let Some(rest) = text.strip_prefix("Valkey server v=") {
        version(ServerFlavour::Valkey, rest)
    } else {
        None
    };
    parsed.ok_or_else(|| {
        let said = text.lines().next().unwrap_or("nothing").trim().to_owned();
        SandboxError::NotAServer(bin.to_owned(), said)
    })
}

/// Whether the binary can serve TLS: a server started in the foreground on no TCP port with
/// a `tls-port` and certificate files that do not exist stops at once either way, and what it
/// says tells a build without TLS (`Bad directive` for `tls-port` on Redis, `Failed finding
/// TLS support` on Valkey) from one that only rejects the files. Bounded: killed after 5 s.
pub fn check_tls_support(bin: &Path) -> Result<(), SandboxError> {
    let dir = tempfile_dir()?;
    let missing = dir.join("missing.pem").display().to_string();
    let mut child = std::process::Command::new(bin)
        .args([
            "--port",
            "0",
            "--tls-port",
            "1",
            "--daemonize",
            "no",
            "--save",
            "",
        ])
        .args(["--appendonly", "no", "--logfile", ""])
        .args(["--tls-cert-file", &missing, "--tls-key-file", &missing])
        .args(["--tls-ca-cert-file", &missing])
        .current_dir(&dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(io_err(format!("run `{}`", bin.display())))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child
        .wait_with_output()
        .map_err(io_err(format!("run `{}`", bin.display())))?;
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let refusal = text.lines().find(|l| {
        l.contains("Bad directive")
            || l.contains("Failed finding TLS support")
            || l.contains("TLS is not supported")
            || l.contains("Missing implement of connection type tls")
    });
    match refusal {
        Some(line) => Err(SandboxError::NoTlsSupport(
            bin.to_owned(),
            line.trim().to_owned(),
        )),
        None => Ok(()),
    }
}

/// A private scratch directory (the server probe writes nothing, but runs somewhere).
fn tempfile_dir() -> Result<PathBuf, SandboxError> {
    let dir = std::env::temp_dir().join(format!("clustersmith-probe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(io_err(format!("create `{}`", dir.display())))?;
    Ok(dir)
}

impl LocalServer {
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("server.log")
    }
}

/// True when nothing listens on `port` nor on its bus port.
pub fn ports_free(port: u16) -> bool {
    port <= MAX_SAFE_PORT
        && TcpListener::bind(("127.0.0.1", port)).is_ok()
        && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok()
}

/// `redis.conf` for one server; `valkey` selects Valkey's own wording (`primaryauth`).
pub fn render_config(cfg: &ServerConfig, valkey: bool) -> String {
    let dir = cfg.dir.display();
    let mut text = String::new();
    let _ = writeln!(text, "# written by clustersmith sandbox");
    for (key, value) in [
        ("bind", "127.0.0.1".to_owned()),
        ("port", cfg.port.to_string()),
        ("cluster-enabled", "yes".to_owned()),
        ("cluster-config-file", "nodes.conf".to_owned()),
        ("cluster-node-timeout", "5000".to_owned()),
        ("dir", format!("{dir}")),
        ("logfile", format!("{dir}/server.log")),
        ("pidfile", format!("{dir}/server.pid")),
        ("daemonize", "yes".to_owned()),
        ("save", "\"\"".to_owned()),
        ("appendonly", "no".to_owned()),
        // The default 5 s delay before the first diskless sync only slows a fresh cluster.
        ("repl-diskless-sync-delay", "0".to_owned()),
    ] {
        if !cfg.directives.iter().any(|(k, _)| *k == key) {
            let _ = writeln!(text, "{key} {value}");
        }
    }
    for (key, value) in &cfg.directives {
        let _ = writeln!(text, "{key} {value}");
    }
    if let Some(password) = &cfg.password {
        let quoted = quote(password.expose());
        let _ = writeln!(text, "requirepass {quoted}");
        // Replicas authenticate to their primary with this; without it the link stays down
        // with NOAUTH in the replica's log (the seed's failure). Valkey 8 still accepts the
        // old name, but writes its own.
        let auth = if valkey { "primaryauth" } else { "masterauth" };
        let _ = writeln!(text, "{auth} {quoted}");
    }
    text
}

/// Double-quoted with the escapes redis.conf understands.
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Starts one server and waits (bounded) until its pidfile exists and the port accepts.
pub fn start_server(cfg: &ServerConfig) -> Result<LocalServer, SandboxError> {
    if cfg.port > MAX_SAFE_PORT {
        return Err(SandboxError::UnsafePort { port: cfg.port });
    }
    if !ports_free(cfg.port) {
        return Err(SandboxError::PortInUse { port: cfg.port });
    }
    std::fs::create_dir_all(&cfg.dir).map_err(io_err(format!("create `{}`", cfg.dir.display())))?;
    let conf = cfg.dir.join("redis.conf");
    write_private(&conf, &render_config(cfg, is_valkey_binary(&cfg.bin)))?;
    launch(&cfg.bin, &cfg.dir, cfg.port)
}

/// Starts a server from the redis.conf in `dir` (it daemonizes) and waits (bounded) until its
/// pidfile names a running process and its port accepts.
fn launch(bin: &Path, dir: &Path, port: u16) -> Result<LocalServer, SandboxError> {
    let conf = dir.join("redis.conf");
    // A pidfile left by the previous process would be taken for the new one's.
    let pidfile = dir.join("server.pid");
    let _ = std::fs::remove_file(&pidfile);
    let status = std::process::Command::new(bin)
        .arg(&conf)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(io_err(format!("run `{}`", bin.display())))?;
    let fail = |reason: String| SandboxError::StartFailed { port, reason };
    if !status.status.success() {
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        let stderr = String::from_utf8_lossy(&status.stderr);
        return Err(fail(format!("{}{}", stderr.trim(), last_lines(&log, 5))));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pid = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        if let Some(pid) = pid
            && let Some(start_time) = process_start_time(pid)
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            return Ok(LocalServer {
                port,
                pid,
                start_time: Some(start_time),
                dir: dir.to_owned(),
            });
        }
        if Instant::now() >= deadline {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            return Err(fail(format!(
                "not ready within 10 s{}",
                last_lines(&log, 5)
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(n)..];
    if tail.is_empty() {
        String::new()
    } else {
        format!("; log ends with:\n  {}", tail.join("\n  "))
    }
}

fn write_private(path: &Path, text: &str) -> Result<(), SandboxError> {
    crate::pki::write_private(path, text).map_err(io_err(format!("write `{}`", path.display())))
}

/// True when `pid` is alive and its command line names a redis or valkey server. For test
/// harnesses that start the standard binaries; the sandbox identifies its processes by PID and
/// start time instead ([`LocalServer::is_running`]), whatever the binary is called.
pub fn is_our_server(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| {
        let text = String::from_utf8_lossy(&cmd);
        text.contains("redis-server")
            || text.contains("valkey-server")
            || text.contains("redis-check-rdb")
    })
}

/// Sends a signal to a process we started. Only for PIDs recorded by this module.
pub fn signal(pid: u32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions; the PID comes from our own pidfile
    // and was checked to run a server binary.
    #[expect(
        unsafe_code,
        reason = "kill(2) is the only way to signal a daemonized server by PID"
    )]
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    rc == 0
}

/// Stops a server we started: SIGTERM, then SIGKILL after 5 s. Returns once it is gone.
pub fn stop_server(pid: u32) {
    if !is_our_server(pid) {
        return;
    }
    signal(pid, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while is_our_server(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if is_our_server(pid) {
        signal(pid, libc::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(2);
        while is_our_server(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A set of servers started together, recorded in `<dir>/sandbox.state`.
#[derive(Debug)]
pub struct Sandbox {
    pub dir: PathBuf,
    pub servers: Vec<LocalServer>,
    /// Whether the nodes are TLS-only: recorded in the state, never inferred from files that
    /// may be left over in the directory.
    pub tls: bool,
    /// The server binary the nodes run (recorded from this version on; a restart without one
    /// needs it given).
    pub bin: Option<PathBuf>,
}

pub struct SandboxSpec {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub base_port: u16,
    pub count: usize,
    pub password: Option<Secret>,
    pub directives: Vec<(String, String)>,
    /// TLS-only nodes (`port 0`, `tls-port`, `tls-cluster`, `tls-replication`), each with its
    /// own certificate from a throwaway CA.
    pub tls: bool,
}

/// Client-side TLS files of a TLS sandbox: the CA and a client certificate.
#[derive(Clone, Debug)]
pub struct SandboxTls {
    pub ca_cert: PathBuf,
    pub client: crate::pki::CertFiles,
}

impl SandboxTls {
    fn paths(dir: &Path) -> SandboxTls {
        let tls = dir.join("tls");
        SandboxTls {
            ca_cert: tls.join("ca.crt"),
            client: crate::pki::CertFiles {
                cert: tls.join("client.crt"),
                key: tls.join("client.key"),
            },
        }
    }
}

/// TLS-only directives for one node, with its certificate issued by `ca`.
pub fn tls_directives(
    ca: &crate::pki::TestCa,
    node_dir: &Path,
    port: u16,
) -> Result<Vec<(String, String)>, String> {
    let files = ca.issue(node_dir, "node", &["127.0.0.1", "localhost"])?;
    let path = |p: &Path| p.display().to_string();
    Ok(vec![
        ("port".into(), "0".into()),
        ("tls-port".into(), port.to_string()),
        ("tls-cert-file".into(), path(&files.cert)),
        ("tls-key-file".into(), path(&files.key)),
        ("tls-ca-cert-file".into(), path(&ca.ca_cert)),
        ("tls-auth-clients".into(), "yes".into()),
        ("tls-cluster".into(), "yes".into()),
        ("tls-replication".into(), "yes".into()),
    ])
}

impl Sandbox {
    /// Starts `count` servers on consecutive ports. Everything is checked before the first
    /// server starts (binary, port range, free ports, an empty directory); on a failure after
    /// that, the servers started so far are stopped and everything created is removed, so a
    /// failed `up` leaves nothing behind.
    pub fn up(spec: &SandboxSpec) -> Result<Sandbox, SandboxError> {
        check_server_binary(&spec.bin)?;
        if spec.tls {
            check_tls_support(&spec.bin)?;
        }
        let last = u32::from(spec.base_port) + spec.count.saturating_sub(1) as u32;
        if last > u32::from(MAX_SAFE_PORT) {
            return Err(SandboxError::UnsafePort {
                port: u16::try_from(last).unwrap_or(u16::MAX),
            });
        }
        if let Some(port) = (0..spec.count as u16)
            .map(|i| spec.base_port + i)
            .find(|port| !ports_free(*port))
        {
            return Err(SandboxError::PortInUse { port });
        }
        let existed = spec.dir.exists();
        if existed
            && std::fs::read_dir(&spec.dir)
                .map_err(io_err(format!("read `{}`", spec.dir.display())))?
                .next()
                .is_some()
        {
            return Err(SandboxError::DirNotEmpty(spec.dir.clone()));
        }
        let mut sandbox = Sandbox {
            dir: spec.dir.clone(),
            servers: Vec::new(),
            tls: spec.tls,
            bin: Some(spec.bin.clone()),
        };
        match sandbox.start_all(spec) {
            Ok(()) => Ok(sandbox),
            Err(err) => {
                let stopped = sandbox.stop();
                // Only what this call created is removed, and only once its servers are gone.
                if stopped {
                    let _ = if existed {
                        remove_contents(&spec.dir)
                    } else {
                        std::fs::remove_dir_all(&spec.dir)
                    };
                }
                Err(err)
            }
        }
    }

    fn start_all(&mut self, spec: &SandboxSpec) -> Result<(), SandboxError> {
        std::fs::create_dir_all(&spec.dir)
            .map_err(io_err(format!("create `{}`", spec.dir.display())))?;
        // The state exists from the start (empty), so that `down` can clean up whatever an
        // interrupted `up` left.
        self.save()?;
        let ca = if spec.tls {
            let ca = crate::pki::TestCa::create(&spec.dir.join("tls")).map_err(tls_err)?;
            ca.issue(&spec.dir.join("tls"), "client", &["127.0.0.1", "localhost"])
                .map_err(tls_err)?;
            Some(ca)
        } else {
            None
        };
        if let Some(password) = &spec.password {
            write_private(
                &spec.dir.join("password"),
                &format!("{}\n", password.expose()),
            )?;
        }
        for idx in 0..spec.count {
            let port = spec.base_port + idx as u16;
            let node_dir = spec.dir.join(format!("node-{port}"));
            let mut directives = spec.directives.clone();
            // An RDB written when a server is stopped (SIGTERM), and read when it starts: a
            // restarted node keeps its data, and a replica can catch up by partial resync.
            if !directives.iter().any(|(k, _)| k == "save") {
                directives.push(("save".into(), "3600 1".into()));
            }
            if let Some(ca) = &ca {
                directives.extend(tls_directives(ca, &node_dir, port).map_err(tls_err)?);
            }
            let cfg = ServerConfig {
                bin: spec.bin.clone(),
                dir: node_dir,
                port,
                password: spec.password.clone(),
                directives,
            };
            let server = start_server(&cfg)?;
            self.servers.push(server);
            self.save()?;
        }
        Ok(())
    }

    fn state_path(dir: &Path) -> PathBuf {
        dir.join("sandbox.state")
    }

    fn save(&self) -> Result<(), SandboxError> {
        let mut text = format!(
            "# clustersmith sandbox: mode, binary, then `port pid start-time` per server\ntls {}\n",
            if self.tls { "yes" } else { "no" }
        );
        if let Some(bin) = &self.bin {
            let _ = writeln!(text, "bin {}", bin.display());
        }
        for s in &self.servers {
            let start = s.start_time.map_or("-".to_owned(), |t| t.to_string());
            let _ = writeln!(text, "{} {} {start}", s.port, s.pid);
        }
        write_private(&Sandbox::state_path(&self.dir), &text)
    }

    pub fn load(dir: &Path) -> Result<Sandbox, SandboxError> {
        let text = std::fs::read_to_string(Sandbox::state_path(dir))
            .map_err(|_| SandboxError::NoSandbox(dir.to_owned()))?;
        let mut tls = false;
        let mut bin = None;
        let mut servers = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            if let Some(path) = line.strip_prefix("bin ") {
                bin = Some(PathBuf::from(path));
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields.as_slice() {
                ["tls", value] => tls = *value == "yes",
                [port, pid, rest @ ..] => {
                    let (Ok(port), Ok(pid)) = (port.parse::<u16>(), pid.parse::<u32>()) else {
                        continue;
                    };
                    servers.push(LocalServer {
                        port,
                        pid,
                        start_time: rest.first().and_then(|t| t.parse().ok()),
                        dir: dir.join(format!("node-{port}")),
                    });
                }
                _ => {}
            }
        }
        // A state written before the mode was recorded: TLS when the CA is there.
        if !text.contains("\ntls ") {
            tls = SandboxTls::paths(dir).ca_cert.exists();
        }
        Ok(Sandbox {
            dir: dir.to_owned(),
            servers,
            tls,
            bin,
        })
    }

    /// Restarts the server on `port`: SIGTERM, wait until it is gone (bounded: SIGKILL after
    /// 30 s, as a service manager would), then start it again from its own redis.conf, with
    /// `bin` when given (an upgrade) or the binary it ran. The state keeps its new PID and
    /// the binary.
    pub fn restart(&mut self, port: u16, bin: Option<&Path>) -> Result<(), SandboxError> {
        let bin = match bin {
            Some(bin) => {
                check_server_binary(bin)?;
                bin.to_owned()
            }
            None => self.bin.clone().ok_or(SandboxError::NoServerBinary)?,
        };
        let at = self
            .servers
            .iter()
            .position(|s| s.port == port)
            .ok_or_else(|| SandboxError::NoSandbox(self.dir.join(format!("node-{port}"))))?;
        let server = self.servers[at].clone();
        if let Some(running) = server.running_process() {
            signal(running.pid, libc::SIGTERM);
            if !wait_gone(&running, Duration::from_secs(30)) {
                signal(running.pid, libc::SIGKILL);
                wait_gone(&running, Duration::from_secs(5));
            }
        }
        let started = launch(&bin, &server.dir, port)?;
        self.servers[at] = started;
        self.bin = Some(bin);
        self.save()
    }

    /// Stops every server of the sandbox (also one restarted by hand from its node's
    /// config); true when all are gone.
    pub fn stop(&self) -> bool {
        // Every server is signalled first, then all are waited for: stopped one at a time,
        // 300 servers saturating two cores took 9 min 20 s to take down, each waiting its
        // turn for CPU to handle its SIGTERM.
        let running: Vec<LocalServer> = self
            .servers
            .iter()
            .filter_map(LocalServer::running_process)
            .collect();
        for server in &running {
            signal(server.pid, libc::SIGTERM);
        }
        if wait_all_gone(&running, Duration::from_secs(10)) {
            return true;
        }
        for server in running.iter().filter(|s| s.is_running()) {
            signal(server.pid, libc::SIGKILL);
        }
        wait_all_gone(&running, Duration::from_secs(5))
    }

    /// Stops the servers, checks they are gone, then removes the directory. Nothing is
    /// removed while one of them still runs.
    pub fn down(self) -> Result<(), SandboxError> {
        self.stop();
        let running: Vec<u32> = self
            .servers
            .iter()
            .filter_map(LocalServer::running_process)
            .map(|s| s.pid)
            .collect();
        if !running.is_empty() {
            return Err(SandboxError::StillRunning {
                pids: running,
                dir: self.dir,
            });
        }
        std::fs::remove_dir_all(&self.dir)
            .map_err(io_err(format!("remove `{}`", self.dir.display())))
    }

    /// The client TLS files, when this is a TLS sandbox.
    pub fn tls(&self) -> Option<SandboxTls> {
        self.tls.then(|| SandboxTls::paths(&self.dir))
    }

    /// The file holding the generated password, when the sandbox has one.
    pub fn password_file(&self) -> Option<PathBuf> {
        let path = self.dir.join("password");
        path.exists().then_some(path)
    }

    pub fn addrs(&self) -> Vec<String> {
        self.servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }
}

fn remove_contents(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_reads_times_after_a_command_name_with_spaces() {
        let text = "4242 (redis-server *:21) S 1 4242 4242 0 -1 4194560 812 0 0 0 137 58 0 0 20 0 5 0 987654 1 2 3\n";
        assert_eq!(
            ProcStat::parse(text),
            Some(ProcStat {
                zombie: false,
                utime: 137,
                stime: 58,
                start_time: 987654,
            })
        );
        let zombie = text.replace(") S ", ") Z ");
        assert!(ProcStat::parse(&zombie).unwrap().zombie);
        assert_eq!(ProcStat::parse("4242 (x) S 1"), None);
    }
}
