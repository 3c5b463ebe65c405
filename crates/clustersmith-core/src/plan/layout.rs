//! The target layout: which nodes are primaries, which slots each owns, which replicas follow
//! which primary.
//!
//! The layout is derived from the spec *and* the live state so that re-planning a formed or
//! half-formed cluster keeps what is already there:
//! - nodes that own slots stay primaries, unless the spec has fewer primaries (the smallest
//!   owners are drained into replicas); slot counts that differ by more than one are evened
//!   out by the fewest slot moves (see `reshard`), so a new primary gets its share;
//! - missing primaries are chosen to spread over placement domains (zones, else host IPs),
//!   in the order of a round-robin over domains, as redis-cli interleaves hosts;
//! - unowned slots go to the primary whose balanced target range contains them;
//! - replicas keep their current primary when that fits the shape and placement, and are
//!   otherwise matched to primaries outside their own domain (a bipartite matching, so a
//!   placement is found whenever one exists).

use std::collections::BTreeMap;

use super::Blocker;
use super::reshard::{Holding, SlotMove, balance};
use crate::model::{NodeId, SlotRange, SlotSet};
use crate::snapshot::{Domain, NodeKey, NodeRecord, Snapshot};

/// One primary with its slots and replicas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    pub primary: NodeKey,
    pub slots: SlotSet,
    pub replicas: Vec<NodeKey>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Ordered by first slot.
    pub shards: Vec<Shard>,
    /// Placement compromises the inventory forced (e.g. a replica on its primary's host).
    pub notes: Vec<String>,
    /// Slots that change owner to reach `shards` (a new primary, a drained or leaving one).
    pub moves: Vec<SlotMove>,
    /// The primaries' shares follow weights from the spec, not even counts.
    pub weighted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlannedRole {
    Primary { shard: usize },
    Replica { shard: usize, primary: NodeKey },
}

impl Layout {
    pub fn role_of(&self, key: &NodeKey) -> Option<PlannedRole> {
        self.shards
            .iter()
            .enumerate()
            .find_map(|(shard_idx, shard)| {
                if &shard.primary == key {
                    Some(PlannedRole::Primary { shard: shard_idx })
                } else if shard.replicas.contains(key) {
                    Some(PlannedRole::Replica {
                        shard: shard_idx,
                        primary: shard.primary.clone(),
                    })
                } else {
                    None
                }
            })
    }

    /// The planned primaries.
    pub fn primaries(&self) -> impl Iterator<Item = &NodeKey> {
        self.shards.iter().map(|s| &s.primary)
    }
}

/// A shard while the layout is computed: nodes by their position in the snapshot's records
/// (the matching below works on positions; the layout it returns names nodes by key).
struct Draft {
    primary: usize,
    slots: SlotSet,
    replicas: Vec<usize>,
}

