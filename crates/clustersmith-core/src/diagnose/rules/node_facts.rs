//! Expected nodes that are not working cluster members (CS330-CS338), from how each answered
//! (see [`NodeFacts`]): gone, silent, speaking the other protocol, cluster support off,
//! protected mode, loading, refusing the cluster commands or the credentials. Nodes sharing
//! what must not be shared on one host are checked here too, since that is a common reason
//! for a node not to start.

use std::net::IpAddr;

use crate::diagnose::EvidenceKind::{Live, RedisConf, ServerLog};
use crate::diagnose::Severity::Error;
use crate::diagnose::{
    Answer, Evidence, Hit, Inputs, NodeEvidence, NodeFacts, Rule, SourceFile, live,
};
use crate::parse;

fn directive(conf: &SourceFile<parse::RedisConf>, name: &str) -> Option<Evidence> {
    let d = conf.value.get(name)?;
    Some(conf.at(d.line, d.shown()))
}

/// The evidence every not-member finding carries: the reply, the version, the log's last
/// warnings (why a process that is gone stopped), and the redis.conf lines that say where it
/// should listen.
fn common_evidence(node: &NodeEvidence, facts: &NodeFacts, reply: &'static str) -> Vec<Evidence> {
    let mut evidence = vec![live(node, reply, facts.reply.clone())];
    if let Some(version) = &facts.version {
        evidence.push(live(node, "INFO server", version.clone()));
    }
    if let Some(conf) = &node.redis_conf {
        let c = &conf.value;
        // Expected at one port, configured for another: it may be running, but elsewhere.
        if let Some(expected) = node.port {
            let ports = [c.listening_port(), c.port("tls-port").filter(|p| *p > 0)];
            if !ports.contains(&Some(expected)) {
                let said = match (c.get("port"), c.get("tls-port")) {
                    (Some(d), _) | (None, Some(d)) => conf.at(d.line, d.shown()),
                    (None, None) => conf.whole("no port directive: the server listens on 6379"),
                };
                evidence.push(Evidence {
                    text: format!("{} (expected at port {expected})", said.text),
                    ..said
                });
            }
        }
    }
    evidence.extend(ending_of_log(node));
    evidence
}

/// The warning lines the node's log ends with, and what it printed on exit.
fn ending_of_log(node: &NodeEvidence) -> Vec<Evidence> {
    let Some(log) = &node.log else {
        return Vec::new();
    };
    let mut lines = log.value.ending_warnings();
    if lines.len() > 8 {
        lines.drain(..lines.len() - 8);
    }
    if lines.is_empty()
        && let Some(last) = log.value.lines.last()
    {
        // No warning at the end: the process was killed without a word (SIGKILL, OOM killer)
        // or is still running elsewhere; its last line says how far it got.
        return vec![log.at(
            last.line,
            format!("last line, no warning after it: {}", last.message),
        )];
    }
    lines
        .into_iter()
        .map(|(line, text)| log.at(line, text))
        .collect()
}

/// The first warning of the log's ending, for the summary: the reason in one line.
fn reason(node: &NodeEvidence) -> String {
    let Some(log) = &node.log else {
        return String::new();
    };
    let ending = log.value.ending_warnings();
    // The most specific line: a fatal config error's reason is its last line; a failed
    // listen says so in its last two.
    let pick = ending
        .iter()
        .rev()
        .find(|(_, t)| {
            !t.is_empty()
                && !t.starts_with("***")
                && !t.starts_with(">>>")
                && !t.starts_with("Reading the configuration file")
                && !t.contains("ready to exit")
                && !t.contains("bye bye")
        })
        .or(ending.last());
    match pick {
        Some((_, text)) => format!("; its log ends with: {text}"),
        None => String::new(),
    }
}

fn hits_for(
    inputs: &Inputs,
    answers: fn(&Answer) -> bool,
    reply: &'static str,
    summary: impl Fn(&NodeEvidence, &NodeFacts) -> String,
    extra: impl Fn(&NodeEvidence) -> Vec<Evidence>,
) -> Vec<Hit> {
    inputs
        .nodes
        .iter()
        .filter_map(|node| {
            let facts = node.not_member().filter(|f| answers(&f.answer))?;
            let mut evidence = common_evidence(node, facts, reply);
            evidence.extend(extra(node));
            Some(Hit {
                node: Some(node.key.clone()),
                summary: summary(node, facts),
                evidence,
            })
        })
        .collect()
}

