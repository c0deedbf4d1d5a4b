//! The sans-IO sync engine: everything pfsync does, as a state machine that never touches a socket, a
//! thread or a clock (quinn-proto's shape). The sync core thread feeds it local events from the workers
//! ([`Engine::handle_event`]), packets from peers ([`Engine::handle_datagram`]) and the time
//! ([`Engine::handle_timeout`]); it takes back packets to send ([`Engine::poll_transmit`]), operations for the
//! workers ([`Engine::drain_ops`]) and when to call again ([`Engine::poll_timeout`]).
//!
//! What it does, and where it differs from pfsync:
//! - One pending message per state, whatever the number of changes (OpenBSD's queues of references);
//!   updates of many states share packets, each packet is exactly sized to the MTU.
//! - When to send: `window-aware` sends a TCP state before a peer's copy lags far enough for pf's checks to
//!   refuse a valid packet (see `policy`), otherwise at the flush deadline; `classic` is pfsync's
//!   (after `maxupd` updates or 1 s, at once for states a peer touched in the last 2 s).
//! - Deferral: the creating packet stays with its worker; the insert goes out at once asking for INS_ACK;
//!   the packet is released when every live peer acknowledged, any update about the state arrives, or the
//!   timeout expires. pfsync's 2009 redesign never sent the IACK and always waited for the timeout.
//! - Merge: per field and forwards only (see `merge`), so a path change loses nothing.
//! - Bulk update on start and when a silent peer returns, paced by a byte budget rather than pfsync's one
//!   packet per 20 ms; update requests for unknown states, rate-limited.
//! - Any number of peers, unicast or on the multicast group, each with its liveness.

mod codec;
pub mod delivery;
mod entries;
mod message;
pub mod peers;
pub mod stats;

use std::collections::VecDeque;
use std::net::Ipv4Addr;

use hashbrown::HashMap;

pub use codec::Encapsulation;
pub use delivery::DeliveryConfig;
pub use message::{BulkStatus, Incoming, Outgoing};
pub use peers::{Peer, PeerIndex, Peers};
pub use stats::{EngineStats, Histogram};

use crate::event::{
    LocalEvent, PeerOp, ReleaseReason, SnapshotRequest, StateName, StateRecord, StateUpdate,
};
use crate::identity::CreatorId;
use crate::merge;
use crate::policy::{RateEstimate, WindowBudget, time_to_send};
use crate::state::{TcpPeer, TimeoutClass, state_flags};
use crate::time::{Duration, Instant, MaybeInstant};
use crate::wire::{
    self,
    delivery::{Delivery, SEQ_SECTION_LEN},
};
use delivery::{Arrival, Item, Sender, Stream};
use entries::Entries;

/// Which worker owns a peer's state: the same function the NIC's RSS (or the software dispatch) applies to
/// its packets, so that the state lands where its packets will.
pub trait ShardMap {
    /// The worker owning `record`'s flow.
    fn worker_of(&self, record: &StateRecord) -> usize;
}

impl<F: Fn(&StateRecord) -> usize> ShardMap for F {
    fn worker_of(&self, record: &StateRecord) -> usize {
        self(record)
    }
}

/// When updates are sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Policy {
    /// Before peers' copies lag past pf's tolerances, else at the flush deadline.
    WindowAware {
        /// Reserve and sync delay used by the rule.
        budget: WindowBudget,
    },
    /// pfsync's: after `max_updates` updates of a TCP state, or `interval` after the first queued change,
    /// and at once for states a peer touched within the last 2 s.
    Classic {
        /// pfsync's `maxupd`.
        max_updates: u16,
        /// pfsync's 1 s timer.
        interval: Duration,
    },
}

/// The engine's settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Our host id: the creator id of our states.
    pub creator: CreatorId,
    /// What one peer may make this node hold or do.
    pub limits: PeerLimits,
    /// Workers (state shards).
    pub workers: usize,
    /// Largest sync packet, IP header included.
    pub mtu: u16,
    /// Raw IPv4 or UDP.
    pub encapsulation: Encapsulation,
    /// Send to the multicast group (and accept any sender on it as a peer) rather than to each peer.
    pub multicast: bool,
    /// Configured peers.
    pub peers: Vec<(Ipv4Addr, Option<CreatorId>)>,
    /// When updates are sent.
    pub policy: Policy,
    /// The longest an update waits.
    pub flush_deadline: Duration,
    /// Deferral timeout; `None` when deferral is off.
    pub defer_timeout: Option<Duration>,
    /// A peer silent this long is gone.
    pub peer_dead: Duration,
    /// Send something at least this often.
    pub keepalive: Duration,
    /// Bulk update send rate in bytes per second.
    pub bulk_rate: u64,
    /// How long a bulk request waits for an answer.
    pub bulk_timeout: Duration,
    /// How many times it is sent before giving up.
    pub bulk_retries: u32,
    /// The shortest interval between two update requests for the same state.
    pub request_interval: Duration,
    /// Acknowledged delivery (a Tandem extension every peer must have on); `None`: pfsync's
    /// fire-and-forget.
    pub delivery: Option<DeliveryConfig>,
}

/// What one peer may make this node hold or do; past a limit its messages are refused and counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLimits {
    /// States one creator (a peer's host id) may have here.
    pub states: usize,
    /// Update requests for single states answered per second, per peer (each makes a worker read a
    /// state and this node send it).
    pub requests_per_sec: u32,
}

impl Default for PeerLimits {
    fn default() -> Self {
        PeerLimits {
            states: 1 << 22,
            requests_per_sec: 20_000,
        }
    }
}

/// Where a packet goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The multicast group.
    Group,
    /// One peer.
    Peer(Ipv4Addr),
}

/// A sync packet to send: the pfsync payload (header onwards) and its destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Where.
    pub destination: Destination,
    /// pfsync header and sections.
    pub payload: Vec<u8>,
}

/// The message a state has waiting (OpenBSD's `sync_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Queued {
    Nothing,
    UpdC,
    Ins,
}

/// What the engine keeps per state (136 bytes: it is kept for every state the node holds).
#[derive(Clone, Debug)]
struct Entry {
    worker: u16,
    tcp: bool,
    /// Everything we know: local changes merged with peers' updates.
    now: [TcpPeer; 2],
    /// What peers know: what we sent merged with what they sent us.
    known: [TcpPeer; 2],
    timeout: TimeoutClass,
    rate: [RateEstimate; 2],
    /// When each side's `seqlo` was last observed for the rate estimate, and what it was.
    observed_at: MaybeInstant,
    observed: [u32; 2],
    queued: Queued,
    /// Packets since the last send (classic).
    updates: u16,
    /// When a peer last sent us something about it (classic's immediate flush).
    peer_input: MaybeInstant,
    /// When the oldest unsent change happened.
    changed_at: MaybeInstant,
    /// When we last sent it.
    sent_at: MaybeInstant,
}

// The entry's size is part of the node's memory per state (docs/benchmarks.md).
const _: () = assert!(std::mem::size_of::<Entry>() <= 136);

/// A held creating packet, waiting for acknowledgements.
#[derive(Clone, Copy, Debug)]
struct Deferral {
    worker: u16,
    since: Instant,
    deadline: Instant,
    waiting: u64,
    /// The insert, sent again at `resend_at` while a peer has not acknowledged it: a lost INS (or a lost
    /// acknowledgement) would otherwise release the packet by the timeout with the return node still
    /// ignorant of the state, and its first answer would die there.
    record: StateRecord,
    resend_at: Instant,
}

