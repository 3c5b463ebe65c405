//! Forming: the steps that take the live state to the target layout. Introductions (MEET),
//! config epochs and slots before the first MEET, replicas once they know their primary,
//! refresh and readdress MEETs while views disagree, and the forgetting of departed members;
//! plus the blockers that stop all of it before a single command is sent.

use std::collections::{BTreeSet, HashMap};

use super::departed::{Departed, departed_members};
use super::layout::PlannedRole;
use super::layout::{compute_layout, left_over_from_removal};
use super::leaving::{outside_replica_notes, plan_leaving};
use super::reshard::{SlotMove, open_moves};
use super::{Blocker, Layout, MeetPurpose, Step};
use crate::model::{NodeId, SlotSet};
use crate::observation::{InventoryNode, NodeView, Observation};
use crate::parse::OpenSlotKind;
use crate::spec::ClusterSpec;

/// The result of planning one round.
#[derive(Clone, Debug)]
pub struct Plan {
    /// `None` when blockers prevented a layout.
    pub layout: Option<Layout>,
    /// Commands to send now, in phase order.
    pub steps: Vec<Step>,
    /// What must not or cannot be changed; a plan with blockers has no steps.
    pub blockers: Vec<Blocker>,
    /// Conditions the next steps wait for (e.g. a replica that does not know its primary yet).
    pub waiting: Vec<String>,
    /// Slot moves ready to run once `steps` is empty (every node involved knows source and
    /// target): moves a previous run left open first, and only those while any is open.
    pub moves: Vec<SlotMove>,
}

impl Plan {
    /// Steps to send, or slots to move (now, or once what they wait for holds).
    pub fn has_changes(&self) -> bool {
        !self.steps.is_empty()
            || !self.moves.is_empty()
            || self.layout.as_ref().is_some_and(|l| !l.moves.is_empty())
    }
}

/// Plans the next round.
///
/// `known_ids` holds the id each inventory node had when last seen (also for nodes that are
/// unreachable now), so that their entries in other nodes' views are not mistaken for
/// foreign members.
pub fn plan(
    spec: &ClusterSpec,
    inventory: &[InventoryNode],
    obs: &Observation,
    known_ids: &[Option<NodeId>],
) -> Plan {
    let mut blockers = same_node_blockers(inventory, obs);
    let ours = our_ids(inventory, obs, known_ids);
    let departed = departed_members(inventory, obs, &|id| ours.contains(id));
    // Spec nodes left over from an earlier removal (none of the slot owners lists them) are
    // reset first when the spec allows resets, and then join as new nodes: what they still
    // know of the old cluster does not count against them.
    let resetting: Vec<usize> = if spec.reset_removed {
        (0..inventory.len())
            .filter(|idx| left_over_from_removal(*idx, inventory, obs).is_some())
            .collect()
    } else {
        Vec::new()
    };
    if blockers.is_empty() {
        blockers = membership_blockers(inventory, obs, known_ids, &departed, &resetting);
    }
    blockers.extend(departed_blockers(inventory, obs, &departed));
    if !blockers.is_empty() {
        return blocked(blockers);
    }
    let weights: Vec<u32> = spec.nodes.iter().map(|n| n.weight.unwrap_or(1)).collect();
    let mut layout = match compute_layout(
        spec.primaries,
        spec.replicas_per_primary,
        &weights,
        inventory,
        obs,
        &resetting,
    ) {
        Ok(layout) => layout,
        Err(blockers) => return blocked(blockers),
    };
    layout.notes.extend(outside_replica_notes(inventory, obs));
    let mut steps: Vec<Step> = resetting
        .iter()
        .map(|node| Step::ResetRemoved { node: *node })
        .collect();
    let mut waiting = Vec::new();
    plan_forgets(&departed, &mut steps, &mut waiting, inventory);
    if let Err(blockers) = plan_leaving(
        spec.reset_removed,
        inventory,
        obs,
        known_ids,
        &mut steps,
        &mut waiting,
    ) {
        return blocked(blockers);
    }
    plan_epochs(inventory, obs, &mut steps);
    plan_unstick_imports(inventory, obs, &mut steps);
    plan_slots(&layout, obs, &mut steps);
    plan_meets(&layout, inventory, obs, &mut steps, &mut waiting);
    plan_replicas(&layout, inventory, obs, &mut steps, &mut waiting);
    let moves = ready_moves(&layout, inventory, obs, &mut waiting);
    let unsafe_moves = resync_loss_blockers(inventory, obs, &steps);
    if !unsafe_moves.is_empty() {
        return blocked(unsafe_moves);
    }
    let changing: BTreeSet<usize> = steps.iter().map(Step::node).collect();
    plan_refreshes(&layout, inventory, obs, &changing, &mut steps);
    plan_readdresses(inventory, obs, &mut steps);
    // Mostly in phase order already; a stable sort's scratch is as large as the steps (45 000
    // MEETs at 300 nodes).
    if !steps.is_sorted_by_key(Step::phase) {
        steps.sort_by_key(Step::phase);
    }
    Plan {
        layout: Some(layout),
        steps,
        blockers: Vec::new(),
        waiting,
        moves,
    }
}

