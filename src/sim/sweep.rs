//! The experiment behind `tandem simulate`: one TCP flow over asymmetric paths at rising packet rates, for
//! each sync policy and sync latency, against the same flow through a single firewall; then the cluster
//! scenarios (many flows, three nodes, sync loss, a node killed). Writes a Markdown report and an SVG plot.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use tandem_config::Redirect;

use super::cluster::{self, Cpu, Paths, Report, Scenario, UpdatePolicy};
use super::net::Ns;

/// A policy on a processor model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Variant {
    /// Its name in the report.
    pub name: &'static str,
    /// The policy.
    pub policy: UpdatePolicy,
    /// The processor model.
    pub cpu: Cpu,
    /// Whether workers hold packets ahead of the sync for a peer's update.
    pub hold: bool,
    /// Owner redirect.
    pub redirect: Redirect,
}

/// pfsync's policy on the original's hardware.
pub const CLASSIC_2009: Variant = Variant {
    name: "classic, 2009 appliance",
    policy: UpdatePolicy::Classic,
    cpu: Cpu::PFSYNC_2009,
    hold: false,
    redirect: Redirect::Off,
};
/// pfsync's policy on Tandem's sync core.
pub const CLASSIC: Variant = Variant {
    name: "classic, Tandem sync core",
    policy: UpdatePolicy::Classic,
    cpu: Cpu::TANDEM,
    hold: false,
    redirect: Redirect::Off,
};
/// Tandem's policy on Tandem's sync core.
pub const WINDOW_AWARE: Variant = Variant {
    name: "window-aware, Tandem sync core",
    policy: UpdatePolicy::WindowAware,
    cpu: Cpu::TANDEM,
    hold: false,
    redirect: Redirect::Off,
};
/// Tandem's policy with hold-and-recheck: packets ahead of the sync wait for the peer's update.
pub const HOLD: Variant = Variant {
    name: "window-aware + hold-and-recheck",
    policy: UpdatePolicy::WindowAware,
    cpu: Cpu::TANDEM,
    hold: true,
    redirect: Redirect::Off,
};
/// Hold-and-recheck and owner redirect (`auto`): a flow that keeps needing holds has its return frames
/// sent to the node that created its state.
pub const REDIRECT: Variant = Variant {
    name: "hold-and-recheck + owner redirect",
    policy: UpdatePolicy::WindowAware,
    cpu: Cpu::TANDEM,
    hold: true,
    redirect: Redirect::Auto,
};

/// What to sweep.
#[derive(Clone, Debug)]
pub struct SweepConfig {
    /// Per-flow packet rates.
    pub rates: Vec<f64>,
    /// Sync link latencies.
    pub latencies: Vec<Ns>,
    /// Policies and processors.
    pub variants: Vec<Variant>,
    /// Data segments each point runs for (its duration follows from the rate, within limits).
    pub segments: f64,
    /// Refine the window-aware policy's highest clean rate by bisection, this many steps.
    pub bisect: u32,
    /// Also run the cluster scenarios.
    pub scenarios: bool,
    /// Seed.
    pub seed: u64,
}

impl SweepConfig {
    /// The full experiment: 1k to 10M packets/s in a 1-2-5 series, 10 us, 100 us and 1 ms.
    pub fn full() -> SweepConfig {
        let mut rates = Vec::new();
        let mut decade = 1_000.0;
        while decade <= 1e7 {
            for m in [1.0, 2.0, 5.0] {
                if decade * m <= 1e7 {
                    rates.push(decade * m);
                }
            }
            decade *= 10.0;
        }
        SweepConfig {
            rates,
            latencies: vec![Ns::micros(10), Ns::micros(100), Ns::millis(1)],
            variants: vec![CLASSIC_2009, CLASSIC, WINDOW_AWARE, HOLD, REDIRECT],
            segments: 20_000.0,
            bisect: 5,
            scenarios: true,
            seed: 1,
        }
    }
}

