//! Checks across nodes (CS35x): what one node presents against what its peers need of it —
//! a certificate their CA files accept, an announced address they can reach, a server
//! version its replicas can load data from, the cluster settings they share, an ACL that
//! lets their replication logins in. Each finding names the nodes it compared, sits on the
//! node to fix, and explains what it breaks on the others (their reach is `Reach::PeerFacing`).

use std::net::IpAddr;

use super::catalog::{DATA_LOAD_FAILED, FULL_SYNC_FAILING, TLS_HANDSHAKE_REJECTED};
use super::membership::{BUS_HANDSHAKE_STUCK, NODE_KNOWS_ONLY_ITSELF, SLOTS_NOT_COVERED};
use super::replication::REPLICA_LINK_DOWN;
use crate::diagnose::EvidenceKind::{Certificate, Live, RedisConf, ServerLog};
use crate::diagnose::Severity::{Error, Warning};
use crate::diagnose::{CertFacts, CertRejection, Evidence, Hit, Inputs, NodeEvidence, Rule, live};
use crate::model::{LinkState, NodeFlag};

pub static CERTIFICATE_REJECTED_BY_PEERS: Rule = Rule {
    id: "CS350",
    name: "certificate-rejected-by-peers",
    severity: Error,
    detects: "With tls-cluster or tls-replication, a node certificate that the CA file its peers trust (their tls-ca-cert-file) does not accept: issued by another CA, expired or not yet valid; or a node whose CA file accepts none of the certificates its peers present.",
    why: "Bus and replication links check certificates both ways, each side against its own CA file. A rejected certificate drops the link at the handshake: the nodes never meet (handshake, a node that knows only itself) or the replica never syncs, and the servers log little more than `certificate verify failed`.",
    fix: "Issue the node a certificate, valid now, from the CA every node trusts (or give the odd node the CA file the others use), and reload it (CONFIG SET tls-cert-file / tls-key-file / tls-ca-cert-file, or restart).",
    false_positives: "Peers that trust a CA directory (tls-ca-cert-dir), which is not read: only tls-ca-cert-file is judged.",
    evidence: &[RedisConf, Certificate],
    explains: &[
        &NODE_KNOWS_ONLY_ITSELF,
        &SLOTS_NOT_COVERED,
        &BUS_HANDSHAKE_STUCK,
        &REPLICA_LINK_DOWN,
        &TLS_HANDSHAKE_REJECTED,
    ],
    reach: crate::diagnose::Reach::PeerFacing,
    check: certificate_rejected_by_peers,
};

/// A node using TLS on its bus or replication links, with its CA file.
fn tls_node(node: &NodeEvidence) -> Option<(&str, usize)> {
    let conf = node.redis_conf.as_ref()?;
    let on = conf.value.flag("tls-cluster") == Some(true)
        || conf.value.flag("tls-replication") == Some(true);
    let ca = conf.value.get("tls-ca-cert-file")?;
    on.then(|| {
        (
            ca.args.first().map(String::as_str).unwrap_or_default(),
            ca.line,
        )
    })
}

/// Why `ca` rejects what `node` presents, as the server side and as the client side of a
/// link; usage is left to CS305.
fn rejections<'a>(
    node: &'a NodeEvidence,
    ca: &str,
) -> Vec<(&'a CertFacts, &'static str, CertRejection)> {
    let server = node.certs.iter().find(|c| c.directive == "tls-cert-file");
    let client = node
        .certs
        .iter()
        .find(|c| c.directive == "tls-client-cert-file")
        .or(server);
    let mut out = Vec::new();
    for (cert, side) in [(server, "server"), (client, "client")] {
        let Some(cert) = cert else { continue };
        let Some(verdict) = cert.verdicts.iter().find(|v| v.ca == ca) else {
            continue;
        };
        let rejection = if side == "server" {
            &verdict.as_server
        } else {
            &verdict.as_client
        };
        if let Some(r) = rejection.clone().filter(|r| *r != CertRejection::Usage)
            && !out
                .iter()
                .any(|(c, _, _): &(&CertFacts, _, _)| std::ptr::eq(*c, cert))
        {
            out.push((cert, side, r));
        }
    }
    out
}

