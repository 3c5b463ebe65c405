//! Replication (CS2xx): what keeps a replica from syncing with its primary (TLS, credentials,
//! renamed commands), and a replica link that is down.

use super::common::capped;
use crate::diagnose::EvidenceKind::{Live, RedisConf, ServerLog};
use crate::diagnose::Severity::{Error, Warning};
use crate::diagnose::{Evidence, Hit, Inputs, NodeEvidence, Rule, live};

pub static REPLICATION_PLAINTEXT_TO_TLS_PORT: Rule = Rule {
    id: "CS201",
    name: "replication-plaintext-to-tls-port",
    severity: Error,
    detects: "A node whose primary would be reached on a TLS port (`port 0`, or `tls-cluster yes`) without `tls-replication yes`.",
    why: "Replicas connect to the port their primary announces. Without tls-replication they speak plaintext to it: the primary logs `SSL routines::wrong version number` and the link never comes up.",
    fix: "Set `tls-replication yes` on every node (with tls-cert-file / tls-key-file usable as a client certificate), and restart or `CONFIG SET tls-replication yes`.",
    false_positives: "A node that will never be a replica; but any primary can become one after a failover.",
    evidence: &[RedisConf, ServerLog, Live],
    explains: &[&REPLICA_LINK_DOWN, &PLAINTEXT_ON_TLS_PORT],
    reach: crate::diagnose::Reach::OwnNode,
    check: replication_tls_mismatch,
};

/// Replication goes to the primary's announced port; with `port 0` (TLS only) or
/// `tls-cluster yes` that is the TLS port, which a replica without `tls-replication yes`
/// reaches in plaintext.
pub fn replication_tls_mismatch(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    let wrong_version: Vec<Evidence> = inputs
        .nodes
        .iter()
        .filter_map(|n| n.log.as_ref())
        .flat_map(|log| log.lines_with(&["wrong version number"]))
        .collect();
    for node in &inputs.nodes {
        let Some(conf) = &node.redis_conf else {
            continue;
        };
        let c = &conf.value;
        let tls_port = c.port("tls-port").filter(|p| *p > 0);
        let tls_only = c.port("port") == Some(0);
        let tls_cluster = c.flag("tls-cluster") == Some(true);
        if tls_port.is_none()
            || !(tls_only || tls_cluster)
            || c.flag("tls-replication") == Some(true)
        {
            continue;
        }
        let mut evidence = Vec::new();
        if let Some(d) = c.get("tls-port") {
            evidence.push(conf.at(d.line, format!("tls-port {}", d.args.join(" "))));
        }
        if let Some(d) = c.get("port").filter(|_| tls_only) {
            evidence.push(conf.at(d.line, "port 0: the node has no plaintext port"));
        }
        if let Some(d) = c.get("tls-cluster").filter(|_| tls_cluster) {
            evidence.push(conf.at(d.line, "tls-cluster yes: peers announce their TLS port"));
        }
        evidence.push(match c.get("tls-replication") {
            Some(d) => conf.at(d.line, format!("tls-replication {}", d.args.join(" "))),
            None => conf.whole("no tls-replication yes: as a replica it connects to its primary's TLS port in plaintext"),
        });
        evidence.extend(capped(wrong_version.clone(), "TLS errors"));
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary: "as a replica this node speaks plaintext to its primary's TLS port (tls-replication is off)".to_owned(),
            evidence,
        });
    }
    hits
}

/// Replication lines that show the primary refusing the replica's login.
const REPLICATION_NOAUTH: &[&str] = &[
    "MASTER aborted replication with an error: NOAUTH",
    "PRIMARY aborted replication with an error: NOAUTH",
    "Unexpected reply to PSYNC from master: -NOAUTH",
    "Unexpected reply to PSYNC from primary: -NOAUTH",
];

