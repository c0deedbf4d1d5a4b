//! Acknowledged delivery (`sync.delivery`, a Tandem extension; off, sync is pfsync's fire-and-forget).
//!
//! Every packet that carries states to the group gets a number in its sender's stream; each receiver
//! keeps the sender's stream apart (one sequence space per peer, so any number of nodes works, where
//! conntrackd's FTFW tracks a single one), acknowledges the unbroken run it holds and names the gaps it
//! sees at once. The sender keeps, per packet, the names of what it carried, never copies: a packet
//! reported missing, or unacknowledged past the resend interval, has its states sent again as they are
//! now, so a resend always carries the newest version (conntrackd's idea). The resent packet's number is
//! then closed: each packet tells receivers the lowest number they still need, so a gap whose states went
//! out again stops being a gap.
//!
//! A stream has an epoch, one per run of its sender: a new epoch means the sender restarted and lost
//! every state, and the receiver sends it a bulk update. A peer that stops acknowledging is no longer
//! waited for after the give-up interval and gets a bulk update when it acknowledges again, as does a
//! peer that missed packets the resend queue had to let go (its size is bounded). This module decides;
//! the engine re-queues states, sends and counts.

use std::collections::VecDeque;

use crate::event::StateName;
use crate::identity::CreatorId;
use crate::seq;
use crate::time::{Duration, Instant};

use super::peers::{MAX_PEERS, PeerIndex};

/// Acknowledged delivery's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// This run's epoch: different on every start of the node (never 0).
    pub epoch: u32,
    /// The longest a receiver waits before acknowledging what it received.
    pub ack_delay: Duration,
    /// A packet not acknowledged by every peer waited for within this long has its states sent again; a
    /// gap a receiver reported is reported again after half of it.
    pub resend_after: Duration,
    /// A peer whose acknowledgements stop advancing for this long is no longer waited for.
    pub give_up: Duration,
    /// The most state names the resend queue holds; past it the oldest packets are let go.
    pub queue_limit: usize,
}

/// What a numbered packet carried, by name, to send again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// A full state (INS or UPD): sent again as its worker's current copy.
    Full(StateName),
    /// A compressed update: sent again as the engine's current view.
    Compressed(StateName),
    /// A delete.
    Delete(StateName),
    /// A CLR.
    Clear(CreatorId),
}

/// One numbered packet awaiting acknowledgement.
#[derive(Clone, Debug)]
struct Flight {
    seq: u32,
    sent_at: Instant,
    items: Vec<Item>,
    /// Its states went out again in a later packet: nobody needs this number any more.
    closed: bool,
}

/// What the sender knows of one peer's acknowledgements.
#[derive(Clone, Copy, Debug, Default)]
struct Acks {
    /// The last number of our stream the peer has everything up to; `None` until it acknowledges (a
    /// plain pfsync peer never does) or once it was given up on.
    through: Option<u32>,
    /// Since when it has owed acknowledgements without any arriving.
    owing_since: Option<Instant>,
}

/// Counters of the sending side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderCounts {
    /// Packets numbered.
    pub numbered: u64,
    /// Packets whose states were sent again because a peer reported them missing.
    pub resent_on_nack: u64,
    /// Packets whose states were sent again because no acknowledgement came in time.
    pub resent_on_timeout: u64,
    /// Packets let go unacknowledged because the resend queue was full.
    pub overflowed: u64,
    /// Times a peer was given up on (no acknowledgement for the give-up interval).
    pub gave_up: u64,
}

/// The sending side: our stream.
#[derive(Clone, Debug)]
pub struct Sender {
    cfg: DeliveryConfig,
    next: u32,
    flights: VecDeque<Flight>,
    held: usize,
    acks: Vec<Acks>,
    /// Peers that missed packets no longer held: they need a bulk update.
    needs_bulk: u64,
    counts: SenderCounts,
}