pub fn certificate_rejected_by_peers(inputs: &Inputs) -> Vec<Hit> {
    let tls: Vec<(&NodeEvidence, &str)> = inputs
        .nodes
        .iter()
        .filter_map(|n| tls_node(n).map(|(ca, _)| (n, ca)))
        .collect();
    let mut hits = Vec::new();
    for (node, own_ca) in &tls {
        let peers: Vec<&(&NodeEvidence, &str)> = tls
            .iter()
            .filter(|(p, _)| !std::ptr::eq(*p, *node))
            .collect();
        if peers.is_empty() {
            continue;
        }
        let rejecting: Vec<(&NodeEvidence, &str, Vec<_>)> = peers
            .iter()
            .map(|(p, ca)| (*p, *ca, rejections(node, ca)))
            .filter(|(_, _, r)| !r.is_empty())
            .collect();
        // Its certificate is the odd one when its own CA file rejects it too, or more than
        // one peer and most of them do (with a single peer that could be the peer's CA file,
        // judged below when the peer is the subject).
        let own_rejects = !rejections(node, own_ca).is_empty();
        let most = rejecting.len() >= 2 && rejecting.len() * 2 > peers.len();
        if !rejecting.is_empty() && (own_rejects || most) {
            let mut evidence = Vec::new();
            for (peer, ca, why) in &rejecting {
                for (cert, side, reason) in why {
                    let conf = node
                        .redis_conf
                        .as_ref()
                        .expect("a TLS node has a redis.conf");
                    evidence.push(conf.at(
                        cert.line,
                        format!(
                            "{} {} ({} side of its links): {} trusts {ca}: {reason}",
                            cert.directive, cert.path, side, peer.key
                        ),
                    ));
                }
            }
            let reason = rejecting[0].2[0].2.to_string();
            hits.push(Hit {
                node: Some(node.key.clone()),
                summary: format!(
                    "{} of {} peer(s) reject its certificate ({reason}): its bus and replication links to them fail at the TLS handshake",
                    rejecting.len(),
                    peers.len()
                ),
                evidence,
            });
            continue;
        }
        // Its CA file accepts none of the certificates its peers present, while their own
        // CA files accept them: the CA file is the odd one.
        let refused: Vec<&NodeEvidence> = peers
            .iter()
            .filter(|(p, p_ca)| !rejections(p, own_ca).is_empty() && rejections(p, p_ca).is_empty())
            .map(|(p, _)| *p)
            .collect();
        if !refused.is_empty() && refused.len() == peers.len() {
            let (_, line) = tls_node(node).expect("listed as a TLS node");
            let conf = node
                .redis_conf
                .as_ref()
                .expect("a TLS node has a redis.conf");
            hits.push(Hit {
                node: Some(node.key.clone()),
                summary: format!(
                    "its tls-ca-cert-file {own_ca} accepts none of its {} peers' certificates: every TLS link with them fails",
                    peers.len()
                ),
                evidence: vec![conf.at(
                    line,
                    format!(
                        "tls-ca-cert-file {own_ca}: rejects the certificates of {}",
                        refused.iter().map(|p| p.key.label()).collect::<Vec<_>>().join(", ")
                    ),
                )],
            });
        }
    }
    hits
}

pub static ANNOUNCED_ADDRESS_UNREACHABLE: Rule = Rule {
    id: "CS351",
    name: "announced-address-unreachable",
    severity: Error,
    detects: "A node that announces (cluster-announce-ip / -port / -bus-port) an address other than where it answers, while its peers cannot reach it there: they list it as disconnected, failing or in handshake, do not know it at all, or its replicas' links are down.",
    why: "Peers and replicas connect to the address a node announces, not the one it was met at. Behind NAT that is the point of announcing; a wrong value (a stale IP after a move, a port of another node, a bus port nothing listens on) cuts the node off while it answers perfectly where operators test it.",
    fix: "Set cluster-announce-ip / -port / -bus-port to where peers can reach the node (or remove them), and CONFIG SET them live: the node announces the new value in its next heartbeat.",
    false_positives: "A NAT or container network where the announced address works for the peers but not from where diagnose runs: then the peers' views would show the node connected, and this does not fire.",
    evidence: &[Live, RedisConf],
    explains: &[
        &NODE_KNOWS_ONLY_ITSELF,
        &SLOTS_NOT_COVERED,
        &BUS_HANDSHAKE_STUCK,
        &REPLICA_LINK_DOWN,
        // A wrong announced IP or port is handed to clients as well.
        &super::clients::CLIENT_ENDPOINT_UNUSABLE,
    ],
    reach: crate::diagnose::Reach::PeerFacing,
    check: announced_address_unreachable,
};