pub static REPLICATION_AUTH_MISSING: Rule = Rule {
    id: "CS202",
    name: "replication-auth-missing",
    severity: Error,
    detects: "`requirepass` without `masterauth` (Valkey: `primaryauth`) in redis.conf, or replication refused with NOAUTH in the replica's log.",
    why: "A replica logs in to its primary with masterauth. Without it PSYNC and the SYNC fallback get `-NOAUTH Authentication required` and the replica never syncs.",
    fix: "Set `masterauth` (and `masteruser` with ACL users; `primaryauth`/`primaryuser` on Valkey) to the primary's password on every node.",
    false_positives: "A node that is never a replica; any primary can become one after a failover.",
    evidence: &[RedisConf, ServerLog, Live],
    explains: &[&REPLICA_LINK_DOWN],
    reach: crate::diagnose::Reach::OwnNode,
    check: replication_auth_missing,
};

pub fn replication_auth_missing(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for node in &inputs.nodes {
        let mut evidence = Vec::new();
        if let Some(conf) = &node.redis_conf
            && let Some(requirepass) = conf.value.requires_password()
            && conf.value.replication_auth().is_none()
        {
            evidence.push(conf.at(
                requirepass.line,
                "requirepass is set (clients and replicas must authenticate)",
            ));
            evidence.push(conf.whole("no masterauth / primaryauth: this node cannot log in to its primary when it is a replica"));
        }
        if let Some(log) = &node.log {
            let lines: Vec<Evidence> = log.lines_with(REPLICATION_NOAUTH);
            evidence.extend(capped(lines, "NOAUTH lines"));
        }
        if !evidence.is_empty() {
            hits.push(Hit {
                node: Some(node.key.clone()),
                summary: "replication is refused with NOAUTH: the replica has no masterauth (primaryauth on Valkey) for its primary's requirepass".to_owned(),
                evidence,
            });
        }
    }
    hits
}

/// The `rename-command` lines for PSYNC and SYNC of each node that has any.
fn renamed_sync_commands(inputs: &Inputs) -> Vec<(&NodeEvidence, Vec<Evidence>, usize)> {
    inputs
        .nodes
        .iter()
        .filter_map(|node| {
            let conf = node.redis_conf.as_ref()?;
            let lines: Vec<Evidence> = ["PSYNC", "SYNC"]
                .iter()
                .filter_map(|command| conf.value.renamed(command))
                .map(|d| conf.at(d.line, format!("rename-command {}", d.args.join(" "))))
                .collect();
            let count = lines.len();
            (count > 0).then_some((node, lines, count))
        })
        .collect()
}

pub static REPLICATION_COMMANDS_RENAMED: Rule = Rule {
    id: "CS203",
    name: "replication-commands-renamed",
    severity: Error,
    detects: "`rename-command` for both PSYNC and SYNC in redis.conf.",
    why: "A replica asks its primary for PSYNC and, when that fails, for SYNC, by their real names. With both renamed away no replica of this node can ever sync.",
    fix: "Remove at least the rename-command for PSYNC (better both) and restart.",
    false_positives: "A node that is never a primary; any replica can become one after a failover.",
    evidence: &[RedisConf],
    explains: &[&REPLICA_LINK_DOWN],
    reach: crate::diagnose::Reach::OwnNode,
    check: replication_commands_renamed,
};

pub fn replication_commands_renamed(inputs: &Inputs) -> Vec<Hit> {
    renamed_sync_commands(inputs)
        .into_iter()
        .filter(|(_, _, count)| *count == 2)
        .map(|(node, evidence, _)| Hit {
            node: Some(node.key.clone()),
            summary: "PSYNC and SYNC are both renamed away: no replica of this node can sync"
                .to_owned(),
            evidence,
        })
        .collect()
}

