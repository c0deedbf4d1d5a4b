//! A virtual-time harness for sync engines: N engines joined by links with latency, bandwidth and loss,
//! each with a stand-in for its workers' shards that answers the engine's operations as workers do.
//! Time jumps from event to event; nothing sleeps.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use tandem_config::Family;
use tandem_sync::engine::{Destination, Encapsulation, Engine, EngineConfig, Policy};
use tandem_sync::event::{
    LocalEvent, PeerOp, ReleaseReason, SnapshotRequest, StateName, StateRecord, StateUpdate,
};
use tandem_sync::identity::{CreatorId, StateId};
use tandem_sync::merge;
use tandem_sync::policy::WindowBudget;
use tandem_sync::state::{TcpPeer, TimeoutClass, tcp_state};
use tandem_sync::time::{Duration, Instant};

/// A shard map for the harness: everything on worker 0.
pub fn one_worker(_: &StateRecord) -> usize {
    0
}

/// What a node's workers did, as the harness records it.
#[derive(Debug, Default)]
pub struct Shard {
    pub states: BTreeMap<StateName, StateRecord>,
    pub released: Vec<(StateName, ReleaseReason, Instant)>,
    pub deleted: Vec<StateName>,
    /// The bulk read in progress: its number and the last state read.
    pub bulk_cursor: Option<(u32, Option<StateName>)>,
}

/// A packet in flight.
#[derive(Debug, Clone)]
struct InFlight {
    at: Instant,
    seq: u64,
    from: usize,
    to: usize,
    payload: Vec<u8>,
}

/// Link knobs between every pair of nodes.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    pub latency: Duration,
    pub bandwidth_bps: u64,
    /// Probability that a packet is lost, drawn from a seeded generator.
    pub loss: f64,
}

pub struct Node {
    pub engine: Engine<fn(&StateRecord) -> usize>,
    pub shard: Shard,
    pub address: Ipv4Addr,
    pub up: bool,
    busy_until: Instant,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub now: Instant,
    link: Link,
    flight: Vec<InFlight>,
    seq: u64,
    rng: u64,
    pub max_payload: usize,
    pub packets: u64,
}

pub fn address(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, 0, 10 + i as u8)
}

pub fn config(i: usize, n: usize, policy: Policy) -> EngineConfig {
    EngineConfig {
        creator: CreatorId(0x0a00_0000 + i as u32 + 1),
        workers: 1,
        mtu: 1500,
        encapsulation: Encapsulation::Ip,
        multicast: false,
        peers: (0..n)
            .filter(|j| *j != i)
            .map(|j| (address(j), None))
            .collect(),
        policy,
        flush_deadline: Duration::micros(100),
        defer_timeout: Some(Duration::millis(20)),
        peer_dead: Duration::millis(300),
        keepalive: Duration::millis(100),
        bulk_rate: 10_000_000_000 / 8,
        bulk_timeout: Duration::millis(200),
        bulk_retries: 3,
        request_interval: Duration::millis(50),
        delivery: None,
        limits: tandem_sync::engine::PeerLimits::default(),
    }
}

pub fn window_aware() -> Policy {
    Policy::WindowAware {
        budget: WindowBudget::default(),
    }
}

impl Cluster {
    pub fn new(n: usize, link: Link, configure: impl Fn(usize, &mut EngineConfig)) -> Cluster {
        let nodes = (0..n)
            .map(|i| {
                let mut cfg = config(i, n, window_aware());
                configure(i, &mut cfg);
                Node {
                    engine: Engine::new(
                        cfg,
                        one_worker as fn(&StateRecord) -> usize,
                        Instant::ZERO,
                    )
                    .expect("engine"),
                    shard: Shard::default(),
                    address: address(i),
                    up: true,
                    busy_until: Instant::ZERO,
                }
            })
            .collect();
        Cluster {
            nodes,
            now: Instant::ZERO,
            link,
            flight: Vec::new(),
            seq: 0,
            rng: 0x5eed,
            max_payload: 0,
            packets: 0,
        }
    }

