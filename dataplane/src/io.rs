//! The worker's view of its ports: receive a burst, send a burst, get a fresh buffer. DPDK implements it in
//! the root package over mbufs; [`MemoryIo`] implements it over byte vectors for tests and simulations.
//! A send hands over the packets it took and leaves the rest with the caller, never silently dropping.

use std::collections::VecDeque;

use tandem_config::PortId;

/// A packet buffer the worker reads and rewrites in place.
pub trait PacketBuf: AsRef<[u8]> + AsMut<[u8]> {
    /// Sets the packet's length, growing into the buffer's room or cutting; false (unchanged) if it cannot.
    fn set_len(&mut self, len: usize) -> bool;
}

impl PacketBuf for Vec<u8> {
    fn set_len(&mut self, len: usize) -> bool {
        self.resize(len, 0);
        true
    }
}

/// The queues one worker owns: one RX and one TX queue of each port it serves.
pub trait PortIo {
    /// The packet buffer type.
    type Buf: PacketBuf;

    /// Receives up to `max` packets from `port`, appending them to `out`; returns how many.
    fn recv(&mut self, port: PortId, out: &mut Vec<Self::Buf>, max: usize) -> usize;

    /// Transmits packets from the front of `pkts` on `port`; those sent are removed, the rest stay.
    fn send(&mut self, port: PortId, pkts: &mut Vec<Self::Buf>) -> usize;

    /// A new, empty buffer for a packet the worker originates; `None` when none is free.
    fn alloc(&mut self) -> Option<Self::Buf>;
}

/// Ports made of in-memory queues: tests and simulations put frames in and take frames out.
#[derive(Debug, Default)]
pub struct MemoryIo {
    rx: Vec<VecDeque<Vec<u8>>>,
    tx: Vec<Vec<Vec<u8>>>,
    /// Most frames a TX queue takes per `send` call; `usize::MAX` unless a test wants back-pressure.
    pub tx_burst_limit: usize,
    /// Buffers still available to `alloc`; `usize::MAX` unless a test wants exhaustion.
    pub buffers_left: usize,
}

impl MemoryIo {
    /// `ports` ports with empty queues.
    pub fn new(ports: usize) -> MemoryIo {
        MemoryIo {
            rx: (0..ports).map(|_| VecDeque::new()).collect(),
            tx: (0..ports).map(|_| Vec::new()).collect(),
            tx_burst_limit: usize::MAX,
            buffers_left: usize::MAX,
        }
    }

    /// Queues a frame as if it had arrived on `port`.
    pub fn inject(&mut self, port: PortId, frame: Vec<u8>) {
        self.rx[usize::from(port.0)].push_back(frame);
    }

    /// Takes every frame sent on `port` so far.
    pub fn take_sent(&mut self, port: PortId) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.tx[usize::from(port.0)])
    }

    /// Frames waiting to be received on `port`.
    pub fn pending(&self, port: PortId) -> usize {
        self.rx[usize::from(port.0)].len()
    }
}

impl PortIo for MemoryIo {
    type Buf = Vec<u8>;

    fn recv(&mut self, port: PortId, out: &mut Vec<Vec<u8>>, max: usize) -> usize {
        let queue = &mut self.rx[usize::from(port.0)];
        let n = max.min(queue.len());
        out.extend(queue.drain(..n));
        n
    }

    fn send(&mut self, port: PortId, pkts: &mut Vec<Vec<u8>>) -> usize {
        let n = pkts.len().min(self.tx_burst_limit);
        self.tx[usize::from(port.0)].extend(pkts.drain(..n));
        n
    }

    fn alloc(&mut self) -> Option<Vec<u8>> {
        if self.buffers_left == 0 {
            return None;
        }
        self.buffers_left = self.buffers_left.saturating_sub(1);
        Some(Vec::with_capacity(128))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_out_in_order_and_unsent_ones_stay_with_the_caller() {
        let mut io = MemoryIo::new(2);
        for i in 0..5u8 {
            io.inject(PortId(0), vec![i]);
        }
        let mut burst = Vec::new();
        assert_eq!(io.recv(PortId(0), &mut burst, 3), 3);
        assert_eq!(burst, [vec![0], vec![1], vec![2]]);
        io.tx_burst_limit = 2;
        assert_eq!(io.send(PortId(1), &mut burst), 2);
        assert_eq!(burst, [vec![2]]);
        assert_eq!(io.take_sent(PortId(1)), [vec![0], vec![1]]);
        assert_eq!(io.pending(PortId(0)), 2);
    }
}
