//! IPv4 headers (RFC 791). Options are allowed and skipped, never interpreted: a firewall forwards them
//! and pf's own normalisation is not ours to copy here. Fragments are exposed (identification, MF,
//! offset), not reassembled. The header checksum is computed, verified and updated incrementally for the
//! forwarder's TTL decrement (RFC 1624). Routing decisions and fragment policy live elsewhere.

use std::fmt;
use std::net::Ipv4Addr;

use super::checksum::{self, ChecksumCaps};
use super::ip::protocol_name;
use super::{Error, Field, Header, Result, read_u16, truncated, write_u16};

mod field {
    use super::Field;

    pub const VERSION_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const TOTAL_LEN: Field = 2..4;
    pub const IDENT: Field = 4..6;
    pub const FLAGS_OFFSET: Field = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Field = 10..12;
    pub const SRC_ADDR: Field = 12..16;
    pub const DST_ADDR: Field = 16..20;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = field::DST_ADDR.end;
/// Length of the longest header: IHL is four bits of 32-bit words.
pub const MAX_HEADER_LEN: usize = 15 * 4;
/// The largest total length the 16-bit field can state.
pub const MAX_TOTAL_LEN: usize = u16::MAX as usize;

/// "Don't fragment" (RFC 791 section 3.1, flags bit 1).
const DONT_FRAG: u16 = 0x4000;
/// "More fragments" (flags bit 2).
const MORE_FRAGS: u16 = 0x2000;
/// The fragment offset, in 8-octet units.
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
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

