//! `tandem relay`: a link with a fixed one-way delay and optional random loss between two DPDK ports, for
//! tests on a kernel without `netem` (the namespace cluster puts it in the sync link to measure sync and
//! owner redirect over a slow or lossy cluster link). Every frame received on one port leaves on the other
//! `delay` later, in order, unless the loss draw drops it (counted as lost); a frame that finds the
//! direction's queue full is dropped and counted.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::dpdk::eal::Eal;
use crate::dpdk::mbuf::Mbuf;
use crate::dpdk::mempool::PacketPool;
use crate::dpdk::port::{EthPort, PortSetup, RxQueue, TxQueue};

/// Frames one direction may hold (the pool has room for both directions' and the drivers').
const QUEUE: usize = 8192;
/// Buffers in the pool.
const BUFFERS: u32 = 32_767;
/// Frames read per burst.
const BURST: usize = 32;
/// The longest nap when idle: small against any delay worth relaying.
const NAP: Duration = Duration::from_micros(20);

/// What the relay is asked to do.
#[derive(Clone, Debug)]
pub struct RelaySpec {
    /// The two DPDK devices (vdev strings such as `net_af_packet0,iface=r0`).
    pub devices: [String; 2],
    /// One-way delay, both directions.
    pub delay: Duration,
    /// MTU of both ports.
    pub mtu: u16,
    /// The share of frames dropped at random, each direction (0 to 1).
    pub loss: f64,
    /// Seed of the loss draws.
    pub seed: u64,
}

/// What the relay did, per direction (0: first device to second).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// Frames passed on.
    pub relayed: [u64; 2],
    /// Frames dropped on a full queue.
    pub dropped: [u64; 2],
    /// Frames dropped by the loss draw.
    pub lost: [u64; 2],
}

/// The loss draws: xorshift64*, deterministic for a seed.
struct Draws(u64);

impl Draws {
    /// Whether the next frame is lost, at rate `loss`.
    fn lose(&mut self, loss: f64) -> bool {
        if loss <= 0.0 {
            return false;
        }
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        ((x >> 11) as f64 / (1u64 << 53) as f64) < loss
    }
}

/// One direction: what arrived, and when each frame is due to leave.
struct Direction {
    rx: RxQueue,
    tx: TxQueue,
    queue: VecDeque<(Instant, Mbuf)>,
    burst: Vec<Mbuf>,
    out: Vec<Mbuf>,
}

impl Direction {
    /// Takes what arrived, but for what the loss draws drop; returns how many frames came.
    fn receive(
        &mut self,
        due: Instant,
        loss: (&mut Draws, f64),
        dropped: &mut u64,
        lost: &mut u64,
    ) -> usize {
        let n = self.rx.recv(&mut self.burst, BURST);
        let (draws, rate) = loss;
        for m in self.burst.drain(..) {
            if draws.lose(rate) {
                *lost += 1;
            } else if self.queue.len() >= QUEUE {
                *dropped += 1;
            } else {
                self.queue.push_back((due, m));
            }
        }
        n
    }

    /// Sends what is due by `now`; returns how many frames left.
    fn send_due(&mut self, now: Instant, relayed: &mut u64) -> usize {
        while self.out.len() < BURST && self.queue.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((_, m)) = self.queue.pop_front() {
                self.out.push(m);
            }
        }
        let sent = self.tx.send(&mut self.out);
        *relayed += sent as u64;
        sent
    }

    fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(t, _)| *t)
    }
}

/// The EAL arguments for the relay's two devices.
fn eal_args(spec: &RelaySpec) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "--no-huge".into(),
        "--no-pci".into(),
        "--no-shconf".into(),
        "-m".into(),
        "256".into(),
        format!("--file-prefix=tandem-relay-{}", std::process::id()),
        "--lcores".into(),
        "0@0".into(),
    ];
    args.extend(spec.devices.iter().map(|d| format!("--vdev={d}")));
    args
}

/// Runs the relay until `stop` is set.
pub fn run(spec: &RelaySpec, stop: &AtomicBool) -> Result<RelayStats> {
    let eal = Eal::init(&eal_args(spec)).context("starting DPDK for the relay")?;
    // Headroom, the frame, and the drivers' own margins (af_xdp wants more than the frame).
    let data_room = (spec.mtu + 18 + 128 + 64).max(2176);
    let pool = PacketPool::create(&eal, "relay", BUFFERS, 256, data_room).context("packet pool")?;
    let setup = PortSetup {
        rx_queues: 1,
        tx_queues: 1,
        rx_descriptors: 1024,
        tx_descriptors: 1024,
        mtu: spec.mtu,
        mac: None,
    };
    let mut ports = Vec::new();
    let mut queues = Vec::new();
    for device in &spec.devices {
        let name = device.split(',').next().unwrap_or(device);
        let (port, rx, tx) = EthPort::start(&eal, name, pool, &setup)
            .with_context(|| format!("starting {device}"))?;
        let rx = rx.into_iter().next().context("an RX queue")?;
        let tx = tx.into_iter().next().context("a TX queue")?;
        ports.push(port);
        queues.push((rx, tx));
    }
    let (second, first) = (queues.pop(), queues.pop());
    let (Some((rx0, tx0)), Some((rx1, tx1))) = (first, second) else {
        anyhow::bail!("two ports are needed");
    };
    let direction = |rx, tx| Direction {
        rx,
        tx,
        queue: VecDeque::with_capacity(QUEUE),
        burst: Vec::with_capacity(BURST),
        out: Vec::with_capacity(BURST),
    };
    // Frames received on port 0 leave by port 1, and the other way.
    let mut dirs = [direction(rx0, tx1), direction(rx1, tx0)];
    let mut stats = RelayStats::default();
    let mut draws = Draws(spec.seed.max(1));
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut busy = 0;
        for (i, d) in dirs.iter_mut().enumerate() {
            busy += d.receive(
                now + spec.delay,
                (&mut draws, spec.loss),
                &mut stats.dropped[i],
                &mut stats.lost[i],
            );
            busy += d.send_due(now, &mut stats.relayed[i]);
        }
        if busy == 0 {
            let next = dirs.iter().filter_map(Direction::next_due).min();
            let nap = next.map_or(NAP, |t| t.saturating_duration_since(now).min(NAP));
            if !nap.is_zero() {
                std::thread::sleep(nap);
            }
        }
    }
    drop(dirs);
    for port in ports {
        port.close().context("closing a relay port")?;
    }
    Ok(stats)
}
