#!/usr/bin/env bash
# Fuzzes tandem-dataplane's packet parsers with cargo-fuzz (libFuzzer + AddressSanitizer).
#
# The target, dataplane/fuzz/fuzz_targets/frame.rs, feeds arbitrary bytes as an Ethernet frame to the
# per-packet classifier (wire::meta::parse_meta) and to every layer's full Repr parser (wire::describe), and
# checks that nothing panics, that offsets stay inside the frame and that the RST or ICMP error answering an
# accepted frame classifies cleanly itself (the same property as the unit test
# random_and_mutated_frames_never_panic_any_parser, which runs in the normal test suite).
#
# Usage: scripts/fuzz-dataplane.sh [SECONDS] [extra libFuzzer flags...]    (default: 60 seconds)
#   scripts/fuzz-dataplane.sh 600 -jobs=2          ten minutes on two cores
#   scripts/fuzz-dataplane.sh build                 only build the target (what CI can afford)
# Corpus: dataplane/fuzz/corpus/frame (seeded with captured frames on first run); crashes are written to
# dataplane/fuzz/artifacts/frame/ and can be replayed with
#   (cd dataplane && RUSTC_BOOTSTRAP=1 cargo fuzz run frame fuzz/artifacts/frame/<file>)
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer); only the stable toolchain is installed here, so the
# script sets RUSTC_BOOTSTRAP=1, which lets stable accept them. cargo-fuzz itself is installed from crates.io
# if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-dataplane: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if [ "${1:-}" = "build" ]; then
  cd dataplane
  RUSTC_BOOTSTRAP=1 exec cargo fuzz build frame
fi

seconds="${1:-60}"
shift || true

corpus=dataplane/fuzz/corpus/frame
mkdir -p "$corpus"
if [ -z "$(ls -A "$corpus")" ]; then
  # Frames captured from Linux (the same bytes as dataplane/src/wire/captured.rs): a TCP SYN with options,
  # UDP over IPv6, an ICMP port unreachable quoting UDP, and an MLD report behind a hop-by-hop header.
  printf '\x3e\x96\x6a\xd9\xfe\x70\xf2\x28\xc2\x96\x65\xe0\x08\x00\x45\x00\x00\x3c\x1f\x40\x40\x00\x40\x06\x07\x7a\x0a\x00\x00\x01\x0a\x00\x00\x02\x8b\x8e\x00\x50\x9f\xe5\xa0\x59\x00\x00\x00\x00\xa0\x02\xfa\xf0\xac\x1e\x00\x00\x02\x04\x05\xb4\x04\x02\x08\x0a\x43\xa9\x7d\x24\x00\x00\x00\x00\x01\x03\x03\x0a' \
    >"$corpus/syn_v4"
  printf '\x7e\x7d\x87\xd2\x7f\x78\xba\x7f\xa3\x06\xf2\xf9\x86\xdd\x60\x03\x22\xa7\x00\x0a\x11\x40\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\xe8\xf0\x27\x0f\x00\x0a\x2b\xfc\x68\x69' \
    >"$corpus/udp_v6"
  printf '\xba\x7f\xa3\x06\xf2\xf9\x7e\x7d\x87\xd2\x7f\x78\x08\x00\x45\xc0\x00\x3a\x7e\x4b\x00\x00\x40\x01\xe7\xb5\x0a\x00\x00\x02\x0a\x00\x00\x01\x03\x03\x11\x1b\x00\x00\x00\x00\x45\x00\x00\x1e\x9a\xc0\x40\x00\x40\x11\x8c\x0c\x0a\x00\x00\x01\x0a\x00\x00\x02\xdb\x02\x27\x0f\x00\x0a\x81\x5c\x68\x69' \
    >"$corpus/port_unreachable_v4"
  printf '\x33\x33\x00\x00\x00\x16\xba\x7f\xa3\x06\xf2\xf9\x86\xdd\x60\x00\x00\x00\x00\x38\x00\x01\xfe\x80\x00\x00\x00\x00\x00\x00\xb8\x7f\xa3\xff\xfe\x06\xf2\xf9\xff\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x16\x3a\x00\x05\x02\x00\x00\x01\x00\x8f\x00\x2e\x6e\x00\x00\x00\x02\x04\x00\x00\x00\xff\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\xff\x06\xf2\xf9\x04\x00\x00\x00\xff\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\xff\x00\x00\x01' \
    >"$corpus/mld_report"
fi

cd dataplane
# cargo fuzz uses fuzz/corpus/frame (the folder seeded above) as the corpus by default; 1536 bytes covers a
# full-size Ethernet frame with a VLAN tag.
RUSTC_BOOTSTRAP=1 exec cargo fuzz run frame -- \
  -max_total_time="$seconds" -max_len=1536 "$@"