/// One point of the sweep.
#[derive(Clone, Debug)]
pub struct Point {
    /// Which variant.
    pub variant: Variant,
    /// Sync latency.
    pub latency: Ns,
    /// Per-flow rate.
    pub rate: f64,
    /// What the cluster did.
    pub report: Report,
    /// Goodput through one firewall on the same processor model.
    pub baseline_bps: f64,
    /// The analytic bound at this latency, packets/s.
    pub bound: Option<f64>,
}

impl Point {
    /// Goodput relative to the single firewall.
    pub fn relative(&self) -> f64 {
        if self.baseline_bps > 0.0 {
            self.report.goodput_bps / self.baseline_bps
        } else {
            0.0
        }
    }

    /// Whether the cluster carried the flow as well as one firewall: at least 95% of its goodput.
    pub fn good(&self) -> bool {
        self.relative() >= 0.95
    }

    /// Whether it did so without a single packet refused by pf's window checks.
    pub fn clean(&self) -> bool {
        self.good() && self.report.window_drops == 0
    }
}

/// The highest rate a variant carried at a latency, by each criterion.
#[derive(Clone, Debug)]
pub struct Highest {
    /// Which variant.
    pub variant: &'static str,
    /// Sync latency.
    pub latency: Ns,
    /// The highest rate with at least 95% of the single firewall's goodput (every lower rate too).
    pub good: Option<f64>,
    /// The highest rate with that and no window drop at all (every lower rate too).
    pub clean: Option<f64>,
}

/// A cluster scenario and what it did.
#[derive(Clone, Debug)]
pub struct ScenarioResult {
    /// What it was.
    pub name: String,
    /// Which variant.
    pub variant: Variant,
    /// Its settings.
    pub scenario: Scenario,
    /// What happened.
    pub report: Report,
    /// The same flows through one firewall.
    pub baseline_bps: f64,
}

/// Everything the experiment measured.
#[derive(Clone, Debug, Default)]
pub struct Results {
    /// The sweep.
    pub points: Vec<Point>,
    /// The highest rate of each variant at each latency, refined by bisection for the window-aware
    /// policy.
    pub highest: Vec<Highest>,
    /// The scenarios.
    pub scenarios: Vec<ScenarioResult>,
}

/// The base scenario of the sweep at `rate` and `latency`.
pub fn sweep_scenario(cfg: &SweepConfig, variant: Variant, rate: f64, latency: Ns) -> Scenario {
    let secs = (cfg.segments / rate).clamp(0.02, 2.0);
    Scenario {
        policy: variant.policy,
        hold: variant.hold,
        redirect: variant.redirect,
        cpu: variant.cpu,
        flow_pps: rate,
        sync_latency: latency,
        duration: Ns((secs * 1e9) as u64),
        seed: cfg.seed,
        ..Scenario::default()
    }
}

