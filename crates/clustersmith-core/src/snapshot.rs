//! The cluster as one operation sees it: one record per node under a stable [`NodeKey`], with
//! where it is reached, what the spec says of it, the id it had when last seen and its latest
//! answers. The I/O shell fills and refreshes it; planners, verification and diagnosis only
//! read it.
//!
//! The questions several of them ask of the same views are answered here, once: a member
//! listed at an address it no longer answers at ([`Snapshot::stale_addresses`]), a member
//! outside the expected set ([`Snapshot::foreign_members`]), a peer's picture of a node that
//! lags behind the node's own line ([`Snapshot::stale_peer_views`]), and a member whose
//! address now answers with another id ([`Snapshot::departed_members`]).
//!
//! Architecture invariant: nothing outside this module names a node by its position; the
//! records' order (spec nodes, then members on their way out) is an internal detail.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::model::{NodeFlag, NodeId, ServerVersion, SlotSet};
use crate::parse::{ClusterInfo, ClusterNodes, NodeEntry, ServerInfo};

/// A node's name for the length of an operation: the spec's address for a node of the spec
/// (`redis-1.example:6379`, as written), or the id of a member the spec does not list. Cheap to
/// clone; shown as the address, or as the id's short form.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeKey(Arc<str>);

/// The empty key: only a placeholder for a record being built.
impl Default for NodeKey {
    fn default() -> NodeKey {
        NodeKey::named("")
    }
}

/// The prefix that marks a key made from a node id.
const MEMBER: &str = "id:";

impl NodeKey {
    /// The key of a node named by the operator (a spec address, or a description).
    pub fn named(label: &str) -> NodeKey {
        NodeKey(Arc::from(label))
    }

    /// The key of a member known only by its id (one the spec does not list).
    pub fn member(id: &NodeId) -> NodeKey {
        NodeKey(Arc::from(format!("{MEMBER}{id}")))
    }

    /// The id, for a key made from one.
    pub fn member_id(&self) -> Option<NodeId> {
        NodeId::parse(self.0.strip_prefix(MEMBER)?).ok()
    }

    /// What users see: the address as given, or the id's short form.
    pub fn label(&self) -> &str {
        match self.0.strip_prefix(MEMBER) {
            Some(id) => &id[..8.min(id.len())],
            None => &self.0,
        }
    }
}

impl From<&str> for NodeKey {
    fn from(label: &str) -> NodeKey {
        NodeKey::named(label)
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey({})", self.0)
    }
}

/// The placement domain used for anti-affinity: the zone when zones are given, else the host IP.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    Zone(String),
    Host(IpAddr),
}

/// One node's answers in one round.
#[derive(Clone, Debug)]
pub struct NodeView {
    pub id: NodeId,
    pub nodes: ClusterNodes,
    pub cluster_info: ClusterInfo,
    pub info: ServerInfo,
}

impl NodeView {
    /// The node's own `CLUSTER NODES` line. Parsing guarantees exactly one before a view is built.
    pub fn myself(&self) -> &NodeEntry {
        self.nodes
            .myself()
            .expect("a NodeView is only built from a reply with a `myself` line")
    }

    pub fn version(&self) -> Option<ServerVersion> {
        self.info.version()
    }

    /// The entry this node holds for `id`, unless it is still a handshake placeholder.
    pub fn knows(&self, id: &NodeId) -> Option<&NodeEntry> {
        self.nodes.get(id).filter(|e| !e.is_handshake())
    }

    /// True when this node has a handshake entry for the given address (a MEET in flight).
    pub fn is_meeting(&self, ip: IpAddr, port: u16) -> bool {
        self.nodes
            .entries()
            .iter()
            .any(|e| e.is_handshake() && e.addr.ip == Some(ip) && e.addr.port == port)
    }

    /// A fresh node: it knows nobody and has never been given a config epoch.
    pub fn is_fresh(&self) -> bool {
        self.nodes.entries().len() == 1 && self.myself().config_epoch == 0
    }
}

/// What the last read of a node gave.
#[derive(Clone, Debug)]
pub enum NodeState {
    Seen(Box<NodeView>),
    /// Not reachable at the last read; the text says why.
    Unreachable(String),
}

