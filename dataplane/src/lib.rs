//! The packet path: parsing, flow keys, per-worker state shards, pf-style protocol trackers, rules and the
//! worker loop, generic over a burst `PortIo` so that tests and simulations run it without DPDK.
#![forbid(unsafe_code)]

pub mod counters;
pub mod expiry;
pub mod flow;
pub mod forward;
pub mod io;
pub mod pcap;
pub mod reassembly;
pub mod route;
pub mod rules;
pub mod slot_index;
pub mod table;
pub mod tracker;
pub mod wire;
pub mod worker;
