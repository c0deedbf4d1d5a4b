#!/usr/bin/env bash
# Hostile data traffic into a running node, in the namespace cluster: while an iperf3 transfer runs through
# fw-a, the client's namespace sends fw-a raw frames no stack would send (truncated and oversized headers,
# bad checksums, illegal TCP flag combinations, overlapping and tiny fragments), then floods it with
# 40,000 unique SYNs a second against a state limit of 2,000. fw-a must stay up, the
# limit must hold (new states are refused and counted while the table is full, as pf does), the
# established transfer must keep moving, and the counters must say what happened. Bridge netfilter is off in the switch namespace, so that the
# Linux bridge passes the malformed frames on instead of checking, trimming or reassembling them.
#
#   scripts/hostile-data.sh      exit status 1 if a check fails
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh >/dev/null
cargo build --release --locked --quiet
tandem=$PWD/target/release/tandem
work=$(mktemp -d /tmp/tandem-hostile-data.XXXXXX)
profiles=$work/profiles
mkdir -p "$profiles"
limit=2000
# SYNs a second: fifty times the state limit each second, and as much as the flood's sender can make on
# this machine without taking the CPUs the firewalls and the transfer under test need (unpaced it makes
# about 145,000 a second and starves everything, itself included).
flood_rate=40000
for n in a b; do
  { cat "config/profiles/netns/fw-$n.yaml"; printf '\nlimits:\n  states: %s\n' "$limit"; } > "$profiles/fw-$n.yaml"
done
# shellcheck source=scripts/lib/cluster.sh
. scripts/lib/cluster.sh

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_cluster
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

echo "== two firewalls (state limit $limit), traffic through fw-a"
start_cluster 2
ip netns exec tnd-sw sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
via a a
before=$(show a counters)

echo "== iperf3 through fw-a for 12 s, and meanwhile the hostile frames"
ip netns exec tnd-client iperf3 -c 198.19.1.10 -f m -i 1 --forceflush -t 12 > "$work/iperf.out" 2>&1 &
iperf_pid=$!
sleep 2
# The client resolved its gateway, fw-a's inside port, for the transfer.
fw_mac=$(ip netns exec tnd-client ip neigh show 198.18.1.1 | awk '{print $5; exit}')
[ -n "$fw_mac" ] || { echo "no MAC for fw-a"; exit 1; }
ip netns exec tnd-client python3 scripts/hostile.py malformed "$fw_mac" > "$work/malformed.out"
echo "   $(cat "$work/malformed.out")"
ip netns exec tnd-client python3 scripts/hostile.py synflood "$fw_mac" 5 "$flood_rate" > "$work/flood.out"
echo "   $(cat "$work/flood.out")"
kill -0 "${fw_pid[a]}" 2>/dev/null || fail "fw-a is gone"
wait "$iperf_pid" && iperf_ok=yes || iperf_ok=no
after=$(show a counters)

delta() { # counter name: its growth on fw-a during the attack
  local b a
  b=$(awk -v k="$1" '$1 == k {print $2; exit}' <<< "$before")
  a=$(awk -v k="$1" '$1 == k {print $2; exit}' <<< "$after")
  echo $(( ${a:-0} - ${b:-0} ))
}
# The workers' own count, from `show counters`' header lines ("worker 0 (core 1, 2000 states)").
states=$(sed -n 's/.*, \([0-9]*\) states).*/\1/p' <<< "$after" | awk '{s += $1} END {print s + 0}')
echo "   fw-a: states now $states (limit $limit); during the attack dropped:"
for c in drop_malformed drop_bad_tcp_flags drop_fragment_overlap drop_fragment_timeout drop_fragment drop_state_limit drop_blocked_by_default drop_out_of_window; do
  printf '     %-26s %s\n' "$c" "$(delta "$c")"
done
# iperf3's intervals during the flood (seconds 7-12 of the run carry it).
moving=$(awk '/sec/ && /bits\/sec/ && !/sender|receiver/ {split($3, t, "-"); if (t[1] + 0 >= 2 && $7 + 0 > 0) n++} END {print n + 0}' "$work/iperf.out")
echo "   iperf3: $iperf_ok, $moving of 10 one-second intervals after the attack began moved data"

[ "$iperf_ok" = yes ] || fail "the established transfer failed"
[ "$moving" -ge 9 ] || fail "the established transfer stalled during the attack"
[ "$states" -le "$limit" ] || fail "$states states, over the limit of $limit"
[ "$(delta drop_state_limit)" -gt 0 ] || fail "the flood never reached the state limit"
[ "$(delta drop_malformed)" -gt 0 ] || fail "no malformed frame counted"
[ "$(delta drop_bad_tcp_flags)" -gt 0 ] || fail "no illegal flag combination counted"
[ "$(delta drop_fragment_overlap)" -gt 0 ] || fail "no overlapping fragment counted"
end_checks
echo "fw-a stayed up, the limit held, the transfer went on"
