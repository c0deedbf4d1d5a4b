//! A worker's counters: packets and bytes in and out, a named counter per reason a packet is dropped (as
//! OpenBSD's pfsync keeps one per reason), states created and refused, and sync events. Each worker is the
//! only writer of its counters (a plain load and store, no locked read-modify-write); the control thread
//! reads them at any time for `tandem show` and metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a worker dropped a packet. The names are stable: they appear in `tandem show counters` and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The frame failed parsing (the detailed reason is counted in the `malformed` array).
    Malformed,
    /// Not IPv4 or IPv6, in router mode.
    NotIp,
    /// An IPv6 first fragment with extension headers after its fragment header, which the reassembly
    /// does not place (see the worker's module notes).
    Fragment,
    /// No route to the destination.
    NoRoute,
    /// The next hop's MAC stayed unknown (a second of waiting, or too many packets waiting for it);
    /// resolution was asked of the control thread.
    NoNeighbor,
    /// TTL or hop limit ran out (an ICMP time-exceeded was sent when possible).
    TtlExceeded,
    /// A block rule matched.
    BlockedByRule,
    /// No rule matched: default block (includes TCP segments without a state that are not an opening SYN).
    BlockedByDefault,
    /// pf's window checks refused a segment on an existing state.
    OutOfWindow,
    /// A new state was refused because the shard is full.
    StateLimit,
    /// The output queue was full.
    TxFull,
    /// Addressed to the appliance itself and not handled.
    LocalUnhandled,
    /// An ICMP error quoting a packet of no known state (or a later fragment).
    IcmpNoState,
    /// The packet was punted to the control thread but its queue was full.
    PuntFull,
    /// A SYN on a state whose both sides are established (pf answers with a challenge ACK and drops it).
    SynOnEstablished,
    /// TCP flags no stack sends (pf's `pf_normalize_tcp`: SYN with RST, FIN/PSH/URG without ACK, none).
    BadTcpFlags,
    /// IPv4 options on a packet whose rule does not say `allow-opts` (pf's `PFRES_IPOPTIONS`).
    IpOptions,
    /// Router mode: a frame whose destination MAC is not ours (another host's on a shared segment).
    NotForUs,
    /// An ICMP error that does not fit the state it names: its outer destination is not the quoted
    /// packet's source, a quoted TCP sequence number lies outside the window, or a quoted echo travels the
    /// wrong way (pf's `PFRES_BADSTATE`).
    IcmpMismatch,
    /// An ICMP echo request or reply travelling the wrong way on its state.
    EchoDirection,
    /// A packet for another worker's state found that worker's queue full.
    RedirectFull,
    /// Larger than the egress port's MTU and not to be fragmented (IPv4 with DF, IPv6): answered with
    /// "fragmentation needed" or "packet too big" where the ingress port has an address.
    TooBig,
    /// A fragment overlapping another of its datagram: the whole datagram is dropped (pf's rule).
    FragmentOverlap,
    /// A fragment received twice: the copy is dropped.
    FragmentDuplicate,
    /// A datagram over the reassembly limits (fragments per datagram, 65535 bytes, memory), dropped whole.
    FragmentLimit,
    /// A datagram still incomplete at the reassembly timeout, dropped whole.
    FragmentTimeout,
    /// A fragment of a reassembled datagram whose verdict was drop (or that could not follow the first).
    FragmentOfDropped,
}

impl DropReason {
    /// Every reason, in counter order.
    pub const ALL: [DropReason; 27] = [
        DropReason::Malformed,
        DropReason::NotIp,
        DropReason::Fragment,
        DropReason::NoRoute,
        DropReason::NoNeighbor,
        DropReason::TtlExceeded,
        DropReason::BlockedByRule,
        DropReason::BlockedByDefault,
        DropReason::OutOfWindow,
        DropReason::StateLimit,
        DropReason::TxFull,
        DropReason::LocalUnhandled,
        DropReason::IcmpNoState,
        DropReason::PuntFull,
        DropReason::SynOnEstablished,
        DropReason::BadTcpFlags,
        DropReason::IpOptions,
        DropReason::NotForUs,
        DropReason::IcmpMismatch,
        DropReason::EchoDirection,
        DropReason::RedirectFull,
        DropReason::TooBig,
        DropReason::FragmentOverlap,
        DropReason::FragmentDuplicate,
        DropReason::FragmentLimit,
        DropReason::FragmentTimeout,
        DropReason::FragmentOfDropped,
    ];

