#!/usr/bin/env bash
# Whole-process forwarding rate: Tandem (stateful, rules, wire mode, one worker) against dpdk-testpmd, side by
# side in one run on the same virtual devices and the same core, in three of its forwarding modes: io (never
# touches a packet), macswap (writes every frame's Ethernet header) and csum (parses every frame and
# recomputes its IP and TCP checksums in software), the last two being baselines that do work.
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

echo "== tandem wire mode, one worker, ${seconds}s on core $core"
cat > "$work/bench.yaml" <<YAML
node: {name: bench, host-id: 0x0a0000fe}
dpdk:
  eal-args: [--no-huge, --no-pci, --no-shconf, -m, "1024"]
  mbufs: 32767
ports:
  - {name: inside, device: "net_pcap0,rx_pcap=$work/flows.pcap,infinite_rx=1"}
  - {name: outside, device: "net_null0,no-rx=1"}
workers: {cores: [$core], polling: busy}
control: {core: $main_core, admin-socket: $work/bench.sock}
forwarding: {mode: wire, pairs: [[inside, outside]]}
rules:
  - {label: clients-out, action: pass, direction: in, port: inside, from: 198.18.0.0/15}
YAML
"$tandem" check --profile "$work/bench.yaml" >/dev/null
"$tandem" run --profile "$work/bench.yaml" --stats-interval-ms 1000 > "$work/tandem.out" 2> "$work/tandem.err" &
pid=$!
sleep "$seconds"
# The capture loops, so every pass replays each connection's SYN on its established state, which pf drops
# (and answers with a challenge ACK): those drops are expected, any other is a failure.
"$tandem" show counters --json --socket "$work/bench.sock" > "$work/counters.json"
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=
read -r replayed other < <(python3 -c '
import json, sys
c = {x["name"]: x["value"] for w in json.load(open(sys.argv[1])) for x in w["counters"]}
drops = sum(v for k, v in c.items() if k.startswith("drop_"))
print(c.get("drop_syn_on_established", 0), drops - c.get("drop_syn_on_established", 0))' "$work/counters.json")
# "stats: rx R tx T dropped D states S" once a second: rates are the differences of tx.
tandem_rates=$(awk '/^stats:/ {if (have) print $5 - last; last=$5; have=1}' "$work/tandem.err" | tail -n +3)
tandem_rate=$(echo "$tandem_rates" | median)
states=$(awk '/^stats:/ {s=$9} END {print s+0}' "$work/tandem.err")
[ -n "$tandem_rates" ] && [ "$tandem_rate" != 0 ] || { echo "no rates from tandem:"; tail -30 "$work/tandem.err"; exit 1; }

ratio=$(awk -v a="$tandem_rate" -v b="$testpmd" 'BEGIN {printf "%.2f", a / b}')
line=$(awk -v a="$tandem_rate" -v b="$testpmd" -v m="$macswap" -v c="$csum" -v r="$ratio" -v f="$flows" -v s="$states" -v d="$other" -v y="$replayed" \
  'BEGIN {printf "testpmd io %.2f Mpps, macswap %.2f, csum %.2f; tandem %.2f Mpps forwarded, ratio %s of io, %.2f of macswap, %.2f of csum (%d connections, %d states, %d replayed SYNs dropped as pf does, %d other drops)", b/1e6, m/1e6, c/1e6, a/1e6, r, a/m, a/c, f, s, y, d}')
echo "== $line"
if [ "$other" != 0 ]; then echo "tandem dropped packets other than the replayed SYNs: the capture should be valid" >&2; exit 1; fi
if $write; then
  {
    echo
    echo "- $(date -u +%Y-%m-%d), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)),"
    echo "  \`scripts/bench-forward.sh --seconds $seconds\`: $line"
  } >> docs/benchmarks.md
fi
