//! The engine's counters, one per event worth telling an operator about, in the manner of OpenBSD's
//! `pfsyncstats` (a named counter per drop reason), plus latency histograms for sync lag and IACK.

use super::delivery::SenderCounts;
use crate::time::Duration;

/// A latency histogram with power-of-two microsecond buckets (bucket `i` holds values below `2^i` us).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    buckets: [u64; 32],
    count: u64,
    sum_us: u64,
    max_us: u64,
}

impl Histogram {
    /// Records one value.
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros();
        let bucket = (64 - us.leading_zeros()).min(31) as usize;
        self.buckets[bucket] += 1;
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.max_us = self.max_us.max(us);
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest value recorded.
    pub fn max(&self) -> Duration {
        Duration(self.max_us)
    }

    /// The sum of the values recorded.
    pub fn sum(&self) -> Duration {
        Duration(self.sum_us)
    }

    /// The mean.
    pub fn mean(&self) -> Duration {
        Duration(self.sum_us.checked_div(self.count).unwrap_or(0))
    }

    /// An upper bound of the `q` quantile (0 to 1): the top of the bucket that holds it.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let top = if i == 0 { 0 } else { (1u64 << i) - 1 };
                return Duration(top.min(self.max_us));
            }
        }
        Duration(self.max_us)
    }

    /// The buckets with their upper bounds in microseconds, for a Prometheus histogram.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .map(|(i, n)| (if i == 0 { 0 } else { (1u64 << i) - 1 }, *n))
    }
}

/// Counters of one direction of one message kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// Messages.
    pub messages: u64,
    /// Bytes of those messages (their sections' share included).
    pub bytes: u64,
}

/// Message kinds, for per-action counters.
pub const ACTIONS: [&str; 9] = [
    "clr", "ins_ack", "upd_c", "upd_req", "del", "del_c", "bus", "ins", "upd",
];

/// Index of an action name in [`ACTIONS`].
pub fn action_index(name: &str) -> usize {
    ACTIONS.iter().position(|a| *a == name).unwrap_or(0)
}

/// Everything the engine counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Messages and bytes sent, per action ([`ACTIONS`]).
    pub sent: [MessageCounts; 9],
    /// Messages and bytes received, per action.
    pub received: [MessageCounts; 9],
    /// Sync packets sent.
    pub packets_out: u64,
    /// Sync bytes sent (pfsync payload).
    pub bytes_out: u64,
    /// Sync packets received and accepted.
    pub packets_in: u64,
    /// Sync bytes received.
    pub bytes_in: u64,
    /// Packets from addresses that are not peers.
    pub drop_not_a_peer: u64,
    /// Packets that failed the wire checks (bad header, length, action...).
    pub drop_malformed: u64,
    /// Packets of pfsync header version 5: FreeBSD's pfsync, whose state formats (1301, 1400) differ.
    pub drop_version_freebsd: u64,
    /// Packets of any other header version but 6.
    pub drop_version_other: u64,
    /// Messages with values OpenBSD refuses (`badval`).
    pub drop_bad_value: u64,
    /// States refused because Tandem cannot carry them, by kind: SYN proxy phases, routing domains,
    /// translated states (see `codec::Unsupported`, in that order).
    pub refused: [u64; 3],
    /// States whose key's address family disagrees with the state's: refused.
    pub drop_family_mismatch: u64,
    /// Sections skipped without parsing, by kind: legacy actions, unknown actions, known actions with
    /// messages shorter than their size (see `codec::SkippedSection`, in that order).
    pub sections_skipped: [u64; 3],
    /// Messages about states we do not have (`badstate`).
    pub unknown_state: u64,
    /// Updates that were older than what we hold on some side (`stale`).
    pub stale: u64,
    /// Update requests sent for unknown states.
    pub requests_sent: u64,
    /// Update requests suppressed by the rate limit.
    pub requests_suppressed: u64,
    /// Messages whose creator id is ours but that we did not create (two nodes with one host id?).
    pub creator_conflicts: u64,
    /// CLRs refused: a peer may clear only the states it created (its own host id).
    pub clr_refused: u64,
    /// Bulk requests not answered: the peer had a bulk update within the per-peer interval.
    pub bulk_requests_limited: u64,
    /// Peers' states refused: their creator had its limit of states here (`sync.limits.states-per-peer`).
    pub refused_state_limit: u64,
    /// Update requests not answered: the peer had made its limit for the second.
    pub requests_limited: u64,
    /// Deferrals that did not wait for a live peer because it had stopped acknowledging inserts.
    pub deferral_skipped_unresponsive: u64,
    /// Creating packets held.
    pub deferred: u64,
    /// Held packets released because every live peer acknowledged.
    pub released_by_iack: u64,
    /// Held packets released because a peer sent an update of the state.
    pub released_by_update: u64,
    /// Held packets released at the timeout.
    pub released_by_timeout: u64,
    /// Deferred inserts sent again because a peer waited for had not acknowledged them yet.
    pub ins_resent: u64,
    /// Held packets released because no live peer was left to wait for.
    pub released_no_peers: u64,
    /// Time from an insert to the last acknowledgement.
    pub iack_latency: Histogram,
    /// Time from a state change to the packet carrying it.
    pub sync_lag: Histogram,
    /// Bulk updates this node answered.
    pub bulks_sent: u64,
    /// States sent in bulk updates.
    pub bulk_states_sent: u64,
    /// Bulk updates this node completed receiving.
    pub bulks_received: u64,
    /// Bulk requests that went unanswered after every retry.
    pub bulk_failures: u64,
    /// Events the engine could not attribute (snapshots of unknown requests, updates of unknown states).
    pub stray_events: u64,
    /// Acknowledged delivery (all zero when it is off).
    pub delivery: DeliveryStats,
}

/// Acknowledged delivery's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Our stream: packets numbered, sent again, let go, peers given up on.
    pub sender: SenderCounts,
    /// Acknowledgements sent (one per peer's stream per report).
    pub acks_sent: u64,
    /// Gaps (runs of missing packets) we reported.
    pub gaps_reported: u64,
    /// Acknowledgements of our stream received.
    pub acks_received: u64,
    /// Gaps in our stream peers reported.
    pub gaps_received: u64,
    /// Numbered packets received twice (their states ignored).
    pub duplicates: u64,
    /// Peers seen restarting (a new epoch): each was sent a bulk update.
    pub peer_restarts: u64,
    /// States, deletes and clears queued again for a lost packet (as they are now).
    pub states_resent: u64,
    /// Bulk updates started for a peer that missed packets the resend queue no longer held.
    pub bulks_for_missed: u64,
    /// Acknowledgements naming numbers of our stream we never sent, or an epoch not ours: ignored.
    pub acks_ignored: u64,
}
