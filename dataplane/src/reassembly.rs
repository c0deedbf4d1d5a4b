//! IPv4 and IPv6 fragment reassembly as pf does it by default (`set reassemble yes`): a worker holds the fragments
//! of a datagram until it has all of them, checks the whole datagram against its state and the rules as
//! one packet, and then forwards or drops every fragment together. A fragment that overlaps another drops
//! the whole datagram (pf's rule since overlapping fragments are an evasion technique, RFC 1858 section
//! 4, RFC 5722 for IPv6); so do more than [`FRAGMENTS_PER_DATAGRAM`] fragments, a datagram past 65535
//! bytes, and a datagram still incomplete after [`FRAGMENT_TIMEOUT`].
//!
//! The fragments are kept as they arrived and leave as they arrived (TTL and MACs rewritten in router
//! mode), rather than copied into one buffer: a datagram of up to 64 KB fits no single mbuf, and the
//! original fragments are already no larger than the path they came by. What is checked is the whole:
//! the first fragment's transport header with the datagram's real length.
//!
//! Everything is sized at start: [`MAX_DATAGRAMS`] datagrams in progress and [`MAX_FRAGMENTS`] held
//! fragments per worker. When either is full, the oldest incomplete datagram is dropped to make room, so
//! a flood of fragments that never complete cannot shut out real ones for longer than it keeps flooding.

use std::collections::VecDeque;

use tandem_sync::time::{Duration, Instant};

use crate::slot_index::SlotIndex;
use crate::wire::meta::{Fragment, L4, PacketMeta};

/// Datagrams one worker reassembles at once.
pub const MAX_DATAGRAMS: usize = 1024;
/// Fragments one worker holds at once.
pub const MAX_FRAGMENTS: usize = 2048;
/// Fragments of one datagram at most (pf's `PF_FRAG_ENTRY_LIMIT`).
pub const FRAGMENTS_PER_DATAGRAM: usize = 64;
/// How long an incomplete datagram waits for its missing fragments (Linux's `ipfrag_time`).
pub const FRAGMENT_TIMEOUT: Duration = Duration::secs(30);
/// The largest IP datagram.
const MAX_DATAGRAM: u32 = 65535;

/// What became of a fragment handed to [`Reassembly::add`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// Held until the rest of its datagram arrives.
    Held,
    /// The datagram is complete: [`Reassembly::take`] hands out its fragments, first fragment first,
    /// and `whole` describes it as one packet (the first fragment's headers, the datagram's length).
    Complete {
        /// The datagram as one packet.
        whole: PacketMeta,
    },
    /// The datagram was dropped whole; `dropped` fragments of it (this one included) are gone.
    Refused {
        /// Why.
        why: Refusal,
        /// Fragments dropped.
        dropped: usize,
    },
}

/// Why a datagram's fragments were dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Two fragments overlap.
    Overlap,
    /// The same fragment again: only the copy is dropped, the datagram goes on with the first.
    Duplicate,
    /// Too many fragments, or past 65535 bytes, or a second last fragment that disagrees.
    Limit,
    /// The first fragment's transport header does not fit the datagram (a UDP length that is not the
    /// datagram's, a TCP header longer than it).
    Malformed,
}

/// A datagram's name (RFC 791 section 3.2; RFC 8200 section 4.5): addresses in pf's layout (IPv4 in the
/// first four bytes), protocol and identification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key {
    src: [u8; 16],
    dst: [u8; 16],
    proto: u8,
    id: u32,
}

impl Key {
    fn hash(&self) -> u64 {
        let fold = |a: &[u8; 16]| {
            let x = u128::from_be_bytes(*a);
            (x as u64) ^ ((x >> 64) as u64)
        };
        let a = fold(&self.src) ^ fold(&self.dst).rotate_left(32);
        let b = u64::from(self.id) << 8 | u64::from(self.proto);
        let full = u128::from(a ^ b.rotate_left(40)) * 0x9e37_79b9_7f4a_7c15;
        (full as u64) ^ ((full >> 64) as u64)
    }
}

#[derive(Clone, Copy, Debug)]
struct Piece {
    slot: u32,
    start: u32,
    end: u32,
}

#[derive(Clone, Debug)]
struct Datagram {
    key: Key,
    live: bool,
    generation: u32,
    pieces: Vec<Piece>,
    /// The datagram's length, once its last fragment came.
    total: Option<u32>,
    /// The first fragment's description, once it came.
    first: Option<PacketMeta>,
    covered: u32,
}

