//! The server's configuration against where it runs (CS4xx): a default bind the host cannot
//! fully honour, directives the running version does not have.

use crate::diagnose::EvidenceKind::{Live, RedisConf, ServerLog};
use crate::diagnose::Severity::{Error, Info};
use crate::diagnose::{Evidence, Hit, Inputs, NodeEvidence, Rule};
use crate::snapshot::NodeView;

pub static IPV6_BIND_ERRNO_97: Rule = Rule {
    id: "CS401",
    name: "ipv6-bind-errno-97",
    severity: Info,
    detects: "`Could not create server TCP listening socket ::*:<port>: unable to bind socket, errno: 97` in a server log.",
    why: "errno 97 is EAFNOSUPPORT: the host has no IPv6, so the optional IPv6 half of the default bind is skipped and the server goes on. It is not the cause of a formation failure.",
    fix: "Nothing to fix; `bind 0.0.0.0` (or the node's address) silences it.",
    false_positives: "None: it is reported as information, never as a problem.",
    evidence: &[ServerLog],
    explains: &[],
    reach: crate::diagnose::Reach::OwnNode,
    check: ipv6_bind_warning,
};

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
                node: Some(node.key.clone()),
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

pub static DIRECTIVE_UNKNOWN_TO_VERSION: Rule = Rule {
    id: "CS402",
    name: "directive-unknown-to-version",
    severity: Error,
    detects: "A redis.conf directive the running server version does not have (e.g. cluster-port before Redis 7.0, primaryauth on Redis).",
    why: "A server reading an unknown directive refuses to start (`Bad directive or wrong number of arguments`), so a rolling upgrade or downgrade leaves the node down.",
    fix: "Remove the directive, or use the spelling the running version knows (masterauth on Redis, primaryauth on Valkey).",
    false_positives: "A file written for the next version, not yet loaded.",
    evidence: &[RedisConf, Live, ServerLog],
    explains: &[&super::catalog::CONFIG_FILE_REJECTED],
    reach: crate::diagnose::Reach::OwnNode,
    check: directive_unknown_to_version,
};

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
            // A server that refuses its config file exits before its start banner: the
            // refused line names the directive, and the table says which versions have it.
            if let Some(hit) = refused_newer_directive(node) {
                hits.push(hit);
            }
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
            .map(|d| conf.at(d.line, d.shown()))
            .collect();
        if !unknown.is_empty() {
            hits.push(Hit {
                node: Some(node.key.clone()),
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

/// A directive of the table that the node's server refused with `Bad directive`: the server
/// is older than the directive (or of the other flavour), whatever its version.
fn refused_newer_directive(node: &NodeEvidence) -> Option<Hit> {
    let log = node.log.as_ref()?;
    let refused = log.value.config_errors.iter().rev().find_map(|e| {
        let name = e
            .directive
            .as_deref()?
            .split_whitespace()
            .next()?
            .to_ascii_lowercase();
        let row = NEWER_DIRECTIVES.iter().find(|(d, _, _)| *d == name)?;
        e.message.contains("Bad directive").then_some((e, row))
    })?;
    let (error, (name, since, in_valkey)) = refused;
    let origin = if since.0 == u32::MAX {
        format!("`{name}` is Valkey's spelling: a Redis server does not know it")
    } else {
        format!(
            "`{name}` exists since Redis {}.{}{}: this server is older",
            since.0,
            since.1,
            if *in_valkey { " (and in Valkey)" } else { "" }
        )
    };
    Some(Hit {
        node: Some(node.key.clone()),
        summary: format!("{origin}; it refused the line and exited"),
        evidence: vec![log.at(
            error.line,
            format!(
                "refused config line{}: {}",
                error
                    .config_line
                    .map(|l| format!(" (config line {l})"))
                    .unwrap_or_default(),
                error.directive.as_deref().unwrap_or_default()
            ),
        )],
    })
}

/// Every directive a supported server reads, the servers that know it, and whether it only
/// takes yes/no (see the file's header for where it was captured).
const DIRECTIVES: &str = include_str!("../../../data/server-directives.tsv");

/// A directive's row: whether any supported server knows it, and whether it is yes/no only.
fn directive_row(name: &str) -> Option<bool> {
    DIRECTIVES
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .find_map(|l| {
            let mut cols = l.split('\t');
            (cols.next()? == name).then(|| cols.nth(1) == Some("bool"))
        })
}

/// The values a few enumerated directives take, on every supported server.
const ENUMS: &[(&str, &[&str])] = &[
    (
        "maxmemory-policy",
        &[
            "volatile-lru",
            "allkeys-lru",
            "volatile-lfu",
            "allkeys-lfu",
            "volatile-random",
            "allkeys-random",
            "volatile-ttl",
            "noeviction",
        ],
    ),
    ("appendfsync", &["always", "everysec", "no"]),
    (
        "loglevel",
        &["debug", "verbose", "notice", "warning", "nothing"],
    ),
    ("supervised", &["upstart", "systemd", "auto", "no"]),
    ("tls-auth-clients", &["yes", "no", "optional"]),
];

/// Directives whose value is a memory amount (`100mb`, `1gb`, `0`).
const MEMORY: &[&str] = &[
    "maxmemory",
    "repl-backlog-size",
    "client-query-buffer-limit",
    "proto-max-bulk-len",
];

/// Whether `value` reads as a memory amount (see [`memory_bytes`]).
pub(in crate::diagnose) fn is_memory(value: &str) -> bool {
    memory_bytes(value).is_some()
}

/// A memory amount as the servers' memtoull reads it: digits and an optional unit, any case
/// (`k` 1000, `kb` 1024, `m` 1000², `mb` 1024², `g` 1000³, `gb` 1024³).
pub(in crate::diagnose) fn memory_bytes(value: &str) -> Option<u64> {
    let lower = value.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit: u64 = match &lower[digits.len()..] {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u64>().ok()?.checked_mul(unit)
}

/// Why a supported server refuses this line at startup, if every one of them does.
fn refused(d: &crate::parse::Directive) -> Option<String> {
    let Some(yes_no) = directive_row(&d.name) else {
        return Some(format!(
            "`{}` is not a directive of any supported server (Redis 6.2-7.x, Valkey 8-9)",
            d.name
        ));
    };
    let value = d.args.first().map(|v| v.to_ascii_lowercase());
    let value = value.as_deref().unwrap_or("");
    if yes_no && d.args.len() == 1 && !["yes", "no"].contains(&value) {
        return Some(format!("`{}` takes yes or no, not `{value}`", d.name));
    }
    if let Some((_, values)) = ENUMS.iter().find(|(name, _)| *name == d.name)
        && d.args.len() == 1
        && !values.contains(&value)
    {
        return Some(format!(
            "`{}` takes one of {}, not `{value}`",
            d.name,
            values.join(", ")
        ));
    }
    if MEMORY.contains(&d.name.as_str()) && d.args.len() == 1 && !is_memory(value) {
        return Some(format!(
            "`{}` takes a memory amount (100mb, 1gb), not `{value}`",
            d.name
        ));
    }
    None
}

pub static CONFIG_REFUSED_AT_STARTUP: Rule = Rule {
    id: "CS403",
    name: "config-refused-at-startup",
    severity: Error,
    detects: "A node that is not running whose redis.conf has a line every supported server refuses at startup: a directive none of them knows, or a yes/no, enumerated or memory directive with a value it does not take. Read from the file alone, for when the refusal went to a stderr nobody kept.",
    why: "The server checks its config file before it opens its log: a refused line goes to stderr only (`*** FATAL CONFIG FILE ERROR ***`), and a service manager that drops stderr leaves no trace but a node that never starts.",
    fix: "Correct or remove the line named (check it against the redis.conf shipped with the server version you run) and start the server again.",
    false_positives: "A debug-only directive of a server newer than Valkey 9.1 that the table does not list yet.",
    evidence: &[RedisConf, Live],
    explains: &[&crate::diagnose::rules::node_facts::NODE_NOT_RUNNING],
    reach: crate::diagnose::Reach::OwnNode,
    check: config_refused_at_startup,
};

pub fn config_refused_at_startup(inputs: &Inputs) -> Vec<Hit> {
    let mut hits = Vec::new();
    for node in &inputs.nodes {
        let not_running = node
            .facts
            .as_ref()
            .is_some_and(|f| f.answer == crate::diagnose::Answer::Refused);
        // A log that holds the refusal is CS501's evidence, with the server's own words.
        let logged = node
            .log
            .as_ref()
            .is_some_and(|l| !l.value.config_errors.is_empty());
        let Some(conf) = node.redis_conf.as_ref().filter(|_| not_running && !logged) else {
            continue;
        };
        let evidence: Vec<Evidence> = conf
            .value
            .directives
            .iter()
            .filter_map(|d| {
                let why = refused(d)?;
                Some(conf.at(d.line, format!("{}: {why}", d.shown())))
            })
            .collect();
        if evidence.is_empty() {
            continue;
        }
        hits.push(Hit {
            node: Some(node.key.clone()),
            summary: format!(
                "not running, and its redis.conf has {} line(s) the server refuses at startup: it exits before opening its log",
                evidence.len()
            ),
            evidence,
        });
    }
    hits
}
