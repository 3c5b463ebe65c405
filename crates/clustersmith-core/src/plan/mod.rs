//! Planning: from the spec and one observation to a target layout and the next steps.
//!
//! The plan is derived from the live state every round, so `apply` is a reconcile loop, not a
//! script: whatever is already done yields no step, and a formed cluster yields an empty plan.

mod acceptance;
mod blocker;
mod formation;
mod layout;
mod leaving;
mod reshard;
mod step;

pub use acceptance::{Acceptance, Gate, ban_text};
pub use blocker::Blocker;
pub use formation::{Plan, plan};
pub use layout::{Layout, PlannedRole, Shard};
pub use leaving::{Unlisted, unlisted_members};
pub use reshard::{Holding, MoveEngine, SlotMove, Transfer, balance, open_moves, spread};
pub use step::{MeetPurpose, Step};

#[cfg(test)]
mod tests;