/// One node of the operation.
#[derive(Clone, Debug)]
pub struct NodeRecord {
    pub key: NodeKey,
    /// Where it is reached (after name resolution).
    pub ip: IpAddr,
    pub port: u16,
    pub zone: Option<String>,
    /// Its share of the slots when it is a primary (the spec's `weight`; 1 when not given).
    pub weight: u32,
    /// A member of the cluster that is not in the spec, reached at the address its peers list:
    /// its slots are moved away, then it is forgotten (`--remove-unlisted`).
    pub leaving: bool,
    /// The id it had when last seen (kept while it does not answer).
    pub known_id: Option<NodeId>,
    pub state: NodeState,
}

impl NodeRecord {
    /// A node of the spec, not read yet.
    pub fn spec(key: NodeKey, ip: IpAddr, port: u16, zone: Option<String>, weight: u32) -> Self {
        NodeRecord {
            key,
            ip,
            port,
            zone,
            weight,
            leaving: false,
            known_id: None,
            state: NodeState::Unreachable("not read yet".to_owned()),
        }
    }

    /// A member to remove, reached at the address its peers list.
    pub fn leaving(id: NodeId, ip: IpAddr, port: u16) -> Self {
        NodeRecord {
            key: NodeKey::member(&id),
            ip,
            port,
            zone: None,
            weight: 1,
            leaving: true,
            known_id: Some(id),
            state: NodeState::Unreachable("not read yet".to_owned()),
        }
    }

    pub fn label(&self) -> &str {
        self.key.label()
    }

    pub fn view(&self) -> Option<&NodeView> {
        match &self.state {
            NodeState::Seen(view) => Some(view),
            NodeState::Unreachable(_) => None,
        }
    }

    /// The id it answers as, else the one it had when last seen.
    pub fn id(&self) -> Option<NodeId> {
        self.view().map(|v| v.id).or(self.known_id)
    }

    pub fn domain(&self) -> Domain {
        match &self.zone {
            Some(zone) => Domain::Zone(zone.clone()),
            None => Domain::Host(self.ip),
        }
    }

    /// Takes in a new read; the id it answered as is remembered.
    pub fn set_state(&mut self, state: NodeState) {
        if let NodeState::Seen(view) = &state {
            self.known_id = Some(view.id);
        }
        self.state = state;
    }
}

/// Every node of one operation: the spec's nodes first, then members on their way out.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    records: Vec<NodeRecord>,
    index: HashMap<NodeKey, usize>,
}

impl Snapshot {
    pub fn new(records: Vec<NodeRecord>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for record in records {
            snapshot.add(record);
        }
        snapshot
    }

