//! Wire-mode forwarding without state: every packet received on one port of a pair leaves unchanged by the
//! other. This is the first forwarder; the stateful worker of the dataplane crate takes its place once
//! rules and states run on DPDK.

use std::sync::atomic::{AtomicBool, Ordering};

use tandem_config::PortId;

use super::WorkerCounters;
use super::poll::Backoff;
use crate::dpdk::mbuf::Mbuf;
use crate::dpdk::port::{RxQueue, TxQueue};

/// Packets taken from a queue in one poll.
const BURST: usize = 32;

/// Forwards between the ports of each pair until `stop` is set.
pub fn forward(
    mut rx: Vec<(PortId, RxQueue)>,
    mut tx: Vec<(PortId, TxQueue)>,
    peer_of: &[Option<PortId>],
    stop: &AtomicBool,
    mut backoff: Backoff,
    counters: &WorkerCounters,
) {
    let mut burst: Vec<Mbuf> = Vec::with_capacity(BURST);
    while !stop.load(Ordering::Relaxed) {
        let mut busy = false;
        for (port, queue) in rx.iter_mut() {
            let got = queue.recv(&mut burst, BURST);
            if got == 0 {
                continue;
            }
            busy = true;
            WorkerCounters::add(&counters.rx, got as u64);
            let out = peer_of.get(usize::from(port.0)).copied().flatten();
            if let Some((_, txq)) = out.and_then(|out| tx.iter_mut().find(|(p, _)| *p == out)) {
                let sent = txq.send(&mut burst);
                WorkerCounters::add(&counters.tx, sent as u64);
            }
            // Whatever could not be sent is dropped (freed) here and counted.
            WorkerCounters::add(&counters.tx_full, burst.len() as u64);
            burst.clear();
        }
        backoff.after_poll(busy);
    }
}
