//! Routing for router mode: the route table (connected subnets of the data ports and the profile's static
//! routes, longest prefix first) and each worker's neighbour cache (next hop to MAC address), which the
//! control thread fills from ARP and neighbour discovery through the worker's operation queue.
//!
//! Routes come only from the profile, so the table is built once and shared read-only by all workers. A
//! linear scan over prefixes sorted longest first is used: appliance route tables are short, and the
//! worker caches each state's route, so the scan runs per new flow, not per packet.

use hashbrown::HashMap;
use tandem_config::{Family, PortId, Profile};

use crate::flow::Addr;

/// Where a packet goes next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NextHop {
    /// The port it leaves by.
    pub port: PortId,
    /// The address whose MAC it is sent to: a gateway, or the destination itself on a connected subnet.
    pub addr: Addr,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    family: Family,
    bits: u128,
    mask: u128,
    len: u8,
    port: PortId,
    /// The gateway, or `None` for a connected subnet (the destination is the neighbour).
    via: Option<Addr>,
}

/// The routes of one node.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    entries: Vec<Entry>,
    /// Each port's own addresses, pf layout, for recognising packets addressed to the appliance.
    local: Vec<(PortId, Family, Addr)>,
}

/// An address as pf-layout bytes.
pub fn addr_of(ip: &std::net::IpAddr) -> Addr {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&v4.octets());
            a
        }
        std::net::IpAddr::V6(v6) => v6.octets(),
    }
}

fn bits_of(a: &Addr) -> u128 {
    u128::from_be_bytes(*a)
}