pub fn announced_address_unreachable(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (node, view) in inputs.live() {
        let me = view.myself();
        let (Some(reached_ip), Some(reached_port)) = (node.ip, node.port) else {
            continue;
        };
        let conf = node.redis_conf.as_ref().map(|c| &c.value);
        let tls_port = conf.and_then(|c| c.port("tls-port")).filter(|p| *p > 0);
        let mut wrong: Vec<String> = Vec::new();
        if me.addr.ip.is_some_and(|ip: IpAddr| ip != reached_ip) {
            wrong.push(format!(
                "announces IP {} but answers at {reached_ip}",
                me.addr.ip.map(|ip| ip.to_string()).unwrap_or_default()
            ));
        }
        if me.addr.port != reached_port && Some(me.addr.port) != tls_port {
            wrong.push(format!(
                "announces port {} but answers at {reached_port}",
                me.addr.port
            ));
        }
        if let Some(conf) = conf
            && conf.get("cluster-announce-bus-port").is_some()
        {
            let base = match (conf.flag("tls-cluster"), tls_port) {
                (Some(true), Some(tls)) => tls,
                _ => conf.listening_port().unwrap_or(reached_port),
            };
            let real = conf
                .port("cluster-port")
                .filter(|p| *p > 0)
                .unwrap_or(base.saturating_add(10000));
            if me.addr.bus_port != real {
                wrong.push(format!(
                    "announces bus port {} but its bus listens on {real}",
                    me.addr.bus_port
                ));
            }
        }
        if wrong.is_empty() {
            continue;
        }
        // The peers' side: a NAT'd node announces another address on purpose; only peers
        // (or replicas) that cannot reach it make it a fault.
        let mut evidence: Vec<Evidence> = wrong
            .iter()
            .map(|w| live(node, "CLUSTER NODES", format!("myself: {w}")))
            .collect();
        for (peer, peer_view) in inputs.live().filter(|(p, _)| !std::ptr::eq(*p, node)) {
            match peer_view.nodes.get(&view.id) {
                None => evidence.push(live(
                    peer,
                    "CLUSTER NODES",
                    format!("does not list {}", view.id.short()),
                )),
                Some(e)
                    if e.is_handshake()
                        || e.link_state == LinkState::Disconnected
                        || e.has_flag(NodeFlag::Fail)
                        || e.has_flag(NodeFlag::PossibleFail) =>
                {
                    evidence.push(live(
                        peer,
                        "CLUSTER NODES",
                        format!("lists it at {} ({})", e.addr, super::common::entry_text(e)),
                    ));
                }
                Some(_) => {}
            }
            let replica_of_it = peer_view.info.role() == Some("slave")
                && peer_view.info.primary_link_status() != Some("up")
                && peer_view
                    .myself()
                    .primary_id
                    .as_ref()
                    .is_some_and(|p| *p == view.id);
            if replica_of_it {
                evidence.push(live(
                    peer,
                    "INFO replication",
                    format!(
                        "its replica's link is down, connecting to {}:{}",
                        peer_view.info.get("master_host").unwrap_or("?"),
                        peer_view.info.get("master_port").unwrap_or("?")
                    ),
                ));
            }
        }
        if evidence.len() == wrong.len() {
            continue;
        }
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary: format!(
                "{}: its peers connect where it announces and cannot reach it",
                wrong.join("; ")
            ),
            evidence,
        });
    }
    hits
}

pub static REPLICA_OLDER_THAN_PRIMARY: Rule = Rule {
    id: "CS352",
    name: "replica-older-than-primary",
    severity: Error,
    detects: "A replica running an older server than its primary (or the other flavour past where they share an RDB format), with its link down or `Can't handle RDB format version` in its log.",
    why: "A full sync ships the primary's RDB; a replica older than the RDB format refuses it (`Can't handle RDB format version N`) and retries forever. Upgrades must go replicas first, then fail over.",
    fix: "Upgrade the replica to the primary's version (or newer) before it replicates; in a rolling upgrade, upgrade replicas first and fail over to them.",
    false_positives: "A replica that synced before the primary was upgraded (a partial resync can work until the next full sync).",
    evidence: &[Live, ServerLog],
    explains: &[&REPLICA_LINK_DOWN, &FULL_SYNC_FAILING, &DATA_LOAD_FAILED],
    reach: crate::diagnose::Reach::PeerFacing,
    check: replica_older_than_primary,
};

