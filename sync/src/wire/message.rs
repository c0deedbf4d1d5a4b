//! One pfsync message of any action, as a typed value: the sum of the per-action Reprs, with the dispatch
//! from an action code to the right view (OpenBSD's input table, one `match` arm per row). Walking sections
//! is `packet`'s job.

use std::fmt;

use super::{
    Action, Bus, BusRepr, Clr, ClrRepr, Error, Result, StateMessage, StateRef, StateRefRepr,
    StateRepr, Tdb, TdbRepr, UpdC, UpdCRepr,
};

/// A parsed message. The variant is the section's action: INS_ACK, UPD_REQ and DEL_C share a layout, as do
/// INS, UPD and DEL.
// Full states make this enum about 300 bytes; boxing them would allocate per message, which the sync core's
// hot path must not, and a message lives on the stack only while it is handled.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// CLR.
    Clr(ClrRepr),
    /// INS_ACK.
    InsAck(StateRefRepr),
    /// UPD_C.
    UpdC(UpdCRepr),
    /// UPD_REQ.
    UpdReq(StateRefRepr),
    /// DEL (OpenBSD reads only the id and creator).
    Del(StateRepr),
    /// DEL_C.
    DelC(StateRefRepr),
    /// BUS.
    Bus(BusRepr),
    /// INS.
    Ins(StateRepr),
    /// UPD.
    Upd(StateRepr),
    /// TDB.
    Tdb(TdbRepr),
}

impl Message {
    /// Parses one message of `action` from the start of `bytes`. Bytes beyond the action's known size (a
    /// peer's longer message) are ignored. Fails with [`Error::Truncated`] when `bytes` is short, and with
    /// [`Error::BadAddressFamily`] when a family byte is not OpenBSD's 2 or 24.
    pub fn parse(action: Action, bytes: &[u8]) -> Result<Message> {
        let needed = action.message_len();
        let record = bytes.get(..needed).ok_or(Error::Truncated {
            needed,
            available: bytes.len(),
        })?;
        let message = match action {
            Action::Clr => Message::Clr(ClrRepr::parse(&Clr::new_unchecked(record))?),
            Action::InsAck => {
                Message::InsAck(StateRefRepr::parse(&StateRef::new_unchecked(record))?)
            }
            Action::UpdC => Message::UpdC(UpdCRepr::parse(&UpdC::new_unchecked(record))?),
            Action::UpdReq => {
                Message::UpdReq(StateRefRepr::parse(&StateRef::new_unchecked(record))?)
            }
            Action::Del => Message::Del(parse_state(action, record)?),
            Action::DelC => Message::DelC(StateRefRepr::parse(&StateRef::new_unchecked(record))?),
            Action::Bus => Message::Bus(BusRepr::parse(&Bus::new_unchecked(record))?),
            Action::Ins => Message::Ins(parse_state(action, record)?),
            Action::Upd => Message::Upd(parse_state(action, record)?),
            Action::Tdb => Message::Tdb(TdbRepr::parse(&Tdb::new_unchecked(record))?),
        };
        Ok(message)
    }

    /// The message's action.
    pub const fn action(&self) -> Action {
        match self {
            Message::Clr(_) => Action::Clr,
            Message::InsAck(_) => Action::InsAck,
            Message::UpdC(_) => Action::UpdC,
            Message::UpdReq(_) => Action::UpdReq,
            Message::Del(_) => Action::Del,
            Message::DelC(_) => Action::DelC,
            Message::Bus(_) => Action::Bus,
            Message::Ins(_) => Action::Ins,
            Message::Upd(_) => Action::Upd,
            Message::Tdb(_) => Action::Tdb,
        }
    }

    /// Bytes the message takes: its action's known size.
    pub const fn buffer_len(&self) -> usize {
        self.action().message_len()
    }

    /// Writes the message at the start of `bytes`, every byte of its size included; fails with
    /// [`Error::Truncated`] (writing nothing) when `bytes` is shorter than [`Message::buffer_len`].
    pub fn emit(&self, bytes: &mut [u8]) -> Result<()> {
        let needed = self.buffer_len();
        let available = bytes.len();
        let record = bytes
            .get_mut(..needed)
            .ok_or(Error::Truncated { needed, available })?;
        match self {
            Message::Clr(m) => m.emit(&mut Clr::new_unchecked(record)),
            Message::InsAck(m) | Message::UpdReq(m) | Message::DelC(m) => {
                m.emit(&mut StateRef::new_unchecked(record))
            }
            Message::UpdC(m) => m.emit(&mut UpdC::new_unchecked(record)),
            Message::Del(m) | Message::Ins(m) | Message::Upd(m) => {
                m.emit(&mut StateMessage::new_unchecked(record))
            }
            Message::Bus(m) => m.emit(&mut Bus::new_unchecked(record)),
            Message::Tdb(m) => m.emit(&mut Tdb::new_unchecked(record)),
        }
        Ok(())
    }

