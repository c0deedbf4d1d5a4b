#!/usr/bin/env bash
# Installs what Tandem needs to build, test and run on Debian 12, and nothing that is already there.
# Idempotent: a second run installs nothing. Needs root (or sudo) for apt.
set -euo pipefail

# Debian packages, each with the reason it is here.
packages=(
  dpdk             # PMDs and EAL shared libraries (net_null, net_pcap, net_memif, net_af_packet, net_af_xdp)
  dpdk-dev         # dpdk-testpmd for the forwarding benchmark
  libdpdk-dev      # headers and libdpdk.pc for build.rs
  clang            # bindgen's libclang, and cc for the static-inline wrappers
  libclang-dev
  pkg-config       # build.rs finds libdpdk with it
  iproute2         # ip netns / veth for the namespace tests
  ethtool          # turning checksum offload off on endpoint veths
  iperf3           # real Linux TCP through the cluster
  tshark           # decoding sync traffic with scripts/wireshark/pfsync.lua
  curl             # short HTTP connections in the namespace tests
  python3          # the small HTTP server in the namespace tests
  keepalived       # a real VRRPv3 peer for failover interop tests
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all Debian packages present"
else
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer no without a prompt.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | "${sudo_cmd[@]}" debconf-set-selections
  "${sudo_cmd[@]}" apt-get update -q
  "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install a Rust toolchain (rustup) first" >&2
  exit 1
fi
for comp in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$comp"; then
    echo "setup: adding rustup component $comp"
    rustup component add "$comp"
  fi
done
echo "setup: done (DPDK $(pkg-config --modversion libdpdk))"
