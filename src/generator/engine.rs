//! The generator without I/O: both ends of every TCP connection and UDP flow, fed the frames that come
//! back and asked for the frames to send next, at times the caller gives (the clock in `tandem gen`,
//! anything in tests).
//!
//! TCP connections live in a table of `concurrent` slots allocated once. A connection's client address
//! and port come from its *tuple index*: slot `s` in its `k`-th use takes tuple `s + k * concurrent`, so a
//! frame that comes back names its slot by arithmetic (no hash lookup), a frame of an earlier use of the
//! slot is told apart and counted, and consecutive connections of a slot use different ports (the
//! firewall's state of the last one may still be closing). Each slot holds the client and the server
//! endpoint of [`crate::traffic::tcp`]: handshake, request, response, FIN or RST, retransmissions.
//!
//! UDP flows send datagrams at a fixed total rate, round robin over the flows; each carries a sequence
//! number and its send time, the server answers each one with the same payload, and the client measures
//! the round trip. ARP requests for any address the generator plays are answered, so it can face an
//! appliance in router mode.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};

use tandem_config::{GenProfile, GenTeardown, Prefix};
use tandem_dataplane::route::v4_of;
use tandem_dataplane::wire::arp::{ArpRepr, Operation};
use tandem_dataplane::wire::build::{self, Endpoints};
use tandem_dataplane::wire::checksum::ChecksumCaps;
use tandem_dataplane::wire::ethernet::MacAddr;
use tandem_dataplane::wire::meta::{EtherClass, L4, PacketMeta, parse_meta};
use tandem_dataplane::wire::tcp::Packet as TcpPacket;
use tandem_dataplane::wire::udp::UdpRepr;
use tandem_sync::time::{Duration, Instant};

use super::histogram::Histogram;
use crate::traffic::tcp::{Segment, TcpConfig, TcpEndpoint, Teardown};

/// Client ports a client address uses: 1024 to 65535.
const FIRST_CLIENT_PORT: u16 = 1024;
const PORTS_PER_ADDRESS: u32 = 65536 - FIRST_CLIENT_PORT as u32;
/// What a new connection costs in tokens: the rate (per second) accrues per microsecond.
const CONNECTION_TOKENS: u64 = 1_000_000;
/// Slots whose timers are checked per [`Engine::tick`].
const SWEEP: usize = 64;
/// ARP replies and UDP answers waiting to be sent; more are counted as dropped.
const PENDING: usize = 4096;
/// Payload bytes: enough zeros for the largest segment.
static ZEROS: [u8; 9216] = [0; 9216];
/// UDP payload that carries the sequence number and the send time.
const UDP_STAMP: usize = 16;
/// Largest UDP payload the generator sends.
const UDP_SCRATCH: usize = 9000;

/// A block of IPv4 host addresses.
#[derive(Clone, Copy, Debug)]
struct Hosts {
    first: u32,
    count: u32,
}

impl Hosts {
    fn of(prefix: &Prefix) -> Hosts {
        let IpAddr::V4(addr) = prefix.addr else {
            // The profile accepts IPv4 sides only.
            return Hosts { first: 0, count: 1 };
        };
        let size = 1u64 << (32 - u32::from(prefix.len.min(32)));
        let net = Ipv4Addr::from(u32::from(addr) & !((size - 1) as u32));
        let (first, count) = if size >= 4 {
            (u32::from(net) + 1, size - 2)
        } else {
            (u32::from(net), size)
        };
        Hosts {
            first,
            count: count.min(u64::from(u32::MAX)) as u32,
        }
    }

    fn nth(self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.first.wrapping_add(n % self.count))
    }

    /// The index of `addr` in the block.
    fn index(self, addr: Ipv4Addr) -> Option<u32> {
        let off = u32::from(addr).wrapping_sub(self.first);
        (off < self.count).then_some(off)
    }
}

