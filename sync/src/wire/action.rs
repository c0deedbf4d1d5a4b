//! The pfsync action codes and OpenBSD's input table: which codes carry messages Tandem parses, how long
//! each message is, and which sections are skipped or end the packet. Parsing the messages themselves lives
//! in `message`; walking a packet's sections lives in `packet`.

use std::fmt;

use super::{Error, bus, clr, state, state_ref, tdb, upd_c};

/// A pfsync action Tandem understands: one variant per row of OpenBSD's input table that has a handler
/// (pfsync spec section 3). Legacy codes (1, 3, 8, 9, 11, 12) and codes from 16 up have no variant: their
/// sections are skipped or refused by [`dispatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Action {
    /// Clear every state of one creator (`PFSYNC_ACT_CLR`).
    Clr = 0,
    /// Acknowledge an insert, releasing a deferred packet (`PFSYNC_ACT_INS_ACK`).
    InsAck = 2,
    /// Compressed update (`PFSYNC_ACT_UPD_C`).
    UpdC = 4,
    /// Ask for a full state, or for all of them (`PFSYNC_ACT_UPD_REQ`).
    UpdReq = 5,
    /// Delete, carrying a full state (`PFSYNC_ACT_DEL`); only the id and creator are used.
    Del = 6,
    /// Compressed delete (`PFSYNC_ACT_DEL_C`).
    DelC = 7,
    /// Bulk update status (`PFSYNC_ACT_BUS`).
    Bus = 10,
    /// Insert a full state (`PFSYNC_ACT_INS`).
    Ins = 13,
    /// Full update, inserting unknown states (`PFSYNC_ACT_UPD`).
    Upd = 14,
    /// IPsec SA replay and byte counters (`PFSYNC_ACT_TDB`).
    Tdb = 15,
}

/// Codes from this one up are unknown to OpenBSD (`PFSYNC_ACT_MAX`).
pub const ACTION_MAX: u8 = 16;

impl Action {
    /// Every action, in code order.
    pub const ALL: [Action; 10] = [
        Action::Clr,
        Action::InsAck,
        Action::UpdC,
        Action::UpdReq,
        Action::Del,
        Action::DelC,
        Action::Bus,
        Action::Ins,
        Action::Upd,
        Action::Tdb,
    ];

    /// The action with wire code `code`, if Tandem parses it.
    pub const fn from_code(code: u8) -> Option<Action> {
        Some(match code {
            0 => Action::Clr,
            2 => Action::InsAck,
            4 => Action::UpdC,
            5 => Action::UpdReq,
            6 => Action::Del,
            7 => Action::DelC,
            10 => Action::Bus,
            13 => Action::Ins,
            14 => Action::Upd,
            15 => Action::Tdb,
            _ => return None,
        })
    }

    /// The wire code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The size in bytes of one message of this action as OpenBSD defines it (`sizeof` of its struct): the
    /// smallest `len` a subheader may declare, and the size Tandem sends.
    pub const fn message_len(self) -> usize {
        match self {
            Action::Clr => clr::MESSAGE_LEN,
            Action::InsAck | Action::UpdReq | Action::DelC => state_ref::MESSAGE_LEN,
            Action::UpdC => upd_c::MESSAGE_LEN,
            Action::Del | Action::Ins | Action::Upd => state::MESSAGE_LEN,
            Action::Bus => bus::MESSAGE_LEN,
            Action::Tdb => tdb::MESSAGE_LEN,
        }
    }

    /// OpenBSD's name, as tcpdump and `netstat -s -p pfsync` spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Action::Clr => "CLR",
            Action::InsAck => "INS_ACK",
            Action::UpdC => "UPD_C",
            Action::UpdReq => "UPD_REQ",
            Action::Del => "DEL",
            Action::DelC => "DEL_C",
            Action::Bus => "BUS",
            Action::Ins => "INS",
            Action::Upd => "UPD",
            Action::Tdb => "TDB",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a code is one of the retired actions OpenBSD still lists without a handler: OINS 1, OUPD 3,
/// INS_F 8, DEL_F 9, OTDB 11, EOF 12. Their known size is 0, so any message length passes and the section is
/// skipped (FreeBSD's EOF, count 1 and length 0, skips nothing).
pub const fn is_legacy(code: u8) -> bool {
    matches!(code, 1 | 3 | 8 | 9 | 11 | 12)
}

/// What the parser does with one section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// Parse its messages as this action.
    Parse(Action),
    /// Step over its `count x len` bytes.
    Skip,
}

