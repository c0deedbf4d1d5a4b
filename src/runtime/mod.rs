//! The appliance at run time: starts the EAL from the profile, creates the packet pool and every port, runs
//! one pinned, DPDK-registered worker per worker core (each owning one state shard), the sync core when
//! sync is configured, and the control thread (admin socket, metrics, neighbours) on the main thread. On
//! SIGINT/SIGTERM it stops polling, lets every thread drop what it holds, and stops and closes every port
//! (a memif peer crashes otherwise).

mod control;
pub mod eal_args;
pub mod io;
pub mod links;
pub mod poll;
pub mod sync_thread;
pub mod transport;
pub mod worker_thread;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration as StdDuration;

use anyhow::{Context, Result, bail};
use tandem_config::{PortId, Profile, SyncLink, Transport, UpdatePolicy};
use tandem_dataplane::counters::WorkerCounters;
use tandem_dataplane::flow::Placement;
use tandem_dataplane::route::RouteTable;
use tandem_dataplane::rules::RuleSet;
use tandem_dataplane::wire::meta::Malformed;
use tandem_dataplane::worker::{PortInfo, Worker, WorkerConfig, rule_counters};
use tandem_sync::engine::{Encapsulation, Engine, EngineConfig, Policy};
use tandem_sync::event::StateRecord;
use tandem_sync::identity::CreatorId;
use tandem_sync::policy::WindowBudget;
use tandem_sync::time::{Duration, Instant};

use crate::dpdk::eal::Eal;
use crate::dpdk::mempool::PacketPool;
use crate::dpdk::port::{EthPort, PortSetup, PortStats, RxQueue, TxQueue};

pub use poll::Backoff;

/// Options of `tandem run` that are not part of the profile.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Print a one-line summary of the counters this often.
    pub stats_interval: Option<StdDuration>,
}

/// What `run` reports when the appliance has stopped.
#[derive(Debug)]
pub struct RunSummary {
    /// DPDK's counters per port, with the port's name.
    pub ports: Vec<(String, PortStats)>,
    /// Every worker counter, summed over workers, by name.
    pub counters: Vec<(String, u64)>,
    /// Buffers still in use after shutdown (0 unless something leaked).
    pub mbufs_in_use: u32,
}

/// Microseconds since the appliance started: the time every sans-IO part is given.
#[derive(Clone, Copy, Debug)]
pub struct Clock(std::time::Instant);

impl Clock {
    /// A clock starting now.
    pub fn start() -> Clock {
        Clock(std::time::Instant::now())
    }

    /// The time now.
    pub fn now(&self) -> Instant {
        Instant(self.0.elapsed().as_micros() as u64)
    }
}

/// Pins the calling thread to `core`.
fn pin_to_core(core: usize) -> Result<()> {
    if core_affinity::set_for_current(core_affinity::CoreId { id: core }) {
        Ok(())
    } else {
        bail!("cannot pin a thread to core {core} (does this machine have it?)")
    }
}

/// The worker owning a peer's state: the symmetric hash of its flow, through the placement software
/// dispatch and the NICs' programmed tables use.
fn shard_of(placement: Placement) -> impl Fn(&StateRecord) -> usize + Send {
    move |record: &StateRecord| {
        let (key, _) = tandem_dataplane::worker::key_of_record(record);
        placement.worker_of_key(&key)
    }
}

/// Decides where flows go: the common redirection table is the smallest of the RSS ports' tables (one
/// queue per worker), each such port's NIC table is programmed from it and read back, and a port whose
/// NIC cannot carry it (no RSS, too few queues, a table of another size, a driver that refuses the table)
/// keeps software dispatch, which computes the same placement. `dispatch[p]` is set for those.
fn place_flows(profile: &Profile, ports: &[(String, EthPort)], dispatch: &mut [bool]) -> Placement {
    let workers = profile.workers.cores.len().max(1);
    let tables: Vec<Option<u32>> = (0..ports.len())
        .map(|p| {
            (dispatch[p] && usize::from(profile.ports[p].queues) == workers)
                .then(|| ports[p].1.reta_size())
                .flatten()
        })
        .collect();
    let placement = Placement::new(workers, tables.iter().flatten().copied());
    for (p, table) in tables.iter().enumerate() {
        let Some(size) = *table else { continue };
        if !placement.fits(size) {
            eprintln!(
                "tandem: port `{}`: RSS table of {size} entries cannot carry the common table of {}; software dispatch",
                ports[p].0, placement.reta_size
            );
            continue;
        }
        match ports[p].1.program_reta(|entry| placement.reta_entry(entry)) {
            Ok(()) => dispatch[p] = false,
            Err(e) => eprintln!("tandem: port `{}`: {e}; software dispatch", ports[p].0),
        }
    }
    placement
}

