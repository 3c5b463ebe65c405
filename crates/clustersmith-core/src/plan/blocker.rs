use std::fmt;

use crate::model::{NodeId, SlotRange};
use crate::snapshot::NodeKey;

/// Something in the live state that `apply` must not or cannot change. Any blocker stops the
/// run before a single command is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// Two spec entries reach one server (the same node id answers at both), e.g. a name and
    /// an IP, or an address behind a port forward: planning would give it two roles.
    SameNode { a: NodeKey, b: NodeKey, id: NodeId },
    /// An expected address answers with a new id while its old id still owns slots (or is
    /// still followed by a replica): no replica has taken over, and forgetting the old id
    /// would drop its slots.
    ReplacedNodeOwnsSlots {
        node: NodeKey,
        new_id: NodeId,
        old_id: NodeId,
        flags: String,
        slots: Vec<SlotRange>,
        replicas: Vec<String>,
    },
    /// A replica that holds keys would be attached to a primary that owns slots but holds no
    /// key: the full resync would make it discard its data for an empty dataset.
    ReplicaOntoEmptyPrimary {
        replica: NodeKey,
        keys: u64,
        primary: NodeKey,
    },
    /// The node lists members that are not in the spec: it belongs to another cluster, or
    /// they are members to remove (`--remove-unlisted`).
    ForeignNodes {
        node: NodeKey,
        foreign: Vec<NodeId>,
        /// Each of them as the node lists it: address, role, slots.
        described: Vec<String>,
        /// Every observed spec node lists all of them: members of this cluster that the spec
        /// leaves out, not another cluster's.
        members: bool,
    },
    /// The node holds keys and is not yet a member of this cluster.
    HoldsKeys { node: NodeKey, keys: u64 },
    /// Two nodes each claim the same slots.
    SlotConflict {
        node: NodeKey,
        other: NodeKey,
        slots: Vec<SlotRange>,
    },
    /// A leaving member owns slots but does not answer: its slots can only move with it.
    LeavingUnreachable {
        node: NodeKey,
        slots: Vec<SlotRange>,
    },
    /// A leaving primary owns no slot but still holds keys (in slots it no longer owns).
    LeavingHoldsKeys { node: NodeKey, keys: u64 },
    /// An operation refuses to go on, for a reason a diagnosis rule describes (`clustersmith
    /// explain <rule>`): a primary with no replica healthy enough to take over, a node that
    /// does not answer.
    Refused {
        rule: &'static str,
        node: NodeKey,
        reason: String,
    },
    /// A planned primary is currently a replica; promoting it needs a failover. `left_over`
    /// says what it still follows when it is a member removed earlier without
    /// `--reset-removed` (none of the slot owners lists it).
    PrimaryIsReplica {
        node: NodeKey,
        left_over: Option<String>,
    },
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
            Blocker::ForeignNodes {
                node,
                described,
                members: true,
                ..
            } => write!(
                f,
                "the cluster of `{node}` has members the spec does not list: {}. To remove them, pass --remove-unlisted (their slots move, keys and all, to the spec's primaries before they are forgotten); to keep them, add them to the spec",
                described.join("; ")
            ),
            Blocker::ForeignNodes {
                node,
                described,
                members: false,
                ..
            } => write!(
                f,
                "`{node}` knows nodes outside the spec that its peers do not: {}. It belongs to, or was met by, another cluster (if they are members of this one to remove, --remove-unlisted moves their slots away and forgets them)",
                described.join("; ")
            ),
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
            Blocker::LeavingUnreachable { node, slots } => {
                let shown: Vec<String> = slots.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "`{node}` is to leave the cluster but does not answer while it owns slots {}: its keys can only move from it; bring it back first",
                    shown.join(",")
                )
            }
            Blocker::LeavingHoldsKeys { node, keys } => write!(
                f,
                "`{node}` is to leave the cluster and owns no slot but still holds {}; clustersmith never forgets a node holding keys",
                crate::plural(*keys, "key", "keys")
            ),
            Blocker::Refused { rule, node, reason } => {
                write!(
                    f,
                    "`{node}`: {reason} ({rule}: `clustersmith explain {rule}`)"
                )
            }
            Blocker::PrimaryIsReplica {
                node,
                left_over: None,
            } => write!(
                f,
                "`{node}` must become a primary but is a replica; promoting it needs a failover"
            ),
            Blocker::PrimaryIsReplica {
                node,
                left_over: Some(what),
            } => write!(
                f,
                "`{node}` must become a primary, but it {what}: it was removed from this cluster without being reset and kept its replica role and a copy of the data. Pass --reset-removed to reset it first (CLUSTER RESET HARD: it drops that copy and its old id, and joins as a new node), or reset it by hand"
            ),
        }
    }
}
