#!/usr/bin/env bash
# Coverage-guided fuzzing on the stable toolchain: AFL++ through cargo-afl, four targets (tests/fuzz):
#   pfsync_packet  arbitrary bytes as a received pfsync packet (parse, re-emit, parse the same)
#   engine         the sync engine driven by programs of sync packets and events, with and without
#                  the authentication layer (no panic, nothing unauthenticated applied, no impossible
#                  state handed to a worker, bounded state)
#   frame          arbitrary bytes as an Ethernet frame through every wire-layer parser
#   profile        arbitrary text as a YAML profile
#
#   scripts/fuzz.sh replay            run every file of the committed corpus (tests/fuzz/corpus/) once
#   scripts/fuzz.sh run EXECS [T...]  fuzz each target (all when none named) for EXECS executions, from
#                                     the committed corpus; fails if AFL found a crash or a hang
#   scripts/fuzz.sh minimize [T...]   after a run, replace the committed corpus by AFL's queue, minimized
#
# Findings go to target/fuzz/<target>/ (AFL's output directory); a crash replays with
#   tests/fuzz/target/release/<target> < target/fuzz/<target>/default/crashes/<file>
# cargo-afl (and the AFL++ it builds) is installed from crates.io if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

targets_all=(pfsync_packet engine frame profile)
mode=${1:-}
shift || true

if ! cargo afl --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-afl"
  cargo install cargo-afl --locked
fi
(cd tests/fuzz && cargo afl build --release --locked --quiet)
bin=tests/fuzz/target/release
corpus=tests/fuzz/corpus

export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1

replay() {
  local t n=0 f
  for t in "${targets_all[@]}"; do
    for f in "$corpus/$t"/*; do
      "$bin/$t" < "$f" > /dev/null || { echo "fuzz: $t fails on $f"; exit 1; }
      n=$((n + 1))
    done
    echo "fuzz: $t: $(ls "$corpus/$t" | wc -l) corpus files replayed"
  done
}

run() {
  local execs=$1 t out crashes hangs
  shift
  local targets=("$@")
  [ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")
  for t in "${targets[@]}"; do
    out=target/fuzz/$t
    rm -rf "$out"
    mkdir -p "$out"
    local started=$SECONDS
    # -E: stop after about EXECS executions; -t: a hang is an input that runs over 1 s.
    cargo afl fuzz -i "$corpus/$t" -o "$out" -E "$execs" -t 1000 -- "$bin/$t" > "$out/afl.log" 2>&1 || {
      tail -20 "$out/afl.log"; echo "fuzz: afl-fuzz failed on $t"; exit 1; }
    local stats=$out/default/fuzzer_stats
    crashes=$(awk -F': ' '$1 ~ /saved_crashes/ {print $2}' "$stats")
    hangs=$(awk -F': ' '$1 ~ /saved_hangs/ {print $2}' "$stats")
    printf 'fuzz: %-14s %s executions in %ss (%s/s), %s paths in the queue, %s edges found, %s crashes, %s hangs\n' \
      "$t" "$(awk -F': ' '$1 ~ /execs_done/ {print $2}' "$stats")" "$((SECONDS - started))" \
      "$(awk -F': ' '$1 ~ /execs_per_sec/ {print $2}' "$stats")" \
      "$(awk -F': ' '$1 ~ /corpus_count/ {print $2}' "$stats")" \
      "$(awk -F': ' '$1 ~ /edges_found/ {print $2}' "$stats")" "$crashes" "$hangs"
    # A hang is an input over 1 s under AFL; on a loaded machine that can be the load. Count only those
    # that still take over 5 s when replayed alone.
    local real_hangs=0 f
    for f in "$out"/default/hangs/id*; do
      [ -e "$f" ] || continue
      timeout 5 "$bin/$t" < "$f" > /dev/null 2>&1 || real_hangs=$((real_hangs + 1))
    done
    if [ "${hangs:-0}" != 0 ]; then
      echo "fuzz: $t: $hangs inputs over 1 s under AFL, $real_hangs of them over 5 s replayed alone"
    fi
    if [ "${crashes:-0}" != 0 ] || [ "$real_hangs" != 0 ]; then
      echo "fuzz: $t: findings in $out/default/crashes and $out/default/hangs"
      exit 1
    fi
  done
}

minimize() {
  local targets=("$@") t
  [ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")
  for t in "${targets[@]}"; do
    rm -rf "target/fuzz/$t.min"
    cargo afl cmin -i "target/fuzz/$t/default/queue" -o "target/fuzz/$t.min" -- "$bin/$t" > /dev/null
    # Never trade the committed corpus for nothing (afl-cmin can find no tuples, and write no file).
    if [ -z "$(ls -A "target/fuzz/$t.min" 2>/dev/null)" ]; then
      echo "fuzz: $t: afl-cmin kept no input; the committed corpus is left as it is" >&2
      exit 1
    fi
    rm -rf "${corpus:?}/$t"
    mkdir -p "$corpus/$t"
    local i=0 f
    for f in "target/fuzz/$t.min"/*; do
      cp "$f" "$corpus/$t/$(printf '%05d' "$i")"
      i=$((i + 1))
    done
    echo "fuzz: $t: corpus of $i files"
  done
}

case "$mode" in
  replay) replay ;;
  run) run "${1:?executions}" "${@:2}" ;;
  minimize) minimize "$@" ;;
  *) echo "usage: $0 replay | run EXECS [TARGET...] | minimize [TARGET...]" >&2; exit 2 ;;
esac
