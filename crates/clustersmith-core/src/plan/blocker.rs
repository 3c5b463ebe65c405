use std::fmt;

use crate::model::{NodeId, SlotRange};

/// Something in the live state that `apply` must not or cannot change. Any blocker stops the
/// run before a single command is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// Two spec entries reach one server (the same node id answers at both), e.g. a name and
    /// an IP, or an address behind a port forward: planning would give it two roles.
    SameNode { a: String, b: String, id: NodeId },
    /// An expected address answers with a new id while its old id still owns slots (or is
    /// still followed by a replica): no replica has taken over, and forgetting the old id
    /// would drop its slots.
    ReplacedNodeOwnsSlots {
        node: String,
        new_id: NodeId,
        old_id: NodeId,
        flags: String,
        slots: Vec<SlotRange>,
        replicas: Vec<String>,
    },
    /// A replica that holds keys would be attached to a primary that owns slots but holds no
    /// key: the full resync would make it discard its data for an empty dataset.
    ReplicaOntoEmptyPrimary {
        replica: String,
        keys: u64,
        primary: String,
    },
    /// The node lists members that are not in the spec: it belongs to another cluster.
    ForeignNodes { node: String, foreign: Vec<NodeId> },
    /// The node holds keys and is not yet a member of this cluster.
    HoldsKeys { node: String, keys: u64 },
    /// Two nodes each claim the same slots.
    SlotConflict {
        node: String,
        other: String,
        slots: Vec<SlotRange>,
    },
    /// More nodes own slots than the spec has primaries.
    TooManySlotOwners {
        owners: Vec<String>,
        primaries: usize,
    },
    /// A planned primary would own no slot without moving slots away from others.
    PrimaryWithoutSlots { node: String },
    /// A planned primary is currently a replica; promoting it needs a failover.
    PrimaryIsReplica { node: String },
    /// A slot is being migrated or imported.
    OpenSlots { node: String, slots: Vec<u16> },
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Blocker::SameNode { a, b, id } => write!(
                f,
                "`{a}` and `{b}` are the same node (both answer as {id}): list each server once"
            ),
            Blocker::ReplacedNodeOwnsSlots {
                node,
                new_id,
                old_id,
                flags,
                slots,
                replicas,
            } => {
                let shown: Vec<String> = slots.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "`{node}` came back with a new id {} (an empty node: lost disk or nodes.conf?), but its peers still give its old id {} ({flags}) slots {}",
                    new_id.short(),
                    old_id.short(),
                    shown.join(",")
                )?;
                if replicas.is_empty() {
                    write!(f, " and no replica of it is left to take over")?;
                } else {
                    write!(
                        f,
                        "; its replica {} has not taken over (a replica that resynced from the new empty node at the old address has lost its copy of the data)",
                        replicas.join(", ")
                    )?;
                }
                write!(
                    f,
                    ". If a replica still holds the data, promote it (`CLUSTER FAILOVER TAKEOVER` on it) and run apply again, which then forgets the old id and adds `{node}` as a replica; otherwise restore those slots' data from a backup first"
                )
            }
            Blocker::ReplicaOntoEmptyPrimary {
                replica,
                keys,
                primary,
            } => write!(
                f,
                "refusing to attach `{replica}` ({}) to `{primary}`, which owns slots but holds no key: the full resync would make `{replica}` discard its data. If `{primary}` lost its data, promote `{replica}` instead (`CLUSTER FAILOVER` on it); if `{primary}`'s slots are meant to be empty, flush `{replica}` yourself first",
                crate::plural(*keys, "key", "keys")
            ),
            Blocker::ForeignNodes { node, foreign } => {
                let ids: Vec<&str> = foreign.iter().map(NodeId::as_str).collect();
                write!(
                    f,
                    "`{node}` knows nodes outside the spec ({}): it belongs to another cluster",
                    ids.join(", ")
                )
            }
            Blocker::HoldsKeys { node, keys } => write!(
                f,
                "`{node}` holds {} and is not a member of this cluster; clustersmith never flushes data",
                crate::plural(*keys, "key", "keys")
            ),
            Blocker::SlotConflict { node, other, slots } => {
                let shown: Vec<String> = slots.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "`{node}` and `{other}` both claim slots {}",
                    shown.join(",")
                )
            }
            Blocker::TooManySlotOwners { owners, primaries } => write!(
                f,
                "{} own slots ({}) but the spec has {}; reducing primaries needs resharding",
                crate::plural(owners.len() as u64, "node", "nodes"),
                owners.join(", "),
                crate::plural(*primaries as u64, "primary", "primaries")
            ),
            Blocker::PrimaryWithoutSlots { node } => write!(
                f,
                "primary `{node}` would own no slots: the others already own all of them, and moving slots needs resharding"
            ),
            Blocker::PrimaryIsReplica { node } => write!(
                f,
                "`{node}` must become a primary but is a replica; promoting it needs a failover"
            ),
            Blocker::OpenSlots { node, slots } => {
                let shown: Vec<String> = slots.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "`{node}` has open (migrating/importing) slots {}: finish or abort the migration first",
                    shown.join(",")
                )
            }
        }
    }
}
