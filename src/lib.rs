//! The Tandem appliance: the DPDK binding (the only place in the workspace with `unsafe`) and the runtime
//! that wires ports, worker threads, the sync core and the control thread together.
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod dpdk;
pub mod generator;
pub mod plot;
pub mod relay;
pub mod runtime;
pub mod sim;
pub mod traffic;
