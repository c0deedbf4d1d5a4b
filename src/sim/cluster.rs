//! A cluster in virtual time: one real [`Worker`] and one real sync [`Engine`] per node, TCP hosts from
//! [`super::tcp`], and links from [`super::net`].
//!
//! Topology: every flow has a client and a server. The client's segments enter a node's inside port and
//! leave its outside port towards the server (the flow's *forward* node); the server's segments come back
//! through its *return* node. Symmetric flows use one node both ways, asymmetric flows two. The nodes are
//! wire-mode firewalls (inside and outside paired) that pass TCP from the inside and block the rest, so
//! the server's segments pass only on a state, created locally or learnt through sync.
//!
//! Every node has processors that run its work one job at a time (see [`Cpu`]): a frame through the
//! worker, a received sync packet through the engine, or a sync step (the worker's events, the engine's
//! timers, its transmissions). The costs are inputs to the model, not measurements.
//!
//! The client's access link sets the flow's packet rate (its bandwidth is `flow_pps` full frames a
//! second) and has a queue, so TCP finds the rate itself, losing packets when it overshoots. Every other
//! link has a latency and no bandwidth limit, except the sync links (one per ordered pair of nodes), which
//! have latency, bandwidth and loss of their own.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tandem_config::Family;
use tandem_config::{PortId, Redirect};
use tandem_dataplane::counters::{DropReason, WorkerCounters};
use tandem_dataplane::flow::{Endpoint, FlowKey};
use tandem_dataplane::io::MemoryIo;
use tandem_dataplane::route::NextHop;
use tandem_dataplane::wire::build::{self, Endpoints};
use tandem_dataplane::wire::ethernet::MacAddr;
use tandem_dataplane::wire::tcp::Packet as TcpPacket;
use tandem_dataplane::worker::{ControlOp, PortInfo, Worker, WorkerConfig, WorkerLinks};
use tandem_sync::engine::{Destination, Engine, EngineConfig, Policy, ShardMap};
use tandem_sync::event::{LocalEvent, PeerOp, StateName, StateRecord};
use tandem_sync::identity::CreatorId;
use tandem_sync::packetizer::Encapsulation;
use tandem_sync::policy::{MAX_ACK_WINDOW, PushPolicy, WindowBudget};
use tandem_sync::seq;
use tandem_sync::state::TcpPeer;
use tandem_sync::time::Duration;

use super::net::{EventQueue, Link, LinkConfig, Ns};
use crate::traffic::tcp::{Segment, TcpConfig, TcpEndpoint};

const INSIDE: PortId = PortId(0);
const OUTSIDE: PortId = PortId(1);
const PORTS: [PortId; 2] = [INSIDE, OUTSIDE];
/// Ethernet, IPv4 and TCP headers of the simulated frames (no options on data segments).
pub const FRAME_OVERHEAD: u32 = 14 + 20 + 20;
/// Bytes a sync packet takes on the wire besides its pfsync payload: Ethernet and IPv4 headers.
const SYNC_OVERHEAD: usize = 14 + 20;
/// The first client port; flow `i` uses `FIRST_PORT + i`.
const FIRST_PORT: u16 = 10_000;
/// Most flows a scenario may have (client ports must stay distinct).
pub const MAX_FLOWS: usize = 50_000;
/// Most packets of a flow kept for measuring sync lag.
const MAX_MARKS: usize = 1 << 18;

/// Which rule decides when state updates are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdatePolicy {
    /// pfsync's: every `maxupd` (128) packets, after 1 s, and at once on a state a peer touched within 2 s.
    Classic,
    /// Tandem's: before a peer's copy lags past what pf's checks tolerate.
    WindowAware,
}

impl UpdatePolicy {
    /// Its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            UpdatePolicy::Classic => "classic",
            UpdatePolicy::WindowAware => "window-aware",
        }
    }
}

/// How a node's work is spread over processors, and what it costs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cpu {
    /// Tandem: workers and the sync core have cores of their own. Forwarding is free in the model (its
    /// cost is measured by the benchmarks); the sync core spends `sync_packet` per sync packet sent or
    /// received, `sync_event` per event from a worker and `redirect_frame` per frame it carries for owner
    /// redirect at either end.
    Dedicated {
        /// Per sync packet sent or received.
        sync_packet: Ns,
        /// Per worker event.
        sync_event: Ns,
        /// Per redirected frame sent or received.
        redirect_frame: Ns,
    },
    /// One processor per node does everything in arrival order, the way a 2009 kernel ran pf and pfsync:
    /// `forward` per data frame, `sync_packet` per sync packet sent or received, with an input queue of
    /// `queue` packets (a full queue drops, data and sync alike).
    Shared {
        /// Per forwarded frame.
        forward: Ns,
        /// Per sync packet sent or received.
        sync_packet: Ns,
        /// Per worker event.
        sync_event: Ns,
        /// Input queue, in packets.
        queue: usize,
    },
}

impl Cpu {
    /// Tandem's costs, from measurements with a margin: one update sent by an engine and applied by
    /// another costs 59 ns of engine time in all (`cargo bench -p tandem-sync --bench engine`), and DPDK
    /// moves a packet in and out in about 26 ns (testpmd io, docs/benchmarks.md); the model charges
    /// 250 ns per sync packet at each end, more than twice the measured cost, and 50 ns per event. A
    /// redirected frame costs the sync core a queue operation, a copy and a transmit or receive: the model
    /// charges 100 ns at each end (a model input, not a measurement).
    pub const TANDEM: Cpu = Cpu::Dedicated {
        sync_packet: Ns(250),
        sync_event: Ns(50),
        redirect_frame: Ns(100),
    };
    /// A 2009-class appliance (one CPU, pfsync through the kernel's IP stack): 25 us to forward a packet
    /// and 50 us to send or receive a sync packet. Calibrated so that pfsync's per-packet update exchange
    /// overloads it just above the 10,000 packets/s the original work reported; model inputs, not
    /// measurements.
    pub const PFSYNC_2009: Cpu = Cpu::Shared {
        forward: Ns::micros(25),
        sync_packet: Ns::micros(50),
        sync_event: Ns(500),
        queue: 256,
    };

    fn sync_packet(self) -> Ns {
        match self {
            Cpu::Dedicated { sync_packet, .. } | Cpu::Shared { sync_packet, .. } => sync_packet,
        }
    }

