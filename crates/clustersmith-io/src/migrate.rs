//! The migration engine: moves slots with their keys from one primary to another, as the
//! cluster protocol requires, batched and pipelined.
//!
//! For a batch of slots of one (source, target) pair:
//! 1. `CLUSTER SETSLOT <slot> IMPORTING <source>` on the target, then `MIGRATING <target>` on
//!    the source (in this order, so that an ASK from the source always finds the target
//!    ready);
//! 2. `CLUSTER GETKEYSINSLOT` on the source for every slot at once, then one `MIGRATE … KEYS`
//!    per slot with up to [`KEYS_PER_MIGRATE`] keys, pipelined; repeated until no slot of the
//!    batch has a key left on the source (a write that arrives meanwhile lands on the source
//!    only for a key still there, so this ends);
//! 3. `CLUSTER SETSLOT <slot> NODE <target>` on the target first (it bumps its epoch and
//!    claims the slot), then on the source, then on every other primary.
//!
//! # Guarantees
//! - No key is ever deleted except by `MIGRATE` itself, which removes it from the source only
//!   once the target has stored it. `REPLACE` is sent only when the operator asked for it; a
//!   key already on the target (`BUSYKEY`) stops the run, naming the slot.
//! - Every command is safe to repeat, so a run killed at any point and started again finishes
//!   the slots left open from live state alone: `IMPORTING` on a target that already owns the
//!   slot, or `MIGRATING` on a source that no longer does, is a step already done.
//! - Every pair moves at once, in [`LANES_PER_PAIR`] lanes each (at most [`MAX_LANES`] in
//!   all); within a lane, batches run in slot order. Pairs may share a target: `MIGRATE`
//!   blocks its source while the target stores the keys, so one source at a time leaves the
//!   target mostly idle, while a target serves the RESTOREs of several sources in turn.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clustersmith_core::model::{NodeId, SlotSet};
use clustersmith_core::plan::{MoveEngine, SlotMove};
use clustersmith_core::snapshot::NodeKey;
use futures::StreamExt as _;
use futures::future::join_all;

use crate::conn::{NodeHandle, value_text};
use crate::error::{NodeError, SlotStepOutcome};

/// Slots whose state changes travel in one pipeline: large enough that round trips stop
/// mattering, small enough that a kill leaves few slots open.
const SLOTS_PER_BATCH: usize = 256;
/// Keys per `MIGRATE` call (redis-cli's default is 10).
pub const KEYS_PER_MIGRATE: usize = 1000;
/// Keys migrated per pipeline at most, so that one reply stays well within the response
/// timeout even for large values.
const KEYS_PER_PIPELINE: usize = 20_000;
/// Lanes per (source, target) pair: two keep the source busy while the other lane waits on
/// a round trip.
const LANES_PER_PAIR: usize = 2;
/// Lanes running at once, over all pairs.
const MAX_LANES: usize = 8;
/// `MIGRATE`'s own timeout: the longest the source waits on the target without progress
/// (an idle time, not a total: a large batch is not cut short while it moves).
const MIGRATE_IDLE_MS: u64 = 10_000;
/// Rounds of GETKEYSINSLOT + MIGRATE for one batch before giving up: a slot that keeps
/// receiving keys on the source would otherwise never end.
const MAX_KEY_ROUNDS: usize = 10_000;

/// A node the engine talks to: its handle, its id, and where the others reach it.
#[derive(Clone)]
pub struct MoveNode {
    pub key: NodeKey,
    pub id: NodeId,
    pub handle: Arc<NodeHandle>,
    /// The address `MIGRATE` on another node is given to reach this one.
    pub ip: std::net::IpAddr,
    pub port: u16,
}

/// Credentials `MIGRATE` presents to the target (the run's own).
#[derive(Clone, Default)]
pub struct MigrateAuth {
    pub user: Option<String>,
    pub password: Option<crate::conn::Secret>,
}

