//! ICMP for IPv4 (RFC 792). Echo request and reply, destination unreachable and time exceeded are
//! represented; other messages are kept as raw type, code and data. An error message quotes the IP header
//! of the packet that caused it and at least the first 8 bytes of that packet's payload (RFC 792, "Internet
//! Header + 64 bits of Original Data Datagram"); the `Repr` exposes both so the quoted flow can be found.
//! Whether a quoted flow exists, and whether to send an error at all, are decisions made elsewhere.

use std::fmt;

use super::checksum;
use super::ip::protocol_name;
use super::ipv4::{self, Ipv4Repr};
use super::{Field, Header, Result, read_u16, read_u32, truncated, write_u16, write_u32};

/// Message types (RFC 792, RFC 1812).
pub mod message {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 3;
    /// Source quench (deprecated by RFC 6633, still an error message).
    pub const SOURCE_QUENCH: u8 = 4;
    /// Redirect.
    pub const REDIRECT: u8 = 5;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 12;

    /// Whether a type is an error message, which quotes the packet it answers. These are the types pf
    /// matches to the quoted packet's state.
    pub fn is_error(msg_type: u8) -> bool {
        matches!(
            msg_type,
            DST_UNREACHABLE | SOURCE_QUENCH | REDIRECT | TIME_EXCEEDED | PARAM_PROBLEM
        )
    }
}

/// Destination unreachable codes (RFC 792, RFC 1812 section 5.2.7.1).
pub mod unreachable {
    /// Net unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set; the next-hop MTU is in the header (RFC 1191).
    pub const FRAG_NEEDED: u8 = 4;
    /// Communication administratively prohibited: what a firewall answers.
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Time exceeded codes.
pub mod time_exceeded {
    /// TTL exceeded in transit.
    pub const IN_TRANSIT: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

mod field {
    use super::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// The "rest of header" word whose meaning depends on the type.
    pub const REST: Field = 4..8;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ: Field = 6..8;
    /// Next-hop MTU of "fragmentation needed" (RFC 1191 section 4).
    pub const NEXT_HOP_MTU: Field = 6..8;
}

/// Length of the header: type, code, checksum and the rest-of-header word.
pub const HEADER_LEN: usize = field::REST.end;

/// How many bytes of the quoted packet's payload an error message must carry, when the packet had them.
pub const QUOTED_PAYLOAD_MIN: usize = 8;

/// A view of an ICMP message.
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

    /// Checks that the eight-byte header is present.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(truncated(Header::Icmpv4, HEADER_LEN, have));
        }
        Ok(())
    }

    /// Returns the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    #[inline]
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The rest-of-header word, raw.
    #[inline]
    pub fn rest_of_header(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::REST])
    }

    /// Echo identifier (echo messages).
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    /// Echo sequence number (echo messages).
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_SEQ])
    }

    /// Next-hop MTU (destination unreachable, code 4).
    #[inline]
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::NEXT_HOP_MTU])
    }

    /// Everything after the header: echo data, or the quoted packet of an error.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum verifies over the whole message.
    #[inline]
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, value: u8) {
        self.buffer.as_mut()[field::TYPE] = value;
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, value: u8) {
        self.buffer.as_mut()[field::CODE] = value;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// Sets the rest-of-header word.
    pub fn set_rest_of_header(&mut self, value: u32) {
        write_u32(&mut self.buffer.as_mut()[field::REST], value);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_IDENT], value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_SEQ], value);
    }

    /// The data after the header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes and writes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let value = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(value);
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let view = Packet::new_unchecked(self.buffer.as_ref());
        match view.check_len().and_then(|()| Icmpv4Repr::parse(&view)) {
            Ok(repr) => write!(f, "{repr}"),
            Err(err) => write!(f, "ICMP ({err})"),
        }
    }
}

/// The packet an error message quotes: its IP header (options dropped) and the bytes after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted<'a> {
    /// The quoted IP header. Its `payload_len` describes the original datagram, not the bytes quoted.
    pub header: Ipv4Repr,
    /// The quoted bytes after the IP header: the start of the original transport header.
    pub data: &'a [u8],
}

