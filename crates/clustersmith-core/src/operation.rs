//! What an operation on a live cluster is, for the driver that runs it (the I/O shell's, or
//! the simulator's): from the snapshot it was just given, an operation plans one round — the
//! commands to send, the slots to move, the nodes to read next — and says what it waits for
//! and whether it is done. It keeps its own state between rounds (what it watches, what it has
//! done), so that the driver holds none of an operation's logic.
//!
//! Time comes in as a [`Duration`] since the operation began: the core reads no clock.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::plan::{Blocker, Layout, SlotMove, Step};
use crate::snapshot::{NodeKey, Snapshot};
use crate::verify::Verdict;

/// Which nodes to read before the next round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reads {
    /// Every node: what the next round decides must rest on what every node says now.
    All,
    /// Only these: the others' views were right and nothing touched them.
    Some(BTreeSet<NodeKey>),
}

impl Reads {
    pub fn includes(&self, key: &NodeKey) -> bool {
        match self {
            Reads::All => true,
            Reads::Some(keys) => keys.contains(key),
        }
    }
}

/// What an operation asks of the cluster besides its commands and slot moves: each one is a
/// verb of the driver's `Cluster`, sent after the round's steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `CLUSTER FAILOVER` on a replica: it takes its primary's role over.
    Failover {
        replica: NodeKey,
        mode: FailoverMode,
    },
    /// Restarts a node's server (the operator's command, or the sandbox's own); returns once
    /// the command did.
    Restart { node: NodeKey },
}

/// How a replica takes its primary's role over (`CLUSTER FAILOVER [FORCE|TAKEOVER]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailoverMode {
    /// The default: the primary stops its writers until the replica has every write, then
    /// the replica takes over. Nothing acknowledged is lost.
    Coordinated,
    /// Without the primary's agreement (it may be down): writes it acknowledged that the
    /// replica had not received yet are lost.
    Force,
    /// Without the primary's nor the other primaries' agreement: as `Force`, and two nodes
    /// may claim the shard's slots until the epochs settle.
    Takeover,
}

impl FailoverMode {
    /// The words after `CLUSTER FAILOVER`.
    pub fn argument(self) -> Option<&'static str> {
        match self {
            FailoverMode::Coordinated => None,
            FailoverMode::Force => Some("FORCE"),
            FailoverMode::Takeover => Some("TAKEOVER"),
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Failover { replica, mode } => {
                let words = mode.argument().map_or(String::new(), |a| format!(" {a}"));
                write!(f, "{replica}: CLUSTER FAILOVER{words}")
            }
            Action::Restart { node } => write!(f, "{node}: restart"),
        }
    }
}

/// One round of an operation.
#[derive(Clone, Debug)]
pub struct Round {
    /// Commands to send now; every phase-0 step before any phase-1 step.
    pub steps: Vec<Step>,
    /// Slot moves to run now (only when there are no steps).
    pub moves: Vec<SlotMove>,
    /// Verbs to use now, after the steps, in order.
    pub actions: Vec<Action>,
    /// Where the operation stands, in a line (`roll 3/6: 10.0.0.3:6379 …`), when it has
    /// phases to tell.
    pub status: Option<String>,
    /// What the operation refuses to change; the driver stops, and says whether earlier
    /// rounds changed anything.
    pub blockers: Vec<Blocker>,
    /// What the next steps wait for, in the operator's words.
    pub waiting: Vec<String>,
    /// The criteria the operation is judged by, as they stand.
    pub verdict: Verdict,
    /// The layout it works toward, when it has one (formation and reshaping).
    pub layout: Option<Layout>,
    /// Nothing is left to send or wait for, and the verdict passes.
    pub done: bool,
    /// Read every node at once and plan again, sending nothing: what this round would decide
    /// (that it is done, or to move slots) must rest on what every node says now.
    pub confirm: bool,
    pub reads: Reads,
}

/// An operation the driver runs round after round, until it is done or the deadline passes.
pub trait Operation {
    /// Plans the next round from the snapshot (read just before) at time `now`.
    fn round(&mut self, snapshot: &Snapshot, now: Duration) -> Round;

    /// Takes note of what the driver sent this round (the steps that were not refused).
    fn sent(&mut self, _steps: &[Step], _snapshot: &Snapshot, _now: Duration) {}
}
