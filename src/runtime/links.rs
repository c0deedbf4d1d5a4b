//! The bounded lock-free queues between threads: per worker, events to the sync core and operations back;
//! packets punted to the control thread and packets it injects; next hops to resolve and neighbour
//! updates; frames redirected to their states' owners and frames peers redirected here; and a request flag
//! for `tandem show states`. A full queue is reported to the sender, never waited on.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_queue::ArrayQueue;
use tandem_config::PortId;
use tandem_dataplane::route::NextHop;
use tandem_dataplane::table::State;
use tandem_dataplane::worker::{ControlOp, WorkerLinks};
use tandem_sync::event::{LocalEvent, PeerOp};
use tandem_sync::identity::CreatorId;
use tandem_sync::time::Instant;

use super::io::DispatchQueues;
use crate::dpdk::mbuf::Mbuf;

/// Events one worker may have queued for the sync core.
pub const EVENT_QUEUE: usize = 65_536;
/// Operations the sync core may have queued for one worker.
pub const OP_QUEUE: usize = 65_536;
/// Packets punted to, or injected by, the control thread per worker.
pub const PUNT_QUEUE: usize = 1024;
/// Frames one worker may have waiting to be redirected to their owners, and redirected to it.
pub const REDIRECT_QUEUE: usize = 4096;
/// Peers whose liveness workers can see (the engine's peer masks are 64 bits wide).
pub const MAX_OWNERS: usize = 64;

/// Everything shared between one worker and the other threads.
#[derive(Debug)]
pub struct WorkerChannels {
    /// Worker to sync core.
    pub events: ArrayQueue<LocalEvent>,
    /// Sync core to worker.
    pub ops: ArrayQueue<PeerOp>,
    /// Control thread to worker.
    pub control: ArrayQueue<ControlOp>,
    /// Worker to control thread: ARP, neighbour discovery, VRRP, packets for the appliance.
    pub punt: ArrayQueue<(PortId, Mbuf)>,
    /// Control thread to worker: packets to send (ARP answers, neighbour solicitations).
    pub inject: ArrayQueue<(PortId, Mbuf)>,
    /// Worker to control thread: next hops to resolve.
    pub resolve: ArrayQueue<NextHop>,
    /// Worker to sync core: frames for their states' owners (owner redirect).
    pub to_owner: ArrayQueue<(CreatorId, PortId, Mbuf)>,
    /// Sync core to worker: frames peers redirected to this node as their states' owner.
    pub redirected: ArrayQueue<(PortId, Mbuf)>,
    /// Set by the control thread to ask for a copy of the worker's states.
    pub dump_requested: AtomicBool,
    /// The buffer of that copy (locked once per request, never per packet).
    pub dump: Mutex<StateDump>,
}

/// A copy of a worker's states for `show states`. The control thread allocates the buffer and formats the
/// copy; the worker only fills it, up to its capacity, so it neither allocates nor formats.
#[derive(Debug, Default)]
pub enum StateDump {
    /// Nothing asked.
    #[default]
    Idle,
    /// An empty buffer for the worker to fill.
    Requested(Vec<State>),
    /// The worker's states at `at`, as many as fitted.
    Filled {
        /// The copies.
        states: Vec<State>,
        /// The worker's clock when it copied them.
        at: Instant,
    },
}

impl WorkerChannels {
    /// Empty channels.
    pub fn new() -> Arc<WorkerChannels> {
        Arc::new(WorkerChannels {
            events: ArrayQueue::new(EVENT_QUEUE),
            ops: ArrayQueue::new(OP_QUEUE),
            control: ArrayQueue::new(PUNT_QUEUE),
            punt: ArrayQueue::new(PUNT_QUEUE),
            inject: ArrayQueue::new(PUNT_QUEUE),
            resolve: ArrayQueue::new(PUNT_QUEUE),
            to_owner: ArrayQueue::new(REDIRECT_QUEUE),
            redirected: ArrayQueue::new(REDIRECT_QUEUE),
            dump_requested: AtomicBool::new(false),
            dump: Mutex::new(StateDump::Idle),
        })
    }
}

