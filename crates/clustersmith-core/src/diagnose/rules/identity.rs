//! Node identity (CS312): one node id answered by two servers. A node's id lives in its
//! nodes.conf; a data dir restored from a backup of another node, or a disk cloned from
//! another VM, brings that node's id along. Peers key everything by id, so each heartbeat
//! from either server moves the id's address to the sender: the address flips between the
//! two, links drop, and replication and failover follow whichever server spoke last.

use std::collections::BTreeMap;

use super::common::capped;
use crate::diagnose::EvidenceKind::{Live, ServerLog};
use crate::diagnose::Severity::Error;
use crate::diagnose::{Evidence, Hit, Inputs, NodeEvidence, Rule, live};
use crate::model::NodeId;

use super::membership::{BUS_HANDSHAKE_STUCK, CONFIG_EPOCH_COLLISION, STALE_NODE_ADDRESS};
use super::replication::REPLICA_LINK_DOWN;

pub static NODE_ID_CLAIMED_TWICE: Rule = Rule {
    id: "CS312",
    name: "node-id-claimed-twice",
    severity: Error,
    detects: "Two live servers answering with the same node id, or a peer's log moving one id's address back and forth between two addresses (`Address updated for node <id>`).",
    why: "The id comes from nodes.conf: a data dir restored or cloned from another node brings that node's id. Peers key nodes by id and move the id to whichever server sent the last heartbeat, so its address flips between the two many times a second, links drop, and replicas and slots follow whichever spoke last.",
    fix: "Stop the copy (the server that started last). Before starting it again, move its nodes.conf away so it makes an id of its own, then introduce it with `clustersmith apply`. Restore data with the RDB or AOF files only, never nodes.conf.",
    false_positives: "None for two live servers with one id. A node that really moved answers from its new address only: its address changes once and does not come back.",
    evidence: &[Live, ServerLog],
    explains: &[
        &BUS_HANDSHAKE_STUCK,
        &STALE_NODE_ADDRESS,
        &REPLICA_LINK_DOWN,
        &CONFIG_EPOCH_COLLISION,
    ],
    reach: crate::diagnose::Reach::PeerFacing,
    check: node_id_claimed_twice,
};

pub fn node_id_claimed_twice(inputs: &Inputs) -> Vec<Hit> {
    let mut by_id: BTreeMap<NodeId, Vec<&NodeEvidence>> = BTreeMap::new();
    for (node, view) in inputs.live() {
        by_id.entry(view.id).or_default().push(node);
    }
    let flips = address_flips(inputs);
    let mut hits = Vec::new();
    for (id, nodes) in &by_id {
        let peers_saw = flips.get(id).cloned().unwrap_or_default();
        if nodes.len() < 2 && peers_saw.is_empty() {
            continue;
        }
        // The copy is the server that started last: the original ran before it was made.
        let uptime = |n: &NodeEvidence| {
            n.live
                .as_ref()
                .and_then(|v| v.info.get("uptime_in_seconds"))
                .and_then(|u| u.parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        };
        let Some(copy) = nodes.iter().copied().min_by_key(|n| uptime(n)) else {
            continue;
        };
        let mut evidence: Vec<Evidence> = nodes
            .iter()
            .map(|n| {
                live(
                    n,
                    "CLUSTER NODES",
                    format!(
                        "myself is {id} (up {} s)",
                        n.live
                            .as_ref()
                            .and_then(|v| v.info.get("uptime_in_seconds"))
                            .unwrap_or("?")
                    ),
                )
            })
            .collect();
        evidence.extend(capped(peers_saw.clone(), "address changes"));
        let others: Vec<String> = nodes
            .iter()
            .filter(|n| !std::ptr::eq(**n, copy))
            .map(|n| n.key.label().to_owned())
            .collect();
        let summary = if others.is_empty() {
            format!(
                "its id {} is claimed by a second server too: peers move the id's address back and forth",
                id.short()
            )
        } else {
            format!(
                "answers with node id {}, as {} does: a copy of that node's data dir (the later started); peers move the id's address back and forth",
                id.short(),
                others.join(", ")
            )
        };
        hits.push(Hit {
            node: Some(copy.key.clone()),
            summary,
            evidence,
        });
    }
    hits
}

/// Per id, the `Address updated for node <id> … now <addr>` lines of every log when they
/// move the id away from an address and back to it: two servers taking turns, not a move.
pub(in crate::diagnose) fn address_flips(inputs: &Inputs) -> BTreeMap<NodeId, Vec<Evidence>> {
    let mut flips: BTreeMap<NodeId, Vec<Evidence>> = BTreeMap::new();
    for node in &inputs.nodes {
        let Some(log) = &node.log else { continue };
        let mut seen: BTreeMap<NodeId, Vec<(usize, String)>> = BTreeMap::new();
        for line in &log.value.lines {
            if let Some((id, addr)) = address_update(&line.message) {
                seen.entry(id).or_default().push((line.line, addr));
            }
        }
        for (id, updates) in seen {
            let back = updates.iter().enumerate().skip(2).find(|(i, (_, addr))| {
                updates[i - 1].1 != *addr && updates[..i - 1].iter().any(|(_, a)| a == addr)
            });
            let Some((i, _)) = back else { continue };
            let (first, _) = &updates[0];
            let (last, _) = &updates[updates.len() - 1];
            let addrs: Vec<&str> = {
                let mut a: Vec<&str> = updates.iter().map(|(_, a)| a.as_str()).collect();
                a.sort_unstable();
                a.dedup();
                a
            };
            flips.entry(id).or_default().push(log.at(
                updates[i].0,
                format!(
                    "{} moved {} between {} {} times (lines {first}–{last})",
                    node.key,
                    id.short(),
                    addrs.join(" and "),
                    updates.len()
                ),
            ));
        }
    }
    flips
}

/// `Address updated for node <id>, now <ip>:<port>` (Redis ≤ 7.0) or `… <id> (<name>), now
/// <ip>:<port>` (Redis 7.2, Valkey): the id and the new address.
fn address_update(message: &str) -> Option<(NodeId, String)> {
    let rest = message.strip_prefix("Address updated for node ")?;
    let id = NodeId::parse(rest.get(..40)?).ok()?;
    let (_, addr) = rest.rsplit_once(", now ")?;
    Some((id, addr.trim().to_owned()))
}
