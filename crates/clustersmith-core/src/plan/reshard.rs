//! Resharding: which slots move from which primary to which, so that the final primaries own
//! balanced shares (counts differing by at most one) while moving the fewest slots, and
//! every slot of a primary that is drained (leaving the cluster, or becoming a replica)
//! finds a new owner. Also reads the moves a previous run left half-done (open slots), which
//! are finished before anything new is started.
//!
//! Moves name nodes by key, as every plan does; the balancing itself works on ids (its order
//! is the ids' order, so that two runs over the same cluster move the same slots).

use std::collections::BTreeMap;
use std::fmt;

use crate::model::{NodeId, SlotRange, SlotSet};
use crate::parse::OpenSlotKind;
use crate::snapshot::{NodeKey, Snapshot};

/// Slots to move, keys and all, from one primary to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMove {
    pub source: NodeKey,
    pub target: NodeKey,
    pub slots: SlotSet,
    /// A move a previous run began and did not finish (the slot is open on either side).
    pub resumed: bool,
}

/// Slots that `balance` moves from one id to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub source: NodeId,
    pub target: NodeId,
    pub slots: SlotSet,
}

/// How slots move between primaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MoveEngine {
    /// `SETSLOT IMPORTING/MIGRATING`, `GETKEYSINSLOT` + `MIGRATE`, `SETSLOT NODE`, driven by
    /// clustersmith (every Redis, Valkey before 9).
    Classic,
    /// `CLUSTER MIGRATESLOTS` on the source: the servers move the keys and hand the slots
    /// over atomically; clustersmith starts the jobs and follows `CLUSTER GETSLOTMIGRATIONS`.
    Atomic,
}

impl MoveEngine {
    /// Atomic when every node that answered supports it (detected, not configured).
    pub fn for_nodes(snapshot: &Snapshot) -> MoveEngine {
        let mut versions = snapshot.views().map(|(_, v)| v.version());
        if versions.all(|v| v.is_some_and(|v| v.has_atomic_slot_migration())) {
            MoveEngine::Atomic
        } else {
            MoveEngine::Classic
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            MoveEngine::Classic => {
                "SETSLOT IMPORTING/MIGRATING, GETKEYSINSLOT + MIGRATE, SETSLOT NODE, driven by clustersmith"
            }
            MoveEngine::Atomic => {
                "atomic slot migration (CLUSTER MIGRATESLOTS): every node is Valkey 9 or later"
            }
        }
    }
}

/// A primary's share of the slots: `owned` now, and whether it stays a primary.
#[derive(Clone, Debug)]
pub struct Holding {
    pub id: NodeId,
    pub owned: SlotSet,
    /// `None` for a node that must end up owning nothing (leaving, or becoming a replica);
    /// otherwise its weight (1 for an even share).
    pub weight: Option<u32>,
}

/// Slot counts per final primary: proportional to the weights; the slots that do not divide
/// evenly go to the primaries that hold the most now, so that the fewest slots move.
fn target_counts(holdings: &[Holding], total: usize) -> BTreeMap<NodeId, usize> {
    let staying: Vec<&Holding> = holdings.iter().filter(|h| h.weight.is_some()).collect();
    let weight_sum: u64 = staying
        .iter()
        .map(|h| u64::from(h.weight.unwrap_or(0)))
        .sum();
    let mut counts: BTreeMap<NodeId, usize> = BTreeMap::new();
    if weight_sum == 0 {
        return counts;
    }
    let mut given = 0usize;
    for h in &staying {
        let share = total as u64 * u64::from(h.weight.unwrap_or(0)) / weight_sum;
        counts.insert(h.id, share as usize);
        given += share as usize;
    }
    let mut by_holding: Vec<&&Holding> = staying.iter().filter(|h| h.weight != Some(0)).collect();
    by_holding.sort_by_key(|h| (std::cmp::Reverse(h.owned.len()), h.id));
    for h in by_holding.iter().cycle().take(total - given) {
        *counts.get_mut(&h.id).expect("inserted above") += 1;
    }
    counts
}