pub struct MoveOptions {
    /// Send `MIGRATE … REPLACE`: overwrite keys that already exist on the target.
    pub replace: bool,
    pub auth: MigrateAuth,
    /// No new batch starts after this instant; the batch in flight always finishes, so no
    /// slot is left open by the deadline.
    pub deadline: Option<Instant>,
}

/// Progress of a run of moves.
#[derive(Clone, Debug)]
pub struct MoveProgress {
    pub slots_done: usize,
    pub slots_total: usize,
    pub keys_moved: u64,
    pub elapsed: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("slot {slot} was not moved from {source_label} to {target_label}: {error}")]
    Slot {
        slot: u16,
        source_label: String,
        target_label: String,
        /// What state the slot is left in, in the operator's terms.
        state: &'static str,
        error: Box<NodeError>,
    },
    #[error("a node of a move is unknown to this run: {0}")]
    UnknownNode(String),
    /// An atomic slot migration job ended in another state than `success`; the slots stay
    /// with the source (the server hands them over only on success).
    #[error("the slot migration of {slots} from {source_label} to {target_label} ended {state}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Job {
        slots: String,
        source_label: String,
        target_label: String,
        state: String,
        message: String,
    },
    #[error("{0}")]
    Node(Box<NodeError>),
    #[error(
        "atomic slot migration was asked for, but not every node supports it (Valkey 9 or later)"
    )]
    AtomicUnsupported,
}

/// The nodes of a run, by id.
struct ById<'a>(BTreeMap<NodeId, &'a MoveNode>);

impl<'a> ById<'a> {
    fn new(nodes: &'a [MoveNode]) -> ById<'a> {
        ById(nodes.iter().map(|n| (n.id, n)).collect())
    }

    /// The node, or the error for a move that names a node this run does not know.
    fn get(&self, id: &NodeId) -> Result<&'a MoveNode, MoveError> {
        self.0
            .get(id)
            .copied()
            .ok_or_else(|| MoveError::UnknownNode(id.short().to_owned()))
    }
}

/// A move between two ids: what the commands name.
struct IdMove {
    source: NodeId,
    target: NodeId,
    slots: SlotSet,
}

/// Runs the moves to the end with the given engine, calling `progress` as slots move.
pub async fn run_moves(
    engine: MoveEngine,
    moves: &[SlotMove],
    nodes: &[MoveNode],
    primaries: &[NodeId],
    options: &MoveOptions,
    progress: &mut dyn FnMut(&MoveProgress),
) -> Result<MoveProgress, MoveError> {
    let id_of = |key: &NodeKey| {
        nodes
            .iter()
            .find(|n| &n.key == key)
            .map(|n| n.id)
            .or_else(|| key.member_id())
            .ok_or_else(|| MoveError::UnknownNode(key.to_string()))
    };
    let moves = moves
        .iter()
        .map(|m| {
            Ok(IdMove {
                source: id_of(&m.source)?,
                target: id_of(&m.target)?,
                slots: m.slots.clone(),
            })
        })
        .collect::<Result<Vec<_>, MoveError>>()?;
    match engine {
        MoveEngine::Classic => run_classic(&moves, nodes, primaries, options, progress).await,
        MoveEngine::Atomic => run_atomic(&moves, nodes, options, progress).await,
    }
}

