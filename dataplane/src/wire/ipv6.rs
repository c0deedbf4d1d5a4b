//! IPv6 (RFC 8200): the fixed header, and a walker over the extension header chain that finds the
//! upper-layer protocol the way pf does. It steps over hop-by-hop, routing and destination options headers,
//! the fragment header (whose offset, M flag and identification it reports) and AH; it stops at ESP, whose
//! contents are encrypted, at "no next header", and after the fragment header of a non-first fragment,
//! whose payload is the middle of a datagram rather than a header. Option contents are not interpreted.
//! Jumbograms (RFC 2675) are not supported: a zero payload length means an empty payload.

use std::fmt;
use std::net::Ipv6Addr;

use super::ip::{protocol, protocol_name};
use super::{Error, Field, Header, Result, read_u16, read_u32, truncated, write_u16, write_u32};

mod field {
    use super::Field;

    pub const VERSION_CLASS_FLOW: Field = 0..4;
    pub const PAYLOAD_LEN: Field = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Field = 8..24;
    pub const DST_ADDR: Field = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::DST_ADDR.end;

/// The most extension headers walked. RFC 8200 section 4.1's recommended order has at most seven (hop-by-hop,
/// destination options, routing, fragment, AH, ESP, destination options); a longer chain is an attack on
/// whoever walks it.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// A view of an IPv6 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the fixed header, then that the payload length fits the buffer (trailing padding is allowed).
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        let have = self.buffer.as_ref().len();
        let len = HEADER_LEN + usize::from(self.payload_len());
        if len > have {
            return Err(Error::BadLength {
                header: Header::Ipv6,
                len,
                have,
            });
        }
        Ok(())
    }

    /// Checks only that the fixed header is present, for a header quoted in an ICMPv6 error. The header getters
    /// are then safe; [`Packet::payload`] is not.
    #[inline]
    pub fn check_header_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(truncated(Header::Ipv6, HEADER_LEN, have));
        }
        Ok(())
    }

    /// Returns the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    #[inline]
    fn data(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Version (6).
    #[inline]
    pub fn version(&self) -> u8 {
        self.data()[0] >> 4
    }

    /// Traffic class.
    #[inline]
    pub fn traffic_class(&self) -> u8 {
        (read_u16(&self.data()[0..2]) >> 4) as u8
    }

    /// Flow label (20 bits).
    #[inline]
    pub fn flow_label(&self) -> u32 {
        read_u32(&self.data()[field::VERSION_CLASS_FLOW]) & 0x000f_ffff
    }

    /// Payload length: everything after the fixed header, extension headers included.
    #[inline]
    pub fn payload_len(&self) -> u16 {
        read_u16(&self.data()[field::PAYLOAD_LEN])
    }

    /// The first next-header value.
    #[inline]
    pub fn next_header(&self) -> u8 {
        self.data()[field::NEXT_HEADER]
    }

    /// Hop limit.
    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.data()[field::HOP_LIMIT]
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&self.data()[field::SRC_ADDR]);
        octets.into()
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&self.data()[field::DST_ADDR]);
        octets.into()
    }

    /// The payload (extension headers included), up to the payload length.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.data()[HEADER_LEN..HEADER_LEN + usize::from(self.payload_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets version, traffic class and flow label at once.
    pub fn set_version_class_flow(&mut self, version: u8, traffic_class: u8, flow_label: u32) {
        let word =
            u32::from(version) << 28 | u32::from(traffic_class) << 20 | flow_label & 0x000f_ffff;
        write_u32(&mut self.data_mut()[field::VERSION_CLASS_FLOW], word);
    }

    /// Sets the payload length. Changes what [`Packet::payload`] may read.
    pub fn set_payload_len(&mut self, len: u16) {
        write_u16(&mut self.data_mut()[field::PAYLOAD_LEN], len);
    }

    /// Sets the first next-header value.
    pub fn set_next_header(&mut self, value: u8) {
        self.data_mut()[field::NEXT_HEADER] = value;
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, value: u8) {
        self.data_mut()[field::HOP_LIMIT] = value;
    }

    /// Decrements the hop limit as a forwarder must (RFC 8200 section 3); zero is left alone. IPv6 has no
    /// header checksum to update. Returns the new hop limit.
    pub fn decrement_hop_limit(&mut self) -> u8 {
        let hop_limit = self.hop_limit().saturating_sub(1);
        self.set_hop_limit(hop_limit);
        hop_limit
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv6Addr) {
        self.data_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv6Addr) {
        self.data_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// The payload up to the payload length, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        &mut self.data_mut()[HEADER_LEN..end]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.check_len().and_then(|()| Ipv6Repr::parse(self)) {
            Ok(repr) => write!(f, "{repr}"),
            Err(err) => write!(f, "IP6 ({err})"),
        }
    }
}

