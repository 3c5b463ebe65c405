//! Everything a person or a script reads: tables and text for people, the JSON documents as
//! explicit wire structs for scripts, progress while a run lasts, refusals.
//!
//! # Layout
//! - [`tables`]: the topology against the plan, the verdict, timestamps.
//! - [`findings`]: `diagnose`'s causes, symptoms and fixes as text.
//! - [`json`]: every JSON document and progress event.
//! - [`progress`]: a run's progress on stderr.
//! - [`report`]: the HTML report and the document behind it.
//! - [`watch`]: one frame of the live view.
//! - [`prometheus`]: verify's verdict and the live cluster as Prometheus gauges.
//! - [`outcome`]: what a run that changes the cluster ended with.
//! - [`errors`]: refusals and failures, on stderr and as the JSON document.

pub mod errors;
pub mod findings;
pub mod json;
pub mod outcome;
pub mod progress;
pub mod prometheus;
pub mod report;
pub mod tables;
pub mod watch;

pub use tables::{timestamp, topology_table, verdict_text};