/// What a node that is not a working member breaks, on itself and (through
/// `reach::explains_elsewhere`) on its peers: formation cannot complete without it,
/// handshakes with it hang, its replicas have no primary to sync from, and its primary,
/// under `min-replicas-to-write`, refuses writes for want of it.
static BROKEN_BY_A_NON_MEMBER: &[&Rule] = &[
    &super::clients::WRITES_REFUSED_NOREPLICAS,
    // An expected node that is not there is missing from the replicas' count.
    &super::formation::REPLICAS_ON_ONE_PRIMARY,
    &super::membership::NODE_KNOWS_ONLY_ITSELF,
    &super::membership::SLOTS_NOT_COVERED,
    &super::membership::BUS_HANDSHAKE_STUCK,
    &super::replication::REPLICA_LINK_DOWN,
];

pub static NODE_NOT_RUNNING: Rule = Rule {
    id: "CS330",
    name: "node-not-running",
    severity: Error,
    detects: "An expected node that refuses connections: nothing listens at its address. Its log's last warning lines (or what it printed on exit) say why it stopped.",
    why: "A node that is not running owns no slots, introduces no one and serves no replica: formation stops short of it, and its peers show only the consequences (a node that knows only itself, slots not covered, a peer in handshake).",
    fix: "Start the server and read why it exited: the log's last warning lines (a port already in use, a bad directive, a nodes.conf it cannot lock), and its redis.conf's port against the address it is expected at.",
    false_positives: "A node stopped on purpose (maintenance) but given to diagnose.",
    evidence: &[Live, ServerLog, RedisConf],
    explains: BROKEN_BY_A_NON_MEMBER,
    reach: crate::diagnose::Reach::NodeDown,
    check: node_not_running,
};

pub fn node_not_running(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| *a == Answer::Refused,
        "connect",
        |node, _| {
            format!(
                "nothing listens at {} (connection refused): the server is not running there{}",
                node.key,
                reason(node)
            )
        },
        |_| Vec::new(),
    )
}

pub static NODE_NOT_ANSWERING: Rule = Rule {
    id: "CS331",
    name: "node-not-answering",
    severity: Error,
    detects: "An expected node that accepts no connection in time, or closes it without a reply.",
    why: "A stopped (SIGSTOP), hung or firewalled server looks alive to nothing: peers mark it failing, its slots fail over or go down, and formation cannot reach it.",
    fix: "Check the process (is it stopped or stuck: `ps`, its log), and the network path to its port (firewall, security group).",
    false_positives: "A node under very heavy load that answers after the timeout.",
    evidence: &[Live, ServerLog],
    explains: BROKEN_BY_A_NON_MEMBER,
    reach: crate::diagnose::Reach::NodeDown,
    check: node_not_answering,
};

pub fn node_not_answering(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| matches!(a, Answer::TimedOut | Answer::Reset),
        "connect",
        |node, facts| {
            format!(
                "{} does not answer ({}): the server is stopped or hung, or the network drops the connection{}",
                node.key,
                facts.reply,
                reason(node)
            )
        },
        |_| Vec::new(),
    )
}

pub static CLUSTER_SUPPORT_DISABLED: Rule = Rule {
    id: "CS332",
    name: "cluster-support-disabled",
    severity: Error,
    detects: "An expected node that answers `ERR This instance has cluster support disabled`.",
    why: "With `cluster-enabled no` (the default) the server is a standalone instance: it has no cluster bus, refuses CLUSTER MEET, ADDSLOTS and REPLICATE, and can never be a member.",
    fix: "Set `cluster-enabled yes` in its redis.conf and restart it (it cannot be changed at run time).",
    false_positives: "A standalone server given by mistake among the cluster's nodes.",
    evidence: &[Live, RedisConf],
    explains: BROKEN_BY_A_NON_MEMBER,
    reach: crate::diagnose::Reach::NodeDown,
    check: cluster_support_disabled,
};

