//! Gathers diagnosis evidence: files (redis.conf, nodes.conf, server logs, post-deploy
//! logs, the certificates redis.conf names) and live views, and attaches each file to the
//! node it describes. Parsing is the core's; this module only reads and matches.

use std::path::{Path, PathBuf};

use clustersmith_core::diagnose::{CertFacts, Inputs, NodeEvidence, SourceFile};
use clustersmith_core::model::NodeId;
use clustersmith_core::observation::NodeState;
use clustersmith_core::parse::{
    ClusterNodes, ParseIssue, RedisConf, ServerLog, parse_cluster_nodes, parse_post_deploy_log,
    parse_redis_conf, parse_server_log,
};

use crate::error::NodeError;
use crate::session::Session;

/// Evidence files, each optional; several of each kind may be given.
#[derive(Clone, Debug, Default)]
pub struct EvidenceFiles {
    pub redis_conf: Vec<PathBuf>,
    pub nodes_conf: Vec<PathBuf>,
    pub logs: Vec<PathBuf>,
    pub post_deploy: Vec<PathBuf>,
    /// Absolute paths inside files (tls-cert-file, dir) are read under this root: a copy of
    /// a VM's file system.
    pub root: PathBuf,
}

impl EvidenceFiles {
    /// The standard BOSH layout of job `job` under `root` (files that do not exist are left
    /// out; the notes say which).
    pub fn bosh(root: &Path, job: &str, notes: &mut Vec<String>) -> EvidenceFiles {
        let mut files = EvidenceFiles {
            root: root.to_owned(),
            ..Default::default()
        };
        let under = |p: String| root.join(p.trim_start_matches('/'));
        let mut add = |list: &mut Vec<PathBuf>, path: PathBuf| {
            if path.is_file() {
                list.push(path);
            } else {
                notes.push(format!("not found: {}", path.display()));
            }
        };
        add(
            &mut files.redis_conf,
            under(format!("/var/vcap/jobs/{job}/config/redis.conf")),
        );
        add(
            &mut files.logs,
            under(format!("/var/vcap/sys/log/{job}/{job}.log")),
        );
        add(
            &mut files.post_deploy,
            under(format!("/var/vcap/sys/log/{job}/post-deploy.stderr.log")),
        );
        // nodes.conf lives in the job's store dir; redis.conf's `dir` says where exactly.
        let store = files
            .redis_conf
            .first()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|text| {
                let conf = parse_redis_conf(&text).value;
                let dir = conf.value("dir")?.to_owned();
                let file = conf
                    .value("cluster-config-file")
                    .unwrap_or("nodes.conf")
                    .to_owned();
                Some(under(dir).join(file))
            })
            .unwrap_or_else(|| under(format!("/var/vcap/store/{job}/nodes.conf")));
        add(&mut files.nodes_conf, store);
        files
    }

    fn reroot(&self, path: &str) -> PathBuf {
        if self.root.as_os_str().is_empty() || self.root == Path::new("/") {
            PathBuf::from(path)
        } else {
            self.root.join(path.trim_start_matches('/'))
        }
    }
}

/// What was gathered, and what could not be read or matched.
pub struct Gathered {
    pub inputs: Inputs,
    /// Unreadable files, parse issues with their lines, files attached to no live node.
    pub notes: Vec<String>,
    /// Errors met while observing the live nodes. Unreachable nodes are also recorded in
    /// their evidence; errors of the connection settings (auth, TLS) are the caller's to stop on.
    pub errors: Vec<NodeError>,
}

fn read(path: &Path, notes: &mut Vec<String>) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            notes.push(format!("cannot read {}: {e}", path.display()));
            None
        }
    }
}

fn note_issues(path: &Path, issues: &[ParseIssue], notes: &mut Vec<String>) {
    const SHOWN: usize = 5;
    for issue in issues.iter().take(SHOWN) {
        notes.push(format!(
            "{}:{}: {}",
            path.display(),
            issue.line,
            issue.message
        ));
    }
    if issues.len() > SHOWN {
        notes.push(format!(
            "{}: {} more unreadable lines",
            path.display(),
            issues.len() - SHOWN
        ));
    }
}

