//! Whole frames built from a few fields, with every length and checksum right: TCP, UDP and ICMP echo over
//! either IP version, ICMP errors quoting a packet, ARP, neighbour solicitation and advertisement, and the
//! answers a `block return` rule sends (a TCP RST, an ICMP unreachable). The worker writes answers into
//! mbufs with the `_into` forms; tests, simulations and the pcap generator take the `Vec` forms. Frames are
//! not padded to Ethernet's 60-byte minimum: NICs pad on transmit, and captures of sent frames are unpadded
//! too. What to answer, and when, is the worker's decision; this module only writes the bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::arp::{self, ArpRepr, Operation};
use super::checksum::PseudoHeader;
use super::ethernet::{self, BROADCAST, EthernetRepr, MacAddr, VlanTag, ethertype};
use super::icmpv4::{self, Icmpv4Repr};
use super::icmpv6::{self, Icmpv6Repr, NeighborFlags};
use super::ip::{ipv4_of_pf, ipv6_of_pf, protocol};
use super::ipv4::{self, Ipv4Repr};
use super::ipv6::{self, Ipv6Repr};
use super::meta::{EtherClass, Fragment, IcmpKind, L4, PacketMeta};
use super::tcp::{self, TcpFlags, TcpRepr};
use super::udp::{self, UdpRepr};
use super::{Error, Header, Result};

/// The hop limit answers and generated packets use unless told otherwise (Linux's and OpenBSD's default).
pub const DEFAULT_HOP_LIMIT: u8 = 64;

/// The source and destination addresses of an IP packet, of one family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpPair {
    /// IPv4.
    V4 {
        /// Source.
        src: Ipv4Addr,
        /// Destination.
        dst: Ipv4Addr,
    },
    /// IPv6.
    V6 {
        /// Source.
        src: Ipv6Addr,
        /// Destination.
        dst: Ipv6Addr,
    },
}

impl IpPair {
    /// The pair the other way round.
    pub fn reversed(self) -> IpPair {
        match self {
            IpPair::V4 { src, dst } => IpPair::V4 { src: dst, dst: src },
            IpPair::V6 { src, dst } => IpPair::V6 { src: dst, dst: src },
        }
    }

    /// The transport checksum's pseudo-header for these addresses.
    pub fn pseudo_header(self) -> PseudoHeader {
        match self {
            IpPair::V4 { src, dst } => PseudoHeader::V4 { src, dst },
            IpPair::V6 { src, dst } => PseudoHeader::V6 { src, dst },
        }
    }
}

/// Who a frame is from and to, at the link and IP layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Endpoints {
    /// Source MAC.
    pub src_mac: MacAddr,
    /// Destination MAC.
    pub dst_mac: MacAddr,
    /// The 802.1Q VLAN to tag the frame with, if any.
    pub vlan: Option<u16>,
    /// IP addresses.
    pub ips: IpPair,
    /// TTL or hop limit.
    pub hop_limit: u8,
}

impl Endpoints {
    /// IPv4 endpoints, untagged, with the default hop limit.
    pub fn v4(src_mac: MacAddr, dst_mac: MacAddr, src: Ipv4Addr, dst: Ipv4Addr) -> Endpoints {
        Endpoints {
            src_mac,
            dst_mac,
            vlan: None,
            ips: IpPair::V4 { src, dst },
            hop_limit: DEFAULT_HOP_LIMIT,
        }
    }

    /// IPv6 endpoints, untagged, with the default hop limit.
    pub fn v6(src_mac: MacAddr, dst_mac: MacAddr, src: Ipv6Addr, dst: Ipv6Addr) -> Endpoints {
        Endpoints {
            src_mac,
            dst_mac,
            vlan: None,
            ips: IpPair::V6 { src, dst },
            hop_limit: DEFAULT_HOP_LIMIT,
        }
    }

    /// The same endpoints in VLAN `vid`.
    pub fn with_vlan(self, vid: u16) -> Endpoints {
        Endpoints {
            vlan: Some(vid),
            ..self
        }
    }

    /// The same endpoints with another hop limit.
    pub fn with_hop_limit(self, hop_limit: u8) -> Endpoints {
        Endpoints { hop_limit, ..self }
    }

    /// The endpoints of the opposite direction.
    pub fn reversed(self) -> Endpoints {
        Endpoints {
            src_mac: self.dst_mac,
            dst_mac: self.src_mac,
            ips: self.ips.reversed(),
            ..self
        }
    }

    /// The endpoints of a received frame, from its bytes and its classification; `None` when not IP.
    pub fn of_frame(frame: &[u8], meta: &PacketMeta) -> Option<Endpoints> {
        let eth = ethernet::Frame::new_checked(frame).ok()?;
        let ips = match meta.class {
            EtherClass::Ipv4 => IpPair::V4 {
                src: ipv4_of_pf(&meta.src),
                dst: ipv4_of_pf(&meta.dst),
            },
            EtherClass::Ipv6 => IpPair::V6 {
                src: ipv6_of_pf(&meta.src),
                dst: ipv6_of_pf(&meta.dst),
            },
            EtherClass::Arp | EtherClass::Other => return None,
        };
        Some(Endpoints {
            src_mac: eth.src_addr(),
            dst_mac: eth.dst_addr(),
            vlan: meta.vlan,
            ips,
            hop_limit: meta.ttl,
        })
    }

    fn ethernet(&self, ethertype: u16) -> EthernetRepr {
        EthernetRepr {
            src_addr: self.src_mac,
            dst_addr: self.dst_mac,
            vlan: self.vlan.map(VlanTag::new),
            ethertype,
        }
    }

    fn l2_len(&self) -> usize {
        if self.vlan.is_some() {
            ethernet::TAGGED_HEADER_LEN
        } else {
            ethernet::HEADER_LEN
        }
    }

