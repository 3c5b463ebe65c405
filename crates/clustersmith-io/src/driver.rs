//! The driver: runs an [`Operation`] on a [`Cluster`] round after round — read, plan, act,
//! read again — until the operation is done or the deadline passes. It holds none of an
//! operation's logic: what to send, what to wait for and when it is done are the operation's;
//! the driver sends, moves slots, reads the nodes the operation asks for, and reports.
//!
//! # Guarantees
//! - Nothing is sent before the operation has seen every node (the caller's first read) and
//!   no other changing run is at work on the cluster.
//! - The loop waits by reading, never by fixed sleeps beyond one short poll interval, and
//!   never past the deadline.
//! - "Done" is only said on a round whose snapshot was read from every node.

use std::time::{Duration, Instant};

use clustersmith_core::operation::{Action, FailoverMode, Operation, Reads};
use clustersmith_core::plan::{Blocker, Layout, MoveEngine, SlotMove, Step, Unlisted};
use clustersmith_core::snapshot::NodeKey;
use clustersmith_core::snapshot::Snapshot;
use clustersmith_core::verify::{Criterion, Verdict};

use crate::error::{Disposition, NodeError};
use crate::migrate::{MigrateAuth, MoveError, MoveOptions, MoveProgress};

/// What the driver needs from the cluster it drives: a snapshot of its nodes kept current by
/// reads, and the verbs an operation's rounds use. [`crate::session::Session`] drives real
/// servers; the tests drive the same loop over the core's simulated cluster.
#[allow(
    async_fn_in_trait,
    reason = "the loop runs on one task; no Send bound is needed"
)]
pub trait Cluster {
    /// The nodes as last read.
    fn snapshot(&self) -> &Snapshot;
    /// Reads the nodes `reads` names (keeping the others' last views); returns the errors of
    /// nodes that could not be read.
    async fn read(&mut self, reads: &Reads) -> Vec<NodeError>;
    /// Sends steps (phase 0 on every node before any of phase 1); returns the steps that
    /// failed, by position in `steps`, in order.
    async fn execute(&self, steps: &[Step]) -> Vec<(usize, NodeError)>;
    /// Moves slots with their keys.
    async fn move_slots(
        &self,
        engine: MoveEngine,
        moves: &[SlotMove],
        options: &MoveOptions,
        progress: &mut dyn FnMut(&MoveProgress),
    ) -> Result<MoveProgress, MoveError>;
    /// `CLUSTER FAILOVER [FORCE|TAKEOVER]` on a replica.
    async fn failover(&self, replica: &NodeKey, mode: FailoverMode) -> Result<(), NodeError>;
    /// Restarts a node's server; returns once the restart command did. Only for operations
    /// given a way to restart nodes (a roll).
    async fn restart(&self, node: &NodeKey) -> Result<(), String>;
    /// Other clients named with `prefix` (another run at work), after naming our own `name`.
    async fn others_named(&self, name: &str, prefix: &str) -> Vec<(String, String)>;
    /// Adds members to remove, reached where their peers list them.
    fn add_leaving(&mut self, found: &[Unlisted]) -> Result<(), NodeError>;
    /// The credentials `MIGRATE` presents to a target.
    fn migrate_auth(&self) -> MigrateAuth;
}

/// Progress reported while the loop runs.
#[derive(Clone, Debug)]
pub enum Event {
    /// A round planned `steps` commands; `failing` are the criteria not yet met.
    Round {
        round: usize,
        elapsed: Duration,
        steps: usize,
        failing: Vec<&'static Criterion>,
        passed: usize,
        total: usize,
        /// What the next steps wait for, in the operator's words.
        waiting: Vec<String>,
    },
    /// A step failed in a way that a later round may fix.
    StepDeferred { description: String, error: String },
    /// Where the operation stands changed (`roll 3/6: …`).
    Status(String),
    /// A verb is used (`10.0.0.3:6379: CLUSTER FAILOVER`).
    Acting(String),
    /// Slot moves start: how many slots, over how many (source, target) pairs.
    MovesStarted {
        slots: usize,
        pairs: usize,
        resumed: bool,
    },
    /// A batch of slots was handed over by its source and target.
    Moving(MoveProgress),
    /// The moves of this batch are over and every node names the new owners (or, with
    /// `agreed: false`, the deadline came first).
    MovesSettled { slots: usize, agreed: bool },
}

