//! What a firewall state is, in pf's terms, for everything that reads or writes one: the dataplane's TCP
//! tracker, the sync engine's merge, and the wire format's full and compressed state messages. Values match
//! OpenBSD's `pfvar.h` so they go on the wire unchanged (pfsync spec section 4.5).

/// pf's per-peer TCP states (`TCPS_*` from netinet/tcp_fsm.h, plus pf's synproxy states). The tracker
/// compares them by number, so their order matters.
pub mod tcp_state {
    /// No packet seen from this side.
    pub const CLOSED: u8 = 0;
    /// Listening (never set by pf's tracker; may arrive from a peer).
    pub const LISTEN: u8 = 1;
    /// A SYN was sent.
    pub const SYN_SENT: u8 = 2;
    /// A SYN was received (not set by pf's tracker).
    pub const SYN_RECEIVED: u8 = 3;
    /// The handshake completed.
    pub const ESTABLISHED: u8 = 4;
    /// Not set by pf's tracker.
    pub const CLOSE_WAIT: u8 = 5;
    /// Not set by pf's tracker.
    pub const FIN_WAIT_1: u8 = 6;
    /// This side sent a FIN.
    pub const CLOSING: u8 = 7;
    /// Not set by pf's tracker.
    pub const LAST_ACK: u8 = 8;
    /// This side's FIN was acknowledged.
    pub const FIN_WAIT_2: u8 = 9;
    /// Closed by RST, or both FINs acknowledged.
    pub const TIME_WAIT: u8 = 10;
    /// SYN proxy: handshake with the client in progress (`PF_TCPS_PROXY_SRC`).
    pub const PROXY_SRC: u8 = 11;
    /// SYN proxy: handshake with the server in progress (`PF_TCPS_PROXY_DST`).
    pub const PROXY_DST: u8 = 12;
    /// The largest state a peer may send; pfsync input rejects more.
    pub const MAX: u8 = PROXY_DST;
}

/// pf's UDP and other-protocol pseudo-states of one peer (`PFUDPS_*`, `PFOTHERS_*`).
pub mod single_state {
    /// Nothing sent by this side.
    pub const NO_TRAFFIC: u8 = 0;
    /// This side sent, the other did not.
    pub const SINGLE: u8 = 1;
    /// Both sides sent.
    pub const MULTIPLE: u8 = 2;
}

/// `wscale` bit: the window scale option was seen (pf's `PF_WSCALE_FLAG`).
pub const WSCALE_SEEN: u8 = 0x80;
/// `wscale` bits holding the shift (`PF_WSCALE_MASK`).
pub const WSCALE_SHIFT: u8 = 0x0f;

/// One side of a state, pf's `pf_state_peer` without scrub data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpPeer {
    /// Highest sequence number this side has sent, plus its length: the left edge of what the other side
    /// may acknowledge.
    pub seqlo: u32,
    /// Highest acknowledgement seen from the other side plus its window: the right edge of what this side
    /// may send.
    pub seqhi: u32,
    /// Sequence number modulator (pf's `modulate state`); 0 when not modulating.
    pub seqdiff: u32,
    /// Largest window this side advertised, unscaled.
    pub max_win: u16,
    /// MSS this side announced, 0 when unknown.
    pub mss: u16,
    /// [`tcp_state`] for TCP, [`single_state`] for other protocols.
    pub state: u8,
    /// Window scale: [`WSCALE_SEEN`] plus the shift.
    pub wscale: u8,
}

impl TcpPeer {
    /// Whether nothing has been seen from this side yet. pf marks that with `seqlo` 0 alone, which a side
    /// whose sequence numbers wrap to exactly 0 also shows; such a side is past CLOSED and has a real
    /// `seqhi` (1 is what a side not yet heard from, or made to forget its numbers, carries).
    pub fn unheard(&self) -> bool {
        self.seqlo == 0 && (self.state < tcp_state::SYN_SENT || self.seqhi == 1)
    }

    /// The window-scale shift to use for this side's windows, when both sides announced scaling.
    pub fn shift_with(&self, other: &TcpPeer) -> u8 {
        if self.wscale & WSCALE_SEEN != 0 && other.wscale & WSCALE_SEEN != 0 {
            self.wscale & WSCALE_SHIFT
        } else {
            0
        }
    }
}

/// pf's timeout classes (`PFTM_*`), indices on the wire; the seconds come from the profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TimeoutClass {
    /// A TCP state after its first packet.
    TcpFirstPacket = 0,
    /// Handshake in progress.
    TcpOpening = 1,
    /// Both sides established.
    TcpEstablished = 2,
    /// One side sent a FIN.
    TcpClosing = 3,
    /// Both sides sent a FIN.
    TcpFinWait = 4,
    /// Both FINs acknowledged, or reset.
    TcpClosed = 5,
    /// A UDP state after its first packet.
    UdpFirstPacket = 6,
    /// Only one side has sent more.
    UdpSingle = 7,
    /// Both sides sent.
    UdpMultiple = 8,
    /// An ICMP state after its first packet.
    IcmpFirstPacket = 9,
    /// An ICMP echo was answered, or an error passed.
    IcmpErrorReply = 10,
    /// Other protocols, first packet.
    OtherFirstPacket = 11,
    /// Other protocols, one side.
    OtherSingle = 12,
    /// Other protocols, both sides.
    OtherMultiple = 13,
}

