use std::fmt;

use crate::model::{NodeId, SlotRange};

/// Something in the live state that `apply` must not or cannot change. Any blocker stops the
/// run before a single command is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// Two spec entries reach one server (the same node id answers at both), e.g. a name and
    /// an IP, or an address behind a port forward: planning would give it two roles.
    SameNode { a: String, b: String, id: NodeId },
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
