//! Merging a peer's view of a TCP state into ours.
//!
//! OpenBSD's rule (`pfsync_upd_tcp`, pfsync spec section 9.3) judges each side of the state as a whole: the
//! message's side is taken wholesale unless it is "stale" (an earlier TCP state, or the same state with an
//! older `seqlo`), in which case all of it is thrown away. When a flow moves from symmetric to asymmetric
//! paths that loses information: the node now seeing only the ACKs has a newer `seqhi` for the sender (from
//! the receiver's acknowledgements and window) but an older `seqlo`, so its whole update is rejected as
//! stale, and the node forwarding the data keeps an old right window edge and drops valid segments. Taking
//! the message wholesale has the opposite failure: a newer `seqlo` carried with an older `seqhi` rolls the
//! window back (FreeBSD's opnsense/src#327).
//!
//! Tandem merges field by field, each only forwards: `seqlo` and `seqhi` take the later of the two
//! (sequence arithmetic modulo 2^32), `max_win` the larger, the TCP state the more advanced (the closing
//! states are the highest, so "forwards" follows the closing rules), and the window scale, MSS and SYN
//! proxy offset are set once and then kept. Nothing ever moves back, and everything either node learned
//! survives. [`pfsync_merge`] keeps OpenBSD's rule for the `classic` comparison.

use crate::seq;
use crate::state::{TcpPeer, WSCALE_SEEN, tcp_state};

/// What a merge found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeOutcome {
    /// The message moved something of ours forwards.
    pub learned: bool,
    /// We hold something newer than the message: the peer is behind and may want our copy.
    pub peer_is_behind: bool,
    /// The message and we disagree on a value that is set once (window scale, SYN proxy offset); ours kept.
    pub conflict: bool,
}

impl MergeOutcome {
    fn absorb(&mut self, other: MergeOutcome) {
        self.learned |= other.learned;
        self.peer_is_behind |= other.peer_is_behind;
        self.conflict |= other.conflict;
    }
}

/// Whether `seqlo` carries information (pf uses 0 for "no packet seen from this side", but a side whose
/// sequence numbers wrapped to exactly 0 has a real 0 that an older update must not move back).
fn seqlo_known(p: &TcpPeer) -> bool {
    !p.unheard()
}

/// Whether `seqhi` carries information (a new state's responder starts at 1, with `max_win` 1).
fn seqhi_known(p: &TcpPeer) -> bool {
    !(p.seqhi == 1 && p.max_win <= 1) && p.seqhi != 0
}

/// The state ordering used for merging: a SYN proxy state (PROXY_SRC/PROXY_DST) comes before every real
/// TCP state, because the proxy hands over to ordinary tracking once both handshakes complete.
fn state_rank(state: u8) -> i16 {
    if state >= tcp_state::PROXY_SRC {
        -1
    } else {
        i16::from(state)
    }
}

/// Tandem's merge of one side: every field only forwards.
pub fn merge_peer(local: &mut TcpPeer, msg: &TcpPeer) -> MergeOutcome {
    let mut out = MergeOutcome::default();
    let mut forward_u32 = |ours: &mut u32, theirs: u32, known_ours: bool, known_theirs: bool| {
        if !known_theirs {
            if known_ours {
                out.peer_is_behind = true;
            }
        } else if !known_ours || seq::gt(theirs, *ours) {
            *ours = theirs;
            out.learned = true;
        } else if seq::gt(*ours, theirs) {
            out.peer_is_behind = true;
        }
    };
    let (lo_ours, lo_theirs) = (seqlo_known(local), seqlo_known(msg));
    let (hi_ours, hi_theirs) = (seqhi_known(local), seqhi_known(msg));
    forward_u32(&mut local.seqlo, msg.seqlo, lo_ours, lo_theirs);
    forward_u32(&mut local.seqhi, msg.seqhi, hi_ours, hi_theirs);

    if msg.max_win > local.max_win {
        local.max_win = msg.max_win;
        out.learned = true;
    } else if local.max_win > msg.max_win {
        out.peer_is_behind = true;
    }
    match state_rank(msg.state).cmp(&state_rank(local.state)) {
        std::cmp::Ordering::Greater => {
            local.state = msg.state;
            out.learned = true;
        }
        std::cmp::Ordering::Less => out.peer_is_behind = true,
        std::cmp::Ordering::Equal => {}
    }
    // Set-once values: learned from the SYNs, which only the node that saw them knows first.
    if msg.wscale & WSCALE_SEEN != 0 {
        if local.wscale & WSCALE_SEEN == 0 {
            local.wscale = msg.wscale;
            out.learned = true;
        } else if local.wscale != msg.wscale {
            out.conflict = true;
        }
    } else if local.wscale & WSCALE_SEEN != 0 {
        out.peer_is_behind = true;
    }
    if local.mss == 0 && msg.mss != 0 {
        local.mss = msg.mss;
        out.learned = true;
    }
    if msg.seqdiff != 0 {
        if local.seqdiff == 0 {
            local.seqdiff = msg.seqdiff;
            out.learned = true;
        } else if local.seqdiff != msg.seqdiff {
            out.conflict = true;
        }
    }
    out
}