    /// The value checks OpenBSD's handler for this action applies before acting (pfsync spec section 6):
    /// INS [`StateRepr::validate_insert`], UPD [`StateRepr::validate_update`], UPD_C [`UpdCRepr::validate`],
    /// TDB [`TdbRepr::validate`]; the other actions have none. A refused message is counted `badval` and
    /// skipped; the rest of the packet is still processed.
    pub fn validate(&self) -> Result<()> {
        match self {
            Message::Ins(m) => m.validate_insert(),
            Message::Upd(m) => m.validate_update(),
            Message::UpdC(m) => m.validate(),
            Message::Tdb(m) => m.validate(),
            Message::Clr(_)
            | Message::InsAck(_)
            | Message::UpdReq(_)
            | Message::Del(_)
            | Message::DelC(_)
            | Message::Bus(_) => Ok(()),
        }
    }
}

/// Parses a full state for INS, UPD or DEL, naming the right action in a family error.
fn parse_state(action: Action, record: &[u8]) -> Result<StateRepr> {
    StateRepr::parse(&StateMessage::new_unchecked(record)).map_err(|e| match e {
        Error::BadAddressFamily { field, value, .. } => Error::BadAddressFamily {
            action,
            field,
            value,
        },
        other => other,
    })
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.action())?;
        match self {
            Message::Clr(m) => m.fmt(f),
            Message::InsAck(m) | Message::UpdReq(m) | Message::DelC(m) => m.fmt(f),
            Message::UpdC(m) => m.fmt(f),
            Message::Del(m) | Message::Ins(m) | Message::Upd(m) => m.fmt(f),
            Message::Bus(m) => m.fmt(f),
            Message::Tdb(m) => m.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{CreatorId, StateId};
    use crate::wire::state::tests::{GOLDEN as STATE_GOLDEN, golden_repr as state_repr};

    #[test]
    fn longer_messages_are_accepted_and_their_tail_ignored() {
        let mut longer = [0xeeu8; 16];
        longer[..12].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 1]);
        let message = Message::parse(Action::DelC, &longer).unwrap();
        assert_eq!(
            message,
            Message::DelC(StateRefRepr {
                creator: CreatorId(1),
                id: StateId(9)
            })
        );
        assert_eq!(
            message.to_string(),
            "DEL_C id 0000000000000009 creator 00000001"
        );
    }

    #[test]
    fn short_buffers_are_refused_both_ways() {
        assert_eq!(
            Message::parse(Action::UpdC, &[0; 83]),
            Err(Error::Truncated {
                needed: 84,
                available: 83
            })
        );
        let message = Message::Ins(state_repr());
        let mut small = [0xa5u8; 263];
        assert!(matches!(
            message.emit(&mut small),
            Err(Error::Truncated { needed: 264, .. })
        ));
        assert!(
            small.iter().all(|&b| b == 0xa5),
            "a refused emit writes nothing"
        );
    }

    #[test]
    fn full_state_actions_share_one_record() {
        for action in [Action::Ins, Action::Upd, Action::Del] {
            let message = Message::parse(action, &STATE_GOLDEN).unwrap();
            assert_eq!(message.action(), action);
            let mut bytes = [0xa5u8; 264];
            message.emit(&mut bytes).unwrap();
            assert_eq!(bytes, STATE_GOLDEN);
        }
    }

    #[test]
    fn family_errors_name_the_section_action() {
        let mut bytes = STATE_GOLDEN;
        bytes[250] = 0;
        for action in [Action::Ins, Action::Upd, Action::Del] {
            assert_eq!(
                Message::parse(action, &bytes),
                Err(Error::BadAddressFamily {
                    action,
                    field: "af",
                    value: 0
                })
            );
        }
    }

    #[test]
    fn validation_depends_on_the_action() {
        let mut state = state_repr();
        state.direction = 7;
        assert!(Message::Ins(state).validate().is_err());
        assert_eq!(Message::Upd(state).validate(), Ok(()));
        state.timeout = 21;
        assert!(Message::Upd(state).validate().is_err());
        // OpenBSD's DEL handler reads only the id and creator.
        assert_eq!(Message::Del(state).validate(), Ok(()));
    }
}