    /// A uniform draw in [0, 1) (splitmix64).
    fn draw(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn index_of(&self, address: Ipv4Addr) -> Option<usize> {
        self.nodes.iter().position(|n| n.address == address)
    }

    /// Moves packets out of engines onto links, and operations into shards.
    fn pump(&mut self) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].up {
                continue;
            }
            while let Some(t) = self.nodes[i].engine.poll_transmit(self.now) {
                self.max_payload = self.max_payload.max(t.payload.len());
                self.packets += 1;
                let targets: Vec<usize> = match t.destination {
                    Destination::Group => (0..self.nodes.len()).filter(|j| *j != i).collect(),
                    Destination::Peer(a) => self.index_of(a).into_iter().collect(),
                };
                // Serialise at the sender's link rate, once per packet sent.
                let wire = if self.link.bandwidth_bps == 0 {
                    Duration::ZERO
                } else {
                    Duration(
                        ((t.payload.len() + 20 + 38) as u64 * 8 * 1_000_000)
                            .div_ceil(self.link.bandwidth_bps),
                    )
                };
                let start = self.nodes[i].busy_until.max(self.now);
                self.nodes[i].busy_until = start + wire;
                for to in targets {
                    if self.link.loss > 0.0 && self.draw() < self.link.loss {
                        continue;
                    }
                    self.seq += 1;
                    self.flight.push(InFlight {
                        at: start + wire + self.link.latency,
                        seq: self.seq,
                        from: i,
                        to,
                        payload: t.payload.clone(),
                    });
                }
            }
            self.apply_ops(i);
        }
    }

    fn apply_ops(&mut self, i: usize) {
        let now = self.now;
        let node = &mut self.nodes[i];
        let mut ops = Vec::new();
        node.engine.drain_ops(0, |op| {
            ops.push(op);
            true
        });
        let mut events = Vec::new();
        for op in ops {
            match op {
                PeerOp::Insert { record, ack } => {
                    node.shard.states.entry(record.name).or_insert(record);
                    if ack {
                        events.push(LocalEvent::PeerInserted { name: record.name });
                    }
                }
                PeerOp::Update { update } => {
                    if let Some(r) = node.shard.states.get_mut(&update.name) {
                        merge::merge_tcp(&mut r.peers, &update.peers);
                    }
                }
                PeerOp::Delete { name } => {
                    node.shard.states.remove(&name);
                    node.shard.deleted.push(name);
                }
                PeerOp::Clear { creator } => node.shard.states.retain(|n, _| n.creator != creator),
                PeerOp::ReleaseDeferred { name, reason } => {
                    node.shard.released.push((name, reason, now))
                }
                PeerOp::ReadOne { name } => {
                    if let Some(r) = node.shard.states.get(&name) {
                        events.push(LocalEvent::Snapshot {
                            record: *r,
                            request: SnapshotRequest::One,
                        });
                    }
                }
                PeerOp::ReadBulk { request, budget } => {
                    use std::ops::Bound::{Excluded, Unbounded};
                    let after = match node.shard.bulk_cursor {
                        Some((r, last)) if r == request => last,
                        _ => None,
                    };
                    let range = match after {
                        Some(last) => node.shard.states.range((Excluded(last), Unbounded)),
                        None => node.shard.states.range(..),
                    };
                    let records: Vec<StateRecord> =
                        range.take(budget as usize + 1).map(|(_, r)| *r).collect();
                    let done = records.len() <= budget as usize;
                    let records = &records[..records.len().min(budget as usize)];
                    for record in records {
                        events.push(LocalEvent::Snapshot {
                            record: *record,
                            request: SnapshotRequest::Bulk(request),
                        });
                    }
                    let last = records.last().map(|r| r.name).or(after);
                    node.shard.bulk_cursor = Some((request, last));
                    if done {
                        events.push(LocalEvent::SnapshotDone { request });
                    }
                }
            }
        }
        for e in events {
            node.engine.handle_event(now, 0, e);
        }
    }

    /// Runs until `until`, jumping between events. Returns the number of steps, bounded to catch livelock.
    pub fn run_until(&mut self, until: Instant) -> usize {
        let mut steps = 0;
        loop {
            self.pump();
            steps += 1;
            assert!(steps < 5_000_000, "livelock: {steps} steps");
            let next_packet = self.flight.iter().map(|p| (p.at, p.seq)).min();
            let next_timer = self
                .nodes
                .iter()
                .filter(|n| n.up)
                .filter_map(|n| n.engine.poll_timeout())
                .min()
                .map(|t| t.max(self.now));
            let next = [next_packet.map(|(t, _)| t), next_timer]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            if next > until {
                break;
            }
            self.now = next.max(self.now);
            if next_packet.is_some_and(|(t, _)| t == next) {
                let (_, seq) = next_packet.expect("some");
                let pos = self
                    .flight
                    .iter()
                    .position(|p| p.seq == seq)
                    .expect("present");
                let p = self.flight.swap_remove(pos);
                if self.nodes[p.to].up {
                    let from = self.nodes[p.from].address;
                    let now = self.now;
                    self.nodes[p.to]
                        .engine
                        .handle_datagram(now, from, &p.payload);
                }
            } else {
                let now = self.now;
                for n in self.nodes.iter_mut().filter(|n| n.up) {
                    if n.engine.poll_timeout().is_some_and(|t| t <= now) {
                        n.engine.handle_timeout(now);
                    }
                }
            }
        }
        self.now = self.now.max(until);
        self.pump();
        steps
    }

    pub fn run_for(&mut self, d: Duration) -> usize {
        let until = self.now + d;
        self.run_until(until)
    }

    /// A worker on `node` created `record` now (holding its creating packet when `deferred`).
    pub fn insert(&mut self, node: usize, record: StateRecord, deferred: bool) {
        let at = self.now;
        self.event(
            node,
            LocalEvent::Inserted {
                record,
                deferred,
                at,
            },
        );
    }

    pub fn event(&mut self, node: usize, event: LocalEvent) {
        let now = self.now;
        self.nodes[node].engine.handle_event(now, 0, event);
        // A worker holds its own states: mirror what it reports into the local shard, as the worker's
        // state (which only moves forwards) would be.
        match event {
            LocalEvent::Inserted { record, .. } => {
                self.nodes[node].shard.states.insert(record.name, record);
            }
            LocalEvent::Updated { update, .. } => {
                if let Some(r) = self.nodes[node].shard.states.get_mut(&update.name) {
                    merge::merge_tcp(&mut r.peers, &update.peers);
                }
            }
            _ => {}
        }
    }
}

