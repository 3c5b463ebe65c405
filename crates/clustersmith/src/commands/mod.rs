//! One file per subcommand: each parses its arguments into what the I/O shell's operations
//! take, runs the operation, and renders the result (see `render`). This module holds the
//! [`Run`] trait they implement and what they share: opening a session.

mod apply;
mod diagnose;
mod evacuate;
mod explain;
mod handoff;
mod plan;
mod report;
mod roll;
mod sandbox;
mod verify;

use std::future::Future;
use std::pin::Pin;

use clustersmith_core::spec::ClusterSpec;
use clustersmith_io::conn::ConnOpts;
use clustersmith_io::session::Session;

use crate::output::errln;

/// What every subcommand is to `main`: its name (in messages and JSON documents), whether it
/// was asked for JSON, and its run, which returns the process exit code (unexpected failures
/// come back as `anyhow` errors and exit 2).
pub trait Run {
    fn name(&self) -> &'static str;
    /// With JSON output a command prints exactly one JSON document on stdout, also when it
    /// stops with an error, and only JSON lines on stderr.
    fn json(&self) -> bool;
    fn run(&self) -> Pin<Box<dyn Future<Output = anyhow::Result<u8>> + '_>>;
}

pub async fn open(
    spec: &ClusterSpec,
    conn: &ConnOpts,
    prefer_ipv6: bool,
) -> anyhow::Result<Session> {
    let session = Session::connect(spec, conn, prefer_ipv6).await?;
    for note in &session.notes {
        errln!("note: {note}");
    }
    Ok(session)
}

/// `1 node`, `2 nodes`: counts in messages agree with their noun.
pub fn plural(count: usize, one: &str, many: &str) -> String {
    clustersmith_core::plural(count as u64, one, many)
}