/// The fewest moves that bring every holding to its target count. Donors give from the high
/// end of what they own, so that what they keep stays one range where it was one; receivers
/// take donors in order (drained nodes first), so that each pair is one move.
pub fn balance(holdings: &[Holding]) -> Vec<Transfer> {
    let total: usize = holdings.iter().map(|h| h.owned.len()).sum();
    let targets = target_counts(holdings, total);
    if targets.is_empty() {
        return Vec::new();
    }
    // (id, slots to give away), drained nodes first.
    let mut donors: Vec<(NodeId, Vec<u16>)> = Vec::new();
    let mut receivers: Vec<(NodeId, usize)> = Vec::new();
    let mut ordered: Vec<&Holding> = holdings.iter().collect();
    ordered.sort_by_key(|h| (h.weight.is_some(), h.id));
    for h in ordered {
        let target = targets.get(&h.id).copied().unwrap_or(0);
        let have = h.owned.len();
        if have > target {
            let slots: Vec<u16> = h.owned.iter().collect();
            let mut give = slots[target..].to_vec();
            give.reverse();
            donors.push((h.id, give));
        } else if have < target {
            receivers.push((h.id, target - have));
        }
    }
    let mut moves: BTreeMap<(NodeId, NodeId), SlotSet> = BTreeMap::new();
    let mut donor = 0usize;
    for (receiver, mut wanted) in receivers {
        while wanted > 0 && donor < donors.len() {
            let (source, give) = &mut donors[donor];
            let take = wanted.min(give.len());
            let set = moves.entry((*source, receiver)).or_default();
            for slot in give.drain(give.len() - take..) {
                set.insert(slot);
            }
            wanted -= take;
            if give.is_empty() {
                donor += 1;
            }
        }
    }
    moves
        .into_iter()
        .map(|((source, target), slots)| Transfer {
            source,
            target,
            slots,
        })
        .collect()
}

/// Where the slots of one primary go when nothing else may move (an evacuation): the receivers
/// (each with the number of slots it owns now) are filled from the least loaded up, so that
/// their counts end as even as they can without a slot moving between them. Each receiver
/// takes one run of consecutive slots, in id order, so that each pair is one move.
pub fn spread(source: NodeId, slots: &SlotSet, receivers: &[(NodeId, usize)]) -> Vec<Transfer> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let mut quota: BTreeMap<NodeId, usize> = BTreeMap::new();
    let mut least: BinaryHeap<Reverse<(usize, NodeId)>> = receivers
        .iter()
        .map(|(id, owned)| Reverse((*owned, *id)))
        .collect();
    for _ in 0..slots.len() {
        let Some(Reverse((owned, id))) = least.pop() else {
            return Vec::new();
        };
        *quota.entry(id).or_default() += 1;
        least.push(Reverse((owned + 1, id)));
    }
    let mut given = slots.iter();
    quota
        .into_iter()
        .map(|(target, count)| Transfer {
            source,
            target,
            slots: {
                let mut set = SlotSet::new();
                for slot in given.by_ref().take(count) {
                    set.insert(slot);
                }
                set
            },
        })
        .collect()
}

/// Moves a previous run left open: a slot `MIGRATING` on its owner or `IMPORTING` on its
/// target. Either side alone is enough to know the pair; the move is always finished toward
/// the target (rolling forward never needs a key deleted, and keys may already be on both).
pub fn open_moves(snapshot: &Snapshot) -> Vec<SlotMove> {
    let mut pairs: BTreeMap<(NodeId, NodeId), SlotSet> = BTreeMap::new();
    for (_, view) in snapshot.views() {
        for open in view.myself().open_slots() {
            let pair = match open.kind {
                OpenSlotKind::Migrating => (view.id, open.peer),
                OpenSlotKind::Importing => (open.peer, view.id),
            };
            pairs.entry(pair).or_default().insert(open.slot);
        }
    }
    pairs
        .into_iter()
        .map(|((source, target), slots)| SlotMove {
            source: snapshot.key_for(&source),
            target: snapshot.key_for(&target),
            slots,
            resumed: true,
        })
        .collect()
}

