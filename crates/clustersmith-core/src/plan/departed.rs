//! Members the cluster still lists although no expected node answers as them any more: a node
//! that came back from a lost disk (or a recreated VM) at the same address answers with a new
//! id, and its peers keep the old one — at that address, or with its address forgotten
//! (`noaddr`, which a peer sets when a PONG from that address carries another id).
//!
//! Telling these apart from a foreign cluster's members is what lets `apply` repair the case
//! (forget the old id everywhere, adopt the new node) instead of refusing every peer as "a node
//! of another cluster".

use std::collections::BTreeMap;

use crate::model::{NodeFlag, NodeId, SlotSet};
use crate::observation::{InventoryNode, Observation};

/// One departed member, as the observed views list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departed {
    pub id: NodeId,
    /// The expected node now answering at the departed id's address with another id, or, when
    /// the peers forgot the address (`noaddr`), the newcomer nobody knows yet.
    pub successor: usize,
    /// Slots the views still give it (any view): while it owns some, forgetting it would drop
    /// them from the cluster.
    pub slots: SlotSet,
    /// Observed nodes that list it.
    pub listed_by: Vec<usize>,
    /// Observed nodes that replicate it (a replica cannot forget its own primary).
    pub replicas: Vec<usize>,
    /// Its flags in the first view that lists it, for messages.
    pub flags: String,
}

/// The departed members in `obs`. `ours` holds every id an expected node answers as (or
/// answered as when last seen); nothing in it is ever departed.
pub fn departed_members(
    inventory: &[InventoryNode],
    obs: &Observation,
    ours: &dyn Fn(&NodeId) -> bool,
) -> Vec<Departed> {
    // Only wanted for a `noaddr` stranger, which a formed cluster never lists: found lazily,
    // as it takes a lookup per pair of nodes, and plan and verify both run this every round.
    let mut newcomers: Option<Vec<usize>> = None;
    let mut found: BTreeMap<NodeId, Departed> = BTreeMap::new();
    for (viewer, view) in (0..inventory.len()).filter_map(|i| obs.view(i).map(|v| (i, v))) {
        for entry in view.nodes.peers() {
            if entry.is_handshake() || ours(&entry.id) {
                continue;
            }
            // At an expected address that now answers as someone else.
            let at_address = (0..inventory.len()).find(|idx| {
                entry.addr.ip == Some(inventory[*idx].ip)
                    && entry.addr.port == inventory[*idx].port
                    && obs.view(*idx).is_some_and(|v| v.id != entry.id)
            });
            let successor = match at_address {
                Some(idx) => idx,
                None if entry.has_flag(NodeFlag::NoAddr) => {
                    match newcomers
                        .get_or_insert_with(|| newcomers_in(inventory, obs))
                        .as_slice()
                    {
                        [only] => *only,
                        _ => continue,
                    }
                }
                None => continue,
            };
            let record = found.entry(entry.id).or_insert_with(|| Departed {
                id: entry.id,
                successor,
                slots: SlotSet::new(),
                listed_by: Vec::new(),
                replicas: Vec::new(),
                flags: entry.flags_text(),
            });
            record.slots.union_with(&entry.slots);
            record.listed_by.push(viewer);
            if view.myself().is_replica() && view.myself().primary_id.as_ref() == Some(&entry.id) {
                record.replicas.push(viewer);
            }
        }
    }
    found.into_values().collect()
}

/// Expected nodes that answer, know only themselves, and that no other observed node knows:
/// a node that came back empty knows only itself, and its peers know only its old id (a
/// peer that the newcomer does not know yet is no newcomer: it knows the cluster).
fn newcomers_in(inventory: &[InventoryNode], obs: &Observation) -> Vec<usize> {
    (0..inventory.len())
        .filter(|idx| {
            obs.view(*idx).is_some_and(|view| {
                view.nodes.entries().len() == 1
                    && (0..inventory.len())
                        .filter(|other| other != idx)
                        .filter_map(|other| obs.view(other))
                        .all(|other| other.knows(&view.id).is_none())
            })
        })
        .collect()
}