/// `resetting` are nodes this round resets (`--reset-removed`): their current role does not
/// count.
pub(super) fn compute_layout(
    primaries: usize,
    replicas_per_primary: usize,
    snapshot: &Snapshot,
    resetting: &[NodeKey],
) -> Result<Layout, Vec<Blocker>> {
    let nodes = snapshot.records();
    let self_slots: Vec<SlotSet> = nodes
        .iter()
        .map(|n| {
            n.view()
                .map(|v| v.myself().slots.clone())
                .unwrap_or_default()
        })
        .collect();
    let is_replica: Vec<bool> = nodes
        .iter()
        .map(|n| !resetting.contains(&n.key) && n.view().is_some_and(|v| v.myself().is_replica()))
        .collect();
    let weights: Vec<u32> = nodes.iter().map(|n| n.weight).collect();
    let spec_nodes = nodes.iter().filter(|n| !n.leaving).count();

    let mut blockers = Vec::new();
    let all_owners: Vec<usize> = (0..nodes.len())
        .filter(|idx| !self_slots[*idx].is_empty())
        .collect();
    for (pos, a) in all_owners.iter().enumerate() {
        for b in &all_owners[pos + 1..] {
            let both = self_slots[*a].intersection(&self_slots[*b]);
            if !both.is_empty() {
                blockers.push(Blocker::SlotConflict {
                    node: nodes[*a].key.clone(),
                    other: nodes[*b].key.clone(),
                    slots: both.ranges().to_vec(),
                });
            }
        }
    }
    if !blockers.is_empty() {
        return Err(blockers);
    }
    // More owners in the spec than primaries: the largest stay primaries (fewest slots to
    // move), the others are drained and then follow a primary as replicas.
    let mut owners: Vec<usize> = all_owners
        .iter()
        .copied()
        .filter(|idx| *idx < spec_nodes)
        .collect();
    owners.sort_by_key(|idx| (std::cmp::Reverse(self_slots[*idx].len()), *idx));
    let drained: Vec<usize> = owners.split_off(owners.len().min(primaries));
    owners.sort_unstable();

    // Give each owner the balanced target range it overlaps most, in slot order.
    let targets = SlotRange::balanced(primaries);
    let mut range_owner: Vec<Option<usize>> = vec![None; primaries];
    let mut owners_by_first_slot = owners.clone();
    owners_by_first_slot.sort_by_key(|idx| self_slots[*idx].iter().next());
    for owner in owners_by_first_slot {
        let best = (0..primaries)
            .filter(|r| range_owner[*r].is_none())
            .max_by_key(|r| {
                let overlap = self_slots[owner]
                    .intersection(&SlotSet::from_ranges([&targets[*r]]))
                    .len();
                (overlap, std::cmp::Reverse(*r))
            })
            .expect("no more owners than ranges");
        range_owner[best] = Some(owner);
    }

    // Choose the missing primaries, spreading over domains.
    let order = interleave(&nodes[..spec_nodes]);
    let mut chosen: Vec<usize> = range_owner.iter().flatten().copied().collect();
    while chosen.len() < primaries {
        let used: Vec<Domain> = chosen.iter().map(|i| nodes[*i].domain()).collect();
        let next = order
            .iter()
            .copied()
            .filter(|idx| !chosen.contains(idx))
            .min_by_key(|idx| {
                (
                    // A node left over from a removal (its primary forgot it) before a
                    // replica its primary counts on: it holds only a stale copy.
                    is_replica[*idx] && left_over_from_removal(&nodes[*idx], snapshot).is_none(),
                    is_replica[*idx],
                    used.contains(&nodes[*idx].domain()),
                    order.iter().position(|o| o == idx),
                )
            })
            .expect("spec validation guarantees enough nodes");
        let free_range = range_owner
            .iter()
            .position(Option::is_none)
            .expect("fewer primaries than ranges");
        range_owner[free_range] = Some(next);
        chosen.push(next);
    }

    let mut owned = SlotSet::new();
    for slots in &self_slots {
        owned.union_with(slots);
    }
    let unowned = owned.complement();
    let mut shards: Vec<Draft> = range_owner
        .iter()
        .zip(&targets)
        .map(|(primary, target)| {
            let primary = primary.expect("every range has a primary");
            let mut slots = self_slots[primary].clone();
            slots.union_with(&unowned.intersection(&SlotSet::from_ranges([target])));
            Draft {
                primary,
                slots,
                replicas: Vec::new(),
            }
        })
        .collect();
    for shard in &shards {
        if is_replica[shard.primary] {
            blockers.push(Blocker::PrimaryIsReplica {
                node: nodes[shard.primary].key.clone(),
                left_over: left_over_from_removal(&nodes[shard.primary], snapshot),
            });
        }
    }
    if !blockers.is_empty() {
        return Err(blockers);
    }

    // Resharding: slot counts that differ by more than one from the primaries' shares (even,
    // or by weight) (a new primary, a manual reshard, two runs with different shapes, an
    // interrupted move) are evened out, and every slot of
    // a drained or leaving node moves. Not while some slots have no owner: formation assigns
    // those first, and the next round balances what is then owned.
    let leaving_owners = all_owners.iter().filter(|idx| **idx >= spec_nodes);
    let donors: Vec<usize> = drained
        .iter()
        .copied()
        .chain(leaving_owners.copied())
        .collect();
    let moves = if unowned.is_empty() || !donors.is_empty() {
        let ids: Vec<Option<NodeId>> = nodes.iter().map(|n| n.view().map(|v| v.id)).collect();
        let holdings: Vec<Holding> = shards
            .iter()
            .map(|s| (s.primary, Some(weights[s.primary])))
            .chain(donors.iter().map(|d| (*d, None)))
            .filter_map(|(idx, weight)| {
                Some(Holding {
                    id: ids[idx]?,
                    owned: self_slots[idx].clone(),
                    weight,
                })
            })
            .collect();
        let key_of = |id: &NodeId| {
            let at = ids.iter().position(|i| i.as_ref() == Some(id));
            nodes[at.expect("a holding is an observed node")]
                .key
                .clone()
        };
        let moves: Vec<SlotMove> = balance(&holdings)
            .into_iter()
            .map(|t| SlotMove {
                source: key_of(&t.source),
                target: key_of(&t.target),
                slots: t.slots,
                resumed: false,
            })
            .collect();
        for shard in &mut shards {
            let key = &nodes[shard.primary].key;
            for m in &moves {
                if &m.source == key {
                    shard.slots = shard.slots.difference(&m.slots);
                }
                if &m.target == key {
                    shard.slots.union_with(&m.slots);
                }
            }
        }
        moves
    } else {
        Vec::new()
    };

    let mut notes = assign_replicas(&mut shards, replicas_per_primary, snapshot, spec_nodes);
    for (idx, weight) in weights.iter().enumerate().take(spec_nodes) {
        if *weight != 1 && !shards.iter().any(|s| s.primary == idx) {
            notes.push(format!(
                "weight={weight} on `{}` has no effect: it is a replica in this layout (a weight sets a primary's share of the slots)",
                nodes[idx].key
            ));
        }
    }
    shards.sort_by_key(|s| s.slots.iter().next());
    let weighted = shards.iter().any(|s| weights[s.primary] != 1);
    let shards = shards
        .into_iter()
        .map(|d| Shard {
            primary: nodes[d.primary].key.clone(),
            slots: d.slots,
            replicas: d.replicas.iter().map(|r| nodes[*r].key.clone()).collect(),
        })
        .collect();
    Ok(Layout {
        shards,
        notes,
        moves,
        weighted,
    })
}

