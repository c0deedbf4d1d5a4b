//! ICMPv6 (RFC 4443) and the Neighbour Discovery messages Tandem answers and learns from (RFC 4861):
//! echo, the four error messages (each quoting the offending packet), and neighbour solicitation and
//! advertisement with their link-layer address options. Router solicitations and advertisements,
//! redirects and everything else stay raw. The checksum covers an IPv6 pseudo-header, so emitting and
//! verifying need one. Neighbour caches and the RFC 4861 section 7.1 validity rules that involve the IP
//! header (hop limit 255) belong to the control thread.

use std::fmt;
use std::net::Ipv6Addr;

use super::checksum::PseudoHeader;
use super::ethernet::MacAddr;
use super::ip::protocol;
use super::ipv6::{self, Ipv6Repr};
use super::{Error, Field, Header, Result, read_u16, read_u32, truncated, write_u16, write_u32};

/// Message types (RFC 4443 section 2.1, RFC 4861 section 4).
pub mod message {
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PACKET_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Router solicitation.
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router advertisement.
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbour solicitation.
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbour advertisement.
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Redirect.
    pub const REDIRECT: u8 = 137;

    /// Whether a type is an error message: the high bit of the type is clear (RFC 4443 section 2.1).
    pub fn is_error(msg_type: u8) -> bool {
        msg_type < 128
    }

    /// Whether a type is one of the Neighbour Discovery messages (RFC 4861), which the worker hands to the
    /// control thread.
    pub fn is_neighbor_discovery(msg_type: u8) -> bool {
        (ROUTER_SOLICIT..=REDIRECT).contains(&msg_type)
    }
}

/// Destination unreachable codes (RFC 4443 section 3.1).
pub mod unreachable {
    /// No route to destination.
    pub const NO_ROUTE: u8 = 0;
    /// Communication with destination administratively prohibited: what a firewall answers.
    pub const ADMIN_PROHIBITED: u8 = 1;
    /// Beyond scope of source address.
    pub const BEYOND_SCOPE: u8 = 2;
    /// Address unreachable.
    pub const ADDRESS: u8 = 3;
    /// Port unreachable.
    pub const PORT: u8 = 4;
}

mod field {
    use super::Field;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Field = 2..4;
    /// The message body's first word: echo id and sequence, MTU, pointer, ND flags.
    pub const WORD: Field = 4..8;
    pub const ECHO_IDENT: Field = 4..6;
    pub const ECHO_SEQ: Field = 6..8;
    /// Neighbour advertisement flags: R, S, O in the high bits.
    pub const ND_FLAGS: usize = 4;
    /// The target address of a neighbour solicitation or advertisement.
    pub const ND_TARGET: Field = 8..24;
}

/// Length of the common header: type, code, checksum and the first body word.
pub const HEADER_LEN: usize = field::WORD.end;
/// Length of a neighbour solicitation or advertisement before its options.
pub const ND_HEADER_LEN: usize = field::ND_TARGET.end;

/// How many bytes after the quoted packet's fixed header an error must carry to be useful, when the
/// packet had them.
pub const QUOTED_PAYLOAD_MIN: usize = 8;

/// A neighbour advertisement's flags (RFC 4861 section 4.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct NeighborFlags(pub u8);

impl NeighborFlags {
    /// R: the sender is a router.
    pub const ROUTER: NeighborFlags = NeighborFlags(0x80);
    /// S: sent in answer to a solicitation.
    pub const SOLICITED: NeighborFlags = NeighborFlags(0x40);
    /// O: override an existing cache entry.
    pub const OVERRIDE: NeighborFlags = NeighborFlags(0x20);

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: NeighborFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of two flag sets.
    pub const fn with(self, other: NeighborFlags) -> NeighborFlags {
        NeighborFlags(self.0 | other.0)
    }
}

/// Neighbour Discovery option types (RFC 4861 section 4.6).
pub mod ndp_option {
    /// Source link-layer address.
    pub const SOURCE_LL_ADDR: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LL_ADDR: u8 = 2;
}

/// One Neighbour Discovery option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NdpOption<'a> {
    /// Option type.
    pub kind: u8,
    /// The bytes after the type and length.
    pub data: &'a [u8],
}

