//! An idealised simulated cluster for planner and driver tests: each node's view is rendered as
//! real `CLUSTER NODES` text and read back through the parser; steps and slot moves take
//! effect at once. Compiled for the core's own tests and, with the `sim` feature, for the
//! shell's tests, which drive the real reconcile loop over it.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::model::{NodeId, SLOT_COUNT, SlotSet};
use crate::parse::{parse_cluster_info, parse_cluster_nodes, parse_info};
use crate::plan::{SlotMove, Step};
use crate::snapshot::{NodeKey, NodeRecord, NodeState, NodeView, Snapshot};
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
    /// When its server last started, on the simulator's clock (ms).
    pub started_ms: u64,
    /// A replica whose link to its primary is down (`master_link_status:down`).
    pub link_down: bool,
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
            started_ms: 0,
            link_down: false,
        }
    }
}

/// The simulated cluster: where its nodes are (node `i` is `n{i}` at port 7000 + i) and
/// what each of them holds.
pub struct Sim {
    pub records: Vec<NodeRecord>,
    pub nodes: Vec<SimNode>,
    /// The simulator's wall clock (ms since the Unix epoch): what `uptime_in_seconds` is
    /// counted against.
    pub clock_ms: u64,
}

impl Sim {
    pub fn new(ips: &[&str], zones: Option<&[&str]>) -> Sim {
        let records: Vec<NodeRecord> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                NodeRecord::spec(
                    NodeKey::named(&format!("n{i}")),
                    ip.parse::<IpAddr>().unwrap(),
                    7000 + i as u16,
                    zones.map(|z| z[i].to_owned()),
                    1,
                )
            })
            .collect();
        let nodes = (0..ips.len()).map(SimNode::fresh).collect();
        Sim {
            records,
            nodes,
            // Whatever the servers' clock: they have been up a while when a test begins.
            clock_ms: 100_000,
        }
    }

    /// The key of node `i`.
    pub fn key(&self, i: usize) -> NodeKey {
        self.records[i].key.clone()
    }

    /// The position of the node with this key.
    pub fn position(&self, key: &NodeKey) -> usize {
        self.records
            .iter()
            .position(|r| &r.key == key)
            .unwrap_or_else(|| panic!("no simulated node {key}"))
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
        let inv = &self.records[subject];
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

    /// Every node's views, rendered and parsed as the shell would read them.
    pub fn observe(&self) -> Snapshot {
        let states = (0..self.nodes.len()).map(|i| {
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
            let link = match (self.nodes[i].primary, self.nodes[i].link_down) {
                (None, _) => "",
                (Some(_), false) => "master_link_status:up\n",
                (Some(_), true) => "master_link_status:down\n",
            };
            let server = format!(
                "redis_version:7.0.15\nrun_id:{:040x}\nuptime_in_seconds:{}\ncluster_enabled:1\n{link}master_repl_offset:0\nslave_repl_offset:0\ndb0:keys={},expires=0\n",
                // A new run id at every start, as a server draws one.
                (i as u64) << 48 | self.nodes[i].started_ms,
                self.clock_ms.saturating_sub(self.nodes[i].started_ms) / 1000,
                self.nodes[i].keys
            );
            NodeState::Seen(Box::new(NodeView {
                id: self.nodes[i].id,
                nodes: nodes.value,
                cluster_info: parse_cluster_info(&info).value,
                info: parse_info(&server).value,
            }))
        });
        let mut records = self.records.clone();
        for (record, state) in records.iter_mut().zip(states) {
            record.set_state(state);
        }
        Snapshot::new(records)
    }

    pub fn apply(&mut self, steps: &[Step]) {
        for step in steps {
            let node = self.position(step.node());
            match step {
                Step::SetConfigEpoch { epoch, .. } => {
                    assert!(
                        self.nodes[node].knows.is_empty(),
                        "epoch on a node that knows others"
                    );
                    self.nodes[node].epoch = *epoch;
                }
                Step::AddSlots { slots, .. } => {
                    for n in &self.nodes {
                        assert!(n.slots.intersection(slots).is_empty(), "slot already busy");
                    }
                    self.nodes[node].slots.union_with(slots);
                }
                Step::Meet { peer, .. } => {
                    let peer = self.position(peer);
                    self.nodes[node].knows.insert(peer);
                    self.nodes[peer].knows.insert(node);
                }
                Step::Forget { .. } => unreachable!("the simulated nodes never depart"),
                Step::StableSlot { .. } => unreachable!("the simulated moves never stop half-way"),
                Step::ResetRemoved { .. } => unreachable!("the simulated nodes never leave"),
                Step::Replicate { primary, .. } => {
                    let primary = self.position(primary);
                    assert!(
                        self.nodes[node].knows.contains(&primary),
                        "ERR Unknown node"
                    );
                    self.nodes[node].primary = Some(primary);
                }
            }
        }
    }

    /// What the migration engine leaves: every slot of a move owned by its target, with the
    /// keys, the target's config epoch bumped above all others (`SETSLOT NODE` on the importer);
    /// a source left without slots becomes a replica of the target, with its replicas.
    pub fn move_slots(&mut self, moves: &[SlotMove]) {
        for m in moves {
            let (source, target) = (self.position(&m.source), self.position(&m.target));
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
            // A primary that handed its last slot over follows the node that took it, and so
            // do its replicas (`cluster-allow-replica-migration`, on by default).
            if self.nodes[source].slots.is_empty() {
                for n in 0..self.nodes.len() {
                    if n == source || self.nodes[n].primary == Some(source) {
                        self.nodes[n].primary = Some(target);
                    }
                }
            }
        }
    }

    /// A coordinated failover, taking effect at once: the replica becomes the primary of its
    /// primary's slots (with a bumped epoch), the old primary and its other replicas follow it.
    pub fn failover(&mut self, replica: &NodeKey) {
        let r = self.position(replica);
        let Some(old) = self.nodes[r].primary else {
            return;
        };
        let slots = std::mem::take(&mut self.nodes[old].slots);
        self.nodes[r].slots = slots;
        self.nodes[r].primary = None;
        self.nodes[r].epoch = self.nodes.iter().map(|n| n.epoch).max().unwrap_or(0) + 1;
        for n in 0..self.nodes.len() {
            if n == old || self.nodes[n].primary == Some(old) {
                self.nodes[n].primary = Some(r);
            }
        }
        self.nodes[r].primary = None;
    }

    /// A restart of a node's server, taking effect at once: it keeps its data and nodes.conf,
    /// and its uptime starts again.
    pub fn restart(&mut self, node: &NodeKey) {
        let n = self.position(node);
        self.nodes[n].started_ms = self.clock_ms;
    }

    /// A node added, fresh.
    pub fn add_node(&mut self, ip: &str) {
        let i = self.nodes.len();
        self.records.push(NodeRecord::spec(
            NodeKey::named(&format!("n{i}")),
            ip.parse::<IpAddr>().unwrap(),
            7000 + i as u16,
            None,
            1,
        ));
        self.nodes.push(SimNode::fresh(i));
    }

    pub fn spec(&self, primaries: usize) -> ClusterSpec {
        let nodes = self
            .records
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

impl Sim {
    /// Runs an operation as the shell's driver does, with every step and move taking effect
    /// at once and the clock moving `tick` a round: until it is done, at most `rounds`
    /// rounds. Returns the rounds it took, or what it refused.
    pub fn drive(
        &mut self,
        operation: &mut dyn crate::operation::Operation,
        rounds: usize,
        tick: std::time::Duration,
    ) -> Result<usize, Vec<crate::plan::Blocker>> {
        let mut now = std::time::Duration::ZERO;
        for round in 1..=rounds {
            let snapshot = self.observe();
            let planned = operation.round(&snapshot, now);
            if !planned.blockers.is_empty() {
                return Err(planned.blockers);
            }
            if planned.done {
                return Ok(round);
            }
            // Every read of the simulator is of every node: a confirming read is this loop's
            // next turn.
            if planned.confirm {
                now += tick;
                self.clock_ms += tick.as_millis() as u64;
                continue;
            }
            if planned.steps.is_empty() {
                self.move_slots(&planned.moves);
            } else {
                self.apply(&planned.steps);
                operation.sent(&planned.steps, &snapshot, now);
            }
            for action in &planned.actions {
                match action {
                    crate::operation::Action::Failover { replica, .. } => self.failover(replica),
                    crate::operation::Action::Restart { node } => self.restart(node),
                }
            }
            now += tick;
            self.clock_ms += tick.as_millis() as u64;
        }
        panic!("the operation was not done in {rounds} rounds");
    }
}
