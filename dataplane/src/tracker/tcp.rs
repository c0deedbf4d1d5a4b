//! pf's TCP state tracking (OpenBSD `pf_tcp_track_full`, after Guido van Rooij's "Real stateful TCP packet
//! filtering in IP Filter"): each side's `seqlo`/`seqhi`/`max_win`/`wscale` bound what the next segment may
//! carry and acknowledge. The same checks run on states learned from peers: a synced state is tracked
//! exactly like a local one, never loosened.
//!
//! This module owns the per-segment decision and the state-machine steps. It does not own timeouts in
//! seconds (the table maps [`TimeoutClass`] to the profile's values) nor sequence modulation (we never
//! rewrite sequence numbers; `seqdiff` is carried for sync compatibility only, see `ack` below).

use tandem_sync::seq;
use tandem_sync::state::{TcpPeer, TimeoutClass, WSCALE_SEEN, WSCALE_SHIFT, tcp_state};

/// pf's `MAXACKWINDOW`: how far an acknowledgement may run ahead of the data the firewall saw, 64 KB plus
/// "1500, an arbitrary fudge factor". Not scaled by window scaling.
pub const MAX_ACK_WINDOW: u32 = 0xffff + 1500;

/// TCP header flags.
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
    /// URG.
    pub const URG: u8 = 0x20;
}

/// RFC 7323 section 2.3: shifts above 14 are treated as 14.
const MAX_WSCALE_SHIFT: u8 = 14;
/// The largest unscaled window (`TCP_MAXWIN`).
const MAX_UNSCALED_WINDOW: u32 = 65535;

/// What the tracker needs of one TCP segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSegment {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (meaningful when ACK is set).
    pub ack: u32,
    /// Header flags ([`flags`]).
    pub flags: u8,
    /// Window field, unscaled as on the wire.
    pub win: u16,
    /// Payload bytes.
    pub payload_len: u32,
    /// The window scale option's shift, when this segment is a SYN that carries one.
    pub wscale: Option<u8>,
    /// The MSS option, when this segment is a SYN that carries one.
    pub mss: Option<u16>,
}

impl TcpSegment {
    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Which side of a state a packet comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The side whose packet created the state (pf's `src` peer).
    Initiator = 0,
    /// The other side (pf's `dst` peer).
    Responder = 1,
}

impl Side {
    /// The other side.
    pub fn other(self) -> Side {
        match self {
            Side::Initiator => Side::Responder,
            Side::Responder => Side::Initiator,
        }
    }

    /// Index into a `[TcpPeer; 2]`.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// The outcome of a segment the tracker accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpAccept {
    /// A full accept refreshes the state's expiry with `timeout`; a loose accept (handshake oddities, or
    /// just after a close) leaves the expiry alone, as pf does against floods.
    pub refresh: Option<TimeoutClass>,
    /// The segment's acknowledgement number, when pf's acknowledgement check ran on it (a full accept of
    /// a segment with ACK whose number was not substituted); `None` when it was not checked, so nothing
    /// may be concluded from it.
    pub checked_ack: Option<u32>,
}

/// Why the tracker refuses a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpRefusal {
    /// Outside the windows (pf's `PFRES_BADSTATE`).
    OutOfWindow,
    /// Outside the windows only ahead of them: the segment reaches `by` bytes past the receiver's right
    /// edge, or acknowledges `by` bytes more than pf allows past what the other side was seen to send.
    /// Everything else about it fits. On a node that learns the other direction from a peer, a newer
    /// update may cure exactly this; the state is unchanged.
    Ahead {
        /// How far ahead, in bytes.
        by: u32,
    },
    /// A new SYN for a connection whose both sides have closed: the state should be removed so that the
    /// retransmitted SYN creates a fresh one (port reuse).
    ReuseOfClosed,
    /// A SYN on a connection established on both sides (a forgery, or a host that rebooted and reuses its
    /// ports): pf drops it and answers with a challenge ACK (RFC 5961 section 4) so that a live sender
    /// resets; the state is left as it was.
    SynOnEstablished {
        /// The challenge ACK's sequence number: what the other side has sent so far.
        seq: u32,
        /// Its acknowledgement: what the SYN's sender has sent so far.
        ack: u32,
    },
}

/// pf's `pf_normalize_tcp`, run on every TCP segment before any lookup: the flags after normalization, or
/// `None` for a combination no stack sends (SYN with RST; FIN, PSH or URG without ACK; no SYN, ACK or
/// RST at all). A FIN on a SYN that carries ACK is cleared, as pf does.
pub fn normalize_flags(bits: u8) -> Option<u8> {
    use flags::*;
    if bits & SYN != 0 {
        if bits & RST != 0 {
            return None;
        }
    } else if bits & (ACK | RST) == 0 {
        return None;
    }
    if bits & ACK == 0 && bits & (FIN | PSH | URG) != 0 {
        return None;
    }
    if bits & SYN != 0 {
        Some(bits & !FIN)
    } else {
        Some(bits)
    }
}

