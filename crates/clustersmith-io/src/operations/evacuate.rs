//! `evacuate`: a node's slots move, keys and all, to the other primaries that serve slots, and
//! its replicas are re-homed onto them, before the node's machine goes away.

use std::collections::BTreeMap;
use std::time::Duration;

use clustersmith_core::operations::Evacuate;
use clustersmith_core::snapshot::NodeKey;

use crate::driver::{Event, Outcome, RunError, RunOptions, claim, run};
use crate::session::Session;

pub struct EvacuateOptions {
    pub timeout: Duration,
}

/// What an evacuation did: the run's outcome, and each re-homed replica with its new primary.
pub struct Evacuated {
    pub outcome: Outcome,
    pub homes: BTreeMap<NodeKey, NodeKey>,
}

/// Evacuates `node` (one of the session's nodes); the others are found from the cluster's
/// own views.
pub async fn evacuate(
    session: &mut Session,
    node: &NodeKey,
    options: &EvacuateOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<Evacuated, RunError> {
    session
        .discover_members()
        .await
        .map_err(|e| RunError::Preflight(vec![e]))?;
    claim(session).await?;
    let mut evacuate = Evacuate::new(node.clone());
    let outcome = run(
        session,
        &mut evacuate,
        &RunOptions::new(options.timeout),
        on_event,
    )
    .await?;
    let homes = evacuate
        .homes()
        .iter()
        .map(|(replica, home)| {
            (
                outcome.snapshot.key_for(replica),
                outcome.snapshot.key_for(home),
            )
        })
        .collect();
    Ok(Evacuated { outcome, homes })
}
