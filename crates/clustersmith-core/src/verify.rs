//! The criteria a formed cluster must meet, evaluated against the *expected* topology.
//!
//! Each criterion lists every node that fails it and why, so a failing cluster names its
//! culprits. A node that cannot be reached fails `reachable` and cannot pass anything it would
//! have to report itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{NodeId, SlotSet};
use crate::observation::{InventoryNode, NodeState, Observation};
use crate::parse::NodeEntry;
use crate::plan::{Layout, departed_members};

/// Stable criterion ids, in the order they are checked and shown.
pub const CRITERIA: &[(&str, &str)] = &[
    ("reachable", "every expected node answers"),
    (
        "membership",
        "every node lists exactly the expected members, at the addresses they answer at, none in handshake, noaddr, fail? or fail",
    ),
    (
        "agreement",
        "all nodes agree on every member's role, primary and slots",
    ),
    (
        "slots",
        "all 16384 slots are owned by the intended primaries, none open",
    ),
    ("epochs", "config epochs of the primaries are unique"),
    (
        "replication",
        "each intended replica replicates its intended primary with master_link_status:up",
    ),
    ("state", "cluster_state:ok on every node"),
    (
        "balance",
        "the primaries' slot counts differ by at most one (a warning: it does not fail verify)",
    ),
];

/// Criteria that warn without failing the verdict: the cluster works, but is not as intended.
pub const WARNING_ONLY: &[&str] = &["balance"];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Inventory position of the node that fails.
    pub node: usize,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriterionResult {
    pub id: &'static str,
    pub title: &'static str,
    pub failures: Vec<Failure>,
    /// Nodes this criterion needed to look at but could not (they did not answer): a
    /// criterion with no failure is only met when this is empty.
    pub unchecked: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Met,
    Failed,
    /// Nothing wrong was seen, but some nodes could not be looked at.
    Unknown,
    /// A warning-only criterion does not hold: shown, but the verdict still passes.
    Warning,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Met => "ok",
            Status::Failed => "fail",
            Status::Unknown => "unknown",
            Status::Warning => "warning",
        }
    }
}

impl CriterionResult {
    pub fn status(&self) -> Status {
        if !self.failures.is_empty() && self.is_warning_only() {
            Status::Warning
        } else if !self.failures.is_empty() {
            Status::Failed
        } else if !self.unchecked.is_empty() {
            Status::Unknown
        } else {
            Status::Met
        }
    }

    /// Met, or only warned about.
    pub fn passed(&self) -> bool {
        matches!(self.status(), Status::Met | Status::Warning)
    }

    pub fn is_warning_only(&self) -> bool {
        WARNING_ONLY.contains(&self.id)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub criteria: Vec<CriterionResult>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.criteria.iter().all(CriterionResult::passed)
    }

    pub fn failed(&self) -> impl Iterator<Item = &CriterionResult> {
        self.criteria.iter().filter(|c| !c.passed())
    }
}

