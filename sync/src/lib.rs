//! pfsync state synchronisation: the version 6 wire format (`wire`) and, in later modules, the sans-IO engine
//! that batches local state changes into sync packets and applies what peers send. No threads, sockets,
//! clocks or DPDK here: inputs are events, bytes and the current time; outputs are bytes and operations.
#![forbid(unsafe_code)]

pub mod auth;
pub mod engine;
pub mod event;
pub mod identity;
pub mod merge;
pub mod packetizer;
pub mod policy;
pub mod seq;
pub mod state;
pub mod time;
pub mod wire;
