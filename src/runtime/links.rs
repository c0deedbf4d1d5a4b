//! The bounded lock-free queues between threads: per worker, events to the sync core and operations back;
//! packets punted to the control thread and packets it injects; next hops to resolve and neighbour
//! updates; and a request flag for `tandem show states`. A full queue is reported to the sender, never
//! waited on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_queue::ArrayQueue;
use tandem_config::PortId;
use tandem_dataplane::route::NextHop;
use tandem_dataplane::table::State;
use tandem_dataplane::worker::{ControlOp, WorkerLinks};
use tandem_sync::event::{LocalEvent, PeerOp};
use tandem_sync::time::Instant;

use super::io::DispatchQueues;
use crate::dpdk::mbuf::Mbuf;

/// Events one worker may have queued for the sync core.
pub const EVENT_QUEUE: usize = 65_536;
/// Operations the sync core may have queued for one worker.
pub const OP_QUEUE: usize = 65_536;
/// Packets punted to, or injected by, the control thread per worker.
pub const PUNT_QUEUE: usize = 1024;

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
            dump_requested: AtomicBool::new(false),
            dump: Mutex::new(StateDump::Idle),
        })
    }
}

/// A worker's side of its channels.
#[derive(Debug)]
pub struct QueueLinks {
    /// The channels.
    pub channels: Arc<WorkerChannels>,
    /// The queues to the other workers, for packets whose state another worker holds.
    pub workers: Arc<DispatchQueues>,
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
}

impl QueueLinks {
    /// Whether the control thread asked for the states.
    pub fn dump_requested(&self) -> bool {
        self.channels.dump_requested.load(Ordering::Relaxed)
    }
}