impl TimeoutClass {
    /// The class with wire index `index`, for indices a state may carry (pfsync input rejects the rest).
    pub fn from_index(index: u8) -> Option<TimeoutClass> {
        use TimeoutClass::*;
        const ALL: [TimeoutClass; 14] = [
            TcpFirstPacket,
            TcpOpening,
            TcpEstablished,
            TcpClosing,
            TcpFinWait,
            TcpClosed,
            UdpFirstPacket,
            UdpSingle,
            UdpMultiple,
            IcmpFirstPacket,
            IcmpErrorReply,
            OtherFirstPacket,
            OtherSingle,
            OtherMultiple,
        ];
        ALL.get(usize::from(index)).copied()
    }
}

/// pf's state flags (`PFSTATE_*`), carried as a big-endian u16 in full states.
pub mod state_flags {
    /// IP options allowed.
    pub const ALLOWOPTS: u16 = 0x0001;
    /// Sequence checks off (`keep state (sloppy)`).
    pub const SLOPPY: u16 = 0x0002;
    /// Never synced.
    pub const NOSYNC: u16 = 0x0008;
    /// The sender holds the creating packet until this insert is acknowledged.
    pub const ACK: u16 = 0x0010;
}

/// What a node last told its peers about one state. The dataplane keeps one per state, so that it can
/// decide on the packet path, without asking the sync core, whether the state has moved enough since the
/// last update to be worth another one (see `policy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncMark {
    /// Each side's `seqlo` as last announced.
    pub seqlo: [u32; 2],
    /// Each side's `seqhi` as last announced.
    pub seqhi: [u32; 2],
    /// Each side's state as last announced.
    pub state: [u8; 2],
    /// Packets on the state since the last announcement (pfsync's `sync_updates`).
    pub updates: u16,
    /// When it was last announced, in whole seconds (peers' expiry timers need refreshing even when
    /// nothing else changes).
    pub at_secs: u32,
}

impl SyncMark {
    /// A mark recording `peers` as announced at `at_secs`.
    pub fn of(peers: &[TcpPeer; 2], at_secs: u32) -> SyncMark {
        SyncMark {
            seqlo: [peers[0].seqlo, peers[1].seqlo],
            seqhi: [peers[0].seqhi, peers[1].seqhi],
            state: [peers[0].state, peers[1].state],
            updates: 0,
            at_secs,
        }
    }

    /// Records that peers told us `peers` at `at_secs`: they know at least that much, and no more. The
    /// mark moves up to what they sent, never to our own newer half, which they still have to hear of.
    pub fn learnt(&mut self, peers: &[TcpPeer; 2], at_secs: u32) {
        for (i, p) in peers.iter().enumerate() {
            if crate::seq::gt(p.seqlo, self.seqlo[i]) {
                self.seqlo[i] = p.seqlo;
            }
            if crate::seq::gt(p.seqhi, self.seqhi[i]) {
                self.seqhi[i] = p.seqhi;
            }
        }
        self.at_secs = at_secs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_update_moves_the_mark_only_as_far_as_what_the_peer_sent() {
        let ours = [
            TcpPeer {
                seqlo: 50_000,
                seqhi: 200_000,
                ..TcpPeer::default()
            },
            TcpPeer {
                seqlo: 7_000,
                seqhi: 90_000,
                ..TcpPeer::default()
            },
        ];
        let announced = [
            TcpPeer {
                seqlo: 10_000,
                ..ours[0]
            },
            TcpPeer {
                seqlo: 5_000,
                ..ours[1]
            },
        ];
        let mut mark = SyncMark::of(&announced, 1);
        // The peer sends our side as it knew it (older) and its side newer.
        let theirs = [
            TcpPeer {
                seqlo: 20_000,
                ..ours[0]
            },
            TcpPeer {
                seqlo: 8_000,
                seqhi: 95_000,
                ..ours[1]
            },
        ];
        mark.learnt(&theirs, 2);
        assert_eq!(mark.seqlo, [20_000, 8_000]);
        assert_eq!(mark.seqhi, [200_000, 95_000]);
        assert_eq!(mark.at_secs, 2);
        // Something older teaches nothing.
        mark.learnt(&announced, 3);
        assert_eq!(mark.seqlo, [20_000, 8_000]);
    }

    #[test]
    fn window_scaling_applies_only_when_both_sides_announced_it() {
        let scaled = |shift| TcpPeer {
            wscale: WSCALE_SEEN | shift,
            ..TcpPeer::default()
        };
        let plain = TcpPeer::default();
        assert_eq!(scaled(7).shift_with(&scaled(2)), 7);
        assert_eq!(scaled(7).shift_with(&plain), 0);
        assert_eq!(plain.shift_with(&scaled(7)), 0);
    }

    #[test]
    fn timeout_classes_round_trip_through_their_wire_index() {
        for i in 0..14u8 {
            assert_eq!(TimeoutClass::from_index(i).map(|c| c as u8), Some(i));
        }
        assert_eq!(TimeoutClass::from_index(14), None);
        assert_eq!(TimeoutClass::from_index(20), None);
    }
}
