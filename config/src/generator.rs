//! The profile of `tandem gen`, the stateful traffic generator (the profile is read and checked; the
//! generator's runtime is not built yet): its DPDK settings and ports (the same `dpdk` section as an
//! appliance's), where each side of a flow sends from (the two directions may leave on different ports,
//! for asymmetric paths through two appliances), the addresses it plays, and the load: TCP connections
//! (concurrency, new connections per second, request and response sizes, FIN or RST teardown) and UDP
//! flows (count, per-flow rate, size), for a duration.

use std::net::IpAddr;

use yaml_serde::Value;

use crate::decode::{Decode, Decoder, Node};
use crate::net::{MacAddr, Prefix};
use crate::profile::{DpdkSettings, decode_dpdk};
use crate::sync::bounded;

/// A validated generator profile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenProfile {
    /// EAL arguments and the packet pool (cores are the generator's own: `core`).
    pub dpdk: DpdkSettings,
    /// The ports, in the order of the YAML list.
    pub ports: Vec<GenPort>,
    /// The core the generator's thread is pinned to, if any.
    pub core: Option<usize>,
    /// How long new connections and flows are started, in milliseconds.
    pub duration_ms: u64,
    /// Who plays which side, from where.
    pub sides: Sides,
    /// TCP connections, if any.
    pub tcp: Option<TcpLoad>,
    /// UDP flows, if any.
    pub udp: Option<UdpLoad>,
    /// A SYN flood, if any.
    pub flood: Option<SynFlood>,
}

/// A port of the generator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenPort {
    /// Its name in this profile.
    pub name: String,
    /// A vdev argument string (`net_memif0,role=client,...`) or a PCI address.
    pub device: String,
    /// A MAC address to set instead of the device's own.
    pub mac: Option<MacAddr>,
    /// Where its frames are addressed: the appliance port it faces (broadcast when not given, which a
    /// wire-mode appliance forwards).
    pub next_hop_mac: MacAddr,
}

/// The two sides of every flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sides {
    /// The index of the port client frames leave on.
    pub client_port: usize,
    /// The index of the port server frames leave on.
    pub server_port: usize,
    /// Client addresses, taken in turn.
    pub clients: Prefix,
    /// Server addresses, taken in turn.
    pub servers: Prefix,
    /// The servers' TCP and UDP port.
    pub service_port: u16,
}

/// TCP connections: each a handshake, a request, its response and a teardown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLoad {
    /// Most connections open at once.
    pub concurrent: u32,
    /// New connections per second (0: a new one as soon as one finishes).
    pub rate: u32,
    /// Request bytes (client to server).
    pub request: u32,
    /// Response bytes (server to client).
    pub response: u32,
    /// How the client ends each connection.
    pub teardown: GenTeardown,
    /// Maximum segment size.
    pub mss: u16,
    /// A connection not finished after this many milliseconds counts as failed.
    pub timeout_ms: u32,
}

/// How a generated connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenTeardown {
    /// FIN from the client, answered by FIN.
    Fin,
    /// RST from the client.
    Rst,
}

/// UDP flows, each a stream of datagrams from client to server answered one for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpLoad {
    /// Flows.
    pub flows: u32,
    /// Datagrams per second per flow.
    pub packet_rate: u32,
    /// Payload bytes per datagram.
    pub payload: u16,
}

/// SYNs from many sources that never complete a handshake: what a state limit is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynFlood {
    /// SYNs per second.
    pub rate: u32,
    /// Source addresses, drawn at random (with random source ports); the SYNs go to the servers' service
    /// port and leave on the client port.
    pub sources: Prefix,
}

impl Decode for GenTeardown {
    fn decode(node: &Node<'_>, d: &mut Decoder) -> Option<Self> {
        match node.as_str() {
            Some("fin") => Some(GenTeardown::Fin),
            Some("rst") => Some(GenTeardown::Rst),
            _ => {
                d.error(&node.path, "teardown must be `fin` or `rst`");
                None
            }
        }
    }
}

pub(crate) fn decode_gen(d: &mut Decoder, root: &Value) -> Option<GenProfile> {
    let root = Node::root(root);
    let mut f = d.fields(&root)?;
    let dpdk = decode_dpdk(d, f.node("dpdk"));
    let ports = match f.node("ports") {
        Some(n) => decode_ports(d, &n),
        None => {
            d.error(&root.path, "missing section `ports`");
            Vec::new()
        }
    };
    let core = f.optional::<usize>(d, "core");
    let duration_ms = u64::from(bounded(&mut f, d, "duration-ms", 10_000, 1, 86_400_000));
    let sides = match f.node("sides") {
        Some(n) => decode_sides(d, &n, &ports),
        None => {
            d.error(
                &root.path,
                "missing section `sides` (client-port, server-port, addresses)",
            );
            None
        }
    };
    let tcp = f.node("tcp").and_then(|n| decode_tcp(d, &n));
    let udp = f.node("udp").and_then(|n| decode_udp(d, &n));
    let flood = f
        .node("flood")
        .and_then(|n| decode_flood(d, &n, sides.as_ref()));
    if !f.has("tcp") && !f.has("udp") && !f.has("flood") {
        d.error(
            &root.path,
            "no load: give a `tcp`, `udp` or `flood` section",
        );
    }
    f.finish(d);
    Some(GenProfile {
        dpdk: dpdk?,
        ports,
        core,
        duration_ms,
        sides: sides?,
        tcp,
        udp,
        flood,
    })
}