fn blocked(blockers: Vec<Blocker>) -> Plan {
    Plan {
        layout: None,
        steps: Vec::new(),
        blockers,
        waiting: Vec::new(),
        moves: Vec::new(),
    }
}

/// Refuses two spec entries that reach one server, told apart by what answers (its node id),
/// not by how the address was written.
fn same_node_blockers(inventory: &[InventoryNode], obs: &Observation) -> Vec<Blocker> {
    let mut first_at: std::collections::BTreeMap<&NodeId, usize> = Default::default();
    let mut blockers = Vec::new();
    for (idx, node) in inventory.iter().enumerate() {
        let Some(view) = obs.view(idx) else { continue };
        if let Some(&other) = first_at.get(&view.id) {
            blockers.push(Blocker::SameNode {
                a: inventory[other].label.clone(),
                b: node.label.clone(),
                id: view.id,
            });
        } else {
            first_at.insert(&view.id, idx);
        }
    }
    blockers
}

/// Every id an expected node answers as, or answered as when last seen.
fn our_ids(
    inventory: &[InventoryNode],
    obs: &Observation,
    known_ids: &[Option<NodeId>],
) -> BTreeSet<NodeId> {
    known_ids
        .iter()
        .flatten()
        .copied()
        .chain((0..inventory.len()).filter_map(|i| obs.view(i).map(|v| v.id)))
        .collect()
}

/// A departed member may only be forgotten once it owns nothing: while the views still give
/// it slots, its replica has not taken over, and the data of those slots is nowhere else.
fn departed_blockers(
    inventory: &[InventoryNode],
    obs: &Observation,
    departed: &[Departed],
) -> Vec<Blocker> {
    departed
        .iter()
        .filter(|d| !d.slots.is_empty())
        .filter_map(|d| {
            Some(Blocker::ReplacedNodeOwnsSlots {
                node: inventory[d.successor].label.clone(),
                new_id: obs.view(d.successor)?.id,
                old_id: d.id,
                flags: d.flags.clone(),
                slots: d.slots.ranges().to_vec(),
                replicas: d
                    .replicas
                    .iter()
                    .map(|r| {
                        let keys = obs.view(*r).map_or(0, |v| v.info.key_count());
                        format!(
                            "{} ({})",
                            inventory[*r].label,
                            crate::plural(keys, "key", "keys")
                        )
                    })
                    .collect(),
            })
        })
        .collect()
}

/// Forgets every departed member that owns no slot on every node that lists it, all in one
/// round (the forget ban lasts 60 s); one still followed by a replica waits until the layout
/// has moved that replica (a replica cannot forget its own primary).
fn plan_forgets(
    departed: &[Departed],
    steps: &mut Vec<Step>,
    waiting: &mut Vec<String>,
    inventory: &[InventoryNode],
) {
    for d in departed.iter().filter(|d| d.slots.is_empty()) {
        if !d.replicas.is_empty() {
            let followers: Vec<&str> = d
                .replicas
                .iter()
                .map(|r| inventory[*r].label.as_str())
                .collect();
            waiting.push(format!(
                "{} still replicate the departed {}; it is forgotten once they follow a live primary",
                followers.join(", "),
                d.id.short()
            ));
            continue;
        }
        for node in &d.listed_by {
            steps.push(Step::Forget {
                node: *node,
                id: d.id,
                leaving: false,
            });
        }
    }
}

