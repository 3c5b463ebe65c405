//! Forming: the steps that take the live state to the target layout. Introductions (MEET),
//! config epochs and slots before the first MEET, replicas once they know their primary,
//! refresh and readdress MEETs while views disagree, and the forgetting of departed members;
//! plus the blockers that stop all of it before a single command is sent.

use std::collections::BTreeSet;

use super::layout::PlannedRole;
use super::layout::{compute_layout, left_over_from_removal};
use super::leaving::{outside_replica_notes, plan_leaving};
use super::reshard::{SlotMove, open_moves};
use super::{Blocker, Layout, MeetPurpose, Step};
use crate::model::{NodeId, SlotSet};
use crate::parse::{NodeEntry, OpenSlotKind};
use crate::snapshot::{Departed, NodeKey, NodeRecord, NodeView, Snapshot};
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

/// Plans the next round from the spec and the snapshot. Nodes that do not answer keep the id
/// they had when last seen (in their records), so that their entries in other nodes' views
/// are not mistaken for foreign members.
pub fn plan(spec: &ClusterSpec, snapshot: &Snapshot) -> Plan {
    let mut blockers = same_node_blockers(snapshot);
    let ours = snapshot.our_ids();
    let departed = snapshot.departed_members(&|id| ours.contains(id));
    // Spec nodes left over from an earlier removal (none of the slot owners lists them) are
    // reset first when the spec allows resets, and then join as new nodes: what they still
    // know of the old cluster does not count against them.
    let resetting: Vec<NodeKey> = if spec.reset_removed {
        snapshot
            .iter()
            .filter(|n| left_over_from_removal(n, snapshot).is_some())
            .map(|n| n.key.clone())
            .collect()
    } else {
        Vec::new()
    };
    if blockers.is_empty() {
        blockers = membership_blockers(snapshot, &departed, &resetting);
    }
    blockers.extend(departed_blockers(snapshot, &departed));
    if !blockers.is_empty() {
        return blocked(blockers);
    }
    let mut layout = match compute_layout(
        spec.primaries,
        spec.replicas_per_primary,
        snapshot,
        &resetting,
    ) {
        Ok(layout) => layout,
        Err(blockers) => return blocked(blockers),
    };
    layout.notes.extend(outside_replica_notes(snapshot));
    let mut steps: Vec<Step> = resetting
        .into_iter()
        .map(|node| Step::ResetRemoved { node })
        .collect();
    let mut waiting = Vec::new();
    plan_forgets(&departed, &mut steps, &mut waiting);
    if let Err(blockers) = plan_leaving(spec.reset_removed, snapshot, &mut steps, &mut waiting) {
        return blocked(blockers);
    }
    plan_epochs(snapshot, &mut steps);
    plan_unstick_imports(snapshot, &mut steps);
    plan_slots(&layout, snapshot, &mut steps);
    plan_meets(&layout, snapshot, &mut steps, &mut waiting);
    plan_replicas(&layout, snapshot, &mut steps, &mut waiting);
    let moves = ready_moves(&layout, snapshot, &mut waiting);
    let unsafe_moves = resync_loss_blockers(snapshot, &steps);
    if !unsafe_moves.is_empty() {
        return blocked(unsafe_moves);
    }
    let changing: BTreeSet<&NodeKey> = steps.iter().map(Step::node).collect();
    let mut refreshes = refreshes(&layout, snapshot, &changing);
    steps.append(&mut refreshes);
    plan_readdresses(snapshot, &mut steps);
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
fn same_node_blockers(snapshot: &Snapshot) -> Vec<Blocker> {
    let mut first_at: std::collections::BTreeMap<&NodeId, &NodeKey> = Default::default();
    let mut blockers = Vec::new();
    for (node, view) in snapshot.views() {
        if let Some(other) = first_at.get(&view.id) {
            blockers.push(Blocker::SameNode {
                a: (*other).clone(),
                b: node.key.clone(),
                id: view.id,
            });
        } else {
            first_at.insert(&view.id, &node.key);
        }
    }
    blockers
}

/// A departed member may only be forgotten once it owns nothing: while the views still give
/// it slots, its replica has not taken over, and the data of those slots is nowhere else.
fn departed_blockers(snapshot: &Snapshot, departed: &[Departed]) -> Vec<Blocker> {
    departed
        .iter()
        .filter(|d| !d.slots.is_empty())
        .filter_map(|d| {
            Some(Blocker::ReplacedNodeOwnsSlots {
                node: d.successor.clone(),
                new_id: snapshot.view(&d.successor)?.id,
                old_id: d.id,
                flags: d.flags.clone(),
                slots: d.slots.ranges().to_vec(),
                replicas: d
                    .replicas
                    .iter()
                    .map(|r| {
                        let keys = snapshot.view(r).map_or(0, |v| v.info.key_count());
                        format!("{r} ({})", crate::plural(keys, "key", "keys"))
                    })
                    .collect(),
            })
        })
        .collect()
}

/// Forgets every departed member that owns no slot on every node that lists it, all in one
/// round (the forget ban lasts 60 s); one still followed by a replica waits until the layout
/// has moved that replica (a replica cannot forget its own primary).
fn plan_forgets(departed: &[Departed], steps: &mut Vec<Step>, waiting: &mut Vec<String>) {
    for d in departed.iter().filter(|d| d.slots.is_empty()) {
        if !d.replicas.is_empty() {
            let followers: Vec<&str> = d.replicas.iter().map(NodeKey::label).collect();
            waiting.push(format!(
                "{} still replicate the departed {}; it is forgotten once they follow a live primary",
                followers.join(", "),
                d.id.short()
            ));
            continue;
        }
        for node in &d.listed_by {
            steps.push(Step::Forget {
                node: node.clone(),
                id: d.id,
                leaving: false,
            });
        }
    }
}

/// The slot moves to run now: those a previous run left open first (and only those while any
/// is open), each once both ends are reachable and every primary of the spec knows the target
/// (`SETSLOT NODE` names it to all of them).
fn ready_moves(layout: &Layout, snapshot: &Snapshot, waiting: &mut Vec<String>) -> Vec<SlotMove> {
    let open = open_moves(snapshot);
    let candidates = if open.is_empty() {
        layout.moves.clone()
    } else {
        open
    };
    let primaries: Vec<&NodeRecord> = snapshot
        .spec_nodes()
        .filter(|n| n.view().is_some_and(|v| !v.myself().is_replica()))
        .collect();
    let ready: Vec<SlotMove> = candidates
        .into_iter()
        .filter(|m| {
            let (Some(source), Some(target)) = (snapshot.view(&m.source), snapshot.view(&m.target))
            else {
                waiting.push(format!(
                    "moving {m}: `{}` and `{}` must both answer",
                    m.source, m.target
                ));
                return false;
            };
            let unaware = primaries
                .iter()
                .filter_map(|n| n.view())
                .chain([source])
                .filter(|v| v.id != target.id)
                .any(|v| v.knows(&target.id).is_none());
            if unaware || target.knows(&source.id).is_none() {
                waiting.push(format!(
                    "slots move to `{}` once every primary knows it",
                    m.target
                ));
                return false;
            }
            // A target that does not see the source own every slot of the move (it joined
            // moments ago, or its view lags) would answer the source's RESTORE-ASKING with
            // `CLUSTERDOWN Hash slot not served`; and a node importing a slot ignores gossip
            // about that slot's owner, so it must learn the owner before IMPORTING.
            // (A slot the target already took over, in a move cut short between the
            // SETSLOT NODE calls, only needs the hand-over finished.)
            let mut seen = target
                .knows(&source.id)
                .map(|e| e.slots.clone())
                .unwrap_or_default();
            seen.union_with(&target.myself().slots);
            if seen.intersection(&m.slots) != m.slots || !target.cluster_info.is_ok() {
                waiting.push(format!(
                    "slots move to `{}` once it sees their owner `{}` and its cluster_state is ok",
                    m.target, m.source
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
fn plan_unstick_imports(snapshot: &Snapshot, steps: &mut Vec<Step>) {
    for node in snapshot.spec_nodes() {
        let Some(view) = node.view() else { continue };
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
            node: node.key.clone(),
            slot: open.slot,
        }));
    }
}

/// Refuses nodes that belong elsewhere: members outside the spec, or keys on a node that is
/// not yet part of this cluster (adopting it could hide or orphan that data).
fn membership_blockers(
    snapshot: &Snapshot,
    departed: &[Departed],
    resetting: &[NodeKey],
) -> Vec<Blocker> {
    let mut ours = snapshot.our_ids();
    ours.extend(departed.iter().map(|d| d.id));
    // A node that did not answer (and was never seen) is still ours: a peer's entry at its
    // address is not a stranger's.
    let unobserved: Vec<(std::net::IpAddr, u16)> = snapshot
        .iter()
        .filter(|n| n.id().is_none())
        .map(|n| (n.ip, n.port))
        .collect();
    let at_unobserved = |e: &NodeEntry| {
        e.addr
            .ip
            .is_some_and(|ip| unobserved.contains(&(ip, e.addr.port)))
    };
    let mut blockers = Vec::new();
    // What a leaving member still knows is its own affair: it is on its way out.
    let foreign = snapshot.foreign_members(&ours, true);
    let mut foreign_of = foreign.iter().peekable();
    for node in snapshot.spec_nodes() {
        let Some(view) = node.view() else { continue };
        let listed: Vec<&NodeEntry> = match foreign_of.peek() {
            Some(f) if f.viewer == node.key => foreign_of
                .next()
                .expect("peeked")
                .entries
                .iter()
                .copied()
                .filter(|e| !at_unobserved(e))
                .collect(),
            _ => Vec::new(),
        };
        if resetting.contains(&node.key) {
            continue;
        }
        if !listed.is_empty() {
            let listed_by_all = |id: &NodeId| {
                snapshot
                    .spec_nodes()
                    .filter_map(NodeRecord::view)
                    .all(|v| v.knows(id).is_some())
            };
            blockers.push(Blocker::ForeignNodes {
                node: node.key.clone(),
                foreign: listed.iter().map(|e| e.id).collect(),
                described: listed.iter().map(|e| describe_member(e, view)).collect(),
                members: listed.iter().all(|e| listed_by_all(&e.id)),
            });
            continue;
        }
        let keys = view.info.key_count();
        let is_member = snapshot.len() == 1
            || view
                .nodes
                .peers()
                .any(|e| !e.is_handshake() && ours.contains(&e.id));
        if keys > 0 && !is_member {
            blockers.push(Blocker::HoldsKeys {
                node: node.key.clone(),
                keys,
            });
        }
    }
    blockers
}

/// A member as a view lists it: `10.0.0.4:6379 (id 1a2b3c4d, a primary owning 4096 slots)`.
fn describe_member(entry: &NodeEntry, view: &NodeView) -> String {
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
fn plan_epochs(snapshot: &Snapshot, steps: &mut Vec<Step>) {
    let base = snapshot
        .views()
        .map(|(_, v)| v.cluster_info.current_epoch.max(v.myself().config_epoch))
        .max()
        .unwrap_or(0);
    let fresh = snapshot.views().filter(|(_, v)| v.is_fresh());
    for (rank, (node, _)) in fresh.enumerate() {
        steps.push(Step::SetConfigEpoch {
            node: node.key.clone(),
            epoch: base + rank as u64 + 1,
        });
    }
}

/// Adds the slots nobody owns; slots another node owns move with their keys (`moves`).
fn plan_slots(layout: &Layout, snapshot: &Snapshot, steps: &mut Vec<Step>) {
    let mut owned = SlotSet::new();
    for (_, view) in snapshot.views() {
        owned.union_with(&view.myself().slots);
    }
    for shard in &layout.shards {
        let Some(view) = snapshot.view(&shard.primary) else {
            continue;
        };
        let missing: SlotSet = shard.slots.difference(&owned);
        if !missing.is_empty() {
            steps.push(Step::AddSlots {
                node: shard.primary.clone(),
                slots: missing,
                ranged: view.version().is_some_and(|v| v.has_addslotsrange()),
            });
        }
    }
}

fn meet(from: &NodeRecord, to: &NodeRecord, to_view: &NodeView, purpose: MeetPurpose) -> Step {
    Step::Meet {
        node: from.key.clone(),
        peer: to.key.clone(),
        ip: to.ip,
        port: to.port,
        bus_port: to_view.myself().addr.bus_port,
        purpose,
    }
}

/// Introduces every pair of reachable nodes that do not know each other. When neither side
/// knows the other, the earlier node meets the later (one handshake per pair); when only one
/// side is missing, that side meets, since a node only adds an unknown sender from a MEET.
fn plan_meets(
    layout: &Layout,
    snapshot: &Snapshot,
    steps: &mut Vec<Step>,
    waiting: &mut Vec<String>,
) {
    let nodes = snapshot.records();
    // A leaving node is introduced only while it still owns slots (it must know every target
    // of its moves); once drained, a MEET would undo its forgetting.
    let meetable = |at: usize| {
        !nodes[at].leaving
            || nodes[at]
                .view()
                .is_some_and(|v| !v.myself().slots.is_empty())
    };
    // Roles before the mesh, from ROLES_BEFORE_MESH_FROM nodes on: a replica-to-be meets only
    // its planned primary until it follows it, and everyone else after. Met while still an
    // empty primary, it must later be pushed to every node once its role changed; met as a
    // replica, about half as many pushes are left (each one a handshake on a server).
    let staged = snapshot.spec_nodes().count() >= ROLES_BEFORE_MESH_FROM;
    let planned_primary: Vec<Option<NodeKey>> = nodes
        .iter()
        .map(|n| match layout.role_of(&n.key) {
            Some(PlannedRole::Replica { primary, .. }) => Some(primary),
            _ => None,
        })
        .collect();
    let held_back: Vec<bool> = nodes
        .iter()
        .zip(&planned_primary)
        .map(|(n, primary)| staged && primary.is_some() && !is_settled(layout, snapshot, n))
        .collect();
    let mut deferred = 0usize;
    let acquainted = Acquaintances::of(snapshot);
    for a in (0..nodes.len()).filter(|a| meetable(*a)) {
        for b in (a + 1..nodes.len()).filter(|b| meetable(*b)) {
            let (Some(va), Some(vb)) = (nodes[a].view(), nodes[b].view()) else {
                continue;
            };
            let own_primary = planned_primary[a].as_ref() == Some(&nodes[b].key)
                || planned_primary[b].as_ref() == Some(&nodes[a].key);
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
            let a_meeting = va.is_meeting(nodes[b].ip, nodes[b].port);
            let b_meeting = vb.is_meeting(nodes[a].ip, nodes[a].port);
            if a_meeting || b_meeting {
                waiting.push(format!(
                    "handshake between `{}` and `{}` in progress",
                    nodes[a].key, nodes[b].key
                ));
                continue;
            }
            steps.push(meet(
                &nodes[from],
                &nodes[to],
                to_view,
                MeetPurpose::Introduce,
            ));
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

/// Who knows whom among the observed nodes, one bit a pair of record positions:
/// `knows(viewer, subject)` when the viewer holds an entry for the subject's id that is not a
/// handshake placeholder (what `NodeView::knows` says). Built by walking each view's entries
/// in order: asking `NodeView::knows` per pair jumped between views and missed the cache on
/// each, a fifth of planning a formed 1000-node cluster.
struct Acquaintances {
    nodes: usize,
    bits: Vec<u64>,
}

impl Acquaintances {
    fn of(snapshot: &Snapshot) -> Acquaintances {
        let records = snapshot.records();
        let nodes = records.len();
        let ids = snapshot.ids_in_order();
        let mut acquainted = Acquaintances {
            nodes,
            bits: vec![0; (nodes * nodes).div_ceil(64)],
        };
        for (viewer, record) in records.iter().enumerate() {
            let Some(view) = record.view() else {
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
    snapshot: &Snapshot,
    steps: &mut Vec<Step>,
    waiting: &mut Vec<String>,
) {
    for shard in &layout.shards {
        let Some(primary_view) = snapshot.view(&shard.primary) else {
            continue;
        };
        for replica in &shard.replicas {
            let Some(view) = snapshot.view(replica) else {
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
                    "`{replica}` follows `{}` once its slots and keys have moved",
                    shard.primary
                ));
                continue;
            }
            match view.knows(&primary_view.id) {
                Some(entry) if !entry.is_replica() => steps.push(Step::Replicate {
                    node: replica.clone(),
                    primary: shard.primary.clone(),
                    primary_id: primary_view.id,
                }),
                Some(_) => waiting.push(format!(
                    "`{replica}` still sees `{}` as a replica",
                    shard.primary
                )),
                None => waiting.push(format!(
                    "`{replica}` does not know its primary `{}` yet",
                    shard.primary
                )),
            }
        }
    }
}

/// `CLUSTER REPLICATE` makes a node discard its dataset for its new primary's. That is only
/// harmless when the primary has the data: a replica holding keys is never attached to a
/// primary that owns slots without a single key (a node back empty that took over slots, or
/// a replica that already resynced from one).
fn resync_loss_blockers(snapshot: &Snapshot, steps: &[Step]) -> Vec<Blocker> {
    steps
        .iter()
        .filter_map(|step| {
            let Step::Replicate { node, primary, .. } = step else {
                return None;
            };
            let (replica_view, primary_view) = (snapshot.view(node)?, snapshot.view(primary)?);
            let keys = replica_view.info.key_count();
            let empty_owner =
                primary_view.info.key_count() == 0 && !primary_view.myself().slots.is_empty();
            (keys > 0 && empty_owner).then(|| Blocker::ReplicaOntoEmptyPrimary {
                replica: node.clone(),
                keys,
                primary: primary.clone(),
            })
        })
        .collect()
}

/// Pushes a node's own header to every peer whose picture of it (role, primary, slots) is
/// stale, unless a step this round already changes that node.
fn refreshes(layout: &Layout, snapshot: &Snapshot, changing: &BTreeSet<&NodeKey>) -> Vec<Step> {
    let mut steps = Vec::new();
    for stale in snapshot.stale_peer_views(true) {
        // Only a node in its final role is worth pushing: a replica-to-be pushed as a
        // primary would have to be pushed to everyone again after its REPLICATE (N² wasted
        // pushes).
        if changing.contains(&stale.subject) {
            continue;
        }
        let (Some(subject), Some(viewer)) =
            (snapshot.get(&stale.subject), snapshot.get(&stale.viewer))
        else {
            continue;
        };
        if !is_settled(layout, snapshot, subject) {
            continue;
        }
        let viewer_view = viewer.view().expect("stale views are of observed nodes");
        steps.push(meet(subject, viewer, viewer_view, MeetPurpose::Refresh));
    }
    steps
}

/// The node holds its planned role: a primary owning its planned slots, or a replica of its
/// planned primary.
fn is_settled(layout: &Layout, snapshot: &Snapshot, node: &NodeRecord) -> bool {
    let Some(me) = node.view().map(NodeView::myself) else {
        return false;
    };
    match layout.role_of(&node.key) {
        Some(PlannedRole::Primary { shard }) => {
            !me.is_replica() && me.slots == layout.shards[shard].slots
        }
        Some(PlannedRole::Replica { primary, .. }) => {
            me.is_replica() && me.primary_id.as_ref() == snapshot.view(&primary).map(|v| &v.id)
        }
        None => true,
    }
}

/// A node that lists a peer at another IP than the one the peer answers at (it came back with
/// a new address, and nodes.conf everywhere holds the old one) MEETs the peer's current
/// address: the peer answers under its known id and the listing is corrected. The peer's own
/// stale idea of its IP is corrected by the MEET it receives.
fn plan_readdresses(snapshot: &Snapshot, steps: &mut Vec<Step>) {
    let mut stale = snapshot.stale_addresses(true);
    stale.retain(|s| s.viewer != s.subject);
    stale.sort_by(|a, b| (&a.subject, &a.viewer).cmp(&(&b.subject, &b.viewer)));
    for s in stale {
        let (Some(viewer), Some(subject)) = (snapshot.get(&s.viewer), snapshot.get(&s.subject))
        else {
            continue;
        };
        let subject_view = subject
            .view()
            .expect("stale addresses are of observed nodes");
        steps.push(meet(viewer, subject, subject_view, MeetPurpose::Readdress));
    }
}