impl NdpOption<'_> {
    /// The Ethernet address a link-layer address option carries (six bytes on Ethernet, RFC 2464
    /// section 6).
    pub fn mac(&self) -> Option<MacAddr> {
        let bytes: [u8; 6] = self.data.get(..6)?.try_into().ok()?;
        Some(MacAddr(bytes))
    }
}

/// An iterator over Neighbour Discovery options, yielding one error and then nothing on a bad length.
#[derive(Clone, Debug)]
pub struct NdpOptions<'a> {
    bytes: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> NdpOptions<'a> {
    /// Iterates over `bytes`, the options after a message's fixed part.
    pub fn new(bytes: &'a [u8]) -> NdpOptions<'a> {
        NdpOptions {
            bytes,
            offset: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for NdpOptions<'a> {
    type Item = Result<NdpOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self.bytes.get(self.offset..)?;
        let (&kind, &units) = (rest.first()?, rest.get(1).unwrap_or(&0));
        // The length counts 8-octet units; zero is invalid and the packet must be discarded (RFC 4861
        // section 4.6), which also keeps the walk from standing still.
        let len = usize::from(units) * 8;
        let Some(option) = rest.get(..len).filter(|_| len > 0) else {
            self.done = true;
            return Some(Err(Error::BadOption {
                header: Header::NdpOption,
                kind,
                offset: self.offset,
            }));
        };
        self.offset += len;
        Some(Ok(NdpOption {
            kind,
            data: &option[2..],
        }))
    }
}

/// A view of an ICMPv6 message.
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

    /// Checks that the common header is present, and the target address too for neighbour solicitations
    /// and advertisements.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let have = self.buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(truncated(Header::Icmpv6, HEADER_LEN, have));
        }
        let neighbor = matches!(
            self.msg_type(),
            message::NEIGHBOR_SOLICIT | message::NEIGHBOR_ADVERT
        );
        if neighbor && have < ND_HEADER_LEN {
            return Err(truncated(Header::Icmpv6, ND_HEADER_LEN, have));
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

    /// The first body word, raw: the MTU of packet too big, the pointer of parameter problem.
    #[inline]
    pub fn word(&self) -> u32 {
        read_u32(&self.buffer.as_ref()[field::WORD])
    }

    /// Echo identifier.
    #[inline]
    pub fn echo_ident(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_IDENT])
    }

    /// Echo sequence number.
    #[inline]
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ECHO_SEQ])
    }

    /// Neighbour advertisement flags.
    #[inline]
    pub fn neighbor_flags(&self) -> NeighborFlags {
        NeighborFlags(self.buffer.as_ref()[field::ND_FLAGS] & 0xe0)
    }

    /// Target address of a neighbour solicitation or advertisement (checked only for those types).
    #[inline]
    pub fn target_addr(&self) -> Ipv6Addr {
        let mut octets = [0u8; 16];
        octets.copy_from_slice(&self.buffer.as_ref()[field::ND_TARGET]);
        octets.into()
    }

    /// The options of a neighbour solicitation or advertisement.
    #[inline]
    pub fn ndp_options(&self) -> NdpOptions<'_> {
        NdpOptions::new(&self.buffer.as_ref()[ND_HEADER_LEN..])
    }

    /// Everything after the common header: echo data, or the quoted packet of an error.
    #[inline]
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }

    /// Whether the checksum verifies over the message and the pseudo-header.
    #[inline]
    pub fn verify_checksum(&self, pseudo: &PseudoHeader) -> bool {
        pseudo.verify(protocol::ICMPV6, self.buffer.as_ref())
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

    /// Sets the first body word.
    pub fn set_word(&mut self, value: u32) {
        write_u32(&mut self.buffer.as_mut()[field::WORD], value);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_IDENT], value);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ECHO_SEQ], value);
    }

    /// Sets the target address.
    pub fn set_target_addr(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[field::ND_TARGET].copy_from_slice(&addr.octets());
    }

    /// The data after the common header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }

    /// Computes and writes the checksum over the message and the pseudo-header.
    pub fn fill_checksum(&mut self, pseudo: &PseudoHeader) {
        self.set_checksum(0);
        let value = pseudo.checksum(protocol::ICMPV6, self.buffer.as_ref());
        self.set_checksum(value);
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let view = Packet::new_unchecked(self.buffer.as_ref());
        match view.check_len().and_then(|()| Icmpv6Repr::parse(&view)) {
            Ok(repr) => write!(f, "{repr}"),
            Err(err) => write!(f, "ICMP6 ({err})"),
        }
    }
}

