#!/usr/bin/env bash
# The whole benchmark set in one run, side by side, with progress on stderr; writes its section of
# docs/benchmarks.md (between the bench.sh markers) and the plots docs/bench-flows.svg and
# docs/bench-conns.svg:
#   1. forwarding against dpdk-testpmd (scripts/bench-forward.sh);
#   2. the generator's own rates (its two ports a memif pair): connections/s, and stateless packets/s
#      against dpdk-testpmd txonly into memif (Pktgen-DPDK is not packaged for Debian; where `pktgen` is
#      installed it is noted, and the same load is the baseline);
#   3. new connections per second through one node (tandem gen over memif) against the generator alone, at
#      three concurrencies (the state table holds every connection of a run);
#   4. UDP packets/s through one node against the number of flows;
#   5. a SYN flood against a state limit of 2,000 while UDP flows established before it keep passing;
#   6. one bulk TCP connection through one node, then through two on asymmetric paths, and the sync bytes
#      per forwarded gigabit of the second.
# Each number is the median of --runs runs of --seconds.
#
# Usage: scripts/bench.sh [--runs N] [--seconds S] [--no-write]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3
seconds=2
write=true
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --no-write) write=false; shift ;;
    *) echo "usage: $0 [--runs N] [--seconds S] [--no-write]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh >/dev/null
cargo build --release --locked --quiet
tandem=$PWD/target/release/tandem
work=$(mktemp -d /tmp/tandem-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM
progress() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR==0) {print 0} else if (NR%2) {print v[(NR+1)/2]} else {print (v[NR/2]+v[NR/2+1])/2}}'; }
# field FILE EXPR: a value of a gen.sh summary (EXPR in Python over `s`).
field() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print($2)" "$1"; }

# gen_median EXPR ARGS...: the median over the runs of EXPR on the summary of scripts/gen.sh ARGS.
gen_median() {
  local expr=$1 i
  shift
  for ((i = 0; i < runs; i++)); do
    scripts/gen.sh --seconds "$seconds" "$@" --json "$work/run.json" >/dev/null 2>"$work/run.err" ||
      { tail -n 5 "$work/run.err" >&2; exit 1; }
    field "$work/run.json" "$expr"
  done | median
}

out=$work/section.md
{
  echo "<!-- bench.sh begin: written by scripts/bench.sh; everything up to the end marker is replaced -->"
  echo "## Load generation and the whole benchmark set (\`scripts/bench.sh\`)"
  echo
  echo "Run $(date -u +%Y-%m-%d) at commit $(git rev-parse --short HEAD) on $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)),"
  echo "\`scripts/bench.sh --runs $runs --seconds $seconds\`: each number is the median of $runs runs of ${seconds} s, all"
  echo "measured in this one run. The generator and each appliance poll on their own core where the machine"
  echo "has them (2 here: generator on CPU 0, the appliance's worker on CPU 1; with two appliances both"
  echo "workers and sync cores share CPU 1 and poll adaptively)."
  echo
} > "$out"

progress "1/6 forwarding against dpdk-testpmd"
fwd=$(scripts/bench-forward.sh --seconds 6 2>/dev/null | awk '/^== testpmd/ {sub(/^== /, ""); print}')
{
  echo "### Forwarding"
  echo
  echo "\`scripts/bench-forward.sh --seconds 6\`: $fwd."
  echo
} >> "$out"

progress "2/6 the generator alone"
gen_cps=$(gen_median "s['tcp']['completed_per_s']" --nodes 0 --concurrent 100 --udp-flows 0)
gen_pps=$(gen_median "s['tx_pps']" --nodes 0 --concurrent 0 --udp-flows 64 --udp-rate 400000)
txonly=0
if command -v dpdk-testpmd >/dev/null; then
  for ((i = 0; i < runs; i++)); do
    rm -f "$work/txonly.sock"
    timeout --signal=INT $((seconds + 4)) dpdk-testpmd --no-huge -m 1024 --no-pci --no-shconf --file-prefix "bench-rx-$$" \
      --lcores=0@1,1@1 --main-lcore=0 --vdev="net_memif0,role=server,socket=$work/txonly.sock,socket-abstract=no" \
      -- --forward-mode=rxonly --stats-period 1 --nb-cores=1 -a </dev/null >"$work/rx.out" 2>&1 &
    rx=$!
    sleep 1
    timeout --signal=INT $((seconds + 2)) dpdk-testpmd --no-huge -m 1024 --no-pci --no-shconf --file-prefix "bench-tx-$$" \
      --lcores=0@0,1@0 --main-lcore=0 --vdev="net_memif0,role=client,socket=$work/txonly.sock,socket-abstract=no" \
      -- --forward-mode=txonly --txpkts=106 --stats-period 1 --nb-cores=1 -a </dev/null >"$work/tx.out" 2>&1 || true
    kill -INT "$rx" 2>/dev/null || true
    wait "$rx" 2>/dev/null || true
    awk '/Tx-pps:/ {print $2}' "$work/tx.out" | tail -n +2 | median
  done | median > "$work/txonly"
  txonly=$(cat "$work/txonly")