/// The meaning of an IPv6 fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// The first next-header value.
    pub next_header: u8,
    /// Payload length, extension headers included; at most 65535 to emit.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Ipv6Repr {
    /// Parses the fixed header of a checked packet (or of a quoted header checked with
    /// [`Packet::check_header_len`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Ipv6Repr> {
        if packet.version() != 6 {
            return Err(Error::BadVersion {
                header: Header::Ipv6,
                version: packet.version(),
                expected: 6,
            });
        }
        Ok(Ipv6Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: packet.next_header(),
            payload_len: packet.payload_len().into(),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        })
    }

    /// Length of the header this emits.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header into a buffer at least [`Ipv6Repr::buffer_len`] long; a `payload_len` above
    /// 65535 is written as 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_version_class_flow(6, self.traffic_class, self.flow_label);
        packet.set_payload_len(u16::try_from(self.payload_len).unwrap_or(u16::MAX));
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
    }
}

impl fmt::Display for Ipv6Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IP6 (flowlabel {:#x}, hlim {}, next-header {} ({}) payload length: {}) {} > {}",
            self.flow_label,
            self.hop_limit,
            protocol_name(self.next_header).unwrap_or("unknown"),
            self.next_header,
            self.payload_len,
            self.src_addr,
            self.dst_addr
        )
    }
}

/// A fragment header's fields (RFC 8200 section 4.5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FragmentHeader {
    /// The protocol of the fragmentable part.
    pub next_header: u8,
    /// Offset of this fragment in bytes (the field counts 8-octet units).
    pub offset: u16,
    /// The M flag: more fragments follow.
    pub more_frags: bool,
    /// Identification, shared by the fragments of one datagram.
    pub ident: u32,
}

/// Length of a fragment header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