/// The packet an error message quotes: its fixed header and the bytes after it (extension headers and
/// the start of the transport header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quoted<'a> {
    /// The quoted fixed header. Its `payload_len` describes the original packet, not the bytes quoted.
    pub header: Ipv6Repr,
    /// The quoted bytes after the fixed header.
    pub data: &'a [u8],
}

impl<'a> Quoted<'a> {
    /// Parses the packet quoted in `bytes`: a complete fixed header, then at least 8 bytes of its payload or
    /// all of it when it was shorter.
    pub fn parse(bytes: &'a [u8]) -> Result<Quoted<'a>> {
        let packet = ipv6::Packet::new_unchecked(bytes);
        packet.check_header_len()?;
        let header = Ipv6Repr::parse(&packet)?;
        let data = &bytes[ipv6::HEADER_LEN..];
        let need = QUOTED_PAYLOAD_MIN.min(header.payload_len);
        if data.len() < need {
            return Err(truncated(
                Header::Icmpv6,
                HEADER_LEN + ipv6::HEADER_LEN + need,
                HEADER_LEN + bytes.len(),
            ));
        }
        Ok(Quoted { header, data })
    }

    /// Length of the quote as emitted.
    pub fn buffer_len(&self) -> usize {
        ipv6::HEADER_LEN + self.data.len()
    }

    fn emit(&self, bytes: &mut [u8]) {
        self.header.emit(&mut ipv6::Packet::new_unchecked(
            &mut bytes[..ipv6::HEADER_LEN],
        ));
        bytes[ipv6::HEADER_LEN..self.buffer_len()].copy_from_slice(self.data);
    }
}

/// The meaning of an ICMPv6 message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Icmpv6Repr<'a> {
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
        /// The quoted packet.
        quoted: Quoted<'a>,
    },
    /// Packet too big.
    PacketTooBig {
        /// The MTU of the next hop.
        mtu: u32,
        /// The quoted packet.
        quoted: Quoted<'a>,
    },
    /// Time exceeded.
    TimeExceeded {
        /// Code: 0 hop limit exceeded, 1 reassembly time exceeded.
        code: u8,
        /// The quoted packet.
        quoted: Quoted<'a>,
    },
    /// Parameter problem.
    ParamProblem {
        /// Code.
        code: u8,
        /// Offset of the problem in the quoted packet.
        pointer: u32,
        /// The quoted packet.
        quoted: Quoted<'a>,
    },
    /// Neighbour solicitation.
    NeighborSolicit {
        /// The address being resolved.
        target: Ipv6Addr,
        /// The source link-layer address option, if present.
        source_lladdr: Option<MacAddr>,
    },
    /// Neighbour advertisement.
    NeighborAdvert {
        /// R, S and O.
        flags: NeighborFlags,
        /// The address advertised.
        target: Ipv6Addr,
        /// The target link-layer address option, if present.
        target_lladdr: Option<MacAddr>,
    },
    /// Any other message, raw.
    Other {
        /// Type.
        msg_type: u8,
        /// Code.
        code: u8,
        /// The first body word.
        word: u32,
        /// Data after the common header.
        data: &'a [u8],
    },
}

/// The first link-layer address option of `kind` among `options`; a malformed option is an error.
fn find_lladdr(options: NdpOptions<'_>, kind: u8) -> Result<Option<MacAddr>> {
    let mut found = None;
    for option in options {
        let option = option?;
        if option.kind == kind && found.is_none() {
            found = option.mac();
        }
    }
    Ok(found)
}

/// Length of a link-layer address option for Ethernet: type, length, six bytes.
const LLADDR_OPTION_LEN: usize = 8;

