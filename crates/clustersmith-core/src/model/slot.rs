use std::fmt;

use smallvec::{SmallVec, smallvec};

/// Number of hash slots in a Redis Cluster.
pub const SLOT_COUNT: u16 = 16384;

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

/// A set of hash slots, kept as sorted, disjoint, non-adjacent ranges: a primary's slots are
/// one or a few ranges, and a view of N nodes holds N sets, so a bitmap per set (2 KiB) would
/// make a 100-node observation weigh 20 MB. Up to two ranges are held inline, without a heap
/// allocation per set. The canonical form makes `==` and `Hash` exact.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct SlotSet {
    ranges: SmallVec<[SlotRange; 2]>,
}

impl SlotSet {
    pub fn new() -> SlotSet {
        SlotSet::default()
    }

    pub fn full() -> SlotSet {
        SlotSet {
            ranges: smallvec![SlotRange {
                start: 0,
                end: SLOT_COUNT - 1,
            }],
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
        self.insert_range(SlotRange {
            start: slot,
            end: slot,
        });
    }

    pub fn insert_range(&mut self, range: SlotRange) {
        let range = SlotRange {
            start: range.start.min(range.end),
            end: range.end.max(range.start).min(SLOT_COUNT - 1),
        };
        match self.ranges.last_mut() {
            // Input in ascending order (the usual case) appends in O(1).
            None => self.ranges.push(range),
            Some(last) if range.start > last.end.saturating_add(1) => self.ranges.push(range),
            Some(last) if range.start >= last.start => last.end = last.end.max(range.end),
            Some(_) => {
                self.ranges.push(range);
                self.normalize();
            }
        }
    }

    /// Sorts and merges overlapping or adjacent ranges.
    fn normalize(&mut self) {
        self.ranges.sort_by_key(|r| r.start);
        let mut out: SmallVec<[SlotRange; 2]> = SmallVec::with_capacity(self.ranges.len());
        for range in self.ranges.drain(..) {
            match out.last_mut() {
                Some(last) if range.start <= last.end.saturating_add(1) => {
                    last.end = last.end.max(range.end);
                }
                _ => out.push(range),
            }
        }
        self.ranges = out;
    }

    pub fn contains(&self, slot: u16) -> bool {
        let idx = self.ranges.partition_point(|r| r.end < slot);
        self.ranges.get(idx).is_some_and(|r| r.start <= slot)
    }

    pub fn len(&self) -> usize {
        self.ranges
            .iter()
            .map(|r| usize::from(r.end - r.start) + 1)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn is_full(&self) -> bool {
        *self == SlotSet::full()
    }

    pub fn union_with(&mut self, other: &SlotSet) {
        self.ranges.extend(other.ranges.iter().copied());
        self.normalize();
    }

    pub fn intersection(&self, other: &SlotSet) -> SlotSet {
        let (mut i, mut j) = (0, 0);
        let mut out = SlotSet::new();
        while i < self.ranges.len() && j < other.ranges.len() {
            let (a, b) = (self.ranges[i], other.ranges[j]);
            let start = a.start.max(b.start);
            let end = a.end.min(b.end);
            if start <= end {
                out.ranges.push(SlotRange { start, end });
            }
            if a.end < b.end {
                i += 1;
            } else {
                j += 1;
            }
        }
        out
    }

    pub fn difference(&self, other: &SlotSet) -> SlotSet {
        self.intersection(&other.complement())
    }

    pub fn complement(&self) -> SlotSet {
        let mut out = SlotSet::new();
        let mut next: u32 = 0;
        for r in &self.ranges {
            if u32::from(r.start) > next {
                out.ranges.push(SlotRange {
                    start: next as u16,
                    end: r.start - 1,
                });
            }
            next = u32::from(r.end) + 1;
        }
        if next < u32::from(SLOT_COUNT) {
            out.ranges.push(SlotRange {
                start: next as u16,
                end: SLOT_COUNT - 1,
            });
        }
        out
    }

    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.ranges.iter().flat_map(|r| r.start..=r.end)
    }

    /// The set as maximal contiguous ranges, in ascending order.
    pub fn ranges(&self) -> &[SlotRange] {
        &self.ranges
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

/// The hash slot of a key, as the servers compute it: CRC16 (XMODEM) of the key, or of the
/// part between the first `{` and the next `}` when that part is not empty, modulo 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|b| *b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let len = rest.iter().position(|b| *b == b'}')?;
            (len > 0).then(|| &rest[..len])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for byte in hashed {
        crc ^= u16::from(*byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc % SLOT_COUNT
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn key_slots_match_the_servers() {
        // CLUSTER KEYSLOT on Redis 7.0.15.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b"{user1000}.following"), 3443);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // An empty tag hashes the whole key.
        assert_eq!(key_slot(b"a{}b"), 13694);
    }

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
            let again = SlotSet::from_ranges(set.ranges());
            prop_assert_eq!(again, set);
        }

        /// The range representation behaves exactly like a plain set of slots.
        #[test]
        fn set_operations_match_a_plain_set(
            a in proptest::collection::vec((0u16..SLOT_COUNT, 0u16..300), 0..12),
            b in proptest::collection::vec((0u16..SLOT_COUNT, 0u16..300), 0..12),
            probe in 0u16..SLOT_COUNT,
        ) {
            use std::collections::BTreeSet;
            let build = |spec: &[(u16, u16)]| {
                let mut set = SlotSet::new();
                let mut model = BTreeSet::new();
                for (start, len) in spec {
                    let end = start.saturating_add(*len).min(SLOT_COUNT - 1);
                    set.insert_range(SlotRange { start: *start, end });
                    model.extend(*start..=end);
                }
                (set, model)
            };
            let ((sa, ma), (sb, mb)) = (build(&a), build(&b));
            let plain = |set: &SlotSet| set.iter().collect::<BTreeSet<u16>>();
            prop_assert_eq!(plain(&sa), ma.clone());
            prop_assert_eq!(sa.len(), ma.len());
            prop_assert_eq!(sa.contains(probe), ma.contains(&probe));
            prop_assert_eq!(plain(&sa.intersection(&sb)), ma.intersection(&mb).copied().collect());
            prop_assert_eq!(plain(&sa.difference(&sb)), ma.difference(&mb).copied().collect());
            prop_assert_eq!(sa.complement().len(), usize::from(SLOT_COUNT) - ma.len());
            let mut union = sa.clone();
            union.union_with(&sb);
            prop_assert_eq!(plain(&union), ma.union(&mb).copied().collect());
            // Canonical form: equal contents, equal values.
            prop_assert_eq!(SlotSet::from_ranges(union.ranges()), union);
        }
    }
}
