//! The worker: one per core, owning one state shard. Each poll receives a burst from every port it
//! serves, classifies each packet, runs it against its state or the rules, forwards or drops it, and sends
//! the bursts out; between bursts it applies the sync core's operations, releases held packets and
//! expires states. Nothing here allocates, locks, blocks or makes a system call per packet: buffers and
//! tables are sized at start, queues to other threads are bounded and a full one is counted.
//!
//! Policies worth knowing:
//! - Fragments are reassembled as pf does by default ([`crate::reassembly`]): held until the datagram is
//!   whole, checked whole, then forwarded or dropped together; overlaps, limits and timeouts drop the
//!   datagram. An IPv6 first fragment with extension headers after its fragment header is dropped
//!   (`drop_fragment`). Packets larger than the egress MTU are fragmented (IPv4 without DF) or answered
//!   with an ICMP "too big"; packets for a next hop being resolved wait for it, a few per hop.
//! - Rules are evaluated once, at ingress, knowing the egress port (after the route lookup); a rule's
//!   `direction` says which of the two ports it refers to.
//! - States are floating (not bound to a port), like pf's default.
//! - ICMP errors are matched to the state of the packet they quote and pass only as pf lets them (outer
//!   destination = quoted source, quote inside the window, echo direction); they create no state. They
//!   are handled by the worker that owns the quoted flow: one that a NIC's RSS (hashing the outer
//!   addresses) brought elsewhere is redirected to it.
//! - pf's normalization runs first on TCP (impossible flag combinations dropped, FIN cleared from a SYN),
//!   IPv4 options are dropped unless the rule allowed them, and a SYN on an established state is answered
//!   with a challenge ACK and dropped. Answers are rate-limited per worker.
//! - Hold-and-recheck: a packet refused only for being ahead of what this node knows of a state a peer
//!   updates waits for the peer's update and is checked again. When no live peer is left to send it (the
//!   node that updated the state failed), the packet's destination is probed for its numbers instead
//!   (see `Worker::probe`), and its answer, checked as strictly as data, cures the hold; the probe goes
//!   out also when the packet itself is beyond the margin and dropped, so that the next one passes.
//! - In router mode ARP, neighbour discovery, VRRP and packets addressed to the appliance are punted to
//!   the control thread, and only frames sent to the ingress port's MAC are routed (broadcast and
//!   multicast only for ARP, neighbour discovery and VRRP); in wire mode everything that is not IP passes
//!   through unchanged.

use std::collections::VecDeque;
use std::sync::Arc;

use tandem_config::{Family, PortId, Redirect};
use tandem_sync::event::{
    LocalEvent, PeerOp, ReleaseReason, SnapshotRequest, StateName, StateRecord, StateUpdate,
};
use tandem_sync::identity::{CreatorId, StateId};
use tandem_sync::merge;
use tandem_sync::policy::PushPolicy;
use tandem_sync::state::{SyncMark, TimeoutClass, state_flags};
use tandem_sync::time::{Duration, Instant};

use crate::counters::{DropReason, WorkerCounters};
use crate::flow::{Addr, FlowKey, Placement};
use crate::forward::{
    RewriteError, dont_fragment, ip_len, ipv4_fragment_into, route_rewrite, time_exceeded, too_big,
};
use crate::io::{PacketBuf, PortIo};
use crate::reassembly::{Added, FRAGMENTS_PER_DATAGRAM, Reassembly, Refusal};
use crate::route::{Hop, HopRef, HopTable, NextHop, RouteTable};
use crate::rules::{RuleInput, RuleSet, Verdict};
use crate::table::{InsertError, NO_RULE, RedirectMark, State, StateTable, origin};
use crate::tracker::tcp::{self, TcpAccept, TcpRefusal, TcpSegment};
use crate::tracker::{Side, Tracking, initial_pseudo_peers, track_pseudo};
use crate::wire::build;
use crate::wire::checksum::ChecksumCaps;
use crate::wire::meta::{
    self, EtherClass, Fragment, IcmpKind, IcmpMeta, L4, Malformed, PacketMeta, QuotedL4, QuotedMeta,
};

/// What the first pass over a burst learned of one packet.
#[derive(Debug)]
struct Look {
    meta: Result<PacketMeta, Malformed>,
    /// The packet's flow, for IP packets that may belong to a state.
    flow: Option<FlowLook>,
}

/// A packet's flow and where the first pass found its state.
#[derive(Debug)]
struct FlowLook {
    key: FlowKey,
    src_first: bool,
    hash: u64,
    index: Option<u32>,
}

/// Packets taken from a queue in one poll.
pub const BURST: usize = 32;
/// Operations from the sync core applied per poll at most, so a flood of them cannot starve packets.
const OPS_PER_POLL: usize = 256;
/// States looked at for expiry per poll at most.
const EXPIRY_PER_POLL: usize = 64;
/// Next hops (gateways and hosts on connected subnets) one worker keeps MACs for; past it a new one takes
/// the place of another.
const NEXT_HOPS: usize = 4096;
/// IP protocol number of VRRP (RFC 5798 section 5.2.4).
const PROTO_VRRP: u8 = 112;
/// Answers (RSTs, ICMP errors, challenge ACKs) one worker sends per second at most, and in one burst: a
/// flood of packets that draw answers cannot make the firewall an amplifier (RFC 4443 section 2.4 (f) and
/// RFC 5961 section 7 ask the same of hosts).
const ANSWERS_PER_SEC: u64 = 1000;
/// Answers one worker may send back to back before the rate applies.
const ANSWER_BURST: u64 = 50;

/// A token bucket for the answers a worker originates, in millionths of an answer.
#[derive(Debug)]
struct AnswerBudget {
    credit: u64,
    last: Instant,
}

impl AnswerBudget {
    const ONE: u64 = 1_000_000;

    fn new(now: Instant) -> AnswerBudget {
        AnswerBudget {
            credit: ANSWER_BURST * Self::ONE,
            last: now,
        }
    }

    /// Takes one answer's worth if there is one.
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.since(self.last).as_micros();
        self.last = self.last.max(now);
        self.credit = self
            .credit
            .saturating_add(elapsed.saturating_mul(ANSWERS_PER_SEC))
            .min(ANSWER_BURST * Self::ONE);
        if self.credit >= Self::ONE {
            self.credit -= Self::ONE;
            true
        } else {
            false
        }
    }
}

/// Why a packet on a state goes no further.
#[derive(Clone, Copy, Debug)]
enum Refused {
    /// Dropped and counted.
    Drop(DropReason),
    /// A new SYN on a connection closed on both sides: the old state is gone and the SYN opens anew.
    Reopen,
    /// Only ahead of the windows this node knows, by this many bytes: a peer's update may cure it.
    Ahead(u32),
    /// A SYN on an established connection: dropped, answered with a challenge ACK carrying these numbers.
    Challenge { seq: u32, ack: u32 },
}

/// How packets cross the appliance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forwarding {
    /// IP routing between ports.
    Router,
    /// Each port forwards to its peer port, unchanged; `peer[p]` is port p's peer.
    Wire {
        /// The peer of each port, by port index.
        peer: Vec<Option<PortId>>,
    },
}

/// A port as the worker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// Its MAC address (the source of forwarded frames in router mode).
    pub mac: [u8; 6],
    /// Its MTU: larger IP packets leaving by it are fragmented, or refused with an ICMP error.
    pub mtu: u16,
}

/// Hold-and-recheck: packets that fail pf's checks only by being ahead of what this node knows of the
/// other direction wait for a peer's newer update and are checked again with the same checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HoldSettings {
    /// The longest a packet waits; then it is dropped as out of window.
    pub timeout: Duration,
    /// The longest a packet of no state waits for a peer's insert: the hold timeout, or the deferral
    /// timeout if that is longer.
    pub await_state: Duration,
    /// How far ahead a packet may be and still wait (bytes).
    pub margin: u32,
    /// Packets waiting per worker at most.
    pub pool: usize,
    /// Packets waiting per state at most.
    pub per_state: u16,
}

/// Deferral of new states' creating packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeferSettings {
    /// Most packets held at once; past it the oldest is released.
    pub limit: usize,
    /// The longest a packet is held if the sync core never answers (a backstop: the sync core's own
    /// timeout is shorter).
    pub backstop: Duration,
}

/// What a worker is set up with.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// This worker's number.
    pub index: usize,
    /// How many workers there are (state ids are interleaved between them).
    pub workers: usize,
    /// Our host id.
    pub creator: CreatorId,
    /// The first state id this node hands out (pf: boot time in seconds, shifted left 32).
    pub id_base: u64,
    /// Router or wire.
    pub forwarding: Forwarding,
    /// Every port, by index.
    pub ports: Vec<PortInfo>,
    /// Seconds for each [`TimeoutClass`].
    pub timeouts: [u32; 14],
    /// Most states in this worker's shard.
    pub state_limit: usize,
    /// When to report state changes to the sync core; `None` without sync.
    pub push: Option<PushPolicy>,
    /// Deferral; `None` when off.
    pub defer: Option<DeferSettings>,
    /// Hold-and-recheck for packets ahead of the sync; `None` when off.
    pub hold: Option<HoldSettings>,
    /// Owner redirect.
    pub redirect: Redirect,
    /// Which checksums software must verify.
    pub checksum: ChecksumCaps,
    /// Which worker holds each flow's state (the NICs' tables and software dispatch follow it).
    pub placement: Placement,
}

/// Bytes of progress on a TCP state worth a report to the window-aware sync engine: small against pf's
/// 67 KB tolerance, so the engine's view of a flow lags it by at most this much.
pub const PUSH_QUANTUM: u32 = 2048;

impl WorkerConfig {
    /// The settings of worker `index` of a node described by `profile`.
    pub fn from_profile(
        profile: &tandem_config::Profile,
        index: usize,
        ports: Vec<PortInfo>,
        id_base: u64,
    ) -> WorkerConfig {
        let t = &profile.timeouts;
        let timeouts = [
            t.tcp_first,
            t.tcp_opening,
            t.tcp_established,
            t.tcp_closing,
            t.tcp_finwait,
            t.tcp_closed,
            t.udp_first,
            t.udp_single,
            t.udp_multiple,
            t.icmp_first,
            t.icmp_error,
            t.other_first,
            t.other_single,
            t.other_multiple,
        ];
        let forwarding = match &profile.forwarding {
            tandem_config::Forwarding::Router => Forwarding::Router,
            tandem_config::Forwarding::Wire { pairs } => {
                let mut peer = vec![None; profile.ports.len()];
                for (a, b) in pairs {
                    peer[usize::from(a.0)] = Some(*b);
                    peer[usize::from(b.0)] = Some(*a);
                }
                Forwarding::Wire { peer }
            }
        };
        let push = profile.sync.as_ref().map(|s| match s.update_policy {
            tandem_config::UpdatePolicy::WindowAware => PushPolicy::Progress {
                quantum: PUSH_QUANTUM,
            },
            tandem_config::UpdatePolicy::Classic { max_updates, .. } => PushPolicy::Count {
                every: u16::from(max_updates).max(1),
            },
        });
        let defer = profile
            .sync
            .as_ref()
            .filter(|s| s.defer.enabled)
            .map(|s| DeferSettings {
                limit: s.defer.limit as usize,
                backstop: Duration::micros(2 * u64::from(s.defer.timeout_us)),
            });
        // Held packets keep their buffers: no worker may hold more than a quarter of its share of the
        // packet pool, or receiving would starve.
        let pool_share = profile.dpdk.mbufs as usize / (4 * profile.workers.cores.len().max(1));
        let hold = profile
            .sync
            .as_ref()
            .filter(|s| s.hold.enabled)
            .map(|s| HoldSettings {
                timeout: Duration::micros(u64::from(s.hold.timeout_us)),
                // A peer's insert can take as long as the sync path the deferral timeout allows for.
                await_state: Duration::micros(u64::from(if s.defer.enabled {
                    s.hold.timeout_us.max(s.defer.timeout_us)
                } else {
                    s.hold.timeout_us
                })),
                margin: s.hold.margin,
                pool: (s.hold.pool as usize).min(pool_share).max(1),
                per_state: s.hold.per_state.min(u32::from(u16::MAX)) as u16,
            });
        let redirect = profile.sync.as_ref().map_or(Redirect::Off, |s| s.redirect);
        WorkerConfig {
            index,
            workers: profile.workers.cores.len().max(1),
            creator: CreatorId(profile.node.host_id),
            id_base,
            forwarding,
            ports,
            timeouts,
            state_limit: profile.states_per_worker() as usize,
            push,
            defer,
            hold,
            redirect,
            checksum: ChecksumCaps::SOFTWARE,
            placement: Placement::new(profile.workers.cores.len(), []),
        }
    }
}