    fn redirect_frame(self) -> Ns {
        match self {
            Cpu::Dedicated { redirect_frame, .. } => redirect_frame,
            Cpu::Shared { sync_packet, .. } => sync_packet,
        }
    }

    fn sync_event(self) -> Ns {
        match self {
            Cpu::Dedicated { sync_event, .. } | Cpu::Shared { sync_event, .. } => sync_event,
        }
    }
}

/// Which nodes a flow crosses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paths {
    /// Both directions through node 0.
    Symmetric,
    /// Client to server through node 0, server to client through node 1.
    Asymmetric,
    /// Flow `i` goes out through node `i % n` and comes back through node `(i + 1) % n`: every pair of
    /// nodes carries some flow.
    Rotating,
}

/// One experiment.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Firewalls: 1 (a single firewall, no sync), 2 or 3.
    pub nodes: usize,
    /// Concurrent TCP flows, each a bulk transfer from its client to its server.
    pub flows: usize,
    /// Which nodes flows cross.
    pub paths: Paths,
    /// The sync policy.
    pub policy: UpdatePolicy,
    /// Whether workers hold packets ahead of the sync for a peer's update (hold-and-recheck); off, a
    /// node drops them as pf does, which is what the classic and window-aware variants measure.
    pub hold: bool,
    /// Owner redirect: whether a node sends the frames of a state it cannot check in time to the node
    /// that created it, over the sync link.
    pub redirect: Redirect,
    /// Each flow's packet rate (full-sized frames a second on the client's access link).
    pub flow_pps: f64,
    /// Bytes each client sends, then falls silent (the connection stays open); `u64::MAX`: until the end.
    pub flow_bytes: u64,
    /// Acknowledged delivery on the sync engines (numbered packets, acknowledgements, resends).
    pub acknowledged: bool,
    /// TCP payload per full segment.
    pub mss: u32,
    /// One-way latency of every data hop (host to firewall, firewall to host).
    pub hop_latency: Ns,
    /// The client access link's queue, in full frames.
    pub queue_frames: usize,
    /// One-way latency of the sync link.
    pub sync_latency: Ns,
    /// Sync link bandwidth, bits per second.
    pub sync_bandwidth_bps: u64,
    /// Probability that a sync packet is lost.
    pub sync_loss: f64,
    /// Flush deadline of the window-aware policy: the longest an update waits.
    pub flush_deadline: Ns,
    /// Bytes the window-aware policy keeps in reserve under pf's tolerances.
    pub reserve: u32,
    /// Bytes of a flow's progress worth an event from the worker to the sync core (window-aware).
    pub quantum: u32,
    /// Processing costs.
    pub cpu: Cpu,
    /// How long the flows run (after a warm-up in which the nodes find each other).
    pub duration: Ns,
    /// Stop a node dead at a time (after the warm-up): it forwards and syncs nothing after.
    pub kill: Option<(usize, Ns)>,
    /// How long before a kill the dying node's sync link goes dead (both ways): a node that hangs, then
    /// dies, leaving the survivors' copies of its states behind what the endpoints did through it.
    pub sync_cut_before_kill: Ns,
    /// How long after a kill the paths move to the surviving nodes (failure detection and rerouting).
    pub reroute_after: Ns,
    /// Flows start spread over this interval.
    pub start_spread: Ns,
    /// Seed of every random draw.
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            nodes: 2,
            flows: 1,
            paths: Paths::Asymmetric,
            policy: UpdatePolicy::WindowAware,
            hold: false,
            redirect: Redirect::Off,
            flow_pps: 10_000.0,
            flow_bytes: u64::MAX,
            acknowledged: false,
            mss: 1448,
            hop_latency: Ns::micros(2),
            queue_frames: 256,
            sync_latency: Ns::micros(100),
            sync_bandwidth_bps: 10_000_000_000,
            sync_loss: 0.0,
            flush_deadline: Ns::micros(50),
            reserve: WindowBudget::default().reserve,
            quantum: tandem_dataplane::worker::PUSH_QUANTUM,
            cpu: Cpu::TANDEM,
            duration: Ns::millis(100),
            kill: None,
            sync_cut_before_kill: Ns::ZERO,
            reroute_after: Ns::millis(3),
            start_spread: Ns::ZERO,
            seed: 1,
        }
    }
}

impl Scenario {
    /// Bits per second of the client's access link.
    pub fn access_bandwidth_bps(&self) -> u64 {
        (self.flow_pps * f64::from((self.mss + FRAME_OVERHEAD) * 8)).round() as u64
    }

    /// The same flows through one firewall, without sync: the baseline.
    pub fn single_firewall(&self) -> Scenario {
        Scenario {
            nodes: 1,
            paths: Paths::Symmetric,
            kill: None,
            ..self.clone()
        }
    }

    /// Time before the flows start: the nodes exchange bulk requests and learn their peers are alive.
    pub fn warmup(&self) -> Ns {
        if self.nodes > 1 {
            Ns::millis(1) + self.sync_latency + self.sync_latency
        } else {
            Ns::ZERO
        }
    }

    /// The one-way delay from a data segment passing its forward node to the server's acknowledgement of
    /// it reaching the return node, at the least.
    pub fn return_path_delay(&self) -> Ns {
        self.hop_latency + self.hop_latency
    }

    /// The time a sync update takes from the change to the peer, at the least: processing at both ends
    /// and the sync link.
    pub fn sync_delay(&self) -> Ns {
        let wire = (64 * 8 * 1_000_000_000u64).div_ceil(self.sync_bandwidth_bps.max(1));
        self.sync_latency + self.cpu.sync_packet() + self.cpu.sync_packet() + Ns(wire)
    }

    /// The analytic bound on a flow's rate over asymmetric paths, in full segments per second: pf lets an
    /// acknowledgement run at most 67,035 bytes ahead of the copy of the sender's `seqlo`, so the copy may
    /// lag by at most that much when the acknowledgement arrives. `None` when the sync path is faster than
    /// the return path (no bound).
    pub fn bound_pps(&self) -> Option<f64> {
        let wait = self.sync_delay().0 as f64 - self.return_path_delay().0 as f64;
        (wait > 0.0).then(|| f64::from(MAX_ACK_WINDOW) / (wait / 1e9) / f64::from(self.mss))
    }

