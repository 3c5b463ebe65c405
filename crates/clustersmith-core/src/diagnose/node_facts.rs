//! Node facts: what each expected node *is*, established from how it answered before any
//! other rule reads a view. A node that is not a working cluster member (gone, silent,
//! speaking the other protocol, cluster support off, protected mode, loading, refusing the
//! cluster commands) is a finding of its own, with the live reply and the warning lines its
//! log ends with; what it breaks on its peers (a peer that knows only itself, slots not
//! covered, a peer stuck in handshake with it, a replica whose primary it is) hangs under
//! it through [`explains_elsewhere`]. Nodes sharing what must not be shared on one host are
//! checked here too, since that is a common reason for a node not to start.

use std::net::IpAddr;

use super::{Evidence, Finding, Hit, Inputs, NodeEvidence, SourceFile, live};
use crate::parse::RedisConf;

/// How an expected node answered diagnose's first request (CLUSTER NODES, CLUSTER INFO,
/// INFO, pipelined).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// It answered as a cluster member; its view is [`NodeEvidence::live`].
    Member,
    /// Connection refused: nothing listens at the address.
    Refused,
    /// No answer in time.
    TimedOut,
    /// The connection was closed at once, without a reply.
    Reset,
    /// It speaks the other protocol: `wants_tls` when it cut a plaintext connection and
    /// answers no plaintext RESP; otherwise it answered plaintext RESP to a TLS client.
    OtherProtocol { wants_tls: bool },
    /// `-ERR This instance has cluster support disabled` (`cluster-enabled no`).
    ClusterDisabled,
    /// `-DENIED Redis is running in protected mode …`.
    ProtectedMode,
    /// `-LOADING Redis is loading the dataset in memory`.
    Loading,
    /// It refused the credentials (NOAUTH, WRONGPASS, NOPERM) that other nodes accepted.
    AuthRefused,
    /// Any other refusal of the cluster commands (a renamed CLUSTER command, …).
    Refusing,
}

/// What diagnose established about one expected node before any rule ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFacts {
    pub answer: Answer,
    /// The reply or connection error, as received.
    pub reply: String,
    /// Server flavour and version (`Redis 7.0.15`, `Valkey 8.1.8`) when it answered INFO.
    pub version: Option<String>,
}

impl NodeFacts {
    pub fn is_member(&self) -> bool {
        self.answer == Answer::Member
    }
}

/// Rules whose finding is a node that is not a working cluster member.
const NOT_MEMBER: &[&str] = &[
    "CS330", "CS331", "CS332", "CS333", "CS334", "CS335", "CS336", "CS338",
];

fn not_member(node: &NodeEvidence) -> Option<&NodeFacts> {
    node.facts.as_ref().filter(|f| !f.is_member())
}

fn directive(conf: &SourceFile<RedisConf>, name: &str) -> Option<Evidence> {
    let d = conf.value.get(name)?;
    Some(conf.at(d.line, format!("{} {}", d.name, d.args.join(" "))))
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
                    (Some(d), _) | (None, Some(d)) => {
                        conf.at(d.line, format!("{} {}", d.name, d.args.join(" ")))
                    }
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
            let facts = not_member(node).filter(|f| answers(&f.answer))?;
            let mut evidence = common_evidence(node, facts, reply);
            evidence.extend(extra(node));
            Some(Hit {
                node: Some(node.label.clone()),
                summary: summary(node, facts),
                evidence,
            })
        })
        .collect()
}

pub fn node_not_running(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| *a == Answer::Refused,
        "connect",
        |node, _| {
            format!(
                "nothing listens at {} (connection refused): the server is not running there{}",
                node.label,
                reason(node)
            )
        },
        |_| Vec::new(),
    )
}

pub fn node_not_answering(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| matches!(a, Answer::TimedOut | Answer::Reset),
        "connect",
        |node, facts| {
            format!(
                "{} does not answer ({}): the server is stopped or hung, or the network drops the connection{}",
                node.label,
                facts.reply,
                reason(node)
            )
        },
        |_| Vec::new(),
    )
}

