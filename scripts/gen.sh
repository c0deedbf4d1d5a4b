#!/usr/bin/env bash
# `tandem gen` through appliances over net_memif, one process each: stateful TCP connections (handshake,
# request, response, teardown) and UDP flows, both ends played by the generator.
#
#   --nodes 0   no appliance: the generator's two ports are a memif pair of its own (its own rate).
#   --nodes 1   one appliance in wire mode: the generator's client port faces its inside port, the server
#               port its outside port.
#   --nodes 2   two appliances syncing over a memif link, on asymmetric paths: a connection leaves through
#               fw-a and its answers come back through fw-b (fw-a defers each first packet until fw-b has
#               the state; fw-b holds what arrives before the sync).
#
# Prints the generator's JSON summary, with the appliances' port counters under "appliances"; with
# --check exits non-zero unless every connection completed and every datagram was answered. --json FILE
# keeps the summary. --concurrent 0 or --udp-flows 0 leave that load out; --flood R adds R SYNs a second
# from --flood-sources (203.0.113.0/24 by default, passed by a rule); --response B makes each
# connection's response B bytes (a bulk transfer).
#
# Usage: scripts/gen.sh [--nodes 0|1|2] [--seconds S] [--concurrent N] [--rate R] [--response B]
#                       [--timeout-ms T] [--udp-flows F] [--udp-rate R] [--flood R]
#                       [--flood-sources P] [--states N] [--teardown fin|rst]
#                       [--polling busy|adaptive] [--json FILE] [--check]
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=1
seconds=3
concurrent=1000
rate=0
udp_flows=16
udp_rate=1000
response=64
timeout_ms=3000
flood=0
flood_sources=203.0.113.0/24
states=1000000
teardown=fin
polling=busy
json=
check=false
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --concurrent) concurrent=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --udp-flows) udp_flows=$2; shift 2 ;;
    --response) response=$2; shift 2 ;;
    --timeout-ms) timeout_ms=$2; shift 2 ;;
    --flood) flood=$2; shift 2 ;;
    --flood-sources) flood_sources=$2; shift 2 ;;
    --udp-rate) udp_rate=$2; shift 2 ;;
    --states) states=$2; shift 2 ;;
    --teardown) teardown=$2; shift 2 ;;
    --polling) polling=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    --check) check=true; shift ;;
    *) echo "usage: $0 [--nodes 0|1|2] [--seconds S] [--concurrent N] [--rate R] [--response B] [--timeout-ms T] [--udp-flows F] [--udp-rate R] [--flood R] [--flood-sources P] [--states N] [--teardown fin|rst] [--polling busy|adaptive] [--json FILE] [--check]" >&2; exit 2 ;;
  esac
done
case "$nodes" in 0|1|2) ;; *) echo "--nodes is 0, 1 or 2" >&2; exit 2 ;; esac

scripts/setup.sh >/dev/null
cargo build --release --locked --quiet
tandem=$PWD/target/release/tandem

work=$(mktemp -d /tmp/tandem-gen.XXXXXX)
pids=()
cleanup() {
  # The generator has closed its ports; stop the appliances before removing their sockets.
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "${GEN_KEEP:-}" ] && echo "kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT INT TERM

memif() { echo "net_memif$1,role=$2,socket=$work/$3.sock,socket-abstract=no"; }

