//! The 20-byte pfsync header (`struct pfsync_header`, pfsync spec section 2): version, the packet's length
//! and a checksum field OpenBSD leaves zero. Checking the header against the received bytes is
//! `PfsyncPacket`'s job; this view only reads and writes the fields.

use std::fmt;

use super::{Error, Result, fixed_view, view_fields};

/// The only version Tandem speaks (`PFSYNC_VERSION`); FreeBSD sends 5 and the two do not interoperate.
pub const VERSION: u8 = 6;

mod field {
    use std::ops::Range;

    pub const VERSION: usize = 0;
    // Byte 1 is padding.
    pub const LEN: Range<usize> = 2..4;
    pub const CHECKSUM: Range<usize> = 4..20;
}

/// Size of the header.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

fixed_view!(
    /// A view of a pfsync header.
    Header,
    HEADER_LEN
);

view_fields!(Header {
    /// The protocol version.
    version, set_version: u8 = field::VERSION;
    /// Bytes from the start of this header to the end of the packet, IP header excluded.
    len, set_len: u16 = field::LEN;
    /// FreeBSD's ruleset MD5; zero from OpenBSD and ignored by it.
    checksum, set_checksum: [u8; 16] = field::CHECKSUM;
});

impl<T: AsRef<[u8]> + AsMut<[u8]>> Header<T> {
    /// Zeroes the padding byte.
    fn clear_padding(&mut self) {
        self.buffer.as_mut()[1] = 0;
    }
}

/// A pfsync header's meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderRepr {
    /// The packet's length, this header included.
    pub len: u16,
    /// The checksum field, kept so a FreeBSD peer's value survives a round trip; Tandem sends zeros.
    pub checksum: [u8; 16],
}

impl HeaderRepr {
    /// Reads a header, refusing any version but 6.
    pub fn parse<T: AsRef<[u8]>>(header: &Header<T>) -> Result<HeaderRepr> {
        let version = header.version();
        if version != VERSION {
            return Err(Error::BadVersion(version));
        }
        Ok(HeaderRepr {
            len: header.len(),
            checksum: header.checksum(),
        })
    }

    /// Bytes the header takes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header, version 6.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, header: &mut Header<T>) {
        header.set_version(VERSION);
        header.clear_padding();
        header.set_len(self.len);
        header.set_checksum(self.checksum);
    }
}

impl fmt::Display for HeaderRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pfsync v{VERSION} len {}", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A header for a 1480-byte packet from an OpenBSD sender.
    #[rustfmt::skip]
    static GOLDEN: [u8; 20] = [
        0x06, // version 6
        0x00, // padding
        0x05, 0xc8, // len 1480
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // pfcksum: zero from OpenBSD
    ];

    #[test]
    fn deconstruct() {
        let header = Header::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(header.version(), 6);
        assert_eq!(header.len(), 1480);
        assert_eq!(header.checksum(), [0; 16]);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 20];
        let mut header = Header::new_unchecked(&mut bytes[..]);
        header.set_version(6);
        header.clear_padding();
        header.set_len(1480);
        header.set_checksum([0; 16]);
        assert_eq!(bytes, GOLDEN);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let repr = HeaderRepr::parse(&Header::new_checked(&GOLDEN[..]).unwrap()).unwrap();
        assert_eq!(
            repr,
            HeaderRepr {
                len: 1480,
                checksum: [0; 16]
            }
        );
        let mut bytes = [0xa5u8; 20];
        repr.emit(&mut Header::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, GOLDEN);
        assert_eq!(repr.to_string(), "pfsync v6 len 1480");
    }

    #[test]
    fn freebsd_version_is_refused() {
        let mut bytes = GOLDEN;
        bytes[0] = 5;
        let header = Header::new_checked(&bytes[..]).unwrap();
        assert_eq!(HeaderRepr::parse(&header), Err(Error::BadVersion(5)));
    }

    #[test]
    fn impossible_len() {
        assert_eq!(
            Header::new_checked(&GOLDEN[..19]),
            Err(Error::Truncated {
                needed: 20,
                available: 19
            })
        );
    }
}