/// The slot moves to run now: those a previous run left open first (and only those while any
/// is open), each once both ends are reachable and every primary of the spec knows the target
/// (`SETSLOT NODE` names it to all of them).
fn ready_moves(
    layout: &Layout,
    inventory: &[InventoryNode],
    obs: &Observation,
    waiting: &mut Vec<String>,
) -> Vec<SlotMove> {
    let open = open_moves(obs);
    let candidates = if open.is_empty() {
        layout.moves.clone()
    } else {
        open
    };
    let label = |id: &NodeId| obs.label_of(id, inventory);
    let primaries: Vec<usize> = (0..inventory.len())
        .filter(|idx| !inventory[*idx].leaving)
        .filter(|idx| obs.view(*idx).is_some_and(|v| !v.myself().is_replica()))
        .collect();
    let ready: Vec<SlotMove> = candidates
        .into_iter()
        .filter(|m| {
            let (Some(source), Some(target)) = (obs.index_of(&m.source), obs.index_of(&m.target))
            else {
                waiting.push(format!(
                    "moving {m}: `{}` and `{}` must both answer",
                    label(&m.source),
                    label(&m.target)
                ));
                return false;
            };
            let unaware: Vec<&str> = primaries
                .iter()
                .copied()
                .chain([source])
                .filter(|idx| *idx != target)
                .filter(|idx| obs.view(*idx).is_some_and(|v| v.knows(&m.target).is_none()))
                .map(|idx| inventory[idx].label.as_str())
                .collect();
            let Some(target_view) = obs.view(target) else {
                return false;
            };
            if !unaware.is_empty() || target_view.knows(&m.source).is_none() {
                waiting.push(format!(
                    "slots move to `{}` once every primary knows it",
                    label(&m.target)
                ));
                return false;
            }
            // A target that does not see the source own every slot of the move (it joined
            // moments ago, or its view lags) would answer the source's RESTORE-ASKING with
            // `CLUSTERDOWN Hash slot not served`; and a node importing a slot ignores gossip
            // about that slot's owner, so it must learn the owner before IMPORTING.
            // (A slot the target already took over, in a move cut short between the
            // SETSLOT NODE calls, only needs the hand-over finished.)
            let mut seen = target_view
                .knows(&m.source)
                .map(|e| e.slots.clone())
                .unwrap_or_default();
            seen.union_with(&target_view.myself().slots);
            if seen.intersection(&m.slots) != m.slots || !target_view.cluster_info.is_ok() {
                waiting.push(format!(
                    "slots move to `{}` once it sees their owner `{}` and its cluster_state is ok",
                    label(&m.target),
                    label(&m.source)
                ));
                return false;
            }
            true
        })
        .collect();
    // One line per reason, not one per move.
    waiting.dedup();
    ready
}

/// A target importing slots whose owner it does not see (a move started before it had
/// learnt the owners): `SETSLOT STABLE` on it, so that gossip can teach it the owner (a node
/// ignores updates about slots it imports); the move starts over once it knows. No key is
/// touched: keys already imported stay where they are and the move carries on around them.
fn plan_unstick_imports(inventory: &[InventoryNode], obs: &Observation, steps: &mut Vec<Step>) {
    for (idx, _) in inventory.iter().enumerate().filter(|(_, n)| !n.leaving) {
        let Some(view) = obs.view(idx) else { continue };
        let stuck = view
            .myself()
            .open_slots()
            .iter()
            .filter(|open| open.kind == OpenSlotKind::Importing)
            .filter(|open| {
                view.knows(&open.peer)
                    .is_none_or(|source| !source.slots.contains(open.slot))
            });
        steps.extend(stuck.map(|open| Step::StableSlot {
            node: idx,
            slot: open.slot,
        }));
    }
}

