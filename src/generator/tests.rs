//! The generator against a real worker over in-memory ports, in virtual time: the generator's client port
//! faces the worker's inside port, its server port the outside one.

use std::sync::Arc;

use tandem_config::PortId;
use tandem_dataplane::counters::WorkerCounters;
use tandem_dataplane::io::MemoryIo;
use tandem_dataplane::wire::arp::{self, ArpRepr, Operation};
use tandem_dataplane::wire::build;
use tandem_dataplane::wire::checksum::ChecksumCaps;
use tandem_dataplane::wire::ethernet::MacAddr;
use tandem_dataplane::wire::meta::{EtherClass, parse_meta};
use tandem_dataplane::worker::{PortInfo, Worker, WorkerConfig};
use tandem_sync::time::{Duration, Instant};

use super::engine::{Counters, Engine};
use crate::sim::cluster::Links;

const GEN_MACS: [MacAddr; 2] = [MacAddr([2, 0, 0, 0, 9, 1]), MacAddr([2, 0, 0, 0, 9, 2])];
const PORTS: [PortId; 2] = [PortId(0), PortId(1)];

fn firewall(rules: &str) -> (Worker<Vec<u8>>, Arc<WorkerCounters>) {
    firewall_with(rules, 200_000)
}

fn firewall_with(rules: &str, states: u32) -> (Worker<Vec<u8>>, Arc<WorkerCounters>) {
    let forwarding = format!(
        "forwarding: {{mode: wire, pairs: [[inside, outside]]}}\nlimits: {{states: {states}}}\n"
    );
    let y = format!(
        "node: {{name: fw, host-id: 0x0a000001}}\nports:\n  - {{name: inside, device: net_null0, addresses: [198.18.255.254/16]}}\n  - {{name: outside, device: net_null1, addresses: [198.19.0.254/24]}}\nworkers: {{cores: [0]}}\n{forwarding}rules:\n{rules}"
    );
    let p = tandem_config::parse(&y, "test").unwrap_or_else(|e| panic!("{}", e.report()));
    let ports = [[2, 0, 0, 0, 1, 1], [2, 0, 0, 0, 1, 2]]
        .into_iter()
        .map(|mac| PortInfo { mac, mtu: 1500 })
        .collect();
    Worker::alone(
        &p,
        WorkerConfig::from_profile(&p, 0, ports, 1 << 32),
        Instant::ZERO,
    )
}

fn generator(load: &str, next_hops: [&str; 2]) -> Engine {
    let y = format!(
        "ports:\n  - {{name: c, device: net_null0, next-hop-mac: '{}'}}\n  - {{name: s, device: net_null1, next-hop-mac: '{}'}}\nduration-ms: 200\nsides: {{client-port: c, server-port: s, clients: 198.18.0.0/16, servers: 198.19.0.0/24}}\n{load}",
        next_hops[0], next_hops[1]
    );
    let p = tandem_config::parse_gen(&y, "gen").unwrap_or_else(|e| panic!("{}", e.report()));
    Engine::new(&p, &GEN_MACS, Instant(1_000_000))
}

const PASS_ALL: &str = "  - {label: out, action: pass, direction: in, port: inside}\n";

/// Runs the generator through the worker until the generator is done; 10 µs of virtual time per round.
fn run(engine: &mut Engine, worker: &mut Worker<Vec<u8>>) -> Counters {
    let mut io = MemoryIo::new(2);
    let mut links = Links::default();
    let mut buf = vec![0u8; 2048];
    let mut now = Instant(1_000_000);
    while !engine.done(now) {
        engine.tick(now);
        while let Some((port, len)) = engine.poll_frame(now, &mut buf) {
            io.inject(PORTS[port], buf[..len].to_vec());
        }
        worker.poll(&mut io, &mut links, &PORTS, now);
        for (p, port) in PORTS.iter().enumerate() {
            for frame in io.take_sent(*port) {
                engine.on_frame(now, p, &frame);
            }
        }
        now = now + Duration::micros(10);
    }
    engine.finish(now);
    engine.counters().clone()
}

