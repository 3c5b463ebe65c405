//! The operations a driver runs on a live cluster, one file each (see [`crate::operation`]).
//!
//! - [`formation`]: forming and reshaping toward the spec (`apply`).

pub mod formation;

pub use formation::Formation;