    fn ip_header_len(&self) -> usize {
        match self.ips {
            IpPair::V4 { .. } => ipv4::HEADER_LEN,
            IpPair::V6 { .. } => ipv6::HEADER_LEN,
        }
    }

    /// Length of a frame carrying `l4_len` bytes of IP payload.
    pub fn frame_len(&self, l4_len: usize) -> usize {
        self.l2_len() + self.ip_header_len() + l4_len
    }
}

/// Writes Ethernet and IP headers for `l4_len` bytes of protocol `proto`, then lets `write_l4` fill the
/// transport part. Returns the frame length.
fn ip_frame(
    buf: &mut [u8],
    ends: &Endpoints,
    proto: u8,
    l4_len: usize,
    write_l4: impl FnOnce(&mut [u8], &PseudoHeader),
) -> Result<usize> {
    let (header, max) = match ends.ips {
        IpPair::V4 { .. } => (Header::Ipv4, ipv4::MAX_TOTAL_LEN - ipv4::HEADER_LEN),
        IpPair::V6 { .. } => (Header::Ipv6, usize::from(u16::MAX)),
    };
    if l4_len > max {
        return Err(Error::PayloadTooLong {
            header,
            len: l4_len,
            max,
        });
    }
    let len = ends.frame_len(l4_len);
    let have = buf.len();
    let frame = buf
        .get_mut(..len)
        .ok_or(Error::BufferTooSmall { need: len, have })?;
    let l3 = ends.l2_len();
    let l4 = l3 + ends.ip_header_len();
    let (l2_bytes, rest) = frame.split_at_mut(l3);
    let (ip_bytes, l4_bytes) = rest.split_at_mut(l4 - l3);
    match ends.ips {
        IpPair::V4 { src, dst } => {
            ends.ethernet(ethertype::IPV4)
                .emit(&mut ethernet::Frame::new_unchecked(l2_bytes));
            Ipv4Repr {
                src_addr: src,
                dst_addr: dst,
                protocol: proto,
                payload_len: l4_len,
                ttl: ends.hop_limit,
                // DF with identification zero: an atomic datagram, whose identification is unused
                // (RFC 6864 section 4.1).
                dont_frag: true,
                ..Ipv4Repr::default()
            }
            .emit(&mut ipv4::Packet::new_unchecked(ip_bytes));
        }
        IpPair::V6 { src, dst } => {
            ends.ethernet(ethertype::IPV6)
                .emit(&mut ethernet::Frame::new_unchecked(l2_bytes));
            Ipv6Repr {
                src_addr: src,
                dst_addr: dst,
                next_header: proto,
                payload_len: l4_len,
                hop_limit: ends.hop_limit,
                traffic_class: 0,
                flow_label: 0,
            }
            .emit(&mut ipv6::Packet::new_unchecked(ip_bytes));
        }
    }
    write_l4(l4_bytes, &ends.ips.pseudo_header());
    Ok(len)
}

/// Runs a builder on a vector of exactly the frame's length.
fn to_vec(len: usize, build: impl FnOnce(&mut [u8]) -> Result<usize>) -> Result<Vec<u8>> {
    let mut frame = vec![0u8; len];
    build(&mut frame)?;
    Ok(frame)
}

/// Writes an IP packet of protocol `proto` whose payload is `payload` as given (ESP, GRE, pfsync's 240, or
/// a hand-made transport header) into `buf`; returns the frame length.
pub fn ip_into(buf: &mut [u8], ends: &Endpoints, proto: u8, payload: &[u8]) -> Result<usize> {
    ip_frame(buf, ends, proto, payload.len(), |bytes, _| {
        bytes.copy_from_slice(payload);
    })
}

/// An IP packet of protocol `proto` with `payload` as given.
pub fn ip(ends: &Endpoints, proto: u8, payload: &[u8]) -> Result<Vec<u8>> {
    to_vec(ends.frame_len(payload.len()), |buf| {
        ip_into(buf, ends, proto, payload)
    })
}

/// Writes a TCP segment with `payload` into `buf`; returns the frame length.
pub fn tcp_into(buf: &mut [u8], ends: &Endpoints, repr: &TcpRepr, payload: &[u8]) -> Result<usize> {
    let l4_len = repr.buffer_len() + payload.len();
    ip_frame(buf, ends, protocol::TCP, l4_len, |bytes, pseudo| {
        repr.emit(&mut tcp::Packet::new_unchecked(bytes), payload, pseudo);
    })
}

/// A TCP segment with `payload`.
pub fn tcp(ends: &Endpoints, repr: &TcpRepr, payload: &[u8]) -> Result<Vec<u8>> {
    let len = ends.frame_len(repr.buffer_len() + payload.len());
    to_vec(len, |buf| tcp_into(buf, ends, repr, payload))
}

/// Writes a UDP datagram with `payload` into `buf`; returns the frame length.
pub fn udp_into(buf: &mut [u8], ends: &Endpoints, repr: &UdpRepr, payload: &[u8]) -> Result<usize> {
    let l4_len = udp::HEADER_LEN + payload.len();
    if l4_len > usize::from(u16::MAX) {
        return Err(Error::PayloadTooLong {
            header: Header::Udp,
            len: payload.len(),
            max: usize::from(u16::MAX) - udp::HEADER_LEN,
        });
    }
    ip_frame(buf, ends, protocol::UDP, l4_len, |bytes, pseudo| {
        repr.emit(&mut udp::Packet::new_unchecked(bytes), payload, pseudo);
    })
}

/// A UDP datagram with `payload`.
pub fn udp(ends: &Endpoints, repr: &UdpRepr, payload: &[u8]) -> Result<Vec<u8>> {
    let len = ends.frame_len(udp::HEADER_LEN + payload.len());
    to_vec(len, |buf| udp_into(buf, ends, repr, payload))
}

/// An echo message's fields; the family comes from the endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Echo {
    /// A request (true) or a reply.
    pub request: bool,
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq_no: u16,
}

