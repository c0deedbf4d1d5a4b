//! One side of a state as compressed updates and full states carry it: `struct pfsync_state_peer` (32 bytes)
//! with its `struct pfsync_state_scrub` (8 bytes), pfsync spec section 4.1. What the numbers mean to pf's TCP
//! tracking is `state`'s and `merge`'s business.

use std::fmt;

use super::{Result, fixed_view, view_fields};
use crate::state::TcpPeer;

mod field {
    use std::ops::Range;

    // struct pfsync_state_scrub
    pub const SCRUB_FLAGS: Range<usize> = 0..2;
    pub const SCRUB_TTL: usize = 2;
    pub const SCRUB_VALID: usize = 3;
    pub const SCRUB_TS_MOD: Range<usize> = 4..8;

    // struct pfsync_state_peer
    pub const SCRUB: Range<usize> = 0..8;
    pub const SEQLO: Range<usize> = 8..12;
    pub const SEQHI: Range<usize> = 12..16;
    pub const SEQDIFF: Range<usize> = 16..20;
    pub const MAX_WIN: Range<usize> = 20..22;
    pub const MSS: Range<usize> = 22..24;
    pub const STATE: usize = 24;
    pub const WSCALE: usize = 25;
    pub const PAD: Range<usize> = 26..32;
}

/// Size of the scrub part.
pub const SCRUB_LEN: usize = field::SCRUB_TS_MOD.end;
/// Size of a peer.
pub const PEER_LEN: usize = field::PAD.end;

fixed_view!(
    /// A view of a peer's scrub data.
    StateScrub,
    SCRUB_LEN
);

view_fields!(StateScrub {
    /// `pfss_flags`; only 0x0001 (`PFSS_TIMESTAMP`) is carried.
    flags, set_flags: u16 = field::SCRUB_FLAGS;
    /// `pfss_ttl`, the TTL scrub enforces.
    ttl, set_ttl: u8 = field::SCRUB_TTL;
    /// `scrub_flag`: 0x01 when the sender has scrub state for this peer.
    valid, set_valid: u8 = field::SCRUB_VALID;
    /// `pfss_ts_mod`, the timestamp modulator.
    ts_mod, set_ts_mod: u32 = field::SCRUB_TS_MOD;
});

fixed_view!(
    /// A view of one side of a state.
    StatePeer,
    PEER_LEN
);

view_fields!(StatePeer {
    /// Highest sequence number sent plus its length.
    seqlo, set_seqlo: u32 = field::SEQLO;
    /// Highest acknowledgement seen from the other side plus its window.
    seqhi, set_seqhi: u32 = field::SEQHI;
    /// Sequence number modulator.
    seqdiff, set_seqdiff: u32 = field::SEQDIFF;
    /// Largest window seen, unscaled.
    max_win, set_max_win: u16 = field::MAX_WIN;
    /// Announced MSS.
    mss, set_mss: u16 = field::MSS;
    /// TCP state (0..=12), or UDP/other pseudo-state.
    state, set_state: u8 = field::STATE;
    /// 0x80 when the window scale option was seen, plus the shift.
    wscale, set_wscale: u8 = field::WSCALE;
});

impl<T: AsRef<[u8]>> StatePeer<T> {
    /// The scrub part.
    pub fn scrub(&self) -> StateScrub<&[u8]> {
        StateScrub::new_unchecked(&self.buffer.as_ref()[field::SCRUB])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> StatePeer<T> {
    /// The scrub part, writable.
    pub fn scrub_mut(&mut self) -> StateScrub<&mut [u8]> {
        StateScrub::new_unchecked(&mut self.buffer.as_mut()[field::SCRUB])
    }

    /// Zeroes the padding.
    pub fn clear_padding(&mut self) {
        self.buffer.as_mut()[field::PAD].fill(0);
    }
}

/// A peer's scrub data (zero when the sender does not scrub).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScrubRepr {
    /// `pfss_flags`.
    pub flags: u16,
    /// `pfss_ttl`.
    pub ttl: u8,
    /// `scrub_flag` (0x01 valid).
    pub valid: u8,
    /// `pfss_ts_mod`.
    pub ts_mod: u32,
}

impl ScrubRepr {
    /// Reads scrub data.
    pub fn parse<T: AsRef<[u8]>>(scrub: &StateScrub<T>) -> ScrubRepr {
        ScrubRepr {
            flags: scrub.flags(),
            ttl: scrub.ttl(),
            valid: scrub.valid(),
            ts_mod: scrub.ts_mod(),
        }
    }

    /// Writes scrub data.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, scrub: &mut StateScrub<T>) {
        scrub.set_flags(self.flags);
        scrub.set_ttl(self.ttl);
        scrub.set_valid(self.valid);
        scrub.set_ts_mod(self.ts_mod);
    }
}

/// One side of a state: pf's tracking numbers and its scrub data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PeerRepr {
    /// Sequence window, window, MSS, state and window scale.
    pub tcp: TcpPeer,
    /// Scrub data.
    pub scrub: ScrubRepr,
}

