//! The 12-byte message that names a state and nothing more: `struct pfsync_ins_ack`, `pfsync_upd_req` and
//! `pfsync_del_c` share this layout (pfsync spec section 4.4). Which action it is comes from the section.

use std::fmt;

use super::{Result, fixed_view, view_fields};
use crate::identity::{CreatorId, StateId};

mod field {
    use std::ops::Range;

    pub const ID: Range<usize> = 0..8;
    pub const CREATORID: Range<usize> = 8..12;
}

/// Size of the message.
pub const MESSAGE_LEN: usize = field::CREATORID.end;

fixed_view!(
    /// A view of an INS_ACK, UPD_REQ or DEL_C message.
    StateRef,
    MESSAGE_LEN
);

view_fields!(StateRef {
    /// The state id (opaque; Tandem reads and writes it big-endian, as OpenBSD fills it).
    id, set_id: u64 = field::ID;
    /// The creator's host id.
    creatorid, set_creatorid: u32 = field::CREATORID;
});

/// A state's name on the wire: what INS_ACK, UPD_REQ and DEL_C carry. An UPD_REQ naming id 0 of creator 0
/// asks for every state (a bulk update).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateRefRepr {
    /// The creator's host id.
    pub creator: CreatorId,
    /// The state id.
    pub id: StateId,
}

impl StateRefRepr {
    /// The UPD_REQ that asks for a bulk update.
    pub const BULK_REQUEST: StateRefRepr = StateRefRepr {
        creator: CreatorId(0),
        id: StateId(0),
    };

    /// Reads the message.
    pub fn parse<T: AsRef<[u8]>>(message: &StateRef<T>) -> Result<StateRefRepr> {
        Ok(StateRefRepr {
            creator: CreatorId(message.creatorid()),
            id: StateId(message.id()),
        })
    }

    /// Bytes the message takes.
    pub const fn buffer_len(&self) -> usize {
        MESSAGE_LEN
    }

    /// Writes the message.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, message: &mut StateRef<T>) {
        message.set_id(self.id.0);
        message.set_creatorid(self.creator.0);
    }

    /// Whether this is the bulk request (as an UPD_REQ).
    pub fn is_bulk_request(&self) -> bool {
        *self == Self::BULK_REQUEST
    }
}

impl fmt::Display for StateRefRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "id {} creator {}", self.id, self.creator)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::Error;

    // An OpenBSD DEL_C: the id is (seconds at pf start << 32) + counter, the creator a random host id.
    #[rustfmt::skip]
    pub(crate) static GOLDEN: [u8; 12] = [
        0x5f, 0x3e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2a, // id 0x5f3e00010000002a
        0xde, 0xad, 0xbe, 0xef, // creatorid 0xdeadbeef
    ];

    pub(crate) fn golden_repr() -> StateRefRepr {
        StateRefRepr {
            creator: CreatorId(0xdead_beef),
            id: StateId(0x5f3e_0001_0000_002a),
        }
    }

    #[test]
    fn deconstruct() {
        let message = StateRef::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(message.id(), 0x5f3e_0001_0000_002a);
        assert_eq!(message.creatorid(), 0xdead_beef);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 12];
        let mut message = StateRef::new_unchecked(&mut bytes[..]);
        message.set_id(0x5f3e_0001_0000_002a);
        message.set_creatorid(0xdead_beef);
        assert_eq!(bytes, GOLDEN);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let repr = StateRefRepr::parse(&StateRef::new_checked(&GOLDEN[..]).unwrap()).unwrap();
        assert_eq!(repr, golden_repr());
        let mut bytes = [0xa5u8; 12];
        repr.emit(&mut StateRef::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, GOLDEN);
        assert_eq!(repr.to_string(), "id 5f3e00010000002a creator deadbeef");
        assert!(!repr.is_bulk_request());
        assert!(StateRefRepr::BULK_REQUEST.is_bulk_request());
    }

    #[test]
    fn impossible_len() {
        assert_eq!(
            StateRef::new_checked(&GOLDEN[..11]),
            Err(Error::Truncated {
                needed: 12,
                available: 11
            })
        );
    }
}
