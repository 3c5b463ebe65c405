//! Whether each shard can fail over without losing writes (CS360): a primary with no replica
//! fit to take its role over. A planned handoff or roll refuses with this rule.

use crate::diagnose::EvidenceKind::Live;
use crate::diagnose::Severity::Info;
use crate::diagnose::{Hit, Inputs, Rule, live};
use crate::health::{fittest, replicas_of};

/// The lag `clustersmith handoff` allows by default, in bytes.
pub const DEFAULT_MAX_LAG: u64 = 1 << 20;

pub static NO_FIT_REPLICA: Rule = Rule {
    id: "CS360",
    name: "no-fit-replica",
    severity: Info,
    detects: "A primary with slots whose replicas answer but none could take its role over now: each with its link down, flagged `fail?`/`fail` by a peer, or further behind the primary's replication stream than the allowed lag (1 MiB unless `--max-lag` says otherwise). `handoff` and `roll` also refuse with it when a primary has no replica at all.",
    why: "A planned handoff (a rolling restart, a drain) needs a replica that has every write; without one the shard can only be taken down, and its writes fail until the primary is back. An unplanned failure of that primary loses the shard, or the writes the replica lacks.",
    fix: "Bring a replica up to date first: start it, fix its link (see its own finding), or wait until it has caught up. `clustersmith roll --allow-downtime` takes such a shard anyway, saying which writes will fail.",
    false_positives: "A replica in its first full sync, which catches up on its own.",
    evidence: &[Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: no_fit_replica,
};

pub fn no_fit_replica(inputs: &Inputs) -> Vec<Hit> {
    let (given, snapshot) = inputs.live_snapshot();
    given
        .iter()
        .filter(|n| {
            n.live
                .as_ref()
                .is_some_and(|v| !v.myself().is_replica() && !v.myself().slots.is_empty())
        })
        .filter_map(|node| {
            let replicas = replicas_of(&snapshot, &node.key);
            // Replicas that do not answer, or none at all, are other rules' to name (a node
            // not running, replicas piled elsewhere): this one speaks of replicas that answer
            // and still could not take over.
            if replicas.is_empty() {
                return None;
            }
            let reason = fittest(&replicas, DEFAULT_MAX_LAG).err()?;
            Some(Hit {
                node: Some(node.key.clone()),
                summary: format!("cannot hand its role over now: {reason}"),
                evidence: vec![live(
                    node,
                    "INFO replication",
                    format!("{} replica(s) follow it", replicas.len()),
                )],
            })
        })
        .collect()
}