/// Refuses nodes that belong elsewhere: members outside the spec, or keys on a node that is
/// not yet part of this cluster (adopting it could hide or orphan that data).
fn membership_blockers(
    inventory: &[InventoryNode],
    obs: &Observation,
    known_ids: &[Option<NodeId>],
    departed: &[Departed],
    resetting: &[usize],
) -> Vec<Blocker> {
    let ours: BTreeSet<&NodeId> = known_ids
        .iter()
        .flatten()
        .chain(
            (0..inventory.len())
                .filter_map(|i| obs.view(i))
                .map(|v| &v.id),
        )
        .chain(departed.iter().map(|d| &d.id))
        .collect();
    // A node that did not answer (and was never seen) is still ours: a peer's entry at its
    // address is not a stranger's.
    let unobserved: Vec<(std::net::IpAddr, u16)> = inventory
        .iter()
        .enumerate()
        .filter(|(i, _)| obs.view(*i).is_none() && known_ids.get(*i).is_none_or(Option::is_none))
        .map(|(_, n)| (n.ip, n.port))
        .collect();
    let at_unobserved = |e: &crate::parse::NodeEntry| {
        e.addr
            .ip
            .is_some_and(|ip| unobserved.contains(&(ip, e.addr.port)))
    };
    let mut blockers = Vec::new();
    // What a leaving member still knows is its own affair: it is on its way out.
    for (idx, node) in inventory.iter().enumerate().filter(|(_, n)| !n.leaving) {
        let Some(view) = obs.view(idx) else { continue };
        if resetting.contains(&idx) {
            continue;
        }
        let foreign: Vec<&crate::parse::NodeEntry> = view
            .nodes
            .entries()
            .iter()
            .filter(|e| !e.is_handshake() && !ours.contains(&e.id) && !at_unobserved(e))
            .collect();
        if !foreign.is_empty() {
            let listed_by_all = |id: &NodeId| {
                (0..inventory.len())
                    .filter(|i| !inventory[*i].leaving)
                    .filter_map(|i| obs.view(i))
                    .all(|v| v.knows(id).is_some())
            };
            blockers.push(Blocker::ForeignNodes {
                node: node.label.clone(),
                foreign: foreign.iter().map(|e| e.id).collect(),
                described: foreign.iter().map(|e| describe_member(e, view)).collect(),
                members: foreign.iter().all(|e| listed_by_all(&e.id)),
            });
            continue;
        }
        let keys = view.info.key_count();
        let is_member = inventory.len() == 1
            || view
                .nodes
                .peers()
                .any(|e| !e.is_handshake() && ours.contains(&e.id));
        if keys > 0 && !is_member {
            blockers.push(Blocker::HoldsKeys {
                node: node.label.clone(),
                keys,
            });
        }
    }
    blockers
}

/// A member as a view lists it: `10.0.0.4:6379 (id 1a2b3c4d, a primary owning 4096 slots)`.
fn describe_member(entry: &crate::parse::NodeEntry, view: &NodeView) -> String {
    let role = if entry.is_replica() {
        match entry.primary_id.as_ref().and_then(|p| view.nodes.get(p)) {
            Some(primary) => format!("a replica of {}", primary.addr),
            None => "a replica".to_owned(),
        }
    } else if entry.slots.is_empty() {
        "a primary owning no slot".to_owned()
    } else {
        format!(
            "a primary owning {}",
            crate::plural(entry.slots.len() as u64, "slot", "slots")
        )
    };
    format!("{} (id {}, {role})", entry.addr, entry.id.short())
}

/// Distinct config epochs for fresh nodes, above every epoch the cluster has seen.
fn plan_epochs(inventory: &[InventoryNode], obs: &Observation, steps: &mut Vec<Step>) {
    let base = (0..inventory.len())
        .filter_map(|i| obs.view(i))
        .map(|v| v.cluster_info.current_epoch.max(v.myself().config_epoch))
        .max()
        .unwrap_or(0);
    let fresh = (0..inventory.len()).filter(|i| obs.view(*i).is_some_and(NodeView::is_fresh));
    for (rank, node) in fresh.enumerate() {
        steps.push(Step::SetConfigEpoch {
            node,
            epoch: base + rank as u64 + 1,
        });
    }
}

/// Adds the slots nobody owns; slots another node owns move with their keys (`moves`).
fn plan_slots(layout: &Layout, obs: &Observation, steps: &mut Vec<Step>) {
    let mut owned = SlotSet::new();
    for view in obs.nodes.iter().filter_map(|s| s.view()) {
        owned.union_with(&view.myself().slots);
    }
    for shard in &layout.shards {
        let Some(view) = obs.view(shard.primary) else {
            continue;
        };
        let missing: SlotSet = shard.slots.difference(&owned);
        if !missing.is_empty() {
            steps.push(Step::AddSlots {
                node: shard.primary,
                slots: missing,
                ranged: view.version().is_some_and(|v| v.has_addslotsrange()),
            });
        }
    }
}

