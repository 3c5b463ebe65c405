//! The checks behind the rules: each reads [`Inputs`] and returns its hits with evidence.
//! Server wording differs between Redis and Valkey (`MASTER` / `PRIMARY`), so log matchers
//! accept both.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{Evidence, Hit, Inputs, NodeEvidence, Source, live};
use crate::model::{NodeId, SLOT_COUNT};
use crate::observation::NodeView;
use crate::parse::NodeEntry;

/// At most this many evidence lines of one kind per finding; the rest are counted.
const EVIDENCE_CAP: usize = 6;

fn capped(mut evidence: Vec<Evidence>, what: &str) -> Vec<Evidence> {
    if evidence.len() > EVIDENCE_CAP {
        let more = evidence.len() - EVIDENCE_CAP;
        let source = evidence[0].source.clone();
        evidence.truncate(EVIDENCE_CAP);
        evidence.push(Evidence {
            source,
            text: format!("… and {more} more {what}"),
        });
    }
    evidence
}

/// One `CLUSTER NODES` entry, as the server prints it (slots summarised).
fn entry_text(entry: &NodeEntry) -> String {
    let flags: Vec<&str> = entry.flags.iter().map(|f| f.as_str()).collect();
    let primary = entry.primary_id.as_ref().map_or("-", NodeId::as_str);
    format!(
        "{} {} {} {} epoch {} slots {}",
        entry.id,
        entry.addr,
        flags.join(","),
        primary,
        entry.config_epoch,
        entry.slots
    )
}

fn host_part(addr: &str) -> &str {
    match addr.rsplit_once(':') {
        Some((host, _)) => host.trim_start_matches('[').trim_end_matches(']'),
        None => addr,
    }
}

// ---- post-deploy logs -------------------------------------------------------------------

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

// ---- replication --------------------------------------------------------------------------

/// Replication lines that show the primary refusing the replica's login.
const REPLICATION_NOAUTH: &[&str] = &[
    "MASTER aborted replication with an error: NOAUTH",
    "PRIMARY aborted replication with an error: NOAUTH",
    "Unexpected reply to PSYNC from master: -NOAUTH",
    "Unexpected reply to PSYNC from primary: -NOAUTH",
];

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
                node: Some(node.label.clone()),
                summary: "replication is refused with NOAUTH: the replica has no masterauth (primaryauth on Valkey) for its primary's requirepass".to_owned(),
                evidence,
            });
        }
    }
    hits
}

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
            node: Some(node.label.clone()),
            summary: "as a replica this node speaks plaintext to its primary's TLS port (tls-replication is off)".to_owned(),
            evidence,
        });
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

pub fn replication_commands_renamed(inputs: &Inputs) -> Vec<Hit> {
    renamed_sync_commands(inputs)
        .into_iter()
        .filter(|(_, _, count)| *count == 2)
        .map(|(node, evidence, _)| Hit {
            node: Some(node.label.clone()),
            summary: "PSYNC and SYNC are both renamed away: no replica of this node can sync"
                .to_owned(),
            evidence,
        })
        .collect()
}

pub fn one_sync_command_renamed(inputs: &Inputs) -> Vec<Hit> {
    renamed_sync_commands(inputs)
        .into_iter()
        .filter(|(_, _, count)| *count == 1)
        .map(|(node, evidence, _)| Hit {
            node: Some(node.label.clone()),
            summary: format!(
                "{}: replication still works through the other command",
                evidence[0].text
            ),
            evidence,
        })
        .collect()
}

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
                node: Some(node.label.clone()),
                summary: "the replica's link to its primary is down".to_owned(),
                evidence,
            }
        })
        .collect()
}

