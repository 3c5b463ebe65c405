//! Forming and reshaping as an [`Operation`]: each round is the planner's plan against the
//! spec, judged by the verify criteria, with what a run learns over its rounds on top:
//! - slots move to a node only once its peers keep it ([`Acceptance`]), and a node they keep
//!   dropping (the forget ban) is introduced again at a slow pace;
//! - a refresh or readdress MEET of a pair is not repeated before the servers can have acted
//!   on the last one, unless either node changed since;
//! - two claims on one slot right after a hand-over are watched for a few seconds before they
//!   are refused;
//! - moves start only on a round in which every node was read.

use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash as _, Hasher as _};
use std::time::Duration;

use crate::model::NodeId;
use crate::operation::{Operation, Reads, Round};
use crate::plan::{Acceptance, Blocker, Gate, MeetPurpose, Step, ban_text, plan};
use crate::snapshot::{NodeKey, NodeRecord, Snapshot};
use crate::spec::ClusterSpec;
use crate::verify::{Verdict, verify};

pub struct Formation {
    spec: ClusterSpec,
    acceptance: Acceptance,
    /// Ids this run sent CLUSTER FORGET for: their disappearance from the views is expected.
    forgotten: BTreeSet<NodeId>,
    /// Last MEET from node to peer, the pair's states then, and when it was sent: a node that
    /// changed since (a replica that just attached) is worth pushing again at once.
    last_meet: HashMap<(NodeKey, NodeKey), (u64, Duration)>,
    /// When the views first showed two owners of a slot, while they still do.
    conflict_since: Option<Duration>,
    /// Whether the snapshot the next round gets was read from every node.
    complete: bool,
}

impl Formation {
    pub fn new(spec: ClusterSpec) -> Formation {
        Formation {
            spec,
            acceptance: Acceptance::default(),
            forgotten: BTreeSet::new(),
            last_meet: HashMap::new(),
            conflict_since: None,
            complete: true,
        }
    }

    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }
}

/// How long two claims on one slot are watched before the run refuses: a hand-over settles
/// in a cluster-cron tick or two; a real conflict does not settle at all.
pub const SLOT_CONFLICT_SETTLE: Duration = Duration::from_secs(3);

/// How often a node its peers keep dropping is introduced to them again.
const INTRODUCE_DROPPED_EVERY: Duration = Duration::from_secs(1);

/// Shortest time between a refresh MEET of a pair and the start of a read that may ask for it
/// again, while neither node changed: a push takes effect within about one cluster-cron tick
/// (100 ms), and a read that began sooner cannot show it yet; repeating it only adds load.
/// Longer at larger N, where saturated servers tick late.
fn refresh_interval(nodes: usize) -> Duration {
    Duration::from_millis(300 + 5 * nodes as u64)
}

impl Operation for Formation {
    fn round(&mut self, snapshot: &Snapshot, now: Duration) -> Round {
        self.acceptance.observe(now, snapshot, &self.forgotten);
        let complete = std::mem::replace(&mut self.complete, true);
        let mut planned = plan(&self.spec, snapshot);
        if !planned.blockers.is_empty() {
            return self.blocked(planned.blockers, now);
        }
        self.conflict_since = None;
        let layout = planned
            .layout
            .take()
            .expect("a plan without blockers has a layout");
        let verdict = verify(&layout, snapshot);
        let done = planned.steps.is_empty() && planned.moves.is_empty() && verdict.passed();
        // Done is said on what every node says now, and slots move on it, never on a view
        // carried over from an earlier round (a peer may have dropped the target since).
        let confirm =
            !complete && (done || (planned.steps.is_empty() && !planned.moves.is_empty()));
        let mut waiting = std::mem::take(&mut planned.waiting);
        for (id, ends) in self.acceptance.banned(now) {
            waiting.push(format!(
                "`{}` joins once {}",
                snapshot.label_of(id),
                ban_text(ends)
            ));
        }
        let mut moves = std::mem::take(&mut planned.moves);
        moves.retain(|m| {
            let gate = match snapshot.get(&m.target).and_then(NodeRecord::id) {
                Some(id) => self.acceptance.gate(&id, now),
                None => Gate::Wait("once it answers".to_owned()),
            };
            match gate {
                Gate::Open => true,
                Gate::Wait(why) => {
                    let line = format!("slots move to `{}` {why}", m.target);
                    if !waiting.contains(&line) {
                        waiting.push(line);
                    }
                    false
                }
            }
        });
        let mut steps = std::mem::take(&mut planned.steps);
        self.throttle_meets(&mut steps, snapshot, now);
        let reads = to_read(&verdict, &steps, !moves.is_empty());
        if confirm {
            steps.clear();
            moves.clear();
        }
        Round {
            steps,
            moves,
            actions: Vec::new(),
            status: None,
            blockers: Vec::new(),
            waiting,
            verdict,
            layout: Some(layout),
            done: done && !confirm,
            confirm,
            reads,
        }
    }

