//! The node's environment (CS521, CS524): what the machine under a server lacks, named with
//! its numbers. A replica whose disk cannot hold the RDB its primary sends fails every full
//! sync with one line, `Write error or short write writing to the DB dump file needed for
//! MASTER <-> REPLICA synchronization: short write` (readSyncBulkPayload, Redis 6.2 to Valkey
//! 9: the write() that comes back short on a full file system sets no errno worth printing),
//! and starts over. A node whose own save does not fit logs `Write error saving DB on disk:
//! No space left on device` (rdb.c; 7.0 adds the function's name) and `Background saving
//! error`; with save points set, it then refuses writes with MISCONF. A `maxmemory` above the
//! machine's memory (CS525) is never reached: the kernel ends the server first.

use super::catalog::FULL_SYNC_FAILING;
use super::common::bytes;
use super::replication::REPLICA_LINK_DOWN;
use crate::diagnose::EvidenceKind::{Live, ServerLog};
use crate::diagnose::Severity::{Error, Warning};
use crate::diagnose::{Evidence, Hit, Inputs, NodeEvidence, Rule, Source};

pub static REPLICA_DISK_TOO_SMALL: Rule = Rule {
    id: "CS521",
    name: "replica-disk-too-small",
    severity: Error,
    detects: "A replica whose log says it could not write the RDB of a full sync to its disk (`Write error or short write writing to the DB dump file needed for … synchronization` with `short write` or `No space left on device`) while its link is down, with the free space under its `dir` (read where the node runs) against the size of its primary's dataset.",
    why: "A full sync writes the whole RDB to a temporary file in `dir` before loading it. When the file system is full the write comes back short: the replica drops the file, reconnects and asks for another full sync, for ever. Each attempt forks the primary and sends the dataset again.",
    fix: "Give the replica's `dir` room for its primary's RDB plus a temporary copy (the numbers are in the summary), or point `dir` at a larger volume; the replica then completes its next attempt by itself.",
    false_positives: "A file-size limit (`ulimit -f`) on the server's process also makes writes short; the free space shown then looks ample.",
    evidence: &[ServerLog, Live],
    explains: &[&FULL_SYNC_FAILING, &REPLICA_LINK_DOWN],
    reach: crate::diagnose::Reach::OwnNode,
    check: replica_disk_too_small,
};

/// The replica's failed writes of a sync's RDB: `short write` or `No space left on device`.
const SYNC_WRITE_FAILED: &str = "writing to the DB dump file needed for";

pub fn replica_disk_too_small(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for node in &inputs.nodes {
        let Some(log) = &node.log else { continue };
        let link_up = node
            .live
            .as_ref()
            .is_some_and(|v| v.info.primary_link_status() == Some("up"));
        if link_up {
            // It got through since: whatever filled the disk is gone.
            continue;
        }
        let failed: Vec<Evidence> = log
            .lines_with(&[SYNC_WRITE_FAILED])
            .into_iter()
            .filter(|e| {
                let text = e.text.to_ascii_lowercase();
                text.contains("short write") || text.contains("no space left")
            })
            .collect();
        if failed.is_empty() {
            continue;
        }
        let mut numbers = Numbers {
            phrases: Vec::new(),
            evidence: failed,
        };
        numbers.free_space(node, "the failed sync's");
        if let Some((primary, dataset)) = primary_dataset(inputs, node) {
            numbers.dataset(primary, dataset, "its primary holds");
        }
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary: format!(
                "its disk cannot hold the RDB of a full sync (the write came back short, the file system is full){}",
                numbers.suffix()
            ),
            evidence: numbers.evidence,
        });
    }
    hits
}

pub static DATA_DISK_TOO_SMALL: Rule = Rule {
    id: "CS524",
    name: "data-disk-too-small",
    severity: Error,
    detects: "A node whose own RDB save or AOF write failed for lack of space since its last start (`Write error saving DB on disk: No space left on device`, an AOF write with `No space left on device` or a short write), with the free space under its `dir` (read where the node runs) against its dataset (`used_memory_dataset`).",
    why: "A save writes the whole dataset to a temporary file in `dir`; on a full file system it fails and the file is removed, so the disk looks empty again afterwards. With save points set and `stop-writes-on-bgsave-error yes` (the default) the primary then refuses every write with MISCONF until a save succeeds; a full sync to its replicas needs the same save.",
    fix: "Give `dir` room for the dataset's RDB plus a temporary copy (the numbers are in the summary), or point `dir` at a larger volume; then `BGSAVE` once: a successful save lifts the MISCONF refusal.",
    false_positives: "A file-size limit (`ulimit -f`) on the server's process also fails writes; the free space shown then looks ample.",
    evidence: &[ServerLog, Live],
    explains: &[
        &super::catalog::PERSISTENCE_WRITE_FAILING,
        &super::clients::WRITES_REFUSED_MISCONF,
        &FULL_SYNC_FAILING,
    ],
    reach: crate::diagnose::Reach::OwnNode,
    check: data_disk_too_small,
};

