//! The sync core: the only thread that runs the sync engine. It drains the workers' events, feeds it the
//! sync packets its transport receives and the time, sends what it produces, and hands the workers the
//! operations it asks of them (never dropping one: an operation that does not fit a worker's queue waits
//! in the engine). It is the "quinn" to the engine's "quinn-proto".
//!
//! It also carries owner redirect's frames: those workers send to their states' owners leave as redirect
//! datagrams (`tandem_sync::wire::redirect`) to the owner's sync address, and those peers send here go to
//! the worker that holds the frame's state. Which peers are alive is published for the workers.
//!
//! The control thread sees the engine through a snapshot the sync core publishes every 100 ms.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use std::net::Ipv4Addr;

use hashbrown::HashMap;
use tandem_dataplane::flow::Placement;
use tandem_sync::engine::{Destination, Engine, EngineStats, ShardMap};
use tandem_sync::identity::CreatorId;
use tandem_sync::time::{Duration, Instant};
use tandem_sync::wire::{HEADER_LEN, redirect};

use super::io::owner_of_frame;
use super::links::{Owners, WorkerChannels};
use super::poll::Backoff;
use super::transport::{SyncTransport, TransportStats};
use crate::dpdk::mempool::PacketPool;

/// A peer as the control thread shows it.
#[derive(Clone, Debug, Default)]
pub struct PeerView {
    /// Its address.
    pub address: String,
    /// Its host id, once known.
    pub host_id: Option<u32>,
    /// Whether it is alive.
    pub alive: bool,
    /// Microseconds since it was last heard from.
    pub last_heard_us: Option<u64>,
    /// Packets and bytes received from it.
    pub packets_in: u64,
    /// Bytes received from it.
    pub bytes_in: u64,
    /// Owner redirect: frames (and their bytes) sent to it and received from it.
    pub redirect: RedirectCounts,
}

/// Owner redirect's traffic with one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedirectCounts {
    /// Frames sent to it as their states' owner.
    pub frames_out: u64,
    /// Their bytes (the frames alone).
    pub bytes_out: u64,
    /// Frames it sent here.
    pub frames_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
}

/// Owner redirect frames the sync core could not pass on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedirectDrops {
    /// Their owner was not alive (or not known) when the sync core came to send them.
    pub no_owner: u64,
    /// Too large for the sync link's MTU.
    pub too_big: u64,
    /// Received from an address that is not a live peer.
    pub not_from_peer: u64,
    /// Received while redirect is off here (the cluster's nodes disagree on `sync.redirect`).
    pub disabled: u64,
    /// Malformed redirect datagrams.
    pub malformed: u64,
    /// No buffer for a received frame, or the worker's queue was full.
    pub no_room: u64,
}

/// What the sync core needs to carry owner redirect's frames.
#[derive(Clone, Copy, Debug)]
pub struct RedirectIo {
    /// Buffers for received frames.
    pub pool: &'static PacketPool,
    /// Which worker holds each flow.
    pub placement: Placement,
    /// The largest sync packet (IPv4 header included) the link carries.
    pub mtu: usize,
    /// IPv4 and UDP headers the transport adds.
    pub headers: usize,
}

/// What the control thread may know of the sync core.
#[derive(Clone, Debug, Default)]
pub struct SyncSnapshot {
    /// Whether the node holds its peers' states.
    pub in_sync: bool,
    /// The engine's counters.
    pub stats: EngineStats,
    /// The transport's counters.
    pub transport: TransportStats,
    /// The peers.
    pub peers: Vec<PeerView>,
    /// States the engine tracks.
    pub states: usize,
    /// Packets held by deferral.
    pub deferrals: usize,
    /// Owner redirect frames lost at the sync core.
    pub redirect_drops: RedirectDrops,
}

/// Shared between the sync core and the control thread.
#[derive(Debug, Default)]
pub struct SyncShared {
    /// The latest snapshot.
    pub snapshot: Mutex<SyncSnapshot>,
    /// Whether the node is in sync (read by failover without locking).
    pub in_sync: AtomicBool,
    /// Set by `tandem sync resync`: the sync core asks its peers for a fresh bulk update.
    pub resync: AtomicBool,
}