/// The window-scale byte pf keeps for a SYN's option: the flag plus the (capped) shift, or 0 when absent.
fn wscale_byte(seg: &TcpSegment) -> u8 {
    seg.wscale
        .map_or(0, |shift| WSCALE_SEEN | shift.min(MAX_WSCALE_SHIFT))
}

/// The two peers of a new state created by `seg` from the initiator (pf's `pf_create_state` for TCP).
pub fn initial_peers(seg: &TcpSegment) -> [TcpPeer; 2] {
    let mut src = TcpPeer {
        seqlo: seg.seq,
        seqhi: seg.seq.wrapping_add(seg.payload_len).wrapping_add(1),
        max_win: seg.win.max(1),
        state: tcp_state::SYN_SENT,
        mss: seg.mss.unwrap_or(0),
        ..TcpPeer::default()
    };
    if seg.has(flags::SYN) {
        src.seqhi = src.seqhi.wrapping_add(1);
        src.wscale = wscale_byte(seg);
    }
    let shift = src.wscale & WSCALE_SHIFT;
    if shift != 0 {
        // Remove the scale factor from the initial window, rounding up.
        let win = u32::from(src.max_win) + (1 << shift) - 1;
        src.max_win = (win >> shift) as u16;
    }
    if seg.has(flags::FIN) {
        src.seqhi = src.seqhi.wrapping_add(1);
    }
    let dst = TcpPeer {
        seqhi: 1,
        max_win: 1,
        state: tcp_state::CLOSED,
        ..TcpPeer::default()
    };
    [src, dst]
}

/// The timeout class pf picks from the two sides' states after a full accept.
pub fn timeout_class(a: &TcpPeer, b: &TcpPeer) -> TimeoutClass {
    use tcp_state::*;
    if a.state >= FIN_WAIT_2 && b.state >= FIN_WAIT_2 {
        TimeoutClass::TcpClosed
    } else if a.state >= CLOSING && b.state >= CLOSING {
        TimeoutClass::TcpFinWait
    } else if a.state < ESTABLISHED || b.state < ESTABLISHED {
        TimeoutClass::TcpOpening
    } else if a.state >= CLOSING || b.state >= CLOSING {
        TimeoutClass::TcpClosing
    } else {
        TimeoutClass::TcpEstablished
    }
}

/// Checks `seg`, sent by `from`, against the state's peers and updates them as pf does.
pub fn track(
    peers: &mut [TcpPeer; 2],
    from: Side,
    seg: &TcpSegment,
) -> Result<TcpAccept, TcpRefusal> {
    track_with(peers, from, seg, Easing::Pf)
}

/// Checks `seg`, a bare ACK an endpoint sent in answer to a probe (see the worker's takeover probe),
/// as strictly as a data segment: its sequence number must lie in the window as a data segment's must,
/// and then it moves the side's `seqlo` as data ending there would. pf lets a segment without data pass
/// whatever its sequence number (stacks put odd numbers in them) and so learns nothing from it; held to a
/// data segment's checks, the answer teaches the state what an in-window segment of one byte ending there
/// would, no more. Refused answers are left to [`track`].
pub fn track_answer(
    peers: &mut [TcpPeer; 2],
    from: Side,
    seg: &TcpSegment,
) -> Result<TcpAccept, TcpRefusal> {
    track_with(peers, from, seg, Easing::None)
}

/// Whether a segment without data has its sequence number checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Easing {
    /// pf's: not checked (it is taken to be `seqlo`).
    Pf,
    /// Checked as a data segment's.
    None,
}

