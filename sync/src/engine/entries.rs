//! The engine's records of the states it knows, kept by the million: a slab of entries and an index from
//! a state's name to its slot. A map holding the entries themselves keeps up to twice the buckets it needs
//! at the size each entry takes; here only the 16-byte index bucket is doubled, the entry is not.

use hashbrown::HashMap;

use crate::event::StateName;
use crate::identity::{CreatorId, StateId};

/// A name packed without padding (a `StateName` is 16 bytes, 4 of them padding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Packed([u32; 3]);

impl Packed {
    fn of(name: &StateName) -> Packed {
        Packed([name.creator.0, (name.id.0 >> 32) as u32, name.id.0 as u32])
    }

    fn name(self) -> StateName {
        StateName {
            creator: CreatorId(self.0[0]),
            id: StateId(u64::from(self.0[1]) << 32 | u64::from(self.0[2])),
        }
    }
}

/// Entries by state name.
#[derive(Clone, Debug)]
pub(super) struct Entries<E> {
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    index: HashMap<Packed, u32>,
}

impl<E> Default for Entries<E> {
    fn default() -> Self {
        Entries {
            slab: Vec::new(),
            free: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<E> Entries<E> {
    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    pub(super) fn contains_key(&self, name: &StateName) -> bool {
        self.index.contains_key(&Packed::of(name))
    }

    pub(super) fn get(&self, name: &StateName) -> Option<&E> {
        let slot = *self.index.get(&Packed::of(name))?;
        self.slab[slot as usize].as_ref()
    }

    pub(super) fn get_mut(&mut self, name: &StateName) -> Option<&mut E> {
        let slot = *self.index.get(&Packed::of(name))?;
        self.slab[slot as usize].as_mut()
    }

    /// Inserts or replaces; the entry replaced, if any.
    pub(super) fn insert(&mut self, name: StateName, entry: E) -> Option<E> {
        if let Some(&slot) = self.index.get(&Packed::of(&name)) {
            return self.slab[slot as usize].replace(entry);
        }
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slab[slot as usize] = Some(entry);
                slot
            }
            None => {
                self.slab.push(Some(entry));
                (self.slab.len() - 1) as u32
            }
        };
        self.index.insert(Packed::of(&name), slot);
        None
    }

    pub(super) fn remove(&mut self, name: &StateName) -> Option<E> {
        let slot = self.index.remove(&Packed::of(name))?;
        self.free.push(slot);
        self.slab[slot as usize].take()
    }

    /// Keeps the entries `keep` says yes to.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&StateName, &mut E) -> bool) {
        let Entries { slab, free, index } = self;
        index.retain(|packed, slot| {
            let kept = slab[*slot as usize]
                .as_mut()
                .is_some_and(|e| keep(&packed.name(), e));
            if !kept {
                slab[*slot as usize] = None;
                free.push(*slot);
            }
            kept
        });
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (StateName, &E)> + '_ {
        self.index.iter().filter_map(|(packed, slot)| {
            self.slab[*slot as usize]
                .as_ref()
                .map(|e| (packed.name(), e))
        })
    }

    /// Bytes per entry held, by this structure's own account: the slab's capacity, the free list's and
    /// the index's buckets (hashbrown keeps a power of two of them, at most 7/8 full, a control byte each).
    pub(super) fn bytes_per_entry(&self) -> usize {
        let slab = self.slab.capacity() * std::mem::size_of::<Option<E>>();
        let free = self.free.capacity() * std::mem::size_of::<u32>();
        let buckets = (self.index.capacity() * 8 / 7).next_power_of_two();
        let index = buckets * (std::mem::size_of::<(Packed, u32)>() + 1);
        (slab + free + index) / self.len().max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(creator: u32, id: u64) -> StateName {
        StateName {
            creator: CreatorId(creator),
            id: StateId(id),
        }
    }

    #[test]
    fn a_name_packs_and_unpacks_whole() {
        for n in [
            name(0, 0),
            name(u32::MAX, u64::MAX),
            name(7, 0x1234_5678_9abc_def0),
        ] {
            assert_eq!(Packed::of(&n).name(), n);
        }
    }

    #[test]
    fn entries_are_found_replaced_removed_and_their_slots_reused() {
        let mut e = Entries::default();
        assert_eq!(e.insert(name(1, 1), "a"), None);
        assert_eq!(e.insert(name(1, 2), "b"), None);
        assert_eq!(e.insert(name(1, 1), "c"), Some("a"));
        assert_eq!(e.len(), 2);
        assert_eq!(e.get(&name(1, 1)), Some(&"c"));
        assert_eq!(e.remove(&name(1, 1)), Some("c"));
        assert_eq!(e.remove(&name(1, 1)), None);
        assert!(!e.contains_key(&name(1, 1)));
        e.insert(name(2, 9), "d");
        assert_eq!(e.slab.len(), 2, "the freed slot is reused");
        *e.get_mut(&name(2, 9)).expect("there") = "e";
        let mut all: Vec<_> = e.iter().map(|(n, v)| (n, *v)).collect();
        all.sort();
        assert_eq!(all, vec![(name(1, 2), "b"), (name(2, 9), "e")]);
    }

    #[test]
    fn retain_frees_the_slots_it_drops() {
        let mut e = Entries::default();
        for id in 0..10 {
            e.insert(name((id % 2) as u32, id), id);
        }
        e.retain(|n, _| n.creator != CreatorId(1));
        assert_eq!(e.len(), 5);
        assert!(
            e.iter()
                .all(|(n, v)| n.creator == CreatorId(0) && n.id.0 == *v)
        );
        for id in 10..15 {
            e.insert(name(3, id), id);
        }
        assert_eq!(e.slab.len(), 10, "the five dropped slots are reused");
    }
}
