//! When an update must be sent: the window-aware rule, and pfsync's classic one for comparison.
//!
//! A peer checks the packets it forwards against its copy of the state (pf's rules, unchanged). Two copied
//! values can fall behind far enough to make it reject a valid packet:
//! - a side's `seqlo`: an acknowledgement for data the peer has not heard of is refused once it runs more
//!   than pf's MAXACKWINDOW (67,035 bytes) ahead of the copy;
//! - a side's `seqhi`: a segment is refused once it ends past the copy's right window edge, which moves
//!   only with acknowledgements the peer may not see.
//!
//! For each TCP state the engine keeps what peers already know (what we sent, merged with what they sent
//! us) and what we know now. [`time_to_send`] turns the gap into a deadline: how long before, at the rate
//! the side is advancing, the gap would reach what the peer tolerates, less the time an update takes to
//! reach it. Updates of slow flows wait for the flush deadline and share packets; fast flows are sent as
//! early as needed, and no earlier.

use crate::seq;
use crate::state::TcpPeer;
use crate::time::Duration;

/// pf's MAXACKWINDOW: how far an acknowledgement may run ahead of the copy's `seqlo`.
pub const MAX_ACK_WINDOW: u32 = 0xffff + 1500;

/// What the rule needs besides the two views of the state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowBudget {
    /// Bytes kept in reserve under each tolerance, for estimation error and packets already in flight.
    pub reserve: u32,
    /// Expected one-way delay of a sync packet, including the receiver's processing.
    pub sync_delay: Duration,
}

impl Default for WindowBudget {
    /// 2 KB of reserve: with the dataplane's 2 KB reporting quantum this leaves the policy 94% of pf's
    /// tolerance, which the cluster simulation shows it can use without window drops (docs/simulation.md).
    fn default() -> Self {
        WindowBudget {
            reserve: 2 * 1024,
            sync_delay: Duration::ZERO,
        }
    }
}

/// How far each side has advanced beyond what peers know, and how close that is to what they tolerate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gap {
    /// Bytes of `seqlo` peers have not heard of, per side.
    pub seqlo_lag: [u32; 2],
    /// Bytes each side may still send before passing the right edge peers know, when we know a further
    /// edge (None when peers know the edge we know, so there is nothing to tell).
    pub seqhi_headroom: [Option<i64>; 2],
}

/// Measures the gap between what peers `known` and what we know `now`.
pub fn gap(known: &[TcpPeer; 2], now: &[TcpPeer; 2]) -> Gap {
    let mut g = Gap::default();
    for side in 0..2 {
        let (k, n) = (&known[side], &now[side]);
        if n.seqlo != 0 && (k.seqlo == 0 || seq::gt(n.seqlo, k.seqlo)) {
            g.seqlo_lag[side] = if k.seqlo == 0 {
                u32::MAX
            } else {
                n.seqlo.wrapping_sub(k.seqlo)
            };
        }
        if seq::gt(n.seqhi, k.seqhi) && n.seqlo != 0 {
            g.seqhi_headroom[side] = Some(i64::from(seq::diff(k.seqhi, n.seqlo)));
        }
    }
    g
}

/// How long an update may wait before a peer's copy would refuse a valid packet, given each side's rate
/// of progress in bytes per second. `None`: never on account of the windows (only the flush deadline
/// applies). `Some(ZERO)`: now.
pub fn time_to_send(
    known: &[TcpPeer; 2],
    now: &[TcpPeer; 2],
    rate: [f64; 2],
    budget: &WindowBudget,
) -> Option<Duration> {
    let g = gap(known, now);
    let limit = f64::from(MAX_ACK_WINDOW.saturating_sub(budget.reserve));
    let mut soonest: Option<f64> = None;
    let mut consider = |seconds: f64| {
        // An infinite wait (a side of unknown speed) sets no deadline.
        if seconds.is_finite() {
            soonest = Some(soonest.map_or(seconds, |s: f64| s.min(seconds)));
        }
    };
    for ((&lag, headroom), &rate) in g.seqlo_lag.iter().zip(g.seqhi_headroom).zip(rate.iter()) {
        if lag == u32::MAX {
            // Peers have never heard this side speak: tell them at once (the handshake, typically).
            consider(0.0);
            continue;
        }
        if lag > 0 {
            let left = limit - f64::from(lag);
            consider(if left <= 0.0 {
                0.0
            } else {
                seconds_at(left, rate)
            });
        }
        if let Some(headroom) = headroom {
            let left = headroom as f64 - f64::from(budget.reserve);
            consider(if left <= 0.0 || (rate <= 0.0 && left < limit) {
                // Out of headroom, or close enough to the edge that a sender of unknown speed (a
                // window that opened after the handshake, typically) could reach it before the
                // flush deadline: tell peers the further edge now.
                0.0
            } else {
                seconds_at(left, rate)
            });
        }
    }
    soonest.map(|s| {
        let us = (s * 1e6) as u64;
        Duration(us.saturating_sub(budget.sync_delay.as_micros()))
    })
}