pub fn cluster_support_disabled(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| *a == Answer::ClusterDisabled,
        "CLUSTER NODES",
        |node, _| {
            format!(
                "{} answers, but with cluster support disabled (cluster-enabled no): it cannot join any cluster",
                node.key
            )
        },
        |node| {
            let Some(conf) = &node.redis_conf else {
                return Vec::new();
            };
            vec![
                directive(conf, "cluster-enabled").unwrap_or_else(|| {
                    conf.whole("no cluster-enabled directive: it defaults to no")
                }),
            ]
        },
    )
}

pub static PROTECTED_MODE_REFUSAL: Rule = Rule {
    id: "CS333",
    name: "protected-mode-refusal",
    severity: Error,
    detects: "An expected node that answers `-DENIED Redis is running in protected mode` and closes the connection.",
    why: "Protected mode (the default, with no password and no explicit bind) accepts only loopback clients: peers and tools on other addresses are refused, so nothing can form the cluster with it.",
    fix: "Give the nodes a password (requirepass with masterauth) or an explicit `bind`, or set `protected-mode no` where the network is trusted, and restart.",
    false_positives: "None: the reply is only sent in protected mode.",
    evidence: &[Live, RedisConf],
    explains: BROKEN_BY_A_NON_MEMBER,
    reach: crate::diagnose::Reach::NodeDown,
    check: protected_mode,
};

pub fn protected_mode(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| *a == Answer::ProtectedMode,
        "connect",
        |node, _| {
            format!(
                "{} refuses clients from other addresses: protected mode is on and it has no password",
                node.key
            )
        },
        |node| {
            let Some(conf) = &node.redis_conf else {
                return Vec::new();
            };
            ["protected-mode", "bind"]
                .iter()
                .filter_map(|d| directive(conf, d))
                .collect()
        },
    )
}

pub static NODE_LOADING: Rule = Rule {
    id: "CS334",
    name: "node-loading",
    severity: Error,
    detects: "An expected node that answers `LOADING Redis is loading the dataset in memory`.",
    why: "Until the RDB or AOF is loaded the node serves no keys and its cluster view cannot be read; a formation or check run now sees it as missing.",
    fix: "Wait for the load to finish (`loading:0` in INFO persistence) and run again; a load that never ends points at a huge or corrupt AOF.",
    false_positives: "Any node right after a restart with a large dataset: the state passes on its own.",
    evidence: &[Live],
    explains: BROKEN_BY_A_NON_MEMBER,
    reach: crate::diagnose::Reach::NodeDown,
    check: node_loading,
};

pub fn node_loading(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| *a == Answer::Loading,
        "CLUSTER NODES",
        |node, _| {
            format!(
                "{} is loading its dataset and answers only LOADING until it is done",
                node.key
            )
        },
        |_| Vec::new(),
    )
}

pub static TLS_PLAINTEXT_MISMATCH: Rule = Rule {
    id: "CS335",
    name: "tls-plaintext-mismatch",
    severity: Error,
    detects: "An expected node that speaks the other protocol at its port: TLS only where the other nodes were reached in plaintext, or plaintext where they were reached over TLS.",
    why: "A node whose port speaks another protocol than its peers' cannot be reached by tools with the same settings, and usually differs in tls-port / tls-cluster from its peers, so the bus and replication between them fail too.",
    fix: "Give every node the same port layout (`port` / `tls-port`, `tls-cluster`, `tls-replication`) and restart the odd one.",
    false_positives: "A node listed by its TLS port among nodes listed by their plaintext ports (a mistake in the list, not in the cluster).",
    evidence: &[Live, RedisConf],
    explains: BROKEN_BY_A_NON_MEMBER,
    reach: crate::diagnose::Reach::NodeDown,
    check: tls_mode_mismatch,
};

pub fn tls_mode_mismatch(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| matches!(a, Answer::OtherProtocol { .. }),
        "connect",
        |node, facts| match facts.answer {
            Answer::OtherProtocol { wants_tls: true } => format!(
                "{} speaks only TLS at this port while the other nodes were reached in plaintext",
                node.key
            ),
            _ => format!(
                "{} speaks plaintext at this port while the other nodes were reached over TLS",
                node.key
            ),
        },
        |node| {
            let Some(conf) = &node.redis_conf else {
                return Vec::new();
            };
            ["port", "tls-port", "tls-cluster", "tls-replication"]
                .iter()
                .filter_map(|d| directive(conf, d))
                .collect()
        },
    )
}

