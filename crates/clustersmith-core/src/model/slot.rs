use std::fmt;

/// Number of hash slots in a Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

const WORDS: usize = SLOT_COUNT as usize / 64;

/// An inclusive range of hash slots, as `CLUSTER NODES` and `ADDSLOTSRANGE` write them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SlotRange {
    pub start: u16,
    pub end: u16,
}

impl SlotRange {
    /// A range; `None` when it is reversed or reaches past slot 16383.
    pub fn new(start: u16, end: u16) -> Option<SlotRange> {
        (start <= end && end < SLOT_COUNT).then_some(SlotRange { start, end })
    }

    pub fn len(&self) -> usize {
        usize::from(self.end - self.start) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// Splits `0..=16383` into `n` contiguous ranges whose sizes differ by at most one; the
    /// larger ranges come first.
    pub fn balanced(n: usize) -> Vec<SlotRange> {
        assert!(
            n > 0 && n <= usize::from(SLOT_COUNT),
            "between 1 and 16384 ranges"
        );
        let total = usize::from(SLOT_COUNT);
        let (base, extra) = (total / n, total % n);
        let mut start = 0usize;
        (0..n)
            .map(|idx| {
                let len = base + usize::from(idx < extra);
                let range = SlotRange {
                    start: start as u16,
                    end: (start + len - 1) as u16,
                };
                start += len;
                range
            })
            .collect()
    }
}

impl fmt::Display for SlotRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// A set of hash slots (a 16384-bit bitmap).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SlotSet {
    words: Box<[u64; WORDS]>,
}

impl Default for SlotSet {
    fn default() -> Self {
        SlotSet {
            words: Box::new([0; WORDS]),
        }
    }
}

impl SlotSet {
    pub fn new() -> SlotSet {
        SlotSet::default()
    }

    pub fn full() -> SlotSet {
        SlotSet {
            words: Box::new([u64::MAX; WORDS]),
        }
    }

    pub fn from_ranges<'a>(ranges: impl IntoIterator<Item = &'a SlotRange>) -> SlotSet {
        let mut set = SlotSet::new();
        for range in ranges {
            set.insert_range(*range);
        }
        set
    }

    pub fn insert(&mut self, slot: u16) {
        let slot = usize::from(slot);
        self.words[slot / 64] |= 1 << (slot % 64);
    }

    pub fn insert_range(&mut self, range: SlotRange) {
        for slot in range.start..=range.end {
            self.insert(slot);
        }
    }

    pub fn contains(&self, slot: u16) -> bool {
        let slot = usize::from(slot);
        slot < usize::from(SLOT_COUNT) && self.words[slot / 64] & (1 << (slot % 64)) != 0
    }

    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    pub fn is_full(&self) -> bool {
        self.words.iter().all(|w| *w == u64::MAX)
    }

    pub fn union_with(&mut self, other: &SlotSet) {
        for (a, b) in self.words.iter_mut().zip(other.words.iter()) {
            *a |= b;
        }
    }

    pub fn intersection(&self, other: &SlotSet) -> SlotSet {
        let mut out = self.clone();
        for (a, b) in out.words.iter_mut().zip(other.words.iter()) {
            *a &= b;
        }
        out
    }

    pub fn difference(&self, other: &SlotSet) -> SlotSet {
        let mut out = self.clone();
        for (a, b) in out.words.iter_mut().zip(other.words.iter()) {
            *a &= !b;
        }
        out
    }

    pub fn complement(&self) -> SlotSet {
        SlotSet::full().difference(self)
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        (0..SLOT_COUNT).filter(|slot| self.contains(*slot))
    }

    /// The set as maximal contiguous ranges, in ascending order.
    pub fn ranges(&self) -> Vec<SlotRange> {
        let mut out: Vec<SlotRange> = Vec::new();
        for slot in self.iter() {
            match out.last_mut() {
                Some(last) if last.end + 1 == slot => last.end = slot,
                _ => out.push(SlotRange {
                    start: slot,
                    end: slot,
                }),
            }
        }
        out
    }
}

impl fmt::Display for SlotSet {
    /// Compact range list, e.g. `0-5460,5462`; `-` when empty.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges = self.ranges();
        if ranges.is_empty() {
            return f.write_str("-");
        }
        for (idx, range) in ranges.iter().enumerate() {
            if idx > 0 {
                f.write_str(",")?;
            }
            write!(f, "{range}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlotSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn balanced_matches_redis_cli_sizes_for_three() {
        let ranges = SlotRange::balanced(3);
        let shown: Vec<String> = ranges.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["0-5461", "5462-10922", "10923-16383"]);
    }

    #[test]
    fn ranges_are_maximal() {
        let mut set = SlotSet::new();
        set.insert_range(SlotRange::new(0, 10).unwrap());
        set.insert_range(SlotRange::new(11, 20).unwrap());
        set.insert(30);
        assert_eq!(set.to_string(), "0-20,30");
        assert_eq!(set.len(), 22);
    }

    proptest! {
        #[test]
        fn balanced_covers_exactly_once_and_differs_by_at_most_one(n in 1usize..=600) {
            let ranges = SlotRange::balanced(n);
            prop_assert_eq!(ranges.len(), n);
            let mut seen = SlotSet::new();
            let mut total = 0;
            for range in &ranges {
                prop_assert!(seen.intersection(&SlotSet::from_ranges([range])).is_empty());
                seen.insert_range(*range);
                total += range.len();
            }
            prop_assert!(seen.is_full());
            prop_assert_eq!(total, usize::from(SLOT_COUNT));
            let max = ranges.iter().map(SlotRange::len).max().unwrap();
            let min = ranges.iter().map(SlotRange::len).min().unwrap();
            prop_assert!(max - min <= 1);
        }

        #[test]
        fn ranges_round_trip(slots in proptest::collection::vec(0u16..SLOT_COUNT, 0..200)) {
            let mut set = SlotSet::new();
            for slot in &slots { set.insert(*slot); }
            let again = SlotSet::from_ranges(&set.ranges());
            prop_assert_eq!(again, set);
        }
    }
}
