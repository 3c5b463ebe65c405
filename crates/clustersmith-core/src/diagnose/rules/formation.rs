//! Formation (CS1xx): what a formation script's log shows (a MEET or REPLICATE the server
//! refused, success reported over errors) and the replica layout formation left.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::common::capped;
use crate::diagnose::EvidenceKind::{Live, PostDeployLog, Spec};
use crate::diagnose::Severity::Error;
use crate::diagnose::{Hit, Inputs, NodeEvidence, Rule, live};
use crate::model::NodeId;
use crate::snapshot::NodeView;

fn host_part(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    }
}

pub static MEET_WITH_HOSTNAME: Rule = Rule {
    id: "CS101",
    name: "meet-with-hostname",
    severity: Error,
    detects: "`CLUSTER MEET` refused with `ERR Invalid node address specified: <name>:<port>` in a post-deploy log.",
    why: "CLUSTER MEET accepts IP literals only, in every Redis and Valkey version. Each refused MEET leaves a pair of nodes that never met; with no MEET at all every node knows only itself, and a script that only waits for `disconnected` links sees nothing wrong.",
    fix: "Resolve every name to an IP before CLUSTER MEET (clustersmith apply does, on every run), then re-run formation.",
    false_positives: "None known: the reply is only sent for an address the server cannot parse.",
    evidence: &[PostDeployLog],
    // A replica whose primary's MEET was refused cannot know it: its REPLICATE fails too, and
    // the script's success message over those errors is the same failure, reported late.
    explains: &[
        &super::membership::NODE_KNOWS_ONLY_ITSELF,
        &REPLICATE_BEFORE_MEET,
        &SUCCESS_CLAIMED_OVER_BROKEN_CLUSTER,
    ],
    reach: crate::diagnose::Reach::OwnNode,
    check: meet_with_hostname,
};

pub fn meet_with_hostname(inputs: &Inputs) -> Vec<Hit> {
    let mut evidence = Vec::new();
    let mut names = Vec::new();
    for file in &inputs.post_deploy {
        for line in &file.value.lines {
            if let Some(addr) = line.text.split("Invalid node address specified: ").nth(1) {
                let host = host_part(addr.trim());
                // A name, not a mistyped IP literal: letters, and no IPv6 colons.
                let is_name = host.parse::<IpAddr>().is_err()
                    && host.bytes().any(|b| b.is_ascii_alphabetic())
                    && !host.contains(':');
                if is_name {
                    evidence.push(file.at(line.line, line.text.clone()));
                    if !names.contains(&host.to_owned()) {
                        names.push(host.to_owned());
                    }
                }
            }
        }
    }
    if evidence.is_empty() {
        return Vec::new();
    }
    vec![Hit {
        node: None,
        summary: format!(
            "CLUSTER MEET was given {} host name(s) instead of IP addresses, so those nodes were never introduced",
            names.len()
        ),
        evidence: capped(evidence, "refused MEETs"),
    }]
}

pub static REPLICATE_BEFORE_MEET: Rule = Rule {
    id: "CS102",
    name: "replicate-before-meet",
    severity: Error,
    detects: "`CLUSTER REPLICATE` refused with `ERR Unknown node <id>` in a post-deploy log.",
    why: "A node can only replicate a primary it already knows. Sent before the MEET handshake (and gossip) reached the replica, REPLICATE fails and the node stays a primary without slots.",
    fix: "Send REPLICATE only once the replica lists its primary in CLUSTER NODES (clustersmith apply waits for that), and re-run formation.",
    false_positives: "A retried REPLICATE that later succeeded: check the live roles.",
    evidence: &[PostDeployLog],
    explains: &[
        &REPLICAS_ON_ONE_PRIMARY,
        &SUCCESS_CLAIMED_OVER_BROKEN_CLUSTER,
    ],
    reach: crate::diagnose::Reach::OwnNode,
    check: replicate_before_meet,
};

pub fn replicate_before_meet(inputs: &Inputs) -> Vec<Hit> {
    let mut evidence = Vec::new();
    for file in &inputs.post_deploy {
        for line in &file.value.lines {
            if line.text.contains("ERR Unknown node ") {
                evidence.push(file.at(line.line, line.text.clone()));
            }
        }
    }
    if evidence.is_empty() {
        return Vec::new();
    }
    vec![Hit {
        node: None,
        summary: "CLUSTER REPLICATE was sent to nodes that did not know their primary yet"
            .to_owned(),
        evidence: capped(evidence, "refused REPLICATEs"),
    }]
}

/// Success messages formation scripts print.
const SUCCESS_CLAIMS: &[&str] = &[
    "cluster settled",
    "cluster is ready",
    "cluster formed",
    "All 16384 slots covered",
];

