//! Neighbours for router mode, on the control thread: answering ARP (RFC 826) and neighbour solicitations
//! (RFC 4861 section 7.2.4) for the appliance's own addresses, learning next hops' MAC addresses from what
//! they send, answering pings to the appliance, and building the ARP request or solicitation for a next
//! hop a worker could not resolve. Workers punt these packets here and send what comes back; the control
//! thread never touches the packet path itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tandem_config::PortId;
use tandem_dataplane::flow::Addr;
use tandem_dataplane::route::NextHop;
use tandem_dataplane::wire::arp::{ArpRepr, Operation, Packet as ArpPacket};
use tandem_dataplane::wire::build::{self, Echo, Endpoints};
use tandem_dataplane::wire::checksum::ChecksumCaps;
use tandem_dataplane::wire::ethernet::{self, MacAddr};
use tandem_dataplane::wire::icmpv6::{self, Icmpv6Repr, NeighborFlags};
use tandem_dataplane::wire::meta::{self, EtherClass, IcmpKind, L4};

/// A port's link-layer and IP addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortAddresses {
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its IPv4 addresses.
    pub v4: Vec<Ipv4Addr>,
    /// Its IPv6 addresses.
    pub v6: Vec<Ipv6Addr>,
    /// Virtual addresses of the VRRP groups this node is master of on the port, with their virtual MACs:
    /// answered for (ARP, neighbour solicitations) with the virtual MAC, never pinged (no accept mode).
    pub virtual_addrs: Vec<(IpAddr, [u8; 6])>,
}

impl PortAddresses {
    /// The MAC to answer a neighbour request for `addr` with: ours for our own addresses, a virtual
    /// router's for its virtual addresses while this node is its master.
    pub fn mac_for(&self, addr: IpAddr) -> Option<MacAddr> {
        let own = match addr {
            IpAddr::V4(a) => self.v4.contains(&a),
            IpAddr::V6(a) => self.v6.contains(&a),
        };
        if own {
            return Some(MacAddr(self.mac));
        }
        self.virtual_addrs
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, mac)| MacAddr(*mac))
    }
}

/// What to do with a punted packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NeighborAction {
    /// Send this frame out of the port the packet came in by.
    Send(Vec<u8>),
    /// Record a neighbour's MAC, in every worker.
    Learn {
        /// On which port.
        port: PortId,
        /// Its address, pf layout.
        addr: Addr,
        /// Its MAC.
        mac: [u8; 6],
    },
}

fn v4_addr(a: Ipv4Addr) -> Addr {
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&a.octets());
    addr
}

fn usable(mac: &MacAddr) -> bool {
    !ethernet::is_group(mac) && mac.0 != [0; 6]
}

