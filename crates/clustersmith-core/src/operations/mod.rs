//! The operations a driver runs on a live cluster, one file each (see [`crate::operation`]).
//!
//! - [`formation`]: forming and reshaping toward the spec (`apply`).
//! - [`handoff`]: a primary hands its role to a fit replica (`handoff`).
//! - [`roll`]: every node restarted once, with no writer noticing (`roll`).

pub mod formation;
pub mod handoff;
pub mod roll;

pub use formation::Formation;
pub use handoff::Handoff;
pub use roll::{Roll, RollPlan};
