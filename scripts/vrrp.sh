#!/usr/bin/env bash
# VRRPv3 against keepalived (Debian's), in network namespaces: Tandem (DPDK af_xdp on a veth) and
# keepalived share one virtual router (VRID 7, 198.18.7.254, advertisements every 100 ms) on a bridge.
#   1. Tandem 200, keepalived 100: Tandem is elected; keepalived is backup.
#   2. kill -9 Tandem: keepalived takes over; the gap is measured.
#   3. Tandem starts again: it preempts; keepalived is backup again.
#   4. Tandem stopped with SIGTERM: its priority-0 advertisement hands over at keepalived's skew time.
#   5. Tandem 50 (restarted), keepalived 100: keepalived is master, Tandem backup; kill -9 keepalived:
#      Tandem takes over; the gap is measured.
#   6. Bad advertisements (bad checksum, TTL 64, an unknown VRID, VRRPv2) are refused and counted.
#   7. The reference: keepalived against keepalived at the same interval, the same kill.
# A takeover gap runs from the kill (of every keepalived process, or Tandem's) to the survivor becoming
# master: the time keepalived's notify script ran, or the time Tandem's `show failover` says its state
# began (its control thread's clock), so that the 10 ms polling adds nothing.
#
#   scripts/vrrp.sh          exit status 1 if a check fails
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh >/dev/null
cargo build --release --locked --quiet
tandem=$PWD/target/release/tandem
work=$(mktemp -d /tmp/tandem-vrrp.XXXXXX)
sock=/run/tandem-vrrp
NS=(tnd-vsw tnd-vfw tnd-vka tnd-vkb tnd-vhost)
declare -A ka_pid
fw_pid=

failures=()
fail() { failures+=("$*"); echo "   FAILED: $*"; }

down() {
  for ns in "${NS[@]}"; do
    if ip netns list | grep -qw "$ns"; then
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  down
  rm -rf "$work" "$sock"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

# One bridge; Tandem's port, two keepalived routers and a host on it.
down
for ns in "${NS[@]}"; do
  ip netns add "$ns"
  ip netns exec "$ns" ip link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip netns exec tnd-vsw ip link add br0 type bridge
ip netns exec tnd-vsw ip link set br0 type bridge stp_state 0 forward_delay 0
ip netns exec tnd-vsw ip link set br0 up
attach() { # NS NAME SWPORT [ADDRESS]
  ip link add "tnd-$3" type veth peer name "tnd-$3-p"
  ip link set "tnd-$3" netns tnd-vsw
  ip link set "tnd-$3-p" netns "$1"
  ip netns exec tnd-vsw ip link set "tnd-$3" name "$3"
  ip netns exec tnd-vsw ip link set dev "$3" master br0 up
  ip netns exec "$1" ip link set "tnd-$3-p" name "$2"
  ip netns exec "$1" ip link set dev "$2" up
  if [ -n "${4:-}" ]; then ip netns exec "$1" ip addr add "$4" dev "$2"; fi
}
attach tnd-vfw in vf
attach tnd-vka eth0 vka 198.18.7.3/24
attach tnd-vkb eth0 vkb 198.18.7.4/24
attach tnd-vhost eth0 vh 198.18.7.10/24
mkdir -p "$sock"

tandem_profile() { # PRIORITY
  cat > "$work/fw.yaml" <<EOF
node:
  name: fw-vrrp
  host-id: 0x0a000701
dpdk:
  eal-args: [--no-huge, --no-pci, --no-shconf, -m, "256", --file-prefix=tnd-vrrp]
  mbufs: 4095
ports:
  - name: inside
    device: net_af_xdp0,iface=in
    addresses: [198.18.7.2/24]
workers:
  cores: [1]
  polling: adaptive
  idle-sleep-us: 50
control:
  core: 0
  admin-socket: $sock/fw.sock
failover:
  groups:
    - name: inside-7
      vrid: 7
      port: inside
      priority: $1
      advert-interval-ms: 100
      addresses: [198.18.7.254]
rules:
  - label: pass
    action: pass
    direction: in
    port: inside
EOF
}

start_tandem() { # PRIORITY
  tandem_profile "$1"
  "$tandem" check --profile "$work/fw.yaml" > /dev/null
  ip netns exec tnd-vfw "$tandem" run --profile "$work/fw.yaml" > "$work/fw.out" 2> "$work/fw.err" &
  fw_pid=$!
  disown "$fw_pid"
  for _ in $(seq 100); do [ -S "$sock/fw.sock" ] && return 0; sleep 0.1; done
  fail "Tandem did not start: $(tail -3 "$work/fw.err")"
}

tandem_state() {
  "$tandem" show failover --json --socket "$sock/fw.sock" 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["state"])' 2>/dev/null || echo down
}

