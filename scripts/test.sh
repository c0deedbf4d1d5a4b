#!/usr/bin/env bash
# Runs every test layer of Tandem on a fresh Debian 12 machine: installs what is missing, checks formatting
# and lints, then runs unit, property, integration, simulation and DPDK virtual-device tests.
# Usage: scripts/test.sh        (as root, or with sudo available for apt)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step "setup: Debian packages and Rust components"
scripts/setup.sh

step "format: cargo fmt --check"
cargo fmt --all -- --check
(cd tests/fuzz && cargo fmt -- --check)

step "lint: cargo clippy, warnings denied"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build"
cargo build --workspace --all-targets --locked

step "tests: unit, property, golden vectors, mutation, integration and DPDK virtual devices"
cargo test --workspace --locked

step "heavy tests in release mode: bulk update at scale, simulations (ignored in debug builds)"
cargo test --release --workspace --locked -- --ignored

step "fuzzing (AFL++, stable toolchain): the committed corpus replayed, then 100,000 executions per target (scripts/fuzz.sh)"
scripts/fuzz.sh replay
scripts/fuzz.sh run 100000

step "tandem gen over net_memif: stateful TCP connections and UDP flows through one appliance, then through two on asymmetric paths, every connection completed and every datagram answered (scripts/gen.sh --check)"
scripts/gen.sh --nodes 1 --seconds 2 --rate 20000 --polling adaptive --check >/dev/null
scripts/gen.sh --nodes 2 --seconds 2 --concurrent 200 --rate 2000 --polling adaptive --check >/dev/null

step "the Pktgen-DPDK loads (UDP flows, SYN floods against a state limit of 2,000): with Pktgen where it is installed, else from tandem gen (scripts/pktgen.sh all)"
scripts/pktgen.sh all --seconds 2

step "namespace cluster: Linux TCP through two, then three firewalls, kill -9 failover (scripts/demo.sh --short)"
scripts/demo.sh --short
scripts/demo.sh --short --nodes 3

step "sync over a lossy link: 5% of fw-b's sync frames dropped, iperf3 and short connections lose nothing (scripts/sync-loss.sh)"
scripts/sync-loss.sh 5

step "hostile data traffic: malformed frames and a SYN flood against a state limit of 2,000 during a transfer (scripts/hostile-data.sh)"
scripts/hostile-data.sh

step "hostile sync: forged INS, CLR and bulk request from a host on the sync link, with and without a peer's address (scripts/hostile-sync.sh)"
scripts/hostile-sync.sh

step "VRRPv3 against keepalived: elections both ways, takeovers after kill -9, preemption, bad advertisements refused (scripts/vrrp.sh)"
scripts/vrrp.sh

step "all test layers passed"