fn seconds_at(bytes: f64, rate: f64) -> f64 {
    if rate <= 0.0 {
        f64::INFINITY
    } else {
        bytes / rate
    }
}

/// A side's rate of progress, estimated from successive observations of its `seqlo`: an exponentially
/// weighted average over updates, in bytes per second. Kept in single precision (24 bits of mantissa
/// are ample for an estimate; the engine keeps two per state).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RateEstimate {
    bytes_per_sec: f32,
}

impl RateEstimate {
    /// The estimate.
    pub fn get(&self) -> f64 {
        f64::from(self.bytes_per_sec)
    }

    /// Folds in `bytes` of progress over `elapsed`.
    pub fn observe(&mut self, bytes: u32, elapsed: Duration) {
        if elapsed.as_micros() == 0 {
            return;
        }
        let sample = f64::from(bytes) * 1e6 / elapsed.as_micros() as f64;
        // A faster sample is believed at once (being late is what costs); a slower one only gradually.
        let old = self.get();
        let new = if sample > old {
            sample
        } else {
            0.75 * old + 0.25 * sample
        };
        self.bytes_per_sec = new as f32;
    }
}

/// What the dataplane does per packet to decide whether a state is worth an event to the sync core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushPolicy {
    /// Report when a TCP state changes, or `seqlo`/`seqhi` of either side move by `quantum` bytes or more
    /// since the last report (the window-aware engine needs to know progress at that granularity).
    Progress {
        /// Bytes of movement worth a report.
        quantum: u32,
    },
    /// Report after the first packet since the last report and then every `every` packets (pfsync counts
    /// every packet towards `maxupd`).
    Count {
        /// Packets between reports.
        every: u16,
    },
}

