//! A node back at its address with a new id (lost disk, recreated VM; CS320), and the data
//! loss it can cause (CS321): a replica that reconnects to the old address resyncs from the
//! empty newcomer. Other families' checks leave departed members to CS320 ([`departed_ids`]).

use crate::diagnose::EvidenceKind::{Live, ServerLog};
use crate::diagnose::Severity::{Critical, Error};
use crate::diagnose::{Hit, Inputs, NodeEvidence, Rule, live};
use crate::model::NodeId;
use crate::parse::LogLine;
use crate::snapshot::Departed;

fn departed(inputs: &Inputs) -> (Vec<&NodeEvidence>, Vec<Departed>) {
    let (given, snapshot) = inputs.live_snapshot();
    let ours: Vec<&NodeId> = given
        .iter()
        .filter_map(|n| n.live.as_ref())
        .map(|v| &v.id)
        .collect();
    let found = snapshot.departed_members(&|id| ours.contains(&id));
    (given, found)
}

/// The given node a departed member's successor key names.
fn given<'a>(given: &[&'a NodeEvidence], key: &crate::snapshot::NodeKey) -> &'a NodeEvidence {
    given
        .iter()
        .find(|n| &n.key == key)
        .expect("every key of the live snapshot is a given node's label")
}

/// Ids of departed members: other checks leave them to CS320 instead of calling them
/// strangers or broken links.
pub fn departed_ids(inputs: &Inputs) -> Vec<NodeId> {
    departed(inputs).1.into_iter().map(|d| d.id).collect()
}

pub static NODE_REPLACED_WITH_NEW_ID: Rule = Rule {
    id: "CS320",
    name: "node-replaced-with-new-id",
    severity: Error,
    detects: "An expected address answers with a new node id (a fresh node: it knows only itself) while its peers still list an old id there, or with its address forgotten (`noaddr`, set when a PONG from that address carries another id).",
    why: "A node whose nodes.conf was lost (disk lost, VM recreated, volume not mounted) starts as a new, empty node at the same address. The cluster keeps the old id: as `fail` once a replica took over its slots, or still owning them if none did. Neither `redis-cli --cluster fix` nor a restart repairs it; every peer must forget the old id within the 60 s forget ban, and the new node must be introduced again.",
    fix: "Once the old id owns no slot (its replica took over), run `clustersmith apply`: it sends CLUSTER FORGET <old-id> to every node in one round and adds the node back in its planned role (a replica of the promoted primary). While the old id still owns slots, promote a replica that still holds the data (`CLUSTER FAILOVER TAKEOVER`) or restore from a backup first.",
    false_positives: "A node deliberately reset with CLUSTER RESET HARD and not yet re-added: the repair is the same.",
    evidence: &[Live],
    explains: &[
        &super::membership::NODE_KNOWS_ONLY_ITSELF,
        &super::membership::SLOTS_NOT_COVERED,
        &super::membership::BUS_HANDSHAKE_STUCK,
        &super::replication::REPLICA_LINK_DOWN,
    ],
    reach: crate::diagnose::Reach::PeerFacing,
    check: node_replaced_with_new_id,
};

pub fn node_replaced_with_new_id(inputs: &Inputs) -> Vec<Hit> {
    let (given_nodes, found) = departed(inputs);
    found
        .into_iter()
        .map(|d| {
            let successor = given(&given_nodes, &d.successor);
            let new_id = successor.live.as_ref().map_or("?", |v| v.id.short());
            let mut evidence = vec![live(
                successor,
                "CLUSTER NODES",
                format!(
                    "answers as {new_id}, knows {} node(s), epoch {}",
                    successor.live.as_ref().map_or(0, |v| v.nodes.entries().len()),
                    successor.live.as_ref().map_or(0, |v| v.myself().config_epoch)
                ),
            )];
            for viewer in d.listed_by.iter().take(3) {
                evidence.push(live(
                    given(&given_nodes, viewer),
                    "CLUSTER NODES",
                    format!("{} {} slots {}", d.id, d.flags, d.slots),
                ));
            }
            let next = if d.slots.is_empty() {
                "it owns no slot any more (a replica took over): `clustersmith apply` forgets the old id on every node and adds the node back in its planned role".to_owned()
            } else {
                format!(
                    "it still owns slots {} and no replica has taken over: promote a replica that still holds the data (`CLUSTER FAILOVER TAKEOVER`), or restore from a backup, before forgetting it",
                    d.slots
                )
            };
            Hit {
                node: Some(successor.key.clone()),
                summary: format!(
                    "came back empty with a new id {new_id} (lost disk or nodes.conf) while {} peer(s) still list its old id {} ({}); {next}",
                    d.listed_by.len(),
                    d.id.short(),
                    d.flags
                ),
                evidence,
            }
        })
        .collect()
}