/// What became of a peer's full state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Taken {
    /// New here: it went to a worker.
    New,
    /// Known: merged as an update.
    Known,
    /// Refused: its creator has its limit of states here.
    Refused,
}

/// How many times a deferred insert is sent within its deferral timeout (at even intervals).
const INS_SENDS: u64 = 4;

/// Answering a peer's bulk request.
#[derive(Clone, Debug)]
struct BulkOut {
    request: u32,
    to: Destination,
    workers_done: u64,
    /// Snapshots asked for and not yet received.
    outstanding: u32,
    queue: VecDeque<StateRecord>,
    tokens: f64,
    refilled: Instant,
    states: u64,
}

/// Our own bulk update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BulkIn {
    Requested { tries: u32, deadline: Instant },
    Receiving { from: PeerIndex, deadline: Instant },
    Done,
}

/// States sent per bulk read per worker.
const BULK_READ: u32 = 64;
/// The shortest interval between two bulk updates for one peer: a restarting peer asks once (and again
/// only if the answer is lost), while a forged or looping request cannot turn 24 bytes into the whole table
/// more than once per interval.
pub const BULK_INTERVAL: Duration = Duration::secs(10);

/// The engine.
pub struct Engine<M: ShardMap> {
    cfg: EngineConfig,
    shards: M,
    states: Entries<Entry>,
    ins_records: HashMap<StateName, (StateRecord, bool)>,
    /// States held per creator, for the per-peer limit.
    per_creator: HashMap<CreatorId, usize>,
    q_iack: Vec<StateName>,
    q_updc: Vec<StateName>,
    q_delc: Vec<StateName>,
    q_ins: Vec<StateName>,
    q_upd: Vec<StateRecord>,
    q_req: Vec<Option<StateName>>,
    q_clr: Vec<CreatorId>,
    q_bus: Vec<(Destination, BulkStatus)>,
    flush_at: Option<Instant>,
    flush_now: bool,
    pending_bytes: usize,
    deferrals: HashMap<StateName, Deferral>,
    requested: HashMap<StateName, Instant>,
    peers: Peers,
    bulk_out: Option<BulkOut>,
    bulk_requests: u32,
    bulk_in: BulkIn,
    encoder: codec::Encoder,
    tx: VecDeque<Transmit>,
    spare: Vec<Vec<u8>>,
    ops: Vec<VecDeque<PeerOp>>,
    last_sent: Instant,
    stats: EngineStats,
    /// Acknowledged delivery: our stream.
    sender: Option<Sender>,
    /// Acknowledged delivery: each peer's stream, by peer index.
    streams: Vec<Option<Stream>>,
    /// What the packet being built carries, for its resend entry.
    building: Vec<Item>,
    /// The time of the call being handled.
    clock: Instant,
    /// Peers owed a bulk update (a restart seen, or packets missed that the resend queue let go), sent
    /// as soon as the per-peer bulk interval allows.
    owed_bulk: u64,
}

impl<M: ShardMap> std::fmt::Debug for Engine<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("creator", &self.cfg.creator)
            .field("states", &self.states.len())
            .field("peers", &self.peers.len())
            .field("in_sync", &self.in_sync())
            .finish_non_exhaustive()
    }
}

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The MTU cannot hold a full state message.
    #[error("sync MTU {0} cannot hold one full state message")]
    MtuTooSmall(u16),
    /// More peers than the engine tracks.
    #[error("at most {} sync peers are supported", peers::MAX_PEERS)]
    TooManyPeers,
}

impl<M: ShardMap> Engine<M> {
    /// An engine with `cfg`, routing peers' states to workers with `shards`. It starts out of sync; call
    /// [`Engine::start`] to ask peers for their states.
    pub fn new(cfg: EngineConfig, shards: M, now: Instant) -> Result<Engine<M>, EngineError> {
        if cfg.peers.len() > peers::MAX_PEERS {
            return Err(EngineError::TooManyPeers);
        }
        // A numbered packet ends with its sequence section: room is kept for it.
        let reserved = if cfg.delivery.is_some() {
            SEQ_SECTION_LEN as u16
        } else {
            0
        };
        let encoder = codec::Encoder::new(cfg.mtu.saturating_sub(reserved), cfg.encapsulation)
            .ok_or(EngineError::MtuTooSmall(cfg.mtu))?;
        let workers = cfg.workers.max(1);
        Ok(Engine {
            peers: Peers::new(&cfg.peers),
            shards,
            states: Entries::default(),
            ins_records: HashMap::new(),
            per_creator: HashMap::new(),
            q_iack: Vec::new(),
            q_updc: Vec::new(),
            q_delc: Vec::new(),
            q_ins: Vec::new(),
            q_upd: Vec::new(),
            q_req: Vec::new(),
            q_clr: Vec::new(),
            q_bus: Vec::new(),
            flush_at: None,
            flush_now: false,
            pending_bytes: 0,
            deferrals: HashMap::new(),
            requested: HashMap::new(),
            bulk_out: None,
            bulk_requests: 0,
            bulk_in: BulkIn::Done,
            encoder,
            tx: VecDeque::new(),
            spare: Vec::new(),
            ops: (0..workers).map(|_| VecDeque::new()).collect(),
            last_sent: now,
            stats: EngineStats::default(),
            sender: cfg.delivery.map(Sender::new),
            streams: Vec::new(),
            building: Vec::new(),
            clock: now,
            owed_bulk: 0,
            cfg,
        })
    }

    /// Asks peers for all their states (on start, or to force a resync); the node is out of sync until a
    /// bulk update completes or every retry went unanswered.
    pub fn start(&mut self, now: Instant) {
        self.bulk_in = BulkIn::Requested {
            tries: 1,
            deadline: now + self.cfg.bulk_timeout,
        };
        self.q_req.push(None);
        self.flush_now = true;
    }

    /// Whether this node holds its peers' states (no bulk update pending): failover may prefer it.
    pub fn in_sync(&self) -> bool {
        self.bulk_in == BulkIn::Done
    }

    /// Counters.
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// The peers.
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// States the engine knows.
    pub fn states(&self) -> usize {
        self.states.len()
    }

