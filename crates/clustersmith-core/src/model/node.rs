use std::fmt;
use std::net::IpAddr;

/// A cluster node id: 40 lowercase hex characters, fixed for the life of `nodes.conf`.
///
/// Held inline (no heap allocation): a view of an N-node cluster holds about 2N ids, and apply
/// holds N views, so at 1000 nodes a heap string per id was a million allocations.
#[derive(Clone, Copy, Eq)]
pub struct NodeId([u8; 40]);

impl std::hash::Hash for NodeId {
    // The first 8 characters only (32 random bits): equal ids hash alike, as `Eq` needs, and
    // the hash of 8 bytes costs a third of 40. Maps keyed by id are probed once per entry of
    // every view, a million times a round at 1000 nodes.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.head());
    }
}

// Ids are compared N² log N times a round (sorted views, sets of ids): a call to memcmp for 40
// bytes dominated planning at 1000 nodes. The first 8 hex characters (32 random bits) decide
// almost every comparison as one integer compare; the order is the same as the strings'.
impl NodeId {
    /// The first 8 characters as a number, in the same order as the ids: a compact sort key.
    pub fn head(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(first)
    }
}

impl PartialEq for NodeId {
    fn eq(&self, other: &NodeId) -> bool {
        self.head() == other.head() && self.0[8..] == other.0[8..]
    }
}

impl Ord for NodeId {
    fn cmp(&self, other: &NodeId) -> std::cmp::Ordering {
        self.head()
            .cmp(&other.head())
            .then_with(|| self.0[8..].cmp(&other.0[8..]))
    }
}

impl PartialOrd for NodeId {
    fn partial_cmp(&self, other: &NodeId) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a node id (40 hex characters)")]
pub struct NodeIdError(pub String);

impl NodeId {
    pub fn parse(text: &str) -> Result<NodeId, NodeIdError> {
        // One pass that checks and lowercases: two ids a line, a million lines at 1000 nodes.
        let fail = || NodeIdError(text.to_owned());
        let given: &[u8; 40] = text.as_bytes().try_into().map_err(|_| fail())?;
        let mut bytes = [0u8; 40];
        let mut valid = true;
        for (slot, b) in bytes.iter_mut().zip(given) {
            valid &= b.is_ascii_hexdigit();
            *slot = b.to_ascii_lowercase();
        }
        if valid {
            Ok(NodeId(bytes))
        } else {
            Err(fail())
        }
    }

    pub fn as_str(&self) -> &str {
        // Only `parse` builds ids, from ASCII hex digits.
        std::str::from_utf8(&self.0).expect("a node id is ASCII")
    }

    /// The first 8 characters, enough to tell nodes apart in a table.
    pub fn short(&self) -> &str {
        &self.as_str()[..8]
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

/// One flag of a `CLUSTER NODES` line that clustersmith knows; other words are kept by the
/// entry as written (see `NodeEntry::flag_words`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
}

impl NodeFlag {
    /// Every known flag, in the order the servers print them.
    pub const ALL: [NodeFlag; 9] = [
        NodeFlag::Myself,
        NodeFlag::Primary,
        NodeFlag::Replica,
        NodeFlag::PossibleFail,
        NodeFlag::Fail,
        NodeFlag::Handshake,
        NodeFlag::NoAddr,
        NodeFlag::NoFailover,
        NodeFlag::NoFlags,
    ];

    /// The flag a word names; `None` for a word clustersmith does not know.
    pub fn parse(word: &str) -> Option<NodeFlag> {
        NodeFlag::ALL.into_iter().find(|flag| flag.as_str() == word)
    }

    pub fn as_str(self) -> &'static str {
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
        }
    }

    /// Flags that mean the entry is not a healthy, fully known member.
    pub fn is_unhealthy(self) -> bool {
        matches!(
            self,
            NodeFlag::PossibleFail | NodeFlag::Fail | NodeFlag::Handshake | NodeFlag::NoAddr
        )
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// The known flags of one entry, as bits: a view of N nodes holds N entries and `apply` holds N
/// views, and a vector of flags per entry was a tenth of `verify`'s heap at 300 nodes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct NodeFlags(u16);

impl NodeFlags {
    pub fn insert(&mut self, flag: NodeFlag) {
        self.0 |= flag.bit();
    }

    pub fn contains(self, flag: NodeFlag) -> bool {
        self.0 & flag.bit() != 0
    }

    /// The flags set, in the order the servers print them.
    pub fn iter(self) -> impl Iterator<Item = NodeFlag> {
        NodeFlag::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

impl fmt::Debug for NodeFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The address field of a `CLUSTER NODES` line: `ip:port@cport` (an announced hostname after it
/// is kept by the entry, see `NodeEntry::hostname`).
///
/// A node that has never been met does not know its own IP, so `ip` is `None` (`:6379@16379`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAddr {
    pub ip: Option<IpAddr>,
    pub port: u16,
    /// The cluster bus port this node listens on (or announces).
    pub bus_port: u16,
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
