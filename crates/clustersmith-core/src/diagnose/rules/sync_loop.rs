//! Why a full sync loops, with the parameter and its numbers.
//!
//! CS522: while a replica
//! receives the RDB, the primary keeps every write for it in that replica's output buffer;
//! `client-output-buffer-limit replica <hard> <soft> <seconds>` caps the buffer, and a
//! replica over the cap is disconnected (`Client id=… flags=S … omem=<bytes> … scheduled to be
//! closed ASAP for overcoming of output buffer limits`, networking.c). It reconnects, needs a
//! full sync again, and the buffer fills again: the sync never completes while writes go on.
//!
//! CS523: while a replica receives the RDB it gives up when nothing came for `repl-timeout`
//! seconds (`Timeout receiving bulk data from MASTER… try to set the 'repl-timeout'
//! parameter…`, replication.c `replicationCron`: `time(NULL) - repl_transfer_lastio >
//! repl_timeout` in the transfer state). A diskless primary's stream pauses while its child
//! serialises (large keys, a loaded CPU); a repl-timeout below the longest pause cuts every
//! attempt at the same point, and the replica starts over.

use super::catalog::FULL_SYNC_FAILING;
use super::common::bytes;
use super::replication::REPLICA_LINK_DOWN;
use super::server_config::memory_bytes;
use crate::diagnose::EvidenceKind::{Live, RedisConf, ServerLog};
use crate::diagnose::Severity::Error;
use crate::diagnose::{Evidence, Hit, Inputs, NodeEvidence, Rule, live};

pub static REPLICA_OUTPUT_BUFFER_TOO_SMALL: Rule = Rule {
    id: "CS522",
    name: "replica-output-buffer-too-small",
    severity: Error,
    detects: "A primary whose log says it closed a replica's connection (`flags=S`) for overcoming its output buffer limit, with the buffer's size at that moment (`omem=`), against `client-output-buffer-limit replica` (from its redis.conf, or the default 256mb 64mb 60).",
    why: "During a full sync the primary buffers every write for the replica until the RDB is loaded. When the writes of the sync's duration exceed the replica class's limit, the primary drops the replica, which asks for a full sync again: under a steady write load the sync never completes.",
    fix: "Raise the replica class's limits above what a sync accumulates (the summary gives the buffer at the cut), on every node: `CONFIG SET client-output-buffer-limit \"replica <hard> <soft> <seconds>\"` and the same line in redis.conf; a hard limit of 0 removes the cap.",
    false_positives: "A limit raised at runtime with CONFIG SET after the cut but not written to redis.conf: the summary's limit is then the file's, not the live one.",
    evidence: &[ServerLog, RedisConf, Live],
    explains: &[&FULL_SYNC_FAILING, &REPLICA_LINK_DOWN],
    reach: crate::diagnose::Reach::PeerFacing,
    check: replica_output_buffer_too_small,
};

/// Both wordings: closed at once (hard limit) or scheduled (soft limit held too long).
const CLOSED_FOR_BUFFER: &str = "for overcoming of output buffer limits";

pub fn replica_output_buffer_too_small(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for node in &inputs.nodes {
        let Some(log) = &node.log else { continue };
        // Since the last start: an old cut before a restart with new limits is no cause.
        let cuts: Vec<(usize, u64)> = log
            .value
            .last_run()
            .iter()
            .filter(|l| l.message.contains(CLOSED_FOR_BUFFER))
            .filter(|l| field(&l.message, "flags").is_some_and(|f| f.contains('S')))
            .filter_map(|l| Some((l.line, field(&l.message, "omem")?.parse().ok()?)))
            .collect();
        let Some(&(last_line, _)) = cuts.last() else {
            continue;
        };
        // Its replicas in view all linked: the sync got through since (the writes eased).
        let replicas: Vec<&NodeEvidence> = inputs
            .nodes
            .iter()
            .filter(|n| {
                n.live.as_ref().is_some_and(|v| {
                    v.info
                        .primary_addr()
                        .is_some_and(|addr| node.ip.zip(node.port) == Some(addr))
                })
            })
            .collect();
        let all_linked = replicas.iter().all(|n| {
            n.live
                .as_ref()
                .is_some_and(|v| v.info.primary_link_status() == Some("up"))
        });
        if !replicas.is_empty() && all_linked {
            continue;
        }
        let largest = cuts.iter().map(|(_, omem)| *omem).max().unwrap_or(0);
        let (limit, limit_evidence) = replica_limit(node);
        let mut evidence = vec![log.at(
            last_line,
            format!(
                "a replica's connection closed for its output buffer {} time(s) since the start, at up to {} (omem={largest})",
                cuts.len(),
                bytes(largest)
            ),
        )];
        evidence.extend(limit_evidence);
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary: format!(
                "drops its replica during every full sync: the writes it buffers for the replica reach {} while client-output-buffer-limit replica allows {}; the replica reconnects and starts over",
                bytes(largest),
                limit
            ),
            evidence,
        });
    }
    hits
}