impl Sender {
    /// A stream starting at number 1.
    pub fn new(cfg: DeliveryConfig) -> Sender {
        Sender {
            cfg,
            next: 1,
            flights: VecDeque::new(),
            held: 0,
            acks: vec![Acks::default(); MAX_PEERS],
            needs_bulk: 0,
            counts: SenderCounts::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &DeliveryConfig {
        &self.cfg
    }

    /// Counters.
    pub fn counts(&self) -> SenderCounts {
        self.counts
    }

    /// Packets awaiting acknowledgement.
    pub fn in_flight(&self) -> usize {
        self.flights.iter().filter(|f| !f.closed).count()
    }

    /// Numbers a packet carrying `items`, sent at `now`; returns its number and the lowest number
    /// receivers still need. `alive` has a bit per live peer.
    pub fn number(&mut self, now: Instant, items: Vec<Item>, alive: u64) -> (u32, u32) {
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        self.held += items.len();
        self.flights.push_back(Flight {
            seq,
            sent_at: now,
            items,
            closed: false,
        });
        self.counts.numbered += 1;
        for (i, a) in self.acks.iter_mut().enumerate() {
            if alive & (1 << i) != 0 && a.through.is_some() && a.owing_since.is_none() {
                a.owing_since = Some(now);
            }
        }
        while self.held > self.cfg.queue_limit && self.flights.len() > 1 {
            let Some(f) = self.flights.pop_front() else {
                break;
            };
            self.held -= f.items.len();
            if !f.closed {
                self.counts.overflowed += 1;
                self.needs_bulk |= self.lacking(f.seq, alive);
            }
        }
        (seq, self.low())
    }

    /// The lowest number receivers still need: the oldest packet neither acknowledged by all nor closed.
    pub fn low(&self) -> u32 {
        self.flights
            .iter()
            .find(|f| !f.closed)
            .map_or(self.next, |f| f.seq)
    }

    /// A bit per live peer waited for that has not acknowledged `seq`.
    fn lacking(&self, seq: u32, alive: u64) -> u64 {
        self.acks
            .iter()
            .enumerate()
            .filter(|(i, a)| alive & (1 << i) != 0 && a.through.is_some_and(|t| seq::lt(t, seq)))
            .fold(0, |m, (i, _)| m | 1 << i)
    }

    /// A peer acknowledged everything up to `through`.
    pub fn acknowledged(&mut self, peer: PeerIndex, through: u32, now: Instant, alive: u64) {
        let Some(a) = self.acks.get_mut(peer) else {
            return;
        };
        // Never past what we sent: a forged or confused acknowledgement cannot retire packets.
        let through = if seq::geq(through, self.next) {
            self.next.wrapping_sub(1)
        } else {
            through
        };
        if a.through.is_none() && !self.flights.is_empty() {
            // Acknowledging again after being given up on (or for the first time): whatever it missed
            // meanwhile is not held for it.
            let oldest = self.flights.front().map_or(self.next, |f| f.seq);
            if seq::lt(through.wrapping_add(1), oldest) {
                self.needs_bulk |= 1 << peer;
            }
        }
        a.through = Some(match a.through {
            Some(t) if seq::gt(t, through) => t,
            _ => through,
        });
        a.owing_since = if a.through == Some(self.next.wrapping_sub(1)) {
            None
        } else {
            Some(now)
        };
        self.retire(alive);
    }

    /// A peer reported `first..=last` missing: the states of those packets still open, to send again
    /// (their packets are closed).
    pub fn missing(&mut self, first: u32, last: u32) -> Vec<Item> {
        let mut items = Vec::new();
        if seq::gt(first, last) {
            return items;
        }
        for f in self.flights.iter_mut() {
            if !f.closed && seq::geq(f.seq, first) && seq::leq(f.seq, last) {
                f.closed = true;
                self.counts.resent_on_nack += 1;
                items.append(&mut f.items);
            }
        }
        self.held -= items.len();
        items
    }

    /// The states of packets unacknowledged past the resend interval, to send again (their packets are
    /// closed); gives up on peers silent past the give-up interval.
    pub fn due(&mut self, now: Instant, alive: u64) -> Vec<Item> {
        for (i, a) in self.acks.iter_mut().enumerate() {
            if alive & (1 << i) == 0 {
                continue;
            }
            if a.through.is_some()
                && a.owing_since
                    .is_some_and(|t| now.since(t) >= self.cfg.give_up)
            {
                a.through = None;
                a.owing_since = None;
                self.counts.gave_up += 1;
            }
        }
        let mut items = Vec::new();
        let slowest = self.slowest(alive);
        // Packets are numbered in time order: stop at the first one too young to resend.
        for f in self.flights.iter_mut() {
            if now.since(f.sent_at) < self.cfg.resend_after {
                break;
            }
            if f.closed || slowest.is_none_or(|t| seq::geq(t, f.seq)) {
                continue;
            }
            f.closed = true;
            self.counts.resent_on_timeout += 1;
            items.append(&mut f.items);
        }
        self.held -= items.len();
        self.retire(alive);
        items
    }

    /// The acknowledgement of the slowest live peer waited for; `None` when none is waited for.
    fn slowest(&self, alive: u64) -> Option<u32> {
        self.acks
            .iter()
            .enumerate()
            .filter(|(i, _)| alive & (1 << i) != 0)
            .filter_map(|(_, a)| a.through)
            .reduce(|a, b| if seq::lt(b, a) { b } else { a })
    }

    /// Drops the packets every live peer waited for has, and the closed ones, from the front.
    pub fn retire(&mut self, alive: u64) {
        let slowest = self.slowest(alive);
        while let Some(f) = self.flights.front() {
            if !f.closed && slowest.is_some_and(|t| seq::lt(t, f.seq)) {
                break;
            }
            self.held -= f.items.len();
            self.flights.pop_front();
        }
    }

    /// When [`Sender::due`] has something to do.
    pub fn next_due(&self, alive: u64) -> Option<Instant> {
        // After `retire`, the front packet is open and the oldest; nothing is waited for without a peer.
        let resend = self
            .flights
            .iter()
            .find(|f| !f.closed)
            .filter(|_| self.slowest(alive).is_some())
            .map(|f| f.sent_at + self.cfg.resend_after);
        let give_up = self
            .acks
            .iter()
            .enumerate()
            .filter(|(i, a)| alive & (1 << i) != 0 && a.through.is_some())
            .filter_map(|(_, a)| a.owing_since.map(|t| t + self.cfg.give_up))
            .min();
        match (resend, give_up) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Forgets a peer's acknowledgements (it died or restarted): not waited for until it acknowledges.
    pub fn forget(&mut self, peer: PeerIndex) {
        if let Some(a) = self.acks.get_mut(peer) {
            *a = Acks::default();
        }
    }

    /// Takes the peers that need a bulk update because packets they lacked were let go.
    pub fn take_needs_bulk(&mut self) -> u64 {
        std::mem::take(&mut self.needs_bulk)
    }
}

/// Packets received in a row after which a receiver acknowledges at once.
const ACK_EVERY: u32 = 16;
/// Most gaps named in one negative acknowledgement per stream.
pub const MAX_GAPS: usize = 8;

/// What a numbered packet turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// New: apply it.
    New,
    /// Had it already: ignore its states.
    Duplicate,
    /// The first of a new epoch of a sender we knew: it restarted.
    Restarted,
}

/// The receiving side of one peer's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    /// Whose stream (the host id its packets name).
    pub sender: CreatorId,
    /// Its epoch.
    pub epoch: u32,
    /// Every number up to this one received (or closed by the sender).
    through: u32,
    /// Bit `i`: number `through + 2 + i` received (`through + 1` never is, or `through` would move).
    above: u64,
    /// A gap too far ahead for `above`: `first..=last` to report, once.
    far_gap: Option<(u32, u32)>,
    unacked: u32,
    ack_at: Option<Instant>,
    nack_at: Option<Instant>,
}

impl Stream {
    /// A stream first heard with packet `seq`.
    pub fn new(sender: CreatorId, epoch: u32, seq: u32) -> Stream {
        Stream {
            sender,
            epoch,
            through: seq.wrapping_sub(1),
            above: 0,
            far_gap: None,
            unacked: 0,
            ack_at: None,
            nack_at: None,
        }
    }