/// The sync core's owner-redirect side: its buffers and counters.
struct Redirector {
    io: Option<RedirectIo>,
    owners: Arc<Owners>,
    out: Vec<u8>,
    peers: HashMap<Ipv4Addr, RedirectCounts>,
    drops: RedirectDrops,
}

impl Redirector {
    /// Publishes which peers are alive, for the workers.
    fn publish_owners<M: ShardMap>(&self, engine: &Engine<M>) {
        let alive = || engine.peers().iter().filter(|(_, p)| p.alive);
        self.owners
            .publish(alive().count(), alive().filter_map(|(_, p)| p.host_id));
    }

    /// Sends the frames workers queued for their owners, as many consecutive frames for one owner per
    /// datagram as its MTU takes (nothing waits for a datagram to fill: what is queued now leaves now).
    /// Returns whether there were any.
    fn send<M: ShardMap>(
        &mut self,
        engine: &Engine<M>,
        transport: &mut dyn SyncTransport,
        workers: &[Arc<WorkerChannels>],
    ) -> bool {
        let Some(io) = self.io else {
            return false;
        };
        let room = io.mtu.saturating_sub(io.headers);
        let mut busy = false;
        let mut to: Option<Ipv4Addr> = None;
        for channels in workers {
            for _ in 0..1024 {
                let Some((owner, port, frame)) = channels.to_owner.pop() else {
                    break;
                };
                busy = true;
                let Some(address) = owner_address(engine, owner) else {
                    self.drops.no_owner += 1;
                    continue;
                };
                let frame = frame.as_ref();
                let start = if self.out.is_empty() {
                    HEADER_LEN
                } else {
                    self.out.len()
                };
                if to != Some(address) || start + redirect::section_len(frame) > room {
                    self.flush(transport, &mut to);
                }
                if HEADER_LEN + redirect::section_len(frame) > room
                    || redirect::push(&mut self.out, port.0, frame).is_none()
                {
                    self.drops.too_big += 1;
                    continue;
                }
                to = Some(address);
                let c = self.peers.entry(address).or_default();
                c.frames_out += 1;
                c.bytes_out += frame.len() as u64;
            }
        }
        self.flush(transport, &mut to);
        busy
    }

    /// Sends the datagram being filled, if any, to `to`.
    fn flush(&mut self, transport: &mut dyn SyncTransport, to: &mut Option<Ipv4Addr>) {
        if let Some(address) = to.take()
            && !self.out.is_empty()
        {
            transport.send(Destination::Peer(address), &self.out);
        }
        self.out.clear();
    }

    /// Hands each frame of a received redirect datagram to the worker that holds its state.
    fn receive<M: ShardMap>(
        &mut self,
        engine: &Engine<M>,
        workers: &[Arc<WorkerChannels>],
        from: Ipv4Addr,
        datagram: &[u8],
    ) {
        let Some(io) = self.io else {
            self.drops.disabled += 1;
            return;
        };
        if !engine
            .peers()
            .iter()
            .any(|(_, p)| p.alive && p.address == from)
        {
            self.drops.not_from_peer += 1;
            return;
        }
        for r in redirect::frames(datagram) {
            let Ok(r) = r else {
                self.drops.malformed += 1;
                return;
            };
            let Some(mut m) = io.pool.alloc() else {
                self.drops.no_room += 1;
                continue;
            };
            if !m.resize(r.frame.len()) {
                self.drops.no_room += 1;
                continue;
            }
            m.as_mut().copy_from_slice(r.frame);
            let worker =
                owner_of_frame(r.frame, &io.placement).min(workers.len().saturating_sub(1));
            let c = self.peers.entry(from).or_default();
            c.frames_in += 1;
            c.bytes_in += r.frame.len() as u64;
            let port = tandem_config::PortId(r.port);
            if workers[worker].redirected.push((port, m)).is_err() {
                self.drops.no_room += 1;
            }
        }
    }
}

/// The sync address of the live peer with host id `owner`.
fn owner_address<M: ShardMap>(engine: &Engine<M>, owner: CreatorId) -> Option<Ipv4Addr> {
    engine
        .peers()
        .iter()
        .find(|(_, p)| p.alive && p.host_id == Some(owner))
        .map(|(_, p)| p.address)
}