/// Which node a file describes: its node id, or its port.
#[derive(Clone, Debug, Default)]
struct Identity {
    id: Option<NodeId>,
    port: Option<u16>,
}

/// Observes the session's nodes (when given) and reads every file, attaching each file to
/// the live node it describes (by node id, else by a port no other live node has); files of
/// no live node are grouped by port into nodes of their own.
pub async fn gather(session: Option<&mut Session>, files: &EvidenceFiles) -> Gathered {
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    let mut nodes: Vec<NodeEvidence> = Vec::new();
    if let Some(session) = session {
        let observed = session.observe().await;
        for (idx, state) in observed.observation.nodes.into_iter().enumerate() {
            let inv = &session.inventory[idx];
            let mut node = NodeEvidence {
                label: inv.label.clone(),
                ip: Some(inv.ip),
                port: Some(inv.port),
                zone: inv.zone.clone(),
                ..Default::default()
            };
            match state {
                NodeState::Seen(view) => node.live = Some(*view),
                NodeState::Unreachable(why) => node.unreachable = Some(why),
            }
            if let Some(err) = &observed.errors[idx] {
                errors.push(err.clone());
            }
            nodes.push(node);
        }
    }
    let live_count = nodes.len();

    let attach = |nodes: &mut Vec<NodeEvidence>,
                  identity: Identity,
                  path: &Path,
                  set: &mut dyn FnMut(&mut NodeEvidence)| {
        let by_id = identity.id.as_ref().and_then(|id| {
            nodes[..live_count]
                .iter()
                .position(|n| n.live.as_ref().is_some_and(|v| &v.id == id))
        });
        let by_port = identity.port.and_then(|port| {
            let matches: Vec<usize> = (0..live_count)
                .filter(|i| nodes[*i].port == Some(port))
                .collect();
            (matches.len() == 1).then(|| matches[0])
        });
        let idx = by_id.or(by_port).unwrap_or_else(|| {
            // A node known only from files, one per port (or per file without one).
            let label = match identity.port {
                Some(port) => format!("files of port {port}"),
                None => format!("files of {}", path.display()),
            };
            match nodes[live_count..].iter().position(|n| n.label == label) {
                Some(i) => live_count + i,
                None => {
                    nodes.push(NodeEvidence {
                        label,
                        port: identity.port,
                        ..Default::default()
                    });
                    nodes.len() - 1
                }
            }
        });
        set(&mut nodes[idx]);
    };

    for path in &files.redis_conf {
        let Some(text) = read(path, &mut notes) else {
            continue;
        };
        let parsed = parse_redis_conf(&text);
        note_issues(path, &parsed.issues, &mut notes);
        let conf = parsed.value;
        let identity = Identity {
            id: None,
            port: conf
                .port("port")
                .filter(|p| *p > 0)
                .or_else(|| conf.port("tls-port")),
        };
        let certs = cert_facts(&conf, files, &mut notes);
        let file = SourceFile {
            path: path.display().to_string(),
            value: conf,
        };
        attach(&mut nodes, identity, path, &mut |n| {
            n.redis_conf = Some(file.clone());
            n.certs = certs.clone();
        });
    }
    for path in &files.nodes_conf {
        let Some(text) = read(path, &mut notes) else {
            continue;
        };
        let parsed = parse_cluster_nodes(&text);
        note_issues(path, &parsed.issues, &mut notes);
        let value: ClusterNodes = parsed.value;
        let identity = Identity {
            id: value.myself().map(|m| m.id.clone()),
            port: value.myself().map(|m| m.addr.port),
        };
        let file = SourceFile {
            path: path.display().to_string(),
            value,
        };
        attach(&mut nodes, identity, path, &mut |n| {
            n.nodes_conf = Some(file.clone());
        });
    }
    for path in &files.logs {
        let Some(text) = read(path, &mut notes) else {
            continue;
        };
        let parsed = parse_server_log(&text);
        note_issues(path, &parsed.issues, &mut notes);
        let value: ServerLog = parsed.value;
        let identity = Identity {
            id: value.node_id().and_then(|id| NodeId::parse(id).ok()),
            port: log_port(&value),
        };
        let file = SourceFile {
            path: path.display().to_string(),
            value,
        };
        attach(&mut nodes, identity, path, &mut |n| {
            n.log = Some(file.clone())
        });
    }
    let mut post_deploy = Vec::new();
    for path in &files.post_deploy {
        let Some(text) = read(path, &mut notes) else {
            continue;
        };
        post_deploy.push(SourceFile {
            path: path.display().to_string(),
            value: parse_post_deploy_log(&text).value,
        });
    }
    Gathered {
        inputs: Inputs {
            nodes,
            post_deploy,
            expected: None,
        },
        notes,
        errors,
    }
}