pub static SYNC_OR_PSYNC_RENAMED: Rule = Rule {
    id: "CS206",
    name: "sync-or-psync-renamed",
    severity: Warning,
    detects: "`rename-command` for exactly one of PSYNC and SYNC in redis.conf.",
    why: "Replicas try PSYNC and fall back to SYNC (`Retrying with SYNC...`), so one renamed command does not stop replication (tested: a cluster with PSYNC renamed forms and replicates). Without PSYNC every resync is a full copy; without SYNC the fallback is gone. A `Connection reset` while the replica waits for the PING reply is not evidence of either (it fits a TLS/plaintext mismatch or a dropped link).",
    fix: "Remove the rename-command unless the degraded replication is intended.",
    false_positives: "A deliberate hardening choice.",
    evidence: &[RedisConf],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: one_sync_command_renamed,
};

pub fn one_sync_command_renamed(inputs: &Inputs) -> Vec<Hit> {
    renamed_sync_commands(inputs)
        .into_iter()
        .filter(|(_, _, count)| *count == 1)
        .map(|(node, evidence, _)| Hit {
            node: Some(node.key.clone()),
            summary: format!(
                "{}: replication still works through the other command",
                evidence[0].text
            ),
            evidence,
        })
        .collect()
}

pub static REPLICA_LINK_DOWN: Rule = Rule {
    id: "CS204",
    name: "replica-link-down",
    severity: Error,
    detects: "A replica reporting `master_link_status:down`.",
    why: "The replica holds no current copy of its primary's data; a failover to it loses writes.",
    fix: "Read the replica's log for the reason (auth, TLS, network); the causes above name it when the evidence is there.",
    false_positives: "A replica in its first sync, or just after a restart.",
    evidence: &[Live, ServerLog],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: replica_link_down,
};

pub fn replica_link_down(inputs: &Inputs) -> Vec<Hit> {
    inputs
        .live()
        .filter(|(_, view)| {
            view.info.role() == Some("slave") && view.info.primary_link_status() != Some("up")
        })
        .map(|(node, view)| {
            let field = |k: &str| view.info.get(k).unwrap_or("?").to_owned();
            let mut evidence = vec![live(
                node,
                "INFO replication",
                format!(
                    "master_link_status:{} master_host:{} master_port:{} master_link_down_since_seconds:{}",
                    field("master_link_status"),
                    field("master_host"),
                    field("master_port"),
                    field("master_link_down_since_seconds")
                ),
            )];
            if let Some(log) = &node.log {
                let lines: Vec<Evidence> = log.lines_with(&[
                        "Error reply to PING from master",
                        "Error reply to PING from primary",
                        "Error condition on socket for SYNC",
                        "aborted replication",
                    ]);
                evidence.extend(capped(lines, "replication errors"));
            }
            Hit {
                node: Some(node.key.clone()),
                summary: "the replica's link to its primary is down".to_owned(),
                evidence,
            }
        })
        .collect()
}

pub static PLAINTEXT_ON_TLS_PORT: Rule = Rule {
    id: "CS205",
    name: "plaintext-on-tls-port",
    severity: Warning,
    detects: "`Error accepting a client connection: … wrong version number` in a server log.",
    why: "Something spoke plaintext to the TLS port: a replica without tls-replication, a script or probe without --tls. Redis 6.2 does not log the peer, so this names no culprit alone.",
    fix: "Find the plaintext client: a replica's redis.conf without `tls-replication yes`, or a health check without TLS.",
    false_positives: "Port scanners and load balancer probes.",
    evidence: &[ServerLog],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: plaintext_on_tls_port,
};

pub fn plaintext_on_tls_port(inputs: &Inputs) -> Vec<Hit> {
    inputs
        .nodes
        .iter()
        .filter_map(|node| {
            let log = node.log.as_ref()?;
            let lines: Vec<Evidence> = log.lines_with(&["wrong version number"]);
            (!lines.is_empty()).then(|| Hit {
                node: Some(node.key.clone()),
                summary: "plaintext connections reached this node's TLS port".to_owned(),
                evidence: capped(lines, "TLS errors"),
            })
        })
        .collect()
}
