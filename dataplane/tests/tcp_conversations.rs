//! pf's TCP tracker against generated conversations between two well-behaved TCP endpoints: every segment
//! a correct stack may send (handshake with options, data both ways within the advertised windows, window
//! scaling, reordering within the window, retransmissions, FIN or RST teardown) must pass, and segments
//! injected outside the windows must be refused without disturbing the state (those ahead of them as
//! `Ahead`, the refusal a worker may hold for a peer's update).

use proptest::prelude::*;
use tandem_dataplane::tracker::tcp::{self, Side, TcpRefusal, TcpSegment, flags};
use tandem_sync::state::TcpPeer;

/// One side of the conversation, as a real stack keeps it.
#[derive(Clone, Debug)]
struct Stack {
    snd_nxt: u32,
    /// Highest acknowledgement received and the window that came with it (scaled, in bytes).
    peer_ack: u32,
    peer_win: u32,
    rcv_nxt: u32,
    /// Receive buffer, in bytes, and the shift it announces.
    rcv_buf: u32,
    wscale: Option<u8>,
    mss: u32,
    /// Segments sent, for retransmission.
    sent: Vec<(u32, u32)>,
}

impl Stack {
    fn win_field(&self, scaling: bool) -> u16 {
        let shift = if scaling { self.wscale.unwrap_or(0) } else { 0 };
        (self.rcv_buf >> shift).min(65535) as u16
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// Side sends this many bytes (capped by the window and the MSS).
    Data(usize, u32),
    /// Side sends a pure ACK.
    Ack(usize),
    /// Side retransmits one of its last segments.
    Retransmit(usize, usize),
    /// The next two segments of a side arrive swapped.
    Reorder(usize),
    /// An attacker's segment outside the windows.
    Inject(usize, u32),
    /// An attacker's segments inside the window, at this fraction (per mille) of its span: a SYN, blind
    /// resets, and the one reset RFC 5961 accepts.
    Forge(usize, u32),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            6 => (0usize..2, 1u32..3000).prop_map(|(s, n)| Step::Data(s, n)),
            2 => (0usize..2).prop_map(Step::Ack),
            1 => (0usize..2, 0usize..8).prop_map(|(s, k)| Step::Retransmit(s, k)),
            1 => (0usize..2).prop_map(Step::Reorder),
            1 => (0usize..2, 70_000u32..2_000_000_000).prop_map(|(s, off)| Step::Inject(s, off)),
            1 => (0usize..2, 0u32..=1000).prop_map(|(s, frac)| Step::Forge(s, frac)),
        ],
        1..120,
    )
}

struct Conversation {
    stacks: [Stack; 2],
    peers: [TcpPeer; 2],
    scaling: bool,
    /// A segment held back to be delivered after the next one (reordering).
    held: Option<(usize, TcpSegment)>,
}

impl Conversation {
    fn segment(&self, side: usize, seq: u32, len: u32, flags_: u8) -> TcpSegment {
        let s = &self.stacks[side];
        TcpSegment {
            seq,
            ack: s.rcv_nxt,
            flags: flags_,
            win: s.win_field(self.scaling),
            payload_len: len,
            wscale: None,
            mss: None,
        }
    }

    /// The firewall sees `seg` from `side`; it must pass.
    fn pass(&mut self, side: usize, seg: TcpSegment) -> Result<(), TestCaseError> {
        let from = if side == 0 {
            Side::Initiator
        } else {
            Side::Responder
        };
        let result = tcp::track(&mut self.peers, from, &seg);
        prop_assert!(
            result.is_ok(),
            "valid segment refused: side {side} {seg:?}\npeers {:?}",
            self.peers
        );
        Ok(())
    }

    /// Delivers a segment to the other stack (in order: reordering is only on the firewall's wire).
    fn deliver(&mut self, side: usize, seg: &TcpSegment) {
        let other = 1 - side;
        // SYN and FIN each take one sequence number (RFC 9293 section 3.4).
        let flags_len =
            u32::from(seg.flags & flags::SYN != 0) + u32::from(seg.flags & flags::FIN != 0);
        let end = seg.seq.wrapping_add(seg.payload_len + flags_len);
        if seg.seq == self.stacks[other].rcv_nxt {
            self.stacks[other].rcv_nxt = end;
        }
        let shift = if self.scaling {
            self.stacks[side].wscale.unwrap_or(0)
        } else {
            0
        };
        let s = &mut self.stacks[other];
        if seg.flags & flags::ACK != 0 && tandem_sync::seq::geq(seg.ack, s.peer_ack) {
            s.peer_ack = seg.ack;
            s.peer_win = u32::from(seg.win) << shift;
        }
    }

