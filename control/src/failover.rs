//! Failover on the control thread: the profile's VRRP groups, each a [`Router`], between the frames the
//! workers punt (advertisements) and the frames and worker operations the control thread sends back
//! (advertisements, gratuitous ARP and unsolicited neighbour advertisements on takeover, accepting a
//! virtual MAC). Sans-IO like the routers: frames and the time in, [`Action`]s out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tandem_config::{FailoverGroup, PortId};
use tandem_dataplane::wire::build::{self, Endpoints};
use tandem_dataplane::wire::checksum::{ChecksumCaps, PseudoHeader};
use tandem_dataplane::wire::ethernet::{self, MacAddr};
use tandem_dataplane::wire::icmpv6::NeighborFlags;
use tandem_dataplane::wire::meta::{self, Fragment};
use tandem_dataplane::wire::vrrp::{self, VrrpRepr};

use crate::vrrp::{Micros, Output, Router, RouterConfig, State};

/// What the failover groups need to know of a data port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortInfo {
    /// Its MAC.
    pub mac: [u8; 6],
    /// Its first IPv4 address: the source of IPv4 advertisements.
    pub v4: Option<Ipv4Addr>,
    /// Its IPv6 link-local address: the source of IPv6 advertisements.
    pub link_local: Ipv6Addr,
}

impl PortInfo {
    /// The modified EUI-64 link-local address of `mac` (RFC 4291 appendix A), for a port that has none
    /// configured.
    pub fn link_local_of(mac: [u8; 6]) -> Ipv6Addr {
        Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            mac[0] ^ 0x02,
            mac[1],
            mac[2],
            0xff,
            0xfe,
            mac[3],
            mac[4],
            mac[5],
        ])
    }
}

/// What the control thread does for failover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send this frame out of `port`.
    Send {
        /// The port.
        port: PortId,
        /// The Ethernet frame.
        frame: Vec<u8>,
    },
    /// Start (or stop) being the virtual router: workers accept (or drop) frames to `mac` on `port`, and
    /// neighbour requests for `addresses` are answered with it (or no longer).
    Master {
        /// The port.
        port: PortId,
        /// The virtual MAC.
        mac: [u8; 6],
        /// The virtual addresses.
        addresses: Vec<IpAddr>,
        /// Whether this node is now master.
        master: bool,
    },
}

/// One group.
#[derive(Clone, Debug)]
pub struct Group {
    /// Its name in the profile.
    pub name: String,
    /// Its port.
    pub port: PortId,
    /// Whether it is an IPv6 group.
    pub ipv6: bool,
    /// Its virtual router.
    pub router: Router,
    /// When it last changed state, on the control thread's clock.
    pub since: Micros,
}

impl Group {
    /// The virtual MAC.
    pub fn mac(&self) -> MacAddr {
        vrrp::virtual_mac(self.ipv6, self.router.config().vrid)
    }
}

/// Advertisements not given to any router, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refused {
    /// Not a whole VRRPv3 advertisement (truncated, fragmented, another version or type, count and
    /// length disagreeing).
    pub malformed: u64,
    /// The checksum did not verify.
    pub bad_checksum: u64,
    /// Not sent to the VRRP group address.
    pub not_to_group: u64,
    /// For a VRID this node has no group for on that port and family.
    pub unknown_vrid: u64,
}

/// The profile's groups.
#[derive(Clone, Debug, Default)]
pub struct Failover {
    groups: Vec<Group>,
    refused: Refused,
    demoted: Option<&'static str>,
}

impl Failover {
    /// The groups of a profile; `ports` are the data ports by index.
    pub fn new(groups: &[FailoverGroup], demotion: u8, ports: &[PortInfo]) -> Failover {
        let groups = groups
            .iter()
            .filter_map(|g| {
                let info = ports.get(usize::from(g.port.0))?;
                let ipv6 = g.addresses.first().is_some_and(IpAddr::is_ipv6);
                let primary = if ipv6 {
                    IpAddr::V6(info.link_local)
                } else {
                    IpAddr::V4(info.v4?)
                };
                Some(Group {
                    name: g.name.clone(),
                    port: g.port,
                    ipv6,
                    router: Router::new(RouterConfig {
                        vrid: g.vrid,
                        priority: g.priority,
                        interval_cs: (g.advert_interval_ms / 10)
                            .clamp(1, u32::from(vrrp::MAX_INTERVAL_CS))
                            as u16,
                        preempt: g.preempt,
                        preempt_delay: Micros::from(g.preempt_delay_ms) * 1000,
                        addresses: g.addresses.clone(),
                        primary,
                        demotion,
                    }),
                    since: 0,
                })
            })
            .collect();
        Failover {
            groups,
            refused: Refused::default(),
            demoted: None,
        }
    }