fn decode_ports(d: &mut Decoder, node: &Node<'_>) -> Vec<GenPort> {
    let Some(items) = node.value.as_sequence() else {
        d.error(&node.path, "expected a sequence of ports");
        return Vec::new();
    };
    if items.is_empty() {
        d.error(&node.path, "at least one port is needed");
    }
    let mut ports: Vec<GenPort> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item = node.index(i, item);
        let Some(mut f) = d.fields(&item) else {
            continue;
        };
        let name = f.required::<String>(d, "name");
        let device = f.required::<String>(d, "device");
        let mac = f.optional::<MacAddr>(d, "mac");
        let next_hop_mac = f.or(d, "next-hop-mac", MacAddr([0xff; 6]));
        f.finish(d);
        let (Some(name), Some(device)) = (name, device) else {
            continue;
        };
        if ports.iter().any(|p| p.name == name) {
            d.error(
                &item.path.key("name"),
                format!("port name `{name}` is used twice"),
            );
        }
        ports.push(GenPort {
            name,
            device,
            mac,
            next_hop_mac,
        });
    }
    ports
}

fn port_index(
    d: &mut Decoder,
    node: Option<Node<'_>>,
    ports: &[GenPort],
    key: &str,
) -> Option<usize> {
    let node = node?;
    let name = String::decode(&node, d)?;
    let found = ports.iter().position(|p| p.name == name);
    if found.is_none() {
        d.error(&node.path, format!("{key}: no port is named `{name}`"));
    }
    found
}

fn decode_sides(d: &mut Decoder, node: &Node<'_>, ports: &[GenPort]) -> Option<Sides> {
    let mut f = d.fields(node)?;
    let client_port = port_index(d, f.node("client-port"), ports, "client-port");
    let server_port = port_index(d, f.node("server-port"), ports, "server-port");
    for key in ["client-port", "server-port"] {
        if !f.has(key) {
            d.error(f.path(), format!("missing key `{key}`"));
        }
    }
    let clients = f.required::<Prefix>(d, "clients");
    let servers = f.required::<Prefix>(d, "servers");
    let service_port = f
        .node("service-port")
        .map_or(Some(80), |n| match u16::decode(&n, d) {
            Some(0) => {
                d.error(&n.path, "the service port must be 1-65535");
                None
            }
            other => other,
        });
    f.finish(d);
    for (key, prefix) in [("clients", &clients), ("servers", &servers)] {
        if let Some(p) = prefix
            && !matches!(p.addr, IpAddr::V4(_))
        {
            d.error(
                &node.path.key(key),
                "the generator plays IPv4 addresses only",
            );
        }
    }
    if let (Some(c), Some(s)) = (&clients, &servers)
        && c.overlaps(s)
    {
        d.error(&node.path.key("servers"), "clients and servers overlap");
    }
    Some(Sides {
        client_port: client_port?,
        server_port: server_port?,
        clients: clients?,
        servers: servers?,
        service_port: service_port?,
    })
}

fn decode_tcp(d: &mut Decoder, node: &Node<'_>) -> Option<TcpLoad> {
    let mut f = d.fields(node)?;
    let load = TcpLoad {
        concurrent: bounded(&mut f, d, "concurrent", 1000, 1, 4_000_000),
        rate: bounded(&mut f, d, "rate", 0, 0, 100_000_000),
        request: bounded(&mut f, d, "request", 64, 0, 1 << 30),
        response: bounded(&mut f, d, "response", 64, 0, 1 << 30),
        teardown: f.or(d, "teardown", GenTeardown::Fin),
        mss: bounded(&mut f, d, "mss", 1448, 88, 9000) as u16,
        timeout_ms: bounded(&mut f, d, "timeout-ms", 5000, 1, 3_600_000),
    };
    f.finish(d);
    Some(load)
}

fn decode_udp(d: &mut Decoder, node: &Node<'_>) -> Option<UdpLoad> {
    let mut f = d.fields(node)?;
    let load = UdpLoad {
        flows: bounded(&mut f, d, "flows", 16, 1, 4_000_000),
        packet_rate: bounded(&mut f, d, "packet-rate", 1000, 1, 100_000_000),
        payload: bounded(&mut f, d, "payload", 18, 0, 1472) as u16,
    };
    f.finish(d);
    Some(load)
}