/// Tandem's merge of both sides of a TCP state.
pub fn merge_tcp(local: &mut [TcpPeer; 2], msg: &[TcpPeer; 2]) -> MergeOutcome {
    let mut out = merge_peer(&mut local[0], &msg[0]);
    out.absorb(merge_peer(&mut local[1], &msg[1]));
    out
}

/// Merge of a pseudo-state (UDP, ICMP, other): each side's state only moves forwards.
pub fn merge_pseudo(local: &mut [TcpPeer; 2], msg: &[TcpPeer; 2]) -> MergeOutcome {
    let mut out = MergeOutcome::default();
    for (ours, theirs) in local.iter_mut().zip(msg) {
        if theirs.state > ours.state {
            ours.state = theirs.state;
            out.learned = true;
        } else if ours.state > theirs.state {
            out.peer_is_behind = true;
        }
    }
    out
}

/// OpenBSD's merge (`pfsync_upd_tcp` in if_pfsync.c 1.332): each side is taken wholesale unless stale.
/// Returns how many sides were stale (0, 1 or 2), as OpenBSD counts them.
pub fn pfsync_merge(local: &mut [TcpPeer; 2], msg: &[TcpPeer; 2]) -> u8 {
    let mut stale = 0;
    // src: stale if our state is further along (except that a local SYN proxy state may be replaced by a
    // normal TCP state), or the same state with a later seqlo.
    let src_stale = (local[0].state > msg[0].state
        && !(local[0].state >= tcp_state::PROXY_SRC && msg[0].state < tcp_state::PROXY_SRC))
        || (local[0].state == msg[0].state && seq::gt(local[0].seqlo, msg[0].seqlo));
    if src_stale {
        stale += 1;
    } else {
        local[0] = msg[0];
    }
    let dst_stale = local[1].state > msg[1].state
        || (local[1].state == msg[1].state && seq::gt(local[1].seqlo, msg[1].seqlo));
    if dst_stale {
        stale += 1;
    } else {
        local[1] = msg[1];
    }
    stale
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peer(seqlo: u32, seqhi: u32, max_win: u16, state: u8) -> TcpPeer {
        TcpPeer {
            seqlo,
            seqhi,
            max_win,
            state,
            ..TcpPeer::default()
        }
    }

    const EST: u8 = tcp_state::ESTABLISHED;

    /// The path-change case: node A forwarded both directions, then the ACKs moved to node B. B's update of
    /// the sender carries an older seqlo (B no longer sees data) but a newer seqhi (B sees the ACKs).
    fn path_change() -> ([TcpPeer; 2], [TcpPeer; 2]) {
        let at_a = [
            peer(100_000, 160_000, 65535, EST),
            peer(5001, 70_000, 65535, EST),
        ];
        let from_b = [
            peer(90_000, 230_000, 65535, EST),
            peer(5001, 70_000, 65535, EST),
        ];
        (at_a, from_b)
    }

    #[test]
    fn openbsds_merge_loses_the_newer_window_edge_after_a_path_change() {
        let (mut local, msg) = path_change();
        let stale = pfsync_merge(&mut local, &msg);
        assert_eq!(stale, 1);
        assert_eq!(
            local[0].seqhi, 160_000,
            "pfsync kept the old right edge: A will drop valid data"
        );
    }

    #[test]
    fn tandems_merge_keeps_the_newer_half_of_each_side() {
        let (mut local, msg) = path_change();
        let outcome = merge_tcp(&mut local, &msg);
        assert_eq!(local[0].seqlo, 100_000, "our newer seqlo stays");
        assert_eq!(local[0].seqhi, 230_000, "their newer seqhi is taken");
        assert!(outcome.learned && outcome.peer_is_behind);
    }

    #[test]
    fn a_stale_message_changes_nothing() {
        let (local, _) = path_change();
        let mut merged = local;
        let old = [
            peer(50_000, 120_000, 1000, EST),
            peer(5001, 60_000, 1000, EST),
        ];
        let outcome = merge_tcp(&mut merged, &old);
        assert_eq!(merged, local);
        assert!(!outcome.learned && outcome.peer_is_behind);
    }

    #[test]
    fn a_seqlo_that_wrapped_to_zero_is_not_moved_back_by_an_older_update() {
        let wrapped = [peer(0, 60_000, 65535, EST), peer(5001, 70_000, 65535, EST)];
        let mut local = wrapped;
        let older = [
            peer(u32::MAX - 3000, 60_000, 65535, EST),
            peer(5001, 70_000, 65535, EST),
        ];
        merge_tcp(&mut local, &older);
        assert_eq!(local[0].seqlo, 0, "the older seqlo was taken");
        // And an update that wrapped to 0 is learned by a node still behind.
        let mut behind = older;
        assert!(merge_tcp(&mut behind, &wrapped).learned);
        assert_eq!(behind[0].seqlo, 0);
    }

    #[test]
    fn the_tcp_state_only_moves_forwards_and_a_syn_proxy_hands_over() {
        let mut local = [
            peer(1, 2, 1, tcp_state::FIN_WAIT_2),
            peer(1, 2, 1, tcp_state::PROXY_DST),
        ];
        let msg = [peer(1, 2, 1, EST), peer(1, 2, 1, EST)];
        merge_tcp(&mut local, &msg);
        assert_eq!(local[0].state, tcp_state::FIN_WAIT_2);
        assert_eq!(
            local[1].state, EST,
            "a completed proxy handshake replaces the proxy state"
        );
    }

    #[test]
    fn syn_proxy_offsets_are_learned_once_and_kept() {
        let mut local = [peer(1, 2, 1, EST), peer(1, 2, 1, EST)];
        let mut msg = local;
        msg[1].seqdiff = 0x1234_5678;
        merge_tcp(&mut local, &msg);
        assert_eq!(local[1].seqdiff, 0x1234_5678);
        msg[1].seqdiff = 0x9999;
        let outcome = merge_tcp(&mut local, &msg);
        assert_eq!(local[1].seqdiff, 0x1234_5678);
        assert!(outcome.conflict);
    }

    #[test]
    fn unknown_values_in_a_message_never_overwrite_known_ones() {
        let mut local = [peer(1000, 70_000, 65535, EST), peer(5001, 9000, 65535, EST)];
        let msg = [
            peer(0, 1, 1, tcp_state::SYN_SENT),
            peer(0, 1, 1, tcp_state::CLOSED),
        ];
        let before = local;
        merge_tcp(&mut local, &msg);
        assert_eq!(local, before);
    }

    #[test]
    fn sequence_numbers_merge_across_the_wrap() {
        let mut local = [peer(u32::MAX - 10, 20, 65535, EST), peer(5, 6, 65535, EST)];
        let msg = [peer(30, u32::MAX - 5, 65535, EST), peer(5, 6, 65535, EST)];
        merge_tcp(&mut local, &msg);
        assert_eq!(local[0].seqlo, 30, "30 is after 2^32 - 11");
        assert_eq!(local[0].seqhi, 20, "2^32 - 6 is before 20");
    }

    fn arb_peer(base: u32) -> impl Strategy<Value = TcpPeer> {
        (0u32..100_000, 0u32..200_000, 1u16..=u16::MAX, 2u8..=10).prop_map(
            move |(lo, span, win, state)| {
                let seqlo = base.wrapping_add(lo).max(1);
                TcpPeer {
                    seqlo,
                    seqhi: seqlo.wrapping_add(span).max(2),
                    max_win: win,
                    state,
                    ..TcpPeer::default()
                }
            },
        )
    }

    proptest! {
        #[test]
        fn merging_never_moves_any_field_backwards(
            (l0, l1, m0, m1) in any::<u32>().prop_flat_map(|base| (arb_peer(base), arb_peer(base), arb_peer(base), arb_peer(base)))
        ) {
            let mut local = [l0, l1];
            let before = local;
            merge_tcp(&mut local, &[m0, m1]);
            for i in 0..2 {
                prop_assert!(seq::geq(local[i].seqlo, before[i].seqlo));
                prop_assert!(seq::geq(local[i].seqhi, before[i].seqhi));
                prop_assert!(local[i].max_win >= before[i].max_win);
                prop_assert!(local[i].state >= before[i].state);
            }
        }

        #[test]
        fn merging_is_order_independent_and_idempotent(
            (l, m, n) in (arb_peer(7), arb_peer(7), arb_peer(7))
        ) {
            // Two updates applied in either order give the same state, and applying one twice changes nothing.
            let mut x = [l, l];
            merge_tcp(&mut x, &[m, m]);
            merge_tcp(&mut x, &[n, n]);
            let mut y = [l, l];
            merge_tcp(&mut y, &[n, n]);
            merge_tcp(&mut y, &[m, m]);
            prop_assert_eq!(x, y);
            let again = x;
            merge_tcp(&mut x, &[n, n]);
            prop_assert_eq!(x, again);
        }
    }
}