/// Writes an ICMP (IPv4) or ICMPv6 (IPv6) echo with `data` into `buf`; returns the frame length.
pub fn icmp_echo_into(buf: &mut [u8], ends: &Endpoints, echo: Echo, data: &[u8]) -> Result<usize> {
    let Echo {
        request,
        ident,
        seq_no,
    } = echo;
    let l4_len = icmpv4::HEADER_LEN + data.len();
    match ends.ips {
        IpPair::V4 { .. } => {
            let repr = if request {
                Icmpv4Repr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                }
            } else {
                Icmpv4Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                }
            };
            ip_frame(buf, ends, protocol::ICMP, l4_len, |bytes, _| {
                repr.emit(&mut icmpv4::Packet::new_unchecked(bytes));
            })
        }
        IpPair::V6 { .. } => {
            let repr = if request {
                Icmpv6Repr::EchoRequest {
                    ident,
                    seq_no,
                    data,
                }
            } else {
                Icmpv6Repr::EchoReply {
                    ident,
                    seq_no,
                    data,
                }
            };
            ip_frame(buf, ends, protocol::ICMPV6, l4_len, |bytes, pseudo| {
                repr.emit(&mut icmpv6::Packet::new_unchecked(bytes), pseudo);
            })
        }
    }
}

/// An ICMP or ICMPv6 echo with `data`.
pub fn icmp_echo(ends: &Endpoints, echo: Echo, data: &[u8]) -> Result<Vec<u8>> {
    let len = ends.frame_len(icmpv4::HEADER_LEN + data.len());
    to_vec(len, |buf| icmp_echo_into(buf, ends, echo, data))
}

/// An ICMP error, in terms both versions share; codes are the family's own ([`icmpv4::unreachable`],
/// [`icmpv6::unreachable`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcmpError {
    /// Destination unreachable with a code.
    Unreachable(u8),
    /// Time exceeded with a code.
    TimeExceeded(u8),
    /// Packet too big (IPv6) or fragmentation needed (IPv4, unreachable code 4) with the next-hop MTU.
    PacketTooBig(u32),
    /// Parameter problem with a code and a pointer (IPv4 keeps the pointer's low byte).
    ParamProblem {
        /// Code.
        code: u8,
        /// Offset of the problem in the quoted packet.
        pointer: u32,
    },
}

impl IcmpError {
    /// Type, code and rest-of-header word for a family.
    fn header(self, v6: bool) -> (u8, u8, u32) {
        use IcmpError::*;
        match (self, v6) {
            (Unreachable(code), false) => (icmpv4::message::DST_UNREACHABLE, code, 0),
            (Unreachable(code), true) => (icmpv6::message::DST_UNREACHABLE, code, 0),
            (TimeExceeded(code), false) => (icmpv4::message::TIME_EXCEEDED, code, 0),
            (TimeExceeded(code), true) => (icmpv6::message::TIME_EXCEEDED, code, 0),
            // RFC 1191 section 4: the next-hop MTU is the low 16 bits of the word.
            (PacketTooBig(mtu), false) => (
                icmpv4::message::DST_UNREACHABLE,
                icmpv4::unreachable::FRAG_NEEDED,
                mtu.min(0xffff),
            ),
            (PacketTooBig(mtu), true) => (icmpv6::message::PACKET_TOO_BIG, 0, mtu),
            // RFC 792: the pointer is the word's first byte.
            (ParamProblem { code, pointer }, false) => {
                (icmpv4::message::PARAM_PROBLEM, code, (pointer & 0xff) << 24)
            }
            (ParamProblem { code, pointer }, true) => {
                (icmpv6::message::PARAM_PROBLEM, code, pointer)
            }
        }
    }
}

/// How much of the offending packet an error quotes: as much as keeps the error's IP datagram within 576
/// bytes for IPv4 (RFC 1812 section 4.3.2.3) and within the minimum MTU, 1280, for IPv6 (RFC 4443 section
/// 2.4 (c)).
fn quote_len(ends: &Endpoints, quoted: &[u8]) -> usize {
    let limit = match ends.ips {
        IpPair::V4 { .. } => 576 - ipv4::HEADER_LEN - icmpv4::HEADER_LEN,
        IpPair::V6 { .. } => 1280 - ipv6::HEADER_LEN - icmpv6::HEADER_LEN,
    };
    quoted.len().min(limit)
}

/// The part of `frame` (classified as `meta`) an ICMP error about it quotes: the packet from its IP header
/// to the end of its datagram. `None` when the quote, cut to the RFC limits (576 bytes in all for IPv4,
/// 1280 for IPv6), could not hold the IP headers and the first 8 bytes of the transport header: an error
/// the receiver cannot match to a flow helps nobody (an IPv6 packet with over a kilobyte of extension
/// headers, typically).
pub fn quote_of<'a>(frame: &'a [u8], meta: &PacketMeta) -> Option<&'a [u8]> {
    let start = usize::from(meta.l3_offset);
    let end = usize::from(meta.l4_offset) + usize::from(meta.ip_payload_len);
    let quoted = frame.get(start..end)?;
    let limit = match meta.class {
        EtherClass::Ipv4 => 576 - ipv4::HEADER_LEN - icmpv4::HEADER_LEN,
        EtherClass::Ipv6 => 1280 - ipv6::HEADER_LEN - icmpv6::HEADER_LEN,
        EtherClass::Arp | EtherClass::Other => return None,
    };
    let needed = usize::from(meta.l4_offset) - start + 8;
    (quoted.len().min(limit) >= needed.min(quoted.len())).then_some(quoted)
}