fn meet(
    from: usize,
    to: usize,
    inventory: &[InventoryNode],
    to_view: &NodeView,
    purpose: MeetPurpose,
) -> Step {
    Step::Meet {
        node: from,
        peer: to,
        ip: inventory[to].ip,
        port: inventory[to].port,
        bus_port: to_view.myself().addr.bus_port,
        purpose,
    }
}

/// Introduces every pair of reachable nodes that do not know each other. When neither side
/// knows the other, the lower index meets the higher (one handshake per pair); when only one
/// side is missing, that side meets, since a node only adds an unknown sender from a MEET.
fn plan_meets(
    layout: &Layout,
    inventory: &[InventoryNode],
    obs: &Observation,
    steps: &mut Vec<Step>,
    waiting: &mut Vec<String>,
) {
    // A leaving node is introduced only while it still owns slots (it must know every target
    // of its moves); once drained, a MEET would undo its forgetting.
    let meetable = |idx: usize| {
        !inventory[idx].leaving || obs.view(idx).is_some_and(|v| !v.myself().slots.is_empty())
    };
    // Roles before the mesh, from ROLES_BEFORE_MESH_FROM nodes on: a replica-to-be meets only
    // its planned primary until it follows it, and everyone else after. Met while still an
    // empty primary, it must later be pushed to every node once its role changed; met as a
    // replica, about half as many pushes are left (each one a handshake on a server).
    let staged = inventory.iter().filter(|n| !n.leaving).count() >= ROLES_BEFORE_MESH_FROM;
    let planned_primary: Vec<Option<usize>> = (0..inventory.len())
        .map(|idx| match layout.role_of(idx) {
            Some(PlannedRole::Replica { primary, .. }) => Some(primary),
            _ => None,
        })
        .collect();
    let held_back: Vec<bool> = (0..inventory.len())
        .map(|idx| staged && planned_primary[idx].is_some() && !is_settled(layout, obs, idx))
        .collect();
    let mut deferred = 0usize;
    let acquainted = Acquaintances::of(inventory.len(), obs);
    for a in (0..inventory.len()).filter(|a| meetable(*a)) {
        for b in (a + 1..inventory.len()).filter(|b| meetable(*b)) {
            let (Some(va), Some(vb)) = (obs.view(a), obs.view(b)) else {
                continue;
            };
            let own_primary = planned_primary[a] == Some(b) || planned_primary[b] == Some(a);
            if (held_back[a] || held_back[b]) && !own_primary {
                if !acquainted.knows(a, b) || !acquainted.knows(b, a) {
                    deferred += 1;
                }
                continue;
            }
            let a_knows = acquainted.knows(a, b);
            let b_knows = acquainted.knows(b, a);
            let (from, to, to_view) = match (a_knows, b_knows) {
                (true, true) => continue,
                (false, false) | (false, true) => (a, b, vb),
                (true, false) => (b, a, va),
            };
            // Scans of the views' handshake entries: only for pairs that still need a MEET.
            let a_meeting = va.is_meeting(inventory[b].ip, inventory[b].port);
            let b_meeting = vb.is_meeting(inventory[a].ip, inventory[a].port);
            if a_meeting || b_meeting {
                waiting.push(format!(
                    "handshake between `{}` and `{}` in progress",
                    inventory[a].label, inventory[b].label
                ));
                continue;
            }
            steps.push(meet(from, to, inventory, to_view, MeetPurpose::Introduce));
        }
    }
    if deferred > 0 {
        waiting.push(format!(
            "{deferred} MEETs of replicas-to-be, sent once they follow their primaries"
        ));
    }
}

/// From this many nodes (leaving ones not counted) on, replicas-to-be meet their primary
/// before the rest of the cluster (see `plan_meets`). Measured on 2 cores
/// (shared/research/formation-speed-limit.md, S4 against S5): at 100 nodes roles first
/// reached agreement sooner (1.6-1.7 s against 1.9-2.1 s) with fewer MEETs; at 30 nodes and
/// below the extra round cost more than the pushes saved (0.56-0.74 s against 0.33-0.44 s).
const ROLES_BEFORE_MESH_FROM: usize = 64;