/// A node of the spec left over from an earlier removal: it owns no slot and lists the
/// cluster's slot owners, but none of them lists it (they were told to forget it, and it was
/// never reset). Returns what it still follows, in words.
pub(super) fn left_over_from_removal(node: &NodeRecord, snapshot: &Snapshot) -> Option<String> {
    let view = node.view()?;
    if node.leaving || !view.myself().slots.is_empty() {
        return None;
    }
    let owners: Vec<&crate::snapshot::NodeView> = snapshot
        .spec_nodes()
        .filter(|r| r.key != node.key)
        .filter_map(NodeRecord::view)
        .filter(|v| !v.myself().slots.is_empty())
        .collect();
    let lists_owners = owners.iter().any(|o| view.knows(&o.id).is_some());
    let listed = owners.iter().any(|o| o.knows(&view.id).is_some());
    if owners.is_empty() || !lists_owners || listed {
        return None;
    }
    Some(match view.myself().primary_id.as_ref() {
        Some(primary) => match snapshot.answering_as(primary) {
            Some(p) => format!("still replicates `{}`, which no longer lists it", p.key),
            None => "still replicates a node that is no longer in the cluster".to_owned(),
        },
        None => "still lists the cluster's nodes, none of which lists it".to_owned(),
    })
}

/// Round-robin over placement domains, in order of first appearance.
fn interleave(nodes: &[NodeRecord]) -> Vec<usize> {
    let mut groups: Vec<(Domain, Vec<usize>)> = Vec::new();
    for (idx, node) in nodes.iter().enumerate() {
        let domain = node.domain();
        match groups.iter_mut().find(|(d, _)| *d == domain) {
            Some((_, members)) => members.push(idx),
            None => groups.push((domain, vec![idx])),
        }
    }
    let mut order = Vec::with_capacity(nodes.len());
    let longest = groups.iter().map(|(_, m)| m.len()).max().unwrap_or(0);
    for round in 0..longest {
        for (_, members) in &groups {
            if let Some(idx) = members.get(round) {
                order.push(*idx);
            }
        }
    }
    order
}

