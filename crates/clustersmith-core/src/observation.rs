//! What the expected nodes reported in one observation round, and the addresses they were
//! reached at. The I/O shell fills it; the planner and the verifier only read it.

use std::net::IpAddr;

use crate::model::{NodeId, ServerVersion};
use crate::parse::{ClusterInfo, ClusterNodes, NodeEntry, ServerInfo};

/// A spec node after name resolution: where clustersmith reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryNode {
    /// `host:port` as given in the spec.
    pub label: String,
    pub ip: IpAddr,
    pub port: u16,
    pub zone: Option<String>,
    /// A member of the cluster that is not in the spec, reached at the address its peers list:
    /// its slots are moved away, then it is forgotten (`--remove-unlisted`). Leaving nodes
    /// come after every spec node, so spec positions do not change when they are added.
    pub leaving: bool,
}

/// The placement domain used for anti-affinity: the zone when zones are given, else the host IP.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    Zone(String),
    Host(IpAddr),
}

impl InventoryNode {
    pub fn domain(&self) -> Domain {
        match &self.zone {
            Some(zone) => Domain::Zone(zone.clone()),
            None => Domain::Host(self.ip),
        }
    }
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

/// The state of one expected node in a round.
#[derive(Clone, Debug)]
pub enum NodeState {
    Seen(Box<NodeView>),
    /// Not reachable this round; the text says why.
    Unreachable(String),
}

impl NodeState {
    pub fn view(&self) -> Option<&NodeView> {
        match self {
            NodeState::Seen(view) => Some(view),
            NodeState::Unreachable(_) => None,
        }
    }
}

/// All expected nodes, in inventory order.
#[derive(Clone, Debug)]
pub struct Observation {
    pub nodes: Vec<NodeState>,
}

impl Observation {
    /// The id the observed nodes list at `ip:port`, when they agree on one: what an
    /// unreachable (frozen, stopped) node is known as, so its entries in its peers' views are
    /// not taken for strangers.
    pub fn id_listed_at(&self, ip: IpAddr, port: u16) -> Option<NodeId> {
        let mut found: Option<&NodeId> = None;
        for view in self.nodes.iter().filter_map(NodeState::view) {
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

    /// The ids of the observed nodes among the first `nodes`, with their positions, in id
    /// order: what `ClusterNodes::get_each` walks a view against.
    pub fn ids_in_order(&self, nodes: usize) -> Vec<(NodeId, usize)> {
        let mut ids: Vec<(NodeId, usize)> = (0..nodes)
            .filter_map(|idx| self.view(idx).map(|v| (v.id, idx)))
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Each of the first `nodes` nodes' own `CLUSTER NODES` line, copied side by side: checks
    /// that compare every view with every node's own line read them N² times, and reading
    /// them from their own views missed the cache on each.
    pub fn own_lines(&self, nodes: usize) -> Vec<Option<NodeEntry>> {
        (0..nodes)
            .map(|idx| self.view(idx).map(|v| v.myself().clone()))
            .collect()
    }

    pub fn view(&self, idx: usize) -> Option<&NodeView> {
        self.nodes.get(idx).and_then(NodeState::view)
    }

    /// The label of the node answering as `id`, else the id's short form (a node this run
    /// does not reach).
    pub fn label_of(&self, id: &NodeId, inventory: &[InventoryNode]) -> String {
        self.index_of(id)
            .and_then(|idx| inventory.get(idx))
            .map_or_else(|| id.short().to_owned(), |n| n.label.clone())
    }

    /// Inventory index of the node whose own id is `id`.
    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.nodes
            .iter()
            .position(|state| state.view().is_some_and(|v| &v.id == id))
    }
}