impl<'a> Icmpv6Repr<'a> {
    /// Parses a checked message. The checksum is not verified here ([`Packet::verify_checksum`]).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(packet: &Packet<&'a T>) -> Result<Icmpv6Repr<'a>> {
        let bytes: &'a [u8] = packet.buffer.as_ref();
        let data = &bytes[HEADER_LEN..];
        let code = packet.msg_code();
        Ok(match packet.msg_type() {
            message::ECHO_REQUEST => Icmpv6Repr::EchoRequest {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            message::ECHO_REPLY => Icmpv6Repr::EchoReply {
                ident: packet.echo_ident(),
                seq_no: packet.echo_seq_no(),
                data,
            },
            message::DST_UNREACHABLE => Icmpv6Repr::DstUnreachable {
                code,
                quoted: Quoted::parse(data)?,
            },
            message::PACKET_TOO_BIG => Icmpv6Repr::PacketTooBig {
                mtu: packet.word(),
                quoted: Quoted::parse(data)?,
            },
            message::TIME_EXCEEDED => Icmpv6Repr::TimeExceeded {
                code,
                quoted: Quoted::parse(data)?,
            },
            message::PARAM_PROBLEM => Icmpv6Repr::ParamProblem {
                code,
                pointer: packet.word(),
                quoted: Quoted::parse(data)?,
            },
            message::NEIGHBOR_SOLICIT => Icmpv6Repr::NeighborSolicit {
                target: packet.target_addr(),
                source_lladdr: find_lladdr(packet.ndp_options(), ndp_option::SOURCE_LL_ADDR)?,
            },
            message::NEIGHBOR_ADVERT => Icmpv6Repr::NeighborAdvert {
                flags: packet.neighbor_flags(),
                target: packet.target_addr(),
                target_lladdr: find_lladdr(packet.ndp_options(), ndp_option::TARGET_LL_ADDR)?,
            },
            msg_type => Icmpv6Repr::Other {
                msg_type,
                code,
                word: packet.word(),
                data,
            },
        })
    }

    /// Length of the message this emits.
    pub fn buffer_len(&self) -> usize {
        match self {
            Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. }
            | Icmpv6Repr::Other { data, .. } => HEADER_LEN + data.len(),
            Icmpv6Repr::DstUnreachable { quoted, .. }
            | Icmpv6Repr::PacketTooBig { quoted, .. }
            | Icmpv6Repr::TimeExceeded { quoted, .. }
            | Icmpv6Repr::ParamProblem { quoted, .. } => HEADER_LEN + quoted.buffer_len(),
            Icmpv6Repr::NeighborSolicit {
                source_lladdr: lladdr,
                ..
            }
            | Icmpv6Repr::NeighborAdvert {
                target_lladdr: lladdr,
                ..
            } => ND_HEADER_LEN + lladdr.map_or(0, |_| LLADDR_OPTION_LEN),
        }
    }

    /// Writes the message and its checksum under `pseudo` into a buffer exactly
    /// [`Icmpv6Repr::buffer_len`] long (the checksum covers the whole buffer).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        pseudo: &PseudoHeader,
    ) {
        let (msg_type, code, word) = match *self {
            Icmpv6Repr::EchoRequest { ident, seq_no, .. } => (
                message::ECHO_REQUEST,
                0,
                u32::from(ident) << 16 | u32::from(seq_no),
            ),
            Icmpv6Repr::EchoReply { ident, seq_no, .. } => (
                message::ECHO_REPLY,
                0,
                u32::from(ident) << 16 | u32::from(seq_no),
            ),
            Icmpv6Repr::DstUnreachable { code, .. } => (message::DST_UNREACHABLE, code, 0),
            Icmpv6Repr::PacketTooBig { mtu, .. } => (message::PACKET_TOO_BIG, 0, mtu),
            Icmpv6Repr::TimeExceeded { code, .. } => (message::TIME_EXCEEDED, code, 0),
            Icmpv6Repr::ParamProblem { code, pointer, .. } => {
                (message::PARAM_PROBLEM, code, pointer)
            }
            Icmpv6Repr::NeighborSolicit { .. } => (message::NEIGHBOR_SOLICIT, 0, 0),
            Icmpv6Repr::NeighborAdvert { flags, .. } => {
                (message::NEIGHBOR_ADVERT, 0, u32::from(flags.0 & 0xe0) << 24)
            }
            Icmpv6Repr::Other {
                msg_type,
                code,
                word,
                ..
            } => (msg_type, code, word),
        };
        packet.set_msg_type(msg_type);
        packet.set_msg_code(code);
        packet.set_word(word);
        match *self {
            Icmpv6Repr::EchoRequest { data, .. }
            | Icmpv6Repr::EchoReply { data, .. }
            | Icmpv6Repr::Other { data, .. } => {
                packet.data_mut()[..data.len()].copy_from_slice(data);
            }
            Icmpv6Repr::DstUnreachable { quoted, .. }
            | Icmpv6Repr::PacketTooBig { quoted, .. }
            | Icmpv6Repr::TimeExceeded { quoted, .. }
            | Icmpv6Repr::ParamProblem { quoted, .. } => quoted.emit(packet.data_mut()),
            Icmpv6Repr::NeighborSolicit {
                target,
                source_lladdr: lladdr,
            } => emit_neighbor(packet, target, ndp_option::SOURCE_LL_ADDR, lladdr),
            Icmpv6Repr::NeighborAdvert {
                target,
                target_lladdr: lladdr,
                ..
            } => emit_neighbor(packet, target, ndp_option::TARGET_LL_ADDR, lladdr),
        }
        packet.fill_checksum(pseudo);
    }
}