/// A message from the control thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlOp {
    /// A neighbour was resolved (or changed MAC).
    Neighbor {
        /// On which port.
        port: PortId,
        /// Its address, pf layout.
        addr: Addr,
        /// Its MAC.
        mac: [u8; 6],
    },
    /// A neighbour is gone.
    NeighborGone {
        /// On which port.
        port: PortId,
        /// Its address.
        addr: Addr,
    },
    /// This node became master of a VRRP virtual router on `port` (`accept`), or stopped being it: frames
    /// to its virtual MAC are routed, or dropped as not for us.
    VirtualMac {
        /// On which port.
        port: PortId,
        /// The virtual router's MAC.
        mac: [u8; 6],
        /// Whether to accept it.
        accept: bool,
    },
}

/// Virtual MACs a port accepts at most (one per VRRP group on it, per family).
pub const VIRTUAL_MACS: usize = 16;

/// The worker's bounded channels to the other threads. A full channel is reported, never waited on.
pub trait WorkerLinks<B> {
    /// Sends an event to the sync core; `false` if its queue is full.
    fn push_event(&mut self, event: LocalEvent) -> bool;
    /// The next operation from the sync core.
    fn pop_op(&mut self) -> Option<PeerOp>;
    /// The next message from the control thread.
    fn pop_control(&mut self) -> Option<ControlOp>;
    /// Hands a packet to the control thread; gives it back if the queue is full.
    fn punt(&mut self, port: PortId, packet: B) -> Result<(), B>;
    /// Asks the control thread to resolve a next hop; `false` if its queue is full.
    fn resolve(&mut self, hop: NextHop) -> bool;
    /// Hands a packet received on `port` to another worker, whose shard holds the state it needs; gives it
    /// back if that worker's queue is full.
    fn redirect(&mut self, worker: usize, port: PortId, packet: B) -> Result<(), B>;
    /// Whether the peer with host id `owner` is alive, so that frames may be redirected to it.
    fn owner_alive(&self, owner: CreatorId) -> bool {
        let _ = owner;
        false
    }
    /// Whether any sync peer is alive (one that could still update a state).
    fn peers_alive(&self) -> bool {
        true
    }
    /// Sends a frame received on `port` to its state's owner `owner` over the sync link (owner redirect);
    /// gives it back if the queue to the sync core is full.
    fn to_owner(&mut self, owner: CreatorId, port: PortId, packet: B) -> Result<(), B> {
        let _ = (owner, port);
        Err(packet)
    }
    /// The next frame a peer redirected to this worker as its state's owner, with the port it arrived on
    /// at that peer.
    fn pop_redirected(&mut self) -> Option<(PortId, B)> {
        None
    }
}

/// The shortest interval between two takeover probes of one state, in units of 10 ms (200 ms).
const PROBE_INTERVAL: u16 = 20;

/// A time in units of 10 ms, wrapping (every 11 minutes), for the probe interval.
fn probe_clock(now: Instant) -> u16 {
    (now.0 / 10_000) as u16
}

/// How far a takeover probe's sequence number lies behind what the state knows the sender sent: more
/// than the receiver's window plus any lag of the state's copy below 2^29 bytes, so the receiver finds it
/// unacceptable, and less than 2^31, so that it still reads as "behind" in sequence arithmetic.
const PROBE_BEHIND: u32 = 1 << 30;

/// Owner redirect counts a state's packets per epoch of this length.
const REDIRECT_EPOCH_US: u64 = 100_000;
/// Holds in one epoch that make `auto` redirect a state ("it keeps needing holds").
const REDIRECT_HOLDS: u8 = 2;
/// Fewer packets than this in an epoch (1,000 a second), or an epoch without any, end a state's
/// redirection: at that rate the sync keeps up.
const REDIRECT_EXIT_PACKETS: u16 = 100;
/// Redirected frames a worker takes from its queue per round.
const REDIRECTED_BURST: usize = BURST;

/// A packet waiting for a peer's newer update of its state.
#[derive(Debug)]
struct Waiting<B> {
    packet: B,
    meta: PacketMeta,
    ingress: PortId,
    egress: PortId,
    hop: Option<Hop>,
    index: u32,
    key: FlowKey,
    src_first: bool,
    since: Instant,
    deadline: Instant,
}

/// A packet waiting for its next hop's MAC.
#[derive(Debug)]
struct Parked<B> {
    packet: B,
    meta: PacketMeta,
    egress: PortId,
    hop: Hop,
    deadline: Instant,
}

/// A packet of no state waiting for a peer's insert of the state it would belong to
/// ([`Worker::await_state`]).
#[derive(Debug)]
struct Awaiting<B> {
    packet: B,
    meta: PacketMeta,
    ingress: PortId,
    key: FlowKey,
    /// What the rules decided, if no state comes: the drop reason, and whether to answer.
    blocked: (DropReason, bool),
    since: Instant,
    deadline: Instant,
}

/// The share of the hold pool packets waiting for a state may take (one in this many), so that a flood
/// the rules would block anyway leaves the rest to established flows.
const AWAIT_SHARE: usize = 4;

/// Packets one worker holds for unresolved next hops, and per next hop.
const PARKED: usize = 256;
const PARKED_PER_HOP: usize = 8;
/// How long a packet waits for its next hop's MAC (ARP retransmits after a second).
const NEIGHBOR_WAIT: Duration = Duration::secs(1);

/// A creating packet held until peers acknowledge its state.
#[derive(Debug)]
struct Held<B> {
    name: StateName,
    port: PortId,
    packet: B,
    deadline: Instant,
    /// Router mode, the next hop's MAC still unknown when it was held: its description and hop, for the
    /// rewrite (or the wait for the neighbour) when it is released.
    unresolved: Option<(PacketMeta, Hop)>,
}

/// The transport part of a classified packet, in the terms the worker needs.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp(TcpSegment),
    Udp,
    /// An echo request (`true`) or reply.
    IcmpEcho(bool),
    IcmpError {
        quoted: QuotedMeta,
    },
    IcmpOther,
    Other,
}

/// One worker and its state shard.
#[derive(Debug)]
pub struct Worker<B> {
    cfg: WorkerConfig,
    rules: Arc<RuleSet>,
    routes: Arc<RouteTable>,
    hops: HopTable,
    table: StateTable,
    counters: Arc<WorkerCounters>,
    rule_counters: Arc<Vec<[crate::counters::Counter; 2]>>,
    next_id: u64,
    held: VecDeque<Held<B>>,
    bulk_read: Option<(u32, u32, u32)>,
    rx: Vec<B>,
    /// The first pass's findings for the burst in `rx`.
    looked: Vec<Look>,
    tx: Vec<Vec<B>>,
    asked: VecDeque<(NextHop, Instant)>,
    answers: AnswerBudget,
    fragments: Reassembly<(B, PortId)>,
    parked: VecDeque<Parked<B>>,
    /// Packets held for peers' updates, oldest first.
    waiting: VecDeque<Waiting<B>>,
    /// Packets of no state held for peers' inserts, oldest first (their own queue: they wait longer).
    awaiting: VecDeque<Awaiting<B>>,
    /// The packets a peer's insert let out of `awaiting`, checked again once they are all out.
    rechecks: Vec<Awaiting<B>>,
    /// Whether the packet being handled is one such: the rules' verdict on it is final.
    rechecking: bool,
    /// The fragments after the first of the datagram being handled.
    followers: Vec<B>,
    /// Whether the frame being handled was redirected here by a peer (this node owns its state).
    from_peer: bool,
    /// Per port, the VRRP virtual MACs accepted while this node is master.
    virtual_macs: Vec<Vec<[u8; 6]>>,
}

/// A worker's counters per rule: packets decided and states created.
pub fn rule_counters(rules: usize) -> Arc<Vec<[crate::counters::Counter; 2]>> {
    Arc::new((0..rules).map(|_| Default::default()).collect())
}

impl<B: PacketBuf> Worker<B> {
    /// A worker on its own (tests, simulations, benchmarks): `profile`'s rules and routes, its own
    /// counters, returned beside it.
    pub fn alone(
        profile: &tandem_config::Profile,
        cfg: WorkerConfig,
        now: Instant,
    ) -> (Worker<B>, Arc<WorkerCounters>) {
        let counters = Arc::new(WorkerCounters::new(crate::wire::meta::Malformed::COUNT));
        let worker = Worker::new(
            cfg,
            Arc::new(RuleSet::compile(&profile.rules)),
            Arc::new(RouteTable::from_profile(profile)),
            counters.clone(),
            rule_counters(profile.rules.len()),
            now,
        );
        (worker, counters)
    }

    /// A worker with an empty shard.
    pub fn new(
        cfg: WorkerConfig,
        rules: Arc<RuleSet>,
        routes: Arc<RouteTable>,
        counters: Arc<WorkerCounters>,
        rule_counters: Arc<Vec<[crate::counters::Counter; 2]>>,
        now: Instant,
    ) -> Worker<B> {
        let ports = cfg.ports.len();
        Worker {
            virtual_macs: vec![Vec::with_capacity(VIRTUAL_MACS); ports],
            table: StateTable::new(cfg.state_limit, now),
            hops: HopTable::with_capacity(NEXT_HOPS),
            next_id: cfg.id_base + cfg.index as u64,
            held: VecDeque::with_capacity(cfg.defer.map_or(0, |d| d.limit)),
            bulk_read: None,
            rx: Vec::with_capacity(BURST),
            looked: Vec::with_capacity(BURST),
            tx: (0..ports)
                .map(|_| Vec::with_capacity(BURST * ports.max(1) + BURST))
                .collect(),
            asked: VecDeque::with_capacity(64),
            answers: AnswerBudget::new(now),
            fragments: Reassembly::new(),
            parked: VecDeque::with_capacity(PARKED),
            waiting: VecDeque::with_capacity(cfg.hold.map_or(0, |h| h.pool)),
            awaiting: VecDeque::with_capacity(cfg.hold.map_or(0, |h| h.pool / AWAIT_SHARE)),
            rechecks: Vec::with_capacity(cfg.hold.map_or(0, |h| h.pool / AWAIT_SHARE)),
            rechecking: false,
            followers: Vec::with_capacity(FRAGMENTS_PER_DATAGRAM),
            from_peer: false,
            cfg,
            rules,
            routes,
            counters,
            rule_counters,
        }
    }

    /// The settings it runs with.
    pub fn config(&self) -> &WorkerConfig {
        &self.cfg
    }

    /// The shard.
    pub fn table(&self) -> &StateTable {
        &self.table
    }

    /// The counters.
    pub fn counters(&self) -> &Arc<WorkerCounters> {
        &self.counters
    }

    /// Packets held for deferral now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// When the next packet held for a peer's update (or for deferral) times out, if any: a caller that
    /// polls only on input must poll again then.
    pub fn next_hold_deadline(&self) -> Option<Instant> {
        let waiting = self.waiting.front().map(|w| w.deadline);
        let held = self.held.front().map(|h| h.deadline);
        let awaiting = self.awaiting.front().map(|w| w.deadline);
        waiting.into_iter().chain(held).chain(awaiting).min()
    }

    fn timeout(&self, class: TimeoutClass) -> Duration {
        Duration::secs(u64::from(self.cfg.timeouts[class as usize]))
    }