pub fn replica_older_than_primary(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (node, view) in inputs.live() {
        if view.info.role() != Some("slave") {
            continue;
        }
        let Some(primary_id) = view.myself().primary_id.as_ref() else {
            continue;
        };
        let Some((primary, primary_view)) = inputs.live().find(|(_, v)| v.id == *primary_id) else {
            continue;
        };
        let (Some(mine), Some(theirs)) = (view.version(), primary_view.version()) else {
            continue;
        };
        if !mine.cannot_follow(&theirs) {
            continue;
        }
        let proof = node
            .log
            .as_ref()
            .map(|log| log.lines_with(&["Can't handle RDB format version"]))
            .unwrap_or_default();
        if proof.is_empty() && view.info.primary_link_status() == Some("up") {
            continue;
        }
        let mut evidence = vec![
            live(node, "INFO server", format!("runs {mine}")),
            live(primary, "INFO server", format!("its primary runs {theirs}")),
        ];
        evidence.extend(proof);
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary: format!(
                "replica runs {mine}, older than its primary {} ({theirs}): it cannot load the primary's RDB",
                primary.key
            ),
            evidence,
        });
    }
    hits
}

pub static CLUSTER_SETTINGS_DISAGREE: Rule = Rule {
    id: "CS353",
    name: "cluster-settings-disagree",
    severity: Warning,
    detects: "A cluster setting that every node must share (cluster-node-timeout, cluster-require-full-coverage, cluster-allow-reads-when-down, the replica validity factor, cluster-migration-barrier, cluster-allow-replica-migration, tls-replication) set differently on a minority of the nodes' redis.conf (an absent directive counts as the default).",
    why: "Each node applies its own value when it judges its peers and itself: a node with another node-timeout marks peers failing at another time and starts failovers on its own schedule; one without full coverage keeps serving while the others refuse; one without tls-replication cannot replicate from TLS peers. The cluster then behaves differently depending on which node sees a fault first.",
    fix: "Give every node the same value (CONFIG SET on the odd node, and the same line in every redis.conf so a restart keeps it).",
    false_positives: "A deliberate per-node difference during a rolling change of the setting.",
    evidence: &[RedisConf],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: cluster_settings_disagree,
};

/// The settings peers must share, with their defaults (the same in Redis 6.2-7.2 and
/// Valkey); a setting has old and new spellings where the servers renamed it.
const SHARED_SETTINGS: &[(&[&str], &str)] = &[
    (&["cluster-node-timeout"], "15000"),
    (&["cluster-require-full-coverage"], "yes"),
    (&["cluster-allow-reads-when-down"], "no"),
    (
        &[
            "cluster-replica-validity-factor",
            "cluster-slave-validity-factor",
        ],
        "10",
    ),
    (&["cluster-migration-barrier"], "1"),
    (&["cluster-allow-replica-migration"], "yes"),
    (&["tls-replication"], "no"),
];

pub fn cluster_settings_disagree(inputs: &Inputs) -> Vec<Hit> {
    let confs: Vec<(
        &NodeEvidence,
        &crate::diagnose::SourceFile<crate::parse::RedisConf>,
    )> = inputs
        .nodes
        .iter()
        .filter_map(|n| n.redis_conf.as_ref().map(|c| (n, c)))
        .collect();
    if confs.len() < 3 {
        // With two nodes neither is the odd one.
        return Vec::new();
    }
    let mut hits: Vec<Hit> = Vec::new();
    for (names, default) in SHARED_SETTINGS {
        let values: Vec<(String, Option<&crate::parse::Directive>)> = confs
            .iter()
            .map(|(_, conf)| {
                let d = names.iter().find_map(|n| conf.value.get(n));
                let v = d
                    .and_then(|d| d.args.first())
                    .map_or((*default).to_owned(), |v| v.to_ascii_lowercase());
                (v, d)
            })
            .collect();
        // The value most nodes have; a node differing from a strict majority is odd.
        let majority = values
            .iter()
            .find(|(v, _)| values.iter().filter(|(w, _)| w == v).count() * 2 > values.len());
        let Some((common, _)) = majority else {
            continue;
        };
        for ((node, conf), (value, directive)) in confs.iter().zip(&values) {
            if value == common {
                continue;
            }
            let evidence = match directive {
                Some(d) => conf.at(d.line, d.shown()),
                None => conf.whole(format!("{} not set (default {default})", names[0])),
            };
            let text = format!("{} {value} (the other nodes: {common})", names[0]);
            match hits.iter_mut().find(|h| h.node.as_ref() == Some(&node.key)) {
                Some(hit) => {
                    hit.summary.push_str(&format!("; {text}"));
                    hit.evidence.push(evidence);
                }
                None => hits.push(Hit {
                    node: Some(node.key.clone()),
                    summary: format!("its cluster settings differ from the other nodes': {text}"),
                    evidence: vec![evidence],
                }),
            }
        }
    }
    hits
}

