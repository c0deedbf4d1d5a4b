//! `tandem`: the command line of the appliance.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use tandem_control::admin::{Format, Request, Topic};

use tandem::generator::run::GenOptions;
use tandem::relay::RelaySpec;
use tandem::runtime::{self, RunOptions};
use tandem::traffic::{self, TrafficSpec};

/// Tandem: a kernel-bypass stateful firewall whose cluster members share connection state with pfsync.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `tandem show` can print.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ShowTopic {
    /// The state table, like `pfctl -ss`.
    States,
    /// Sync engine counters, lag and deferrals.
    Sync,
    /// Sync peers and their liveness.
    Peers,
    /// Ports and their counters.
    Ports,
    /// Rules and their counters.
    Rules,
    /// Per-worker packet counters and drops by reason.
    Counters,
    /// VRRP groups: state, priority, master, transitions.
    Failover,
}

/// `tandem sync` actions.
#[derive(Debug, Subcommand)]
enum SyncAction {
    /// Ask the peers for every state they hold (peers answer one bulk update per 10 s per node).
    Resync {
        /// The appliance's profile (its admin socket is found there).
        #[arg(short, long, conflicts_with = "socket")]
        profile: Option<PathBuf>,
        /// The admin socket itself.
        #[arg(short, long)]
        socket: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the appliance described by a profile and run until SIGINT or SIGTERM.
    ///
    /// Starts DPDK with the profile's EAL arguments and ports, one pinned worker per worker core, the sync
    /// core when sync is configured and the control thread (admin socket, metrics). On the first signal it
    /// stops polling, drains, and stops and closes every port (a second signal exits at once), then prints
    /// the counters.
    Run {
        /// The YAML profile.
        #[arg(short, long)]
        profile: PathBuf,
        /// Print a one-line summary of the counters every this many milliseconds.
        #[arg(long, value_name = "MS")]
        stats_interval_ms: Option<u64>,
    },
    /// Validate a profile and list every error with its line and column; exits non-zero if there are any.
    Check {
        /// The YAML profile.
        #[arg(short, long)]
        profile: PathBuf,
    },
    /// Ask a running appliance, through its admin socket, for its states, sync status, peers, ports,
    /// rules or counters.
    Show {
        /// What to show.
        topic: ShowTopic,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// The appliance's profile (its admin socket is found there).
        #[arg(short, long, conflicts_with = "socket")]
        profile: Option<PathBuf>,
        /// The admin socket itself.
        #[arg(short, long)]
        socket: Option<PathBuf>,
    },
    /// Ask a running appliance's sync core for a fresh bulk update from its peers (`resync`): the node is
    /// out of sync, and its failover groups demoted, until it completes.
    Sync {
        /// What to do.
        #[command(subcommand)]
        action: SyncAction,
    },
    /// Generate stateful load from a generator profile: TCP connections (handshake, request, response,
    /// FIN or RST) and UDP flows, both ends played on DPDK ports, through one appliance or two. Shows a
    /// line per second on a terminal and prints a JSON summary (throughput, loss, connections completed
    /// and failed, latency percentiles) at the end. Exits non-zero when `--fail-on-loss` is given and a
    /// connection failed or a datagram went unanswered.
    Gen {
        /// The generator's YAML profile.
        #[arg(short, long)]
        profile: PathBuf,
        /// Print the progress line even when stderr is not a terminal.
        #[arg(long, conflicts_with = "quiet")]
        progress: bool,
        /// Never print the progress line.
        #[arg(long)]
        quiet: bool,
        /// Also write the summary to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Exit with status 3 when a connection failed or a datagram was not answered.
        #[arg(long)]
        fail_on_loss: bool,
    },
    /// Draw measured series as an SVG line chart (the benchmark scripts' sweeps).
    Plot {
        /// The SVG file to write.
        #[arg(short, long)]
        out: PathBuf,
        /// Caption.
        #[arg(long, default_value = "")]
        title: String,
        /// X axis label.
        #[arg(long, default_value = "")]
        x_label: String,
        /// Y axis label.
        #[arg(long, default_value = "")]
        y_label: String,
        /// Logarithmic x axis.
        #[arg(long)]
        log_x: bool,
        /// A line: NAME=X:Y,X:Y,... (repeat for more lines).
        #[arg(long, required = true)]
        series: Vec<String>,
    },
    /// Write a pcap of synthetic TCP connections (handshake, data, acknowledgements) for replay through
    /// net_pcap; each connection's data per pass stays within one window, so the capture can loop.
    Generate {
        /// The pcap to write.
        #[arg(short, long)]
        out: PathBuf,
        /// Connections.
        #[arg(long, default_value_t = 64)]
        flows: u32,
        /// Data segments per connection.
        #[arg(long, default_value_t = 32)]
        segments: u32,
        /// Payload bytes per data segment.
        #[arg(long, default_value_t = 1448)]
        payload: usize,
        /// End each connection with FIN and ACK.
        #[arg(long)]
        close: bool,
        /// Make every Nth connection come from the server network (for rules to block).
        #[arg(long, value_name = "N")]
        blocked_every: Option<u32>,
        /// Send every frame to this MAC (a router's port) instead of the other host's.
        #[arg(long, value_name = "MAC")]
        to_mac: Option<tandem_config::MacAddr>,
        /// Start with a gratuitous ARP from this gateway address (repeatable), for a router to learn.
        #[arg(long, value_name = "IPV4")]
        announce: Vec<std::net::Ipv4Addr>,
    },
    /// Relay frames between two DPDK devices with a fixed one-way delay and optional random loss, both
    /// ways, until SIGINT or SIGTERM: a slow or lossy link for tests on a kernel without `netem` (e.g. in
    /// the sync link of the namespace cluster). Prints the frames relayed, dropped and lost per direction
    /// at the end.
    Relay {
        /// The first device (a vdev string, e.g. `net_af_packet0,iface=r0`).
        #[arg(long)]
        a: String,
        /// The second device.
        #[arg(long)]
        b: String,
        /// One-way delay in microseconds.
        #[arg(long, default_value_t = 2000)]
        delay_us: u64,
        /// MTU of both ports.
        #[arg(long, default_value_t = 1700)]
        mtu: u16,
        /// Percentage of frames dropped at random, each direction.
        #[arg(long, default_value_t = 0.0)]
        loss_percent: f64,
        /// Seed of the loss draws.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run the deterministic cluster simulation: one TCP flow over asymmetric paths through two nodes
    /// (real dataplane and sync engine, virtual time) at 1k to 10M packets/s, for pfsync's classic
    /// policy and the window-aware one at sync latencies of 10 us, 100 us and 1 ms, plus cluster
    /// scenarios; writes a Markdown report and an SVG plot.
    Simulate {
        /// Where the report (simulation.md) and the plot (simulation.svg) go.
        #[arg(long, default_value = "docs")]
        out: PathBuf,
        /// A small sweep (a few rates, no bisection, no scenarios) for a quick look.
        #[arg(long)]
        quick: bool,
        /// Seed of every random draw.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Simulate { out, quick, seed } => {
            simulate(&out, quick, seed).map(|()| ExitCode::SUCCESS)
        }
        Command::Check { profile } => check(&profile),
        Command::Relay {
            a,
            b,
            delay_us,
            mtu,
            loss_percent,
            seed,
        } => relay(RelaySpec {
            devices: [a, b],
            delay: Duration::from_micros(delay_us),
            mtu,
            loss: (loss_percent / 100.0).clamp(0.0, 1.0),
            seed,
        }),
        Command::Run {
            profile,
            stats_interval_ms,
        } => run(&profile, stats_interval_ms),
        Command::Show {
            topic,
            json,
            profile,
            socket,
        } => show(topic, json, profile, socket),
        Command::Sync {
            action: SyncAction::Resync { profile, socket },
        } => ask(Topic::Resync, false, profile, socket),
        Command::Gen {
            profile,
            progress,
            quiet,
            out,
            fail_on_loss,
        } => generate_load(
            &profile,
            (progress || quiet).then_some(progress),
            out.as_deref(),
            fail_on_loss,
        ),
        Command::Plot {
            out,
            title,
            x_label,
            y_label,
            log_x,
            series,
        } => series
            .iter()
            .map(|s| tandem::plot::Series::parse(s))
            .collect::<Result<Vec<_>>>()
            .and_then(|series| {
                let chart = tandem::plot::Chart {
                    title,
                    x_label,
                    y_label,
                    log_x,
                    series,
                };
                tandem::plot::draw(&chart, &out)
            })
            .map(|()| ExitCode::SUCCESS),
        Command::Generate {
            out,
            flows,
            segments,
            payload,
            close,
            blocked_every,
            to_mac,
            announce,
        } => {
            let spec = TrafficSpec {
                flows,
                segments,
                payload,
                close,
                blocked_every,
                to_mac,
                announce,
                ..TrafficSpec::default()
            };
            let frames = traffic::frames(&spec);
            traffic::write_pcap(&out, &frames)
                .with_context(|| format!("writing {}", out.display()))
                .map(|()| {
                    println!(
                        "{}: {} frames, {} connections",
                        out.display(),
                        frames.len(),
                        flows
                    );
                    ExitCode::SUCCESS
                })
        }
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("tandem: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &Path) -> Result<ExitCode> {
    match tandem_config::load(path) {
        Ok(profile) => {
            if let Some(key_file) = profile.sync.as_ref().and_then(|s| s.auth_key_file.as_ref())
                && let Err(error) = tandem::runtime::transport::load_keyring(key_file)
            {
                println!("{}: {error}", path.display());
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "{}: profile of node {} is valid ({} port(s), {} worker(s), {} rule(s){})",
                path.display(),
                profile.node.name,
                profile.ports.len(),
                profile.workers.cores.len(),
                profile.rules.len(),
                if profile.sync.is_some() {
                    ", sync on"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            print!("{}", error.report());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn show(
    topic: ShowTopic,
    json: bool,
    profile: Option<PathBuf>,
    socket: Option<PathBuf>,
) -> Result<ExitCode> {
    let topic = match topic {
        ShowTopic::States => Topic::States,
        ShowTopic::Sync => Topic::Sync,
        ShowTopic::Peers => Topic::Peers,
        ShowTopic::Ports => Topic::Ports,
        ShowTopic::Rules => Topic::Rules,
        ShowTopic::Counters => Topic::Counters,
        ShowTopic::Failover => Topic::Failover,
    };
    ask(topic, json, profile, socket)
}

/// Sends one request to a running appliance's admin socket and prints the answer.
fn ask(
    topic: Topic,
    json: bool,
    profile: Option<PathBuf>,
    socket: Option<PathBuf>,
) -> Result<ExitCode> {
    let socket = match (socket, profile) {
        (Some(socket), _) => socket,
        (None, Some(profile)) => match tandem_config::load(&profile) {
            Ok(p) => p.control.admin_socket,
            Err(error) => {
                eprint!("{}", error.report());
                return Ok(ExitCode::FAILURE);
            }
        },
        (None, None) => anyhow::bail!("give --profile or --socket"),
    };
    let request = Request {
        topic,
        format: if json { Format::Json } else { Format::Text },
    };
    let answer = tandem_control::server::request(&socket, &request)
        .with_context(|| format!("asking {} (is tandem running?)", socket.display()))?;
    // A reader that stops early (`| head`) closes the pipe: that ends the output, it is not an error.
    let mut out = std::io::stdout().lock();
    match std::io::Write::write_all(&mut out, answer.as_bytes())
        .and_then(|()| std::io::Write::flush(&mut out))
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing the answer"))
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, stop.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
    Ok(stop)
}

fn relay(spec: RelaySpec) -> Result<ExitCode> {
    let stop = stop_on_signals()?;
    let stats = tandem::relay::run(&spec, &stop)?;
    println!(
        "relayed {} and {} frames, dropped {} and {} on full queues, lost {} and {} by the loss draw (a to b, b to a)",
        stats.relayed[0],
        stats.relayed[1],
        stats.dropped[0],
        stats.dropped[1],
        stats.lost[0],
        stats.lost[1]
    );
    Ok(ExitCode::SUCCESS)
}

fn generate_load(
    path: &Path,
    progress: Option<bool>,
    out: Option<&Path>,
    fail_on_loss: bool,
) -> Result<ExitCode> {
    let profile = match tandem_config::load_gen(path) {
        Ok(profile) => profile,
        Err(error) => {
            eprint!("{}", error.report());
            return Ok(ExitCode::FAILURE);
        }
    };
    let stop = stop_on_signals()?;
    let summary = tandem::generator::run::run(&profile, GenOptions { progress }, stop)?;
    let text = serde_json::to_string_pretty(&summary).context("writing the summary")?;
    println!("{text}");
    if let Some(out) = out {
        std::fs::write(out, format!("{text}\n"))
            .with_context(|| format!("writing {}", out.display()))?;
    }
    let lost = |v: &serde_json::Value| v.as_u64().unwrap_or(0) > 0;
    if fail_on_loss && (lost(&summary["tcp"]["failed"]) || lost(&summary["udp"]["lost"])) {
        eprintln!("tandem gen: connections failed or datagrams were lost");
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

fn run(path: &Path, stats_interval_ms: Option<u64>) -> Result<ExitCode> {
    let profile = match tandem_config::load(path) {
        Ok(profile) => profile,
        Err(error) => {
            eprint!("{}", error.report());
            return Ok(ExitCode::FAILURE);
        }
    };
    let stop = stop_on_signals()?;
    let options = RunOptions {
        stats_interval: stats_interval_ms.map(Duration::from_millis),
    };
    let summary = runtime::run(&profile, &options, stop)?;
    println!(
        "{:<12} {:>12} {:>12} {:>10} {:>10}",
        "port", "rx-packets", "tx-packets", "rx-missed", "tx-errors"
    );
    for (name, s) in &summary.ports {
        println!(
            "{:<12} {:>12} {:>12} {:>10} {:>10}",
            name, s.rx_packets, s.tx_packets, s.rx_missed, s.tx_errors
        );
    }
    let nonzero: Vec<String> = summary
        .counters
        .iter()
        .filter(|(_, v)| *v > 0)
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    println!("workers: {}", nonzero.join(", "));
    println!("buffers still in use: {}", summary.mbufs_in_use);
    Ok(ExitCode::SUCCESS)
}

fn simulate(out: &Path, quick: bool, seed: u64) -> Result<()> {
    use std::io::Write as _;
    use tandem::sim::sweep::{self, SweepConfig};
    let mut cfg = SweepConfig::full();
    cfg.seed = seed;
    if quick {
        cfg.rates = vec![1e3, 1e4, 1e5, 1e6];
        cfg.bisect = 0;
        cfg.scenarios = false;
    }
    let started = std::time::Instant::now();
    let results = sweep::run(&cfg, |done, total, what| {
        let width = 30;
        let filled = (done * width)
            .checked_div(total)
            .unwrap_or(width)
            .min(width);
        eprint!(
            "\r[{}{}] {done}/{total} {:>5.0}s  {what:<60.60}",
            "#".repeat(filled),
            " ".repeat(width - filled),
            started.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    })?;
    eprintln!();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut command = String::from("tandem simulate");
    if quick {
        command.push_str(" --quick");
    }
    if seed != 1 {
        command.push_str(&format!(" --seed {seed}"));
    }
    let md = out.join("simulation.md");
    std::fs::write(&md, sweep::markdown(&cfg, &results, &command))
        .with_context(|| format!("writing {}", md.display()))?;
    let svg = out.join("simulation.svg");
    sweep::plot(&cfg, &results, &svg)?;
    let show = |r: Option<f64>| {
        r.map_or("none".to_string(), |b| {
            format!("{} pps", sweep::human_rate(b))
        })
    };
    for h in &results.highest {
        println!(
            "{:<32} {:>7}: >= 95% goodput up to {}, no window drop up to {}",
            h.variant,
            sweep::human_ns(h.latency),
            show(h.good),
            show(h.clean)
        );
    }
    println!("wrote {} and {}", md.display(), svg.display());
    Ok(())
}
