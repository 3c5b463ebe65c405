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