/// What the generator counts.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Frames and bytes sent, per port.
    pub tx_packets: Vec<u64>,
    /// Bytes sent, per port.
    pub tx_bytes: Vec<u64>,
    /// Frames received, per port.
    pub rx_packets: Vec<u64>,
    /// Bytes received, per port.
    pub rx_bytes: Vec<u64>,
    /// TCP connections started (client SYN queued).
    pub tcp_started: u64,
    /// Connections whose client saw the handshake complete.
    pub tcp_established: u64,
    /// Connections that completed: request, response and teardown on both ends.
    pub tcp_completed: u64,
    /// Connections not finished within the timeout.
    pub tcp_timed_out: u64,
    /// Connections ended by a reset the client did not send.
    pub tcp_reset: u64,
    /// Segments retransmitted by either end (of connections that ended).
    pub tcp_retransmits: u64,
    /// Retransmission timeouts of either end (a lost SYN or SYN-ACK shows here), of connections that ended.
    pub tcp_timeouts: u64,
    /// TCP frames for no live connection (an earlier use of a slot, or no slot at all).
    pub tcp_stray: u64,
    /// Datagrams clients sent.
    pub udp_sent: u64,
    /// Datagrams servers received (and answered).
    pub udp_served: u64,
    /// Answers clients received.
    pub udp_answered: u64,
    /// UDP sends skipped because the generator fell behind its rate.
    pub udp_late: u64,
    /// Flood SYNs sent.
    pub flood_sent: u64,
    /// Flood SYNs that reached the server side (the appliance let them through).
    pub flood_passed: u64,
    /// Flood SYNs skipped because the generator fell behind its rate.
    pub flood_late: u64,
    /// ARP requests answered.
    pub arp_answered: u64,
    /// Frames that did not parse, were for no address we play, or of another protocol.
    pub rx_other: u64,
    /// ARP replies or UDP answers dropped because too many were waiting.
    pub pending_dropped: u64,
    /// Handshake time: client SYN to SYN-ACK, µs.
    pub connect_us: Histogram,
    /// Connection time: SYN to both ends finished, µs.
    pub complete_us: Histogram,
    /// UDP round trips, µs.
    pub udp_rtt_us: Histogram,
}

/// A port's addresses.
#[derive(Clone, Copy, Debug)]
struct PortAddr {
    mac: MacAddr,
    next_hop: MacAddr,
}

#[derive(Debug)]
struct Slot {
    /// The tuple of its current (or last) connection.
    tuple: u32,
    /// Uses so far.
    uses: u32,
    active: bool,
    queued: bool,
    connected: bool,
    started: Instant,
    client: TcpEndpoint,
    server: TcpEndpoint,
}

#[derive(Clone, Copy, Debug)]
enum Pending {
    Arp {
        port: usize,
        repr: ArpRepr,
    },
    UdpAnswer {
        flow: u32,
        stamp: [u8; UDP_STAMP],
        len: u16,
    },
}

/// The TCP side of the load.
#[derive(Debug)]
struct TcpPlan {
    concurrent: u32,
    rate: u32,
    request: u64,
    response: u64,
    teardown: Teardown,
    mss: u32,
    timeout: Duration,
    /// Distinct tuples: client addresses times client ports.
    tuples: u32,
}

/// Sends at a fixed interval from the start of the run; more than a millisecond behind, it skips what
/// is late rather than send it in a burst.
#[derive(Clone, Copy, Debug)]
struct Pacer {
    interval_ns: u64,
    next_ns: u64,
}

impl Pacer {
    fn new(interval_ns: u64) -> Pacer {
        Pacer {
            interval_ns: interval_ns.max(1),
            next_ns: 0,
        }
    }

    /// Whether a send is due `elapsed_ns` into the run; the sends skipped are added to `late`.
    fn due(&mut self, elapsed_ns: u64, late: &mut u64) -> bool {
        if self.next_ns > elapsed_ns {
            return false;
        }
        let behind = elapsed_ns - self.next_ns;
        if behind > 1_000_000 {
            let skipped = behind / self.interval_ns;
            *late += skipped;
            self.next_ns += skipped * self.interval_ns;
        }
        self.next_ns += self.interval_ns;
        true
    }
}