/// One worker's datagrams in reassembly, holding packets of type `B`.
#[derive(Debug)]
pub struct Reassembly<B> {
    datagrams: Vec<Datagram>,
    index: SlotIndex,
    free: Vec<u32>,
    held: Vec<Option<B>>,
    free_held: Vec<u32>,
    /// Datagrams by age: (slot, generation, deadline).
    age: VecDeque<(u32, u32, Instant)>,
    /// The datagram `take` hands out.
    complete: Option<u32>,
}

/// The range of the datagram a fragment carries, from its header: offset and length in bytes, and
/// whether it is the last.
fn range_of(m: &PacketMeta) -> Option<(u32, u32, bool)> {
    let len = u32::from(m.ip_payload_len);
    match m.fragment {
        Fragment::First { .. } => Some((0, len, false)),
        Fragment::Later { offset, last, .. } => Some((u32::from(offset), len, last)),
        Fragment::None => None,
    }
}

impl<B> Reassembly<B> {
    /// Empty, with every table allocated.
    pub fn new() -> Reassembly<B> {
        Reassembly {
            datagrams: (0..MAX_DATAGRAMS)
                .map(|_| Datagram {
                    key: Key {
                        src: [0; 16],
                        dst: [0; 16],
                        proto: 0,
                        id: 0,
                    },
                    live: false,
                    generation: 0,
                    pieces: Vec::with_capacity(FRAGMENTS_PER_DATAGRAM),
                    total: None,
                    first: None,
                    covered: 0,
                })
                .collect(),
            index: SlotIndex::with_limit(MAX_DATAGRAMS),
            free: (0..MAX_DATAGRAMS as u32).rev().collect(),
            held: (0..MAX_FRAGMENTS).map(|_| None).collect(),
            free_held: (0..MAX_FRAGMENTS as u32).rev().collect(),
            age: VecDeque::with_capacity(MAX_DATAGRAMS),
            complete: None,
        }
    }

    /// Datagrams in progress.
    pub fn datagrams(&self) -> usize {
        MAX_DATAGRAMS - self.free.len()
    }

    /// Fragments held.
    pub fn fragments(&self) -> usize {
        MAX_FRAGMENTS - self.free_held.len()
    }

    fn find(&self, key: &Key) -> Option<u32> {
        let datagrams = &self.datagrams;
        self.index
            .find(key.hash(), |slot| datagrams[slot as usize].key == *key)
    }

    /// Drops the datagram in `slot` and its fragments; returns how many fragments went.
    fn discard(&mut self, slot: u32) -> usize {
        let d = &mut self.datagrams[slot as usize];
        if !d.live {
            return 0;
        }
        let n = d.pieces.len();
        for piece in d.pieces.drain(..) {
            self.held[piece.slot as usize] = None;
            self.free_held.push(piece.slot);
        }
        d.live = false;
        d.generation = d.generation.wrapping_add(1);
        let hash = d.key.hash();
        self.index.remove(hash, slot);
        self.free.push(slot);
        n
    }

    /// Drops the oldest datagram in progress to make room; returns its fragments' count.
    fn evict_oldest(&mut self) -> usize {
        while let Some((slot, generation, _)) = self.age.pop_front() {
            if self.datagrams[slot as usize].live
                && self.datagrams[slot as usize].generation == generation
            {
                return self.discard(slot);
            }
        }
        0
    }