/// Who knows whom among the observed nodes, one bit a pair: `knows(viewer, subject)` when the
/// viewer holds an entry for the subject's id that is not a handshake placeholder (what
/// `NodeView::knows` says). Built by walking each view's entries in order: asking
/// `NodeView::knows` per pair jumped between views and missed the cache on each, a fifth of
/// planning a formed 1000-node cluster.
struct Acquaintances {
    nodes: usize,
    bits: Vec<u64>,
}

impl Acquaintances {
    fn of(nodes: usize, obs: &Observation) -> Acquaintances {
        let ids = obs.ids_in_order(nodes);
        let mut acquainted = Acquaintances {
            nodes,
            bits: vec![0; (nodes * nodes).div_ceil(64)],
        };
        for viewer in 0..nodes {
            let Some(view) = obs.view(viewer) else {
                continue;
            };
            let listed = view.nodes.get_each(ids.iter().map(|(id, _)| id));
            for (entry, (_, subject)) in listed.zip(&ids) {
                if entry.is_some_and(|e| !e.is_handshake()) {
                    let bit = viewer * nodes + subject;
                    acquainted.bits[bit / 64] |= 1 << (bit % 64);
                }
            }
        }
        acquainted
    }

    fn knows(&self, viewer: usize, subject: usize) -> bool {
        let bit = viewer * self.nodes + subject;
        self.bits[bit / 64] & (1 << (bit % 64)) != 0
    }
}

fn plan_replicas(
    layout: &Layout,
    inventory: &[InventoryNode],
    obs: &Observation,
    steps: &mut Vec<Step>,
    waiting: &mut Vec<String>,
) {
    for shard in &layout.shards {
        let Some(primary_view) = obs.view(shard.primary) else {
            continue;
        };
        for replica in &shard.replicas {
            let Some(view) = obs.view(*replica) else {
                continue;
            };
            let me = view.myself();
            if me.is_replica() && me.primary_id.as_ref() == Some(&primary_view.id) {
                continue;
            }
            // A primary being drained: REPLICATE is refused while it owns a slot, and its
            // keys move with its slots first.
            if !me.is_replica() && !me.slots.is_empty() {
                waiting.push(format!(
                    "`{}` follows `{}` once its slots and keys have moved",
                    inventory[*replica].label, inventory[shard.primary].label
                ));
                continue;
            }
            match view.knows(&primary_view.id) {
                Some(entry) if !entry.is_replica() => steps.push(Step::Replicate {
                    node: *replica,
                    primary: shard.primary,
                    primary_id: primary_view.id,
                }),
                Some(_) => waiting.push(format!(
                    "`{}` still sees `{}` as a replica",
                    inventory[*replica].label, inventory[shard.primary].label
                )),
                None => waiting.push(format!(
                    "`{}` does not know its primary `{}` yet",
                    inventory[*replica].label, inventory[shard.primary].label
                )),
            }
        }
    }
}

/// `CLUSTER REPLICATE` makes a node discard its dataset for its new primary's. That is only
/// harmless when the primary has the data: a replica holding keys is never attached to a
/// primary that owns slots without a single key (a node back empty that took over slots, or
/// a replica that already resynced from one).
fn resync_loss_blockers(
    inventory: &[InventoryNode],
    obs: &Observation,
    steps: &[Step],
) -> Vec<Blocker> {
    steps
        .iter()
        .filter_map(|step| {
            let Step::Replicate { node, primary, .. } = step else {
                return None;
            };
            let (replica_view, primary_view) = (obs.view(*node)?, obs.view(*primary)?);
            let keys = replica_view.info.key_count();
            let empty_owner =
                primary_view.info.key_count() == 0 && !primary_view.myself().slots.is_empty();
            (keys > 0 && empty_owner).then(|| Blocker::ReplicaOntoEmptyPrimary {
                replica: inventory[*node].label.clone(),
                keys,
                primary: inventory[*primary].label.clone(),
            })
        })
        .collect()
}