    fn send(&mut self, side: usize, seg: TcpSegment) -> Result<(), TestCaseError> {
        if let Some((held_side, held)) = self.held.take() {
            // On the firewall's wire the later segment overtakes the held one; the receiver buffers out of
            // order data, so it ends up with both, in order.
            self.pass(side, seg)?;
            self.pass(held_side, held)?;
            self.deliver(held_side, &held);
            self.deliver(side, &seg);
        } else {
            self.pass(side, seg)?;
            self.deliver(side, &seg);
        }
        Ok(())
    }
}

fn stack(isn: u32, buf: u32, wscale: Option<u8>, mss: u32) -> Stack {
    Stack {
        snd_nxt: isn,
        peer_ack: isn,
        peer_win: 0,
        rcv_nxt: 0,
        rcv_buf: buf,
        wscale,
        mss,
        sent: Vec::new(),
    }
}

fn run(
    isn: [u32; 2],
    bufs: [u32; 2],
    wscale: [Option<u8>; 2],
    mss: u32,
    steps: Vec<Step>,
    close_with_rst: bool,
) -> Result<(), TestCaseError> {
    let scaling = wscale[0].is_some() && wscale[1].is_some();
    let mut c = Conversation {
        stacks: [
            stack(isn[0], bufs[0], wscale[0], mss),
            stack(isn[1], bufs[1], wscale[1], mss),
        ],
        peers: [TcpPeer::default(); 2],
        scaling,
        held: None,
    };
    // Handshake. The SYN creates the state; windows in SYNs are never scaled (RFC 7323 section 2.2).
    let syn = TcpSegment {
        seq: isn[0],
        ack: 0,
        flags: flags::SYN,
        win: c.stacks[0].win_field(false),
        payload_len: 0,
        wscale: wscale[0],
        mss: Some(mss as u16),
    };
    c.peers = tcp::initial_peers(&syn);
    c.stacks[0].snd_nxt = isn[0].wrapping_add(1);
    c.stacks[1].rcv_nxt = isn[0].wrapping_add(1);
    c.stacks[1].peer_win = u32::from(syn.win);
    let syn_ack = TcpSegment {
        seq: isn[1],
        ack: isn[0].wrapping_add(1),
        flags: flags::SYN | flags::ACK,
        win: c.stacks[1].win_field(false),
        payload_len: 0,
        wscale: if wscale[0].is_some() { wscale[1] } else { None },
        mss: Some(mss as u16),
    };
    c.pass(1, syn_ack)?;
    c.stacks[1].snd_nxt = isn[1].wrapping_add(1);
    c.stacks[0].rcv_nxt = isn[1].wrapping_add(1);
    c.stacks[0].peer_ack = isn[0].wrapping_add(1);
    c.stacks[0].peer_win = u32::from(syn_ack.win);
    let ack = c.segment(0, c.stacks[0].snd_nxt, 0, flags::ACK);
    c.send(0, ack)?;

    for step in steps {
        match step {
            Step::Data(side, want) => {
                let s = &c.stacks[side];
                let in_flight = s.snd_nxt.wrapping_sub(s.peer_ack);
                let room = s.peer_win.saturating_sub(in_flight);
                let len = want.min(s.mss).min(room);
                if len == 0 {
                    continue;
                }
                let seq = s.snd_nxt;
                let seg = c.segment(side, seq, len, flags::ACK | flags::PSH);
                c.stacks[side].snd_nxt = seq.wrapping_add(len);
                c.stacks[side].sent.push((seq, len));
                c.send(side, seg)?;
            }
            Step::Ack(side) => {
                let seg = c.segment(side, c.stacks[side].snd_nxt, 0, flags::ACK);
                c.send(side, seg)?;
            }
            Step::Retransmit(side, back) => {
                // A stack retransmits only what is not yet acknowledged: the segments ending past the
                // highest acknowledgement it has received (an older one it knows arrived).
                let s = &c.stacks[side];
                let unacked: Vec<(u32, u32)> = s
                    .sent
                    .iter()
                    .copied()
                    .filter(|&(seq, len)| tandem_sync::seq::gt(seq.wrapping_add(len), s.peer_ack))
                    .collect();
                if unacked.is_empty() {
                    continue;
                }
                let (seq, len) = unacked[unacked.len() - 1 - back.min(unacked.len() - 1)];
                let seg = c.segment(side, seq, len, flags::ACK | flags::PSH);
                c.send(side, seg)?;
            }
            Step::Reorder(side) => {
                if c.held.is_some() {
                    continue;
                }
                // Hold the next data segment of `side`; the following send overtakes it.
                let s = &c.stacks[side];
                let in_flight = s.snd_nxt.wrapping_sub(s.peer_ack);
                let room = s.peer_win.saturating_sub(in_flight);
                let len = 500u32.min(room);
                if len == 0 {
                    continue;
                }
                let seq = s.snd_nxt;
                let seg = c.segment(side, seq, len, flags::ACK);
                c.stacks[side].snd_nxt = seq.wrapping_add(len);
                c.stacks[side].sent.push((seq, len));
                c.held = Some((side, seg));
            }
            Step::Inject(side, offset) => {
                let before = c.peers;
                let from = if side == 0 {
                    Side::Initiator
                } else {
                    Side::Responder
                };
                // Data beyond what the other side's advertised window allows (a large window
                // legitimately covers a large offset).
                let window = c.stacks[1 - side].rcv_buf;
                let ahead = offset.max(window.saturating_add(70_000)).min(1 << 30);
                let mut seg = c.segment(
                    side,
                    c.stacks[side].snd_nxt.wrapping_add(ahead),
                    100,
                    flags::ACK,
                );
                // Both are ahead of the windows: refused, and marked as only ahead (a node on an
                // asymmetric path may hold such a segment for a peer's update; this one never comes).
                let refused = tcp::track(&mut c.peers, from, &seg);
                prop_assert!(
                    matches!(refused, Err(TcpRefusal::Ahead { .. })),
                    "{:?}",
                    refused
                );
                // An acknowledgement of data the other side never sent.
                seg = c.segment(side, c.stacks[side].snd_nxt, 0, flags::ACK);
                seg.ack = c.stacks[1 - side].snd_nxt.wrapping_add(offset);
                let refused = tcp::track(&mut c.peers, from, &seg);
                prop_assert!(
                    matches!(refused, Err(TcpRefusal::Ahead { .. })),
                    "{:?}",
                    refused
                );
                // A reset far from the expected sequence number.
                seg = c.segment(
                    side,
                    c.stacks[side].snd_nxt.wrapping_add(offset),
                    0,
                    flags::RST,
                );
                prop_assert_eq!(
                    tcp::track(&mut c.peers, from, &seg),
                    Err(TcpRefusal::OutOfWindow)
                );
                prop_assert_eq!(c.peers, before, "a refused segment changed the state");
            }
            Step::Forge(side, frac) => forge(&mut c, side, frac)?,
        }
    }
    if let Some((side, seg)) = c.held.take() {
        c.pass(side, seg)?;
        c.deliver(side, &seg);
    }

    if close_with_rst {
        let seg = c.segment(0, c.stacks[0].snd_nxt, 0, flags::RST);
        c.pass(0, seg)?;
    } else {
        let fin = c.segment(0, c.stacks[0].snd_nxt, 0, flags::FIN | flags::ACK);
        c.stacks[0].snd_nxt = c.stacks[0].snd_nxt.wrapping_add(1);
        c.send(0, fin)?;
        let fin = c.segment(1, c.stacks[1].snd_nxt, 0, flags::FIN | flags::ACK);
        c.stacks[1].snd_nxt = c.stacks[1].snd_nxt.wrapping_add(1);
        c.send(1, fin)?;
        let last = c.segment(0, c.stacks[0].snd_nxt, 0, flags::ACK);
        c.send(0, last)?;
        prop_assert_eq!(
            tcp::timeout_class(&c.peers[0], &c.peers[1]),
            tandem_sync::state::TimeoutClass::TcpClosed
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn every_valid_segment_passes_and_injected_ones_are_refused(
        isn in prop::array::uniform2(prop_oneof![any::<u32>(), (u32::MAX - 100_000)..=u32::MAX]),
        bufs in prop::array::uniform2(prop_oneof![Just(65_535u32), 16_384u32..=65_535, 100_000u32..=4_000_000]),
        wscale in prop::array::uniform2(prop::option::of(0u8..=9)),
        mss in prop_oneof![Just(536u32), Just(1448), Just(1460), Just(8960)],
        steps in steps(),
        rst in any::<bool>(),
    ) {
        // A buffer over 64 KB needs window scaling; without it a stack advertises at most 65535.
        let scaling = wscale[0].is_some() && wscale[1].is_some();
        let bufs = if scaling { bufs } else { [bufs[0].min(65_535), bufs[1].min(65_535)] };
        let wscale = if scaling {
            [wscale[0].map(|w| w.max(shift_for(bufs[0]))), wscale[1].map(|w| w.max(shift_for(bufs[1])))]
        } else {
            wscale
        };
        run(isn, bufs, wscale, mss, steps, rst)?;
    }
}

/// Forgeries inside the window of `side`'s sequence space, none of which may pass or move the state
/// but the reset with the exact acknowledgement (checked on a copy, so the conversation goes on).
fn forge(c: &mut Conversation, side: usize, frac: u32) -> Result<(), TestCaseError> {
    let from = if side == 0 {
        Side::Initiator
    } else {
        Side::Responder
    };
    let before = c.peers;
    let (src, dst) = (c.peers[side], c.peers[1 - side]);
    let dws = if src.wscale != 0 && dst.wscale != 0 {
        dst.wscale & tandem_sync::state::WSCALE_SHIFT
    } else {
        0
    };
    let lo = src.seqlo.wrapping_sub(u32::from(dst.max_win) << dws);
    let span = src.seqhi.wrapping_sub(lo);
    let seq = lo.wrapping_add((u64::from(span) * u64::from(frac) / 1000) as u32);
    let exact =
        seq == src.seqlo || seq == src.seqlo.wrapping_add(1) || seq.wrapping_add(1) == src.seqlo;
    let seg = |seq, ack, flags| TcpSegment {
        seq,
        ack,
        flags,
        win: 0,
        payload_len: 0,
        wscale: None,
        mss: None,
    };

    // A SYN on the established connection, anywhere in the window.
    let refused = tcp::track(&mut c.peers, from, &seg(seq, 0, flags::SYN));
    prop_assert!(
        matches!(refused, Err(TcpRefusal::SynOnEstablished { .. })),
        "in-window SYN: {refused:?}"
    );
    if !exact {
        // Blind resets: no acknowledgement, an acknowledgement of 0 (unless 0 is the exact one, where the
        // other side's sequence space has just wrapped), a wrong one.
        for (ack, fl) in [
            (0, flags::RST),
            (0, flags::RST | flags::ACK),
            (dst.seqlo.wrapping_add(1), flags::RST | flags::ACK),
        ] {
            if ack == dst.seqlo && fl & flags::ACK != 0 {
                continue;
            }
            prop_assert_eq!(
                tcp::track(&mut c.peers, from, &seg(seq, ack, fl)),
                Err(TcpRefusal::OutOfWindow),
                "blind reset {:#x} ack {} at {}",
                fl,
                ack,
                seq
            );
        }
    }
    prop_assert_eq!(c.peers, before, "a forgery moved the state");

    // RFC 5961 section 3.2: within the window behind, with the exact acknowledgement, a reset is real.
    if tandem_sync::seq::leq(seq, src.seqlo.wrapping_add(1)) {
        let mut copy = c.peers;
        let real = tcp::track(
            &mut copy,
            from,
            &seg(seq, dst.seqlo, flags::RST | flags::ACK),
        );
        prop_assert!(real.is_ok(), "exact-ack reset at {seq}: {real:?}");
    }
    Ok(())
}

fn shift_for(buf: u32) -> u8 {
    let mut shift = 0;
    while buf >> shift > 65_535 {
        shift += 1;
    }
    shift
}