/// OpenBSD's decision for a subheader (`pfsync_input`, if_pfsync.c 1.332): a code with a handler is parsed
/// when the declared message length is at least the known one (longer messages are the designed extension
/// path: the tail of each is ignored); a legacy code is skipped; an unknown code, or a known one declaring
/// shorter messages, is skipped only when it declares both a non-zero length and a non-zero count, because
/// only then can a receiver know how far to skip. Otherwise the packet's remaining sections are abandoned
/// (`badact`). `offset` is the subheader's offset in the packet, for the error.
pub fn dispatch(
    offset: usize,
    code: u8,
    message_len: usize,
    count: u16,
) -> Result<Dispatch, Error> {
    if let Some(action) = Action::from_code(code) {
        if message_len >= action.message_len() {
            return Ok(Dispatch::Parse(action));
        }
    } else if is_legacy(code) {
        return Ok(Dispatch::Skip);
    }
    if count > 0 && message_len > 0 {
        Ok(Dispatch::Skip)
    } else {
        Err(Error::BadAction {
            offset,
            code,
            message_len,
            count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_sizes_match_the_openbsd_structs() {
        // pfsync spec section 3: bytes per message, and the same in 4-byte words.
        let expected = [
            (Action::Clr, 0, 20),
            (Action::InsAck, 2, 12),
            (Action::UpdC, 4, 84),
            (Action::UpdReq, 5, 12),
            (Action::Del, 6, 264),
            (Action::DelC, 7, 12),
            (Action::Bus, 10, 12),
            (Action::Ins, 13, 264),
            (Action::Upd, 14, 264),
            (Action::Tdb, 15, 52),
        ];
        for (action, code, len) in expected {
            assert_eq!(action.code(), code);
            assert_eq!(Action::from_code(code), Some(action));
            assert_eq!(action.message_len(), len, "{action}");
            assert_eq!(action.message_len() % 4, 0, "{action} must be whole words");
        }
        assert_eq!(Action::ALL.len(), expected.len());
    }

    #[test]
    fn every_code_is_parsed_legacy_or_unknown() {
        for code in 0..=u8::MAX {
            let parsed = Action::from_code(code).is_some();
            let legacy = is_legacy(code);
            assert!(!(parsed && legacy), "code {code}");
            if code < ACTION_MAX {
                assert!(
                    parsed || legacy,
                    "code {code} below ACTION_MAX must be in the table"
                );
            } else {
                assert!(!parsed && !legacy, "code {code}");
            }
        }
    }

    #[test]
    fn known_actions_accept_longer_messages_and_skip_shorter_ones() {
        assert_eq!(dispatch(20, 4, 84, 1), Ok(Dispatch::Parse(Action::UpdC)));
        assert_eq!(dispatch(20, 4, 88, 1), Ok(Dispatch::Parse(Action::UpdC)));
        // A shorter declared size is skippable when it says how far to skip, like an unknown action.
        assert_eq!(dispatch(20, 4, 80, 1), Ok(Dispatch::Skip));
        assert!(matches!(
            dispatch(20, 4, 80, 0),
            Err(Error::BadAction { code: 4, .. })
        ));
        // A known action with a zero count is an empty section, not an error.
        assert_eq!(dispatch(20, 13, 264, 0), Ok(Dispatch::Parse(Action::Ins)));
    }

    #[test]
    fn legacy_codes_are_skipped_whatever_they_declare() {
        for code in [1, 3, 8, 9, 11, 12] {
            assert_eq!(dispatch(20, code, 0, 0), Ok(Dispatch::Skip), "code {code}");
            assert_eq!(dispatch(20, code, 0, 1), Ok(Dispatch::Skip), "code {code}");
            assert_eq!(dispatch(20, code, 44, 3), Ok(Dispatch::Skip), "code {code}");
        }
    }

    #[test]
    fn unknown_codes_are_skipped_only_with_a_length_and_a_count() {
        for code in [16, 200, 255] {
            assert_eq!(dispatch(20, code, 4, 1), Ok(Dispatch::Skip));
            let refused = Err(Error::BadAction {
                offset: 20,
                code,
                message_len: 0,
                count: 1,
            });
            assert_eq!(dispatch(20, code, 0, 1), refused);
            assert!(dispatch(20, code, 4, 0).is_err());
        }
    }
}
