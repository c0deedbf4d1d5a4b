#!/usr/bin/env bash
# Sync over a lossy link, in the namespace cluster: `tandem relay` in fw-b's sync link drops 5% of the
# frames each way (this kernel has no netem), while iperf3 runs on the asymmetric path (out through fw-a,
# back through fw-b) and short connections open through it. The profiles have acknowledged delivery on:
# a lost sync packet is reported by its receiver (or times out) and its states go again as they are now;
# hold-and-recheck's update requests and later updates repair the rest. Nothing may be lost: the transfer
# completes and every connection opens.
#
#   scripts/sync-loss.sh [LOSS_PERCENT]    (default 5); exit status 1 if a check fails
set -euo pipefail
cd "$(dirname "$0")/.."

loss=${1:-5}
scripts/setup.sh >/dev/null
cargo build --release --locked --quiet
tandem=$PWD/target/release/tandem
work=$(mktemp -d /tmp/tandem-loss.XXXXXX)
profiles=config/profiles/netns
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

echo "== two firewalls, fw-b's sync link losing ${loss}% of its frames each way"
start_cluster 2 relay --delay-us 50 --loss-percent "$loss"
ip netns exec tnd-server python3 scripts/conns.py serve 8080 > /dev/null 2>&1 &
disown $!
via a b
before_req=$(sum_counter sync requests_sent)
before_drops=$(sum_counter counters drop_out_of_window)

echo "== iperf3 on the asymmetric path, 5 s"
mbit=$(iperf -t 5)
grep -q "iperf Done" "$work/iperf.out" || fail "iperf3 did not complete: $(tail -3 "$work/iperf.out")"
[ "${mbit%.*}" -gt 0 ] || fail "no throughput"
echo "   $mbit Mbit/s"

echo "== 200 short connections on the asymmetric path (deferral on)"
json=$(ip netns exec tnd-client python3 scripts/conns.py connect 198.19.1.10 8080 200 || true)
echo "   $json"
ok=$(echo "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ok"])' 2>/dev/null || echo 0)
[ "$ok" = 200 ] || fail "$ok of 200 connections opened"

requests=$(( $(sum_counter sync requests_sent) - before_req ))
gap_resends=$(sum_counter sync delivery_resent_on_gap)
timeout_resends=$(sum_counter sync delivery_resent_on_timeout)
acks=$(sum_counter sync delivery_acks_received)
gaps=$(sum_counter sync delivery_gaps_received)
drops=$(( $(sum_counter counters drop_out_of_window) - before_drops ))
echo "== tandem sync resync on fw-b: a fresh bulk update from fw-a, over the lossy link"
bulks_before=$(counter b sync bulks_received)
"$tandem" sync resync --socket "$sockdir/fw-b.sock"
resynced=no
for _ in $(seq 150); do
  [ "$(counter b sync bulks_received)" -gt "$bulks_before" ] && in_sync b && { resynced=yes; break; }
  sleep 0.1
done
echo "   bulk updates received by fw-b: $bulks_before before, $(counter b sync bulks_received) after; in sync: $resynced"
[ "$resynced" = yes ] || fail "fw-b did not complete a bulk update after tandem sync resync"

stop_fws
pkill -INT -f "tandem relay" 2>/dev/null || true
sleep 0.5
relay_line=$(grep relayed "$work/relay.out" || echo "relay printed nothing")
echo "   relay: $relay_line"
echo "   update requests sent $requests, window drops $drops"
echo "   acknowledged delivery: $acks acknowledgements and $gaps gap reports received; packets sent again: $gap_resends on a gap report, $timeout_resends on a timeout"
[ "$acks" -gt 0 ] || fail "acknowledged delivery is on in the profiles, yet no acknowledgement arrived"
[ $(( gap_resends + timeout_resends )) -gt 0 ] || fail "sync frames were lost, yet no packet was sent again"
grep -q "lost 0 and 0" <<< "$relay_line" && fail "the relay lost nothing: the test did not test"
end_checks
echo "nothing lost"