fn mask_of(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

impl RouteTable {
    /// The connected subnets of the profile's data ports and its static routes.
    pub fn from_profile(profile: &Profile) -> RouteTable {
        let mut entries = Vec::new();
        let mut local = Vec::new();
        for (id, port) in profile.data_ports() {
            for a in &port.addresses {
                let net = a.network();
                let addr = addr_of(&net.addr);
                entries.push(Entry {
                    family: net.family(),
                    bits: bits_of(&addr),
                    mask: mask_of(net.len),
                    len: net.len,
                    port: id,
                    via: None,
                });
                local.push((id, Family::of(&a.addr), addr_of(&a.addr)));
            }
        }
        for route in &profile.routes {
            let addr = addr_of(&route.to.addr);
            entries.push(Entry {
                family: route.to.family(),
                bits: bits_of(&addr),
                mask: mask_of(route.to.len),
                len: route.to.len,
                port: route.port,
                via: route.via.as_ref().map(addr_of),
            });
        }
        // Longest prefix first; among equal lengths, connected before static (stable sort keeps that).
        entries.sort_by_key(|e| std::cmp::Reverse(e.len));
        RouteTable { entries, local }
    }

    /// The next hop towards `dst`, or `None` when there is no route.
    pub fn lookup(&self, family: Family, dst: &Addr) -> Option<NextHop> {
        let bits = bits_of(dst);
        self.entries
            .iter()
            .find(|e| e.family == family && bits & e.mask == e.bits)
            .map(|e| NextHop {
                port: e.port,
                addr: e.via.unwrap_or(*dst),
            })
    }

    /// The port owning `addr` when it is one of the appliance's own addresses.
    pub fn local_port(&self, family: Family, addr: &Addr) -> Option<PortId> {
        self.local
            .iter()
            .find(|(_, f, a)| *f == family && a == addr)
            .map(|(p, _, _)| *p)
    }

    /// The first address of `family` on `port`, used as the source of packets the appliance originates
    /// there (ICMP errors, ARP requests).
    pub fn port_address(&self, port: PortId, family: Family) -> Option<Addr> {
        self.local
            .iter()
            .find(|(p, f, _)| *p == port && *f == family)
            .map(|(_, _, a)| *a)
    }
}

/// One worker's neighbours: next-hop address to MAC, per port.
#[derive(Clone, Debug, Default)]
pub struct NeighborCache {
    entries: HashMap<(PortId, Addr), [u8; 6]>,
}

impl NeighborCache {
    /// An empty cache with room for `capacity` neighbours.
    pub fn with_capacity(capacity: usize) -> NeighborCache {
        NeighborCache {
            entries: HashMap::with_capacity(capacity),
        }
    }

    /// The MAC address of `hop`, when resolved.
    #[inline]
    pub fn get(&self, hop: &NextHop) -> Option<[u8; 6]> {
        self.entries.get(&(hop.port, hop.addr)).copied()
    }

    /// Records (or updates) a resolved neighbour.
    pub fn set(&mut self, port: PortId, addr: Addr, mac: [u8; 6]) {
        self.entries.insert((port, addr), mac);
    }

    /// Forgets a neighbour.
    pub fn remove(&mut self, port: PortId, addr: &Addr) {
        self.entries.remove(&(port, *addr));
    }

    /// Neighbours known.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        let src = r#"
node: {name: r, host-id: 1}
ports:
  - {name: inside, device: net_null0, addresses: [198.18.0.1/24, "2001:db8:1::1/64"]}
  - {name: outside, device: net_null1, addresses: [198.19.0.1/24]}
workers: {cores: [0]}
routes:
  - {to: 0.0.0.0/0, via: 198.19.0.254}
  - {to: 10.0.0.0/8, via: 198.18.0.254}
  - {to: 10.1.0.0/16, via: 198.19.0.9}
"#;
        tandem_config::parse(src, "t").unwrap_or_else(|e| panic!("{}", e.report()))
    }

    fn v4(a: [u8; 4]) -> Addr {
        addr_of(&std::net::IpAddr::from(a))
    }

    #[test]
    fn the_longest_prefix_wins() {
        let t = RouteTable::from_profile(&profile());
        let hop = |a| t.lookup(Family::Inet, &v4(a)).expect("routed");
        assert_eq!(
            hop([10, 1, 2, 3]),
            NextHop {
                port: PortId(1),
                addr: v4([198, 19, 0, 9])
            }
        );
        assert_eq!(
            hop([10, 2, 2, 3]),
            NextHop {
                port: PortId(0),
                addr: v4([198, 18, 0, 254])
            }
        );
        assert_eq!(
            hop([8, 8, 8, 8]),
            NextHop {
                port: PortId(1),
                addr: v4([198, 19, 0, 254])
            }
        );
    }

    #[test]
    fn connected_destinations_are_their_own_next_hop() {
        let t = RouteTable::from_profile(&profile());
        let dst = v4([198, 18, 0, 77]);
        assert_eq!(
            t.lookup(Family::Inet, &dst),
            Some(NextHop {
                port: PortId(0),
                addr: dst
            })
        );
        let v6: Addr = "2001:db8:1::42"
            .parse::<std::net::Ipv6Addr>()
            .expect("valid")
            .octets();
        assert_eq!(
            t.lookup(Family::Inet6, &v6).map(|h| h.port),
            Some(PortId(0))
        );
        let unrouted: Addr = "2001:db8:2::1"
            .parse::<std::net::Ipv6Addr>()
            .expect("valid")
            .octets();
        assert_eq!(t.lookup(Family::Inet6, &unrouted), None);
    }

    #[test]
    fn the_appliances_own_addresses_are_recognised() {
        let t = RouteTable::from_profile(&profile());
        assert_eq!(
            t.local_port(Family::Inet, &v4([198, 19, 0, 1])),
            Some(PortId(1))
        );
        assert_eq!(t.local_port(Family::Inet, &v4([198, 19, 0, 2])), None);
        assert_eq!(
            t.port_address(PortId(0), Family::Inet),
            Some(v4([198, 18, 0, 1]))
        );
    }

    #[test]
    fn neighbours_are_per_port() {
        let mut n = NeighborCache::with_capacity(4);
        let hop = NextHop {
            port: PortId(1),
            addr: v4([198, 19, 0, 254]),
        };
        assert_eq!(n.get(&hop), None);
        n.set(PortId(1), hop.addr, [2, 0, 0, 0, 0, 9]);
        assert_eq!(n.get(&hop), Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(
            n.get(&NextHop {
                port: PortId(0),
                ..hop
            }),
            None
        );
        n.remove(PortId(1), &hop.addr);
        assert!(n.is_empty());
    }
}
