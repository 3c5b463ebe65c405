//! The node's environment (CS521, CS524): what the machine under a server lacks, named with
//! its numbers. A replica whose disk cannot hold the RDB its primary sends fails every full
//! sync with one line, `Write error or short write writing to the DB dump file needed for
//! MASTER <-> REPLICA synchronization: short write` (readSyncBulkPayload, Redis 6.2 to Valkey
//! 9: the write() that comes back short on a full file system sets no errno worth printing),
//! and starts over. A node whose own save does not fit logs `Write error saving DB on disk:
//! No space left on device` (rdb.c; 7.0 adds the function's name) and `Background saving
//! error`; with save points set, it then refuses writes with MISCONF. A `maxmemory` above the
//! machine's memory (CS525) is never reached: the kernel ends the server first. A fork the
//! kernel refuses (CS526 for memory, CS527 at the user's process limit) stops every
//! background save, AOF rewrite and full sync; the server logs the reason errno gives.

use super::catalog::FULL_SYNC_FAILING;
use super::common::bytes;
use super::replication::REPLICA_LINK_DOWN;
use crate::diagnose::EvidenceKind::{Live, ServerLog};
use crate::diagnose::Severity::{Error, Warning};
use crate::diagnose::{Evidence, Hit, Inputs, NodeEvidence, Rule, Source};
use crate::parse::LogLine;

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
        hits.push(numbers.hit(
            node,
            "its disk cannot hold the RDB of a full sync (the write came back short, the file system is full)",
        ));
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
        let run = log.value.last_run();
        let Some(failed) = run.iter().rev().find(|l| {
            let text = l.message.to_ascii_lowercase();
            (text.contains("write error saving db on disk") || text.contains("aof file"))
                && (text.contains("no space left on device") || text.contains("short write"))
        }) else {
            continue;
        };
        // A save that succeeded since (INFO says so, or the log after the failure): the
        // space was found.
        let saved_since = logged_after(
            run,
            failed,
            &[
                "Background saving terminated with success",
                "DB saved on disk",
            ],
        );
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
        hits.push(numbers.hit(
            node,
            "its saves do not fit on its disk (a write failed: no space left)",
        ));
    }
    hits
}

