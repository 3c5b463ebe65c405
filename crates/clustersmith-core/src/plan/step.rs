use std::fmt;
use std::net::IpAddr;

use crate::model::{NodeId, SlotSet};

/// Why a `CLUSTER MEET` is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeetPurpose {
    /// The two nodes do not know each other yet.
    Introduce,
    /// The peer knows this node but holds a stale picture of it (role, primary or slots). A
    /// MEET to a node that already knows the sender makes it take in the sender's full header
    /// at once, instead of waiting for the timer-driven ping (up to `cluster-node-timeout/2`).
    Refresh,
    /// This node lists the peer at an old address (the peer came back with a new IP): a MEET
    /// to the new address is answered under the known id, and the address is updated.
    Readdress,
}

/// One command to one node. Indices are inventory positions.
///
/// # Guarantees
/// Every step is safe to repeat: `MEET` of a known or handshaking address is a no-op,
/// `ADDSLOTS` of a slot this node already owns is reported as done, `REPLICATE` of the current
/// primary changes nothing, and `SET-CONFIG-EPOCH` is only planned for a node that knows nobody.
///
/// # Assumptions
/// The plan was computed from an observation taken after the previous round's steps ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// `CLUSTER SET-CONFIG-EPOCH`: distinct epochs before the first MEET, so that no collision
    /// has to be resolved by the server one bump at a time.
    SetConfigEpoch { node: usize, epoch: u64 },
    /// `CLUSTER ADDSLOTSRANGE` (7.0+, `ranged`) or `CLUSTER ADDSLOTS` (6.2): before MEET, so
    /// owners are known at first contact. The planner chooses from the node's version, so that
    /// `plan` prints the command the node will receive.
    AddSlots {
        node: usize,
        slots: SlotSet,
        ranged: bool,
    },
    /// `CLUSTER MEET ip port bus-port` on `node`, always with an IP literal and the real bus port.
    Meet {
        node: usize,
        peer: usize,
        ip: IpAddr,
        port: u16,
        bus_port: u16,
        purpose: MeetPurpose,
    },
    /// `CLUSTER FORGET <id>` of a departed member (see `departed`): sent to every node that
    /// lists it in one round, inside the 60 s during which a forgotten id is not re-learnt
    /// from gossip; only once it owns no slot and no replica follows it.
    Forget {
        node: usize,
        id: NodeId,
        /// A member leaving the cluster (`--remove-unlisted`), not a departed one.
        leaving: bool,
    },
    /// `CLUSTER SETSLOT <slot> STABLE`: only on a node importing a slot whose owner it does
    /// not see (see `formation::plan_unstick_imports`).
    StableSlot { node: usize, slot: u16 },
    /// `CLUSTER REPLICATE`: only planned once the replica lists its primary.
    Replicate {
        node: usize,
        primary: usize,
        primary_id: NodeId,
    },
}

impl Step {
    /// The node the command is sent to.
    pub fn node(&self) -> usize {
        match self {
            Step::SetConfigEpoch { node, .. }
            | Step::AddSlots { node, .. }
            | Step::Meet { node, .. }
            | Step::Forget { node, .. }
            | Step::StableSlot { node, .. }
            | Step::Replicate { node, .. } => *node,
        }
    }

    /// Steps of phase 0 (epochs, slots) all run before any step of phase 1 (meet, replicate).
    pub fn phase(&self) -> u8 {
        match self {
            // Forgetting first: a node that met the newcomer before forgetting the old id
            // would gossip the old id to it.
            Step::SetConfigEpoch { .. }
            | Step::AddSlots { .. }
            | Step::Forget { .. }
            | Step::StableSlot { .. } => 0,
            Step::Meet { .. } | Step::Replicate { .. } => 1,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Step::SetConfigEpoch { .. } => "set-config-epoch",
            Step::AddSlots { .. } => "add-slots",
            Step::Meet {
                purpose: MeetPurpose::Introduce,
                ..
            } => "meet",
            Step::Meet {
                purpose: MeetPurpose::Refresh,
                ..
            } => "refresh",
            Step::Meet {
                purpose: MeetPurpose::Readdress,
                ..
            } => "readdress",
            Step::Forget { .. } => "forget",
            Step::StableSlot { .. } => "stable-slot",
            Step::Replicate { .. } => "replicate",
        }
    }

    /// A one-line description; `labels` maps inventory positions to node labels.
    pub fn describe(&self, labels: &[String]) -> String {
        let label = |idx: usize| labels.get(idx).map_or("?", String::as_str);
        match self {
            Step::SetConfigEpoch { node, epoch } => {
                format!("{}: CLUSTER SET-CONFIG-EPOCH {epoch}", label(*node))
            }
            Step::AddSlots {
                node,
                slots,
                ranged,
            } => {
                if *ranged {
                    let args: Vec<String> = slots
                        .ranges()
                        .iter()
                        .map(|r| format!("{} {}", r.start, r.end))
                        .collect();
                    format!(
                        "{}: CLUSTER ADDSLOTSRANGE {} ({} slots)",
                        label(*node),
                        args.join(" "),
                        slots.len()
                    )
                } else {
                    // Every slot is an argument: summarised, not printed one by one.
                    format!(
                        "{}: CLUSTER ADDSLOTS <{} slots, one argument each: {slots}>",
                        label(*node),
                        slots.len()
                    )
                }
            }
            Step::Meet {
                node,
                peer,
                ip,
                port,
                bus_port,
                purpose,
            } => {
                let why = match purpose {
                    MeetPurpose::Introduce => "introduce",
                    MeetPurpose::Refresh => "refresh its view of this node",
                    MeetPurpose::Readdress => "teach it the current address of",
                };
                format!(
                    "{}: CLUSTER MEET {ip} {port} {bus_port}   ({why}: {})",
                    label(*node),
                    label(*peer)
                )
            }
            Step::Forget {
                node,
                id,
                leaving: false,
            } => format!(
                "{}: CLUSTER FORGET {id}   (a departed member: its address answers with a new id)",
                label(*node)
            ),
            Step::Forget {
                node,
                id,
                leaving: true,
            } => format!(
                "{}: CLUSTER FORGET {id}   (a member not in the spec, which owns no slot)",
                label(*node)
            ),
            Step::StableSlot { node, slot } => format!(
                "{}: CLUSTER SETSLOT {slot} STABLE   (importing it without seeing its owner)",
                label(*node)
            ),
            Step::Replicate {
                node,
                primary,
                primary_id,
            } => format!(
                "{}: CLUSTER REPLICATE {primary_id}   (primary {})",
                label(*node),
                label(*primary)
            ),
        }
    }
}

impl fmt::Display for MeetPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MeetPurpose::Introduce => "introduce",
            MeetPurpose::Refresh => "refresh",
            MeetPurpose::Readdress => "readdress",
        })
    }
}