/// The UDP side of the load.
#[derive(Debug)]
struct UdpPlan {
    flows: u32,
    payload: u16,
    /// Datagrams of all flows together.
    pacer: Pacer,
}

/// The SYN flood.
#[derive(Debug)]
struct FloodPlan {
    sources: Hosts,
    pacer: Pacer,
}

/// The generator's state.
#[derive(Debug)]
pub struct Engine {
    ports: Vec<PortAddr>,
    client_port: usize,
    server_port: usize,
    clients: Hosts,
    servers: Hosts,
    service_port: u16,
    start: Instant,
    /// New connections and datagrams start until then.
    stop_at: Instant,
    /// After the stop, connections and answers may finish until then.
    drain_until: Instant,
    tcp: Option<TcpPlan>,
    udp: Option<UdpPlan>,
    flood: Option<FloodPlan>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    ready: VecDeque<u32>,
    active: u32,
    sweep_at: usize,
    /// Connection tokens: the rate accrues each microsecond, a connection costs [`CONNECTION_TOKENS`].
    tokens: u64,
    last_tick: Instant,
    /// The flow the next datagram belongs to.
    udp_flow: u32,
    udp_seq: u64,
    pending: VecDeque<Pending>,
    /// Where UDP payloads are put together.
    udp_scratch: Box<[u8; UDP_SCRATCH]>,
    isn: u32,
    counters: Counters,
}

impl Engine {
    /// The generator for `profile`, whose ports have the MAC addresses `macs` (in profile order), started
    /// at `start`.
    pub fn new(profile: &GenProfile, macs: &[MacAddr], start: Instant) -> Engine {
        let ports: Vec<PortAddr> = profile
            .ports
            .iter()
            .zip(macs)
            .map(|(p, &mac)| PortAddr {
                mac,
                next_hop: MacAddr(p.next_hop_mac.0),
            })
            .collect();
        let sides = &profile.sides;
        let clients = Hosts::of(&sides.clients);
        let servers = Hosts::of(&sides.servers);
        let tuple_space = u64::from(clients.count) * u64::from(PORTS_PER_ADDRESS);
        let tuples = tuple_space.min(u64::from(u32::MAX)) as u32;
        let tcp = profile.tcp.as_ref().map(|t| {
            let concurrent = t.concurrent.min(tuples).max(1);
            TcpPlan {
                concurrent,
                rate: t.rate,
                request: u64::from(t.request),
                response: u64::from(t.response),
                teardown: match t.teardown {
                    GenTeardown::Fin => Teardown::Fin,
                    GenTeardown::Rst => Teardown::Rst,
                },
                mss: u32::from(t.mss),
                timeout: Duration::millis(u64::from(t.timeout_ms)),
                // A whole number of uses per slot, so a tuple always maps back to one slot.
                tuples: tuples / concurrent * concurrent,
            }
        });
        let udp = profile.udp.as_ref().map(|u| {
            let total = u64::from(u.flows) * u64::from(u.packet_rate);
            UdpPlan {
                flows: u.flows.min(tuples).max(1),
                payload: u.payload,
                pacer: Pacer::new(1_000_000_000u64.checked_div(total).unwrap_or(u64::MAX)),
            }
        });
        let flood = profile.flood.as_ref().map(|f| FloodPlan {
            sources: Hosts::of(&f.sources),
            pacer: Pacer::new(1_000_000_000 / u64::from(f.rate.max(1))),
        });
        let concurrent = tcp.as_ref().map_or(0, |t| t.concurrent);
        let slots: Vec<Slot> = (0..concurrent)
            .map(|s| Slot {
                tuple: s,
                uses: 0,
                active: false,
                queued: false,
                connected: false,
                started: start,
                client: TcpEndpoint::server(TcpConfig::default()),
                server: TcpEndpoint::server(TcpConfig::default()),
            })
            .collect();
        let timeout = tcp.as_ref().map_or(Duration::ZERO, |t| t.timeout);
        let stop_at = start + Duration::millis(profile.duration_ms);
        let n = ports.len();
        Engine {
            client_port: sides.client_port,
            server_port: sides.server_port,
            clients,
            servers,
            service_port: sides.service_port,
            start,
            stop_at,
            drain_until: stop_at + Duration::millis(1000).max(timeout),
            tcp,
            udp,
            flood,
            free: (0..concurrent).rev().collect(),
            ready: VecDeque::with_capacity(concurrent as usize),
            slots,
            active: 0,
            sweep_at: 0,
            tokens: CONNECTION_TOKENS,
            last_tick: start,
            udp_flow: 0,
            udp_seq: 0,
            pending: VecDeque::with_capacity(PENDING),
            udp_scratch: Box::new([0; UDP_SCRATCH]),
            isn: 0x2545_f491,
            counters: Counters {
                tx_packets: vec![0; n],
                tx_bytes: vec![0; n],
                rx_packets: vec![0; n],
                rx_bytes: vec![0; n],
                ..Counters::default()
            },
            ports,
        }
    }