    /// The counter's name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::NotIp => "not_ip",
            DropReason::Fragment => "fragment",
            DropReason::NoRoute => "no_route",
            DropReason::NoNeighbor => "no_neighbor",
            DropReason::TtlExceeded => "ttl_exceeded",
            DropReason::BlockedByRule => "blocked_by_rule",
            DropReason::BlockedByDefault => "blocked_by_default",
            DropReason::OutOfWindow => "out_of_window",
            DropReason::StateLimit => "state_limit",
            DropReason::TxFull => "tx_full",
            DropReason::LocalUnhandled => "local_unhandled",
            DropReason::IcmpNoState => "icmp_no_state",
            DropReason::PuntFull => "punt_full",
            DropReason::SynOnEstablished => "syn_on_established",
            DropReason::BadTcpFlags => "bad_tcp_flags",
            DropReason::IpOptions => "ip_options",
            DropReason::NotForUs => "not_for_us",
            DropReason::IcmpMismatch => "icmp_mismatch",
            DropReason::EchoDirection => "echo_direction",
            DropReason::RedirectFull => "redirect_full",
            DropReason::TooBig => "too_big",
            DropReason::FragmentOverlap => "fragment_overlap",
            DropReason::FragmentDuplicate => "fragment_duplicate",
            DropReason::FragmentLimit => "fragment_limit",
            DropReason::FragmentTimeout => "fragment_timeout",
            DropReason::FragmentOfDropped => "fragment_of_dropped",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Buckets of the hold-time histogram: powers of two of microseconds up to about 33 s.
pub const HOLD_BUCKETS: usize = 26;

/// The `q`-th quantile of a power-of-two histogram (bucket i counts values below 2^i), as the upper bound
/// of the bucket it falls in.
pub fn quantile_of(buckets: &[u64], q: f64) -> Option<u64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(1u64 << i);
        }
    }
    Some(1u64 << (buckets.len() - 1))
}

/// A counter written by one thread and read by others.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (only the owning worker calls this).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Sets the value (for gauges such as the number of states).
    #[inline]
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Everything a worker counts.
#[derive(Debug)]
pub struct WorkerCounters {
    /// Packets received.
    pub rx_packets: Counter,
    /// Bytes received.
    pub rx_bytes: Counter,
    /// Packets sent.
    pub tx_packets: Counter,
    /// Bytes sent.
    pub tx_bytes: Counter,
    /// Drops by [`DropReason`].
    pub drops: [Counter; DropReason::ALL.len()],
    /// Malformed frames by the parser's reason (indexed by the wire layer's reason index).
    pub malformed: Vec<Counter>,
    /// States held now (a gauge the worker refreshes every poll).
    pub states: Counter,
    /// States created from local packets.
    pub states_created: Counter,
    /// States inserted from peers.
    pub states_from_peers: Counter,
    /// States that expired.
    pub states_expired: Counter,
    /// States of connections closed on both sides replaced by a new connection on the same ports (a SYN
    /// here, or a peer's insert of the new connection).
    pub states_reopened: Counter,
    /// Peer inserts of a flow this worker already had under another name, merged into it.
    pub states_merged_on_insert: Counter,
    /// States removed by peers (delete or clear).
    pub states_removed_by_peers: Counter,
    /// Packets that passed on an existing state.
    pub state_hits: Counter,
    /// Packets punted to the control thread (ARP, neighbour discovery, VRRP, to the appliance).
    pub punted: Counter,
    /// Packets the worker originated (RST, ICMP errors, challenge ACKs).
    pub originated: Counter,
    /// Packets held for a peer's update (ahead of what this node knew of the other direction).
    pub held: Counter,
    /// Held packets that passed pf's checks once the update came.
    pub hold_released: Counter,
    /// Held packets that failed pf's checks after the update.
    pub hold_refused: Counter,
    /// Held packets dropped at the hold timeout (also counted as out of window).
    pub hold_timeout: Counter,
    /// Packets of no state the rules block, held for a peer's insert of the state they belong to (their
    /// way out ran through a peer, which created it).
    pub held_for_state: Counter,
    /// Of those, packets whose state a peer's insert brought: handled again, as any packet with a state.
    pub held_for_state_found: Counter,
    /// Of those, packets no state came for in the hold timeout: refused as the rules decided.
    pub held_for_state_timeout: Counter,
    /// Probes sent to an endpoint for its numbers because a held packet's state has no live peer left to
    /// update it (the node that updated it failed): the endpoint's answer cures the hold.
    pub hold_probed: Counter,
    /// Packets not held because the worker's hold pool was full.
    pub hold_pool_full: Counter,
    /// Packets not held because their state had its share of the pool.
    pub hold_state_full: Counter,
    /// How long held packets waited: counts per power of two of microseconds (bucket i: below 2^i us).
    pub hold_time: [Counter; HOLD_BUCKETS],
    /// Packets held while their next hop's MAC was resolved.
    pub parked: Counter,
    /// Packets fragmented to fit the egress port's MTU.
    pub fragmented: Counter,
    /// Fragments held for reassembly.
    pub fragments_held: Counter,
    /// Datagrams reassembled and checked whole.
    pub datagrams_reassembled: Counter,
    /// Packets handed to the worker that holds their state (ICMP errors a NIC's RSS misplaced).
    pub redirected: Counter,
    /// Frames sent to their state's owner over the sync link (owner redirect), and their bytes.
    pub owner_redirected: Counter,
    /// Bytes of those frames.
    pub owner_redirected_bytes: Counter,
    /// Frames a peer redirected to this node as their state's owner, and their bytes.
    pub owner_received: Counter,
    /// Bytes of those frames.
    pub owner_received_bytes: Counter,
    /// Frames checked here because the queue to the sync core was full when they were to be redirected.
    pub owner_redirect_full: Counter,
    /// States that started redirecting to their owner (auto: they kept needing holds).
    pub redirect_started: Counter,
    /// Answers not sent because the worker's answer rate limit was reached.
    pub answers_limited: Counter,
    /// Answers not sent because the packet they would answer failed its transport checksum.
    pub answers_bad_checksum: Counter,
    /// TCP segments normalized in flight (a FIN cleared from a SYN, reserved bits, a stray urgent pointer).
    pub normalized: Counter,
    /// Events pushed to the sync core.
    pub events: Counter,
    /// Events dropped because the queue to the sync core was full (repaired later by update requests).
    pub events_dropped: Counter,
    /// Operations applied from the sync core.
    pub ops: Counter,
    /// Creating packets held for deferral.
    pub deferred: Counter,
    /// Held packets released by the sync core.
    pub deferred_released: Counter,
    /// Held packets the worker released on its own after the backstop time.
    pub deferred_backstop: Counter,
    /// Held packets released early because the deferral queue was full (pf releases the oldest).
    pub deferred_overflow: Counter,
}

