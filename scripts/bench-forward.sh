#!/usr/bin/env bash
# Whole-process forwarding rate: Tandem (stateful, rules, one worker, in wire mode and in router mode) against
# dpdk-testpmd, side by side in one run on the same virtual devices and the same core, in three of its
# forwarding modes: io (never touches a packet), macswap (writes every frame's Ethernet header) and csum
# (parses every frame and recomputes its IP and TCP checksums in software), the last two being baselines
# that do work.
#
# Both read an endless loop of a capture of established TCP connections from net_pcap (infinite_rx, so the
# source costs almost nothing) and send to net_null. Each runs for --seconds; the rate is the median of the
# per-second transmit rates after the first two seconds. Prints the rates and Tandem's ratio to each, and with
# --write appends the result to docs/benchmarks.md.
#
# Usage: scripts/bench-forward.sh [--seconds N] [--core C] [--flows N] [--write]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=10
core=1
flows=256
write=false
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --core) core=$2; shift 2 ;;
    --flows) flows=$2; shift 2 ;;
    --write) write=true; shift ;;
    *) echo "usage: $0 [--seconds N] [--core C] [--flows N] [--write]" >&2; exit 2 ;;
  esac
done
[ "$seconds" -ge 4 ] || { echo "--seconds must be at least 4" >&2; exit 2; }
main_core=0
[ "$core" = 0 ] && main_core=1

scripts/setup.sh >/dev/null
command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd not found (package dpdk)" >&2; exit 1; }
cargo build --release --locked --quiet
tandem=$PWD/target/release/tandem

work=$(mktemp -d /tmp/tandem-bench-forward.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

"$tandem" generate --out "$work/flows.pcap" --flows "$flows" --segments 16 --payload 64 >/dev/null
# The same connections for router mode: to the MAC net_pcap gives its first port, after the inside gateway's
# ARP; the outside gateway's ARP arrives once on the outside port.
"$tandem" generate --out "$work/flows-router.pcap" --flows "$flows" --segments 16 --payload 64 \
  --to-mac 02:70:63:61:70:00 --announce 192.0.2.254 >/dev/null
"$tandem" generate --out "$work/gateway.pcap" --flows 0 --announce 192.0.3.254 >/dev/null

# median of the numbers on stdin
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) {print 0} else if (NR%2) {print v[(NR+1)/2]} else {print (v[NR/2]+v[NR/2+1])/2}}'; }

# testpmd_rate MODE: the median forwarding rate of dpdk-testpmd in MODE.
testpmd_rate() {
  echo "== dpdk-testpmd $1 forwarding, ${seconds}s on core $core" >&2
  timeout --signal=INT $((seconds + 5)) dpdk-testpmd --no-huge -m 1024 --no-pci --no-shconf \
    --file-prefix "bench-testpmd-$$" --lcores="0@$main_core,1@$core" --main-lcore=0 \
    --vdev="net_pcap0,rx_pcap=$work/flows.pcap,infinite_rx=1" --vdev=net_null0,no-rx=1 \
    -- --forward-mode="$1" --total-num-mbufs=32768 --stats-period 1 --no-flush-rx --nb-cores=1 -a \
    </dev/null > "$work/testpmd-$1.out" 2>&1 &
  pid=$!
  sleep "$seconds"
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
  # testpmd prints, every period, a block per port; port 1 (net_null) transmits what port 0 received.
  local rates
  rates=$(awk '/statistics for port/ {port=$6} /Tx-pps:/ && port=="1" {print $2}' "$work/testpmd-$1.out" | tail -n +3)
  [ -n "$rates" ] && [ "$(echo "$rates" | median)" != 0 ] || { echo "no rates from testpmd $1:" >&2; tail -30 "$work/testpmd-$1.out" >&2; exit 1; }
  echo "$rates" | median
}
testpmd=$(testpmd_rate io)
macswap=$(testpmd_rate macswap)
csum=$(testpmd_rate csum)