    /// The groups.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// Advertisements refused before any router saw them.
    pub fn refused(&self) -> Refused {
        self.refused
    }

    /// Why the groups are demoted, if they are.
    pub fn demoted(&self) -> Option<&'static str> {
        self.demoted
    }

    /// Starts every group (section 6.4.1).
    pub fn start(&mut self, now: Micros) -> Vec<Action> {
        for g in &mut self.groups {
            g.router.start(now);
            g.since = now;
        }
        self.collect(now)
    }

    /// Demotes every group (`Some(reason)`: the node is not in sync, or has no sync peer) or restores
    /// them (`None`).
    pub fn set_demoted(&mut self, now: Micros, reason: Option<&'static str>) -> Vec<Action> {
        self.demoted = reason;
        for g in &mut self.groups {
            g.router.set_demoted(now, reason.is_some());
        }
        self.collect(now)
    }

    /// Shuts every group down: a master says so with priority 0.
    pub fn shutdown(&mut self, now: Micros) -> Vec<Action> {
        for g in &mut self.groups {
            g.router.shutdown();
        }
        self.collect(now)
    }

    /// Whether `frame` is a VRRP packet (for [`Failover::receive`] rather than the neighbour code).
    pub fn is_vrrp(frame: &[u8]) -> bool {
        meta::parse_meta(frame, ChecksumCaps::OFFLOADED).is_ok_and(|m| m.proto == vrrp::PROTOCOL)
    }

    /// A VRRP frame punted from `port`.
    pub fn receive(&mut self, now: Micros, port: PortId, frame: &[u8]) -> Vec<Action> {
        let Ok(m) = meta::parse_meta(frame, ChecksumCaps::SOFTWARE) else {
            self.refused.malformed += 1;
            return Vec::new();
        };
        let l4 = usize::from(m.l4_offset);
        let (Some(pseudo), Some(bytes), Fragment::None) = (
            m.pseudo_header(),
            frame.get(l4..l4 + usize::from(m.ip_payload_len)),
            m.fragment,
        ) else {
            self.refused.malformed += 1;
            return Vec::new();
        };
        let (from, to_group, ipv6) = match pseudo {
            PseudoHeader::V4 { src, dst } => (IpAddr::V4(src), dst == vrrp::GROUP_V4, false),
            PseudoHeader::V6 { src, dst } => (IpAddr::V6(src), dst == vrrp::GROUP_V6, true),
        };
        if !to_group {
            self.refused.not_to_group += 1;
            return Vec::new();
        }
        let adv = match vrrp::Packet::new_checked(bytes).and_then(|p| VrrpRepr::parse(&p, &pseudo))
        {
            Ok(adv) => adv,
            Err(tandem_dataplane::wire::Error::BadChecksum(_)) => {
                self.refused.bad_checksum += 1;
                return Vec::new();
            }
            Err(_) => {
                self.refused.malformed += 1;
                return Vec::new();
            }
        };
        let Some(g) = self
            .groups
            .iter_mut()
            .find(|g| g.port == port && g.ipv6 == ipv6 && g.router.config().vrid == adv.vrid)
        else {
            self.refused.unknown_vrid += 1;
            return Vec::new();
        };
        g.router.receive(now, from, m.ttl, &adv);
        self.collect(now)
    }

    /// When [`Failover::handle_timeout`] has something to do.
    pub fn poll_timeout(&self) -> Option<Micros> {
        self.groups
            .iter()
            .filter_map(|g| g.router.poll_timeout())
            .min()
    }

    /// Runs every group's timers due at `now`.
    pub fn handle_timeout(&mut self, now: Micros) -> Vec<Action> {
        for g in &mut self.groups {
            g.router.handle_timeout(now);
        }
        self.collect(now)
    }

    /// Turns what the routers asked for into frames and operations.
    fn collect(&mut self, now: Micros) -> Vec<Action> {
        let mut actions = Vec::new();
        for g in &mut self.groups {
            for out in g.router.drain() {
                match out {
                    Output::Advertise(adv) => {
                        if let Some(frame) = advertisement_frame(g, &adv) {
                            actions.push(Action::Send {
                                port: g.port,
                                frame,
                            });
                        }
                    }
                    Output::BecameMaster | Output::LeftMaster => {
                        let master = g.router.state() == State::Master;
                        g.since = now;
                        actions.push(Action::Master {
                            port: g.port,
                            mac: g.mac().0,
                            addresses: g.router.config().addresses.clone(),
                            master,
                        });
                        if master {
                            actions.extend(announcements(g).into_iter().map(|frame| {
                                Action::Send {
                                    port: g.port,
                                    frame,
                                }
                            }));
                        }
                    }
                }
            }
        }
        actions
    }
}