/// Runs the experiment; `progress(done, total, what)` is called before each run.
pub fn run(cfg: &SweepConfig, mut progress: impl FnMut(usize, usize, &str)) -> Result<Results> {
    let scenarios = if cfg.scenarios {
        scenario_list(cfg)
    } else {
        Vec::new()
    };
    let total = cfg.rates.len()
        + cfg.variants.len() * cfg.latencies.len() * cfg.rates.len()
        + 2 * cfg.latencies.len() * cfg.bisect as usize
        + scenarios.len() * 2;
    let mut done = 0;
    let mut step = |what: String| {
        progress(done, total, &what);
        done += 1;
    };
    // Baselines: the same flow through one firewall that is not a bottleneck (Tandem's), per rate (the
    // sync latency does not matter without sync). Every variant is compared with it, so the 2009
    // appliance's own forwarding limit counts against it, as it did for the original.
    let mut baselines: Vec<(f64, f64)> = Vec::new();
    for &rate in &cfg.rates {
        step(format!("single firewall {} pps", human_rate(rate)));
        let sc = sweep_scenario(cfg, WINDOW_AWARE, rate, Ns::micros(100)).single_firewall();
        baselines.push((rate, cluster::run(&sc)?.goodput_bps));
    }
    let baseline = |_cpu: Cpu, rate: f64| {
        baselines
            .iter()
            .find(|(r, _)| *r == rate)
            .map_or(0.0, |b| b.1)
    };
    let mut results = Results::default();
    for &variant in &cfg.variants {
        for &latency in &cfg.latencies {
            for &rate in &cfg.rates {
                step(format!(
                    "{} {} {} pps",
                    variant.name,
                    human_ns(latency),
                    human_rate(rate)
                ));
                let sc = sweep_scenario(cfg, variant, rate, latency);
                let report = cluster::run(&sc)?;
                results.points.push(Point {
                    variant,
                    latency,
                    rate,
                    report,
                    baseline_bps: baseline(variant.cpu, rate),
                    bound: sc.bound_pps(),
                });
            }
        }
    }
    for &variant in &cfg.variants {
        for &latency in &cfg.latencies {
            let pts: Vec<&Point> = results
                .points
                .iter()
                .filter(|p| p.variant == variant && p.latency == latency)
                .collect();
            let mut highest = Highest {
                variant: variant.name,
                latency,
                good: None,
                clean: None,
            };
            for (criterion, slot) in [
                (Point::good as fn(&Point) -> bool, &mut highest.good),
                (Point::clean as fn(&Point) -> bool, &mut highest.clean),
            ] {
                // The highest rate below which every point passes, and the first that fails.
                let mut best = None;
                let mut first_bad = None;
                for p in &pts {
                    if criterion(p) {
                        best = Some(p.rate);
                    } else {
                        first_bad = Some(p.rate);
                        break;
                    }
                }
                if variant == WINDOW_AWARE {
                    if let (Some(mut lo), Some(mut hi)) = (best, first_bad) {
                        for _ in 0..cfg.bisect {
                            let mid = (lo * hi).sqrt();
                            step(format!(
                                "{} {} bisecting {} pps",
                                variant.name,
                                human_ns(latency),
                                human_rate(mid)
                            ));
                            let sc = sweep_scenario(cfg, variant, mid, latency);
                            let p = Point {
                                variant,
                                latency,
                                rate: mid,
                                report: cluster::run(&sc)?,
                                baseline_bps: cluster::run(&Scenario {
                                    cpu: Cpu::TANDEM,
                                    ..sc.single_firewall()
                                })?
                                .goodput_bps,
                                bound: sc.bound_pps(),
                            };
                            if criterion(&p) {
                                lo = mid;
                            } else {
                                hi = mid;
                            }
                        }
                        best = Some(lo);
                    } else {
                        for _ in 0..cfg.bisect {
                            step(String::from("(no bisection needed)"));
                        }
                    }
                }
                *slot = best;
            }
            results.highest.push(highest);
        }
    }
    for (name, variant, sc) in scenarios {
        step(name.clone());
        let base = cluster::run(&Scenario {
            cpu: Cpu::TANDEM,
            ..sc.single_firewall()
        })?
        .goodput_bps;
        step(name.clone());
        let report = cluster::run(&sc)?;
        results.scenarios.push(ScenarioResult {
            name,
            variant,
            scenario: sc,
            report,
            baseline_bps: base,
        });
    }
    progress(total, total, "done");
    Ok(results)
}