    /// Adds a node (a member found to be leaving); a key already present is replaced.
    pub fn add(&mut self, record: NodeRecord) {
        match self.index.get(&record.key) {
            Some(at) => self.records[*at] = record,
            None => {
                self.index.insert(record.key.clone(), self.records.len());
                self.records.push(record);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every node: the spec's first, in spec order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &NodeRecord> + ExactSizeIterator {
        self.records.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut NodeRecord> {
        self.records.iter_mut()
    }

    pub fn keys(&self) -> impl Iterator<Item = &NodeKey> {
        self.records.iter().map(|r| &r.key)
    }

    /// The spec's nodes, in spec order.
    pub fn spec_nodes(&self) -> impl Iterator<Item = &NodeRecord> {
        self.records.iter().filter(|r| !r.leaving)
    }

    /// Members on their way out.
    pub fn leaving_nodes(&self) -> impl Iterator<Item = &NodeRecord> {
        self.records.iter().filter(|r| r.leaving)
    }

    /// Nodes that answered at the last read, with their views.
    pub fn views(&self) -> impl Iterator<Item = (&NodeRecord, &NodeView)> {
        self.records
            .iter()
            .filter_map(|r| r.view().map(|view| (r, view)))
    }

    pub fn get(&self, key: &NodeKey) -> Option<&NodeRecord> {
        self.index.get(key).map(|at| &self.records[*at])
    }

    pub fn get_mut(&mut self, key: &NodeKey) -> Option<&mut NodeRecord> {
        self.index.get(key).map(|at| &mut self.records[*at])
    }

    pub fn view(&self, key: &NodeKey) -> Option<&NodeView> {
        self.get(key).and_then(NodeRecord::view)
    }

    /// The node answering as `id`.
    pub fn answering_as(&self, id: &NodeId) -> Option<&NodeRecord> {
        self.records
            .iter()
            .find(|r| r.view().is_some_and(|v| &v.id == id))
    }

    /// The key of the node known as `id` (answering as it, or last seen as it).
    pub fn key_of(&self, id: &NodeId) -> Option<&NodeKey> {
        self.answering_as(id)
            .or_else(|| self.records.iter().find(|r| r.known_id == Some(*id)))
            .map(|r| &r.key)
    }

    /// The key of the node known as `id`, or a member key for an id no node is known as.
    pub fn key_for(&self, id: &NodeId) -> NodeKey {
        self.key_of(id)
            .cloned()
            .unwrap_or_else(|| NodeKey::member(id))
    }

    /// The label of the node answering as `id`, else the id's short form.
    pub fn label_of(&self, id: &NodeId) -> String {
        self.answering_as(id)
            .map_or_else(|| id.short().to_owned(), |r| r.label().to_owned())
    }

    /// The id the observed nodes list at `ip:port`, when they agree on one: what an
    /// unreachable (frozen, stopped) node is known as, so its entries in its peers' views are
    /// not taken for strangers.
    pub fn id_listed_at(&self, ip: IpAddr, port: u16) -> Option<NodeId> {
        let mut found: Option<&NodeId> = None;
        for (_, view) in self.views() {
            for entry in view.nodes.entries() {
                if entry.is_handshake() || entry.addr.ip != Some(ip) || entry.addr.port != port {
                    continue;
                }
                match found {
                    Some(id) if *id != entry.id => return None,
                    _ => found = Some(&entry.id),
                }
            }
        }
        found.cloned()
    }

    /// The id each spec node is expected to have: the one it answers as, else the one it had
    /// when last seen, else the one its peers list at its address.
    pub fn expected_ids(&self) -> BTreeMap<NodeKey, NodeId> {
        self.spec_nodes()
            .filter_map(|r| {
                let id = r.id().or_else(|| self.id_listed_at(r.ip, r.port))?;
                Some((r.key.clone(), id))
            })
            .collect()
    }

    /// Every id a node of this operation answers as or answered as when last seen.
    pub fn our_ids(&self) -> BTreeSet<NodeId> {
        self.records.iter().filter_map(NodeRecord::id).collect()
    }

    /// The records in their internal order, for the walks over every pair of nodes that
    /// must not look nodes up by key (planning and verifying 1000 nodes).
    pub(crate) fn records(&self) -> &[NodeRecord] {
        &self.records
    }

    /// Each node's own `CLUSTER NODES` line, copied side by side in record order: checks that
    /// compare every view with every node's own line read them N² times, and reading them
    /// from their own views missed the cache on each.
    pub(crate) fn own_lines(&self) -> Vec<Option<NodeEntry>> {
        self.records
            .iter()
            .map(|r| r.view().map(|v| v.myself().clone()))
            .collect()
    }

    /// The ids of the observed nodes with their record positions, in id order: what
    /// `ClusterNodes::get_each` walks a view against.
    pub(crate) fn ids_in_order(&self) -> Vec<(NodeId, usize)> {
        let mut ids: Vec<(NodeId, usize)> = self
            .records
            .iter()
            .enumerate()
            .filter_map(|(at, r)| r.view().map(|v| (v.id, at)))
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// A member listed at another IP than the one it answers at: it came back with a new address
/// and the viewer still dials the old one (or believes its own address is the old one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleAddress {
    pub viewer: NodeKey,
    pub subject: NodeKey,
    /// Where the viewer lists it.
    pub listed: crate::model::NodeAddr,
    /// Where it answers.
    pub answers_at: IpAddr,
}

/// A node's view of a peer that differs from the peer's own line in role, primary or slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StalePeerView {
    pub viewer: NodeKey,
    pub subject: NodeKey,
}

/// Entries of a view that belong to no node of the operation.
#[derive(Clone, Debug)]
pub struct ForeignMembers<'a> {
    pub viewer: NodeKey,
    pub entries: Vec<&'a NodeEntry>,
}

impl Snapshot {
    /// Every member listed at another IP than the one it answers at, by every view that lists
    /// it so (its own included, when it believes its address is the stale one). `spec_only`
    /// leaves members on their way out aside, as viewers and as subjects.
    pub fn stale_addresses(&self, spec_only: bool) -> Vec<StaleAddress> {
        let wanted = |r: &&NodeRecord| !spec_only || !r.leaving;
        let answering: HashMap<NodeId, &NodeRecord> = self
            .records
            .iter()
            .filter(wanted)
            .filter_map(|r| r.view().map(|v| (v.id, r)))
            .collect();
        let mut found = Vec::new();
        for viewer in self.records.iter().filter(wanted) {
            let Some(view) = viewer.view() else { continue };
            for entry in view.nodes.entries().iter().filter(|e| !e.is_handshake()) {
                let Some(subject) = answering.get(&entry.id) else {
                    continue;
                };
                if let Some(listed_ip) = entry.addr.ip
                    && listed_ip != subject.ip
                {
                    found.push(StaleAddress {
                        viewer: viewer.key.clone(),
                        subject: subject.key.clone(),
                        listed: entry.addr,
                        answers_at: subject.ip,
                    });
                }
            }
        }
        found
    }

    /// Every view's entries for ids that are not in `ours` (and not handshakes): members of
    /// another cluster, or of this one that the operation does not count as its own.
    pub fn foreign_members<'a>(
        &'a self,
        ours: &BTreeSet<NodeId>,
        spec_only: bool,
    ) -> Vec<ForeignMembers<'a>> {
        // Probed once per entry of every view: a hash set, not the caller's tree.
        let ours: std::collections::HashSet<&NodeId> = ours.iter().collect();
        self.records
            .iter()
            .filter(|r| !spec_only || !r.leaving)
            .filter_map(|r| {
                let view = r.view()?;
                let entries: Vec<&NodeEntry> = view
                    .nodes
                    .entries()
                    .iter()
                    .filter(|e| !e.is_handshake() && !ours.contains(&e.id))
                    .collect();
                (!entries.is_empty()).then(|| ForeignMembers {
                    viewer: r.key.clone(),
                    entries,
                })
            })
            .collect()
    }

