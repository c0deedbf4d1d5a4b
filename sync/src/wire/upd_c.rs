//! UPD_C (`struct pfsync_upd_c`, 84 bytes, pfsync spec section 4.4): the compressed update, a state's name
//! and both peers' tracking data. The bulk of steady-state sync traffic.

use std::fmt;

use super::{Action, Error, PeerRepr, Result, StatePeer, fixed_view, view_fields};
use crate::identity::{CreatorId, StateId};

mod field {
    use std::ops::Range;

    pub const ID: Range<usize> = 0..8;
    pub const SRC: Range<usize> = 8..40;
    pub const DST: Range<usize> = 40..72;
    pub const CREATORID: Range<usize> = 72..76;
    pub const EXPIRE: Range<usize> = 76..80;
    pub const TIMEOUT: usize = 80;
    pub const STATE_FLAGS: usize = 81;
    pub const PAD: Range<usize> = 82..84;
}

/// Size of the message.
pub const MESSAGE_LEN: usize = field::PAD.end;

/// pf's `PFTM_MAX`: OpenBSD refuses a timeout class at or above it.
pub(crate) const TIMEOUT_MAX: u8 = 20;
/// pf's `PF_TCPS_PROXY_DST`: OpenBSD refuses a peer state above it.
pub(crate) const PEER_STATE_MAX: u8 = 12;

fixed_view!(
    /// A view of an UPD_C message.
    UpdC,
    MESSAGE_LEN
);

view_fields!(UpdC {
    /// The state id.
    id, set_id: u64 = field::ID;
    /// The creator's host id.
    creatorid, set_creatorid: u32 = field::CREATORID;
    /// Always 0 from OpenBSD and ignored on input.
    expire, set_expire: u32 = field::EXPIRE;
    /// Timeout class (`PFTM_*`).
    timeout, set_timeout: u8 = field::TIMEOUT;
    /// Unused, 0.
    state_flags, set_state_flags: u8 = field::STATE_FLAGS;
});

impl<T: AsRef<[u8]>> UpdC<T> {
    /// The side that created the state.
    pub fn src(&self) -> StatePeer<&[u8]> {
        StatePeer::new_unchecked(&self.buffer.as_ref()[field::SRC])
    }

    /// The other side.
    pub fn dst(&self) -> StatePeer<&[u8]> {
        StatePeer::new_unchecked(&self.buffer.as_ref()[field::DST])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UpdC<T> {
    /// The side that created the state, writable.
    pub fn src_mut(&mut self) -> StatePeer<&mut [u8]> {
        StatePeer::new_unchecked(&mut self.buffer.as_mut()[field::SRC])
    }

    /// The other side, writable.
    pub fn dst_mut(&mut self) -> StatePeer<&mut [u8]> {
        StatePeer::new_unchecked(&mut self.buffer.as_mut()[field::DST])
    }

    /// Zeroes the padding.
    pub fn clear_padding(&mut self) {
        self.buffer.as_mut()[field::PAD].fill(0);
    }
}

/// A compressed update's meaning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct UpdCRepr {
    /// The state id.
    pub id: StateId,
    /// The creator.
    pub creator: CreatorId,
    /// The side that created the state.
    pub src: PeerRepr,
    /// The other side.
    pub dst: PeerRepr,
    /// `expire`, 0 from OpenBSD and Tandem.
    pub expire: u32,
    /// Timeout class.
    pub timeout: u8,
    /// `state_flags`, 0 from OpenBSD and Tandem.
    pub state_flags: u8,
}

impl UpdCRepr {
    /// Reads the message.
    pub fn parse<T: AsRef<[u8]>>(message: &UpdC<T>) -> Result<UpdCRepr> {
        Ok(UpdCRepr {
            id: StateId(message.id()),
            creator: CreatorId(message.creatorid()),
            src: PeerRepr::parse(&message.src())?,
            dst: PeerRepr::parse(&message.dst())?,
            expire: message.expire(),
            timeout: message.timeout(),
            state_flags: message.state_flags(),
        })
    }

    /// Bytes the message takes.
    pub const fn buffer_len(&self) -> usize {
        MESSAGE_LEN
    }

