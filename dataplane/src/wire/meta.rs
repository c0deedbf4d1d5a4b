//! The per-packet classifier: [`parse_meta`] reads an Ethernet frame once and returns a small `Copy`
//! [`PacketMeta`] with everything the worker needs to name the flow and run the tracker, or the one
//! [`Malformed`] reason the frame must be dropped for. It owns no state and decides nothing: no flow keys,
//! no rules, no verdicts. It reads bytes through the header views, so the layouts live in one place.
//!
//! What it checks is what a firewall must trust before looking a packet up: every length the headers
//! state (Ethernet, VLAN tag, IPv4 IHL and total length, IPv6 payload length and extension header chain,
//! TCP data offset, UDP length, the ICMP header and the packet an ICMP error quotes), and the IPv4 header
//! checksum when [`ChecksumCaps`] says the NIC has not. It does not verify transport checksums (the
//! endpoints do, and the worker checks them with [`PacketMeta::l4_checksum_ok`] before answering a packet
//! with a RST or an ICMP error, as pf does). Bytes after the IP datagram (Ethernet padding) are ignored.
//!
//! TCP options are parsed only when SYN is set: only a SYN's options (MSS, window scale, SACK permitted,
//! timestamps) create state, and skipping them keeps an established flow's packets cheap. A malformed
//! option does not drop the SYN; parsing stops there and [`SynOptions::malformed`] says so.
//!
//! # Fragments
//!
//! A fragment is reported in [`PacketMeta::fragment`]. A first fragment (offset zero) carries the transport
//! header and is classified like any packet; its transport header must lie whole inside the fragment, so a
//! tiny first fragment that splits the TCP header (RFC 1858 section 3.1) is dropped as truncated. Its
//! payload lengths count only the bytes of this fragment. A non-first fragment carries no transport header:
//! its [`L4`] is [`L4::Fragment`] with the datagram's identification, so the worker can match it by (family,
//! addresses, protocol, identification) or drop it. The worker's default is to drop non-first fragments
//! with a counted reason until reassembly exists. An IPv6 atomic fragment (offset zero, M clear) is a whole
//! datagram (RFC 6946 section 4) and is reported as not a fragment. A fragment whose offset and length
//! reach past 65535 bytes is malformed (RFC 791 section 3.2; RFC 8200 section 4.5).
//!
//! ARP and other non-IP ethertypes are not errors: they come back with their [`EtherClass`] (the worker
//! hands ARP and Neighbour Discovery to the control thread) and empty IP fields.

use tandem_config::Family;

use super::Error;
use super::checksum::{ChecksumCaps, PseudoHeader};
use super::ethernet::{self, ethertype};
use super::icmpv4;
use super::icmpv6;
use super::ip::{pf_addr_v4, protocol};
use super::ipv4;
use super::ipv6;
use super::tcp::{self, TcpFlags, TcpOption, TcpOptions};
use super::udp;

/// What a frame carries, by ethertype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EtherClass {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// ARP.
    Arp,
    /// Anything else; [`PacketMeta::ethertype`] says what.
    Other,
}

/// Whether and how a packet is a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fragment {
    /// A whole datagram.
    None,
    /// The first fragment: offset zero, more follow; it carries the transport header.
    First {
        /// Identification (16 bits for IPv4, 32 for IPv6).
        id: u32,
    },
    /// A later fragment: no transport header.
    Later {
        /// Identification.
        id: u32,
        /// Offset of this fragment's data in the datagram, in bytes.
        offset: u16,
        /// Whether it is the datagram's last fragment (MF clear).
        last: bool,
    },
}

/// The options of a SYN that matter to state creation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SynOptions {
    /// Maximum segment size.
    pub mss: Option<u16>,
    /// Window scale shift, as sent (the tracker clamps it to 14).
    pub window_scale: Option<u8>,
    /// SACK permitted.
    pub sack_permitted: bool,
    /// The timestamps option is present.
    pub timestamps: bool,
    /// An option was malformed; the ones before it were read, none after.
    pub malformed: bool,
}

/// A TCP segment's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TcpMeta {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window, unscaled.
    pub window: u16,
    /// Payload bytes after the header (in this fragment, for a first fragment).
    pub payload_len: u16,
    /// The options, parsed only when SYN is set.
    pub syn_options: Option<SynOptions>,
    /// Reserved header bits set, or an urgent pointer without URG: what pf's normalization clears.
    pub stray_bits: bool,
}

/// A UDP datagram's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UdpMeta {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload bytes according to the UDP length field.
    pub payload_len: u16,
}

/// The transport header of a packet quoted by an ICMP error, as far as the 8 quoted bytes reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuotedL4 {
    /// TCP: ports and sequence number (the tracker checks it against the quoted flow's window).
    Tcp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
        /// Sequence number.
        seq: u32,
    },
    /// UDP ports.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// An ICMP or ICMPv6 echo.
    IcmpEcho {
        /// Echo identifier.
        id: u16,
        /// Whether the quoted echo was a request.
        request: bool,
    },
    /// A non-first fragment: no transport header was quoted (pf drops such errors).
    LaterFragment,
    /// Any other protocol or ICMP message.
    Other,
}

/// The packet an ICMP error quotes: enough to find the state of the flow it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QuotedMeta {
    /// Address family of the quoted packet (always the ICMP packet's own).
    pub family: Family,
    /// Source address, pf layout.
    pub src: [u8; 16],
    /// Destination address, pf layout.
    pub dst: [u8; 16],
    /// IP protocol, after IPv6 extension headers.
    pub proto: u8,
    /// The quoted transport header.
    pub l4: QuotedL4,
}

/// What an ICMP or ICMPv6 message is, to the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IcmpKind {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        id: u16,
        /// Sequence number.
        seq: u16,
    },
    /// An error message and the packet it quotes.
    Error(QuotedMeta),
    /// Anything else (Neighbour Discovery, router messages, timestamps, ...).
    Other,
}

/// An ICMP or ICMPv6 message's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IcmpMeta {
    /// Type.
    pub icmp_type: u8,
    /// Code.
    pub code: u8,
    /// Echo, error or other.
    pub kind: IcmpKind,
}

/// The transport layer of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum L4 {
    /// TCP.
    Tcp(TcpMeta),
    /// UDP.
    Udp(UdpMeta),
    /// ICMP over IPv4 or ICMPv6 over IPv6.
    Icmp(IcmpMeta),
    /// A non-first fragment, which has no transport header.
    Fragment {
        /// The datagram's identification.
        id: u32,
    },
    /// Another protocol (ESP, GRE, ...), no next header, or not IP at all.
    Other,
}

/// What the worker knows of a frame after [`parse_meta`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketMeta {
    /// The 802.1Q VLAN identifier, if the frame is tagged.
    pub vlan: Option<u16>,
    /// The class of the payload.
    pub class: EtherClass,
    /// The payload's ethertype (after the tag).
    pub ethertype: u16,
    /// Offset of the IP (or ARP) header in the frame.
    pub l3_offset: u16,
    /// Offset of the transport header (or of a non-first fragment's data) in the frame; 0 when not IP.
    pub l4_offset: u16,
    /// Source address, pf layout; zero when not IP.
    pub src: [u8; 16],
    /// Destination address, pf layout; zero when not IP.
    pub dst: [u8; 16],
    /// IP protocol, after IPv6 extension headers (50 for ESP, 59 for no next header; for a non-first IPv6
    /// fragment, the fragment header's next header).
    pub proto: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// Bytes of the IP datagram from `l4_offset` to its end (Ethernet padding excluded).
    pub ip_payload_len: u16,
    /// Fragment information.
    pub fragment: Fragment,
    /// Whether the IPv4 header carries an option other than padding (pf drops such packets unless the
    /// rule says `allow-opts`). Always false for IPv6.
    pub ip_options: bool,
    /// The transport layer.
    pub l4: L4,
}

