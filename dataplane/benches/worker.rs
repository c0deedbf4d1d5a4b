//! The worker's per-packet cost, measured on the real `Worker::poll`:
//! - an established TCP packet (parse, flow key, shard lookup, pf's window checks, verdict, forward),
//!   over 10,000 established connections, in wire mode and in router mode (where the state's cached next
//!   hop replaces the route lookup, and TTL and MACs are rewritten);
//! - a new connection (parse, miss, rule evaluation over 8 rules, state creation, the event to the sync
//!   core).
//!
//! Frames are lent to the worker from a ring and given back on transmit, so the harness copies and
//! allocates nothing per packet. Results are per packet: `cargo bench -p tandem-dataplane --bench worker`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tandem_config::PortId;
use tandem_dataplane::io::PortIo;
use tandem_dataplane::route::NextHop;
use tandem_dataplane::wire::build::{self, Endpoints};
use tandem_dataplane::wire::ethernet::MacAddr;
use tandem_dataplane::wire::tcp::{TcpFlags, TcpRepr};
use tandem_dataplane::worker::{ControlOp, PortInfo, Worker, WorkerConfig, WorkerLinks};
use tandem_sync::event::{LocalEvent, PeerOp};
use tandem_sync::time::Instant;

/// Lends frames from a ring in order and takes them back in order.
struct RingIo {
    ring: Vec<Vec<u8>>,
    next: usize,
    lent: usize,
    /// Router mode rewrites MACs and TTL: each frame's first bytes, restored when it comes back.
    headers: Option<Vec<[u8; HEADER]>>,
}

/// Ethernet and IPv4 header: what router mode rewrites.
const HEADER: usize = 34;

impl PortIo for RingIo {
    type Buf = Vec<u8>;

    fn recv(&mut self, port: PortId, out: &mut Vec<Vec<u8>>, max: usize) -> usize {
        if port.0 != 0 {
            return 0;
        }
        for _ in 0..max {
            out.push(std::mem::take(&mut self.ring[self.next]));
            self.next = (self.next + 1) % self.ring.len();
        }
        self.lent += max;
        max
    }

    fn send(&mut self, _: PortId, pkts: &mut Vec<Vec<u8>>) -> usize {
        // Give the frames back to the slots they came from.
        let n = pkts.len();
        let start = (self.next + self.ring.len() - self.lent % self.ring.len()) % self.ring.len();
        for (i, mut p) in pkts.drain(..).enumerate() {
            let slot = (start + i) % self.ring.len();
            if let Some(headers) = &self.headers {
                p[..HEADER].copy_from_slice(&headers[slot]);
            }
            self.ring[slot] = p;
        }
        self.lent = self.lent.saturating_sub(n);
        n
    }

    fn alloc(&mut self) -> Option<Vec<u8>> {
        None
    }
}

/// Channels to nowhere: events are counted and dropped; control operations (neighbours) are handed over.
#[derive(Default)]
struct Sink {
    events: u64,
    control: Vec<ControlOp>,
}

impl WorkerLinks<Vec<u8>> for Sink {
    fn push_event(&mut self, _: LocalEvent) -> bool {
        self.events += 1;
        true
    }
    fn pop_op(&mut self) -> Option<PeerOp> {
        None
    }
    fn pop_control(&mut self) -> Option<ControlOp> {
        self.control.pop()
    }
    fn punt(&mut self, _: PortId, p: Vec<u8>) -> Result<(), Vec<u8>> {
        Err(p)
    }
    fn resolve(&mut self, _: NextHop) -> bool {
        true
    }
    fn redirect(&mut self, _: usize, _: PortId, p: Vec<u8>) -> Result<(), Vec<u8>> {
        Err(p)
    }
}

const RULES: &str = "
  - {action: block, proto: udp, to-port: 53}
  - {action: block, from: 10.0.0.0/8}
  - {action: block, proto: tcp, to-port: [22, 23, 25]}
  - {action: pass, proto: icmp, icmp-type: echoreq}
  - {action: block, to: 203.0.113.0/24}
  - {action: block, proto: tcp, from-port: 0-1023}
  - {action: pass, direction: in, port: outside, proto: tcp, to-port: 443}
  - {action: pass, direction: in, port: inside, from: 198.18.0.0/15}
";

/// The MAC of the port frames arrive on, the destination of every benchmark frame in router mode.
const PORT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn worker(states: usize, sync: bool, router: bool) -> Worker<Vec<u8>> {
    let sync = if sync {
        "sync: {interface: sync0, core: 0, transport: udp, peers: [198.20.0.2]}\n"
    } else {
        ""
    };
    // Router mode: clients behind a gateway on the inside, the server on the outside's subnet.
    let forwarding = if router {
        "ports:\n  - {name: inside, device: a, addresses: [192.0.2.1/24]}\n  - {name: outside, device: b, addresses: [198.19.0.254/24]}\nroutes:\n  - {to: 198.18.0.0/15, via: 192.0.2.254}\n"
    } else {
        "ports:\n  - {name: inside, device: a}\n  - {name: outside, device: b}\nforwarding: {mode: wire, pairs: [[inside, outside]]}\n"
    };
    let src = format!(
        "node: {{name: bench, host-id: 1}}\n{forwarding}workers: {{cores: [0]}}\nlimits: {{states: {states}}}\n{sync}rules:{RULES}"
    );
    let profile = tandem_config::parse(&src, "bench").unwrap_or_else(|e| panic!("{}", e.report()));
    let cfg = WorkerConfig::from_profile(
        &profile,
        0,
        vec![
            PortInfo {
                mac: PORT_MAC,
                mtu: 1500
            };
            2
        ],
        1 << 32,
    );
    Worker::alone(&profile, cfg, Instant::ZERO).0
}

