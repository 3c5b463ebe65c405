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
mod watch;

use std::future::Future;
use std::pin::Pin;

use clustersmith_core::spec::ClusterSpec;
use clustersmith_io::conn::ConnOpts;
use clustersmith_io::session::Session;

use crate::args::{ConnArgs, LookArgs};
use crate::output::errln;
use crate::target::{conn_opts, observed_spec};

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

/// The live nodes `diagnose` and `report` look at: a session when nodes are given, and the
/// spec it was opened with when that spec's shape is the expected one (`-m`/`-r` given).
pub struct Looked {
    session: Option<Session>,
    expected: Option<ClusterSpec>,
}

impl Looked {
    pub async fn open(args: &LookArgs) -> anyhow::Result<Looked> {
        Looked::open_nodes(
            &args.nodes,
            args.primaries,
            args.replicas,
            &args.conn,
            args.prefer_ipv6,
        )
        .await
    }

    /// The same for nodes given otherwise (`watch`: no shape, no evidence).
    pub async fn open_nodes(
        nodes: &[String],
        primaries: Option<usize>,
        replicas: Option<usize>,
        conn: &ConnArgs,
        prefer_ipv6: bool,
    ) -> anyhow::Result<Looked> {
        let Some((spec, expected)) = observed_spec(nodes, primaries, replicas)? else {
            return Ok(Looked {
                session: None,
                expected: None,
            });
        };
        let session = open(&spec, &conn_opts(conn)?, prefer_ipv6).await?;
        Ok(Looked {
            session: Some(session),
            expected: expected.then_some(spec),
        })
    }

    /// The session, and the spec to check the cluster against.
    pub fn parts(&mut self) -> (Option<&mut Session>, Option<&ClusterSpec>) {
        (self.session.as_mut(), self.expected.as_ref())
    }
}

/// A session through one node (`handoff`, `evacuate`: the operation finds the cluster's other
/// members from its view), and that node's key.
pub async fn open_one(
    node: &str,
    conn: &ConnArgs,
    prefer_ipv6: bool,
) -> anyhow::Result<(clustersmith_core::snapshot::NodeKey, Session)> {
    let node = clustersmith_core::spec::parse_node(node)?;
    let key = clustersmith_core::snapshot::NodeKey::named(&node.label());
    let spec = ClusterSpec::new(vec![node], Some(1), Some(0))?;
    let session = open(&spec, &conn_opts(conn)?, prefer_ipv6).await?;
    Ok((key, session))
}

/// `1 node`, `2 nodes`: counts in messages agree with their noun.
pub fn plural(count: usize, one: &str, many: &str) -> String {
    clustersmith_core::plural(count as u64, one, many)
}