    /// Checks the header as [`Packet::check_header_len`] does, then that the total length covers the header
    /// and fits the buffer. Bytes after the total length (Ethernet padding of short frames) are allowed.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        self.check_header_len()?;
        let have = self.buffer.as_ref().len();
        let total = usize::from(self.total_len());
        if total < self.header_len() || total > have {
            return Err(Error::BadLength {
                header: Header::Ipv4,
                len: total,
                have,
            });
        }
        Ok(())
    }

    /// Checks only that the header, options included, is present and IHL is at least 5. The header getters
    /// are then safe; [`Packet::payload`] is not. This is the check for a header quoted in an ICMP error,
    /// whose total length describes the original datagram rather than the bytes quoted.
    #[inline]
    pub fn check_header_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(truncated(Header::Ipv4, HEADER_LEN, have));
        }
        let header_len = self.header_len();
        if header_len < HEADER_LEN {
            return Err(Error::BadHeaderLen {
                header: Header::Ipv4,
                len: header_len,
            });
        }
        if have < header_len {
            return Err(truncated(Header::Ipv4, header_len, have));
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

    /// Version (4 for IPv4).
    #[inline]
    pub fn version(&self) -> u8 {
        self.data()[field::VERSION_IHL] >> 4
    }

    /// Header length in bytes (IHL times four).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(self.data()[field::VERSION_IHL] & 0x0f) * 4
    }

    /// Differentiated services code point.
    #[inline]
    pub fn dscp(&self) -> u8 {
        self.data()[field::DSCP_ECN] >> 2
    }

    /// Explicit congestion notification.
    #[inline]
    pub fn ecn(&self) -> u8 {
        self.data()[field::DSCP_ECN] & 0x03
    }

    /// Total length of the datagram, header included.
    #[inline]
    pub fn total_len(&self) -> u16 {
        read_u16(&self.data()[field::TOTAL_LEN])
    }

    /// Identification, shared by the fragments of one datagram.
    #[inline]
    pub fn ident(&self) -> u16 {
        read_u16(&self.data()[field::IDENT])
    }

    /// The DF flag.
    #[inline]
    pub fn dont_frag(&self) -> bool {
        read_u16(&self.data()[field::FLAGS_OFFSET]) & DONT_FRAG != 0
    }

    /// The MF flag: more fragments follow.
    #[inline]
    pub fn more_frags(&self) -> bool {
        read_u16(&self.data()[field::FLAGS_OFFSET]) & MORE_FRAGS != 0
    }

    /// Fragment offset in bytes (the field counts 8-octet units).
    #[inline]
    pub fn frag_offset(&self) -> u16 {
        (read_u16(&self.data()[field::FLAGS_OFFSET]) & OFFSET_MASK) << 3
    }

    /// Whether this is a fragment of a larger datagram: MF set or a non-zero offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        read_u16(&self.data()[field::FLAGS_OFFSET]) & (MORE_FRAGS | OFFSET_MASK) != 0
    }

    /// Time to live.
    #[inline]
    pub fn ttl(&self) -> u8 {
        self.data()[field::TTL]
    }

    /// Protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> u8 {
        self.data()[field::PROTOCOL]
    }

    /// Header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.data()[field::CHECKSUM])
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.data()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.data()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Whether the header checksum verifies (options included).
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(&self.data()[..self.header_len()]) == 0xffff
    }

    /// The options, unparsed.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.data()[HEADER_LEN..self.header_len()]
    }

    /// The payload, up to the total length (Ethernet padding excluded).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.data()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn data_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets the version.
    pub fn set_version(&mut self, version: u8) {
        let b = &mut self.data_mut()[field::VERSION_IHL];
        *b = (*b & 0x0f) | version << 4;
    }

    /// Sets the header length in bytes (a multiple of four, 20 to 60). Moves the payload.
    pub fn set_header_len(&mut self, len: usize) {
        let b = &mut self.data_mut()[field::VERSION_IHL];
        *b = (*b & 0xf0) | ((len / 4) as u8 & 0x0f);
    }

    /// Sets the DSCP and ECN byte (the old type-of-service).
    pub fn set_tos(&mut self, tos: u8) {
        self.data_mut()[field::DSCP_ECN] = tos;
    }

    /// Sets the total length. Changes what [`Packet::payload`] may read.
    pub fn set_total_len(&mut self, len: u16) {
        write_u16(&mut self.data_mut()[field::TOTAL_LEN], len);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, ident: u16) {
        write_u16(&mut self.data_mut()[field::IDENT], ident);
    }

    /// Sets DF, MF and the fragment offset (in bytes, a multiple of eight) at once.
    pub fn set_fragment(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut word = (offset >> 3) & OFFSET_MASK;
        if dont_frag {
            word |= DONT_FRAG;
        }
        if more_frags {
            word |= MORE_FRAGS;
        }
        write_u16(&mut self.data_mut()[field::FLAGS_OFFSET], word);
    }

    /// Sets the time to live; the checksum is not updated.
    pub fn set_ttl(&mut self, ttl: u8) {
        self.data_mut()[field::TTL] = ttl;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, protocol: u8) {
        self.data_mut()[field::PROTOCOL] = protocol;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(&mut self.data_mut()[field::CHECKSUM], value);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: Ipv4Addr) {
        self.data_mut()[field::SRC_ADDR].copy_from_slice(&addr.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: Ipv4Addr) {
        self.data_mut()[field::DST_ADDR].copy_from_slice(&addr.octets());
    }

    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::checksum(&self.data()[..self.header_len()]);
        self.set_checksum(value);
    }

    /// Decrements the TTL and updates the checksum incrementally (RFC 1624), as a forwarder must
    /// (RFC 1812 section 5.3.1). Returns the new TTL; a TTL of zero is left alone.
    pub fn decrement_ttl(&mut self) -> u8 {
        let ttl = self.ttl();
        if ttl == 0 {
            return 0;
        }
        // TTL and protocol share the fifth 16-bit word, which is what the checksum sees.
        let proto = u16::from(self.protocol());
        let old = u16::from(ttl) << 8 | proto;
        let new = u16::from(ttl - 1) << 8 | proto;
        let sum = checksum::update(self.checksum(), old, new);
        self.set_ttl(ttl - 1);
        self.set_checksum(sum);
        ttl - 1
    }

    /// The options, mutable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.data_mut()[HEADER_LEN..end]
    }

    /// The payload up to the total length, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        &mut self.data_mut()[start..end]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self
            .check_len()
            .and_then(|()| Ipv4Repr::parse(self, ChecksumCaps::OFFLOADED))
        {
            Ok(repr) => write!(f, "{repr}"),
            Err(err) => write!(f, "IP ({err})"),
        }
    }
}