impl WorkerCounters {
    /// Zeroed counters, with `malformed_reasons` slots for the parser's reasons.
    pub fn new(malformed_reasons: usize) -> WorkerCounters {
        WorkerCounters {
            rx_packets: Counter::default(),
            rx_bytes: Counter::default(),
            tx_packets: Counter::default(),
            tx_bytes: Counter::default(),
            drops: Default::default(),
            malformed: (0..malformed_reasons).map(|_| Counter::default()).collect(),
            states: Counter::default(),
            states_created: Counter::default(),
            states_from_peers: Counter::default(),
            states_expired: Counter::default(),
            states_reopened: Counter::default(),
            states_merged_on_insert: Counter::default(),
            states_removed_by_peers: Counter::default(),
            state_hits: Counter::default(),
            punted: Counter::default(),
            originated: Counter::default(),
            held: Counter::default(),
            hold_released: Counter::default(),
            hold_refused: Counter::default(),
            hold_timeout: Counter::default(),
            held_for_state: Counter::default(),
            held_for_state_found: Counter::default(),
            held_for_state_timeout: Counter::default(),
            hold_probed: Counter::default(),
            hold_pool_full: Counter::default(),
            hold_state_full: Counter::default(),
            hold_time: Default::default(),
            parked: Counter::default(),
            fragmented: Counter::default(),
            fragments_held: Counter::default(),
            datagrams_reassembled: Counter::default(),
            redirected: Counter::default(),
            owner_redirected: Counter::default(),
            owner_redirected_bytes: Counter::default(),
            owner_received: Counter::default(),
            owner_received_bytes: Counter::default(),
            owner_redirect_full: Counter::default(),
            redirect_started: Counter::default(),
            answers_limited: Counter::default(),
            answers_bad_checksum: Counter::default(),
            normalized: Counter::default(),
            events: Counter::default(),
            events_dropped: Counter::default(),
            ops: Counter::default(),
            deferred: Counter::default(),
            deferred_released: Counter::default(),
            deferred_backstop: Counter::default(),
            deferred_overflow: Counter::default(),
        }
    }

    /// Records how long a held packet waited.
    pub fn record_hold(&self, waited: tandem_sync::time::Duration) {
        let us = waited.as_micros().max(1);
        let bucket = (64 - us.leading_zeros() as usize).min(HOLD_BUCKETS - 1);
        self.hold_time[bucket].inc();
    }