fi
pktgen_note="Pktgen-DPDK is not installed here (not packaged for Debian), so the stateless baseline is dpdk-testpmd txonly into memif, 106-byte frames (the size of the generator's UDP frames)."
command -v pktgen >/dev/null && pktgen_note="Pktgen-DPDK is installed (scripts/pktgen/ has its profiles); the baseline in this table is dpdk-testpmd txonly, the same load."
pps_ratio=$(awk -v a="$gen_pps" -v b="$txonly" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}')
{
  echo "### The generator's own rates"
  echo
  echo "| what | measured | target | met? |"
  echo "|---|---:|---|---|"
  echo "| full TCP connections/s (handshake, 64-byte request, 64-byte response, FIN both ways), 100 concurrent, one core playing both ends | $(printf '%.0f' "$gen_cps") | at least 200,000 | $(awk -v a="$gen_cps" 'BEGIN {print (a >= 200000) ? "yes" : "no"}') |"
  echo "| stateless UDP frames/s sent (each answered, parsed and timed), one core | $(printf '%.0f' "$gen_pps") | 0.5 of the stateless tool | $(awk -v r="$pps_ratio" 'BEGIN {print (r != "n/a" && r >= 0.5) ? "yes" : "no"}') ($pps_ratio of testpmd txonly's $(printf '%.0f' "$txonly")) |"
  echo
  echo "$pktgen_note The generator builds and checksums every frame, and parses, checks and times every"
  echo "frame that comes back, on the same core; txonly sends one prebuilt frame over and over and receives"
  echo "nothing, which is what a stateless tool does."
  echo
} >> "$out"

progress "3/6 connections/s through one node against the generator alone"
conn_pts_node=""
conn_pts_gen=""
{
  echo "### New connections per second through one node"
  echo
  echo "| concurrent connections | generator alone (conns/s) | through one node (conns/s) | ratio | states created in the last run (all still in the table) |"
  echo "|---:|---:|---:|---:|---:|"
} >> "$out"
for c in 100 1000 10000; do
  alone=$(gen_median "s['tcp']['completed_per_s']" --nodes 0 --concurrent "$c" --udp-flows 0)
  node=$(gen_median "s['tcp']['completed_per_s']" --nodes 1 --concurrent "$c" --udp-flows 0)
  failed=$(field "$work/run.json" "s['tcp']['failed']")
  states=$(field "$work/run.json" "s['tcp']['started']")
  conn_pts_gen+="$c:$alone,"
  conn_pts_node+="$c:$node,"
  printf '| %s | %.0f | %.0f | %s | %s (%s failed) |\n' "$c" "$alone" "$node" \
    "$(awk -v a="$node" -v b="$alone" 'BEGIN {printf "%.2f", a / b}')" "$states" "$failed" >> "$out"
done
echo >> "$out"

progress "4/6 UDP packets/s through one node against the number of flows"
flow_pts=""
{
  echo "### UDP through one node against the number of flows"
  echo
  echo "Offered: 1,000,000 datagrams/s in all, each answered (so 2 M frames/s through the node when all pass)."
  echo
  echo "| flows | answered datagrams/s | lost |"
  echo "|---:|---:|---:|"
} >> "$out"
for f in 1 16 256 4096 65536; do
  per=$((1000000 / f))
  ans=$(gen_median "s['udp']['answered'] / $seconds" --nodes 1 --concurrent 0 --udp-flows "$f" --udp-rate "$per")
  lost=$(field "$work/run.json" "s['udp']['lost']")
  flow_pts+="$f:$ans,"
  printf '| %s | %.0f | %s (last run) |\n' "$f" "$ans" "$lost" >> "$out"
