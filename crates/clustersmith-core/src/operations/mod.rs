//! The operations a driver runs on a live cluster, one file each (see [`crate::operation`]).
//!
//! - [`formation`]: forming and reshaping toward the spec (`apply`).
//! - [`evacuate`]: a node's slots and replicas moved to the primaries that stay (`evacuate`).
//! - [`handoff`]: a primary hands its role to a fit replica (`handoff`).
//! - [`roll`]: every node restarted once, with no writer noticing (`roll`).

pub mod evacuate;
pub mod formation;
pub mod handoff;
pub mod roll;

pub use evacuate::Evacuate;
pub use formation::Formation;
pub use handoff::Handoff;
pub use roll::{Roll, RollPlan};