async fn run_classic(
    moves: &[IdMove],
    nodes: &[MoveNode],
    primaries: &[NodeId],
    options: &MoveOptions,
    progress: &mut dyn FnMut(&MoveProgress),
) -> Result<MoveProgress, MoveError> {
    let started = Instant::now();
    let by_id = ById::new(nodes);
    // Each pair's slots in batches, dealt round-robin to its lanes: a lane runs its batches
    // one after the other, and a second lane of the same pair opens its next batch while the
    // first one's MIGRATE calls run, so the source never waits on a round trip of ours.
    let mut lanes: Vec<(&MoveNode, &MoveNode, Vec<SlotSet>)> = Vec::new();
    for m in moves {
        let (source, target) = (by_id.get(&m.source)?, by_id.get(&m.target)?);
        let first = lanes.len();
        let slots: Vec<u16> = m.slots.iter().collect();
        for (n, chunk) in slots.chunks(SLOTS_PER_BATCH).enumerate() {
            let mut set = SlotSet::new();
            for slot in chunk {
                set.insert(*slot);
            }
            let lane = first + n % LANES_PER_PAIR;
            if lane == lanes.len() {
                lanes.push((source, target, Vec::new()));
            }
            lanes[lane].2.push(set);
        }
    }
    let others: Vec<&MoveNode> = primaries
        .iter()
        .filter_map(|id| by_id.get(id).ok())
        .collect();
    let mut state = MoveProgress {
        slots_done: 0,
        slots_total: moves.iter().map(|m| m.slots.len()).sum(),
        keys_moved: 0,
        elapsed: Duration::ZERO,
    };
    let others = &others;
    let streams = lanes.into_iter().map(|(source, target, batches)| {
        futures::stream::iter(batches)
            .take_while(move |_| {
                futures::future::ready(options.deadline.is_none_or(|d| Instant::now() < d))
            })
            .then(move |slots| async move {
                move_batch(source, target, &slots, others, options).await
            })
            .boxed_local()
    });
    // At most MAX_LANES lanes run at once; the others start as lanes finish.
    let mut waiting: Vec<_> = streams.collect();
    waiting.reverse();
    let mut running = futures::stream::SelectAll::new();
    while running.len() < MAX_LANES {
        let Some(lane) = waiting.pop() else { break };
        running.push(lane);
    }
    loop {
        match running.next().await {
            Some(result) => {
                let (slots, keys) = result?;
                state.slots_done += slots;
                state.keys_moved += keys;
                state.elapsed = started.elapsed();
                progress(&state);
            }
            None => match waiting.pop() {
                Some(lane) => running.push(lane),
                None => break,
            },
        }
        while running.len() < MAX_LANES {
            let Some(lane) = waiting.pop() else { break };
            running.push(lane);
        }
    }
    state.elapsed = started.elapsed();
    Ok(state)
}