/// An advertisement from the virtual MAC to the group, TTL 255 (sections 5.1, 7.3).
fn advertisement_frame(g: &Group, adv: &VrrpRepr) -> Option<Vec<u8>> {
    let mut payload = vec![0u8; adv.buffer_len()];
    let ends = match g.router.config().primary {
        IpAddr::V4(src) => Endpoints::v4(
            g.mac(),
            ethernet::ipv4_multicast_mac(vrrp::GROUP_V4),
            src,
            vrrp::GROUP_V4,
        ),
        IpAddr::V6(src) => Endpoints::v6(
            g.mac(),
            ethernet::ipv6_multicast_mac(vrrp::GROUP_V6),
            src,
            vrrp::GROUP_V6,
        ),
    }
    .with_hop_limit(vrrp::HOP_LIMIT);
    adv.emit(
        &mut vrrp::Packet::new_unchecked(&mut payload[..]),
        &ends.ips.pseudo_header(),
    );
    build::ip(&ends, vrrp::PROTOCOL, &payload).ok()
}

/// On takeover, each virtual address announced at the virtual MAC: gratuitous ARP for IPv4, an
/// unsolicited neighbour advertisement (override, router) to all nodes for IPv6 (section 6.4.2).
fn announcements(g: &Group) -> Vec<Vec<u8>> {
    let mac = g.mac();
    g.router
        .config()
        .addresses
        .iter()
        .filter_map(|a| match *a {
            IpAddr::V4(v4) => Some(build::arp_request(mac, v4, v4, None)),
            IpAddr::V6(v6) => {
                let all = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
                let ends = Endpoints::v6(mac, ethernet::ipv6_multicast_mac(all), v6, all);
                let flags = NeighborFlags(NeighborFlags::OVERRIDE.0 | NeighborFlags::ROUTER.0);
                build::neighbor_advert(&ends, v6, flags).ok()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_dataplane::wire::arp::{ArpRepr, Packet as ArpPacket};

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 3);
    const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);

    fn group(priority: u8) -> FailoverGroup {
        FailoverGroup {
            name: "inside".into(),
            vrid: 7,
            port: PortId(0),
            priority,
            advert_interval_ms: 100,
            preempt: true,
            preempt_delay_ms: 0,
            addresses: vec![IpAddr::V4(VIP)],
        }
    }

    fn node(addr: Ipv4Addr, mac_last: u8, priority: u8) -> Failover {
        let mac = [2, 0, 0, 0, 1, mac_last];
        Failover::new(
            &[group(priority)],
            50,
            &[PortInfo {
                mac,
                v4: Some(addr),
                link_local: PortInfo::link_local_of(mac),
            }],
        )
    }

    fn frames(actions: &[Action]) -> Vec<Vec<u8>> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { frame, .. } => Some(frame.clone()),
                _ => None,
            })
            .collect()
    }

    fn masters(actions: &[Action]) -> Vec<bool> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Master { master, .. } => Some(*master),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn two_nodes_elect_the_higher_priority_and_the_backup_takes_over_when_it_falls_silent() {
        let mut a = node(A, 1, 200);
        let mut b = node(B, 2, 100);
        assert!(frames(&a.start(0)).is_empty());
        b.start(0);
        // a's master-down interval: 300 ms + (256 - 200) / 256 of 100 ms.
        let t = a.poll_timeout().expect("a timer");
        assert_eq!(t, 321_875);
        let out = a.handle_timeout(t);
        assert_eq!(masters(&out), [true]);
        let sent = frames(&out);
        assert_eq!(sent.len(), 2, "an advertisement and a gratuitous ARP");
        // The advertisement: from the virtual MAC to 224.0.0.18, TTL 255, priority 200.
        let adv = &sent[0];
        assert_eq!(&adv[..6], &[0x01, 0, 0x5e, 0, 0, 0x12]);
        assert_eq!(&adv[6..12], &[0, 0, 0x5e, 0, 1, 7]);
        assert!(Failover::is_vrrp(adv));
        let m = meta::parse_meta(adv, ChecksumCaps::SOFTWARE).expect("valid");
        assert_eq!(m.ttl, 255);
        let eth = ethernet::Frame::new_checked(&sent[1][..]).expect("frame");
        let garp =
            ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).expect("arp")).expect("arp");
        assert_eq!(
            (garp.source_protocol_addr, garp.target_protocol_addr),
            (VIP, VIP)
        );
        assert_eq!(garp.source_hardware_addr.0, [0, 0, 0x5e, 0, 1, 7]);
        // b hears it and stays backup: its timer moves on.
        assert!(b.receive(t, PortId(0), adv).is_empty());
        assert_eq!(b.groups()[0].router.master(), Some(IpAddr::V4(A)));
        assert_eq!(b.poll_timeout(), Some(t + 300_000 + 60_937));
        // a dies: b takes over at its master-down interval.
        let out = b.handle_timeout(t + 300_000 + 60_937);
        assert_eq!(masters(&out), [true]);
        // a returns with the higher priority and preempts: b steps down on a's advertisement.
        let mut a = node(A, 1, 200);
        a.start(1_000_000);
        let out = a.handle_timeout(a.poll_timeout().unwrap());
        let adv = frames(&out).remove(0);
        let out = b.receive(2_000_000, PortId(0), &adv);
        assert_eq!(masters(&out), [false]);
    }

    #[test]
    fn advertisements_that_are_not_for_a_group_here_are_refused_by_reason() {
        let mut a = node(A, 1, 200);
        a.start(0);
        let out = a.handle_timeout(a.poll_timeout().unwrap());
        let adv = frames(&out).remove(0);
        let mut b = node(B, 2, 100);
        b.start(0);
        let mut bad = adv.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        b.receive(1, PortId(0), &bad);
        assert_eq!(b.refused().bad_checksum, 1);
        let mut other = Failover::new(
            &[FailoverGroup {
                vrid: 8,
                ..group(100)
            }],
            50,
            &[PortInfo {
                mac: [2, 0, 0, 0, 1, 3],
                v4: Some(B),
                link_local: PortInfo::link_local_of([2, 0, 0, 0, 1, 3]),
            }],
        );
        other.start(0);
        other.receive(1, PortId(0), &adv);
        assert_eq!(other.refused().unknown_vrid, 1);
        b.receive(1, PortId(0), &adv[..adv.len() - 2]);
        assert_eq!(b.refused().malformed, 1);
    }

    #[test]
    fn a_node_out_of_sync_advertises_its_demoted_priority() {
        let mut a = node(A, 1, 200);
        a.start(0);
        a.handle_timeout(a.poll_timeout().unwrap());
        let out = a.set_demoted(500_000, Some("not in sync"));
        let adv = frames(&out).remove(0);
        let m = meta::parse_meta(&adv, ChecksumCaps::SOFTWARE).expect("valid");
        let priority = adv[usize::from(m.l4_offset) + 2];
        assert_eq!(priority, 150);
        assert_eq!(a.demoted(), Some("not in sync"));
    }

    #[test]
    fn ipv6_groups_advertise_from_the_link_local_address_to_ff02_12() {
        let v6 = FailoverGroup {
            addresses: vec![IpAddr::V6("fe80::1".parse().unwrap())],
            ..group(255)
        };
        let mac = [2, 0, 0, 0, 1, 1];
        let mut f = Failover::new(
            &[v6],
            50,
            &[PortInfo {
                mac,
                v4: None,
                link_local: PortInfo::link_local_of(mac),
            }],
        );
        let out = f.start(0);
        assert_eq!(masters(&out), [true], "the owner is master at once");
        let sent = frames(&out);
        let m = meta::parse_meta(&sent[0], ChecksumCaps::SOFTWARE).expect("valid");
        assert_eq!(Ipv6Addr::from(m.dst), vrrp::GROUP_V6);
        assert_eq!(
            Ipv6Addr::from(m.src),
            "fe80::ff:fe00:101".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(&sent[0][6..12], &[0, 0, 0x5e, 0, 2, 7]);
        // Parsed by a peer: the checksum covers the IPv6 pseudo-header.
        let mut peer = Failover::new(
            &[FailoverGroup {
                priority: 100,
                addresses: vec![IpAddr::V6("fe80::1".parse().unwrap())],
                ..group(100)
            }],
            50,
            &[PortInfo {
                mac: [2, 0, 0, 0, 1, 2],
                v4: None,
                link_local: PortInfo::link_local_of([2, 0, 0, 0, 1, 2]),
            }],
        );
        peer.start(0);
        peer.receive(1, PortId(0), &sent[0]);
        assert_eq!(peer.refused(), Refused::default());
        assert_eq!(peer.groups()[0].router.counts().received, 1);
    }
}