/// Frames sent to the port's own MAC, as a router receives them.
fn to_port(mut frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    for f in &mut frames {
        f[..6].copy_from_slice(&PORT_MAC);
    }
    frames
}

fn ring(frames: Vec<Vec<u8>>, router: bool) -> RingIo {
    let headers = router.then(|| {
        frames
            .iter()
            .map(|f| f[..HEADER].try_into().expect("a whole header"))
            .collect()
    });
    RingIo {
        ring: frames,
        next: 0,
        lent: 0,
        headers,
    }
}

fn segment(n: u32, seq: u32, ack: u32, flags: TcpFlags, len: usize, reverse: bool) -> Vec<u8> {
    let client = std::net::Ipv4Addr::from(u32::from_be_bytes([198, 18, 0, 0]) + n % 60_000);
    let server = std::net::Ipv4Addr::new(198, 19, 0, 1);
    let cport = 1024 + (n / 60_000) as u16;
    let (ends, sport, dport) = if reverse {
        (
            Endpoints::v4(
                MacAddr([2, 0, 0, 0, 0, 2]),
                MacAddr([2, 0, 0, 0, 0, 1]),
                server,
                client,
            ),
            443,
            cport,
        )
    } else {
        (
            Endpoints::v4(
                MacAddr([2, 0, 0, 0, 0, 1]),
                MacAddr([2, 0, 0, 0, 0, 2]),
                client,
                server,
            ),
            cport,
            443,
        )
    };
    let repr = TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq,
        ack,
        flags,
        window: 65535,
        ..TcpRepr::default()
    };
    build::tcp(&ends, &repr, &vec![0x5a; len]).expect("builds")
}

fn established_in(c: &mut Criterion, router: bool) {
    // 3 handshake frames per connection fill whole bursts of 32: 3 x 10,016 = 939 x 32.
    const FLOWS: u32 = 10_016;
    let mut w = worker(2 * FLOWS as usize, false, router);
    let mut sink = Sink::default();
    if router {
        let hop = |a: [u8; 4]| {
            let mut addr = [0u8; 16];
            addr[..4].copy_from_slice(&a);
            addr
        };
        sink.control = vec![
            ControlOp::Neighbor {
                port: PortId(0),
                addr: hop([192, 0, 2, 254]),
                mac: [2, 0, 0, 0, 0, 0x10],
            },
            ControlOp::Neighbor {
                port: PortId(1),
                addr: hop([198, 19, 0, 1]),
                mac: [2, 0, 0, 0, 0, 0x20],
            },
        ];
    }
    // Open every connection.
    let mut handshakes = Vec::new();
    for n in 0..FLOWS {
        handshakes.push(segment(n, 1000, 0, TcpFlags::SYN, 0, false));
        handshakes.push(segment(
            n,
            5000,
            1001,
            TcpFlags::SYN | TcpFlags::ACK,
            0,
            true,
        ));
        handshakes.push(segment(n, 1001, 5001, TcpFlags::ACK, 0, false));
    }
    assert_eq!(handshakes.len() % 32, 0);
    let n = handshakes.len();
    let handshakes = if router {
        to_port(handshakes)
    } else {
        handshakes
    };
    let mut io = ring(handshakes, router);
    for _ in 0..n / 32 {
        w.poll(&mut io, &mut sink, &[PortId(0)], Instant(1));
    }
    assert_eq!(w.table().len(), FLOWS as usize);
    // Then data segments of every connection, in turn, forever (retransmissions inside the window).
    let data: Vec<Vec<u8>> = (0..FLOWS)
        .map(|n| segment(n, 1001, 5001, TcpFlags::ACK | TcpFlags::PSH, 1448, false))
        .collect();
    let data = if router { to_port(data) } else { data };
    let mut io = ring(data, router);
    let mut group = c.benchmark_group("worker");
    group.throughput(Throughput::Elements(32));
    let name = if router {
        "established_tcp_burst_of_32_router"
    } else {
        "established_tcp_burst_of_32"
    };
    group.bench_function(name, |b| {
        b.iter(|| w.poll(&mut io, &mut sink, &[PortId(0)], Instant(2)));
    });
    let dropped: u64 = tandem_dataplane::counters::DropReason::ALL
        .iter()
        .map(|r| w.counters().dropped(*r))
        .sum();
    let reasons: Vec<(&str, u64)> = tandem_dataplane::counters::DropReason::ALL
        .iter()
        .map(|r| (r.name(), w.counters().dropped(*r)))
        .filter(|(_, v)| *v > 0)
        .collect();
    assert_eq!(
        dropped,
        0,
        "every benchmark packet must pass: {reasons:?} of {}",
        w.counters().rx_packets.get()
    );
    group.finish();
}

fn established(c: &mut Criterion) {
    established_in(c, false);
    established_in(c, true);
}

fn new_connections(c: &mut Criterion) {
    const BATCH: u32 = 8192;
    let syns: Vec<Vec<u8>> = (0..BATCH)
        .map(|n| segment(n, 1000 + n, 0, TcpFlags::SYN, 0, false))
        .collect();
    let mut group = c.benchmark_group("worker");
    group.throughput(Throughput::Elements(u64::from(BATCH)));
    group.bench_function("new_connection_with_sync_event", |b| {
        b.iter_batched_ref(
            || {
                (
                    worker(BATCH as usize, true, false),
                    ring(syns.clone(), false),
                    Sink::default(),
                )
            },
            |(w, io, sink)| {
                for _ in 0..BATCH / 32 {
                    w.poll(io, sink, &[PortId(0)], Instant(1));
                }
                assert_eq!(w.table().len(), BATCH as usize);
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, established, new_connections);
criterion_main!(benches);