pub fn plaintext_on_tls_port(inputs: &Inputs) -> Vec<Hit> {
    inputs
        .nodes
        .iter()
        .filter_map(|node| {
            let log = node.log.as_ref()?;
            let lines: Vec<Evidence> = log.lines_with(&["wrong version number"]);
            (!lines.is_empty()).then(|| Hit {
                node: Some(node.label.clone()),
                summary: "plaintext connections reached this node's TLS port".to_owned(),
                evidence: capped(lines, "TLS errors"),
            })
        })
        .collect()
}

// ---- membership and slots ------------------------------------------------------------------

pub fn knows_only_itself(inputs: &Inputs) -> Vec<Hit> {
    if inputs.expected_size() < 2 {
        return Vec::new();
    }
    let mut hits = Vec::new();
    for node in &inputs.nodes {
        let mut evidence = Vec::new();
        if let Some(view) = &node.live
            && view.nodes.entries().len() == 1
        {
            evidence.push(live(node, "CLUSTER NODES", entry_text(view.myself())));
            evidence.push(live(
                node,
                "CLUSTER INFO",
                format!("cluster_known_nodes:{}", view.cluster_info.known_nodes),
            ));
        } else if node.live.is_none()
            && let Some(conf) = &node.nodes_conf
            && conf.value.entries().len() == 1
        {
            let me = &conf.value.entries()[0];
            evidence.push(conf.at(1, format!("the only node line: {}", entry_text(me))));
        }
        if !evidence.is_empty() {
            hits.push(Hit {
                node: Some(node.label.clone()),
                summary: format!(
                    "knows only itself in a cluster of {}: it was never introduced (CLUSTER MEET)",
                    inputs.expected_size()
                ),
                evidence,
            });
        }
    }
    hits
}

pub fn slots_not_covered(inputs: &Inputs) -> Vec<Hit> {
    inputs
        .live()
        .filter(|(_, view)| view.cluster_info.slots_assigned < SLOT_COUNT as u32)
        .map(|(node, view)| {
            let mut evidence = vec![live(
                node,
                "CLUSTER INFO",
                format!(
                    "cluster_slots_assigned:{} cluster_state:{}",
                    view.cluster_info.slots_assigned,
                    if view.cluster_info.is_ok() {
                        "ok"
                    } else {
                        "fail"
                    }
                ),
            )];
            let full = node
                .redis_conf
                .as_ref()
                .and_then(|c| c.value.get("cluster-require-full-coverage").map(|d| (c, d)));
            match full {
                Some((conf, d)) => evidence.push(conf.at(
                    d.line,
                    format!("cluster-require-full-coverage {}", d.args.join(" ")),
                )),
                None => evidence.push(Evidence {
                    source: Source::Live {
                        node: node.label.clone(),
                        reply: "default",
                    },
                    text:
                        "cluster-require-full-coverage defaults to yes: every slot must be served"
                            .to_owned(),
                }),
            }
            Hit {
                node: Some(node.label.clone()),
                summary: format!(
                    "sees {} of {SLOT_COUNT} slots assigned; queries to the others fail",
                    view.cluster_info.slots_assigned
                ),
                evidence,
            }
        })
        .collect()
}

pub fn bus_handshake_stuck(inputs: &Inputs) -> Vec<Hit> {
    // A departed member's link is down because nothing answers as it any more (CS320).
    let departed = super::departed::departed_ids(inputs);
    let mut hits = Vec::new();
    for (node, view) in inputs.live() {
        let stuck: Vec<Evidence> = view
            .nodes
            .entries()
            .iter()
            .filter(|e| {
                !e.is_myself()
                    && !departed.contains(&e.id)
                    && (e.is_handshake() || e.link_state == crate::model::LinkState::Disconnected)
            })
            .map(|e| live(node, "CLUSTER NODES", entry_text(e)))
            .collect();
        if stuck.is_empty() {
            continue;
        }
        let mut evidence = capped(stuck, "peers");
        if let Some(log) = &node.log {
            let lines: Vec<Evidence> = log.lines_with(&["Error accepting cluster node connection"]);
            evidence.extend(capped(lines, "bus errors"));
        }
        hits.push(Hit {
            node: Some(node.label.clone()),
            summary: "peers stay in handshake or disconnected: the cluster bus between them does not connect".to_owned(),
            evidence,
        });
    }
    hits
}