#[test]
fn thousands_of_connections_complete_through_a_stateful_worker() {
    let (mut worker, fw) = firewall(PASS_ALL);
    let mut gen_ = generator(
        "tcp: {concurrent: 200, rate: 20000, request: 300, response: 2000}\n",
        ["ff:ff:ff:ff:ff:ff"; 2],
    );
    let c = run(&mut gen_, &mut worker);
    // 20,000 per second for 200 ms.
    assert!(c.tcp_started >= 3900, "{c:?}");
    assert_eq!(c.tcp_completed, c.tcp_started, "{c:?}");
    assert_eq!(c.tcp_timed_out + c.tcp_reset + c.tcp_stray, 0, "{c:?}");
    assert_eq!(
        c.tcp_retransmits + c.tcp_timeouts,
        0,
        "a lossless path: {c:?}"
    );
    assert_eq!(c.connect_us.count(), c.tcp_started);
    assert_eq!(c.complete_us.count(), c.tcp_completed);
    // Every connection was a state in the firewall, and its frames went through both ports.
    assert_eq!(fw.states_created.get(), c.tcp_started);
    assert!(fw.tx_packets.get() >= c.tcp_completed * 8);
    assert_eq!(
        c.rx_packets[0] + c.rx_packets[1],
        c.tx_packets[0] + c.tx_packets[1]
    );
}

#[test]
fn a_low_rate_of_new_connections_is_kept() {
    let (mut worker, _) = firewall(PASS_ALL);
    let mut gen_ = generator(
        "tcp: {concurrent: 10, rate: 20}\n",
        ["ff:ff:ff:ff:ff:ff"; 2],
    );
    let c = run(&mut gen_, &mut worker);
    // 20 a second for 200 ms, polled every 10 us.
    assert_eq!(c.tcp_started, 4, "{c:?}");
    assert_eq!(c.tcp_completed, c.tcp_started, "{c:?}");
}

#[test]
fn rst_teardown_and_an_unlimited_rate_complete_too() {
    let (mut worker, _) = firewall(PASS_ALL);
    let mut gen_ = generator(
        "tcp: {concurrent: 50, rate: 0, request: 64, response: 64, teardown: rst}\n",
        ["ff:ff:ff:ff:ff:ff"; 2],
    );
    let c = run(&mut gen_, &mut worker);
    assert!(c.tcp_started > 1000, "{c:?}");
    assert_eq!(c.tcp_completed, c.tcp_started, "{c:?}");
}

#[test]
fn connections_beyond_the_firewalls_state_limit_fail_and_are_counted() {
    // Closed states linger in the table, so the limit caps the connections of a short run.
    let (mut worker, fw) = firewall_with(PASS_ALL, 2000);
    let mut gen_ = generator(
        "tcp: {concurrent: 100, rate: 20000, request: 64, response: 64, timeout-ms: 100}\n",
        ["ff:ff:ff:ff:ff:ff"; 2],
    );
    let c = run(&mut gen_, &mut worker);
    // Once the table is full every slot waits out its timeout with a SYN nobody answers.
    assert!(c.tcp_started >= 2100, "{c:?}");
    assert_eq!(c.tcp_completed, 2000, "{c:?}");
    assert_eq!(c.tcp_timed_out, c.tcp_started - 2000, "{c:?}");
    assert!(fw.dropped(tandem_dataplane::counters::DropReason::StateLimit) > 0);
}

#[test]
fn a_syn_flood_fills_the_state_table_to_its_limit_and_established_flows_keep_passing() {
    let (mut worker, fw) = firewall_with(PASS_ALL, 100);
    let mut gen_ = generator(
        "udp: {flows: 4, packet-rate: 1000}\nflood: {rate: 100000, sources: 203.0.113.0/24}\n",
        ["ff:ff:ff:ff:ff:ff"; 2],
    );
    let c = run(&mut gen_, &mut worker);
    // 100,000 SYNs a second for 200 ms; the four UDP flows took their states first.
    assert!((19_990..=20_010).contains(&c.flood_sent), "{c:?}");
    assert_eq!(c.flood_passed, 96, "{c:?}");
    assert_eq!(fw.states_created.get(), 100);
    assert_eq!(
        fw.dropped(tandem_dataplane::counters::DropReason::StateLimit),
        c.flood_sent - 96
    );
    assert_eq!(c.udp_answered, c.udp_sent, "{c:?}");
    assert!(c.udp_sent >= 790, "{c:?}");
}