    /// Every (viewer, subject) pair of spec nodes where the viewer's entry for the subject
    /// differs from the subject's own line in role, primary or slots, ordered by subject then
    /// viewer. With `known_back`, only pairs where the subject knows the viewer too (a MEET
    /// from the subject refreshes the viewer's picture then).
    pub fn stale_peer_views(&self, known_back: bool) -> Vec<StalePeerView> {
        let truths = self.own_lines();
        let mut found = Vec::new();
        for (subject, viewer) in self.pairs_where(|viewer, entry, subject, subject_view| {
            let Some(truth) = &truths[subject] else {
                return false;
            };
            let stale = entry.is_replica() != truth.is_replica()
                || entry.primary_id != truth.primary_id
                || entry.slots != truth.slots;
            stale && (!known_back || subject_view.knows(&viewer.id).is_some())
        }) {
            found.push(StalePeerView {
                viewer: self.records[viewer].key.clone(),
                subject: self.records[subject].key.clone(),
            });
        }
        found
    }

    /// The (subject, viewer) pairs of observed spec nodes (positions in `records`) where the
    /// viewer's entry for the subject satisfies `wanted(viewer's view, that entry, subject's
    /// view)`, ordered by subject then viewer. Walks each view's entries in order and finds
    /// subjects through one id map: a lookup per pair jumps between views and misses the cache
    /// on each (1000 nodes: a million lookups). Not `ClusterNodes::get_each`: that walk visits
    /// the entries in id order, scattered through the view, and `wanted` reads every one of
    /// them (tried: planning the formed 1000-node simulation took 40-55 ms more).
    pub(crate) fn pairs_where(
        &self,
        wanted: impl Fn(&NodeView, &NodeEntry, usize, &NodeView) -> bool,
    ) -> Vec<(usize, usize)> {
        // Members on their way out are neither pushed nor readdressed: once forgotten, a MEET
        // would bring them back.
        let positions: HashMap<NodeId, usize> = self
            .records
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.leaving)
            .filter_map(|(at, r)| r.view().map(|v| (v.id, at)))
            .collect();
        let mut found = Vec::new();
        for (viewer, record) in self.records.iter().enumerate().filter(|(_, r)| !r.leaving) {
            let Some(viewer_view) = record.view() else {
                continue;
            };
            for entry in viewer_view.nodes.peers().filter(|e| !e.is_handshake()) {
                let Some(&subject) = positions.get(&entry.id) else {
                    continue;
                };
                let subject_view = self.records[subject]
                    .view()
                    .expect("positions holds observed nodes");
                if subject != viewer && wanted(viewer_view, entry, subject, subject_view) {
                    found.push((subject, viewer));
                }
            }
        }
        found.sort_unstable();
        found
    }
}

