//! Each criterion shown failing and passing on `CLUSTER NODES` / `CLUSTER INFO` / `INFO`
//! text in the servers' own format (Redis 7.0.15), read back through the parsers: a
//! healthy 2 primary + 1 replica cluster, then one defect at a time.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::*;
use crate::model::{SlotRange, SlotSet};
use crate::parse::{parse_cluster_info, parse_cluster_nodes, parse_info};
use crate::plan::Shard;
use crate::snapshot::{NodeRecord, NodeState, NodeView};

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

    fn key(i: usize) -> NodeKey {
        NodeKey::named(&format!("n{i}"))
    }

    fn verdict(&self) -> Verdict {
        let states = (0..3).map(|viewer| {
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
        });
        let records = states
            .zip(&self.known_ids)
            .enumerate()
            .map(|(i, (state, known))| {
                let ip = "127.0.0.1".parse::<IpAddr>().unwrap();
                let mut record = NodeRecord::spec(Case::key(i), ip, 7000 + i as u16, None, 1);
                record.known_id = *known;
                record.set_state(state);
                record
            })
            .collect();
        let range = |start, end| SlotSet::from_ranges(&[SlotRange::new(start, end).unwrap()]);
        let layout = Layout {
            shards: vec![
                Shard {
                    primary: Case::key(0),
                    slots: range(0, 8191),
                    replicas: vec![Case::key(2)],
                },
                Shard {
                    primary: Case::key(1),
                    slots: range(8192, 16383),
                    replicas: vec![],
                },
            ],
            notes: vec![],
            moves: vec![],
            weighted: false,
        };
        verify(&layout, &Snapshot::new(records))
    }
}

/// The criteria that do not pass, with their failures as `(node, detail)`.
fn not_passed(verdict: &Verdict) -> BTreeMap<&'static str, Vec<(usize, String)>> {
    verdict
        .failed()
        .map(|c| {
            (
                c.id(),
                c.failures
                    .iter()
                    .map(|f| (f.node.label()[1..].parse().unwrap(), f.detail.clone()))
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
    let ids: Vec<&str> = verdict.criteria.iter().map(|c| c.id()).collect();
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
    case.cluster_info[1] = case.cluster_info[1].replace("cluster_state:ok", "cluster_state:fail");
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
        .map(|c| (c.id(), c.status()))
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
