#!/usr/bin/env bash
# Tandem's demo on DPDK virtual devices: sets up, builds, generates a capture of TCP connections (some from
# a network no rule lets in), runs the appliance with two ports on net_pcap, and prints what it did:
# connections tracked, packets passed and blocked, and the states it held.
# Usage: scripts/demo-pcap.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh >/dev/null
echo "== building (release)"
cargo build --release --locked --quiet
tandem=target/release/tandem

work=$(mktemp -d /tmp/tandem-demo.XXXXXX)
cleanup() {
  if [ -n "${pid:-}" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

echo "== generating 200 connections (every 5th from the outside network) into $work/in.pcap"
"$tandem" generate --out "$work/in.pcap" --flows 200 --segments 20 --close --blocked-every 5
"$tandem" generate --out "$work/empty.pcap" --flows 0 >/dev/null

cat > "$work/demo.yaml" <<YAML
# A transparent firewall between two ports: clients in 198.18.0.0/24 may connect out, nothing comes in.
node: {name: demo, host-id: 0x0a000001}
dpdk:
  eal-args: [--no-huge, --no-pci, --no-shconf, -m, "512"]
ports:
  - {name: inside, device: "net_pcap0,rx_pcap=$work/in.pcap,tx_pcap=$work/inside-out.pcap"}
  - {name: outside, device: "net_pcap1,rx_pcap=$work/empty.pcap,tx_pcap=$work/outside-out.pcap"}
workers: {cores: [0], polling: adaptive}
control: {admin-socket: $work/demo.sock}
forwarding: {mode: wire, pairs: [[inside, outside]]}
rules:
  - {label: clients-out, action: pass, direction: in, port: inside, from: 198.18.0.0/24}
YAML
"$tandem" check --profile "$work/demo.yaml"

echo "== running the appliance"
"$tandem" run --profile "$work/demo.yaml" --stats-interval-ms 500 > "$work/run.out" 2> "$work/run.err" &
pid=$!
for _ in $(seq 1 100); do grep -q "running on" "$work/run.err" 2>/dev/null && break; sleep 0.1; done
sleep 2
echo "== tandem show rules"
"$tandem" show rules --socket "$work/demo.sock"
echo "== tandem show states (first lines)"
"$tandem" show states --socket "$work/demo.sock" | sed -n '1,6p;$p'
echo "== tandem show counters"
"$tandem" show counters --socket "$work/demo.sock" | awk '$2 != 0'
kill -TERM "$pid"; wait "$pid"; pid=
echo "== counters at exit"
cat "$work/run.out"
