//! TDB (`struct pfsync_tdb`, 52 bytes, pfsync spec section 4.4): an IPsec SA's replay counter and byte count,
//! naming the SA by SPI, destination (a 28-byte BSD `sockaddr_union`) and security protocol. Tandem does not
//! do IPsec; it parses and emits TDB so that captures decode and a peer's sections round-trip.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Action, Error, Result, fixed_view, view_fields};
use crate::identity::AddressFamily;

mod field {
    use std::ops::Range;

    pub const SPI: Range<usize> = 0..4;
    // The destination, a BSD sockaddr_union: sockaddr_in or sockaddr_in6 (28 bytes, the larger).
    pub const DST: Range<usize> = 4..32;
    pub const DST_LEN: usize = 4;
    pub const DST_FAMILY: usize = 5;
    pub const DST_PORT: Range<usize> = 6..8;
    // sockaddr_in: the address follows the port (then 8 bytes of sin_zero).
    pub const DST_INET_ADDR: Range<usize> = 8..12;
    // sockaddr_in6: flow info, address, scope id.
    pub const DST_FLOWINFO: Range<usize> = 8..12;
    pub const DST_INET6_ADDR: Range<usize> = 12..28;
    pub const DST_SCOPE_ID: Range<usize> = 28..32;
    pub const RPL: Range<usize> = 32..40;
    pub const CUR_BYTES: Range<usize> = 40..48;
    pub const SPROTO: usize = 48;
    pub const UPDATES: usize = 49;
    pub const RDOMAIN: Range<usize> = 50..52;
}

/// Size of the message.
pub const MESSAGE_LEN: usize = field::RDOMAIN.end;

/// OpenBSD's `SPI_RESERVED_MAX`: SPIs up to it are reserved and refused.
const SPI_RESERVED_MAX: u32 = 255;

fixed_view!(
    /// A view of a TDB message.
    Tdb,
    MESSAGE_LEN
);

view_fields!(Tdb {
    /// Security parameter index.
    spi, set_spi: u32 = field::SPI;
    /// The destination's `sa_len`.
    dst_len, set_dst_len: u8 = field::DST_LEN;
    /// The destination's `sa_family`, an OpenBSD number.
    dst_family, set_dst_family: u8 = field::DST_FAMILY;
    /// The destination's port.
    dst_port, set_dst_port: u16 = field::DST_PORT;
    /// IPv4 destination address (`sin_addr`).
    dst_inet_addr, set_dst_inet_addr: [u8; 4] = field::DST_INET_ADDR;
    /// IPv6 flow info (`sin6_flowinfo`).
    dst_flowinfo, set_dst_flowinfo: u32 = field::DST_FLOWINFO;
    /// IPv6 destination address (`sin6_addr`).
    dst_inet6_addr, set_dst_inet6_addr: [u8; 16] = field::DST_INET6_ADDR;
    /// IPv6 scope id (`sin6_scope_id`).
    dst_scope_id, set_dst_scope_id: u32 = field::DST_SCOPE_ID;
    /// Replay counter.
    rpl, set_rpl: u64 = field::RPL;
    /// Bytes processed.
    cur_bytes, set_cur_bytes: u64 = field::CUR_BYTES;
    /// Security protocol (50 ESP, 51 AH, ...).
    sproto, set_sproto: u8 = field::SPROTO;
    /// Unused, 0.
    updates, set_updates: u8 = field::UPDATES;
    /// Routing domain.
    rdomain, set_rdomain: u16 = field::RDOMAIN;
});

impl<T: AsRef<[u8]> + AsMut<[u8]>> Tdb<T> {
    /// Zeroes the whole destination, so the bytes one family does not use are zero.
    pub fn clear_dst(&mut self) {
        self.buffer.as_mut()[field::DST].fill(0);
    }
}

/// An SA's destination as a BSD socket address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TdbDestination {
    /// `sockaddr_in`.
    Inet {
        /// `sin_len` (16 from OpenBSD).
        len: u8,
        /// `sin_port`.
        port: u16,
        /// `sin_addr`.
        addr: Ipv4Addr,
    },
    /// `sockaddr_in6`.
    Inet6 {
        /// `sin6_len` (28 from OpenBSD).
        len: u8,
        /// `sin6_port`.
        port: u16,
        /// `sin6_flowinfo`.
        flowinfo: u32,
        /// `sin6_addr`.
        addr: Ipv6Addr,
        /// `sin6_scope_id`.
        scope_id: u32,
    },
}

impl TdbDestination {
    /// The family.
    pub const fn family(&self) -> AddressFamily {
        match self {
            TdbDestination::Inet { .. } => AddressFamily::Inet,
            TdbDestination::Inet6 { .. } => AddressFamily::Inet6,
        }
    }
}

