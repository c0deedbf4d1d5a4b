#!/usr/bin/env bash
# Tandem's demo: an active-active cluster carrying real Linux TCP over asymmetric paths, and a failover.
#
# Builds, sets up network namespaces (scripts/netns.sh: a client, a server, two firewalls and a sync link),
# starts two `tandem` processes (DPDK net_af_xdp ports on the veths, adaptive polling, state sync over
# the sync link, deferral on) and then:
#   1. iperf3 through fw-a alone (symmetric), then client->server through fw-a and server->client through
#      fw-b (asymmetric), single stream and 4 streams;
#   2. 1,000 short HTTP-like connections on the asymmetric path (each SYN deferred until fw-b acknowledges
#      the new state);
#   3. the hosts' gateways become the VRRP virtual addresses (fw-a master inside, fw-b outside: the
#      asymmetric path by election); kill -9 fw-a while an iperf3 transfer runs, its sync link cut 20 ms
#      before (a node that hangs, then dies: fw-b's copies of its states lag what the endpoints did);
#      fw-b takes the inside address by VRRP alone (no route is changed), the transfer goes on, new
#      connections work; fw-a restarts, bulk-syncs and only then takes its address back;
# and prints a summary. Everything is torn down at the end, on error and on Ctrl-C.
#
#   scripts/demo.sh            the full demo (about a minute)
#   scripts/demo.sh --short    a shorter run with checks, for scripts/test.sh (exit status 1 if one fails)
#   scripts/demo.sh --nodes 3  three firewalls: the two directions of a flow take each pair in turn
set -euo pipefail
cd "$(dirname "$0")/.."

short=false
nodes=2
while [ $# -gt 0 ]; do
  case "$1" in
    --short) short=true ;;
    --nodes) nodes=${2:?}; shift ;;
    *) echo "usage: $0 [--short] [--nodes 2|3]" >&2; exit 2 ;;
  esac
  shift
done
if $short; then secs=3; conns=200; fo_secs=8; else secs=6; conns=1000; fo_secs=14; fi

scripts/setup.sh >/dev/null
echo "== building (release)"
cargo build --release --locked --quiet
tandem=$PWD/target/release/tandem

work=$(mktemp -d /tmp/tandem-demo.XXXXXX)
profiles=config/profiles/netns
# shellcheck source=scripts/lib/cluster.sh
. scripts/lib/cluster.sh

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for n in "${!fw_pid[@]}"; do kill -TERM "${fw_pid[$n]}" 2>/dev/null || true; done
  sleep 0.5
  scripts/netns.sh down >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM


echo "== network namespaces: client, server, $nodes firewalls, sync link"
scripts/netns.sh up "$nodes" >/dev/null
names=(a b); [ "$nodes" = 3 ] && names=(a b c)
for n in "${names[@]}"; do start_fw "$n"; done
for n in "${names[@]}"; do
  wait_in_sync "$n" 150 || { tail -20 "$work/fw$n.err"; echo "fw-$n did not come up"; exit 1; }
done
echo "   ${names[*]/#/fw-} running and in sync"
ip netns exec tnd-server iperf3 -s -D --logfile "$work/iperf-server.log"
ip netns exec tnd-server python3 scripts/conns.py serve 8080 &
disown $!
sleep 0.5

echo "== iperf3 through fw-a alone (symmetric), ${secs}s"
scripts/netns.sh route client a; scripts/netns.sh route server a
sym=$(iperf -t "$secs")
echo "   $sym Mbit/s"

drops_before=$(sum_counter counters drop_out_of_window)
held_before=$(sum_counter sync held)
released_before=$(sum_counter sync hold_released)
timeouts_before=$(sum_counter sync hold_timeout)
redirected_before=$(sum_counter sync redirected_to_owner)
redirect_states_before=$(sum_counter sync redirect_started)
sync_pk_before=$(sum_counter sync packets_out)
sync_by_before=$(sum_counter sync bytes_out)

if [ "$nodes" = 2 ]; then
  echo "== asymmetric: client->server through fw-a, server->client through fw-b, ${secs}s"
  scripts/netns.sh route server b
  asym=$(iperf -t "$secs")
  echo "   $asym Mbit/s, $(ratio "$asym" "$sym") of symmetric"
  asym4=$(iperf -t "$secs" -P 4)
  echo "   4 streams: $asym4 Mbit/s"