pub static SUCCESS_CLAIMED_OVER_BROKEN_CLUSTER: Rule = Rule {
    id: "CS103",
    name: "success-claimed-over-broken-cluster",
    severity: Error,
    detects: "A post-deploy log that ends with a success message (`cluster settled`, …) while it printed error replies earlier, or while live nodes are not formed.",
    why: "The deployment is reported healthy while the cluster is not; the failure surfaces later, under load, as CLUSTERDOWN or missing replicas.",
    fix: "Make the formation step check the expected topology criterion by criterion before it reports success (`clustersmith verify` exits 1 otherwise).",
    false_positives: "Error replies the script retried successfully, when no live evidence was given.",
    evidence: &[PostDeployLog, Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: success_claimed_over_broken_cluster,
};

pub fn success_claimed_over_broken_cluster(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for file in &inputs.post_deploy {
        let Some(claim) =
            file.value.lines.iter().rev().find(|l| {
                l.timestamp.is_some() && SUCCESS_CLAIMS.iter().any(|c| l.text.contains(c))
            })
        else {
            continue;
        };
        let mut evidence = vec![file.at(claim.line, claim.text.clone())];
        let errors: Vec<_> = file
            .value
            .error_replies()
            .filter(|l| l.line < claim.line)
            .collect();
        let error_count = errors.len();
        if let Some(first) = errors.first() {
            evidence.push(file.at(
                first.line,
                format!(
                    "first of {error_count} error replies before it: {}",
                    first.text
                ),
            ));
        }
        let mut broken_live = 0;
        for (node, view) in inputs.live() {
            if !view.cluster_info.is_ok() || view.nodes.entries().len() < inputs.expected_size() {
                broken_live += 1;
                evidence.push(live(
                    node,
                    "CLUSTER INFO",
                    format!(
                        "cluster_state:{} cluster_known_nodes:{}",
                        if view.cluster_info.is_ok() {
                            "ok"
                        } else {
                            "fail"
                        },
                        view.cluster_info.known_nodes
                    ),
                ));
            }
        }
        if error_count > 0 || broken_live > 0 {
            hits.push(Hit {
                node: None,
                summary: format!(
                    "the post-deploy script reported success despite {error_count} error repl(ies) before it and {broken_live} live node(s) not formed"
                ),
                evidence,
            });
        }
    }
    hits
}

pub static REPLICAS_ON_ONE_PRIMARY: Rule = Rule {
    id: "CS104",
    name: "replicas-on-one-primary",
    severity: Error,
    detects: "Replicas piled on some primaries while others have none (or, with an expected topology, any primary without exactly its replicas).",
    why: "A primary without a replica loses its slots' data when it fails, and the cluster goes down for them.",
    fix: "Move replicas with CLUSTER REPLICATE <primary-id> on the replica (`clustersmith apply` with the expected topology does it).",
    false_positives: "A deliberate uneven layout without an expected topology given.",
    evidence: &[Live, Spec],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: replicas_on_one_primary,
};

pub fn replicas_on_one_primary(inputs: &Inputs) -> Vec<Hit> {
    // Each primary with slots, and the replicas that report it as their primary.
    let mut replicas: BTreeMap<&NodeId, Vec<(&NodeEvidence, &NodeView)>> = BTreeMap::new();
    let mut primaries: Vec<(&NodeEvidence, &NodeView)> = Vec::new();
    for (node, view) in inputs.live() {
        let me = view.myself();
        if me.is_replica() {
            if let Some(primary) = &me.primary_id {
                replicas.entry(primary).or_default().push((node, view));
            }
        } else if !me.slots.is_empty() {
            primaries.push((node, view));
        }
    }
    if primaries.len() < 2 {
        return Vec::new();
    }
    let counts: Vec<usize> = primaries
        .iter()
        .map(|(_, v)| replicas.get(&v.id).map_or(0, Vec::len))
        .collect();
    let wanted = inputs.expected.map(|e| e.replicas_per_primary);
    let (min, max) = (
        counts.iter().min().copied().unwrap_or(0),
        counts.iter().max().copied().unwrap_or(0),
    );
    let uneven = match wanted {
        Some(r) => counts.iter().any(|c| *c != r),
        None => min == 0 && max >= 2,
    };
    if !uneven {
        return Vec::new();
    }
    let evidence = primaries
        .iter()
        .zip(&counts)
        .map(|((node, view), count)| {
            let names: Vec<&str> = replicas
                .get(&view.id)
                .map(|r| r.iter().map(|(n, _)| n.key.label()).collect())
                .unwrap_or_default();
            live(
                node,
                "CLUSTER NODES",
                format!(
                    "primary with {count} replica(s){}{}",
                    if names.is_empty() { "" } else { ": " },
                    names.join(", ")
                ),
            )
        })
        .collect();
    vec![Hit {
        node: None,
        summary: match wanted {
            Some(r) => format!("replicas are not spread {r} per primary: counts {counts:?}"),
            None => format!(
                "replicas are piled on some primaries while others have none: counts {counts:?}"
            ),
        },
        evidence,
    }]
}