/// Writes an ICMP error quoting `quoted` (the offending packet from its IP header on, as received; cut to
/// the RFC limits) into `buf`; returns the frame length.
pub fn icmp_error_into(
    buf: &mut [u8],
    ends: &Endpoints,
    error: IcmpError,
    quoted: &[u8],
) -> Result<usize> {
    let quoted = &quoted[..quote_len(ends, quoted)];
    let l4_len = icmpv4::HEADER_LEN + quoted.len();
    match ends.ips {
        IpPair::V4 { .. } => {
            let (msg_type, code, word) = error.header(false);
            ip_frame(buf, ends, protocol::ICMP, l4_len, |bytes, _| {
                // The quote is copied, not re-emitted, so that its options and checksum stay as received.
                let mut packet = icmpv4::Packet::new_unchecked(bytes);
                packet.set_msg_type(msg_type);
                packet.set_msg_code(code);
                packet.set_rest_of_header(word);
                packet.data_mut().copy_from_slice(quoted);
                packet.fill_checksum();
            })
        }
        IpPair::V6 { .. } => {
            let (msg_type, code, word) = error.header(true);
            ip_frame(buf, ends, protocol::ICMPV6, l4_len, |bytes, pseudo| {
                let mut packet = icmpv6::Packet::new_unchecked(bytes);
                packet.set_msg_type(msg_type);
                packet.set_msg_code(code);
                packet.set_word(word);
                packet.data_mut().copy_from_slice(quoted);
                packet.fill_checksum(pseudo);
            })
        }
    }
}

/// An ICMP error quoting `quoted`.
pub fn icmp_error(ends: &Endpoints, error: IcmpError, quoted: &[u8]) -> Result<Vec<u8>> {
    let len = ends.frame_len(icmpv4::HEADER_LEN + quote_len(ends, quoted));
    to_vec(len, |buf| icmp_error_into(buf, ends, error, quoted))
}

/// Writes an ARP message to `dst_mac` into `buf`; returns the frame length.
pub fn arp_into(
    buf: &mut [u8],
    dst_mac: MacAddr,
    vlan: Option<u16>,
    repr: &ArpRepr,
) -> Result<usize> {
    let eth = EthernetRepr {
        src_addr: repr.source_hardware_addr,
        dst_addr: dst_mac,
        vlan: vlan.map(VlanTag::new),
        ethertype: ethertype::ARP,
    };
    let len = eth.buffer_len() + repr.buffer_len();
    let have = buf.len();
    let frame = buf
        .get_mut(..len)
        .ok_or(Error::BufferTooSmall { need: len, have })?;
    let (l2, l3) = frame.split_at_mut(eth.buffer_len());
    eth.emit(&mut ethernet::Frame::new_unchecked(l2));
    repr.emit(&mut arp::Packet::new_unchecked(l3));
    Ok(len)
}

fn arp_frame(dst_mac: MacAddr, vlan: Option<u16>, repr: &ArpRepr) -> Vec<u8> {
    let tag = if vlan.is_some() { 4 } else { 0 };
    let mut frame = vec![0u8; ethernet::HEADER_LEN + tag + repr.buffer_len()];
    // The vector is sized for exactly this frame, so the only error, a short buffer, cannot happen.
    let _ = arp_into(&mut frame, dst_mac, vlan, repr);
    frame
}

/// A broadcast ARP request for `target_ip`. With `target_ip == sender_ip` it is a gratuitous ARP, which
/// failover sends on takeover (RFC 5227 section 3).
pub fn arp_request(
    sender: MacAddr,
    sender_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
    vlan: Option<u16>,
) -> Vec<u8> {
    let repr = ArpRepr {
        operation: Operation::Request,
        source_hardware_addr: sender,
        source_protocol_addr: sender_ip,
        target_hardware_addr: MacAddr([0; 6]),
        target_protocol_addr: target_ip,
    };
    arp_frame(BROADCAST, vlan, &repr)
}

/// An ARP reply telling `target` that `sender_ip` is at `sender`.
pub fn arp_reply(
    sender: MacAddr,
    sender_ip: Ipv4Addr,
    target: MacAddr,
    target_ip: Ipv4Addr,
    vlan: Option<u16>,
) -> Vec<u8> {
    let repr = ArpRepr {
        operation: Operation::Reply,
        source_hardware_addr: sender,
        source_protocol_addr: sender_ip,
        target_hardware_addr: target,
        target_protocol_addr: target_ip,
    };
    arp_frame(target, vlan, &repr)
}

/// The solicited-node multicast address of `addr`: ff02::1:ff00:0/104 and its low 24 bits (RFC 4291
/// section 2.7.1).
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15],
    ])
}

/// Neighbour Discovery messages must be sent with hop limit 255, so that a receiver can tell they were
/// not forwarded (RFC 4861 section 7.1.1).
const ND_HOP_LIMIT: u8 = 255;

fn neighbor_frame(ends: &Endpoints, repr: &Icmpv6Repr<'_>) -> Result<Vec<u8>> {
    if !matches!(ends.ips, IpPair::V6 { .. }) {
        return Err(Error::Unsupported {
            header: Header::Icmpv6,
            what: "neighbour discovery over IPv4 endpoints",
        });
    }
    let ends = ends.with_hop_limit(ND_HOP_LIMIT);
    let l4_len = repr.buffer_len();
    to_vec(ends.frame_len(l4_len), |buf| {
        ip_frame(buf, &ends, protocol::ICMPV6, l4_len, |bytes, pseudo| {
            repr.emit(&mut icmpv6::Packet::new_unchecked(bytes), pseudo);
        })
    })
}

/// A neighbour solicitation for `target` from `src_ip` at `src_mac`, sent to the target's solicited-node
/// multicast group (RFC 4861 section 7.2.2) with a source link-layer address option.
pub fn neighbor_solicit(
    src_mac: MacAddr,
    src_ip: Ipv6Addr,
    target: Ipv6Addr,
    vlan: Option<u16>,
) -> Vec<u8> {
    let group = solicited_node(target);
    let mut ends = Endpoints::v6(src_mac, ethernet::ipv6_multicast_mac(group), src_ip, group);
    ends.vlan = vlan;
    let repr = Icmpv6Repr::NeighborSolicit {
        target,
        source_lladdr: Some(src_mac),
    };
    // IPv6 endpoints and a 32-byte message cannot fail.
    neighbor_frame(&ends, &repr).unwrap_or_default()
}