done
echo >> "$out"

progress "5/6 SYN flood against a state limit of 2,000"
scripts/gen.sh --nodes 1 --seconds "$seconds" --concurrent 0 --udp-flows 16 --udp-rate 1000 --flood 500000 \
  --states 2000 --json "$work/flood.json" >/dev/null 2>"$work/flood.err" || { tail -n 5 "$work/flood.err" >&2; exit 1; }
{
  echo "### SYN flood against a state limit of 2,000"
  echo
  echo "16 UDP flows at 1,000 datagrams/s each start with the flood (500,000 SYNs/s from 203.0.113.0/24, passed"
  echo "by a rule): $(field "$work/flood.json" "s['flood']['sent']") SYNs sent, $(field "$work/flood.json" "s['flood']['passed']") let through"
  echo "(the table's 2,000 states less the flows' 16), $(field "$work/flood.json" "s['udp']['answered']") of"
  echo "$(field "$work/flood.json" "s['udp']['sent']") datagrams answered."
  echo
} >> "$out"

progress "6/6 one bulk TCP connection, one node and two on asymmetric paths"
one=$(gen_median "s['rx_gbps']" --nodes 1 --concurrent 1 --rate 1 --response 1000000000 --timeout-ms 60000 --udp-flows 0 --polling adaptive)
two=$(gen_median "s['rx_gbps']" --nodes 2 --concurrent 1 --rate 1 --response 1000000000 --timeout-ms 60000 --udp-flows 0 --polling adaptive)
sync_bytes=$(field "$work/run.json" "sum(n['sync']['tx_bytes'] for n in s['appliances'].values() if 'sync' in n)")
data_bits=$(field "$work/run.json" "s['tx_gbps'] * s['elapsed_s']")
{
  echo "### Asymmetric per-flow rate and sync cost"
  echo
  echo "One TCP connection at a time whose response is 1 GB (the generator's endpoint: slow start, congestion"
  echo "avoidance, SACK, 256 KB windows), adaptive polling everywhere:"
  echo
  echo "| path | Gbit/s of frames received by the generator | ratio |"
  echo "|---|---:|---:|"
  printf '| one node | %.3f | 1.00 |\n' "$one" 
  printf '| two nodes, asymmetric (out through fw-a, back through fw-b) | %.3f | %s |\n' "$two" \
    "$(awk -v a="$two" -v b="$one" 'BEGIN {printf "%.2f", a / b}')"
  echo
  echo "Sync bytes per forwarded gigabit (last two-node run, both nodes' sync ports, frames counted once as"
  echo "the generator sent them): $(awk -v s="$sync_bytes" -v d="$data_bits" 'BEGIN {if (d > 0) printf "%.0f", s / d; else print "n/a"}') bytes."
  echo
  echo "![connections/s against open connections](bench-conns.svg)"
  echo "![UDP against flows](bench-flows.svg)"
  echo "<!-- bench.sh end -->"
} >> "$out"

"$tandem" plot --out "$work/bench-conns.svg" --title "new connections/s against open connections" \
  --x-label "concurrent connections (each run leaves some 400,000 states in the table)" --y-label "connections/s" --log-x \
  --series "generator alone=${conn_pts_gen%,}" --series "through one node=${conn_pts_node%,}"
"$tandem" plot --out "$work/bench-flows.svg" --title "UDP through one node against flows (1 M/s offered)" \
  --x-label "flows" --y-label "answered datagrams/s" --log-x --series "answered=${flow_pts%,}"

cat "$out"
if $write; then
  cp "$work/bench-conns.svg" "$work/bench-flows.svg" docs/
  python3 - docs/benchmarks.md "$out" <<'PY'
import sys
doc, new = open(sys.argv[1]).read(), open(sys.argv[2]).read().rstrip("\n")
begin, end = "<!-- bench.sh begin", "<!-- bench.sh end -->"
if begin in doc and end in doc:
    head, rest = doc.split(begin, 1)
    doc = head + new + rest.split(end, 1)[1]
else:
    doc = doc.rstrip("\n") + "\n\n" + new + "\n"
open(sys.argv[1], "w").write(doc)
PY
  progress "wrote docs/benchmarks.md, docs/bench-conns.svg and docs/bench-flows.svg"
fi
