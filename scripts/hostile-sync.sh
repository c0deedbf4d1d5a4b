#!/usr/bin/env bash
# Hostile sync, in the namespace cluster: a host on the sync link that is not a peer (tnd-rogue), and the
# same host taking fw-a's address, without and with a trailer under a key that is not the cluster's, each
# send the running two-node cluster a forged INS (a UDP flow from the server side, which the rules block),
# a CLR of every state fw-a created, and a bulk update request. None may open a hole, clear a state or
# start a bulk update, and every forgery must be counted as refused.
#
#   scripts/hostile-sync.sh           against the shipped, authenticated profiles; exit status 1 if a
#                                     forgery got through
#   scripts/hostile-sync.sh --plain   the same against the profiles with authentication taken out: shows
#                                     what the forgeries do to a plain pfsync cluster (no checks)
set -euo pipefail
cd "$(dirname "$0")/.."

plain=false
case "${1:-}" in
  "") ;;
  --plain) plain=true ;;
  *) echo "usage: $0 [--plain]" >&2; exit 2 ;;
esac

scripts/setup.sh >/dev/null
cargo build --release --locked --quiet
cargo build --release --locked --quiet -p tandem-sync --example forge
tandem=$PWD/target/release/tandem
forge=$PWD/target/release/examples/forge

work=$(mktemp -d /tmp/tandem-hostile.XXXXXX)
profiles=$work/profiles
mkdir -p "$profiles"
for n in a b; do
  if $plain; then
    grep -v 'auth-key-file' "config/profiles/netns/fw-$n.yaml" > "$profiles/fw-$n.yaml"
  else
    cp "config/profiles/netns/fw-$n.yaml" "$profiles/fw-$n.yaml"
  fi
done
# shellcheck source=scripts/lib/cluster.sh
. scripts/lib/cluster.sh

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_fws
  scripts/netns.sh down >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

fw_a_host_id=$(awk '/host-id:/ {print $2; exit}' "$profiles/fw-a.yaml")

echo "== two firewalls ($($plain && echo "authentication off" || echo "authenticated sync")) and a rogue host on the sync link"
scripts/netns.sh up 2 >/dev/null
scripts/netns.sh rogue >/dev/null
for n in a b; do start_fw "$n"; done
for n in a b; do
  wait_in_sync "$n" 150 || { tail -20 "$work/fw$n.err"; echo "fw-$n did not come up"; exit 1; }
done

echo "== 20 connections through fw-a: fw-b holds the states fw-a created"
ip netns exec tnd-server python3 scripts/conns.py serve 8080 > /dev/null 2>&1 &
disown $!
sleep 0.3
ip netns exec tnd-client python3 scripts/conns.py connect 198.19.1.10 8080 20 > /dev/null || true
sleep 0.5
fw_a_states() { show "$1" states | grep -c '198.18.1.10' || true; }
states_before=$(fw_a_states b)
echo "   fw-b holds $states_before states of fw-a's connections"
[ "$states_before" -ge 20 ] || fail "fw-b holds only $states_before of fw-a's states before the attack"

# The forged flow: server 198.19.1.10:7777 -> client 198.18.1.10:5555 over UDP, which the rules block.
forge_set() { # file suffix, then forge's extra arguments
  local suffix=$1; shift
  "$forge" ins-udp "$fw_a_host_id" 198.19.1.10 7777 198.18.1.10 5555 "$@" > "$work/ins$suffix"
  "$forge" clr "$fw_a_host_id" "$@" > "$work/clr$suffix"
  "$forge" bulk "$@" > "$work/bulk$suffix"
}
forge_set ""
forge_set .sealed --seal-as 198.18.255.1

# Sends file $2 as IPv4 protocol 240, TTL 255, from address $1 to the sync group, out of tnd-rogue.
send_as() {
  ip netns exec tnd-rogue python3 - "$1" "$2" <<'PY'
import socket, struct, sys
src, path = sys.argv[1], sys.argv[2]
payload = open(path, "rb").read()
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
group = "224.0.0.240"
header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 255, 240, 0,
                     socket.inet_aton(src), socket.inet_aton(group))
s.sendto(header + payload, (group, 0))
PY
}

counters_of() { # node: "unsealed bad_mac bulks_sent not_a_peer clr_refused"
  echo "$(counter "$1" sync auth_unsealed) $(counter "$1" sync auth_bad_mac) $(counter "$1" sync bulks_sent) $(counter "$1" sync drop_not_a_peer) $(counter "$1" sync clr_refused)"
}
read -r unsealed_b bad_mac_b bulks_b not_peer_b clr_ref_b <<< "$(counters_of b)"
read -r _ _ bulks_a _ _ <<< "$(counters_of a)"

echo "== the rogue (198.18.255.9) sends INS, CLR and a bulk request; then the same as fw-a (198.18.255.1), unsealed and sealed under another key"
for f in ins clr bulk; do send_as 198.18.255.9 "$work/$f"; done
for f in ins clr bulk; do send_as 198.18.255.1 "$work/$f"; done
for f in ins clr bulk; do send_as 198.18.255.1 "$work/$f.sealed"; done
sleep 1

echo "== a UDP datagram from the server side on the forged flow"
ip netns exec tnd-client timeout 3 python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.1.10", 5555)); s.settimeout(2)
try:
    s.recvfrom(100); print("received")
except socket.timeout:
    print("nothing")
' > "$work/udp.out" &
udp_pid=$!
sleep 0.3
ip netns exec tnd-server python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.19.1.10", 7777))
for _ in range(3): s.sendto(b"through the hole?", ("198.18.1.10", 5555))
'
wait "$udp_pid" || true
udp=$(cat "$work/udp.out")

states_after=$(fw_a_states b)
forged_state=$(show b states | grep -c '7777' || true)
read -r unsealed_b2 bad_mac_b2 bulks_b2 not_peer_b2 clr_ref_b2 <<< "$(counters_of b)"
read -r _ _ bulks_a2 _ _ <<< "$(counters_of a)"
echo "   the forged flow's state on fw-b: $forged_state; the client $([ "$udp" = received ] && echo "RECEIVED the datagram" || echo "received nothing")"
echo "   fw-a's states on fw-b: $states_before before, $states_after after"
echo "   bulk updates sent: fw-a $((bulks_a2 - bulks_a)), fw-b $((bulks_b2 - bulks_b))"
echo "   fw-b refused: $((unsealed_b2 - unsealed_b)) unsealed, $((bad_mac_b2 - bad_mac_b)) with a bad MAC, $((not_peer_b2 - not_peer_b)) not from a peer, $((clr_ref_b2 - clr_ref_b)) CLRs of another node's states"

if $plain; then
  echo "(authentication off: nothing is checked; this run shows what a plain pfsync cluster lets through)"
  exit 0
fi
[ "$forged_state" = 0 ] || fail "the forged INS made a state on fw-b"
[ "$udp" != received ] || fail "the forged flow passed"
[ "$states_after" -ge "$states_before" ] || fail "fw-a's states were cleared on fw-b"
[ "$bulks_a2" = "$bulks_a" ] && [ "$bulks_b2" = "$bulks_b" ] || fail "a forged request started a bulk update"
[ $((unsealed_b2 - unsealed_b)) -ge 6 ] || fail "fw-b counted $((unsealed_b2 - unsealed_b)) unsealed forgeries, 6 were sent"
[ $((bad_mac_b2 - bad_mac_b)) -ge 3 ] || fail "fw-b counted $((bad_mac_b2 - bad_mac_b)) forgeries with a bad MAC, 3 were sent"
end_checks
echo "no forgery got through"
