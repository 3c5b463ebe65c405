//! Exit codes: a documented API (also listed in the README).

/// Success: converged, verified, or nothing to change.
pub const OK: u8 = 0;
/// `verify` (or the verification at the end of `apply`) found failing criteria.
pub const VERIFY_FAILED: u8 = 1;
/// Bad input or a refusal: bad arguments or spec, unresolvable name, unreachable or
/// non-cluster node, failed auth, a node holding keys or belonging to another cluster, a fatal
/// server error. Nothing was changed unless the message says otherwise.
pub const ERROR: u8 = 2;
/// `apply` reached its `--timeout` before the cluster converged, or a slot move stopped on a
/// node that failed mid-move: the slot is left open and the next run continues it.
pub const DEADLINE: u8 = 3;
/// `plan`: changes are pending.
pub const CHANGES_PENDING: u8 = 4;