/// The peers that are alive, by host id, as the sync core last saw them: what workers read to decide
/// whether a state's owner can take its frames. Written by the sync core alone; read without locks.
#[derive(Debug)]
pub struct Owners {
    alive: [AtomicU32; MAX_OWNERS],
    count: AtomicUsize,
    /// Peers alive, those whose host id is not known yet included.
    peers: AtomicUsize,
}

impl Owners {
    /// No peer alive.
    pub fn new() -> Arc<Owners> {
        Arc::new(Owners {
            alive: std::array::from_fn(|_| AtomicU32::new(0)),
            count: AtomicUsize::new(0),
            peers: AtomicUsize::new(0),
        })
    }

    /// Publishes how many peers are alive now, and the host ids of those whose id is known (at most
    /// [`MAX_OWNERS`]).
    pub fn publish(&self, peers: usize, alive: impl Iterator<Item = CreatorId>) {
        self.peers.store(peers, Ordering::Relaxed);
        let mut n = 0;
        for id in alive.take(MAX_OWNERS) {
            self.alive[n].store(id.0, Ordering::Relaxed);
            n += 1;
        }
        self.count.store(n, Ordering::Release);
    }

    /// Whether any peer is alive.
    pub fn any_alive(&self) -> bool {
        self.peers.load(Ordering::Relaxed) > 0
    }

    /// Whether the peer with host id `id` is alive.
    pub fn is_alive(&self, id: CreatorId) -> bool {
        let n = self.count.load(Ordering::Acquire).min(MAX_OWNERS);
        self.alive[..n]
            .iter()
            .any(|a| a.load(Ordering::Relaxed) == id.0)
    }
}

/// A worker's side of its channels.
#[derive(Debug)]
pub struct QueueLinks {
    /// The channels.
    pub channels: Arc<WorkerChannels>,
    /// The queues to the other workers, for packets whose state another worker holds.
    pub workers: Arc<DispatchQueues>,
    /// Which peers are alive, for owner redirect.
    pub owners: Arc<Owners>,
}

impl WorkerLinks<Mbuf> for QueueLinks {
    fn push_event(&mut self, event: LocalEvent) -> bool {
        self.channels.events.push(event).is_ok()
    }

    fn pop_op(&mut self) -> Option<PeerOp> {
        self.channels.ops.pop()
    }

    fn pop_control(&mut self) -> Option<ControlOp> {
        self.channels.control.pop()
    }

    fn punt(&mut self, port: PortId, packet: Mbuf) -> Result<(), Mbuf> {
        self.channels
            .punt
            .push((port, packet))
            .map_err(|(_, packet)| packet)
    }

    fn resolve(&mut self, hop: NextHop) -> bool {
        self.channels.resolve.push(hop).is_ok()
    }

    fn redirect(&mut self, worker: usize, port: PortId, packet: Mbuf) -> Result<(), Mbuf> {
        self.workers.pass(worker, port, packet)
    }

    fn owner_alive(&self, owner: CreatorId) -> bool {
        self.owners.is_alive(owner)
    }

    fn peers_alive(&self) -> bool {
        self.owners.any_alive()
    }

    fn to_owner(&mut self, owner: CreatorId, port: PortId, packet: Mbuf) -> Result<(), Mbuf> {
        self.channels
            .to_owner
            .push((owner, port, packet))
            .map_err(|(_, _, packet)| packet)
    }

    fn pop_redirected(&mut self) -> Option<(PortId, Mbuf)> {
        self.channels.redirected.pop()
    }
}

impl QueueLinks {
    /// Whether the control thread asked for the states.
    pub fn dump_requested(&self) -> bool {
        self.channels.dump_requested.load(Ordering::Relaxed)
    }
}
