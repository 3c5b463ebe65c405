use std::fmt;
use std::net::IpAddr;

use crate::model::{NodeId, SlotSet};
use crate::snapshot::NodeKey;

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

/// One command to one node, named by its key.
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
    SetConfigEpoch { node: NodeKey, epoch: u64 },
    /// `CLUSTER ADDSLOTSRANGE` (7.0+, `ranged`) or `CLUSTER ADDSLOTS` (6.2): before MEET, so
    /// owners are known at first contact. The planner chooses from the node's version, so that
    /// `plan` prints the command the node will receive.
    AddSlots {
        node: NodeKey,
        slots: SlotSet,
        ranged: bool,
    },
    /// `CLUSTER MEET ip port bus-port` on `node`, always with an IP literal and the real bus port.
    Meet {
        node: NodeKey,
        peer: NodeKey,
        ip: IpAddr,
        port: u16,
        bus_port: u16,
        purpose: MeetPurpose,
    },
    /// `CLUSTER FORGET <id>` of a departed member (see `departed`): sent to every node that
    /// lists it in one round, inside the 60 s during which a forgotten id is not re-learnt
    /// from gossip; only once it owns no slot and no replica follows it.
    Forget {
        node: NodeKey,
        id: NodeId,
        /// A member leaving the cluster (`--remove-unlisted`), not a departed one.
        leaving: bool,
    },
    /// `CLUSTER SETSLOT <slot> STABLE`: only on a node importing a slot whose owner it does
    /// not see (see `formation::plan_unstick_imports`).
    StableSlot { node: NodeKey, slot: u16 },
    /// `CLUSTER RESET HARD` on a member removed from the cluster (`--reset-removed`): only
    /// once no spec node lists it any more and it owns no slot. HARD, not SOFT: the node takes
    /// a new id (and config epoch 0), so a run that adds it back right away does not meet the
    /// 60 s during which every peer refuses the id it was told to forget.
    ResetRemoved { node: NodeKey },
    /// `CLUSTER REPLICATE`: only planned once the replica lists its primary.
    Replicate {
        node: NodeKey,
        primary: NodeKey,
        primary_id: NodeId,
    },
}

impl Step {
    /// The node the command is sent to.
    pub fn node(&self) -> &NodeKey {
        match self {
            Step::SetConfigEpoch { node, .. }
            | Step::AddSlots { node, .. }
            | Step::Meet { node, .. }
            | Step::Forget { node, .. }
            | Step::StableSlot { node, .. }
            | Step::ResetRemoved { node }
            | Step::Replicate { node, .. } => node,
        }
    }

    /// The other node the step is about, when there is one: the peer met, the primary
    /// replicated. Worth reading again after the step, as the node it is sent to is.
    pub fn counterpart(&self) -> Option<&NodeKey> {
        match self {
            Step::Meet { peer, .. } => Some(peer),
            Step::Replicate { primary, .. } => Some(primary),
            _ => None,
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
            | Step::StableSlot { .. }
            | Step::ResetRemoved { .. } => 0,
            Step::Meet { .. } | Step::Replicate { .. } => 1,
        }
    }

    /// The command the node receives, word by word (`CLUSTER …`): what the shell sends and
    /// what `describe` prints come from here.
    pub fn command(&self) -> Vec<String> {
        let mut words = vec!["CLUSTER".to_owned()];
        let mut push = |w: &dyn ToString| words.push(w.to_string());
        match self {
            Step::SetConfigEpoch { epoch, .. } => {
                push(&"SET-CONFIG-EPOCH");
                push(epoch);
            }
            // ADDSLOTSRANGE is one short command per range; 6.2 only has ADDSLOTS, which takes
            // every slot as an argument (atomic either way: all slots are checked first).
            Step::AddSlots {
                slots,
                ranged: true,
                ..
            } => {
                push(&"ADDSLOTSRANGE");
                for range in slots.ranges() {
                    push(&range.start);
                    push(&range.end);
                }
            }
            Step::AddSlots {
                slots,
                ranged: false,
                ..
            } => {
                push(&"ADDSLOTS");
                for slot in slots.iter() {
                    push(&slot);
                }
            }
            Step::Meet {
                ip, port, bus_port, ..
            } => {
                push(&"MEET");
                push(ip);
                push(port);
                push(bus_port);
            }
            Step::Forget { id, .. } => {
                push(&"FORGET");
                push(id);
            }
            Step::StableSlot { slot, .. } => {
                push(&"SETSLOT");
                push(slot);
                push(&"STABLE");
            }
            Step::ResetRemoved { .. } => {
                push(&"RESET");
                push(&"HARD");
            }
            Step::Replicate { primary_id, .. } => {
                push(&"REPLICATE");
                push(primary_id);
            }
        }
        words
    }

    /// What the step does, in the words of an error message ("failed to <operation> on …").
    pub fn operation(&self) -> &'static str {
        match self {
            Step::SetConfigEpoch { .. } => "set the config epoch",
            Step::AddSlots { .. } => "add slots",
            Step::Meet { .. } => "meet a peer",
            Step::Forget { leaving: false, .. } => "forget a departed member",
            Step::Forget { leaving: true, .. } => "forget a member leaving the cluster",
            Step::StableSlot { .. } => "close a stuck import",
            Step::ResetRemoved { .. } => "reset a removed member",
            Step::Replicate { .. } => "replicate",
        }
    }

    /// What an `ERR Unknown node` reply means for this step: for FORGET, that the node has
    /// forgotten it already (or never knew it), so the step is done; for every other step,
    /// that gossip has not caught up with the plan yet, so the next round tries again.
    pub fn unknown_node_means_done(&self) -> bool {
        matches!(self, Step::Forget { .. })
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
            Step::ResetRemoved { .. } => "reset-removed",
            Step::Replicate { .. } => "replicate",
        }
    }

    /// A one-line description, with the node it is sent to.
    pub fn describe(&self) -> String {
        let command = match self {
            // Every slot is an argument: summarised, not printed one by one.
            Step::AddSlots {
                slots,
                ranged: false,
                ..
            } => format!(
                "CLUSTER ADDSLOTS <{} slots, one argument each: {slots}>",
                slots.len()
            ),
            _ => self.command().join(" "),
        };
        let why = match self {
            Step::AddSlots {
                slots,
                ranged: true,
                ..
            } => format!(" ({} slots)", slots.len()),
            Step::Meet { peer, purpose, .. } => {
                let why = match purpose {
                    MeetPurpose::Introduce => "introduce",
                    MeetPurpose::Refresh => "refresh its view of this node",
                    MeetPurpose::Readdress => "teach it the current address of",
                };
                format!("   ({why}: {peer})")
            }
            Step::Forget { leaving: false, .. } => {
                "   (a departed member: its address answers with a new id)".to_owned()
            }
            Step::Forget { leaving: true, .. } => {
                "   (a member not in the spec, which owns no slot)".to_owned()
            }
            Step::StableSlot { .. } => "   (importing it without seeing its owner)".to_owned(),
            Step::ResetRemoved { .. } => {
                "   (removed from the cluster and forgotten by every node of the spec)".to_owned()
            }
            Step::Replicate { primary, .. } => format!("   (primary {primary})"),
            Step::SetConfigEpoch { .. } | Step::AddSlots { .. } => String::new(),
        };
        format!("{}: {command}{why}", self.node())
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