    fn validate(&self) -> Result<()> {
        if !(1..=3).contains(&self.nodes) {
            bail!("nodes must be 1, 2 or 3, not {}", self.nodes);
        }
        if self.flows == 0 || self.flows > MAX_FLOWS {
            bail!("flows must be 1 to {MAX_FLOWS}, not {}", self.flows);
        }
        if self.paths != Paths::Symmetric && self.nodes < 2 {
            bail!("{:?} paths need at least two nodes", self.paths);
        }
        if !(self.flow_pps >= 1.0 && self.flow_pps <= 1e9) {
            bail!("flow rate {} packets/s is out of range", self.flow_pps);
        }
        if !(0.0..1.0).contains(&self.sync_loss) {
            bail!("sync loss {} must be in [0, 1)", self.sync_loss);
        }
        if let Some((node, _)) = self.kill
            && (node >= self.nodes || self.nodes < 2)
        {
            bail!("cannot kill node {node} of {}", self.nodes);
        }
        Ok(())
    }
}

/// Percentiles of a set of samples, in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    /// How many samples.
    pub samples: usize,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    fn of(mut samples: Vec<u64>) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Percentiles {
            samples: samples.len(),
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            max: samples[samples.len() - 1],
        }
    }
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Bytes the servers received in order.
    pub delivered: u64,
    /// Delivered bits per second over the run.
    pub goodput_bps: f64,
    /// Data segments the clients sent, retransmissions included.
    pub data_segments: u64,
    /// Segments the clients retransmitted.
    pub retransmits: u64,
    /// Retransmission timeouts, clients and servers.
    pub timeouts: u64,
    /// Packets refused by pf's window checks, all nodes.
    pub window_drops: u64,
    /// Packets dropped by a firewall for any other reason (no state, rule, ...).
    pub other_drops: u64,
    /// Packets dropped by full queues (access links and processors).
    pub queue_drops: u64,
    /// Packets that reached a dead node.
    pub lost_at_dead_node: u64,
    /// Sync packets sent, all nodes (a multicast packet counts once).
    pub sync_packets: u64,
    /// Their pfsync bytes.
    pub sync_bytes: u64,
    /// Sync packets lost on the sync links.
    pub sync_lost: u64,
    /// How stale a peer's copy of the sender's progress was when the receiver's acknowledgements reached
    /// it: the age of the oldest data the forward node had passed and the peer did not yet know of.
    pub lag: Percentiles,
    /// Flows whose handshake completed.
    pub established: usize,
    /// Flows that delivered data in the last tenth of the run.
    pub alive_at_end: usize,
    /// Creating packets deferred, and how they were released.
    pub deferred: u64,
    /// Released by the peers' acknowledgement.
    pub released_by_iack: u64,
    /// Released by the timeout.
    pub released_by_timeout: u64,
    /// Packets held for a peer's update (hold-and-recheck), all nodes.
    pub held: u64,
    /// Of them, passed pf's checks once the update came.
    pub hold_released: u64,
    /// The 99th percentile of their wait, in microseconds (a power-of-two bucket's upper bound).
    pub hold_p99_us: Option<u64>,
    /// Takeover probes: endpoints asked for their numbers because a held packet's updater had failed.
    pub probed: u64,
    /// Update requests the sync engines sent (for states they lacked, or a held packet's fresh copy).
    pub update_requests: u64,
    /// Deferred inserts sent again for want of an acknowledgement.
    pub ins_resent: u64,
    /// Frames redirected to their states' owners over the sync link (owner redirect), all nodes.
    pub redirected: u64,
    /// At the end, states on which two live nodes' sync engines disagree (one lacks it, or their views
    /// of a side differ): zero once sync has caught up with flows that fell silent.
    pub diverged: usize,
    /// Acknowledged delivery: packets whose states were sent again (on a gap report or a timeout).
    pub resent_packets: u64,
}

impl Report {
    /// Sync packets per data segment.
    pub fn sync_packets_per_data(&self) -> f64 {
        self.sync_packets as f64 / self.data_segments.max(1) as f64
    }

    /// Sync bytes per data segment.
    pub fn sync_bytes_per_data(&self) -> f64 {
        self.sync_bytes as f64 / self.data_segments.max(1) as f64
    }
}

/// Maps every state to the node's single worker.
#[derive(Debug)]
struct OneShard;

impl ShardMap for OneShard {
    fn worker_of(&self, _record: &StateRecord) -> usize {
        0
    }
}

/// The worker's channels, as plain queues.
#[derive(Debug, Default)]
pub(crate) struct Links {
    events: VecDeque<LocalEvent>,
    ops: VecDeque<PeerOp>,
    /// Host ids of the peers the sync engine holds alive (set before each poll).
    alive: Vec<CreatorId>,
    /// Whether the sync engine holds any peer alive, its host id known or not (set before each poll).
    peers_alive: bool,
    /// Frames for their states' owners.
    to_owner: VecDeque<(CreatorId, PortId, Vec<u8>)>,
    /// Frames peers redirected here.
    redirected: VecDeque<(PortId, Vec<u8>)>,
}

impl WorkerLinks<Vec<u8>> for Links {
    fn push_event(&mut self, event: LocalEvent) -> bool {
        self.events.push_back(event);
        true
    }
    fn pop_op(&mut self) -> Option<PeerOp> {
        self.ops.pop_front()
    }
    fn pop_control(&mut self) -> Option<ControlOp> {
        None
    }
    fn punt(&mut self, _port: PortId, packet: Vec<u8>) -> Result<(), Vec<u8>> {
        Err(packet)
    }
    fn resolve(&mut self, _hop: NextHop) -> bool {
        false
    }
    fn redirect(&mut self, _worker: usize, _port: PortId, packet: Vec<u8>) -> Result<(), Vec<u8>> {
        // One worker per simulated node: nothing is another worker's.
        Err(packet)
    }
    fn owner_alive(&self, owner: CreatorId) -> bool {
        self.alive.contains(&owner)
    }
    fn peers_alive(&self) -> bool {
        self.peers_alive
    }
    fn to_owner(&mut self, owner: CreatorId, port: PortId, packet: Vec<u8>) -> Result<(), Vec<u8>> {
        self.to_owner.push_back((owner, port, packet));
        Ok(())
    }
    fn pop_redirected(&mut self) -> Option<(PortId, Vec<u8>)> {
        self.redirected.pop_front()
    }
}

/// A unit of work for a processor.
#[derive(Debug)]
enum Job {
    Frame {
        port: PortId,
        frame: Vec<u8>,
    },
    Datagram {
        from: Ipv4Addr,
        payload: Vec<u8>,
    },
    Step,
    /// A frame for its state's owner, through this node's sync core onto the sync link.
    RedirectOut {
        owner: usize,
        port: PortId,
        frame: Vec<u8>,
    },
    /// A frame a peer redirected here, through the sync core to the worker.
    RedirectIn {
        port: PortId,
        frame: Vec<u8>,
    },
}

