//! The criteria a formed cluster must meet, evaluated against the *expected* topology.
//!
//! Each [`Criterion`] is data, as a diagnosis rule is: a stable id, a title, whether it only
//! warns, and a check that names every node failing it and why, so a failing cluster names
//! its culprits. A node that cannot be reached fails `reachable` and cannot pass anything it
//! would have to report itself. [`CRITERIA`] lists them in the order they are shown.
//!
//! # Layout
//! - this module: the vocabulary (criteria, results, verdict) and [`verify`];
//! - [`criteria`]: one static per criterion, beside its check.

mod criteria;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

pub use criteria::{
    AGREEMENT, BALANCE, CRITERIA, EPOCHS, MEMBERSHIP, REACHABLE, REPLICATION, SLOTS, STATE,
};

use crate::model::NodeId;
use crate::plan::Layout;
use crate::snapshot::{Departed, NodeKey, Snapshot};

/// One criterion: its identity, and the check that finds the nodes failing it.
pub struct Criterion {
    /// Stable: scripts and metrics name criteria by it.
    pub id: &'static str,
    pub title: &'static str,
    /// Shown when it does not hold, but the verdict still passes: the cluster works, but is
    /// not as intended.
    pub warning_only: bool,
    pub check: fn(&Context) -> Vec<Failure>,
}

impl std::fmt::Debug for Criterion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Criterion({})", self.id)
    }
}

impl PartialEq for Criterion {
    fn eq(&self, other: &Criterion) -> bool {
        self.id == other.id
    }
}

impl Eq for Criterion {}

/// The check of a criterion that an operation judges itself, round by round (a handoff's,
/// a roll's): it is never run by [`verify`].
pub fn judged_by_the_operation(_: &Context) -> Vec<Failure> {
    Vec::new()
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub node: NodeKey,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriterionResult {
    pub criterion: &'static Criterion,
    pub failures: Vec<Failure>,
    /// Nodes this criterion needed to look at but could not (they did not answer): a
    /// criterion with no failure is only met when this is empty.
    pub unchecked: Vec<NodeKey>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Met,
    Failed,
    /// Nothing wrong was seen, but some nodes could not be looked at.
    Unknown,
    /// A warning-only criterion does not hold: shown, but the verdict still passes.
    Warning,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Met => "ok",
            Status::Failed => "fail",
            Status::Unknown => "unknown",
            Status::Warning => "warning",
        }
    }
}

impl CriterionResult {
    pub fn id(&self) -> &'static str {
        self.criterion.id
    }

    pub fn title(&self) -> &'static str {
        self.criterion.title
    }

    pub fn status(&self) -> Status {
        if !self.failures.is_empty() && self.criterion.warning_only {
            Status::Warning
        } else if !self.failures.is_empty() {
            Status::Failed
        } else if !self.unchecked.is_empty() {
            Status::Unknown
        } else {
            Status::Met
        }
    }

    /// Met, or only warned about.
    pub fn passed(&self) -> bool {
        matches!(self.status(), Status::Met | Status::Warning)
    }

    /// Nodes this criterion still waits for: failing, or not looked at.
    pub fn nodes(&self) -> impl Iterator<Item = &NodeKey> {
        self.failures
            .iter()
            .map(|f| &f.node)
            .chain(self.unchecked.iter())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub criteria: Vec<CriterionResult>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.criteria.iter().all(CriterionResult::passed)
    }

    pub fn failed(&self) -> impl Iterator<Item = &CriterionResult> {
        self.criteria.iter().filter(|c| !c.passed())
    }

    /// The result of one criterion.
    pub fn of(&self, criterion: &Criterion) -> Option<&CriterionResult> {
        self.criteria.iter().find(|c| c.criterion == criterion)
    }
}

/// What every check reads: the layout, the snapshot, and what is worked out once for all of
/// them (the id each spec node is expected to have, and members that departed).
pub struct Context<'a> {
    pub layout: &'a Layout,
    pub snapshot: &'a Snapshot,
    /// The id each spec node answers as, had when last seen, or is listed under.
    pub expected_ids: BTreeMap<NodeKey, NodeId>,
    /// The spec node of each expected id.
    pub key_of: BTreeMap<NodeId, NodeKey>,
    /// Members replaced at their address by a node with a new id (lost disk, recreated VM).
    pub departed: Vec<Departed>,
}

impl Context<'_> {
    /// A spec node's label, or the id's short form for an id no spec node has.
    pub fn label_of(&self, id: &NodeId) -> String {
        self.key_of
            .get(id)
            .map_or_else(|| id.short().to_owned(), ToString::to_string)
    }

    /// The spec nodes that came back with a new id.
    pub fn successors(&self) -> BTreeSet<&NodeKey> {
        self.departed.iter().map(|d| &d.successor).collect()
    }
}

/// Checks the live state against the layout, criterion by criterion. Members on their way
/// out (not in the spec) are not expected, so a view that still lists one fails membership
/// until it is forgotten.
pub fn verify(layout: &Layout, snapshot: &Snapshot) -> Verdict {
    let expected_ids = snapshot.expected_ids();
    let mut key_of: BTreeMap<NodeId, NodeKey> = BTreeMap::new();
    // Each id belongs to the first spec node that has it.
    for node in snapshot.spec_nodes() {
        if let Some(id) = expected_ids.get(&node.key) {
            key_of.entry(*id).or_insert_with(|| node.key.clone());
        }
    }
    let expected: BTreeSet<NodeId> = key_of.keys().copied().collect();
    let departed = snapshot.departed_members(&|id| expected.contains(id));
    let context = Context {
        layout,
        snapshot,
        expected_ids,
        key_of,
        departed,
    };
    let unreachable: Vec<NodeKey> = snapshot
        .spec_nodes()
        .filter(|n| n.view().is_none())
        .map(|n| n.key.clone())
        .collect();
    Verdict {
        criteria: CRITERIA
            .iter()
            .map(|criterion| CriterionResult {
                criterion,
                failures: (criterion.check)(&context),
                unchecked: if std::ptr::eq(*criterion, &REACHABLE) {
                    Vec::new()
                } else {
                    unreachable.clone()
                },
            })
            .collect(),
    }
}
