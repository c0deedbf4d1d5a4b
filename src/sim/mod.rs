//! The deterministic cluster simulator behind `tandem simulate`: the real dataplane workers and the real
//! sync engine of two or three nodes, links with latency, bandwidth, queues and loss, and the TCP
//! endpoints of [`crate::traffic::tcp`], all in virtual time. No unsafe code and no real clock.

pub mod cluster;
pub mod net;
pub mod sweep;