# When Tandem's group entered its present state, in seconds since the epoch.
tandem_since() {
  "$tandem" show failover --json --socket "$sock/fw.sock" 2>/dev/null | python3 -c '
import json, sys
print("%.3f" % (json.load(sys.stdin)[0]["changed_unix_ms"] / 1000))'
}

tandem_counter() {
  "$tandem" show failover --json --socket "$sock/fw.sock" 2>/dev/null | python3 -c '
import json, sys
print({c["name"]: c["value"] for c in json.load(sys.stdin)[0]["counters"]}.get(sys.argv[1], 0))' "$1"
}

start_keepalived() { # NS PRIORITY
  local ns=$1 dir=$work/$1
  mkdir -p "$dir"
  cat > "$dir/notify.sh" <<EOF
#!/bin/sh
date +%s.%N > $dir/state_at
echo "\$3" > $dir/state
EOF
  chmod +x "$dir/notify.sh"
  echo INIT > "$dir/state"
  cat > "$dir/keepalived.conf" <<EOF
global_defs {
  vrrp_version 3
  script_user root
  enable_script_security
  vrrp_garp_master_delay 0
}
vrrp_instance inside7 {
  state BACKUP
  interface eth0
  virtual_router_id 7
  priority $2
  advert_int 0.1
  virtual_ipaddress {
    198.18.7.254/24
  }
  notify $dir/notify.sh
}
EOF
  ip netns exec "$ns" keepalived --dont-fork --log-console --vrrp --use-file "$dir/keepalived.conf" \
    --pid "$dir/keepalived.pid" --vrrp_pid "$dir/vrrp.pid" > "$dir/log" 2>&1 &
  ka_pid[$ns]=$!
  disown "${ka_pid[$ns]}"
}

ka_state() { cat "$work/$1/state" 2>/dev/null || echo down; }
ka_since() { cat "$work/$1/state_at"; }
# kill -9 of keepalived: its VRRP child too (left alone, the child sees its parent die and leaves
# gracefully, with a priority-0 advertisement: a hand-over, not a failure).
ka_kill() { kill -9 "$(cat "$work/$1/vrrp.pid")" "${ka_pid[$1]}" 2>/dev/null || true; }
now() { date +%s.%N; }
gap() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }

# wait_for WHAT EXPECTED SECONDS: polls every 10 ms until `WHAT` prints EXPECTED; prints the seconds
# waited, or fails.
wait_for() {
  local what=$1 want=$2 limit=$3 start now
  start=$(date +%s.%N)
  while true; do
    [ "$($what)" = "$want" ] && break
    now=$(date +%s.%N)
    if awk -v a="$start" -v b="$now" -v l="$limit" 'BEGIN {exit !(b - a > l)}'; then
      echo "timeout"; return 1
    fi
    sleep 0.01
  done
  now=$(date +%s.%N)
  awk -v a="$start" -v b="$now" 'BEGIN {printf "%.2f", b - a}'
}

tka() { ka_state tnd-vka; }
tkb() { ka_state tnd-vkb; }

echo "== 1. Tandem priority 200, keepalived 100"
start_keepalived tnd-vka 100
start_tandem 200
t=$(wait_for tandem_state master 10) || fail "Tandem was not elected master"
echo "   Tandem master after ${t} s"
sleep 0.5
[ "$(tka)" = BACKUP ] || fail "keepalived is $(tka), not BACKUP, under a higher-priority Tandem"
echo "   keepalived $(tka)"

echo "== 2. kill -9 Tandem: keepalived takes over"
killed=$(now); kill -9 "$fw_pid"
wait_for tka MASTER 10 > /dev/null || fail "keepalived did not take over"
gap_ka=$(gap "$killed" "$(ka_since tnd-vka)")
echo "   keepalived MASTER ${gap_ka} s after the kill"
rm -f "$sock/fw.sock"

echo "== 3. Tandem back (200, preempt): it takes the router back"
start_tandem 200
t=$(wait_for tandem_state master 10) || fail "Tandem did not preempt"
echo "   Tandem master ${t} s after its admin socket opened"
wait_for tka BACKUP 5 > /dev/null || fail "keepalived is $(tka) after Tandem preempted"
echo "   keepalived $(tka)"

