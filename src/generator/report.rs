//! What `tandem gen` prints: a line per second while it runs (on a terminal) and a JSON summary at the end.

use serde_json::{Value, json};
use tandem_sync::time::{Duration, Instant};

use super::engine::Counters;
use super::histogram::Histogram;

fn sum(v: &[u64]) -> u64 {
    v.iter().sum()
}

fn per_sec(n: u64, d: Duration) -> f64 {
    if d.0 == 0 {
        0.0
    } else {
        n as f64 * 1e6 / d.0 as f64
    }
}

/// The progress line: rates over the last interval, totals so far.
#[derive(Debug)]
pub struct Progress {
    at: Instant,
    tx: u64,
    rx: u64,
    tx_bytes: u64,
    completed: u64,
}

impl Progress {
    /// Progress measured from `start`.
    pub fn new(start: Instant) -> Progress {
        Progress {
            at: start,
            tx: 0,
            rx: 0,
            tx_bytes: 0,
            completed: 0,
        }
    }

    /// The line for the interval that ends at `now`.
    pub fn line(&mut self, now: Instant, start: Instant, c: &Counters, open: u32) -> String {
        let d = now.since(self.at);
        let (tx, rx, tx_bytes) = (sum(&c.tx_packets), sum(&c.rx_packets), sum(&c.tx_bytes));
        let line = format!(
            "{:>6.1}s  tx {:>8.3} Mpps {:>7.3} Gbit/s  rx {:>8.3} Mpps  conns/s {:>9.0}  open {:>7}  done {:>9}  failed {:>7}  udp {}/{}",
            now.since(start).0 as f64 / 1e6,
            per_sec(tx - self.tx, d) / 1e6,
            per_sec(tx_bytes - self.tx_bytes, d) * 8.0 / 1e9,
            per_sec(rx - self.rx, d) / 1e6,
            per_sec(c.tcp_completed - self.completed, d),
            open,
            c.tcp_completed,
            c.tcp_timed_out + c.tcp_reset,
            c.udp_answered,
            c.udp_sent,
        );
        *self = Progress {
            at: now,
            tx,
            rx,
            tx_bytes,
            completed: c.tcp_completed,
        };
        line
    }
}

fn latency(h: &Histogram) -> Value {
    json!({
        "count": h.count(),
        "p50_us": h.quantile(0.5),
        "p90_us": h.quantile(0.9),
        "p99_us": h.quantile(0.99),
        "p999_us": h.quantile(0.999),
        "max_us": h.max(),
    })
}

/// The summary of a run of `elapsed` over ports named `ports`; `load_time` is the profile's duration, over
/// which rates of new connections are taken.
pub fn summary(ports: &[String], c: &Counters, elapsed: Duration, load_time: Duration) -> Value {
    let port_list: Vec<Value> = ports
        .iter()
        .enumerate()
        .map(|(i, name)| {
            json!({
                "name": name,
                "tx_packets": c.tx_packets[i],
                "tx_bytes": c.tx_bytes[i],
                "rx_packets": c.rx_packets[i],
                "rx_bytes": c.rx_bytes[i],
            })
        })
        .collect();
    let (tx, rx) = (sum(&c.tx_packets), sum(&c.rx_packets));
    let failed = c.tcp_timed_out + c.tcp_reset;
    json!({
        "elapsed_s": elapsed.0 as f64 / 1e6,
        "ports": port_list,
        "tx_packets": tx,
        "rx_packets": rx,
        "tx_pps": per_sec(tx, elapsed),
        "rx_pps": per_sec(rx, elapsed),
        "tx_gbps": per_sec(sum(&c.tx_bytes), elapsed) * 8.0 / 1e9,
        "rx_gbps": per_sec(sum(&c.rx_bytes), elapsed) * 8.0 / 1e9,
        "rx_other": c.rx_other,
        "pending_dropped": c.pending_dropped,
        "arp_answered": c.arp_answered,
        "tcp": {
            "started": c.tcp_started,
            "established": c.tcp_established,
            "completed": c.tcp_completed,
            "failed": failed,
            "timed_out": c.tcp_timed_out,
            "reset": c.tcp_reset,
            "retransmits": c.tcp_retransmits,
            "timeouts": c.tcp_timeouts,
            "stray": c.tcp_stray,
            "completed_per_s": per_sec(c.tcp_completed, load_time),
            "connect": latency(&c.connect_us),
            "complete": latency(&c.complete_us),
        },
        "flood": {
            "sent": c.flood_sent,
            "passed": c.flood_passed,
            "late": c.flood_late,
        },
        "udp": {
            "sent": c.udp_sent,
            "served": c.udp_served,
            "answered": c.udp_answered,
            "lost": c.udp_sent.saturating_sub(c.udp_answered),
            "late": c.udp_late,
            "rtt": latency(&c.udp_rtt_us),
        },
    })
}