pub static REPLICA_FLUSHED_BY_EMPTY_PRIMARY: Rule = Rule {
    id: "CS321",
    name: "replica-flushed-by-empty-primary",
    severity: Critical,
    detects: "In a replica's log: `Full resync from master: <replid>:0` (Valkey: `primary`), then `Flushing old data`, then `Done loading RDB, keys loaded: 0` in the same sync.",
    why: "A primary at offset 0 has just started with no data and no replication history. A replica that reconnects to its primary's address (replication follows the address, not the node id) while an empty server answers there, e.g. a node back from a lost disk, takes a full resync from it and throws its own copy away. If that replica then wins the failover, the cluster serves those slots empty.",
    fix: "Stop writes to the affected slots, restore the data from a backup (RDB/AOF of the old primary, or another replica that did not resync), and only then rejoin the empty node. Prevent it: give nodes persistent storage for nodes.conf, and keep a restarted empty node out of the cluster (`cluster-enabled` nodes with an empty nodes.conf should not be started at an old member's address) until its old id is forgotten.",
    false_positives: "A shard that really held no keys (nothing was lost); the live key count is shown.",
    evidence: &[ServerLog, Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: replica_flushed_by_empty_primary,
};

/// A replica that held data (it had received a replication stream, or loaded keys) took a
/// full resync from a primary whose replication offset is 0 (a server that has just started
/// with no data and no history) and loaded 0 keys: it threw its dataset away for an empty one.
/// A replica's first sync at formation looks the same but held nothing, so it is not counted.
/// Redis and Valkey log it the same way, with `master` / `primary`.
pub fn replica_flushed_by_empty_primary(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for node in &inputs.nodes {
        let Some(log) = &node.log else { continue };
        let mut evidence = Vec::new();
        // What the replica held before the sync in progress, and that sync's lines so far.
        let mut held: Option<&LogLine> = None;
        let mut from_empty: Option<&LogLine> = None;
        let mut flushed: Option<&LogLine> = None;
        for line in &log.value.lines {
            let message = line.message.as_str();
            if let Some(offset) = partial_resync_offset(message) {
                // The offset asked for is one past what it had received: above 1, it had a
                // stream (writes) from its primary.
                if offset > 1 {
                    held = Some(line);
                }
            } else if message.starts_with("Full resync from ") {
                from_empty = message.ends_with(":0").then_some(line);
                flushed = None;
            // `MASTER <-> REPLICA sync: Flushing old data`; Valkey 9: `RDB signature and
            // version check passed. Flushing old data`.
            } else if message.ends_with("Flushing old data") {
                flushed = Some(line);
            } else if let Some(keys) = keys_loaded(message) {
                if keys == 0
                    && let (Some(before), Some(full), Some(flush)) = (held, from_empty, flushed)
                {
                    for l in [before, full, flush, line] {
                        evidence.push(log.at(l.line, format!("{} {}", l.time, l.message)));
                    }
                }
                held = (keys > 0).then_some(line);
                from_empty = None;
                flushed = None;
            }
        }
        if evidence.is_empty() {
            continue;
        }
        if let Some(view) = &node.live {
            evidence.push(live(
                node,
                "INFO keyspace",
                format!(
                    "{} now",
                    crate::plural(view.info.key_count(), "key", "keys")
                ),
            ));
        }
        let syncs = evidence
            .iter()
            .filter(|e| e.text.contains("Full resync"))
            .count();
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary: format!(
                "DATA LOSS: held data, then discarded it in {} from a primary with no data and no replication history (offset 0), loading 0 keys: what it held is gone unless another copy exists",
                crate::plural(syncs as u64, "full resync", "full resyncs")
            ),
            evidence,
        });
    }
    hits
}

/// The offset in `Trying a partial resynchronization (request <replid>:<offset>).` (Valkey
/// may add `using main channel`).
fn partial_resync_offset(message: &str) -> Option<u64> {
    let rest = message.strip_prefix("Trying a partial resynchronization ")?;
    let (_, request) = rest.split_once("(request ")?;
    let (_, offset) = request.trim_end_matches(").").rsplit_once(':')?;
    offset.parse().ok()
}

/// N in `Done loading RDB, keys loaded: N, keys expired: …`.
fn keys_loaded(message: &str) -> Option<u64> {
    let rest = message.strip_prefix("Done loading RDB, keys loaded: ")?;
    rest.split(',').next()?.trim().parse().ok()
}
