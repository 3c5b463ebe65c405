//! Turns arguments into the core spec and the I/O connection options.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use clustersmith_core::spec::{ClusterSpec, NodeSpec, check_weight, check_zone, parse_node};
use clustersmith_io::conn::{ConnOpts, Secret, TlsOpts};
use serde::Deserialize;

use clustersmith_io::evidence::EvidenceFiles;

use crate::args::{ConnArgs, EvidenceArgs, TargetArgs};

/// The TOML spec: the same content as the flags.
///
/// ```toml
/// primaries = 2
/// replicas = 1
/// [[node]]
/// addr = "redis-1.example:6379"
/// zone = "z1"
/// weight = 2
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    primaries: Option<usize>,
    replicas: Option<usize>,
    #[serde(default)]
    node: Vec<SpecFileNode>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFileNode {
    addr: String,
    zone: Option<String>,
    weight: Option<u32>,
}

pub fn cluster_spec(args: &TargetArgs) -> anyhow::Result<ClusterSpec> {
    let (mut nodes, mut primaries, mut replicas): (Vec<NodeSpec>, _, _) = (Vec::new(), None, None);
    if let Some(path) = &args.spec {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read spec `{}`", path.display()))?;
        let file: SpecFile = toml::from_str(&text)
            .with_context(|| format!("failed to parse spec `{}`", path.display()))?;
        for node in file.node {
            let mut spec =
                parse_node(&node.addr).with_context(|| format!("in `{}`", path.display()))?;
            if let Some(zone) = node.zone {
                if spec.zone.is_some() {
                    bail!(
                        "in `{}`: `{}` gives a zone in `addr` and in `zone`",
                        path.display(),
                        node.addr
                    );
                }
                spec.zone = Some(
                    check_zone(&node.addr, &zone)
                        .with_context(|| format!("in `{}`", path.display()))?,
                );
            }
            if let Some(weight) = node.weight {
                if spec.weight.is_some() {
                    bail!(
                        "in `{}`: `{}` gives a weight in `addr` and in `weight`",
                        path.display(),
                        node.addr
                    );
                }
                spec.weight = Some(
                    check_weight(&node.addr, &weight.to_string())
                        .with_context(|| format!("in `{}`", path.display()))?,
                );
            }
            nodes.push(spec);
        }
        primaries = file.primaries;
        replicas = file.replicas;
    }
    if args.spec.is_some() && !args.nodes.is_empty() {
        bail!("give nodes either as arguments or in --spec, not both");
    }
    for text in &args.nodes {
        nodes.push(parse_node(text)?);
    }
    let mut spec = ClusterSpec::new(
        nodes,
        args.primaries.or(primaries),
        args.replicas.or(replicas),
    )?;
    spec.reset_removed = args.reset_removed;
    Ok(spec)
}

/// The evidence files the arguments name (a BOSH job's, and each one given), with notes on
/// what the job's layout lacks.
pub fn evidence_files(args: &EvidenceArgs, notes: &mut Vec<String>) -> EvidenceFiles {
    let mut files = match &args.bosh_job {
        Some(job) => EvidenceFiles::bosh(&args.root, job, notes),
        None => EvidenceFiles {
            root: args.root.clone(),
            ..Default::default()
        },
    };
    files.redis_conf.extend(args.redis_conf.iter().cloned());
    files.nodes_conf.extend(args.nodes_conf.iter().cloned());
    files.logs.extend(args.log.iter().cloned());
    files
        .post_deploy
        .extend(args.post_deploy_log.iter().cloned());
    files
}

/// The spec for nodes that are looked at, not changed: the expected shape when one is given
/// (`true` beside it), else any valid shape; `None` without nodes.
pub fn observed_spec(
    nodes: &[String],
    primaries: Option<usize>,
    replicas: Option<usize>,
) -> anyhow::Result<Option<(ClusterSpec, bool)>> {
    if nodes.is_empty() {
        return Ok(None);
    }
    let nodes = nodes
        .iter()
        .map(|n| parse_node(n))
        .collect::<Result<Vec<_>, _>>()?;
    let expected = primaries.is_some() || replicas.is_some();
    let count = nodes.len();
    let spec = if expected {
        ClusterSpec::new(nodes, primaries, replicas)?
    } else {
        ClusterSpec::new(nodes, Some(count), None)?
    };
    Ok(Some((spec, expected)))
}

pub fn conn_opts(args: &ConnArgs) -> anyhow::Result<ConnOpts> {
    let password = password(args)?;
    let tls = (args.tls || args.cacert.is_some() || args.cert.is_some()).then(|| TlsOpts {
        cacert: args.cacert.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
        insecure: args.insecure,
        skip_hostname_check: args.tls_skip_hostname_check,
    });
    Ok(ConnOpts {
        user: args.user.clone(),
        password,
        tls,
        connect_timeout: Duration::from_millis(args.connect_timeout),
        response_timeout: Duration::from_millis(args.response_timeout),
    })
}

/// The password from `--password-file`, `--askpass` or `REDISCLI_AUTH`, in that order. It is
/// wrapped at once so that no later message can print it.
fn password(args: &ConnArgs) -> anyhow::Result<Option<Secret>> {
    if let Some(path) = &args.password_file {
        return read_password_file(path).map(Some);
    }
    if args.askpass {
        let text = rpassword::prompt_password("password: ")
            .context("failed to read the password from the terminal")?;
        return Ok(Some(Secret::new(text)));
    }
    Ok(std::env::var("REDISCLI_AUTH")
        .ok()
        .filter(|p| !p.is_empty())
        .map(Secret::new))
}

fn read_password_file(path: &Path) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the password file `{}`", path.display()))?;
    let first = text
        .lines()
        .next()
        .unwrap_or_default()
        .trim_end_matches('\r');
    if first.is_empty() {
        bail!("the password file `{}` is empty", path.display());
    }
    Ok(Secret::new(first.to_owned()))
}
