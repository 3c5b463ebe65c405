//! Membership and slots (CS301-CS310): nodes never introduced, slots not covered, a cluster
//! bus that does not connect, config epochs, open slots, where replicas sit, stale addresses
//! and members of another cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use super::common::{capped, entry_text};
use crate::diagnose::EvidenceKind::{Certificate, Live, NodesConf, RedisConf, ServerLog, Spec};
use crate::diagnose::Severity::{Error, Warning};
use crate::diagnose::{Evidence, Hit, Inputs, NodeEvidence, Rule, Source, live};
use crate::model::{NodeId, SLOT_COUNT};
use crate::snapshot::NodeView;

pub static NODE_KNOWS_ONLY_ITSELF: Rule = Rule {
    id: "CS301",
    name: "node-knows-only-itself",
    severity: Error,
    detects: "A node of a multi-node cluster whose CLUSTER NODES (or nodes.conf) lists only itself.",
    why: "It was never introduced: it serves only its own slots (or none), and `redis-cli --cluster check` calls a lone primary with all slots healthy.",
    fix: "CLUSTER MEET it with every other node by IP (`clustersmith apply` with all nodes).",
    false_positives: "A node just started, before formation ran.",
    evidence: &[Live, NodesConf],
    explains: &[&SLOTS_NOT_COVERED],
    reach: crate::diagnose::Reach::OwnNode,
    check: knows_only_itself,
};

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
                node: Some(node.key.clone()),
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

pub static SLOTS_NOT_COVERED: Rule = Rule {
    id: "CS302",
    name: "slots-not-covered",
    severity: Error,
    detects: "A node that sees fewer than 16384 slots assigned.",
    why: "With cluster-require-full-coverage (the default) the whole cluster refuses queries (`cluster_state:fail`); without it the unassigned slots fail.",
    fix: "Assign the missing slots to a primary (`clustersmith apply` assigns balanced ranges), or complete the introductions if another node owns them.",
    false_positives: "None once formation is meant to be done.",
    evidence: &[Live, RedisConf],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: slots_not_covered,
};

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
                        node: node.key.to_string(),
                        reply: "default",
                    },
                    text:
                        "cluster-require-full-coverage defaults to yes: every slot must be served"
                            .to_owned(),
                }),
            }
            Hit {
                node: Some(node.key.clone()),
                summary: format!(
                    "sees {} of {SLOT_COUNT} slots assigned; queries to the others fail",
                    view.cluster_info.slots_assigned
                ),
                evidence,
            }
        })
        .collect()
}

pub static BUS_HANDSHAKE_STUCK: Rule = Rule {
    id: "CS303",
    name: "bus-handshake-stuck",
    severity: Error,
    detects: "Peers listed with the `handshake` flag or a `disconnected` link, and still so when the node is read again a second later (a handshake is matched by address: it takes a new id each time).",
    why: "The cluster bus (port + 10000, or cluster-port) between the nodes does not connect: a firewall, a wrong announced bus port, a MEET with the wrong bus port, or TLS failing on the bus.",
    fix: "Open the bus port between all nodes; with tls-cluster, give every node a certificate with clientAuth; MEET with the node's real bus port.",
    false_positives: "Formation or a restart still under way that takes longer than the second diagnose waits before reading again (a MEET given moments before), or a snapshot read from files, which is not read again.",
    evidence: &[Live, ServerLog],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: bus_handshake_stuck,
};

pub fn bus_handshake_stuck(inputs: &Inputs) -> Vec<Hit> {
    // A departed member's link is down because nothing answers as it any more (CS320).
    let departed = super::departed::departed_ids(inputs);
    let mut hits = Vec::new();
    for (node, view) in inputs.live() {
        let cleared: Vec<NodeId> = peers_cleared_on_relook(node).iter().map(|e| e.id).collect();
        let stuck: Vec<Evidence> = view
            .nodes
            .entries()
            .iter()
            .filter(|e| {
                !e.is_myself()
                    && !departed.contains(&e.id)
                    && e.bus_unconnected()
                    && !cleared.contains(&e.id)
            })
            .map(|e| live(node, "CLUSTER NODES", entry_text(e)))
            .collect();
        if stuck.is_empty() {
            continue;
        }
        let mut evidence = capped(stuck, "peers");
        if node.relook.is_some() {
            evidence.push(live(
                node,
                "CLUSTER NODES",
                "read again a second later: still so",
            ));
        }
        if let Some(log) = &node.log {
            let lines: Vec<Evidence> = log.lines_with(&["Error accepting cluster node connection"]);
            evidence.extend(capped(lines, "bus errors"));
        }
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary: "peers stay in handshake or disconnected: the cluster bus between them does not connect".to_owned(),
            evidence,
        });
    }
    hits
}