    /// What was counted so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Connections open now.
    pub fn open_connections(&self) -> u32 {
        self.active
    }

    /// Whether the run is over: past its duration, with every connection finished and every datagram
    /// answered, or past the time allowed for that.
    pub fn done(&self, now: Instant) -> bool {
        now >= self.stop_at
            && ((self.active == 0 && self.counters.udp_answered >= self.counters.udp_sent)
                || now >= self.drain_until)
    }

    /// Ends the run at `now`: connections still open count as timed out.
    pub fn finish(&mut self, now: Instant) {
        for s in 0..self.slots.len() {
            if self.slots[s].active {
                self.counters.tcp_timed_out += 1;
                self.retire(s, now);
            }
        }
    }

    /// Starts connections and runs timers due at `now`; call once per poll.
    pub fn tick(&mut self, now: Instant) {
        self.start_connections(now);
        self.sweep_timers(now);
        self.last_tick = now;
    }

    fn next_isn(&mut self) -> u32 {
        // xorshift32: distinct, unpredictable-looking initial sequence numbers.
        let mut x = self.isn;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.isn = x;
        x
    }

    fn start_connections(&mut self, now: Instant) {
        let Some(rate) = self.tcp.as_ref().map(|t| t.rate) else {
            return;
        };
        if now >= self.stop_at {
            return;
        }
        let mut budget = if rate == 0 {
            u64::MAX
        } else {
            let elapsed = now.since(self.last_tick).0;
            // Capped at a millisecond's worth of connections, and at least one.
            let cap = (u64::from(rate) * 1000).max(CONNECTION_TOKENS);
            self.tokens = (self.tokens + elapsed * u64::from(rate)).min(cap);
            self.tokens / CONNECTION_TOKENS
        };
        while budget > 0 {
            let Some(s) = self.free.pop() else { break };
            self.open(s as usize, now);
            budget -= 1;
            if rate != 0 {
                self.tokens -= CONNECTION_TOKENS;
            }
        }
    }

    fn open(&mut self, s: usize, now: Instant) {
        let Some(plan) = &self.tcp else { return };
        let (request, response, teardown, mss, concurrent, tuples) = (
            plan.request,
            plan.response,
            plan.teardown,
            plan.mss,
            plan.concurrent,
            plan.tuples,
        );
        let (iss_c, iss_s) = (self.next_isn(), self.next_isn());
        let cfg = |iss| TcpConfig {
            mss,
            rcv_buf: 256 << 10,
            iss,
            ..TcpConfig::default()
        };
        let slot = &mut self.slots[s];
        let generations = (tuples / concurrent).max(1);
        slot.tuple = s as u32 + concurrent * (slot.uses % generations);
        slot.uses = slot.uses.wrapping_add(1);
        slot.active = true;
        slot.connected = false;
        slot.started = now;
        slot.client
            .reuse(TcpEndpoint::client(cfg(iss_c), now, request).closing(response, teardown));
        slot.server
            .reuse(TcpEndpoint::server(cfg(iss_s)).replying(request, response));
        self.active += 1;
        self.counters.tcp_started += 1;
        self.enqueue(s);
    }