    /// A stream first heard from an unnumbered packet: nothing below `low` is needed.
    pub fn announced(sender: CreatorId, epoch: u32, low: u32) -> Stream {
        Stream::new(sender, epoch, low)
    }

    /// An unnumbered packet said nothing below `low` is needed.
    pub fn close_below(&mut self, low: u32) {
        let closed = low.wrapping_sub(1);
        if seq::gt(closed, self.through) {
            self.advance_to(closed);
        }
    }

    /// Records packet `seq` (with the sender's lowest needed number `low`) arriving at `now`.
    pub fn arrive(&mut self, seq: u32, low: u32, now: Instant, cfg: &DeliveryConfig) -> Arrival {
        // Everything below `low` is closed: arrived, or resent under a later number.
        let closed = low.wrapping_sub(1);
        if seq::gt(closed, self.through) && seq::leq(closed, seq) {
            self.advance_to(closed);
        }
        if seq::leq(seq, self.through) {
            self.ack_at = Some(now);
            return Arrival::Duplicate;
        }
        let d = seq.wrapping_sub(self.through);
        if d == 1 {
            self.step();
        } else if d - 2 < 64 {
            let bit = 1u64 << (d - 2);
            if self.above & bit != 0 {
                self.ack_at = Some(now);
                return Arrival::Duplicate;
            }
            self.above |= bit;
            self.nack_at = Some(self.nack_at.map_or(now, |t| t.min(now)));
        } else {
            // Too far ahead to track each number: report the whole run missing once and start over.
            self.far_gap = Some((self.through.wrapping_add(1), seq.wrapping_sub(1)));
            self.through = seq;
            self.above = 0;
            self.nack_at = Some(now);
        }
        self.unacked += 1;
        let deadline = if self.unacked >= ACK_EVERY {
            now
        } else {
            now + cfg.ack_delay
        };
        self.ack_at = Some(self.ack_at.map_or(deadline, |t| t.min(deadline)));
        Arrival::New
    }