pub static REPLICATION_CREDENTIALS_UNFIT: Rule = Rule {
    id: "CS354",
    name: "replication-credentials-unfit",
    severity: Error,
    detects: "A node whose ACL (the `user` lines of its redis.conf) does not accept the replication login another node uses (masteruser / primaryuser with masterauth / primaryauth): the user is missing or off, the password is not one of the user's, or the user may not run PSYNC, REPLCONF or PING. Compared inside diagnose; no password is shown.",
    why: "Any node may have to replicate from any other after a failover, logging in with its own masteruser and masterauth. A user the primary does not have, has switched off, knows with another password or forbids a replication command leaves that replica unable to sync (`-NOPERM`, `-WRONGPASS`), often noticed only at the first failover.",
    fix: "Define the same replication user on every node (`user <name> on ><password> +psync +replconf +ping`, or the same aclfile), and give every node the matching masteruser/masterauth (primaryuser/primaryauth on Valkey).",
    false_positives: "Users created at runtime with ACL SETUSER and not saved to the file: this fires only when the other node's redis.conf defines users itself, or when the replica's log shows its login refused.",
    evidence: &[RedisConf, ServerLog],
    explains: &[
        &REPLICA_LINK_DOWN,
        &super::catalog::REPLICATION_CREDENTIALS_REJECTED,
        &super::catalog::REPLICATION_USER_LACKS_PERMISSION,
    ],
    reach: crate::diagnose::Reach::PeerFacing,
    check: replication_credentials_unfit,
};

/// What a node's ACL (its redis.conf `user` lines) says of one login with replication's
/// commands: `None` when it lets it in and run them.
fn acl_verdict(conf: &crate::parse::RedisConf, user: &str, password: &str) -> Option<String> {
    let rules: Vec<&crate::parse::Directive> = conf
        .directives
        .iter()
        .filter(|d| d.name == "user" && d.args.first().map(String::as_str) == Some(user))
        .collect();
    if rules.is_empty() {
        return Some(format!("has no user `{user}`"));
    }
    let (mut on, mut nopass, mut passwords) = (false, false, Vec::<&str>::new());
    // PSYNC and REPLCONF are in @admin, @slow and @dangerous; PING in @fast and @connection.
    let mut allowed = [false; 3];
    const COMMANDS: [&str; 3] = ["psync", "replconf", "ping"];
    let categories: [&[&str]; 3] = [
        &["@all", "@admin", "@slow", "@dangerous"],
        &["@all", "@admin", "@slow", "@dangerous"],
        &["@all", "@fast", "@connection"],
    ];
    for token in rules.iter().flat_map(|d| d.args.iter().skip(1)) {
        let t = token.to_ascii_lowercase();
        match t.as_str() {
            "on" => on = true,
            "off" => on = false,
            "nopass" => nopass = true,
            "resetpass" => {
                nopass = false;
                passwords.clear();
            }
            "reset" => {
                (on, nopass) = (false, false);
                passwords.clear();
                allowed = [false; 3];
            }
            "allcommands" => allowed = [true; 3],
            "nocommands" => allowed = [false; 3],
            _ => {
                if let Some(pw) = token.strip_prefix('>') {
                    passwords.push(pw);
                } else if let Some(pw) = token.strip_prefix('<') {
                    passwords.retain(|p| *p != pw);
                } else if let Some(rest) = t.strip_prefix(['+', '-']) {
                    let grant = t.starts_with('+');
                    for i in 0..3 {
                        if rest == COMMANDS[i] || categories[i].contains(&rest) {
                            allowed[i] = grant;
                        }
                    }
                }
            }
        }
    }
    if !on {
        return Some(format!("has user `{user}` switched off"));
    }
    if !nopass && !passwords.contains(&password) {
        // A `#<hash>` password cannot be compared here; say nothing rather than guess.
        if rules
            .iter()
            .flat_map(|d| d.args.iter())
            .any(|a| a.starts_with('#'))
        {
            return None;
        }
        return Some(format!(
            "does not accept the replica's password for `{user}`"
        ));
    }
    let denied: Vec<&str> = (0..3)
        .filter(|i| !allowed[*i])
        .map(|i| COMMANDS[i])
        .collect();
    (!denied.is_empty()).then(|| {
        format!(
            "does not let `{user}` run {}",
            denied.join(", ").to_ascii_uppercase()
        )
    })
}