pub fn data_disk_too_small(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for node in &inputs.nodes {
        let Some(log) = &node.log else { continue };
        let start = log.value.last_run_start();
        let Some(failed) = log.value.lines[start..].iter().rev().find(|l| {
            let text = l.message.to_ascii_lowercase();
            (text.contains("write error saving db on disk") || text.contains("aof file"))
                && (text.contains("no space left on device") || text.contains("short write"))
        }) else {
            continue;
        };
        // A save that succeeded since (INFO says so, or the log after the failure): the
        // space was found.
        let saved_since = log.value.lines[start..]
            .iter()
            .filter(|l| l.line > failed.line)
            .any(|l| {
                l.message
                    .contains("Background saving terminated with success")
                    || l.message.contains("DB saved on disk")
            });
        let rdb = !failed.message.to_ascii_lowercase().contains("aof");
        if rdb
            && (saved_since
                || node
                    .live
                    .as_ref()
                    .is_some_and(|v| v.info.get("rdb_last_bgsave_status") == Some("ok")))
        {
            continue;
        }
        let mut numbers = Numbers {
            phrases: Vec::new(),
            evidence: vec![log.at(failed.line, failed.message.clone())],
        };
        numbers.free_space(node, "the failed save's");
        if let Some(dataset) = node
            .live
            .as_ref()
            .and_then(|v| v.info.number("used_memory_dataset"))
        {
            numbers.dataset(node, dataset, "it holds");
        }
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary: format!(
                "its saves do not fit on its disk (a write failed: no space left){}",
                numbers.suffix()
            ),
            evidence: numbers.evidence,
        });
    }
    hits
}

/// The numbers a disk finding gives: the free space under `dir` against a dataset, each with
/// its evidence.
struct Numbers {
    phrases: Vec<String>,
    evidence: Vec<Evidence>,
}

impl Numbers {
    /// statvfs of the node's `dir`, when read where the node runs. `whose` names the write
    /// whose temporary file the server removed before statvfs saw the disk.
    fn free_space(&mut self, node: &NodeEvidence, whose: &str) {
        let Some(disk) = &node.disk else { return };
        let (free, total) = (bytes(disk.free_bytes), bytes(disk.total_bytes));
        self.phrases
            .push(format!("{} has {free} free of {total}", disk.dir));
        self.evidence.push(Evidence {
            source: Source::File {
                path: disk.dir.clone(),
                line: None,
            },
            text: format!(
                "statvfs: {free} free of {total} (with {whose} temporary file already removed)"
            ),
        });
    }

    /// `used_memory_dataset` of `owner` (an RDB is at most about that size).
    fn dataset(&mut self, owner: &NodeEvidence, dataset: u64, phrase: &str) {
        self.phrases
            .push(format!("{phrase} {} of data", bytes(dataset)));
        self.evidence.push(crate::diagnose::live(
            owner,
            "INFO memory",
            format!("used_memory_dataset:{dataset} ({})", bytes(dataset)),
        ));
    }

    /// `: a; b` for a summary, or nothing.
    fn suffix(&self) -> String {
        if self.phrases.is_empty() {
            String::new()
        } else {
            format!(": {}", self.phrases.join("; "))
        }
    }
}

pub static MAXMEMORY_BEYOND_THE_MACHINE: Rule = Rule {
    id: "CS525",
    name: "maxmemory-beyond-the-machine",
    severity: Warning,
    detects: "A node whose `maxmemory` is more than its machine's memory (`total_system_memory` in INFO memory), or that has no `maxmemory` while its resident memory (`used_memory_rss`) already takes most of the machine (over 3/4).",
    why: "`maxmemory` is where the server starts evicting or refusing writes with OOM. Set above what the machine has (a value sized for another VM type, or copied across nodes sharing a host), it is never reached: the kernel's OOM killer ends the server first, and a primary killed that way loses the writes since its last save and fails over. With no `maxmemory` at all, nothing holds the dataset back before that.",
    fix: "Set `maxmemory` below the machine's memory, leaving room for the fork of saves and full syncs, the replication and client buffers, and the other nodes on the same machine (`CONFIG SET maxmemory <bytes>` and the same line in redis.conf); pick a `maxmemory-policy` that fits the data (noeviction for a store, an LRU/LFU policy for a cache).",
    false_positives: "A server in a container reports the host's memory, not the container's limit; the container's limit is then the number that counts, and it is lower. Several nodes on one machine are judged one by one here, not summed.",
    evidence: &[Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: maxmemory_beyond_the_machine,
};

pub fn maxmemory_beyond_the_machine(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (node, view) in inputs.live() {
        let field = |name: &str| view.info.number(name);
        let Some(machine) = field("total_system_memory").filter(|m| *m > 0) else {
            continue;
        };
        let max = field("maxmemory").unwrap_or(0);
        let rss = field("used_memory_rss").unwrap_or(0);
        let summary = if max > machine {
            format!(
                "maxmemory {} is more than its machine's {}: the kernel's OOM killer would end the server before maxmemory is reached",
                bytes(max),
                bytes(machine)
            )
        } else if max == 0 && rss > machine / 4 * 3 {
            format!(
                "no maxmemory, and it already takes {} of its machine's {} (used_memory_rss): nothing holds the dataset back before the kernel's OOM killer",
                bytes(rss),
                bytes(machine)
            )
        } else {
            continue;
        };
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary,
            evidence: vec![crate::diagnose::live(
                node,
                "INFO memory",
                format!("maxmemory:{max} total_system_memory:{machine} used_memory_rss:{rss}"),
            )],
        });
    }
    hits
}

/// The given node this replica follows, and its `used_memory_dataset` (an RDB is at most about
/// that size; compression makes it smaller).
fn primary_dataset<'a>(
    inputs: &'a Inputs,
    replica: &NodeEvidence,
) -> Option<(&'a NodeEvidence, u64)> {
    let view = replica.live.as_ref()?;
    let connects_to = view.info.primary_addr();
    let following = view.myself().primary_id;
    let primary = inputs.nodes.iter().find(|n| {
        (connects_to.is_some() && n.ip.zip(n.port) == connects_to)
            || (following.is_some() && n.live.as_ref().map(|v| v.id) == following)
    })?;
    let dataset = primary.live.as_ref()?.info.number("used_memory_dataset")?;
    Some((primary, dataset))
}
