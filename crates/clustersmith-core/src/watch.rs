//! What changed between two reads of a cluster, in the operator's words: the event log of
//! `clustersmith watch`. Pure: two snapshots in, events out (the shell reads, the CLI draws).
//!
//! Each event is judged from the views as a whole, so that one failover is one event, not
//! one per node that noticed it:
//! - a shard's slots owned by another node than before: a **failover** when the new owner was
//!   the old owner's replica, else **slots moved**;
//! - a node **failing** (`fail` in some view, none before) and **recovered** (no view flags it
//!   any more);
//! - a **role change** not explained by a failover (a replica attached elsewhere, a primary
//!   turned replica);
//! - a member **joined** or **forgotten** (listed by no view before, by none after);
//! - a node **not answering**, and **answering again**.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::model::{NodeFlag, NodeId};
use crate::snapshot::{NodeKey, Snapshot};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Failover {
        from: String,
        to: String,
        slots: usize,
    },
    SlotsMoved {
        from: String,
        to: String,
        slots: usize,
    },
    Failing {
        node: String,
    },
    Recovered {
        node: String,
    },
    RoleChanged {
        node: String,
        now: String,
    },
    Joined {
        node: String,
    },
    Forgotten {
        node: String,
    },
    NotAnswering {
        node: String,
    },
    Answering {
        node: String,
    },
}

impl Change {
    /// A short stable name for the kind of event (`failover`, `slots-moved`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Failover { .. } => "failover",
            Change::SlotsMoved { .. } => "slots-moved",
            Change::Failing { .. } => "failing",
            Change::Recovered { .. } => "recovered",
            Change::RoleChanged { .. } => "role-changed",
            Change::Joined { .. } => "joined",
            Change::Forgotten { .. } => "forgotten",
            Change::NotAnswering { .. } => "not-answering",
            Change::Answering { .. } => "answering",
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Failover { from, to, slots } => {
                write!(f, "failover: {to} took {slots} slots over from {from}")
            }
            Change::SlotsMoved { from, to, slots } => {
                write!(f, "slots moved: {slots} from {from} to {to}")
            }
            Change::Failing { node } => write!(f, "failing: {node} is flagged fail"),
            Change::Recovered { node } => write!(f, "recovered: no node flags {node} any more"),
            Change::RoleChanged { node, now } => write!(f, "role changed: {node} is now {now}"),
            Change::Joined { node } => write!(f, "joined: {node}"),
            Change::Forgotten { node } => write!(f, "forgotten: {node}"),
            Change::NotAnswering { node } => write!(f, "not answering: {node}"),
            Change::Answering { node } => write!(f, "answering again: {node}"),
        }
    }
}

/// The cluster as the views agree on it: each slot's owner (as the owners claim it), each
/// member's primary, which members some view flags `fail`, who is listed at all.
struct Picture {
    owner: Vec<Option<NodeId>>,
    primary_of: BTreeMap<NodeId, Option<NodeId>>,
    failing: BTreeSet<NodeId>,
    listed: BTreeSet<NodeId>,
    answering: BTreeSet<NodeKey>,
}

fn picture(snapshot: &Snapshot) -> Picture {
    let mut owner = vec![None; crate::model::SLOT_COUNT as usize];
    let mut primary_of = BTreeMap::new();
    let mut failing = BTreeSet::new();
    let mut listed = BTreeSet::new();
    let mut answering = BTreeSet::new();
    for (record, view) in snapshot.views() {
        answering.insert(record.key.clone());
        let me = view.myself();
        primary_of.insert(view.id, me.primary_id.filter(|_| me.is_replica()));
        if !me.is_replica() {
            for slot in me.slots.iter() {
                owner[usize::from(slot)].get_or_insert(view.id);
            }
        }
        for entry in view.nodes.entries() {
            if entry.is_handshake() {
                continue;
            }
            listed.insert(entry.id);
            if entry.has_flag(NodeFlag::Fail) {
                failing.insert(entry.id);
            }
        }
    }
    Picture {
        owner,
        primary_of,
        failing,
        listed,
        answering,
    }
}