impl PeerRepr {
    /// Reads a peer. Every value is representable; range checks are `Message::validate`'s.
    pub fn parse<T: AsRef<[u8]>>(peer: &StatePeer<T>) -> Result<PeerRepr> {
        Ok(PeerRepr {
            tcp: TcpPeer {
                seqlo: peer.seqlo(),
                seqhi: peer.seqhi(),
                seqdiff: peer.seqdiff(),
                max_win: peer.max_win(),
                mss: peer.mss(),
                state: peer.state(),
                wscale: peer.wscale(),
            },
            scrub: ScrubRepr::parse(&peer.scrub()),
        })
    }

    /// Bytes a peer takes.
    pub const fn buffer_len(&self) -> usize {
        PEER_LEN
    }

    /// Writes a peer, padding zeroed.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, peer: &mut StatePeer<T>) {
        self.scrub.emit(&mut peer.scrub_mut());
        peer.set_seqlo(self.tcp.seqlo);
        peer.set_seqhi(self.tcp.seqhi);
        peer.set_seqdiff(self.tcp.seqdiff);
        peer.set_max_win(self.tcp.max_win);
        peer.set_mss(self.tcp.mss);
        peer.set_state(self.tcp.state);
        peer.set_wscale(self.tcp.wscale);
        peer.clear_padding();
    }
}

impl fmt::Display for PeerRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tcp;
        write!(
            f,
            "[state {} seq {}:{} diff {} win {} mss {} ws {:#04x}",
            t.state, t.seqlo, t.seqhi, t.seqdiff, t.max_win, t.mss, t.wscale
        )?;
        if self.scrub != ScrubRepr::default() {
            let s = &self.scrub;
            write!(
                f,
                " scrub flags {:#06x} ttl {} valid {} ts_mod {}",
                s.flags, s.ttl, s.valid, s.ts_mod
            )?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::Error;

    /// A peer in ESTABLISHED with window scaling and timestamp scrubbing, field by field (spec 4.1).
    #[rustfmt::skip]
    pub(crate) static GOLDEN: [u8; 32] = [
        0x00, 0x01, // scrub.pfss_flags: PFSS_TIMESTAMP
        0x40, // scrub.pfss_ttl 64
        0x01, // scrub.scrub_flag: valid
        0x12, 0x34, 0x56, 0x78, // scrub.pfss_ts_mod 0x12345678
        0x00, 0x0f, 0x42, 0x40, // seqlo 1_000_000
        0x00, 0x10, 0x3d, 0x41, // seqhi 1_064_257
        0x00, 0x00, 0x00, 0x07, // seqdiff 7
        0xff, 0xff, // max_win 65535
        0x05, 0xb4, // mss 1460
        0x04, // state 4, ESTABLISHED
        0x87, // wscale: seen, shift 7
        0, 0, 0, 0, 0, 0, // pad
    ];

    pub(crate) fn golden_repr() -> PeerRepr {
        PeerRepr {
            tcp: TcpPeer {
                seqlo: 1_000_000,
                seqhi: 1_064_257,
                seqdiff: 7,
                max_win: 65535,
                mss: 1460,
                state: 4,
                wscale: 0x87,
            },
            scrub: ScrubRepr {
                flags: 1,
                ttl: 64,
                valid: 1,
                ts_mod: 0x1234_5678,
            },
        }
    }

    #[test]
    fn deconstruct() {
        let peer = StatePeer::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(peer.scrub().flags(), 1);
        assert_eq!(peer.scrub().ttl(), 64);
        assert_eq!(peer.scrub().valid(), 1);
        assert_eq!(peer.scrub().ts_mod(), 0x1234_5678);
        assert_eq!(peer.seqlo(), 1_000_000);
        assert_eq!(peer.seqhi(), 1_064_257);
        assert_eq!(peer.seqdiff(), 7);
        assert_eq!(peer.max_win(), 65535);
        assert_eq!(peer.mss(), 1460);
        assert_eq!(peer.state(), 4);
        assert_eq!(peer.wscale(), 0x87);
    }

    #[test]
    fn construct() {
        let mut bytes = [0xa5u8; 32];
        let mut peer = StatePeer::new_unchecked(&mut bytes[..]);
        {
            let mut scrub = peer.scrub_mut();
            scrub.set_flags(1);
            scrub.set_ttl(64);
            scrub.set_valid(1);
            scrub.set_ts_mod(0x1234_5678);
        }
        peer.set_seqlo(1_000_000);
        peer.set_seqhi(1_064_257);
        peer.set_seqdiff(7);
        peer.set_max_win(65535);
        peer.set_mss(1460);
        peer.set_state(4);
        peer.set_wscale(0x87);
        peer.clear_padding();
        assert_eq!(bytes, GOLDEN);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let repr = PeerRepr::parse(&StatePeer::new_checked(&GOLDEN[..]).unwrap()).unwrap();
        assert_eq!(repr, golden_repr());
        let mut bytes = [0xa5u8; 32];
        repr.emit(&mut StatePeer::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, GOLDEN);
        assert_eq!(
            repr.to_string(),
            "[state 4 seq 1000000:1064257 diff 7 win 65535 mss 1460 ws 0x87 \
             scrub flags 0x0001 ttl 64 valid 1 ts_mod 305419896]"
        );
    }

    #[test]
    fn impossible_len() {
        assert_eq!(
            StatePeer::new_checked(&GOLDEN[..31]),
            Err(Error::Truncated {
                needed: 32,
                available: 31
            })
        );
    }
}
