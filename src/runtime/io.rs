//! A worker's ports on DPDK: the RX and TX queue the worker owns on each port, buffers from the pool, and
//! software dispatch for ports whose NIC cannot spread flows symmetrically over the workers (no RSS, or
//! fewer RX queues than workers). Dispatch computes the same placement the NICs' tables are programmed
//! with, so both directions of a flow, on any port, reach the same worker, and an ICMP error reaches the
//! worker of the flow it quotes; the sync core places peers' states with the same function. The same
//! queues carry the ICMP errors a worker redirects when a NIC's RSS brought them to the wrong one.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use tandem_config::PortId;
use tandem_dataplane::counters::Counter;
use tandem_dataplane::flow::Placement;
use tandem_dataplane::io::{PacketBuf, PortIo};
use tandem_dataplane::wire::checksum::ChecksumCaps;
use tandem_dataplane::wire::meta;

use crate::dpdk::mbuf::Mbuf;
use crate::dpdk::mempool::PacketPool;
use crate::dpdk::port::{MAX_BURST, RxQueue, TxQueue};

/// Packets one worker may have waiting for another, per port.
const DISPATCH_QUEUE: usize = 4096;

impl PacketBuf for Mbuf {
    fn set_len(&mut self, len: usize) -> bool {
        self.resize(len)
    }
}

/// The worker a frame belongs to under `placement` (for an ICMP error, the worker of the flow it quotes);
/// frames that do not parse, and non-IP frames, go to worker 0.
pub fn owner_of_frame(frame: &[u8], placement: &Placement) -> usize {
    meta::parse_meta(frame, ChecksumCaps::OFFLOADED).map_or(0, |m| placement.owner_of_packet(&m))
}

/// Queues between workers for dispatched packets: `queues[to][port]`.
#[derive(Debug)]
pub struct DispatchQueues {
    queues: Vec<Vec<ArrayQueue<Mbuf>>>,
}

impl DispatchQueues {
    /// Passes `packet`, received on `port`, to worker `to`; gives it back if that worker's queue is full.
    pub fn pass(&self, to: usize, port: PortId, packet: Mbuf) -> Result<(), Mbuf> {
        match self.queues.get(to).and_then(|q| q.get(usize::from(port.0))) {
            Some(queue) => queue.push(packet),
            None => Err(packet),
        }
    }

    /// Queues for `workers` workers and `ports` ports.
    pub fn new(workers: usize, ports: usize) -> Arc<DispatchQueues> {
        Arc::new(DispatchQueues {
            queues: (0..workers)
                .map(|_| {
                    (0..ports)
                        .map(|_| ArrayQueue::new(DISPATCH_QUEUE))
                        .collect()
                })
                .collect(),
        })
    }
}

/// One worker's view of the ports.
#[derive(Debug)]
pub struct DpdkIo {
    me: usize,
    placement: Placement,
    rx: Vec<Option<RxQueue>>,
    tx: Vec<Option<TxQueue>>,
    /// Per port: whether received packets must be dispatched in software.
    dispatch: Vec<bool>,
    queues: Arc<DispatchQueues>,
    pool: &'static PacketPool,
    scratch: Vec<Mbuf>,
    /// Packets dropped because another worker's dispatch queue was full.
    pub dispatch_drops: Arc<Counter>,
}

impl DpdkIo {
    /// Worker `me` of the placement's workers, with its queue of each port (`None` where the port has none
    /// for it).
    pub fn new(
        me: usize,
        placement: Placement,
        rx: Vec<Option<RxQueue>>,
        tx: Vec<Option<TxQueue>>,
        dispatch: Vec<bool>,
        queues: Arc<DispatchQueues>,
        pool: &'static PacketPool,
    ) -> DpdkIo {
        DpdkIo {
            me,
            placement,
            rx,
            tx,
            dispatch,
            queues,
            pool,
            scratch: Vec::with_capacity(MAX_BURST),
            dispatch_drops: Arc::new(Counter::default()),
        }
    }
}

impl PortIo for DpdkIo {
    type Buf = Mbuf;

    fn recv(&mut self, port: PortId, out: &mut Vec<Mbuf>, max: usize) -> usize {
        let p = usize::from(port.0);
        let start = out.len();
        // First what other workers passed on to us.
        if let Some(inbound) = self.queues.queues.get(self.me).and_then(|q| q.get(p)) {
            while out.len() - start < max {
                match inbound.pop() {
                    Some(m) => out.push(m),
                    None => break,
                }
            }
        }
        let room = max - (out.len() - start);
        let Some(Some(rx)) = self.rx.get_mut(p) else {
            return out.len() - start;
        };
        if room == 0 {
            return out.len() - start;
        }
        if !self.dispatch[p] {
            rx.recv(out, room);
            return out.len() - start;
        }
        rx.recv(&mut self.scratch, room);
        for m in self.scratch.drain(..) {
            let owner = owner_of_frame(m.as_ref(), &self.placement);
            if owner == self.me {
                out.push(m);
            } else if self.queues.pass(owner, port, m).is_err() {
                self.dispatch_drops.inc();
            }
        }
        out.len() - start
    }

    fn send(&mut self, port: PortId, pkts: &mut Vec<Mbuf>) -> usize {
        let Some(Some(tx)) = self.tx.get_mut(usize::from(port.0)) else {
            return 0;
        };
        let mut sent = 0;
        // A burst larger than the driver takes at once goes in pieces; what the ring refuses stays.
        while !pkts.is_empty() {
            let n = tx.send(pkts);
            sent += n;
            if n == 0 {
                break;
            }
        }
        sent
    }

    fn alloc(&mut self) -> Option<Mbuf> {
        self.pool.alloc()
    }
}
