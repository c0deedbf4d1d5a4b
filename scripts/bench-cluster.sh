#!/usr/bin/env bash
# The namespace cluster's numbers, each a median of --runs iperf3 runs of --seconds, measured side by side
# in one run of this script (the machine is shared and noisy: only numbers from one run are compared):
#   1. the path itself: one Tandem node against dpdk-testpmd mac forwarding on the same af_xdp veths;
#   2. two firewalls: symmetric, asymmetric and asymmetric with 4 streams, for window-aware sync alone,
#      with hold-and-recheck, and with hold-and-recheck and owner redirect (the shipped profiles);
#   3. three firewalls: the same three variants, each direction pair in turn;
#   4. two firewalls whose sync link is delayed 2 ms each way (`tandem relay` in fw-b's sync link).
# Window drops, held packets and redirected frames are summed over the asymmetric runs. Prints Markdown;
# with --write appends it to docs/benchmarks.md.
#
# Usage: scripts/bench-cluster.sh [--runs N] [--seconds S] [--delay-us D] [--write]
set -euo pipefail
cd "$(dirname "$0")/.."

runs=5
secs=5
delay_us=2000
write=false
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    --delay-us) delay_us=$2; shift 2 ;;
    --write) write=true; shift ;;
    *) echo "usage: $0 [--runs N] [--seconds S] [--delay-us D] [--write]" >&2; exit 2 ;;
  esac
done

scripts/setup.sh >/dev/null
command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd not found (package dpdk)" >&2; exit 1; }
cargo build --release --locked --quiet
tandem=$PWD/target/release/tandem
work=$(mktemp -d /tmp/tandem-bench-cluster.XXXXXX)
profiles=$work/profiles
mkdir -p "$profiles"
# shellcheck source=scripts/lib/cluster.sh
. scripts/lib/cluster.sh
report=$work/report.md

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_fws
  pkill -INT -f "tandem relay" 2>/dev/null || true
  pkill -f "dpdk-testpmd.*tnd-bench" 2>/dev/null || true
  scripts/netns.sh down >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

say() { echo "$*" | tee -a "$report"; }

# The shipped profiles, or a variant of them: window-aware (no hold, no redirect), hold (no redirect),
# redirect (as shipped: hold-and-recheck and redirect auto).
write_profiles() {
  local variant=$1 n
  for n in a b c; do
    case "$variant" in
      window-aware) sed 's/^  redirect: auto$/  redirect: off\n  hold: {enabled: false}/' ;;
      hold) sed 's/^  redirect: auto$/  redirect: off/' ;;
      redirect) cat ;;
    esac < "config/profiles/netns/fw-$n.yaml" > "$profiles/fw-$n.yaml"
  done
}

# The window drops, held packets and redirected frames of every running firewall, as "d h r".
marks() {
  echo "$(sum_counter counters drop_out_of_window) $(sum_counter sync held) $(sum_counter sync redirected_to_owner)"
}

# 1. The path: testpmd mac forwarding against one Tandem node, alternating, on fw-a's af_xdp veths.
bench_path() {
  local tp=() td=() i client_mac server_mac in_mac out_mac
  write_profiles redirect
  scripts/netns.sh up 2 >/dev/null
  via a a
  client_mac=$(ip netns exec tnd-client cat /sys/class/net/eth0/address)
  server_mac=$(ip netns exec tnd-server cat /sys/class/net/eth0/address)
  in_mac=$(ip netns exec tnd-fwa cat /sys/class/net/in/address)
  out_mac=$(ip netns exec tnd-fwa cat /sys/class/net/out/address)
  ip netns exec tnd-server iperf3 -s -D
  for ((i = 0; i < runs; i++)); do
    # testpmd answers no ARP: the hosts get the ports' MACs statically. It stops when its standard input
    # ends, so that stays open.
    ip netns exec tnd-client ip neigh replace 198.18.1.1 lladdr "$in_mac" dev eth0 nud permanent
    ip netns exec tnd-server ip neigh replace 198.19.1.1 lladdr "$out_mac" dev eth0 nud permanent
    ip netns exec tnd-fwa dpdk-testpmd --no-huge -m 512 --no-pci --no-shconf --file-prefix tnd-bench-tp \
      --lcores=0@0,1@1 --main-lcore=0 --vdev=net_af_xdp0,iface=in --vdev=net_af_xdp1,iface=out -- \
      --forward-mode=mac --eth-peer=0,"$client_mac" --eth-peer=1,"$server_mac" --nb-cores=1 -a \
      --total-num-mbufs=16384 < <(sleep 3600) > "$work/testpmd.out" 2>&1 &
    local tp_pid=$!
    sleep 2
    tp+=("$(iperf -t "$secs")")
    kill -TERM "$tp_pid" 2>/dev/null || true
    wait "$tp_pid" 2>/dev/null || true
    pkill -f "^sleep 3600$" 2>/dev/null || true
    ip netns exec tnd-client ip neigh flush dev eth0
    ip netns exec tnd-server ip neigh flush dev eth0
    start_fw a
    wait_in_sync a 150 || true
    td+=("$(iperf -t "$secs")")
    stop_fws
  done
  stop_cluster
  local m_tp m_td
  m_tp=$(median "${tp[@]}"); m_td=$(median "${td[@]}")
  say "| one node, single stream | testpmd mac $m_tp | Tandem $m_td | $(ratio "$m_td" "$m_tp") of testpmd (target 0.9) |"
  say "|   runs (Mbit/s) | ${tp[*]} | ${td[*]} | |"
}

