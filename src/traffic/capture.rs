//! Synthetic traffic for replay through `net_pcap`: TCP connections between a client network and a server
//! network, each a handshake, data both ways, and (optionally) a close, interleaved across connections.
//!
//! Each connection's data per pass stays under one receive window, so a capture replayed in a loop
//! (`infinite_rx=1`) stays valid for pf's tracker: on the next pass every segment is a retransmission
//! inside the window the tracker already knows, so a looping benchmark measures tracking, not drops.

use std::net::Ipv4Addr;

use tandem_dataplane::wire::build::{self, Endpoints};
use tandem_dataplane::wire::ethernet::{BROADCAST, MacAddr};
use tandem_dataplane::wire::tcp::{TcpFlags, TcpRepr};

/// What to generate.
#[derive(Clone, Debug)]
pub struct TrafficSpec {
    /// Connections.
    pub flows: u32,
    /// Data segments the client sends per connection (each acknowledged by the server).
    pub segments: u32,
    /// Payload bytes per data segment.
    pub payload: usize,
    /// Whether connections end with FIN and ACK.
    pub close: bool,
    /// Client network: clients are `client_net + 1 ..`, from port 10000 upwards.
    pub client_net: Ipv4Addr,
    /// Server network: servers are `server_net + 1 ..`, port 80.
    pub server_net: Ipv4Addr,
    /// Every `blocked_every`-th connection comes from the server side instead (a rule should block it).
    pub blocked_every: Option<u32>,
    /// Every frame goes to this MAC (a router's port) instead of the other host's.
    pub to_mac: Option<MacAddr>,
    /// Gateways announced before the connections, one gratuitous ARP reply each (from [`GATEWAY_MAC`]),
    /// so a router replaying the capture learns its next hops.
    pub announce: Vec<Ipv4Addr>,
}

impl Default for TrafficSpec {
    fn default() -> Self {
        TrafficSpec {
            flows: 64,
            segments: 32,
            payload: 1448,
            close: false,
            client_net: Ipv4Addr::new(198, 18, 0, 0),
            server_net: Ipv4Addr::new(198, 19, 0, 0),
            blocked_every: None,
            to_mac: None,
            announce: Vec::new(),
        }
    }
}

const CLIENT_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x0c, 0x01]);
const SERVER_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x5e, 0x01]);
/// The MAC of every announced gateway.
pub const GATEWAY_MAC: MacAddr = MacAddr([0x02, 0, 0, 0, 0x9a, 0x01]);

fn host(net: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net) + 1 + n % 250)
}

/// One connection's frames, in order.
fn connection(spec: &TrafficSpec, n: u32) -> Vec<Vec<u8>> {
    let reversed = spec.blocked_every.is_some_and(|k| n % k == k - 1);
    let (client, server) = (host(spec.client_net, n), host(spec.server_net, n));
    let (client, server) = if reversed {
        (server, client)
    } else {
        (client, server)
    };
    let c2s = Endpoints::v4(
        CLIENT_MAC,
        spec.to_mac.unwrap_or(SERVER_MAC),
        client,
        server,
    );
    let s2c = Endpoints::v4(
        SERVER_MAC,
        spec.to_mac.unwrap_or(CLIENT_MAC),
        server,
        client,
    );
    let cport = 10_000 + (n % 50_000) as u16;
    let (isn_c, isn_s) = (
        1_000_000u32.wrapping_mul(n + 1),
        7_000_000u32.wrapping_mul(n + 3),
    );
    let window = 65_535u16;
    let tcp = |ends: &Endpoints, sport, dport, seq, ack, flags, len: usize| {
        let repr = TcpRepr {
            src_port: sport,
            dst_port: dport,
            seq,
            ack,
            flags,
            window,
            ..TcpRepr::default()
        };
        build::tcp(ends, &repr, &vec![0x61; len]).unwrap_or_default()
    };
    let mut frames = Vec::new();
    let syn = TcpRepr {
        src_port: cport,
        dst_port: 80,
        seq: isn_c,
        flags: TcpFlags::SYN,
        window,
        mss: Some(1460),
        ..TcpRepr::default()
    };
    frames.push(build::tcp(&c2s, &syn, &[]).unwrap_or_default());
    let syn_ack = TcpRepr {
        src_port: 80,
        dst_port: cport,
        seq: isn_s,
        ack: isn_c.wrapping_add(1),
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window,
        mss: Some(1460),
        ..TcpRepr::default()
    };
    frames.push(build::tcp(&s2c, &syn_ack, &[]).unwrap_or_default());
    let (mut cs, ss) = (isn_c.wrapping_add(1), isn_s.wrapping_add(1));
    frames.push(tcp(&c2s, cport, 80, cs, ss, TcpFlags::ACK, 0));
    for i in 0..spec.segments {
        frames.push(tcp(
            &c2s,
            cport,
            80,
            cs,
            ss,
            TcpFlags::ACK | TcpFlags::PSH,
            spec.payload,
        ));
        cs = cs.wrapping_add(spec.payload as u32);
        if i % 2 == 1 || i + 1 == spec.segments {
            frames.push(tcp(&s2c, 80, cport, ss, cs, TcpFlags::ACK, 0));
        }
    }
    if spec.close {
        frames.push(tcp(
            &c2s,
            cport,
            80,
            cs,
            ss,
            TcpFlags::FIN | TcpFlags::ACK,
            0,
        ));
        frames.push(tcp(
            &s2c,
            80,
            cport,
            ss,
            cs.wrapping_add(1),
            TcpFlags::FIN | TcpFlags::ACK,
            0,
        ));
        frames.push(tcp(
            &c2s,
            cport,
            80,
            cs.wrapping_add(1),
            ss.wrapping_add(1),
            TcpFlags::ACK,
            0,
        ));
    }
    frames
}