/// Matches replicas to primaries: each primary gets `per_primary` replicas, a replica never
/// shares a domain with its primary when any assignment allows it, and current attachments
/// are kept where they fit. Returns notes for the compromises that could not be avoided.
fn assign_replicas(
    shards: &mut [Draft],
    per_primary: usize,
    snapshot: &Snapshot,
    spec_nodes: usize,
) -> Vec<String> {
    let nodes = &snapshot.records()[..spec_nodes];
    let primaries: Vec<usize> = shards.iter().map(|s| s.primary).collect();
    let pool: Vec<usize> = (0..nodes.len())
        .filter(|idx| !primaries.contains(idx))
        .collect();
    // The shard each pool node currently replicates, if it is one of ours.
    let current: BTreeMap<usize, usize> = pool
        .iter()
        .filter_map(|r| {
            let primary_id = nodes[*r].view()?.myself().primary_id?;
            let shard = primaries
                .iter()
                .position(|p| nodes[*p].view().is_some_and(|v| v.id == primary_id))?;
            Some((*r, shard))
        })
        .collect();
    let allowed = |r: usize, shard: usize| nodes[r].domain() != nodes[primaries[shard]].domain();

    let mut matched: BTreeMap<usize, usize> = BTreeMap::new(); // replica -> shard
    let load = |matched: &BTreeMap<usize, usize>, shard: usize| {
        matched.values().filter(|s| **s == shard).count()
    };
    for r in &pool {
        if let Some(shard) = current.get(r)
            && allowed(*r, *shard)
            && load(&matched, *shard) < per_primary
        {
            matched.insert(*r, *shard);
        }
    }
    for r in &pool {
        if !matched.contains_key(r) {
            let mut visited = vec![false; shards.len()];
            augment(
                *r,
                &mut matched,
                &mut visited,
                per_primary,
                shards.len(),
                &allowed,
            );
        }
    }

    let mut notes = Vec::new();
    for r in &pool {
        if matched.contains_key(r) {
            continue;
        }
        let keep = current
            .get(r)
            .copied()
            .filter(|shard| load(&matched, *shard) < per_primary);
        let shard = keep.unwrap_or_else(|| {
            (0..shards.len())
                .filter(|s| load(&matched, *s) < per_primary)
                .min_by_key(|s| (load(&matched, *s), *s))
                .expect("pool size equals primaries x replicas")
        });
        matched.insert(*r, shard);
        let what = match nodes[*r].domain() {
            Domain::Zone(zone) => format!("zone `{zone}`"),
            Domain::Host(ip) => format!("host {ip}"),
        };
        notes.push(format!(
            "replica `{}` shares {what} with its primary `{}`: the inventory allows no other placement",
            nodes[*r].key,
            nodes[primaries[shard]].key
        ));
    }
    for (r, shard) in matched {
        shards[shard].replicas.push(r);
    }
    notes
}

/// Kuhn's augmenting path, with each shard holding up to `capacity` replicas. A shard with
/// room is taken before any current holder is displaced, so no replica moves without need.
fn augment(
    r: usize,
    matched: &mut BTreeMap<usize, usize>,
    visited: &mut [bool],
    capacity: usize,
    n_shards: usize,
    allowed: &dyn Fn(usize, usize) -> bool,
) -> bool {
    let holders_of = |matched: &BTreeMap<usize, usize>, shard: usize| -> Vec<usize> {
        matched
            .iter()
            .filter(|(_, s)| **s == shard)
            .map(|(rep, _)| *rep)
            .collect()
    };
    let candidates: Vec<usize> = (0..n_shards)
        .filter(|shard| !visited[*shard] && allowed(r, *shard))
        .collect();
    if let Some(free) = candidates
        .iter()
        .find(|shard| holders_of(matched, **shard).len() < capacity)
    {
        matched.insert(r, *free);
        return true;
    }
    for shard in candidates {
        visited[shard] = true;
        for holder in holders_of(matched, shard) {
            matched.remove(&holder);
            if augment(holder, matched, visited, capacity, n_shards, allowed) {
                matched.insert(r, shard);
                return true;
            }
            matched.insert(holder, shard);
        }
    }
    false
}
