//! The desired cluster as the operator states it: nodes, shape and zones.
//!
//! A spec names nodes as `HOST:PORT`, where HOST is a hostname, an IPv4 address or a bracketed
//! IPv6 address, optionally followed by `,zone=NAME`. Exactly the shape must be stated: the
//! number of primaries, the replicas per primary, or both; anything that cannot be split evenly
//! is refused here, before any name is resolved or any node is touched.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

/// The host part of a node address as given.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
        }
    }
}

/// One node of the spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub host: Host,
    pub port: u16,
    pub zone: Option<String>,
    /// The node's share of the slots, should it be a primary, relative to the others (`1`
    /// when not given): `weight=2` on a bigger machine.
    pub weight: Option<u32>,
}

impl NodeSpec {
    /// `host:port` as the operator wrote it (normalised), used to name the node everywhere.
    pub fn label(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A validated spec: `nodes.len() == primaries * (1 + replicas_per_primary)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSpec {
    pub nodes: Vec<NodeSpec>,
    pub primaries: usize,
    pub replicas_per_primary: usize,
    /// Members removed from the cluster are reset once forgotten (`CLUSTER RESET HARD`): they
    /// forget the cluster and take a new id, and one that had become a replica stops
    /// replicating and drops its copy. Off unless asked for (`--reset-removed`).
    pub reset_removed: bool,
}

/// The highest client port whose cluster bus port (+10000) still fits in 16 bits.
pub const MAX_NODE_PORT: u16 = u16::MAX - 10000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("no nodes given")]
    NoNodes,
    #[error("`{0}` is not HOST:PORT (write IPv6 addresses as `[::1]:6379`)")]
    BadAddress(String),
    #[error(
        "`{text}`: port must be between 1 and {MAX_NODE_PORT} so that the bus port (+10000) exists"
    )]
    PortOutOfRange { text: String },
    #[error("`{text}`: unknown option `{option}` (`zone=NAME` and `weight=N` are known)")]
    UnknownOption { text: String, option: String },
    #[error("`{text}`: the weight must be a whole number from 1 to 1000, given once")]
    BadWeight { text: String },
    #[error("`{text}`: the zone is given twice")]
    ZoneTwice { text: String },
    #[error("`{text}`: the zone is empty")]
    EmptyZone { text: String },
    #[error("node `{0}` is listed twice")]
    Duplicate(String),
    #[error("state the shape with the number of primaries or the replicas per primary")]
    NoShape,
    #[error("a cluster needs at least one primary")]
    ZeroPrimaries,
    #[error(
        "{} asked for, but only {} given",
        crate::plural(*.primaries as u64, "primary", "primaries"),
        crate::plural(*.nodes as u64, "node", "nodes")
    )]
    MorePrimariesThanNodes { primaries: usize, nodes: usize },
    #[error(
        "{} cannot be split into {} with the same number of replicas each",
        crate::plural(*.nodes as u64, "node", "nodes"),
        crate::plural(*.primaries as u64, "primary", "primaries")
    )]
    UnevenSplit { nodes: usize, primaries: usize },
    #[error(
        "{} cannot be split into groups of 1 primary + {}",
        crate::plural(*.nodes as u64, "node", "nodes"),
        crate::plural(*.replicas as u64, "replica", "replicas")
    )]
    UnevenReplicas { nodes: usize, replicas: usize },
    #[error(
        "{} with {} each need {needed} nodes, but {} given",
        crate::plural(*.primaries as u64, "primary", "primaries"),
        crate::plural(*.replicas as u64, "replica", "replicas"),
        if *.nodes == 1 { "1 is".to_owned() } else { format!("{} are", .nodes) }
    )]
    ShapeMismatch {
        primaries: usize,
        replicas: usize,
        needed: usize,
        nodes: usize,
    },
    #[error("zones are given for some nodes but not for `{0}`: give a zone for every node or none")]
    PartialZones(String),
}

/// Parses one `HOST:PORT[,zone=NAME]` node argument.
pub fn parse_node(text: &str) -> Result<NodeSpec, SpecError> {
    let mut parts = text.split(',');
    let addr = parts.next().unwrap_or_default().trim();
    let mut zone = None;
    let mut weight = None;
    for option in parts {
        match option.trim().split_once('=') {
            Some(("weight", value)) => {
                if weight.is_some() {
                    return Err(SpecError::BadWeight {
                        text: text.to_owned(),
                    });
                }
                weight = Some(check_weight(text, value)?);
            }
            Some(("zone", _)) if zone.is_some() => {
                return Err(SpecError::ZoneTwice {
                    text: text.to_owned(),
                });
            }
            Some(("zone", value)) => zone = Some(check_zone(text, value)?),
            _ => {
                return Err(SpecError::UnknownOption {
                    text: text.to_owned(),
                    option: option.to_owned(),
                });
            }
        }
    }
    let (host, port) =
        split_host_port(addr).ok_or_else(|| SpecError::BadAddress(text.to_owned()))?;
    // Digits only, no leading zero: `+22300` and `022300` parse as numbers but are not how
    // anyone writes a port, and a typo there must not silently name another one.
    if port.is_empty()
        || !port.bytes().all(|b| b.is_ascii_digit())
        || port.starts_with('0') && port != "0"
    {
        return Err(SpecError::BadAddress(text.to_owned()));
    }
    let port: u32 = port
        .parse()
        .map_err(|_| SpecError::BadAddress(text.to_owned()))?;
    if port == 0 || port > u32::from(MAX_NODE_PORT) {
        return Err(SpecError::PortOutOfRange {
            text: text.to_owned(),
        });
    }
    Ok(NodeSpec {
        host,
        port: port as u16,
        zone,
        weight,
    })
}

/// A weight as given after `weight=` (CLI) or in a spec file's `weight` field: 1 to 1000.
pub fn check_weight(text: &str, weight: &str) -> Result<u32, SpecError> {
    let bad = || SpecError::BadWeight {
        text: text.to_owned(),
    };
    if weight.is_empty() || !weight.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match weight.parse::<u32>() {
        Ok(w) if (1..=1000).contains(&w) => Ok(w),
        _ => Err(bad()),
    }
}

/// A zone name as given after `zone=` (CLI) or in a spec file's `zone` field.
pub fn check_zone(text: &str, zone: &str) -> Result<String, SpecError> {
    if zone.trim().is_empty() {
        return Err(SpecError::EmptyZone {
            text: text.to_owned(),
        });
    }
    Ok(zone.to_owned())
}

fn split_host_port(addr: &str) -> Option<(Host, &str)> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:")?;
        // `[::ffff:127.0.0.1]` is the IPv4 node `127.0.0.1`: the same server answers both,
        // so both spellings must name one node (and be caught as a duplicate).
        let ip = IpAddr::V6(ip.parse().ok()?).to_canonical();
        return Some((Host::Ip(ip), port));
    }
    let (host, port) = addr.rsplit_once(':')?;
    // An unbracketed IPv6 address would be ambiguous (`::1:6379`), so it is refused.
    if host.is_empty() || host.contains(':') {
        return None;
    }
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) if is_hostname(host) => Host::Name(host.to_ascii_lowercase()),
        Err(_) => return None,
    };
    Some((host, port))
}

fn is_hostname(text: &str) -> bool {
    text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl ClusterSpec {
    /// Validates nodes and shape. `primaries` and `replicas` may each be absent, not both.
    pub fn new(
        nodes: Vec<NodeSpec>,
        primaries: Option<usize>,
        replicas: Option<usize>,
    ) -> Result<ClusterSpec, SpecError> {
        if nodes.is_empty() {
            return Err(SpecError::NoNodes);
        }
        let mut seen = BTreeSet::new();
        for node in &nodes {
            if !seen.insert((node.host.clone(), node.port)) {
                return Err(SpecError::Duplicate(node.label()));
            }
        }
        if nodes.iter().any(|n| n.zone.is_some())
            && let Some(missing) = nodes.iter().find(|n| n.zone.is_none())
        {
            return Err(SpecError::PartialZones(missing.label()));
        }
        let n = nodes.len();
        let (primaries, replicas) = match (primaries, replicas) {
            (None, None) => return Err(SpecError::NoShape),
            (Some(0), _) => return Err(SpecError::ZeroPrimaries),
            (Some(m), _) if m > n => {
                return Err(SpecError::MorePrimariesThanNodes {
                    primaries: m,
                    nodes: n,
                });
            }
            (Some(m), None) => {
                if !(n - m).is_multiple_of(m) {
                    return Err(SpecError::UnevenSplit {
                        nodes: n,
                        primaries: m,
                    });
                }
                (m, (n - m) / m)
            }
            (None, Some(r)) => {
                if !n.is_multiple_of(r + 1) {
                    return Err(SpecError::UnevenReplicas {
                        nodes: n,
                        replicas: r,
                    });
                }
                (n / (r + 1), r)
            }
            (Some(m), Some(r)) => {
                let needed = m * (r + 1);
                if needed != n {
                    return Err(SpecError::ShapeMismatch {
                        primaries: m,
                        replicas: r,
                        needed,
                        nodes: n,
                    });
                }
                (m, r)
            }
        };
        Ok(ClusterSpec {
            nodes,
            primaries,
            replicas_per_primary: replicas,
            reset_removed: false,
        })
    }

    pub fn has_zones(&self) -> bool {
        self.nodes.iter().any(|n| n.zone.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(texts: &[&str]) -> Vec<NodeSpec> {
        texts.iter().map(|t| parse_node(t).unwrap()).collect()
    }

    #[test]
    fn parses_names_ipv4_ipv6_and_zones() {
        let node = parse_node("Redis-1.Node.bosh:6379,zone=z1").unwrap();
        assert_eq!(node.host, Host::Name("redis-1.node.bosh".into()));
        assert_eq!(node.zone.as_deref(), Some("z1"));
        assert_eq!(parse_node("[::1]:7000").unwrap().label(), "[::1]:7000");
        assert_eq!(
            parse_node("10.0.0.1:6379").unwrap().label(),
            "10.0.0.1:6379"
        );
    }

    #[test]
    fn weights_are_whole_numbers_from_1_to_1000_given_once() {
        let node = parse_node("10.0.0.1:6379,zone=z1,weight=3").unwrap();
        assert_eq!((node.weight, node.zone.as_deref()), (Some(3), Some("z1")));
        assert_eq!(parse_node("10.0.0.1:6379").unwrap().weight, None);
        for text in [
            "h:1,weight=0",
            "h:1,weight=1001",
            "h:1,weight=",
            "h:1,weight=1.5",
            "h:1,weight=+2",
            "h:1,weight=2,weight=2",
        ] {
            assert_eq!(
                parse_node(text),
                Err(SpecError::BadWeight { text: text.into() }),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_bad_addresses() {
        for text in ["::1:6379", "host", "host:", ":6379", "ho st:1", "h:70000"] {
            assert!(parse_node(text).is_err(), "{text}");
        }
        assert_eq!(
            parse_node("h:0"),
            Err(SpecError::PortOutOfRange { text: "h:0".into() })
        );
        assert!(matches!(
            parse_node("h:55536"),
            Err(SpecError::PortOutOfRange { .. })
        ));
        assert!(matches!(
            parse_node("h:1,rack=2"),
            Err(SpecError::UnknownOption { .. })
        ));
        for text in ["h:022300", "h:+22300", "h:-1", "h: 1", "h:1_0"] {
            assert_eq!(
                parse_node(text),
                Err(SpecError::BadAddress(text.into())),
                "{text}"
            );
        }
        assert!(matches!(
            parse_node("h:1,zone=a,zone=b"),
            Err(SpecError::ZoneTwice { .. })
        ));
        assert!(matches!(
            parse_node("h:1,zone="),
            Err(SpecError::EmptyZone { .. })
        ));
    }

    #[test]
    fn ipv4_mapped_addresses_name_the_ipv4_node() {
        let mapped = parse_node("[::ffff:127.0.0.1]:22300").unwrap();
        assert_eq!(mapped.label(), "127.0.0.1:22300");
        let plain = parse_node("127.0.0.1:22300").unwrap();
        assert_eq!(
            ClusterSpec::new(vec![plain, mapped], Some(1), None),
            Err(SpecError::Duplicate("127.0.0.1:22300".into()))
        );
    }

    #[test]
    fn shapes_from_the_seed_are_accepted() {
        let two = nodes(&["a:1", "b:1"]);
        let spec = ClusterSpec::new(two.clone(), Some(1), None).unwrap();
        assert_eq!((spec.primaries, spec.replicas_per_primary), (1, 1));
        let four = nodes(&["a:1", "b:1", "c:1", "d:1"]);
        let spec = ClusterSpec::new(four, None, Some(1)).unwrap();
        assert_eq!((spec.primaries, spec.replicas_per_primary), (2, 1));
        let spec = ClusterSpec::new(two, Some(2), Some(0)).unwrap();
        assert_eq!(spec.replicas_per_primary, 0);
    }

    #[test]
    fn impossible_shapes_are_refused() {
        let five = nodes(&["a:1", "b:1", "c:1", "d:1", "e:1"]);
        assert_eq!(
            ClusterSpec::new(five.clone(), Some(2), None),
            Err(SpecError::UnevenSplit {
                nodes: 5,
                primaries: 2
            })
        );
        assert!(matches!(
            ClusterSpec::new(five.clone(), Some(6), None),
            Err(SpecError::MorePrimariesThanNodes { .. })
        ));
        assert!(matches!(
            ClusterSpec::new(five.clone(), None, Some(1)),
            Err(SpecError::UnevenReplicas { .. })
        ));
        assert!(matches!(
            ClusterSpec::new(five.clone(), Some(1), Some(1)),
            Err(SpecError::ShapeMismatch { .. })
        ));
        assert_eq!(ClusterSpec::new(five, None, None), Err(SpecError::NoShape));
        let dup = nodes(&["a:1", "a:1"]);
        assert_eq!(
            ClusterSpec::new(dup, Some(1), None),
            Err(SpecError::Duplicate("a:1".into()))
        );
        let partial = nodes(&["a:1,zone=z1", "b:1"]);
        assert!(matches!(
            ClusterSpec::new(partial, Some(1), None),
            Err(SpecError::PartialZones(_))
        ));
    }
}
