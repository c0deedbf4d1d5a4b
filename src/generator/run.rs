//! `tandem gen` on DPDK: starts the EAL and the profile's ports (one RX and one TX queue each), waits for
//! their links, then polls: a burst in from every port into the engine, the engine's timers and new
//! connections, and bursts out, built straight into buffers from the pool. Nothing is allocated per
//! packet. When the run is over it stops and closes the ports and returns the summary.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tandem_config::{GenProfile, PollMode};
use tandem_dataplane::wire::ethernet::MacAddr;
use tandem_sync::time::{Duration, Instant};

use super::engine::Engine;
use super::report::{self, Progress};
use crate::dpdk::eal::Eal;
use crate::dpdk::mbuf::Mbuf;
use crate::dpdk::mempool::PacketPool;
use crate::dpdk::port::{EthPort, MAX_BURST, PortSetup, RxQueue, TxQueue};
use crate::runtime::eal_args;
use crate::runtime::poll::Backoff;

/// How long the ports' links may take to come up (a memif peer must connect).
const LINK_WAIT: std::time::Duration = std::time::Duration::from_secs(20);
/// Frames built per poll, over all ports.
const BUILD_PER_POLL: usize = MAX_BURST;

/// Options of a run.
#[derive(Clone, Copy, Debug)]
pub struct GenOptions {
    /// Print the progress line every second: `None` prints it when stderr is a terminal.
    pub progress: Option<bool>,
}

/// A monotonic clock in the engine's microseconds.
#[derive(Debug)]
struct Clock(std::time::Instant);

impl Clock {
    fn now(&self) -> Instant {
        // Starts at 1 s so that no time is ever before the start.
        Instant(1_000_000 + self.0.elapsed().as_micros() as u64)
    }
}

struct Port {
    eth: EthPort,
    rx: RxQueue,
    tx: TxQueue,
    /// Frames built for this port and not yet taken by its queue.
    out: Vec<Mbuf>,
}

/// Runs the generator described by `profile` until its load is done or `stop` is set; returns the JSON
/// summary.
pub fn run(profile: &GenProfile, options: GenOptions, stop: Arc<AtomicBool>) -> Result<Value> {
    let args = eal_args::gen_eal_args(profile);
    let eal = Eal::init(&args).with_context(|| format!("starting DPDK with {}", args.join(" ")))?;
    let result = run_on(&eal, profile, options, &stop);
    eal.cleanup().context("stopping DPDK")?;
    result
}

fn run_on(
    eal: &Eal,
    profile: &GenProfile,
    options: GenOptions,
    stop: &AtomicBool,
) -> Result<Value> {
    let pool = PacketPool::create(
        eal,
        "tandem-gen",
        profile.dpdk.mbufs,
        profile.dpdk.mbuf_cache,
        profile.dpdk.mbuf_data_size,
    )
    .context("creating the packet pool (with --no-huge, give EAL enough memory with -m)")?;
    let mss = profile.tcp.as_ref().map_or(1460, |t| t.mss);
    let udp = profile.udp.as_ref().map_or(0, |u| u.payload);
    let mtu = 1500u16
        .max(mss.saturating_add(40))
        .max(udp.saturating_add(28));
    let mut ports = Vec::with_capacity(profile.ports.len());
    for p in &profile.ports {
        let setup = PortSetup {
            rx_queues: 1,
            tx_queues: 1,
            rx_descriptors: profile.dpdk.rx_descriptors,
            tx_descriptors: profile.dpdk.tx_descriptors,
            mtu,
            mac: p.mac.map(|m| m.0),
        };
        let (eth, rx, tx) = EthPort::start(eal, eal_args::ethdev_name(&p.device), pool, &setup)
            .with_context(|| format!("starting port `{}` ({})", p.name, p.device))?;
        let (Some(rx), Some(tx)) = (rx.into_iter().next(), tx.into_iter().next()) else {
            bail!("port `{}` has no queues", p.name);
        };
        ports.push(Port {
            eth,
            rx,
            tx,
            out: Vec::with_capacity(2 * MAX_BURST),
        });
    }
    wait_for_links(profile, &ports, stop)?;

    let macs: Vec<MacAddr> = ports.iter().map(|p| MacAddr(p.eth.mac())).collect();
    let clock = Clock(std::time::Instant::now());
    let start = clock.now();
    let mut engine = Engine::new(profile, &macs, start);
    let progress = options
        .progress
        .unwrap_or_else(|| std::io::stderr().is_terminal());
    let end = poll_loop(&mut engine, &mut ports, pool, &clock, progress, stop);
    engine.finish(end);

    // Stop the data path before closing, so a memif peer still polling sees an orderly close.
    let mut names = Vec::with_capacity(ports.len());
    for (p, cfg) in ports.into_iter().zip(&profile.ports) {
        let Port { eth, rx, tx, out } = p;
        drop((rx, tx, out));
        eth.close()
            .with_context(|| format!("closing port `{}`", cfg.name))?;
        names.push(cfg.name.clone());
    }
    Ok(report::summary(
        &names,
        engine.counters(),
        end.since(start),
        Duration::millis(profile.duration_ms),
    ))
}