    /// One round: operations, a burst from each of `ports`, output, held packets, expiry. Returns the
    /// number of packets received (0 means the worker may back off).
    pub fn poll<IO, L>(
        &mut self,
        io: &mut IO,
        links: &mut L,
        ports: &[PortId],
        now: Instant,
    ) -> usize
    where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        self.apply_control(links);
        if !self.parked.is_empty() {
            self.unpark(io, now);
        }
        self.apply_ops(io, links, now);
        self.continue_bulk_read(links, now);
        let mut received = 0;
        for &port in ports {
            let mut rx = std::mem::take(&mut self.rx);
            let mut looked = std::mem::take(&mut self.looked);
            let n = io.recv(port, &mut rx, BURST);
            received += n;
            // First pass: parse every packet of the burst and look its flow up, so that the lookups'
            // cache misses overlap instead of each stalling the packet behind it.
            looked.extend(rx.iter().map(|p| self.look(p.as_ref())));
            for (packet, look) in rx.drain(..).zip(looked.drain(..)) {
                self.process(io, links, packet, look, port, now);
            }
            self.rx = rx;
            self.looked = looked;
        }
        if self.cfg.redirect != Redirect::Off {
            received += self.receive_redirected(io, links, now);
        }
        self.release_due(now);
        if !self.waiting.is_empty() || !self.awaiting.is_empty() {
            self.expire_waiting(io, now);
        }
        self.transmit(io);
        self.expire(links, now);
        let timed_out = self.fragments.expire(now);
        self.count_drops(DropReason::FragmentTimeout, timed_out);
        self.counters.states.set(self.table.len() as u64);
        received
    }

    /// Frames peers redirected here as their states' owner: handled as if received on the same port here,
    /// except that their destination MAC is the peer's and that they are never redirected again.
    fn receive_redirected<IO, L>(&mut self, io: &mut IO, links: &mut L, now: Instant) -> usize
    where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        let mut n = 0;
        while n < REDIRECTED_BURST {
            let Some((port, packet)) = links.pop_redirected() else {
                break;
            };
            n += 1;
            self.counters.owner_received.inc();
            self.counters
                .owner_received_bytes
                .add(packet.as_ref().len() as u64);
            if usize::from(port.0) >= self.cfg.ports.len() {
                self.drop_packet(DropReason::Malformed);
                continue;
            }
            let look = self.look(packet.as_ref());
            self.from_peer = true;
            self.process(io, links, packet, look, port, now);
            self.from_peer = false;
        }
        n
    }

    fn transmit<IO: PortIo<Buf = B>>(&mut self, io: &mut IO) {
        for (port, queue) in self.tx.iter_mut().enumerate() {
            if queue.is_empty() {
                continue;
            }
            let before = queue.len();
            let bytes: usize = queue.iter().map(|p| p.as_ref().len()).sum();
            let sent = io.send(PortId(port as u16), queue);
            let unsent_bytes: usize = queue.iter().map(|p| p.as_ref().len()).sum();
            self.counters.tx_packets.add(sent as u64);
            self.counters.tx_bytes.add((bytes - unsent_bytes) as u64);
            let dropped = before - sent;
            if dropped > 0 {
                for _ in 0..dropped {
                    self.counters.count_drop(DropReason::TxFull);
                }
                queue.clear();
            }
        }
    }

    fn drop_packet(&self, reason: DropReason) {
        self.counters.count_drop(reason);
    }

    /// The first pass over a received packet: parse it and, if it may belong to a state, find that state.
    #[inline]
    fn look(&self, frame: &[u8]) -> Look {
        let meta = meta::parse_meta(frame, self.cfg.checksum);
        let flow = match &meta {
            Ok(m)
                if !matches!(m.fragment, Fragment::Later { .. })
                    && !matches!(
                        m.l4,
                        L4::Icmp(IcmpMeta {
                            kind: IcmpKind::Error(_),
                            ..
                        })
                    ) =>
            {
                self.flow_of(m)
            }
            _ => None,
        };
        Look { meta, flow }
    }

    /// Classifies and handles one received packet, with what [`Worker::look`] learned of it.
    #[inline(always)]
    fn process<IO, L>(
        &mut self,
        io: &mut IO,
        links: &mut L,
        packet: B,
        look: Look,
        ingress: PortId,
        now: Instant,
    ) where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        self.counters.rx_packets.inc();
        self.counters.rx_bytes.add(packet.as_ref().len() as u64);
        let Look { meta, flow } = look;
        let m = match meta {
            Ok(m) => m,
            Err(reason) => {
                if let Some(c) = self.counters.malformed.get(reason.index()) {
                    c.inc();
                }
                return self.drop_packet(DropReason::Malformed);
            }
        };
        let router = matches!(self.cfg.forwarding, Forwarding::Router);
        if router && !self.from_peer && !self.addressed_to_us(packet.as_ref(), &m, ingress) {
            return self.drop_packet(DropReason::NotForUs);
        }
        if m.fragment != Fragment::None {
            if !reassemblable(packet.as_ref(), &m) {
                return self.drop_packet(DropReason::Fragment);
            }
            return self.reassemble(io, links, packet, m, ingress, now);
        }
        self.handle(io, links, packet, m, flow, ingress, now);
    }

    /// A fragment: held until its datagram is whole, which then goes through [`Worker::handle`] as
    /// one packet, its first fragment leading and the others following its fate.
    #[cold]
    #[inline(never)]
    fn reassemble<IO, L>(
        &mut self,
        io: &mut IO,
        links: &mut L,
        packet: B,
        m: PacketMeta,
        ingress: PortId,
        now: Instant,
    ) where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        let mut evicted = 0;
        let added = self.fragments.add((packet, ingress), &m, now, &mut evicted);
        self.count_drops(DropReason::FragmentLimit, evicted);
        match added {
            Added::Held => self.counters.fragments_held.inc(),
            Added::Refused { why, dropped } => {
                let reason = match why {
                    Refusal::Overlap => DropReason::FragmentOverlap,
                    Refusal::Duplicate => DropReason::FragmentDuplicate,
                    Refusal::Limit => DropReason::FragmentLimit,
                    Refusal::Malformed => DropReason::Malformed,
                };
                self.count_drops(reason, dropped);
            }
            Added::Complete { whole } => {
                self.counters.datagrams_reassembled.inc();
                let mut leader = None;
                let followers = &mut self.followers;
                self.fragments.take(|(packet, port)| match leader {
                    None => leader = Some((packet, port)),
                    Some(_) => followers.push(packet),
                });
                if let Some((packet, port)) = leader {
                    let flow = self.flow_of(&whole);
                    self.handle(io, links, packet, whole, flow, port, now);
                }
                // Whatever did not leave with the first fragment went down with it.
                let left = self.followers.len();
                self.followers.clear();
                self.count_drops(DropReason::FragmentOfDropped, left);
            }
        }
    }

    fn count_drops(&self, reason: DropReason, n: usize) {
        for _ in 0..n {
            self.drop_packet(reason);
        }
    }

    /// The flow of a packet (or of a whole datagram) and where its state is.
    #[inline(always)]
    fn flow_of(&self, m: &PacketMeta) -> Option<FlowLook> {
        let family = m.family()?;
        let (sport, dport) = ports_of(m);
        let (key, src_first) = FlowKey::between(family, m.proto, (m.src, sport), (m.dst, dport));
        let hash = key.table_hash();
        let index = self.table.find(&key, hash);
        Some(FlowLook {
            key,
            src_first,
            hash,
            index,
        })
    }

    /// Handles a whole packet (or the first fragment of a reassembled datagram, described as the whole).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn handle<IO, L>(
        &mut self,
        io: &mut IO,
        links: &mut L,
        mut packet: B,
        mut m: PacketMeta,
        flow: Option<FlowLook>,
        ingress: PortId,
        now: Instant,
    ) where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        let frame_len = packet.as_ref().len();
        let router = matches!(self.cfg.forwarding, Forwarding::Router);
        if let Err(reason) = self.normalize(&mut packet, &mut m) {
            return self.drop_packet(reason);
        }
        let Some(family) = m.family() else {
            // Not IP: ARP, or another ethertype.
            if router {
                if m.class == EtherClass::Arp {
                    self.punt(links, ingress, packet);
                } else {
                    self.drop_packet(DropReason::NotIp);
                }
            } else {
                self.wire_forward(ingress, packet);
            }
            return;
        };
        let transport = classify(&m);

        // The state, if any: the index from the first pass holds unless an earlier packet of the burst
        // removed that state; a state an earlier packet created is found now.
        let found = flow.as_ref().and_then(|f| match f.index {
            Some(i) if self.table.holds(i, &f.key) => Some(i),
            _ => self.table.find(&f.key, f.hash),
        });
        // Where would it go? A state knows from its earlier packets; anything else is routed here.
        let cached = match (router, found, &flow) {
            (true, Some(index), Some(f)) => self.cached_hop(index, f.src_first),
            _ => None,
        };
        let hop = match cached {
            Some(hop) => Some(hop),
            None if router => {
                if self.routes.local_port(family, &m.dst).is_some()
                    || m.proto == PROTO_VRRP
                    || m.is_neighbor_discovery()
                {
                    return self.punt(links, ingress, packet);
                }
                if is_multicast(family, &m.dst) {
                    return self.drop_packet(DropReason::LocalUnhandled);
                }
                let Some(next) = self.routes.lookup(family, &m.dst) else {
                    return self.drop_packet(DropReason::NoRoute);
                };
                let hop = Hop {
                    next,
                    slot: self.hops.entry(next),
                };
                if let (Some(index), Some(f)) = (found, &flow) {
                    self.cache_hop(index, f.src_first, hop.slot);
                }
                Some(hop)
            }
            None => None,
        };
        let egress = match (&self.cfg.forwarding, hop) {
            (_, Some(hop)) => hop.next.port,
            (Forwarding::Wire { peer }, None) => {
                match peer.get(usize::from(ingress.0)).copied().flatten() {
                    Some(p) => p,
                    None => return self.drop_packet(DropReason::NoRoute),
                }
            }
            (Forwarding::Router, None) => return self.drop_packet(DropReason::NoRoute),
        };

        if let Transport::IcmpError { quoted } = transport {
            // A NIC hashes an ICMP error by its outer addresses: the quoted flow's state may be another
            // worker's. Software dispatch already placed it right; after RSS it may have to move once.
            let owner = self.cfg.placement.owner_of_packet(&m);
            if owner != self.cfg.index {
                return match links.redirect(owner, ingress, packet) {
                    Ok(()) => self.counters.redirected.inc(),
                    Err(_) => self.drop_packet(DropReason::RedirectFull),
                };
            }
            match self.icmp_error_fits(&m, &quoted) {
                Err(reason) => return self.drop_packet(reason),
                Ok((index, _))
                    if m.ip_options && self.table.get(index).origin & origin::ALLOW_OPTS == 0 =>
                {
                    return self.drop_packet(DropReason::IpOptions);
                }
                Ok((index, sender)) => {
                    let seqdiff = self.table.get(index).peers[sender.index()].seqdiff;
                    if seqdiff != 0 {
                        demodulate_quote(packet.as_mut(), &m, seqdiff);
                    }
                }
            }
            return self.forward(io, links, packet, &m, ingress, egress, hop, now);
        }

        let Some(FlowLook { key, src_first, .. }) = flow else {
            // `look` computes the flow of every IP packet that is neither a later fragment nor an ICMP
            // error, and both were handled above.
            return self.drop_packet(DropReason::Malformed);
        };
        if let Some(index) = found {
            if m.ip_options && self.table.get(index).origin & origin::ALLOW_OPTS == 0 {
                return self.drop_packet(DropReason::IpOptions);
            }
            let mut packet = packet;
            if self.cfg.redirect != Redirect::Off
                && !self.from_peer
                && self.followers.is_empty()
                && let Some(owner) = self.redirect_owner(links, index, now)
            {
                let len = packet.as_ref().len() as u64;
                match links.to_owner(owner, ingress, packet) {
                    Ok(()) => {
                        self.counters.owner_redirected.inc();
                        self.counters.owner_redirected_bytes.add(len);
                        return;
                    }
                    Err(back) => {
                        self.counters.owner_redirect_full.inc();
                        packet = back;
                    }
                }
            }
            match self.track(links, index, src_first, &transport, frame_len as u32, now) {
                Ok(()) => {
                    self.counters.state_hits.inc();
                    self.modulate(&mut packet, &m, index, src_first);
                    let st = self.table.get(index);
                    if st.origin & origin::DEFERRED != 0 {
                        // Peers do not know the state yet: its later packets (a retransmitted SYN, a
                        // UDP flow's next datagrams) wait behind its first, or their answers could
                        // reach a peer before the state does.
                        let name = StateName {
                            creator: st.creator,
                            id: st.id,
                        };
                        return self
                            .forward_held(io, links, packet, &m, ingress, egress, hop, now, name);
                    }
                    self.forward(io, links, packet, &m, ingress, egress, hop, now);
                    // What this packet taught the state may be what packets held on it wait for.
                    if self.table.get(index).waiting > 0 {
                        self.recheck_waiting(io, links, index, now);
                    }
                }
                Err(Refused::Drop(reason)) => self.drop_packet(reason),
                Err(Refused::Challenge { seq, ack }) => {
                    let frame = packet.as_ref();
                    if let Some(answer) =
                        build::challenge_ack_for(frame, &m, seq, ack, build::DEFAULT_HOP_LIMIT)
                    {
                        self.originate(io, ingress, &answer, now);
                    }
                    self.drop_packet(DropReason::SynOnEstablished)
                }
                Err(Refused::Ahead(by)) => self.hold_for_update(
                    io, links, packet, &m, ingress, egress, hop, index, key, src_first, by, now,
                ),
                // The old connection is gone: this SYN opens the new one, through the rules below.
                Err(Refused::Reopen) => {
                    return self.open(
                        io, links, packet, &m, ingress, egress, hop, key, src_first, frame_len,
                        transport, now,
                    );
                }
            }
            return;
        }
        self.open(
            io, links, packet, &m, ingress, egress, hop, key, src_first, frame_len, transport, now,
        )
    }

    /// Owner redirect: the owner to send a packet of state `index` to, if its frames go there now. The owner
    /// is the state's creator, one node for both directions, so that it sees the whole flow once the other
    /// nodes redirect to it (two nodes each redirecting to the one that updated the other direction last
    /// would only swap their blind spots). Counts the state's packets per epoch and ends an `auto`
    /// redirection whose flow slowed down.
    fn redirect_owner<L: WorkerLinks<B>>(
        &mut self,
        links: &L,
        index: u32,
        now: Instant,
    ) -> Option<CreatorId> {
        let creator = self.cfg.creator;
        let mode = self.cfg.redirect;
        let st = self.table.get_mut(index);
        if st.tracking != Tracking::Tcp || st.creator == creator {
            return None;
        }
        let epoch = (now.0 / REDIRECT_EPOCH_US) as u32;
        let mark = &mut st.redirect;
        if mark.epoch != epoch {
            let next = mark.epoch.wrapping_add(1) == epoch;
            if mark.on && (!next || mark.packets < REDIRECT_EXIT_PACKETS) {
                mark.on = false;
            }
            *mark = RedirectMark {
                epoch,
                on: mark.on,
                ..RedirectMark::default()
            };
        }
        mark.packets = mark.packets.saturating_add(1);
        let wanted = match mode {
            Redirect::Always => true,
            Redirect::Auto => mark.on,
            Redirect::Off => false,
        };
        (wanted && links.owner_alive(st.creator)).then_some(st.creator)
    }

    /// `auto` redirect: a state a peer created needed a hold; after [`REDIRECT_HOLDS`] of them in an epoch
    /// (or a hold that timed out) its frames go to its owner.
    fn note_hold(&mut self, index: u32, timed_out: bool) {
        if self.cfg.redirect != Redirect::Auto {
            return;
        }
        let creator = self.cfg.creator;
        let st = self.table.get_mut(index);
        if st.creator == creator || st.redirect.on {
            return;
        }
        st.redirect.holds = st.redirect.holds.saturating_add(1);
        if timed_out || st.redirect.holds >= REDIRECT_HOLDS {
            st.redirect.on = true;
            self.counters.redirect_started.inc();
        }
    }

    /// A packet pf's checks refuse only for being `by` bytes ahead of what this node knows: on a state a
    /// peer updates, it waits (within the margin, the pool and the state's share) for the peer's newer
    /// update, which is asked for now; anything else is dropped at once, as pf does. When no live peer is
    /// left to send that update, the packet's destination is asked for its numbers instead
    /// ([`Self::probe`]).
    #[allow(clippy::too_many_arguments)]
    fn hold_for_update<IO, L>(
        &mut self,
        io: &mut IO,
        links: &mut L,
        packet: B,
        m: &PacketMeta,
        ingress: PortId,
        egress: PortId,
        hop: Option<Hop>,
        index: u32,
        key: FlowKey,
        src_first: bool,
        by: u32,
        now: Instant,
    ) where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        // A copy no live peer will update again can only learn from the endpoints: ask, whether this
        // packet then waits or is dropped (beyond the margin, or with holding off).
        if self.orphaned(links, index) && self.probe_due(index, now) {
            self.probe(
                io, links, &packet, m, ingress, egress, hop, index, src_first, now,
            );
        }
        let Some(hold) = self.cfg.hold else {
            return self.drop_packet(DropReason::OutOfWindow);
        };
        if !self.followers.is_empty() {
            // A reassembled datagram's other fragments cannot wait with it: pf's plain drop.
            return self.drop_packet(DropReason::OutOfWindow);
        }
        // A state a peer updates may wait for its next update. With owner redirect on, so may a state
        // this node created whose insert peers acknowledged: it is the flow's owner, and its first data
        // can outrun the return node's first update. Without redirect the creator drops such packets as
        // pf does: in the simulation, holding them too left TCP without its early loss signal and the
        // flow collapsed in slow-start overshoot (docs/simulation.md).
        let curable = origin::FROM_PEER
            | origin::PEER_UPDATED
            | if self.cfg.redirect != Redirect::Off {
                origin::PEER_ACKED
            } else {
                0
            };
        if by > hold.margin || self.table.get(index).origin & curable == 0 {
            return self.drop_packet(DropReason::OutOfWindow);
        }
        self.note_hold(index, false);
        let st = self.table.get_mut(index);
        if self.waiting.len() + self.awaiting.len() >= hold.pool {
            self.counters.hold_pool_full.inc();
            return self.drop_packet(DropReason::OutOfWindow);
        }
        if st.waiting >= hold.per_state {
            self.counters.hold_state_full.inc();
            return self.drop_packet(DropReason::OutOfWindow);
        }
        st.waiting += 1;
        let name = StateName {
            creator: st.creator,
            id: st.id,
        };
        self.waiting.push_back(Waiting {
            packet,
            meta: *m,
            ingress,
            egress,
            hop,
            index,
            key,
            src_first,
            since: now,
            deadline: now + hold.timeout,
        });
        self.counters.held.inc();
        self.send_event(links, LocalEvent::UpdateWanted { name });
    }

    /// Whether state `index` is a copy peers kept up to date and no live peer is left to update it: its
    /// creator failed (the copy here is the flow's only one now), or every peer did.
    fn orphaned<L: WorkerLinks<B>>(&self, links: &L, index: u32) -> bool {
        let st = self.table.get(index);
        st.origin & (origin::FROM_PEER | origin::PEER_UPDATED) != 0
            && (!links.peers_alive()
                || (st.creator != self.cfg.creator && !links.owner_alive(st.creator)))
    }

    /// Whether state `index` may be probed now: once per [`PROBE_INTERVAL`] at most (an endpoint
    /// answers an unacceptable segment at most twice a second anyway: Linux's `tcp_invalid_ratelimit`).
    fn probe_due(&self, index: u32, now: Instant) -> bool {
        let st = self.table.get(index);
        st.probed.is_none() || probe_clock(now).wrapping_sub(st.probe_at) >= PROBE_INTERVAL
    }

    /// Takes over a state whose updater failed: its copy here lags what the endpoints did through the
    /// failed node, and the packet just held is ahead of it. Sends the held packet's destination a bare
    /// ACK in the sender's name whose sequence number lies [`PROBE_BEHIND`] bytes behind what the state
    /// knows of the sender, so far below the destination's window that it discards it and answers with an
    /// ACK carrying its own next sequence number, acknowledgement and window (RFC 9293 section 3.10.7.4).
    /// That answer is checked by pf's rules like any packet, teaches the state where the destination is,
    /// and the held packet is checked again. The probe itself carries nothing the destination acts on;
    /// probes share the worker's budget of originated packets and go out once per state per hold.
    #[allow(clippy::too_many_arguments)]
    fn probe<IO, L>(
        &mut self,
        io: &mut IO,
        links: &mut L,
        held: &B,
        m: &PacketMeta,
        ingress: PortId,
        egress: PortId,
        hop: Option<Hop>,
        index: u32,
        src_first: bool,
        now: Instant,
    ) where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        let st = self.table.get(index);
        let side = st.side_of(src_first);
        let (src, dst) = (&st.peers[side.index()], &st.peers[side.other().index()]);
        // In the sender's numbers, as the held packet is: forwarding modulates both as pf does.
        let seq = src.seqlo.wrapping_sub(PROBE_BEHIND);
        let ack = dst.seqlo.wrapping_add(dst.seqdiff);
        let Some(answer) = build::probe_for(held.as_ref(), m, seq, ack) else {
            return;
        };
        let Some(mut out) = self.make(io, &answer, now) else {
            return;
        };
        let Ok(pm) = meta::parse_meta(out.as_ref(), ChecksumCaps::OFFLOADED) else {
            return;
        };
        self.counters.hold_probed.inc();
        let st = self.table.get_mut(index);
        st.probed = Some(side.other());
        st.probe_at = probe_clock(now);
        self.modulate(&mut out, &pm, index, src_first);
        self.forward(io, links, out, &pm, ingress, egress, hop, now);
    }

    /// Checks the packets waiting on state `index` again, in order, now that a peer updated it: those that
    /// pass leave, those still ahead wait on, the rest are dropped.
    fn recheck_waiting<IO, L>(&mut self, io: &mut IO, links: &mut L, index: u32, now: Instant)
    where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        for _ in 0..self.waiting.len() {
            let Some(w) = self.waiting.pop_front() else {
                break;
            };
            if w.index != index || !self.table.holds(index, &w.key) {
                self.waiting.push_back(w);
                continue;
            }
            let transport = classify(&w.meta);
            let len = w.packet.as_ref().len() as u32;
            match self.track(links, index, w.src_first, &transport, len, now) {
                Err(Refused::Ahead(_)) => self.waiting.push_back(w),
                outcome => {
                    let st = self.table.get_mut(index);
                    st.waiting = st.waiting.saturating_sub(1);
                    self.counters.record_hold(now.since(w.since));
                    match outcome {
                        Ok(()) => {
                            self.counters.hold_released.inc();
                            self.counters.state_hits.inc();
                            let mut packet = w.packet;
                            self.modulate(&mut packet, &w.meta, index, w.src_first);
                            self.forward(
                                io, links, packet, &w.meta, w.ingress, w.egress, w.hop, now,
                            );
                        }
                        _ => {
                            self.counters.hold_refused.inc();
                            self.drop_packet(DropReason::OutOfWindow);
                        }
                    }
                }
            }
        }
    }

    /// Whether a packet of no state that the rules block may wait for a peer's insert instead: in a
    /// cluster whose peers are alive, a packet that can only follow a state's creation elsewhere (a TCP
    /// segment other than a bare SYN, a UDP datagram, an echo reply) can arrive before that state does,
    /// when the path back runs through this node and the way out through a peer.
    fn may_await_state<L: WorkerLinks<B>>(&self, links: &L, transport: &Transport) -> bool {
        let follows = match transport {
            Transport::Tcp(seg) => {
                use tcp::flags::{ACK, SYN};
                seg.flags & (SYN | ACK) != SYN
            }
            Transport::Udp | Transport::IcmpEcho(false) => true,
            _ => false,
        };
        follows
            && self.cfg.hold.is_some()
            && self.cfg.push.is_some()
            && !self.rechecking
            && !self.from_peer
            && self.followers.is_empty()
            && links.peers_alive()
    }

    /// A packet of no state the rules block, held (within its share of the pool) until a peer's insert
    /// brings the state it belongs to, then handled again ([`Self::recheck_awaiting`]): pf's checks and
    /// the rules decide, as for any packet. Without that insert it meets the rules' verdict after
    /// [`HoldSettings::await_state`].
    fn await_state(
        &mut self,
        packet: B,
        m: &PacketMeta,
        ingress: PortId,
        key: FlowKey,
        blocked: (DropReason, bool),
        now: Instant,
    ) {
        let Some(hold) = self.cfg.hold else {
            return self.drop_packet(blocked.0);
        };
        if self.waiting.len() + self.awaiting.len() >= hold.pool
            || self.awaiting.len() >= hold.pool / AWAIT_SHARE
        {
            self.counters.hold_pool_full.inc();
            return self.drop_packet(blocked.0);
        }
        self.awaiting.push_back(Awaiting {
            packet,
            meta: *m,
            ingress,
            key,
            blocked,
            since: now,
            deadline: now + hold.await_state,
        });
        self.counters.held_for_state.inc();
    }

    /// Handles again, in order, the packets that waited for the state a peer just inserted under `key`.
    fn recheck_awaiting<IO, L>(&mut self, io: &mut IO, links: &mut L, key: &FlowKey, now: Instant)
    where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        let mut rechecks = std::mem::take(&mut self.rechecks);
        for _ in 0..self.awaiting.len() {
            let Some(w) = self.awaiting.pop_front() else {
                break;
            };
            if w.key == *key {
                rechecks.push(w);
            } else {
                self.awaiting.push_back(w);
            }
        }
        for w in rechecks.drain(..) {
            self.counters.held_for_state_found.inc();
            self.counters.record_hold(now.since(w.since));
            let flow = self.flow_of(&w.meta);
            self.rechecking = true;
            self.handle(io, links, w.packet, w.meta, flow, w.ingress, now);
            self.rechecking = false;
        }
        self.rechecks = rechecks;
    }

    /// Drops the packets that waited past the hold timeout (or whose state went away); those that waited
    /// for a state meet the rules' verdict.
    fn expire_waiting<IO: PortIo<Buf = B>>(&mut self, io: &mut IO, now: Instant) {
        while self.awaiting.front().is_some_and(|w| w.deadline <= now) {
            let Some(w) = self.awaiting.pop_front() else {
                break;
            };
            self.counters.held_for_state_timeout.inc();
            self.counters.record_hold(now.since(w.since));
            let (reason, answer) = w.blocked;
            if answer {
                self.answer_blocked(io, &w.packet, w.ingress, &w.meta, now);
            }
            self.drop_packet(reason);
        }
        while let Some(w) = self.waiting.front() {
            let gone = !self.table.holds(w.index, &w.key);
            if !gone && w.deadline > now {
                break;
            }
            let Some(w) = self.waiting.pop_front() else {
                break;
            };
            if !gone {
                let st = self.table.get_mut(w.index);
                st.waiting = st.waiting.saturating_sub(1);
                self.note_hold(w.index, true);
            }
            self.counters.hold_timeout.inc();
            self.counters.record_hold(now.since(w.since));
            self.drop_packet(DropReason::OutOfWindow);
        }
    }

    /// A packet of no state: the rules decide, and a pass with state creates one (deferred while peers
    /// learn of it, when deferral is on).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn open<IO, L>(
        &mut self,
        io: &mut IO,
        links: &mut L,
        packet: B,
        m: &PacketMeta,
        ingress: PortId,
        egress: PortId,
        hop: Option<Hop>,
        key: FlowKey,
        src_first: bool,
        frame_len: usize,
        transport: Transport,
        now: Instant,
    ) where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        let Some(family) = m.family() else {
            return self.drop_packet(DropReason::NotIp);
        };
        let (sport, dport) = ports_of(m);

        let input = RuleInput {
            ingress,
            egress: Some(egress),
            family,
            proto: m.proto,
            src: m.src,
            dst: m.dst,
            sport,
            dport,
            icmp: icmp_type_code(m),
            tcp_flags: match transport {
                Transport::Tcp(seg) => Some(seg.flags),
                _ => None,
            },
        };
        let decision = self.rules.evaluate(&input);
        if let Some(rule) = decision.rule
            && let Some(c) = self.rule_counters.get(rule)
        {
            c[0].inc();
        }
        match decision.verdict {
            Verdict::Block { answer } => {
                let reason = if decision.rule.is_some() {
                    DropReason::BlockedByRule
                } else {
                    DropReason::BlockedByDefault
                };
                if self.may_await_state(links, &transport) {
                    return self.await_state(packet, m, ingress, key, (reason, answer), now);
                }
                if answer {
                    self.answer_blocked(io, &packet, ingress, m, now);
                }
                self.drop_packet(reason)
            }
            Verdict::Pass {
                allow_opts: false, ..
            } if m.ip_options => self.drop_packet(DropReason::IpOptions),
            Verdict::Pass {
                keep_state: false, ..
            } => self.forward(io, links, packet, m, ingress, egress, hop, now),
            Verdict::Pass {
                keep_state: true, ..
            } if matches!(transport, Transport::IcmpEcho(false)) => {
                // An echo reply opens nothing: pf's state for it would take the reply's direction for the
                // request's and refuse every later packet of the exchange.
                self.drop_packet(DropReason::EchoDirection)
            }
            Verdict::Pass {
                keep_state: true,
                allow_opts,
            } => {
                let tracking = match transport {
                    Transport::Tcp(_) => Tracking::Tcp,
                    Transport::Udp => Tracking::Udp,
                    Transport::IcmpEcho(_) => Tracking::IcmpEcho,
                    _ => Tracking::Other,
                };
                let peers = match transport {
                    Transport::Tcp(seg) => tcp::initial_peers(&seg),
                    _ => initial_pseudo_peers(),
                };
                let class = tracking.first_timeout();
                let id = StateId(self.next_id);
                let state = State {
                    key,
                    initiator_first: src_first,
                    tracking,
                    peers,
                    creator: self.cfg.creator,
                    id,
                    rule: decision.rule.map_or(NO_RULE, |r| r as u32),
                    created: now,
                    expires: now + self.timeout(class),
                    timeout: class,
                    packets: [1, 0],
                    bytes: [frame_len as u64, 0],
                    origin: if allow_opts { origin::ALLOW_OPTS } else { 0 },
                    sync: SyncMark::of(&peers, now.secs() as u32),
                    acked: [0; 2],
                    hops: [hop.map_or(HopRef::NONE, |h| h.slot), HopRef::NONE],
                    waiting: 0,
                    probed: None,
                    probe_at: 0,
                    redirect: RedirectMark::default(),
                };
                match self.table.insert(state) {
                    Ok(index) => {
                        self.next_id += self.cfg.workers.max(1) as u64;
                        self.counters.states_created.inc();
                        if let Some(rule) = decision.rule
                            && let Some(c) = self.rule_counters.get(rule)
                        {
                            c[1].inc();
                        }
                        let defer = self.cfg.defer.is_some() && self.cfg.push.is_some();
                        if self.cfg.push.is_some() {
                            let record = record_of(self.table.get(index), now);
                            self.send_event(
                                links,
                                LocalEvent::Inserted {
                                    record,
                                    deferred: defer,
                                    at: now,
                                },
                            );
                        }
                        if defer {
                            let name = StateName {
                                creator: self.cfg.creator,
                                id,
                            };
                            self.table.get_mut(index).origin |= origin::DEFERRED;
                            return self.forward_held(
                                io, links, packet, m, ingress, egress, hop, now, name,
                            );
                        }
                        self.forward(io, links, packet, m, ingress, egress, hop, now)
                    }
                    Err(InsertError::Full) => self.drop_packet(DropReason::StateLimit),
                    // Cannot happen for a key we just looked up, nor for a fresh id; treat as a hit.
                    Err(InsertError::KeyExists(_) | InsertError::IdExists(_)) => {
                        self.forward(io, links, packet, m, ingress, egress, hop, now)
                    }
                }
            }
        }
    }

    /// Router mode takes only frames a router would: unicast to the ingress port's MAC, and broadcast or
    /// multicast only for the protocols that use them here (ARP, Neighbour Discovery, VRRP). On a shared
    /// segment with promiscuous ports everything else is another host's (the peer firewall's included),
    /// and routing it would duplicate or leak it.
    fn addressed_to_us(&self, frame: &[u8], m: &PacketMeta, ingress: PortId) -> bool {
        let Some(dst) = frame.get(..6) else {
            return false;
        };
        if dst[0] & 1 != 0 {
            return m.class == EtherClass::Arp
                || m.proto == PROTO_VRRP
                || m.is_neighbor_discovery();
        }
        let port = usize::from(ingress.0);
        self.cfg.ports.get(port).is_some_and(|p| p.mac == dst)
            || self
                .virtual_macs
                .get(port)
                .is_some_and(|macs| macs.iter().any(|m| m == dst))
    }

    /// The next hop a state cached for packets from the side `src_first` names, while its entry holds.
    #[inline]
    fn cached_hop(&self, index: u32, src_first: bool) -> Option<Hop> {
        let st = self.table.get(index);
        let slot = st.hops[st.side_of(src_first).index()];
        self.hops.get(slot).map(|(next, _)| Hop { next, slot })
    }

    fn cache_hop(&mut self, index: u32, src_first: bool, slot: HopRef) {
        let st = self.table.get_mut(index);
        let side = st.side_of(src_first);
        st.hops[side.index()] = slot;
    }

    /// pf's `pf_normalize_tcp` on a TCP segment: refuses flag combinations no stack sends, clears a FIN
    /// from a SYN, the reserved bits and a stray urgent pointer, rewriting the frame (and `m`) in place.
    /// Other packets pass untouched.
    #[inline(always)]
    fn normalize(&self, packet: &mut B, m: &mut PacketMeta) -> Result<(), DropReason> {
        let L4::Tcp(t) = &mut m.l4 else {
            return Ok(());
        };
        let flags = tcp::normalize_flags(t.flags.0).ok_or(DropReason::BadTcpFlags)?;
        if flags == t.flags.0 && !t.stray_bits {
            return Ok(());
        }
        t.flags = crate::wire::tcp::TcpFlags(flags);
        t.stray_bits = false;
        let segment = packet
            .as_mut()
            .get_mut(usize::from(m.l4_offset)..)
            .ok_or(DropReason::Malformed)?;
        if crate::wire::tcp::Packet::new_unchecked(segment).normalize(t.flags) {
            self.counters.normalized.inc();
        }
        Ok(())
    }

    /// A state a pf peer created with `modulate state` carries sequence offsets (`seqdiff`): this node,
    /// now on the flow's path, must go on translating as pf did, or both ends see numbers they never
    /// sent. Tandem creates no modulated states itself, so this is a no-op for its own.
    #[inline(always)]
    fn modulate(&self, packet: &mut B, m: &PacketMeta, index: u32, src_first: bool) {
        let st = self.table.get(index);
        if st.tracking != Tracking::Tcp || (st.peers[0].seqdiff | st.peers[1].seqdiff) == 0 {
            return;
        }
        let side = st.side_of(src_first);
        let (seq_delta, ack_delta) = (
            st.peers[side.index()].seqdiff,
            st.peers[side.other().index()].seqdiff,
        );
        if seq_delta == 0 && ack_delta == 0 {
            return;
        }
        let start = usize::from(m.l4_offset);
        let end = start + usize::from(m.ip_payload_len);
        if let Some(segment) = packet.as_mut().get_mut(start..end)
            && let Ok(mut tcp) = crate::wire::tcp::Packet::new_checked(segment)
        {
            tcp.modulate(seq_delta, ack_delta);
        }
    }

    /// Runs the packet against its state; `Err` says what to do instead of forwarding it.
    #[inline(always)]
    fn track<L: WorkerLinks<B>>(
        &mut self,
        links: &mut L,
        index: u32,
        src_first: bool,
        transport: &Transport,
        bytes: u32,
        now: Instant,
    ) -> Result<(), Refused> {
        let st = self.table.get_mut(index);
        let side = st.side_of(src_first);
        let mut checked_ack = None;
        let class = match (st.tracking, transport) {
            (Tracking::Tcp, Transport::Tcp(seg)) => match track_tcp(st, side, seg) {
                Ok(accept) => {
                    checked_ack = accept.checked_ack;
                    accept.refresh
                }
                Err(TcpRefusal::OutOfWindow) => return Err(Refused::Drop(DropReason::OutOfWindow)),
                Err(TcpRefusal::Ahead { by }) => return Err(Refused::Ahead(by)),
                Err(TcpRefusal::SynOnEstablished { seq, ack }) => {
                    return Err(Refused::Challenge { seq, ack });
                }
                Err(TcpRefusal::ReuseOfClosed) => {
                    // pf drops this SYN and forgets the old connection, so the sender's retransmission a
                    // second later opens anew; the SYN itself may open it (see `Refused::Reopen`).
                    let gone = self.table.remove(index);
                    self.report_delete(links, &gone);
                    self.counters.states_reopened.inc();
                    return Err(Refused::Reopen);
                }
            },
            (Tracking::IcmpEcho, Transport::IcmpEcho(request))
                if *request != (side == Side::Initiator) =>
            {
                // pf's `pf_icmp_state_lookup`: requests only from the side that asked first, replies only
                // from the other.
                return Err(Refused::Drop(DropReason::EchoDirection));
            }
            (tracking, _) => Some(track_pseudo(&mut st.peers, side, tracking)),
        };
        let st = self.table.get_mut(index);
        // Only an acknowledgement pf's check ran on may later close a side (see `close_acknowledged_fins`).
        if let Some(ack) = checked_ack {
            let a = &mut st.acked[side.index()];
            if *a == 0 || tandem_sync::seq::gt(ack, *a) {
                *a = ack;
            }
        }
        st.packets[side.index()] += 1;
        st.bytes[side.index()] += u64::from(bytes);
        if let Some(class) = class {
            st.timeout = class;
            let secs = self.cfg.timeouts[class as usize];
            st.expires = now + Duration::secs(u64::from(secs));
        }
        let Some(push) = self.cfg.push else {
            return Ok(());
        };
        let st = self.table.get_mut(index);
        st.sync.updates = st.sync.updates.saturating_add(1);
        let now_secs = now.secs() as u32;
        let refresh = (self.cfg.timeouts[st.timeout as usize] / 4).max(1);
        if push.should_report(&st.sync, &st.peers, now_secs, refresh) {
            let update = StateUpdate {
                name: StateName {
                    creator: st.creator,
                    id: st.id,
                },
                peers: st.peers,
                timeout: st.timeout,
                updates: st.sync.updates,
            };
            st.sync = SyncMark::of(&st.peers, now_secs);
            self.send_event(links, LocalEvent::Updated { update, at: now });
        }
        Ok(())
    }

    /// pf's `pf_test_state_icmp` for an ICMP error: its outer destination must be the quoted packet's
    /// source (the error goes back to whoever sent the packet), the quoted flow must have a state here,
    /// and the quote must fit it: a TCP sequence number inside its sender's window, an echo travelling the
    /// way echoes of that state travel. UDP and other quotes fit by their ports and addresses alone.
    /// Returns the state's index and the side that sent the quoted packet.
    fn icmp_error_fits(
        &self,
        outer: &PacketMeta,
        quoted: &QuotedMeta,
    ) -> Result<(u32, Side), DropReason> {
        if outer.dst != quoted.src {
            return Err(DropReason::IcmpMismatch);
        }
        let (sport, dport) = match quoted.l4 {
            QuotedL4::Tcp {
                src_port, dst_port, ..
            } => (src_port, dst_port),
            QuotedL4::Udp { src_port, dst_port } => (src_port, dst_port),
            QuotedL4::IcmpEcho { id, .. } => (id, id),
            // pf drops errors about later fragments: nothing identifies the flow.
            QuotedL4::LaterFragment => return Err(DropReason::IcmpNoState),
            QuotedL4::Other => (0, 0),
        };
        let (key, src_first) = FlowKey::between(
            quoted.family,
            quoted.proto,
            (quoted.src, sport),
            (quoted.dst, dport),
        );
        let index = self
            .table
            .find(&key, key.table_hash())
            .ok_or(DropReason::IcmpNoState)?;
        let st = self.table.get(index);
        let sender = st.side_of(src_first);
        let fits = match (st.tracking, quoted.l4) {
            (Tracking::Tcp, QuotedL4::Tcp { seq, .. }) => {
                // A modulated sender's packets left with its sequence numbers shifted.
                let own = seq.wrapping_sub(st.peers[sender.index()].seqdiff);
                tcp::quoted_segment_fits(&st.peers, sender, own)
            }
            (Tracking::IcmpEcho, QuotedL4::IcmpEcho { request, .. }) => {
                request == (sender == Side::Initiator)
            }
            _ => true,
        };
        if fits {
            Ok((index, sender))
        } else {
            Err(DropReason::IcmpMismatch)
        }
    }

    fn send_event<L: WorkerLinks<B>>(&self, links: &mut L, event: LocalEvent) {
        if links.push_event(event) {
            self.counters.events.inc();
        } else {
            self.counters.events_dropped.inc();
        }
    }

    fn report_delete<L: WorkerLinks<B>>(&self, links: &mut L, st: &State) {
        if self.cfg.push.is_some() {
            self.send_event(
                links,
                LocalEvent::Deleted {
                    name: StateName {
                        creator: st.creator,
                        id: st.id,
                    },
                },
            );
        }
    }

    fn punt<L: WorkerLinks<B>>(&self, links: &mut L, port: PortId, packet: B) {
        match links.punt(port, packet) {
            Ok(()) => self.counters.punted.inc(),
            Err(_) => self.drop_packet(DropReason::PuntFull),
        }
    }

    fn wire_forward(&mut self, ingress: PortId, packet: B) {
        let Forwarding::Wire { peer } = &self.cfg.forwarding else {
            return;
        };
        match peer.get(usize::from(ingress.0)).copied().flatten() {
            Some(out) => self.tx[usize::from(out.0)].push(packet),
            None => self.drop_packet(DropReason::NoRoute),
        }
    }

    /// Prepares a packet to leave by `egress` (router mode: TTL and MACs).
    fn prepare<L: WorkerLinks<B>>(
        &mut self,
        links: &mut L,
        packet: &mut B,
        m: &PacketMeta,
        egress: PortId,
        hop: Option<Hop>,
        now: Instant,
    ) -> Result<(), DropReason> {
        let Some(hop) = hop else { return Ok(()) };
        let rewritten = self.rewrite_for(packet, m, egress, hop);
        if rewritten == Err(DropReason::NoNeighbor) {
            self.ask_resolution(links, hop.next, now);
        }
        rewritten
    }

    /// Router mode's rewrite of a packet for its next hop: MACs, TTL and checksum; `NoNeighbor` while the
    /// next hop's MAC is unknown.
    fn rewrite_for(
        &self,
        packet: &mut B,
        m: &PacketMeta,
        egress: PortId,
        hop: Hop,
    ) -> Result<(), DropReason> {
        let mac = match self.hops.get(hop.slot) {
            Some((_, mac)) => mac,
            None => self.hops.mac_of(&hop.next),
        };
        let Some(mac) = mac else {
            return Err(DropReason::NoNeighbor);
        };
        let src_mac = self
            .cfg
            .ports
            .get(usize::from(egress.0))
            .map_or([0; 6], |p| p.mac);
        route_rewrite(packet.as_mut(), m, mac, src_mac).map_err(|e| match e {
            RewriteError::TtlExpired => DropReason::TtlExceeded,
            RewriteError::NotIp => DropReason::NotIp,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn forward<IO, L>(
        &mut self,
        io: &mut IO,
        links: &mut L,
        mut packet: B,
        m: &PacketMeta,
        ingress: PortId,
        egress: PortId,
        hop: Option<Hop>,
        now: Instant,
    ) where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        let fits = self.fits_at_once(&packet, egress);
        if !fits && self.refuse_too_big(io, &packet, ingress, egress, now) {
            return;
        }
        let prepared = match hop {
            None => Ok(()),
            Some(_) => self.prepare(links, &mut packet, m, egress, hop, now),
        };
        match prepared {
            Ok(()) => {
                if fits {
                    self.tx[usize::from(egress.0)].push(packet);
                } else {
                    self.send_out(io, packet, egress);
                }
                if !self.followers.is_empty() {
                    self.forward_followers(io, links, m, ingress, egress, hop, now);
                }
            }
            Err(DropReason::NoNeighbor) => {
                self.park(packet, m, egress, hop, now);
                let mut followers = std::mem::take(&mut self.followers);
                for packet in followers.drain(..) {
                    self.park(packet, m, egress, hop, now);
                }
                self.followers = followers;
            }
            Err(reason) => self.refuse(io, &packet, m, ingress, reason, now),
        }
    }

    /// Holds a packet whose next hop's MAC is being resolved (ARP, neighbour discovery), a few per next
    /// hop, as a host's neighbour cache does: the first packet of a flow to a new neighbour is not lost.
    /// Past the limits, or unresolved after [`NEIGHBOR_WAIT`], it is dropped as `no_neighbor`.
    fn park(&mut self, packet: B, m: &PacketMeta, egress: PortId, hop: Option<Hop>, now: Instant) {
        let Some(hop) = hop else {
            return self.drop_packet(DropReason::NoNeighbor);
        };
        let same_hop = self
            .parked
            .iter()
            .filter(|p| p.hop.next == hop.next)
            .count();
        if same_hop >= PARKED_PER_HOP || self.parked.len() >= PARKED {
            return self.drop_packet(DropReason::NoNeighbor);
        }
        self.counters.parked.inc();
        self.parked.push_back(Parked {
            packet,
            meta: *m,
            egress,
            hop,
            deadline: now + NEIGHBOR_WAIT,
        });
    }

    /// Sends the packets parked for next hops that are resolved now, and drops those that waited too
    /// long.
    fn unpark<IO: PortIo<Buf = B>>(&mut self, io: &mut IO, now: Instant) {
        for _ in 0..self.parked.len() {
            let Some(p) = self.parked.pop_front() else {
                break;
            };
            let mac = match self.hops.get(p.hop.slot) {
                Some((_, mac)) => mac,
                None => self.hops.mac_of(&p.hop.next),
            };
            match mac {
                Some(mac) => {
                    let mut packet = p.packet;
                    let src_mac = self.cfg.ports[usize::from(p.egress.0)].mac;
                    match route_rewrite(packet.as_mut(), &p.meta, mac, src_mac) {
                        Ok(()) => self.send_out(io, packet, p.egress),
                        Err(_) => self.drop_packet(DropReason::TtlExceeded),
                    }
                }
                None if p.deadline <= now => self.drop_packet(DropReason::NoNeighbor),
                None => self.parked.push_back(p),
            }
        }
    }

    /// `Some` (the port's MTU and the frame's own description) when the IP packet in `frame` is larger
    /// than `egress`'s MTU. Only frames longer than the MTU plus an Ethernet header pay for a parse.
    fn oversize(&self, frame: &[u8], egress: PortId) -> Option<(u16, PacketMeta)> {
        let mtu = self.cfg.ports.get(usize::from(egress.0))?.mtu;
        if frame.len() <= usize::from(mtu) + 14 {
            return None;
        }
        let m = meta::parse_meta(frame, ChecksumCaps::OFFLOADED).ok()?;
        (ip_len(frame, &m) > usize::from(mtu)).then_some((mtu, m))
    }

    /// Whether a packet too large for `egress` must be refused rather than fragmented: IPv6 (only its
    /// source fragments, RFC 8200 section 5) and IPv4 with DF. Answers the sender with "fragmentation
    /// needed" or "packet too big" (RFC 1191, RFC 8201), so that its path-MTU discovery learns the limit,
    /// and counts the drop. Call it before the frame's MACs are rewritten.
    fn refuse_too_big<IO: PortIo<Buf = B>>(
        &mut self,
        io: &mut IO,
        packet: &B,
        ingress: PortId,
        egress: PortId,
        now: Instant,
    ) -> bool {
        let frame = packet.as_ref();
        let Some((mtu, m)) = self.oversize(frame, egress) else {
            return false;
        };
        if m.class == EtherClass::Ipv4 && !dont_fragment(frame, &m) {
            return false;
        }
        if let Some(router) = m
            .family()
            .and_then(|f| self.routes.port_address(ingress, f))
            && let Some(mut answer) = too_big(frame, &m, &router, mtu)
        {
            let mac = self.cfg.ports[usize::from(ingress.0)].mac;
            answer.ends.src_mac = crate::wire::ethernet::MacAddr(mac);
            self.originate(io, ingress, &answer, now);
        }
        self.drop_packet(DropReason::TooBig);
        true
    }

    /// Whether a frame is short enough for `egress` without looking into it: no longer than the port's
    /// MTU plus an Ethernet header. Only longer frames are parsed for their IP length.
    #[inline(always)]
    fn fits_at_once(&self, packet: &B, egress: PortId) -> bool {
        self.cfg
            .ports
            .get(usize::from(egress.0))
            .is_some_and(|p| packet.as_ref().len() <= usize::from(p.mtu) + 14)
    }

    /// Queues a prepared packet on `egress`, in fragments if it is larger than the port's MTU (what
    /// [`Worker::refuse_too_big`] let through may be fragmented, RFC 791).
    #[inline]
    fn send_out<IO: PortIo<Buf = B>>(&mut self, io: &mut IO, packet: B, egress: PortId) {
        if !self.fits_at_once(&packet, egress)
            && let Some((mtu, m)) = self.oversize(packet.as_ref(), egress)
        {
            return self.fragment_out(io, &packet, &m, egress, mtu);
        }
        let queue = &mut self.tx[usize::from(egress.0)];
        if queue.len() == queue.capacity() {
            self.transmit(io);
        }
        self.tx[usize::from(egress.0)].push(packet);
    }

    /// Sends an IPv4 packet larger than `mtu` as fragments in new buffers; the original is dropped.
    fn fragment_out<IO: PortIo<Buf = B>>(
        &mut self,
        io: &mut IO,
        packet: &B,
        m: &PacketMeta,
        egress: PortId,
        mtu: u16,
    ) {
        let frame = packet.as_ref();
        let header = usize::from(m.l4_offset - m.l3_offset);
        let piece = (usize::from(mtu).saturating_sub(header)) & !7;
        let total = usize::from(m.ip_payload_len);
        if piece == 0 {
            return self.drop_packet(DropReason::TooBig);
        }
        let mut start = 0;
        while start < total {
            let end = (start + piece).min(total);
            let Some(mut out) = io.alloc() else {
                return self.drop_packet(DropReason::TxFull);
            };
            let len = usize::from(m.l4_offset) + (end - start);
            if !out.set_len(len)
                || ipv4_fragment_into(frame, m, start, end, end < total, out.as_mut()).is_none()
            {
                return self.drop_packet(DropReason::TooBig);
            }
            let queue = &mut self.tx[usize::from(egress.0)];
            if queue.len() == queue.capacity() {
                self.transmit(io);
            }
            self.tx[usize::from(egress.0)].push(out);
            start = end;
        }
        self.counters.fragmented.inc();
    }

    /// The other fragments of a datagram whose first fragment is leaving by `egress`.
    #[allow(clippy::too_many_arguments)]
    fn forward_followers<IO, L>(
        &mut self,
        io: &mut IO,
        links: &mut L,
        m: &PacketMeta,
        ingress: PortId,
        egress: PortId,
        hop: Option<Hop>,
        now: Instant,
    ) where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        let mut followers = std::mem::take(&mut self.followers);
        for mut packet in followers.drain(..) {
            if self.refuse_too_big(io, &packet, ingress, egress, now) {
                continue;
            }
            match self.prepare(links, &mut packet, m, egress, hop, now) {
                Ok(()) => self.send_out(io, packet, egress),
                Err(reason) => self.drop_packet(reason),
            }
        }
        self.followers = followers;
    }

    /// Drops a packet that cannot leave, answering a TTL that ran out.
    fn refuse<IO: PortIo<Buf = B>>(
        &mut self,
        io: &mut IO,
        packet: &B,
        m: &PacketMeta,
        ingress: PortId,
        reason: DropReason,
        now: Instant,
    ) {
        if reason == DropReason::TtlExceeded
            && let Some(router) = m
                .family()
                .and_then(|f| self.routes.port_address(ingress, f))
        {
            let mac = self
                .cfg
                .ports
                .get(usize::from(ingress.0))
                .map_or([0; 6], |p| p.mac);
            if let Some(mut answer) = time_exceeded(packet.as_ref(), m, &router) {
                answer.ends.src_mac = crate::wire::ethernet::MacAddr(mac);
                self.originate(io, ingress, &answer, now);
            }
        }
        self.drop_packet(reason);
    }

    #[allow(clippy::too_many_arguments)]
    fn forward_held<IO, L>(
        &mut self,
        io: &mut IO,
        links: &mut L,
        mut packet: B,
        m: &PacketMeta,
        ingress: PortId,
        egress: PortId,
        hop: Option<Hop>,
        now: Instant,
        name: StateName,
    ) where
        IO: PortIo<Buf = B>,
        L: WorkerLinks<B>,
    {
        if self.refuse_too_big(io, &packet, ingress, egress, now) {
            return;
        }
        // A next hop not resolved yet is asked for now; the packet waits for its peers' acknowledgement
        // first, then, if need be, for the MAC (like any packet to a new neighbour).
        let unresolved = match (self.prepare(links, &mut packet, m, egress, hop, now), hop) {
            (Ok(()), _) => None,
            (Err(DropReason::NoNeighbor), Some(hop)) if self.cfg.defer.is_some() => Some((*m, hop)),
            // Without deferral it is any packet to a new neighbour (followers included).
            (Err(DropReason::NoNeighbor), Some(_)) => {
                return self.forward(io, links, packet, m, ingress, egress, hop, now);
            }
            (Err(reason), _) => return self.refuse(io, &packet, m, ingress, reason, now),
        };
        // The rest of a fragmented creating datagram goes now; the receiver reassembles in any order.
        self.forward_followers(io, links, m, ingress, egress, hop, now);
        let Some(defer) = self.cfg.defer else {
            return self.send_out(io, packet, egress);
        };
        if unresolved.is_none() && self.oversize(packet.as_ref(), egress).is_some() {
            // Held packets leave as they are: one that must be fragmented goes now.
            return self.send_out(io, packet, egress);
        }
        if self.held.len() >= defer.limit
            && let Some(oldest) = self.held.pop_front()
        {
            // pf: at the limit the oldest held packet goes out at once.
            self.counters.deferred_overflow.inc();
            self.send_held(oldest, now);
        }
        self.counters.deferred.inc();
        self.held.push_back(Held {
            name,
            port: egress,
            packet,
            deadline: now + defer.backstop,
            unresolved,
        });
    }

    /// Sends a held creating packet: at once, or, if its next hop's MAC was unknown when it was held,
    /// rewritten now or parked until the neighbour answers.
    fn send_held(&mut self, held: Held<B>, now: Instant) {
        let Held {
            port,
            mut packet,
            unresolved,
            ..
        } = held;
        let Some((m, hop)) = unresolved else {
            return self.tx[usize::from(port.0)].push(packet);
        };
        match self.rewrite_for(&mut packet, &m, port, hop) {
            Ok(()) => self.tx[usize::from(port.0)].push(packet),
            Err(DropReason::NoNeighbor) => self.park(packet, &m, port, Some(hop), now),
            Err(reason) => self.drop_packet(reason),
        }
    }

    /// Sends the packets held for state `name` (peers know it now), in the order they came.
    fn release(&mut self, name: StateName, now: Instant) {
        let n = self.send_all_held(name, now);
        self.counters.deferred_released.add(n);
    }

    /// Sends the packets held for state `name`, in order; returns how many.
    fn send_all_held(&mut self, name: StateName, now: Instant) -> u64 {
        let (mut from, mut n) = (0, 0);
        while let Some(pos) = self.held.range(from..).position(|h| h.name == name)
            && let Some(held) = self.held.remove(from + pos)
        {
            self.send_held(held, now);
            from += pos;
            n += 1;
        }
        n
    }

    /// Sends the held packets whose backstop time came; their states' later packets are not held again.
    fn release_due(&mut self, now: Instant) {
        while self.held.front().is_some_and(|h| h.deadline <= now) {
            if let Some(held) = self.held.pop_front() {
                let name = held.name;
                if let Some(index) = self.table.find_id(name.creator, name.id) {
                    self.table.get_mut(index).origin &= !origin::DEFERRED;
                }
                self.send_held(held, now);
                let later = self.send_all_held(name, now);
                self.counters.deferred_backstop.add(1 + later);
            }
        }
    }

    fn ask_resolution<L: WorkerLinks<B>>(&mut self, links: &mut L, hop: NextHop, now: Instant) {
        // Ask at most once a second per next hop.
        while self
            .asked
            .front()
            .is_some_and(|(_, at)| now.since(*at) > Duration::secs(1))
        {
            self.asked.pop_front();
        }
        if self.asked.iter().any(|(h, _)| *h == hop) {
            return;
        }
        if links.resolve(hop) && self.asked.len() < self.asked.capacity() {
            self.asked.push_back((hop, now));
        }
    }

    /// Sends a packet the worker makes itself (an answer) out of `port`, within the answer rate limit.
    fn originate<IO: PortIo<Buf = B>>(
        &mut self,
        io: &mut IO,
        port: PortId,
        answer: &build::Answer<'_>,
        now: Instant,
    ) {
        if let Some(out) = self.make(io, answer, now) {
            self.tx[usize::from(port.0)].push(out);
        }
    }

    /// A buffer holding a packet the worker makes itself, within the answer rate limit (answers and
    /// probes share it), counted as originated.
    fn make<IO: PortIo<Buf = B>>(
        &mut self,
        io: &mut IO,
        answer: &build::Answer<'_>,
        now: Instant,
    ) -> Option<B> {
        if !self.answers.take(now) {
            self.counters.answers_limited.inc();
            return None;
        }
        let mut out = io.alloc()?;
        if !out.set_len(answer.buffer_len()) || answer.emit_into(out.as_mut()).is_err() {
            return None;
        }
        self.counters.originated.inc();
        Some(out)
    }

    /// Answers a packet a `block return` rule refused: a RST for TCP, port unreachable for the rest. As pf
    /// does, a packet whose transport checksum fails is not answered (it may be forged or damaged, and the
    /// answer would quote or acknowledge bytes the sender never sent).
    fn answer_blocked<IO: PortIo<Buf = B>>(
        &mut self,
        io: &mut IO,
        packet: &B,
        ingress: PortId,
        m: &PacketMeta,
        now: Instant,
    ) {
        let frame = packet.as_ref();
        if !m.l4_checksum_ok(frame) {
            self.counters.answers_bad_checksum.inc();
            return;
        }
        let answer = match m.l4 {
            L4::Tcp(_) => build::reset_for(frame, m, build::DEFAULT_HOP_LIMIT),
            _ => {
                // Port unreachable: code 3 in ICMP (RFC 792), code 4 in ICMPv6 (RFC 4443 section 3.1).
                let code = if m.family() == Some(Family::Inet6) {
                    4
                } else {
                    3
                };
                build::unreachable_for(frame, m, code, build::DEFAULT_HOP_LIMIT)
            }
        };
        if let Some(answer) = answer {
            self.originate(io, ingress, &answer, now);
        }
    }

    fn expire<L: WorkerLinks<B>>(&mut self, links: &mut L, now: Instant) {
        let report = self.cfg.push.is_some();
        let counters = &self.counters;
        let expired = self.table.expire(now, EXPIRY_PER_POLL, |st| {
            if report {
                let name = StateName {
                    creator: st.creator,
                    id: st.id,
                };
                if links.push_event(LocalEvent::Deleted { name }) {
                    counters.events.inc();
                } else {
                    counters.events_dropped.inc();
                }
            }
        });
        self.counters.states_expired.add(expired as u64);
    }

    fn apply_control<L: WorkerLinks<B>>(&mut self, links: &mut L) {
        while let Some(op) = links.pop_control() {
            match op {
                ControlOp::Neighbor { port, addr, mac } => self.hops.set(port, addr, mac),
                ControlOp::NeighborGone { port, addr } => self.hops.remove(port, &addr),
                ControlOp::VirtualMac { port, mac, accept } => {
                    if let Some(macs) = self.virtual_macs.get_mut(usize::from(port.0)) {
                        macs.retain(|m| *m != mac);
                        if accept && macs.len() < VIRTUAL_MACS {
                            macs.push(mac);
                        }
                    }
                }
            }
        }
    }

    fn apply_ops<IO: PortIo<Buf = B>, L: WorkerLinks<B>>(
        &mut self,
        io: &mut IO,
        links: &mut L,
        now: Instant,
    ) {
        for _ in 0..OPS_PER_POLL {
            let Some(op) = links.pop_op() else { return };
            self.counters.ops.inc();
            match op {
                PeerOp::Insert { record, ack } => {
                    self.peer_insert(links, record, now);
                    if !self.awaiting.is_empty() {
                        let (key, _) = key_of_record(&record);
                        self.recheck_awaiting(io, links, &key, now);
                    }
                    if ack && !links.push_event(LocalEvent::PeerInserted { name: record.name }) {
                        // The peer's held packet then waits for its deferral timeout.
                        self.counters.events_dropped.inc();
                    }
                }
                PeerOp::Update { update } => {
                    if let Some(event) = self.peer_update(update, now) {
                        self.send_event(links, event);
                    }
                    if let Some(index) = self.table.find_id(update.name.creator, update.name.id)
                        && self.table.get(index).waiting > 0
                    {
                        self.recheck_waiting(io, links, index, now);
                    }
                }
                PeerOp::Delete { name } => {
                    if let Some(index) = self.table.find_id(name.creator, name.id) {
                        self.table.remove(index);
                        self.counters.states_removed_by_peers.inc();
                    }
                    self.held.retain(|h| h.name != name);
                }
                PeerOp::Clear { creator } => {
                    let cleared = self.table.remove_where(|s| s.creator == creator);
                    self.counters.states_removed_by_peers.add(cleared as u64);
                }
                PeerOp::ReleaseDeferred { name, reason } => {
                    self.release(name, now);
                    if let Some(index) = self.table.find_id(name.creator, name.id) {
                        let st = self.table.get_mut(index);
                        st.origin &= !origin::DEFERRED;
                        if matches!(
                            reason,
                            ReleaseReason::Acknowledged | ReleaseReason::UpdateReceived
                        ) {
                            st.origin |= origin::PEER_ACKED;
                        }
                    }
                }
                PeerOp::ReadOne { name } => {
                    if let Some(index) = self.table.find_id(name.creator, name.id) {
                        let record = record_of(self.table.get(index), now);
                        self.send_event(
                            links,
                            LocalEvent::Snapshot {
                                record,
                                request: SnapshotRequest::One,
                            },
                        );
                    }
                }
                PeerOp::ReadBulk { request, budget } => {
                    let cursor = match self.bulk_read {
                        Some((r, cursor, _)) if r == request => cursor,
                        _ => 0,
                    };
                    self.bulk_read = Some((request, cursor, budget));
                    self.continue_bulk_read(links, now);
                }
            }
        }
    }

    /// Reads states out for a bulk update, as far as the budget and the event queue allow.
    fn continue_bulk_read<L: WorkerLinks<B>>(&mut self, links: &mut L, now: Instant) {
        let Some((request, mut cursor, mut budget)) = self.bulk_read else {
            return;
        };
        while budget > 0 {
            let Some(index) = self.table.next_live(cursor) else {
                if links.push_event(LocalEvent::SnapshotDone { request }) {
                    self.bulk_read = None;
                } else {
                    self.bulk_read = Some((request, cursor, budget));
                }
                return;
            };
            let record = record_of(self.table.get(index), now);
            if !links.push_event(LocalEvent::Snapshot {
                record,
                request: SnapshotRequest::Bulk(request),
            }) {
                break;
            }
            cursor = index + 1;
            budget -= 1;
        }
        self.bulk_read = Some((request, cursor, budget));
    }

    /// A peer inserted a flow this node already has under another name (its first packets crossed
    /// through two nodes, as UDP's two directions often do). Both names must not live on: every node keeps
    /// the lower one, so the cluster converges on one name whichever insert each node saw first, and the
    /// peer's later updates keep reaching the state. A node whose own state loses the name says so with a
    /// delete of the old one.
    fn merge_colliding_insert<L: WorkerLinks<B>>(
        &mut self,
        links: &mut L,
        index: u32,
        record: &StateRecord,
        now: Instant,
    ) {
        if reopens(self.table.get(index), record) {
            // The peer saw a new connection on the ports of one closed on both sides, as this node would
            // have on its SYN: the old state goes here too, whichever of its delete and this insert
            // arrives first, and the new one takes its place.
            self.table.remove(index);
            self.counters.states_reopened.inc();
            return self.insert_from_peer(*record, now);
        }
        let st = self.table.get_mut(index);
        merge_into(st, &record.peers);
        let ours = StateName {
            creator: st.creator,
            id: st.id,
        };
        self.counters.states_merged_on_insert.inc();
        if record.name >= ours
            || !self
                .table
                .rename(index, record.name.creator, record.name.id)
        {
            return;
        }
        if ours.creator == self.cfg.creator {
            self.send_event(links, LocalEvent::Deleted { name: ours });
        }
        // Packets held under the old name waited for a peer that has the flow now.
        self.release(ours, now);
        self.table.get_mut(index).origin &= !origin::DEFERRED;
    }

    fn peer_insert<L: WorkerLinks<B>>(&mut self, links: &mut L, record: StateRecord, now: Instant) {
        let (key, _) = key_of_record(&record);
        if let Some(index) = self.table.find(&key, key.table_hash()) {
            return self.merge_colliding_insert(links, index, &record, now);
        }
        self.insert_from_peer(record, now);
    }

    /// Inserts a peer's state for a flow this node has no state of.
    fn insert_from_peer(&mut self, record: StateRecord, now: Instant) {
        let (key, initiator_first) = key_of_record(&record);
        let tracking = match record.proto {
            6 => Tracking::Tcp,
            17 => Tracking::Udp,
            1 | 58 => Tracking::IcmpEcho,
            _ => Tracking::Other,
        };
        let expires = if record.expire_secs > 0 {
            now + Duration::secs(u64::from(record.expire_secs))
        } else {
            now + self.timeout(record.timeout)
        };
        let state = State {
            key,
            initiator_first,
            tracking,
            peers: record.peers,
            creator: record.name.creator,
            id: record.name.id,
            rule: NO_RULE,
            created: now - Duration::secs(u64::from(record.age_secs)),
            expires,
            timeout: record.timeout,
            packets: record.packets,
            bytes: record.bytes,
            hops: [HopRef::NONE; 2],
            waiting: 0,
            probed: None,
            probe_at: 0,
            redirect: RedirectMark::default(),
            origin: origin::FROM_PEER
                | if record.flags & state_flags::ALLOWOPTS != 0 {
                    origin::ALLOW_OPTS
                } else {
                    0
                },
            sync: SyncMark::of(&record.peers, now.secs() as u32),
            acked: [0; 2],
        };
        match self.table.insert(state) {
            Ok(_) => self.counters.states_from_peers.inc(),
            Err(InsertError::IdExists(index)) => {
                merge_into(self.table.get_mut(index), &record.peers)
            }
            Err(InsertError::Full) => self.drop_packet(DropReason::StateLimit),
            Err(InsertError::KeyExists(_)) => {}
        }
    }

    /// Merges a peer's update; returns the event to report when that let this node close a side the peer
    /// does not know is closed.
    fn peer_update(&mut self, update: StateUpdate, now: Instant) -> Option<LocalEvent> {
        let index = self.table.find_id(update.name.creator, update.name.id)?;
        let st = self.table.get_mut(index);
        merge_into(st, &update.peers);
        st.origin |= origin::PEER_UPDATED;
        let closed = close_acknowledged_fins(st);
        // A peer saw traffic on it: its expiry restarts, with the class both views agree on.
        let class = match st.tracking {
            Tracking::Tcp => tcp::timeout_class(&st.peers[0], &st.peers[1]),
            _ => update.timeout.max(st.timeout),
        };
        st.timeout = class;
        st.expires = st
            .expires
            .max(now + Duration::secs(u64::from(self.cfg.timeouts[class as usize])));
        // Peers know what they sent us: no need to report that back. Our own newer half they do not
        // know, so the mark moves only as far as their update.
        st.sync.learnt(&update.peers, now.secs() as u32);
        let event = closed.then(|| {
            st.sync = SyncMark::of(&st.peers, now.secs() as u32);
            LocalEvent::Updated {
                update: StateUpdate {
                    name: update.name,
                    peers: st.peers,
                    timeout: st.timeout,
                    updates: 0,
                },
                at: now,
            }
        });
        if st.origin & origin::DEFERRED != 0 {
            self.release(update.name, now);
        }
        event
    }
}

