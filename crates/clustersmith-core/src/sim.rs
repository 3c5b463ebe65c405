//! An idealised simulated cluster for planner and driver tests: each node's view is rendered as
//! real `CLUSTER NODES` text and read back through the parser; steps and slot moves take
//! effect at once. Compiled for the core's own tests and, with the `sim` feature, for the
//! shell's tests, which drive the real reconcile loop over it.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::model::{NodeId, SLOT_COUNT, SlotSet};
use crate::observation::{InventoryNode, NodeState, NodeView, Observation};
use crate::parse::{parse_cluster_info, parse_cluster_nodes, parse_info};
use crate::plan::{SlotMove, Step};
use crate::spec::{ClusterSpec, parse_node};

/// One simulated node.
#[derive(Clone)]
pub struct SimNode {
    pub id: NodeId,
    pub epoch: u64,
    pub slots: SlotSet,
    pub primary: Option<usize>,
    pub knows: BTreeSet<usize>,
    pub keys: u64,
}

impl SimNode {
    /// Node `i` as it starts: its own id, knowing nobody, owning nothing.
    fn fresh(i: usize) -> SimNode {
        SimNode {
            id: NodeId::parse(&format!("{:040x}", i + 0xabc)).unwrap(),
            epoch: 0,
            slots: SlotSet::new(),
            primary: None,
            knows: BTreeSet::new(),
            keys: 0,
        }
    }
}

/// The simulated cluster: its inventory (node `i` is `n{i}` at port 7000 + i) and its nodes.
pub struct Sim {
    pub inventory: Vec<InventoryNode>,
    pub nodes: Vec<SimNode>,
}