pub fn tls_cluster_mismatch(inputs: &Inputs) -> Vec<Hit> {
    let settings: Vec<(&NodeEvidence, bool, Evidence)> = inputs
        .nodes
        .iter()
        .filter_map(|node| {
            let conf = node.redis_conf.as_ref()?;
            let on = conf.value.flag("tls-cluster") == Some(true);
            let evidence = match conf.value.get("tls-cluster") {
                Some(d) => conf.at(d.line, format!("tls-cluster {}", d.args.join(" "))),
                None => conf.whole("tls-cluster not set (no)"),
            };
            Some((node, on, evidence))
        })
        .collect();
    let on = settings.iter().filter(|s| s.1).count();
    if on == 0 || on == settings.len() {
        return Vec::new();
    }
    vec![Hit {
        node: None,
        summary: format!(
            "tls-cluster is on for {on} of {} nodes: TLS and plaintext bus peers cannot talk",
            settings.len()
        ),
        evidence: settings.into_iter().map(|s| s.2).collect(),
    }]
}

pub fn bus_cert_without_client_auth(inputs: &Inputs) -> Vec<Hit> {
    inputs
        .nodes
        .iter()
        .filter_map(|node| {
            let conf = node.redis_conf.as_ref()?;
            if conf.value.flag("tls-cluster") != Some(true)
                && conf.value.flag("tls-replication") != Some(true)
            {
                return None;
            }
            // The node presents its client certificate if it has one, else its server one.
            let client = node
                .certs
                .iter()
                .find(|c| c.directive == "tls-client-cert-file")
                .or_else(|| node.certs.iter().find(|c| c.directive == "tls-cert-file"))?;
            (!client.client_auth).then(|| Hit {
                node: Some(node.label.clone()),
                summary: "the certificate this node presents to its peers lacks clientAuth: peers reject it on the cluster bus and replication links".to_owned(),
                evidence: vec![conf.at(
                    client.line,
                    format!(
                        "{} {} has extended key usage without clientAuth",
                        client.directive, client.path
                    ),
                )],
            })
        })
        .collect()
}

pub fn config_epoch_collision(inputs: &Inputs) -> Vec<Hit> {
    let mut by_epoch: BTreeMap<u64, Vec<(&NodeEvidence, &NodeView)>> = BTreeMap::new();
    for (node, view) in inputs.live() {
        let me = view.myself();
        if !me.is_replica() && me.config_epoch > 0 {
            by_epoch
                .entry(me.config_epoch)
                .or_default()
                .push((node, view));
        }
    }
    by_epoch
        .into_iter()
        .filter(|(_, holders)| holders.len() > 1)
        .map(|(epoch, holders)| Hit {
            node: None,
            summary: format!(
                "{} primaries share config epoch {epoch}: slot ownership conflicts cannot be settled until the servers resolve the collision",
                holders.len()
            ),
            evidence: holders
                .iter()
                .map(|(node, view)| live(node, "CLUSTER NODES", entry_text(view.myself())))
                .collect(),
        })
        .collect()
}

pub fn open_slots(inputs: &Inputs) -> Vec<Hit> {
    inputs
        .live()
        .filter(|(_, view)| !view.myself().open_slots.is_empty())
        .map(|(node, view)| {
            let slots: Vec<String> = view
                .myself()
                .open_slots
                .iter()
                .map(|o| format!("{} {:?} {}", o.slot, o.kind, o.peer))
                .collect();
            Hit {
                node: Some(node.label.clone()),
                summary: format!("{} slot(s) stuck migrating or importing", slots.len()),
                evidence: vec![live(node, "CLUSTER NODES", slots.join(", "))],
            }
        })
        .collect()
}

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
                .map(|r| r.iter().map(|(n, _)| n.label.as_str()).collect())
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

