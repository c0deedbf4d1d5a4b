//! UDP datagrams (RFC 768). The length field bounds the payload; bytes after it (which the IP length may
//! still cover) are ignored, as BSD stacks do. The checksum is optional over IPv4 (zero means none) and
//! mandatory over IPv6 (RFC 8200 section 8.1). Ports mean nothing here; rules give them meaning.

use std::fmt;

use super::checksum::PseudoHeader;
use super::ip::protocol;
use super::{Error, Field, Header, Result, read_u16, truncated, write_u16};

mod field {
    use super::Field;

    pub const SRC_PORT: Field = 0..2;
    pub const DST_PORT: Field = 2..4;
    pub const LENGTH: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// A view of a UDP datagram.
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

    /// Checks that the header is present and that the length field covers the header and fits the buffer.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(truncated(Header::Udp, HEADER_LEN, have));
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN || len > have {
            return Err(Error::BadLength {
                header: Header::Udp,
                len,
                have,
            });
        }
        Ok(())
    }

    /// Checks that the header is present and that the length field covers it, without asking the
    /// datagram to fit the buffer: a first fragment carries only the start of its datagram.
    pub fn check_header(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(truncated(Header::Udp, HEADER_LEN, have));
        }
        let len = usize::from(self.len());
        if len < HEADER_LEN {
            return Err(Error::BadLength {
                header: Header::Udp,
                len,
                have,
            });
        }
        Ok(())
    }

    /// Returns the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    #[inline]
    pub fn src_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::SRC_PORT])
    }

    /// Destination port.
    #[inline]
    pub fn dst_port(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::DST_PORT])
    }

    /// Length field: header and payload.
    #[inline]
    pub fn len(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::LENGTH])
    }

    /// Whether the length field says the datagram is only a header (a zero-length payload).
    #[inline]
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum field; zero over IPv4 means the sender computed none.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The payload, up to the length field.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..usize::from(self.len())]
    }

    /// Whether the checksum verifies over the datagram (up to the length field) and the pseudo-header. A
    /// zero checksum verifies over IPv4 (none was sent) and fails over IPv6, where it is mandatory.
    #[inline]
    pub fn verify_checksum(&self, pseudo: &PseudoHeader) -> bool {
        if self.checksum() == 0 {
            return matches!(pseudo, PseudoHeader::V4 { .. });
        }
        pseudo.verify(
            protocol::UDP,
            &self.buffer.as_ref()[..usize::from(self.len())],
        )
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, port: u16) {
        write_u16(&mut self.buffer.as_mut()[field::SRC_PORT], port);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, port: u16) {
        write_u16(&mut self.buffer.as_mut()[field::DST_PORT], port);
    }

    /// Sets the length field. Changes what [`Packet::payload`] may read.
    pub fn set_len(&mut self, len: u16) {
        write_u16(&mut self.buffer.as_mut()[field::LENGTH], len);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// The payload up to the length field, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[HEADER_LEN..end]
    }

    /// Computes and writes the checksum. A computed zero is sent as 0xffff, because zero means "no
    /// checksum" (RFC 768).
    pub fn fill_checksum(&mut self, pseudo: &PseudoHeader) {
        self.set_checksum(0);
        let end = usize::from(self.len());
        let value = pseudo.checksum(protocol::UDP, &self.buffer.as_ref()[..end]);
        self.set_checksum(if value == 0 { 0xffff } else { value });
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.check_len().map(|()| UdpRepr::parse(self)) {
            Ok(repr) => write!(f, "{repr}, length {}", self.payload().len()),
            Err(err) => write!(f, "UDP ({err})"),
        }
    }
}

/// The meaning of a UDP header: its ports. The length comes from the payload given to `emit`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Parses a checked datagram. Port zero is not refused: a firewall must see it to block it.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> UdpRepr {
        UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        }
    }

    /// Length of the header this emits; the payload follows.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header, `payload` and the checksum into a buffer at least `HEADER_LEN + payload.len()`
    /// long. A payload over 65527 bytes cannot be described; its length field saturates at 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        payload: &[u8],
        pseudo: &PseudoHeader,
    ) {
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        let len = u16::try_from(HEADER_LEN + payload.len()).unwrap_or(u16::MAX);
        packet.set_len(len);
        let carried = usize::from(len) - HEADER_LEN;
        packet.payload_mut().copy_from_slice(&payload[..carried]);
        packet.fill_checksum(pseudo);
    }
}