/// The sync engine's settings from the profile.
pub fn engine_config(profile: &Profile, mtu: u16) -> Option<EngineConfig> {
    let sync = profile.sync.as_ref()?;
    let policy = match sync.update_policy {
        UpdatePolicy::WindowAware => Policy::WindowAware {
            budget: WindowBudget {
                sync_delay: Duration::micros(u64::from(sync.sync_delay_us)),
                ..WindowBudget::default()
            },
        },
        UpdatePolicy::Classic {
            max_updates,
            interval_ms,
        } => Policy::Classic {
            max_updates: u16::from(max_updates),
            interval: Duration::millis(u64::from(interval_ms)),
        },
    };
    Some(EngineConfig {
        creator: CreatorId(profile.node.host_id),
        limits: tandem_sync::engine::PeerLimits {
            states: sync
                .peer_limits
                .states_per_peer
                .unwrap_or(profile.limits.states) as usize,
            requests_per_sec: sync.peer_limits.requests_per_sec,
        },
        workers: profile.workers.cores.len().max(1),
        mtu: sync.mtu.unwrap_or(mtu),
        encapsulation: match sync.transport {
            Transport::Udp { .. } => Encapsulation::Udp,
            _ => Encapsulation::Ip,
        },
        multicast: matches!(sync.transport, Transport::Multicast { .. }),
        peers: sync
            .peers
            .iter()
            .map(|p| (p.address, p.host_id.map(CreatorId)))
            .collect(),
        policy,
        flush_deadline: Duration::micros(u64::from(sync.flush_deadline_us)),
        defer_timeout: sync
            .defer
            .enabled
            .then(|| Duration::micros(u64::from(sync.defer.timeout_us))),
        peer_dead: Duration::millis(u64::from(sync.peer_dead_ms)),
        keepalive: Duration::millis(u64::from(sync.keepalive_ms)),
        bulk_rate: u64::from(sync.bulk_rate_mbit) * 1_000_000 / 8,
        bulk_timeout: Duration::millis(u64::from(sync.bulk_timeout_ms)),
        bulk_retries: sync.bulk_retries,
        request_interval: Duration::millis(50),
        delivery: sync
            .delivery
            .acknowledged
            .then(|| tandem_sync::engine::DeliveryConfig {
                epoch: run_epoch(),
                ack_delay: Duration::micros(u64::from(sync.delivery.ack_delay_us)),
                resend_after: Duration::millis(u64::from(sync.delivery.resend_after_ms)),
                give_up: Duration::millis(u64::from(sync.peer_dead_ms)),
                queue_limit: sync.delivery.resend_queue as usize,
            }),
    })
}

/// This run's epoch for acknowledged delivery: different on every start (the clock's nanoseconds mixed
/// with the process id), never 0.
fn run_epoch() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos ^ (u64::from(std::process::id()) << 32);
    x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 29;
    (x as u32).max(1)
}

