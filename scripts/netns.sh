#!/usr/bin/env bash
# The cluster test topology in network namespaces: a client and a server, two or three firewalls between
# them, and a sync link among the firewalls. Nothing leaves these namespaces.
#
#   scripts/netns.sh up [2|3] [relay]   build it (tears down a previous one first); with `relay`, fw-b's
#                                      sync veth ends in tnd-relay (r-b) instead of the switch, and a
#                                      second veth (r-sw) joins tnd-relay to the sync bridge: a relay
#                                      process there (`tandem relay`) makes fw-b's sync link slow
#   scripts/netns.sh rogue        add tnd-rogue to a running cluster: a host on the sync link at
#                                      198.18.255.9 that is not a peer (scripts/hostile-sync.sh)
#   scripts/netns.sh down         remove every namespace it made
#   scripts/netns.sh route SIDE NODE   send the client's (SIDE=client) or the server's (SIDE=server)
#                                      traffic through firewall NODE (a, b or c), or through the VRRP
#                                      virtual address of that side (NODE=vip: 198.18.1.254 inside,
#                                      198.19.1.254 outside), whichever firewall is master
#
# Namespaces (all named tnd-*):
#   tnd-client   eth0 198.18.1.10/24               (default route: a firewall's inside address)
#   tnd-server   eth0 198.19.1.10/24               (default route: a firewall's outside address)
#   tnd-fwa/b/c  in, out: DPDK ports (net_af_xdp), no kernel addresses
#                sync0  198.18.255.1/2/3 on the sync link (kernel interface, raw IP protocol 240, MTU
#                       1700 for owner redirect's frames and the authentication trailer)
#   tnd-sw       the three Linux bridges joining them: br-in, br-out, br-sync
# Firewall addresses: inside 198.18.1.1/2/3, outside 198.19.1.1/2/3 (the profiles in config/profiles/netns/).
#
# The endpoints' veths have transmit checksum offload off: a veth hands packets on with their checksums
# unfinished, and a forwarder reading them with AF_PACKET passes them on as they are.
set -euo pipefail

NS=(tnd-client tnd-server tnd-fwa tnd-fwb tnd-fwc tnd-sw tnd-relay tnd-rogue)

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

down() {
  for ns in "${NS[@]}"; do
    if ip netns list | grep -qw "$ns"; then
      # Anything still running inside goes first.
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$ns" 2>/dev/null || true
    fi
  done
  # Veths whose far end was in a namespace disappear with it; remove any left half-made in the root.
  for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^tnd-' || true); do
    ip link del "$l" 2>/dev/null || true
  done
}

# veth NAME_IN_NS NS  PORT_IN_SW BRIDGE: a veth with one end in NS (named NAME_IN_NS) and the other on
# BRIDGE in tnd-sw.
veth() {
  local name=$1 ns=$2 swport=$3 bridge=$4
  ip link add "tnd-$swport" type veth peer name "tnd-$swport-p"
  ip link set "tnd-$swport" netns tnd-sw
  ip link set "tnd-$swport-p" netns "$ns"
  in_ns tnd-sw ip link set "tnd-$swport" name "$swport"
  in_ns tnd-sw ip link set "$swport" master "$bridge" up
  in_ns "$ns" ip link set "tnd-$swport-p" name "$name"
  in_ns "$ns" ip link set "$name" up
}