fn decode_flood(d: &mut Decoder, node: &Node<'_>, sides: Option<&Sides>) -> Option<SynFlood> {
    let mut f = d.fields(node)?;
    let rate = bounded(&mut f, d, "rate", 10_000, 1, 100_000_000);
    let sources = f.required::<Prefix>(d, "sources");
    f.finish(d);
    let sources = sources?;
    if !matches!(sources.addr, IpAddr::V4(_)) {
        d.error(
            &node.path.key("sources"),
            "the generator plays IPv4 addresses only",
        );
        return None;
    }
    if let Some(s) = sides
        && (sources.overlaps(&s.clients) || sources.overlaps(&s.servers))
    {
        d.error(
            &node.path.key("sources"),
            "the flood's sources overlap the clients or the servers",
        );
        return None;
    }
    Some(SynFlood { rate, sources })
}

#[cfg(test)]
mod tests {
    use crate::{LoadError, parse_gen};

    const GOOD: &str = "\
dpdk:
  eal-args: [--no-huge, -m, '512', --no-pci]
ports:
  - name: inside
    device: net_memif0,role=client,socket=/tmp/a.sock
  - name: outside
    device: net_memif1,role=client,socket=/tmp/b.sock
    next-hop-mac: 02:00:00:00:00:02
duration-ms: 3000
sides:
  client-port: inside
  server-port: outside
  clients: 198.18.0.0/16
  servers: 198.19.0.0/24
tcp:
  concurrent: 500
  rate: 20000
  request: 300
  response: 5000
  teardown: rst
";

    #[test]
    fn a_good_profile_reads_with_its_defaults() {
        let p = parse_gen(GOOD, "gen.yaml").expect("valid");
        assert_eq!(p.ports.len(), 2);
        assert_eq!(p.ports[0].next_hop_mac.0, [0xff; 6]);
        assert_eq!(p.ports[1].next_hop_mac.0, [2, 0, 0, 0, 0, 2]);
        assert_eq!((p.sides.client_port, p.sides.server_port), (0, 1));
        assert_eq!(p.sides.service_port, 80);
        let tcp = p.tcp.expect("tcp");
        assert_eq!(
            (tcp.concurrent, tcp.rate, tcp.request, tcp.response),
            (500, 20000, 300, 5000)
        );
        assert_eq!(tcp.teardown, super::GenTeardown::Rst);
        assert_eq!((tcp.mss, tcp.timeout_ms), (1448, 5000));
        assert!(p.udp.is_none());
        assert_eq!(p.duration_ms, 3000);
    }

    fn messages(src: &str) -> Vec<String> {
        match parse_gen(src, "gen.yaml") {
            Err(LoadError::Invalid { errors, .. }) => {
                errors.iter().map(|e| e.to_string()).collect()
            }
            other => panic!("expected errors, got {other:?}"),
        }
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let bad = GOOD
            .replace("server-port: outside", "server-port: outsde")
            .replace("teardown: rst", "teardown: close\n  concurent: 5")
            .replace("servers: 198.19.0.0/24", "servers: 198.18.1.0/24");
        let m = messages(&bad);
        let joined = m.join("\n");
        assert!(joined.contains("no port is named `outsde`"), "{joined}");
        assert!(
            joined.contains("teardown must be `fin` or `rst`"),
            "{joined}"
        );
        assert!(
            joined.contains("unknown key `concurent` (did you mean `concurrent`?)"),
            "{joined}"
        );
        assert!(joined.contains("clients and servers overlap"), "{joined}");
        assert!(m.iter().all(|e| e.contains("line")), "{joined}");
    }

    #[test]
    fn a_flood_reads_and_must_not_overlap_the_sides() {
        let good = format!("{GOOD}flood: {{rate: 50000, sources: 203.0.113.0/24}}\n");
        let p = parse_gen(&good, "gen.yaml").expect("valid");
        let flood = p.flood.expect("flood");
        assert_eq!(flood.rate, 50_000);
        assert_eq!(flood.sources.len, 24);
        let bad = format!("{GOOD}flood: {{rate: 0, sources: 198.18.7.0/24}}\n");
        let joined = messages(&bad).join("\n");
        assert!(joined.contains("overlap the clients"), "{joined}");
        assert!(joined.contains("rate"), "{joined}");
    }

    #[test]
    fn a_profile_without_load_or_sides_is_refused() {
        let m = messages("ports:\n  - name: a\n    device: net_null0\n");
        let joined = m.join("\n");
        assert!(joined.contains("missing section `sides`"), "{joined}");
        assert!(joined.contains("no load"), "{joined}");
    }
}
