//! `plan`: one read, one plan: what `apply` would do first, with the keys each slot move
//! would carry (counted on its source now). Changes nothing.

use clustersmith_core::plan::{MoveEngine, Plan, SlotMove, plan as plan_round};
use clustersmith_core::snapshot::Snapshot;
use clustersmith_core::spec::ClusterSpec;

use crate::driver::RunError;
use crate::migrate::count_keys;
use crate::operations::preflight;
use crate::session::Session;

/// A plan with what it moves.
pub struct Planned {
    pub plan: Plan,
    pub snapshot: Snapshot,
    /// The layout's moves, each with the keys on its source now (`None`: not counted).
    pub moves: Vec<(SlotMove, Option<u64>)>,
    pub engine: MoveEngine,
}

pub async fn plan(
    session: &mut Session,
    spec: &ClusterSpec,
    remove_unlisted: bool,
) -> Result<Planned, RunError> {
    preflight(session, remove_unlisted).await?;
    let planned = plan_round(spec, session.snapshot());
    let mut moves = Vec::new();
    for m in planned.layout.iter().flat_map(|l| &l.moves) {
        let keys = match session.handle(&m.source) {
            Some(handle) => count_keys(handle, &m.slots).await.ok(),
            None => None,
        };
        moves.push((m.clone(), keys));
    }
    Ok(Planned {
        engine: MoveEngine::for_nodes(session.snapshot()),
        snapshot: session.snapshot().clone(),
        plan: planned,
        moves,
    })
}