#[derive(Debug, Default)]
struct Processor {
    queue: VecDeque<Job>,
    busy: bool,
    limit: usize,
}

struct Node {
    addr: Ipv4Addr,
    alive: bool,
    /// Whether its sync link is dead (see [`Scenario::sync_cut_before_kill`]).
    sync_cut: bool,
    worker: Worker<Vec<u8>>,
    io: MemoryIo,
    links: Links,
    counters: Arc<WorkerCounters>,
    engine: Option<Engine<OneShard>>,
    cpus: Vec<Processor>,
    timer_at: Option<Ns>,
    step_queued: bool,
    /// When the worker is due to poll for its held packets' timeout.
    hold_poll: Option<Ns>,
}

struct Flow {
    client_cfg: TcpConfig,
    client: TcpEndpoint,
    server: TcpEndpoint,
    client_ip: Ipv4Addr,
    client_port: u16,
    server_ip: Ipv4Addr,
    fwd: usize,
    ret: usize,
    /// Client to forward node (the bottleneck), forward node to server, server to return node, return
    /// node to client.
    hops: [Link; 4],
    timers: [Option<Ns>; 2],
    started: bool,
    key: FlowKey,
    hash: u64,
    marks: VecDeque<(Ns, u32)>,
    delivered_at_cut: u64,
}

#[derive(Debug)]
enum Event {
    Job {
        node: usize,
        job: Job,
    },
    CpuFree {
        node: usize,
        cpu: usize,
    },
    Ops {
        node: usize,
    },
    EngineTimer {
        node: usize,
    },
    Host {
        flow: usize,
        server: bool,
        frame: Vec<u8>,
    },
    HostTimer {
        flow: usize,
        server: bool,
    },
    Start {
        flow: usize,
    },
    Kill {
        node: usize,
    },
    CutSync {
        node: usize,
    },
    Reroute,
    Cut,
}

const NODE_MACS: [[u8; 6]; 2] = [[2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2]];
const CLIENT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x10]);
const SERVER_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x20]);
static ZEROS: [u8; 9000] = [0; 9000];

fn host_id(node: usize) -> u32 {
    0x0a00_ff01 + node as u32
}

fn sync_addr(node: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, 255, 0, 1 + node as u8)
}

fn node_profile(sc: &Scenario, node: usize) -> Result<tandem_config::Profile> {
    let mut y = format!(
        "node: {{name: fw{node}, host-id: {}}}\nports:\n  - {{name: inside, device: net_null0}}\n  - {{name: outside, device: net_null1}}\n",
        host_id(node)
    );
    if sc.nodes > 1 {
        y.push_str(&format!(
            "  - {{name: sync, device: net_null2, mtu: 1600, addresses: [{}/24]}}\n",
            sync_addr(node)
        ));
    }
    y.push_str("workers: {cores: [1]}\nforwarding: {mode: wire, pairs: [[inside, outside]]}\n");
    y.push_str(&format!(
        "limits: {{states: {}}}\n",
        (sc.flows * 2).max(1024)
    ));
    if sc.nodes > 1 {
        let peers: Vec<String> = (0..sc.nodes)
            .filter(|&j| j != node)
            .map(|j| format!("{{address: {}}}", sync_addr(j)))
            .collect();
        y.push_str(&format!(
            "sync:\n  port: sync\n  core: 2\n  transport: multicast\n  peers: [{}]\n  update-policy: {}\n  flush-deadline-us: {}\n  defer: {{enabled: true, timeout-us: 20000, limit: 4096}}\n  hold: {{enabled: {}}}\n  redirect: {}\n",
            peers.join(", "),
            sc.policy.name(),
            (sc.flush_deadline.0 / 1000).max(1),
            sc.hold,
            match sc.redirect {
                Redirect::Off => "off",
                Redirect::Auto => "auto",
                Redirect::Always => "always",
            },
        ));
    }
    y.push_str(
        "rules:\n  - {label: clients-out, action: pass, direction: in, port: inside, proto: tcp}\n",
    );
    tandem_config::parse(&y, "simulated node").map_err(|e| anyhow::anyhow!("{}", e.report()))
}

fn engine_config(sc: &Scenario, node: usize) -> EngineConfig {
    let policy = match sc.policy {
        UpdatePolicy::Classic => Policy::Classic {
            max_updates: 128,
            interval: Duration::secs(1),
        },
        UpdatePolicy::WindowAware => Policy::WindowAware {
            // The budget's delay is how much later an update reaches the return node than the data's
            // acknowledgement does: the sync path less the data path around the flow.
            budget: WindowBudget {
                reserve: sc.reserve,
                sync_delay: Duration::micros(
                    (sc.sync_delay() - sc.return_path_delay()).0.div_ceil(1000),
                ),
            },
        },
    };
    EngineConfig {
        creator: CreatorId(host_id(node)),
        workers: 1,
        mtu: 1500,
        encapsulation: Encapsulation::Ip,
        multicast: true,
        peers: (0..sc.nodes)
            .filter(|&j| j != node)
            .map(|j| (sync_addr(j), Some(CreatorId(host_id(j)))))
            .collect(),
        policy,
        flush_deadline: Duration::micros((sc.flush_deadline.0 / 1000).max(1)),
        defer_timeout: Some(Duration::millis(20)),
        peer_dead: Duration::millis(100),
        keepalive: Duration::millis(20),
        bulk_rate: 1_000_000_000 / 8,
        bulk_timeout: Duration::millis(50),
        bulk_retries: 3,
        request_interval: Duration::millis(50),
        delivery: sc
            .acknowledged
            .then(|| tandem_sync::engine::DeliveryConfig {
                epoch: 1 + node as u32,
                ack_delay: Duration::micros(500),
                resend_after: Duration::millis(5),
                give_up: Duration::millis(100),
                queue_limit: 131_072,
            }),
        limits: tandem_sync::engine::PeerLimits::default(),
    }
}