/// One departed member, as the observed views list it: an expected address now answers with
/// another id (a lost disk, a recreated VM), and its peers keep the old one, at that address
/// or with its address forgotten (`noaddr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Departed {
    pub id: NodeId,
    /// The expected node now answering at the departed id's address with another id, or, when
    /// the peers forgot the address (`noaddr`), the newcomer nobody knows yet.
    pub successor: NodeKey,
    /// Slots the views still give it (any view): while it owns some, forgetting it would drop
    /// them from the cluster.
    pub slots: SlotSet,
    /// Observed nodes that list it.
    pub listed_by: Vec<NodeKey>,
    /// Observed nodes that replicate it (a replica cannot forget its own primary).
    pub replicas: Vec<NodeKey>,
    /// Its flags in the first view that lists it, for messages.
    pub flags: String,
}

impl Snapshot {
    /// The departed members. `ours` holds every id a node of the operation answers as (or
    /// answered as when last seen); nothing in it is ever departed. Telling these apart from
    /// a foreign cluster's members is what lets `apply` repair the case (forget the old id
    /// everywhere, adopt the new node) instead of refusing every peer.
    pub fn departed_members(&self, ours: &dyn Fn(&NodeId) -> bool) -> Vec<Departed> {
        // Only wanted for a `noaddr` stranger, which a formed cluster never lists: found
        // lazily, as it takes a lookup per pair of nodes, and plan and verify both run this
        // every round.
        let mut newcomers: Option<Vec<&NodeKey>> = None;
        let mut found: BTreeMap<NodeId, Departed> = BTreeMap::new();
        for (viewer, view) in self.views() {
            for entry in view.nodes.peers() {
                if entry.is_handshake() || ours(&entry.id) {
                    continue;
                }
                // At an expected address that now answers as someone else.
                let at_address = self.records.iter().find(|r| {
                    entry.addr.ip == Some(r.ip)
                        && entry.addr.port == r.port
                        && r.view().is_some_and(|v| v.id != entry.id)
                });
                let successor = match at_address {
                    Some(record) => &record.key,
                    None if entry.has_flag(NodeFlag::NoAddr) => {
                        match newcomers.get_or_insert_with(|| self.newcomers()).as_slice() {
                            [only] => *only,
                            _ => continue,
                        }
                    }
                    None => continue,
                };
                let record = found.entry(entry.id).or_insert_with(|| Departed {
                    id: entry.id,
                    successor: successor.clone(),
                    slots: SlotSet::new(),
                    listed_by: Vec::new(),
                    replicas: Vec::new(),
                    flags: entry.flags_text(),
                });
                record.slots.union_with(&entry.slots);
                record.listed_by.push(viewer.key.clone());
                if view.myself().is_replica()
                    && view.myself().primary_id.as_ref() == Some(&entry.id)
                {
                    record.replicas.push(viewer.key.clone());
                }
            }
        }
        found.into_values().collect()
    }

    /// Nodes that answer, know only themselves, and that no other observed node knows: a node
    /// that came back empty knows only itself, and its peers know only its old id (a peer that
    /// the newcomer does not know yet is no newcomer: it knows the cluster).
    fn newcomers(&self) -> Vec<&NodeKey> {
        self.views()
            .filter(|(record, view)| {
                view.nodes.entries().len() == 1
                    && self
                        .views()
                        .filter(|(other, _)| other.key != record.key)
                        .all(|(_, other)| other.knows(&view.id).is_none())
            })
            .map(|(record, _)| &record.key)
            .collect()
    }
}