#[test]
fn a_firewall_that_blocks_the_servers_makes_every_connection_fail() {
    let block = "  - {label: out, action: block, direction: in, port: inside, to: 198.19.0.0/24}\n";
    let (mut worker, _) = firewall(block);
    let mut gen_ = generator(
        "tcp: {concurrent: 20, rate: 1000, timeout-ms: 50}\nudp: {flows: 4, packet-rate: 100}\n",
        ["ff:ff:ff:ff:ff:ff"; 2],
    );
    let c = run(&mut gen_, &mut worker);
    assert!(c.tcp_started > 0);
    assert_eq!(c.tcp_completed + c.tcp_established, 0, "{c:?}");
    assert_eq!(c.tcp_timed_out, c.tcp_started, "{c:?}");
    assert!(c.udp_sent >= 70, "{c:?}");
    assert_eq!(c.udp_answered, 0);
}

#[test]
fn udp_flows_are_answered_and_timed() {
    let (mut worker, _) = firewall(PASS_ALL);
    let mut gen_ = generator(
        "udp: {flows: 16, packet-rate: 500, payload: 64}\n",
        ["ff:ff:ff:ff:ff:ff"; 2],
    );
    let c = run(&mut gen_, &mut worker);
    // 16 flows at 500 per second for 200 ms: 1600 datagrams.
    assert!((1590..=1610).contains(&c.udp_sent), "{c:?}");
    assert_eq!(c.udp_served, c.udp_sent);
    assert_eq!(c.udp_answered, c.udp_sent);
    assert_eq!(c.udp_rtt_us.count(), c.udp_answered);
    // Each datagram crosses the worker both ways within one 10 µs round.
    assert!(
        c.udp_rtt_us.quantile(0.99) <= 20,
        "{}",
        c.udp_rtt_us.quantile(0.99)
    );
}

#[test]
fn arp_requests_for_the_addresses_it_plays_are_answered_on_the_port_they_came_by() {
    let mut gen_ = generator("tcp: {concurrent: 1}\n", ["ff:ff:ff:ff:ff:ff"; 2]);
    let fw_mac = MacAddr([2, 0, 0, 0, 1, 2]);
    let now = Instant(1_000_000);
    let mut buf = vec![0u8; 2048];
    let ask =
        |target: [u8; 4]| build::arp_request(fw_mac, [198, 19, 0, 254].into(), target.into(), None);
    // Not an address the generator plays: no answer.
    gen_.on_frame(now, 1, &ask([10, 0, 0, 1]));
    assert!(
        gen_.poll_frame(now, &mut buf).is_some_and(|(_, len)| {
            // The only frame due is the connection's SYN, not an ARP reply.
            parse_meta(&buf[..len], ChecksumCaps::SOFTWARE)
                .is_ok_and(|m| m.class == EtherClass::Ipv4)
        }) || gen_.counters().arp_answered == 0
    );
    gen_.on_frame(now, 1, &ask([198, 19, 0, 7]));
    let (port, len) = gen_.poll_frame(now, &mut buf).expect("an answer");
    assert_eq!(port, 1);
    let meta = parse_meta(&buf[..len], ChecksumCaps::SOFTWARE).expect("parses");
    assert_eq!(meta.class, EtherClass::Arp);
    let l3 = &buf[usize::from(meta.l3_offset)..len];
    let reply = ArpRepr::parse(&arp::Packet::new_checked(l3).expect("arp")).expect("repr");
    assert_eq!(reply.operation, Operation::Reply);
    assert_eq!(reply.source_hardware_addr, GEN_MACS[1]);
    assert_eq!(
        reply.source_protocol_addr,
        std::net::Ipv4Addr::new(198, 19, 0, 7)
    );
    assert_eq!(reply.target_hardware_addr, fw_mac);
    assert_eq!(gen_.counters().arp_answered, 1);
}
