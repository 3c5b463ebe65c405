//! `apply`: formation and reshaping ([`Formation`]), run by the driver until the cluster
//! matches the spec, after a preflight that changes nothing.

use std::time::Duration;

use clustersmith_core::operation::Reads;
use clustersmith_core::operations::Formation;
use clustersmith_core::plan::{MoveEngine, unlisted_members};
use clustersmith_core::spec::ClusterSpec;

use crate::driver::{Cluster, Event, Outcome, RunError, RunOptions, claim, run};

pub struct ApplyOptions {
    pub timeout: Duration,
    /// Members of the cluster that the spec does not name are drained and forgotten.
    pub remove_unlisted: bool,
    /// `MIGRATE … REPLACE`: overwrite keys that already exist on a move's target.
    pub replace: bool,
    /// The move engine asked for; `None` detects it from the servers.
    pub engine: Option<MoveEngine>,
}

impl ApplyOptions {
    pub fn new(timeout: Duration) -> ApplyOptions {
        ApplyOptions {
            timeout,
            remove_unlisted: false,
            replace: false,
            engine: None,
        }
    }
}

/// Reads every spec node once, before any change: reachable, authenticated,
/// cluster-enabled. With `remove_unlisted`, the members the spec does not name join the
/// cluster's snapshot as leaving nodes; one that does not answer is left to the planner (which
/// refuses only if it still owns slots).
pub async fn preflight<C: Cluster>(cluster: &mut C, remove_unlisted: bool) -> Result<(), RunError> {
    let errors = cluster.read(&Reads::All).await;
    if !errors.is_empty() {
        return Err(RunError::Preflight(errors));
    }
    if !remove_unlisted {
        return Ok(());
    }
    let found = unlisted_members(cluster.snapshot());
    if found.is_empty() {
        return Ok(());
    }
    cluster
        .add_leaving(&found)
        .map_err(|e| RunError::Preflight(vec![e]))?;
    cluster.read(&Reads::All).await;
    let spec_errors: Vec<_> = cluster
        .snapshot()
        .spec_nodes()
        .filter_map(|n| match &n.state {
            clustersmith_core::snapshot::NodeState::Unreachable(why) => {
                Some(crate::error::NodeError {
                    node: n.label().to_owned(),
                    op: "observe",
                    kind: crate::error::NodeErrorKind::Other(why.clone()),
                })
            }
            clustersmith_core::snapshot::NodeState::Seen(_) => None,
        })
        .collect();
    if spec_errors.is_empty() {
        Ok(())
    } else {
        Err(RunError::Preflight(spec_errors))
    }
}

/// Forms and reshapes: preflight, claim the cluster, then run [`Formation`].
pub async fn apply<C: Cluster>(
    cluster: &mut C,
    spec: &ClusterSpec,
    options: &ApplyOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<Outcome, RunError> {
    preflight(cluster, options.remove_unlisted).await?;
    claim(cluster).await?;
    let mut formation = Formation::new(spec.clone());
    let run_options = RunOptions {
        timeout: options.timeout,
        replace: options.replace,
        engine: options.engine,
    };
    run(cluster, &mut formation, &run_options, on_event).await
}