    fn enqueue(&mut self, s: usize) {
        let slot = &mut self.slots[s];
        if !slot.queued {
            slot.queued = true;
            self.ready.push_back(s as u32);
        }
    }

    fn sweep_timers(&mut self, now: Instant) {
        let n = self.slots.len();
        if n == 0 {
            return;
        }
        let timeout = self.tcp.as_ref().map_or(Duration::ZERO, |t| t.timeout);
        for _ in 0..SWEEP.min(n) {
            let s = self.sweep_at;
            self.sweep_at = (self.sweep_at + 1) % n;
            let slot = &mut self.slots[s];
            if !slot.active {
                continue;
            }
            if now.since(slot.started) > timeout {
                self.counters.tcp_timed_out += 1;
                self.retire(s, now);
                continue;
            }
            let mut fired = false;
            for end in [&mut slot.client, &mut slot.server] {
                if end.poll_timeout().is_some_and(|t| t <= now) {
                    end.on_timeout(now);
                    fired = true;
                }
            }
            if fired {
                self.enqueue(s);
            }
        }
    }

    /// Frees slot `s` after its connection ended, one way or another.
    fn retire(&mut self, s: usize, _now: Instant) {
        let slot = &mut self.slots[s];
        if !slot.active {
            return;
        }
        slot.active = false;
        let (c, s_) = (slot.client.stats(), slot.server.stats());
        self.counters.tcp_retransmits += c.retransmits + s_.retransmits;
        self.counters.tcp_timeouts += c.timeouts + s_.timeouts;
        self.active -= 1;
        self.free.push(s as u32);
    }

    /// A frame received on `port`.
    pub fn on_frame(&mut self, now: Instant, port: usize, frame: &[u8]) {
        if let Some(n) = self.counters.rx_packets.get_mut(port) {
            *n += 1;
            self.counters.rx_bytes[port] += frame.len() as u64;
        }
        let Ok(meta) = parse_meta(frame, ChecksumCaps::SOFTWARE) else {
            self.counters.rx_other += 1;
            return;
        };
        match (meta.class, meta.l4) {
            (EtherClass::Arp, _) => self.on_arp(port, frame, &meta),
            (EtherClass::Ipv4, L4::Tcp(_)) => self.on_tcp(now, frame, &meta),
            (EtherClass::Ipv4, L4::Udp(udp)) => {
                self.on_udp(now, frame, &meta, udp.src_port, udp.dst_port)
            }
            _ => self.counters.rx_other += 1,
        }
    }

    fn on_arp(&mut self, port: usize, frame: &[u8], meta: &PacketMeta) {
        let repr = frame
            .get(usize::from(meta.l3_offset)..)
            .and_then(|l3| tandem_dataplane::wire::arp::Packet::new_checked(l3).ok())
            .and_then(|p| ArpRepr::parse(&p).ok());
        let (Some(req), Some(us)) = (repr, self.ports.get(port)) else {
            self.counters.rx_other += 1;
            return;
        };
        let target = req.target_protocol_addr;
        let ours = self.clients.index(target).is_some() || self.servers.index(target).is_some();
        if req.operation != Operation::Request || !ours {
            self.counters.rx_other += 1;
            return;
        }
        let reply = ArpRepr {
            operation: Operation::Reply,
            source_hardware_addr: us.mac,
            source_protocol_addr: target,
            target_hardware_addr: req.source_hardware_addr,
            target_protocol_addr: req.source_protocol_addr,
        };
        self.push_pending(Pending::Arp { port, repr: reply });
    }