pub static CLUSTER_COMMANDS_REFUSED: Rule = Rule {
    id: "CS336",
    name: "cluster-commands-refused",
    severity: Error,
    detects: "An expected node that answers but refuses CLUSTER NODES / CLUSTER INFO with another error (a renamed CLUSTER command, an unknown command).",
    why: "Without the cluster commands the node can be neither formed nor checked; a renamed CLUSTER command also breaks redis-cli --cluster and every cluster client's discovery.",
    fix: "Remove the rename-command for CLUSTER (or whatever the reply names) and restart.",
    false_positives: "None known.",
    evidence: &[Live, RedisConf],
    explains: BROKEN_BY_A_NON_MEMBER,
    reach: crate::diagnose::Reach::NodeDown,
    check: cluster_commands_refused,
};

pub fn cluster_commands_refused(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| *a == Answer::Refusing,
        "CLUSTER NODES",
        |node, facts| {
            format!(
                "{} answers but refuses the cluster commands ({}): it is not a usable cluster member",
                node.key, facts.reply
            )
        },
        |node| {
            let Some(conf) = &node.redis_conf else {
                return Vec::new();
            };
            conf.value
                .renamed("CLUSTER")
                .map(|d| conf.at(d.line, format!("rename-command {}", d.args.join(" "))))
                .into_iter()
                .collect()
        },
    )
}

/// A thing one server owns on its host, as its redis.conf names it.
struct Claim {
    what: &'static str,
    /// What it is, to compare (`port 6379 on 127.0.0.1`, a path).
    key: String,
    evidence: Evidence,
}

/// Whether two bind lists can both take the same port: any wildcard (or no bind, which
/// listens everywhere), or an address in common.
fn binds_overlap(a: &[&str], b: &[&str]) -> bool {
    let wildcard =
        |l: &[&str]| l.is_empty() || l.iter().any(|x| ["*", "0.0.0.0", "::", "::*"].contains(x));
    wildcard(a) || wildcard(b) || a.iter().any(|x| b.contains(x))
}

fn claims(conf: &SourceFile<parse::RedisConf>) -> Vec<Claim> {
    let c = &conf.value;
    let mut out = Vec::new();
    let mut at = |what: &'static str, name: &str, key: String, text: String| {
        let evidence = match c.get(name) {
            Some(d) => conf.at(d.line, text),
            None => conf.whole(text),
        };
        out.push(Claim {
            what,
            key,
            evidence,
        });
    };
    if let Some(port) = c.listening_port() {
        at("port", "port", port.to_string(), format!("port {port}"));
    }
    if let Some(port) = c.port("tls-port").filter(|p| *p > 0) {
        at(
            "port",
            "tls-port",
            port.to_string(),
            format!("tls-port {port}"),
        );
    }
    let files: [(&'static str, &str, Option<&str>); 5] = [
        ("nodes.conf", "cluster-config-file", Some("nodes.conf")),
        ("log file", "logfile", None),
        ("pid file", "pidfile", None),
        ("RDB file", "dbfilename", Some("dump.rdb")),
        ("AOF file", "appendfilename", None),
    ];
    for (what, name, default) in files {
        if let Some(path) = c.file_path(name, default) {
            let path = path.display().to_string();
            at(what, name, path.clone(), format!("{name} → {path}"));
        }
    }
    out
}

pub static SHARED_PORT_OR_FILE: Rule = Rule {
    id: "CS337",
    name: "shared-port-or-file",
    severity: Error,
    detects: "Two nodes on one host whose redis.conf give the same port (on overlapping binds), nodes.conf, log file, pid file, RDB or AOF file.",
    why: "Only one server can listen on a port or hold nodes.conf's lock: the second exits at start (`Address already in use`, `Sorry, the cluster configuration file … is already used`). Shared log, RDB or AOF files mix or overwrite two nodes' data.",
    fix: "Give each node its own port and its own `dir` (or distinct file names), and restart the one that exited.",
    false_positives: "Nodes given as on one host that are not (two addresses resolving to one IP through a proxy or NAT).",
    evidence: &[RedisConf, Live],
    explains: &[
        &NODE_NOT_RUNNING,
        &NODE_NOT_ANSWERING,
        &super::catalog::CANNOT_LISTEN,
        &super::catalog::CLUSTER_CONFIG_FILE_IN_USE,
    ],
    reach: crate::diagnose::Reach::OwnNode,
    check: shared_between_nodes,
};

