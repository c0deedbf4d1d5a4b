//! A worker's ports on DPDK: the RX and TX queue the worker owns on each port, buffers from the pool, and
//! software dispatch for ports whose NIC cannot spread flows symmetrically over the workers (no RSS, or
//! fewer RX queues than workers). Dispatch computes the same symmetric hash the NIC would, so both
//! directions of a flow, on any port, reach the same worker; the sync core places peers' states with the
//! same function.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;
use tandem_config::PortId;
use tandem_dataplane::counters::Counter;
use tandem_dataplane::flow::{rss_hash, worker_of};
use tandem_dataplane::io::{PacketBuf, PortIo};
use tandem_dataplane::wire::checksum::ChecksumCaps;
use tandem_dataplane::wire::meta::{self, L4};

use crate::dpdk::mbuf::Mbuf;
use crate::dpdk::mempool::PacketPool;
use crate::dpdk::port::{MAX_BURST, RxQueue, TxQueue};

/// Size of the redirection table software dispatch emulates (and that the sync core assumes).
pub const RETA_SIZE: u32 = 512;
/// Packets one worker may have waiting for another, per port.
const DISPATCH_QUEUE: usize = 4096;

impl PacketBuf for Mbuf {
    fn set_len(&mut self, len: usize) -> bool {
        self.resize(len)
    }
}

/// The worker a frame's flow belongs to, by the symmetric hash of its addresses (and ports, for TCP and
/// UDP that are not fragments); non-IP frames go to worker 0.
pub fn owner_of_frame(frame: &[u8], workers: usize) -> usize {
    let Ok(m) = meta::parse_meta(frame, ChecksumCaps::OFFLOADED) else {
        return 0;
    };
    let Some(family) = m.family() else { return 0 };
    let ports = match m.l4 {
        L4::Tcp(t) => Some((t.src_port, t.dst_port)),
        L4::Udp(u) => Some((u.src_port, u.dst_port)),
        _ => None,
    };
    worker_of(rss_hash(family, &m.src, &m.dst, ports), RETA_SIZE, workers)
}

/// Queues between workers for dispatched packets: `queues[to][port]`.
#[derive(Debug)]
pub struct DispatchQueues {
    queues: Vec<Vec<ArrayQueue<Mbuf>>>,
}

impl DispatchQueues {
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
    workers: usize,
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
    /// Worker `me` of `workers`, with its queue of each port (`None` where the port has none for it).
    pub fn new(
        me: usize,
        workers: usize,
        rx: Vec<Option<RxQueue>>,
        tx: Vec<Option<TxQueue>>,
        dispatch: Vec<bool>,
        queues: Arc<DispatchQueues>,
        pool: &'static PacketPool,
    ) -> DpdkIo {
        DpdkIo {
            me,
            workers,
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
            let owner = owner_of_frame(m.as_ref(), self.workers);
            if owner == self.me {
                out.push(m);
            } else if self.queues.queues[owner][p].push(m).is_err() {
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
