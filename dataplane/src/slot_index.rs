//! A hash index from keys to slab slots that is sized once and never grows, rehashes or allocates: open
//! addressing with linear probing over at least a third more buckets than it may hold (a load of at most
//! 3/4, where linear probing's runs stay short), and deletion by
//! backward shift (Knuth, TAOCP vol. 3, 6.4, algorithm R), which leaves no tombstones behind. A general
//! hash table (hashbrown's, say) marks deleted buckets and, once churn has used up its headroom, rehashes
//! or reallocates on the next insert: on a worker that is a stall, or an allocation, in the packet path.
//!
//! The index stores the slot and 32 bits of its key's hash; the caller owns the keys (in its slab) and
//! compares them. Lookups probe a short run of adjacent buckets, one cache line for most.

/// A bucket's slot when the bucket is free.
const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    slot: u32,
    hash: u32,
}

const FREE: Bucket = Bucket {
    slot: EMPTY,
    hash: 0,
};

/// An index of up to `limit` slots by the hash of their keys.
#[derive(Debug)]
pub struct SlotIndex {
    buckets: Vec<Bucket>,
    mask: usize,
    len: usize,
    limit: usize,
}

impl SlotIndex {
    /// An index for at most `limit` entries (below 2^31), all its memory allocated now.
    pub fn with_limit(limit: usize) -> SlotIndex {
        assert!(
            limit < 1 << 31,
            "a slot index holds fewer than 2^31 entries"
        );
        let buckets = (limit.max(8) + limit.max(8) / 3 + 1).next_power_of_two();
        SlotIndex {
            buckets: vec![FREE; buckets],
            mask: buckets - 1,
            len: 0,
            limit,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Buckets, for memory accounting.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Bytes of one bucket.
    pub const BUCKET_BYTES: usize = std::mem::size_of::<Bucket>();

    #[inline]
    fn home(&self, hash: u32) -> usize {
        hash as usize & self.mask
    }

    /// The slot whose key has `hash` and satisfies `is_key`.
    #[inline]
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let hash = hash as u32;
        let mut i = self.home(hash);
        loop {
            let b = self.buckets[i];
            if b.slot == EMPTY {
                return None;
            }
            if b.hash == hash && is_key(b.slot) {
                return Some(b.slot);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Adds `slot` under `hash`; the caller has checked that its key is not present. `false` (and nothing
    /// added) when the index already holds its limit.
    pub fn insert(&mut self, hash: u64, slot: u32) -> bool {
        if self.len >= self.limit || slot == EMPTY {
            return false;
        }
        let hash = hash as u32;
        let mut i = self.home(hash);
        while self.buckets[i].slot != EMPTY {
            i = (i + 1) & self.mask;
        }
        self.buckets[i] = Bucket { slot, hash };
        self.len += 1;
        true
    }

    /// Removes `slot`, filed under `hash`; `false` if it is not there.
    pub fn remove(&mut self, hash: u64, slot: u32) -> bool {
        let hash = hash as u32;
        let mut i = self.home(hash);
        loop {
            let b = self.buckets[i];
            if b.slot == EMPTY {
                return false;
            }
            if b.slot == slot && b.hash == hash {
                break;
            }
            i = (i + 1) & self.mask;
        }
        // Backward shift: pull each later entry of the run into the hole unless its home lies between the
        // hole and it (then it would no longer be found from its home).
        let mut hole = i;
        let mut j = i;
        loop {
            j = (j + 1) & self.mask;
            let b = self.buckets[j];
            if b.slot == EMPTY {
                break;
            }
            let home = self.home(b.hash);
            let reachable_past_hole = if hole <= j {
                hole < home && home <= j
            } else {
                hole < home || home <= j
            };
            if !reachable_past_hole {
                self.buckets[hole] = b;
                hole = j;
            }
        }
        self.buckets[hole] = FREE;
        self.len -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn entries_are_found_until_removed() {
        let mut index = SlotIndex::with_limit(4);
        assert!(index.insert(7, 1));
        assert!(index.insert(7, 2), "two keys may share a hash");
        assert_eq!(index.find(7, |s| s == 2), Some(2));
        assert_eq!(index.find(7, |s| s == 1), Some(1));
        assert_eq!(index.find(8, |_| true), None);
        assert!(index.remove(7, 1));
        assert_eq!(index.find(7, |s| s == 1), None);
        assert_eq!(index.find(7, |s| s == 2), Some(2));
        assert!(!index.remove(7, 1));
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn it_refuses_entries_past_its_limit_instead_of_growing() {
        let mut index = SlotIndex::with_limit(3);
        let buckets = index.buckets();
        for slot in 0..3 {
            assert!(index.insert(u64::from(slot) * 0x9e37_79b9, slot));
        }
        assert!(!index.insert(99, 3));
        assert_eq!(index.buckets(), buckets);
    }

    #[test]
    fn churn_of_ten_times_the_limit_leaves_every_run_short() {
        // Every key homes on one of two buckets, the worst case for linear probing; after churn the
        // index still finds exactly what it holds.
        let mut index = SlotIndex::with_limit(64);
        let mut held = std::collections::VecDeque::new();
        for slot in 0..640u32 {
            if held.len() == 64 {
                let (hash, old) = held.pop_front().expect("held");
                assert!(index.remove(hash, old));
            }
            let hash = u64::from(slot % 2) * 0x1_0000_0000 + u64::from(slot % 2);
            assert!(index.insert(hash, slot));
            held.push_back((hash, slot));
        }
        for &(hash, slot) in &held {
            assert_eq!(index.find(hash, |s| s == slot), Some(slot));
        }
        assert_eq!(index.len(), 64);
    }

    proptest! {
        /// Against a map: any sequence of inserts and removes with colliding hashes leaves the index
        /// finding exactly the map's entries.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((any::<bool>(), 0u32..48, 0u64..24), 1..400)) {
            let mut index = SlotIndex::with_limit(32);
            let mut model: HashMap<u32, u64> = HashMap::new();
            for (insert, slot, hash) in ops {
                // Spread some hashes over the high bits too: only the low 32 bits count.
                let hash = hash.wrapping_mul(0x0101_0101_0000_0003);
                if insert {
                    if model.contains_key(&slot) {
                        continue;
                    }
                    let added = index.insert(hash, slot);
                    prop_assert_eq!(added, model.len() < 32);
                    if added {
                        model.insert(slot, hash);
                    }
                } else if let Some(h) = model.remove(&slot) {
                    prop_assert!(index.remove(h, slot));
                } else {
                    prop_assert!(!index.remove(hash, slot));
                }
                for (&s, &h) in &model {
                    prop_assert_eq!(index.find(h, |x| x == s), Some(s));
                }
                prop_assert_eq!(index.len(), model.len());
            }
        }
    }
}