impl PacketMeta {
    fn not_ip(vlan: Option<u16>, ethertype: u16, l3_offset: usize) -> PacketMeta {
        let class = match ethertype {
            ethertype::ARP => EtherClass::Arp,
            _ => EtherClass::Other,
        };
        PacketMeta {
            vlan,
            class,
            ethertype,
            l3_offset: l3_offset as u16,
            l4_offset: 0,
            src: [0; 16],
            dst: [0; 16],
            proto: 0,
            ttl: 0,
            ip_payload_len: 0,
            fragment: Fragment::None,
            ip_options: false,
            l4: L4::Other,
        }
    }

    /// The address family, for IP packets.
    pub fn family(&self) -> Option<Family> {
        match self.class {
            EtherClass::Ipv4 => Some(Family::Inet),
            EtherClass::Ipv6 => Some(Family::Inet6),
            EtherClass::Arp | EtherClass::Other => None,
        }
    }

    /// Source and destination port, for TCP and UDP.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.l4 {
            L4::Tcp(t) => Some((t.src_port, t.dst_port)),
            L4::Udp(u) => Some((u.src_port, u.dst_port)),
            _ => None,
        }
    }

    /// Whether this is a Neighbour Discovery message, which the worker hands to the control thread.
    pub fn is_neighbor_discovery(&self) -> bool {
        self.class == EtherClass::Ipv6
            && matches!(self.l4, L4::Icmp(icmp) if icmpv6::message::is_neighbor_discovery(icmp.icmp_type))
    }

    /// The pseudo-header of this packet's transport checksum, for IP packets.
    pub fn pseudo_header(&self) -> Option<PseudoHeader> {
        match self.class {
            EtherClass::Ipv4 => Some(PseudoHeader::V4 {
                src: super::ip::ipv4_of_pf(&self.src),
                dst: super::ip::ipv4_of_pf(&self.dst),
            }),
            EtherClass::Ipv6 => Some(PseudoHeader::V6 {
                src: super::ip::ipv6_of_pf(&self.src),
                dst: super::ip::ipv6_of_pf(&self.dst),
            }),
            EtherClass::Arp | EtherClass::Other => None,
        }
    }

    /// Whether the transport checksum of a whole (unfragmented) TCP, UDP or ICMP packet verifies. `frame`
    /// must be the frame this was parsed from. Fragments, other protocols and non-IP frames return false:
    /// their checksum cannot be checked from one frame. Costs a pass over the payload: call it only before
    /// answering a packet, as pf does before sending a RST or an ICMP error.
    pub fn l4_checksum_ok(&self, frame: &[u8]) -> bool {
        let start = usize::from(self.l4_offset);
        let Some(segment) = frame.get(start..start + usize::from(self.ip_payload_len)) else {
            return false;
        };
        if self.fragment != Fragment::None {
            return false;
        }
        let Some(pseudo) = self.pseudo_header() else {
            return false;
        };
        match self.l4 {
            L4::Tcp(_) => pseudo.verify(protocol::TCP, segment),
            L4::Udp(_) => {
                udp::Packet::new_checked(segment).is_ok_and(|p| p.verify_checksum(&pseudo))
            }
            L4::Icmp(_) if self.class == EtherClass::Ipv4 => {
                icmpv4::Packet::new_unchecked(segment).verify_checksum()
            }
            L4::Icmp(_) => pseudo.verify(protocol::ICMPV6, segment),
            L4::Fragment { .. } | L4::Other => false,
        }
    }
}

/// Why a frame is dropped before any lookup. Each variant indexes a per-worker counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Malformed {
    /// The frame is shorter than an Ethernet header, or than the VLAN tag it announces.
    #[error("Ethernet header or VLAN tag truncated")]
    EthernetTruncated,
    /// More than one VLAN tag (QinQ).
    #[error("stacked VLAN tags")]
    VlanStacked,
    /// Fewer than 20 bytes, or fewer than IHL announces, after the Ethernet header.
    #[error("IPv4 header truncated")]
    Ipv4Truncated,
    /// The IPv4 ethertype carries another IP version.
    #[error("IPv4 ethertype with another IP version")]
    Ipv4BadVersion,
    /// IHL below 5.
    #[error("IPv4 header length below 20 bytes")]
    Ipv4BadIhl,
    /// Total length shorter than the header or longer than the frame.
    #[error("IPv4 total length inconsistent")]
    Ipv4BadTotalLength,
    /// The header checksum does not verify (checked only when the NIC has not).
    #[error("IPv4 header checksum")]
    Ipv4BadChecksum,
    /// Fewer than 40 bytes after the Ethernet header.
    #[error("IPv6 header truncated")]
    Ipv6Truncated,
    /// The IPv6 ethertype carries another IP version.
    #[error("IPv6 ethertype with another IP version")]
    Ipv6BadVersion,
    /// The payload length reaches past the frame.
    #[error("IPv6 payload length longer than the frame")]
    Ipv6BadPayloadLength,
    /// More extension headers than [`ipv6::MAX_EXTENSION_HEADERS`].
    #[error("IPv6 extension header chain too long")]
    Ipv6ExtChainTooLong,
    /// An extension header reaches past the payload.
    #[error("IPv6 extension header truncated")]
    Ipv6ExtTruncated,
    /// A hop-by-hop options header that is not first (RFC 8200 section 4.3).
    #[error("IPv6 hop-by-hop header not first")]
    Ipv6HopByHopNotFirst,
    /// A fragment's offset and length reach past the largest datagram, 65535 bytes.
    #[error("fragment reaches past 65535 bytes")]
    FragmentOverflow,
    /// Fewer bytes than a TCP header, or than its data offset announces.
    #[error("TCP header truncated")]
    TcpTruncated,
    /// Data offset below 5.
    #[error("TCP data offset below 20 bytes")]
    TcpBadDataOffset,
    /// Fewer than 8 bytes of UDP header.
    #[error("UDP header truncated")]
    UdpTruncated,
    /// UDP length shorter than the header or longer than the IP payload.
    #[error("UDP length inconsistent")]
    UdpBadLength,
    /// Fewer than 8 bytes of ICMP header.
    #[error("ICMP header truncated")]
    IcmpTruncated,
    /// An ICMP error quotes less than an IP header and 8 bytes of its payload.
    #[error("ICMP error quotes too little")]
    IcmpQuoteTruncated,
    /// An ICMP error quotes something that is not a valid IP header of its own family.
    #[error("ICMP error quotes an invalid packet")]
    IcmpQuoteInvalid,
}

impl Malformed {
    /// Every reason, in [`Malformed::index`] order.
    pub const ALL: [Malformed; 21] = [
        Malformed::EthernetTruncated,
        Malformed::VlanStacked,
        Malformed::Ipv4Truncated,
        Malformed::Ipv4BadVersion,
        Malformed::Ipv4BadIhl,
        Malformed::Ipv4BadTotalLength,
        Malformed::Ipv4BadChecksum,
        Malformed::Ipv6Truncated,
        Malformed::Ipv6BadVersion,
        Malformed::Ipv6BadPayloadLength,
        Malformed::Ipv6ExtChainTooLong,
        Malformed::Ipv6ExtTruncated,
        Malformed::Ipv6HopByHopNotFirst,
        Malformed::FragmentOverflow,
        Malformed::TcpTruncated,
        Malformed::TcpBadDataOffset,
        Malformed::UdpTruncated,
        Malformed::UdpBadLength,
        Malformed::IcmpTruncated,
        Malformed::IcmpQuoteTruncated,
        Malformed::IcmpQuoteInvalid,
    ];

    /// How many reasons there are: the length of a per-reason counter array.
    pub const COUNT: usize = Malformed::ALL.len();