impl Sim {
    pub fn new(ips: &[&str], zones: Option<&[&str]>) -> Sim {
        let inventory: Vec<InventoryNode> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| InventoryNode {
                label: format!("n{i}"),
                ip: ip.parse::<IpAddr>().unwrap(),
                port: 7000 + i as u16,
                zone: zones.map(|z| z[i].to_owned()),
                leaving: false,
            })
            .collect();
        let nodes = (0..ips.len()).map(SimNode::fresh).collect();
        Sim { inventory, nodes }
    }

    /// The slot counts of the nodes that own slots, smallest first.
    pub fn slot_counts(&self) -> Vec<usize> {
        let mut counts: Vec<usize> = self
            .nodes
            .iter()
            .map(|n| n.slots.len())
            .filter(|n| *n > 0)
            .collect();
        counts.sort_unstable();
        counts
    }

    /// `subject`'s line in `viewer`'s `CLUSTER NODES`.
    pub fn line(&self, viewer: usize, subject: usize) -> String {
        let n = &self.nodes[subject];
        let inv = &self.inventory[subject];
        let mut flags = if viewer == subject {
            "myself,".to_owned()
        } else {
            String::new()
        };
        flags.push_str(if n.primary.is_some() {
            "slave"
        } else {
            "master"
        });
        let primary = n
            .primary
            .map_or("-".to_owned(), |p| self.nodes[p].id.to_string());
        let epoch = n.primary.map_or(n.epoch, |p| self.nodes[p].epoch);
        let slots: Vec<String> = n.slots.ranges().iter().map(ToString::to_string).collect();
        format!(
            "{} {}:{}@{} {flags} {primary} 0 0 {epoch} connected {}",
            n.id,
            inv.ip,
            inv.port,
            inv.port + 10000,
            slots.join(" ")
        )
    }

    pub fn observe(&self) -> Observation {
        let nodes = (0..self.nodes.len())
            .map(|i| {
                let mut text = self.line(i, i) + "\n";
                for k in &self.nodes[i].knows {
                    text += &(self.line(i, *k) + "\n");
                }
                let nodes = parse_cluster_nodes(&text);
                assert!(nodes.issues.is_empty(), "{:?}\n{text}", nodes.issues);
                let mut covered = SlotSet::new();
                for n in &self.nodes {
                    covered.union_with(&n.slots);
                }
                let all_known = self.nodes[i].knows.len() + 1 == self.nodes.len();
                let state = if covered.is_full() && all_known {
                    "ok"
                } else {
                    "fail"
                };
                let info = format!(
                    "cluster_state:{state}\ncluster_current_epoch:{}\ncluster_my_epoch:{}\n",
                    self.nodes.iter().map(|n| n.epoch).max().unwrap(),
                    self.nodes[i].epoch
                );
                let link = if self.nodes[i].primary.is_some() {
                    "master_link_status:up\n"
                } else {
                    ""
                };
                let server = format!(
                    "redis_version:7.0.15\ncluster_enabled:1\n{link}db0:keys={},expires=0\n",
                    self.nodes[i].keys
                );
                NodeState::Seen(Box::new(NodeView {
                    id: self.nodes[i].id,
                    nodes: nodes.value,
                    cluster_info: parse_cluster_info(&info).value,
                    info: parse_info(&server).value,
                }))
            })
            .collect();
        Observation { nodes }
    }

    pub fn apply(&mut self, steps: &[Step]) {
        for step in steps {
            match step {
                Step::SetConfigEpoch { node, epoch } => {
                    assert!(
                        self.nodes[*node].knows.is_empty(),
                        "epoch on a node that knows others"
                    );
                    self.nodes[*node].epoch = *epoch;
                }
                Step::AddSlots { node, slots, .. } => {
                    for n in &self.nodes {
                        assert!(n.slots.intersection(slots).is_empty(), "slot already busy");
                    }
                    self.nodes[*node].slots.union_with(slots);
                }
                Step::Meet { node, peer, .. } => {
                    self.nodes[*node].knows.insert(*peer);
                    self.nodes[*peer].knows.insert(*node);
                }
                Step::Forget { .. } => unreachable!("the simulated nodes never depart"),
                Step::StableSlot { .. } => unreachable!("the simulated moves never stop half-way"),
                Step::ResetRemoved { .. } => unreachable!("the simulated nodes never leave"),
                Step::Replicate { node, primary, .. } => {
                    assert!(
                        self.nodes[*node].knows.contains(primary),
                        "ERR Unknown node"
                    );
                    self.nodes[*node].primary = Some(*primary);
                }
            }
        }
    }

    /// What the migration engine leaves: every slot of a move owned by its target, with the
    /// keys, the target's config epoch bumped above all others (`SETSLOT NODE` on the importer).
    pub fn move_slots(&mut self, moves: &[SlotMove]) {
        let position =
            |nodes: &[SimNode], id: &NodeId| nodes.iter().position(|n| &n.id == id).unwrap();
        for m in moves {
            let (source, target) = (
                position(&self.nodes, &m.source),
                position(&self.nodes, &m.target),
            );
            assert_eq!(
                self.nodes[source].slots.intersection(&m.slots),
                m.slots,
                "{m}"
            );
            assert!(
                self.nodes[target].primary.is_none(),
                "a move to a replica: {m}"
            );
            self.nodes[source].slots = self.nodes[source].slots.difference(&m.slots);
            self.nodes[target].slots.union_with(&m.slots);
            let moved = self.nodes[source].keys * m.slots.len() as u64 / SLOT_COUNT as u64;
            self.nodes[source].keys -= moved;
            self.nodes[target].keys += moved;
            self.nodes[target].epoch = self.nodes.iter().map(|n| n.epoch).max().unwrap() + 1;
        }
    }

    /// A node added to the inventory, fresh.
    pub fn add_node(&mut self, ip: &str) {
        let i = self.nodes.len();
        self.inventory.push(InventoryNode {
            label: format!("n{i}"),
            ip: ip.parse::<IpAddr>().unwrap(),
            port: 7000 + i as u16,
            zone: None,
            leaving: false,
        });
        self.nodes.push(SimNode::fresh(i));
    }

    pub fn spec(&self, primaries: usize) -> ClusterSpec {
        let nodes = self
            .inventory
            .iter()
            .map(|n| {
                let zone = n
                    .zone
                    .as_ref()
                    .map(|z| format!(",zone={z}"))
                    .unwrap_or_default();
                parse_node(&format!("{}:{}{zone}", n.ip, n.port)).unwrap()
            })
            .collect();
        ClusterSpec::new(nodes, Some(primaries), None).unwrap()
    }
}
