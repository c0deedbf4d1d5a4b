//! The appliance at run time: starts the EAL from the profile, creates the packet pool, starts every port,
//! runs one pinned, DPDK-registered worker thread per worker core, and on SIGINT/SIGTERM stops polling,
//! lets the workers drop what they hold, and stops and closes every port (a memif peer crashes otherwise).

pub mod eal_args;
mod poll;
mod wire;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tandem_config::{Forwarding, PortId, Profile};

use crate::dpdk::eal::Eal;
use crate::dpdk::mempool::PacketPool;
use crate::dpdk::port::{EthPort, PortSetup, PortStats, RxQueue, TxQueue};

/// Options of `tandem run` that are not part of the profile.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Print a one-line summary of the counters this often.
    pub stats_interval: Option<Duration>,
}

/// Counters one worker keeps: written only by that worker, read by anyone.
#[derive(Debug, Default)]
pub struct WorkerCounters {
    /// Packets received.
    pub rx: AtomicU64,
    /// Packets transmitted.
    pub tx: AtomicU64,
    /// Packets dropped because the output queue was full.
    pub tx_full: AtomicU64,
}

impl WorkerCounters {
    /// Adds to a counter that only the calling worker writes (a plain load and store, no locked RMW).
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
}

/// The queues one worker owns: RX and TX queue `w` of every port that has one.
#[derive(Debug)]
struct WorkerQueues {
    rx: Vec<(PortId, RxQueue)>,
    tx: Vec<(PortId, TxQueue)>,
}

/// What `run` reports when the appliance has stopped.
#[derive(Debug)]
pub struct RunSummary {
    /// DPDK's counters per port, with the port's name.
    pub ports: Vec<(String, PortStats)>,
    /// Totals of the workers' counters: received, transmitted, dropped at a full TX queue.
    pub rx: u64,
    /// Packets transmitted by the workers.
    pub tx: u64,
    /// Packets dropped at a full TX queue.
    pub tx_full: u64,
    /// Buffers still in use after shutdown (0 unless something leaked).
    pub mbufs_in_use: u32,
}

/// Pins the calling thread to `core`.
fn pin_to_core(core: usize) -> Result<()> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        bail!("cannot pin a thread to core {core} (does this machine have it?)")
    }
}

/// Runs the appliance described by `profile` until `stop` is set, then shuts it down cleanly.
pub fn run(profile: &Profile, options: &RunOptions, stop: Arc<AtomicBool>) -> Result<RunSummary> {
    let Forwarding::Wire { pairs } = &profile.forwarding else {
        bail!(
            "forwarding mode router is not available yet: use `forwarding: {{mode: wire, pairs: ...}}`"
        );
    };
    let args = eal_args::eal_args(profile);
    let eal = Eal::init(&args).with_context(|| format!("starting DPDK with {}", args.join(" ")))?;
    let pool = PacketPool::create(
        &eal,
        &format!("tandem-{}", profile.node.name),
        profile.dpdk.mbufs,
        profile.dpdk.mbuf_cache,
        profile.dpdk.mbuf_data_size,
    )
    .context("creating the packet pool (with --no-huge, give EAL enough memory with -m)")?;

    let workers = profile.workers.cores.len();
    let mut ports = Vec::new();
    let mut queues: Vec<WorkerQueues> = (0..workers)
        .map(|_| WorkerQueues {
            rx: Vec::new(),
            tx: Vec::new(),
        })
        .collect();
    for (i, port) in profile.ports.iter().enumerate() {
        let setup = PortSetup {
            queues: port.queues,
            rx_descriptors: profile.dpdk.rx_descriptors,
            tx_descriptors: profile.dpdk.tx_descriptors,
            mtu: port.mtu,
            mac: port.mac.map(|m| m.0),
        };
        let name = eal_args::ethdev_name(&port.device);
        let (eth, rx, tx) = EthPort::start(&eal, name, pool, &setup)
            .with_context(|| format!("starting port `{}` ({})", port.name, port.device))?;
        let id = PortId(i as u16);
        for (w, (rx, tx)) in rx.into_iter().zip(tx).enumerate() {
            queues[w].rx.push((id, rx));
            queues[w].tx.push((id, tx));
        }
        ports.push((port.name.clone(), eth));
    }
    let mut peer_of = vec![None; profile.ports.len()];
    for (a, b) in pairs {
        peer_of[usize::from(a.0)] = Some(*b);
        peer_of[usize::from(b.0)] = Some(*a);
    }
    eprintln!(
        "tandem: {} running on {} ({} worker(s); ports: {})",
        profile.node.name,
        crate::dpdk::version(),
        workers,
        ports
            .iter()
            .map(|(n, p)| format!("{n}={}", p.name()))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let counters: Vec<Arc<WorkerCounters>> = (0..workers).map(|_| Arc::default()).collect();
    let polling = poll::Backoff::from_profile(&profile.workers);
    std::thread::scope(|scope| -> Result<()> {
        let mut threads = Vec::new();
        for (w, owned) in queues.into_iter().enumerate() {
            let core = profile.workers.cores[w];
            let (stop, counters, peer_of, eal) = (&stop, &counters[w], &peer_of, &eal);
            let thread = std::thread::Builder::new()
                .name(format!("worker-{w}"))
                .spawn_scoped(scope, move || -> Result<()> {
                    pin_to_core(core)?;
                    let _registered = eal
                        .register_thread()
                        .context("registering a worker with DPDK")?;
                    wire::forward(owned.rx, owned.tx, peer_of, stop, polling, counters);
                    Ok(())
                })
                .context("starting a worker thread")?;
            threads.push(thread);
        }

        let started = Instant::now();
        let mut next_report = options.stats_interval.map(|i| started + i);
        while !stop.load(Ordering::Relaxed) && !threads.iter().any(|t| t.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            if let (Some(at), Some(interval)) = (next_report, options.stats_interval)
                && Instant::now() >= at
            {
                let (rx, tx, full) = totals(&counters);
                eprintln!("stats: rx {rx} tx {tx} tx-full {full}");
                next_report = Some(at + interval);
            }
        }
        stop.store(true, Ordering::Relaxed);
        let mut outcome = Ok(());
        for thread in threads {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => outcome = Err(error),
                Err(_) => outcome = Err(anyhow::anyhow!("a worker thread panicked")),
            }
        }
        outcome
    })?;

    let (rx, tx, tx_full) = totals(&counters);
    let mut port_stats = Vec::new();
    for (name, eth) in ports {
        let stats = eth.stats().unwrap_or_default();
        eth.close()
            .with_context(|| format!("closing port `{name}`"))?;
        port_stats.push((name, stats));
    }
    let summary = RunSummary {
        ports: port_stats,
        rx,
        tx,
        tx_full,
        mbufs_in_use: pool.in_use(),
    };
    eal.cleanup().context("releasing DPDK's resources")?;
    Ok(summary)
}

fn totals(counters: &[Arc<WorkerCounters>]) -> (u64, u64, u64) {
    counters.iter().fold((0, 0, 0), |(rx, tx, full), c| {
        (
            rx + c.rx.load(Ordering::Relaxed),
            tx + c.tx.load(Ordering::Relaxed),
            full + c.tx_full.load(Ordering::Relaxed),
        )
    })
}