pub fn cluster_support_disabled(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| *a == Answer::ClusterDisabled,
        "CLUSTER NODES",
        |node, _| {
            format!(
                "{} answers, but with cluster support disabled (cluster-enabled no): it cannot join any cluster",
                node.label
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

pub fn protected_mode(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| *a == Answer::ProtectedMode,
        "connect",
        |node, _| {
            format!(
                "{} refuses clients from other addresses: protected mode is on and it has no password",
                node.label
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

pub fn node_loading(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| *a == Answer::Loading,
        "CLUSTER NODES",
        |node, _| {
            format!(
                "{} is loading its dataset and answers only LOADING until it is done",
                node.label
            )
        },
        |_| Vec::new(),
    )
}

pub fn tls_mode_mismatch(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| matches!(a, Answer::OtherProtocol { .. }),
        "connect",
        |node, facts| match facts.answer {
            Answer::OtherProtocol { wants_tls: true } => format!(
                "{} speaks only TLS at this port while the other nodes were reached in plaintext",
                node.label
            ),
            _ => format!(
                "{} speaks plaintext at this port while the other nodes were reached over TLS",
                node.label
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

pub fn cluster_commands_refused(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| *a == Answer::Refusing,
        "CLUSTER NODES",
        |node, facts| {
            format!(
                "{} answers but refuses the cluster commands ({}): it is not a usable cluster member",
                node.label, facts.reply
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

pub fn auth_differs(inputs: &Inputs) -> Vec<Hit> {
    hits_for(
        inputs,
        |a| *a == Answer::AuthRefused,
        "connect",
        |node, facts| {
            format!(
                "{} refuses the credentials the other nodes accept ({}): its requirepass or ACL users differ from theirs",
                node.label, facts.reply
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

// ---- what two nodes on one host must not share ------------------------------------------

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

fn claims(conf: &SourceFile<RedisConf>) -> Vec<Claim> {
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

pub fn shared_between_nodes(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    let with_conf: Vec<(&NodeEvidence, &SourceFile<RedisConf>, IpAddr)> = inputs
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
            let (loser, other) = match (not_member(a).is_some(), not_member(b).is_some()) {
                (true, false) => (a, b),
                _ => (b, a),
            };
            hits.push(Hit {
                node: Some(loser.label.clone()),
                summary: format!(
                    "{} and {} on host {a_ip} share their {}: only one server can hold each",
                    loser.label,
                    other.label,
                    shared.join(", ")
                ),
                evidence,
            });
        }
    }
    hits
}

// ---- symptoms elsewhere -----------------------------------------------------------------

/// Whether `cause`, a node that is not a working member, explains `symptom` on another node:
/// formation cannot complete without the node (a peer that knows only itself, slots not
/// covered), a peer stuck in handshake only with nodes that are not working, and a replica
/// whose primary it is.
pub(super) fn explains_elsewhere(inputs: &Inputs, cause: &Finding, symptom: &Finding) -> bool {
    if !NOT_MEMBER.contains(&cause.rule.id) || !cause.rule.explains.contains(&symptom.rule.id) {
        return false;
    }
    let find = |label: &Option<String>| {
        let label = label.as_deref()?;
        inputs.nodes.iter().find(|n| n.label == label)
    };
    let (Some(down), Some(seen)) = (find(&cause.node), find(&symptom.node)) else {
        return false;
    };
    if std::ptr::eq(down, seen) {
        return false;
    }
    let at = |n: &NodeEvidence, ip: Option<IpAddr>, port: u16| {
        n.ip.is_some() && n.ip == ip && n.port == Some(port)
    };
    match symptom.rule.id {
        "CS301" | "CS302" => true,
        "CS303" => {
            let Some(view) = &seen.live else { return false };
            let stuck: Vec<_> = view
                .nodes
                .entries()
                .iter()
                .filter(|e| {
                    !e.is_myself()
                        && (e.is_handshake()
                            || e.link_state == crate::model::LinkState::Disconnected)
                })
                .collect();
            stuck.iter().any(|e| at(down, e.addr.ip, e.addr.port))
                && stuck.iter().all(|e| {
                    inputs
                        .nodes
                        .iter()
                        .any(|n| not_member(n).is_some() && at(n, e.addr.ip, e.addr.port))
                })
        }
        "CS204" => {
            let Some(view) = &seen.live else { return false };
            let host = view
                .info
                .get("master_host")
                .and_then(|h| h.parse::<IpAddr>().ok());
            let port = view
                .info
                .get("master_port")
                .and_then(|p| p.parse::<u16>().ok());
            port.is_some_and(|p| at(down, host, p))
        }
        _ => false,
    }
}

#[cfg(test)]
pub(super) mod tests;
