//! Traffic that both ends of a flow play, without I/O: the TCP endpoint model (handshake, congestion
//! control, loss recovery, request and response, teardown) and the segment's frame codec, which the
//! simulator drives over virtual links and `tandem gen` over DPDK ports; and synthetic captures for
//! replay through `net_pcap`.

pub mod capture;
pub mod tcp;

pub use capture::{TrafficSpec, frames, write_pcap};