pub fn tcp_record(creator: u32, id: u64, seqlo: u32) -> StateRecord {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[198, 18, (id >> 8) as u8, id as u8]);
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&[198, 19, 0, 1]);
    StateRecord {
        name: StateName {
            creator: CreatorId(creator),
            id: StateId(id),
        },
        family: Family::Inet,
        proto: 6,
        addr: [a, b],
        port: [40000 + (id % 20000) as u16, 443],
        peers: [
            TcpPeer {
                seqlo,
                seqhi: seqlo.wrapping_add(65535),
                max_win: 65535,
                state: tcp_state::ESTABLISHED,
                ..TcpPeer::default()
            },
            TcpPeer {
                seqlo: 5000,
                seqhi: 5000 + 65535,
                max_win: 65535,
                state: tcp_state::ESTABLISHED,
                ..TcpPeer::default()
            },
        ],
        timeout: TimeoutClass::TcpEstablished,
        expire_secs: 86_400,
        age_secs: 0,
        packets: [1, 1],
        bytes: [60, 60],
        rule: 0,
        flags: 0,
    }
}

pub fn update_of(record: &StateRecord, seqlo: u32) -> StateUpdate {
    let mut peers = record.peers;
    peers[0].seqlo = seqlo;
    StateUpdate {
        name: record.name,
        peers,
        timeout: record.timeout,
        updates: 1,
    }
}

pub fn states(cluster: &Cluster, node: usize) -> &BTreeMap<StateName, StateRecord> {
    &cluster.nodes[node].shard.states
}

pub type Counts = HashMap<&'static str, u64>;