impl PushPolicy {
    /// Whether `peers` moved enough since `mark` (which counts packets in `updates`) to report at
    /// `now_secs`. A state reported longer ago than `refresh_secs` is reported again, so that peers
    /// restart its expiry timer even when nothing else changed (idle TCP, UDP).
    #[inline]
    pub fn should_report(
        &self,
        mark: &crate::state::SyncMark,
        peers: &[TcpPeer; 2],
        now_secs: u32,
        refresh_secs: u32,
    ) -> bool {
        if mark.state[0] != peers[0].state
            || mark.state[1] != peers[1].state
            || now_secs.wrapping_sub(mark.at_secs) >= refresh_secs
        {
            return true;
        }
        match *self {
            PushPolicy::Progress { quantum } => (0..2).any(|i| {
                peers[i].seqlo.wrapping_sub(mark.seqlo[i]) >= quantum
                    && seq::gt(peers[i].seqlo, mark.seqlo[i])
                    || peers[i].seqhi.wrapping_sub(mark.seqhi[i]) >= quantum
                        && seq::gt(peers[i].seqhi, mark.seqhi[i])
            }),
            PushPolicy::Count { every } => mark.updates == 1 || mark.updates >= every,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{SyncMark, tcp_state};

    fn peer(seqlo: u32, seqhi: u32) -> TcpPeer {
        TcpPeer {
            seqlo,
            seqhi,
            max_win: 65535,
            state: tcp_state::ESTABLISHED,
            ..TcpPeer::default()
        }
    }

    const BUDGET: WindowBudget = WindowBudget {
        reserve: 8192,
        sync_delay: Duration(10),
    };

    #[test]
    fn nothing_new_means_no_deadline() {
        let p = [peer(1000, 90_000), peer(5000, 70_000)];
        assert_eq!(time_to_send(&p, &p, [1e9, 0.0], &BUDGET), None);
    }

    #[test]
    fn a_seqlo_gap_is_sent_before_it_reaches_maxackwindow() {
        let known = [peer(1000, 900_000), peer(5000, 70_000)];
        let mut now = known;
        now[0].seqlo += 20_000;
        // 1 GB/s: the remaining 67035 - 8192 - 20000 bytes take 38.8 us, less 10 us of sync delay.
        let t = time_to_send(&known, &now, [1e9, 0.0], &BUDGET).expect("a deadline");
        assert_eq!(t, Duration(28));
        // A slow flow may wait much longer.
        let slow = time_to_send(&known, &now, [1e6, 0.0], &BUDGET).expect("a deadline");
        assert!(slow > Duration::millis(30));
        // Past the tolerance: now.
        now[0].seqlo += 40_000;
        assert_eq!(
            time_to_send(&known, &now, [1e6, 0.0], &BUDGET),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn a_new_right_edge_is_urgent_only_when_the_sender_nears_the_old_one() {
        // Peers know the sender may send up to 100_000; we know it may now send to 300_000.
        let known = [peer(10_000, 100_000), peer(5000, 70_000)];
        let mut now = known;
        now[0].seqhi = 300_000;
        // The sender is at 10_000: 90_000 bytes of headroom, 81_808 after the reserve: 81.8 us at 1 GB/s,
        // less 10 us of sync delay.
        assert_eq!(
            time_to_send(&known, &now, [1e9, 0.0], &BUDGET),
            Some(Duration(71))
        );
        now[0].seqlo = 95_000;
        let known_lo = [peer(95_000, 100_000), known[1]];
        assert_eq!(
            time_to_send(&known_lo, &now, [1e9, 0.0], &BUDGET),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn an_opened_window_within_reach_of_a_sender_of_unknown_speed_is_sent_at_once() {
        // After the handshake peers know the unscaled 64 KB edge; the receiver has just opened a 6 MB
        // window and nothing is known yet of how fast the sender goes: it could reach the old edge within
        // the flush deadline, so the new one goes out now.
        let known = [peer(1000, 66_535), peer(5000, 70_000)];
        let mut now = known;
        now[0].seqhi = 6_000_000;
        assert_eq!(
            time_to_send(&known, &now, [0.0, 0.0], &BUDGET),
            Some(Duration::ZERO)
        );
        // Far from the old edge it waits for the flush deadline as before.
        let roomy = [peer(1000, 900_000), peer(5000, 70_000)];
        let mut later = roomy;
        later[0].seqhi = 6_000_000;
        assert_eq!(time_to_send(&roomy, &later, [0.0, 0.0], &BUDGET), None);
    }

    #[test]
    fn a_side_peers_never_heard_of_is_sent_at_once() {
        let known = [peer(1000, 70_000), TcpPeer::default()];
        let now = [peer(1000, 70_000), peer(5001, 70_000)];
        assert_eq!(
            time_to_send(&known, &now, [0.0, 0.0], &BUDGET),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn rates_follow_speed_ups_at_once_and_slow_downs_gradually() {
        let mut r = RateEstimate::default();
        r.observe(1000, Duration(1000));
        assert_eq!(r.get(), 1e6);
        r.observe(100_000, Duration(1000));
        assert_eq!(r.get(), 1e8);
        r.observe(1000, Duration(1000));
        assert!(r.get() < 1e8 && r.get() > 5e7);
    }

    #[test]
    fn the_dataplane_reports_progress_by_quantum_or_packet_count() {
        let peers = [peer(10_000, 80_000), peer(5000, 70_000)];
        let mut mark = SyncMark::of(&peers, 100);
        let progress = PushPolicy::Progress { quantum: 4096 };
        let mut moved = peers;
        moved[0].seqlo += 4000;
        assert!(!progress.should_report(&mark, &moved, 100, 60));
        moved[0].seqlo += 96;
        assert!(progress.should_report(&mark, &moved, 100, 60));
        let mut closing = peers;
        closing[0].state = tcp_state::CLOSING;
        assert!(progress.should_report(&mark, &closing, 100, 60));
        assert!(
            progress.should_report(&mark, &peers, 160, 60),
            "an idle state is refreshed"
        );

        let count = PushPolicy::Count { every: 128 };
        mark.updates = 1;
        assert!(count.should_report(&mark, &peers, 100, 60));
        mark.updates = 50;
        assert!(!count.should_report(&mark, &peers, 100, 60));
        mark.updates = 128;
        assert!(count.should_report(&mark, &peers, 100, 60));
    }
}