/// The peers a node listed in handshake or with its link down at its first read that its
/// second read ([`NodeEvidence::relook`]) lists talking over the bus: under the same id, or,
/// for a handshake (whose id is made up anew each time), at its address. A peer missing from
/// the second read is not cleared: a handshake that timed out is dropped.
pub fn peers_cleared_on_relook(node: &NodeEvidence) -> Vec<&crate::parse::NodeEntry> {
    let (Some(view), Some(relook)) = (&node.live, &node.relook) else {
        return Vec::new();
    };
    view.nodes
        .entries()
        .iter()
        .filter(|entry| !entry.is_myself() && entry.bus_unconnected())
        .filter(|entry| {
            relook.entries().iter().any(|later| {
                !later.bus_unconnected()
                    && (later.id == entry.id
                        || (entry.is_handshake()
                            && later.addr.ip == entry.addr.ip
                            && later.addr.port == entry.addr.port))
            })
        })
        .collect()
}

pub static TLS_CLUSTER_MISMATCH: Rule = Rule {
    id: "CS304",
    name: "tls-cluster-mismatch",
    severity: Error,
    detects: "`tls-cluster yes` on some nodes and not on others.",
    why: "A TLS bus endpoint and a plaintext one cannot talk: the nodes stay in handshake with each other.",
    fix: "Set the same tls-cluster on every node and restart them.",
    false_positives: "None known: mixed bus encryption never connects.",
    evidence: &[RedisConf],
    explains: &[
        &BUS_HANDSHAKE_STUCK,
        &NODE_KNOWS_ONLY_ITSELF,
        &SLOTS_NOT_COVERED,
        &super::replication::REPLICA_LINK_DOWN,
    ],
    reach: crate::diagnose::Reach::PeerFacing,
    check: tls_cluster_mismatch,
};

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
    // The nodes in the minority are the odd ones; with a tie nobody is.
    let odd = if on * 2 < settings.len() {
        Some(true)
    } else if on * 2 > settings.len() {
        Some(false)
    } else {
        None
    };
    match odd {
        Some(value) => settings
            .iter()
            .filter(|s| s.1 == value)
            .map(|(node, _, evidence)| Hit {
                node: Some(node.key.clone()),
                summary: format!(
                    "tls-cluster is {} here but {} on {} of the other {} nodes: its bus cannot talk to theirs",
                    if value { "yes" } else { "no" },
                    if value { "no" } else { "yes" },
                    settings.len() - settings.iter().filter(|s| s.1 == value).count(),
                    settings.len() - 1
                ),
                evidence: vec![evidence.clone()],
            })
            .collect(),
        None => vec![Hit {
            node: None,
            summary: format!(
                "tls-cluster is on for {on} of {} nodes: TLS and plaintext bus peers cannot talk",
                settings.len()
            ),
            evidence: settings.into_iter().map(|s| s.2).collect(),
        }],
    }
}

pub static BUS_CERT_WITHOUT_CLIENT_AUTH: Rule = Rule {
    id: "CS305",
    name: "bus-cert-without-client-auth",
    severity: Error,
    detects: "With tls-cluster or tls-replication, a node certificate whose extended key usage lacks clientAuth.",
    why: "On the cluster bus and on replication links the node is the TLS client and presents its certificate; peers require client authentication on the bus whatever tls-auth-clients says, and reject it, so nodes stay in handshake with little logged.",
    fix: "Issue node certificates with both serverAuth and clientAuth, or set tls-client-cert-file / tls-client-key-file to a clientAuth certificate.",
    false_positives: "None when the certificate is the one the node presents.",
    evidence: &[RedisConf, Certificate],
    explains: &[
        &BUS_HANDSHAKE_STUCK,
        &NODE_KNOWS_ONLY_ITSELF,
        &SLOTS_NOT_COVERED,
        &super::replication::REPLICA_LINK_DOWN,
    ],
    reach: crate::diagnose::Reach::PeerFacing,
    check: bus_cert_without_client_auth,
};

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
                node: Some(node.key.clone()),
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

