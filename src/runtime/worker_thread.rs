//! A worker thread: pinned to its core, registered with DPDK, polling its queues with the profile's
//! back-off until told to stop. Between polls it sends what the control thread injects and, when asked,
//! copies its states out for `tandem show states`.

use std::sync::atomic::{AtomicBool, Ordering};

use tandem_config::PortId;
use tandem_control::admin::StateRow;
use tandem_dataplane::io::PortIo;
use tandem_dataplane::table::{State, origin};
use tandem_dataplane::tracker::Tracking;
use tandem_dataplane::worker::Worker;
use tandem_sync::state::tcp_state;
use tandem_sync::time::Instant;

use super::io::DpdkIo;
use super::links::{QueueLinks, StateDump};
use super::poll::Backoff;
use crate::dpdk::mbuf::Mbuf;

/// Most states copied out of one worker for one `show states` (the rest are counted in its `states`, not
/// listed).
pub const DUMP_LIMIT: usize = 100_000;

/// Everything a worker thread runs with.
#[derive(Debug)]
pub struct WorkerThread {
    /// The worker.
    pub worker: Worker<Mbuf>,
    /// Its queues.
    pub io: DpdkIo,
    /// Its channels.
    pub links: QueueLinks,
    /// The ports it polls.
    pub ports: Vec<PortId>,
    /// How it waits when idle.
    pub backoff: Backoff,
}

impl WorkerThread {
    /// Polls until `stop` is set; `now` reads the clock.
    pub fn run(mut self, stop: &AtomicBool, now: impl Fn() -> Instant) {
        let mut injected = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let t = now();
            let mut busy = self
                .worker
                .poll(&mut self.io, &mut self.links, &self.ports, t)
                > 0;
            busy |= self.worker.held() > 0;
            while let Some((port, packet)) = self.links.channels.inject.pop() {
                injected.push(packet);
                self.io.send(port, &mut injected);
                injected.clear();
                busy = true;
            }
            if self.links.dump_requested() {
                self.copy_states(t);
            }
            self.backoff.after_poll(busy);
        }
    }
}

impl WorkerThread {
    /// Fills the buffer the control thread handed over for `show states`, if the lock is free now (never
    /// waited on: the next poll tries again).
    fn copy_states(&mut self, now: Instant) {
        let Ok(mut slot) = self.links.channels.dump.try_lock() else {
            return;
        };
        if let StateDump::Requested(mut states) = std::mem::take(&mut *slot) {
            let room = states.capacity();
            states.extend(
                self.worker
                    .table()
                    .iter()
                    .take(room)
                    .map(|(_, s)| s.clone()),
            );
            *slot = StateDump::Filled { states, at: now };
        }
        self.links
            .channels
            .dump_requested
            .store(false, Ordering::Relaxed);
    }
}

fn endpoint(family: tandem_config::Family, addr: &[u8; 16], port: u16, proto: u8) -> String {
    let ip: std::net::IpAddr = match family {
        tandem_config::Family::Inet => {
            std::net::Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).into()
        }
        tandem_config::Family::Inet6 => std::net::Ipv6Addr::from(*addr).into(),
    };
    let with_port = matches!(proto, 6 | 17);
    match (ip, with_port) {
        (std::net::IpAddr::V6(v6), true) => format!("[{v6}]:{port}"),
        (ip, true) => format!("{ip}:{port}"),
        (ip, false) => ip.to_string(),
    }
}

fn proto_name(proto: u8) -> String {
    match proto {
        6 => "tcp".into(),
        17 => "udp".into(),
        1 => "icmp".into(),
        58 => "icmp6".into(),
        other => other.to_string(),
    }
}

/// pf's names for a peer's state.
fn peer_state_name(tracking: Tracking, state: u8) -> &'static str {
    if tracking != Tracking::Tcp {
        return match state {
            0 => "NO_TRAFFIC",
            1 => "SINGLE",
            _ => "MULTIPLE",
        };
    }
    match state {
        tcp_state::CLOSED => "CLOSED",
        tcp_state::LISTEN => "LISTEN",
        tcp_state::SYN_SENT => "SYN_SENT",
        tcp_state::SYN_RECEIVED => "SYN_RCVD",
        tcp_state::ESTABLISHED => "ESTABLISHED",
        tcp_state::CLOSE_WAIT => "CLOSE_WAIT",
        tcp_state::FIN_WAIT_1 => "FIN_WAIT_1",
        tcp_state::CLOSING => "CLOSING",
        tcp_state::LAST_ACK => "LAST_ACK",
        tcp_state::FIN_WAIT_2 => "FIN_WAIT_2",
        tcp_state::TIME_WAIT => "TIME_WAIT",
        tcp_state::PROXY_SRC => "PROXY_SRC",
        tcp_state::PROXY_DST => "PROXY_DST",
        _ => "?",
    }
}

/// A state as `show states` lists it.
pub fn state_row(s: &State, worker: usize, now: Instant) -> StateRow {
    let (a, b) = if s.initiator_first {
        (s.key.ends[0], s.key.ends[1])
    } else {
        (s.key.ends[1], s.key.ends[0])
    };
    StateRow {
        proto: proto_name(s.key.proto),
        initiator: endpoint(s.key.family, &a.addr, a.port, s.key.proto),
        responder: endpoint(s.key.family, &b.addr, b.port, s.key.proto),
        state: format!(
            "{}:{}",
            peer_state_name(s.tracking, s.peers[0].state),
            peer_state_name(s.tracking, s.peers[1].state)
        ),
        age_secs: now.since(s.created).as_micros() / 1_000_000,
        expires_secs: s.expires.since(now).as_micros() / 1_000_000,
        packets: s.packets,
        bytes: s.bytes,
        creator: s.creator.to_string(),
        id: s.id.to_string(),
        origin: if s.origin & origin::FROM_PEER != 0 {
            "peer".into()
        } else {
            "local".into()
        },
        worker,
    }
}
