//! What clients see (CS370–CS372): the cluster bus can be healthy while a primary refuses
//! writes because of its own configuration. Each rule names the refusal clients get, the
//! parameter behind it and its numbers, from `INFO` (memory, persistence, replication) and
//! `INFO errorstats`, which counts every refusal the server sent since it started.
//!
//! Written from the servers' source (Redis 7.0 `server.c` `processCommand`):
//! - `-OOM command not allowed when used memory > 'maxmemory'`: `maxmemory` set, the policy
//!   `noeviction` (or nothing left to evict), and a command that may grow memory;
//! - `-MISCONF … Redis is configured to save RDB snapshots, but it's currently unable to
//!   persist to disk`: `stop-writes-on-bgsave-error yes` and the last background save failed;
//! - `-NOREPLICAS Not enough good replicas to write.`: `min-replicas-to-write N` and fewer
//!   than N replicas acknowledged within `min-replicas-max-lag`.

use crate::diagnose::EvidenceKind::Live;
use crate::diagnose::Severity::Error;
use crate::diagnose::{Hit, Inputs, NodeEvidence, Rule, live};
use crate::snapshot::NodeView;

pub static WRITES_REFUSED_OOM: Rule = Rule {
    id: "CS370",
    name: "writes-refused-oom",
    severity: Error,
    detects: "A primary at or above its `maxmemory` with `maxmemory-policy noeviction`: every write that may grow memory is refused with `OOM command not allowed when used memory > 'maxmemory'`. Read from `INFO memory` (used_memory, maxmemory, maxmemory_policy) and `INFO errorstats` (errorstat_OOM: the refusals so far).",
    why: "The cluster looks healthy on the bus, cluster_state is ok, and yet the shard takes no writes: clients see OOM errors for every key in its slots.",
    fix: "Give the node memory for its dataset (raise `maxmemory`, within the machine's RAM), delete or expire keys, spread the data over more shards (`clustersmith apply` with more primaries), or, for a cache, pick an eviction policy (`maxmemory-policy allkeys-lru`).",
    false_positives: "None at the limit itself; a node that refused writes earlier and has since been given room shows only past refusals in errorstats, which is said as such.",
    evidence: &[Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: writes_refused_oom,
};

pub static WRITES_REFUSED_MISCONF: Rule = Rule {
    id: "CS371",
    name: "writes-refused-misconf",
    severity: Error,
    detects: "A primary whose last background save failed (`rdb_last_bgsave_status:err` in `INFO persistence`) while it refuses writes with `MISCONF` (`stop-writes-on-bgsave-error yes`, the default): `INFO errorstats` counts the refusals.",
    why: "Every write to the shard fails until a save succeeds again; the cluster bus and cluster_state say nothing about it.",
    fix: "Make the save succeed: the server log says why it failed (disk full, the `dir` unwritable, fork refused for memory); `BGSAVE` once fixed lifts the refusal. `stop-writes-on-bgsave-error no` accepts writes that may not be persisted.",
    false_positives: "A save that failed and was followed by refusals, then fixed without a successful save yet: the refusal still holds, so this is still true.",
    evidence: &[Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: writes_refused_misconf,
};

pub static WRITES_REFUSED_NOREPLICAS: Rule = Rule {
    id: "CS372",
    name: "writes-refused-noreplicas",
    severity: Error,
    detects: "A primary with `min-replicas-to-write` set (`INFO replication` shows `min_slaves_good_slaves`) that has fewer good replicas than it needs, and has refused writes with `NOREPLICAS` (`INFO errorstats`).",
    why: "The shard takes no writes while its replicas are down or lagging beyond `min-replicas-max-lag`: the replica being down is the cause an operator sees first, the refused writes are what clients see.",
    fix: "Bring the shard's replicas back (see their own findings), or lower `min-replicas-to-write` for the time being.",
    false_positives: "Refusals counted while replicas were away that have since come back: the count stays, the good replicas are enough again, and the rule does not fire then.",
    evidence: &[Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: writes_refused_noreplicas,
};

/// `errorstat_CODE:count=N` as N.
fn refusals(view: &NodeView, code: &str) -> u64 {
    view.info
        .get(&format!("errorstat_{code}"))
        .and_then(|v| v.strip_prefix("count="))
        .and_then(|n| n.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

fn number(view: &NodeView, field: &str) -> Option<u64> {
    view.info.get(field)?.parse().ok()
}

/// Live primaries (by their own view).
fn primaries(inputs: &Inputs) -> impl Iterator<Item = (&NodeEvidence, &NodeView)> {
    inputs
        .nodes
        .iter()
        .filter_map(|n| Some((n, n.live.as_ref()?)))
        .filter(|(_, v)| !v.myself().is_replica())
}

pub fn writes_refused_oom(inputs: &Inputs) -> Vec<Hit> {
    primaries(inputs)
        .filter_map(|(node, view)| {
            let max = number(view, "maxmemory").filter(|m| *m > 0)?;
            let used = number(view, "used_memory")?;
            let policy = view.info.get("maxmemory_policy").unwrap_or("");
            let refused = refusals(view, "OOM");
            let at_limit = used >= max && policy == "noeviction";
            if !at_limit && refused == 0 {
                return None;
            }
            let now = if at_limit {
                format!("used_memory {used} ≥ maxmemory {max} with maxmemory-policy noeviction: writes are refused now")
            } else {
                format!("used_memory {used} of maxmemory {max} (policy {policy}): below the limit now, writes were refused earlier")
            };
            Some(Hit {
                node: Some(node.key.clone()),
                summary: format!("writes refused with OOM ({refused} so far): {now}"),
                evidence: vec![
                    live(
                        node,
                        "INFO memory",
                        format!("used_memory:{used} maxmemory:{max} maxmemory_policy:{policy}"),
                    ),
                    live(node, "INFO errorstats", format!("errorstat_OOM:count={refused}")),
                ],
            })
        })
        .collect()
}

pub fn writes_refused_misconf(inputs: &Inputs) -> Vec<Hit> {
    primaries(inputs)
        .filter_map(|(node, view)| {
            let failed = view.info.get("rdb_last_bgsave_status") == Some("err");
            let refused = refusals(view, "MISCONF");
            if !failed || refused == 0 {
                return None;
            }
            Some(Hit {
                node: Some(node.key.clone()),
                summary: format!(
                    "writes refused with MISCONF ({refused} so far): the last background save failed and stop-writes-on-bgsave-error holds writes until one succeeds"
                ),
                evidence: vec![
                    live(node, "INFO persistence", "rdb_last_bgsave_status:err"),
                    live(
                        node,
                        "INFO errorstats",
                        format!("errorstat_MISCONF:count={refused}"),
                    ),
                ],
            })
        })
        .collect()
}

pub fn writes_refused_noreplicas(inputs: &Inputs) -> Vec<Hit> {
    primaries(inputs)
        .filter_map(|(node, view)| {
            let good = number(view, "min_slaves_good_slaves")?;
            let connected = number(view, "connected_slaves").unwrap_or(0);
            let refused = refusals(view, "NOREPLICAS");
            // Fewer good replicas than connected ones, or none: what the server counts
            // against min-replicas-to-write (its value is not in INFO).
            if refused == 0 || (good > 0 && good >= connected) {
                return None;
            }
            Some(Hit {
                node: Some(node.key.clone()),
                summary: format!(
                    "writes refused with NOREPLICAS ({refused} so far): {good} good replica(s) of {connected} connected, fewer than min-replicas-to-write asks"
                ),
                evidence: vec![
                    live(
                        node,
                        "INFO replication",
                        format!("min_slaves_good_slaves:{good} connected_slaves:{connected}"),
                    ),
                    live(
                        node,
                        "INFO errorstats",
                        format!("errorstat_NOREPLICAS:count={refused}"),
                    ),
                ],
            })
        })
        .collect()
}
