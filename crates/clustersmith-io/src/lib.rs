//! The I/O shell of clustersmith: everything that touches the network, processes or files.
//!
//! It resolves names, connects to nodes with explicit timeouts, observes them, and runs the
//! reconcile loop that sends the core planner's steps. It never prints: results are values,
//! and progress is reported through callbacks and `tracing` events.
//!
//! # Layout
//! - [`error`]: the one place that classifies Redis errors and turns them into messages.
//! - [`conn`]: connection options (auth, TLS, timeouts) and per-node handles.
//! - [`resolve`]: spec names to IP addresses, on every run, through the system resolver.
//! - [`session`]: a resolved, connected set of nodes: their snapshot, kept current by reads.
//! - [`driver`]: runs an operation round by round (read → plan → act → read again) until
//!   it is done or the deadline passes.
//! - [`operations`]: what the CLI runs, one file each (plan, verify, apply, diagnose,
//!   handoff, roll).
//! - [`restart`]: how a roll restarts a node: the operator's command, or the sandbox's.
//! - [`migrate`]: slot moves with their keys (SETSLOT, GETKEYSINSLOT, MIGRATE), batched.
//! - [`evidence`]: files and live views gathered for `diagnose`, each attached to its node.
//! - [`client_endpoints`]: where the nodes send clients (`CLUSTER SLOTS`), each endpoint
//!   tried as a client would.
//! - [`sandbox`]: real `redis-server` / `valkey-server` processes on loopback.
//! - [`pki`]: a throwaway CA and certificates for TLS sandboxes and tests.

pub mod client_endpoints;
pub mod conn;
pub mod driver;
pub mod error;
pub mod evidence;
pub mod migrate;
pub mod operations;
pub mod pki;
pub mod resolve;
pub mod restart;
pub mod sandbox;
pub mod session;