fn emit_neighbor<T: AsRef<[u8]> + AsMut<[u8]>>(
    packet: &mut Packet<T>,
    target: Ipv6Addr,
    kind: u8,
    lladdr: Option<MacAddr>,
) {
    packet.set_target_addr(target);
    if let Some(mac) = lladdr {
        let option = &mut packet.buffer.as_mut()[ND_HEADER_LEN..ND_HEADER_LEN + LLADDR_OPTION_LEN];
        option[0] = kind;
        option[1] = 1;
        option[2..].copy_from_slice(&mac.0);
    }
}

impl fmt::Display for Icmpv6Repr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Icmpv6Repr::EchoRequest { ident, seq_no, .. } => {
                write!(f, "ICMP6, echo request, id {ident}, seq {seq_no}")
            }
            Icmpv6Repr::EchoReply { ident, seq_no, .. } => {
                write!(f, "ICMP6, echo reply, id {ident}, seq {seq_no}")
            }
            Icmpv6Repr::DstUnreachable { code, quoted } => write!(
                f,
                "ICMP6, destination unreachable, code {code}, {}",
                quoted.header.dst_addr
            ),
            Icmpv6Repr::PacketTooBig { mtu, quoted } => write!(
                f,
                "ICMP6, packet too big, mtu {mtu}, {}",
                quoted.header.dst_addr
            ),
            Icmpv6Repr::TimeExceeded { code, quoted } => write!(
                f,
                "ICMP6, time exceeded, code {code}, {}",
                quoted.header.dst_addr
            ),
            Icmpv6Repr::ParamProblem { code, pointer, .. } => write!(
                f,
                "ICMP6, parameter problem, code {code}, pointer {pointer}"
            ),
            Icmpv6Repr::NeighborSolicit {
                target,
                source_lladdr,
            } => {
                write!(f, "ICMP6, neighbor solicitation, who has {target}")?;
                match source_lladdr {
                    Some(mac) => write!(f, ", source link-address {mac}"),
                    None => Ok(()),
                }
            }
            Icmpv6Repr::NeighborAdvert {
                flags,
                target,
                target_lladdr,
            } => {
                write!(f, "ICMP6, neighbor advertisement, tgt is {target}")?;
                let names = [
                    (NeighborFlags::ROUTER, "router"),
                    (NeighborFlags::SOLICITED, "solicited"),
                    (NeighborFlags::OVERRIDE, "override"),
                ];
                let set: Vec<&str> = names
                    .iter()
                    .filter(|(flag, _)| flags.contains(*flag))
                    .map(|(_, name)| *name)
                    .collect();
                if !set.is_empty() {
                    write!(f, ", Flags [{}]", set.join(", "))?;
                }
                match target_lladdr {
                    Some(mac) => write!(f, ", target link-address {mac}"),
                    None => Ok(()),
                }
            }
            Icmpv6Repr::Other { msg_type, code, .. } => {
                write!(f, "ICMP6, type {msg_type}, code {code}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::marked;
    use proptest::prelude::*;

    fn addr(text: &str) -> Ipv6Addr {
        text.parse().unwrap()
    }

    fn pseudo(src: &str, dst: &str) -> PseudoHeader {
        PseudoHeader::V6 {
            src: addr(src),
            dst: addr(dst),
        }
    }

    /// A captured neighbour solicitation (Linux, 2001:db8::1 -> ff02::1:ff00:2).
    static SOLICIT: [u8; 32] = [
        0x87, // type neighbour solicitation
        0x00, // code 0
        0xcd, 0xa7, // checksum
        0x00, 0x00, 0x00, 0x00, // reserved
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // target 2001:db8::2
        0x01, // option: source link-layer address
        0x01, // length 1 (8 bytes)
        0xba, 0x7f, 0xa3, 0x06, 0xf2, 0xf9, // ba:7f:a3:06:f2:f9
    ];

    /// The captured advertisement answering it (2001:db8::2 -> 2001:db8::1).
    static ADVERT: [u8; 32] = [
        0x88, // type neighbour advertisement
        0x00, // code 0
        0x06, 0xab, // checksum
        0x60, 0x00, 0x00, 0x00, // flags S and O, reserved
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // target 2001:db8::2
        0x02, // option: target link-layer address
        0x01, // length 1
        0x7e, 0x7d, 0x87, 0xd2, 0x7f, 0x78, // 7e:7d:87:d2:7f:78
    ];

    /// A captured port unreachable (2001:db8::2 -> 2001:db8::1) quoting a UDP datagram.
    static PORT_UNREACHABLE: [u8; 58] = [
        0x01, // type destination unreachable
        0x04, // code port unreachable
        0x0f, 0x39, // checksum
        0x00, 0x00, 0x00, 0x00, // unused
        // quoted fixed header: flow label 0x322a7, payload 10, UDP, hop limit 64
        0x60, 0x03, 0x22, 0xa7, 0x00, 0x0a, 0x11, 0x40, //
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // 2001:db8::1
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // 2001:db8::2
        // quoted UDP: 59632 -> 9999, length 10, checksum 0x2bfc, "hi"
        0xe8, 0xf0, 0x27, 0x0f, 0x00, 0x0a, 0x2b, 0xfc, b'h', b'i',
    ];

    /// A captured echo request (Linux ping socket, 2001:db8::1 -> 2001:db8::2).
    static ECHO_REQUEST: [u8; 12] = [
        0x80, // type echo request
        0x00, // code 0
        0x3f, 0x19, // checksum
        0x20, 0x63, // identifier 8291
        0x00, 0x01, // sequence number 1
        b'a', b'b', b'c', b'd', // data
    ];

    fn solicit_repr() -> Icmpv6Repr<'static> {
        Icmpv6Repr::NeighborSolicit {
            target: addr("2001:db8::2"),
            source_lladdr: Some(MacAddr([0xba, 0x7f, 0xa3, 0x06, 0xf2, 0xf9])),
        }
    }

    fn advert_repr() -> Icmpv6Repr<'static> {
        Icmpv6Repr::NeighborAdvert {
            flags: NeighborFlags::SOLICITED.with(NeighborFlags::OVERRIDE),
            target: addr("2001:db8::2"),
            target_lladdr: Some(MacAddr([0x7e, 0x7d, 0x87, 0xd2, 0x7f, 0x78])),
        }
    }

    fn unreachable_repr() -> Icmpv6Repr<'static> {
        Icmpv6Repr::DstUnreachable {
            code: unreachable::PORT,
            quoted: Quoted {
                header: Ipv6Repr {
                    src_addr: addr("2001:db8::1"),
                    dst_addr: addr("2001:db8::2"),
                    next_header: protocol::UDP,
                    payload_len: 10,
                    hop_limit: 64,
                    traffic_class: 0,
                    flow_label: 0x322a7,
                },
                data: &PORT_UNREACHABLE[48..],
            },
        }
    }

    fn echo_repr() -> Icmpv6Repr<'static> {
        Icmpv6Repr::EchoRequest {
            ident: 0x2063,
            seq_no: 1,
            data: b"abcd",
        }
    }

    fn cases() -> [(&'static [u8], Icmpv6Repr<'static>, PseudoHeader); 4] {
        [
            (
                &SOLICIT,
                solicit_repr(),
                pseudo("2001:db8::1", "ff02::1:ff00:2"),
            ),
            (&ADVERT, advert_repr(), pseudo("2001:db8::2", "2001:db8::1")),
            (
                &PORT_UNREACHABLE,
                unreachable_repr(),
                pseudo("2001:db8::2", "2001:db8::1"),
            ),
            (
                &ECHO_REQUEST,
                echo_repr(),
                pseudo("2001:db8::1", "2001:db8::2"),
            ),
        ]
    }

    #[test]
    fn deconstructs_a_captured_solicitation_and_advertisement() {
        let ns = Packet::new_checked(&SOLICIT[..]).unwrap();
        assert_eq!((ns.msg_type(), ns.msg_code()), (135, 0));
        assert_eq!(ns.checksum(), 0xcda7);
        assert_eq!(ns.target_addr(), addr("2001:db8::2"));
        let options: Vec<_> = ns.ndp_options().collect();
        assert_eq!(
            options,
            [Ok(NdpOption {
                kind: ndp_option::SOURCE_LL_ADDR,
                data: &SOLICIT[26..]
            })]
        );
        let na = Packet::new_checked(&ADVERT[..]).unwrap();
        assert_eq!(
            na.neighbor_flags(),
            NeighborFlags::SOLICITED.with(NeighborFlags::OVERRIDE)
        );
        assert_eq!(na.target_addr(), addr("2001:db8::2"));
    }

    #[test]
    fn every_captured_message_verifies_parses_and_emits_byte_for_byte() {
        for (golden, repr, pseudo) in cases() {
            let packet = Packet::new_checked(golden).unwrap();
            assert!(packet.verify_checksum(&pseudo), "{repr}");
            assert_eq!(Icmpv6Repr::parse(&packet), Ok(repr));
            let mut bytes = marked(repr.buffer_len());
            repr.emit(&mut Packet::new_unchecked(&mut bytes), &pseudo);
            assert_eq!(bytes, golden, "{repr}");
        }
    }

    #[test]
    fn constructs_an_echo_request_over_marked_bytes() {
        let mut bytes = marked(ECHO_REQUEST.len());
        let mut packet = Packet::new_unchecked(&mut bytes);
        packet.set_msg_type(message::ECHO_REQUEST);
        packet.set_msg_code(0);
        packet.set_echo_ident(0x2063);
        packet.set_echo_seq_no(1);
        packet.data_mut().copy_from_slice(b"abcd");
        packet.fill_checksum(&pseudo("2001:db8::1", "2001:db8::2"));
        assert_eq!(bytes, ECHO_REQUEST);
    }

    #[test]
    fn impossible_lengths_are_refused() {
        assert_eq!(
            Packet::new_checked(&ECHO_REQUEST[..7]).unwrap_err(),
            truncated(Header::Icmpv6, 8, 7)
        );
        assert_eq!(
            Packet::new_checked(&SOLICIT[..23]).unwrap_err(),
            truncated(Header::Icmpv6, 24, 23)
        );
        let quoted_header_cut = Packet::new_checked(&PORT_UNREACHABLE[..40]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&quoted_header_cut),
            Err(truncated(Header::Ipv6, 40, 32))
        );
        let quoted_payload_cut = Packet::new_checked(&PORT_UNREACHABLE[..52]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&quoted_payload_cut),
            Err(truncated(Header::Icmpv6, 56, 52))
        );
    }

    #[test]
    fn an_option_of_length_zero_is_an_error() {
        let mut bytes = SOLICIT;
        bytes[25] = 0;
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&packet),
            Err(Error::BadOption {
                header: Header::NdpOption,
                kind: 1,
                offset: 0
            })
        );
        let mut long = SOLICIT;
        long[25] = 2;
        let packet = Packet::new_checked(&long[..]).unwrap();
        assert!(Icmpv6Repr::parse(&packet).is_err());
    }

    #[test]
    fn router_advertisements_stay_raw() {
        let bytes = [134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0];
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            Icmpv6Repr::parse(&packet),
            Ok(Icmpv6Repr::Other {
                msg_type: 134,
                code: 0,
                word: 0x4000_0708,
                data: &bytes[8..]
            })
        );
        assert!(message::is_neighbor_discovery(134) && !message::is_error(134));
    }

    #[test]
    fn displays_like_tcpdump() {
        assert_eq!(
            advert_repr().to_string(),
            "ICMP6, neighbor advertisement, tgt is 2001:db8::2, Flags [solicited, override], \
             target link-address 7e:7d:87:d2:7f:78"
        );
        assert_eq!(
            solicit_repr().to_string(),
            "ICMP6, neighbor solicitation, who has 2001:db8::2, source link-address ba:7f:a3:06:f2:f9"
        );
    }

    /// What a generated message is, apart from the data it borrows.
    #[derive(Clone, Debug)]
    struct Shape {
        kind: u8,
        code: u8,
        word: u32,
        addrs: ([u8; 16], [u8; 16]),
        mac: Option<[u8; 6]>,
        payload_len: usize,
    }

    fn shape() -> impl Strategy<Value = Shape> {
        (
            0u8..9,
            any::<u8>(),
            any::<u32>(),
            any::<([u8; 16], [u8; 16])>(),
            any::<Option<[u8; 6]>>(),
            8usize..2000,
        )
            .prop_map(|(kind, code, word, addrs, mac, payload_len)| Shape {
                kind,
                code,
                word,
                addrs,
                mac,
                payload_len,
            })
    }

    fn build<'a>(s: &Shape, data: &'a [u8]) -> Icmpv6Repr<'a> {
        let quoted = Quoted {
            header: Ipv6Repr {
                src_addr: s.addrs.0.into(),
                dst_addr: s.addrs.1.into(),
                next_header: s.code,
                payload_len: s.payload_len,
                hop_limit: 1,
                traffic_class: 0,
                flow_label: s.word & 0xf_ffff,
            },
            data,
        };
        let (ident, seq_no) = ((s.word >> 16) as u16, s.word as u16);
        let target = Ipv6Addr::from(s.addrs.0);
        let lladdr = s.mac.map(MacAddr);
        match s.kind {
            0 => Icmpv6Repr::EchoRequest {
                ident,
                seq_no,
                data,
            },
            1 => Icmpv6Repr::EchoReply {
                ident,
                seq_no,
                data,
            },
            2 => Icmpv6Repr::DstUnreachable {
                code: s.code,
                quoted,
            },
            3 => Icmpv6Repr::PacketTooBig {
                mtu: s.word,
                quoted,
            },
            4 => Icmpv6Repr::TimeExceeded {
                code: s.code,
                quoted,
            },
            5 => Icmpv6Repr::ParamProblem {
                code: s.code,
                pointer: s.word,
                quoted,
            },
            6 => Icmpv6Repr::NeighborSolicit {
                target,
                source_lladdr: lladdr,
            },
            7 => Icmpv6Repr::NeighborAdvert {
                flags: NeighborFlags(s.code & 0xe0),
                target,
                target_lladdr: lladdr,
            },
            // 130..=132 are MLD: neither echo, error nor neighbour discovery.
            _ => Icmpv6Repr::Other {
                msg_type: 130 + s.code % 3,
                code: s.code,
                word: s.word,
                data,
            },
        }
    }

    proptest! {
        #[test]
        fn emitted_messages_parse_back(shape in shape(), data in prop::collection::vec(any::<u8>(), 8..40)) {
            let repr = build(&shape, &data);
            let pseudo = PseudoHeader::V6 { src: shape.addrs.1.into(), dst: shape.addrs.0.into() };
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut bytes), &pseudo);
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            prop_assert!(packet.verify_checksum(&pseudo));
            prop_assert_eq!(Icmpv6Repr::parse(&packet), Ok(repr));
        }
    }
}