    /// Writes the message, padding zeroed.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, message: &mut UpdC<T>) {
        message.set_id(self.id.0);
        self.src.emit(&mut message.src_mut());
        self.dst.emit(&mut message.dst_mut());
        message.set_creatorid(self.creator.0);
        message.set_expire(self.expire);
        message.set_timeout(self.timeout);
        message.set_state_flags(self.state_flags);
        message.clear_padding();
    }

    /// OpenBSD's checks (`pfsync_in_upd_c`): timeout below `PFTM_MAX`, peer states at most
    /// `PF_TCPS_PROXY_DST`. A refused message is counted `badval` and the next one processed.
    pub fn validate(&self) -> Result<()> {
        check_updates(Action::UpdC, self.timeout, &self.src, &self.dst)
    }
}

/// The checks OpenBSD applies to every update, compressed or full.
pub(crate) fn check_updates(
    action: Action,
    timeout: u8,
    src: &PeerRepr,
    dst: &PeerRepr,
) -> Result<()> {
    let bad = |field, value: u8| {
        Err(Error::BadValue {
            action,
            field,
            value: u32::from(value),
        })
    };
    if timeout >= TIMEOUT_MAX {
        return bad("timeout", timeout);
    }
    if src.tcp.state > PEER_STATE_MAX {
        return bad("src.state", src.tcp.state);
    }
    if dst.tcp.state > PEER_STATE_MAX {
        return bad("dst.state", dst.tcp.state);
    }
    Ok(())
}