/// Moves one batch of slots; returns (slots done, keys moved).
async fn move_batch(
    source: &MoveNode,
    target: &MoveNode,
    slots: &SlotSet,
    others: &[&MoveNode],
    options: &MoveOptions,
) -> Result<(usize, u64), MoveError> {
    let fail = |slot: u16, state: &'static str, error: NodeError| MoveError::Slot {
        slot,
        source_label: source.handle.label().to_owned(),
        target_label: target.handle.label().to_owned(),
        state,
        error: Box::new(error),
    };
    let list: Vec<u16> = slots.iter().collect();

    // 1. Open the slots: importing on the target, then migrating on the source. A slot the
    // target owns already, or the source no longer owns, was handed over by an earlier run.
    let open = open_slots(
        &target.handle,
        &list,
        "IMPORTING",
        &source.id,
        "open a slot for import",
    )
    .await
    .map_err(|(slot, err)| fail(slot, "unchanged", err))?;
    let mut to_drain = open_slots(
        &source.handle,
        &open,
        "MIGRATING",
        &target.id,
        "open a slot for migration",
    )
    .await
    .map_err(|(slot, err)| fail(slot, "importing on the target only", err))?;
    // Opened on the target while the source no longer owns it, and the target does not
    // either: someone else has it now. Undo the import and leave the slot to the next plan;
    // claiming it for the target would orphan the keys of its real owner.
    let strays: Vec<u16> = open
        .iter()
        .copied()
        .filter(|s| !to_drain.contains(s))
        .collect();
    for (slot, result) in strays
        .iter()
        .zip(setslots(&target.handle, &strays, "STABLE", None, "undo an import").await)
    {
        result.map_err(|err| fail(*slot, "importing on the target only", err))?;
    }

    // 2. Move the keys.
    let mut keys_moved = 0u64;
    for _ in 0..MAX_KEY_ROUNDS {
        if to_drain.is_empty() {
            break;
        }
        let mut pipe = redis::pipe();
        for slot in &to_drain {
            pipe.cmd("CLUSTER")
                .arg("GETKEYSINSLOT")
                .arg(*slot)
                .arg(KEYS_PER_MIGRATE);
        }
        let replies = source
            .handle
            .pipeline("list the keys of a slot", &pipe)
            .await
            .map_err(|e| fail(to_drain[0], "open (migrating/importing)", e))?;
        let mut with_keys: Vec<(u16, Vec<Vec<u8>>)> = Vec::new();
        for (slot, reply) in to_drain.iter().zip(replies) {
            let value = reply.map_err(|e| fail(*slot, "open (migrating/importing)", e))?;
            let keys: Vec<Vec<u8>> = redis::from_redis_value(value).unwrap_or_default();
            if !keys.is_empty() {
                with_keys.push((*slot, keys));
            }
        }
        if with_keys.is_empty() {
            break;
        }
        let mut start = 0;
        while start < with_keys.len() {
            let mut end = start;
            let mut count = 0;
            while end < with_keys.len()
                && (count == 0 || count + with_keys[end].1.len() <= KEYS_PER_PIPELINE)
            {
                count += with_keys[end].1.len();
                end += 1;
            }
            let chunk = &with_keys[start..end];
            let mut pipe = redis::pipe();
            for (_, keys) in chunk {
                pipe.add_command(migrate_command(target, keys, options));
            }
            let replies = source
                .handle
                .pipeline("migrate keys", &pipe)
                .await
                .map_err(|e| fail(chunk[0].0, "open (migrating/importing)", e))?;
            for ((slot, keys), reply) in chunk.iter().zip(replies) {
                match reply {
                    // NOKEY: none of the keys exists any more (expired or deleted in between);
                    // the next listing shows what is left.
                    Ok(redis::Value::SimpleString(status)) if status == "NOKEY" => {}
                    Ok(_) => keys_moved += keys.len() as u64,
                    Err(err) => {
                        return Err(fail(
                            *slot,
                            "open (migrating/importing); its keys are partly on each side, and the next run continues",
                            err,
                        ));
                    }
                }
            }
            start = end;
        }
        to_drain = with_keys.iter().map(|(slot, _)| *slot).collect();
    }

    // 3. Hand the slots over: target, source, then every other primary.
    let closing: Vec<u16> = list
        .iter()
        .copied()
        .filter(|s| !strays.contains(s))
        .collect();
    for (node, op) in [
        (target, "assign a slot to its importer"),
        (source, "assign a slot away from its source"),
    ] {
        let results = setslots(&node.handle, &closing, "NODE", Some(&target.id), op).await;
        for (slot, result) in closing.iter().zip(results) {
            match result.map_err(|e| (e.slot_step_outcome(), e)) {
                Ok(()) | Err((SlotStepOutcome::AlreadyMoved, _)) => {}
                Err((_, err)) => {
                    return Err(fail(
                        *slot,
                        "open (migrating/importing); every key is on the target",
                        err,
                    ));
                }
            }
        }
    }
    let rest = others
        .iter()
        .filter(|n| n.id != source.id && n.id != target.id)
        .map(|n| {
            setslots(
                &n.handle,
                &closing,
                "NODE",
                Some(&target.id),
                "tell a primary the slot's new owner",
            )
        });
    for (node, results) in others
        .iter()
        .filter(|n| n.id != source.id && n.id != target.id)
        .zip(join_all(rest).await)
    {
        // Not needed for correctness (the target's bumped epoch reaches them by gossip):
        // only faster. A failure is said, not fatal.
        if let Some(Err(err)) = results.into_iter().find(Result::is_err) {
            tracing::warn!(node = node.handle.label(), %err, "SETSLOT NODE on a bystander");
        }
    }
    Ok((closing.len(), keys_moved))
}