    /// This reason's index in a counter array, `0..COUNT`.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// A stable snake_case name for counters and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Malformed::EthernetTruncated => "ethernet_truncated",
            Malformed::VlanStacked => "vlan_stacked",
            Malformed::Ipv4Truncated => "ipv4_truncated",
            Malformed::Ipv4BadVersion => "ipv4_bad_version",
            Malformed::Ipv4BadIhl => "ipv4_bad_ihl",
            Malformed::Ipv4BadTotalLength => "ipv4_bad_total_length",
            Malformed::Ipv4BadChecksum => "ipv4_bad_checksum",
            Malformed::Ipv6Truncated => "ipv6_truncated",
            Malformed::Ipv6BadVersion => "ipv6_bad_version",
            Malformed::Ipv6BadPayloadLength => "ipv6_bad_payload_length",
            Malformed::Ipv6ExtChainTooLong => "ipv6_ext_chain_too_long",
            Malformed::Ipv6ExtTruncated => "ipv6_ext_truncated",
            Malformed::Ipv6HopByHopNotFirst => "ipv6_hop_by_hop_not_first",
            Malformed::FragmentOverflow => "fragment_overflow",
            Malformed::TcpTruncated => "tcp_truncated",
            Malformed::TcpBadDataOffset => "tcp_bad_data_offset",
            Malformed::UdpTruncated => "udp_truncated",
            Malformed::UdpBadLength => "udp_bad_length",
            Malformed::IcmpTruncated => "icmp_truncated",
            Malformed::IcmpQuoteTruncated => "icmp_quote_truncated",
            Malformed::IcmpQuoteInvalid => "icmp_quote_invalid",
        }
    }
}

/// The largest IP datagram: a fragment may not reach past it.
const MAX_DATAGRAM: usize = 65535;

/// Classifies one Ethernet frame. See the module documentation for what is checked.
pub fn parse_meta(frame: &[u8], caps: ChecksumCaps) -> Result<PacketMeta, Malformed> {
    let eth = ethernet::Frame::new_checked(frame).map_err(|_| Malformed::EthernetTruncated)?;
    eth.check_single_tag().map_err(|_| Malformed::VlanStacked)?;
    let link = Link {
        vlan: eth.vlan_tag().map(|tag| tag.vid),
        ethertype: eth.payload_ethertype(),
        l3: eth.header_len(),
    };
    let packet = eth.payload();
    match link.ethertype {
        ethertype::IPV4 => parse_ipv4(packet, link, caps),
        ethertype::IPV6 => parse_ipv6(packet, link),
        _ => Ok(PacketMeta::not_ip(link.vlan, link.ethertype, link.l3)),
    }
}

/// What the Ethernet header said.
#[derive(Clone, Copy)]
struct Link {
    vlan: Option<u16>,
    ethertype: u16,
    l3: usize,
}

// The IP parsers build the whole `PacketMeta` in one expression, so that it is written once, in place.
#[inline(always)]
fn parse_ipv4(bytes: &[u8], link: Link, caps: ChecksumCaps) -> Result<PacketMeta, Malformed> {
    let ip = ipv4::Packet::new_checked(bytes).map_err(|err| match err {
        Error::BadHeaderLen { .. } => Malformed::Ipv4BadIhl,
        Error::BadLength { .. } => Malformed::Ipv4BadTotalLength,
        _ => Malformed::Ipv4Truncated,
    })?;
    if ip.version() != 4 {
        return Err(Malformed::Ipv4BadVersion);
    }
    if caps.verify_ipv4_header && !ip.verify_checksum() {
        return Err(Malformed::Ipv4BadChecksum);
    }
    let payload = ip.payload();
    let proto = ip.protocol();
    let (fragment, l4) = if ip.is_fragment() {
        let (id, offset) = (u32::from(ip.ident()), ip.frag_offset());
        if usize::from(offset) + payload.len() > MAX_DATAGRAM {
            return Err(Malformed::FragmentOverflow);
        }
        if offset > 0 {
            let last = !ip.more_frags();
            (Fragment::Later { id, offset, last }, L4::Fragment { id })
        } else {
            (
                Fragment::First { id },
                parse_l4(proto, payload, Family::Inet, false)?,
            )
        }
    } else {
        (
            Fragment::None,
            parse_l4(proto, payload, Family::Inet, true)?,
        )
    };
    Ok(PacketMeta {
        vlan: link.vlan,
        class: EtherClass::Ipv4,
        ethertype: link.ethertype,
        l3_offset: link.l3 as u16,
        l4_offset: (link.l3 + ip.header_len()) as u16,
        src: pf_addr_v4(ip.src_addr().octets()),
        dst: pf_addr_v4(ip.dst_addr().octets()),
        proto,
        ttl: ip.ttl(),
        ip_payload_len: payload.len() as u16,
        fragment,
        ip_options: carries_options(&bytes[ipv4::HEADER_LEN..ip.header_len()]),
        l4,
    })
}

/// Whether an IPv4 options area holds an option other than No Operation before its End of Options List
/// (RFC 791 section 3.1): padding alone is not an option.
fn carries_options(options: &[u8]) -> bool {
    for &kind in options {
        match kind {
            0 => return false,
            1 => continue,
            _ => return true,
        }
    }
    false
}

fn parse_ipv6(bytes: &[u8], link: Link) -> Result<PacketMeta, Malformed> {
    let ip = ipv6::Packet::new_checked(bytes).map_err(|err| match err {
        Error::BadLength { .. } => Malformed::Ipv6BadPayloadLength,
        _ => Malformed::Ipv6Truncated,
    })?;
    if ip.version() != 6 {
        return Err(Malformed::Ipv6BadVersion);
    }
    let payload = ip.payload();
    let chain = ipv6::walk_chain(ip.next_header(), payload).map_err(|err| match err {
        Error::ExtensionChainTooLong { .. } => Malformed::Ipv6ExtChainTooLong,
        Error::HopByHopNotFirst => Malformed::Ipv6HopByHopNotFirst,
        _ => Malformed::Ipv6ExtTruncated,
    })?;
    let upper = payload.get(chain.offset..).unwrap_or_default();
    let (fragment, l4) = match chain.fragment {
        // The walk stopped right after the fragment header, so `upper` is the fragmentable part.
        Some(frag) if !frag.is_first() => {
            if usize::from(frag.offset) + upper.len() > MAX_DATAGRAM {
                return Err(Malformed::FragmentOverflow);
            }
            let id = frag.ident;
            let offset = frag.offset;
            let last = !frag.more_frags;
            (Fragment::Later { id, offset, last }, L4::Fragment { id })
        }
        frag => {
            let fragment = match frag {
                Some(frag) if frag.more_frags => Fragment::First { id: frag.ident },
                _ => Fragment::None,
            };
            let l4 = if chain.has_upper_layer_header() {
                parse_l4(
                    chain.protocol,
                    upper,
                    Family::Inet6,
                    fragment == Fragment::None,
                )?
            } else {
                L4::Other
            };
            (fragment, l4)
        }
    };
    Ok(PacketMeta {
        vlan: link.vlan,
        class: EtherClass::Ipv6,
        ethertype: link.ethertype,
        l3_offset: link.l3 as u16,
        l4_offset: (link.l3 + ipv6::HEADER_LEN + chain.offset) as u16,
        src: ip.src_addr().octets(),
        dst: ip.dst_addr().octets(),
        proto: chain.protocol,
        ttl: ip.hop_limit(),
        ip_payload_len: upper.len() as u16,
        fragment,
        ip_options: false,
        l4,
    })
}

/// `whole` is false for a first fragment: its UDP length field is the datagram's, which only the
/// reassembled datagram can be checked against.
#[inline(always)]
fn parse_l4(proto: u8, bytes: &[u8], family: Family, whole: bool) -> Result<L4, Malformed> {
    Ok(match (proto, family) {
        (protocol::TCP, _) => L4::Tcp(parse_tcp(bytes)?),
        (protocol::UDP, _) => {
            let udp = udp::Packet::new_unchecked(bytes);
            let checked = if whole {
                udp.check_len()
            } else {
                udp.check_header()
            };
            checked.map_err(|err| match err {
                Error::BadLength { .. } => Malformed::UdpBadLength,
                _ => Malformed::UdpTruncated,
            })?;
            L4::Udp(UdpMeta {
                src_port: udp.src_port(),
                dst_port: udp.dst_port(),
                payload_len: udp.len() - udp::HEADER_LEN as u16,
            })
        }
        (protocol::ICMP, Family::Inet) | (protocol::ICMPV6, Family::Inet6) => {
            L4::Icmp(parse_icmp(bytes, family)?)
        }
        _ => L4::Other,
    })
}

