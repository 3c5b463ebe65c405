//! `handoff`: a primary hands its role to its fittest replica with a coordinated failover,
//! and the run waits until every node agrees and the old primary follows the new one.

use std::time::Duration;

use clustersmith_core::operation::FailoverMode;
use clustersmith_core::operations::Handoff;
use clustersmith_core::snapshot::NodeKey;

use crate::driver::{Event, Outcome, RunError, RunOptions, claim, run};
use crate::session::Session;

pub struct HandoffOptions {
    pub timeout: Duration,
    /// The replica to take over; the fittest when `None`.
    pub to: Option<NodeKey>,
    /// The most a replica may lag behind its primary to be chosen, in bytes.
    pub max_lag: u64,
    pub mode: FailoverMode,
}

/// What a handoff did: the run's outcome, and the replica that took over (`None`: the node
/// was a replica already).
pub struct HandedOver {
    pub outcome: Outcome,
    pub successor: Option<NodeKey>,
}

/// Hands `node` (one of the session's nodes) over; the session's other nodes are found from
/// the cluster's own views.
pub async fn handoff(
    session: &mut Session,
    node: &NodeKey,
    options: &HandoffOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<HandedOver, RunError> {
    session
        .discover_members()
        .await
        .map_err(|e| RunError::Preflight(vec![e]))?;
    claim(session).await?;
    let mut handoff = Handoff::new(
        node.clone(),
        options.to.clone(),
        options.max_lag,
        options.mode,
    );
    let outcome = run(
        session,
        &mut handoff,
        &RunOptions::new(options.timeout),
        on_event,
    )
    .await?;
    Ok(HandedOver {
        successor: handoff.successor().cloned(),
        outcome,
    })
}