/// `Running mode=cluster, port=6379.` from the last start.
fn log_port(log: &ServerLog) -> Option<u16> {
    log.lines.iter().rev().find_map(|l| {
        l.message
            .split_once("port=")
            .and_then(|(_, rest)| rest.trim_end_matches('.').split([',', '.']).next())
            .and_then(|p| p.trim().parse().ok())
    })
}

/// Reads the certificates redis.conf names: what usage they allow and whether they expired.
fn cert_facts(conf: &RedisConf, files: &EvidenceFiles, notes: &mut Vec<String>) -> Vec<CertFacts> {
    ["tls-cert-file", "tls-client-cert-file"]
        .iter()
        .filter_map(|directive| {
            let d = conf.get(directive)?;
            let named = d.args.first()?;
            let path = files.reroot(named);
            let pem = match std::fs::read(&path) {
                Ok(pem) => pem,
                Err(e) => {
                    notes.push(format!("cannot read {directive} {}: {e}", path.display()));
                    return None;
                }
            };
            match parse_cert(&pem) {
                Ok((server_auth, client_auth, expired)) => Some(CertFacts {
                    path: named.clone(),
                    directive: (*directive).to_owned(),
                    line: d.line,
                    server_auth,
                    client_auth,
                    expired,
                }),
                Err(e) => {
                    notes.push(format!("cannot parse {directive} {}: {e}", path.display()));
                    None
                }
            }
        })
        .collect()
}

/// (serverAuth allowed, clientAuth allowed, expired) of the first certificate in a PEM file.
/// No extended key usage extension means any usage.
fn parse_cert(pem: &[u8]) -> Result<(bool, bool, bool), String> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem).map_err(|e| e.to_string())?;
    let cert = pem.parse_x509().map_err(|e| e.to_string())?;
    let (server, client) = match cert.extended_key_usage().map_err(|e| e.to_string())? {
        Some(eku) => (
            eku.value.any || eku.value.server_auth,
            eku.value.any || eku.value.client_auth,
        ),
        None => (true, true),
    };
    let expired = !cert.validity().is_valid();
    Ok((server, client, expired))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::{CertOptions, TestCa};

    #[test]
    fn certificate_usage_and_expiry_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let ca = TestCa::create(&dir).unwrap();
        let good = ca.issue(&dir, "good", &["127.0.0.1"]).unwrap();
        let server_only = ca
            .issue_with(
                &dir,
                "server",
                &["127.0.0.1"],
                CertOptions {
                    server_auth_only: true,
                    ..Default::default()
                },
            )
            .unwrap();
        let old = ca
            .issue_with(
                &dir,
                "old",
                &["127.0.0.1"],
                CertOptions {
                    expired: true,
                    ..Default::default()
                },
            )
            .unwrap();
        let read = |p: &Path| parse_cert(&std::fs::read(p).unwrap()).unwrap();
        assert_eq!(read(&good.cert), (true, true, false));
        assert_eq!(read(&server_only.cert), (true, false, false));
        assert_eq!(read(&old.cert), (true, true, true));
    }
}