/// The meaning of an IPv4 header. Options are not represented: parsing skips them, emitting writes none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: u8,
    /// Payload length in bytes (total length minus the header); at most 65515 to emit.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP and ECN.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// DF.
    pub dont_frag: bool,
    /// MF.
    pub more_frags: bool,
    /// Fragment offset in bytes, a multiple of eight.
    pub frag_offset: u16,
}

impl Default for Ipv4Repr {
    /// Unspecified addresses, protocol 0, TTL 64, no fragmentation: a base for struct update syntax.
    fn default() -> Self {
        Ipv4Repr {
            src_addr: Ipv4Addr::UNSPECIFIED,
            dst_addr: Ipv4Addr::UNSPECIFIED,
            protocol: 0,
            payload_len: 0,
            ttl: 64,
            tos: 0,
            ident: 0,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        }
    }
}

impl Ipv4Repr {
    /// Parses a packet checked with [`Packet::check_len`], verifying the header checksum if `caps` asks.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>, caps: ChecksumCaps) -> Result<Ipv4Repr> {
        if caps.verify_ipv4_header && !packet.verify_checksum() {
            return Err(Error::BadChecksum(Header::Ipv4));
        }
        Ipv4Repr::parse_header(packet)
    }

    /// Parses the header of a packet checked only with [`Packet::check_header_len`] (a quoted header): the
    /// checksum is not verified and `payload_len` is what the total length says, whether present or not.
    pub fn parse_header<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Ipv4Repr> {
        if packet.version() != 4 {
            return Err(Error::BadVersion {
                header: Header::Ipv4,
                version: packet.version(),
                expected: 4,
            });
        }
        let total = usize::from(packet.total_len());
        let payload_len = total
            .checked_sub(packet.header_len())
            .ok_or(Error::BadLength {
                header: Header::Ipv4,
                len: total,
                have: packet.buffer.as_ref().len(),
            })?;
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len,
            ttl: packet.ttl(),
            tos: packet.buffer.as_ref()[field::DSCP_ECN],
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
        })
    }

    /// Length of the header this emits (no options).
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header, checksum included, into a buffer at least [`Ipv4Repr::buffer_len`] long. A
    /// `payload_len` above 65515 is written as total length 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN);
        packet.set_tos(self.tos);
        let total = u16::try_from(HEADER_LEN + self.payload_len).unwrap_or(u16::MAX);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        packet.set_fragment(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
    }
}

