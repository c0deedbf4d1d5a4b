//! CLR (`struct pfsync_clr`, 20 bytes, pfsync spec section 4.4): "I flushed my states", optionally only
//! those on one interface. The receiver removes every state with that creator id.

use std::fmt;

use super::{InterfaceName, Result, fixed_view, view_fields};
use crate::identity::CreatorId;

mod field {
    use std::ops::Range;

    pub const IFNAME: Range<usize> = 0..16;
    pub const CREATORID: Range<usize> = 16..20;
}

/// Size of the message.
pub const MESSAGE_LEN: usize = field::CREATORID.end;

fixed_view!(
    /// A view of a CLR message.
    Clr,
    MESSAGE_LEN
);

view_fields!(Clr {
    /// The interface whose states were cleared; empty for all of them.
    ifname, set_ifname: [u8; 16] = field::IFNAME;
    /// The host id whose states were cleared (the sender's own).
    creatorid, set_creatorid: u32 = field::CREATORID;
});

/// A CLR message's meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClrRepr {
    /// Interface, or [`InterfaceName::NONE`] for all.
    pub ifname: InterfaceName,
    /// Whose states.
    pub creator: CreatorId,
}

impl ClrRepr {
    /// Reads the message.
    pub fn parse<T: AsRef<[u8]>>(message: &Clr<T>) -> Result<ClrRepr> {
        Ok(ClrRepr {
            ifname: InterfaceName(message.ifname()),
            creator: CreatorId(message.creatorid()),
        })
    }

    /// Bytes the message takes.
    pub const fn buffer_len(&self) -> usize {
        MESSAGE_LEN
    }

    /// Writes the message.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, message: &mut Clr<T>) {
        message.set_ifname(self.ifname.0);
        message.set_creatorid(self.creator.0);
    }
}

impl fmt::Display for ClrRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "creator {}", self.creator)?;
        if self.ifname.is_empty() {
            f.write_str(" all interfaces")
        } else {
            write!(f, " if {}", self.ifname)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::Error;

    // pfctl -k on em0 of node 0x0a0b0c0d.
    #[rustfmt::skip]
    pub(crate) static GOLDEN: [u8; 20] = [
        b'e', b'm', b'0', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ifname "em0", NUL-padded
        0x0a, 0x0b, 0x0c, 0x0d, // creatorid 0x0a0b0c0d
    ];

    pub(crate) fn golden_repr() -> ClrRepr {
        ClrRepr {
            ifname: InterfaceName::new("em0"),
            creator: CreatorId(0x0a0b_0c0d),
        }
    }

    #[test]
    fn deconstruct() {
        let message = Clr::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(&message.ifname()[..4], b"em0\0");
        assert_eq!(message.creatorid(), 0x0a0b_0c0d);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 20];
        let mut message = Clr::new_unchecked(&mut bytes[..]);
        message.set_ifname(*b"em0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        message.set_creatorid(0x0a0b_0c0d);
        assert_eq!(bytes, GOLDEN);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let repr = ClrRepr::parse(&Clr::new_checked(&GOLDEN[..]).unwrap()).unwrap();
        assert_eq!(repr, golden_repr());
        let mut bytes = [0xa5u8; 20];
        repr.emit(&mut Clr::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, GOLDEN);
        assert_eq!(repr.to_string(), "creator 0a0b0c0d if em0");
        let all = ClrRepr {
            ifname: InterfaceName::NONE,
            ..repr
        };
        assert_eq!(all.to_string(), "creator 0a0b0c0d all interfaces");
    }

    #[test]
    fn impossible_len() {
        assert_eq!(
            Clr::new_checked(&GOLDEN[..19]),
            Err(Error::Truncated {
                needed: 20,
                available: 19
            })
        );
    }
}