/// Checks the live state against the layout, criterion by criterion. `inventory` is the spec
/// part: nodes leaving the cluster (listed after it in `obs`) are not expected, so a view that
/// still lists one fails membership until it is forgotten.
pub fn verify(
    layout: &Layout,
    inventory: &[InventoryNode],
    obs: &Observation,
    known_ids: &[Option<NodeId>],
) -> Verdict {
    let mut failures: BTreeMap<&'static str, Vec<Failure>> = BTreeMap::new();
    let mut fail = |id: &'static str, node: usize, detail: String| {
        failures
            .entry(id)
            .or_default()
            .push(Failure { node, detail });
    };
    let label = |idx: usize| inventory[idx].label.as_str();
    let expected_ids: Vec<Option<NodeId>> = (0..inventory.len())
        .map(|i| {
            obs.view(i)
                .map(|v| v.id)
                .or_else(|| known_ids.get(i).cloned().flatten())
                .or_else(|| obs.id_listed_at(inventory[i].ip, inventory[i].port))
        })
        .collect();
    // Inventory position of every expected id, built once: the per-entry lookups below run
    // for every entry of every view (N² per round in apply).
    let mut index_of: BTreeMap<&NodeId, usize> = BTreeMap::new();
    for (i, id) in expected_ids.iter().enumerate() {
        if let Some(id) = id {
            index_of.entry(id).or_insert(i);
        }
    }
    let expected: BTreeSet<&NodeId> = index_of.keys().copied().collect();
    let label_of = |id: &NodeId| -> String {
        index_of
            .get(id)
            .map_or_else(|| id.short().to_owned(), |i| label(*i).to_owned())
    };

    // Members replaced at their address by a node with a new id (lost disk, recreated VM):
    // one line on the node that came back says it all, instead of an "extra node" and a
    // "does not know" on every peer.
    let departed = departed_members(inventory, obs, &|id| expected.contains(id));
    let departed_ids: BTreeSet<&NodeId> = departed.iter().map(|d| &d.id).collect();
    let successors: BTreeSet<usize> = departed.iter().map(|d| d.successor).collect();
    for d in &departed {
        let owns = if d.slots.is_empty() {
            "owns no slot: apply forgets it and adds the node back in its planned role".to_owned()
        } else {
            format!(
                "still owns slots {}: no replica has taken over (see `clustersmith plan`)",
                d.slots
            )
        };
        fail(
            "membership",
            d.successor,
            format!(
                "came back with a new id {} (empty: lost disk or nodes.conf?) while {} still list its old id {} ({}), which {owns}",
                expected_ids[d.successor]
                    .as_ref()
                    .map_or("?", |id| id.short()),
                crate::plural(d.listed_by.len() as u64, "peer", "peers"),
                d.id.short(),
                d.flags
            ),
        );
    }

    let truths = obs.own_lines(inventory.len());
    // What each view holds for each of them (`NodeView::knows`), found in one walk of the view.
    let ids = obs.ids_in_order(inventory.len());
    let mut seen_by: Vec<Option<&NodeEntry>> = vec![None; inventory.len()];
    for (idx, state) in obs.nodes.iter().enumerate().take(inventory.len()) {
        let view = match state {
            NodeState::Seen(view) => view,
            NodeState::Unreachable(why) => {
                fail("reachable", idx, why.clone());
                continue;
            }
        };

        // membership
        let listed = view.nodes.get_each(expected.iter().copied());
        let missing: Vec<String> = expected
            .iter()
            .zip(listed)
            .filter(|(_, entry)| entry.is_none())
            .map(|(id, _)| id)
            .filter(|id| {
                !index_of
                    .get(*id)
                    .is_some_and(|pos| successors.contains(pos))
            })
            .map(|id| label_of(id))
            .collect();
        if !missing.is_empty() && !successors.contains(&idx) {
            fail(
                "membership",
                idx,
                format!("does not know {}", missing.join(", ")),
            );
        }
        for entry in view.nodes.entries() {
            if departed_ids.contains(&entry.id) {
                continue;
            }
            if !expected.contains(&entry.id) && !entry.is_handshake() {
                fail("membership", idx, format!("knows extra node {}", entry.id));
            }
            let bad = entry.unhealthy_flags();
            // A member listed at another IP than the one it answers at: it came back with a new
            // address and this node still dials the old one (or the cluster announces
            // addresses its clients cannot use).
            let answers_at = index_of
                .get(&entry.id)
                .filter(|pos| obs.view(**pos).is_some())
                .map(|pos| inventory[*pos].ip);
            if let (Some(ip), Some(listed_ip)) = (answers_at, entry.addr.ip)
                && ip != listed_ip
            {
                let detail = if entry.is_myself() {
                    format!(
                        "believes its own address is the stale {} (it answers at {ip})",
                        entry.addr
                    )
                } else {
                    format!(
                        "lists {} at the stale address {} (it answers at {ip}; clients following MOVED are sent there)",
                        label_of(&entry.id),
                        entry.addr
                    )
                };
                fail("membership", idx, detail);
                continue;
            }
            if entry.is_handshake() {
                fail(
                    "membership",
                    idx,
                    format!(
                        "is stuck in handshake with {} (bus port {}): the cluster bus does not connect (a firewall, a wrong cluster-announce-bus-port or MEET bus port, or a TLS bus certificate without clientAuth)",
                        entry.addr, entry.addr.bus_port
                    ),
                );
            } else if !bad.is_empty() {
                fail(
                    "membership",
                    idx,
                    format!("sees {} as {}", label_of(&entry.id), bad.join(",")),
                );
            }
        }

        // agreement
        seen_by.fill(None);
        for (entry, (_, other)) in view.nodes.get_each(ids.iter().map(|(id, _)| id)).zip(&ids) {
            seen_by[*other] = entry.filter(|e| !e.is_handshake());
        }
        for (other, truth) in truths.iter().enumerate() {
            let (Some(truth), Some(seen)) = (truth, seen_by[other]) else {
                continue;
            };
            if other == idx {
                continue;
            }
            // "a replica of X", or "a primary": both halves, since two views can agree on the
            // role and differ on the primary.
            let role = |replica: bool, primary: Option<&NodeId>| match (replica, primary) {
                (true, Some(id)) => format!("a replica of {}", label_of(id)),
                (true, None) => "a replica".to_owned(),
                (false, _) => "a primary".to_owned(),
            };
            if seen.is_replica() != truth.is_replica() || seen.primary_id != truth.primary_id {
                fail(
                    "agreement",
                    idx,
                    format!(
                        "sees {} as {} but it is {}",
                        label(other),
                        role(seen.is_replica(), seen.primary_id.as_ref()),
                        role(truth.is_replica(), truth.primary_id.as_ref())
                    ),
                );
            } else if seen.slots != truth.slots {
                fail(
                    "agreement",
                    idx,
                    format!(
                        "sees {} owning slots {} but it owns {}",
                        label(other),
                        seen.slots,
                        truth.slots
                    ),
                );
            }
        }

        // state
        if !view.cluster_info.is_ok() {
            fail("state", idx, "cluster_state is not ok".to_owned());
        }
        let open: Vec<String> = view
            .myself()
            .open_slots()
            .iter()
            .map(|o| o.slot.to_string())
            .collect();
        if !open.is_empty() {
            fail("slots", idx, format!("has open slots {}", open.join(",")));
        }
    }

    // slots
    let mut covered = SlotSet::new();
    for shard in &layout.shards {
        let Some(view) = obs.view(shard.primary) else {
            continue;
        };
        let owns = &view.myself().slots;
        covered.union_with(owns);
        if *owns != shard.slots {
            fail(
                "slots",
                shard.primary,
                format!("owns {owns}, intended {}", shard.slots),
            );
        }
    }
    for (idx, state) in obs.nodes.iter().enumerate().take(inventory.len()) {
        let Some(view) = state.view() else { continue };
        let is_primary = layout.shards.iter().any(|s| s.primary == idx);
        if !is_primary && !view.myself().slots.is_empty() {
            fail(
                "slots",
                idx,
                format!(
                    "owns {} but is not an intended primary",
                    view.myself().slots
                ),
            );
        }
    }
    // A member on its way out (observed after the spec's nodes) that still claims slots: the
    // others may already have forgotten it, and then no spec view shows the claim, but its
    // clients are still served from it. (Failures name it by its position in `obs`.)
    for (idx, state) in obs.nodes.iter().enumerate().skip(inventory.len()) {
        let Some(view) = state.view() else { continue };
        let claims = &view.myself().slots;
        if !claims.is_empty() {
            fail(
                "slots",
                idx,
                format!("is leaving the cluster but still claims slots {claims} for itself"),
            );
        }
    }
    // Slots meant for a primary that did not answer are unknown, not unowned.
    let mut uncovered = covered.complement();
    for shard in &layout.shards {
        if obs.view(shard.primary).is_none() {
            uncovered = uncovered.difference(&shard.slots);
        }
    }
    if !uncovered.is_empty() {
        let any_primary = layout.shards.first().map_or(0, |s| s.primary);
        fail(
            "slots",
            any_primary,
            format!(
                "{} no owner: {uncovered}",
                crate::plural(uncovered.len() as u64, "slot has", "slots have")
            ),
        );
    }

    // epochs
    let mut by_epoch: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for shard in &layout.shards {
        if let Some(view) = obs.view(shard.primary) {
            by_epoch
                .entry(view.myself().config_epoch)
                .or_default()
                .push(shard.primary);
        }
    }
    for (epoch, holders) in by_epoch.iter().filter(|(_, h)| h.len() > 1) {
        for holder in holders {
            let others: Vec<&str> = holders
                .iter()
                .filter(|h| *h != holder)
                .map(|h| label(*h))
                .collect();
            fail(
                "epochs",
                *holder,
                format!("config epoch {epoch} is also held by {}", others.join(", ")),
            );
        }
    }

    // replication
    for shard in &layout.shards {
        let primary_id = expected_ids[shard.primary].as_ref();
        for replica in &shard.replicas {
            let Some(view) = obs.view(*replica) else {
                continue;
            };
            let me = view.myself();
            if !me.is_replica() || me.primary_id.as_ref() != primary_id {
                let now = match &me.primary_id {
                    Some(id) => format!("replicates {}", label_of(id)),
                    None => "is a primary".to_owned(),
                };
                fail(
                    "replication",
                    *replica,
                    format!("should replicate {} but {now}", label(shard.primary)),
                );
            } else if view.info.primary_link_status() != Some("up") {
                fail(
                    "replication",
                    *replica,
                    format!(
                        "master_link_status:{} (primary {})",
                        view.info.primary_link_status().unwrap_or("unknown"),
                        label(shard.primary)
                    ),
                );
            }
        }
    }

    // balance: what the primaries own now, whatever the layout plans (a manual reshard or an
    // interrupted move can leave 8192 / 2731 / 5461 until apply evens it out).
    let owned: Vec<(usize, usize)> = layout
        .shards
        .iter()
        .filter_map(|s| {
            obs.view(s.primary)
                .map(|v| (s.primary, v.myself().slots.len()))
        })
        .collect();
    // (Weighted shares differ on purpose; `slots` checks them against the layout.)
    if owned.len() == layout.shards.len()
        && !layout.weighted
        && let (Some(min), Some(max)) = (
            owned.iter().map(|(_, n)| *n).min(),
            owned.iter().map(|(_, n)| *n).max(),
        )
        && max - min > 1
    {
        let counts: Vec<String> = owned
            .iter()
            .map(|(idx, n)| format!("{} {n}", label(*idx)))
            .collect();
        for (idx, n) in &owned {
            if *n == max || *n == min {
                fail(
                    "balance",
                    *idx,
                    format!(
                        "owns {n} slots; the primaries own {} (differing by {}); moving slots evens them",
                        counts.join(", "),
                        max - min
                    ),
                );
            }
        }
    }

    let unreachable: Vec<usize> = (0..inventory.len())
        .filter(|idx| obs.view(*idx).is_none())
        .collect();
    Verdict {
        criteria: CRITERIA
            .iter()
            .map(|(id, title)| CriterionResult {
                id,
                title,
                failures: failures.remove(id).unwrap_or_default(),
                unchecked: if *id == "reachable" {
                    Vec::new()
                } else {
                    unreachable.clone()
                },
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    //! Each criterion shown failing and passing on `CLUSTER NODES` / `CLUSTER INFO` / `INFO`
    //! text in the servers' own format (Redis 7.0.15), read back through the parsers: a
    //! healthy 2 primary + 1 replica cluster, then one defect at a time.

    use std::net::IpAddr;

    use super::*;
    use crate::model::SlotRange;
    use crate::observation::NodeView;
    use crate::parse::{parse_cluster_info, parse_cluster_nodes, parse_info};
    use crate::plan::Shard;

    const A: &str = "5ee4ff5b4c4f4c47ac6b2d2c84a4b0f40ba6ae20";
    const B: &str = "9a3b7d0f5f0a61f7a9b5ed2b8a2f2e1de45c1c7a";
    const C: &str = "c1d38f0e7a1f3cb1e3f57a2d08e7f6a2f60b9d11";

    /// Texts every node answers with; a test edits one of them to make one defect.
    struct Case {
        /// The member lines, without `myself`: it is added to the viewer's own line.
        nodes: [Vec<String>; 3],
        cluster_info: [String; 3],
        info: [String; 3],
        /// `false`: the node did not answer.
        reachable: [bool; 3],
        /// Ids known from an earlier round (as `apply` keeps them).
        known_ids: Vec<Option<NodeId>>,
    }

    fn healthy_lines() -> Vec<String> {
        vec![
            format!("{A} 127.0.0.1:7000@17000 master - 0 1700000000000 1 connected 0-8191"),
            format!("{B} 127.0.0.1:7001@17001 master - 0 1700000000000 2 connected 8192-16383"),
            format!("{C} 127.0.0.1:7002@17002 slave {A} 0 1700000000000 1 connected"),
        ]
    }

    impl Case {
        fn healthy() -> Case {
            let cluster_info = |my_epoch: u64| {
                format!(
                    "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\ncluster_known_nodes:3\r\ncluster_size:2\r\ncluster_current_epoch:2\r\ncluster_my_epoch:{my_epoch}\r\n"
                )
            };
            let primary = "# Server\r\nredis_version:7.0.15\r\n# Cluster\r\ncluster_enabled:1\r\n# Replication\r\nrole:master\r\nconnected_slaves:0\r\n".to_owned();
            let replica = "# Server\r\nredis_version:7.0.15\r\n# Cluster\r\ncluster_enabled:1\r\n# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nmaster_port:7000\r\nmaster_link_status:up\r\n".to_owned();
            Case {
                nodes: [healthy_lines(), healthy_lines(), healthy_lines()],
                cluster_info: [cluster_info(1), cluster_info(2), cluster_info(1)],
                info: [primary.clone(), primary, replica],
                reachable: [true; 3],
                known_ids: vec![None, None, None],
            }
        }

        /// Replaces `from` by `to` in `viewer`'s line for `member` (0 = A, 1 = B, 2 = C).
        /// Each node's own line gets `myself` when the texts are read.
        fn edit(&mut self, viewer: usize, member: usize, from: &str, to: &str) -> &mut Case {
            let line = &mut self.nodes[viewer][member];
            assert!(line.contains(from), "`{from}` not in `{line}`");
            *line = line.replacen(from, to, 1);
            self
        }

        /// The same edit in every node's view.
        fn edit_all(&mut self, member: usize, from: &str, to: &str) -> &mut Case {
            for viewer in 0..3 {
                self.edit(viewer, member, from, to);
            }
            self
        }

        fn inventory() -> Vec<InventoryNode> {
            (0..3)
                .map(|i| InventoryNode {
                    label: format!("n{i}"),
                    ip: "127.0.0.1".parse::<IpAddr>().unwrap(),
                    port: 7000 + i as u16,
                    zone: None,
                    leaving: false,
                })
                .collect()
        }

        fn verdict(&self) -> Verdict {
            let nodes = (0..3)
                .map(|viewer| {
                    if !self.reachable[viewer] {
                        return NodeState::Unreachable("connection refused".to_owned());
                    }
                    let own_id = [A, B, C][viewer];
                    let text: String = self.nodes[viewer]
                        .iter()
                        .map(|line| {
                            if line.starts_with(own_id) {
                                // `<id> <addr> <flags> …`: the flags are the third field.
                                let mut f: Vec<&str> = line.split(' ').collect();
                                let flags = format!("myself,{}", f[2]);
                                f[2] = &flags;
                                f.join(" ") + "\n"
                            } else {
                                format!("{line}\n")
                            }
                        })
                        .collect();
                    let nodes = parse_cluster_nodes(&text);
                    assert!(nodes.issues.is_empty(), "{:?}\n{text}", nodes.issues);
                    let cluster_info = parse_cluster_info(&self.cluster_info[viewer]);
                    assert!(cluster_info.issues.is_empty(), "{:?}", cluster_info.issues);
                    let id = nodes.value.myself().unwrap().id;
                    NodeState::Seen(Box::new(NodeView {
                        id,
                        nodes: nodes.value,
                        cluster_info: cluster_info.value,
                        info: parse_info(&self.info[viewer]).value,
                    }))
                })
                .collect();
            let range = |start, end| SlotSet::from_ranges(&[SlotRange::new(start, end).unwrap()]);
            let layout = Layout {
                shards: vec![
                    Shard {
                        primary: 0,
                        slots: range(0, 8191),
                        replicas: vec![2],
                    },
                    Shard {
                        primary: 1,
                        slots: range(8192, 16383),
                        replicas: vec![],
                    },
                ],
                notes: vec![],
                moves: vec![],
                weighted: false,
            };
            verify(
                &layout,
                &Case::inventory(),
                &Observation { nodes },
                &self.known_ids,
            )
        }
    }

    /// The criteria that do not pass, with their failures as `(node, detail)`.
    fn not_passed(verdict: &Verdict) -> BTreeMap<&'static str, Vec<(usize, String)>> {
        verdict
            .failed()
            .map(|c| {
                (
                    c.id,
                    c.failures
                        .iter()
                        .map(|f| (f.node, f.detail.clone()))
                        .collect(),
                )
            })
            .collect()
    }

    fn only(
        id: &'static str,
        failures: &[(usize, &str)],
    ) -> BTreeMap<&'static str, Vec<(usize, String)>> {
        BTreeMap::from([(
            id,
            failures
                .iter()
                .map(|(n, d)| (*n, (*d).to_owned()))
                .collect(),
        )])
    }

    #[test]
    fn a_healthy_cluster_meets_every_criterion() {
        let verdict = Case::healthy().verdict();
        assert!(verdict.passed(), "{:?}", not_passed(&verdict));
        let ids: Vec<&str> = verdict.criteria.iter().map(|c| c.id).collect();
        assert_eq!(
            ids,
            [
                "reachable",
                "membership",
                "agreement",
                "slots",
                "epochs",
                "replication",
                "state",
                "balance"
            ]
        );
        assert!(verdict.criteria.iter().all(|c| c.status() == Status::Met));
    }

    #[test]
    fn agreement_fails_when_a_node_sees_a_replica_as_a_primary() {
        let mut case = Case::healthy();
        case.edit(1, 2, &format!("slave {A}"), "master -");
        assert_eq!(
            not_passed(&case.verdict()),
            only(
                "agreement",
                &[(1, "sees n2 as a primary but it is a replica of n0")]
            )
        );
    }

    #[test]
    fn agreement_fails_when_a_node_sees_a_replica_under_another_primary() {
        let mut case = Case::healthy();
        case.edit(0, 2, &format!("slave {A}"), &format!("slave {B}"));
        // Both primaries are named: the roles agree, the primaries do not.
        assert_eq!(
            not_passed(&case.verdict()),
            only(
                "agreement",
                &[(0, "sees n2 as a replica of n1 but it is a replica of n0")]
            )
        );
    }

    #[test]
    fn agreement_fails_when_a_node_holds_a_stale_slot_map() {
        let mut case = Case::healthy();
        case.edit(2, 1, "8192-16383", "8192-16382");
        assert_eq!(
            not_passed(&case.verdict()),
            only(
                "agreement",
                &[(2, "sees n1 owning slots 8192-16382 but it owns 8192-16383")]
            )
        );
    }

    #[test]
    fn slots_fail_on_a_migrating_and_on_an_importing_slot() {
        let mut case = Case::healthy();
        case.edit(0, 0, "0-8191", &format!("0-8191 [100->-{B}]"));
        assert_eq!(
            not_passed(&case.verdict()),
            only("slots", &[(0, "has open slots 100")])
        );
        let mut case = Case::healthy();
        case.edit(1, 1, "8192-16383", &format!("8192-16383 [100-<-{A}]"));
        assert_eq!(
            not_passed(&case.verdict()),
            only("slots", &[(1, "has open slots 100")])
        );
        // Only a node's own line tells its open slots (servers print them there alone).
        let mut case = Case::healthy();
        case.edit(0, 1, "8192-16383", &format!("8192-16383 [100-<-{A}]"));
        assert!(case.verdict().passed());
    }

    #[test]
    fn slots_fail_on_an_unowned_slot_and_on_slots_owned_by_a_replica() {
        let mut case = Case::healthy();
        case.edit_all(0, "0-8191", "0-8190");
        assert_eq!(
            not_passed(&case.verdict()),
            only(
                "slots",
                &[
                    (0, "owns 0-8190, intended 0-8191"),
                    (0, "1 slot has no owner: 8191")
                ]
            )
        );
        let mut case = Case::healthy();
        case.edit_all(0, "0-8191", "0-8190");
        case.edit_all(2, " connected", " connected 8191");
        let failed = not_passed(&case.verdict());
        assert_eq!(
            failed["slots"],
            [
                (0, "owns 0-8190, intended 0-8191".to_owned()),
                (2, "owns 8191 but is not an intended primary".to_owned()),
                // A slot held by a replica is not held by an intended primary.
                (0, "1 slot has no owner: 8191".to_owned()),
            ]
        );
    }

    #[test]
    fn epochs_fail_when_two_primaries_hold_the_same_config_epoch() {
        let mut case = Case::healthy();
        case.edit_all(1, " 2 connected", " 1 connected");
        assert_eq!(
            not_passed(&case.verdict()),
            only(
                "epochs",
                &[
                    (0, "config epoch 1 is also held by n1"),
                    (1, "config epoch 1 is also held by n0")
                ]
            )
        );
    }

    #[test]
    fn state_fails_on_a_node_that_reports_cluster_state_fail() {
        let mut case = Case::healthy();
        case.cluster_info[1] =
            case.cluster_info[1].replace("cluster_state:ok", "cluster_state:fail");
        assert_eq!(
            not_passed(&case.verdict()),
            only("state", &[(1, "cluster_state is not ok")])
        );
    }

    #[test]
    fn membership_fails_on_a_failed_peer_and_on_a_missing_one() {
        let mut case = Case::healthy();
        case.edit(0, 1, " master ", " master,fail ");
        assert_eq!(
            not_passed(&case.verdict()),
            only("membership", &[(0, "sees n1 as fail")])
        );
        let mut case = Case::healthy();
        case.nodes[2].remove(1);
        assert_eq!(
            not_passed(&case.verdict()),
            only("membership", &[(2, "does not know n1")])
        );
    }

    #[test]
    fn replication_fails_on_a_link_that_is_down() {
        let mut case = Case::healthy();
        case.info[2] = case.info[2].replace("master_link_status:up", "master_link_status:down");
        assert_eq!(
            not_passed(&case.verdict()),
            only(
                "replication",
                &[(2, "master_link_status:down (primary n0)")]
            )
        );
    }

    #[test]
    fn an_unreachable_node_fails_reachable_and_leaves_the_rest_unknown() {
        // As in `apply`, which knows the id from an earlier round.
        let mut case = Case::healthy();
        case.reachable[1] = false;
        case.known_ids = [A, B, C].map(|id| NodeId::parse(id).ok()).into();
        let verdict = case.verdict();
        assert!(!verdict.passed());
        let status: BTreeMap<&str, Status> = verdict
            .criteria
            .iter()
            .map(|c| (c.id, c.status()))
            .collect();
        assert_eq!(status["reachable"], Status::Failed);
        for id in [
            "membership",
            "agreement",
            "slots",
            "epochs",
            "replication",
            "state",
        ] {
            assert_eq!(status[id], Status::Unknown, "{id}");
        }
    }
}