impl fmt::Display for SlotMove {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges: Vec<String> = self
            .slots
            .ranges()
            .iter()
            .map(SlotRange::to_string)
            .collect();
        write!(
            f,
            "{} slot{} {} from {} to {}",
            self.slots.len(),
            if self.slots.len() == 1 { "" } else { "s" },
            ranges.join(","),
            self.source,
            self.target
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SLOT_COUNT;

    fn id(n: u32) -> NodeId {
        NodeId::parse(&format!("{n:040x}")).unwrap()
    }

    fn holding(n: u32, ranges: &[(u16, u16)], weight: Option<u32>) -> Holding {
        let ranges: Vec<SlotRange> = ranges
            .iter()
            .map(|(a, b)| SlotRange::new(*a, *b).unwrap())
            .collect();
        Holding {
            id: id(n),
            owned: SlotSet::from_ranges(&ranges),
            weight,
        }
    }

    /// Applies the moves and returns the final count per node.
    fn after(holdings: &[Holding], moves: &[Transfer]) -> BTreeMap<NodeId, SlotSet> {
        let mut owned: BTreeMap<NodeId, SlotSet> =
            holdings.iter().map(|h| (h.id, h.owned.clone())).collect();
        for m in moves {
            let source = owned.get_mut(&m.source).unwrap();
            assert_eq!(
                source.intersection(&m.slots),
                m.slots,
                "moves only what it owns"
            );
            *source = source.difference(&m.slots);
            owned.get_mut(&m.target).unwrap().union_with(&m.slots);
        }
        owned
    }

    fn three() -> Vec<Holding> {
        // redis-cli's and clustersmith's split of 16384 over 3.
        vec![
            holding(1, &[(0, 5460)], Some(1)),
            holding(2, &[(5461, 10922)], Some(1)),
            holding(3, &[(10923, 16383)], Some(1)),
        ]
    }

    #[test]
    fn adding_a_fourth_primary_moves_a_quarter_and_no_more() {
        let mut holdings = three();
        holdings.push(holding(4, &[], Some(1)));
        let moves = balance(&holdings);
        let moved: usize = moves.iter().map(|m| m.slots.len()).sum();
        assert_eq!(moved, 4096);
        assert_eq!(moves.len(), 3, "one move per source: {moves:?}");
        assert!(moves.iter().all(|m| m.target == id(4)));
        let owned = after(&holdings, &moves);
        let counts: Vec<usize> = owned.values().map(SlotSet::len).collect();
        assert_eq!(counts, [4096, 4096, 4096, 4096]);
        // Each source keeps one range, at its start.
        assert_eq!(owned[&id(1)].ranges(), [SlotRange::new(0, 4095).unwrap()]);
    }

    #[test]
    fn draining_a_primary_moves_exactly_its_slots() {
        let mut holdings = three();
        holdings.push(holding(4, &[], Some(1)));
        let grown = after(&holdings, &balance(&holdings));
        let holdings: Vec<Holding> = grown
            .iter()
            .map(|(node, owned)| Holding {
                id: *node,
                owned: owned.clone(),
                weight: (*node != id(2)).then_some(1),
            })
            .collect();
        let moves = balance(&holdings);
        assert!(moves.iter().all(|m| m.source == id(2)), "{moves:?}");
        let moved: usize = moves.iter().map(|m| m.slots.len()).sum();
        assert_eq!(moved, 4096);
        let owned = after(&holdings, &moves);
        assert!(owned[&id(2)].is_empty());
        let mut counts: Vec<usize> = owned
            .values()
            .map(SlotSet::len)
            .filter(|n| *n > 0)
            .collect();
        counts.sort_unstable();
        assert_eq!(counts, [5461, 5461, 5462]);
    }

    #[test]
    fn a_balanced_cluster_needs_no_move() {
        assert!(balance(&three()).is_empty());
    }

    #[test]
    fn weights_set_the_shares() {
        let mut holdings = three();
        holdings[0].weight = Some(2);
        let owned = after(&holdings, &balance(&holdings));
        assert_eq!(owned[&id(1)].len(), 8192);
        assert_eq!(owned[&id(2)].len() + owned[&id(3)].len(), 8192);
    }

    #[test]
    fn spreading_fills_the_least_loaded_first_and_moves_nothing_else() {
        let slots = SlotSet::from_ranges(&[SlotRange::new(10923, 16383).unwrap()]);
        // One receiver holds 1000 more than the other: it gets 1000 fewer, and both end
        // within one (the odd slot to the lower id).
        let moves = spread(id(3), &slots, &[(id(1), 6461), (id(2), 5461)]);
        assert!(moves.iter().all(|m| m.source == id(3)));
        let by_target: BTreeMap<NodeId, usize> =
            moves.iter().map(|m| (m.target, m.slots.len())).collect();
        assert_eq!(by_target[&id(1)], 2231);
        assert_eq!(by_target[&id(2)], 3230);
        // One run each, together exactly the slots given.
        assert!(moves.iter().all(|m| m.slots.ranges().len() == 1));
        let mut all = SlotSet::new();
        for m in &moves {
            all.union_with(&m.slots);
        }
        assert_eq!(all, slots);
        assert!(spread(id(3), &slots, &[]).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn counts_end_at_each_weights_share_and_every_slot_keeps_an_owner(
            sizes in proptest::collection::vec(0usize..3000, 1..8),
            // `None`: the node leaves; a weight of 0 stays a primary without slots.
            weights in proptest::collection::vec(proptest::option::of(0u32..5), 8),
        ) {
            // Contiguous holdings of the given sizes from slot 0 on.
            let mut start = 0usize;
            let mut holdings = Vec::new();
            for (i, size) in sizes.iter().enumerate() {
                let end = (start + size).min(SLOT_COUNT as usize);
                let ranges: Vec<(u16, u16)> = if end > start {
                    vec![(start as u16, (end - 1) as u16)]
                } else {
                    vec![]
                };
                holdings.push(holding(i as u32 + 1, &ranges, weights[i]));
                start = end;
            }
            let weight_sum: usize = holdings.iter().filter_map(|h| h.weight).sum::<u32>() as usize;
            proptest::prop_assume!(weight_sum > 0);
            let total: usize = holdings.iter().map(|h| h.owned.len()).sum();
            let moves = balance(&holdings);
            let owned = after(&holdings, &moves);
            let sum: usize = owned.values().map(SlotSet::len).sum();
            proptest::prop_assert_eq!(sum, total);
            // Each staying node ends at its weight's share, rounded down, or one more (the
            // slots that do not divide go one each).
            for h in &holdings {
                let share = h.weight.map_or(0, |w| total * w as usize / weight_sum);
                let got = owned[&h.id].len();
                proptest::prop_assert!(
                    got == share || (got == share + 1 && h.weight.is_some_and(|w| w > 0)),
                    "{:?} (weight {:?}) owns {got}, its share is {share}",
                    h.id,
                    h.weight
                );
            }
            // No slot moves that did not have to: a node never both gives and receives, and
            // the slots moved are exactly the surplus.
            let surplus: usize = holdings
                .iter()
                .map(|h| h.owned.len().saturating_sub(owned[&h.id].len()))
                .sum();
            let moved: usize = moves.iter().map(|m| m.slots.len()).sum();
            proptest::prop_assert_eq!(moved, surplus);
        }
    }
}