echo "== 4. Tandem stopped (SIGTERM): its priority-0 advertisement hands over at keepalived's skew time"
killed=$(now); kill -TERM "$fw_pid"
wait_for tka MASTER 10 > /dev/null || fail "keepalived did not take over"
gap_term=$(gap "$killed" "$(ka_since tnd-vka)")
echo "   keepalived MASTER ${gap_term} s after the SIGTERM (a crash costs the master-down interval)"
awk -v g="$gap_term" 'BEGIN {exit !(g < 0.25)}' || fail "no hand-over: ${gap_term} s after a clean stop"
for _ in $(seq 50); do kill -0 "$fw_pid" 2>/dev/null || break; sleep 0.1; done
rm -f "$sock/fw.sock"

echo "== 5. Tandem 50 against keepalived 100; then kill -9 keepalived"
start_tandem 50
sleep 1.5
[ "$(tandem_state)" = backup ] || fail "Tandem is $(tandem_state) under a higher-priority keepalived"
[ "$(tka)" = MASTER ] || fail "keepalived is $(tka): Tandem 50 took over"
echo "   Tandem $(tandem_state), keepalived $(tka)"
killed=$(now); ka_kill tnd-vka
wait_for tandem_state master 10 > /dev/null || fail "Tandem did not take over"
gap_tandem=$(gap "$killed" "$(tandem_since)")
echo "   Tandem master ${gap_tandem} s after the kill"

echo "== 6. bad advertisements"
before=$(for c in refused_bad_checksum refused_hop_limit refused_unknown_vrid refused_malformed; do tandem_counter $c; done | paste -sd' ')
echo "   $(ip netns exec tnd-vhost python3 scripts/hostile.py vrrp 198.18.7.10 7)"
sleep 0.3
after=$(for c in refused_bad_checksum refused_hop_limit refused_unknown_vrid refused_malformed; do tandem_counter $c; done | paste -sd' ')
echo "   refused (checksum, hop limit, unknown VRID, malformed): before $before, after $after"
read -r b1 b2 b3 b4 <<< "$before"; read -r a1 a2 a3 a4 <<< "$after"
[ $((a1 - b1)) -ge 1 ] || fail "the bad checksum was not counted"
[ $((a2 - b2)) -ge 1 ] || fail "the TTL-64 advertisement was not counted"
[ $((a3 - b3)) -ge 1 ] || fail "the unknown VRID was not counted"
[ $((a4 - b4)) -ge 1 ] || fail "the VRRPv2 advertisement was not counted"
[ "$(tandem_state)" = master ] || fail "a bad advertisement moved Tandem to $(tandem_state)"
kill -9 "$fw_pid"; rm -f "$sock/fw.sock"

echo "== 7. reference: keepalived 100 against keepalived 200, kill -9 the master"
echo INIT > "$work/tnd-vka/state"
start_keepalived tnd-vka 100
start_keepalived tnd-vkb 200
wait_for tkb MASTER 10 > /dev/null || fail "keepalived 200 was not elected"
# keepalived 100, started first, may have been master for a moment: the takeover is timed from its
# next transition, so it must have recorded the step back first.
wait_for tka BACKUP 10 > /dev/null || fail "keepalived 100 did not step back to backup"
sleep 0.5
killed=$(now); ka_kill tnd-vkb
wait_for tka MASTER 10 > /dev/null || fail "keepalived 100 did not take over"
gap_ref=$(gap "$killed" "$(ka_since tnd-vka)")
echo "   keepalived MASTER ${gap_ref} s after the kill"

echo
printf '%-44s %s\n' "takeover, keepalived after Tandem died" "${gap_ka} s"
printf '%-44s %s\n' "hand-over, keepalived after Tandem stopped" "${gap_term} s"
printf '%-44s %s\n' "takeover, Tandem after keepalived died" "${gap_tandem} s"
printf '%-44s %s\n' "takeover, keepalived after keepalived died" "${gap_ref} s (reference)"
echo "TAKEOVER tandem=${gap_tandem} keepalived=${gap_ref}" > "$work/summary"
if awk -v t="$gap_tandem" -v r="$gap_ref" 'BEGIN {exit !(t > r + 0.2)}'; then
  fail "Tandem's takeover (${gap_tandem} s) is slower than keepalived's (${gap_ref} s) by more than 0.2 s"
fi
if [ "${#failures[@]}" -gt 0 ]; then
  echo "FAILED checks:"; printf '  %s\n' "${failures[@]}"; exit 1
fi
echo "VRRP interoperates with keepalived"
