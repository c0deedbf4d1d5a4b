//! The worker test bench shared by the worker's test files: a worker over in-memory ports, links that
//! record what it tells the other threads, and builders for the client/server frames the tests send.
#![allow(dead_code, unused_imports)]

pub use std::collections::VecDeque;
pub use std::net::Ipv4Addr;
pub use std::sync::Arc;

pub use tandem_config::{PortId, Profile};
pub use tandem_dataplane::counters::{DropReason, WorkerCounters};
pub use tandem_dataplane::io::MemoryIo;
pub use tandem_dataplane::route::{NextHop, RouteTable, addr_of};
pub use tandem_dataplane::rules::RuleSet;
pub use tandem_dataplane::wire::build::{self, Endpoints};
pub use tandem_dataplane::wire::checksum::ChecksumCaps;
pub use tandem_dataplane::wire::ethernet::MacAddr;
pub use tandem_dataplane::wire::meta::{IcmpKind, L4, PacketMeta, TcpMeta, parse_meta};
pub use tandem_dataplane::wire::tcp::{TcpFlags, TcpRepr};
pub use tandem_dataplane::wire::udp::UdpRepr;
pub use tandem_dataplane::worker::{
    ControlOp, PortInfo, Worker, WorkerConfig, WorkerLinks, rule_counters,
};
pub use tandem_sync::event::{
    LocalEvent, PeerOp, ReleaseReason, StateName, StateRecord, StateUpdate,
};
pub use tandem_sync::identity::CreatorId;
pub use tandem_sync::time::{Duration, Instant};

pub const INSIDE: PortId = PortId(0);
pub const OUTSIDE: PortId = PortId(1);
pub const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x10]);
pub const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x20]);
pub const FW_IN_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
pub const FW_OUT_MAC: [u8; 6] = [2, 0, 0, 0, 1, 2];

#[derive(Default)]
pub struct Links {
    pub events: Vec<LocalEvent>,
    pub event_room: Option<usize>,
    pub ops: VecDeque<PeerOp>,
    pub control: VecDeque<ControlOp>,
    pub punted: Vec<(PortId, Vec<u8>)>,
    pub resolve: Vec<NextHop>,
    pub redirected: Vec<(usize, PortId, Vec<u8>)>,
    /// Host ids of the peers alive (owner redirect).
    pub alive: Vec<CreatorId>,
    /// Frames sent to their owners.
    pub to_owner: Vec<(CreatorId, PortId, Vec<u8>)>,
    /// How many frames the queue to the sync core takes; unbounded when `None`.
    pub to_owner_room: Option<usize>,
    /// Frames peers redirected to this worker.
    pub from_peers: VecDeque<(PortId, Vec<u8>)>,
    /// Whether every sync peer is dead.
    pub peers_dead: bool,
}

impl WorkerLinks<Vec<u8>> for Links {
    fn push_event(&mut self, event: LocalEvent) -> bool {
        if self
            .event_room
            .is_some_and(|room| self.events.len() >= room)
        {
            return false;
        }
        self.events.push(event);
        true
    }
    fn pop_op(&mut self) -> Option<PeerOp> {
        self.ops.pop_front()
    }
    fn pop_control(&mut self) -> Option<ControlOp> {
        self.control.pop_front()
    }
    fn punt(&mut self, port: PortId, packet: Vec<u8>) -> Result<(), Vec<u8>> {
        self.punted.push((port, packet));
        Ok(())
    }
    fn resolve(&mut self, hop: NextHop) -> bool {
        self.resolve.push(hop);
        true
    }
    fn redirect(&mut self, worker: usize, port: PortId, packet: Vec<u8>) -> Result<(), Vec<u8>> {
        self.redirected.push((worker, port, packet));
        Ok(())
    }
    fn owner_alive(&self, owner: CreatorId) -> bool {
        self.alive.contains(&owner)
    }
    fn peers_alive(&self) -> bool {
        !self.peers_dead
    }
    fn to_owner(&mut self, owner: CreatorId, port: PortId, packet: Vec<u8>) -> Result<(), Vec<u8>> {
        if self
            .to_owner_room
            .is_some_and(|room| self.to_owner.len() >= room)
        {
            return Err(packet);
        }
        self.to_owner.push((owner, port, packet));
        Ok(())
    }
    fn pop_redirected(&mut self) -> Option<(PortId, Vec<u8>)> {
        self.from_peers.pop_front()
    }
}