/// A neighbour advertisement of `target` at the source MAC of `ends` (IPv6 endpoints; an unsolicited one
/// goes to ff02::1 with the override flag, RFC 4861 section 7.2.6), with a target link-layer address option.
pub fn neighbor_advert(
    ends: &Endpoints,
    target: Ipv6Addr,
    flags: NeighborFlags,
) -> Result<Vec<u8>> {
    let repr = Icmpv6Repr::NeighborAdvert {
        flags,
        target,
        target_lladdr: Some(ends.src_mac),
    };
    neighbor_frame(ends, &repr)
}

/// An answer to a received packet, ready to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer<'a> {
    /// From the packet's destination to its source.
    pub ends: Endpoints,
    /// What to send.
    pub kind: AnswerKind<'a>,
}

/// What an [`Answer`] sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerKind<'a> {
    /// A TCP segment without payload: a RST, a RST|ACK, or a challenge ACK.
    Tcp(TcpRepr),
    /// An ICMP error quoting the packet.
    IcmpError {
        /// Which error.
        error: IcmpError,
        /// The packet, from its IP header to the end of its datagram.
        quoted: &'a [u8],
    },
}

impl Answer<'_> {
    /// Length of the frame.
    pub fn buffer_len(&self) -> usize {
        match self.kind {
            AnswerKind::Tcp(repr) => self.ends.frame_len(repr.buffer_len()),
            AnswerKind::IcmpError { quoted, .. } => self
                .ends
                .frame_len(icmpv4::HEADER_LEN + quote_len(&self.ends, quoted)),
        }
    }

    /// Writes the frame into `buf`; returns its length.
    pub fn emit_into(&self, buf: &mut [u8]) -> Result<usize> {
        match self.kind {
            AnswerKind::Tcp(repr) => tcp_into(buf, &self.ends, &repr, &[]),
            AnswerKind::IcmpError { error, quoted } => {
                icmp_error_into(buf, &self.ends, error, quoted)
            }
        }
    }

    /// The frame.
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        to_vec(self.buffer_len(), |buf| self.emit_into(buf))
    }
}

/// The endpoints of an answer to a whole (unfragmented or first-fragment) IP packet.
fn answer_ends(frame: &[u8], meta: &PacketMeta, hop_limit: u8) -> Option<Endpoints> {
    let ends = Endpoints::of_frame(frame, meta)?;
    Some(ends.reversed().with_hop_limit(hop_limit))
}

/// The RST that answers `frame` (a TCP segment, classified as `meta`) as a closed port would, by RFC 9293
/// section 3.10.7.1: to a segment with ACK, `<SEQ=SEG.ACK><CTL=RST>`; otherwise
/// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`, SYN and FIN each counting one. `None` for anything that is
/// not a TCP segment, for a RST (never answered, RFC 9293 section 3.10.7.1), and for fragments.
pub fn reset_for(frame: &[u8], meta: &PacketMeta, hop_limit: u8) -> Option<Answer<'static>> {
    let L4::Tcp(seg) = meta.l4 else {
        return None;
    };
    if seg.flags.contains(TcpFlags::RST) || meta.fragment != Fragment::None {
        return None;
    }
    let repr = if seg.flags.contains(TcpFlags::ACK) {
        TcpRepr {
            seq: seg.ack,
            flags: TcpFlags::RST,
            ..TcpRepr::default()
        }
    } else {
        let len = u32::from(seg.payload_len)
            + u32::from(seg.flags.contains(TcpFlags::SYN))
            + u32::from(seg.flags.contains(TcpFlags::FIN));
        TcpRepr {
            seq: 0,
            ack: seg.seq.wrapping_add(len),
            flags: TcpFlags::RST | TcpFlags::ACK,
            ..TcpRepr::default()
        }
    };
    Some(Answer {
        ends: answer_ends(frame, meta, hop_limit)?,
        kind: AnswerKind::Tcp(TcpRepr {
            src_port: seg.dst_port,
            dst_port: seg.src_port,
            ..repr
        }),
    })
}

/// The challenge ACK that answers a SYN on an established connection (RFC 5961 section 4.2, pf's
/// `pf_send_challenge_ack`): an ACK from the SYN's destination carrying `seq` and `ack`, the numbers the
/// state knows, so that a live sender of the SYN answers with a RST that the state accepts. `None` for
/// anything but a whole TCP segment.
pub fn challenge_ack_for(
    frame: &[u8],
    meta: &PacketMeta,
    seq: u32,
    ack: u32,
    hop_limit: u8,
) -> Option<Answer<'static>> {
    let L4::Tcp(seg) = meta.l4 else {
        return None;
    };
    if meta.fragment != Fragment::None {
        return None;
    }
    Some(Answer {
        ends: answer_ends(frame, meta, hop_limit)?,
        kind: AnswerKind::Tcp(TcpRepr {
            src_port: seg.dst_port,
            dst_port: seg.src_port,
            seq,
            ack,
            flags: TcpFlags::ACK,
            ..TcpRepr::default()
        }),
    })
}

/// A probe that makes a TCP endpoint state its numbers: a bare ACK from `frame`'s sender to its
/// destination, with the sender's timestamps, carrying `seq` and `ack`. With `seq` far below anything the
/// destination still accepts (a keepalive probe's trick), the destination discards it and answers with an
/// ACK carrying its own next sequence number and acknowledgement (RFC 9293 section 3.10.7.4). `None` for
/// anything but a whole TCP segment.
pub fn probe_for(frame: &[u8], meta: &PacketMeta, seq: u32, ack: u32) -> Option<Answer<'static>> {
    if !matches!(meta.l4, L4::Tcp(_)) || meta.fragment != Fragment::None {
        return None;
    }
    let start = usize::from(meta.l4_offset);
    let segment = frame.get(start..start + usize::from(meta.ip_payload_len))?;
    let seen = TcpRepr::parse(&tcp::Packet::new_checked(segment).ok()?).ok()?;
    Some(Answer {
        ends: Endpoints::of_frame(frame, meta)?,
        kind: AnswerKind::Tcp(TcpRepr {
            src_port: seen.src_port,
            dst_port: seen.dst_port,
            seq,
            ack,
            flags: TcpFlags::ACK,
            window: seen.window,
            timestamps: seen.timestamps,
            ..TcpRepr::default()
        }),
    })
}