else
  echo "== three firewalls: each pair carries the two directions in turn, ${secs}s each"
  asym_list=()
  for pair in "a b" "b c" "c a"; do
    set -- $pair
    scripts/netns.sh route client "$1"; scripts/netns.sh route server "$2"
    r=$(iperf -t "$secs")
    asym_list+=("fw-$1/fw-$2 $r")
    echo "   client->server via fw-$1, back via fw-$2: $r Mbit/s"
    [ "${r%.*}" -gt 0 ] || fail "no throughput through fw-$1/fw-$2"
  done
  scripts/netns.sh route client a; scripts/netns.sh route server b
  asym=$(echo "${asym_list[0]}" | awk '{print $2}')
  asym4=""
fi
[ "${asym%.*}" -gt 0 ] || fail "no throughput on the asymmetric path"
drops=$(( $(sum_counter counters drop_out_of_window) - drops_before ))
held=$(( $(sum_counter sync held) - held_before ))
released=$(( $(sum_counter sync hold_released) - released_before ))
timeouts=$(( $(sum_counter sync hold_timeout) - timeouts_before ))
redirected=$(( $(sum_counter sync redirected_to_owner) - redirected_before ))
redirect_states=$(( $(sum_counter sync redirect_started) - redirect_states_before ))
sync_pk=$(( $(sum_counter sync packets_out) - sync_pk_before ))
sync_by=$(( $(sum_counter sync bytes_out) - sync_by_before ))
echo "   window drops $drops, held for the sync $held ($released passed after the update, $timeouts timed out), redirected to the owner $redirected frames ($redirect_states flows), sync traffic $sync_pk packets, $sync_by bytes"