#[derive(Debug)]
pub struct Outcome {
    /// The operation is done.
    pub converged: bool,
    pub rounds: usize,
    pub steps_sent: usize,
    /// Slots moved with their keys (each several commands, not counted in `steps_sent`).
    pub slots_moved: usize,
    pub elapsed: Duration,
    pub layout: Option<Layout>,
    pub verdict: Verdict,
    pub snapshot: Snapshot,
    pub waiting: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Some nodes could not be read before anything was changed.
    #[error("{} node(s) could not be checked; nothing was changed", .0.len())]
    Preflight(Vec<NodeError>),
    /// The live state holds something the operation must not change.
    #[error("refusing to change the cluster; nothing was changed in this round")]
    Blocked {
        blockers: Vec<Blocker>,
        changed: bool,
    },
    /// A step failed in a way no retry can fix.
    #[error("{0}")]
    Fatal(NodeError),
    /// A slot move stopped; the slot is left as the error says, and a new run continues it.
    #[error(transparent)]
    Move(#[from] MoveError),
    /// A verb the operation used failed: a restart command that did not succeed, a failover
    /// the replica refused.
    #[error("{action} failed: {error}")]
    Action { action: String, error: String },
    /// Another changing run is at work on the same cluster (its named connection is listed
    /// by a node): two runs with different specs would move slots against each other.
    #[error("another clustersmith apply is at work on this cluster; nothing was changed")]
    Concurrent(Vec<(String, String)>),
}

/// Connection name prefix of a changing run (`apply`, and the operations after it), seen by
/// the others in `CLIENT LIST`.
pub const RUN_CLIENT_PREFIX: &str = "clustersmith-apply:";

pub struct RunOptions {
    pub timeout: Duration,
    /// `MIGRATE … REPLACE`: overwrite keys that already exist on a move's target.
    pub replace: bool,
    /// The move engine asked for; `None` detects it from the servers.
    pub engine: Option<MoveEngine>,
}

impl RunOptions {
    pub fn new(timeout: Duration) -> RunOptions {
        RunOptions {
            timeout,
            replace: false,
            engine: None,
        }
    }
}

/// How long every node is given to name the new owners after a batch of moves, before the
/// loop goes on (and reports what still disagrees): the servers spread a hand-over within a
/// few ticks; a node that does not answer meanwhile is the loop's to report.
const NEW_OWNERS_SETTLE: Duration = Duration::from_secs(10);

/// Longer at larger N, where one read round itself costs more.
fn poll_interval(nodes: usize) -> Duration {
    Duration::from_millis(40 + 2 * nodes as u64)
}

/// Refuses to start while another changing run is at work on the cluster. Two runs at once
/// would plan against each other's half-done moves: the second one to look refuses (both
/// refuse when they look at the same instant; neither changed anything).
pub async fn claim<C: Cluster>(cluster: &C) -> Result<(), RunError> {
    let name = format!("{RUN_CLIENT_PREFIX}{}", std::process::id());
    let others = cluster.others_named(&name, RUN_CLIENT_PREFIX).await;
    if others.is_empty() {
        Ok(())
    } else {
        Err(RunError::Concurrent(others))
    }
}

/// Runs `operation` on `cluster` (already read once, and claimed) until it is done or the
/// deadline passes.
pub async fn run<C: Cluster, O: Operation>(
    cluster: &mut C,
    operation: &mut O,
    options: &RunOptions,
    on_event: &mut dyn FnMut(Event),
) -> Result<Outcome, RunError> {
    let started = Instant::now();
    let deadline = started + options.timeout;
    let nodes = cluster.snapshot().len();
    let mut read_at = Duration::ZERO;
    let mut steps_sent = 0usize;
    let mut slots_moved = 0usize;
    let mut round_no = 0usize;
    let mut last_status: Option<String> = None;
    loop {
        round_no += 1;
        let planning = Instant::now();
        let mut round = operation.round(cluster.snapshot(), read_at);
        tracing::debug!(
            round = round_no,
            ms = planning.elapsed().as_millis() as u64,
            "planned"
        );
        if !round.blockers.is_empty() {
            return Err(RunError::Blocked {
                blockers: round.blockers,
                changed: steps_sent > 0,
            });
        }
        if round.confirm {
            read_at = started.elapsed();
            cluster.read(&Reads::All).await;
            continue;
        }
        if round.status.is_some() && round.status != last_status {
            last_status.clone_from(&round.status);
            on_event(Event::Status(round.status.clone().unwrap_or_default()));
        }
        let failing: Vec<&'static Criterion> =
            round.verdict.failed().map(|c| c.criterion).collect();
        if !round.verdict.criteria.is_empty() {
            on_event(Event::Round {
                round: round_no,
                elapsed: started.elapsed(),
                steps: round.steps.len(),
                passed: round.verdict.criteria.len() - failing.len(),
                total: round.verdict.criteria.len(),
                failing,
                waiting: round.waiting.clone(),
            });
        }
        if round.done || Instant::now() >= deadline {
            return Ok(Outcome {
                converged: round.done,
                rounds: round_no,
                steps_sent,
                slots_moved,
                elapsed: started.elapsed(),
                layout: round.layout,
                verdict: round.verdict,
                snapshot: cluster.snapshot().clone(),
                waiting: round.waiting,
            });
        }
        // Its failures are text, up to one per pair of nodes while they meet; not needed
        // while the round's commands are out.
        round.verdict.criteria.clear();
        if round.steps.is_empty() && !round.moves.is_empty() {
            let moved = move_slots(cluster, &round.moves, options, deadline, on_event).await?;
            slots_moved += moved;
            // A slot counts as moved once every node names its new owner, not when the
            // source and target say so.
            let settle_by = deadline.min(Instant::now() + NEW_OWNERS_SETTLE);
            let agreed = await_new_owners(cluster, &round.moves, settle_by, nodes).await;
            on_event(Event::MovesSettled {
                slots: moved,
                agreed,
            });
            read_at = started.elapsed();
            continue;
        }
        let sending = Instant::now();
        steps_sent += round.steps.len();
        let failed = cluster.execute(&round.steps).await;
        tracing::debug!(
            round = round_no,
            steps = round.steps.len(),
            ms = sending.elapsed().as_millis() as u64,
            "sent"
        );
        for (at, err) in failed {
            let step = &round.steps[at];
            match err.disposition(step.unknown_node_means_done()) {
                Disposition::Fatal => return Err(RunError::Fatal(err)),
                Disposition::AlreadyDone => {}
                Disposition::Retry => on_event(Event::StepDeferred {
                    description: step.describe(),
                    error: err.to_string(),
                }),
            }
        }
        operation.sent(&round.steps, cluster.snapshot(), started.elapsed());
        for action in &round.actions {
            on_event(Event::Acting(action.to_string()));
            act(cluster, action).await?;
        }
        // A short, bounded pause: the servers act on MEET and REPLICATE at their next
        // cluster-cron tick (every 100 ms), and reading sooner only reads the same views.
        let pause = poll_interval(nodes).min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(pause).await;
        read_at = started.elapsed();
        let reading = Instant::now();
        cluster.read(&round.reads).await;
        tracing::debug!(
            round = round_no,
            ms = reading.elapsed().as_millis() as u64,
            "read"
        );
    }
}

/// Uses one verb of the cluster.
async fn act<C: Cluster>(cluster: &C, action: &Action) -> Result<(), RunError> {
    let failed = |error: String| RunError::Action {
        action: action.to_string(),
        error,
    };
    match action {
        Action::Failover { replica, mode } => cluster
            .failover(replica, *mode)
            .await
            .map_err(|e| failed(e.to_string())),
        Action::Restart { node } => cluster.restart(node).await.map_err(failed),
    }
}

/// Runs the round's slot moves (batch by batch, stopping between batches at the deadline);
/// returns the number of slots moved.
async fn move_slots<C: Cluster>(
    cluster: &C,
    moves: &[SlotMove],
    options: &RunOptions,
    deadline: Instant,
    on_event: &mut dyn FnMut(Event),
) -> Result<usize, RunError> {
    on_event(Event::MovesStarted {
        slots: moves.iter().map(|m| m.slots.len()).sum(),
        pairs: moves.len(),
        resumed: moves.iter().any(|m| m.resumed),
    });
    let move_options = MoveOptions {
        replace: options.replace,
        auth: cluster.migrate_auth(),
        deadline: Some(deadline),
    };
    let supported = MoveEngine::for_nodes(cluster.snapshot());
    let engine = options.engine.unwrap_or(supported);
    if engine == MoveEngine::Atomic && supported != MoveEngine::Atomic {
        return Err(RunError::Move(MoveError::AtomicUnsupported));
    }
    let done = cluster
        .move_slots(engine, moves, &move_options, &mut |progress| {
            on_event(Event::Moving(progress.clone()));
        })
        .await?;
    Ok(done.slots_done)
}

/// Reads every node until each of the spec's nodes names the target of every move as the
/// owner of the slots it moved, or `deadline` passes; whether they agree.
async fn await_new_owners<C: Cluster>(
    cluster: &mut C,
    moves: &[SlotMove],
    deadline: Instant,
    nodes: usize,
) -> bool {
    loop {
        cluster.read(&Reads::All).await;
        let snapshot = cluster.snapshot();
        // The spec's nodes: a member on its way out may already be forgotten, or reset.
        let agreed = snapshot.spec_nodes().filter_map(|n| n.view()).all(|view| {
            moves.iter().all(|m| {
                let Some(target) = snapshot.get(&m.target).and_then(|r| r.id()) else {
                    return false;
                };
                let owner = if view.id == target {
                    Some(view.myself())
                } else {
                    view.knows(&target)
                };
                owner.is_some_and(|e| e.slots.intersection(&m.slots) == m.slots)
            })
        });
        if agreed || Instant::now() >= deadline {
            return agreed;
        }
        tokio::time::sleep(poll_interval(nodes)).await;
    }
}