/// The gateways' announcements, then every connection's frames, interleaved round-robin (each
/// connection's own order kept).
pub fn frames(spec: &TrafficSpec) -> Vec<Vec<u8>> {
    let mut conns: Vec<std::collections::VecDeque<Vec<u8>>> = (0..spec.flows)
        .map(|n| connection(spec, n).into())
        .collect();
    let mut out: Vec<Vec<u8>> = spec
        .announce
        .iter()
        .map(|&gw| build::arp_reply(GATEWAY_MAC, gw, BROADCAST, gw, None))
        .collect();
    loop {
        let mut any = false;
        for c in &mut conns {
            if let Some(f) = c.pop_front() {
                out.push(f);
                any = true;
            }
        }
        if !any {
            return out;
        }
    }
}

/// Writes `frames` as a pcap file.
pub fn write_pcap(path: &std::path::Path, frames: &[Vec<u8>]) -> std::io::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut writer = tandem_dataplane::pcap::PcapWriter::new(file)?;
    for (i, f) in frames.iter().enumerate() {
        writer.write_frame(std::time::Duration::from_micros(i as u64), f)?;
    }
    writer.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_dataplane::wire::checksum::ChecksumCaps;
    use tandem_dataplane::wire::meta::parse_meta;

    #[test]
    fn a_capture_for_a_router_announces_its_gateways_and_goes_to_its_mac() {
        let router = MacAddr([2, 0, 0, 0, 1, 1]);
        let gw = Ipv4Addr::new(192, 0, 2, 254);
        let spec = TrafficSpec {
            flows: 2,
            segments: 2,
            to_mac: Some(router),
            announce: vec![gw],
            ..TrafficSpec::default()
        };
        let all = frames(&spec);
        let arp = tandem_dataplane::wire::arp::ArpRepr::parse(
            &tandem_dataplane::wire::arp::Packet::new_checked(&all[0][14..]).expect("arp"),
        )
        .expect("arp");
        assert_eq!(arp.source_protocol_addr, gw);
        assert_eq!(arp.source_hardware_addr, GATEWAY_MAC);
        assert_eq!(all.len(), 1 + 2 * 6);
        for f in &all[1..] {
            assert_eq!(f[..6], router.0, "every TCP frame goes to the router");
        }
    }

    #[test]
    fn every_generated_frame_is_valid_and_connections_are_interleaved() {
        let spec = TrafficSpec {
            flows: 3,
            segments: 4,
            close: true,
            ..TrafficSpec::default()
        };
        let all = frames(&spec);
        // Per connection: SYN, SYN-ACK, ACK, 4 data, 2 ACKs, FIN, FIN, ACK.
        assert_eq!(all.len(), 3 * 12);
        for f in &all {
            parse_meta(f, ChecksumCaps::SOFTWARE).expect("valid frame");
        }
        let first_ports: Vec<u16> = all[..3]
            .iter()
            .map(|f| u16::from_be_bytes([f[34], f[35]]))
            .collect();
        assert_eq!(first_ports, [10_000, 10_001, 10_002]);
    }
}