fn track_with(
    peers: &mut [TcpPeer; 2],
    from: Side,
    seg: &TcpSegment,
    easing: Easing,
) -> Result<TcpAccept, TcpRefusal> {
    let (src_i, dst_i) = (from.index(), from.other().index());
    let mut src = peers[src_i];
    let mut dst = peers[dst_i];

    // pf_test_state: a SYN on a connection closed on both sides starts a new connection on the same ports.
    // One inside the old connection's window is rather a late duplicate of its own SYN: it goes, the
    // state stays (pf would purge the state for it too).
    if seg.flags & (flags::SYN | flags::ACK) == flags::SYN
        && src.state >= tcp_state::FIN_WAIT_2
        && dst.state >= tcp_state::FIN_WAIT_2
    {
        return Err(if quoted_segment_fits(peers, from, seg.seq) {
            TcpRefusal::OutOfWindow
        } else {
            TcpRefusal::ReuseOfClosed
        });
    }
    // pf_test_state: a SYN on a connection both sides have established is not a new connection and must
    // neither pass nor move the window (an in-window forged SYN would otherwise pass, since a segment
    // without ACK skips the acknowledgement check).
    if seg.flags & (flags::SYN | flags::ACK) == flags::SYN
        && src.state >= tcp_state::ESTABLISHED
        && dst.state >= tcp_state::ESTABLISHED
    {
        return Err(TcpRefusal::SynOnEstablished {
            seq: dst.seqlo,
            ack: src.seqlo,
        });
    }

    let (mut sws, mut dws) = if src.wscale != 0 && dst.wscale != 0 && !seg.has(flags::SYN) {
        (src.wscale & WSCALE_SHIFT, dst.wscale & WSCALE_SHIFT)
    } else {
        (0, 0)
    };
    let mut win = u32::from(seg.win);
    let orig_seq = seg.seq;
    let mut seqn = seg.seq;
    // We never modulate, but a peer's state may carry a modulator: remove it from the ack as pf would.
    let mut ack = seg.ack.wrapping_sub(dst.seqdiff);
    let mut ack_substituted = false;
    let mut end;
    let mut data_end;

    // First packet from this side. pf tests `seqlo == 0` alone, so on a side whose sequence numbers have
    // wrapped to exactly 0 any segment, a blind reset included, would re-seed the window.
    if src.unheard() {
        end = seqn.wrapping_add(seg.payload_len);
        if seg.has(flags::SYN) {
            end = end.wrapping_add(1);
            if dst.wscale & WSCALE_SEEN != 0 {
                src.wscale = wscale_byte(seg);
                if src.wscale & WSCALE_SEEN != 0 {
                    // Remove the scale factor from the initial window.
                    sws = src.wscale & WSCALE_SHIFT;
                    win = (win + (1 << sws) - 1) >> sws;
                    dws = dst.wscale & WSCALE_SHIFT;
                } else {
                    // The other side scales but this one does not: undo the other side's scaling.
                    let shift = dst.wscale & WSCALE_SHIFT;
                    dst.max_win = (u32::from(dst.max_win) << shift).min(MAX_UNSCALED_WINDOW) as u16;
                    dst.wscale = 0;
                }
            }
            if let Some(mss) = seg.mss {
                src.mss = mss;
            }
        }
        data_end = end;
        if seg.has(flags::FIN) {
            end = end.wrapping_add(1);
        }
        src.seqlo = seqn;
        if src.state < tcp_state::SYN_SENT {
            src.state = tcp_state::SYN_SENT;
        }
        // The window may need to slide: seqhi may have been set by a stack quirk, or we picked up the
        // connection after its establishment.
        let reach = end.wrapping_add((u32::from(dst.max_win) << dws).max(1));
        if src.seqhi == 1 || seq::geq(reach, src.seqhi) {
            src.seqhi = reach;
        }
        if win > u32::from(src.max_win) {
            src.max_win = win.min(u32::from(u16::MAX)) as u16;
        }
    } else {
        end = seqn.wrapping_add(seg.payload_len);
        if seg.has(flags::SYN) {
            end = end.wrapping_add(1);
        }
        data_end = end;
        if seg.has(flags::FIN) {
            end = end.wrapping_add(1);
        }
    }

    if !seg.has(flags::ACK) {
        // Let it pass through the ack-skew check.
        ack = dst.seqlo;
        ack_substituted = true;
    } else if (ack == 0 && seg.flags & (flags::ACK | flags::RST) == flags::ACK | flags::RST)
        || dst.state < tcp_state::SYN_SENT
    {
        // Stacks set no ack in a RST|ACK answering a SYN that timed out, or before the peer spoke. Where
        // the other side's sequence space has just wrapped to 0, a zero acknowledgement is the exact one
        // and counts as checked (a blind guess of it is as unlikely as of any other).
        ack_substituted = ack != dst.seqlo;
        ack = dst.seqlo;
    }

    if seqn == end && easing == Easing::Pf {
        // Ease sequencing restrictions on segments without data.
        seqn = src.seqlo;
        data_end = seqn;
        end = seqn;
    }

    let ackskew = seq::diff(dst.seqlo, ack);
    let max_ack = MAX_ACK_WINDOW as i64;

    let right_edge = seq::geq(src.seqhi, data_end);
    let left_edge = seq::geq(seqn, src.seqlo.wrapping_sub(u32::from(dst.max_win) << dws));
    let ack_not_ahead = i64::from(ackskew) >= -max_ack;
    let ack_not_behind = i64::from(ackskew) <= max_ack << sws;
    let in_window = right_edge
        && left_edge
        && ack_not_ahead
        && ack_not_behind
        && (!seg.has(flags::RST)
            || rst_acceptable(&src, &dst, orig_seq, ackskew, !ack_substituted, dws));
    // Only ahead: what a node on an asymmetric path sees when the other direction's progress reaches it
    // later (through sync) than this segment does. Resets are never held.
    let ahead =
        (!right_edge || !ack_not_ahead) && left_edge && ack_not_behind && !seg.has(flags::RST);
    let ahead_by = {
        let past_edge = if right_edge {
            0
        } else {
            seq::diff(data_end, src.seqhi).max(0) as u32
        };
        let past_ack = if ack_not_ahead {
            0
        } else {
            (-i64::from(ackskew) - max_ack).max(0) as u32
        };
        past_edge.max(past_ack)
    };

    let outcome = if in_window {
        if win > u32::from(src.max_win) {
            src.max_win = win.min(u32::from(u16::MAX)) as u16;
        }
        if seq::gt(end, src.seqlo) {
            src.seqlo = end;
        }
        let scaled = win << sws;
        if seq::geq(ack.wrapping_add(scaled), dst.seqhi) {
            dst.seqhi = ack.wrapping_add(scaled.max(1));
        }
        if seg.has(flags::SYN) && src.state < tcp_state::SYN_SENT {
            src.state = tcp_state::SYN_SENT;
        }
        if seg.has(flags::FIN) && src.state < tcp_state::CLOSING {
            src.state = tcp_state::CLOSING;
        }
        if seg.has(flags::ACK) {
            if dst.state == tcp_state::SYN_SENT {
                dst.state = tcp_state::ESTABLISHED;
            } else if dst.state == tcp_state::CLOSING {
                dst.state = tcp_state::FIN_WAIT_2;
            }
        }
        if seg.has(flags::RST) {
            src.state = tcp_state::TIME_WAIT;
            dst.state = tcp_state::TIME_WAIT;
        }
        Ok(TcpAccept {
            refresh: Some(timeout_class(&src, &dst)),
            checked_ack: (!ack_substituted).then_some(seg.ack),
        })
    } else if (dst.state < tcp_state::SYN_SENT
        || dst.state >= tcp_state::FIN_WAIT_2
        || src.state >= tcp_state::FIN_WAIT_2)
        && seq::geq(src.seqhi.wrapping_add(MAX_ACK_WINDOW), data_end)
        && seq::geq(seqn, src.seqlo.wrapping_sub(MAX_ACK_WINDOW))
    {
        // Loose accept: shotgunned SYNs, a connection picked up after establishment, or stray packets just
        // after a close. The expiry is not refreshed, so a flood cannot keep the state alive; a correct
        // answer from the other side goes through the full checks.
        if win > u32::from(src.max_win) {
            src.max_win = win.min(u32::from(u16::MAX)) as u16;
        }
        if seq::gt(end, src.seqlo) {
            src.seqlo = end;
        }
        let scaled = win << sws;
        if seq::geq(ack.wrapping_add(scaled), dst.seqhi) {
            dst.seqhi = ack.wrapping_add(scaled.max(1));
        }
        if seg.has(flags::FIN) && src.state < tcp_state::CLOSING {
            src.state = tcp_state::CLOSING;
        }
        if seg.has(flags::RST) {
            src.state = tcp_state::TIME_WAIT;
            dst.state = tcp_state::TIME_WAIT;
        }
        Ok(TcpAccept {
            refresh: None,
            checked_ack: None,
        })
    } else {
        if peers[0].state == tcp_state::SYN_SENT && peers[1].state == tcp_state::SYN_SENT {
            // Both sides think they opened: forget this side's numbers so its next SYN starts afresh.
            src.seqlo = 0;
            src.seqhi = 1;
            src.max_win = 1;
            peers[src_i] = src;
        }
        if ahead {
            return Err(TcpRefusal::Ahead { by: ahead_by });
        }
        return Err(TcpRefusal::OutOfWindow);
    };
    peers[src_i] = src;
    peers[dst_i] = dst;
    outcome
}

