//! `tandem gen`: a stateful traffic generator. It plays both ends of TCP connections (real handshakes,
//! sequence and acknowledgement progress, windows, FIN or RST teardown, with the endpoint model of
//! [`crate::traffic::tcp`] the simulator also uses) and UDP flows, through one appliance or two, and
//! measures what comes back. [`engine`] is the generator without I/O, [`run`] drives it over DPDK ports,
//! [`report`] is what it prints.

pub mod engine;
pub mod histogram;
pub mod report;
pub mod run;

#[cfg(test)]
mod tests;