/// Whether the reassembly can place this fragment: always for IPv4; for IPv6, unless a first fragment has
/// extension headers after its fragment header (RFC 8200 allows them; they are rare), since its
/// fragmentable part then starts before the transport header.
fn reassemblable(frame: &[u8], m: &PacketMeta) -> bool {
    use crate::wire::ipv6;
    match (m.class, m.fragment) {
        (EtherClass::Ipv6, Fragment::First { .. }) => {
            let l3 = usize::from(m.l3_offset);
            let Some(ip) = frame
                .get(l3..)
                .and_then(|b| ipv6::Packet::new_checked(b).ok())
            else {
                return false;
            };
            let mut last = None;
            for header in ipv6::ExtensionHeaders::new(ip.next_header(), ip.payload()) {
                match header {
                    Ok(h) => last = Some(h.kind),
                    Err(_) => return false,
                }
            }
            last == Some(crate::wire::ip::protocol::IPV6_FRAGMENT)
        }
        _ => true,
    }
}

/// Gives the sender of the TCP segment an ICMP error quotes its own sequence number back (pf does the
/// same for modulated states): the quote carries the number as modulated on the way out, which the
/// sender would not recognise. The ICMP checksum is updated incrementally.
fn demodulate_quote(frame: &mut [u8], m: &PacketMeta, seqdiff: u32) {
    let icmp = usize::from(m.l4_offset);
    let inner = icmp + 8;
    let Some(&first) = frame.get(inner) else {
        return;
    };
    let tcp = match m.class {
        EtherClass::Ipv4 => inner + usize::from(first & 0x0f) * 4,
        // Only a TCP header right after the quoted IPv6 header is rewritten.
        EtherClass::Ipv6 if frame.get(inner + 6) == Some(&6) => inner + 40,
        _ => return,
    };
    let (at, sum_at) = (tcp + 4, icmp + 2);
    let (Some(seq), Some(sum)) = (frame.get(at..at + 4), frame.get(sum_at..sum_at + 2)) else {
        return;
    };
    let old = u32::from_be_bytes([seq[0], seq[1], seq[2], seq[3]]);
    let mut sum = u16::from_be_bytes([sum[0], sum[1]]);
    let new = old.wrapping_sub(seqdiff);
    for (o, n) in [(old >> 16, new >> 16), (old & 0xffff, new & 0xffff)] {
        sum = crate::wire::checksum::update(sum, o as u16, n as u16);
    }
    frame[at..at + 4].copy_from_slice(&new.to_be_bytes());
    frame[sum_at..sum_at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// A peer's state's flow key, and whether its initiator is the key's first endpoint.
pub fn key_of_record(record: &StateRecord) -> (FlowKey, bool) {
    FlowKey::between(
        record.family,
        record.proto,
        (record.addr[0], record.port[0]),
        (record.addr[1], record.port[1]),
    )
}

/// Whether a peer's insert of a flow this node holds is a new connection on the ports of one closed on
/// both sides here (the peer's SYN met the old state as [`TcpRefusal::ReuseOfClosed`]): a TCP state whose
/// initiator has sent only its SYN and whose responder has not spoken.
fn reopens(st: &State, record: &StateRecord) -> bool {
    use tandem_sync::state::tcp_state::{FIN_WAIT_2, SYN_SENT};
    st.tracking == Tracking::Tcp
        && record.proto == 6
        && st.peers.iter().all(|p| p.state >= FIN_WAIT_2)
        && record.peers[0].state == SYN_SENT
        && record.peers[1].state < SYN_SENT
        && (st.creator, st.id) != (record.name.creator, record.name.id)
}

/// pf moves a side from CLOSING to FIN_WAIT_2 when the other side acknowledges. On an asymmetric path the
/// acknowledgement may pass this node before the peer's update tells it of the FIN; without this, both
/// nodes keep the closed connection in CLOSING until tcp.closing expires and refuse a new connection on the
/// same ports. A side is closed here only when the other side's acknowledgement, seen by this node, covers
/// the FIN (pf itself takes any acknowledgement).
fn close_acknowledged_fins(st: &mut State) -> bool {
    if st.tracking != Tracking::Tcp {
        return false;
    }
    let mut closed = false;
    for x in 0..2 {
        let acked = st.acked[1 - x];
        let peer = &mut st.peers[x];
        if peer.state == tandem_sync::state::tcp_state::CLOSING
            && acked != 0
            && tandem_sync::seq::geq(acked, peer.seqlo)
        {
            peer.state = tandem_sync::state::tcp_state::FIN_WAIT_2;
            closed = true;
        }
    }
    closed
}

fn merge_into(st: &mut State, peers: &[tandem_sync::state::TcpPeer; 2]) {
    if st.tracking == Tracking::Tcp {
        merge::merge_tcp(&mut st.peers, peers);
    } else {
        merge::merge_pseudo(&mut st.peers, peers);
    }
}

/// The protocol record of a state, endpoint 0 being the initiator.
pub fn record_of(st: &State, now: Instant) -> StateRecord {
    let (a, b) = if st.initiator_first {
        (st.key.ends[0], st.key.ends[1])
    } else {
        (st.key.ends[1], st.key.ends[0])
    };
    StateRecord {
        name: StateName {
            creator: st.creator,
            id: st.id,
        },
        family: st.key.family,
        proto: st.key.proto,
        addr: [a.addr, b.addr],
        port: [a.port, b.port],
        peers: st.peers,
        timeout: st.timeout,
        expire_secs: st.expires.since(now).as_micros().div_ceil(1_000_000) as u32,
        age_secs: now.since(st.created).as_micros().div_euclid(1_000_000) as u32,
        packets: st.packets,
        bytes: st.bytes,
        rule: st.rule,
        flags: if st.origin & origin::ALLOW_OPTS != 0 {
            state_flags::ALLOWOPTS
        } else {
            0
        },
    }
}

/// pf's TCP check of `seg` from `side`, but for the answer a takeover probe awaits from that side (a
/// bare ACK): checked as data first, so that its sequence number tells the state how far the side has
/// sent ([`tcp::track_answer`]); anything that fails that goes through pf's own check.
#[inline(always)]
fn track_tcp(st: &mut State, side: Side, seg: &TcpSegment) -> Result<TcpAccept, TcpRefusal> {
    use tcp::flags::{ACK, FIN, RST, SYN};
    if st.probed == Some(side) && seg.payload_len == 0 && seg.flags & (SYN | FIN | RST | ACK) == ACK
    {
        let mut peers = st.peers;
        if let Ok(accept) = tcp::track_answer(&mut peers, side, seg)
            && accept.refresh.is_some()
        {
            st.peers = peers;
            st.probed = None;
            return Ok(accept);
        }
    }
    tcp::track(&mut st.peers, side, seg)
}

fn classify(m: &PacketMeta) -> Transport {
    match m.l4 {
        L4::Tcp(t) => Transport::Tcp(TcpSegment {
            seq: t.seq,
            ack: t.ack,
            flags: t.flags.0,
            win: t.window,
            payload_len: u32::from(t.payload_len),
            wscale: t.syn_options.and_then(|s| s.window_scale),
            mss: t.syn_options.and_then(|s| s.mss),
        }),
        L4::Udp(_) => Transport::Udp,
        L4::Icmp(i) => match i.kind {
            IcmpKind::EchoRequest { .. } => Transport::IcmpEcho(true),
            IcmpKind::EchoReply { .. } => Transport::IcmpEcho(false),
            IcmpKind::Error(quoted) => Transport::IcmpError { quoted },
            IcmpKind::Other => Transport::IcmpOther,
        },
        L4::Fragment { .. } | L4::Other => Transport::Other,
    }
}

fn ports_of(m: &PacketMeta) -> (u16, u16) {
    match m.l4 {
        L4::Tcp(t) => (t.src_port, t.dst_port),
        L4::Udp(u) => (u.src_port, u.dst_port),
        // An echo and its reply share the identifier: it stands for both ports.
        L4::Icmp(i) => match i.kind {
            IcmpKind::EchoRequest { id, .. } | IcmpKind::EchoReply { id, .. } => (id, id),
            _ => (0, 0),
        },
        _ => (0, 0),
    }
}

fn icmp_type_code(m: &PacketMeta) -> Option<(u8, u8)> {
    match m.l4 {
        L4::Icmp(i) => Some((i.icmp_type, i.code)),
        _ => None,
    }
}

fn is_multicast(family: Family, addr: &Addr) -> bool {
    match family {
        Family::Inet => addr[0] >= 224 || addr[..4] == [255, 255, 255, 255],
        Family::Inet6 => addr[0] == 0xff,
    }
}
