//! Members leaving the cluster: found in the spec nodes' views (`--remove-unlisted`),
//! drained of their slots by the moves, then forgotten.

use std::collections::BTreeSet;
use std::net::IpAddr;

use super::{Blocker, Step};
use crate::model::{NodeFlag, NodeId, SlotSet};
use crate::snapshot::{NodeKey, NodeRecord, Snapshot};

/// A member the spec nodes list that is not in the spec, where they list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unlisted {
    pub id: NodeId,
    pub ip: IpAddr,
    pub port: u16,
}

impl Unlisted {
    /// Its record in the snapshot: keyed by its id, reached where its peers list it.
    pub fn record(&self) -> NodeRecord {
        NodeRecord::leaving(self.id, self.ip, self.port)
    }
}

/// Members of the spec nodes' cluster that the spec does not name: entries of a spec node
/// that knows at least one other spec node (a member, not a fresh node), past the handshake,
/// with an address, and neither a spec node's id nor at a spec node's address (a node back
/// with a new id is a departed member, handled apart).
pub fn unlisted_members(snapshot: &Snapshot) -> Vec<Unlisted> {
    let ours: BTreeSet<NodeId> = snapshot.spec_nodes().filter_map(NodeRecord::id).collect();
    let mut found: Vec<Unlisted> = Vec::new();
    for node in snapshot.spec_nodes() {
        let Some(view) = node.view() else { continue };
        let member = view.nodes.peers().any(|e| ours.contains(&e.id));
        if !member {
            continue;
        }
        for entry in view.nodes.peers() {
            let Some(ip) = entry.addr.ip else { continue };
            let at_spec_address = snapshot
                .iter()
                .any(|n| n.ip == ip && n.port == entry.addr.port);
            if entry.is_handshake()
                || entry.has_flag(NodeFlag::NoAddr)
                || ours.contains(&entry.id)
                || at_spec_address
                || found.iter().any(|u| u.id == entry.id)
            {
                continue;
            }
            found.push(Unlisted {
                id: entry.id,
                ip,
                port: entry.addr.port,
            });
        }
    }
    found
}

/// Leaving members are forgotten on every spec node that lists them, all in one round, once
/// they own no slot and no spec node follows them (their slots move first, `Layout::moves`),
/// and reset afterwards when the spec asks. One that owns slots and cannot be reached stops
/// everything: its slots can only move with it.
pub(super) fn plan_leaving(
    reset: bool,
    snapshot: &Snapshot,
    steps: &mut Vec<Step>,
    waiting: &mut Vec<String>,
) -> Result<(), Vec<Blocker>> {
    let mut blockers = Vec::new();
    for node in snapshot.leaving_nodes() {
        let label = &node.key;
        let Some(id) = node.id() else {
            continue;
        };
        let listed_by: Vec<&NodeKey> = snapshot
            .spec_nodes()
            .filter(|s| s.view().is_some_and(|v| v.knows(&id).is_some()))
            .map(|s| &s.key)
            .collect();
        let slots = match node.view() {
            Some(view) => view.myself().slots.clone(),
            None => {
                let mut slots = SlotSet::new();
                for key in &listed_by {
                    if let Some(entry) = snapshot.view(key).and_then(|v| v.knows(&id)) {
                        slots.union_with(&entry.slots);
                    }
                }
                slots
            }
        };
        if !slots.is_empty() {
            if node.view().is_none() {
                blockers.push(Blocker::LeavingUnreachable {
                    node: label.clone(),
                    slots: slots.ranges().to_vec(),
                });
            }
            continue;
        }
        if let Some(view) = node.view().filter(|v| !v.myself().is_replica()) {
            let keys = view.info.key_count();
            if keys > 0 {
                blockers.push(Blocker::LeavingHoldsKeys {
                    node: label.clone(),
                    keys,
                });
                continue;
            }
        }
        let followers: Vec<&str> = snapshot
            .spec_nodes()
            .filter(|s| s.view().is_some_and(|v| v.myself().primary_id == Some(id)))
            .map(NodeRecord::label)
            .collect();
        if !followers.is_empty() {
            waiting.push(format!(
                "{} still replicate the leaving `{label}`; it is forgotten once they follow a primary of the spec",
                followers.join(", ")
            ));
            continue;
        }
        if listed_by.is_empty() {
            // Forgotten by every spec node: reset it too when asked, unless it already knows
            // nobody and follows no one.
            let still_joined = node
                .view()
                .is_some_and(|v| v.nodes.peers().next().is_some() || v.myself().is_replica());
            if reset && still_joined {
                steps.push(Step::ResetRemoved {
                    node: label.clone(),
                });
            }
            continue;
        }
        steps.extend(listed_by.into_iter().map(|node| Step::Forget {
            node: node.clone(),
            id,
            leaving: true,
        }));
    }
    if blockers.is_empty() {
        Ok(())
    } else {
        Err(blockers)
    }
}

/// Notes for nodes that replicate a primary of the spec without being one of its nodes:
/// usually members removed without `--reset-removed`, which keep a full copy of the data and
/// keep following their last primary until they are reset or stopped. Read from the primaries'
/// own `INFO replication`, since the cluster's views no longer list them.
pub(super) fn outside_replica_notes(snapshot: &Snapshot) -> Vec<String> {
    let in_spec = |ip: &str, port: u16| {
        snapshot
            .spec_nodes()
            .any(|n| n.port == port && n.ip.to_string() == ip)
    };
    let mut notes = Vec::new();
    for node in snapshot.spec_nodes() {
        let Some(view) = node.view() else { continue };
        for (ip, port) in view.info.connected_replicas() {
            if !in_spec(&ip, port) {
                notes.push(format!(
                    "`{ip}:{port}` replicates `{}` (its INFO replication lists it) but is not a node of the spec: a member removed from the cluster keeps a full copy of the data and follows its last primary until it is reset (`--reset-removed` does it when removing) or stopped",
                    node.key
                ));
            }
        }
    }
    notes
}