pub fn replica_shares_host_or_zone(inputs: &Inputs) -> Vec<Hit> {
    let ips: Vec<IpAddr> = inputs.nodes.iter().filter_map(|n| n.ip).collect();
    let one_host = ips.windows(2).all(|w| w[0] == w[1]);
    let zoned = inputs.nodes.iter().any(|n| n.zone.is_some());
    if one_host && !zoned {
        // A single-host cluster (a sandbox): there is nowhere else to put a replica.
        return Vec::new();
    }
    let by_id: BTreeMap<&NodeId, &NodeEvidence> = inputs.live().map(|(n, v)| (&v.id, n)).collect();
    let mut hits = Vec::new();
    for (node, view) in inputs.live() {
        let Some(primary) = view
            .myself()
            .primary_id
            .as_ref()
            .and_then(|id| by_id.get(id))
        else {
            continue;
        };
        let shared = if zoned {
            node.zone.is_some() && node.zone == primary.zone
        } else {
            node.ip.is_some() && node.ip == primary.ip
        };
        if shared {
            let domain = if zoned {
                format!("zone {}", node.zone.as_deref().unwrap_or(""))
            } else {
                format!(
                    "host {}",
                    node.ip.map(|i| i.to_string()).unwrap_or_default()
                )
            };
            hits.push(Hit {
                node: Some(node.label.clone()),
                summary: format!(
                    "replicates `{}` from the same {domain}: one failure takes both",
                    primary.label
                ),
                evidence: vec![live(node, "CLUSTER NODES", entry_text(view.myself()))],
            });
        }
    }
    hits
}

pub fn stale_node_address(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (subject, view) in inputs.live() {
        let Some(ip) = subject.ip else { continue };
        let mut evidence = Vec::new();
        for (viewer, other) in inputs.live() {
            if std::ptr::eq(viewer, subject) {
                continue;
            }
            if let Some(entry) = other.knows(&view.id)
                && entry.addr.ip.is_some_and(|seen| seen != ip)
            {
                evidence.push(live(
                    viewer,
                    "CLUSTER NODES",
                    format!("lists it at {} ({})", entry.addr, entry_text(entry)),
                ));
            }
        }
        if let Some(conf) = &subject.nodes_conf
            && let Some(me) = conf.value.myself()
            && me.addr.ip.is_some_and(|old| old != ip)
        {
            evidence.push(conf.at(1, format!("its own line still says {}", me.addr)));
        }
        if evidence.is_empty() {
            continue;
        }
        hits.push(Hit {
            node: Some(subject.label.clone()),
            summary: format!("reached at {ip}, but known under another address: it changed IP and the cluster still holds the old one"),
            evidence: capped(evidence, "views"),
        });
    }
    hits
}

pub fn foreign_cluster_member(inputs: &Inputs) -> Vec<Hit> {
    if inputs.expected.is_none() || inputs.nodes.iter().any(|n| n.live.is_none()) {
        // Without the full expected set, an unknown id may be a member that was not given.
        return Vec::new();
    }
    let ours: Vec<&NodeId> = inputs.live().map(|(_, v)| &v.id).collect();
    // An old id of an expected address is a departed member (CS320), not a stranger.
    let departed = super::departed::departed_ids(inputs);
    inputs
        .live()
        .filter_map(|(node, view)| {
            let foreign: Vec<Evidence> = view
                .nodes
                .entries()
                .iter()
                .filter(|e| !e.is_handshake() && !ours.contains(&&e.id) && !departed.contains(&e.id))
                .map(|e| live(node, "CLUSTER NODES", entry_text(e)))
                .collect();
            (!foreign.is_empty()).then(|| Hit {
                node: Some(node.label.clone()),
                summary: format!(
                    "knows {} node(s) outside the expected set: it belongs to (or was met by) another cluster",
                    foreign.len()
                ),
                evidence: capped(foreign, "nodes"),
            })
        })
        .collect()
}