impl fmt::Display for Ipv4Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = match (self.dont_frag, self.more_frags) {
            (true, true) => "DF+",
            (true, false) => "DF",
            (false, true) => "+",
            (false, false) => "none",
        };
        write!(
            f,
            "IP (tos {:#x}, ttl {}, id {}, offset {}, flags [{flags}], proto {} ({}), length {}) {} > {}",
            self.tos,
            self.ttl,
            self.ident,
            self.frag_offset,
            protocol_name(self.protocol).unwrap_or("unknown"),
            self.protocol,
            HEADER_LEN + self.payload_len,
            self.src_addr,
            self.dst_addr
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::marked;
    use proptest::prelude::*;

    /// A captured ICMP echo request (Linux, veth, checksums computed in software), after the Ethernet
    /// header.
    static ECHO: [u8; 32] = [
        0x45, // version 4, IHL 5
        0x00, // DSCP 0, ECN 0
        0x00, 0x20, // total length 32
        0x34, 0x34, // identification 0x3434
        0x40, 0x00, // DF, offset 0
        0x40, // TTL 64
        0x01, // protocol ICMP
        0xf2, 0xa6, // header checksum
        0x0a, 0x00, 0x00, 0x01, // source 10.0.0.1
        0x0a, 0x00, 0x00, 0x02, // destination 10.0.0.2
        // payload: ICMP echo request, id 0x2062, seq 1, "abcd"
        0x08, 0x00, 0x12, 0xd6, 0x20, 0x62, 0x00, 0x01, 0x61, 0x62, 0x63, 0x64,
    ];

    fn echo_repr() -> Ipv4Repr {
        Ipv4Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(10, 0, 0, 2),
            protocol: 1,
            payload_len: 12,
            ttl: 64,
            tos: 0,
            ident: 0x3434,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        }
    }

    #[test]
    fn deconstructs_a_captured_header() {
        let packet = Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(packet.version(), 4);
        assert_eq!(packet.header_len(), 20);
        assert_eq!((packet.dscp(), packet.ecn()), (0, 0));
        assert_eq!(packet.total_len(), 32);
        assert_eq!(packet.ident(), 0x3434);
        assert!(packet.dont_frag() && !packet.more_frags() && !packet.is_fragment());
        assert_eq!(packet.frag_offset(), 0);
        assert_eq!((packet.ttl(), packet.protocol()), (64, 1));
        assert_eq!(packet.checksum(), 0xf2a6);
        assert!(packet.verify_checksum());
        assert_eq!(packet.src_addr(), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(packet.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(packet.options(), &[] as &[u8]);
        assert_eq!(packet.payload(), &ECHO[20..]);
    }

    #[test]
    fn constructs_the_header_over_marked_bytes() {
        let mut bytes = marked(ECHO.len());
        let mut packet = Packet::new_unchecked(&mut bytes);
        packet.set_version(4);
        packet.set_header_len(20);
        packet.set_tos(0);
        packet.set_total_len(32);
        packet.set_ident(0x3434);
        packet.set_fragment(true, false, 0);
        packet.set_ttl(64);
        packet.set_protocol(1);
        packet.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        packet.set_dst_addr(Ipv4Addr::new(10, 0, 0, 2));
        packet.fill_checksum();
        packet.payload_mut().copy_from_slice(&ECHO[20..]);
        assert_eq!(bytes, ECHO);
    }

    #[test]
    fn parses_and_emits_the_header() {
        let packet = Packet::new_checked(&ECHO[..]).unwrap();
        assert_eq!(
            Ipv4Repr::parse(&packet, ChecksumCaps::SOFTWARE),
            Ok(echo_repr())
        );
        let mut bytes = marked(ECHO.len());
        let mut packet = Packet::new_unchecked(&mut bytes);
        echo_repr().emit(&mut packet);
        packet.payload_mut().copy_from_slice(&ECHO[20..]);
        assert_eq!(bytes, ECHO);
    }

    #[test]
    fn a_wrong_checksum_fails_only_when_software_verifies() {
        let mut bytes = ECHO;
        bytes[11] ^= 0x01;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Ipv4Repr::parse(&packet, ChecksumCaps::SOFTWARE),
            Err(Error::BadChecksum(Header::Ipv4))
        );
        assert!(Ipv4Repr::parse(&packet, ChecksumCaps::OFFLOADED).is_ok());
    }

    #[test]
    fn options_are_skipped_and_covered_by_the_checksum() {
        // IHL 6 with a router alert option (RFC 2113): 0x94 0x04 0x00 0x00.
        let mut bytes = vec![0u8; 24 + 12];
        bytes[..20].copy_from_slice(&ECHO[..20]);
        bytes[20..24].copy_from_slice(&[0x94, 0x04, 0x00, 0x00]);
        bytes[24..].copy_from_slice(&ECHO[20..]);
        let mut packet = Packet::new_unchecked(&mut bytes);
        packet.set_header_len(24);
        packet.set_total_len(36);
        packet.fill_checksum();
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.options(), &[0x94, 0x04, 0x00, 0x00]);
        assert_eq!(packet.payload(), &ECHO[20..]);
        assert_eq!(
            Ipv4Repr::parse(&packet, ChecksumCaps::SOFTWARE),
            Ok(echo_repr())
        );
    }

    #[test]
    fn ethernet_padding_after_the_total_length_is_allowed() {
        let mut padded = ECHO.to_vec();
        padded.extend_from_slice(&[0; 14]);
        let packet = Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(packet.payload(), &ECHO[20..]);
    }

    #[test]
    fn impossible_lengths_are_refused() {
        assert_eq!(
            Packet::new_checked(&ECHO[..19]).unwrap_err(),
            truncated(Header::Ipv4, 20, 19)
        );
        let mut short_ihl = ECHO;
        short_ihl[0] = 0x44;
        assert_eq!(
            Packet::new_checked(&short_ihl[..]).unwrap_err(),
            Error::BadHeaderLen {
                header: Header::Ipv4,
                len: 16
            }
        );
        let mut long_ihl = ECHO;
        long_ihl[0] = 0x4f;
        assert_eq!(
            Packet::new_checked(&long_ihl[..]).unwrap_err(),
            truncated(Header::Ipv4, 60, 32)
        );
        let mut long_total = ECHO;
        long_total[3] = 33;
        assert_eq!(
            Packet::new_checked(&long_total[..]).unwrap_err(),
            Error::BadLength {
                header: Header::Ipv4,
                len: 33,
                have: 32
            }
        );
        let mut short_total = ECHO;
        short_total[3] = 19;
        assert!(matches!(
            Packet::new_checked(&short_total[..]),
            Err(Error::BadLength { len: 19, .. })
        ));
    }

    #[test]
    fn a_wrong_version_is_refused() {
        let mut v6 = ECHO;
        v6[0] = 0x65;
        let packet = Packet::new_checked(&v6[..]).unwrap();
        assert_eq!(
            Ipv4Repr::parse(&packet, ChecksumCaps::OFFLOADED),
            Err(Error::BadVersion {
                header: Header::Ipv4,
                version: 6,
                expected: 4
            })
        );
    }

    #[test]
    fn fragment_fields_read_back_in_bytes() {
        let mut bytes = ECHO;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        packet.set_fragment(false, true, 1480);
        assert!(packet.more_frags() && !packet.dont_frag() && packet.is_fragment());
        assert_eq!(packet.frag_offset(), 1480);
        // Offset 1480 bytes is 185 eight-octet units: 0x00b9 with MF (0x2000).
        assert_eq!(&bytes[6..8], &[0x20, 0xb9]);
    }

    #[test]
    fn decrementing_the_ttl_keeps_the_checksum_valid() {
        let mut bytes = ECHO;
        let mut packet = Packet::new_unchecked(&mut bytes[..]);
        assert_eq!(packet.decrement_ttl(), 63);
        assert!(packet.verify_checksum());
        let mut zero = ECHO;
        zero[8] = 0;
        let mut packet = Packet::new_unchecked(&mut zero[..]);
        assert_eq!(packet.decrement_ttl(), 0);
        assert_eq!(packet.checksum(), 0xf2a6);
    }

    #[test]
    fn displays_like_tcpdump_v() {
        assert_eq!(
            echo_repr().to_string(),
            "IP (tos 0x0, ttl 64, id 13364, offset 0, flags [DF], proto ICMP (1), length 32) \
             10.0.0.1 > 10.0.0.2"
        );
    }

    proptest! {
        #[test]
        fn emitted_headers_parse_back(
            src: [u8; 4], dst: [u8; 4], protocol: u8, payload_len in 0usize..=65515,
            ttl: u8, tos: u8, ident: u16, dont_frag: bool, more_frags: bool, units in 0u16..8192,
        ) {
            let repr = Ipv4Repr {
                src_addr: src.into(),
                dst_addr: dst.into(),
                protocol,
                payload_len,
                ttl,
                tos,
                ident,
                dont_frag,
                more_frags,
                frag_offset: units * 8,
            };
            let mut bytes = vec![0u8; repr.buffer_len()];
            let mut packet = Packet::new_unchecked(&mut bytes);
            repr.emit(&mut packet);
            let packet = Packet::new_unchecked(&bytes);
            prop_assert!(packet.check_header_len().is_ok());
            prop_assert!(packet.verify_checksum());
            prop_assert_eq!(Ipv4Repr::parse(&packet, ChecksumCaps::SOFTWARE), Ok(repr));
        }

        #[test]
        fn decrementing_any_ttl_keeps_any_checksum_valid(header in prop::collection::vec(any::<u8>(), 20)) {
            let mut bytes = header;
            bytes[0] = 0x45;
            let mut packet = Packet::new_unchecked(&mut bytes[..]);
            packet.fill_checksum();
            packet.decrement_ttl();
            prop_assert!(packet.verify_checksum());
        }
    }
}