/// The cluster scenarios of the report.
fn scenario_list(cfg: &SweepConfig) -> Vec<(String, Variant, Scenario)> {
    let base = Scenario {
        sync_latency: Ns::micros(100),
        seed: cfg.seed,
        ..Scenario::default()
    };
    let many = Scenario {
        flows: 10_000,
        flow_pps: 1_000.0,
        paths: Paths::Asymmetric,
        queue_frames: 64,
        start_spread: Ns::millis(10),
        duration: Ns::millis(60),
        ..base.clone()
    };
    let three = Scenario {
        nodes: 3,
        flows: 30,
        paths: Paths::Rotating,
        flow_pps: 20_000.0,
        start_spread: Ns::millis(1),
        duration: Ns::millis(100),
        ..base.clone()
    };
    let lossy = |loss: f64| Scenario {
        flow_pps: 100_000.0,
        sync_loss: loss,
        duration: Ns::millis(100),
        ..base.clone()
    };
    let kill = Scenario {
        flows: 20,
        flow_pps: 20_000.0,
        paths: Paths::Asymmetric,
        start_spread: Ns::millis(1),
        duration: Ns::millis(500),
        kill: Some((0, Ns::millis(100))),
        reroute_after: Ns::millis(3),
        ..base.clone()
    };
    let mut list = Vec::new();
    for v in [CLASSIC, WINDOW_AWARE, REDIRECT] {
        let with = |sc: &Scenario| Scenario {
            policy: v.policy,
            cpu: v.cpu,
            hold: v.hold,
            redirect: v.redirect,
            ..sc.clone()
        };
        list.push((
            "10,000 flows x 1k pps (10 Mpps in all), asymmetric".to_string(),
            v,
            with(&many),
        ));
        list.push((
            "3 nodes, 30 flows x 20k pps, each flow on its own pair of nodes".to_string(),
            v,
            with(&three),
        ));
        list.push(("1% sync loss, 100k pps".to_string(), v, with(&lossy(0.01))));
        list.push(("5% sync loss, 100k pps".to_string(), v, with(&lossy(0.05))));
        list.push(("10% sync loss, 100k pps".to_string(), v, with(&lossy(0.10))));
        list.push((
            "20 flows x 20k pps, node A (which created every state) killed at 100 ms, rerouted 3 ms later".to_string(),
            v,
            with(&kill),
        ));
    }
    list
}

