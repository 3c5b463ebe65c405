use std::fmt;
use std::net::IpAddr;

/// A cluster node id: 40 lowercase hex characters, fixed for the life of `nodes.conf`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a node id (40 hex characters)")]
pub struct NodeIdError(pub String);

impl NodeId {
    pub fn parse(text: &str) -> Result<NodeId, NodeIdError> {
        if text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(NodeId(text.to_ascii_lowercase()))
        } else {
            Err(NodeIdError(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 characters, enough to tell nodes apart in a table.
    pub fn short(&self) -> &str {
        &self.0[..8]
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

/// One flag of a `CLUSTER NODES` line. Unknown flags are kept, not dropped.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NodeFlag {
    Myself,
    /// `master`: Redis still writes this word on every version, Valkey too.
    Primary,
    /// `slave`.
    Replica,
    /// `fail?`: this node suspects the peer is down.
    PossibleFail,
    /// `fail`: the cluster agreed the peer is down.
    Fail,
    /// `handshake`: first contact not finished; the id shown is a placeholder.
    Handshake,
    /// `noaddr`: the address of this peer is unknown.
    NoAddr,
    NoFailover,
    /// `noflags`.
    NoFlags,
    Other(String),
}

impl NodeFlag {
    pub fn parse(word: &str) -> NodeFlag {
        match word {
            "myself" => NodeFlag::Myself,
            "master" => NodeFlag::Primary,
            "slave" => NodeFlag::Replica,
            "fail?" => NodeFlag::PossibleFail,
            "fail" => NodeFlag::Fail,
            "handshake" => NodeFlag::Handshake,
            "noaddr" => NodeFlag::NoAddr,
            "nofailover" => NodeFlag::NoFailover,
            "noflags" => NodeFlag::NoFlags,
            other => NodeFlag::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            NodeFlag::Myself => "myself",
            NodeFlag::Primary => "master",
            NodeFlag::Replica => "slave",
            NodeFlag::PossibleFail => "fail?",
            NodeFlag::Fail => "fail",
            NodeFlag::Handshake => "handshake",
            NodeFlag::NoAddr => "noaddr",
            NodeFlag::NoFailover => "nofailover",
            NodeFlag::NoFlags => "noflags",
            NodeFlag::Other(word) => word,
        }
    }

    /// Flags that mean the entry is not a healthy, fully known member.
    pub fn is_unhealthy(&self) -> bool {
        matches!(
            self,
            NodeFlag::PossibleFail | NodeFlag::Fail | NodeFlag::Handshake | NodeFlag::NoAddr
        )
    }
}

/// The address field of a `CLUSTER NODES` line: `ip:port@cport[,hostname]`.
///
/// A node that has never been met does not know its own IP, so `ip` is `None` (`:6379@16379`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddr {
    pub ip: Option<IpAddr>,
    pub port: u16,
    /// The cluster bus port this node listens on (or announces).
    pub bus_port: u16,
    /// Announced hostname (Redis 7.0+ `cluster-announce-hostname`).
    pub hostname: Option<String>,
}

impl fmt::Display for NodeAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            Some(ip) => write!(f, "{ip}:{}", self.port),
            None => write!(f, ":{}", self.port),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    Connected,
    Disconnected,
}