impl<'a> Quoted<'a> {
    /// Parses the packet quoted in `bytes`: a complete IP header, then at least 8 bytes of its payload or
    /// all of it when it was shorter.
    pub fn parse(bytes: &'a [u8]) -> Result<Quoted<'a>> {
        let packet = ipv4::Packet::new_unchecked(bytes);
        packet.check_header_len()?;
        let header = Ipv4Repr::parse_header(&packet)?;
        let data = &bytes[packet.header_len()..];
        let need = QUOTED_PAYLOAD_MIN.min(header.payload_len);
        if data.len() < need {
            return Err(truncated(
                Header::Icmpv4,
                HEADER_LEN + packet.header_len() + need,
                HEADER_LEN + bytes.len(),
            ));
        }
        Ok(Quoted { header, data })
    }

    /// Length of the quote as emitted: a 20-byte header and the data.
    pub fn buffer_len(&self) -> usize {
        self.header.buffer_len() + self.data.len()
    }

    fn emit(&self, bytes: &mut [u8]) {
        let header_len = self.header.buffer_len();
        self.header
            .emit(&mut ipv4::Packet::new_unchecked(&mut bytes[..header_len]));
        bytes[header_len..header_len + self.data.len()].copy_from_slice(self.data);
    }
}

/// The meaning of an ICMP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmpv4Repr<'a> {
    /// Echo request.
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Echo reply.
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data.
        data: &'a [u8],
    },
    /// Destination unreachable.
    DstUnreachable {
        /// Code ([`unreachable`]).
        code: u8,
        /// Next-hop MTU for code 4, zero otherwise.
        next_hop_mtu: u16,
        /// The quoted packet.
        quoted: Quoted<'a>,
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code ([`time_exceeded`]).
        code: u8,
        /// The quoted packet.
        quoted: Quoted<'a>,
    },
    /// Any other message, raw.
    Other {
        /// Type.
        msg_type: u8,
        /// Code.
        code: u8,
        /// The rest-of-header word.
        rest: u32,
        /// Data after the header.
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a checked message. The checksum is not verified here ([`Packet::verify_checksum`]).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Icmpv4Repr<'a>> {
        let bytes: &'a [u8] = packet.buffer.as_ref();
        let data = &bytes[HEADER_LEN..];
        Ok(match packet.msg_type() {
            message::ECHO_REQUEST => Icmpv4Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            message::ECHO_REPLY => Icmpv4Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            message::DST_UNREACHABLE => Icmpv4Repr::DstUnreachable {
                code: packet.msg_code(),
                next_hop_mtu: packet.next_hop_mtu(),
                quoted: Quoted::parse(data)?,
            },
            message::TIME_EXCEEDED => Icmpv4Repr::TimeExceeded {
                code: packet.msg_code(),
                quoted: Quoted::parse(data)?,
            },
            msg_type => Icmpv4Repr::Other {
                msg_type,
                code: packet.msg_code(),
                rest: packet.rest_of_header(),
                data,
            },
        })
    }

    /// Length of the message this emits.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + match self {
                Icmpv4Repr::EchoRequest { data, .. }
                | Icmpv4Repr::EchoReply { data, .. }
                | Icmpv4Repr::Other { data, .. } => data.len(),
                Icmpv4Repr::DstUnreachable { quoted, .. }
                | Icmpv4Repr::TimeExceeded { quoted, .. } => quoted.buffer_len(),
            }
    }

    /// Writes the message, checksum included, into a buffer exactly [`Icmpv4Repr::buffer_len`] long (the
    /// checksum covers the whole buffer).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let request = matches!(self, Icmpv4Repr::EchoRequest { .. });
                packet.set_msg_type(if request {
                    message::ECHO_REQUEST
                } else {
                    message::ECHO_REPLY
                });
                packet.set_msg_code(0);
                packet.set_echo_ident(ident);
                packet.set_echo_seq_no(seq_no);
                packet.data_mut()[..data.len()].copy_from_slice(data);
            }
            Icmpv4Repr::DstUnreachable {
                code,
                next_hop_mtu,
                quoted,
            } => {
                packet.set_msg_type(message::DST_UNREACHABLE);
                packet.set_msg_code(code);
                packet.set_rest_of_header(u32::from(next_hop_mtu));
                quoted.emit(packet.data_mut());
            }
            Icmpv4Repr::TimeExceeded { code, quoted } => {
                packet.set_msg_type(message::TIME_EXCEEDED);
                packet.set_msg_code(code);
                packet.set_rest_of_header(0);
                quoted.emit(packet.data_mut());
            }
            Icmpv4Repr::Other {
                msg_type,
                code,
                rest,
                data,
            } => {
                packet.set_msg_type(msg_type);
                packet.set_msg_code(code);
                packet.set_rest_of_header(rest);
                packet.data_mut()[..data.len()].copy_from_slice(data);
            }
        }
        packet.fill_checksum();
    }
}

