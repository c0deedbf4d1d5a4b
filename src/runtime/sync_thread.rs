//! The sync core: the only thread that runs the sync engine. It drains the workers' events, feeds it the
//! sync packets its transport receives and the time, sends what it produces, and hands the workers the
//! operations it asks of them (never dropping one: an operation that does not fit a worker's queue waits
//! in the engine). It is the "quinn" to the engine's "quinn-proto".
//!
//! The control thread sees the engine through a snapshot the sync core publishes every 100 ms.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use tandem_sync::engine::{Engine, EngineStats, ShardMap};
use tandem_sync::time::{Duration, Instant};

use super::links::WorkerChannels;
use super::poll::Backoff;
use super::transport::{SyncTransport, TransportStats};

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
}

/// Shared between the sync core and the control thread.
#[derive(Debug, Default)]
pub struct SyncShared {
    /// The latest snapshot.
    pub snapshot: Mutex<SyncSnapshot>,
    /// Whether the node is in sync (read by failover without locking).
    pub in_sync: AtomicBool,
}

/// Runs the sync core until `stop` is set.
pub fn run<M: ShardMap>(
    mut engine: Engine<M>,
    mut transport: Box<dyn SyncTransport>,
    workers: Vec<Arc<WorkerChannels>>,
    shared: Arc<SyncShared>,
    stop: &AtomicBool,
    mut backoff: Backoff,
    now: impl Fn() -> Instant,
) {
    let mut buf = Vec::with_capacity(65_536);
    engine.start(now());
    let mut published = Instant::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let t = now();
        let mut busy = false;
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
            engine.handle_datagram(t, from, &buf);
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
        if t.since(published) >= Duration::millis(100) {
            publish(&engine, transport.as_ref(), &shared, t);
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
    publish(&engine, transport.as_ref(), &shared, now());
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
        })
        .collect();
    let snapshot = SyncSnapshot {
        in_sync: engine.in_sync(),
        stats: engine.stats().clone(),
        transport: transport.stats(),
        peers,
        states: engine.states(),
        deferrals: engine.deferrals(),
    };
    shared.in_sync.store(snapshot.in_sync, Ordering::Relaxed);
    if let Ok(mut slot) = shared.snapshot.lock() {
        *slot = snapshot;
    }
}
