# Helpers for scripts that run Tandem processes in the namespace cluster (scripts/netns.sh): sourced by
# scripts/demo.sh and scripts/bench-cluster.sh. Expects `tandem` (the binary), `work` (a scratch directory)
# and `profiles` (the directory holding fw-a.yaml, fw-b.yaml, fw-c.yaml) to be set by the caller.

sockdir=/run/tandem-netns
declare -A fw_pid

# Checks: `fail MESSAGE` records a failed one and goes on; `end_checks` lists them and exits 1 if any
# failed.
failures=()
fail() { failures+=("$*"); echo "   FAILED: $*"; }
end_checks() {
  if [ "${#failures[@]}" -gt 0 ]; then
    echo "FAILED checks:"; printf '  %s\n' "${failures[@]}"; exit 1
  fi
}

start_fw() {
  local n=$1
  mkdir -p "$sockdir"
  ip netns exec "tnd-fw$n" "$tandem" run --profile "$profiles/fw-$n.yaml" \
    --stats-interval-ms 5000 > "$work/fw$n.out" 2> "$work/fw$n.err" &
  fw_pid[$n]=$!
  disown "${fw_pid[$n]}"
}

stop_fws() {
  local n
  for n in "${!fw_pid[@]}"; do kill -TERM "${fw_pid[$n]}" 2>/dev/null || true; done
  for n in "${!fw_pid[@]}"; do
    for _ in $(seq 50); do kill -0 "${fw_pid[$n]}" 2>/dev/null || break; sleep 0.1; done
    unset "fw_pid[$n]"
  done
}

show() { "$tandem" show "$2" --socket "$sockdir/fw-$1.sock" 2>/dev/null; }
counter() { show "$1" "$2" | awk -v k="$3" '$1 == k {print $2; exit}'; }
in_sync() { show "$1" sync | grep -q '^in sync: yes'; }

# A VRRP group's field from `show failover`: group_field NODE GROUP FIELD.
group_field() {
  "$tandem" show failover --json --socket "$sockdir/fw-$1.sock" 2>/dev/null | python3 -c '
import json, sys
print(next((g[sys.argv[2]] for g in json.load(sys.stdin) if g["name"] == sys.argv[1]), ""))' "$2" "$3" 2>/dev/null
}

# group_wait NODE GROUP STATE [TENTHS]: waits until the group is in STATE (master, backup).
group_wait() {
  local i
  for ((i = 0; i < ${4:-50}; i++)); do
    [ "$(group_field "$1" "$2" state)" = "$3" ] && return 0
    sleep 0.1
  done
  return 1
}

wait_in_sync() {
  local n=$1 limit=${2:-100} i
  for ((i = 0; i < limit; i++)); do
    if in_sync "$n"; then return 0; fi
    sleep 0.1
  done
  return 1
}

# iperf3 from the client; prints the receiver's Mbit/s (0 when the run failed).
iperf() {
  timeout 60 ip netns exec tnd-client iperf3 -c 198.19.1.10 -f m "$@" > "$work/iperf.out" 2>&1 || true
  awk '/receiver/ {for (i = 1; i < NF; i++) if ($(i+1) == "Mbits/sec") r = $i} END {print r + 0}' "$work/iperf.out"
}

sum_counter() { # topic key: the sum over every running firewall
  local total=0 n v
  for n in "${!fw_pid[@]}"; do
    v=$(counter "$n" "$1" "$2"); total=$((total + ${v:-0}))
  done
  echo "$total"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}'; }

# The median of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {if (NR==0) {print 0} else if (NR%2) {print v[(NR+1)/2]} else {print (v[NR/2]+v[NR/2+1])/2}}'; }

# Builds the topology and starts the firewalls of `names`: start_cluster NODES [relay RELAY_ARGS...]
# (with `relay`, `tandem relay` runs in fw-b's sync link with RELAY_ARGS, e.g. --delay-us 2000).
start_cluster() {
  local nodes=$1 n
  shift
  if [ "${1:-}" = relay ]; then
    shift
    scripts/netns.sh up "$nodes" relay >/dev/null
    ip netns exec tnd-relay "$tandem" relay --a net_af_xdp0,iface=r-b --b net_af_xdp1,iface=r-sw \
      --mtu 1700 "$@" > "$work/relay.out" 2> "$work/relay.err" &
    sleep 1
  else
    scripts/netns.sh up "$nodes" >/dev/null
  fi
  names=(a b); [ "$nodes" = 3 ] && names=(a b c)
  for n in "${names[@]}"; do start_fw "$n"; done
  for n in "${names[@]}"; do
    wait_in_sync "$n" 150 || { tail -5 "$work/fw$n.err"; echo "fw-$n did not come up" >&2; exit 1; }
  done
  ip netns exec tnd-server iperf3 -s -D
  sleep 0.5
}

stop_cluster() {
  stop_fws
  pkill -INT -f "tandem relay" 2>/dev/null || true
  pkill iperf3 2>/dev/null || true
  sleep 0.5
  scripts/netns.sh down >/dev/null 2>&1 || true
}

# Sets the routes: client->server through $1, server->client through $2.
via() { scripts/netns.sh route client "$1"; scripts/netns.sh route server "$2"; }
