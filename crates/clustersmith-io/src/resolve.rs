//! Spec names to IP addresses.
//!
//! `CLUSTER MEET` accepts IP literals only ("ERR Invalid node address specified" otherwise, on
//! every version), so every hostname is resolved through the system resolver (`getaddrinfo`,
//! which honours `/etc/hosts` and BOSH DNS) on every run, before any node is touched.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use clustersmith_core::snapshot::{NodeKey, NodeRecord};
use clustersmith_core::spec::{ClusterSpec, Host};

use crate::conn::Endpoint;

#[derive(Clone, Debug)]
pub struct Resolved {
    /// One record per spec node, keyed by its address as written, not read yet.
    pub records: Vec<NodeRecord>,
    pub endpoints: Vec<Endpoint>,
    /// One line per name that resolved to several addresses, saying which one was taken.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    #[error("failed to resolve `{host}`: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("`{a}` and `{b}` are the same node ({addr})")]
    SameNode { a: String, b: String, addr: String },
}

pub async fn resolve(
    spec: &ClusterSpec,
    prefer_ipv6: bool,
    timeout: Duration,
) -> Result<Resolved, ResolveError> {
    let mut cache: BTreeMap<String, IpAddr> = BTreeMap::new();
    let mut notes = Vec::new();
    let mut records: Vec<NodeRecord> = Vec::new();
    let mut endpoints = Vec::new();
    for node in &spec.nodes {
        let (ip, hostname) = match &node.host {
            Host::Ip(ip) => (*ip, None),
            Host::Name(name) => {
                let ip = match cache.get(name) {
                    Some(ip) => *ip,
                    None => {
                        let (ip, note) = lookup(name, node.port, prefer_ipv6, timeout).await?;
                        notes.extend(note);
                        cache.insert(name.clone(), ip);
                        ip
                    }
                };
                (ip, Some(name.clone()))
            }
        };
        let label = node.label();
        if let Some(other) = records.iter().find(|n| n.ip == ip && n.port == node.port) {
            return Err(ResolveError::SameNode {
                a: other.label().to_owned(),
                b: label,
                addr: format!("{ip}:{}", node.port),
            });
        }
        records.push(NodeRecord::spec(
            NodeKey::named(&label),
            ip,
            node.port,
            node.zone.clone(),
            node.weight.unwrap_or(1),
        ));
        endpoints.push(Endpoint {
            label,
            hostname,
            ip,
            port: node.port,
        });
    }
    Ok(Resolved {
        records,
        endpoints,
        notes,
    })
}

pub(crate) async fn lookup(
    name: &str,
    port: u16,
    prefer_ipv6: bool,
    timeout: Duration,
) -> Result<(IpAddr, Option<String>), ResolveError> {
    let unresolvable = |reason: String| ResolveError::Unresolvable {
        host: name.to_owned(),
        reason,
    };
    let found = tokio::time::timeout(timeout, tokio::net::lookup_host((name, port)))
        .await
        .map_err(|_| unresolvable(format!("no answer within {timeout:?}")))?
        .map_err(|e| unresolvable(e.to_string()))?;
    // An IPv4-mapped answer is the IPv4 address (one server, one node).
    let mut ips: Vec<IpAddr> = found.map(|sa| sa.ip().to_canonical()).collect();
    ips.sort();
    ips.dedup();
    let chosen = pick(&ips, prefer_ipv6).ok_or_else(|| unresolvable("no addresses".to_owned()))?;
    let note = (ips.len() > 1).then(|| {
        let all: Vec<String> = ips.iter().map(ToString::to_string).collect();
        format!("`{name}` resolves to {}; using {chosen}", all.join(", "))
    });
    Ok((chosen, note))
}

/// The lowest address of the preferred family, else the lowest of the other: deterministic
/// whatever order the resolver answers in.
fn pick(sorted: &[IpAddr], prefer_ipv6: bool) -> Option<IpAddr> {
    sorted
        .iter()
        .find(|ip| ip.is_ipv6() == prefer_ipv6)
        .or_else(|| sorted.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pick_is_deterministic_and_honours_the_family() {
        let ips: Vec<IpAddr> = vec![
            "10.0.0.2".parse().unwrap(),
            "10.0.0.9".parse().unwrap(),
            "::1".parse().unwrap(),
        ];
        assert_eq!(pick(&ips, false), Some("10.0.0.2".parse().unwrap()));
        assert_eq!(pick(&ips, true), Some("::1".parse().unwrap()));
        assert_eq!(pick(&ips[..2], true), Some("10.0.0.2".parse().unwrap()));
    }
}
