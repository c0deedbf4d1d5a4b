//! The control thread's logic: admin protocol, failover and metrics. It never touches a packet.
#![forbid(unsafe_code)]

pub mod admin;
pub mod failover;
pub mod metrics;
pub mod neighbor;
pub mod server;
pub mod vrrp;