impl FragmentHeader {
    /// Reads a fragment header from its first eight bytes, or `None` when fewer are given.
    pub fn parse(bytes: &[u8]) -> Option<FragmentHeader> {
        let b: &[u8; FRAGMENT_HEADER_LEN] = bytes.get(..FRAGMENT_HEADER_LEN)?.try_into().ok()?;
        let word = u16::from_be_bytes([b[2], b[3]]);
        Some(FragmentHeader {
            next_header: b[0],
            offset: word & 0xfff8,
            more_frags: word & 0x0001 != 0,
            ident: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }

    /// Writes the header into the first eight bytes of `bytes`.
    pub fn emit(&self, bytes: &mut [u8]) {
        bytes[0] = self.next_header;
        bytes[1] = 0;
        write_u16(
            &mut bytes[2..4],
            (self.offset & 0xfff8) | u16::from(self.more_frags),
        );
        write_u32(&mut bytes[4..8], self.ident);
    }

    /// Whether this is the first fragment (offset zero). An atomic fragment (offset zero, M clear) is
    /// first and last at once and is processed as a whole datagram (RFC 6946 section 4).
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// One extension header of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtensionHeader<'a> {
    /// Which extension header this is (its protocol number).
    pub kind: u8,
    /// The protocol of what follows it.
    pub next_header: u8,
    /// The whole header, its first two bytes included.
    pub bytes: &'a [u8],
}

/// Whether `proto` is an extension header the walker steps over.
pub fn is_extension_header(proto: u8) -> bool {
    matches!(
        proto,
        protocol::HOP_BY_HOP
            | protocol::IPV6_ROUTING
            | protocol::IPV6_FRAGMENT
            | protocol::IPV6_DEST_OPTS
            | protocol::AH
    )
}

/// The length of the extension header `kind` starting at `bytes`, which holds at least two bytes.
fn extension_len(kind: u8, bytes: &[u8]) -> usize {
    match kind {
        protocol::IPV6_FRAGMENT => FRAGMENT_HEADER_LEN,
        // AH counts 32-bit words minus two (RFC 4302 section 2.2), not 8-octet units minus one.
        protocol::AH => (usize::from(bytes[1]) + 2) * 4,
        // Hop-by-hop, routing, destination options: 8-octet units after the first eight (RFC 8200 4.3-4.6).
        _ => (usize::from(bytes[1]) + 1) * 8,
    }
}

/// Where a walk of the extension header chain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The protocol after the last extension header walked: the upper layer, ESP or no-next-header.
    pub protocol: u8,
    /// Offset of that protocol's header (or of a non-first fragment's data) in the IPv6 payload.
    pub offset: usize,
    /// The fragment header, if the chain has one.
    pub fragment: Option<FragmentHeader>,
    /// Extension headers walked.
    pub count: usize,
}

impl Chain {
    /// Whether the upper-layer header is present: not a non-first fragment, not ESP, not no-next-header.
    pub fn has_upper_layer_header(&self) -> bool {
        self.fragment.is_none_or(|frag| frag.is_first())
            && !matches!(self.protocol, protocol::ESP | protocol::IPV6_NO_NEXT)
    }
}

/// An iterator over an extension header chain. It yields each header walked and, on a malformed chain, one
/// error and then nothing. When it ends, [`ExtensionHeaders::end`] says where the upper layer starts.
#[derive(Clone, Debug)]
pub struct ExtensionHeaders<'a> {
    payload: &'a [u8],
    next: u8,
    offset: usize,
    count: usize,
    fragment: Option<FragmentHeader>,
    done: bool,
}

impl<'a> ExtensionHeaders<'a> {
    /// Walks `payload` (the IPv6 payload) whose first header is `next_header` (the fixed header's field).
    pub fn new(next_header: u8, payload: &'a [u8]) -> ExtensionHeaders<'a> {
        ExtensionHeaders {
            payload,
            next: next_header,
            offset: 0,
            count: 0,
            fragment: None,
            done: false,
        }
    }

    /// Where the walk stands: after the headers yielded so far.
    pub fn end(&self) -> Chain {
        Chain {
            protocol: self.next,
            offset: self.offset,
            fragment: self.fragment,
            count: self.count,
        }
    }

    fn step(&mut self) -> Option<Result<ExtensionHeader<'a>>> {
        let kind = self.next;
        let later_fragment = self.fragment.is_some_and(|frag| !frag.is_first());
        if self.done || later_fragment || !is_extension_header(kind) {
            return None;
        }
        // RFC 8200 section 4.3: hop-by-hop options may only follow the IPv6 header directly.
        if kind == protocol::HOP_BY_HOP && self.count > 0 {
            return Some(Err(Error::HopByHopNotFirst));
        }
        if self.count == MAX_EXTENSION_HEADERS {
            return Some(Err(Error::ExtensionChainTooLong {
                limit: MAX_EXTENSION_HEADERS,
            }));
        }
        let rest = self.payload.get(self.offset..).unwrap_or_default();
        if rest.len() < 2 {
            return Some(Err(truncated(Header::Ipv6Extension, 2, rest.len())));
        }
        let len = extension_len(kind, rest);
        let Some(bytes) = rest.get(..len) else {
            return Some(Err(truncated(Header::Ipv6Extension, len, rest.len())));
        };
        if kind == protocol::IPV6_FRAGMENT {
            self.fragment = FragmentHeader::parse(bytes);
        }
        self.next = bytes[0];
        self.offset += len;
        self.count += 1;
        Some(Ok(ExtensionHeader {
            kind,
            next_header: self.next,
            bytes,
        }))
    }
}