echo "== $conns short connections on the asymmetric path (deferral on)"
deferred_before=$(counter a sync deferred)
awaited_before=$(sum_counter sync held_for_state)
found_before=$(sum_counter sync held_for_state_found)
conn_json=$(ip netns exec tnd-client python3 scripts/conns.py connect 198.19.1.10 8080 "$conns" || true)
echo "   $conn_json"
conn_ok=$(echo "$conn_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"])' 2>/dev/null || echo 0)
conn_p50=$(echo "$conn_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["connect_ms_p50"])' 2>/dev/null || echo "?")
conn_p99=$(echo "$conn_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["connect_ms_p99"])' 2>/dev/null || echo "?")
deferred=$(( $(counter a sync deferred) - deferred_before ))
awaited=$(( $(sum_counter sync held_for_state) - awaited_before ))
found=$(( $(sum_counter sync held_for_state_found) - found_before ))
iack_p50=$(counter a sync iack_p50)
iack_p99=$(counter a sync iack_p99)
[ "$conn_ok" = "$conns" ] || fail "only $conn_ok of $conns short connections succeeded"

echo "== port reuse: 5 connections from client port 40123, 1 s apart, each meeting the last one's closed state"
reuse_json=$(ip netns exec tnd-client python3 scripts/conns.py reuse 198.19.1.10 8080 5 1 40123 || true)
echo "   $reuse_json"
reuse_ok=$(echo "$reuse_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"])' 2>/dev/null || echo 0)
reuse_max=$(echo "$reuse_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["connect_ms_max"])' 2>/dev/null || echo 9999)
[ "$reuse_ok" = 5 ] || fail "port reuse: $reuse_ok of 5 connections"
# A SYN lost to the old state would cost a 1 s retransmission.
awk -v m="$reuse_max" 'BEGIN {exit !(m < 500)}' || fail "port reuse: a connect took $reuse_max ms"

fo_line="not run (two-node demo only)"
rejoin_line="-"
if [ "$nodes" = 2 ]; then
  echo "== failover by VRRP: the hosts' gateways are the virtual addresses; kill -9 fw-a during a ${fo_secs}s iperf3, its sync link cut 20 ms before"
  scripts/netns.sh route client vip
  scripts/netns.sh route server vip
  group_wait a inside-vip master 100 || fail "fw-a is not VRRP master inside"
  group_wait b outside-vip master 100 || fail "fw-b is not VRRP master outside"
  echo "   fw-a master of 198.18.1.254 (inside), fw-b of 198.19.1.254 (outside)"
  ip netns exec tnd-client iperf3 -c 198.19.1.10 -f m -i 1 --forceflush -t "$fo_secs" > "$work/fo.out" 2>&1 &
  iperf_pid=$!
  sleep 3
  probed_before=$(counter b sync hold_probed)
  ip netns exec tnd-sw ip link set a-sync down
  sleep 0.02
  # Connections opened across the takeover, one every 50 ms for 2 s from just before the kill.
  ip netns exec tnd-client python3 scripts/conns.py paced 198.19.1.10 8080 40 0.05 > "$work/across.json" 2>&1 &
  across_pid=$!
  sleep 0.1
  killed_at=$(date +%s.%N)
  kill -9 "${fw_pid[a]}"; unset 'fw_pid[a]'
  if group_wait b inside-vip master 300; then
    takeover=$(awk -v a="$killed_at" -v b="$(group_field b inside-vip changed_unix_ms)" 'BEGIN {printf "%.2f", b / 1000 - a}')
    echo "   fw-a killed; fw-b took 198.18.1.254 ${takeover} s later (VRRP, advertisements every 100 ms; no route changed)"
  else
    takeover="never"
    fail "fw-b did not take the inside address"
  fi
  wait "$across_pid" || true
  across_json=$(cat "$work/across.json")
  across_ok=$(echo "$across_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"])' 2>/dev/null || echo 0)
  across_max=$(echo "$across_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["connect_ms_max"])' 2>/dev/null || echo -)
  echo "   connections opened across the takeover: $across_json"
  [ "$across_ok" = 40 ] || fail "connections across the takeover: $across_ok of 40"
  echo "== new connections through fw-b alone"
  # The same server port as before: clients reuse ports, so these meet the closed connections' states.
  after_json=$(ip netns exec tnd-client python3 scripts/conns.py connect 198.19.1.10 8080 50 || true)
  after_ok=$(echo "$after_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"])' 2>/dev/null || echo 0)
  echo "   $after_json"
  [ "$after_ok" = 50 ] || fail "new connections after the failover: $after_ok of 50"
  if wait "$iperf_pid"; then fo_status=ok; else fo_status="iperf3 failed"; fi
  # Throughput in the intervals that ended after the kill (the first 3 s ran before it).
  after_mbit=$(awk '/sec/ && /Mbits\/sec/ && !/sender|receiver/ {split($3, t, "-"); if (t[1] + 0 >= 4) {s += $7; n++}} END {printf "%.0f", (n ? s / n : 0)}' "$work/fo.out")
  zero_intervals=$(awk '/sec/ && /bits\/sec/ && !/sender|receiver/ {split($3, t, "-"); if (t[1] + 0 >= 3 && $7 + 0 == 0) n++} END {print n + 0}' "$work/fo.out")
  probes=$(( $(counter b sync hold_probed) - probed_before ))
  echo "   iperf3: $fo_status; after the kill $after_mbit Mbit/s on average, $zero_intervals empty 1-s intervals; fw-b probed $probes endpoints for the numbers fw-a took with it"
  [ "$fo_status" = ok ] || { tail -5 "$work/fo.out"; fail "the established transfer did not survive the failover"; }
  if [ "$after_mbit" -le 0 ]; then
    fail "no data moved after the failover"
    show b counters | awk '$2 != 0' | head -40
    show b sync | head -40
  fi
  fo_line="by VRRP in $takeover s; established iperf3 $fo_status, $after_mbit Mbit/s after the kill ($zero_intervals empty seconds, $probes takeover probes), connections across the takeover $across_ok/40 (slowest $across_max ms), new connections $after_ok/50"

  echo "== restart fw-a: bulk update from fw-b, then in sync"
  ip netns exec tnd-sw ip link set a-sync up
  start_fw a
  t0=$(date +%s.%N)
  if wait_in_sync a 200; then
    rejoin=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
    states=$(show a states | grep -c 198.18.1.10 || true)
    rejoin_line="in sync ${rejoin}s after start (process start and DPDK included), $states states copied"
    synced_at=$(date +%s.%N)
    # Only in sync may it take its address back (preemption, its priority no longer demoted).
    if group_wait a inside-vip master 100; then
      back=$(group_field a inside-vip changed_unix_ms)
      back_after=$(awk -v a="$synced_at" -v b="$back" 'BEGIN {printf "%.2f", b / 1000 - a}')
      awk -v d="$back_after" 'BEGIN {exit !(d > -0.5)}' ||
        fail "fw-a took its address back ${back_after} s before it was in sync"
      rejoin_line="$rejoin_line; VRRP master inside again ${back_after} s after that"
    else
      fail "fw-a did not take its address back once in sync"
    fi
  else
    rejoin_line="NOT in sync after 20 s"
    fail "fw-a did not rejoin"
  fi
  echo "   $rejoin_line"
fi

echo
# Every sync datagram of the run, all firewalls: verified, or refused and by which check.
auth_ok=$(sum_counter sync auth_accepted)
auth_refused=0
for r in unsealed unknown_key bad_mac replayed too_many_senders; do
  auth_refused=$((auth_refused + $(sum_counter sync "auth_$r")))
done
auth_line="$auth_ok datagrams verified, $auth_refused refused (running firewalls)"
[ "$auth_ok" -gt 0 ] || fail "no sync datagram verified: is authentication on?"
[ "$auth_refused" = 0 ] || fail "$auth_refused sync datagrams failed authentication"
# Acknowledged delivery (on in the profiles): numbered packets, acknowledgements, resends.
numbered=$(sum_counter sync delivery_numbered)
acked=$(sum_counter sync delivery_acks_received)
resent=$(( $(sum_counter sync delivery_resent_on_gap) + $(sum_counter sync delivery_resent_on_timeout) ))
delivery_line="$numbered packets numbered, $acked acknowledgements received, $resent sent again (running firewalls)"
[ "$acked" -gt 0 ] || fail "no sync acknowledgement received: is acknowledged delivery on?"

echo "================ Tandem active-active demo: summary ================"
printf '%-36s %s\n' "firewalls" "$nodes (DPDK net_af_xdp on veths, adaptive polling, 2 CPUs shared with the traffic)"
printf '%-36s %s Mbit/s\n' "iperf3 symmetric (fw-a both ways)" "$sym"
if [ "$nodes" = 2 ]; then
  printf '%-36s %s Mbit/s (%s of symmetric; target 0.95)\n' "iperf3 asymmetric (a out, b back)" "$asym" "$(ratio "$asym" "$sym")"
  printf '%-36s %s Mbit/s\n' "iperf3 asymmetric, 4 streams" "$asym4"
else
  for l in "${asym_list[@]}"; do printf '%-36s %s Mbit/s\n' "iperf3 via ${l% *}" "${l##* }"; done
fi
printf '%-36s %s (target 0)\n' "window drops, asymmetric runs" "$drops"
printf '%-36s %s held, %s passed after the update, %s timed out\n' "held for the sync (hold-and-recheck)" "$held" "$released" "$timeouts"
printf '%-36s %s frames of %s flows sent to the node owning their state\n' "owner redirect (auto)" "$redirected" "$redirect_states"
printf '%-36s %s packets, %s bytes\n' "sync traffic, asymmetric runs" "$sync_pk" "$sync_by"
printf '%-36s %s\n' "sync authentication (HMAC-SHA256)" "$auth_line"
printf '%-36s %s\n' "acknowledged sync delivery" "$delivery_line"
printf '%-36s %s of %s ok; connect p50 %s ms, p99 %s ms\n' "short connections (asymmetric)" "$conn_ok" "$conns" "$conn_p50" "$conn_p99"
printf '%-36s %s of 5 ok; slowest connect %s ms (a lost SYN would cost 1000)\n' "client port reused (asymmetric)" "$reuse_ok" "$reuse_max"
printf '%-36s %s SYNs held until the peer acknowledged; IACK round trip p50 <= %s us, p99 <= %s us\n' "deferral (fw-a)" "$deferred" "$iack_p50" "$iack_p99"
printf '%-36s %s held for a peer'"'"'s insert, %s of them found it\n' "packets ahead of their state" "$awaited" "$found"
printf '%-36s %s\n' "failover (kill -9 fw-a)" "$fo_line"
printf '%-36s %s\n' "fw-a rejoining" "$rejoin_line"
end_checks
echo "all checks passed"