pub static REPL_TIMEOUT_BELOW_TRANSFER_PAUSE: Rule = Rule {
    id: "CS523",
    name: "repl-timeout-below-transfer-pause",
    severity: Error,
    detects: "A replica whose log says `Timeout receiving bulk data from MASTER` (or PRIMARY) since its last start, and whose link is not up now: it gave up receiving the RDB because nothing came for `repl-timeout` seconds. The summary gives the replica's repl-timeout (from its redis.conf, or the default 60 s) and how many attempts it cut.",
    why: "A full sync that is cut starts over from the beginning and pauses at the same point again: the replica never syncs, and its primary's shard has no working replica to fail over to.",
    fix: "Raise `repl-timeout` above the longest pause of the transfer, on the replica and on its primary (the primary applies it to its replicas too): `CONFIG SET repl-timeout <seconds>` and the same line in redis.conf. The default 60 s suits most datasets; a few seconds cuts the sync of any sizeable one. If it is large already, find why the stream pauses: a diskless sync (`repl-diskless-sync yes`) whose child serialises slowly (large keys, a busy CPU, `rdb-key-save-delay`), or a saturated network.",
    false_positives: "A repl-timeout raised at runtime with CONFIG SET after the cuts but not written to redis.conf: the summary's value is then the file's. A single pause of the network that is over: the replica then syncs and its link is up, and this does not fire.",
    evidence: &[ServerLog, RedisConf, Live],
    explains: &[&FULL_SYNC_FAILING, &REPLICA_LINK_DOWN],
    reach: crate::diagnose::Reach::OwnNode,
    check: repl_timeout_below_transfer_pause,
};

/// The replica's words, in both flavours (MASTER / PRIMARY).
const BULK_TIMEOUT: &str = "Timeout receiving bulk data from";

pub fn repl_timeout_below_transfer_pause(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for node in &inputs.nodes {
        let Some(log) = &node.log else { continue };
        let cuts: Vec<usize> = log
            .value
            .last_run()
            .iter()
            .filter(|l| l.message.contains(BULK_TIMEOUT))
            .map(|l| l.line)
            .collect();
        let Some(&last) = cuts.last() else { continue };
        let link = node.live.as_ref().map(|v| {
            (
                v.info.primary_link_status().unwrap_or("?").to_owned(),
                v.info
                    .get("master_sync_in_progress")
                    .unwrap_or("?")
                    .to_owned(),
            )
        });
        // Synced since: the pause is over.
        if link.as_ref().is_some_and(|(status, _)| status == "up") {
            continue;
        }
        let (timeout, mut evidence) = match node
            .redis_conf
            .as_ref()
            .and_then(|conf| Some((conf, conf.value.get("repl-timeout")?)))
        {
            Some((conf, d)) => (
                format!(
                    "repl-timeout {} s",
                    d.args.first().map_or("?", String::as_str)
                ),
                vec![conf.at(d.line, d.shown())],
            ),
            None if node.redis_conf.is_some() => {
                ("repl-timeout 60 s (the default)".to_owned(), Vec::new())
            }
            None => ("its repl-timeout (60 s unless set)".to_owned(), Vec::new()),
        };
        evidence.insert(
            0,
            log.at(
                last,
                format!(
                    "gave up receiving the RDB {} time(s) since its start",
                    cuts.len()
                ),
            ),
        );
        if let Some((status, syncing)) = &link {
            evidence.push(live(
                node,
                "INFO replication",
                format!("master_link_status:{status} master_sync_in_progress:{syncing}"),
            ));
        }
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary: format!(
                "its full sync is cut every time: {} attempt(s) since its start gave up after its primary sent nothing for longer than {timeout}; it reconnects and starts over",
                cuts.len()
            ),
            evidence,
        });
    }
    hits
}

/// `key=value` in a CLIENT LIST–style line.
fn field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// The replica class's limits as the node's redis.conf sets them (the last directive naming
/// the class wins), or the servers' default.
fn replica_limit(node: &NodeEvidence) -> (String, Vec<Evidence>) {
    let set = node.redis_conf.as_ref().and_then(|conf| {
        conf.value
            .directives
            .iter()
            .rev()
            .filter(|d| d.name == "client-output-buffer-limit")
            .find_map(|d| {
                let class = d.args.chunks(4).find(|c| {
                    c.len() == 4
                        && matches!(c[0].to_ascii_lowercase().as_str(), "replica" | "slave")
                })?;
                Some((class.to_vec(), conf.at(d.line, d.shown())))
            })
    });
    match set {
        Some((class, evidence)) => {
            let amount = |v: &str| match memory_bytes(v) {
                Some(0) => "no limit".to_owned(),
                Some(n) => bytes(n),
                None => v.to_owned(),
            };
            (
                format!(
                    "hard {}, soft {} for {} s",
                    amount(&class[1]),
                    amount(&class[2]),
                    class[3]
                ),
                vec![evidence],
            )
        }
        None => (
            "hard 256.0 MiB, soft 64.0 MiB for 60 s (the default)".to_owned(),
            Vec::new(),
        ),
    }
}