# tandem_run MODE: runs Tandem in MODE (wire or router) for --seconds on the capture; sets tandem_rate (the
# median forwarding rate), states, replayed (replayed SYNs dropped, as pf does) and other (any other drop
# after the first two seconds: router mode drops the frames before the gateways' ARP is learned).
tandem_run() {
  local mode=$1 capture ports forwarding
  echo "== tandem $mode mode, one worker, ${seconds}s on core $core" >&2
  if [ "$mode" = wire ]; then
    capture=$work/flows.pcap
    ports="  - {name: inside, device: \"net_pcap0,rx_pcap=$capture,infinite_rx=1\"}
  - {name: outside, device: \"net_null0,no-rx=1\"}"
    forwarding="forwarding: {mode: wire, pairs: [[inside, outside]]}"
  else
    # Clients behind a gateway on the inside, servers behind one on the outside: every frame goes to the
    # inside port's MAC (net_pcap's first), is routed (TTL, checksum, MACs rewritten from the state's
    # cached next hop) and leaves by the inside or the outside port, whose transmissions net_pcap drops
    # (no tx stream given). Each gateway announces itself by one gratuitous ARP.
    capture=$work/flows-router.pcap
    ports="  - {name: inside, device: \"net_pcap0,rx_pcap=$capture,infinite_rx=1\", addresses: [192.0.2.1/24]}
  - {name: outside, device: \"net_pcap1,rx_pcap=$work/gateway.pcap\", addresses: [192.0.3.1/24]}"
    forwarding="routes:
  - {to: 198.18.0.0/16, via: 192.0.2.254}
  - {to: 198.19.0.0/16, via: 192.0.3.254}"
  fi
  cat > "$work/bench-$mode.yaml" <<YAML
node: {name: bench, host-id: 0x0a0000fe}
dpdk:
  eal-args: [--no-huge, --no-pci, --no-shconf, -m, "1024"]
  mbufs: 32767
ports:
$ports
workers: {cores: [$core], polling: busy}
control: {core: $main_core, admin-socket: $work/bench.sock}
$forwarding
rules:
  - {label: clients-out, action: pass, direction: in, port: inside, from: 198.18.0.0/15}
YAML
  "$tandem" check --profile "$work/bench-$mode.yaml" >/dev/null
  "$tandem" run --profile "$work/bench-$mode.yaml" --stats-interval-ms 1000 > "$work/tandem-$mode.out" 2> "$work/tandem-$mode.err" &
  pid=$!
  sleep 2
  "$tandem" show counters --json --socket "$work/bench.sock" > "$work/counters-$mode-start.json"
  sleep $((seconds - 2))
  # The capture loops, so every pass replays each connection's SYN on its established state, which pf drops
  # (and answers with a challenge ACK): those drops are expected, any other is a failure.
  "$tandem" show counters --json --socket "$work/bench.sock" > "$work/counters-$mode.json"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
  read -r replayed other < <(python3 -c '
import json, sys
def load(path):
    return {x["name"]: x["value"] for w in json.load(open(path)) for x in w["counters"]}
start, end = load(sys.argv[1]), load(sys.argv[2])
drops = lambda c: sum(v for k, v in c.items() if k.startswith("drop_") and k != "drop_syn_on_established")
print(end.get("drop_syn_on_established", 0), drops(end) - drops(start))' "$work/counters-$mode-start.json" "$work/counters-$mode.json")
  # "stats: rx R tx T dropped D states S" once a second: rates are the differences of tx.
  local rates
  rates=$(awk '/^stats:/ {if (have) print $5 - last; last=$5; have=1}' "$work/tandem-$mode.err" | tail -n +3)
  tandem_rate=$(echo "$rates" | median)
  states=$(awk '/^stats:/ {s=$9} END {print s+0}' "$work/tandem-$mode.err")
  [ -n "$rates" ] && [ "$tandem_rate" != 0 ] || { echo "no rates from tandem $mode:" >&2; tail -30 "$work/tandem-$mode.err" >&2; exit 1; }
  if [ "$other" != 0 ]; then
    echo "tandem $mode dropped $other packets other than the replayed SYNs: the capture should be valid" >&2
    exit 1
  fi
}
tandem_run wire
wire=$tandem_rate wire_states=$states wire_replayed=$replayed
tandem_run router
router=$tandem_rate

line=$(awk -v a="$wire" -v r="$router" -v b="$testpmd" -v m="$macswap" -v c="$csum" -v f="$flows" -v s="$wire_states" -v y="$wire_replayed" \
  'BEGIN {printf "testpmd io %.2f Mpps, macswap %.2f, csum %.2f; tandem wire mode %.2f Mpps forwarded, %.2f of io, %.2f of macswap, %.2f of csum; router mode %.2f Mpps, %.2f of macswap, %.2f of wire mode (%d connections, %d states, %d replayed SYNs dropped as pf does in wire mode, no other drops)", b/1e6, m/1e6, c/1e6, a/1e6, a/b, a/m, a/c, r/1e6, r/m, r/a, f, s, y}')
echo "== $line"
if $write; then
  {
    echo
    echo "- $(date -u +%Y-%m-%d), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)),"
    echo "  \`scripts/bench-forward.sh --seconds $seconds\`: $line"
  } >> docs/benchmarks.md
fi