    fn sent(&mut self, steps: &[Step], snapshot: &Snapshot, now: Duration) {
        for step in steps {
            match step {
                Step::Meet { node, peer, .. } => {
                    let state = pair_state(snapshot, node, peer);
                    self.last_meet
                        .insert((node.clone(), peer.clone()), (state, now));
                }
                Step::Forget { id, .. } => {
                    self.forgotten.insert(*id);
                }
                _ => {}
            }
        }
        // Only some nodes are read before the next round.
        self.complete = false;
    }
}

impl Formation {
    /// Right after a hand-over (a move another run, or the servers themselves, just finished)
    /// two nodes may claim a slot until the new owner's bumped epoch reaches the old one, and
    /// a leaving source may still hold keys the server is deleting. Both settle within a tick
    /// or two: watched, not refused, for a short while.
    fn blocked(&mut self, blockers: Vec<Blocker>, now: Duration) -> Round {
        let first_seen = *self.conflict_since.get_or_insert(now);
        let only_conflicts = blockers.iter().all(|b| {
            matches!(
                b,
                Blocker::SlotConflict { .. } | Blocker::LeavingHoldsKeys { .. }
            )
        });
        let settling = only_conflicts && now.saturating_sub(first_seen) < SLOT_CONFLICT_SETTLE;
        Round {
            steps: Vec::new(),
            moves: Vec::new(),
            actions: Vec::new(),
            status: None,
            waiting: if settling {
                blockers.iter().map(|b| format!("settling: {b}")).collect()
            } else {
                Vec::new()
            },
            blockers: if settling { Vec::new() } else { blockers },
            verdict: Verdict {
                criteria: Vec::new(),
            },
            layout: None,
            done: false,
            confirm: false,
            reads: Reads::All,
        }
    }

    /// Drops refresh and readdress MEETs of a pair sent less than the refresh interval ago
    /// (while neither node changed), and introductions of a node its peers keep dropping
    /// sent less than [`INTRODUCE_DROPPED_EVERY`] ago: each MEET costs a handshake. Filtered
    /// in place: at 300 nodes the first round's steps are 45 000 MEETs.
    fn throttle_meets(&self, steps: &mut Vec<Step>, snapshot: &Snapshot, now: Duration) {
        let interval = refresh_interval(snapshot.len());
        steps.retain(|step| {
            let Step::Meet {
                node,
                peer,
                purpose,
                ..
            } = step
            else {
                return true;
            };
            let last = self.last_meet.get(&(node.clone(), peer.clone()));
            match purpose {
                MeetPurpose::Refresh | MeetPurpose::Readdress => last.is_none_or(|(state, at)| {
                    *state != pair_state(snapshot, node, peer)
                        || now.saturating_sub(*at) >= interval
                }),
                MeetPurpose::Introduce if self.acceptance.was_dropped(snapshot, node, peer) => {
                    last.is_none_or(|(_, at)| now.saturating_sub(*at) >= INTRODUCE_DROPPED_EVERY)
                }
                MeetPurpose::Introduce => true,
            }
        });
    }
}

/// The nodes worth reading next round: those failing or unchecked on any criterion that is
/// not a warning only (balance is not waited for), and both ends of every step about to be
/// sent; every node when slots are about to move (every primary's slots change).
fn to_read(verdict: &Verdict, steps: &[Step], moving: bool) -> Reads {
    if moving {
        return Reads::All;
    }
    let mut read: BTreeSet<NodeKey> = BTreeSet::new();
    for criterion in verdict
        .criteria
        .iter()
        .filter(|c| !c.criterion.warning_only)
    {
        read.extend(criterion.nodes().cloned());
    }
    for step in steps {
        read.insert(step.node().clone());
        read.extend(step.counterpart().cloned());
    }
    Reads::Some(read)
}

/// What a push of the pair carries: both nodes' own role, primary and slots.
fn pair_state(snapshot: &Snapshot, a: &NodeKey, b: &NodeKey) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    for key in [first, second] {
        if let Some(view) = snapshot.view(key) {
            let me = view.myself();
            (me.is_replica(), &me.primary_id, &me.slots).hash(&mut hasher);
        }
    }
    hasher.finish()
}