/// A running simulation.
pub struct Simulation {
    sc: Scenario,
    now: Ns,
    events: EventQueue<Event>,
    nodes: Vec<Node>,
    flows: Vec<Flow>,
    sync_links: Vec<Link>,
    lag: Vec<u64>,
    queue_drops: u64,
    lost_at_dead_node: u64,
    sync_packets: u64,
    sync_bytes: u64,
    redirected_frames: u64,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .field("flows", &self.flows.len())
            .field("pending", &self.events.len())
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// Builds the cluster, hosts and links of `sc`.
    pub fn new(sc: &Scenario) -> Result<Simulation> {
        sc.validate()?;
        let mut nodes = Vec::with_capacity(sc.nodes);
        for n in 0..sc.nodes {
            let profile = node_profile(sc, n)?;
            let ports = NODE_MACS
                .iter()
                .map(|&mac| PortInfo { mac, mtu: 1500 })
                .collect();
            let mut cfg = WorkerConfig::from_profile(&profile, 0, ports, (n as u64 + 1) << 40);
            if let Some(PushPolicy::Progress { quantum }) = &mut cfg.push {
                *quantum = sc.quantum;
            }
            let (worker, counters) = Worker::alone(&profile, cfg, Ns::ZERO.instant());
            let engine = if sc.nodes > 1 {
                let mut e = Engine::new(engine_config(sc, n), OneShard, Ns::ZERO.instant())
                    .context("building the sync engine")?;
                e.start(Ns::ZERO.instant());
                Some(e)
            } else {
                None
            };
            let cpus = match sc.cpu {
                Cpu::Dedicated { .. } => vec![
                    Processor {
                        limit: usize::MAX,
                        ..Processor::default()
                    },
                    Processor {
                        limit: 4096,
                        ..Processor::default()
                    },
                ],
                Cpu::Shared { queue, .. } => vec![Processor {
                    limit: queue,
                    ..Processor::default()
                }],
            };
            nodes.push(Node {
                addr: sync_addr(n),
                alive: true,
                sync_cut: false,
                worker,
                io: MemoryIo::new(2),
                links: Links::default(),
                counters,
                engine,
                cpus,
                timer_at: None,
                step_queued: false,
                hold_poll: None,
            });
        }
        let frame = u64::from(sc.mss + FRAME_OVERHEAD);
        let access = LinkConfig {
            latency: sc.hop_latency,
            bandwidth_bps: sc.access_bandwidth_bps(),
            queue_bytes: sc.queue_frames as u64 * frame,
            loss: 0.0,
        };
        let hop = LinkConfig::ideal(sc.hop_latency);
        let tcp = TcpConfig {
            mss: sc.mss,
            ..TcpConfig::default()
        };
        let mut flows = Vec::with_capacity(sc.flows);
        for i in 0..sc.flows {
            let (fwd, ret) = match sc.paths {
                Paths::Symmetric => (0, 0),
                Paths::Asymmetric => (0, 1),
                Paths::Rotating => (i % sc.nodes, (i + 1) % sc.nodes),
            };
            let client_ip = Ipv4Addr::from(u32::from(Ipv4Addr::new(198, 18, 0, 0)) + 1 + i as u32);
            let server_ip = Ipv4Addr::new(198, 19, 0, 1);
            let client_port = FIRST_PORT + i as u16;
            let (key, _) = FlowKey::of_packet(
                Family::Inet,
                6,
                Endpoint {
                    addr: tandem_dataplane::route::addr_of(&client_ip.into()),
                    port: client_port,
                },
                Endpoint {
                    addr: tandem_dataplane::route::addr_of(&server_ip.into()),
                    port: 80,
                },
            );
            let seed = sc.seed.wrapping_mul(0x9e37_79b9).wrapping_add(i as u64 * 8);
            let client_cfg = TcpConfig {
                iss: 1_000_000u32.wrapping_add(i as u32 * 7919),
                ..tcp
            };
            flows.push(Flow {
                client_cfg,
                client: TcpEndpoint::server(client_cfg),
                server: TcpEndpoint::server(TcpConfig {
                    iss: 2_000_000u32.wrapping_add(i as u32 * 104_729),
                    ..tcp
                }),
                client_ip,
                client_port,
                server_ip,
                fwd,
                ret,
                hops: [
                    Link::new(access, seed),
                    Link::new(hop, seed + 1),
                    Link::new(access, seed + 2),
                    Link::new(hop, seed + 3),
                ],
                timers: [None; 2],
                started: false,
                hash: key.table_hash(),
                key,
                marks: VecDeque::new(),
                delivered_at_cut: 0,
            });
        }
        let sync_cfg = LinkConfig {
            latency: sc.sync_latency,
            bandwidth_bps: sc.sync_bandwidth_bps,
            queue_bytes: 4 << 20,
            loss: sc.sync_loss,
        };
        let sync_links = (0..sc.nodes * sc.nodes)
            .map(|k| Link::new(sync_cfg, sc.seed ^ (0x5151 + k as u64)))
            .collect();
        let mut sim = Simulation {
            sc: sc.clone(),
            now: Ns::ZERO,
            events: EventQueue::default(),
            nodes,
            flows,
            sync_links,
            lag: Vec::new(),
            queue_drops: 0,
            lost_at_dead_node: 0,
            sync_packets: 0,
            sync_bytes: 0,
            redirected_frames: 0,
        };
        let warmup = sc.warmup();
        for i in 0..sc.flows {
            let at = warmup
                + if sc.flows > 1 {
                    Ns(sc.start_spread.0 / sc.flows as u64 * i as u64)
                } else {
                    Ns::ZERO
                };
            sim.events.push(at, Event::Start { flow: i });
        }
        for n in 0..sc.nodes {
            sim.arm_engine_timer(n, Ns::ZERO);
        }
        if let Some((node, at)) = sc.kill {
            let cut = Ns(at.0.saturating_sub(sc.sync_cut_before_kill.0));
            sim.events.push(warmup + cut, Event::CutSync { node });
            sim.events.push(warmup + at, Event::Kill { node });
            sim.events
                .push(warmup + at + sc.reroute_after, Event::Reroute);
        }
        sim.events
            .push(warmup + Ns(sc.duration.0 / 10 * 9), Event::Cut);
        Ok(sim)
    }

    /// Runs to the end and reports; `progress` is called with the fraction done now and then.
    pub fn run(mut self, mut progress: impl FnMut(f64)) -> Report {
        let end = self.sc.warmup() + self.sc.duration;
        let mut next_report = Ns::ZERO;
        while let Some(at) = self.events.next_at() {
            if at > end {
                break;
            }
            let Some((at, event)) = self.events.pop_due(at) else {
                break;
            };
            self.now = at;
            if at >= next_report {
                progress(at.0 as f64 / end.0 as f64);
                next_report = at + Ns(end.0 / 100);
            }
            self.handle(event);
        }
        progress(1.0);
        self.report()
    }

