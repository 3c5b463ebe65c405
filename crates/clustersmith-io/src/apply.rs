//! The reconcile loop: observe → plan → act → re-observe, until the plan is empty and every
//! verification criterion passes, or the deadline passes.
//!
//! # Guarantees
//! - Nothing is sent before the first observation has shown every node reachable and no
//!   blocker (foreign members, keys on a non-member, conflicting slots).
//! - Every step is idempotent (see `clustersmith_core::plan::Step`), so the loop is safe to
//!   interrupt at any point and to run again.
//! - The loop waits by observing, never by fixed sleeps beyond one short poll interval, and
//!   never past the deadline.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash as _, Hasher as _};
use std::time::{Duration, Instant};

use clustersmith_core::model::NodeId;
use clustersmith_core::observation::{InventoryNode, Observation};
use clustersmith_core::plan::{
    Acceptance, Blocker, Gate, Layout, MeetPurpose, MoveEngine, Plan, SlotMove, Step, Unlisted,
    ban_text, plan, unlisted_members,
};
use clustersmith_core::spec::ClusterSpec;
use clustersmith_core::verify::{Verdict, verify};

use crate::error::{Disposition, NodeError};
use crate::migrate::{MigrateAuth, MoveError, MoveOptions, MoveProgress};
use crate::session::{Observed, Session};

/// What the reconcile loop needs from the cluster it drives: the expected nodes, fresh
/// observations, and the commands and slot moves it sends. [`Session`] drives real servers;
/// the tests drive the same loop over a simulated cluster. The loop itself holds no I/O.
#[allow(
    async_fn_in_trait,
    reason = "the loop runs on one task; no Send bound is needed"
)]
pub trait Cluster {
    /// The expected nodes: spec nodes first, then leaving members.
    fn inventory(&self) -> &[InventoryNode];
    /// The id each node had when last seen (kept while it is unreachable).
    fn known_ids(&self) -> &[Option<NodeId>];
    /// How many of the inventory's nodes are spec nodes.
    fn spec_len(&self) -> usize;
    /// Reads the nodes marked in `which`, keeping `previous`'s views of the others (every node
    /// when there is no previous observation); with each unread node's error.
    async fn observe(&mut self, previous: Option<Observation>, which: &[bool]) -> Observed;
    /// Sends steps (phase 0 on every node before any of phase 1); returns the steps that
    /// failed, by position in `steps`, in order.
    async fn execute(&self, steps: &[Step]) -> Vec<(usize, NodeError)>;
    /// Moves slots with their keys.
    async fn move_slots(
        &self,
        engine: MoveEngine,
        moves: &[SlotMove],
        observation: &Observation,
        options: &MoveOptions,
        progress: &mut dyn FnMut(&MoveProgress),
    ) -> Result<MoveProgress, MoveError>;
    /// Other clients named with `prefix` (another apply at work), after naming our own `name`.
    async fn others_named(&self, name: &str, prefix: &str) -> Vec<(String, String)>;
    /// Adds members to remove, reached where their peers list them.
    fn add_leaving(&mut self, found: &[Unlisted]) -> Result<(), NodeError>;
    /// The credentials `MIGRATE` presents to a target.
    fn migrate_auth(&self) -> MigrateAuth;
}

/// A planner: from the spec and one observation to the next round's plan. Formation and
/// resharding are [`plan`]; a new operation is a new planner driven by the same loop.
pub type Planner = fn(&ClusterSpec, &[InventoryNode], &Observation, &[Option<NodeId>]) -> Plan;

