//! The operations the CLI runs, each over a connected [`Session`], from arguments to a
//! result: the CLI parses and renders, and never calls the core's planner, verifier or
//! diagnosis itself. One file per operation:
//!
//! - [`plan`]: one read, one plan (what `apply` would do first), with the keys each move
//!   carries.
//! - [`verify`]: one read, checked against the layout the spec asks for.
//! - [`apply`]: formation and reshaping, run by the driver until it converges.
//! - [`diagnose`]: evidence gathered and judged by the rule registry.
//! - [`evacuate`]: a node's slots and replicas moved to the primaries that stay.
//! - [`handoff`]: a primary hands its role to a fit replica.
//! - [`report`]: what verify and diagnose read, for the HTML report.
//! - [`watch`]: the cluster read once an interval, with what changed.
//! - [`roll`]: a rolling restart or upgrade, resumable.
//!
//! [`Session`]: crate::session::Session

pub mod apply;
pub mod diagnose;
pub mod evacuate;
pub mod handoff;
pub mod plan;
pub mod report;
pub mod roll;
pub mod verify;
pub mod watch;

pub use apply::{ApplyOptions, apply, preflight};
pub use plan::{Planned, plan};
pub use verify::{Checked, verify};
