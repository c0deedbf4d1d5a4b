//! Routing for router mode: the route table (connected subnets of the data ports and the profile's static
//! routes, longest prefix first) and each worker's table of next hops and their MAC addresses, which the
//! control thread fills from ARP and neighbour discovery through the worker's operation queue.
//!
//! Routes come only from the profile, so the table is built once and shared read-only by all workers. A
//! linear scan over prefixes sorted longest first is used: appliance route tables are short, and each state
//! caches its next hop (a [`HopRef`] into the worker's [`HopTable`]) per direction, so the scan runs per new
//! flow, not per packet. A neighbour's new MAC reaches every state through the table entry; an entry
//! reused for another next hop changes its generation, and the states that pointed at it route afresh.

use tandem_config::{Family, PortId, Profile};

use crate::flow::Addr;
use crate::slot_index::SlotIndex;

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

/// The IPv4 address in pf-layout bytes (its first four).
pub fn v4_of(a: &Addr) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::new(a[0], a[1], a[2], a[3])
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

/// A cached reference to a [`HopTable`] entry: valid while the entry keeps its generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HopRef {
    slot: u16,
    /// 0: no reference.
    generation: u16,
}

impl HopRef {
    /// No cached hop.
    pub const NONE: HopRef = HopRef {
        slot: 0,
        generation: 0,
    };
}

/// A routed packet's next hop and its entry in the worker's hop table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    /// Where it goes.
    pub next: NextHop,
    /// The table entry holding the next hop's MAC.
    pub slot: HopRef,
}

#[derive(Clone, Copy, Debug)]
struct HopEntry {
    hop: NextHop,
    mac: Option<[u8; 6]>,
    generation: u16,
    used: bool,
}

/// One worker's next hops and their MAC addresses (when resolved), in a fixed number of entries: nothing
/// grows on the worker. When every entry is taken, a new next hop takes the place of another (in turn) and
/// that entry's generation changes, so the states that cached it route again.
#[derive(Debug)]
pub struct HopTable {
    entries: Vec<HopEntry>,
    index: SlotIndex,
    /// Entries taken so far: they are never freed, only reused, so the free ones are those past it.
    taken: usize,
    next_victim: usize,
}

fn hop_hash(hop: &NextHop) -> u64 {
    let a = u128::from_be_bytes(hop.addr);
    let x = (a ^ (a >> 64)) as u64 ^ u64::from(hop.port.0).rotate_left(48);
    let full = u128::from(x) * 0x9e37_79b9_7f4a_7c15;
    (full as u64) ^ ((full >> 64) as u64)
}

impl HopTable {
    /// A table of `capacity` next hops (at most 65535).
    pub fn with_capacity(capacity: usize) -> HopTable {
        let capacity = capacity.clamp(1, usize::from(u16::MAX));
        let empty = HopEntry {
            hop: NextHop {
                port: PortId(0),
                addr: [0; 16],
            },
            mac: None,
            generation: 1,
            used: false,
        };
        HopTable {
            entries: vec![empty; capacity],
            index: SlotIndex::with_limit(capacity),
            taken: 0,
            next_victim: 0,
        }
    }

    fn find(&self, hop: &NextHop) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(hop_hash(hop), |slot| entries[slot as usize].hop == *hop)
            .map(|slot| slot as usize)
    }

    fn reference(&self, slot: usize) -> HopRef {
        HopRef {
            slot: slot as u16,
            generation: self.entries[slot].generation,
        }
    }

    /// The entry of `hop`, made (in a free entry, or in place of another) if it has none.
    pub fn entry(&mut self, hop: NextHop) -> HopRef {
        if let Some(slot) = self.find(&hop) {
            return self.reference(slot);
        }
        let slot = if self.taken < self.entries.len() {
            self.taken += 1;
            self.taken - 1
        } else {
            let victim = self.next_victim;
            self.next_victim = (victim + 1) % self.entries.len();
            let old = self.entries[victim];
            self.index.remove(hop_hash(&old.hop), victim as u32);
            victim
        };
        let e = &mut self.entries[slot];
        e.generation = match e.generation.wrapping_add(1) {
            0 => 1,
            g => g,
        };
        e.hop = hop;
        e.mac = None;
        e.used = true;
        self.index.insert(hop_hash(&hop), slot as u32);
        self.reference(slot)
    }

    /// The next hop and MAC a cached reference stands for; `None` when the entry went to another hop.
    #[inline]
    pub fn get(&self, r: HopRef) -> Option<(NextHop, Option<[u8; 6]>)> {
        let e = self.entries.get(usize::from(r.slot))?;
        (r.generation != 0 && e.used && e.generation == r.generation).then_some((e.hop, e.mac))
    }

    /// The MAC address of `hop`, when resolved.
    pub fn mac_of(&self, hop: &NextHop) -> Option<[u8; 6]> {
        self.find(hop).and_then(|slot| self.entries[slot].mac)
    }

    /// Records (or updates) a resolved neighbour.
    pub fn set(&mut self, port: PortId, addr: Addr, mac: [u8; 6]) {
        let r = self.entry(NextHop { port, addr });
        self.entries[usize::from(r.slot)].mac = Some(mac);
    }

    /// Forgets a neighbour's MAC (states keep their entry and ask for resolution again).
    pub fn remove(&mut self, port: PortId, addr: &Addr) {
        if let Some(slot) = self.find(&NextHop { port, addr: *addr }) {
            self.entries[slot].mac = None;
        }
    }

    /// Next hops whose MAC is known.
    pub fn len(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.used && e.mac.is_some())
            .count()
    }

    /// Whether no neighbour is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        let mut n = HopTable::with_capacity(4);
        let hop = NextHop {
            port: PortId(1),
            addr: v4([198, 19, 0, 254]),
        };
        assert_eq!(n.mac_of(&hop), None);
        n.set(PortId(1), hop.addr, [2, 0, 0, 0, 0, 9]);
        assert_eq!(n.mac_of(&hop), Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(
            n.mac_of(&NextHop {
                port: PortId(0),
                ..hop
            }),
            None
        );
        n.remove(PortId(1), &hop.addr);
        assert!(n.is_empty());
    }

    #[test]
    fn a_cached_hop_follows_its_neighbour_and_goes_stale_when_its_entry_is_reused() {
        let mut t = HopTable::with_capacity(2);
        let hop = |last| NextHop {
            port: PortId(1),
            addr: v4([198, 19, 0, last]),
        };
        let a = t.entry(hop(1));
        assert_eq!(t.get(a), Some((hop(1), None)));
        t.set(PortId(1), hop(1).addr, [2, 0, 0, 0, 0, 1]);
        assert_eq!(
            t.get(a),
            Some((hop(1), Some([2, 0, 0, 0, 0, 1]))),
            "new MAC, same entry"
        );
        let b = t.entry(hop(2));
        assert_eq!(t.entry(hop(1)), a, "found, not made again");
        // Full: a third next hop takes the oldest entry, and references to it go stale.
        let c = t.entry(hop(3));
        assert_eq!(t.get(a), None);
        assert_eq!(t.get(c), Some((hop(3), None)));
        assert_eq!(t.get(b), Some((hop(2), None)));
        assert_eq!(t.mac_of(&hop(1)), None);
        assert_eq!(t.get(HopRef::NONE), None);
    }
}