// ---- server logs and configuration ------------------------------------------------------------

pub fn ipv6_bind_warning(inputs: &Inputs) -> Vec<Hit> {
    inputs
        .nodes
        .iter()
        .filter_map(|node| {
            let log = node.log.as_ref()?;
            let lines: Vec<Evidence> = log
                .value
                .lines
                .iter()
                .filter(|l| {
                    l.message
                        .contains("Could not create server TCP listening socket ::")
                        && l.message.contains("errno: 97")
                })
                .map(|l| log.at(l.line, l.message.clone()))
                .collect();
            (!lines.is_empty()).then(|| Hit {
                node: Some(node.label.clone()),
                summary:
                    "harmless: the host has no IPv6, so the optional IPv6 listener was skipped"
                        .to_owned(),
                evidence: lines,
            })
        })
        .collect()
}

/// Directives newer than some supported servers: (name, Redis version that added it, whether
/// Valkey 8 knows it).
const NEWER_DIRECTIVES: &[(&str, (u32, u32), bool)] = &[
    ("cluster-port", (7, 0), true),
    ("cluster-announce-hostname", (7, 0), true),
    ("cluster-preferred-endpoint-type", (7, 0), true),
    ("cluster-allow-pubsubshard-when-down", (7, 0), true),
    ("cluster-link-sendbuf-limit", (7, 0), true),
    ("shutdown-timeout", (7, 0), true),
    ("enable-debug-command", (7, 0), true),
    ("enable-protected-configs", (7, 0), true),
    ("enable-module-command", (7, 0), true),
    ("latency-tracking", (7, 0), true),
    ("cluster-announce-human-nodename", (7, 2), true),
    ("primaryauth", (u32::MAX, 0), true),
    ("primaryuser", (u32::MAX, 0), true),
    ("availability-zone", (u32::MAX, 0), true),
];

pub fn directive_unknown_to_version(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for node in &inputs.nodes {
        let Some(conf) = &node.redis_conf else {
            continue;
        };
        // The running version: live, else the log's last start banner.
        let version = node
            .live
            .as_ref()
            .and_then(NodeView::version)
            .map(|v| {
                (
                    v.flavour == crate::model::ServerFlavour::Valkey,
                    (v.major, v.minor),
                    v.to_string(),
                )
            })
            .or_else(|| {
                let (name, text) = node.log.as_ref()?.value.version()?;
                let mut parts = text.split('.').map(|p| p.parse::<u32>().ok());
                let (major, minor) = (parts.next()??, parts.next()??);
                Some((
                    name.eq_ignore_ascii_case("valkey"),
                    (major, minor),
                    format!("{name} {text}"),
                ))
            });
        let Some((valkey, running, name)) = version else {
            continue;
        };
        let unknown: Vec<Evidence> = conf
            .value
            .directives
            .iter()
            .filter(|d| {
                NEWER_DIRECTIVES
                    .iter()
                    .any(|(directive, since, in_valkey)| {
                        d.name == *directive && if valkey { !in_valkey } else { running < *since }
                    })
            })
            .map(|d| conf.at(d.line, format!("{} {}", d.name, d.args.join(" "))))
            .collect();
        if !unknown.is_empty() {
            hits.push(Hit {
                node: Some(node.label.clone()),
                summary: format!(
                    "{} directive(s) unknown to the running {name}: the server refuses to start with this file",
                    unknown.len()
                ),
                evidence: unknown,
            });
        }
    }
    hits
}

/// The check of a rule whose only evidence is the server's own log: it finds nothing by
/// itself, the log catalog attaches the lines that prove the rule (see `log_catalog`).
pub fn server_log_only(_inputs: &Inputs) -> Vec<Hit> {
    Vec::new()
}