/// `SETSLOT <slot> IMPORTING|MIGRATING <peer>` for each slot: the slots it took effect on
/// (those another run already handed over are left out), or the first slot that failed.
async fn open_slots(
    handle: &NodeHandle,
    slots: &[u16],
    how: &str,
    peer: &NodeId,
    op: &'static str,
) -> Result<Vec<u16>, (u16, NodeError)> {
    let mut opened = Vec::with_capacity(slots.len());
    for (slot, result) in slots
        .iter()
        .zip(setslots(handle, slots, how, Some(peer), op).await)
    {
        match result.map_err(|e| (e.slot_step_outcome(), e)) {
            Ok(()) => opened.push(*slot),
            Err((SlotStepOutcome::AlreadyMoved, _)) => {}
            Err((_, err)) => return Err((*slot, err)),
        }
    }
    Ok(opened)
}

/// `CLUSTER SETSLOT <slot> <how> [<id>]` for each slot, in one pipeline; one result per slot.
async fn setslots(
    handle: &NodeHandle,
    slots: &[u16],
    how: &str,
    id: Option<&NodeId>,
    op: &'static str,
) -> Vec<Result<(), NodeError>> {
    if slots.is_empty() {
        return Vec::new();
    }
    let mut pipe = redis::pipe();
    for slot in slots {
        let cmd = pipe.cmd("CLUSTER").arg("SETSLOT").arg(*slot).arg(how);
        if let Some(id) = id {
            cmd.arg(id.as_str());
        }
    }
    match handle.pipeline(op, &pipe).await {
        Ok(replies) => replies.into_iter().map(|r| r.map(drop)).collect(),
        Err(err) => slots.iter().map(|_| Err(err.clone())).collect(),
    }
}

/// `MIGRATE host port "" 0 timeout [REPLACE] [AUTH…] KEYS k…`. The password travels to the
/// source server inside the command, never through a process argument or a log.
fn migrate_command(target: &MoveNode, keys: &[Vec<u8>], options: &MoveOptions) -> redis::Cmd {
    let mut cmd = redis::cmd("MIGRATE");
    cmd.arg(target.ip.to_string())
        .arg(target.port)
        .arg("")
        .arg(0)
        .arg(MIGRATE_IDLE_MS);
    if options.replace {
        cmd.arg("REPLACE");
    }
    match (&options.auth.user, &options.auth.password) {
        (Some(user), Some(password)) => {
            cmd.arg("AUTH2").arg(user).arg(password.expose());
        }
        (None, Some(password)) => {
            cmd.arg("AUTH").arg(password.expose());
        }
        _ => {}
    }
    cmd.arg("KEYS");
    for key in keys {
        cmd.arg(key.as_slice());
    }
    cmd
}

/// Keys held by a node in one slot, for `plan`'s estimate.
pub async fn count_keys(handle: &NodeHandle, slots: &SlotSet) -> Result<u64, NodeError> {
    let mut pipe = redis::pipe();
    for slot in slots.iter() {
        pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(slot);
    }
    let replies = handle.pipeline("count the keys of a slot", &pipe).await?;
    let mut total = 0u64;
    for reply in replies {
        let value = reply?;
        total += redis::from_redis_value::<u64>(value).unwrap_or(0);
    }
    Ok(total)
}

/// How often the jobs of an atomic slot migration are polled.
const JOB_POLL: Duration = Duration::from_millis(50);

/// One entry of `CLUSTER GETSLOTMIGRATIONS`.
/// One job of `CLUSTER GETSLOTMIGRATIONS`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Job {
    pub operation: String,
    pub slot_ranges: String,
    pub target_node: String,
    pub state: String,
    pub message: String,
    pub create_time: u64,
}