/// What the control thread does with a packet a worker punted from `port`.
pub fn handle_punted(port: PortId, frame: &[u8], addresses: &PortAddresses) -> Vec<NeighborAction> {
    let mut actions = Vec::new();
    let Ok(m) = meta::parse_meta(frame, ChecksumCaps::SOFTWARE) else {
        return actions;
    };
    let Ok(eth) = ethernet::Frame::new_checked(frame) else {
        return actions;
    };
    let own_mac = MacAddr(addresses.mac);
    match m.class {
        EtherClass::Arp => {
            let Ok(arp) = ArpPacket::new_checked(eth.payload()) else {
                return actions;
            };
            let Ok(repr) = ArpRepr::parse(&arp) else {
                return actions;
            };
            if usable(&repr.source_hardware_addr) && !repr.source_protocol_addr.is_unspecified() {
                actions.push(NeighborAction::Learn {
                    port,
                    addr: v4_addr(repr.source_protocol_addr),
                    mac: repr.source_hardware_addr.0,
                });
            }
            if repr.operation == Operation::Request
                && let Some(mac) = addresses.mac_for(IpAddr::V4(repr.target_protocol_addr))
            {
                actions.push(NeighborAction::Send(build::arp_reply(
                    mac,
                    repr.target_protocol_addr,
                    repr.source_hardware_addr,
                    repr.source_protocol_addr,
                    m.vlan,
                )));
            }
        }
        EtherClass::Ipv4 => {
            let dst = Ipv4Addr::new(m.dst[0], m.dst[1], m.dst[2], m.dst[3]);
            if let L4::Icmp(icmp) = m.l4
                && let IcmpKind::EchoRequest { id, seq } = icmp.kind
                && addresses.v4.contains(&dst)
                && let Some(ends) = Endpoints::of_frame(frame, &m)
            {
                let data = echo_data(frame, &m);
                let mut ends = ends.reversed();
                ends.src_mac = own_mac;
                if let Ok(reply) = build::icmp_echo(
                    &ends,
                    Echo {
                        request: false,
                        ident: id,
                        seq_no: seq,
                    },
                    data,
                ) {
                    actions.push(NeighborAction::Send(reply));
                }
            }
        }
        EtherClass::Ipv6 => {
            let l4 = usize::from(m.l4_offset);
            let end = l4 + usize::from(m.ip_payload_len);
            let Some(bytes) = frame.get(l4..end) else {
                return actions;
            };
            let Ok(packet) = icmpv6::Packet::new_checked(bytes) else {
                return actions;
            };
            let Ok(repr) = Icmpv6Repr::parse(&packet) else {
                return actions;
            };
            let src = Ipv6Addr::from(m.src);
            match repr {
                Icmpv6Repr::NeighborSolicit {
                    target,
                    source_lladdr,
                } => {
                    if let Some(mac) = source_lladdr.filter(usable)
                        && !src.is_unspecified()
                    {
                        actions.push(NeighborAction::Learn {
                            port,
                            addr: m.src,
                            mac: mac.0,
                        });
                    }
                    if let Some(mac) = addresses.mac_for(IpAddr::V6(target)) {
                        // RFC 4861 section 7.2.4: to the solicitor, or to all nodes when it has no address yet.
                        let (dst, dst_mac, flags) = if src.is_unspecified() {
                            let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
                            (
                                all,
                                ethernet::ipv6_multicast_mac(all),
                                NeighborFlags::OVERRIDE,
                            )
                        } else {
                            let flags = NeighborFlags(
                                NeighborFlags::SOLICITED.0
                                    | NeighborFlags::OVERRIDE.0
                                    | NeighborFlags::ROUTER.0,
                            );
                            (src, eth.src_addr(), flags)
                        };
                        let mut ends = Endpoints::v6(mac, dst_mac, target, dst).with_hop_limit(255);
                        ends.vlan = m.vlan;
                        if let Ok(advert) = build::neighbor_advert(&ends, target, flags) {
                            actions.push(NeighborAction::Send(advert));
                        }
                    }
                }
                Icmpv6Repr::NeighborAdvert {
                    target,
                    target_lladdr,
                    ..
                } => {
                    let mac = target_lladdr
                        .filter(usable)
                        .or(Some(eth.src_addr()).filter(usable));
                    if let Some(mac) = mac {
                        actions.push(NeighborAction::Learn {
                            port,
                            addr: target.octets(),
                            mac: mac.0,
                        });
                    }
                }
                Icmpv6Repr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                } if addresses.v6.contains(&Ipv6Addr::from(m.dst)) => {
                    if let Some(ends) = Endpoints::of_frame(frame, &m) {
                        let mut ends = ends.reversed();
                        ends.src_mac = own_mac;
                        let echo = Echo {
                            request: false,
                            ident,
                            seq_no,
                        };
                        if let Ok(reply) = build::icmp_echo(&ends, echo, data) {
                            actions.push(NeighborAction::Send(reply));
                        }
                    }
                }
                _ => {}
            }
        }
        EtherClass::Other => {}
    }
    actions
}

/// The data of an ICMP echo (after its 8-byte header).
fn echo_data<'a>(frame: &'a [u8], m: &meta::PacketMeta) -> &'a [u8] {
    let start = usize::from(m.l4_offset) + 8;
    let end = usize::from(m.l4_offset) + usize::from(m.ip_payload_len);
    frame.get(start..end).unwrap_or(&[])
}