# appliance NAME HOST-ID WORKER-CORE [SYNC-ROLE SYNC-ADDRESS PEER]
appliance() {
  local name=$1 host=$2 core=$3
  local idle=""
  [ "$polling" = adaptive ] && idle=", idle-sleep-us: 20"
  {
    echo "node: {name: $name, host-id: $host}"
    echo "dpdk:"
    echo "  eal-args: [--no-huge, --no-pci, --no-shconf, --file-prefix, gen-$name-$$, -m, \"1024\"]"
    echo "  mbufs: 32767"
    echo "ports:"
    echo "  - {name: inside, device: \"$(memif 0 server "$name-in")\"}"
    echo "  - {name: outside, device: \"$(memif 1 server "$name-out")\"}"
    if [ $# -gt 3 ]; then
      echo "  - {name: sync, device: \"$(memif 2 "$4" sync)\", addresses: [$5/24]}"
    fi
    echo "workers: {cores: [$core], polling: $polling$idle}"
    echo "control: {admin-socket: $work/$name.sock}"
    echo "forwarding: {mode: wire, pairs: [[inside, outside]]}"
    echo "limits: {states: $states}"
    if [ $# -gt 3 ]; then
      echo "sync:"
      echo "  port: sync"
      echo "  core: $core"
      echo "  transport: unicast"
      echo "  peers: [{address: $6}]"
      echo "  keepalive-ms: 100"
      echo "  peer-dead-ms: 2000"
      echo "  delivery: {acknowledged: true}"
      echo "  defer: {enabled: true, timeout-us: 20000}"
      echo "  hold: {enabled: true}"
    fi
    echo "rules:"
    echo "  - {label: clients-out, action: pass, direction: in, port: inside, from: 198.18.0.0/16}"
    echo "  - {label: flood-sources, action: pass, direction: in, port: inside, from: $flood_sources}"
    echo "  - {label: block-the-rest, action: block}"
  } > "$work/$name.yaml"
  "$tandem" check --profile "$work/$name.yaml" >/dev/null
  "$tandem" run --profile "$work/$name.yaml" > "$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    [ -S "$work/$name.sock" ] && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "gen.sh: appliance $name did not start:" >&2
  tail -n 5 "$work/$name.log" >&2
  exit 1
}

if [ "$nodes" = 0 ]; then
  gen_ports="  - {name: c, device: \"$(memif 0 server loop)\"}
  - {name: s, device: \"$(memif 1 client loop)\"}"
  client_port=c
  server_port=s
elif [ "$nodes" = 1 ]; then
  appliance fw 0x0a0000f1 1
  gen_ports="  - {name: c, device: \"$(memif 0 client fw-in)\"}
  - {name: s, device: \"$(memif 1 client fw-out)\"}"
  client_port=c
  server_port=s
else
  appliance fw-a 0x0a0000f1 1 server 198.18.255.1 198.18.255.2
  appliance fw-b 0x0a0000f2 1 client 198.18.255.2 198.18.255.1
  # Client frames leave towards fw-a's inside; server frames towards fw-b's outside.
  gen_ports="  - {name: a-in, device: \"$(memif 0 client fw-a-in)\"}
  - {name: a-out, device: \"$(memif 1 client fw-a-out)\"}
  - {name: b-in, device: \"$(memif 2 client fw-b-in)\"}
  - {name: b-out, device: \"$(memif 3 client fw-b-out)\"}"
  client_port=a-in
  server_port=b-out
  # The nodes must be peers (bulk update done) before the first connection.
  for _ in $(seq 100); do
    "$tandem" show sync --socket "$work/fw-b.sock" 2>/dev/null | grep -q '^in sync: yes' && break
    sleep 0.1
  done
fi

cat > "$work/gen.yaml" <<YAML
dpdk:
  eal-args: [--no-huge, --no-pci, --no-shconf, --file-prefix, gen-$$, -m, "1024"]
  mbufs: 32767
ports:
$gen_ports
core: 0
duration-ms: $((seconds * 1000))
sides: {client-port: $client_port, server-port: $server_port, clients: 198.18.0.0/16, servers: 198.19.0.0/24}
YAML
if [ "$concurrent" != 0 ]; then
  echo "tcp: {concurrent: $concurrent, rate: $rate, request: 64, response: $response, teardown: $teardown, timeout-ms: $timeout_ms}" >> "$work/gen.yaml"
fi
if [ "$udp_flows" != 0 ]; then
  echo "udp: {flows: $udp_flows, packet-rate: $udp_rate, payload: 64}" >> "$work/gen.yaml"
fi
if [ "$flood" != 0 ]; then
  echo "flood: {rate: $flood, sources: $flood_sources}" >> "$work/gen.yaml"
fi

echo "== tandem gen through $nodes appliance(s): ${seconds}s, $concurrent concurrent connections, rate ${rate:-0} (0: unlimited), $udp_flows UDP flows at $udp_rate/s" >&2
status=0
args=(gen --profile "$work/gen.yaml" --out "$work/summary.json")
$check && args+=(--fail-on-loss)
"$tandem" "${args[@]}" > /dev/null || status=$?
[ -f "$work/summary.json" ] || { echo "gen.sh: the generator wrote no summary" >&2; exit 1; }
# The appliances' port counters, read before they stop.
for sock in "$work"/fw*.sock; do
  [ -S "$sock" ] || continue
  "$tandem" show ports --json --socket "$sock" > "${sock%.sock}.ports.json" 2>/dev/null || true
done
python3 - "$work" <<'PY'
import glob, json, os, sys
work = sys.argv[1]
s = json.load(open(f"{work}/summary.json"))
s["appliances"] = {}
for f in sorted(glob.glob(f"{work}/fw*.ports.json")):
    try:
        ports = json.load(open(f))
    except ValueError:
        continue
    s["appliances"][os.path.basename(f)[: -len(".ports.json")]] = {
        p["name"]: {c["name"]: c["value"] for c in p["counters"]} for p in ports
    }
json.dump(s, open(f"{work}/summary.json", "w"), indent=2)
PY
cat "$work/summary.json"
[ -n "$json" ] && cp "$work/summary.json" "$json"

for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
pids=()
for log in "$work"/fw*.log; do
  [ -f "$log" ] || continue
  echo "== $(basename "$log" .log)" >&2
  grep -E '^workers:|^sync' "$log" >&2 || tail -5 "$log" >&2
done
python3 - "$work/summary.json" >&2 <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
t, u = s["tcp"], s["udp"]
print(f"gen: {t['completed']} of {t['started']} connections completed ({t['completed_per_s']:.0f}/s), "
      f"{t['failed']} failed, {t['retransmits']} retransmissions, {t['timeouts']} timeouts; handshake p50 {t['connect']['p50_us']} us "
      f"p99 {t['connect']['p99_us']} us; udp {u['answered']} of {u['sent']} answered, rtt p99 {u['rtt']['p99_us']} us; "
      f"flood {s['flood']['passed']} of {s['flood']['sent']} SYNs let through")
PY
exit "$status"