    /// Number `through + 1` arrived: moves `through` over it and over what arrived above it.
    fn step(&mut self) {
        self.through = self.through.wrapping_add(1);
        loop {
            // Bit 0 now stands for `through + 1`; after the shift bit i stands for `through + 2 + i`.
            let next = self.above & 1 != 0;
            self.above >>= 1;
            if !next {
                break;
            }
            self.through = self.through.wrapping_add(1);
        }
    }

    /// Counts everything up to `to` (ahead of `through`) as received.
    fn advance_to(&mut self, to: u32) {
        while seq::lt(self.through, to) {
            if to.wrapping_sub(self.through) > 65 {
                self.through = to;
                self.above = 0;
                break;
            }
            self.step();
        }
    }

    /// When an acknowledgement or a gap report is due.
    pub fn due_at(&self) -> Option<Instant> {
        match (self.ack_at, self.nack_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The acknowledgement and the gaps to report at `now`, if due: `(through, gaps)`.
    pub fn report(&mut self, now: Instant, cfg: &DeliveryConfig) -> Option<(u32, Vec<(u32, u32)>)> {
        if self.due_at().is_none_or(|t| t > now) {
            return None;
        }
        let mut gaps = Vec::new();
        if self.nack_at.is_some_and(|t| t <= now) {
            gaps = self.gaps();
            self.far_gap = None;
            // Gaps still open are reported again after half the resend interval (the resend may be lost).
            self.nack_at = (self.above != 0)
                .then(|| now + Duration(cfg.resend_after.as_micros() / 2).max(Duration(1)));
        }
        if self.above == 0 && self.far_gap.is_none() {
            // Nothing missing any more.
            self.nack_at = None;
        }
        self.ack_at = None;
        self.unacked = 0;
        Some((self.through, gaps))
    }

    /// The missing runs: the far gap, then each run below the highest number received.
    fn gaps(&self) -> Vec<(u32, u32)> {
        let mut gaps: Vec<(u32, u32)> = self.far_gap.into_iter().collect();
        if self.above == 0 {
            return gaps;
        }
        // Number `through + 1` is missing; bit i stands for `through + 2 + i`.
        let base = self.through.wrapping_add(1);
        let top = 64 - self.above.leading_zeros(); // bits 0..top, the highest set at top - 1
        let mut start = Some(0u32); // offset from base of the run being read, missing
        for i in 0..top {
            let received = self.above & (1 << i) != 0;
            let offset = i + 1;
            match (received, start) {
                (true, Some(s)) => {
                    gaps.push((base.wrapping_add(s), base.wrapping_add(offset - 1)));
                    start = None;
                }
                (false, None) => start = Some(offset),
                _ => {}
            }
            if gaps.len() >= MAX_GAPS {
                break;
            }
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DeliveryConfig {
        DeliveryConfig {
            epoch: 7,
            ack_delay: Duration::millis(2),
            resend_after: Duration::millis(20),
            give_up: Duration::millis(500),
            queue_limit: 1000,
        }
    }

    fn name(id: u64) -> StateName {
        StateName {
            creator: CreatorId(1),
            id: crate::identity::StateId(id),
        }
    }

    const T0: Instant = Instant(1_000_000);

    #[test]
    fn in_order_packets_are_acknowledged_after_the_delay_or_sixteen_packets() {
        let c = cfg();
        let mut s = Stream::new(CreatorId(1), 7, 1);
        assert_eq!(s.arrive(1, 1, T0, &c), Arrival::New);
        assert_eq!(s.due_at(), Some(T0 + c.ack_delay));
        assert_eq!(s.report(T0, &c), None, "not yet");
        assert_eq!(s.report(T0 + c.ack_delay, &c), Some((1, vec![])));
        for seq in 2..=17 {
            assert_eq!(s.arrive(seq, 1, T0, &c), Arrival::New);
        }
        assert_eq!(s.due_at(), Some(T0), "sixteen in a row: at once");
        assert_eq!(s.report(T0, &c), Some((17, vec![])));
        assert_eq!(s.arrive(17, 1, T0, &c), Arrival::Duplicate);
        assert_eq!(s.due_at(), Some(T0), "a duplicate is acknowledged at once");
    }

    #[test]
    fn gaps_are_reported_at_once_and_closed_by_arrivals_or_the_senders_low_mark() {
        let c = cfg();
        let mut s = Stream::new(CreatorId(1), 7, 1);
        s.arrive(1, 1, T0, &c);
        // 2, 3 and 5 lost.
        s.arrive(4, 1, T0, &c);
        s.arrive(6, 1, T0, &c);
        assert_eq!(s.due_at(), Some(T0));
        assert_eq!(s.report(T0, &c), Some((1, vec![(2, 3), (5, 5)])));
        // Still missing: reported again after half the resend interval, not before.
        let again = T0 + Duration::millis(10);
        assert_eq!(s.due_at(), Some(again));
        assert_eq!(s.arrive(2, 1, T0, &c), Arrival::New);
        assert_eq!(s.report(again, &c), Some((2, vec![(3, 3), (5, 5)])));
        // The sender resent 3's and 5's states in 7 and says nothing below 7 is needed.
        assert_eq!(s.arrive(7, 7, again, &c), Arrival::New);
        assert_eq!(s.report(again + c.ack_delay, &c), Some((7, vec![])));
        assert_eq!(s.due_at(), None);
    }

    #[test]
    fn a_gap_too_wide_to_track_is_reported_whole_once() {
        let c = cfg();
        let mut s = Stream::new(CreatorId(1), 7, 10);
        s.arrive(10, 10, T0, &c);
        s.arrive(500, 10, T0, &c);
        assert_eq!(s.report(T0, &c), Some((500, vec![(11, 499)])));
        assert_eq!(s.due_at(), None);
    }

    #[test]
    fn numbers_wrap() {
        let c = cfg();
        let mut s = Stream::new(CreatorId(1), 7, u32::MAX - 1);
        s.arrive(u32::MAX - 1, u32::MAX - 1, T0, &c);
        s.arrive(1, u32::MAX - 1, T0, &c);
        assert_eq!(s.report(T0, &c), Some((u32::MAX - 1, vec![(u32::MAX, 0)])));
        s.arrive(u32::MAX, u32::MAX - 1, T0, &c);
        s.arrive(0, u32::MAX - 1, T0, &c);
        assert_eq!(s.report(T0 + c.ack_delay, &c), Some((1, vec![])));
    }

    #[test]
    fn the_sender_retires_what_every_peer_has_and_resends_the_rest_by_name() {
        let c = cfg();
        let mut tx = Sender::new(c);
        let alive = 0b11;
        let (one, low) = tx.number(T0, vec![Item::Full(name(1))], alive);
        assert_eq!((one, low), (1, 1));
        // Nobody acknowledged yet: nobody is waited for, and nothing is resent.
        assert_eq!(tx.due(T0 + c.resend_after, alive), vec![]);
        assert_eq!(tx.in_flight(), 0, "retired: no peer is waited for");
        let (two, _) = tx.number(T0, vec![Item::Compressed(name(2))], alive);
        tx.acknowledged(0, one, T0, alive);
        tx.acknowledged(1, one, T0, alive);
        let (three, _) = tx.number(T0, vec![Item::Delete(name(3))], alive);
        assert_eq!(tx.in_flight(), 2);
        tx.acknowledged(0, three, T0, alive);
        assert_eq!(tx.in_flight(), 2, "peer 1 still lacks 2 and 3");
        // Peer 1 reports 2 missing: its states come back, and 2 is closed.
        assert_eq!(tx.missing(two, two), vec![Item::Compressed(name(2))]);
        assert_eq!(tx.missing(two, two), vec![], "once");
        let (four, low) = tx.number(T0, vec![Item::Compressed(name(2))], alive);
        assert_eq!((four, low), (4, 3), "2 is no longer needed, 3 is");
        // 3 unacknowledged by peer 1 past the interval: resent.
        assert_eq!(
            tx.due(T0 + c.resend_after, alive),
            vec![Item::Delete(name(3)), Item::Compressed(name(2))]
        );
        assert_eq!(tx.in_flight(), 0);
        assert_eq!(tx.counts().resent_on_nack, 1);
        assert_eq!(tx.counts().resent_on_timeout, 2);
    }

    #[test]
    fn a_silent_peer_is_given_up_and_gets_a_bulk_when_it_returns() {
        let c = cfg();
        let mut tx = Sender::new(c);
        let alive = 0b1;
        let (one, _) = tx.number(T0, vec![Item::Full(name(1))], alive);
        tx.acknowledged(0, one, T0, alive);
        tx.number(T0, vec![Item::Full(name(2))], alive);
        let later = T0 + c.give_up;
        assert_eq!(tx.next_due(alive), Some(T0 + c.resend_after));
        tx.due(T0 + c.resend_after, alive);
        tx.number(T0 + c.resend_after, vec![Item::Full(name(2))], alive);
        tx.due(later, alive);
        assert_eq!(tx.counts().gave_up, 1);
        assert_eq!(tx.in_flight(), 0, "no longer waited for");
        for i in 0..5 {
            tx.number(later, vec![Item::Full(name(10 + i))], alive);
        }
        // Back, acknowledging only what it had: what it missed is gone, so it needs a bulk update.
        tx.acknowledged(0, one, later, alive);
        assert_eq!(tx.take_needs_bulk(), 0b1);
    }

    #[test]
    fn a_full_queue_lets_the_oldest_go_and_marks_who_missed_it() {
        let c = DeliveryConfig {
            queue_limit: 3,
            ..cfg()
        };
        let mut tx = Sender::new(c);
        let alive = 0b11;
        let (one, _) = tx.number(T0, vec![Item::Full(name(1))], alive);
        tx.acknowledged(0, one, T0, alive);
        tx.acknowledged(1, one, T0, alive);
        for i in 0..3 {
            let (seq, _) = tx.number(T0, vec![Item::Full(name(2 + i))], alive);
            tx.acknowledged(0, seq, T0, alive);
        }
        tx.number(T0, vec![Item::Full(name(9))], alive);
        assert_eq!(tx.counts().overflowed, 1);
        assert_eq!(tx.take_needs_bulk(), 0b10, "peer 1 never had packet 2");
    }

    #[test]
    fn acknowledgements_beyond_what_was_sent_retire_nothing_more() {
        let c = cfg();
        let mut tx = Sender::new(c);
        let alive = 0b11;
        let (one, _) = tx.number(T0, vec![Item::Full(name(1))], alive);
        tx.acknowledged(0, one, T0, alive);
        tx.acknowledged(1, one, T0, alive);
        tx.number(T0, vec![Item::Full(name(2))], alive);
        tx.acknowledged(0, u32::MAX / 2, T0, alive);
        tx.acknowledged(1, 1, T0, alive);
        assert_eq!(tx.in_flight(), 1, "peer 1 still lacks 2");
    }
}