pub fn shared_between_nodes(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    let with_conf: Vec<(&NodeEvidence, &SourceFile<parse::RedisConf>, IpAddr)> = inputs
        .nodes
        .iter()
        .filter_map(|n| Some((n, n.redis_conf.as_ref()?, n.ip?)))
        .collect();
    for (i, (a, a_conf, a_ip)) in with_conf.iter().enumerate() {
        for (b, b_conf, b_ip) in &with_conf[i + 1..] {
            // Only nodes known to be on one host: the same path on two VMs is two files.
            if a_ip != b_ip || a_conf.path == b_conf.path {
                continue;
            }
            let overlap = binds_overlap(
                &a_conf.value.bind_addresses(),
                &b_conf.value.bind_addresses(),
            );
            let b_claims = claims(b_conf);
            let mut shared: Vec<&'static str> = Vec::new();
            let mut evidence = Vec::new();
            for claim in claims(a_conf) {
                if claim.what == "port" && !overlap {
                    continue;
                }
                if let Some(other) = b_claims
                    .iter()
                    .find(|o| o.what == claim.what && o.key == claim.key)
                {
                    if !shared.contains(&claim.what) {
                        shared.push(claim.what);
                    }
                    evidence.push(claim.evidence);
                    evidence.push(other.evidence.clone());
                }
            }
            if shared.is_empty() {
                continue;
            }
            // The finding belongs to the node that lost (the one not working), so that its
            // not-running finding hangs under this cause.
            let (loser, other) = match (a.not_member().is_some(), b.not_member().is_some()) {
                (true, false) => (a, b),
                _ => (b, a),
            };
            hits.push(Hit {
                node: Some(loser.key.clone()),
                summary: format!(
                    "{} and {} on host {a_ip} share their {}: only one server can hold each",
                    loser.key,
                    other.key,
                    shared.join(", ")
                ),
                evidence,
            });
        }
    }
    hits
}

pub static NODE_REFUSES_AUTH: Rule = Rule {
    id: "CS338",
    name: "node-refuses-auth",
    severity: Error,
    detects: "An expected node that refuses the credentials the other nodes accept: NOAUTH (it has a password they lack), WRONGPASS (another password), or NOPERM (its ACL user lacks a permission).",
    why: "Nodes of one cluster must share their passwords and ACL users: a replica logs in to its primary with masterauth / masteruser, and tools use one set of credentials for all nodes. The odd node can be neither formed nor checked, and replication to or from it fails.",
    fix: "Give every node the same requirepass (and masterauth), or the same ACL users with the same permissions, and reload them (CONFIG SET requirepass / ACL LOAD) or restart.",
    false_positives: "A node listed by mistake that belongs to another deployment.",
    evidence: &[Live, RedisConf],
    explains: &[
        &super::membership::NODE_KNOWS_ONLY_ITSELF,
        &super::membership::SLOTS_NOT_COVERED,
        &super::membership::BUS_HANDSHAKE_STUCK,
        &super::replication::REPLICA_LINK_DOWN,
        // Its own password settings are the odd ones: a missing masterauth beside them is
        // part of the same difference.
        &super::replication::REPLICATION_AUTH_MISSING,
    ],
    reach: crate::diagnose::Reach::NodeDown,
    check: auth_differs,
};

pub fn auth_differs(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| *a == Answer::AuthRefused,
        "connect",
        |node, facts| {
            format!(
                "{} refuses the credentials the other nodes accept ({}): its requirepass or ACL users differ from theirs",
                node.key, facts.reply
            )
        },
        |node| {
            let Some(conf) = &node.redis_conf else {
                return Vec::new();
            };
            // The directives that set who may log in; the password itself is never shown.
            conf.value
                .directives
                .iter()
                .filter(|d| ["requirepass", "user", "aclfile"].contains(&d.name.as_str()))
                .map(|d| {
                    let shown = match d.name.as_str() {
                        "user" => format!("user {}", d.args.first().map_or("", String::as_str)),
                        "aclfile" => format!("aclfile {}", d.args.join(" ")),
                        _ => "requirepass is set".to_owned(),
                    };
                    conf.at(d.line, shown)
                })
                .collect()
        },
    )
}
