//! `tandem`: the command line of the appliance.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use tandem::runtime::{self, RunOptions};

/// Tandem: a kernel-bypass stateful firewall whose cluster members share connection state with pfsync.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the appliance described by a profile and run until SIGINT or SIGTERM.
    ///
    /// Starts DPDK with the profile's EAL arguments and ports, runs one pinned worker per worker core,
    /// and on the first signal stops polling, drains, and stops and closes every port (a second signal
    /// exits at once). Prints the counters on exit.
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Check { profile } => check(&profile),
        Command::Run {
            profile,
            stats_interval_ms,
        } => run(&profile, stats_interval_ms),
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

fn run(path: &Path, stats_interval_ms: Option<u64>) -> Result<ExitCode> {
    let profile = match tandem_config::load(path) {
        Ok(profile) => profile,
        Err(error) => {
            eprint!("{}", error.report());
            return Ok(ExitCode::FAILURE);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(signal, 1, stop.clone())
            .context("installing signal handlers")?;
        signal_hook::flag::register(signal, stop.clone()).context("installing signal handlers")?;
    }
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
    println!(
        "workers: received {} forwarded {} dropped-at-full-tx {}; buffers still in use {}",
        summary.rx, summary.tx, summary.tx_full, summary.mbufs_in_use
    );
    Ok(ExitCode::SUCCESS)
}