/// Progress reported while the loop runs.
#[derive(Clone, Debug)]
pub enum ApplyEvent {
    /// A round planned `steps` commands; `failing` names the criteria not yet met.
    Round {
        round: usize,
        elapsed: Duration,
        steps: usize,
        failing: Vec<&'static str>,
        passed: usize,
        total: usize,
        /// What the next steps wait for, in the operator's words.
        waiting: Vec<String>,
    },
    /// A step failed in a way that a later round may fix.
    StepDeferred { description: String, error: String },
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
pub struct ApplyOutcome {
    pub converged: bool,
    pub rounds: usize,
    pub steps_sent: usize,
    /// Slots moved with their keys (each several commands, not counted in `steps_sent`).
    pub slots_moved: usize,
    pub elapsed: Duration,
    pub layout: Layout,
    pub verdict: Verdict,
    pub observation: Observation,
    pub waiting: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Some nodes could not be observed before anything was changed.
    #[error("{} node(s) could not be checked; nothing was changed", .0.len())]
    Preflight(Vec<NodeError>),
    /// The live state holds something apply must not change.
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
    /// Another `apply` is at work on the same cluster (its named connection is listed by a
    /// node): two runs with different specs would move slots against each other.
    #[error("another clustersmith apply is at work on this cluster; nothing was changed")]
    Concurrent(Vec<(String, String)>),
}

/// Connection name prefix of a running `apply`, seen by the others in `CLIENT LIST`.
pub const APPLY_CLIENT_PREFIX: &str = "clustersmith-apply:";

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

/// Shortest time between a refresh MEET of a pair and the start of an observation that may
/// ask for it again, while neither node changed: a push takes effect within about one
/// cluster-cron tick (100 ms), and an observation that began sooner cannot show it yet;
/// repeating it only adds load. Longer at larger N, where saturated servers tick late.
fn refresh_interval(nodes: usize) -> Duration {
    Duration::from_millis(300 + 5 * nodes as u64)
}

/// Checks every spec node once, before any change: reachable, authenticated,
/// cluster-enabled. With `remove_unlisted`, the members the spec does not name join the
/// session as leaving nodes; one that does not answer is left to the planner (which refuses
/// only if it still owns slots).
pub async fn preflight<C: Cluster>(
    cluster: &mut C,
    remove_unlisted: bool,
) -> Result<Observation, ApplyError> {
    let all = vec![true; cluster.inventory().len()];
    let observed = cluster.observe(None, &all).await;
    let errors: Vec<NodeError> = observed.errors.into_iter().flatten().collect();
    if !errors.is_empty() {
        return Err(ApplyError::Preflight(errors));
    }
    if !remove_unlisted {
        return Ok(observed.observation);
    }
    let found = unlisted_members(
        cluster.inventory(),
        &observed.observation,
        cluster.known_ids(),
    );
    if found.is_empty() {
        return Ok(observed.observation);
    }
    cluster
        .add_leaving(&found)
        .map_err(|e| ApplyError::Preflight(vec![e]))?;
    let all = vec![true; cluster.inventory().len()];
    let observed = cluster.observe(None, &all).await;
    let errors: Vec<NodeError> = observed
        .errors
        .into_iter()
        .take(cluster.spec_len())
        .flatten()
        .collect();
    if errors.is_empty() {
        Ok(observed.observation)
    } else {
        Err(ApplyError::Preflight(errors))
    }
}

/// Plans once against live state, for `clustersmith plan`.
pub async fn plan_once(
    session: &mut Session,
    spec: &ClusterSpec,
    remove_unlisted: bool,
) -> Result<(Plan, Observation), ApplyError> {
    let observation = preflight(session, remove_unlisted).await?;
    let planned = plan(spec, &session.inventory, &observation, &session.known_ids);
    Ok((planned, observation))
}

/// Forms and reshapes: [`apply_with`] the formation-and-resharding planner.
pub async fn apply<C: Cluster>(
    cluster: &mut C,
    spec: &ClusterSpec,
    options: &ApplyOptions,
    on_event: &mut dyn FnMut(ApplyEvent),
) -> Result<ApplyOutcome, ApplyError> {
    apply_with(cluster, spec, plan, options, on_event).await
}

/// The reconcile loop, driving `cluster` with `planner`'s plans.
pub async fn apply_with<C: Cluster>(
    cluster: &mut C,
    spec: &ClusterSpec,
    planner: Planner,
    options: &ApplyOptions,
    on_event: &mut dyn FnMut(ApplyEvent),
) -> Result<ApplyOutcome, ApplyError> {
    let started = Instant::now();
    let deadline = started + options.timeout;
    let mut observed_at = Instant::now();
    let mut observation = preflight(cluster, options.remove_unlisted).await?;
    let spec_len = cluster.spec_len();
    let nodes = cluster.inventory().len();
    // Two runs at once would plan against each other's half-done moves: the second one to
    // look refuses. (Both refuse when they look at the same instant; neither changed anything.)
    let name = format!("{APPLY_CLIENT_PREFIX}{}", std::process::id());
    let others = cluster.others_named(&name, APPLY_CLIENT_PREFIX).await;
    if !others.is_empty() {
        return Err(ApplyError::Concurrent(others));
    }
    // Whether every view in `observation` was read in the last round.
    let mut complete = true;
    // Last push from node to peer, and the pair's states then: a node that changed since (a
    // replica that just attached) is worth pushing again at once.
    let mut last_refresh: BTreeMap<(usize, usize), (u64, Instant)> = BTreeMap::new();
    let interval = refresh_interval(nodes);
    let mut steps_sent = 0usize;
    let mut slots_moved = 0usize;
    let mut round = 0usize;
    // When the views first showed two owners of a slot, while they still do.
    let mut conflict_since: Option<Instant> = None;
    // Whether the peers keep each node as a member: slots move to a node only once they do.
    let mut acceptance = Acceptance::default();
    // Ids this run sent CLUSTER FORGET for: their disappearance from the views is expected.
    let mut forgotten: BTreeSet<NodeId> = BTreeSet::new();
    acceptance.observe(started.elapsed(), &observation, &forgotten);
    let labels: Vec<String> = cluster
        .inventory()
        .iter()
        .map(|n| n.label.clone())
        .collect();
    loop {
        round += 1;
        let planning = Instant::now();
        let mut planned = planner(spec, cluster.inventory(), &observation, cluster.known_ids());
        tracing::debug!(round, ms = planning.elapsed().as_millis() as u64, "planned");
        if !planned.blockers.is_empty() {
            // Right after a hand-over (a move another run, or the servers themselves, just
            // finished) two nodes may claim a slot until the new owner's bumped epoch reaches
            // the old one, and a leaving source may still hold keys the server is deleting.
            // Both settle within a tick or two: watched, not refused, for a short while.
            let first_seen = *conflict_since.get_or_insert_with(Instant::now);
            let only_conflicts = planned.blockers.iter().all(|b| {
                matches!(
                    b,
                    Blocker::SlotConflict { .. } | Blocker::LeavingHoldsKeys { .. }
                )
            });
            if only_conflicts && first_seen.elapsed() < SLOT_CONFLICT_SETTLE {
                tokio::time::sleep(poll_interval(nodes)).await;
                observation = cluster.observe(None, &vec![true; nodes]).await.observation;
                continue;
            }
            return Err(ApplyError::Blocked {
                blockers: planned.blockers,
                changed: steps_sent > 0,
            });
        }
        conflict_since = None;
        let layout = planned
            .layout
            .take()
            .expect("a plan without blockers has a layout");
        let verdict = verify(
            &layout,
            &cluster.inventory()[..spec_len],
            &observation,
            &cluster.known_ids()[..spec_len],
        );
        let converged = planned.steps.is_empty() && planned.moves.is_empty() && verdict.passed();
        if converged && !complete {
            // Some views were carried over from earlier rounds: confirm on all of them
            // before saying so.
            observed_at = Instant::now();
            observation = cluster.observe(None, &vec![true; nodes]).await.observation;
            complete = true;
            continue;
        }
        let now = Instant::now();
        if !planned.moves.is_empty() && planned.steps.is_empty() && !complete {
            // Slots move on what every node says now, never on a view carried over from an
            // earlier round (a peer may have dropped the target since).
            observed_at = Instant::now();
            observation = cluster.observe(None, &vec![true; nodes]).await.observation;
            acceptance.observe(started.elapsed(), &observation, &forgotten);
            complete = true;
            continue;
        }
        let mut waiting = std::mem::take(&mut planned.waiting);
        for (id, ends) in acceptance.banned(started.elapsed()) {
            let node = observation.label_of(id, cluster.inventory());
            waiting.push(format!("`{node}` joins once {}", ban_text(ends)));
        }
        planned
            .moves
            .retain(|m| match acceptance.gate(&m.target, started.elapsed()) {
                Gate::Open => true,
                Gate::Wait(why) => {
                    let target = observation.label_of(&m.target, cluster.inventory());
                    let line = format!("slots move to `{target}` {why}");
                    if !waiting.contains(&line) {
                        waiting.push(line);
                    }
                    false
                }
            });
        // Filtered in place: at 300 nodes the first round's steps are 45 000 MEETs.
        let mut steps = std::mem::take(&mut planned.steps);
        steps.retain(|step| match step {
            Step::Meet {
                node,
                peer,
                purpose: MeetPurpose::Refresh | MeetPurpose::Readdress,
                ..
            } => last_refresh.get(&(*node, *peer)).is_none_or(|(state, at)| {
                *state != pair_state(&observation, *node, *peer)
                    || observed_at.duration_since(*at) >= interval
            }),
            // A node its peers keep dropping (the forget ban) is introduced again at the
            // refresh pace, not every round: each MEET costs the peer a handshake.
            Step::Meet {
                node,
                peer,
                purpose: MeetPurpose::Introduce,
                ..
            } if acceptance.was_dropped(&observation, *node, *peer) => last_refresh
                .get(&(*node, *peer))
                .is_none_or(|(_, at)| observed_at.duration_since(*at) >= INTRODUCE_DROPPED_EVERY),
            _ => true,
        });
        let failing: Vec<&'static str> = verdict.failed().map(|c| c.id).collect();
        let to_read = nodes_to_read(&verdict, &steps, nodes);
        on_event(ApplyEvent::Round {
            round,
            elapsed: started.elapsed(),
            steps: steps.len(),
            passed: verdict.criteria.len() - failing.len(),
            total: verdict.criteria.len(),
            failing,
            waiting: waiting.clone(),
        });
        if converged || now >= deadline {
            return Ok(ApplyOutcome {
                converged,
                rounds: round,
                steps_sent,
                slots_moved,
                elapsed: started.elapsed(),
                layout,
                verdict,
                observation,
                waiting,
            });
        }
        // Its failures are text, up to one per pair of nodes while they meet; not needed
        // while the round's commands are out.
        drop(verdict);
        for step in &steps {
            match step {
                Step::Meet { node, peer, .. } => {
                    last_refresh.insert(
                        (*node, *peer),
                        (pair_state(&observation, *node, *peer), now),
                    );
                }
                Step::Forget { id, .. } => {
                    forgotten.insert(*id);
                }
                _ => {}
            }
        }
        if steps.is_empty() && !planned.moves.is_empty() {
            let moved = run_planned_moves(
                cluster,
                &planned.moves,
                &observation,
                options,
                deadline,
                on_event,
            )
            .await?;
            slots_moved += moved;
            // A slot counts as moved once every node names its new owner, not when the
            // source and target say so.
            let settle_by = deadline.min(Instant::now() + NEW_OWNERS_SETTLE);
            let (settled, agreed) =
                await_new_owners(cluster, &planned.moves, settle_by, nodes).await;
            on_event(ApplyEvent::MovesSettled {
                slots: moved,
                agreed,
            });
            observed_at = Instant::now();
            observation = settled;
            acceptance.observe(started.elapsed(), &observation, &forgotten);
            complete = true;
            continue;
        }
        steps_sent += steps.len();
        let sending = Instant::now();
        let failed = cluster.execute(&steps).await;
        tracing::debug!(
            round,
            steps = steps.len(),
            ms = sending.elapsed().as_millis() as u64,
            "sent"
        );
        for (at, err) in failed {
            let step = &steps[at];
            match err.disposition(step.unknown_node_means_done()) {
                Disposition::Fatal => return Err(ApplyError::Fatal(err)),
                Disposition::AlreadyDone => {}
                Disposition::Retry => on_event(ApplyEvent::StepDeferred {
                    description: step.describe(&labels),
                    error: err.to_string(),
                }),
            }
        }
        // A short, bounded pause: the servers act on MEET and REPLICATE at their next
        // cluster-cron tick (every 100 ms), and observing sooner only reads the same views.
        let pause = poll_interval(nodes).min(deadline.saturating_duration_since(Instant::now()));
        tokio::time::sleep(pause).await;
        observed_at = Instant::now();
        complete = to_read.iter().all(|read| *read);
        let previous = (!complete).then_some(observation);
        observation = cluster.observe(previous, &to_read).await.observation;
        acceptance.observe(started.elapsed(), &observation, &forgotten);
        tracing::debug!(
            round,
            nodes = to_read.iter().filter(|read| **read).count(),
            ms = observed_at.elapsed().as_millis() as u64,
            "observed"
        );
    }
}

/// Runs the plan's slot moves (batch by batch, stopping between batches at the deadline);
/// returns the number of slots moved.
async fn run_planned_moves<C: Cluster>(
    cluster: &C,
    moves: &[SlotMove],
    observation: &Observation,
    options: &ApplyOptions,
    deadline: Instant,
    on_event: &mut dyn FnMut(ApplyEvent),
) -> Result<usize, ApplyError> {
    on_event(ApplyEvent::MovesStarted {
        slots: moves.iter().map(|m| m.slots.len()).sum(),
        pairs: moves.len(),
        resumed: moves.iter().any(|m| m.resumed),
    });
    let move_options = MoveOptions {
        replace: options.replace,
        auth: cluster.migrate_auth(),
        deadline: Some(deadline),
    };
    let supported = MoveEngine::for_nodes(observation);
    let engine = options.engine.unwrap_or(supported);
    if engine == MoveEngine::Atomic && supported != MoveEngine::Atomic {
        return Err(ApplyError::Move(MoveError::AtomicUnsupported));
    }
    let done = cluster
        .move_slots(engine, moves, observation, &move_options, &mut |progress| {
            on_event(ApplyEvent::Moving(progress.clone()));
        })
        .await?;
    Ok(done.slots_done)
}

/// Observes every node until each of the spec's nodes names the target of every move as the owner of the slots
/// it moved, or the deadline passes; returns the last observation and whether they agree.
async fn await_new_owners<C: Cluster>(
    cluster: &mut C,
    moves: &[SlotMove],
    deadline: Instant,
    nodes: usize,
) -> (Observation, bool) {
    loop {
        let observation = cluster.observe(None, &vec![true; nodes]).await.observation;
        // The spec's nodes: a member on its way out may already be forgotten, or reset.
        let spec_views = observation
            .nodes
            .iter()
            .zip(cluster.inventory())
            .filter(|(_, node)| !node.leaving)
            .filter_map(|(state, _)| state.view());
        let agreed = spec_views.into_iter().all(|view| {
            moves.iter().all(|m| {
                let owner = if view.id == m.target {
                    Some(view.myself())
                } else {
                    view.knows(&m.target)
                };
                owner.is_some_and(|e| e.slots.intersection(&m.slots) == m.slots)
            })
        });
        if agreed || Instant::now() >= deadline {
            return (observation, agreed);
        }
        tokio::time::sleep(poll_interval(nodes)).await;
    }
}

/// How long every node is given to name the new owners after a batch of moves, before the
/// loop goes on (and reports what still disagrees): the servers spread a hand-over within a
/// few ticks; a node that does not answer meanwhile is the loop's to report.
const NEW_OWNERS_SETTLE: Duration = Duration::from_secs(10);

/// How often a node its peers keep dropping is introduced to them again.
const INTRODUCE_DROPPED_EVERY: Duration = Duration::from_secs(1);

/// The nodes worth reading next round: those failing or unchecked on any criterion, and
/// both ends of every step just sent. The others' views were right and nothing touched them;
/// a full read confirms everything before `apply` calls the cluster converged.
fn nodes_to_read(verdict: &Verdict, steps: &[Step], nodes: usize) -> Vec<bool> {
    let mut read = vec![false; nodes];
    // A warning-only criterion (balance) is not something apply waits for.
    for criterion in verdict.criteria.iter().filter(|c| !c.is_warning_only()) {
        let failing = criterion.failures.iter().map(|f| f.node);
        for idx in failing.chain(criterion.unchecked.iter().copied()) {
            read[idx] = true;
        }
    }
    for step in steps {
        read[step.node()] = true;
        match step {
            Step::Meet { peer, .. } => read[*peer] = true,
            Step::Replicate { primary, .. } => read[*primary] = true,
            Step::SetConfigEpoch { .. }
            | Step::AddSlots { .. }
            | Step::Forget { .. }
            | Step::StableSlot { .. }
            | Step::ResetRemoved { .. } => {}
        }
    }
    read
}

/// What a push of the pair carries: both nodes' own role, primary and slots.
fn pair_state(observation: &Observation, a: usize, b: usize) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    for idx in [a.min(b), a.max(b)] {
        if let Some(view) = observation.view(idx) {
            let me = view.myself();
            (me.is_replica(), &me.primary_id, &me.slots).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// How long two claims on one slot are watched before `apply` refuses: a hand-over settles
/// in a cluster-cron tick or two; a real conflict does not settle at all.
const SLOT_CONFLICT_SETTLE: Duration = Duration::from_secs(3);

/// Longer at larger N, where one observation round itself costs more.
fn poll_interval(nodes: usize) -> Duration {
    Duration::from_millis(40 + 2 * nodes as u64)
}