/// The ARP request or neighbour solicitation that resolves `hop`, from our address of its family.
pub fn solicit(hop: &NextHop, addresses: &PortAddresses) -> Option<Vec<u8>> {
    let mac = MacAddr(addresses.mac);
    let is_v4 = hop.addr[4..] == [0; 12];
    if is_v4 {
        let target = Ipv4Addr::new(hop.addr[0], hop.addr[1], hop.addr[2], hop.addr[3]);
        let source = *addresses.v4.first()?;
        Some(build::arp_request(mac, source, target, None))
    } else {
        let target = Ipv6Addr::from(hop.addr);
        let source = *addresses.v6.first()?;
        Some(build::neighbor_solicit(mac, source, target, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FW_MAC: [u8; 6] = [2, 0, 0, 0, 1, 1];
    const HOST_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 7]);

    fn addresses() -> PortAddresses {
        PortAddresses {
            mac: FW_MAC,
            v4: vec![Ipv4Addr::new(198, 18, 0, 1)],
            v6: vec!["2001:db8:1::1".parse().expect("valid")],
            virtual_addrs: Vec::new(),
        }
    }

    #[test]
    fn a_virtual_address_is_answered_with_its_virtual_mac_only_while_listed() {
        let vip = Ipv4Addr::new(198, 18, 0, 254);
        let vmac = [0, 0, 0x5e, 0, 1, 7];
        let request = build::arp_request(HOST_MAC, Ipv4Addr::new(198, 18, 0, 10), vip, None);
        let mut a = addresses();
        let answered = |a: &PortAddresses| {
            handle_punted(PortId(0), &request, a)
                .into_iter()
                .filter_map(|x| match x {
                    NeighborAction::Send(f) => Some(f),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert!(answered(&a).is_empty(), "backup: not ours to answer");
        a.virtual_addrs.push((IpAddr::V4(vip), vmac));
        let replies = answered(&a);
        assert_eq!(replies.len(), 1);
        let eth = ethernet::Frame::new_checked(&replies[0][..]).expect("frame");
        let arp =
            ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).expect("arp")).expect("arp");
        assert_eq!(arp.source_hardware_addr.0, vmac);
        assert_eq!(arp.source_protocol_addr, vip);
        // A v6 virtual address is solicited and advertised the same way.
        let vip6: Ipv6Addr = "2001:db8:1::fe".parse().expect("valid");
        a.virtual_addrs
            .push((IpAddr::V6(vip6), [0, 0, 0x5e, 0, 2, 7]));
        let ns = build::neighbor_solicit(
            HOST_MAC,
            "2001:db8:1::10".parse().expect("valid"),
            vip6,
            None,
        );
        let advert = handle_punted(PortId(0), &ns, &a)
            .into_iter()
            .find_map(|x| match x {
                NeighborAction::Send(f) => Some(f),
                _ => None,
            })
            .expect("an advertisement");
        assert_eq!(&advert[6..12], &[0, 0, 0x5e, 0, 2, 7]);
    }

    fn parse(frame: &[u8]) -> meta::PacketMeta {
        meta::parse_meta(frame, ChecksumCaps::SOFTWARE).expect("valid frame")
    }

    #[test]
    fn arp_for_our_address_is_answered_and_the_asker_learned() {
        let request = build::arp_request(
            HOST_MAC,
            Ipv4Addr::new(198, 18, 0, 7),
            Ipv4Addr::new(198, 18, 0, 1),
            None,
        );
        let actions = handle_punted(PortId(0), &request, &addresses());
        assert!(actions.contains(&NeighborAction::Learn {
            port: PortId(0),
            addr: v4_addr(Ipv4Addr::new(198, 18, 0, 7)),
            mac: HOST_MAC.0
        }));
        let reply = actions
            .iter()
            .find_map(|a| match a {
                NeighborAction::Send(f) => Some(f.clone()),
                _ => None,
            })
            .expect("a reply");
        assert_eq!(&reply[..6], &HOST_MAC.0, "to the asker");
        assert_eq!(parse(&reply).class, EtherClass::Arp);
    }

    #[test]
    fn arp_for_another_address_is_only_learned_from() {
        let request = build::arp_request(
            HOST_MAC,
            Ipv4Addr::new(198, 18, 0, 7),
            Ipv4Addr::new(198, 18, 0, 9),
            None,
        );
        let actions = handle_punted(PortId(0), &request, &addresses());
        assert_eq!(actions.len(), 1);
        assert!(matches!(actions[0], NeighborAction::Learn { .. }));
    }

    #[test]
    fn a_neighbour_solicitation_for_our_address_gets_a_solicited_advert() {
        let ns = build::neighbor_solicit(
            HOST_MAC,
            "2001:db8:1::7".parse().expect("valid"),
            "2001:db8:1::1".parse().expect("valid"),
            None,
        );
        let actions = handle_punted(PortId(0), &ns, &addresses());
        let advert = actions
            .iter()
            .find_map(|a| match a {
                NeighborAction::Send(f) => Some(f.clone()),
                _ => None,
            })
            .expect("an advert");
        let m = parse(&advert);
        assert!(matches!(m.l4, L4::Icmp(i) if i.icmp_type == 136));
        assert_eq!(
            Ipv6Addr::from(m.dst),
            "2001:db8:1::7".parse::<Ipv6Addr>().expect("valid")
        );
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, NeighborAction::Learn { .. }))
        );
    }

    #[test]
    fn pings_to_the_appliance_are_answered() {
        let ends = Endpoints::v4(
            HOST_MAC,
            MacAddr(FW_MAC),
            Ipv4Addr::new(198, 18, 0, 7),
            Ipv4Addr::new(198, 18, 0, 1),
        );
        let ping = build::icmp_echo(
            &ends,
            Echo {
                request: true,
                ident: 9,
                seq_no: 3,
            },
            b"hello",
        )
        .expect("builds");
        let actions = handle_punted(PortId(0), &ping, &addresses());
        let [NeighborAction::Send(reply)] = actions.as_slice() else {
            panic!("{actions:?}")
        };
        let m = parse(reply);
        assert!(
            matches!(m.l4, L4::Icmp(i) if matches!(i.kind, IcmpKind::EchoReply { id: 9, seq: 3 }))
        );
        assert_eq!(&m.src[..4], &[198, 18, 0, 1]);
    }

    #[test]
    fn a_next_hop_is_solicited_in_its_family() {
        let mut v4 = [0u8; 16];
        v4[..4].copy_from_slice(&[198, 18, 0, 254]);
        let arp = solicit(
            &NextHop {
                port: PortId(0),
                addr: v4,
            },
            &addresses(),
        )
        .expect("ARP");
        assert_eq!(parse(&arp).class, EtherClass::Arp);
        let v6: Ipv6Addr = "2001:db8:1::fe".parse().expect("valid");
        let ns = solicit(
            &NextHop {
                port: PortId(0),
                addr: v6.octets(),
            },
            &addresses(),
        )
        .expect("NS");
        assert!(matches!(parse(&ns).l4, L4::Icmp(i) if i.icmp_type == 135));
    }
}