/// Whether a packet's source may receive an error about it, and its destination was a single host: no
/// unspecified, loopback, multicast or broadcast source, no multicast or broadcast destination (RFC 1122
/// section 3.2.2, RFC 4443 section 2.4 (e)).
fn may_receive_error(meta: &PacketMeta) -> bool {
    match meta.class {
        EtherClass::Ipv4 => {
            let (src, dst) = (ipv4_of_pf(&meta.src), ipv4_of_pf(&meta.dst));
            !(src.is_unspecified()
                || src.is_loopback()
                || src.is_multicast()
                || src.is_broadcast()
                || dst.is_multicast()
                || dst.is_broadcast())
        }
        EtherClass::Ipv6 => {
            let (src, dst) = (ipv6_of_pf(&meta.src), ipv6_of_pf(&meta.dst));
            !(src.is_unspecified() || src.is_multicast() || dst.is_multicast())
        }
        EtherClass::Arp | EtherClass::Other => false,
    }
}

/// The ICMP destination unreachable with `code` that answers `frame` (classified as `meta`), quoting it.
/// `None` where the RFCs forbid an error (RFC 1122 section 3.2.2, RFC 4443 section 2.4 (e)): in answer to
/// an ICMP error, to a non-first fragment, to a packet sent to a multicast or broadcast address (at the link
/// or IP layer) or from an address that cannot be answered.
pub fn unreachable_for<'a>(
    frame: &'a [u8],
    meta: &PacketMeta,
    code: u8,
    hop_limit: u8,
) -> Option<Answer<'a>> {
    let is_error = matches!(meta.l4, L4::Icmp(icmp) if matches!(icmp.kind, IcmpKind::Error(_)));
    let later_fragment = matches!(meta.fragment, Fragment::Later { .. });
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if is_error || later_fragment || ethernet::is_group(&eth.dst_addr()) || !may_receive_error(meta)
    {
        return None;
    }
    Some(Answer {
        ends: answer_ends(frame, meta, hop_limit)?,
        kind: AnswerKind::IcmpError {
            error: IcmpError::Unreachable(code),
            quoted: quote_of(frame, meta)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::captured;
    use crate::wire::checksum::ChecksumCaps;
    use crate::wire::meta::{QuotedL4, parse_meta};

    const A_MAC: MacAddr = MacAddr([0xba, 0x7f, 0xa3, 0x06, 0xf2, 0xf9]);
    const B_MAC: MacAddr = MacAddr([0x7e, 0x7d, 0x87, 0xd2, 0x7f, 0x78]);

    fn v6(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    fn meta(frame: &[u8]) -> PacketMeta {
        parse_meta(frame, ChecksumCaps::SOFTWARE).unwrap()
    }

    #[test]
    fn a_built_tcp_segment_is_the_captured_one() {
        // Rebuild the captured data segment: only Linux's IPv4 identification (we write zero) differs.
        let ends = Endpoints::v4(
            MacAddr([0xf2, 0x28, 0xc2, 0x96, 0x65, 0xe0]),
            MacAddr([0x3e, 0x96, 0x6a, 0xd9, 0xfe, 0x70]),
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        );
        let repr = TcpRepr {
            src_port: 35726,
            dst_port: 80,
            seq: 2_682_626_138,
            ack: 2_088_975_333,
            flags: TcpFlags::PSH | TcpFlags::ACK,
            window: 63,
            timestamps: Some((1_135_181_092, 1_716_922_757)),
            ..TcpRepr::default()
        };
        let mut frame = tcp(&ends, &repr, b"GET /\r\n").unwrap();
        let mut packet = ipv4::Packet::new_unchecked(&mut frame[14..]);
        packet.set_ident(0x1f42);
        packet.fill_checksum();
        assert_eq!(frame, captured::DATA_V4);
    }

    #[test]
    fn a_built_udp_datagram_over_ipv6_is_the_captured_one() {
        let ends = Endpoints::v6(A_MAC, B_MAC, v6("2001:db8::1"), v6("2001:db8::2"));
        let repr = UdpRepr {
            src_port: 59632,
            dst_port: 9999,
        };
        let mut frame = udp(&ends, &repr, b"hi").unwrap();
        // Linux sets a flow label; ours is zero.
        frame[15..18].copy_from_slice(&captured::UDP_V6[15..18]);
        assert_eq!(frame, captured::UDP_V6);
    }

    #[test]
    fn built_echoes_are_the_captured_ones() {
        let echo = Echo {
            request: true,
            ident: 0x2062,
            seq_no: 1,
        };
        let ends = Endpoints::v4(
            A_MAC,
            B_MAC,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        );
        let mut frame = icmp_echo(&ends, echo, b"abcd").unwrap();
        let mut packet = ipv4::Packet::new_unchecked(&mut frame[14..]);
        packet.set_ident(0x3434);
        packet.fill_checksum();
        assert_eq!(frame, captured::ECHO_V4);

        let ends = Endpoints::v6(A_MAC, B_MAC, v6("2001:db8::1"), v6("2001:db8::2"));
        let echo = Echo {
            ident: 0x2063,
            ..echo
        };
        let mut frame = icmp_echo(&ends, echo, b"abcd").unwrap();
        frame[15..18].copy_from_slice(&captured::ECHO_V6[15..18]);
        assert_eq!(frame, captured::ECHO_V6);
    }

    #[test]
    fn built_arp_and_neighbour_discovery_are_the_captured_ones() {
        let request = arp_request(
            A_MAC,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            None,
        );
        assert_eq!(request, captured::ARP_REQUEST);
        let solicit = neighbor_solicit(A_MAC, v6("2001:db8::1"), v6("2001:db8::2"), None);
        assert_eq!(solicit, captured::SOLICIT);
        let ends = Endpoints::v6(B_MAC, A_MAC, v6("2001:db8::2"), v6("2001:db8::1"));
        let flags = NeighborFlags::SOLICITED.with(NeighborFlags::OVERRIDE);
        assert_eq!(
            neighbor_advert(&ends, v6("2001:db8::2"), flags).unwrap(),
            captured::ADVERT
        );
        let v4_ends = Endpoints::v4(A_MAC, B_MAC, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
        assert!(neighbor_advert(&v4_ends, v6("::1"), flags).is_err());
    }

    #[test]
    fn an_arp_reply_goes_to_the_asker() {
        let reply = arp_reply(
            B_MAC,
            Ipv4Addr::new(10, 0, 0, 2),
            A_MAC,
            Ipv4Addr::new(10, 0, 0, 1),
            Some(7),
        );
        let frame = ethernet::Frame::new_checked(&reply[..]).unwrap();
        assert_eq!(frame.dst_addr(), A_MAC);
        assert_eq!(frame.vlan_tag().map(|t| t.vid), Some(7));
        let repr = ArpRepr::parse(&arp::Packet::new_checked(frame.payload()).unwrap()).unwrap();
        assert_eq!(repr.operation, Operation::Reply);
        assert_eq!(repr.target_hardware_addr, A_MAC);
    }

    #[test]
    fn the_reset_for_a_syn_acknowledges_it_and_parses_back() {
        let syn = meta(&captured::SYN_V4);
        let answer = reset_for(&captured::SYN_V4, &syn, 64).unwrap();
        let frame = answer.to_vec().unwrap();
        assert_eq!(frame.len(), answer.buffer_len());
        let rst = meta(&frame);
        assert_eq!(rst.src, syn.dst);
        assert_eq!(rst.dst, syn.src);
        let L4::Tcp(seg) = rst.l4 else {
            panic!("not TCP: {rst:?}");
        };
        assert_eq!((seg.src_port, seg.dst_port), (80, 35726));
        assert_eq!(seg.flags, TcpFlags::RST | TcpFlags::ACK);
        assert_eq!((seg.seq, seg.ack), (0, 2_682_626_137 + 1));
        assert!(rst.l4_checksum_ok(&frame));
        let eth = ethernet::Frame::new_checked(&frame[..]).unwrap();
        assert_eq!(
            eth.dst_addr(),
            MacAddr([0xf2, 0x28, 0xc2, 0x96, 0x65, 0xe0])
        );
    }

    #[test]
    fn the_reset_for_a_segment_with_ack_takes_its_sequence_from_the_ack() {
        let data = meta(&captured::DATA_V4);
        let frame = reset_for(&captured::DATA_V4, &data, 64)
            .unwrap()
            .to_vec()
            .unwrap();
        let L4::Tcp(seg) = meta(&frame).l4 else {
            panic!("not TCP");
        };
        assert_eq!(seg.flags, TcpFlags::RST);
        assert_eq!(seg.seq, 2_088_975_333);
    }

    #[test]
    fn a_reset_is_never_answered() {
        let rst = meta(&captured::RST_V6);
        assert_eq!(reset_for(&captured::RST_V6, &rst, 64), None);
    }

    #[test]
    fn the_challenge_ack_for_a_syn_comes_from_its_destination_with_the_states_numbers() {
        let syn = meta(&captured::SYN_V4);
        let L4::Tcp(seg) = syn.l4 else {
            panic!("a TCP SYN")
        };
        let frame = challenge_ack_for(&captured::SYN_V4, &syn, 7000, 9000, 64)
            .unwrap()
            .to_vec()
            .unwrap();
        let answer = meta(&frame);
        assert_eq!((answer.src, answer.dst), (syn.dst, syn.src));
        let L4::Tcp(ack) = answer.l4 else {
            panic!("a TCP segment")
        };
        assert_eq!((ack.src_port, ack.dst_port), (seg.dst_port, seg.src_port));
        assert_eq!((ack.seq, ack.ack, ack.flags), (7000, 9000, TcpFlags::ACK));
        assert!(answer.l4_checksum_ok(&frame));
    }

    #[test]
    fn a_probe_goes_the_segments_way_with_its_timestamps_and_the_numbers_given() {
        let data = meta(&captured::DATA_V4);
        let L4::Tcp(seg) = data.l4 else {
            panic!("a TCP segment")
        };
        let frame = probe_for(&captured::DATA_V4, &data, 7000, 9000)
            .unwrap()
            .to_vec()
            .unwrap();
        let probe = meta(&frame);
        assert_eq!(
            (probe.src, probe.dst, probe.ttl),
            (data.src, data.dst, data.ttl)
        );
        let L4::Tcp(ack) = probe.l4 else {
            panic!("a TCP segment")
        };
        assert_eq!((ack.src_port, ack.dst_port), (seg.src_port, seg.dst_port));
        assert_eq!((ack.seq, ack.ack, ack.flags), (7000, 9000, TcpFlags::ACK));
        assert_eq!((ack.payload_len, ack.window), (0, seg.window));
        assert!(probe.l4_checksum_ok(&frame));
        let at = usize::from(probe.l4_offset);
        let sent = TcpRepr::parse(&tcp::Packet::new_checked(&frame[at..]).unwrap()).unwrap();
        let start = usize::from(data.l4_offset);
        let seen = TcpRepr::parse(&tcp::Packet::new_checked(&captured::DATA_V4[start..]).unwrap());
        assert_eq!(sent.timestamps, seen.unwrap().timestamps);
    }

    #[test]
    fn no_probe_for_anything_but_tcp() {
        let udp = meta(&captured::UDP_V6);
        assert_eq!(probe_for(&captured::UDP_V6, &udp, 1, 2), None);
    }

    #[test]
    fn the_unreachable_for_a_udp_datagram_quotes_it() {
        let udp = meta(&captured::UDP_V6);
        let answer =
            unreachable_for(&captured::UDP_V6, &udp, icmpv6::unreachable::PORT, 64).unwrap();
        let mut frame = answer.to_vec().unwrap();
        let answered = meta(&frame);
        assert!(answered.l4_checksum_ok(&frame));
        let L4::Icmp(icmp) = answered.l4 else {
            panic!("not ICMP");
        };
        let IcmpKind::Error(quoted) = icmp.kind else {
            panic!("not an error");
        };
        assert_eq!((quoted.src, quoted.dst), (udp.src, udp.dst));
        assert_eq!(
            quoted.l4,
            QuotedL4::Udp {
                src_port: 59632,
                dst_port: 9999
            }
        );
        // Apart from Linux's flow label, what Linux sent for the same datagram.
        frame[15..18].copy_from_slice(&captured::PORT_UNREACHABLE_V6[15..18]);
        assert_eq!(frame, captured::PORT_UNREACHABLE_V6);
    }

    #[test]
    fn the_ipv4_unreachable_matches_linux_apart_from_tos_and_id() {
        let udp = meta(&captured::UDP_V4);
        let mut frame = unreachable_for(&captured::UDP_V4, &udp, icmpv4::unreachable::PORT, 64)
            .unwrap()
            .to_vec()
            .unwrap();
        // Linux sends its errors with TOS 0xc0 (network control), identification 0x7e4b and no DF.
        let mut packet = ipv4::Packet::new_unchecked(&mut frame[14..]);
        packet.set_tos(0xc0);
        packet.set_ident(0x7e4b);
        packet.set_fragment(false, false, 0);
        packet.fill_checksum();
        assert_eq!(frame, captured::PORT_UNREACHABLE_V4);
    }

    #[test]
    fn errors_broadcasts_and_later_fragments_are_not_answered() {
        let error = meta(&captured::PORT_UNREACHABLE_V4);
        assert_eq!(
            unreachable_for(&captured::PORT_UNREACHABLE_V4, &error, 3, 64),
            None
        );
        let mut broadcast = captured::UDP_V4;
        broadcast[..6].copy_from_slice(&BROADCAST.0);
        assert_eq!(unreachable_for(&broadcast, &meta(&broadcast), 3, 64), None);
        let mut later = meta(&captured::UDP_V4);
        later.fragment = Fragment::Later {
            id: 1,
            offset: 8,
            last: true,
        };
        assert_eq!(unreachable_for(&captured::UDP_V4, &later, 3, 64), None);
        let mut multicast = meta(&captured::UDP_V4);
        multicast.dst[0] = 224;
        assert_eq!(unreachable_for(&captured::UDP_V4, &multicast, 3, 64), None);
    }

    #[test]
    fn a_long_quote_is_cut_to_576_bytes_over_ipv4() {
        let ends = Endpoints::v4(
            A_MAC,
            B_MAC,
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(10, 0, 0, 1),
        );
        let quoted = vec![0x45; 1500];
        let frame = icmp_error(&ends, IcmpError::Unreachable(13), &quoted).unwrap();
        assert_eq!(frame.len(), 14 + 576);
        let packet = ipv4::Packet::new_checked(&frame[14..]).unwrap();
        assert!(
            icmpv4::Packet::new_checked(packet.payload())
                .unwrap()
                .verify_checksum()
        );
    }

    #[test]
    fn the_families_map_each_error_to_their_own_type() {
        assert_eq!(IcmpError::PacketTooBig(1400).header(false), (3, 4, 1400));
        assert_eq!(IcmpError::PacketTooBig(1400).header(true), (2, 0, 1400));
        assert_eq!(
            IcmpError::ParamProblem {
                code: 0,
                pointer: 9
            }
            .header(false),
            (12, 0, 9 << 24)
        );
        assert_eq!(IcmpError::TimeExceeded(0).header(true), (3, 0, 0));
    }

    #[test]
    fn a_short_buffer_and_a_huge_payload_are_errors() {
        let ends = Endpoints::v4(A_MAC, B_MAC, Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST);
        let mut small = [0u8; 40];
        assert_eq!(
            udp_into(&mut small, &ends, &UdpRepr::default(), b"hello"),
            Err(Error::BufferTooSmall { need: 47, have: 40 })
        );
        let huge = vec![0u8; 70_000];
        assert!(matches!(
            udp(&ends, &UdpRepr::default(), &huge),
            Err(Error::PayloadTooLong { .. })
        ));
        assert!(matches!(
            tcp(&ends, &TcpRepr::default(), &huge[..65_500]),
            Err(Error::PayloadTooLong {
                header: Header::Ipv4,
                ..
            })
        ));
    }

    #[test]
    fn a_tagged_frame_is_answered_in_its_vlan() {
        let ends = Endpoints::v4(
            A_MAC,
            B_MAC,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        )
        .with_vlan(42);
        let syn = TcpRepr {
            src_port: 1000,
            dst_port: 22,
            seq: 7,
            flags: TcpFlags::SYN,
            mss: Some(1460),
            ..TcpRepr::default()
        };
        let frame = tcp(&ends, &syn, &[]).unwrap();
        let syn_meta = meta(&frame);
        assert_eq!(syn_meta.vlan, Some(42));
        let rst = reset_for(&frame, &syn_meta, 64).unwrap().to_vec().unwrap();
        assert_eq!(meta(&rst).vlan, Some(42));
    }

    #[test]
    fn the_solicited_node_group_keeps_the_low_24_bits() {
        assert_eq!(
            solicited_node(v6("2001:db8::1234:5678")),
            v6("ff02::1:ff34:5678")
        );
    }
}