# The asymmetric pair of run $2 with $1 firewalls: fw-a/fw-b with two; with three, each ordered pair of a
# rotation in turn.
asym_pair() {
  if [ "$1" = 2 ]; then echo "a b"; return; fi
  case $(($2 % 3)) in 0) echo "a b" ;; 1) echo "b c" ;; *) echo "c a" ;; esac
}

# 2, 3 and 4. Symmetric, asymmetric and asymmetric with 4 streams through $1 firewalls, for variant $2
# (with the relayed sync link when $3 is `relay`).
bench_cluster() {
  local nodes=$1 variant=$2 relay=${3:-} sym=() asym=() asym4=() i before after
  write_profiles "$variant"
  if [ -n "$relay" ]; then
    start_cluster "$nodes" relay --delay-us "$delay_us"
  else
    start_cluster "$nodes"
  fi
  read -r -a before <<< "$(marks)"
  for ((i = 0; i < runs; i++)); do
    via a a; sym+=("$(iperf -t "$secs")")
    # shellcheck disable=SC2046
    via $(asym_pair "$nodes" "$i")
    asym+=("$(iperf -t "$secs")")
    asym4+=("$(iperf -t "$secs" -P 4)")
  done
  read -r -a after <<< "$(marks)"
  stop_cluster
  local ms ma ma4
  ms=$(median "${sym[@]}"); ma=$(median "${asym[@]}"); ma4=$(median "${asym4[@]}")
  say "| $variant | $ms | $ma ($(ratio "$ma" "$ms")) | $ma4 ($(ratio "$ma4" "$ms")) | $((after[0] - before[0])) | $((after[1] - before[1])) | $((after[2] - before[2])) |"
  say "|   runs | ${sym[*]} | ${asym[*]} | ${asym4[*]} | | | |"
}

header() {
  say ""
  say "$1"
  say ""
  say "| variant | symmetric Mbit/s | asymmetric (vs symmetric) | asymmetric, 4 streams | window drops | held | redirected |"
  say "|---|---:|---:|---:|---:|---:|---:|"
}

say "### Namespace cluster, $(date -u +%Y-%m-%d): medians of $runs iperf3 runs of ${secs} s (\`scripts/bench-cluster.sh\`)"
say ""
say "| path | baseline Mbit/s | Tandem Mbit/s | ratio |"
say "|---|---:|---:|---:|"
bench_path
header "Two firewalls (client->server through fw-a, server->client through fw-b):"
for v in window-aware hold redirect; do bench_cluster 2 "$v"; done
header "Three firewalls (the asymmetric runs rotate over fw-a/fw-b, fw-b/fw-c, fw-c/fw-a):"
for v in window-aware hold redirect; do bench_cluster 3 "$v"; done
header "Two firewalls, fw-b's sync link delayed $((delay_us / 1000)) ms each way (\`tandem relay\`):"
for v in window-aware hold redirect; do bench_cluster 2 "$v" relay; done

if $write; then
  { echo; cat "$report"; } >> docs/benchmarks.md
  echo "appended to docs/benchmarks.md"
fi