impl Job {
    pub fn is_active(&self) -> bool {
        !matches!(self.state.as_str(), "success" | "failed" | "cancelled")
    }
}

/// `CLUSTER GETSLOTMIGRATIONS`: a list of flat field/value lists (or maps under RESP3).
pub(crate) async fn jobs(handle: &NodeHandle) -> Result<Vec<Job>, NodeError> {
    let mut cmd = redis::cmd("CLUSTER");
    cmd.arg("GETSLOTMIGRATIONS");
    let value = handle.query("list slot migrations", &cmd).await?;
    let entries: Vec<redis::Value> = redis::from_redis_value(value).unwrap_or_default();
    Ok(entries
        .into_iter()
        .map(|entry| {
            let fields: Vec<(String, String)> = match &entry {
                redis::Value::Map(pairs) => pairs
                    .iter()
                    .filter_map(|(k, v)| Some((value_text(k)?, value_text(v).unwrap_or_default())))
                    .collect(),
                _ => {
                    let flat: Vec<redis::Value> =
                        redis::from_redis_value(entry).unwrap_or_default();
                    flat.chunks(2)
                        .filter_map(|kv| {
                            Some((
                                value_text(&kv[0])?,
                                kv.get(1).and_then(value_text).unwrap_or_default(),
                            ))
                        })
                        .collect()
                }
            };
            let mut job = Job::default();
            for (key, value) in fields {
                match key.as_str() {
                    "operation" => job.operation = value,
                    "slot_ranges" => job.slot_ranges = value,
                    "target_node" => job.target_node = value,
                    "state" => job.state = value,
                    "message" => job.message = value,
                    "create_time" => job.create_time = value.parse().unwrap_or(0),
                    _ => {}
                }
            }
            job
        })
        .collect())
}