#[inline(always)]
fn parse_tcp(bytes: &[u8]) -> Result<TcpMeta, Malformed> {
    let tcp = tcp::Packet::new_checked(bytes).map_err(|err| match err {
        Error::BadHeaderLen { .. } => Malformed::TcpBadDataOffset,
        _ => Malformed::TcpTruncated,
    })?;
    let flags = tcp.flags();
    Ok(TcpMeta {
        src_port: tcp.src_port(),
        dst_port: tcp.dst_port(),
        seq: tcp.seq_number(),
        ack: tcp.ack_number(),
        flags,
        window: tcp.window_len(),
        payload_len: tcp.payload().len() as u16,
        syn_options: flags.syn().then(|| syn_options(tcp.options())),
        stray_bits: tcp.has_stray_bits(),
    })
}

fn syn_options(bytes: &[u8]) -> SynOptions {
    let mut options = SynOptions::default();
    for option in TcpOptions::new(bytes) {
        match option {
            Ok(TcpOption::MaxSegmentSize(mss)) => options.mss = Some(mss),
            Ok(TcpOption::WindowScale(shift)) => options.window_scale = Some(shift),
            Ok(TcpOption::SackPermitted) => options.sack_permitted = true,
            Ok(TcpOption::Timestamps { .. }) => options.timestamps = true,
            Ok(_) => {}
            Err(_) => options.malformed = true,
        }
    }
    options
}

fn parse_icmp(bytes: &[u8], family: Family) -> Result<IcmpMeta, Malformed> {
    // Both ICMP versions share the first eight bytes: type, code, checksum, then the echo id and sequence.
    let icmp = icmpv4::Packet::new_checked(bytes).map_err(|_| Malformed::IcmpTruncated)?;
    let (icmp_type, code) = (icmp.msg_type(), icmp.msg_code());
    let (id, seq) = (icmp.echo_ident(), icmp.echo_seq_no());
    let kind = match (family, icmp_type) {
        (Family::Inet, icmpv4::message::ECHO_REQUEST)
        | (Family::Inet6, icmpv6::message::ECHO_REQUEST) => IcmpKind::EchoRequest { id, seq },
        (Family::Inet, icmpv4::message::ECHO_REPLY)
        | (Family::Inet6, icmpv6::message::ECHO_REPLY) => IcmpKind::EchoReply { id, seq },
        (Family::Inet, t) if icmpv4::message::is_error(t) => {
            IcmpKind::Error(quoted_ipv4(icmp.data())?)
        }
        (Family::Inet6, t) if icmpv6::message::is_error(t) => {
            IcmpKind::Error(quoted_ipv6(icmp.data())?)
        }
        _ => IcmpKind::Other,
    };
    Ok(IcmpMeta {
        icmp_type,
        code,
        kind,
    })
}

fn quote_error(err: Error) -> Malformed {
    match err {
        Error::Truncated { .. } => Malformed::IcmpQuoteTruncated,
        _ => Malformed::IcmpQuoteInvalid,
    }
}

fn quoted_ipv4(bytes: &[u8]) -> Result<QuotedMeta, Malformed> {
    let ip = ipv4::Packet::new_unchecked(bytes);
    ip.check_header_len().map_err(quote_error)?;
    if ip.version() != 4 {
        return Err(Malformed::IcmpQuoteInvalid);
    }
    let proto = ip.protocol();
    let l4 = if ip.frag_offset() > 0 {
        QuotedL4::LaterFragment
    } else {
        quoted_l4(proto, &bytes[ip.header_len()..], Family::Inet)?
    };
    Ok(QuotedMeta {
        family: Family::Inet,
        src: pf_addr_v4(ip.src_addr().octets()),
        dst: pf_addr_v4(ip.dst_addr().octets()),
        proto,
        l4,
    })
}

fn quoted_ipv6(bytes: &[u8]) -> Result<QuotedMeta, Malformed> {
    let ip = ipv6::Packet::new_unchecked(bytes);
    ip.check_header_len().map_err(quote_error)?;
    if ip.version() != 6 {
        return Err(Malformed::IcmpQuoteInvalid);
    }
    // The quote is cut wherever the error's sender stopped; walk only what is there.
    let rest = &bytes[ipv6::HEADER_LEN..];
    let chain = ipv6::walk_chain(ip.next_header(), rest).map_err(quote_error)?;
    let l4 = if chain.fragment.is_some_and(|frag| !frag.is_first()) {
        QuotedL4::LaterFragment
    } else if chain.has_upper_layer_header() {
        let upper = rest.get(chain.offset..).unwrap_or_default();
        quoted_l4(chain.protocol, upper, Family::Inet6)?
    } else {
        QuotedL4::Other
    };
    Ok(QuotedMeta {
        family: Family::Inet6,
        src: ip.src_addr().octets(),
        dst: ip.dst_addr().octets(),
        proto: chain.protocol,
        l4,
    })
}