pub static CONFIG_EPOCH_COLLISION: Rule = Rule {
    id: "CS306",
    name: "config-epoch-collision",
    severity: Warning,
    detects: "Two primaries with the same config epoch.",
    why: "Conflicting slot claims are settled by epoch; with equal epochs they are not until the servers' collision handling bumps one (which needs the bus to work).",
    fix: "Give fresh nodes distinct epochs with CLUSTER SET-CONFIG-EPOCH before they meet (clustersmith does); on a running cluster the servers resolve it within seconds if the bus works.",
    false_positives: "A snapshot taken in the seconds before the servers resolve it.",
    evidence: &[Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: config_epoch_collision,
};

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

pub static OPEN_SLOTS: Rule = Rule {
    id: "CS307",
    name: "open-slots",
    severity: Warning,
    detects: "Slots in migrating or importing state.",
    why: "A resharding stopped half-way: keys of those slots move between nodes on every access (ASK redirects), and tools refuse to change the cluster.",
    fix: "Run `clustersmith apply` again with the spec of the run that moved them: it finishes moves left open, toward their target, without deleting a key. By hand: finish the migration (MIGRATE the remaining keys, then CLUSTER SETSLOT <slot> NODE <target> on both sides).",
    false_positives: "A resharding in progress by a tool diagnose cannot see (a clustersmith apply at work is seen, CS311).",
    evidence: &[Live],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: open_slots,
};

pub fn open_slots(inputs: &Inputs) -> Vec<Hit> {
    // Slots a running move holds open are its progress (CS311), not a move left half-way.
    if inputs.at_work.is_active() {
        return Vec::new();
    }
    inputs
        .live()
        .filter(|(_, view)| !view.myself().open_slots().is_empty())
        .map(|(node, view)| {
            let slots: Vec<String> = view
                .myself()
                .open_slots()
                .iter()
                .map(|o| format!("{} {:?} {}", o.slot, o.kind, o.peer))
                .collect();
            Hit {
                node: Some(node.key.clone()),
                summary: format!("{} slot(s) stuck migrating or importing", slots.len()),
                evidence: vec![live(node, "CLUSTER NODES", slots.join(", "))],
            }
        })
        .collect()
}

pub static REPLICA_SHARES_HOST_OR_ZONE: Rule = Rule {
    id: "CS308",
    name: "replica-shares-host-or-zone",
    severity: Warning,
    detects: "A replica on the same host (or, with zones, in the same zone) as its primary.",
    why: "One host or zone failure takes the primary and its replica together, and the slots go down.",
    fix: "Attach the replica to a primary elsewhere (`clustersmith apply` places replicas away from their primary when the inventory allows).",
    false_positives: "Never raised for a single-host cluster (a sandbox), where there is no other place.",
    evidence: &[Live, Spec],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: replica_shares_host_or_zone,
};

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
                node: Some(node.key.clone()),
                summary: format!(
                    "replicates `{}` from the same {domain}: one failure takes both",
                    primary.key
                ),
                evidence: vec![live(node, "CLUSTER NODES", entry_text(view.myself()))],
            });
        }
    }
    hits
}

pub static STALE_NODE_ADDRESS: Rule = Rule {
    id: "CS309",
    name: "stale-node-address",
    severity: Error,
    detects: "A node reached at one IP but listed under another by its peers or its own nodes.conf.",
    why: "After an IP change (a recreated VM) peers keep dialing the old address: the node is marked failing, its slots go down or fail over.",
    fix: "CLUSTER MEET the node's new IP from a peer (the peers update the address when it answers with its id), or set cluster-announce-ip.",
    false_positives: "NAT or multi-homed hosts where the announced address differs from the one used to reach the node. An address a Valkey 8+ node announces for clients (`cluster-announce-client-ipv4`/`-ipv6`, which CLUSTER NODES shows to clients) is not taken for a stale one when the nodes' CLUSTER SLOTS name it as the node's endpoint and the peer's bus link to it is up (CS373 judges whether clients can use it).",
    evidence: &[Live, NodesConf],
    explains: &[&BUS_HANDSHAKE_STUCK],
    reach: crate::diagnose::Reach::OwnNode,
    check: stale_node_address,
};