    fn push_pending(&mut self, p: Pending) {
        if self.pending.len() >= PENDING {
            self.counters.pending_dropped += 1;
        } else {
            self.pending.push_back(p);
        }
    }

    /// The tuple index of a client address and port.
    fn tuple_of(&self, client: Ipv4Addr, port: u16) -> Option<u32> {
        let host = self.clients.index(client)?;
        let port = u32::from(port.checked_sub(FIRST_CLIENT_PORT)?);
        host.checked_mul(PORTS_PER_ADDRESS)?.checked_add(port)
    }

    fn client_of(&self, tuple: u32) -> (Ipv4Addr, u16) {
        (
            self.clients.nth(tuple / PORTS_PER_ADDRESS),
            FIRST_CLIENT_PORT + (tuple % PORTS_PER_ADDRESS) as u16,
        )
    }

    fn server_of(&self, tuple: u32) -> Ipv4Addr {
        self.servers.nth(tuple)
    }

    fn on_tcp(&mut self, now: Instant, frame: &[u8], meta: &PacketMeta) {
        let (src, dst) = (v4_of(&meta.src), v4_of(&meta.dst));
        let L4::Tcp(tcp) = meta.l4 else { return };
        // To a client from a server, or to a server from a client.
        let to_client = tcp.src_port == self.service_port && self.clients.index(dst).is_some();
        let (client, cport, server) = if to_client {
            (dst, tcp.dst_port, src)
        } else {
            (src, tcp.src_port, dst)
        };
        let slot = match (&self.tcp, self.tuple_of(client, cport)) {
            (Some(plan), Some(tuple)) if tuple < plan.tuples => {
                let s = (tuple % plan.concurrent) as usize;
                let live = self.slots[s].active
                    && self.slots[s].tuple == tuple
                    && self.server_of(tuple) == server
                    && (to_client || tcp.dst_port == self.service_port);
                live.then_some(s)
            }
            _ => None,
        };
        let l4 = usize::from(meta.l4_offset);
        let seg = frame
            .get(l4..l4 + usize::from(meta.ip_payload_len))
            .and_then(|b| TcpPacket::new_checked(b).ok())
            .and_then(|p| Segment::of_tcp(&p));
        let (Some(s), Some(seg)) = (slot, seg) else {
            let flooding = self
                .flood
                .as_ref()
                .is_some_and(|f| f.sources.index(src).is_some());
            if flooding && !to_client {
                self.counters.flood_passed += 1;
            } else {
                self.counters.tcp_stray += 1;
            }
            return;
        };
        let slot = &mut self.slots[s];
        if to_client {
            slot.client.on_segment(now, &seg);
            if !slot.connected && slot.client.established() {
                slot.connected = true;
                self.counters.tcp_established += 1;
                self.counters.connect_us.record(now.since(slot.started).0);
            }
        } else {
            slot.server.on_segment(now, &seg);
        }
        self.after_event(s, now);
    }

    /// After an endpoint of slot `s` moved: the connection may be over, or have segments to send.
    fn after_event(&mut self, s: usize, now: Instant) {
        let slot = &self.slots[s];
        let expected_rst = matches!(self.tcp.as_ref().map(|t| t.teardown), Some(Teardown::Rst));
        if slot.client.finished() && slot.server.finished() {
            let reset_by_server = slot.server.was_reset() && !expected_rst;
            let took = now.since(slot.started).0;
            if reset_by_server || (slot.client.was_reset() && !expected_rst) {
                self.counters.tcp_reset += 1;
            } else {
                self.counters.tcp_completed += 1;
                self.counters.complete_us.record(took);
            }
            // The last segments (a final ACK) may still be queued: send them before the slot is reused.
            self.enqueue(s);
            self.retire(s, now);
            return;
        }
        if slot.client.was_reset() && !expected_rst {
            self.counters.tcp_reset += 1;
            self.enqueue(s);
            self.retire(s, now);
            return;
        }
        self.enqueue(s);
    }