    /// Every state the engine knows with its view of both sides: what a peer's engine holds for the same
    /// name once sync has caught up (the simulator's convergence check).
    pub fn state_views(&self) -> impl Iterator<Item = (StateName, [TcpPeer; 2])> + '_ {
        self.states.iter().map(|(name, e)| (name, e.now))
    }

    /// Bytes the engine's copy of the states takes per state, by its own account (the entries, their
    /// slab's spare room and their index).
    pub fn bytes_per_state(&self) -> usize {
        self.states.bytes_per_entry()
    }

    /// Packets held by deferral now.
    pub fn deferrals(&self) -> usize {
        self.deferrals.len()
    }

    fn op(&mut self, worker: usize, op: PeerOp) {
        let w = worker.min(self.ops.len() - 1);
        self.ops[w].push_back(op);
    }

    /// Hands `worker`'s operations to `accept` in order, while it accepts them (a full queue refuses; the
    /// rest wait for the next call, nothing is dropped).
    pub fn drain_ops(&mut self, worker: usize, mut accept: impl FnMut(PeerOp) -> bool) -> usize {
        let Some(queue) = self.ops.get_mut(worker) else {
            return 0;
        };
        let mut n = 0;
        while let Some(op) = queue.front().copied() {
            if !accept(op) {
                break;
            }
            queue.pop_front();
            n += 1;
        }
        n
    }

    /// Operations waiting for `worker`.
    pub fn pending_ops(&self, worker: usize) -> usize {
        self.ops.get(worker).map_or(0, VecDeque::len)
    }

    // ---------------------------------------------------------------- local events

    /// Handles an event from `worker`.
    pub fn handle_event(&mut self, now: Instant, worker: usize, event: LocalEvent) {
        self.clock = now;
        match event {
            LocalEvent::Inserted {
                record,
                deferred,
                at,
            } => self.local_insert(now, worker, record, deferred, at),
            LocalEvent::Updated { update, at } => self.local_update(now, update, at),
            LocalEvent::Deleted { name } => self.local_delete(now, name),
            LocalEvent::Snapshot { record, request } => self.snapshot(now, record, request),
            LocalEvent::SnapshotDone { request } => self.snapshot_done(now, worker, request),
            LocalEvent::DeferralDropped { name } => {
                self.deferrals.remove(&name);
            }
            LocalEvent::PeerInserted { name } => self.acknowledge(name),
            // A worker holds a packet ahead of our copy: ask the peers for a fresh one (rate-limited per
            // state, as requests for unknown states are).
            LocalEvent::UpdateWanted { name } => self.request(now, name),
        }
    }

    fn local_insert(
        &mut self,
        now: Instant,
        worker: usize,
        record: StateRecord,
        deferred: bool,
        at: Instant,
    ) {
        let name = record.name;
        let tcp = record.proto == 6;
        let entry = Entry {
            worker: worker as u16,
            tcp,
            now: record.peers,
            known: [TcpPeer::default(); 2],
            timeout: record.timeout,
            rate: [RateEstimate::default(); 2],
            observed_at: MaybeInstant::some(at),
            observed: [record.peers[0].seqlo, record.peers[1].seqlo],
            queued: Queued::Ins,
            updates: 0,
            peer_input: MaybeInstant::NONE,
            changed_at: MaybeInstant::some(at),
            sent_at: MaybeInstant::NONE,
        };
        if let Some(old) = self.states.insert(name, entry) {
            self.forget(name);
            // A name reused without a delete in between: forget what was queued for the old one.
            if old.queued == Queued::Ins {
                self.ins_records.remove(&name);
            }
        }
        *self.per_creator.entry(name.creator).or_default() += 1;
        let ack = deferred && self.cfg.defer_timeout.is_some();
        self.ins_records.insert(name, (record, ack));
        self.q_ins.push(name);
        self.pending_bytes += codec::STATE_LEN;
        if ack {
            self.stats.deferred += 1;
            let waiting = self.peers.answering_mask();
            if waiting != self.peers.alive_mask() {
                self.stats.deferral_skipped_unresponsive += 1;
            }
            if waiting == 0 {
                self.stats.released_no_peers += 1;
                self.op(
                    worker,
                    PeerOp::ReleaseDeferred {
                        name,
                        reason: ReleaseReason::NoPeers,
                    },
                );
            } else {
                let timeout = self.cfg.defer_timeout.unwrap_or(Duration::ZERO);
                self.deferrals.insert(
                    name,
                    Deferral {
                        worker: worker as u16,
                        since: at,
                        deadline: now + timeout,
                        waiting,
                        record,
                        resend_at: now + Duration(timeout.as_micros() / INS_SENDS),
                    },
                );
            }
            // The peer is waiting on this insert: no batching delay.
            self.flush_now = true;
        } else {
            self.schedule_change(now, name, at);
        }
        self.check_full();
    }

    fn local_update(&mut self, now: Instant, update: StateUpdate, at: Instant) {
        let name = update.name;
        let Some(entry) = self.states.get_mut(&name) else {
            self.stats.stray_events += 1;
            return;
        };
        observe_rate(entry, &update.peers, at);
        // Merge rather than replace: peers' updates the engine already merged may not have reached the
        // worker yet, and every field only moves forwards anyway.
        if entry.tcp {
            merge::merge_tcp(&mut entry.now, &update.peers);
        } else {
            merge::merge_pseudo(&mut entry.now, &update.peers);
        }
        entry.timeout = update.timeout;
        entry.updates = entry.updates.saturating_add(update.updates.max(1));
        match entry.queued {
            Queued::Ins => {
                // The insert is not out yet: it will carry the newest data.
                if let Some((record, _)) = self.ins_records.get_mut(&name) {
                    record.peers = update.peers;
                    record.timeout = update.timeout;
                }
            }
            Queued::UpdC => {}
            Queued::Nothing => {
                entry.queued = Queued::UpdC;
                self.q_updc.push(name);
                self.pending_bytes += codec::UPD_C_LEN;
            }
        }
        if entry.changed_at.get().is_none() {
            entry.changed_at = MaybeInstant::some(at);
        }
        self.schedule_change(now, name, at);
        self.check_full();
    }

    fn local_delete(&mut self, _now: Instant, name: StateName) {
        let Some(entry) = self.states.remove(&name) else {
            self.stats.stray_events += 1;
            return;
        };
        self.forget(name);
        self.deferrals.remove(&name);
        if entry.queued == Queued::Ins {
            // pfsync: an insert still queued is simply dropped, "pretend it never happened".
            self.ins_records.remove(&name);
            return;
        }
        self.q_delc.push(name);
        self.pending_bytes += codec::SMALL_LEN;
        // Deletes are not urgent: they ride with the next packet, or the flush deadline.
        let deadline = _now + self.cfg.flush_deadline;
        self.flush_at = Some(self.flush_at.map_or(deadline, |t| t.min(deadline)));
        self.check_full();
    }

    /// Decides when a changed state must go out, per the policy.
    fn schedule_change(&mut self, now: Instant, name: StateName, at: Instant) {
        let Some(entry) = self.states.get(&name) else {
            return;
        };
        let deadline = match self.cfg.policy {
            Policy::Classic {
                max_updates,
                interval,
            } => {
                let touched_by_peer = entry
                    .peer_input
                    .get()
                    .is_some_and(|t| now.since(t) < Duration::secs(2));
                if (entry.tcp && entry.updates >= max_updates) || touched_by_peer {
                    now
                } else {
                    entry.changed_at.get().unwrap_or(at) + interval
                }
            }
            Policy::WindowAware { budget } => {
                let latest = entry.changed_at.get().unwrap_or(at) + self.cfg.flush_deadline;
                if entry.tcp {
                    let rate = [entry.rate[0].get(), entry.rate[1].get()];
                    match time_to_send(&entry.known, &entry.now, rate, &budget) {
                        Some(wait) => latest.min(now + wait),
                        None => latest,
                    }
                } else {
                    latest
                }
            }
        };
        if deadline <= now {
            self.flush_now = true;
        } else {
            self.flush_at = Some(self.flush_at.map_or(deadline, |t| t.min(deadline)));
        }
    }

    fn check_full(&mut self) {
        if self.pending_bytes >= self.encoder.capacity() {
            self.flush_now = true;
        }
    }

    fn snapshot(&mut self, now: Instant, record: StateRecord, request: SnapshotRequest) {
        match request {
            SnapshotRequest::One => {
                self.q_upd.push(record);
                self.pending_bytes += codec::STATE_LEN;
                self.flush_now = true;
            }
            SnapshotRequest::Bulk(n) => match &mut self.bulk_out {
                Some(bulk) if bulk.request == n => {
                    bulk.outstanding = bulk.outstanding.saturating_sub(1);
                    bulk.queue.push_back(record);
                    self.pump_bulk(now);
                }
                _ => self.stats.stray_events += 1,
            },
        }
    }

    fn snapshot_done(&mut self, now: Instant, worker: usize, request: u32) {
        if let Some(bulk) = &mut self.bulk_out
            && bulk.request == request
        {
            bulk.workers_done |= 1 << worker;
            bulk.outstanding = 0;
            self.pump_bulk(now);
        }
    }

    // ---------------------------------------------------------------- peers' packets

    /// Handles a sync packet's payload (pfsync header onwards) from `from`. The caller has checked the IP
    /// header (protocol, TTL 255, ingress port) and authentication.
    pub fn handle_datagram(&mut self, now: Instant, from: Ipv4Addr, payload: &[u8]) {
        self.clock = now;
        // On the group, a node with no configured peers takes anyone who speaks there as a peer (with
        // authentication on, only holders of the key get this far); configured peers are the only ones.
        let discover = self.cfg.multicast && self.cfg.peers.is_empty();
        let Some((peer, revived)) = self.peers.heard(from, now, payload.len(), discover) else {
            self.stats.drop_not_a_peer += 1;
            return;
        };
        let mut messages = Vec::new();
        let stats = &mut self.stats;
        let result = codec::decode(payload, |m| match m {
            Ok(message) => messages.push(message),
            Err(codec::Skipped::BadValue) => stats.drop_bad_value += 1,
            Err(codec::Skipped::Unsupported(why)) => stats.refused[why as usize] += 1,
            Err(codec::Skipped::FamilyMismatch) => stats.drop_family_mismatch += 1,
            Err(codec::Skipped::Section(why)) => stats.sections_skipped[why as usize] += 1,
        });
        match result {
            Ok(()) => {}
            // FreeBSD's pfsync (header version 5) lays its states out differently (its 1301 and 1400
            // formats): never parsed as ours, and named, so that an operator sees what is on the link.
            Err(crate::wire::Error::BadVersion(5)) => self.stats.drop_version_freebsd += 1,
            Err(crate::wire::Error::BadVersion(_)) => self.stats.drop_version_other += 1,
            Err(_) => self.stats.drop_malformed += 1,
        }
        self.stats.packets_in += 1;
        self.stats.bytes_in += payload.len() as u64;
        if revived {
            // Acknowledgements start over with a peer that was gone (both sides do a bulk update).
            self.forget_stream(peer);
        }
        if revived && self.peer_was_known(peer) {
            // A peer we had lost is back: ask it for everything it holds, since both sides missed updates.
            self.q_req.push(None);
            self.flush_now = true;
        } else if revived && let BulkIn::Requested { tries, .. } = self.bulk_in {
            // First contact while our bulk request is unanswered (it may have left before the link was up):
            // ask again now rather than at the next retry.
            self.bulk_in = BulkIn::Requested {
                tries,
                deadline: now + self.cfg.bulk_timeout,
            };
            self.q_req.push(None);
            self.flush_now = true;
        }
        let duplicate = self.arrival(now, peer, &messages) == Some(Arrival::Duplicate);
        for message in messages {
            // A packet received twice: its states were applied the first time.
            if duplicate && !matches!(message, Incoming::Delivery(_)) {
                continue;
            }
            self.incoming(now, peer, message);
        }
    }

    /// Acknowledged delivery: records a numbered packet in its sender's stream (a new epoch is a restart:
    /// the peer lost our states and gets a bulk update). `None` for an unnumbered packet, or with delivery
    /// off.
    fn arrival(&mut self, now: Instant, peer: PeerIndex, messages: &[Incoming]) -> Option<Arrival> {
        let cfg = *self.sender.as_ref()?.config();
        // A numbered packet's SEQ, or an unnumbered one's EPOCH (no number).
        let (sender, epoch, seq, low) = messages.iter().find_map(|m| match *m {
            Incoming::Delivery(Delivery::Seq {
                sender,
                epoch,
                seq,
                low,
            }) => Some((sender, epoch, Some(seq), low)),
            Incoming::Delivery(Delivery::Epoch { sender, epoch, low }) => {
                Some((sender, epoch, None, low))
            }
            _ => None,
        })?;
        if self.peers.get(peer).host_id.is_some_and(|h| h != sender) {
            // A number in someone else's stream: not this peer's to give.
            self.stats.creator_conflicts += 1;
            return None;
        }
        if self.streams.len() <= peer {
            self.streams.resize(peer + 1, None);
        }
        let arrival = match (&mut self.streams[peer], seq) {
            (Some(s), Some(seq)) if s.sender == sender && s.epoch == epoch => {
                s.arrive(seq, low, now, &cfg)
            }
            (Some(s), None) if s.sender == sender && s.epoch == epoch => {
                s.close_below(low);
                Arrival::New
            }
            (slot, seq) => {
                let restarted = slot.is_some();
                let s = slot.insert(match seq {
                    Some(seq) => Stream::new(sender, epoch, seq),
                    None => Stream::announced(sender, epoch, low),
                });
                if let Some(seq) = seq {
                    s.arrive(seq, low, now, &cfg);
                }
                if restarted {
                    Arrival::Restarted
                } else {
                    Arrival::New
                }
            }
        };
        match arrival {
            Arrival::Duplicate => self.stats.delivery.duplicates += 1,
            Arrival::Restarted => {
                self.stats.delivery.peer_restarts += 1;
                if let Some(tx) = &mut self.sender {
                    tx.forget(peer);
                }
                self.owe_bulk(now, peer);
            }
            Arrival::New => {}
        }
        Some(arrival)
    }

    /// Forgets a peer's stream and its acknowledgements of ours.
    fn forget_stream(&mut self, peer: PeerIndex) {
        if let Some(s) = self.streams.get_mut(peer) {
            *s = None;
        }
        if let Some(tx) = &mut self.sender {
            tx.forget(peer);
        }
    }

    /// A peer's acknowledgement or gap report about a stream (ours, or another peer's on the group).
    fn delivery_report(&mut self, now: Instant, peer: PeerIndex, report: Delivery) {
        let alive = self.peers.alive_mask();
        let Some(tx) = &mut self.sender else {
            return;
        };
        let epoch = tx.config().epoch;
        match report {
            Delivery::Seq { .. } | Delivery::Epoch { .. } => {}
            Delivery::Ack { sender, .. } | Delivery::Nack { sender, .. }
                if sender != self.cfg.creator => {}
            Delivery::Ack { epoch: e, .. } | Delivery::Nack { epoch: e, .. } if e != epoch => {
                self.stats.delivery.acks_ignored += 1;
            }
            Delivery::Ack { through, .. } => {
                self.stats.delivery.acks_received += 1;
                tx.acknowledged(peer, through, now, alive);
            }
            Delivery::Nack { first, last, .. } => {
                self.stats.delivery.gaps_received += 1;
                let items = tx.missing(first, last);
                self.resend(now, items);
            }
        }
        self.delivery_bookkeeping(now);
    }

    /// Copies the sender's counters and starts the bulk updates it found necessary.
    fn delivery_bookkeeping(&mut self, now: Instant) {
        let Some(tx) = &mut self.sender else {
            return;
        };
        self.stats.delivery.sender = tx.counts();
        let mask = tx.take_needs_bulk();
        for peer in 0..self.peers.len() {
            if mask & (1 << peer) != 0 && self.peers.get(peer).alive {
                self.stats.delivery.bulks_for_missed += 1;
                self.owe_bulk(now, peer);
            }
        }
    }

    /// Sends `peer` a bulk update now, or once the bulk interval since its last one has passed.
    fn owe_bulk(&mut self, now: Instant, peer: PeerIndex) {
        self.owed_bulk |= 1 << peer;
        self.serve_owed_bulks(now);
    }

    /// Starts the owed bulk updates the interval allows, one at a time.
    fn serve_owed_bulks(&mut self, now: Instant) {
        for peer in 0..self.peers.len() {
            if self.owed_bulk & (1 << peer) == 0 || self.bulk_out.is_some() {
                continue;
            }
            if !self.peers.get(peer).alive {
                self.owed_bulk &= !(1 << peer);
            } else if self.bulk_allowed_at(peer) <= now {
                self.owed_bulk &= !(1 << peer);
                self.bulk_requested(now, peer);
            }
        }
    }

    /// When `peer` may next have a bulk update.
    fn bulk_allowed_at(&self, peer: PeerIndex) -> Instant {
        self.peers
            .get(peer)
            .bulk_served
            .map_or(Instant::ZERO, |t| t + BULK_INTERVAL)
    }

    /// Queues again, as they are now, what a lost packet carried: a full state is read again from its
    /// worker, a compressed update is sent from the engine's view, a delete whose state is still gone and
    /// a clear go again.
    fn resend(&mut self, now: Instant, items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        for item in items {
            self.stats.delivery.states_resent += 1;
            match item {
                Item::Full(name) => {
                    if let Some(entry) = self.states.get(&name) {
                        let worker = usize::from(entry.worker);
                        self.op(worker, PeerOp::ReadOne { name });
                    }
                }
                Item::Compressed(name) => self.queue_update(now, name),
                Item::Delete(name) => {
                    if !self.states.contains_key(&name) {
                        self.q_delc.push(name);
                        self.pending_bytes += codec::SMALL_LEN;
                    }
                }
                Item::Clear(creator) => self.q_clr.push(creator),
            }
        }
        self.flush_now = true;
    }

    /// Sends the acknowledgements and gap reports due, in one packet of their own.
    fn send_acknowledgements(&mut self, now: Instant) {
        let Some(cfg) = self.sender.as_ref().map(|tx| *tx.config()) else {
            return;
        };
        let mut acks = Vec::new();
        let mut gaps = Vec::new();
        for s in self.streams.iter_mut().flatten() {
            if let Some((through, missing)) = s.report(now, &cfg) {
                acks.push(Delivery::Ack {
                    sender: s.sender,
                    epoch: s.epoch,
                    through,
                });
                gaps.extend(missing.into_iter().map(|(first, last)| Delivery::Nack {
                    sender: s.sender,
                    epoch: s.epoch,
                    first,
                    last,
                }));
            }
        }
        if acks.is_empty() {
            return;
        }
        // At most 64 acknowledgements (768 bytes) fit any sync MTU; gap reports fill what is left, and a
        // report left out is made again after half the resend interval.
        let room = self
            .encoder
            .capacity()
            .saturating_sub(2 * wire::SUBHEADER_LEN + 12 * acks.len());
        gaps.truncate(room / 16);
        self.stats.delivery.acks_sent += acks.len() as u64;
        self.stats.delivery.gaps_reported += gaps.len() as u64;
        let mut payload = self.encoder.empty_packet();
        wire::delivery::append(&mut payload, &acks);
        wire::delivery::append(&mut payload, &gaps);
        self.emit(Destination::Group, payload, Vec::new());
    }

    fn peer_was_known(&self, peer: PeerIndex) -> bool {
        // A peer heard before this packet (packets_in counts it already) that had been declared dead.
        self.peers.get(peer).packets_in > 1
    }

    fn incoming(&mut self, now: Instant, peer: PeerIndex, message: Incoming) {
        if let Some((action, size)) = codec::action_and_size(&message) {
            self.stats.received[action].messages += 1;
            self.stats.received[action].bytes += size as u64;
        }
        match message {
            Incoming::Delivery(report) => self.delivery_report(now, peer, report),
            Incoming::Clr(creator) if self.peers.get(peer).host_id != Some(creator) => {
                // pf's CLR clears its sender's states (`pfctl -F states`); one naming anyone else's
                // (ours, or another peer's) would wipe states their owner still holds.
                self.stats.clr_refused += 1;
            }
            Incoming::Clr(creator) => {
                self.states.retain(|name, _| name.creator != creator);
                self.per_creator.remove(&creator);
                self.deferrals.retain(|name, _| name.creator != creator);
                for w in 0..self.ops.len() {
                    self.op(w, PeerOp::Clear { creator });
                }
            }
            Incoming::InsAck(name) => self.acknowledged(now, peer, name),
            Incoming::UpdC(update) => self.peer_update(now, update),
            Incoming::UpdReq(None) => self.bulk_requested(now, peer),
            Incoming::UpdReq(Some(_))
                if !self
                    .peers
                    .take_request(peer, now, self.cfg.limits.requests_per_sec) =>
            {
                self.stats.requests_limited += 1;
            }
            Incoming::UpdReq(Some(name)) => match self.states.get(&name) {
                Some(entry) => {
                    let worker = usize::from(entry.worker);
                    self.op(worker, PeerOp::ReadOne { name });
                }
                None => self.stats.unknown_state += 1,
            },
            Incoming::Del(name) => match self.states.remove(&name) {
                Some(entry) => {
                    self.forget(name);
                    if entry.queued == Queued::Ins {
                        self.ins_records.remove(&name);
                    }
                    self.deferrals.remove(&name);
                    self.op(usize::from(entry.worker), PeerOp::Delete { name });
                }
                None => self.stats.unknown_state += 1,
            },
            Incoming::Ins { record, .. }
                if record.name.creator == self.cfg.creator
                    || self
                        .peers
                        .iter()
                        .any(|(i, p)| i != peer && p.host_id == Some(record.name.creator)) =>
            {
                // A node inserts only the states it created (pfsync's bulk and repairs travel as UPD): an
                // insert naming our host id, or another peer's, comes from a node that claims an id not its
                // own (two nodes configured with one host id, or a forger).
                self.stats.creator_conflicts += 1;
            }
            Incoming::Ins { record, ack } => {
                // A node inserts only the states it created: an insert names its sender's host id, for a
                // peer whose bulk status (pfsync's only announcement of it) this node has not seen.
                if self.peers.get(peer).host_id.is_none() {
                    self.peers.learn_host_id(peer, record.name.creator);
                }
                // A new state is acknowledged once the worker has it (its PeerInserted event): an
                // acknowledgement sent earlier would release the peer's held packet while the answer
                // could still reach this node before its worker knows the flow. A state we already had
                // is in the worker: acknowledge at once.
                if self.peer_record(now, record, ack) == Taken::Known && ack {
                    self.acknowledge(record.name);
                }
            }
            Incoming::Upd(record) => {
                self.peer_record(now, record, false);
            }
            Incoming::Bus(creator, status) => {
                self.peers.learn_host_id(peer, creator);
                if creator == self.cfg.creator {
                    self.stats.creator_conflicts += 1;
                }
                self.bulk_status(now, peer, status);
            }
        }
    }

    fn acknowledged(&mut self, now: Instant, peer: PeerIndex, name: StateName) {
        self.peers.note_acks(1 << peer, true);
        let Some(d) = self.deferrals.get_mut(&name) else {
            return;
        };
        d.waiting &= !(1u64 << peer);
        if d.waiting == 0 {
            let d = *d;
            self.deferrals.remove(&name);
            self.stats.released_by_iack += 1;
            self.stats.iack_latency.record(now.since(d.since));
            self.op(
                usize::from(d.worker),
                PeerOp::ReleaseDeferred {
                    name,
                    reason: ReleaseReason::Acknowledged,
                },
            );
        }
    }

    fn release_on_update(&mut self, name: StateName) {
        if let Some(d) = self.deferrals.remove(&name) {
            self.stats.released_by_update += 1;
            self.op(
                usize::from(d.worker),
                PeerOp::ReleaseDeferred {
                    name,
                    reason: ReleaseReason::UpdateReceived,
                },
            );
        }
    }

    fn peer_update(&mut self, now: Instant, update: StateUpdate) {
        let name = update.name;
        let Some(entry) = self.states.get_mut(&name) else {
            self.stats.unknown_state += 1;
            self.request(now, name);
            return;
        };
        let outcome = if entry.tcp {
            merge::merge_tcp(&mut entry.known, &update.peers);
            let outcome = merge::merge_tcp(&mut entry.now, &update.peers);
            observe_rate(entry, &entry.now.clone(), now);
            outcome
        } else {
            merge::merge_pseudo(&mut entry.known, &update.peers);
            merge::merge_pseudo(&mut entry.now, &update.peers)
        };
        entry.peer_input = MaybeInstant::some(now);
        let worker = usize::from(entry.worker);
        if outcome.peer_is_behind {
            self.stats.stale += 1;
        }
        // The peer lacks part of what we know: send it our copy, as OpenBSD does. Under the classic
        // policy at once, always. The window-aware policy answers only what we have not already sent,
        // or sent long enough ago that it should have arrived (it was lost): an update that merely
        // crossed ours in flight needs no answer, and answering it would start an exchange that never
        // ends on a flow both nodes see moving.
        let echo = outcome.peer_is_behind
            && match self.cfg.policy {
                Policy::Classic { .. } => true,
                Policy::WindowAware { budget } => {
                    let in_flight = Duration::millis(1)
                        .max(self.cfg.flush_deadline + budget.sync_delay + budget.sync_delay);
                    let unsent = if entry.tcp {
                        crate::policy::gap(&entry.known, &entry.now)
                            != crate::policy::Gap::default()
                    } else {
                        true
                    };
                    unsent
                        || entry
                            .sent_at
                            .get()
                            .is_none_or(|t| now.since(t) >= in_flight)
                }
            };
        if echo {
            self.queue_update(now, name);
            self.schedule_change(now, name, now);
        }
        self.release_on_update(name);
        self.op(worker, PeerOp::Update { update });
    }

    /// Queues our current view of a state we know as a compressed update (unless a message of it is
    /// queued already), as changed at `now` if nothing was pending.
    fn queue_update(&mut self, now: Instant, name: StateName) {
        let Some(entry) = self.states.get_mut(&name) else {
            return;
        };
        if entry.changed_at.get().is_none() {
            entry.changed_at = MaybeInstant::some(now);
        }
        if entry.queued == Queued::Nothing {
            entry.queued = Queued::UpdC;
            self.q_updc.push(name);
            self.pending_bytes += codec::UPD_C_LEN;
        }
    }

    /// Sends an acknowledgement for a peer's insert.
    fn acknowledge(&mut self, name: StateName) {
        self.q_iack.push(name);
        self.pending_bytes += codec::SMALL_LEN;
        self.flush_now = true;
    }

    /// One fewer state of `name`'s creator.
    fn forget(&mut self, name: StateName) {
        if let Some(n) = self.per_creator.get_mut(&name.creator) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_creator.remove(&name.creator);
            }
        }
    }

    /// Takes a peer's full state: new to us (it went to a worker as an insert, which reports back when
    /// `ack` is set), known (merged as an update), or refused by the per-peer limit.
    fn peer_record(&mut self, now: Instant, record: StateRecord, ack: bool) -> Taken {
        let name = record.name;
        if self.states.contains_key(&name) {
            // We have it (an insert that crossed ours, or a bulk copy of a state we hold): merge as an update.
            self.peer_update(
                now,
                StateUpdate {
                    name,
                    peers: record.peers,
                    timeout: record.timeout,
                    updates: 0,
                },
            );
            return Taken::Known;
        }
        let held = self.per_creator.entry(name.creator).or_default();
        if *held >= self.cfg.limits.states {
            self.stats.refused_state_limit += 1;
            return Taken::Refused;
        }
        *held += 1;
        let worker = self.shards.worker_of(&record).min(self.ops.len() - 1);
        self.states.insert(
            name,
            Entry {
                worker: worker as u16,
                tcp: record.proto == 6,
                now: record.peers,
                known: record.peers,
                timeout: record.timeout,
                rate: [RateEstimate::default(); 2],
                observed_at: MaybeInstant::some(now),
                observed: [record.peers[0].seqlo, record.peers[1].seqlo],
                queued: Queued::Nothing,
                updates: 0,
                peer_input: MaybeInstant::some(now),
                changed_at: MaybeInstant::NONE,
                sent_at: MaybeInstant::NONE,
            },
        );
        self.requested.remove(&name);
        let mut record = record;
        record.flags &= !state_flags::ACK;
        self.op(worker, PeerOp::Insert { record, ack });
        Taken::New
    }

    fn request(&mut self, now: Instant, name: StateName) {
        if let Some(at) = self.requested.get(&name)
            && now.since(*at) < self.cfg.request_interval
        {
            self.stats.requests_suppressed += 1;
            return;
        }
        // Bound the memory of the rate limit: forget requests older than the interval.
        if self.requested.len() > 65_536 {
            let interval = self.cfg.request_interval;
            self.requested.retain(|_, at| now.since(*at) < interval);
        }
        self.requested.insert(name, now);
        self.q_req.push(Some(name));
        self.pending_bytes += codec::SMALL_LEN;
        self.stats.requests_sent += 1;
        self.flush_now = true;
    }

    // ---------------------------------------------------------------- bulk updates

    fn bulk_requested(&mut self, now: Instant, peer: PeerIndex) {
        if self.bulk_out.is_some() {
            // One bulk at a time; the one running covers this peer too on the group, and a unicast peer
            // will retry when it times out.
            return;
        }
        // A bulk update answers a packet of 24 bytes with the whole table: one per peer per interval.
        if !self.peers.take_bulk(peer, now, BULK_INTERVAL) {
            self.stats.bulk_requests_limited += 1;
            return;
        }
        self.bulk_requests += 1;
        let to = if self.cfg.multicast {
            Destination::Group
        } else {
            Destination::Peer(self.peers.get(peer).address)
        };
        self.stats.bulks_sent += 1;
        self.q_bus.push((to, BulkStatus::Start));
        self.flush_now = true;
        self.bulk_out = Some(BulkOut {
            request: self.bulk_requests,
            to,
            workers_done: 0,
            outstanding: 0,
            queue: VecDeque::new(),
            tokens: 0.0,
            refilled: now,
            states: 0,
        });
        self.pump_bulk(now);
    }

    /// Sends what the byte budget allows of the bulk update and asks workers for more states.
    fn pump_bulk(&mut self, now: Instant) {
        let Some(mut bulk) = self.bulk_out.take() else {
            return;
        };
        let all = all_workers(self.ops.len());
        let per_packet = self.encoder.states_per_packet().max(1);
        // Token bucket in bytes: refilled at the bulk rate, at most a few packets of burst.
        let burst = (4 * self.encoder.capacity()) as f64;
        bulk.tokens = (bulk.tokens
            + self.cfg.bulk_rate as f64 * now.since(bulk.refilled).as_micros() as f64 / 1e6)
            .min(burst);
        bulk.refilled = now;
        while !bulk.queue.is_empty() && bulk.tokens >= 0.0 {
            // Wait for a full packet's worth unless every worker is done.
            if bulk.queue.len() < per_packet && bulk.workers_done != all {
                break;
            }
            let take = per_packet.min(bulk.queue.len());
            let mut bytes = 0;
            for record in bulk.queue.drain(..take).collect::<Vec<_>>() {
                bytes += self.encode_to(bulk.to, &Outgoing::Upd(record));
            }
            bytes += self.finish_to(bulk.to);
            bulk.states += take as u64;
            self.stats.bulk_states_sent += take as u64;
            bulk.tokens -= bytes as f64;
        }
        if bulk.workers_done != all && bulk.outstanding == 0 && bulk.queue.len() < 4 * per_packet {
            for w in 0..self.ops.len() {
                if bulk.workers_done & (1 << w) == 0 {
                    self.ops[w].push_back(PeerOp::ReadBulk {
                        request: bulk.request,
                        budget: BULK_READ,
                    });
                    bulk.outstanding += BULK_READ;
                }
            }
        }
        if bulk.workers_done == all && bulk.queue.is_empty() {
            self.q_bus.push((bulk.to, BulkStatus::End));
            self.flush_now = true;
        } else {
            self.bulk_out = Some(bulk);
        }
    }

    fn bulk_status(&mut self, now: Instant, peer: PeerIndex, status: BulkStatus) {
        match (self.bulk_in, status) {
            (BulkIn::Requested { .. } | BulkIn::Receiving { .. }, BulkStatus::Start) => {
                self.bulk_in = BulkIn::Receiving {
                    from: peer,
                    deadline: now + self.cfg.bulk_timeout * 4,
                };
            }
            (BulkIn::Requested { .. } | BulkIn::Receiving { .. }, BulkStatus::End) => {
                self.bulk_in = BulkIn::Done;
                self.stats.bulks_received += 1;
            }
            _ => {}
        }
    }

    // ---------------------------------------------------------------- time

    /// When [`Engine::handle_timeout`] must next be called (flushes, deferral timeouts, bulk pacing and
    /// retries, keepalives, peer deaths).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.flush_at;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        if self.flush_now {
            consider(Some(Instant::ZERO));
        }
        consider(
            self.deferrals
                .values()
                .map(|d| d.deadline.min(d.resend_at))
                .min(),
        );
        consider(match self.bulk_in {
            BulkIn::Requested { deadline, .. } | BulkIn::Receiving { deadline, .. } => {
                Some(deadline)
            }
            BulkIn::Done => None,
        });
        if let Some(bulk) = &self.bulk_out
            && !bulk.queue.is_empty()
        {
            let need = -bulk.tokens.min(0.0);
            let wait = (need / self.cfg.bulk_rate.max(1) as f64 * 1e6) as u64;
            consider(Some(bulk.refilled + Duration(wait.max(1))));
        }
        consider(Some(self.last_sent + self.cfg.keepalive));
        consider(self.peers.next_death(self.cfg.peer_dead));
        // An owed bulk update waits for its interval, and for the bulk update running (whose pacing
        // timer brings the next call).
        if self.bulk_out.is_none() {
            consider(
                (0..self.peers.len())
                    .filter(|p| self.owed_bulk & (1 << p) != 0)
                    .map(|p| self.bulk_allowed_at(p))
                    .min(),
            );
        }
        if let Some(tx) = &self.sender {
            consider(tx.next_due(self.peers.alive_mask()));
            consider(
                self.streams
                    .iter()
                    .flatten()
                    .filter_map(Stream::due_at)
                    .min(),
            );
        }
        next
    }

    /// Runs whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.clock = now;
        // Peers that went silent are no longer waited for.
        let change = self.peers.expire(now, self.cfg.peer_dead);
        for &peer in &change.died {
            self.forget_stream(peer);
        }
        if !change.died.is_empty() {
            let mask = change.died.iter().fold(0u64, |m, i| m | 1 << i);
            let names: Vec<StateName> = self.deferrals.keys().copied().collect();
            for name in names {
                if let Some(d) = self.deferrals.get_mut(&name) {
                    d.waiting &= !mask;
                    if d.waiting == 0 {
                        let worker = usize::from(d.worker);
                        self.deferrals.remove(&name);
                        self.stats.released_no_peers += 1;
                        self.op(
                            worker,
                            PeerOp::ReleaseDeferred {
                                name,
                                reason: ReleaseReason::NoPeers,
                            },
                        );
                    }
                }
            }
        }
        // Deferred inserts not yet acknowledged by every peer waited for go again.
        let interval =
            Duration(self.cfg.defer_timeout.unwrap_or(Duration::ZERO).as_micros() / INS_SENDS);
        for (name, d) in self.deferrals.iter_mut() {
            if d.resend_at <= now && d.deadline > now {
                d.resend_at = now + interval.max(Duration(1));
                if !self.ins_records.contains_key(name) {
                    self.ins_records.insert(*name, (d.record, true));
                    self.q_ins.push(*name);
                    self.pending_bytes += codec::STATE_LEN;
                }
                self.stats.ins_resent += 1;
                self.flush_now = true;
            }
        }
        // Deferral timeouts.
        let expired: Vec<(StateName, Deferral)> = self
            .deferrals
            .iter()
            .filter(|(_, d)| d.deadline <= now)
            .map(|(n, d)| (*n, *d))
            .collect();
        for (name, d) in expired {
            self.deferrals.remove(&name);
            self.peers.note_acks(d.waiting, false);
            self.stats.released_by_timeout += 1;
            self.op(
                usize::from(d.worker),
                PeerOp::ReleaseDeferred {
                    name,
                    reason: ReleaseReason::Timeout,
                },
            );
        }
        // Our bulk request.
        match self.bulk_in {
            BulkIn::Requested { tries, deadline } if deadline <= now => {
                if tries < self.cfg.bulk_retries.max(1) {
                    self.bulk_in = BulkIn::Requested {
                        tries: tries + 1,
                        deadline: now + self.cfg.bulk_timeout,
                    };
                    self.q_req.push(None);
                    self.flush_now = true;
                } else {
                    // pfsync gives up and declares itself in sync: alone, there is nothing to wait for.
                    self.bulk_in = BulkIn::Done;
                    self.stats.bulk_failures += 1;
                }
            }
            BulkIn::Receiving { deadline, .. } if deadline <= now => {
                self.bulk_in = BulkIn::Requested {
                    tries: 1,
                    deadline: now + self.cfg.bulk_timeout,
                };
                self.q_req.push(None);
                self.flush_now = true;
            }
            _ => {}
        }
        self.pump_bulk(now);
        self.serve_owed_bulks(now);
        if let Some(tx) = &mut self.sender {
            let items = tx.due(now, self.peers.alive_mask());
            self.resend(now, items);
            self.delivery_bookkeeping(now);
        }
        if self.flush_now || self.flush_at.is_some_and(|t| t <= now) {
            self.flush(now);
        }
        self.send_acknowledgements(now);
        if now.since(self.last_sent) >= self.cfg.keepalive && self.tx.is_empty() {
            // An empty pfsync packet (a header with no sections) tells peers we are alive; pfsync accepts it.
            let payload = self.encoder.empty_packet();
            self.emit(Destination::Group, payload, Vec::new());
        }
    }

    // ---------------------------------------------------------------- output

    /// Writes everything queued into packets, in OpenBSD's section order.
    fn flush(&mut self, now: Instant) {
        self.flush_now = false;
        self.flush_at = None;
        self.pending_bytes = 0;
        let dest = Destination::Group;
        for name in std::mem::take(&mut self.q_iack) {
            self.encode_to(dest, &Outgoing::InsAck(name));
        }
        for name in std::mem::take(&mut self.q_updc) {
            let Some(entry) = self.states.get_mut(&name) else {
                continue;
            };
            if entry.queued != Queued::UpdC {
                continue;
            }
            entry.queued = Queued::Nothing;
            let update = StateUpdate {
                name,
                peers: entry.now,
                timeout: entry.timeout,
                updates: 0,
            };
            sent_now(entry, now, &mut self.stats);
            self.encode_to(dest, &Outgoing::UpdC(update));
        }
        for name in std::mem::take(&mut self.q_delc) {
            self.encode_to(dest, &Outgoing::DelC(name));
        }
        for name in std::mem::take(&mut self.q_ins) {
            let Some((record, ack)) = self.ins_records.remove(&name) else {
                continue;
            };
            if let Some(entry) = self.states.get_mut(&name) {
                entry.queued = Queued::Nothing;
                sent_now(entry, now, &mut self.stats);
            }
            self.encode_to(dest, &Outgoing::Ins { record, ack });
        }
        for record in std::mem::take(&mut self.q_upd) {
            if let Some(entry) = self.states.get_mut(&record.name) {
                if entry.tcp {
                    merge::merge_tcp(&mut entry.known, &record.peers);
                } else {
                    merge::merge_pseudo(&mut entry.known, &record.peers);
                }
            }
            self.encode_to(dest, &Outgoing::Upd(record));
        }
        for creator in std::mem::take(&mut self.q_clr) {
            self.encode_to(dest, &Outgoing::Clr(creator));
        }
        self.finish_to(dest);
        // Update requests and bulk status go in packets of their own, as OpenBSD sends them.
        for request in std::mem::take(&mut self.q_req) {
            self.encode_to(dest, &Outgoing::UpdReq(request));
        }
        self.finish_to(dest);
        for (to, status) in std::mem::take(&mut self.q_bus) {
            self.encode_to(to, &Outgoing::Bus(self.cfg.creator, status));
            self.finish_to(to);
        }
    }

    /// Encodes one message towards `to`; packets that fill up go to the transmit queue. Returns the bytes
    /// of any packet completed.
    fn encode_to(&mut self, to: Destination, message: &Outgoing) -> usize {
        let (action, size) = codec::outgoing_action_and_size(message);
        self.stats.sent[action].messages += 1;
        self.stats.sent[action].bytes += size as u64;
        let mut done = Vec::new();
        self.encoder
            .push(message, &mut |payload: &[u8]| done.push(payload.to_vec()));
        let bytes = done.iter().map(Vec::len).sum();
        for payload in done {
            // The completed packet holds what was pushed before this message.
            let items = std::mem::take(&mut self.building);
            self.emit(to, payload, items);
        }
        if self.sender.is_some()
            && let Some(item) = item_of(message)
        {
            self.building.push(item);
        }
        bytes
    }

    fn finish_to(&mut self, to: Destination) -> usize {
        let mut done = Vec::new();
        self.encoder
            .flush(&mut |payload: &[u8]| done.push(payload.to_vec()));
        let bytes = done.iter().map(Vec::len).sum();
        let mut items = std::mem::take(&mut self.building);
        for payload in done {
            self.emit(to, payload, std::mem::take(&mut items));
        }
        bytes
    }

    /// Queues a packet for `to`. With acknowledged delivery, a packet to the group that carries states
    /// (`items`) is numbered: its sequence section goes last, and the sender remembers what it carried.
    fn emit(&mut self, to: Destination, mut payload: Vec<u8>, items: Vec<Item>) {
        if let Some(tx) = &mut self.sender {
            let sender = self.cfg.creator;
            let epoch = tx.config().epoch;
            let section = if to == Destination::Group && !items.is_empty() {
                let (seq, low) = tx.number(self.clock, items, self.peers.alive_mask());
                self.stats.delivery.sender = tx.counts();
                Delivery::Seq {
                    sender,
                    epoch,
                    seq,
                    low,
                }
            } else {
                // Unnumbered (requests, bulk status, acknowledgements, keepalives, a bulk to one peer):
                // it still names our epoch, so a restart shows in whatever we send first.
                Delivery::Epoch {
                    sender,
                    epoch,
                    low: tx.low(),
                }
            };
            wire::delivery::append(&mut payload, &[section]);
        }
        self.stats.packets_out += 1;
        self.stats.bytes_out += payload.len() as u64;
        match (to, self.cfg.multicast) {
            (Destination::Group, false) => {
                // Unicast: one copy per configured peer.
                let addresses: Vec<Ipv4Addr> = self.peers.iter().map(|(_, p)| p.address).collect();
                for address in addresses {
                    self.tx.push_back(Transmit {
                        destination: Destination::Peer(address),
                        payload: payload.clone(),
                    });
                }
            }
            _ => self.tx.push_back(Transmit {
                destination: to,
                payload,
            }),
        }
    }

    /// The next packet to send, if any. `now` marks when it leaves (for keepalives).
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let t = self.tx.pop_front()?;
        self.last_sent = now;
        Some(t)
    }

    /// Gives a payload buffer back for reuse.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.spare.len() < 64 {
            buffer.clear();
            self.spare.push(buffer);
        }
    }
}

