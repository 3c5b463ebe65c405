//! The pure core of clustersmith.
//!
//! Everything here takes values and returns values: no network, no files, no clocks. The I/O
//! shell (`clustersmith-io`) observes live nodes, hands the text they return to the parsers in
//! [`parse`], and asks [`plan`] what to do next. Because the core cannot fail from I/O, it is
//! tested with plain unit tests on captured server output.
//!
//! # Layout
//! - [`model`]: node ids, flags, addresses, slots and slot sets.
//! - [`parse`]: `CLUSTER NODES`, `CLUSTER INFO` and `INFO` text into typed values, keeping
//!   every anomaly with its line number.
//! - [`spec`]: the desired cluster as the operator states it, validated.
//! - [`snapshot`]: every node of an operation under a stable key, with its latest answers,
//!   and the questions plan, verify and diagnose all ask of them.
//! - [`plan`]: the target layout (primaries, slot ranges, replicas) and the steps that move the
//!   live state toward it.
//! - [`verify`]: the criteria a formed cluster must meet, each evaluated honestly per node.
//! - [`health`]: how fit each replica is to take its primary's role over.
//! - [`operation`]: what an operation is for the driver that runs it (a round at a time);
//!   [`operations`] holds them, one file each.
//! - [`watch`]: what changed between two reads, as `watch` logs it.
//!
//! Architecture invariant: this crate depends on `std` and `thiserror` only.

pub mod diagnose;
pub mod health;
pub mod model;
pub mod operation;
pub mod operations;
pub mod parse;
pub mod plan;
pub mod snapshot;
pub mod spec;
pub mod verify;
pub mod watch;

#[cfg(any(test, feature = "sim"))]
pub mod sim;
#[cfg(test)]
mod testing;

/// `1 node`, `2 nodes`: a count with the noun that agrees with it, for every message.
pub fn plural(count: impl Into<u64>, one: &str, many: &str) -> String {
    let count = count.into();
    format!("{count} {}", if count == 1 { one } else { many })
}