    fn on_udp(&mut self, now: Instant, frame: &[u8], meta: &PacketMeta, sport: u16, dport: u16) {
        let (src, dst) = (v4_of(&meta.src), v4_of(&meta.dst));
        let Some(plan) = &self.udp else {
            self.counters.rx_other += 1;
            return;
        };
        let l4 = usize::from(meta.l4_offset) + 8;
        let payload = frame
            .get(l4..usize::from(meta.l4_offset) + usize::from(meta.ip_payload_len))
            .unwrap_or(&[]);
        let mut stamp = [0u8; UDP_STAMP];
        let n = payload.len().min(UDP_STAMP);
        stamp[..n].copy_from_slice(&payload[..n]);
        if dport == self.service_port && self.servers.index(dst).is_some() {
            // A client's datagram: answer it from the server.
            match self.tuple_of(src, sport) {
                Some(flow) if flow < plan.flows && self.server_of(flow) == dst => {
                    self.counters.udp_served += 1;
                    let len = payload.len().min(usize::from(u16::MAX)) as u16;
                    self.push_pending(Pending::UdpAnswer { flow, stamp, len });
                }
                _ => self.counters.rx_other += 1,
            }
        } else if sport == self.service_port && self.clients.index(dst).is_some() {
            match self.tuple_of(dst, dport) {
                Some(flow) if flow < plan.flows => {
                    self.counters.udp_answered += 1;
                    if n == UDP_STAMP {
                        let sent = u64::from_be_bytes(stamp[8..16].try_into().unwrap_or([0; 8]));
                        self.counters.udp_rtt_us.record(now.0.saturating_sub(sent));
                    }
                }
                _ => self.counters.rx_other += 1,
            }
        } else {
            self.counters.rx_other += 1;
        }
    }

    /// Writes the next frame to send into `buf`; returns the port it leaves on and its length, or `None`
    /// when nothing is due.
    pub fn poll_frame(&mut self, now: Instant, buf: &mut [u8]) -> Option<(usize, usize)> {
        let out = self
            .poll_pending(buf)
            .or_else(|| self.poll_udp(now, buf))
            .or_else(|| self.poll_flood(now, buf))
            .or_else(|| self.poll_tcp(buf))?;
        if let Some(n) = self.counters.tx_packets.get_mut(out.0) {
            *n += 1;
            self.counters.tx_bytes[out.0] += out.1 as u64;
        }
        Some(out)
    }

    fn poll_pending(&mut self, buf: &mut [u8]) -> Option<(usize, usize)> {
        while let Some(p) = self.pending.pop_front() {
            let built = match p {
                Pending::Arp { port, repr } => {
                    self.counters.arp_answered += 1;
                    build::arp_into(buf, repr.target_hardware_addr, None, &repr)
                        .ok()
                        .map(|len| (port, len))
                }
                Pending::UdpAnswer { flow, stamp, len } => {
                    let (client, cport) = self.client_of(flow);
                    let server = self.server_of(flow);
                    let port = self.server_port;
                    let ends = self.ends(port, server, client);
                    let repr = UdpRepr {
                        src_port: self.service_port,
                        dst_port: cport,
                    };
                    let payload = udp_payload(&mut self.udp_scratch[..], &stamp, usize::from(len));
                    build::udp_into(buf, &ends, &repr, payload)
                        .ok()
                        .map(|n| (port, n))
                }
            };
            if built.is_some() {
                return built;
            }
        }
        None
    }

    fn ends(&self, port: usize, src: Ipv4Addr, dst: Ipv4Addr) -> Endpoints {
        let p = self.ports[port];
        Endpoints::v4(p.mac, p.next_hop, src, dst)
    }