impl fmt::Display for UpdCRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "id {} creator {} timeout {} src {} dst {}",
            self.id, self.creator, self.timeout, self.src, self.dst
        )?;
        if self.expire != 0 || self.state_flags != 0 {
            write!(f, " expire {} flags {:#04x}", self.expire, self.state_flags)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::state::TcpPeer;
    use crate::wire::ScrubRepr;

    // An UPD_C for an established TCP state, written against spec section 4.4 (offsets in the comments).
    #[rustfmt::skip]
    pub(crate) static GOLDEN: [u8; 84] = [
        0x5f, 0x3e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2a, // @0 id 0x5f3e00010000002a
        0x00, 0x00, // @8 src.scrub.pfss_flags 0
        0x00, // @10 src.scrub.pfss_ttl 0
        0x00, // @11 src.scrub.scrub_flag: none
        0x00, 0x00, 0x00, 0x00, // @12 src.scrub.pfss_ts_mod 0
        0x00, 0x00, 0x27, 0x10, // @16 src.seqlo 10000
        0x00, 0x01, 0x2e, 0xe0, // @20 src.seqhi 77536
        0x00, 0x00, 0x00, 0x00, // @24 src.seqdiff 0
        0xfa, 0xf0, // @28 src.max_win 64240
        0x05, 0xb4, // @30 src.mss 1460
        0x04, // @32 src.state ESTABLISHED
        0x87, // @33 src.wscale: seen, shift 7
        0, 0, 0, 0, 0, 0, // @34 src.pad
        0x00, 0x01, // @40 dst.scrub.pfss_flags PFSS_TIMESTAMP
        0x40, // @42 dst.scrub.pfss_ttl 64
        0x01, // @43 dst.scrub.scrub_flag: valid
        0x0b, 0xad, 0xca, 0xfe, // @44 dst.scrub.pfss_ts_mod 0x0badcafe
        0x00, 0x01, 0x2e, 0xe0, // @48 dst.seqlo 77536
        0x00, 0x00, 0xf8, 0x20, // @52 dst.seqhi 63520
        0x00, 0x00, 0x00, 0x01, // @56 dst.seqdiff 1
        0xfe, 0x88, // @60 dst.max_win 65160
        0x05, 0x78, // @62 dst.mss 1400
        0x09, // @64 dst.state FIN_WAIT_2
        0x00, // @65 dst.wscale: not seen
        0, 0, 0, 0, 0, 0, // @66 dst.pad
        0xc0, 0xff, 0xee, 0x01, // @72 creatorid 0xc0ffee01
        0x00, 0x00, 0x00, 0x00, // @76 expire 0 (OpenBSD always sends 0)
        0x02, // @80 timeout 2, TCP_ESTABLISHED
        0x00, // @81 state_flags (unused)
        0x00, 0x00, // @82 pad
    ];

    pub(crate) fn golden_repr() -> UpdCRepr {
        UpdCRepr {
            id: StateId(0x5f3e_0001_0000_002a),
            creator: CreatorId(0xc0ff_ee01),
            src: PeerRepr {
                tcp: TcpPeer {
                    seqlo: 10000,
                    seqhi: 77536,
                    seqdiff: 0,
                    max_win: 64240,
                    mss: 1460,
                    state: 4,
                    wscale: 0x87,
                },
                scrub: ScrubRepr::default(),
            },
            dst: PeerRepr {
                tcp: TcpPeer {
                    seqlo: 77536,
                    seqhi: 63520,
                    seqdiff: 1,
                    max_win: 65160,
                    mss: 1400,
                    state: 9,
                    wscale: 0,
                },
                scrub: ScrubRepr {
                    flags: 1,
                    ttl: 64,
                    valid: 1,
                    ts_mod: 0x0bad_cafe,
                },
            },
            expire: 0,
            timeout: 2,
            state_flags: 0,
        }
    }

    #[test]
    fn deconstruct() {
        let message = UpdC::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(message.id(), 0x5f3e_0001_0000_002a);
        assert_eq!(message.src().seqlo(), 10000);
        assert_eq!(message.src().seqhi(), 77536);
        assert_eq!(message.src().max_win(), 64240);
        assert_eq!(message.src().state(), 4);
        assert_eq!(message.src().wscale(), 0x87);
        assert_eq!(message.dst().scrub().ts_mod(), 0x0bad_cafe);
        assert_eq!(message.dst().seqhi(), 63520);
        assert_eq!(message.dst().seqdiff(), 1);
        assert_eq!(message.dst().mss(), 1400);
        assert_eq!(message.dst().state(), 9);
        assert_eq!(message.creatorid(), 0xc0ff_ee01);
        assert_eq!(message.expire(), 0);
        assert_eq!(message.timeout(), 2);
        assert_eq!(message.state_flags(), 0);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 84];
        let mut message = UpdC::new_unchecked(&mut bytes[..]);
        message.set_id(0x5f3e_0001_0000_002a);
        golden_repr().src.emit(&mut message.src_mut());
        golden_repr().dst.emit(&mut message.dst_mut());
        message.set_creatorid(0xc0ff_ee01);
        message.set_expire(0);
        message.set_timeout(2);
        message.set_state_flags(0);
        message.clear_padding();
        assert_eq!(bytes, GOLDEN);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let repr = UpdCRepr::parse(&UpdC::new_checked(&GOLDEN[..]).unwrap()).unwrap();
        assert_eq!(repr, golden_repr());
        let mut bytes = [0xa5u8; 84];
        repr.emit(&mut UpdC::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, GOLDEN);
        assert!(
            repr.to_string()
                .starts_with("id 5f3e00010000002a creator c0ffee01 timeout 2 src [state 4")
        );
    }

    #[test]
    fn validate_refuses_what_openbsd_refuses() {
        let good = golden_repr();
        assert_eq!(good.validate(), Ok(()));
        let mut late = good;
        late.timeout = 20;
        assert_eq!(
            late.validate(),
            Err(Error::BadValue {
                action: Action::UpdC,
                field: "timeout",
                value: 20
            })
        );
        late.timeout = 19;
        assert_eq!(late.validate(), Ok(()));
        let mut proxy = good;
        proxy.src.tcp.state = 12;
        proxy.dst.tcp.state = 12;
        assert_eq!(proxy.validate(), Ok(()));
        proxy.dst.tcp.state = 13;
        assert!(matches!(
            proxy.validate(),
            Err(Error::BadValue {
                field: "dst.state",
                value: 13,
                ..
            })
        ));
        proxy.src.tcp.state = 13;
        assert!(matches!(
            proxy.validate(),
            Err(Error::BadValue {
                field: "src.state",
                ..
            })
        ));
    }

    #[test]
    fn impossible_len() {
        assert_eq!(
            UpdC::new_checked(&GOLDEN[..83]),
            Err(Error::Truncated {
                needed: 84,
                available: 83
            })
        );
    }
}
