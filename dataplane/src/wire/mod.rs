//! Packet bytes: views and representations of the headers a firewall reads and writes, the fast
//! per-packet classifier ([`meta`]), frame builders ([`build`]), a tcpdump-style [`describe`] and the
//! Internet checksum. This module
//! owns byte layouts only; it knows nothing of flows, states, rules or ports.
//!
//! # The wire contract
//!
//! Every header follows the same shape, so that a reader who knows one file knows them all:
//!
//! - A `Packet<T: AsRef<[u8]>>` view wraps a buffer without copying. Field offsets live in a private `field`
//!   module of byte ranges, and `HEADER_LEN` is derived from the last fixed field, never typed twice.
//!   Multi-byte fields are read from bytes in network order; nothing is ever cast from memory.
//! - `Packet::new_unchecked` wraps any buffer; `Packet::check_len` validates every length the view's
//!   accessors rely on (including length fields inside the header); `Packet::new_checked` is both. **Once
//!   `check_len` has succeeded, no getter and no payload accessor can panic.** Setters that change a length
//!   field (each one says so) void that promise until `check_len` is run again. Untrusted bytes must only
//!   ever be wrapped with `new_checked`.
//! - Getters need `T: AsRef<[u8]>`, setters `T: AsMut<[u8]>`, and payload accessors borrow from the
//!   buffer.
//! - A small `Copy` `Repr` carries the meaning of a header rather than its bytes. `Repr::parse` takes a
//!   checked view and never panics; `Repr::emit` never panics when given a view over at least
//!   `Repr::buffer_len()` bytes. Emit into a view made with `new_unchecked`: a recycled buffer (an mbuf)
//!   still holds an old packet, and checking it before writing would read stale lengths.
//! - Views and `Repr`s implement `Display` in the style of tcpdump.
//! - Every failure is a variant of the one [`Error`] enum, which says what was wrong and where. The hot
//!   path does not use it: [`meta::parse_meta`] reports drops as [`meta::Malformed`], a field-less enum that
//!   indexes the worker's counters.
//!
//! Checksums are verified only where a caller asks (a [`checksum::ChecksumCaps`] or an explicit
//! `verify_checksum`), because NICs usually verify them before software sees the packet.

pub mod arp;
pub mod build;
#[cfg(test)]
mod captured;
pub mod checksum;
pub mod describe;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod meta;
pub mod tcp;
pub mod udp;
pub mod vrrp;

use std::fmt;
use std::ops::Range;

/// A fixed field: a range of byte offsets within a header.
type Field = Range<usize>;

/// The header a wire [`Error`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Header {
    /// Ethernet II.
    Ethernet,
    /// An IEEE 802.1Q VLAN tag.
    Vlan,
    /// ARP.
    Arp,
    /// IPv4.
    Ipv4,
    /// The IPv6 fixed header.
    Ipv6,
    /// An IPv6 extension header.
    Ipv6Extension,
    /// TCP.
    Tcp,
    /// A TCP option.
    TcpOption,
    /// UDP.
    Udp,
    /// ICMP for IPv4.
    Icmpv4,
    /// ICMPv6.
    Icmpv6,
    /// A Neighbour Discovery option (RFC 4861 section 4.6).
    NdpOption,
    /// VRRP (RFC 5798).
    Vrrp,
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Header::Ethernet => "Ethernet",
            Header::Vlan => "802.1Q tag",
            Header::Arp => "ARP",
            Header::Ipv4 => "IPv4",
            Header::Ipv6 => "IPv6",
            Header::Ipv6Extension => "IPv6 extension header",
            Header::Tcp => "TCP",
            Header::TcpOption => "TCP option",
            Header::Udp => "UDP",
            Header::Icmpv4 => "ICMP",
            Header::Icmpv6 => "ICMPv6",
            Header::NdpOption => "ND option",
            Header::Vrrp => "VRRP",
        })
    }
}

