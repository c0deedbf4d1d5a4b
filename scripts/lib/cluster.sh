# Helpers for scripts that run Tandem processes in the namespace cluster (scripts/netns.sh): sourced by
# scripts/demo.sh and scripts/bench-cluster.sh. Expects `tandem` (the binary), `work` (a scratch directory)
# and `profiles` (the directory holding fw-a.yaml, fw-b.yaml, fw-c.yaml) to be set by the caller.

sockdir=/run/tandem-netns
declare -A fw_pid

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
