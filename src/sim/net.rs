//! The simulated network: a seeded random source, links with named knobs (latency, bandwidth, queue size,
//! loss), and a time-ordered event queue. Everything is deterministic for a given seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use tandem_sync::time::Instant;

/// Virtual time, in nanoseconds: a 10 Mpps flow sends a packet every 100 ns, finer than the microseconds
/// the appliance's own clock counts, which [`Ns::instant`] rounds down to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ns(pub u64);

impl Ns {
    /// Zero.
    pub const ZERO: Ns = Ns(0);

    /// `us` microseconds.
    pub const fn micros(us: u64) -> Ns {
        Ns(us * 1_000)
    }

    /// `ms` milliseconds.
    pub const fn millis(ms: u64) -> Ns {
        Ns(ms * 1_000_000)
    }

    /// The appliance's clock at this time.
    pub fn instant(self) -> Instant {
        Instant(self.0 / 1_000)
    }

    /// The first nanosecond of an appliance clock tick.
    pub fn of_instant(at: Instant) -> Ns {
        Ns(at.0.saturating_mul(1_000))
    }

    /// Seconds, as a float.
    pub fn secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
}

impl std::ops::Add for Ns {
    type Output = Ns;
    fn add(self, other: Ns) -> Ns {
        Ns(self.0.saturating_add(other.0))
    }
}

impl std::ops::Sub for Ns {
    type Output = Ns;
    fn sub(self, other: Ns) -> Ns {
        Ns(self.0.saturating_sub(other.0))
    }
}

/// A small deterministic random source (splitmix64), one per link direction so that adding a link does
/// not change the draws of the others.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A link's knobs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub latency: Ns,
    /// Bits per second; 0 means unlimited.
    pub bandwidth_bps: u64,
    /// Bytes the queue in front of the link holds before dropping.
    pub queue_bytes: u64,
    /// Probability that a packet is lost in flight.
    pub loss: f64,
}

impl LinkConfig {
    /// An unlimited, lossless link with the given delay.
    pub fn ideal(latency: Ns) -> LinkConfig {
        LinkConfig {
            latency,
            bandwidth_bps: 0,
            queue_bytes: u64::MAX,
            loss: 0.0,
        }
    }
}

/// What a link did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets delivered.
    pub delivered: u64,
    /// Bytes delivered.
    pub bytes: u64,
    /// Packets dropped because the queue was full.
    pub queue_drops: u64,
    /// Packets lost in flight.
    pub losses: u64,
}

/// One direction of a link.
#[derive(Clone, Debug)]
pub struct Link {
    cfg: LinkConfig,
    busy_until: Ns,
    rng: Rng,
    stats: LinkStats,
}

impl Link {
    /// A link with `cfg`, drawing losses from `seed`.
    pub fn new(cfg: LinkConfig, seed: u64) -> Link {
        Link {
            cfg,
            busy_until: Ns::ZERO,
            rng: Rng::new(seed),
            stats: LinkStats::default(),
        }
    }

    /// Its knobs.
    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Time to put `bytes` on the wire.
    pub fn serialization(&self, bytes: usize) -> Ns {
        if self.cfg.bandwidth_bps == 0 {
            Ns::ZERO
        } else {
            Ns((bytes as u64 * 8 * 1_000_000_000).div_ceil(self.cfg.bandwidth_bps))
        }
    }

    /// Offers a packet of `bytes` at `now`; returns when it arrives at the far end, or `None` if it is
    /// dropped (queue full) or lost.
    pub fn offer(&mut self, now: Ns, bytes: usize) -> Option<Ns> {
        let start = self.busy_until.max(now);
        if self.cfg.bandwidth_bps > 0 {
            let backlog =
                (start - now).0 as u128 * u128::from(self.cfg.bandwidth_bps) / 8_000_000_000;
            if backlog > u128::from(self.cfg.queue_bytes) {
                self.stats.queue_drops += 1;
                return None;
            }
        }
        self.busy_until = start + self.serialization(bytes);
        if self.cfg.loss > 0.0 && self.rng.unit() < self.cfg.loss {
            self.stats.losses += 1;
            return None;
        }
        self.stats.delivered += 1;
        self.stats.bytes += bytes as u64;
        Some(self.busy_until + self.cfg.latency)
    }
}

/// An event due at a time; ties are broken by insertion order, so runs are reproducible.
#[derive(Debug)]
struct Scheduled<E> {
    at: Ns,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: the earliest event must compare greatest.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Events in time order.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Scheduled<E>>,
    seq: u64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<E> EventQueue<E> {
    /// Schedules `event` at `at`.
    pub fn push(&mut self, at: Ns, event: E) {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    /// When the next event is due.
    pub fn next_at(&self) -> Option<Ns> {
        self.heap.peek().map(|s| s.at)
    }

    /// The next event if it is due at or before `now`.
    pub fn pop_due(&mut self, now: Ns) -> Option<(Ns, E)> {
        if self.heap.peek().is_some_and(|s| s.at <= now) {
            self.heap.pop().map(|s| (s.at, s.event))
        } else {
            None
        }
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_serialises_queues_and_delays() {
        // 8 Mbit/s: 1000 bytes take 1 ms. Queue of 2500 bytes.
        let cfg = LinkConfig {
            latency: Ns::millis(5),
            bandwidth_bps: 8_000_000,
            queue_bytes: 2500,
            loss: 0.0,
        };
        let mut link = Link::new(cfg, 1);
        let t0 = Ns::ZERO;
        assert_eq!(link.offer(t0, 1000), Some(Ns::micros(6_000)));
        assert_eq!(link.offer(t0, 1000), Some(Ns::micros(7_000)));
        assert_eq!(
            link.offer(t0, 1000),
            Some(Ns::micros(8_000)),
            "2000 bytes wait behind the first: fits"
        );
        assert_eq!(link.offer(t0, 1000), None, "3000 bytes would wait: dropped");
        assert_eq!(link.stats().queue_drops, 1);
        assert_eq!(
            link.offer(Ns::micros(10_000), 1000),
            Some(Ns::micros(16_000)),
            "idle again"
        );
    }

    #[test]
    fn losses_follow_the_configured_rate_and_the_seed() {
        let cfg = LinkConfig {
            loss: 0.05,
            ..LinkConfig::ideal(Ns::ZERO)
        };
        let mut a = Link::new(cfg, 42);
        let mut b = Link::new(cfg, 42);
        let outcomes: Vec<bool> = (0..20_000).map(|i| a.offer(Ns(i), 100).is_some()).collect();
        let again: Vec<bool> = (0..20_000).map(|i| b.offer(Ns(i), 100).is_some()).collect();
        assert_eq!(outcomes, again);
        let lost = a.stats().losses as f64 / 20_000.0;
        assert!((0.04..0.06).contains(&lost), "loss rate {lost}");
    }

    #[test]
    fn events_come_out_in_time_order_and_ties_in_insertion_order() {
        let mut q = EventQueue::default();
        q.push(Ns(30), "c");
        q.push(Ns(10), "a");
        q.push(Ns(30), "d");
        q.push(Ns(20), "b");
        let mut out = Vec::new();
        while let Some((_, e)) = q.pop_due(Ns(100)) {
            out.push(e);
        }
        assert_eq!(out, ["a", "b", "c", "d"]);
        q.push(Ns(200), "late");
        assert_eq!(q.pop_due(Ns(100)), None);
        assert_eq!(q.next_at(), Some(Ns(200)));
    }
}
