//! Test support shared by the core's unit tests: observations built from real captured text.

use crate::parse::{parse_cluster_info, parse_cluster_nodes, parse_info};
use crate::snapshot::{NodeKey, NodeRecord, NodeState, NodeView, Snapshot};

/// Views of real servers, one `CLUSTER NODES` text shared by all nodes with `myself` moved to
/// each node's own line; `keys[i]` is node i's DBSIZE. Nodes listed in `fresh` answer with
/// their own one-line view instead (a node back with an empty nodes.conf). Each node is keyed
/// by its address.
pub fn captured(shared: &str, fresh: &[(usize, &str)], addrs: &[&str], keys: &[u64]) -> Snapshot {
    let mut records: Vec<NodeRecord> = addrs
        .iter()
        .map(|addr| {
            let (ip, port) = addr.rsplit_once(':').unwrap();
            NodeRecord::spec(
                NodeKey::named(addr),
                ip.parse().unwrap(),
                port.parse().unwrap(),
                None,
                1,
            )
        })
        .collect();
    let states: Vec<NodeState> = records
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let text = match fresh.iter().find(|(idx, _)| *idx == i) {
                Some((_, own)) => (*own).to_owned(),
                None => shared
                    .lines()
                    .map(|line| {
                        let at = format!(" {}:{}@", node.ip, node.port);
                        if line.contains(&at) {
                            line.replacen(" master ", " myself,master ", 1)
                                .replacen(" slave ", " myself,slave ", 1)
                        } else {
                            line.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            };
            let parsed = parse_cluster_nodes(&text).value;
            let id = parsed.myself().unwrap().id;
            let info = format!(
                "# Server\r\nredis_version:7.0.15\r\n# Keyspace\r\ndb0:keys={},expires=0,avg_ttl=0\r\n",
                keys[i]
            );
            NodeState::Seen(Box::new(NodeView {
                id,
                nodes: parsed,
                cluster_info: parse_cluster_info("cluster_state:ok\r\ncluster_current_epoch:7\r\n")
                    .value,
                info: parse_info(&info).value,
            }))
        })
        .collect();
    for (record, state) in records.iter_mut().zip(states) {
        record.set_state(state);
    }
    Snapshot::new(records)
}

/// A snapshot of nodes `n0`, `n1`, … at 127.0.0.1:7000 + i in these states.
pub fn snapshot_of(states: Vec<NodeState>) -> Snapshot {
    Snapshot::new(
        states
            .into_iter()
            .enumerate()
            .map(|(i, state)| {
                let mut record = NodeRecord::spec(
                    NodeKey::named(&format!("n{i}")),
                    "127.0.0.1".parse().unwrap(),
                    7000 + i as u16,
                    None,
                    1,
                );
                record.set_state(state);
                record
            })
            .collect(),
    )
}

/// The states of a snapshot's nodes, in order (to change one and build it again).
pub fn states_of(snapshot: Snapshot) -> Vec<NodeState> {
    snapshot.iter().map(|r| r.state.clone()).collect()
}

/// The six nodes of the lost-disk captures (`tests/fixtures/lost-disk/`).
pub const LOST_DISK_ADDRS: [&str; 6] = [
    "127.0.0.1:22201",
    "127.0.0.1:22202",
    "127.0.0.1:22203",
    "127.0.0.1:22204",
    "127.0.0.1:22205",
    "127.0.0.1:22206",
];

/// One node's answers, from the text of its `CLUSTER NODES`, `CLUSTER INFO` and `INFO`.
pub fn view(nodes: &str, cluster_info: &str, info: &str) -> NodeView {
    let nodes = parse_cluster_nodes(nodes).value;
    NodeView {
        id: nodes.myself().unwrap().id,
        nodes,
        cluster_info: parse_cluster_info(cluster_info).value,
        info: parse_info(info).value,
    }
}

/// A node seen answering with this `CLUSTER NODES` text and `cluster_current_epoch`.
pub fn view_of(nodes: &str, current_epoch: u64) -> NodeState {
    NodeState::Seen(Box::new(view(
        nodes,
        &format!("cluster_state:ok\r\ncluster_current_epoch:{current_epoch}\r\n"),
        "# Server\r\nredis_version:7.0.15\r\n",
    )))
}