/// The first 8 bytes of a quoted transport header: all RFC 792 guarantees, and enough for ports, the TCP
/// sequence number and the echo id.
fn quoted_l4(proto: u8, bytes: &[u8], family: Family) -> Result<QuotedL4, Malformed> {
    let Some(&[a, b, c, d, e, f, g, h]) = bytes.first_chunk::<8>() else {
        // Only a header this function would read must be there; ICMPv4 inside IPv6 is just another protocol.
        return match (proto, family) {
            (protocol::TCP | protocol::UDP, _)
            | (protocol::ICMP, Family::Inet)
            | (protocol::ICMPV6, Family::Inet6) => Err(Malformed::IcmpQuoteTruncated),
            _ => Ok(QuotedL4::Other),
        };
    };
    let (first, second) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
    Ok(match (proto, family) {
        (protocol::TCP, _) => QuotedL4::Tcp {
            src_port: first,
            dst_port: second,
            seq: u32::from_be_bytes([e, f, g, h]),
        },
        (protocol::UDP, _) => QuotedL4::Udp {
            src_port: first,
            dst_port: second,
        },
        (protocol::ICMP, Family::Inet) => match a {
            icmpv4::message::ECHO_REQUEST | icmpv4::message::ECHO_REPLY => QuotedL4::IcmpEcho {
                id: u16::from_be_bytes([e, f]),
                request: a == icmpv4::message::ECHO_REQUEST,
            },
            _ => QuotedL4::Other,
        },
        (protocol::ICMPV6, Family::Inet6) => match a {
            icmpv6::message::ECHO_REQUEST | icmpv6::message::ECHO_REPLY => QuotedL4::IcmpEcho {
                id: u16::from_be_bytes([e, f]),
                request: a == icmpv6::message::ECHO_REQUEST,
            },
            _ => QuotedL4::Other,
        },
        _ => QuotedL4::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_padding_is_not_an_option_but_anything_else_is() {
        assert!(!carries_options(&[]));
        assert!(!carries_options(&[1, 1, 1, 0]));
        assert!(
            !carries_options(&[0, 0x83, 3, 0]),
            "nothing counts after End of Options"
        );
        assert!(carries_options(&[1, 0x83, 7, 4, 1, 2, 3, 4]));
        assert!(carries_options(&[0x94, 4, 0, 0]), "router alert");
        assert!(
            carries_options(&[0x44, 0]),
            "a length-0 option is still an option"
        );
    }
    use crate::wire::build::{self, Endpoints, IcmpError};
    use crate::wire::captured;
    use crate::wire::describe::check_parsers;
    use crate::wire::ethernet::MacAddr;
    use crate::wire::ipv6::FragmentHeader;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const A_MAC: MacAddr = MacAddr([0xba, 0x7f, 0xa3, 0x06, 0xf2, 0xf9]);
    const B_MAC: MacAddr = MacAddr([0x7e, 0x7d, 0x87, 0xd2, 0x7f, 0x78]);

    fn v4_ends() -> Endpoints {
        Endpoints::v4(
            A_MAC,
            B_MAC,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
        )
    }

    fn v6(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    fn v6_ends() -> Endpoints {
        Endpoints::v6(A_MAC, B_MAC, v6("2001:db8::1"), v6("2001:db8::2"))
    }

    fn parse(frame: &[u8]) -> Result<PacketMeta, Malformed> {
        parse_meta(frame, ChecksumCaps::SOFTWARE)
    }

    fn addr4(a: u8, b: u8, c: u8, d: u8) -> [u8; 16] {
        pf_addr_v4([a, b, c, d])
    }

    /// A 20-byte TCP header from port 1000 to 22 with `flags`, `extra` appended as options or payload.
    fn tcp_bytes(flags: TcpFlags, offset_words: u8, extra: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x03, 0xe8, 0x00, 0x16, 0, 0, 0, 7, 0, 0, 0, 9];
        bytes.extend_from_slice(&[offset_words << 4, flags.0, 0x10, 0x00, 0, 0, 0, 0]);
        bytes.extend_from_slice(extra);
        bytes
    }

    /// Recomputes the IPv4 header checksum of an untagged frame after a test edited the header.
    fn refill_ipv4(frame: &mut [u8]) {
        ipv4::Packet::new_unchecked(&mut frame[14..]).fill_checksum();
    }

    // ---- What is classified, and how ----

    #[test]
    fn an_established_tcp_segment_is_classified_without_reading_options() {
        let meta = parse(&captured::DATA_V4).unwrap();
        assert_eq!(meta.class, EtherClass::Ipv4);
        assert_eq!(meta.family(), Some(Family::Inet));
        assert_eq!((meta.vlan, meta.l3_offset, meta.l4_offset), (None, 14, 34));
        assert_eq!(
            (meta.src, meta.dst),
            (addr4(10, 0, 0, 1), addr4(10, 0, 0, 2))
        );
        assert_eq!((meta.proto, meta.ttl, meta.ip_payload_len), (6, 64, 39));
        assert_eq!(meta.fragment, Fragment::None);
        assert_eq!(
            meta.l4,
            L4::Tcp(TcpMeta {
                src_port: 35726,
                dst_port: 80,
                seq: 2_682_626_138,
                ack: 2_088_975_333,
                flags: TcpFlags::PSH | TcpFlags::ACK,
                window: 63,
                payload_len: 7,
                syn_options: None,
                stray_bits: false,
            })
        );
        assert_eq!(meta.ports(), Some((35726, 80)));
    }

    #[test]
    fn a_syn_has_its_options_parsed_over_both_families() {
        let v4 = parse(&captured::SYN_V4).unwrap();
        let L4::Tcp(seg) = v4.l4 else {
            panic!("not TCP: {v4:?}");
        };
        assert_eq!(seg.payload_len, 0);
        assert_eq!(
            seg.syn_options,
            Some(SynOptions {
                mss: Some(1460),
                window_scale: Some(10),
                sack_permitted: true,
                timestamps: true,
                malformed: false,
            })
        );
        let v6 = parse(&captured::SYN_V6).unwrap();
        assert_eq!(v6.family(), Some(Family::Inet6));
        assert_eq!((v6.l4_offset, v6.proto, v6.ip_payload_len), (54, 6, 40));
        assert_eq!(v6.src, v6_ends_src());
        let L4::Tcp(seg) = v6.l4 else {
            panic!("not TCP: {v6:?}");
        };
        assert_eq!((seg.src_port, seg.dst_port), (60190, 81));
        assert_eq!(seg.syn_options.and_then(|o| o.mss), Some(1440));
        assert_eq!(seg.syn_options.and_then(|o| o.window_scale), Some(10));
    }

    fn v6_ends_src() -> [u8; 16] {
        v6("2001:db8::1").octets()
    }

    #[test]
    fn a_malformed_syn_option_keeps_the_options_before_it() {
        let mut syn = captured::SYN_V4;
        // The window scale option, the last one, now claims four bytes where three remain.
        syn[72] = 4;
        let L4::Tcp(seg) = parse(&syn).unwrap().l4 else {
            panic!("not TCP");
        };
        let options = seg.syn_options.unwrap();
        assert_eq!((options.mss, options.window_scale), (Some(1460), None));
        assert!(options.sack_permitted && options.timestamps && options.malformed);
    }

    #[test]
    fn options_of_a_segment_without_syn_are_not_read_even_when_malformed() {
        let mut data = captured::DATA_V4;
        // The timestamps option now claims one byte, which would be malformed.
        data[57] = 1;
        let L4::Tcp(seg) = parse(&data).unwrap().l4 else {
            panic!("not TCP");
        };
        assert_eq!(seg.syn_options, None);
    }

    #[test]
    fn a_vlan_tag_is_read_and_the_offsets_move_past_it() {
        let repr = tcp::TcpRepr {
            src_port: 1000,
            dst_port: 22,
            flags: TcpFlags::ACK,
            ..tcp::TcpRepr::default()
        };
        let frame = build::tcp(&v4_ends().with_vlan(100), &repr, b"x").unwrap();
        let meta = parse(&frame).unwrap();
        assert_eq!((meta.vlan, meta.ethertype), (Some(100), ethertype::IPV4));
        assert_eq!((meta.l3_offset, meta.l4_offset), (18, 38));
        assert_eq!(meta.ports(), Some((1000, 22)));
    }

    /// Hop-by-hop, destination options, routing, fragment (offset `frag_offset`, M set, id 0xdeadbeef),
    /// AH, then a TCP SYN.
    fn ipv6_chain(frag_offset: u16) -> Vec<u8> {
        let mut payload = vec![protocol::IPV6_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0];
        payload.extend_from_slice(&[protocol::IPV6_ROUTING, 0, 1, 4, 0, 0, 0, 0]);
        payload.extend_from_slice(&[protocol::IPV6_FRAGMENT, 0, 0, 0, 0, 0, 0, 0]);
        let mut frag = [0u8; 8];
        FragmentHeader {
            next_header: protocol::AH,
            offset: frag_offset,
            more_frags: true,
            ident: 0xdead_beef,
        }
        .emit(&mut frag);
        payload.extend_from_slice(&frag);
        // AH with payload length 2: (2 + 2) * 4 = 16 bytes.
        payload.extend_from_slice(&[protocol::TCP, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 9, 9, 9, 9]);
        payload.extend_from_slice(&tcp_bytes(TcpFlags::SYN, 5, &[]));
        build::ip(&v6_ends(), protocol::HOP_BY_HOP, &payload).unwrap()
    }

    #[test]
    fn ipv6_extension_headers_including_ah_and_a_first_fragment_are_walked_to_tcp() {
        let meta = parse(&ipv6_chain(0)).unwrap();
        assert_eq!(meta.proto, protocol::TCP);
        assert_eq!(meta.l4_offset, 14 + 40 + 48);
        assert_eq!(meta.ip_payload_len, 20);
        assert_eq!(meta.fragment, Fragment::First { id: 0xdead_beef });
        assert_eq!(meta.ports(), Some((1000, 22)));
    }

    #[test]
    fn a_later_ipv6_fragment_has_no_transport_header() {
        let meta = parse(&ipv6_chain(1448)).unwrap();
        assert_eq!(
            meta.fragment,
            Fragment::Later {
                id: 0xdead_beef,
                offset: 1448,
                last: false
            }
        );
        assert_eq!(meta.l4, L4::Fragment { id: 0xdead_beef });
        // The protocol is the fragment header's next header; the AH header is not in this fragment.
        assert_eq!((meta.proto, meta.l4_offset), (protocol::AH, 14 + 40 + 32));
    }

    #[test]
    fn an_ipv6_atomic_fragment_is_a_whole_datagram() {
        let mut payload = vec![0u8; 8];
        FragmentHeader {
            next_header: protocol::UDP,
            offset: 0,
            more_frags: false,
            ident: 5,
        }
        .emit(&mut payload);
        payload.extend_from_slice(&[0, 53, 0, 53, 0, 8, 0, 0]);
        let meta =
            parse(&build::ip(&v6_ends(), protocol::IPV6_FRAGMENT, &payload).unwrap()).unwrap();
        assert_eq!(meta.fragment, Fragment::None);
        assert_eq!(meta.ports(), Some((53, 53)));
    }

    #[test]
    fn ipv4_first_fragments_are_classified_and_later_ones_are_not() {
        let mut frame = build::ip(
            &v4_ends(),
            protocol::TCP,
            &tcp_bytes(TcpFlags::SYN, 5, &[1; 8]),
        )
        .unwrap();
        let mut packet = ipv4::Packet::new_unchecked(&mut frame[14..]);
        packet.set_ident(77);
        packet.set_fragment(false, true, 0);
        packet.fill_checksum();
        let first = parse(&frame).unwrap();
        assert_eq!(first.fragment, Fragment::First { id: 77 });
        assert_eq!(first.ports(), Some((1000, 22)));
        let mut packet = ipv4::Packet::new_unchecked(&mut frame[14..]);
        packet.set_fragment(false, false, 1480);
        packet.fill_checksum();
        let later = parse(&frame).unwrap();
        assert_eq!(
            later.fragment,
            Fragment::Later {
                id: 77,
                offset: 1480,
                last: true
            }
        );
        assert_eq!(later.l4, L4::Fragment { id: 77 });
    }

    #[test]
    fn esp_ends_the_walk_with_no_transport_header() {
        let meta = parse(&build::ip(&v4_ends(), protocol::ESP, &[0; 16]).unwrap()).unwrap();
        assert_eq!((meta.proto, meta.l4), (protocol::ESP, L4::Other));
        let after_options = [protocol::ESP, 0, 1, 4, 0, 0, 0, 0, 1, 2, 3, 4];
        let frame = build::ip(&v6_ends(), protocol::IPV6_DEST_OPTS, &after_options).unwrap();
        let meta = parse(&frame).unwrap();
        assert_eq!(
            (meta.proto, meta.l4, meta.l4_offset),
            (protocol::ESP, L4::Other, 62)
        );
    }

    #[test]
    fn echoes_carry_their_id_and_sequence() {
        let v4 = parse(&captured::ECHO_V4).unwrap();
        assert_eq!(
            v4.l4,
            L4::Icmp(IcmpMeta {
                icmp_type: 8,
                code: 0,
                kind: IcmpKind::EchoRequest { id: 0x2062, seq: 1 }
            })
        );
        let v6 = parse(&captured::ECHO_V6).unwrap();
        assert!(matches!(
            v6.l4,
            L4::Icmp(IcmpMeta {
                icmp_type: 128,
                kind: IcmpKind::EchoRequest { id: 0x2063, seq: 1 },
                ..
            })
        ));
        assert!(!v6.is_neighbor_discovery());
    }

    fn quoted(meta: &PacketMeta) -> QuotedMeta {
        match meta.l4 {
            L4::Icmp(IcmpMeta {
                kind: IcmpKind::Error(quoted),
                ..
            }) => quoted,
            other => panic!("not an ICMP error: {other:?}"),
        }
    }

    #[test]
    fn an_icmp_error_quoting_tcp_names_the_flow_and_its_sequence() {
        let ends = v4_ends().reversed();
        let frame =
            build::icmp_error(&ends, IcmpError::Unreachable(13), &captured::SYN_V4[14..]).unwrap();
        let quote = quoted(&parse(&frame).unwrap());
        assert_eq!(
            quote,
            QuotedMeta {
                family: Family::Inet,
                src: addr4(10, 0, 0, 1),
                dst: addr4(10, 0, 0, 2),
                proto: protocol::TCP,
                l4: QuotedL4::Tcp {
                    src_port: 35726,
                    dst_port: 80,
                    seq: 2_682_626_137
                },
            }
        );
        let ends = v6_ends().reversed();
        let frame = build::icmp_error(
            &ends,
            IcmpError::PacketTooBig(1280),
            &captured::SYN_V6[14..],
        )
        .unwrap();
        let quote = quoted(&parse(&frame).unwrap());
        assert_eq!((quote.family, quote.proto), (Family::Inet6, protocol::TCP));
        assert!(matches!(quote.l4, QuotedL4::Tcp { dst_port: 81, .. }));
    }

    #[test]
    fn icmp_errors_quoting_udp_name_its_ports_over_both_families() {
        let v4 = parse(&captured::PORT_UNREACHABLE_V4).unwrap();
        assert_eq!(v4.l4_offset, 34);
        let quote = quoted(&v4);
        assert_eq!(
            (quote.src, quote.dst),
            (addr4(10, 0, 0, 1), addr4(10, 0, 0, 2))
        );
        assert_eq!(
            quote.l4,
            QuotedL4::Udp {
                src_port: 56066,
                dst_port: 9999
            }
        );
        let quote = quoted(&parse(&captured::PORT_UNREACHABLE_V6).unwrap());
        assert_eq!(quote.family, Family::Inet6);
        assert_eq!(quote.dst, v6("2001:db8::2").octets());
        assert_eq!(
            quote.l4,
            QuotedL4::Udp {
                src_port: 59632,
                dst_port: 9999
            }
        );
    }

    #[test]
    fn an_icmp_error_quoting_an_echo_names_its_id() {
        let ends = v4_ends().reversed();
        let frame =
            build::icmp_error(&ends, IcmpError::TimeExceeded(0), &captured::ECHO_V4[14..]).unwrap();
        assert_eq!(
            quoted(&parse(&frame).unwrap()).l4,
            QuotedL4::IcmpEcho {
                id: 0x2062,
                request: true
            }
        );
        let ends = v6_ends().reversed();
        let frame =
            build::icmp_error(&ends, IcmpError::TimeExceeded(0), &captured::ECHO_V6[14..]).unwrap();
        assert_eq!(
            quoted(&parse(&frame).unwrap()).l4,
            QuotedL4::IcmpEcho {
                id: 0x2063,
                request: true
            }
        );
    }

    #[test]
    fn arp_neighbour_discovery_and_other_ethertypes_are_classified_not_dropped() {
        let arp = parse(&captured::ARP_REQUEST).unwrap();
        assert_eq!(
            (arp.class, arp.family(), arp.l4),
            (EtherClass::Arp, None, L4::Other)
        );
        assert!(parse(&captured::SOLICIT).unwrap().is_neighbor_discovery());
        assert!(parse(&captured::ADVERT).unwrap().is_neighbor_discovery());
        let mut lldp = captured::ARP_REQUEST;
        lldp[12..14].copy_from_slice(&[0x88, 0xcc]);
        let other = parse(&lldp).unwrap();
        assert_eq!((other.class, other.ethertype), (EtherClass::Other, 0x88cc));
    }

    #[test]
    fn ethernet_padding_is_not_counted_as_payload() {
        let mut padded = captured::UDP_V4.to_vec();
        padded.resize(60, 0);
        let meta = parse(&padded).unwrap();
        assert_eq!(meta.ip_payload_len, 10);
        assert_eq!(
            meta.l4,
            L4::Udp(UdpMeta {
                src_port: 56066,
                dst_port: 9999,
                payload_len: 2
            })
        );
        assert!(meta.l4_checksum_ok(&padded));
    }

    #[test]
    fn a_hop_by_hop_header_is_stepped_over() {
        let meta = parse(&captured::MLD_REPORT).unwrap();
        assert_eq!(
            (meta.proto, meta.l4_offset, meta.ttl),
            (protocol::ICMPV6, 62, 1)
        );
    }

    #[test]
    fn transport_checksums_verify_on_demand_only() {
        let frames: [&[u8]; 9] = [
            &captured::SYN_V4,
            &captured::DATA_V4,
            &captured::UDP_V4,
            &captured::ECHO_V4,
            &captured::PORT_UNREACHABLE_V4,
            &captured::SYN_V6,
            &captured::UDP_V6,
            &captured::SOLICIT,
            &captured::PORT_UNREACHABLE_V6,
        ];
        for frame in frames {
            let meta = parse(frame).unwrap();
            assert!(meta.l4_checksum_ok(frame), "{meta:?}");
            // Corrupt the checksum field itself, which nothing in the classification reads.
            let field = match meta.l4 {
                L4::Tcp(_) => 16,
                L4::Udp(_) => 6,
                _ => 2,
            };
            let mut corrupt = frame.to_vec();
            corrupt[usize::from(meta.l4_offset) + field] ^= 0x01;
            assert_eq!(
                parse(&corrupt),
                Ok(meta),
                "classification must not depend on it"
            );
            assert!(!meta.l4_checksum_ok(&corrupt));
        }
    }

    // ---- One test per drop reason ----

    #[test]
    fn a_frame_shorter_than_its_ethernet_header_or_vlan_tag_is_truncated() {
        assert_eq!(
            parse(&captured::UDP_V4[..13]),
            Err(Malformed::EthernetTruncated)
        );
        let tagged = build::udp(&v4_ends().with_vlan(5), &udp::UdpRepr::default(), b"").unwrap();
        assert_eq!(parse(&tagged[..17]), Err(Malformed::EthernetTruncated));
    }

    #[test]
    fn a_second_vlan_tag_is_refused_as_stacked() {
        let tagged = build::udp(&v4_ends().with_vlan(5), &udp::UdpRepr::default(), b"").unwrap();
        let mut double = tagged[..12].to_vec();
        double.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
        double.extend_from_slice(&tagged[12..]);
        assert_eq!(parse(&double), Err(Malformed::VlanStacked));
        let mut s_tag = tagged.clone();
        s_tag[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(parse(&s_tag), Err(Malformed::VlanStacked));
    }

    #[test]
    fn an_ipv4_header_cut_short_is_truncated() {
        assert_eq!(
            parse(&captured::UDP_V4[..33]),
            Err(Malformed::Ipv4Truncated)
        );
        let mut long_ihl = captured::UDP_V4;
        long_ihl[14] = 0x4f;
        assert_eq!(parse(&long_ihl), Err(Malformed::Ipv4Truncated));
    }

    #[test]
    fn an_ipv4_ethertype_carrying_another_version_is_refused() {
        let mut v5 = captured::UDP_V4;
        v5[14] = 0x55;
        refill_ipv4(&mut v5);
        assert_eq!(parse(&v5), Err(Malformed::Ipv4BadVersion));
    }

    #[test]
    fn an_ihl_below_five_is_refused() {
        let mut short = captured::UDP_V4;
        short[14] = 0x44;
        assert_eq!(parse(&short), Err(Malformed::Ipv4BadIhl));
    }

    #[test]
    fn a_total_length_beyond_the_frame_or_inside_the_header_is_refused() {
        for total in [31u16, 19] {
            let mut frame = captured::UDP_V4;
            frame[16..18].copy_from_slice(&total.to_be_bytes());
            refill_ipv4(&mut frame);
            assert_eq!(parse(&frame), Err(Malformed::Ipv4BadTotalLength), "{total}");
        }
    }

    #[test]
    fn a_bad_ipv4_checksum_is_refused_only_when_software_verifies() {
        let mut frame = captured::UDP_V4;
        frame[24] ^= 0x10;
        assert_eq!(parse(&frame), Err(Malformed::Ipv4BadChecksum));
        assert!(parse_meta(&frame, ChecksumCaps::OFFLOADED).is_ok());
    }

    #[test]
    fn an_ipv6_header_cut_short_is_truncated() {
        assert_eq!(
            parse(&captured::UDP_V6[..53]),
            Err(Malformed::Ipv6Truncated)
        );
    }

    #[test]
    fn an_ipv6_ethertype_carrying_another_version_is_refused() {
        let mut v4_inside = captured::UDP_V6;
        v4_inside[14] = 0x40;
        assert_eq!(parse(&v4_inside), Err(Malformed::Ipv6BadVersion));
    }

    #[test]
    fn an_ipv6_payload_length_beyond_the_frame_is_refused() {
        assert_eq!(
            parse(&captured::UDP_V6[..63]),
            Err(Malformed::Ipv6BadPayloadLength)
        );
    }

    #[test]
    fn an_extension_chain_longer_than_the_limit_is_refused() {
        let mut payload = Vec::new();
        for _ in 0..=ipv6::MAX_EXTENSION_HEADERS {
            payload.extend_from_slice(&[protocol::IPV6_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        let frame = build::ip(&v6_ends(), protocol::IPV6_DEST_OPTS, &payload).unwrap();
        assert_eq!(parse(&frame), Err(Malformed::Ipv6ExtChainTooLong));
    }

    #[test]
    fn an_extension_header_cut_short_is_truncated() {
        // A routing header announcing 16 bytes in a 12-byte payload.
        let payload = [protocol::TCP, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let frame = build::ip(&v6_ends(), protocol::IPV6_ROUTING, &payload).unwrap();
        assert_eq!(parse(&frame), Err(Malformed::Ipv6ExtTruncated));
    }

    #[test]
    fn a_hop_by_hop_header_after_another_extension_is_refused() {
        let payload = [
            protocol::HOP_BY_HOP,
            0,
            1,
            4,
            0,
            0,
            0,
            0,
            protocol::TCP,
            0,
            1,
            4,
            0,
            0,
            0,
            0,
        ];
        let frame = build::ip(&v6_ends(), protocol::IPV6_DEST_OPTS, &payload).unwrap();
        assert_eq!(parse(&frame), Err(Malformed::Ipv6HopByHopNotFirst));
    }

    #[test]
    fn a_fragment_reaching_past_65535_bytes_overflows() {
        let mut frame = build::ip(&v4_ends(), protocol::UDP, &[0; 16]).unwrap();
        let mut packet = ipv4::Packet::new_unchecked(&mut frame[14..]);
        packet.set_fragment(false, false, 65_520);
        packet.fill_checksum();
        assert_eq!(parse(&frame), Err(Malformed::FragmentOverflow));
        let mut payload = vec![0u8; 8];
        FragmentHeader {
            next_header: protocol::UDP,
            offset: 65_528,
            more_frags: false,
            ident: 1,
        }
        .emit(&mut payload);
        payload.extend_from_slice(&[0; 16]);
        let frame = build::ip(&v6_ends(), protocol::IPV6_FRAGMENT, &payload).unwrap();
        assert_eq!(parse(&frame), Err(Malformed::FragmentOverflow));
    }

    #[test]
    fn a_tcp_header_cut_short_or_a_tiny_first_fragment_is_truncated() {
        let short = build::ip(
            &v4_ends(),
            protocol::TCP,
            &tcp_bytes(TcpFlags::ACK, 5, &[])[..19],
        )
        .unwrap();
        assert_eq!(parse(&short), Err(Malformed::TcpTruncated));
        let options_missing = build::ip(
            &v4_ends(),
            protocol::TCP,
            &tcp_bytes(TcpFlags::SYN, 8, &[1; 8]),
        )
        .unwrap();
        assert_eq!(parse(&options_missing), Err(Malformed::TcpTruncated));
        // RFC 1858: a first fragment carrying only 16 bytes of the TCP header.
        let mut tiny = build::ip(
            &v4_ends(),
            protocol::TCP,
            &tcp_bytes(TcpFlags::SYN, 5, &[])[..16],
        )
        .unwrap();
        let mut packet = ipv4::Packet::new_unchecked(&mut tiny[14..]);
        packet.set_fragment(false, true, 0);
        packet.fill_checksum();
        assert_eq!(parse(&tiny), Err(Malformed::TcpTruncated));
    }

    #[test]
    fn a_tcp_data_offset_below_five_is_refused() {
        let frame =
            build::ip(&v6_ends(), protocol::TCP, &tcp_bytes(TcpFlags::ACK, 4, &[])).unwrap();
        assert_eq!(parse(&frame), Err(Malformed::TcpBadDataOffset));
    }

    #[test]
    fn a_udp_header_cut_short_is_truncated() {
        let frame = build::ip(&v4_ends(), protocol::UDP, &[0, 53, 0, 53, 0, 8, 0]).unwrap();
        assert_eq!(parse(&frame), Err(Malformed::UdpTruncated));
    }

    #[test]
    fn a_udp_length_inside_the_header_or_beyond_the_payload_is_refused() {
        for length in [7u8, 11] {
            let datagram = [0, 53, 0, 53, 0, length, 0, 0, 1, 2];
            let frame = build::ip(&v6_ends(), protocol::UDP, &datagram).unwrap();
            assert_eq!(parse(&frame), Err(Malformed::UdpBadLength), "{length}");
        }
    }

    #[test]
    fn an_icmp_header_cut_short_is_truncated() {
        let frame = build::ip(&v4_ends(), protocol::ICMP, &[8, 0, 0, 0, 0, 1, 0]).unwrap();
        assert_eq!(parse(&frame), Err(Malformed::IcmpTruncated));
        let frame = build::ip(&v6_ends(), protocol::ICMPV6, &[128, 0, 0]).unwrap();
        assert_eq!(parse(&frame), Err(Malformed::IcmpTruncated));
    }

    #[test]
    fn an_icmp_error_quoting_too_little_is_refused() {
        // The captured port unreachable, its quote cut after 4 of the UDP header's 8 bytes.
        let error = &captured::PORT_UNREACHABLE_V4[34..34 + 8 + 20 + 4];
        let frame = build::ip(&v4_ends(), protocol::ICMP, error).unwrap();
        assert_eq!(parse(&frame), Err(Malformed::IcmpQuoteTruncated));
        // The IPv6 one, cut inside the quoted fixed header.
        let error = &captured::PORT_UNREACHABLE_V6[54..54 + 8 + 30];
        let frame = build::ip(&v6_ends(), protocol::ICMPV6, error).unwrap();
        assert_eq!(parse(&frame), Err(Malformed::IcmpQuoteTruncated));
    }

    #[test]
    fn an_icmp_error_quoting_an_invalid_header_is_refused() {
        // An IPv4 error quoting an IPv6 packet.
        let ends = v4_ends().reversed();
        let frame =
            build::icmp_error(&ends, IcmpError::Unreachable(1), &captured::UDP_V6[14..]).unwrap();
        assert_eq!(parse(&frame), Err(Malformed::IcmpQuoteInvalid));
        // A quoted IHL of 4.
        let mut quote = captured::UDP_V4[14..].to_vec();
        quote[0] = 0x44;
        let frame = build::icmp_error(&ends, IcmpError::Unreachable(1), &quote).unwrap();
        assert_eq!(parse(&frame), Err(Malformed::IcmpQuoteInvalid));
    }

    #[test]
    fn every_reason_has_its_index_and_a_unique_snake_case_name() {
        let mut names = std::collections::HashSet::new();
        for (i, reason) in Malformed::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
            let name = reason.name();
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            );
            assert!(names.insert(name), "{name} twice");
        }
        assert_eq!(names.len(), Malformed::COUNT);
    }

    // ---- Nothing panics ----

    /// xorshift64*: a small deterministic generator, so that a failure reproduces from its case number.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn corpus() -> Vec<Vec<u8>> {
        let mut frames: Vec<Vec<u8>> = [
            &captured::SYN_V4[..],
            &captured::DATA_V4,
            &captured::ARP_REQUEST,
            &captured::ECHO_V4,
            &captured::UDP_V4,
            &captured::PORT_UNREACHABLE_V4,
            &captured::MLD_REPORT,
            &captured::SOLICIT,
            &captured::ADVERT,
            &captured::ECHO_V6,
            &captured::UDP_V6,
            &captured::PORT_UNREACHABLE_V6,
            &captured::SYN_V6,
            &captured::RST_V6,
        ]
        .iter()
        .map(|f| f.to_vec())
        .collect();
        frames.push(ipv6_chain(0));
        frames.push(ipv6_chain(1448));
        let reversed = v4_ends().reversed();
        frames.push(
            build::icmp_error(
                &reversed,
                IcmpError::Unreachable(13),
                &captured::SYN_V4[14..],
            )
            .unwrap(),
        );
        frames.push(
            build::icmp_error(
                &reversed,
                IcmpError::TimeExceeded(0),
                &captured::ECHO_V4[14..],
            )
            .unwrap(),
        );
        let reversed = v6_ends().reversed();
        frames.push(
            build::icmp_error(
                &reversed,
                IcmpError::PacketTooBig(1280),
                &ipv6_chain(0)[14..],
            )
            .unwrap(),
        );
        let syn = tcp::TcpRepr {
            flags: TcpFlags::SYN,
            mss: Some(1400),
            window_scale: Some(3),
            ..tcp::TcpRepr::default()
        };
        frames.push(build::tcp(&v4_ends().with_vlan(9), &syn, b"").unwrap());
        frames
    }

    /// One random edit of the kinds that find parser bugs: a flipped bit, a cut, a length-like value
    /// written where lengths live, random bytes inserted or appended.
    fn mutate(rng: &mut Rng, frame: &mut Vec<u8>) {
        const BYTES: [u8; 10] = [0, 1, 4, 5, 0x0f, 0x45, 0x60, 0x7f, 0x80, 0xff];
        const WORDS: [u16; 8] = [0, 1, 7, 8, 20, 40, 0x8100, 0xffff];
        let len = frame.len();
        match rng.below(6) {
            0 if len > 0 => {
                let at = rng.below(len);
                frame[at] ^= 1 << rng.below(8);
            }
            1 => frame.truncate(rng.below(len + 1)),
            2 if len > 0 => {
                let at = rng.below(len.min(120));
                frame[at] = BYTES[rng.below(BYTES.len())];
            }
            3 if len > 1 => {
                let at = rng.below(len.min(120) - 1);
                let word = WORDS[rng.below(WORDS.len())].wrapping_add(rng.below(3) as u16);
                frame[at..at + 2].copy_from_slice(&word.to_be_bytes());
            }
            4 => {
                let at = rng.below(len + 1);
                let bytes: Vec<u8> = (0..rng.below(9)).map(|_| rng.next() as u8).collect();
                frame.splice(at..at, bytes);
            }
            _ => frame.extend((0..rng.below(16)).map(|_| rng.next() as u8)),
        }
    }

    /// What must hold for any frame: no panic anywhere, offsets inside the frame, and answers to an accepted
    /// frame classify cleanly themselves.
    #[test]
    fn random_and_mutated_frames_never_panic_any_parser() {
        let corpus = corpus();
        let mut rng = Rng(0x7a6e_6465_6d00_0001);
        let mut seen = [0usize; Malformed::COUNT];
        let mut accepted = 0;
        for case in 0..50_000 {
            let frame = if case % 10 == 0 {
                (0..rng.below(200)).map(|_| rng.next() as u8).collect()
            } else {
                let mut frame = corpus[rng.below(corpus.len())].clone();
                for _ in 0..=rng.below(4) {
                    mutate(&mut rng, &mut frame);
                }
                frame
            };
            match check_parsers(&frame) {
                Ok(_) => accepted += 1,
                Err(reason) => seen[reason.index()] += 1,
            }
        }
        // The mutations must reach deep: most drop reasons occur, and many frames still classify.
        let reached = seen.iter().filter(|n| **n > 0).count();
        // Only the chain-length limit and fragment overflow need edits too precise for random mutation.
        assert!(reached >= Malformed::COUNT - 2, "reasons reached: {seen:?}");
        assert!(accepted > 10_000, "only {accepted} frames accepted");
    }
}
