#!/usr/bin/env bash
# The loads of scripts/pktgen/ against one appliance (wire mode, a state limit of 2,000) over net_memif:
#   udp-flows           1,024 UDP flows that the pass rule admits;
#   syn-flood           a SYN flood from one source over every source port;
#   syn-flood-sources   the same from varying sources.
# Where Pktgen-DPDK (`pktgen`, 23.06 or later) is installed, it sends the load from its command file in
# scripts/pktgen/ and the appliance's counters are checked. It is not packaged for Debian: where it is
# missing this says so and the same load comes from `tandem gen` (scripts/gen.sh), with the same checks:
# UDP flows all answered; a flood that stops at the state limit while established flows keep passing.
#
# Usage: scripts/pktgen.sh udp-flows|syn-flood|syn-flood-sources|all [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."

load=${1:-all}
shift || true
seconds=3
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 udp-flows|syn-flood|syn-flood-sources|all [--seconds S]" >&2; exit 2 ;;
  esac
done
case "$load" in
  all) loads=(udp-flows syn-flood syn-flood-sources) ;;
  udp-flows|syn-flood|syn-flood-sources) loads=("$load") ;;
  *) echo "unknown load $load" >&2; exit 2 ;;
esac
limit=2000

# check LOAD SUMMARY: the expectations of scripts/pktgen/LOAD.pkt on a gen.sh summary.
check() {
  python3 - "$1" "$2" "$limit" <<'PY'
import json, sys
load, s, limit = sys.argv[1], json.load(open(sys.argv[2])), int(sys.argv[3])
u, f = s["udp"], s["flood"]
problems = []
if u["lost"] != 0:
    problems.append(f"{u['lost']} of {u['sent']} datagrams of established flows unanswered")
if load == "udp-flows":
    if u["sent"] == 0:
        problems.append("no datagrams sent")
    print(f"pktgen.sh {load}: {u['answered']} of {u['sent']} datagrams answered")
else:
    # The 16 established UDP flows hold 16 states; the flood may take the rest and nothing more.
    if not (0 < f["passed"] <= limit - 16):
        problems.append(f"{f['passed']} flood SYNs let through, expected 1..{limit - 16}")
    print(f"pktgen.sh {load}: {f['passed']} of {f['sent']} SYNs let through (limit {limit}, 16 held by "
          f"established flows), {u['answered']} of {u['sent']} datagrams of the established flows answered")
for p in problems:
    print(f"pktgen.sh {load}: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
}

if ! command -v pktgen >/dev/null; then
  echo "pktgen.sh: Pktgen-DPDK is not installed (it is not packaged for Debian); the loads of scripts/pktgen/ come from tandem gen" >&2
  work=$(mktemp -d /tmp/tandem-pktgen.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  for l in "${loads[@]}"; do
    case "$l" in
      udp-flows) args=(--udp-flows 1024 --udp-rate 100) ;;
      syn-flood) args=(--udp-flows 16 --udp-rate 1000 --flood 200000 --flood-sources 203.0.113.200/32) ;;
      syn-flood-sources) args=(--udp-flows 16 --udp-rate 1000 --flood 200000 --flood-sources 203.0.113.0/24) ;;
    esac
    scripts/gen.sh --nodes 1 --seconds "$seconds" --concurrent 0 --states "$limit" --polling adaptive \
      "${args[@]}" --json "$work/$l.json" >/dev/null 2>"$work/$l.err" || { tail -n 5 "$work/$l.err" >&2; exit 1; }
    check "$l" "$work/$l.json"
  done
  exit 0
fi

# Pktgen-DPDK is here: it sends from scripts/pktgen/LOAD.pkt into the appliance's inside port and
# receives what the appliance forwards on its outside port; the appliance's counters are checked.
scripts/setup.sh >/dev/null
cargo build --release --locked --quiet
tandem=$PWD/target/release/tandem
work=$(mktemp -d /tmp/tandem-pktgen.XXXXXX)
fw=
cleanup() {
  [ -n "$fw" ] && kill -INT "$fw" 2>/dev/null && wait "$fw" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
for l in "${loads[@]}"; do
  rm -f "$work"/*.sock
  cat > "$work/fw.yaml" <<YAML
node: {name: fw, host-id: 0x0a0000f1}
dpdk:
  eal-args: [--no-huge, --no-pci, --no-shconf, --file-prefix, pktgen-fw-$$, -m, "1024"]
  mbufs: 32767
ports:
  - {name: inside, device: "net_memif0,role=server,socket=$work/in.sock,socket-abstract=no"}
  - {name: outside, device: "net_memif1,role=server,socket=$work/out.sock,socket-abstract=no"}
workers: {cores: [1], polling: adaptive}
control: {admin-socket: $work/fw.sock}
forwarding: {mode: wire, pairs: [[inside, outside]]}
limits: {states: $limit}
rules:
  - {label: clients-out, action: pass, direction: in, port: inside, from: 198.18.0.0/16}
YAML
  "$tandem" run --profile "$work/fw.yaml" > "$work/fw.log" 2>&1 &
  fw=$!
  for _ in $(seq 100); do [ -S "$work/fw.sock" ] && break; sleep 0.1; done
  timeout --signal=KILL $((seconds + 10)) pktgen -l 0-1 --no-huge -m 1024 --no-pci --no-shconf \
    --file-prefix "pktgen-$$" --vdev="net_memif0,role=client,socket=$work/in.sock,socket-abstract=no" \
    --vdev="net_memif1,role=client,socket=$work/out.sock,socket-abstract=no" \
    -- -T -P -m "1.[0-1]" -f "scripts/pktgen/$l.pkt" </dev/null >"$work/pktgen.log" 2>&1 &
  pg=$!
  sleep "$((seconds + 3))"
  "$tandem" show counters --json --socket "$work/fw.sock" > "$work/counters.json"
  kill -KILL "$pg" 2>/dev/null || true
  wait "$pg" 2>/dev/null || true
  kill -INT "$fw" 2>/dev/null || true
  wait "$fw" 2>/dev/null || true
  fw=
  python3 - "$l" "$work/counters.json" "$limit" <<'PY'
import json, sys
load, limit = sys.argv[1], int(sys.argv[3])
c = {}
for w in json.load(open(sys.argv[2])):
    for x in w["counters"]:
        c[x["name"]] = c.get(x["name"], 0) + x["value"]
created, full = c.get("states_created", 0), c.get("drop_state_limit", 0)
other = sum(v for k, v in c.items() if k.startswith("drop_") and k != "drop_state_limit")
ok = (created == 1024 and full == 0) if load == "udp-flows" else (created == limit and full > 0)
print(f"pktgen.sh {load} (Pktgen-DPDK): states_created {created}, drop_state_limit {full}, other drops {other}")
sys.exit(0 if ok and other == 0 else 1)
PY
done