    /// Takes a fragment (`m` describes it). For IPv6 the caller has checked that a first fragment's
    /// transport header follows its fragment header directly (then its transport payload is its
    /// fragmentable part).
    /// `evicted` counts fragments of other datagrams dropped to make room.
    pub fn add(&mut self, packet: B, m: &PacketMeta, now: Instant, evicted: &mut usize) -> Added {
        let Some((start, len, last)) = range_of(m) else {
            return Added::Refused {
                why: Refusal::Malformed,
                dropped: 1,
            };
        };
        let key = Key {
            src: m.src,
            dst: m.dst,
            proto: m.proto,
            id: match m.fragment {
                Fragment::First { id } | Fragment::Later { id, .. } => id,
                Fragment::None => 0,
            },
        };
        let end = start + len;
        let slot = match self.find(&key) {
            Some(slot) => slot,
            None => {
                if self.free.is_empty() {
                    *evicted += self.evict_oldest();
                }
                let Some(slot) = self.free.pop() else {
                    return Added::Refused {
                        why: Refusal::Limit,
                        dropped: 1,
                    };
                };
                let d = &mut self.datagrams[slot as usize];
                d.key = key;
                d.live = true;
                d.total = None;
                d.first = None;
                d.covered = 0;
                let generation = d.generation;
                self.index.insert(key.hash(), slot);
                if self.age.len() >= MAX_DATAGRAMS {
                    // Entries of datagrams completed since are stale; fewer than the limit are live.
                    let datagrams = &self.datagrams;
                    self.age.retain(|&(s, g, _)| {
                        let d = &datagrams[s as usize];
                        d.live && d.generation == g
                    });
                }
                self.age
                    .push_back((slot, generation, now + FRAGMENT_TIMEOUT));
                slot
            }
        };
        // The checks that drop the whole datagram.
        let d = &self.datagrams[slot as usize];
        if d.pieces.iter().any(|p| p.start == start && p.end == end) {
            return Added::Refused {
                why: Refusal::Duplicate,
                dropped: 1,
            };
        }
        let overlap = d.pieces.iter().any(|p| start < p.end && p.start < end);
        let beyond = end > MAX_DATAGRAM
            || d.total.is_some_and(|t| end > t || (last && end != t))
            || (last && d.pieces.iter().any(|p| p.end > end))
            || (len == 0 && !last);
        let refusal = if overlap {
            Some(Refusal::Overlap)
        } else if beyond || d.pieces.len() >= FRAGMENTS_PER_DATAGRAM {
            Some(Refusal::Limit)
        } else {
            None
        };
        if let Some(why) = refusal {
            let dropped = self.discard(slot) + 1;
            return Added::Refused { why, dropped };
        }
        if self.free_held.is_empty() {
            // Make room, but never at the expense of this datagram.
            let d = &self.datagrams[slot as usize];
            let mine = (slot, d.generation);
            while self.free_held.is_empty() {
                match self.age.front().copied() {
                    Some((s, g, _)) if (s, g) == mine => {
                        let dropped = self.discard(slot) + 1;
                        return Added::Refused {
                            why: Refusal::Limit,
                            dropped,
                        };
                    }
                    Some(_) => *evicted += self.evict_oldest(),
                    None => break,
                }
            }
        }
        let Some(held_slot) = self.free_held.pop() else {
            let dropped = self.discard(slot) + 1;
            return Added::Refused {
                why: Refusal::Limit,
                dropped,
            };
        };
        self.held[held_slot as usize] = Some(packet);
        let d = &mut self.datagrams[slot as usize];
        d.pieces.push(Piece {
            slot: held_slot,
            start,
            end,
        });
        d.covered += len;
        if last {
            d.total = Some(end);
        }
        if start == 0 {
            d.first = Some(*m);
        }
        match (d.total, d.first) {
            (Some(total), Some(first)) if d.covered == total => match whole_of(&first, total) {
                Some(whole) => {
                    d.pieces.sort_unstable_by_key(|p| p.start);
                    self.complete = Some(slot);
                    Added::Complete { whole }
                }
                None => {
                    let dropped = self.discard(slot);
                    Added::Refused {
                        why: Refusal::Malformed,
                        dropped,
                    }
                }
            },
            _ => Added::Held,
        }
    }

    /// Hands out the fragments of the datagram [`Reassembly::add`] just completed, first fragment first,
    /// and forgets it.
    pub fn take(&mut self, mut each: impl FnMut(B)) {
        let Some(slot) = self.complete.take() else {
            return;
        };
        for piece in &self.datagrams[slot as usize].pieces {
            if let Some(packet) = self.held[piece.slot as usize].take() {
                each(packet);
            }
        }
        self.discard(slot);
    }

    /// Drops datagrams that waited past [`FRAGMENT_TIMEOUT`]; returns how many fragments went.
    pub fn expire(&mut self, now: Instant) -> usize {
        let mut dropped = 0;
        while let Some(&(slot, generation, deadline)) = self.age.front() {
            let d = &self.datagrams[slot as usize];
            if d.live && d.generation == generation {
                if deadline > now {
                    break;
                }
                dropped += self.discard(slot);
            }
            self.age.pop_front();
        }
        dropped
    }
}

impl<B> Default for Reassembly<B> {
    fn default() -> Self {
        Reassembly::new()
    }
}

/// The first fragment's description made the whole datagram's: its length, and the transport lengths
/// that depend on it. `None` when the transport header does not fit the datagram.
fn whole_of(first: &PacketMeta, total: u32) -> Option<PacketMeta> {
    let mut whole = *first;
    whole.ip_payload_len = u16::try_from(total).ok()?;
    match &mut whole.l4 {
        L4::Tcp(t) => {
            let header = u32::from(first.ip_payload_len) - u32::from(t.payload_len);
            t.payload_len = u16::try_from(total.checked_sub(header)?).ok()?;
        }
        L4::Udp(u) if u32::from(u.payload_len) + 8 != total => return None,
        _ => {}
    }
    Some(whole)
}