fn wait_for_links(profile: &GenProfile, ports: &[Port], stop: &AtomicBool) -> Result<()> {
    let deadline = std::time::Instant::now() + LINK_WAIT;
    loop {
        let down: Vec<&str> = ports
            .iter()
            .zip(&profile.ports)
            .filter(|(p, _)| !p.eth.link_up())
            .map(|(_, cfg)| cfg.name.as_str())
            .collect();
        if down.is_empty() {
            return Ok(());
        }
        if stop.load(Ordering::Relaxed) || std::time::Instant::now() >= deadline {
            bail!(
                "the link of port(s) {} did not come up within {} s",
                down.join(", "),
                LINK_WAIT.as_secs()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Polls until the engine is done or `stop` is set; returns the time it ended.
fn poll_loop(
    engine: &mut Engine,
    ports: &mut [Port],
    pool: &'static PacketPool,
    clock: &Clock,
    progress: bool,
    stop: &AtomicBool,
) -> Instant {
    let start = clock.now();
    let mut line = Progress::new(start);
    let mut next_line = start + Duration::secs(1);
    // Adaptive, so that an idle generator (waiting out timeouts) leaves the core to others.
    let mut backoff = Backoff::new(PollMode::Adaptive, std::time::Duration::from_micros(100));
    let mut rx = Vec::with_capacity(MAX_BURST);
    loop {
        let now = clock.now();
        if engine.done(now) || stop.load(Ordering::Relaxed) {
            return now;
        }
        let mut busy = false;
        for (i, port) in ports.iter_mut().enumerate() {
            if port.rx.recv(&mut rx, MAX_BURST) > 0 {
                busy = true;
            }
            for m in rx.drain(..) {
                engine.on_frame(now, i, m.as_ref());
            }
        }
        engine.tick(now);
        busy |= build(engine, ports, pool, now);
        for port in ports.iter_mut() {
            if !port.out.is_empty() {
                port.tx.send(&mut port.out);
            }
        }
        if progress && now >= next_line {
            eprintln!(
                "{}",
                line.line(now, start, engine.counters(), engine.open_connections())
            );
            next_line = now + Duration::secs(1);
        }
        backoff.after_poll(busy);
    }
}

/// Builds up to a burst of the engine's frames into fresh buffers, each on its port's queue; a port whose
/// queue is still full takes nothing more this round. Returns whether anything was built.
fn build(engine: &mut Engine, ports: &mut [Port], pool: &'static PacketPool, now: Instant) -> bool {
    let mut built = 0;
    while built < BUILD_PER_POLL {
        if ports.iter().any(|p| p.out.len() >= MAX_BURST) {
            break;
        }
        let Some(mut m) = pool.alloc() else { break };
        let room = m.tailroom();
        if !m.resize(room) {
            break;
        }
        let Some((port, len)) = engine.poll_frame(now, m.as_mut()) else {
            break;
        };
        if m.resize(len)
            && let Some(p) = ports.get_mut(port)
        {
            p.out.push(m);
        }
        built += 1;
    }
    built > 0
}