/// A TDB message's meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TdbRepr {
    /// Security parameter index.
    pub spi: u32,
    /// Destination.
    pub dst: TdbDestination,
    /// Replay counter.
    pub rpl: u64,
    /// Bytes processed.
    pub cur_bytes: u64,
    /// Security protocol.
    pub sproto: u8,
    /// `updates`, 0.
    pub updates: u8,
    /// Routing domain.
    pub rdomain: u16,
}

impl TdbRepr {
    /// Reads the message; a destination family other than 2 or 24 is an error.
    pub fn parse<T: AsRef<[u8]>>(message: &Tdb<T>) -> Result<TdbRepr> {
        let len = message.dst_len();
        let port = message.dst_port();
        let dst = match AddressFamily::from_wire(message.dst_family()) {
            Some(AddressFamily::Inet) => TdbDestination::Inet {
                len,
                port,
                addr: Ipv4Addr::from(message.dst_inet_addr()),
            },
            Some(AddressFamily::Inet6) => TdbDestination::Inet6 {
                len,
                port,
                flowinfo: message.dst_flowinfo(),
                addr: Ipv6Addr::from(message.dst_inet6_addr()),
                scope_id: message.dst_scope_id(),
            },
            None => {
                return Err(Error::BadAddressFamily {
                    action: Action::Tdb,
                    field: "dst.sa_family",
                    value: message.dst_family(),
                });
            }
        };
        Ok(TdbRepr {
            spi: message.spi(),
            dst,
            rpl: message.rpl(),
            cur_bytes: message.cur_bytes(),
            sproto: message.sproto(),
            updates: message.updates(),
            rdomain: message.rdomain(),
        })
    }

    /// Bytes the message takes.
    pub const fn buffer_len(&self) -> usize {
        MESSAGE_LEN
    }

    /// Writes the message; the destination bytes its family does not use are zeroed.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, message: &mut Tdb<T>) {
        message.set_spi(self.spi);
        message.clear_dst();
        message.set_dst_family(self.dst.family().to_wire());
        match self.dst {
            TdbDestination::Inet { len, port, addr } => {
                message.set_dst_len(len);
                message.set_dst_port(port);
                message.set_dst_inet_addr(addr.octets());
            }
            TdbDestination::Inet6 {
                len,
                port,
                flowinfo,
                addr,
                scope_id,
            } => {
                message.set_dst_len(len);
                message.set_dst_port(port);
                message.set_dst_flowinfo(flowinfo);
                message.set_dst_inet6_addr(addr.octets());
                message.set_dst_scope_id(scope_id);
            }
        }
        message.set_rpl(self.rpl);
        message.set_cur_bytes(self.cur_bytes);
        message.set_sproto(self.sproto);
        message.set_updates(self.updates);
        message.set_rdomain(self.rdomain);
    }

    /// OpenBSD's check (`pfsync_update_net_tdb`): the SPI must not be reserved (above 255). OpenBSD counts a
    /// refusal as `badstate` rather than `badval`; the message is skipped either way.
    pub fn validate(&self) -> Result<()> {
        if self.spi <= SPI_RESERVED_MAX {
            return Err(Error::BadValue {
                action: Action::Tdb,
                field: "spi",
                value: self.spi,
            });
        }
        Ok(())
    }
}

impl fmt::Display for TdbRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spi {:#010x} dst ", self.spi)?;
        match self.dst {
            TdbDestination::Inet { addr, .. } => write!(f, "{addr}")?,
            TdbDestination::Inet6 { addr, .. } => write!(f, "{addr}")?,
        }
        write!(
            f,
            " sproto {} rpl {} bytes {} rdomain {}",
            self.sproto, self.rpl, self.cur_bytes, self.rdomain
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // An ESP SA towards 2001:db8::5, field by field (spec 4.4).
    #[rustfmt::skip]
    pub(crate) static GOLDEN_INET6: [u8; 52] = [
        0x00, 0x00, 0x12, 0x34, // @0 spi 0x1234
        28, // @4 dst.sin6_len 28
        24, // @5 dst.sin6_family AF_INET6, OpenBSD's 24
        0x00, 0x00, // @6 dst.sin6_port 0
        0x00, 0x00, 0x00, 0x00, // @8 dst.sin6_flowinfo 0
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05, // @12 dst.sin6_addr 2001:db8::5
        0x00, 0x00, 0x00, 0x03, // @28 dst.sin6_scope_id 3
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00, // @32 rpl 2^32 + 16384
        0x00, 0x00, 0x00, 0x00, 0x3b, 0x9a, 0xca, 0x00, // @40 cur_bytes 1e9
        50, // @48 sproto ESP
        0, // @49 updates
        0x00, 0x02, // @50 rdomain 2
    ];

    // The same SA towards 192.0.2.9: sockaddr_in, then zeros to the end of the union.
    #[rustfmt::skip]
    pub(crate) static GOLDEN_INET: [u8; 52] = [
        0x00, 0x00, 0x12, 0x34, // @0 spi 0x1234
        16, // @4 dst.sin_len 16
        2, // @5 dst.sin_family AF_INET
        0x11, 0x94, // @6 dst.sin_port 4500
        192, 0, 2, 9, // @8 dst.sin_addr 192.0.2.9
        0, 0, 0, 0, 0, 0, 0, 0, // @12 dst.sin_zero
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // @20 rest of the sockaddr_union
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // @32 rpl 7
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, // @40 cur_bytes 256
        51, // @48 sproto AH
        0, // @49 updates
        0x00, 0x00, // @50 rdomain 0
    ];

    pub(crate) fn golden_inet6() -> TdbRepr {
        TdbRepr {
            spi: 0x1234,
            dst: TdbDestination::Inet6 {
                len: 28,
                port: 0,
                flowinfo: 0,
                addr: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5),
                scope_id: 3,
            },
            rpl: (1 << 32) + 16384,
            cur_bytes: 1_000_000_000,
            sproto: 50,
            updates: 0,
            rdomain: 2,
        }
    }