/// The numbers a finding gives (the free space under `dir` against a dataset, memory against
/// the machine), each phrase with its evidence.
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

    /// The hit on `node` whose summary is `head` followed by the numbers (`head: a; b`).
    fn hit(self, node: &NodeEvidence, head: &str) -> Hit {
        let summary = if self.phrases.is_empty() {
            head.to_owned()
        } else {
            format!("{head}: {}", self.phrases.join("; "))
        };
        Hit {
            node: Some(node.key.clone()),
            summary,
            evidence: self.evidence,
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

/// The fork failures the servers log (rdb.c `rdbSaveBackground` and `rdbSaveToSlavesSockets`,
/// aof.c `rewriteAppendOnlyFileBackground`, Redis 6.2 to Valkey 9), each followed by
/// `strerror(errno)`.
const FORK_FAILED: &[&str] = &[
    "Can't save in background: fork: ",
    "Can't rewrite append only file in background: fork: ",
];

/// What follows a fork that worked again: a background save or AOF rewrite that finished.
const FORKED_SINCE: &[&str] = &[
    "Background saving terminated with success",
    "Background AOF rewrite finished successfully",
];

/// Whether any of `messages` was logged in `run` after `line`: a save or rewrite that
/// finished since a failure.
fn logged_after(run: &[LogLine], line: &LogLine, messages: &[&str]) -> bool {
    run.iter()
        .any(|l| l.line > line.line && messages.iter().any(|m| l.message.contains(m)))
}

/// The node's fork failures since its last start whose reason (errno's text) is `reason`, with
/// the evidence of the last one and their count; `None` when there are none, or when a
/// background save or rewrite has finished since the last.
fn forks_refused(node: &NodeEvidence, reason: &str) -> Option<(usize, Evidence)> {
    let log = node.log.as_ref()?;
    let run = log.value.last_run();
    let refused: Vec<_> = run
        .iter()
        .filter(|l| {
            FORK_FAILED.iter().any(|f| {
                l.message
                    .split_once(f)
                    .is_some_and(|(_, why)| why.trim() == reason)
            })
        })
        .collect();
    let last = refused.last()?;
    let forked_since = logged_after(run, last, FORKED_SINCE);
    let rdb_ok_now = last.message.contains("Can't save")
        && node
            .live
            .as_ref()
            .is_some_and(|v| v.info.get("rdb_last_bgsave_status") == Some("ok"));
    if forked_since || rdb_ok_now {
        return None;
    }
    // A thinned log keeps a message's first and last lines; its count holds the rest.
    let count = log
        .value
        .times_logged_by_its_process(last)
        .map_or(refused.len(), |times| times.max(refused.len()));
    let text = if count > 1 {
        format!("{} ({count} times since its start)", last.message)
    } else {
        last.message.clone()
    };
    Some((count, log.at(last.line, text)))
}

/// What a failed fork leaves on its own node: nothing persisted (the catalog's lines), writes
/// refused with MISCONF, no RDB for a replica's full sync.
static BROKEN_BY_A_REFUSED_FORK: &[&Rule] = &[
    &super::catalog::PERSISTENCE_WRITE_FAILING,
    &super::clients::WRITES_REFUSED_MISCONF,
    &FULL_SYNC_FAILING,
];

pub static FORK_REFUSED_FOR_MEMORY: Rule = Rule {
    id: "CS526",
    name: "fork-refused-for-memory",
    severity: Error,
    detects: "A node whose fork for a background save, an AOF rewrite or a full sync failed with `Cannot allocate memory` since its last start (`Can't save in background: fork: Cannot allocate memory`), with its RSS against the machine (`INFO memory`) and the server's own startup warning that `vm.overcommit_memory` is not 1, when its log has it.",
    why: "Under `vm.overcommit_memory` 0 (heuristic) or 2 (never) the kernel refuses a fork whose copy of the process it could not back with memory, though the child shares every page copy-on-write and touches few. Every background save, AOF rewrite and full sync to a replica starts with a fork: nothing is persisted, a primary with save points refuses writes with MISCONF, and replicas needing a full sync get none.",
    fix: "Set `vm.overcommit_memory = 1` (`sysctl vm.overcommit_memory=1`, and in /etc/sysctl.conf so it survives a reboot), as the server's startup warning asks; then `BGSAVE` once: a successful save lifts the MISCONF refusal. Where it is 1 already, the machine has no memory left for the child's page tables: give it memory or swap, or lower `maxmemory`.",
    false_positives: "A fork refused once under a passing memory peak: the rule stays quiet once a background save or rewrite has finished since.",
    evidence: &[ServerLog, Live],
    explains: BROKEN_BY_A_REFUSED_FORK,
    reach: crate::diagnose::Reach::OwnNode,
    check: fork_refused_for_memory,
};

pub fn fork_refused_for_memory(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for node in &inputs.nodes {
        let Some((count, failed)) = forks_refused(node, "Cannot allocate memory") else {
            continue;
        };
        let mut numbers = Numbers {
            phrases: Vec::new(),
            evidence: vec![failed],
        };
        if let Some(view) = &node.live
            && let (Some(rss), Some(machine)) = (
                view.info.number("used_memory_rss"),
                view.info.number("total_system_memory").filter(|m| *m > 0),
            )
        {
            numbers.phrases.push(format!(
                "it takes {} of its machine's {}",
                bytes(rss),
                bytes(machine)
            ));
            numbers.evidence.push(crate::diagnose::live(
                node,
                "INFO memory",
                format!("used_memory_rss:{rss} total_system_memory:{machine}"),
            ));
        }
        // Redis 6.2 `WARNING overcommit_memory is set to 0!`, 7.0+ `Memory overcommit must be
        // enabled!`: logged at startup when /proc/sys/vm/overcommit_memory is not 1.
        if let Some(log) = &node.log
            && let Some(warned) = log.value.last_run().iter().find(|l| {
                l.message.contains("overcommit_memory is set to 0")
                    || l.message.contains("Memory overcommit must be enabled")
            })
        {
            numbers
                .phrases
                .push("vm.overcommit_memory is not 1 (the server warned at startup)".to_owned());
            numbers
                .evidence
                .push(log.at(warned.line, warned.message.clone()));
        }
        hits.push(numbers.hit(
            node,
            &format!(
                "the kernel refuses its fork for memory ({count} time(s) since its start: no background save, AOF rewrite or full sync can start)"
            ),
        ));
    }
    hits
}

pub static FORK_REFUSED_AT_PROCESS_LIMIT: Rule = Rule {
    id: "CS527",
    name: "fork-refused-at-process-limit",
    severity: Error,
    detects: "A node whose fork for a background save, an AOF rewrite or a full sync failed with `Resource temporarily unavailable` (EAGAIN) since its last start (`Can't save in background: fork: Resource temporarily unavailable`): the server's user is at its limit of processes, where every thread counts.",
    why: "The kernel refuses a fork when the user already runs as many processes and threads as `RLIMIT_NPROC` (`ulimit -u`) allows, or its cgroup as many as `pids.max` (systemd `TasksMax`, a container's pids limit). The server's own threads (its background I/O threads, io-threads) count against it. Every background save, AOF rewrite and full sync to a replica starts with a fork: nothing is persisted, a primary with save points refuses writes with MISCONF, and replicas needing a full sync get none.",
    fix: "Raise the process limit of the server's user (systemd `LimitNPROC`, `ulimit -u` in the start script, the BOSH job's limits) or of its cgroup (`TasksMax`, a container's `--pids-limit`) above the server's threads plus one, or run the server under a user of its own that nothing else uses; then `BGSAVE` once: a successful save lifts the MISCONF refusal.",
    false_positives: "Another process of the same user that briefly took the last slots: the rule stays quiet once a background save or rewrite has finished since.",
    evidence: &[ServerLog, Live],
    explains: BROKEN_BY_A_REFUSED_FORK,
    reach: crate::diagnose::Reach::OwnNode,
    check: fork_refused_at_process_limit,
};

pub fn fork_refused_at_process_limit(inputs: &Inputs) -> Vec<Hit> {
    inputs
        .nodes
        .iter()
        .filter_map(|node| {
            let (count, failed) = forks_refused(node, "Resource temporarily unavailable")?;
            Some(Hit {
                node: Some(node.key.clone()),
                summary: format!(
                    "the kernel refuses its fork at the process limit of its user ({count} time(s) since its start: no background save, AOF rewrite or full sync can start; every thread of the server counts against RLIMIT_NPROC or the cgroup's pids.max)"
                ),
                evidence: vec![failed],
            })
        })
        .collect()
}
