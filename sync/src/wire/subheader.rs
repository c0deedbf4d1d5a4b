//! The 4-byte section subheader (`struct pfsync_subheader`, pfsync spec section 2): an action code, the size
//! of one message in 4-byte words, and how many messages follow back to back. What a code means is
//! `action`'s business; this view only reads and writes the fields.

use std::fmt;

use super::{Action, Result, fixed_view, view_fields};

mod field {
    use std::ops::Range;

    pub const ACTION: usize = 0;
    pub const LEN: usize = 1;
    pub const COUNT: Range<usize> = 2..4;
}

/// Size of a subheader.
pub const SUBHEADER_LEN: usize = field::COUNT.end;

fixed_view!(
    /// A view of a section subheader.
    Subheader,
    SUBHEADER_LEN
);

view_fields!(Subheader {
    /// The action code (any byte: unknown codes are skippable).
    action, set_action: u8 = field::ACTION;
    /// Size of one message in 4-byte words (FreeBSD leaves it 0).
    len, set_len: u8 = field::LEN;
    /// Number of messages that follow.
    count, set_count: u16 = field::COUNT;
});

/// A subheader's meaning. The action stays a raw code because unknown codes are legal on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubheaderRepr {
    /// The action code.
    pub code: u8,
    /// Size of one message in 4-byte words.
    pub words: u8,
    /// Number of messages.
    pub count: u16,
}

impl SubheaderRepr {
    /// The subheader Tandem sends for `count` messages of `action`: their known size.
    pub const fn new(action: Action, count: u16) -> SubheaderRepr {
        // Every message size is a multiple of 4 and at most 264, so the word count fits a byte.
        SubheaderRepr {
            code: action.code(),
            words: (action.message_len() / 4) as u8,
            count,
        }
    }

    /// Reads a subheader; every value is acceptable here.
    pub fn parse<T: AsRef<[u8]>>(subheader: &Subheader<T>) -> Result<SubheaderRepr> {
        Ok(SubheaderRepr {
            code: subheader.action(),
            words: subheader.len(),
            count: subheader.count(),
        })
    }

    /// Size of one message in bytes.
    pub const fn message_len(&self) -> usize {
        self.words as usize * 4
    }

    /// Bytes of messages that follow the subheader.
    pub const fn body_len(&self) -> usize {
        self.message_len() * self.count as usize
    }

    /// Bytes the subheader takes.
    pub const fn buffer_len(&self) -> usize {
        SUBHEADER_LEN
    }

    /// Writes the subheader.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, subheader: &mut Subheader<T>) {
        subheader.set_action(self.code);
        subheader.set_len(self.words);
        subheader.set_count(self.count);
    }
}

impl fmt::Display for SubheaderRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Action::from_code(self.code) {
            Some(action) => write!(f, "{action}")?,
            None => write!(f, "action {}", self.code)?,
        }
        write!(f, " len {} count {}", self.message_len(), self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Error;

    // The subheader of a section of 17 compressed updates.
    #[rustfmt::skip]
    static GOLDEN: [u8; 4] = [
        0x04, // action 4, UPD_C
        0x15, // len 21 words = 84 bytes per message
        0x00, 0x11, // count 17
    ];

    #[test]
    fn deconstruct() {
        let subheader = Subheader::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(subheader.action(), 4);
        assert_eq!(subheader.len(), 21);
        assert_eq!(subheader.count(), 17);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 4];
        let mut subheader = Subheader::new_unchecked(&mut bytes[..]);
        subheader.set_action(4);
        subheader.set_len(21);
        subheader.set_count(17);
        assert_eq!(bytes, GOLDEN);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let repr = SubheaderRepr::parse(&Subheader::new_checked(&GOLDEN[..]).unwrap()).unwrap();
        assert_eq!(repr, SubheaderRepr::new(Action::UpdC, 17));
        assert_eq!(repr.message_len(), 84);
        assert_eq!(repr.body_len(), 84 * 17);
        let mut bytes = [0xa5u8; 4];
        repr.emit(&mut Subheader::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, GOLDEN);
        assert_eq!(repr.to_string(), "UPD_C len 84 count 17");
    }

    #[test]
    fn every_action_size_fits_the_word_count() {
        for action in Action::ALL {
            assert_eq!(
                SubheaderRepr::new(action, 1).message_len(),
                action.message_len()
            );
        }
    }

    #[test]
    fn impossible_len() {
        assert_eq!(
            Subheader::new_checked(&GOLDEN[..3]),
            Err(Error::Truncated {
                needed: 4,
                available: 3
            })
        );
    }
}