/// Atomic slot migration: one `CLUSTER MIGRATESLOTS` per source naming every target, then the
/// sources' jobs are followed until none is active. Jobs a previous run started (and the
/// server kept running after it was killed) are waited for first; the slots they move are then
/// owned by their target, and the next plan starts from there.
async fn run_atomic(
    moves: &[IdMove],
    nodes: &[MoveNode],
    options: &MoveOptions,
    progress: &mut dyn FnMut(&MoveProgress),
) -> Result<MoveProgress, MoveError> {
    let started = Instant::now();
    let by_id = ById::new(nodes);
    let mut per_source: BTreeMap<NodeId, Vec<&IdMove>> = BTreeMap::new();
    for m in moves {
        per_source.entry(m.source).or_default().push(m);
    }
    let mut state = MoveProgress {
        slots_done: 0,
        slots_total: moves.iter().map(|m| m.slots.len()).sum(),
        keys_moved: 0,
        elapsed: Duration::ZERO,
    };
    // Jobs left running by an earlier run: wait for them, then let the planner look again.
    let mut earlier = false;
    for source in per_source.keys() {
        let node = by_id.get(source)?;
        if jobs(&node.handle)
            .await
            .map_err(|e| MoveError::Node(Box::new(e)))?
            .iter()
            .any(|j| j.operation == "EXPORT" && j.is_active())
        {
            earlier = true;
        }
    }
    if earlier {
        wait_for_jobs(&per_source, &by_id, options, None).await?;
        state.elapsed = started.elapsed();
        return Ok(state);
    }
    // Keys to move, counted before: the jobs report slots, not keys.
    let mut keys_per_source: BTreeMap<NodeId, u64> = BTreeMap::new();
    let since = unix_now();
    for (source, group) in &per_source {
        let node = by_id.get(source)?;
        let mut keys = 0;
        for m in group {
            keys += count_keys(&node.handle, &m.slots).await.unwrap_or(0);
        }
        keys_per_source.insert(*source, keys);
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("MIGRATESLOTS");
        for m in group {
            by_id.get(&m.target)?;
            cmd.arg("SLOTSRANGE");
            for range in m.slots.ranges() {
                cmd.arg(range.start).arg(range.end);
            }
            cmd.arg("NODE").arg(m.target.as_str());
        }
        match node
            .handle
            .query("start an atomic slot migration", &cmd)
            .await
        {
            Ok(_) => {}
            // The source no longer serves them: a job of an earlier run finished after the
            // plan's observation. Nothing to start here; the next plan sees the new owners.
            Err(err) if err.slot_step_outcome() == SlotStepOutcome::AlreadyMoved => {
                keys_per_source.insert(*source, 0);
            }
            Err(err) => return Err(MoveError::Node(Box::new(err))),
        }
    }
    let failed = wait_for_jobs(
        &per_source,
        &by_id,
        options,
        Some((since, &mut |done: &[NodeId]| {
            state.slots_done = per_source
                .iter()
                .filter(|(s, _)| done.contains(s))
                .map(|(_, g)| g.iter().map(|m| m.slots.len()).sum::<usize>())
                .sum();
            state.keys_moved = done.iter().filter_map(|s| keys_per_source.get(s)).sum();
            state.elapsed = started.elapsed();
            progress(&state);
        })),
    )
    .await?;
    if let Some(err) = failed {
        return Err(err);
    }
    state.elapsed = started.elapsed();
    Ok(state)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

type DoneCallback<'a> = &'a mut dyn FnMut(&[NodeId]);

/// Polls the sources until none has an active export, or the deadline passes (the jobs then
/// go on in the servers; the next run waits for them). With `ours`, reports the sources done
/// and returns the first job of this run that did not succeed.
async fn wait_for_jobs(
    per_source: &BTreeMap<NodeId, Vec<&IdMove>>,
    by_id: &ById<'_>,
    options: &MoveOptions,
    mut ours: Option<(u64, DoneCallback<'_>)>,
) -> Result<Option<MoveError>, MoveError> {
    let mut reported: Vec<NodeId> = Vec::new();
    loop {
        let mut active = false;
        let mut failed = None;
        let mut done: Vec<NodeId> = Vec::new();
        for source in per_source.keys() {
            let node = by_id.get(source)?;
            let listed = jobs(&node.handle)
                .await
                .map_err(|e| MoveError::Node(Box::new(e)))?;
            let exports: Vec<&Job> = listed.iter().filter(|j| j.operation == "EXPORT").collect();
            if exports.iter().any(|j| j.is_active()) {
                active = true;
                continue;
            }
            done.push(*source);
            if let Some((since, _)) = &ours
                && let Some(bad) = exports
                    .iter()
                    .find(|j| j.create_time >= *since && j.state != "success")
            {
                let target = by_target_label(per_source, source, &bad.target_node, by_id);
                failed.get_or_insert(MoveError::Job {
                    slots: bad.slot_ranges.clone(),
                    source_label: node.handle.label().to_owned(),
                    target_label: target,
                    state: bad.state.clone(),
                    message: bad.message.clone(),
                });
            }
        }
        if let Some((_, report)) = ours.as_mut()
            && done.len() > reported.len()
        {
            report(&done);
            reported.clone_from(&done);
        }
        if !active {
            return Ok(failed);
        }
        if options.deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        tokio::time::sleep(JOB_POLL).await;
    }
}

fn by_target_label(
    per_source: &BTreeMap<NodeId, Vec<&IdMove>>,
    source: &NodeId,
    target: &str,
    by_id: &ById<'_>,
) -> String {
    per_source
        .get(source)
        .into_iter()
        .flatten()
        .find(|m| m.target.as_str() == target)
        .and_then(|m| by_id.get(&m.target).ok())
        .map_or_else(|| target.to_owned(), |n| n.handle.label().to_owned())
}
