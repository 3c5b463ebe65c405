//! `verify`: one read of every spec node, checked against the layout the spec asks for.
//! Changes nothing.

use clustersmith_core::operation::Reads;
use clustersmith_core::plan::{Blocker, Layout, plan};
use clustersmith_core::snapshot::Snapshot;
use clustersmith_core::spec::ClusterSpec;
use clustersmith_core::verify::{Verdict, verify as check};

use crate::error::NodeError;
use crate::session::Session;

/// What `verify` found: the live state, the nodes that did not answer and why, and either the
/// verdict against the intended layout or the blockers that leave no layout to check against.
pub struct Checked {
    pub snapshot: Snapshot,
    /// Why each node that did not answer could not be read.
    pub errors: Vec<NodeError>,
    pub outcome: Result<(Layout, Verdict), Vec<Blocker>>,
}

pub async fn verify(session: &mut Session, spec: &ClusterSpec) -> Checked {
    let errors = session.read_nodes(&Reads::All).await;
    let snapshot = session.snapshot().clone();
    let planned = plan(spec, &snapshot);
    let outcome = match planned.layout {
        Some(layout) => {
            let verdict = check(&layout, &snapshot);
            Ok((layout, verdict))
        }
        None => Err(planned.blockers),
    };
    Checked {
        snapshot,
        errors,
        outcome,
    }
}