    pub(crate) fn golden_inet() -> TdbRepr {
        TdbRepr {
            spi: 0x1234,
            dst: TdbDestination::Inet {
                len: 16,
                port: 4500,
                addr: Ipv4Addr::new(192, 0, 2, 9),
            },
            rpl: 7,
            cur_bytes: 256,
            sproto: 51,
            updates: 0,
            rdomain: 0,
        }
    }

    #[test]
    fn deconstruct() {
        let message = Tdb::new_checked(&GOLDEN_INET6[..]).unwrap();
        assert_eq!(message.spi(), 0x1234);
        assert_eq!(message.dst_len(), 28);
        assert_eq!(message.dst_family(), 24);
        assert_eq!(message.dst_port(), 0);
        assert_eq!(message.dst_flowinfo(), 0);
        assert_eq!(message.dst_inet6_addr()[..4], [0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(message.dst_scope_id(), 3);
        assert_eq!(message.rpl(), (1 << 32) + 16384);
        assert_eq!(message.cur_bytes(), 1_000_000_000);
        assert_eq!(message.sproto(), 50);
        assert_eq!(message.updates(), 0);
        assert_eq!(message.rdomain(), 2);
        let message = Tdb::new_checked(&GOLDEN_INET[..]).unwrap();
        assert_eq!(message.dst_family(), 2);
        assert_eq!(message.dst_port(), 4500);
        assert_eq!(message.dst_inet_addr(), [192, 0, 2, 9]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 52];
        let mut message = Tdb::new_unchecked(&mut bytes[..]);
        message.set_spi(0x1234);
        message.clear_dst();
        message.set_dst_len(16);
        message.set_dst_family(2);
        message.set_dst_port(4500);
        message.set_dst_inet_addr([192, 0, 2, 9]);
        message.set_rpl(7);
        message.set_cur_bytes(256);
        message.set_sproto(51);
        message.set_updates(0);
        message.set_rdomain(0);
        assert_eq!(bytes, GOLDEN_INET);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        for (golden, expected) in [
            (&GOLDEN_INET6, golden_inet6()),
            (&GOLDEN_INET, golden_inet()),
        ] {
            let repr = TdbRepr::parse(&Tdb::new_checked(&golden[..]).unwrap()).unwrap();
            assert_eq!(repr, expected);
            let mut bytes = [0xa5u8; 52];
            repr.emit(&mut Tdb::new_unchecked(&mut bytes[..]));
            assert_eq!(&bytes, golden);
        }
        assert_eq!(
            golden_inet6().to_string(),
            "spi 0x00001234 dst 2001:db8::5 sproto 50 rpl 4294983680 bytes 1000000000 rdomain 2"
        );
    }

    #[test]
    fn destination_family_must_be_openbsd_inet_or_inet6() {
        let mut bytes = GOLDEN_INET6;
        bytes[5] = 28; // FreeBSD's AF_INET6
        assert_eq!(
            TdbRepr::parse(&Tdb::new_checked(&bytes[..]).unwrap()),
            Err(Error::BadAddressFamily {
                action: Action::Tdb,
                field: "dst.sa_family",
                value: 28
            })
        );
    }

    #[test]
    fn reserved_spis_are_refused() {
        let mut repr = golden_inet();
        assert_eq!(repr.validate(), Ok(()));
        repr.spi = 255;
        assert!(matches!(
            repr.validate(),
            Err(Error::BadValue {
                field: "spi",
                value: 255,
                ..
            })
        ));
        repr.spi = 256;
        assert_eq!(repr.validate(), Ok(()));
    }

    #[test]
    fn impossible_len() {
        assert_eq!(
            Tdb::new_checked(&GOLDEN_INET[..51]),
            Err(Error::Truncated {
                needed: 52,
                available: 51
            })
        );
    }
}