/// Why bytes could not be read or written as a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer ends before the header (or a part its own fields announce) does.
    #[error("{header} truncated: needs {need} bytes, has {have}")]
    Truncated {
        /// The header being read.
        header: Header,
        /// Bytes the header needs from its start.
        need: usize,
        /// Bytes the buffer has from the header's start.
        have: usize,
    },
    /// More than one VLAN tag (802.1ad QinQ or stacked 802.1Q); only one tag is supported.
    #[error(
        "stacked VLAN tags (ethertype {ethertype:#06x} inside or outside a tag) are not supported"
    )]
    VlanStacked {
        /// The ethertype that announced the second tag.
        ethertype: u16,
    },
    /// The version field is not the one the ethertype or context announced.
    #[error("{header} version {version} where {expected} was expected")]
    BadVersion {
        /// The header being read.
        header: Header,
        /// The version found.
        version: u8,
        /// The version expected.
        expected: u8,
    },
    /// A header-length field (IPv4 IHL, TCP data offset, an option length) is below the minimum or
    /// otherwise impossible.
    #[error("{header} header length {len} is impossible")]
    BadHeaderLen {
        /// The header being read.
        header: Header,
        /// The length in bytes the field announced.
        len: usize,
    },
    /// A total-length field (IPv4 total length, IPv6 payload length, UDP length) disagrees with the header
    /// or with the bytes present.
    #[error(
        "{header} length field says {len} bytes, which does not fit the header and the {have} bytes present"
    )]
    BadLength {
        /// The header being read.
        header: Header,
        /// The length in bytes the field announced.
        len: usize,
        /// The bytes present from the header's start.
        have: usize,
    },
    /// A checksum does not verify.
    #[error("{0} checksum does not verify")]
    BadChecksum(Header),
    /// The IPv6 extension header chain is longer than we walk.
    #[error("more than {limit} IPv6 extension headers")]
    ExtensionChainTooLong {
        /// The most extension headers walked.
        limit: usize,
    },
    /// A hop-by-hop options header that does not follow the IPv6 header directly (RFC 8200 section 4.3).
    #[error("IPv6 hop-by-hop options header not first in the chain")]
    HopByHopNotFirst,
    /// An option whose length is impossible for its kind or runs past the options area.
    #[error("{header} kind {kind} at offset {offset} has a bad length")]
    BadOption {
        /// The option family.
        header: Header,
        /// The option kind.
        kind: u8,
        /// Offset of the option from the start of the options area.
        offset: usize,
    },
    /// A well-formed header of a variant we do not handle (for example ARP over something other than
    /// Ethernet and IPv4).
    #[error("{header}: unsupported {what}")]
    Unsupported {
        /// The header being read.
        header: Header,
        /// What is unsupported.
        what: &'static str,
    },
    /// A message type that does not carry what the caller asked for.
    #[error("{header}: message type {msg_type} is not {expected}")]
    WrongMessage {
        /// The header being read.
        header: Header,
        /// The type found.
        msg_type: u8,
        /// What was expected.
        expected: &'static str,
    },
    /// A frame to build does not fit the buffer given.
    #[error("buffer of {have} bytes is too small for a {need}-byte frame")]
    BufferTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A payload too long for the length field that must describe it.
    #[error("{header} payload of {len} bytes exceeds the {max}-byte maximum")]
    PayloadTooLong {
        /// The header whose length field overflows.
        header: Header,
        /// The payload length.
        len: usize,
        /// The largest length the header can describe.
        max: usize,
    },
}

/// The wire layer's result.
pub type Result<T> = std::result::Result<T, Error>;

/// The `Truncated` error for `header` when `have` bytes are present and `need` are required.
fn truncated(header: Header, need: usize, have: usize) -> Error {
    Error::Truncated { header, need, have }
}

/// Reads a big-endian `u16` from the first two bytes. Callers pass field ranges of a checked view.
#[inline]
fn read_u16(bytes: &[u8]) -> u16 {
    u16::from_be_bytes([bytes[0], bytes[1]])
}

/// Reads a big-endian `u32` from the first four bytes. Callers pass field ranges of a checked view.
#[inline]
fn read_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Writes a big-endian `u16` into the first two bytes.
#[inline]
fn write_u16(bytes: &mut [u8], value: u16) {
    bytes[..2].copy_from_slice(&value.to_be_bytes());
}

/// Writes a big-endian `u32` into the first four bytes.
#[inline]
fn write_u32(bytes: &mut [u8], value: u32) {
    bytes[..4].copy_from_slice(&value.to_be_bytes());
}

/// Bytes filled with a marker, so that a field an emitter forgot to write shows up in a comparison.
#[cfg(test)]
fn marked(len: usize) -> Vec<u8> {
    vec![0xa5; len]
}