pub struct Bench {
    pub worker: Worker<Vec<u8>>,
    pub io: MemoryIo,
    pub links: Links,
    pub counters: Arc<WorkerCounters>,
    pub now: Instant,
}

pub fn profile(body: &str) -> Profile {
    profile_with_mtu(body, 1500)
}

/// The test profile with the outside port's MTU set.
pub fn profile_with_mtu(body: &str, outside_mtu: u16) -> Profile {
    let src = format!(
        "node: {{name: fw, host-id: 0x0a000001}}\nports:\n  - {{name: inside, device: net_null0, addresses: [198.18.0.1/24]}}\n  - {{name: outside, device: net_null1, mtu: {outside_mtu}, addresses: [198.19.0.1/24]}}\nworkers: {{cores: [0]}}\n{body}"
    );
    tandem_config::parse(&src, "test").unwrap_or_else(|e| panic!("{}", e.report()))
}

pub fn bench(body: &str) -> Bench {
    bench_worker(body, 0, 1)
}

/// Worker `index` of `workers` (flows placed over them with the software table).
pub fn bench_worker(body: &str, index: usize, workers: usize) -> Bench {
    bench_of(profile(body), index, workers)
}

/// A single worker whose outside port has `mtu`.
pub fn bench_with_mtu(body: &str, mtu: u16) -> Bench {
    bench_of(profile_with_mtu(body, mtu), 0, 1)
}

fn bench_of(p: Profile, index: usize, workers: usize) -> Bench {
    let macs = [FW_IN_MAC, FW_OUT_MAC];
    let ports = p
        .ports
        .iter()
        .zip(macs)
        .map(|(port, mac)| PortInfo { mac, mtu: port.mtu })
        .collect();
    let mut cfg = WorkerConfig::from_profile(&p, index, ports, 1 << 32);
    cfg.workers = workers;
    cfg.placement = tandem_dataplane::flow::Placement::new(workers, []);
    let (worker, counters) = Worker::alone(&p, cfg, Instant::ZERO);
    Bench {
        worker,
        io: MemoryIo::new(2),
        links: Links::default(),
        counters,
        now: Instant(1_000_000),
    }
}

impl Bench {
    pub fn send(&mut self, port: PortId, frame: Vec<u8>) -> Vec<Vec<u8>> {
        self.io.inject(port, frame);
        self.worker
            .poll(&mut self.io, &mut self.links, &[INSIDE, OUTSIDE], self.now);
        let out_port = if port == INSIDE { OUTSIDE } else { INSIDE };
        self.io.take_sent(out_port)
    }

    pub fn answers(&mut self, port: PortId) -> Vec<Vec<u8>> {
        self.io.take_sent(port)
    }

    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.counters.dropped(reason)
    }
}

/// The client 198.18.0.10:40000 talks to the server 198.19.0.20:80.
pub fn c2s(seq: u32, ack: u32, flags: TcpFlags, len: usize) -> Vec<u8> {
    segment(true, seq, ack, flags, len)
}

pub fn s2c(seq: u32, ack: u32, flags: TcpFlags, len: usize) -> Vec<u8> {
    segment(false, seq, ack, flags, len)
}

pub fn segment(from_client: bool, seq: u32, ack: u32, flags: TcpFlags, len: usize) -> Vec<u8> {
    let client = ([198, 18, 0, 10].into(), 40000);
    let server = ([198, 19, 0, 20].into(), 80);
    let (src, dst, macs) = if from_client {
        (client, server, (CLIENT_MAC, MacAddr(FW_IN_MAC)))
    } else {
        (server, client, (SERVER_MAC, MacAddr(FW_OUT_MAC)))
    };
    let ends = Endpoints::v4(macs.0, macs.1, src.0, dst.0);
    let repr = TcpRepr {
        src_port: src.1,
        dst_port: dst.1,
        seq,
        ack,
        flags,
        window: 65535,
        ..TcpRepr::default()
    };
    build::tcp(&ends, &repr, &vec![0x5a; len]).expect("builds")
}

pub const SYN: TcpFlags = TcpFlags::SYN;
pub const ACK: TcpFlags = TcpFlags::ACK;

pub fn syn_ack() -> TcpFlags {
    TcpFlags::SYN | TcpFlags::ACK
}

pub const WIRE_PASS: &str = "forwarding: {mode: wire, pairs: [[inside, outside]]}\nrules:\n  - {action: pass, direction: in, port: inside}\n";