impl<'a> Iterator for ExtensionHeaders<'a> {
    type Item = Result<ExtensionHeader<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.step();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// Walks the whole chain and says where the upper layer starts.
#[inline]
pub fn walk_chain(next_header: u8, payload: &[u8]) -> Result<Chain> {
    // Most packets have no extension header; answer them without setting up a walk.
    if !is_extension_header(next_header) {
        return Ok(Chain {
            protocol: next_header,
            offset: 0,
            fragment: None,
            count: 0,
        });
    }
    walk_extension_headers(next_header, payload)
}

fn walk_extension_headers(next_header: u8, payload: &[u8]) -> Result<Chain> {
    let mut walk = ExtensionHeaders::new(next_header, payload);
    for header in walk.by_ref() {
        header?;
    }
    Ok(walk.end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::marked;
    use proptest::prelude::*;

    /// A captured MLDv2 report (Linux): the fixed header, a hop-by-hop header carrying a router alert, and
    /// the start of the ICMPv6 message.
    static MLD_REPORT: [u8; 52] = [
        0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
        0x00, 0x0c, // payload length 12 (cut short from 56 for this test)
        0x00, // next header: hop-by-hop options
        0x01, // hop limit 1
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0xb8, 0x7f, 0xa3, 0xff, 0xfe, 0x06, 0xf2,
        0xf9, // fe80::b87f:a3ff:fe06:f2f9
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16, // ff02::16
        0x3a, // hop-by-hop: next header ICMPv6
        0x00, // length 0: eight bytes
        0x05, 0x02, 0x00, 0x00, // router alert option, value 0 (MLD)
        0x01, 0x00, // PadN, no padding bytes
        0x8f, 0x00, 0x2e, 0x6e, // ICMPv6 MLDv2 report, checksum
    ];

    fn mld_repr() -> Ipv6Repr {
        Ipv6Repr {
            src_addr: "fe80::b87f:a3ff:fe06:f2f9".parse().unwrap(),
            dst_addr: "ff02::16".parse().unwrap(),
            next_header: protocol::HOP_BY_HOP,
            payload_len: 12,
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
        }
    }

    #[test]
    fn deconstructs_a_captured_header() {
        let packet = Packet::new_checked(&MLD_REPORT[..]).unwrap();
        assert_eq!(packet.version(), 6);
        assert_eq!((packet.traffic_class(), packet.flow_label()), (0, 0));
        assert_eq!(packet.payload_len(), 12);
        assert_eq!(packet.next_header(), 0);
        assert_eq!(packet.hop_limit(), 1);
        assert_eq!(packet.src_addr(), mld_repr().src_addr);
        assert_eq!(packet.dst_addr(), mld_repr().dst_addr);
        assert_eq!(packet.payload(), &MLD_REPORT[40..]);
    }

    #[test]
    fn reads_traffic_class_and_flow_label_apart() {
        // A captured ICMPv6 echo request starts 0x60 0x0b 0x70 0x85: class 0, flow label 0xb7085.
        let mut bytes = [0u8; 40];
        bytes[..4].copy_from_slice(&[0x6a, 0xbb, 0x70, 0x85]);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            (packet.traffic_class(), packet.flow_label()),
            (0xab, 0xb7085)
        );
    }

    #[test]
    fn constructs_and_emits_the_header_over_marked_bytes() {
        let mut bytes = marked(MLD_REPORT.len());
        let mut packet = Packet::new_unchecked(&mut bytes);
        packet.set_version_class_flow(6, 0, 0);
        packet.set_payload_len(12);
        packet.set_next_header(0);
        packet.set_hop_limit(1);
        packet.set_src_addr(mld_repr().src_addr);
        packet.set_dst_addr(mld_repr().dst_addr);
        packet.payload_mut().copy_from_slice(&MLD_REPORT[40..]);
        assert_eq!(bytes, MLD_REPORT);

        let mut bytes = marked(MLD_REPORT.len());
        let mut packet = Packet::new_unchecked(&mut bytes);
        mld_repr().emit(&mut packet);
        packet.payload_mut().copy_from_slice(&MLD_REPORT[40..]);
        assert_eq!(bytes, MLD_REPORT);
    }

    #[test]
    fn parses_the_header_and_walks_the_hop_by_hop_header() {
        let packet = Packet::new_checked(&MLD_REPORT[..]).unwrap();
        assert_eq!(Ipv6Repr::parse(&packet), Ok(mld_repr()));
        let mut walk = ExtensionHeaders::new(packet.next_header(), packet.payload());
        let hop_by_hop = walk.next().unwrap().unwrap();
        assert_eq!(hop_by_hop.kind, protocol::HOP_BY_HOP);
        assert_eq!(hop_by_hop.next_header, protocol::ICMPV6);
        assert_eq!(hop_by_hop.bytes, &MLD_REPORT[40..48]);
        assert_eq!(walk.next(), None);
        let chain = walk_chain(packet.next_header(), packet.payload()).unwrap();
        assert_eq!(
            chain,
            Chain {
                protocol: protocol::ICMPV6,
                offset: 8,
                fragment: None,
                count: 1
            }
        );
        assert!(chain.has_upper_layer_header());
    }

    #[test]
    fn impossible_lengths_are_refused() {
        assert_eq!(
            Packet::new_checked(&MLD_REPORT[..39]).unwrap_err(),
            truncated(Header::Ipv6, 40, 39)
        );
        assert_eq!(
            Packet::new_checked(&MLD_REPORT[..51]).unwrap_err(),
            Error::BadLength {
                header: Header::Ipv6,
                len: 52,
                have: 51
            }
        );
        let mut v4 = MLD_REPORT;
        v4[0] = 0x40;
        assert!(matches!(
            Ipv6Repr::parse(&Packet::new_checked(&v4[..]).unwrap()),
            Err(Error::BadVersion { version: 4, .. })
        ));
    }

    /// Destination options (16 bytes), routing (8), fragment (8), AH (16), then TCP.
    fn long_chain(frag_offset: u16) -> Vec<u8> {
        let mut payload = vec![
            protocol::IPV6_ROUTING,
            1,
            1,
            12,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0, // dest opts, PadN
            protocol::IPV6_FRAGMENT,
            0,
            0,
            0,
            0,
            0,
            0,
            0, // routing type 0, segments left 0
        ];
        let mut frag = [0u8; 8];
        FragmentHeader {
            next_header: protocol::AH,
            offset: frag_offset,
            more_frags: true,
            ident: 0xdead_beef,
        }
        .emit(&mut frag);
        payload.extend_from_slice(&frag);
        // AH: payload length 2 means (2 + 2) * 4 = 16 bytes: SPI, sequence and a 4-byte ICV.
        payload.extend_from_slice(&[protocol::TCP, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 7, 1, 2, 3, 4]);
        payload.extend_from_slice(&[0u8; 20]);
        payload
    }

    #[test]
    fn walks_options_routing_fragment_and_ah_to_tcp() {
        let payload = long_chain(0);
        let kinds: Vec<u8> = ExtensionHeaders::new(protocol::IPV6_DEST_OPTS, &payload)
            .map(|h| h.unwrap().kind)
            .collect();
        assert_eq!(
            kinds,
            [
                protocol::IPV6_DEST_OPTS,
                protocol::IPV6_ROUTING,
                protocol::IPV6_FRAGMENT,
                protocol::AH
            ]
        );
        let chain = walk_chain(protocol::IPV6_DEST_OPTS, &payload).unwrap();
        assert_eq!(chain.protocol, protocol::TCP);
        assert_eq!(chain.offset, 48);
        assert_eq!(chain.count, 4);
        let frag = chain.fragment.unwrap();
        assert_eq!(
            (frag.offset, frag.more_frags, frag.ident),
            (0, true, 0xdead_beef)
        );
        assert!(chain.has_upper_layer_header());
    }

    #[test]
    fn a_non_first_fragment_ends_the_walk_at_its_fragment_header() {
        let payload = long_chain(1448);
        let chain = walk_chain(protocol::IPV6_DEST_OPTS, &payload).unwrap();
        // The bytes after the fragment header are the middle of a datagram, not an AH header.
        assert_eq!(chain.protocol, protocol::AH);
        assert_eq!(chain.offset, 32);
        assert_eq!(chain.fragment.map(|f| f.offset), Some(1448));
        assert!(!chain.has_upper_layer_header());
    }

    #[test]
    fn esp_and_no_next_header_end_the_walk() {
        let chain = walk_chain(protocol::ESP, &[0u8; 16]).unwrap();
        assert_eq!(
            (chain.protocol, chain.offset, chain.count),
            (protocol::ESP, 0, 0)
        );
        assert!(!chain.has_upper_layer_header());
        let chain = walk_chain(
            protocol::IPV6_DEST_OPTS,
            &[protocol::IPV6_NO_NEXT, 0, 1, 4, 0, 0, 0, 0],
        )
        .unwrap();
        assert_eq!((chain.protocol, chain.offset), (protocol::IPV6_NO_NEXT, 8));
        assert!(!chain.has_upper_layer_header());
    }

    #[test]
    fn a_chain_longer_than_the_limit_is_refused() {
        // Nine destination options headers, each pointing at the next.
        let mut payload = Vec::new();
        for _ in 0..=MAX_EXTENSION_HEADERS {
            payload.extend_from_slice(&[protocol::IPV6_DEST_OPTS, 0, 1, 4, 0, 0, 0, 0]);
        }
        assert_eq!(
            walk_chain(protocol::IPV6_DEST_OPTS, &payload),
            Err(Error::ExtensionChainTooLong { limit: 8 })
        );
    }

    #[test]
    fn a_truncated_extension_header_is_refused() {
        let payload = long_chain(0);
        assert_eq!(
            walk_chain(protocol::IPV6_DEST_OPTS, &payload[..20]),
            Err(truncated(Header::Ipv6Extension, 8, 4))
        );
        assert_eq!(
            walk_chain(protocol::IPV6_DEST_OPTS, &payload[..1]),
            Err(truncated(Header::Ipv6Extension, 2, 1))
        );
    }

    #[test]
    fn hop_by_hop_after_another_header_is_refused() {
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
        assert_eq!(
            walk_chain(protocol::IPV6_DEST_OPTS, &payload),
            Err(Error::HopByHopNotFirst)
        );
        assert!(walk_chain(protocol::HOP_BY_HOP, &payload[8..]).is_ok());
    }

    #[test]
    fn the_iterator_yields_one_error_then_stops() {
        let mut walk = ExtensionHeaders::new(protocol::IPV6_DEST_OPTS, &[60, 9]);
        assert!(matches!(walk.next(), Some(Err(_))));
        assert_eq!(walk.next(), None);
    }

    proptest! {
        #[test]
        fn emitted_headers_parse_back(
            src: [u8; 16], dst: [u8; 16], next_header: u8, payload_len: u16, hop_limit: u8,
            traffic_class: u8, flow_label in 0u32..0x10_0000,
        ) {
            let repr = Ipv6Repr {
                src_addr: src.into(),
                dst_addr: dst.into(),
                next_header,
                payload_len: payload_len.into(),
                hop_limit,
                traffic_class,
                flow_label,
            };
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut bytes));
            let packet = Packet::new_unchecked(&bytes);
            prop_assert!(packet.check_header_len().is_ok());
            prop_assert_eq!(Ipv6Repr::parse(&packet), Ok(repr));
        }

        #[test]
        fn fragment_headers_parse_back(next_header: u8, units in 0u16..8192, more_frags: bool, ident: u32) {
            let header = FragmentHeader { next_header, offset: units * 8, more_frags, ident };
            let mut bytes = [0u8; 8];
            header.emit(&mut bytes);
            prop_assert_eq!(FragmentHeader::parse(&bytes), Some(header));
        }
    }
}