/// Runs the sync core until `stop` is set.
#[allow(clippy::too_many_arguments)]
pub fn run<M: ShardMap>(
    mut engine: Engine<M>,
    mut transport: Box<dyn SyncTransport>,
    workers: Vec<Arc<WorkerChannels>>,
    shared: Arc<SyncShared>,
    owners: Arc<Owners>,
    redirect_io: Option<RedirectIo>,
    stop: &AtomicBool,
    mut backoff: Backoff,
    now: impl Fn() -> Instant,
) {
    let mut buf = Vec::with_capacity(65_536);
    engine.start(now());
    let mut published = Instant::ZERO;
    let mut owners_published = Instant::ZERO;
    let mut redirector = Redirector {
        io: redirect_io,
        owners,
        out: Vec::with_capacity(65_536),
        peers: HashMap::new(),
        drops: RedirectDrops::default(),
    };
    while !stop.load(Ordering::Relaxed) {
        let t = now();
        let mut busy = false;
        if shared.resync.swap(false, Ordering::Relaxed) {
            // Out of sync until the bulk update completes (failover demotes the node meanwhile).
            engine.start(t);
            busy = true;
        }
        for (w, channels) in workers.iter().enumerate() {
            // Bound the batch so packets and timers are not starved by a flood of events.
            for _ in 0..4096 {
                let Some(event) = channels.events.pop() else {
                    break;
                };
                engine.handle_event(t, w, event);
                busy = true;
            }
        }
        for _ in 0..1024 {
            let Some(from) = transport.recv(&mut buf) else {
                break;
            };
            if redirect::is_redirect(&buf) {
                redirector.receive(&engine, &workers, from, &buf);
            } else {
                engine.handle_datagram(t, from, &buf);
            }
            busy = true;
        }
        if redirector.send(&engine, transport.as_mut(), &workers) {
            busy = true;
        }
        if engine.poll_timeout().is_some_and(|due| due <= t) {
            engine.handle_timeout(t);
        }
        while let Some(packet) = engine.poll_transmit(t) {
            transport.send(packet.destination, &packet.payload);
            engine.recycle(packet.payload);
            busy = true;
        }
        for (w, channels) in workers.iter().enumerate() {
            if engine.drain_ops(w, |op| channels.ops.push(op).is_ok()) > 0 {
                busy = true;
            }
        }
        if t.since(owners_published) >= Duration::millis(10) {
            redirector.publish_owners(&engine);
            owners_published = t;
        }
        if t.since(published) >= Duration::millis(100) {
            publish(&engine, transport.as_ref(), &shared, &redirector, t);
            published = t;
        }
        if busy {
            backoff.after_poll(true);
        } else if let Some(due) = engine.poll_timeout() {
            // Never sleep past the engine's next deadline.
            let wait = due.since(now());
            if wait > Duration::ZERO {
                backoff.after_poll(false);
            }
        } else {
            backoff.after_poll(false);
        }
    }
    publish(&engine, transport.as_ref(), &shared, &redirector, now());
    // Let what is queued leave before the port closes.
    while let Some(packet) = engine.poll_transmit(now()) {
        transport.send(packet.destination, &packet.payload);
    }
    std::thread::sleep(StdDuration::from_millis(1));
}

fn publish<M: ShardMap>(
    engine: &Engine<M>,
    transport: &dyn SyncTransport,
    shared: &SyncShared,
    redirector: &Redirector,
    now: Instant,
) {
    let peers = engine
        .peers()
        .iter()
        .map(|(_, p)| PeerView {
            address: p.address.to_string(),
            host_id: p.host_id.map(|h| h.0),
            alive: p.alive,
            last_heard_us: p.last_heard.map(|t| now.since(t).as_micros()),
            packets_in: p.packets_in,
            bytes_in: p.bytes_in,
            redirect: redirector
                .peers
                .get(&p.address)
                .copied()
                .unwrap_or_default(),
        })
        .collect();
    let snapshot = SyncSnapshot {
        in_sync: engine.in_sync(),
        stats: engine.stats().clone(),
        transport: transport.stats(),
        peers,
        states: engine.states(),
        deferrals: engine.deferrals(),
        redirect_drops: redirector.drops,
    };
    shared.in_sync.store(snapshot.in_sync, Ordering::Relaxed);
    if let Ok(mut slot) = shared.snapshot.lock() {
        *slot = snapshot;
    }
}