    fn poll_tcp(&mut self, buf: &mut [u8]) -> Option<(usize, usize)> {
        while let Some(&s) = self.ready.front() {
            let slot = &mut self.slots[s as usize];
            let (seg, from_client) = match slot.client.poll_transmit() {
                Some(seg) => (seg, true),
                None => match slot.server.poll_transmit() {
                    Some(seg) => (seg, false),
                    None => {
                        slot.queued = false;
                        self.ready.pop_front();
                        continue;
                    }
                },
            };
            let tuple = slot.tuple;
            let (client, cport) = self.client_of(tuple);
            let server = self.server_of(tuple);
            let (port, ends, sport, dport) = if from_client {
                let p = self.client_port;
                (p, self.ends(p, client, server), cport, self.service_port)
            } else {
                let p = self.server_port;
                (p, self.ends(p, server, client), self.service_port, cport)
            };
            let repr = seg.repr(sport, dport);
            let len = (seg.len as usize).min(ZEROS.len());
            if let Ok(n) = build::tcp_into(buf, &ends, &repr, &ZEROS[..len]) {
                return Some((port, n));
            }
        }
        None
    }

    fn poll_udp(&mut self, now: Instant, buf: &mut [u8]) -> Option<(usize, usize)> {
        if now >= self.stop_at {
            return None;
        }
        let elapsed_ns = now.since(self.start).0.saturating_mul(1000);
        let plan = self.udp.as_mut()?;
        if !plan.pacer.due(elapsed_ns, &mut self.counters.udp_late) {
            return None;
        }
        let (flows, payload_len) = (plan.flows, usize::from(plan.payload));
        let flow = self.udp_flow;
        self.udp_flow = (self.udp_flow + 1) % flows;
        let (client, cport) = self.client_of(flow);
        let server = self.server_of(flow);
        let mut stamp = [0u8; UDP_STAMP];
        stamp[..8].copy_from_slice(&self.udp_seq.to_be_bytes());
        stamp[8..].copy_from_slice(&now.0.to_be_bytes());
        self.udp_seq += 1;
        let port = self.client_port;
        let ends = self.ends(port, client, server);
        let payload = udp_payload(&mut self.udp_scratch[..], &stamp, payload_len);
        let repr = UdpRepr {
            src_port: cport,
            dst_port: self.service_port,
        };
        let n = build::udp_into(buf, &ends, &repr, payload).ok()?;
        self.counters.udp_sent += 1;
        Some((port, n))
    }
}

impl Engine {
    fn poll_flood(&mut self, now: Instant, buf: &mut [u8]) -> Option<(usize, usize)> {
        if now >= self.stop_at {
            return None;
        }
        let elapsed_ns = now.since(self.start).0.saturating_mul(1000);
        let f = self.flood.as_mut()?;
        if !f.pacer.due(elapsed_ns, &mut self.counters.flood_late) {
            return None;
        }
        let sources = f.sources;
        let (r1, r2) = (self.next_isn(), self.next_isn());
        let src = sources.nth(r1);
        let dst = self.server_of(r1 >> 8);
        let ends = self.ends(self.client_port, src, dst);
        let seg = Segment {
            seq: r2,
            ack: 0,
            flags: tandem_dataplane::tracker::tcp::flags::SYN,
            win: 64240,
            len: 0,
            mss: Some(1460),
            wscale: Some(7),
            sack_ok: true,
            sack: [None; 3],
        };
        let sport = FIRST_CLIENT_PORT + (r2 % PORTS_PER_ADDRESS) as u16;
        let repr = seg.repr(sport, self.service_port);
        let n = build::tcp_into(buf, &ends, &repr, &[]).ok()?;
        self.counters.flood_sent += 1;
        Some((self.client_port, n))
    }
}

/// Writes a UDP payload of `len` bytes that starts with `stamp` (cut when shorter) into `scratch`.
fn udp_payload<'a>(scratch: &'a mut [u8], stamp: &[u8; UDP_STAMP], len: usize) -> &'a [u8] {
    let len = len.min(scratch.len());
    let n = len.min(UDP_STAMP);
    scratch[..n].copy_from_slice(&stamp[..n]);
    scratch[n..len].fill(0);
    &scratch[..len]
}
