use std::fmt;

/// Which server answers: Redis, or Valkey (which still reports a `redis_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerFlavour {
    Redis,
    Valkey,
}

/// The server flavour and its own version number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerVersion {
    pub flavour: ServerFlavour,
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ServerVersion {
    /// Parses `7.0.15`; `None` for anything that is not three dot-separated numbers.
    pub fn parse(flavour: ServerFlavour, text: &str) -> Option<ServerVersion> {
        let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
        let (major, minor, patch) = (parts.next()??, parts.next()??, parts.next()??);
        Some(ServerVersion {
            flavour,
            major,
            minor,
            patch,
        })
    }

    /// Atomic slot migration (`CLUSTER MIGRATESLOTS`, `GETSLOTMIGRATIONS`,
    /// `CANCELSLOTMIGRATIONS`): Valkey 9.0 and later, where the servers move the slots and
    /// their keys themselves and hand ownership over in one step.
    pub fn has_atomic_slot_migration(&self) -> bool {
        self.flavour == ServerFlavour::Valkey && self.major >= 9
    }

    /// Whether a replica running `self` cannot follow a primary running `primary`: it is
    /// older in the line RDB formats follow, where Redis up to 7.2 and Valkey share it (Valkey
    /// forked at 7.2) and Redis 7.4 and later left it. Across the fork only a Valkey replica
    /// of Redis 7.4 or later breaks for certain.
    pub fn cannot_follow(&self, primary: &ServerVersion) -> bool {
        let lineage = |v: &ServerVersion| {
            let forked = v.flavour == ServerFlavour::Redis && (v.major, v.minor) >= (7, 4);
            (v.major, v.minor, forked)
        };
        let (mine, theirs) = (lineage(self), lineage(primary));
        if mine.2 != theirs.2 {
            theirs.2 && !mine.2
        } else {
            (mine.0, mine.1) < (theirs.0, theirs.1)
        }
    }

    /// An address announced for clients apart from the bus's (`cluster-announce-client-ipv4`
    /// and `-ipv6`): Valkey 8.0 and later, which shows clients that address in CLUSTER NODES
    /// and CLUSTER SLOTS.
    pub fn has_client_addresses(&self) -> bool {
        self.flavour == ServerFlavour::Valkey && self.major >= 8
    }

    /// `CLUSTER ADDSLOTSRANGE` exists from Redis 7.0, and in every Valkey.
    pub fn has_addslotsrange(&self) -> bool {
        self.flavour == ServerFlavour::Valkey || self.major >= 7
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.flavour {
            ServerFlavour::Redis => "redis",
            ServerFlavour::Valkey => "valkey",
        };
        write!(f, "{name} {}.{}.{}", self.major, self.minor, self.patch)
    }
}