    /// The `q`-th quantile (0 to 1) of the hold times recorded, as the upper bound of its bucket in
    /// microseconds; `None` when none was recorded.
    pub fn hold_quantile(&self, q: f64) -> Option<u64> {
        quantile_of(
            &self.hold_time.iter().map(Counter::get).collect::<Vec<_>>(),
            q,
        )
    }

    /// Counts a drop.
    #[inline]
    pub fn count_drop(&self, reason: DropReason) {
        self.drops[reason.index()].inc();
    }

    /// The count of one drop reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()].get()
    }

    /// Every counter with its name, drops as `drop_<reason>`.
    pub fn named(&self) -> Vec<(String, u64)> {
        let mut out = vec![
            ("rx_packets".to_string(), self.rx_packets.get()),
            ("rx_bytes".to_string(), self.rx_bytes.get()),
            ("tx_packets".to_string(), self.tx_packets.get()),
            ("tx_bytes".to_string(), self.tx_bytes.get()),
            ("states_created".to_string(), self.states_created.get()),
            (
                "states_from_peers".to_string(),
                self.states_from_peers.get(),
            ),
            ("states_expired".to_string(), self.states_expired.get()),
            ("states_reopened".to_string(), self.states_reopened.get()),
            (
                "states_merged_on_insert".to_string(),
                self.states_merged_on_insert.get(),
            ),
            (
                "states_removed_by_peers".to_string(),
                self.states_removed_by_peers.get(),
            ),
            ("state_hits".to_string(), self.state_hits.get()),
            ("punted".to_string(), self.punted.get()),
            ("originated".to_string(), self.originated.get()),
            ("held".to_string(), self.held.get()),
            ("hold_released".to_string(), self.hold_released.get()),
            ("hold_refused".to_string(), self.hold_refused.get()),
            ("hold_timeout".to_string(), self.hold_timeout.get()),
            ("held_for_state".to_string(), self.held_for_state.get()),
            (
                "held_for_state_found".to_string(),
                self.held_for_state_found.get(),
            ),
            (
                "held_for_state_timeout".to_string(),
                self.held_for_state_timeout.get(),
            ),
            ("hold_probed".to_string(), self.hold_probed.get()),
            ("hold_pool_full".to_string(), self.hold_pool_full.get()),
            ("hold_state_full".to_string(), self.hold_state_full.get()),
            ("parked".to_string(), self.parked.get()),
            ("fragmented".to_string(), self.fragmented.get()),
            ("fragments_held".to_string(), self.fragments_held.get()),
            (
                "datagrams_reassembled".to_string(),
                self.datagrams_reassembled.get(),
            ),
            ("redirected".to_string(), self.redirected.get()),
            ("owner_redirected".to_string(), self.owner_redirected.get()),
            (
                "owner_redirected_bytes".to_string(),
                self.owner_redirected_bytes.get(),
            ),
            ("owner_received".to_string(), self.owner_received.get()),
            (
                "owner_received_bytes".to_string(),
                self.owner_received_bytes.get(),
            ),
            (
                "owner_redirect_full".to_string(),
                self.owner_redirect_full.get(),
            ),
            ("redirect_started".to_string(), self.redirect_started.get()),
            ("answers_limited".to_string(), self.answers_limited.get()),
            (
                "answers_bad_checksum".to_string(),
                self.answers_bad_checksum.get(),
            ),
            ("normalized".to_string(), self.normalized.get()),
            ("sync_events".to_string(), self.events.get()),
            ("sync_events_dropped".to_string(), self.events_dropped.get()),
            ("sync_ops".to_string(), self.ops.get()),
            ("deferred".to_string(), self.deferred.get()),
            (
                "deferred_released".to_string(),
                self.deferred_released.get(),
            ),
            (
                "deferred_backstop".to_string(),
                self.deferred_backstop.get(),
            ),
            (
                "deferred_overflow".to_string(),
                self.deferred_overflow.get(),
            ),
        ];
        for reason in DropReason::ALL {
            out.push((format!("drop_{}", reason.name()), self.dropped(reason)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_have_distinct_names_and_counters() {
        let c = WorkerCounters::new(3);
        c.count_drop(DropReason::OutOfWindow);
        c.count_drop(DropReason::OutOfWindow);
        c.count_drop(DropReason::NoRoute);
        assert_eq!(c.dropped(DropReason::OutOfWindow), 2);
        assert_eq!(c.dropped(DropReason::NoRoute), 1);
        let names: std::collections::HashSet<&str> =
            DropReason::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(names.len(), DropReason::ALL.len());
        assert!(c.named().contains(&("drop_out_of_window".to_string(), 2)));
    }
}