impl fmt::Display for UdpRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UDP {} > {}", self.src_port, self.dst_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::marked;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const PSEUDO_V4: PseudoHeader = PseudoHeader::V4 {
        src: Ipv4Addr::new(10, 0, 0, 1),
        dst: Ipv4Addr::new(10, 0, 0, 2),
    };

    fn pseudo_v6() -> PseudoHeader {
        PseudoHeader::V6 {
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
        }
    }

    /// A captured datagram from Linux (10.0.0.1:56066 -> 10.0.0.2:9999, "hi"; Wireshark verifies the
    /// checksum).
    static DATAGRAM: [u8; 10] = [
        0xdb, 0x02, // source port 56066
        0x27, 0x0f, // destination port 9999
        0x00, 0x0a, // length 10
        0x81, 0x5c, // checksum
        b'h', b'i', // payload
    ];

    /// The same over IPv6 (2001:db8::1:59632 -> 2001:db8::2:9999).
    static DATAGRAM_V6: [u8; 10] = [
        0xe8, 0xf0, // source port 59632
        0x27, 0x0f, // destination port 9999
        0x00, 0x0a, // length 10
        0x2b, 0xfc, // checksum
        b'h', b'i', // payload
    ];

    #[test]
    fn deconstructs_a_captured_datagram() {
        let packet = Packet::new_checked(&DATAGRAM[..]).unwrap();
        assert_eq!((packet.src_port(), packet.dst_port()), (56066, 9999));
        assert_eq!(packet.len(), 10);
        assert_eq!(packet.checksum(), 0x815c);
        assert_eq!(packet.payload(), b"hi");
        assert!(packet.verify_checksum(&PSEUDO_V4));
        let v6 = Packet::new_checked(&DATAGRAM_V6[..]).unwrap();
        assert!(v6.verify_checksum(&pseudo_v6()));
    }

    #[test]
    fn constructs_a_datagram_over_marked_bytes() {
        let mut bytes = marked(10);
        let mut packet = Packet::new_unchecked(&mut bytes);
        packet.set_src_port(56066);
        packet.set_dst_port(9999);
        packet.set_len(10);
        packet.payload_mut().copy_from_slice(b"hi");
        packet.fill_checksum(&PSEUDO_V4);
        assert_eq!(bytes, DATAGRAM);
    }

    #[test]
    fn parses_and_emits_both_captured_datagrams() {
        for (golden, pseudo, src_port) in [
            (&DATAGRAM, PSEUDO_V4, 56066),
            (&DATAGRAM_V6, pseudo_v6(), 59632),
        ] {
            let repr = UdpRepr {
                src_port,
                dst_port: 9999,
            };
            assert_eq!(
                UdpRepr::parse(&Packet::new_checked(&golden[..]).unwrap()),
                repr
            );
            let mut bytes = marked(10);
            repr.emit(&mut Packet::new_unchecked(&mut bytes), b"hi", &pseudo);
            assert_eq!(&bytes[..], &golden[..]);
        }
    }

    #[test]
    fn impossible_lengths_are_refused_and_trailing_bytes_ignored() {
        assert_eq!(
            Packet::new_checked(&DATAGRAM[..7]).unwrap_err(),
            truncated(Header::Udp, 8, 7)
        );
        assert_eq!(
            Packet::new_checked(&DATAGRAM[..9]).unwrap_err(),
            Error::BadLength {
                header: Header::Udp,
                len: 10,
                have: 9
            }
        );
        let mut short = DATAGRAM;
        short[5] = 7;
        assert!(matches!(
            Packet::new_checked(&short[..]),
            Err(Error::BadLength { len: 7, .. })
        ));
        let mut trailing = DATAGRAM.to_vec();
        trailing.extend_from_slice(&[0; 6]);
        let packet = Packet::new_checked(&trailing[..]).unwrap();
        assert_eq!(packet.payload(), b"hi");
        assert!(packet.verify_checksum(&PSEUDO_V4));
    }

    #[test]
    fn a_zero_checksum_means_none_over_ipv4_only() {
        let mut bytes = DATAGRAM;
        bytes[6..8].fill(0);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert!(packet.verify_checksum(&PSEUDO_V4));
        assert!(!packet.verify_checksum(&pseudo_v6()));
    }

    #[test]
    fn a_computed_zero_checksum_is_sent_as_all_ones() {
        // The payload is chosen so that everything else sums to 0xffff: its word is the complement of the
        // rest, which makes the computed checksum zero.
        let src = Ipv4Addr::new(0, 0, 0, 0);
        let dst = Ipv4Addr::new(0, 0, 0, 0);
        let pseudo = PseudoHeader::V4 { src, dst };
        let rest = crate::wire::checksum::combine(&[17, 10, 10]);
        let payload = (!rest).to_be_bytes();
        let mut bytes = [0u8; 10];
        UdpRepr::default().emit(&mut Packet::new_unchecked(&mut bytes), &payload, &pseudo);
        assert_eq!(&bytes[6..8], &[0xff, 0xff]);
        assert!(
            Packet::new_checked(&bytes[..])
                .unwrap()
                .verify_checksum(&pseudo)
        );
    }

    proptest! {
        #[test]
        fn emitted_datagrams_parse_back(
            src_port: u16, dst_port: u16, payload in prop::collection::vec(any::<u8>(), 0..64),
            src: [u8; 16], dst: [u8; 16], v6: bool,
        ) {
            let pseudo = if v6 {
                PseudoHeader::V6 { src: Ipv6Addr::from(src), dst: Ipv6Addr::from(dst) }
            } else {
                PseudoHeader::V4 {
                    src: Ipv4Addr::new(src[0], src[1], src[2], src[3]),
                    dst: Ipv4Addr::new(dst[0], dst[1], dst[2], dst[3]),
                }
            };
            let repr = UdpRepr { src_port, dst_port };
            let mut bytes = vec![0u8; repr.buffer_len() + payload.len()];
            repr.emit(&mut Packet::new_unchecked(&mut bytes), &payload, &pseudo);
            let packet = Packet::new_checked(&bytes).unwrap();
            prop_assert!(packet.verify_checksum(&pseudo));
            prop_assert_eq!(packet.payload(), &payload[..]);
            prop_assert_eq!(UdpRepr::parse(&packet), repr);
        }
    }
}