/// A node's replication login: its masteruser (primaryuser) directive and its masterauth
/// (primaryauth), or `None` when it logs in as the default user (requirepass's, judged by
/// CS202 and CS338).
fn replication_login(node: &NodeEvidence) -> Option<(&crate::parse::Directive, &str)> {
    let conf = &node.redis_conf.as_ref()?.value;
    let user = ["masteruser", "primaryuser"]
        .iter()
        .filter_map(|n| conf.get(n))
        .max_by_key(|d| d.line)
        .filter(|d| d.args.first().is_some_and(|u| !u.is_empty()))?;
    let password = conf
        .replication_auth()
        .and_then(|d| d.args.first())
        .map_or("", String::as_str);
    Some((user, password))
}

/// Judged on the node whose ACL refuses: the user is defined (or missing) there, and that is
/// where replicas of it fail.
pub fn replication_credentials_unfit(inputs: &Inputs) -> Vec<Hit> {
    // Every node's login, read once: the replica, its user directive and password, and
    // whether its log shows a login refused. Users created at runtime are not in the file:
    // where no users are defined, only such a refusal makes the file's silence count.
    let logins: Vec<(&NodeEvidence, &crate::parse::Directive, &str, bool)> = inputs
        .nodes
        .iter()
        .filter_map(|replica| {
            let (user, password) = replication_login(replica)?;
            let refused_in_log = replica.log.as_ref().is_some_and(|log| {
                log.value
                    .find(&[
                        "Unable to AUTH to",
                        "NOPERM",
                        "WRONGPASS",
                        "invalid username-password",
                    ])
                    .next()
                    .is_some()
            });
            Some((replica, user, password, refused_in_log))
        })
        .collect();
    let mut hits = Vec::new();
    for node in &inputs.nodes {
        let Some(conf) = &node.redis_conf else {
            continue;
        };
        let defines_users = conf.value.directives.iter().any(|d| d.name == "user");
        if conf.value.get("aclfile").is_some() {
            continue;
        }
        let mut evidence = Vec::new();
        let mut users: Vec<&str> = Vec::new();
        // Whether a node it refuses replicates from it now: then it is what breaks a link
        // today, not after a failover.
        let mut refuses_a_replica_now = false;
        for &(replica, user, password, refused_in_log) in &logins {
            if std::ptr::eq(replica, node) || !(defines_users || refused_in_log) {
                continue;
            }
            let name = user.args[0].as_str();
            let Some(why) = acl_verdict(&conf.value, name, password) else {
                continue;
            };
            let replica_conf = replica
                .redis_conf
                .as_ref()
                .expect("a login is read from it");
            evidence.push(replica_conf.at(
                user.line,
                format!(
                    "{}: {} {name} (with its masterauth; not shown)",
                    replica.key, user.name
                ),
            ));
            let line = conf
                .value
                .directives
                .iter()
                .rev()
                .find(|d| d.name == "user" && d.args.first().map(String::as_str) == Some(name))
                .map(|d| d.line);
            let text = format!("this node {why}");
            evidence.push(match line {
                Some(l) => conf.at(l, text),
                None => conf.whole(text),
            });
            if !users.contains(&name) {
                users.push(name);
            }
            refuses_a_replica_now |= replica
                .live
                .as_ref()
                .and_then(|v| v.info.primary_addr())
                .is_some_and(|addr| node.ip.zip(node.port) == Some(addr));
        }
        if !evidence.is_empty() {
            let consequence = if refuses_a_replica_now {
                "they cannot replicate from it"
            } else {
                "none replicates from it now; after a failover to it they could not"
            };
            hits.push((
                refuses_a_replica_now,
                Hit {
                    node: Some(node.key.clone()),
                    summary: format!(
                        "its ACL refuses the replication login `{}` of {} other node(s): {consequence}",
                        users.join("`, `"),
                        evidence.len() / 2
                    ),
                    evidence,
                },
            ));
        }
    }
    // The node that refuses a replica now first: the symptoms it causes (the replica's link
    // down, the refusal in its log) hang under the first finding that explains them.
    hits.sort_by_key(|(now, _)| !now);
    hits.into_iter().map(|(_, hit)| hit).collect()
}