/// Pushes a node's own header to every peer whose picture of it (role, primary, slots) is
/// stale, unless a step this round already changes that node.
///
/// Walks each viewer's own entries in order and finds the subject through one small map of
/// ids: at 1000 nodes that is a million entries read in sequence, where a lookup per
/// (subject, viewer) pair jumped between views and missed the cache on each.
fn plan_refreshes(
    layout: &Layout,
    inventory: &[InventoryNode],
    obs: &Observation,
    changing: &BTreeSet<usize>,
    steps: &mut Vec<Step>,
) {
    // Only a node in its final role is worth pushing: a replica-to-be pushed as a primary
    // would have to be pushed to everyone again after its REPLICATE (N² wasted pushes).
    let pushable: Vec<bool> = (0..inventory.len())
        .map(|idx| !changing.contains(&idx) && is_settled(layout, obs, idx))
        .collect();
    let truths = obs.own_lines(inventory.len());
    let found = pairs_where(
        inventory,
        obs,
        |viewer_view, seen, subject, subject_view| {
            let Some(truth) = &truths[subject] else {
                return false;
            };
            let stale = seen.is_replica() != truth.is_replica()
                || seen.primary_id != truth.primary_id
                || seen.slots != truth.slots;
            stale && subject_view.knows(&viewer_view.id).is_some()
        },
    );
    let found = found.into_iter().filter(|(subject, _)| pushable[*subject]);
    for (subject, viewer) in found {
        let viewer_view = obs.view(viewer).expect("observed above");
        steps.push(meet(
            subject,
            viewer,
            inventory,
            viewer_view,
            MeetPurpose::Refresh,
        ));
    }
}

/// The (subject, viewer) pairs of observed nodes where the viewer's entry for the subject
/// satisfies `wanted(viewer's view, that entry, subject, subject's view)`, ordered by subject then
/// viewer. Walks each view's entries in order and finds subjects through one id map: a
/// lookup per pair jumps between views and misses the cache on each (1000 nodes: a million).
/// Not `ClusterNodes::get_each`, as `Acquaintances` uses: that walk visits the entries in id
/// order, scattered through the view, and `wanted` reads every one of them (tried: planning
/// the formed 1000-node simulation took 40-55 ms more).
fn pairs_where(
    inventory: &[InventoryNode],
    obs: &Observation,
    wanted: impl Fn(&NodeView, &crate::parse::NodeEntry, usize, &NodeView) -> bool,
) -> Vec<(usize, usize)> {
    // Leaving nodes are neither pushed nor readdressed: once forgotten, a MEET would bring
    // them back.
    let positions: HashMap<NodeId, usize> = (0..inventory.len())
        .filter(|idx| !inventory[*idx].leaving)
        .filter_map(|idx| obs.view(idx).map(|v| (v.id, idx)))
        .collect();
    let mut found = Vec::new();
    for viewer in (0..inventory.len()).filter(|idx| !inventory[*idx].leaving) {
        let Some(viewer_view) = obs.view(viewer) else {
            continue;
        };
        for entry in viewer_view.nodes.peers().filter(|e| !e.is_handshake()) {
            let Some(&subject) = positions.get(&entry.id) else {
                continue;
            };
            let subject_view = obs.view(subject).expect("positions holds observed nodes");
            if subject != viewer && wanted(viewer_view, entry, subject, subject_view) {
                found.push((subject, viewer));
            }
        }
    }
    found.sort_unstable();
    found
}

/// The node holds its planned role: a primary owning its planned slots, or a replica of its
/// planned primary.
fn is_settled(layout: &Layout, obs: &Observation, idx: usize) -> bool {
    let Some(me) = obs.view(idx).map(NodeView::myself) else {
        return false;
    };
    match layout.role_of(idx) {
        Some(PlannedRole::Primary { shard }) => {
            !me.is_replica() && me.slots == layout.shards[shard].slots
        }
        Some(PlannedRole::Replica { primary, .. }) => {
            me.is_replica() && me.primary_id.as_ref() == obs.view(primary).map(|v| &v.id)
        }
        None => true,
    }
}

/// A node that lists a peer at another IP than the one the peer answers at (it came back with
/// a new address, and nodes.conf everywhere holds the old one) MEETs the peer's current
/// address: the peer answers under its known id and the listing is corrected. The peer's own
/// stale idea of its IP is corrected by the MEET it receives.
fn plan_readdresses(inventory: &[InventoryNode], obs: &Observation, steps: &mut Vec<Step>) {
    let found = pairs_where(inventory, obs, |_, entry, subject, _| {
        entry.addr.ip.is_some_and(|ip| ip != inventory[subject].ip)
    });
    for (subject, viewer) in found {
        let subject_view = obs.view(subject).expect("observed above");
        steps.push(meet(
            viewer,
            subject,
            inventory,
            subject_view,
            MeetPurpose::Readdress,
        ));
    }
}