/// What a message carries that a lost packet would need sent again.
fn item_of(message: &Outgoing) -> Option<Item> {
    match message {
        Outgoing::UpdC(u) => Some(Item::Compressed(u.name)),
        Outgoing::Ins { record, .. } | Outgoing::Upd(record) => Some(Item::Full(record.name)),
        Outgoing::DelC(name) => Some(Item::Delete(*name)),
        Outgoing::Clr(creator) => Some(Item::Clear(*creator)),
        Outgoing::InsAck(_) | Outgoing::UpdReq(_) | Outgoing::Bus(..) => None,
    }
}

fn all_workers(n: usize) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

/// Records what an entry's send tells peers, and the lag it had.
fn sent_now(entry: &mut Entry, now: Instant, stats: &mut EngineStats) {
    if entry.tcp {
        merge::merge_tcp(&mut entry.known, &entry.now);
    } else {
        merge::merge_pseudo(&mut entry.known, &entry.now);
    }
    entry.updates = 0;
    entry.sent_at = MaybeInstant::some(now);
    if let Some(at) = entry.changed_at.take() {
        stats.sync_lag.record(now.since(at));
    }
}

/// Folds a new view of the peers into the entry's rate estimates.
fn observe_rate(entry: &mut Entry, peers: &[TcpPeer; 2], at: Instant) {
    if let Some(then) = entry.observed_at.get() {
        let seqlo = entry.observed;
        let elapsed = at.since(then);
        if elapsed.as_micros() > 0 {
            for side in 0..2 {
                let moved = peers[side].seqlo.wrapping_sub(seqlo[side]);
                if crate::seq::gt(peers[side].seqlo, seqlo[side]) {
                    entry.rate[side].observe(moved, elapsed);
                }
            }
            entry.observed_at = MaybeInstant::some(at);
            entry.observed = [peers[0].seqlo, peers[1].seqlo];
        }
    } else {
        entry.observed_at = MaybeInstant::some(at);
        entry.observed = [peers[0].seqlo, peers[1].seqlo];
    }
}