/// The events between `before` and `after` (two reads of the same cluster), in a stable order.
pub fn changes(before: &Snapshot, after: &Snapshot) -> Vec<Change> {
    let (old, new) = (picture(before), picture(after));
    let label = |id: &NodeId| after.label_of(id);
    let mut events = Vec::new();

    // Slot owners: one event per (from, to) pair.
    let mut moved: BTreeMap<(NodeId, NodeId), usize> = BTreeMap::new();
    for (was, is) in old.owner.iter().zip(&new.owner) {
        if let (Some(was), Some(is)) = (was, is)
            && was != is
        {
            *moved.entry((*was, *is)).or_default() += 1;
        }
    }
    let mut failed_over: BTreeSet<NodeId> = BTreeSet::new();
    for ((from, to), slots) in moved {
        let was_its_replica = old.primary_of.get(&to) == Some(&Some(from));
        if was_its_replica {
            failed_over.extend([from, to]);
            events.push(Change::Failover {
                from: label(&from),
                to: label(&to),
                slots,
            });
        } else {
            events.push(Change::SlotsMoved {
                from: label(&from),
                to: label(&to),
                slots,
            });
        }
    }
    for id in new.failing.difference(&old.failing) {
        events.push(Change::Failing { node: label(id) });
    }
    for id in old.failing.difference(&new.failing) {
        if new.listed.contains(id) {
            events.push(Change::Recovered { node: label(id) });
        }
    }
    for (id, primary) in &new.primary_of {
        let Some(was) = old.primary_of.get(id) else {
            continue;
        };
        if was != primary && !failed_over.contains(id) {
            let now = match primary {
                Some(p) => format!("a replica of {}", label(p)),
                None => "a primary".to_owned(),
            };
            events.push(Change::RoleChanged {
                node: label(id),
                now,
            });
        }
    }
    for id in new.listed.difference(&old.listed) {
        events.push(Change::Joined { node: label(id) });
    }
    for id in old.listed.difference(&new.listed) {
        events.push(Change::Forgotten {
            node: before.label_of(id),
        });
    }
    for key in old.answering.difference(&new.answering) {
        events.push(Change::NotAnswering {
            node: key.to_string(),
        });
    }
    for key in new.answering.difference(&old.answering) {
        events.push(Change::Answering {
            node: key.to_string(),
        });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Sim;

    fn formed() -> Sim {
        let ips: Vec<String> = (1..=6).map(|i| format!("10.0.0.{i}")).collect();
        let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
        let mut sim = Sim::new(&ips, None);
        sim.drive(
            &mut crate::operations::Formation::new(sim.spec(3)),
            20,
            std::time::Duration::from_millis(500),
        )
        .unwrap();
        sim
    }

    #[test]
    fn a_failover_is_one_event_and_no_role_change() {
        let mut sim = formed();
        let before = sim.observe();
        assert_eq!(changes(&before, &sim.observe()), []);
        let primary = (0..6).find(|i| sim.nodes[*i].primary.is_none()).unwrap();
        let replica = (0..6)
            .find(|i| sim.nodes[*i].primary == Some(primary))
            .unwrap();
        sim.failover(&sim.key(replica));
        let events = changes(&before, &sim.observe());
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].kind(), "failover");
        assert!(
            events[0]
                .to_string()
                .starts_with(&format!("failover: {} took", sim.key(replica))),
            "{}",
            events[0]
        );
    }

    #[test]
    fn moved_slots_and_a_silent_node_are_told_apart() {
        let mut sim = formed();
        let before = sim.observe();
        let primaries: Vec<usize> = (0..6).filter(|i| sim.nodes[*i].primary.is_none()).collect();
        let mut slots = crate::model::SlotSet::new();
        for slot in sim.nodes[primaries[0]].slots.iter().take(10) {
            slots.insert(slot);
        }
        sim.move_slots(&[crate::plan::SlotMove {
            source: sim.key(primaries[0]),
            target: sim.key(primaries[1]),
            slots,
            resumed: false,
        }]);
        let events = changes(&before, &sim.observe());
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(
            events[0],
            Change::SlotsMoved {
                from: sim.key(primaries[0]).to_string(),
                to: sim.key(primaries[1]).to_string(),
                slots: 10,
            }
        );
        // A node that stops answering.
        let mut after = sim.observe();
        let key = sim.key(primaries[2]);
        after
            .get_mut(&key)
            .unwrap()
            .set_state(crate::snapshot::NodeState::Unreachable("refused".into()));
        let events = changes(&sim.observe(), &after);
        assert_eq!(
            events,
            [Change::NotAnswering {
                node: key.to_string()
            }]
        );
    }
}