    fn handle(&mut self, event: Event) {
        let now = self.now;
        match event {
            Event::Start { flow } => {
                let f = &mut self.flows[flow];
                f.client = TcpEndpoint::client(f.client_cfg, now.instant(), self.sc.flow_bytes);
                f.started = true;
                self.host_output(flow, false);
            }
            Event::Job { node, job } => self.arrive(node, job),
            Event::CpuFree { node, cpu } => {
                let p = &mut self.nodes[node].cpus[cpu];
                p.busy = false;
                if let Some(job) = p.queue.pop_front() {
                    self.start_job(node, cpu, job);
                }
            }
            Event::Ops { node } => {
                if self.nodes[node].alive {
                    self.poll_worker(node, now);
                }
            }
            Event::EngineTimer { node } => {
                if self.nodes[node].timer_at == Some(now) {
                    self.nodes[node].timer_at = None;
                }
                self.request_step(node);
            }
            Event::Host {
                flow,
                server,
                frame,
            } => self.host_input(flow, server, &frame),
            Event::HostTimer { flow, server } => {
                let f = &mut self.flows[flow];
                if f.timers[usize::from(server)] == Some(now) {
                    f.timers[usize::from(server)] = None;
                }
                let ep = if server { &mut f.server } else { &mut f.client };
                if ep.poll_timeout().is_some_and(|due| due <= now.instant()) {
                    ep.on_timeout(now.instant());
                }
                self.host_output(flow, server);
            }
            Event::CutSync { node } => self.nodes[node].sync_cut = true,
            Event::Kill { node } => {
                let n = &mut self.nodes[node];
                n.alive = false;
                for p in &mut n.cpus {
                    p.queue.clear();
                }
            }
            Event::Reroute => {
                let alive: Vec<usize> = (0..self.nodes.len())
                    .filter(|&n| self.nodes[n].alive)
                    .collect();
                for f in &mut self.flows {
                    if !self.nodes[f.fwd].alive {
                        f.fwd = alive[f.fwd % alive.len()];
                    }
                    if !self.nodes[f.ret].alive {
                        f.ret = alive[f.ret % alive.len()];
                    }
                }
            }
            Event::Cut => {
                for f in &mut self.flows {
                    f.delivered_at_cut = f.server.stats().delivered;
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------- processors

    fn cpu_for(&self, job: &Job) -> usize {
        match (self.sc.cpu, job) {
            (Cpu::Shared { .. }, _) | (Cpu::Dedicated { .. }, Job::Frame { .. }) => 0,
            (Cpu::Dedicated { .. }, _) => 1,
        }
    }

    fn arrive(&mut self, node: usize, job: Job) {
        if !self.nodes[node].alive {
            if !matches!(job, Job::Step) {
                self.lost_at_dead_node += 1;
            }
            return;
        }
        let cpu = self.cpu_for(&job);
        let p = &mut self.nodes[node].cpus[cpu];
        if p.busy {
            if !matches!(job, Job::Step) && p.queue.len() >= p.limit {
                self.queue_drops += 1;
                return;
            }
            p.queue.push_back(job);
        } else {
            self.start_job(node, cpu, job);
        }
    }

    fn start_job(&mut self, node: usize, cpu: usize, job: Job) {
        let now = self.now;
        self.nodes[node].cpus[cpu].busy = true;
        let cost = match job {
            Job::Frame { port, frame } => {
                let cost = match self.sc.cpu {
                    Cpu::Shared { forward, .. } => forward,
                    Cpu::Dedicated { .. } => Ns::ZERO,
                };
                if port == OUTSIDE {
                    self.sample_lag(node, &frame);
                }
                self.nodes[node].io.inject(port, frame);
                self.poll_worker(node, now + cost);
                cost
            }
            Job::RedirectOut { owner, port, frame } => {
                let cost = self.sc.cpu.redirect_frame();
                let cut = self.nodes[node].sync_cut || self.nodes[owner].sync_cut;
                let link = &mut self.sync_links[node * self.nodes.len() + owner];
                let bytes = frame.len() + tandem_sync::wire::redirect::REDIRECT_HEADER_LEN;
                if !cut && let Some(arrival) = link.offer(now + cost, bytes + SYNC_OVERHEAD) {
                    self.redirected_frames += 1;
                    self.events.push(
                        arrival,
                        Event::Job {
                            node: owner,
                            job: Job::RedirectIn { port, frame },
                        },
                    );
                }
                cost
            }
            Job::RedirectIn { port, frame } => {
                let cost = self.sc.cpu.redirect_frame();
                self.nodes[node].links.redirected.push_back((port, frame));
                self.poll_worker(node, now + cost);
                cost
            }
            Job::Datagram { from, payload } => {
                // Received packets are handled as they come; what they cause goes out with the next step,
                // which follows the packets queued before it (the sync core reads a burst, then sends).
                if let Some(e) = self.nodes[node].engine.as_mut() {
                    e.handle_datagram(now.instant(), from, &payload);
                }
                self.request_step(node);
                self.sc.cpu.sync_packet()
            }
            Job::Step => {
                self.nodes[node].step_queued = false;
                self.sync_step(node, now)
            }
        };
        self.events.push(now + cost, Event::CpuFree { node, cpu });
    }

    fn request_step(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        if !n.alive || n.engine.is_none() || n.step_queued {
            return;
        }
        n.step_queued = true;
        self.arrive(node, Job::Step);
    }

    /// The sync core's round: the worker's events, due timers, transmissions, operations for the worker.
    /// Returns the time it took.
    fn sync_step(&mut self, node: usize, start: Ns) -> Ns {
        let (event_cost, packet_cost) = (self.sc.cpu.sync_event(), self.sc.cpu.sync_packet());
        let mut t = start;
        let mut sent = Vec::new();
        let mut ops = false;
        {
            let n = &mut self.nodes[node];
            let Some(engine) = n.engine.as_mut() else {
                return Ns::ZERO;
            };
            while let Some(event) = n.links.events.pop_front() {
                engine.handle_event(t.instant(), 0, event);
                t = t + event_cost;
            }
            if engine.poll_timeout().is_some_and(|due| due <= t.instant()) {
                engine.handle_timeout(t.instant());
            }
            while let Some(tx) = engine.poll_transmit(t.instant()) {
                t = t + packet_cost;
                sent.push((t, tx));
            }
            let links = &mut n.links;
            engine.drain_ops(0, |op| {
                links.ops.push_back(op);
                ops = true;
                true
            });
        }
        for (at, tx) in sent {
            self.send_sync(node, at, tx.destination, tx.payload);
        }
        if ops {
            self.events.push(t, Event::Ops { node });
        }
        self.arm_engine_timer(node, t);
        t - start
    }

    fn arm_engine_timer(&mut self, node: usize, now: Ns) {
        let n = &mut self.nodes[node];
        let Some(due) = n.engine.as_ref().and_then(|e| e.poll_timeout()) else {
            return;
        };
        let mut at = Ns::of_instant(due);
        if at <= now {
            // The engine counts whole microseconds: wake at the next one.
            at = Ns::of_instant(now.instant()) + Ns::micros(1);
        }
        if n.timer_at.is_some_and(|t| t >= self.now && t <= at) {
            return;
        }
        n.timer_at = Some(at);
        self.events.push(at, Event::EngineTimer { node });
    }

    fn send_sync(&mut self, from: usize, at: Ns, destination: Destination, payload: Vec<u8>) {
        self.sync_packets += 1;
        self.sync_bytes += payload.len() as u64;

        let targets: Vec<usize> = match destination {
            Destination::Group => (0..self.nodes.len()).filter(|&j| j != from).collect(),
            Destination::Peer(addr) => (0..self.nodes.len())
                .filter(|&j| self.nodes[j].addr == addr)
                .collect(),
        };
        let src = self.nodes[from].addr;
        for &to in &targets {
            if self.nodes[from].sync_cut || self.nodes[to].sync_cut {
                continue;
            }
            let link = &mut self.sync_links[from * self.nodes.len() + to];
            if let Some(arrival) = link.offer(at, payload.len() + SYNC_OVERHEAD) {
                let payload = payload.clone();
                self.events.push(
                    arrival,
                    Event::Job {
                        node: to,
                        job: Job::Datagram { from: src, payload },
                    },
                );
            }
        }
    }

    // ----------------------------------------------------------------------------------------- workers

    /// Polls a node's worker (applying the sync core's operations and any frame injected) and moves what
    /// it sends onto the links at `at`.
    fn poll_worker(&mut self, node: usize, at: Ns) {
        let had_events;
        let (to_server, to_client, to_owners) = {
            let n = &mut self.nodes[node];
            if let Some(e) = &n.engine {
                let alive = || e.peers().iter().filter(|(_, p)| p.alive);
                n.links.alive.clear();
                n.links.alive.extend(alive().filter_map(|(_, p)| p.host_id));
                n.links.peers_alive = alive().next().is_some();
            }
            n.worker
                .poll(&mut n.io, &mut n.links, &PORTS, self.now.instant());
            had_events = !n.links.events.is_empty();
            let to_owners: Vec<_> = n.links.to_owner.drain(..).collect();
            (n.io.take_sent(OUTSIDE), n.io.take_sent(INSIDE), to_owners)
        };
        for (owner, port, frame) in to_owners {
            let Some(owner) = (0..self.nodes.len()).find(|&j| CreatorId(host_id(j)) == owner)
            else {
                continue;
            };
            self.arrive(node, Job::RedirectOut { owner, port, frame });
        }
        for frame in to_server {
            let Some(i) = flow_of(&frame, true) else {
                continue;
            };
            let f = &mut self.flows[i];
            if f.fwd == node
                && let Some((seq_no, len)) = tcp_seq_len(&frame)
                && len > 0
                && f.marks.len() < MAX_MARKS
            {
                f.marks.push_back((at, seq_no.wrapping_add(len)));
            }
            if let Some(arrival) = f.hops[1].offer(at, frame.len()) {
                self.events.push(
                    arrival,
                    Event::Host {
                        flow: i,
                        server: true,
                        frame,
                    },
                );
            }
        }
        for frame in to_client {
            let Some(i) = flow_of(&frame, false) else {
                continue;
            };
            if let Some(arrival) = self.flows[i].hops[3].offer(at, frame.len()) {
                self.events.push(
                    arrival,
                    Event::Host {
                        flow: i,
                        server: false,
                        frame,
                    },
                );
            }
        }
        if had_events {
            self.request_step(node);
        }
        // A worker polls on its own when held packets time out.
        if let Some(due) = self.nodes[node].worker.next_hold_deadline() {
            let at = Ns::of_instant(due).max(self.now) + Ns::micros(1);
            if self.nodes[node]
                .hold_poll
                .is_none_or(|t| t > at || t < self.now)
            {
                self.nodes[node].hold_poll = Some(at);
                self.events.push(at, Event::Ops { node });
            }
        }
    }

    /// Before a node checks a server's segment: how stale is its (or, on a symmetric path, a standby's)
    /// copy of the client's progress?
    fn sample_lag(&mut self, node: usize, frame: &[u8]) {
        if self.nodes.len() < 2 {
            return;
        }
        let Some(i) = flow_of(frame, false) else {
            return;
        };
        let f = &mut self.flows[i];
        let witness = if f.fwd != node {
            node
        } else {
            match (0..self.nodes.len()).find(|&j| j != node && self.nodes[j].alive) {
                Some(j) => j,
                None => return,
            }
        };
        let table = self.nodes[witness].worker.table();
        let Some(index) = table.find(&f.key, f.hash) else {
            return;
        };
        let known = table.get(index).peers[0].seqlo;
        while f
            .marks
            .front()
            .is_some_and(|&(_, end)| seq::geq(known, end))
        {
            f.marks.pop_front();
        }
        let stale = f.marks.front().map_or(0, |&(t, _)| (self.now - t).0);
        self.lag.push(stale);
    }

    // ------------------------------------------------------------------------------------------- hosts

    fn host_input(&mut self, flow: usize, server: bool, frame: &[u8]) {
        let Some(seg) = segment_of(frame) else {
            return;
        };
        let now = self.now.instant();
        let f = &mut self.flows[flow];
        if server {
            f.server.on_segment(now, &seg);
        } else {
            f.client.on_segment(now, &seg);
        }
        self.host_output(flow, server);
    }

    fn host_output(&mut self, flow: usize, server: bool) {
        let now = self.now;
        let f = &mut self.flows[flow];
        if !f.started {
            return;
        }
        loop {
            let seg = if server {
                f.server.poll_transmit()
            } else {
                f.client.poll_transmit()
            };
            let Some(seg) = seg else { break };
            let frame = frame_of(f, server, &seg);
            let (hop, node, port) = if server {
                (2, f.ret, OUTSIDE)
            } else {
                (0, f.fwd, INSIDE)
            };
            match f.hops[hop].offer(now, frame.len()) {
                Some(arrival) => self.events.push(
                    arrival,
                    Event::Job {
                        node,
                        job: Job::Frame { port, frame },
                    },
                ),
                None => self.queue_drops += 1,
            }
        }
        let due = if server {
            f.server.poll_timeout()
        } else {
            f.client.poll_timeout()
        };
        if let Some(due) = due {
            let mut at = Ns::of_instant(due);
            if at <= now {
                at = Ns::of_instant(now.instant()) + Ns::micros(1);
            }
            let slot = &mut f.timers[usize::from(server)];
            if !slot.is_some_and(|t| t >= now && t <= at) {
                *slot = Some(at);
                self.events.push(at, Event::HostTimer { flow, server });
            }
        }
    }

    fn report(&self) -> Report {
        let mut r = Report::default();
        for f in &self.flows {
            let c = f.client.stats();
            let s = f.server.stats();
            r.delivered += s.delivered;
            r.data_segments += c.segments_sent;
            r.retransmits += c.retransmits;
            r.timeouts += c.timeouts + s.timeouts;
            if f.client.established() {
                r.established += 1;
            }
            if s.delivered > f.delivered_at_cut {
                r.alive_at_end += 1;
            }
        }
        r.goodput_bps = r.delivered as f64 * 8.0 / self.sc.duration.secs_f64();
        let mut hold_times = [0u64; tandem_dataplane::counters::HOLD_BUCKETS];
        for n in &self.nodes {
            for reason in DropReason::ALL {
                let d = n.counters.dropped(reason);
                if reason == DropReason::OutOfWindow {
                    r.window_drops += d;
                } else {
                    r.other_drops += d;
                }
            }
            r.held += n.counters.held.get();
            r.hold_released += n.counters.hold_released.get();
            r.probed += n.counters.hold_probed.get();
            for (total, bucket) in hold_times.iter_mut().zip(&n.counters.hold_time) {
                *total += bucket.get();
            }
            if let Some(e) = &n.engine {
                let s = e.stats();
                r.deferred += s.deferred;
                r.released_by_iack += s.released_by_iack;
                r.released_by_timeout += s.released_by_timeout;
                r.update_requests += s.requests_sent;
                r.ins_resent += s.ins_resent;
                r.resent_packets +=
                    s.delivery.sender.resent_on_nack + s.delivery.sender.resent_on_timeout;
            }
        }
        r.hold_p99_us = tandem_dataplane::counters::quantile_of(&hold_times, 0.99);
        r.queue_drops = self.queue_drops
            + self
                .flows
                .iter()
                .map(|f| f.hops.iter().map(|h| h.stats().queue_drops).sum::<u64>())
                .sum::<u64>();
        r.lost_at_dead_node = self.lost_at_dead_node;
        r.sync_packets = self.sync_packets;
        r.redirected = self.redirected_frames;
        r.sync_bytes = self.sync_bytes;
        r.sync_lost = self.sync_links.iter().map(|l| l.stats().losses).sum();
        r.lag = Percentiles::of(self.lag.clone());
        r.diverged = self.diverged();
        r
    }

    /// States on which the live nodes' engines disagree.
    fn diverged(&self) -> usize {
        let views: Vec<HashMap<StateName, [TcpPeer; 2]>> = self
            .nodes
            .iter()
            .filter(|n| n.alive)
            .filter_map(|n| n.engine.as_ref())
            .map(|e| e.state_views().collect())
            .collect();
        let Some(first) = views.first() else {
            return 0;
        };
        let mut names: Vec<&StateName> = views.iter().flat_map(|v| v.keys()).collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .filter(|name| {
                let a = first.get(name);
                views.iter().any(|v| {
                    let b = v.get(name);
                    match (a, b) {
                        (Some(a), Some(b)) => !same_view(a, b),
                        _ => true,
                    }
                })
            })
            .count()
    }
}

/// Whether two views of a state's sides agree on what pf's checks read.
fn same_view(a: &[TcpPeer; 2], b: &[TcpPeer; 2]) -> bool {
    a.iter().zip(b).all(|(x, y)| {
        x.seqlo == y.seqlo && x.seqhi == y.seqhi && x.max_win == y.max_win && x.state == y.state
    })
}

/// Runs `sc` to the end.
pub fn run(sc: &Scenario) -> Result<Report> {
    Ok(Simulation::new(sc)?.run(|_| {}))
}

/// The flow a frame belongs to, from the client's port.
fn flow_of(frame: &[u8], from_client: bool) -> Option<usize> {
    let at = if from_client { 34 } else { 36 };
    let port = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]);
    port.checked_sub(FIRST_PORT).map(usize::from)
}

/// The TCP segment of a frame built by [`frame_of`]: Ethernet, a 20-byte IPv4 header, TCP.
fn tcp_bytes(frame: &[u8]) -> Option<&[u8]> {
    let total = usize::from(u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]));
    frame.get(34..14 + total)
}

fn tcp_seq_len(frame: &[u8]) -> Option<(u32, u32)> {
    let tcp = TcpPacket::new_checked(tcp_bytes(frame)?).ok()?;
    Some((tcp.seq_number(), tcp.payload().len() as u32))
}

fn segment_of(frame: &[u8]) -> Option<Segment> {
    Segment::of_tcp(&TcpPacket::new_checked(tcp_bytes(frame)?).ok()?)
}

fn frame_of(f: &Flow, server: bool, seg: &Segment) -> Vec<u8> {
    let (ends, src_port, dst_port) = if server {
        (
            Endpoints::v4(SERVER_MAC, MacAddr(NODE_MACS[1]), f.server_ip, f.client_ip),
            80,
            f.client_port,
        )
    } else {
        (
            Endpoints::v4(CLIENT_MAC, MacAddr(NODE_MACS[0]), f.client_ip, f.server_ip),
            f.client_port,
            80,
        )
    };
    let repr = seg.repr(src_port, dst_port);
    let len = (seg.len as usize).min(ZEROS.len());
    build::tcp(&ends, &repr, &ZEROS[..len]).unwrap_or_default()
}