up() {
  local nodes=${1:-2} relay=${2:-}
  case "$nodes" in 2 | 3) ;; *) echo "netns.sh: up takes 2 or 3 firewalls" >&2; exit 2 ;; esac
  case "$relay" in "" | relay) ;; *) echo "netns.sh: up [2|3] [relay]" >&2; exit 2 ;; esac
  down
  for ns in "${NS[@]}"; do
    [ "$ns" = tnd-fwc ] && [ "$nodes" = 2 ] && continue
    [ "$ns" = tnd-relay ] && [ -z "$relay" ] && continue
    [ "$ns" = tnd-rogue ] && continue
    ip netns add "$ns"
    in_ns "$ns" ip link set lo up
    in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  done
  for br in br-in br-out br-sync; do
    in_ns tnd-sw ip link add "$br" type bridge
    in_ns tnd-sw ip link set "$br" type bridge stp_state 0 forward_delay 0
    in_ns tnd-sw ip link set "$br" up
  done
  veth eth0 tnd-client c0 br-in
  veth eth0 tnd-server s0 br-out
  in_ns tnd-client ip addr add 198.18.1.10/24 dev eth0
  in_ns tnd-server ip addr add 198.19.1.10/24 dev eth0
  in_ns tnd-client ethtool -K eth0 tx off >/dev/null
  in_ns tnd-server ethtool -K eth0 tx off >/dev/null
  local i=1
  for n in a b c; do
    [ "$n" = c ] && [ "$nodes" = 2 ] && break
    local ns=tnd-fw$n
    veth in "$ns" "$n-in" br-in
    veth out "$ns" "$n-out" br-out
    # Owner redirect carries whole data frames over the sync link: room for a 1500-byte packet, its
    # Ethernet header, the redirect's headers and the authentication trailer.
    if [ "$n" = b ] && [ -n "$relay" ]; then
      ip link add tnd-r-b type veth peer name tnd-r-b-p
      ip link set tnd-r-b netns tnd-relay
      ip link set tnd-r-b-p netns "$ns"
      in_ns tnd-relay ip link set tnd-r-b name r-b
      in_ns "$ns" ip link set tnd-r-b-p name sync0
      in_ns tnd-relay ip link set r-b mtu 1700 up
      in_ns "$ns" ip link set sync0 mtu 1700 up
      veth r-sw tnd-relay r-sw br-sync
      in_ns tnd-sw ip link set r-sw mtu 1700
      in_ns tnd-relay ip link set r-sw mtu 1700
    else
      veth sync0 "$ns" "$n-sync" br-sync
      in_ns tnd-sw ip link set "$n-sync" mtu 1700
      in_ns "$ns" ip link set sync0 mtu 1700
    fi
    in_ns "$ns" ip addr add "198.18.255.$i/24" dev sync0
    # The firewall's data interfaces belong to DPDK: the kernel must neither route nor answer on them.
    in_ns "$ns" sysctl -qw net.ipv4.ip_forward=0
    i=$((i + 1))
  done
  # The cluster's sync key (the profiles' auth-key-file), new for every cluster.
  mkdir -p /run/tandem-netns
  (umask 077; printf '1 %s\n' "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" > /run/tandem-netns/sync.key)
  route client a
  route server a
  echo "netns: client, server, $nodes firewalls and the switch are up (scripts/netns.sh down removes them)"
}

rogue() {
  ip netns list | grep -qw tnd-sw || { echo "netns.sh: no cluster is up" >&2; exit 1; }
  ip netns add tnd-rogue
  in_ns tnd-rogue ip link set lo up
  veth eth0 tnd-rogue rogue br-sync
  in_ns tnd-sw ip link set rogue mtu 1700
  in_ns tnd-rogue ip addr add 198.18.255.9/24 dev eth0
  in_ns tnd-rogue ip route add 224.0.0.0/4 dev eth0
  echo "netns: tnd-rogue is on the sync link at 198.18.255.9"
}

node_index() {
  case "$1" in a) echo 1 ;; b) echo 2 ;; c) echo 3 ;; *) echo "netns.sh: node is a, b or c" >&2; exit 2 ;; esac
}

route() {
  local side=$1 node=$2 i
  # `vip`: the failover groups' virtual address (.254), whichever firewall is its VRRP master.
  if [ "$node" = vip ]; then i=254; else i=$(node_index "$node"); fi
  case "$side" in
    client) in_ns tnd-client ip route replace default via "198.18.1.$i" dev eth0 ;;
    server) in_ns tnd-server ip route replace default via "198.19.1.$i" dev eth0 ;;
    *) echo "netns.sh: route client|server a|b|c" >&2; exit 2 ;;
  esac
  # The old gateway's MAC must not linger in the neighbour cache.
  in_ns "tnd-$side" ip neigh flush dev eth0 2>/dev/null || true
}

case "${1:-}" in
  up) up "${2:-2}" "${3:-}" ;;
  down) down ;;
  rogue) rogue ;;
  route) route "${2:?client or server}" "${3:?a, b or c}" ;;
  *) echo "usage: $0 up [2|3] [relay] | down | rogue | route client|server a|b|c|vip" >&2; exit 2 ;;
esac
