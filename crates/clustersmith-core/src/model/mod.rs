//! Cluster vocabulary: node ids, flags, addresses, slots.

mod node;
mod slot;
mod version;

pub use node::{LinkState, NodeAddr, NodeFlag, NodeFlags, NodeId, NodeIdError};
pub use slot::{SLOT_COUNT, SlotRange, SlotSet, key_slot};
pub use version::{ServerFlavour, ServerVersion};