/// "10k", "2.5M".
pub fn human_rate(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{}M", trim(rate / 1e6))
    } else if rate >= 1e3 {
        format!("{}k", trim(rate / 1e3))
    } else {
        trim(rate)
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// "10 us", "1 ms".
pub fn human_ns(t: Ns) -> String {
    if t.0 >= 1_000_000 && t.0.is_multiple_of(1_000_000) {
        format!("{} ms", t.0 / 1_000_000)
    } else if t.0 >= 1_000 {
        format!("{} us", trim(t.0 as f64 / 1e3))
    } else {
        format!("{} ns", t.0)
    }
}

/// The Markdown report.
pub fn markdown(cfg: &SweepConfig, r: &Results, command: &str) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# Cluster simulation: asymmetric TCP at rising per-flow rates\n"
    );
    let _ = writeln!(
        m,
        "Produced by `{command}` (deterministic: the same command gives the same numbers). The plot is \
         [simulation.svg](simulation.svg).\n"
    );
    let d = Scenario::default();
    let _ = writeln!(
        m,
        "**Set-up.** Two Tandem nodes, each the real dataplane worker and the real sync engine, in virtual \
         time. One TCP bulk flow (MSS {} bytes, SACK, window scaling, delayed ACKs, {} ms minimum RTO) \
         leaves through node A and its acknowledgements come back through node B. The client's access \
         link sets the rate (its bandwidth is the rate in full frames) and has a {}-frame queue; every \
         data hop has {} of latency, so a data segment's acknowledgement reaches B {} after the segment \
         passed A. The sync link has the latency of the column, 10 Gbit/s, no loss. Goodput is compared \
         with the same flow through a single Tandem firewall, which is not a bottleneck at any of these \
         rates (for the 2009 appliance this counts its own forwarding limit against it, as the original's \
         single firewall had it too). Window drops are packets pf's unchanged checks refused.\n",
        d.mss,
        200,
        d.queue_frames,
        human_ns(d.hop_latency),
        human_ns(d.return_path_delay()),
    );
    let _ = writeln!(
        m,
        "**Processor models.** *Tandem sync core*: the sync core has its own core and spends 250 ns per \
         sync packet sent or received and 50 ns per worker event (measured: 59 ns of engine time per update \
         sent by one engine and applied by another, about 26 ns of DPDK I/O per packet); forwarding is \
         not modelled as a bottleneck (its cost is in [benchmarks.md](benchmarks.md)). *2009 appliance*: \
         one CPU forwards (25 us a packet) and syncs (50 us per sync packet), in arrival order, behind a \
         256-packet input queue: calibrated so that the per-packet update exchange of pfsync's policy \
         overloads it just above the 10,000 packets/s the original work reported. With owner redirect, \
         the sync core also spends 100 ns per redirected frame at each end (a model input: a queue \
         operation, a copy and a transmit or receive).\n"
    );
    let _ = writeln!(
        m,
        "**Owner redirect** (`redirect: auto`): a state the return node keeps holding packets for (two holds \
         within 100 ms) has its frames sent over the sync link to the node that created it, which sees the \
         whole flow from then on and checks every packet against a current state; it ends when the flow \
         slows below 1,000 packets/s or the owner dies. Its cost is latency: the redirected direction \
         crosses the sync link, so the flow's round trip grows by the sync latency, and a TCP flow then \
         needs a window of rate x sync latency (14.5 MB at 10M packets/s and 1 ms, more than the \
         endpoints' 6 MB buffers) and a bottleneck queue to match (this one holds 256 frames). Where \
         goodput falls short with redirect below, no packet was refused: the flow is window- or \
         queue-limited by the longer round trip. On the creator, with redirect on, packets ahead of the \
         sync wait for the return node's first update instead of being dropped (without redirect they \
         are dropped, as pf does: holding them there too took TCP's early loss signal away and the flow \
         collapsed in slow-start overshoot, 0.10 of the single firewall at 500k packets/s and 100 us).\n"
    );
    let _ = writeln!(
        m,
        "**Analytic bound.** pf accepts an acknowledgement at most 67,035 bytes ahead of its copy of the \
         sender's progress, so a flow over asymmetric paths can go no faster than 67,035 bytes / (sync \
         delay - return-path delay), with the sync delay counting the link and both sync cores: {}.\n",
        cfg.latencies
            .iter()
            .map(|&l| {
                let sc = Scenario {
                    sync_latency: l,
                    ..Scenario::default()
                };
                format!(
                    "{} at {}",
                    sc.bound_pps().map_or("unbounded".to_string(), |b| format!(
                        "{} pps",
                        human_rate(b)
                    )),
                    human_ns(l)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(m, "## Highest rate carried\n");
    let _ = writeln!(
        m,
        "The highest per-flow rate at which the cluster delivered at least 95% of the single firewall's \
         goodput, with every lower rate too; in brackets, the highest at which pf's window checks also \
         refused nothing at all (window-aware: both refined by bisection between sweep points). \
         Percentages are of the analytic bound.\n"
    );
    let _ = write!(m, "| variant |");
    for &l in &cfg.latencies {
        let _ = write!(m, " {} |", human_ns(l));
    }
    let _ = writeln!(m);
    let _ = write!(m, "|---|");
    for _ in &cfg.latencies {
        let _ = write!(m, "---|");
    }
    let _ = writeln!(m);
    for v in &cfg.variants {
        let _ = write!(m, "| {} |", v.name);
        for &l in &cfg.latencies {
            let h = r
                .highest
                .iter()
                .find(|h| h.variant == v.name && h.latency == l);
            let bound = Scenario {
                sync_latency: l,
                cpu: v.cpu,
                ..Scenario::default()
            }
            .bound_pps();
            let show = |rate: Option<f64>| match (rate, bound) {
                (None, _) => "none".to_string(),
                (Some(b), Some(bound)) if v.cpu == Cpu::TANDEM => {
                    format!("{} ({:.0}%)", human_rate(b), b / bound * 100.0)
                }
                (Some(b), _) => human_rate(b),
            };
            let _ = write!(
                m,
                " {} [{}] |",
                show(h.and_then(|h| h.good)),
                show(h.and_then(|h| h.clean))
            );
        }
        let _ = writeln!(m);
    }
    let _ = writeln!(m, "\n## Every point\n");
    let _ = writeln!(
        m,
        "Relative goodput (cluster / single firewall), window drops, retransmissions, sync packets and \
         bytes per data segment, the age of the return node's copy of the sender's progress when \
         acknowledgements reached it (median and 99th percentile), and, with hold-and-recheck, the \
         packets held for a peer's update and the 99th percentile of their wait (the latency they \
         gained; a power-of-two bucket's upper bound); with owner redirect, the frames redirected.\n"
    );
    for v in &cfg.variants {
        for &l in &cfg.latencies {
            let _ = writeln!(m, "### {}, sync latency {}\n", v.name, human_ns(l));
            let _ = writeln!(
                m,
                "| rate (pps) | goodput vs single | window drops | retransmits | sync pkts / data | sync bytes / data | copy age p50 | p99 | held | hold wait p99 | redirected |"
            );
            let _ = writeln!(
                m,
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for p in r
                .points
                .iter()
                .filter(|p| p.variant == *v && p.latency == l)
            {
                let _ = writeln!(
                    m,
                    "| {} | {:.2} | {} | {} | {:.3} | {:.1} | {} | {} | {} | {} | {} |",
                    human_rate(p.rate),
                    p.relative(),
                    p.report.window_drops,
                    p.report.retransmits,
                    p.report.sync_packets_per_data(),
                    p.report.sync_bytes_per_data(),
                    human_ns(Ns(p.report.lag.p50)),
                    human_ns(Ns(p.report.lag.p99)),
                    p.report.held,
                    p.report
                        .hold_p99_us
                        .map_or("-".to_string(), |us| human_ns(Ns::micros(us))),
                    p.report.redirected,
                );
            }
            let _ = writeln!(m);
        }
    }
    if !r.scenarios.is_empty() {
        let _ = writeln!(m, "## Cluster scenarios (sync latency 100 us)\n");
        let _ = writeln!(
            m,
            "| scenario | variant | goodput vs single | window drops | other drops | retransmits | flows established / delivering at the end | sync pkts / data | deferred (IACK / timeout) | held | redirected |"
        );
        let _ = writeln!(m, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for s in &r.scenarios {
            let rel = if s.baseline_bps > 0.0 {
                s.report.goodput_bps / s.baseline_bps
            } else {
                0.0
            };
            let _ = writeln!(
                m,
                "| {} | {} | {:.2} | {} | {} | {} | {} / {} of {} | {:.3} | {} ({} / {}) | {} | {} |",
                s.name,
                s.variant.name,
                rel,
                s.report.window_drops,
                s.report.other_drops,
                s.report.retransmits,
                s.report.established,
                s.report.alive_at_end,
                s.scenario.flows,
                s.report.sync_packets_per_data(),
                s.report.deferred,
                s.report.released_by_iack,
                s.report.released_by_timeout,
                s.report.held,
                s.report.redirected,
            );
        }
        let _ = writeln!(m);
    }
    m
}

/// The plot: relative goodput against per-flow rate, one panel per sync latency, with the bound.
pub fn plot(cfg: &SweepConfig, r: &Results, path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (1200, 760)).into_drawing_area();
    root.fill(&WHITE).context("drawing the plot")?;
    let (top, bottom) = root.split_vertically(420);
    let panels = top.split_evenly((1, cfg.latencies.len().max(1)));
    let lower = bottom.split_evenly((1, cfg.latencies.len().max(1)));
    let colors = [RED, MAGENTA, BLUE, GREEN, BLACK];
    let (lo, hi) = (
        cfg.rates.first().copied().unwrap_or(1e3),
        cfg.rates.last().copied().unwrap_or(1e7),
    );
    for (panel, &latency) in panels.iter().zip(&cfg.latencies) {
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("sync latency {}", human_ns(latency)),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(45)
            .build_cartesian_2d((lo..hi).log_scale(), 0.0..1.1)
            .context("drawing the plot")?;
        chart
            .configure_mesh()
            .x_desc("packets/s per flow")
            .y_desc("goodput / single firewall")
            .x_label_formatter(&|x| human_rate(*x))
            .draw()
            .context("drawing the plot")?;
        for (i, v) in cfg.variants.iter().enumerate() {
            let color = colors[i % colors.len()];
            let pts: Vec<(f64, f64)> = r
                .points
                .iter()
                .filter(|p| p.variant == *v && p.latency == latency)
                .map(|p| (p.rate, p.relative().min(1.1)))
                .collect();
            // Wider lines first, so that a line hidden under another still shows at its edges.
            let width = if i + 1 == cfg.variants.len() {
                2
            } else {
                6 - 2 * (i as u32 % 2)
            };
            chart
                .draw_series(LineSeries::new(
                    pts.clone(),
                    color.mix(0.8).stroke_width(width),
                ))
                .context("drawing the plot")?
                .label(v.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .context("drawing the plot")?;
        }
        // The window-aware policy's highest rate found by bisection.
        let best: Vec<(f64, f64)> = r
            .highest
            .iter()
            .filter(|h| h.latency == latency && h.variant == WINDOW_AWARE.name)
            .filter_map(|h| h.good)
            .map(|rate| (rate, 1.0))
            .collect();
        chart
            .draw_series(
                best.iter()
                    .map(|&p| TriangleMarker::new(p, 8, BLUE.filled())),
            )
            .context("drawing the plot")?
            .label("window-aware: highest rate at >= 95% (bisection)")
            .legend(|(x, y)| TriangleMarker::new((x + 9, y), 6, BLUE.filled()));
        if let Some(bound) = (Scenario {
            sync_latency: latency,
            ..Scenario::default()
        })
        .bound_pps()
            && bound > lo
            && bound < hi
        {
            chart
                .draw_series(LineSeries::new(
                    vec![(bound, 0.0), (bound, 1.1)],
                    BLACK.stroke_width(1),
                ))
                .context("drawing the plot")?
                .label("analytic bound")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 11))
            .draw()
            .context("drawing the plot")?;
    }
    // Below: what each policy spends on sync to get there.
    for (panel, &latency) in lower.iter().zip(&cfg.latencies) {
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("sync packets per data packet, {}", human_ns(latency)),
                ("sans-serif", 16),
            )
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(45)
            .build_cartesian_2d((lo..hi).log_scale(), (0.001..1000.0).log_scale())
            .context("drawing the plot")?;
        chart
            .configure_mesh()
            .x_desc("packets/s per flow")
            .y_desc("sync packets / data packet")
            .x_label_formatter(&|x| human_rate(*x))
            .y_label_formatter(&|y| trim(*y))
            .draw()
            .context("drawing the plot")?;
        for (i, v) in cfg.variants.iter().enumerate() {
            let color = colors[i % colors.len()];
            let pts: Vec<(f64, f64)> = r
                .points
                .iter()
                .filter(|p| p.variant == *v && p.latency == latency)
                .map(|p| {
                    (
                        p.rate,
                        p.report.sync_packets_per_data().clamp(0.001, 1000.0),
                    )
                })
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .context("drawing the plot")?;
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .context("drawing the plot")?;
        }
    }
    root.present().context("writing the plot")?;
    Ok(())
}