/// tcpdump's description of a quoted packet's destination: address, and port when UDP or TCP.
fn fmt_quoted(f: &mut fmt::Formatter<'_>, quoted: &Quoted<'_>) -> fmt::Result {
    let h = &quoted.header;
    match (h.protocol, quoted.data.get(2..4)) {
        (6 | 17, Some(port)) => write!(
            f,
            "{} {} port {}",
            h.dst_addr,
            protocol_name(h.protocol).unwrap_or("").to_lowercase(),
            read_u16(port)
        ),
        _ => write!(f, "{} protocol {}", h.dst_addr, h.protocol),
    }
}

impl fmt::Display for Icmpv4Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            } => write!(
                f,
                "ICMP echo request, id {ident}, seq {seq_no}, length {}",
                HEADER_LEN + data.len()
            ),
            Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => write!(
                f,
                "ICMP echo reply, id {ident}, seq {seq_no}, length {}",
                HEADER_LEN + data.len()
            ),
            Icmpv4Repr::DstUnreachable { code, quoted, .. } => {
                f.write_str("ICMP ")?;
                fmt_quoted(f, quoted)?;
                write!(f, " unreachable, code {code}")
            }
            Icmpv4Repr::TimeExceeded { code, quoted } => {
                f.write_str("ICMP time exceeded for ")?;
                fmt_quoted(f, quoted)?;
                write!(f, ", code {code}")
            }
            Icmpv4Repr::Other { msg_type, code, .. } => {
                write!(f, "ICMP type {msg_type}, code {code}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::marked;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    /// A captured echo request (Linux ping socket), after the IPv4 header.
    static ECHO_REQUEST: [u8; 12] = [
        0x08, // type echo request
        0x00, // code 0
        0x12, 0xd6, // checksum
        0x20, 0x62, // identifier 8290
        0x00, 0x01, // sequence number 1
        b'a', b'b', b'c', b'd', // data
    ];

    /// A captured port unreachable (Linux), quoting a UDP datagram to 10.0.0.2:9999.
    static PORT_UNREACHABLE: [u8; 38] = [
        0x03, // type destination unreachable
        0x03, // code port unreachable
        0x11, 0x1b, // checksum
        0x00, 0x00, 0x00, 0x00, // unused
        // quoted IPv4 header: 10.0.0.1 -> 10.0.0.2, UDP, total length 30, id 0x9ac0, DF, TTL 64
        0x45, 0x00, 0x00, 0x1e, 0x9a, 0xc0, 0x40, 0x00, 0x40, 0x11, 0x8c, 0x0c, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02,
        // quoted UDP: 56066 -> 9999, length 10, checksum 0x815c, "hi"
        0xdb, 0x02, 0x27, 0x0f, 0x00, 0x0a, 0x81, 0x5c, b'h', b'i',
    ];

    fn quoted_udp() -> Quoted<'static> {
        Quoted {
            header: Ipv4Repr {
                src_addr: Ipv4Addr::new(10, 0, 0, 1),
                dst_addr: Ipv4Addr::new(10, 0, 0, 2),
                protocol: 17,
                payload_len: 10,
                ttl: 64,
                tos: 0,
                ident: 0x9ac0,
                dont_frag: true,
                more_frags: false,
                frag_offset: 0,
            },
            data: &PORT_UNREACHABLE[28..],
        }
    }

    fn unreachable_repr() -> Icmpv4Repr<'static> {
        Icmpv4Repr::DstUnreachable {
            code: unreachable::PORT,
            next_hop_mtu: 0,
            quoted: quoted_udp(),
        }
    }

    #[test]
    fn deconstructs_a_captured_echo_request() {
        let packet = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!((packet.msg_type(), packet.msg_code()), (8, 0));
        assert_eq!(packet.checksum(), 0x12d6);
        assert_eq!((packet.echo_ident(), packet.echo_seq_no()), (0x2062, 1));
        assert_eq!(packet.data(), b"abcd");
        assert!(packet.verify_checksum());
    }

    #[test]
    fn deconstructs_a_captured_port_unreachable() {
        let packet = Packet::new_checked(&PORT_UNREACHABLE[..]).unwrap();
        assert_eq!((packet.msg_type(), packet.msg_code()), (3, 3));
        assert_eq!(packet.rest_of_header(), 0);
        assert!(packet.verify_checksum());
        assert_eq!(Icmpv4Repr::parse(&packet), Ok(unreachable_repr()));
    }

    #[test]
    fn constructs_an_echo_request_over_marked_bytes() {
        let mut bytes = marked(ECHO_REQUEST.len());
        let mut packet = Packet::new_unchecked(&mut bytes);
        packet.set_msg_type(message::ECHO_REQUEST);
        packet.set_msg_code(0);
        packet.set_echo_ident(0x2062);
        packet.set_echo_seq_no(1);
        packet.data_mut().copy_from_slice(b"abcd");
        packet.fill_checksum();
        assert_eq!(bytes, ECHO_REQUEST);
    }

    #[test]
    fn parses_and_emits_both_captured_messages() {
        let echo = Icmpv4Repr::EchoRequest {
            ident: 0x2062,
            seq_no: 1,
            data: b"abcd",
        };
        let packet = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(Icmpv4Repr::parse(&packet), Ok(echo));
        for (repr, golden) in [
            (echo, &ECHO_REQUEST[..]),
            (unreachable_repr(), &PORT_UNREACHABLE[..]),
        ] {
            let mut bytes = marked(repr.buffer_len());
            repr.emit(&mut Packet::new_unchecked(&mut bytes));
            assert_eq!(bytes, golden);
        }
    }

    #[test]
    fn impossible_lengths_are_refused() {
        assert_eq!(
            Packet::new_checked(&ECHO_REQUEST[..7]).unwrap_err(),
            truncated(Header::Icmpv4, 8, 7)
        );
        // The quoted header cut inside its addresses.
        let packet = Packet::new_checked(&PORT_UNREACHABLE[..20]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&packet),
            Err(truncated(Header::Ipv4, 20, 12))
        );
        // The header whole, but only 4 of the 8 transport bytes a quote must carry.
        let packet = Packet::new_checked(&PORT_UNREACHABLE[..32]).unwrap();
        assert_eq!(
            Icmpv4Repr::parse(&packet),
            Err(truncated(Header::Icmpv4, 36, 32))
        );
    }

    #[test]
    fn a_quote_of_a_tiny_datagram_may_be_shorter_than_eight_bytes() {
        let mut bytes = PORT_UNREACHABLE[..32].to_vec();
        // The quoted datagram's total length says it only had 4 bytes of payload.
        bytes[11] = 24;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        let Ok(Icmpv4Repr::DstUnreachable { quoted, .. }) = Icmpv4Repr::parse(&packet) else {
            panic!("expected an unreachable");
        };
        assert_eq!(quoted.data.len(), 4);
    }

    #[test]
    fn displays_like_tcpdump() {
        assert_eq!(
            unreachable_repr().to_string(),
            "ICMP 10.0.0.2 udp port 9999 unreachable, code 3"
        );
        let packet = Packet::new_checked(&ECHO_REQUEST[..]).unwrap();
        assert_eq!(
            packet.to_string(),
            "ICMP echo request, id 8290, seq 1, length 12"
        );
    }

    /// What a generated message is, apart from the data it borrows.
    #[derive(Clone, Debug)]
    struct Shape {
        kind: u8,
        ident: u16,
        seq_no: u16,
        code: u8,
        word: u32,
        src: [u8; 4],
        dst: [u8; 4],
        protocol: u8,
        payload_len: usize,
    }

    fn shape() -> impl Strategy<Value = Shape> {
        (
            (
                0u8..5,
                any::<u16>(),
                any::<u16>(),
                any::<u8>(),
                any::<u32>(),
            ),
            (any::<[u8; 4]>(), any::<[u8; 4]>(), any::<u8>(), 8usize..100),
        )
            .prop_map(|(a, b)| Shape {
                kind: a.0,
                ident: a.1,
                seq_no: a.2,
                code: a.3,
                word: a.4,
                src: b.0,
                dst: b.1,
                protocol: b.2,
                payload_len: b.3,
            })
    }

    fn build<'a>(s: &Shape, data: &'a [u8]) -> Icmpv4Repr<'a> {
        let quoted = Quoted {
            header: Ipv4Repr {
                src_addr: s.src.into(),
                dst_addr: s.dst.into(),
                protocol: s.protocol,
                payload_len: s.payload_len,
                ttl: 1,
                ..Ipv4Repr::default()
            },
            data,
        };
        let (ident, seq_no) = (s.ident, s.seq_no);
        match s.kind {
            0 => Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            },
            1 => Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            },
            2 => Icmpv4Repr::DstUnreachable {
                code: s.code,
                next_hop_mtu: ident,
                quoted,
            },
            3 => Icmpv4Repr::TimeExceeded {
                code: s.code,
                quoted,
            },
            // Types 13 and up are neither echo nor a represented error.
            _ => Icmpv4Repr::Other {
                msg_type: 13 + s.code % 200,
                code: s.code,
                rest: s.word,
                data,
            },
        }
    }

    proptest! {
        #[test]
        fn emitted_messages_parse_back(shape in shape(), data in prop::collection::vec(any::<u8>(), 8..40)) {
            let repr = build(&shape, &data);
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut bytes));
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert!(packet.verify_checksum());
            prop_assert_eq!(Icmpv4Repr::parse(&packet), Ok(repr));
        }
    }
}
