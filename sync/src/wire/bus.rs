//! BUS (`struct pfsync_bus`, 12 bytes, pfsync spec section 4.4): bulk update status, START before the first
//! state of a bulk update and END after the last.

use std::fmt;

use super::{Result, fixed_view, view_fields};
use crate::identity::CreatorId;

mod field {
    use std::ops::Range;

    pub const CREATORID: Range<usize> = 0..4;
    pub const ENDTIME: Range<usize> = 4..8;
    pub const STATUS: usize = 8;
    pub const PAD: Range<usize> = 9..12;
}

/// Size of the message.
pub const MESSAGE_LEN: usize = field::PAD.end;

fixed_view!(
    /// A view of a BUS message.
    Bus,
    MESSAGE_LEN
);

view_fields!(Bus {
    /// The sender's host id (not checked by OpenBSD).
    creatorid, set_creatorid: u32 = field::CREATORID;
    /// FreeBSD: seconds the bulk took; OpenBSD sends 0 and ignores it.
    endtime, set_endtime: u32 = field::ENDTIME;
    /// 1 START, 2 END.
    status, set_status: u8 = field::STATUS;
});

impl<T: AsRef<[u8]> + AsMut<[u8]>> Bus<T> {
    /// Zeroes the padding.
    pub fn clear_padding(&mut self) {
        self.buffer.as_mut()[field::PAD].fill(0);
    }
}

/// Bulk update status (`PFSYNC_BUS_*`). OpenBSD ignores other values without counting them, so they are a
/// variant here rather than an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BusStatus {
    /// A bulk update begins (1).
    Start,
    /// A bulk update is complete (2).
    End,
    /// Any other byte, neither 1 nor 2.
    Unknown(u8),
}

impl BusStatus {
    /// The status a wire byte means.
    pub const fn from_wire(value: u8) -> BusStatus {
        match value {
            1 => BusStatus::Start,
            2 => BusStatus::End,
            other => BusStatus::Unknown(other),
        }
    }

    /// The wire byte.
    pub const fn to_wire(self) -> u8 {
        match self {
            BusStatus::Start => 1,
            BusStatus::End => 2,
            BusStatus::Unknown(other) => other,
        }
    }
}

/// A BUS message's meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BusRepr {
    /// The sender's host id.
    pub creator: CreatorId,
    /// `endtime`, 0 from OpenBSD and Tandem.
    pub endtime: u32,
    /// Start or end.
    pub status: BusStatus,
}

impl BusRepr {
    /// Reads the message.
    pub fn parse<T: AsRef<[u8]>>(message: &Bus<T>) -> Result<BusRepr> {
        Ok(BusRepr {
            creator: CreatorId(message.creatorid()),
            endtime: message.endtime(),
            status: BusStatus::from_wire(message.status()),
        })
    }

    /// Bytes the message takes.
    pub const fn buffer_len(&self) -> usize {
        MESSAGE_LEN
    }

    /// Writes the message, padding zeroed.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, message: &mut Bus<T>) {
        message.set_creatorid(self.creator.0);
        message.set_endtime(self.endtime);
        message.set_status(self.status.to_wire());
        message.clear_padding();
    }
}

impl fmt::Display for BusRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "creator {} ", self.creator)?;
        match self.status {
            BusStatus::Start => f.write_str("start")?,
            BusStatus::End => f.write_str("end")?,
            BusStatus::Unknown(v) => write!(f, "status {v}")?,
        }
        write!(f, " endtime {}", self.endtime)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::Error;

    // FreeBSD-style END after a 3-second bulk update.
    #[rustfmt::skip]
    pub(crate) static GOLDEN: [u8; 12] = [
        0x01, 0x02, 0x03, 0x04, // creatorid 0x01020304
        0x00, 0x00, 0x00, 0x03, // endtime 3
        0x02, // status 2, END
        0, 0, 0, // pad
    ];

    #[test]
    fn deconstruct() {
        let message = Bus::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(message.creatorid(), 0x0102_0304);
        assert_eq!(message.endtime(), 3);
        assert_eq!(message.status(), 2);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 12];
        let mut message = Bus::new_unchecked(&mut bytes[..]);
        message.set_creatorid(0x0102_0304);
        message.set_endtime(3);
        message.set_status(2);
        message.clear_padding();
        assert_eq!(bytes, GOLDEN);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let repr = BusRepr::parse(&Bus::new_checked(&GOLDEN[..]).unwrap()).unwrap();
        let expected = BusRepr {
            creator: CreatorId(0x0102_0304),
            endtime: 3,
            status: BusStatus::End,
        };
        assert_eq!(repr, expected);
        let mut bytes = [0xa5u8; 12];
        repr.emit(&mut Bus::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, GOLDEN);
        assert_eq!(repr.to_string(), "creator 01020304 end endtime 3");
    }

    #[test]
    fn statuses_other_than_start_and_end_survive_a_round_trip() {
        for value in 0..=u8::MAX {
            assert_eq!(BusStatus::from_wire(value).to_wire(), value);
        }
        assert_eq!(BusStatus::from_wire(1), BusStatus::Start);
        assert_eq!(BusStatus::from_wire(9), BusStatus::Unknown(9));
    }

    #[test]
    fn impossible_len() {
        assert_eq!(
            Bus::new_checked(&GOLDEN[..11]),
            Err(Error::Truncated {
                needed: 12,
                available: 11
            })
        );
    }
}