pub fn stale_node_address(inputs: &Inputs) -> Vec<Hit> {
    let (given, snapshot) = inputs.live_snapshot();
    let stale = snapshot.stale_addresses(false);
    let mut hits = Vec::new();
    for subject in &given {
        let Some(ip) = subject.ip else { continue };
        let mut evidence = Vec::new();
        // Only where the server has such addresses: elsewhere CLUSTER SLOTS lists the bus
        // address, stale or not.
        let client_ips: Vec<IpAddr> = subject
            .live
            .as_ref()
            .filter(|v| v.version().is_some_and(|v| v.has_client_addresses()))
            .map(|v| {
                inputs
                    .endpoints
                    .iter()
                    .filter(|e| e.id == v.id)
                    .filter_map(|e| e.host.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        for s in stale
            .iter()
            .filter(|s| s.subject == subject.key && s.viewer != s.subject)
        {
            let viewer = given
                .iter()
                .find(|n| n.key == s.viewer)
                .expect("the snapshot's keys are the given nodes'");
            let id = snapshot.view(&s.subject).map(|v| v.id);
            let listed = viewer
                .live
                .as_ref()
                .zip(id)
                .and_then(|(v, id)| v.knows(&id));
            // Valkey 8+ shows clients the address a node announces for them in CLUSTER NODES
            // too: listed there with the bus link up, it is no stale address.
            let client_address = listed.is_some_and(|e| {
                e.link_state == crate::model::LinkState::Connected
                    && e.unhealthy_flags().is_empty()
                    && e.addr.ip.is_some_and(|ip| client_ips.contains(&ip))
            });
            if let Some(entry) = listed.filter(|_| !client_address) {
                evidence.push(live(
                    viewer,
                    "CLUSTER NODES",
                    format!("lists it at {} ({})", s.listed, entry_text(entry)),
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
            node: Some(subject.key.clone()),
            summary: format!("reached at {ip}, but known under another address: it changed IP and the cluster still holds the old one"),
            evidence: capped(evidence, "views"),
        });
    }
    hits
}

pub static FOREIGN_CLUSTER_MEMBER: Rule = Rule {
    id: "CS310",
    name: "foreign-cluster-member",
    severity: Error,
    detects: "A node that owns slots the other given nodes see owned by another id while it knows none of them (a cluster of its own), or, with an expected topology and every node reached, a node that knows node ids outside the expected set.",
    why: "It belongs to, or was met by, another cluster: forming would merge the two, and its data may not be ours.",
    fix: "Find out which cluster it serves; only after that decide on CLUSTER FORGET / CLUSTER RESET (never automatic).",
    false_positives: "Members missing from the expected set given to diagnose.",
    evidence: &[Live, Spec],
    explains: &[
        &NODE_KNOWS_ONLY_ITSELF,
        &SLOTS_NOT_COVERED,
        &BUS_HANDSHAKE_STUCK,
        &super::formation::REPLICAS_ON_ONE_PRIMARY,
    ],
    reach: crate::diagnose::Reach::PeerFacing,
    check: foreign_cluster_member,
};

/// Nodes owning slots that the other given nodes see owned by ids it does not know: each is
/// a cluster of its own (formed apart, or reset and given slots), not a node never met.
fn owner_of_another_cluster(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (node, view) in inputs.live() {
        let mine = &view.myself().slots;
        if mine.is_empty() || view.nodes.entries().len() > 1 {
            continue;
        }
        let clash = inputs.live().find_map(|(other, other_view)| {
            if std::ptr::eq(other, node) || other_view.nodes.entries().len() < 2 {
                return None;
            }
            other_view
                .nodes
                .entries()
                .iter()
                .find(|e| {
                    e.id != view.id
                        && !e.slots.is_empty()
                        && !mine.intersection(&e.slots).is_empty()
                })
                .map(|e| (other, e))
        });
        let Some((other, entry)) = clash else {
            continue;
        };
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary: format!(
                "owns slots {mine} as a cluster of its own (epoch {}), while {} and its peers see them owned by {}: it was formed apart from them",
                view.myself().config_epoch,
                other.key,
                entry.id.short()
            ),
            evidence: vec![
                live(node, "CLUSTER NODES", entry_text(view.myself())),
                live(other, "CLUSTER NODES", entry_text(entry)),
            ],
        });
    }
    hits
}

pub fn foreign_cluster_member(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = owner_of_another_cluster(inputs);
    if inputs.expected.is_none() || inputs.nodes.iter().any(|n| n.live.is_none()) {
        // Without the full expected set, an unknown id may be a member that was not given.
        return hits;
    }
    let (given, snapshot) = inputs.live_snapshot();
    let mut ours: BTreeSet<NodeId> = snapshot.our_ids();
    // While a move is under way, a member every given node lists is one joining or being
    // drained (CS311 shows it), not a stranger.
    if inputs.at_work.is_active() {
        let views: Vec<&NodeView> = snapshot.views().map(|(_, v)| v).collect();
        for entry in views.first().map(|v| v.nodes.peers()).into_iter().flatten() {
            if views.iter().all(|v| v.knows(&entry.id).is_some()) {
                ours.insert(entry.id);
            }
        }
    }
    // An old id of an expected address is a departed member (CS320), not a stranger.
    ours.extend(super::departed::departed_ids(inputs));
    for found in snapshot.foreign_members(&ours, false) {
        let node = given
            .iter()
            .find(|n| n.key == found.viewer)
            .expect("the snapshot's keys are the given nodes'");
        let foreign: Vec<Evidence> = found
            .entries
            .iter()
            .map(|e| live(node, "CLUSTER NODES", entry_text(e)))
            .collect();
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary: format!(
                "knows {} node(s) outside the expected set: it belongs to (or was met by) another cluster",
                foreign.len()
            ),
            evidence: capped(foreign, "nodes"),
        });
    }
    hits
}
