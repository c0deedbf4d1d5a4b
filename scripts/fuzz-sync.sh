#!/usr/bin/env bash
# Fuzzes tandem-sync's pfsync packet parser with cargo-fuzz (libFuzzer + AddressSanitizer).
#
# The target, sync/fuzz/fuzz_targets/pfsync_packet.rs, feeds arbitrary bytes to PfsyncPacket::new_checked
# and checks that nothing panics and that every message that parses re-emits, alone and packed again by the
# packetizer, to bytes that parse to the same value (the same property as sync/tests/mutation.rs, which runs
# in the normal test suite).
#
# Usage: scripts/fuzz-sync.sh [SECONDS] [extra libFuzzer flags...]    (default: 60 seconds)
#   scripts/fuzz-sync.sh 600 -jobs=2          ten minutes on two cores
# Corpus: sync/fuzz/corpus/pfsync_packet (seeded with golden packets on first run); crashes are written to
# sync/fuzz/artifacts/pfsync_packet/ and can be replayed with
#   (cd sync && RUSTC_BOOTSTRAP=1 cargo fuzz run pfsync_packet fuzz/artifacts/pfsync_packet/<file>)
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer); only the stable toolchain is installed here, so the
# script sets RUSTC_BOOTSTRAP=1, which lets stable accept them. cargo-fuzz itself is installed from crates.io
# if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-sync: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

corpus=sync/fuzz/corpus/pfsync_packet
mkdir -p "$corpus"
if [ -z "$(ls -A "$corpus")" ]; then
  # A few valid packets give libFuzzer a head start past the header checks: one DEL_C section, and a
  # FreeBSD-style EOF followed by a CLR. (Hand-written; see docs/pfsync-wire.md for the layout.)
  printf '\x06\x00\x00\x24\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07\x03\x00\x01\x00\x00\x00\x00\x00\x00\x00\x2a\xde\xad\xbe\xef' \
    >"$corpus/del_c"
  printf '\x06\x00\x00\x30\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0c\x00\x00\x01\x00\x05\x00\x01em0\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0a\x0b\x0c\x0d' \
    >"$corpus/eof_clr"
fi

cd sync
# cargo fuzz uses fuzz/corpus/pfsync_packet (the folder seeded above) as the corpus by default.
RUSTC_BOOTSTRAP=1 exec cargo fuzz run pfsync_packet -- \
  -max_total_time="$seconds" -max_len=9216 "$@"