/// The IPv4 address of a kernel interface, read from `ip -o -4 addr show dev IF`.
fn kernel_interface_address(interface: &str) -> Result<Ipv4Addr> {
    let out = std::process::Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", interface])
        .output()
        .with_context(|| format!("running `ip addr show dev {interface}`"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("interface {interface} has no IPv4 address; set sync.source"))
}

/// A kernel interface's MTU, from sysfs.
fn kernel_interface_mtu(interface: &str) -> Option<u16> {
    std::fs::read_to_string(format!("/sys/class/net/{interface}/mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Runs the appliance described by `profile` until `stop` is set, then shuts it down cleanly.
pub fn run(profile: &Profile, options: &RunOptions, stop: Arc<AtomicBool>) -> Result<RunSummary> {
    let clock = Clock::start();
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
    let sync_port = profile.sync_port();
    let mut ports: Vec<(String, EthPort)> = Vec::new();
    let mut rx_of: Vec<Vec<Option<RxQueue>>> = (0..workers).map(|_| Vec::new()).collect();
    let mut tx_of: Vec<Vec<Option<TxQueue>>> = (0..workers).map(|_| Vec::new()).collect();
    let mut dispatch = Vec::new();
    let mut infos = Vec::new();
    let mut sync_queues = None;
    for (i, port) in profile.ports.iter().enumerate() {
        let is_sync = sync_port == Some(PortId(i as u16));
        let (rxq, txq) = if is_sync {
            (1, 1)
        } else {
            (port.queues, workers as u16)
        };
        let setup = PortSetup {
            rx_queues: rxq,
            tx_queues: txq,
            rx_descriptors: profile.dpdk.rx_descriptors,
            tx_descriptors: profile.dpdk.tx_descriptors,
            mtu: port.mtu,
            mac: port.mac.map(|m| m.0),
        };
        let name = eal_args::ethdev_name(&port.device);
        let (eth, rx, tx) = EthPort::start(&eal, name, pool, &setup)
            .with_context(|| format!("starting port `{}` ({})", port.name, port.device))?;
        infos.push(PortInfo {
            mac: eth.mac(),
            mtu: port.mtu,
        });
        if is_sync {
            sync_queues = rx.into_iter().zip(tx).next();
            for w in 0..workers {
                rx_of[w].push(None);
                tx_of[w].push(None);
            }
            dispatch.push(false);
        } else {
            // Decided once every port is open and the common redirection table is known.
            dispatch.push(workers > 1);
            let mut rx = rx.into_iter().map(Some).collect::<Vec<_>>();
            let mut tx = tx.into_iter().map(Some).collect::<Vec<_>>();
            for w in 0..workers {
                rx_of[w].push(rx.get_mut(w).and_then(Option::take));
                tx_of[w].push(tx.get_mut(w).and_then(Option::take));
            }
        }
        ports.push((port.name.clone(), eth));
    }
    let placement = place_flows(profile, &ports, &mut dispatch);
    let rules = Arc::new(RuleSet::compile(&profile.rules));
    let routes = Arc::new(RouteTable::from_profile(profile));
    let id_base = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs())
        << 32;
    let channels: Vec<_> = (0..workers).map(|_| links::WorkerChannels::new()).collect();
    let counters: Vec<Arc<WorkerCounters>> = (0..workers)
        .map(|_| Arc::new(WorkerCounters::new(Malformed::COUNT)))
        .collect();
    let rule_stats: Vec<_> = (0..workers)
        .map(|_| rule_counters(profile.rules.len()))
        .collect();
    let dispatch_queues = io::DispatchQueues::new(workers, profile.ports.len());
    let data_ports: Vec<PortId> = profile.data_ports().map(|(id, _)| id).collect();
    let backoff = Backoff::from_profile(&profile.workers);
    let sync_shared = Arc::new(sync_thread::SyncShared::default());
    let owners = links::Owners::new();

    // The cluster's keys, when sync is authenticated: read before anything starts.
    let keyring = match profile.sync.as_ref().and_then(|s| s.auth_key_file.as_ref()) {
        Some(path) => Some(transport::load_keyring(path)?),
        None => None,
    };
    // What the authentication trailer takes of every sync datagram.
    let auth_overhead = if keyring.is_some() {
        tandem_config::AUTH_OVERHEAD
    } else {
        0
    };
    // The largest packet the sync link carries: owner redirect's frames must fit it whole.
    let sync_mtu = match profile.sync.as_ref() {
        None => 1500,
        Some(s) => s.mtu.unwrap_or_else(|| match &s.link {
            SyncLink::Port(id) => profile.port(*id).mtu,
            SyncLink::Kernel { interface } => kernel_interface_mtu(interface).unwrap_or(1500),
        }),
    } - auth_overhead;
    let engine = match engine_config(profile, 1500) {
        Some(mut cfg) => {
            if let Some(id) = sync_port {
                cfg.mtu = profile
                    .sync
                    .as_ref()
                    .and_then(|s| s.mtu)
                    .unwrap_or(profile.port(id).mtu);
            }
            cfg.mtu -= auth_overhead;
            Some(Engine::new(cfg, shard_of(placement), clock.now()).context("sync engine")?)
        }
        None => None,
    };
    let transport: Option<(Box<dyn transport::SyncTransport>, Ipv4Addr)> = match profile
        .sync
        .as_ref()
    {
        None => None,
        Some(sync) => {
            let group = match sync.transport {
                Transport::Multicast { group } => group,
                _ => tandem_config::PFSYNC_GROUP,
            };
            let udp_port = match sync.transport {
                Transport::Udp { port } => Some(port),
                _ => None,
            };
            let multicast = matches!(sync.transport, Transport::Multicast { .. });
            match &sync.link {
                SyncLink::Kernel { interface } => {
                    let local = match sync.source {
                        Some(a) => a,
                        None => kernel_interface_address(interface)?,
                    };
                    let addressing = transport::Addressing {
                        local,
                        group,
                        udp_port,
                    };
                    let link: Box<dyn transport::SyncTransport> = Box::new(
                        transport::KernelTransport::open(interface, addressing, multicast)
                            .with_context(|| format!("opening the sync socket on {interface}"))?,
                    );
                    Some((link, local))
                }
                SyncLink::Port(id) => {
                    let local = sync
                        .source
                        .or_else(|| {
                            profile
                                .port(*id)
                                .addresses
                                .iter()
                                .find_map(|a| match a.addr {
                                    std::net::IpAddr::V4(v4) => Some(v4),
                                    std::net::IpAddr::V6(_) => None,
                                })
                        })
                        .context("the sync port needs an IPv4 address (or set sync.source)")?;
                    let (rx, tx) = sync_queues.take().context("sync port queues")?;
                    let mac = infos[usize::from(id.0)].mac;
                    let addressing = transport::Addressing {
                        local,
                        group,
                        udp_port,
                    };
                    let link: Box<dyn transport::SyncTransport> =
                        Box::new(transport::PortTransport::new(rx, tx, pool, mac, addressing));
                    Some((link, local))
                }
            }
        }
    };
    // With authentication, every datagram is sealed and checked between the link and the sync core.
    let transport = match (transport, keyring) {
        (Some((link, local)), Some(ring)) => {
            let start = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as u32);
            let sealed: Box<dyn transport::SyncTransport> =
                Box::new(transport::AuthTransport::new(link, ring, local, start));
            Some(sealed)
        }
        (link, _) => link.map(|(link, _)| link),
    };

    // The threads stop on their own flag, set after the control thread's goodbyes (`stop` is the
    // signal's).
    let threads_stop = AtomicBool::new(false);
    std::thread::scope(|scope| -> Result<()> {
        let mut threads = Vec::new();
        for w in 0..workers {
            let core = profile.workers.cores[w];
            let mut cfg = WorkerConfig::from_profile(profile, w, infos.clone(), id_base);
            cfg.placement = placement;
            let worker = Worker::new(
                cfg,
                rules.clone(),
                routes.clone(),
                counters[w].clone(),
                rule_stats[w].clone(),
                clock.now(),
            );
            let io = io::DpdkIo::new(
                w,
                placement,
                std::mem::take(&mut rx_of[w]),
                std::mem::take(&mut tx_of[w]),
                dispatch.clone(),
                dispatch_queues.clone(),
                pool,
            );
            let thread = worker_thread::WorkerThread {
                worker,
                io,
                links: links::QueueLinks {
                    channels: channels[w].clone(),
                    workers: dispatch_queues.clone(),
                    owners: owners.clone(),
                },
                ports: data_ports.clone(),
                backoff,
            };
            let (stop, eal) = (&threads_stop, &eal);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("worker-{w}"))
                    .spawn_scoped(scope, move || -> Result<()> {
                        pin_to_core(core)?;
                        let _registered = eal
                            .register_thread()
                            .context("registering a worker with DPDK")?;
                        thread.run(stop, || clock.now());
                        Ok(())
                    })
                    .context("starting a worker thread")?,
            );
        }
        if let (Some(engine), Some(transport), Some(sync)) =
            (engine, transport, profile.sync.as_ref())
        {
            let (stop, eal, shared, channels, owners) = (
                &threads_stop,
                &eal,
                sync_shared.clone(),
                channels.clone(),
                owners.clone(),
            );
            let redirect_io =
                (sync.redirect != tandem_config::Redirect::Off).then(|| sync_thread::RedirectIo {
                    pool,
                    placement,
                    mtu: usize::from(sync_mtu),
                    headers: 20
                        + if matches!(sync.transport, Transport::Udp { .. }) {
                            8
                        } else {
                            0
                        },
                });
            let core = sync.core;
            let sync_backoff = Backoff::new(
                profile.workers.polling,
                StdDuration::from_micros(u64::from(profile.workers.idle_sleep_us).min(50)),
            );
            threads.push(
                std::thread::Builder::new()
                    .name("sync".into())
                    .spawn_scoped(scope, move || -> Result<()> {
                        pin_to_core(core)?;
                        let _registered = eal
                            .register_thread()
                            .context("registering the sync core with DPDK")?;
                        sync_thread::run(
                            engine,
                            transport,
                            channels,
                            shared,
                            owners,
                            redirect_io,
                            stop,
                            sync_backoff,
                            || clock.now(),
                        );
                        Ok(())
                    })
                    .context("starting the sync thread")?,
            );
        }

        let mut control = control::Control::new(
            profile,
            &ports,
            &channels,
            &counters,
            &rule_stats,
            sync_shared.clone(),
            pool,
            clock,
        )?;
        // Ready: ports up, threads running, admin socket bound.
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
        let mut next_report = options
            .stats_interval
            .map(|i| std::time::Instant::now() + i);
        while !stop.load(Ordering::Relaxed) && !threads.iter().any(|t| t.is_finished()) {
            control.poll(&ports);
            std::thread::sleep(StdDuration::from_millis(2));
            if let (Some(at), Some(interval)) = (next_report, options.stats_interval)
                && std::time::Instant::now() >= at
            {
                let totals = control::totals(&counters);
                let get = |n: &str| totals.iter().find(|(k, _)| k == n).map_or(0, |(_, v)| *v);
                let dropped: u64 = totals
                    .iter()
                    .filter(|(k, _)| k.starts_with("drop_"))
                    .map(|(_, v)| v)
                    .sum();
                let sync = if profile.sync.is_some() {
                    format!(" in-sync {}", sync_shared.in_sync.load(Ordering::Relaxed))
                } else {
                    String::new()
                };
                eprintln!(
                    "stats: rx {} tx {} dropped {} states {}{sync}",
                    get("rx_packets"),
                    get("tx_packets"),
                    dropped,
                    control.states(),
                );
                next_report = Some(at + interval);
            }
        }
        // A master leaves with a priority-0 advertisement, so that its backups take over after their skew
        // time: the workers still run long enough to send it.
        if control.shutdown_failover() {
            std::thread::sleep(StdDuration::from_millis(20));
        }
        threads_stop.store(true, Ordering::Relaxed);
        drop(control);
        let mut outcome = Ok(());
        for thread in threads {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(error)) => outcome = Err(error),
                Err(_) => outcome = Err(anyhow::anyhow!("a thread panicked")),
            }
        }
        outcome
    })?;

    // Whatever was still queued between threads goes back to the pool before the ports close.
    for ch in &channels {
        while ch.punt.pop().is_some() {}
        while ch.inject.pop().is_some() {}
    }
    drop(dispatch_queues);
    let counters_total = control::totals(&counters);
    let mut port_stats = Vec::new();
    for (name, eth) in ports {
        let stats = eth.stats().unwrap_or_default();
        eth.close()
            .with_context(|| format!("closing port `{name}`"))?;
        port_stats.push((name, stats));
    }
    let summary = RunSummary {
        ports: port_stats,
        counters: counters_total,
        mbufs_in_use: pool.in_use(),
    };
    eal.cleanup().context("releasing DPDK's resources")?;
    Ok(summary)
}