/// pf (OpenBSD pf.c 1.1218): a RST must carry exactly the expected sequence number, or one off, or, in
/// answer to data we have seen, lie within a window back with an exact acknowledgement (RFC 5961 section 3).
/// One hardening over pf: that last clause needs an acknowledgement that was really checked. pf replaces
/// the zero acknowledgement of a RST|ACK by the expected one, so a blind RST|ACK with ack 0 anywhere in the
/// window behind would pass it; RFC 5961 wants such a reset answered with a challenge ACK, not accepted.
fn rst_acceptable(
    src: &TcpPeer,
    dst: &TcpPeer,
    orig_seq: u32,
    ackskew: i32,
    ack_checked: bool,
    dws: u8,
) -> bool {
    orig_seq == src.seqlo
        || orig_seq == src.seqlo.wrapping_add(1)
        || orig_seq.wrapping_add(1) == src.seqlo
        || (ack_checked
            && ackskew == 0
            && seq::leq(orig_seq, src.seqlo.wrapping_add(1))
            && seq::geq(
                orig_seq,
                src.seqlo.wrapping_sub(u32::from(dst.max_win) << dws),
            ))
}

/// Whether an ICMP error quoting a TCP segment with sequence number `quoted_seq`, sent by `sender`, fits
/// the state: its sequence number must lie inside `sender`'s window (pf's `pf_icmp_state_lookup`).
pub fn quoted_segment_fits(peers: &[TcpPeer; 2], sender: Side, quoted_seq: u32) -> bool {
    let src = &peers[sender.index()];
    let dst = &peers[sender.other().index()];
    let dws = if src.wscale != 0 && dst.wscale != 0 {
        dst.wscale & WSCALE_SHIFT
    } else {
        0
    };
    seq::geq(src.seqhi, quoted_seq)
        && seq::geq(
            quoted_seq,
            src.seqlo.wrapping_sub(u32::from(dst.max_win) << dws),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use Side::{Initiator as C, Responder as S};
    use flags::*;

    fn seg(seq: u32, ack: u32, flags: u8, win: u16, len: u32) -> TcpSegment {
        TcpSegment {
            seq,
            ack,
            flags,
            win,
            payload_len: len,
            wscale: None,
            mss: None,
        }
    }

    /// A handshake client 1000 -> server 5000, windows 65535, no scaling; returns the established peers.
    fn established() -> [TcpPeer; 2] {
        let syn = seg(1000, 0, SYN, 65535, 0);
        let mut peers = initial_peers(&syn);
        track(&mut peers, S, &seg(5000, 1001, SYN | ACK, 65535, 0)).expect("SYN-ACK passes");
        track(&mut peers, C, &seg(1001, 5001, ACK, 65535, 0)).expect("ACK passes");
        peers
    }

    #[test]
    fn a_bare_ack_teaches_pf_nothing_but_a_probes_answer_checked_as_data_moves_seqlo() {
        let mut peers = established();
        let seqlo = peers[0].seqlo;
        // pf: a bare ACK passes whatever its sequence number, and seqlo stays.
        track(&mut peers, C, &seg(1001 + 40_000, 5001, ACK, 65535, 0)).expect("eased");
        assert_eq!(peers[0].seqlo, seqlo);
        // As an answer, inside the window: seqlo moves there.
        let mut answered = established();
        track_answer(&mut answered, C, &seg(1001 + 40_000, 5001, ACK, 65535, 0))
            .expect("in window");
        assert_eq!(answered[0].seqlo, 1001 + 40_000);
        // Past the right edge the server granted (5001 + 65535), an answer is refused: it cannot claim
        // more than a data segment could.
        let mut beyond = established();
        assert!(track_answer(&mut beyond, C, &seg(1001 + 70_000, 5001, ACK, 65535, 0)).is_err());
        assert_eq!(beyond[0].seqlo, seqlo);
    }

    #[test]
    fn a_handshake_establishes_both_sides() {
        let peers = established();
        assert_eq!(peers[0].state, tcp_state::ESTABLISHED);
        assert_eq!(peers[1].state, tcp_state::ESTABLISHED);
        assert_eq!(
            timeout_class(&peers[0], &peers[1]),
            TimeoutClass::TcpEstablished
        );
        // pf never tracks the creating SYN, so the initiator's seqlo stays at its ISN until data flows,
        // while the responder's SYN-ACK, tracked, counts its SYN.
        assert_eq!(peers[0].seqlo, 1000);
        assert_eq!(peers[1].seqlo, 5001);
    }

    #[test]
    fn the_creating_syn_records_its_scale_and_unscaled_window() {
        let syn = TcpSegment {
            wscale: Some(7),
            mss: Some(1460),
            ..seg(1000, 0, SYN, 64240, 0)
        };
        let peers = initial_peers(&syn);
        assert_eq!(peers[0].wscale, WSCALE_SEEN | 7);
        assert_eq!(peers[0].max_win, 64240u32.div_ceil(128) as u16);
        assert_eq!(peers[0].mss, 1460);
        assert_eq!(peers[0].seqhi, 1002);
        assert_eq!((peers[1].seqhi, peers[1].max_win), (1, 1));
    }

    #[test]
    fn data_inside_the_window_passes_and_advances_seqlo() {
        let mut peers = established();
        let accepted =
            track(&mut peers, C, &seg(1001, 5001, ACK | PSH, 65535, 1448)).expect("in window");
        assert_eq!(accepted.refresh, Some(TimeoutClass::TcpEstablished));
        assert_eq!(peers[0].seqlo, 1001 + 1448);
    }

    #[test]
    fn data_past_the_receivers_window_is_refused() {
        let mut peers = established();
        // The server's window is 65535 from ack 1001: a segment ending beyond 1001 + 65535 is outside.
        let beyond = 1001 + 65535 - 100;
        assert_eq!(
            track(&mut peers, C, &seg(beyond, 5001, ACK, 65535, 1448)),
            Err(TcpRefusal::Ahead { by: 1448 - 100 })
        );
    }

    #[test]
    fn an_ack_more_than_maxackwindow_ahead_of_seen_data_is_refused() {
        let mut peers = established();
        let seen = peers[0].seqlo;
        let too_far = seen + MAX_ACK_WINDOW + 1;
        assert_eq!(
            track(&mut peers, S, &seg(5001, too_far, ACK, 65535, 0)),
            Err(TcpRefusal::Ahead { by: 1 })
        );
        let just_inside = seen + MAX_ACK_WINDOW;
        assert!(track(&mut peers, S, &seg(5001, just_inside, ACK, 65535, 0)).is_ok());
    }

    #[test]
    fn retransmissions_within_one_window_back_pass() {
        let mut peers = established();
        for i in 0..10 {
            track(&mut peers, C, &seg(1001 + i * 1448, 5001, ACK, 65535, 1448)).expect("in order");
        }
        assert!(
            track(&mut peers, C, &seg(1001, 5001, ACK, 65535, 1448)).is_ok(),
            "old retransmission"
        );
    }

    #[test]
    fn a_reset_must_hit_the_expected_sequence_number() {
        let mut peers = established();
        assert_eq!(
            track(&mut peers, S, &seg(5001 + 3000, 0, RST, 0, 0)),
            Err(TcpRefusal::OutOfWindow)
        );
        let accepted = track(&mut peers, S, &seg(5001, 0, RST, 0, 0)).expect("exact RST");
        assert_eq!(accepted.refresh, Some(TimeoutClass::TcpClosed));
        assert_eq!(
            (peers[0].state, peers[1].state),
            (tcp_state::TIME_WAIT, tcp_state::TIME_WAIT)
        );
    }

    #[test]
    fn a_reset_behind_with_the_exact_acknowledgement_passes_where_that_acknowledgement_is_zero() {
        // The server's ISN sits 1 below the wrap, so after its SYN-ACK the client must acknowledge 0.
        let syn = seg(1000, 0, SYN, 65535, 0);
        let mut peers = initial_peers(&syn);
        track(&mut peers, S, &seg(u32::MAX, 1001, SYN | ACK, 65535, 0)).expect("SYN-ACK");
        track(&mut peers, C, &seg(1001, 0, ACK, 65535, 0)).expect("ACK");
        track(&mut peers, C, &seg(1001, 0, ACK | PSH, 65535, 1000)).expect("data");
        assert_eq!(peers[1].seqlo, 0);
        // A RST|ACK from the client a little behind its seqlo (2001), acknowledging exactly 0.
        let mut blind = peers;
        assert!(track(&mut blind, C, &seg(1500, 0, RST | ACK, 0, 0)).is_ok());
        // The same reset acknowledging something else is blind.
        assert_eq!(
            track(&mut peers, C, &seg(1500, 7, RST | ACK, 0, 0)),
            Err(TcpRefusal::OutOfWindow)
        );
    }

    #[test]
    fn a_side_whose_sequence_numbers_wrap_to_zero_is_still_checked() {
        // The server's data ends exactly at the wrap: its seqlo is 0 and it is not a new side.
        let syn = seg(1000, 0, SYN, 65535, 0);
        let mut peers = initial_peers(&syn);
        track(
            &mut peers,
            S,
            &seg(u32::MAX - 1000, 1001, SYN | ACK, 65535, 0),
        )
        .expect("SYN-ACK");
        track(&mut peers, C, &seg(1001, u32::MAX - 999, ACK, 65535, 0)).expect("ACK");
        track(
            &mut peers,
            S,
            &seg(u32::MAX - 999, 1001, ACK | PSH, 65535, 1000),
        )
        .expect("data");
        assert_eq!(peers[1].seqlo, 0);
        // A blind reset far behind is refused and leaves the state alone.
        let before = peers;
        assert_eq!(
            track(&mut peers, S, &seg(0u32.wrapping_sub(40_000), 0, RST, 0, 0)),
            Err(TcpRefusal::OutOfWindow)
        );
        assert_eq!(peers, before);
        // Data past the right edge is still only ahead.
        assert!(matches!(
            track(&mut peers, S, &seg(70_000, 1001, ACK, 65535, 100)),
            Err(TcpRefusal::Ahead { .. })
        ));
        track(&mut peers, S, &seg(0, 1001, ACK | PSH, 65535, 100)).expect("next data");
    }

    #[test]
    fn fin_exchange_walks_both_sides_to_closed() {
        let mut peers = established();
        track(&mut peers, C, &seg(1001, 5001, FIN | ACK, 65535, 0)).expect("client FIN");
        assert_eq!(peers[0].state, tcp_state::CLOSING);
        track(&mut peers, S, &seg(5001, 1002, ACK, 65535, 0)).expect("ack of FIN");
        assert_eq!(peers[0].state, tcp_state::FIN_WAIT_2);
        track(&mut peers, S, &seg(5001, 1002, FIN | ACK, 65535, 0)).expect("server FIN");
        let last = track(&mut peers, C, &seg(1002, 5002, ACK, 65535, 0)).expect("last ACK");
        assert_eq!(last.refresh, Some(TimeoutClass::TcpClosed));
    }

    #[test]
    fn a_new_syn_on_a_closed_connection_asks_for_the_state_to_go() {
        let mut peers = established();
        peers[0].state = tcp_state::TIME_WAIT;
        peers[1].state = tcp_state::TIME_WAIT;
        assert_eq!(
            track(&mut peers, C, &seg(90000, 0, SYN, 65535, 0)),
            Err(TcpRefusal::ReuseOfClosed)
        );
    }

    #[test]
    fn an_in_window_syn_on_an_established_connection_is_refused_and_moves_nothing() {
        let mut peers = established();
        track(&mut peers, C, &seg(1001, 5001, ACK, 65535, 1448)).expect("data");
        let before = peers;
        for seq in [1001 + 1448, 1001 + 10_000, 1001] {
            assert_eq!(
                track(&mut peers, C, &seg(seq, 0, SYN, 65535, 0)),
                Err(TcpRefusal::SynOnEstablished {
                    seq: 5001,
                    ack: 1001 + 1448
                })
            );
            assert_eq!(
                track(&mut peers, S, &seg(5001, 0, SYN, 65535, 0)),
                Err(TcpRefusal::SynOnEstablished {
                    seq: 1001 + 1448,
                    ack: 5001
                })
            );
        }
        assert_eq!(peers, before);
    }

    #[test]
    fn only_an_acknowledgement_that_was_checked_is_reported() {
        let mut peers = established();
        let data = track(&mut peers, S, &seg(5001, 1001, ACK, 65535, 0)).expect("ack");
        assert_eq!(data.checked_ack, Some(1001));
        let rst = track(&mut peers, S, &seg(5001, 0, RST | ACK, 0, 0)).expect("RST|ACK, ack 0");
        assert_eq!(rst.checked_ack, None, "its ack was replaced, not checked");
        // After the close pf accepts stray segments loosely: their acknowledgements are not checked.
        let loose = track(&mut peers, C, &seg(1001, 99_999, ACK, 65535, 0)).expect("loose");
        assert_eq!((loose.refresh, loose.checked_ack), (None, None));
    }

    #[test]
    fn a_segment_only_ahead_of_the_known_windows_says_by_how_much() {
        let mut peers = established();
        // Past the server's window by 500 bytes: the window edge is 1001 + 65535.
        let edge = 1001 + 65535;
        assert_eq!(
            track(
                &mut peers,
                C,
                &seg(edge - 1448 + 500, 5001, ACK, 65535, 1448)
            ),
            Err(TcpRefusal::Ahead { by: 500 })
        );
        // The server acknowledging 1,000 bytes more than pf allows past what it saw of the client.
        let ack = peers[0].seqlo + MAX_ACK_WINDOW + 1000;
        assert_eq!(
            track(&mut peers, S, &seg(5001, ack, ACK, 65535, 0)),
            Err(TcpRefusal::Ahead { by: 1000 })
        );
        // Behind the window is not ahead, nor is a reset.
        assert_eq!(
            track(
                &mut peers,
                C,
                &seg(1001u32.wrapping_sub(200_000), 5001, ACK, 65535, 10)
            ),
            Err(TcpRefusal::OutOfWindow)
        );
        assert_eq!(
            track(&mut peers, C, &seg(edge + 10, 5001, RST | ACK, 0, 0)),
            Err(TcpRefusal::OutOfWindow)
        );
    }

    #[test]
    fn normalization_drops_flag_combinations_no_stack_sends() {
        for bad in [
            SYN | RST,
            SYN | RST | ACK,
            SYN | URG,
            SYN | FIN,
            SYN | PSH,
            FIN,
            PSH,
            URG,
            FIN | PSH | URG,
            0,
        ] {
            assert_eq!(normalize_flags(bad), None, "flags {bad:#04x}");
        }
        for good in [
            SYN,
            SYN | ACK,
            ACK,
            ACK | PSH,
            FIN | ACK,
            RST,
            RST | ACK,
            ACK | URG,
        ] {
            assert_eq!(normalize_flags(good), Some(good), "flags {good:#04x}");
        }
        assert_eq!(normalize_flags(SYN | FIN | ACK), Some(SYN | ACK));
    }

    #[test]
    fn a_late_duplicate_syn_inside_a_closed_connections_window_does_not_reopen_it() {
        let mut peers = established();
        peers[0].state = tcp_state::TIME_WAIT;
        peers[1].state = tcp_state::TIME_WAIT;
        let before = peers;
        assert_eq!(
            track(&mut peers, C, &seg(1000, 0, SYN, 65535, 0)),
            Err(TcpRefusal::OutOfWindow)
        );
        assert_eq!(peers, before);
    }

    #[test]
    fn window_scaling_is_applied_after_the_handshake() {
        let syn = TcpSegment {
            wscale: Some(7),
            ..seg(1000, 0, SYN, 64240, 0)
        };
        let mut peers = initial_peers(&syn);
        let syn_ack = TcpSegment {
            wscale: Some(7),
            ..seg(5000, 1001, SYN | ACK, 65160, 0)
        };
        track(&mut peers, S, &syn_ack).expect("SYN-ACK");
        // Window 2000 << 7 = 256000 bytes: the client may send that far past the server's ack.
        track(&mut peers, C, &seg(1001, 5001, ACK, 2000, 0)).expect("ACK");
        track(&mut peers, S, &seg(5001, 1001, ACK, 2000, 0))
            .expect("server ACK with scaled window");
        let far = 1001 + 200_000;
        assert!(
            track(&mut peers, C, &seg(far, 5001, ACK, 2000, 1448)).is_ok(),
            "inside the scaled window"
        );
        assert!(matches!(
            track(&mut peers, C, &seg(1001 + 300_000, 5001, ACK, 2000, 1448)),
            Err(TcpRefusal::Ahead { .. })
        ));
    }

    #[test]
    fn a_scaling_syn_answered_without_scaling_turns_scaling_off() {
        let syn = TcpSegment {
            wscale: Some(7),
            ..seg(1000, 0, SYN, 1000, 0)
        };
        let mut peers = initial_peers(&syn);
        track(&mut peers, S, &seg(5000, 1001, SYN | ACK, 65535, 0))
            .expect("SYN-ACK without option");
        assert_eq!(peers[0].wscale, 0);
        assert_eq!(peers[0].shift_with(&peers[1]), 0);
    }

    #[test]
    fn quoted_segments_must_lie_inside_the_senders_window() {
        let peers = established();
        assert!(quoted_segment_fits(&peers, C, 1001));
        assert!(!quoted_segment_fits(&peers, C, 1001 + 200_000));
    }

    #[test]
    fn sequence_numbers_wrap_cleanly() {
        let start = u32::MAX - 1000;
        let syn = seg(start, 0, SYN, 65535, 0);
        let mut peers = initial_peers(&syn);
        track(
            &mut peers,
            S,
            &seg(7, start.wrapping_add(1), SYN | ACK, 65535, 0),
        )
        .expect("SYN-ACK");
        track(&mut peers, C, &seg(start.wrapping_add(1), 8, ACK, 65535, 0)).expect("ACK");
        let mut next = start.wrapping_add(1);
        for _ in 0..5 {
            track(&mut peers, C, &seg(next, 8, ACK, 65535, 1448)).expect("data across the wrap");
            track(
                &mut peers,
                S,
                &seg(8, next.wrapping_add(1448), ACK, 65535, 0),
            )
            .expect("ack across the wrap");
            next = next.wrapping_add(1448);
        }
        assert_eq!(peers[0].seqlo, next);
    }
}
