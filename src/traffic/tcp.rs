//! A TCP endpoint for the simulator, close enough to a real stack that pf's window checks see realistic
//! sequence numbers, windows and acknowledgements: three-way handshake with MSS and window-scale options
//! (RFC 7323), slow start and congestion avoidance with appropriate byte counting (RFC 5681, RFC 3465),
//! NewReno fast retransmit and recovery (RFC 6582), retransmission timeout with Karn's rule and
//! exponential back-off (RFC 6298, 200 ms minimum as in Linux), a receive window with scaling, out-of-order
//! buffering, and delayed ACKs (every second full segment or after 40 ms, at once on anything out of
//! order, RFC 9293 section 3.8.6.3). Selective acknowledgements (RFC 2018) when both ends offer them, with
//! the conservative loss recovery of RFC 6675 (the sender retransmits every hole the receiver reports in
//! one recovery, keeping what it has in flight under the congestion window); NewReno otherwise. No
//! timestamps, no pacing: the link's queue absorbs bursts.
//!
//! The client sends an unlimited (or given) amount of data; the server acknowledges, and may answer with
//! data of its own once it has received a given amount (a request and its response). Either end may close:
//! the client after its data is acknowledged and it has received what it expects, with a FIN (the server
//! answers with its own once its data is acknowledged: RFC 9293's close, TIME-WAIT left to the caller) or
//! a RST. Time is whatever the caller says it is: virtual in the simulator, the clock in `tandem gen`.
//!
//! [`Segment::of_tcp`] and [`Segment::repr`] are the codec between a segment and pf's wire format.

use std::collections::BTreeMap;
use std::collections::VecDeque;

use tandem_dataplane::tracker::tcp::flags;
use tandem_dataplane::wire::tcp::{Packet as TcpPacket, TcpFlags, TcpRepr};
use tandem_sync::seq;
use tandem_sync::time::{Duration, Instant};

/// A segment as the simulator moves it; the frame encoding is done elsewhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Segment {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// TCP flags.
    pub flags: u8,
    /// Window field as sent (scaled).
    pub win: u16,
    /// Payload bytes.
    pub len: u32,
    /// MSS option (SYNs).
    pub mss: Option<u16>,
    /// Window-scale option (SYNs).
    pub wscale: Option<u8>,
    /// SACK-permitted option (SYNs).
    pub sack_ok: bool,
    /// SACK blocks: received ranges above the acknowledgement, the most recent first.
    pub sack: [Option<(u32, u32)>; 3],
}

impl Segment {
    /// The segment a TCP header carries; `None` when its options do not parse.
    pub fn of_tcp(tcp: &TcpPacket<&[u8]>) -> Option<Segment> {
        let repr = TcpRepr::parse(tcp).ok()?;
        Some(Segment {
            seq: repr.seq,
            ack: repr.ack,
            flags: repr.flags.0,
            win: repr.window,
            len: tcp.payload().len() as u32,
            mss: repr.mss,
            wscale: repr.window_scale,
            sack_ok: repr.sack_permitted,
            sack: [
                repr.sack_ranges[0],
                repr.sack_ranges[1],
                repr.sack_ranges[2],
            ],
        })
    }

    /// The header that carries this segment between the two ports.
    pub fn repr(&self, src_port: u16, dst_port: u16) -> TcpRepr {
        TcpRepr {
            src_port,
            dst_port,
            seq: self.seq,
            ack: self.ack,
            flags: TcpFlags(self.flags),
            window: self.win,
            mss: self.mss,
            window_scale: self.wscale,
            sack_permitted: self.sack_ok,
            sack_ranges: [self.sack[0], self.sack[1], self.sack[2], None],
            ..TcpRepr::default()
        }
    }
}

/// How an endpoint ends its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Teardown {
    /// FIN, answered by the peer's FIN, each acknowledged.
    Fin,
    /// RST: the connection is gone at once.
    Rst,
}

/// Tunables of an endpoint.
#[derive(Clone, Copy, Debug)]
pub struct TcpConfig {
    /// Maximum segment size (payload bytes).
    pub mss: u32,
    /// Receive buffer: the largest window advertised.
    pub rcv_buf: u32,
    /// Initial congestion window in segments (RFC 6928).
    pub initial_cwnd: u32,
    /// Smallest retransmission timeout.
    pub min_rto: Duration,
    /// Delayed-ACK timer.
    pub delayed_ack: Duration,
    /// Initial sequence number.
    pub iss: u32,
    /// Offer selective acknowledgements.
    pub sack: bool,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            mss: 1448,
            rcv_buf: 6 << 20,
            initial_cwnd: 10,
            min_rto: Duration::millis(200),
            delayed_ack: Duration::millis(40),
            iss: 1_000_000,
            sack: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Closed,
    SynSent,
    SynReceived,
    Established,
}

/// Counters an endpoint keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Segments sent, retransmissions included.
    pub segments_sent: u64,
    /// Segments retransmitted (fast retransmit and timeout).
    pub retransmits: u64,
    /// Retransmission timeouts.
    pub timeouts: u64,
    /// Payload bytes delivered in order to the application (receiver side).
    pub delivered: u64,
    /// Payload bytes acknowledged by the peer (sender side).
    pub acked: u64,
}

/// One end of a TCP connection.
#[derive(Debug)]
pub struct TcpEndpoint {
    cfg: TcpConfig,
    phase: Phase,
    active: bool,
    my_wscale: u8,
    peer_wscale: u8,
    peer_mss: u32,
    // Sender.
    iss: u32,
    snd_una: u32,
    snd_nxt: u32,
    snd_max: u32,
    snd_wnd: u32,
    cwnd: u32,
    ssthresh: u32,
    dupacks: u32,
    recover: u32,
    in_recovery: bool,
    to_send: u64,
    /// Both ends offered SACK.
    sack_ok: bool,
    /// Ranges the peer reported holding above `snd_una`: start to end, merged.
    sacked: BTreeMap<u32, u32>,
    /// In a SACK recovery: holes below this were already retransmitted.
    rxt_next: u32,
    // Receiver.
    rcv_nxt: u32,
    /// Out-of-order data held: start to end, merged.
    ooo: BTreeMap<u32, u32>,
    /// The range that took the most recent out-of-order segment (reported first, RFC 2018).
    ooo_last: Option<u32>,
    unacked_segments: u32,
    delack_at: Option<Instant>,
    ack_now: bool,
    // Timers.
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    rto_at: Option<Instant>,
    rtt_probe: Option<(u32, Instant)>,
    out: VecDeque<Segment>,
    stats: TcpStats,
    // The conversation.
    /// Once this many bytes have arrived, send this many more.
    reply: Option<(u64, u64)>,
    /// Once our data is acknowledged and this many bytes have arrived, close this way.
    close: Option<(u64, Teardown)>,
    /// The sequence number our FIN took.
    fin_seq: Option<u32>,
    /// The peer acknowledged our FIN.
    fin_acked: bool,
    /// The peer's FIN arrived (in order).
    peer_fin: bool,
    /// A RST was sent or accepted.
    reset: bool,
}

/// Largest window field.
const MAX_WIN_FIELD: u32 = 65535;

impl TcpEndpoint {
    /// A client that opens the connection at `now` and then sends `bytes` (`u64::MAX` for unlimited).
    pub fn client(cfg: TcpConfig, now: Instant, bytes: u64) -> TcpEndpoint {
        let mut e = TcpEndpoint::new(cfg, true, bytes);
        e.phase = Phase::SynSent;
        e.snd_nxt = e.iss.wrapping_add(1);
        e.snd_max = e.snd_nxt;
        e.queue_syn(now, false);
        e
    }

    /// A server that waits for a SYN and only acknowledges (and closes when the client does).
    pub fn server(cfg: TcpConfig) -> TcpEndpoint {
        TcpEndpoint::new(cfg, false, 0)
    }

    /// Once `after` bytes have arrived, sends `bytes` more (a response to a request).
    pub fn replying(mut self, after: u64, bytes: u64) -> TcpEndpoint {
        self.reply = (bytes > 0).then_some((after, bytes));
        self
    }

    /// Once its own data is acknowledged and `after` bytes have arrived, closes with `how`.
    pub fn closing(mut self, after: u64, how: Teardown) -> TcpEndpoint {
        self.close = Some((after, how));
        self
    }

    /// Makes this endpoint `fresh`, keeping the buffer it queues segments in (an endpoint reused for a
    /// new connection allocates nothing once its queue has grown).
    pub fn reuse(&mut self, fresh: TcpEndpoint) {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.extend(fresh.out.iter().copied());
        *self = fresh;
        self.out = out;
    }

    fn new(cfg: TcpConfig, active: bool, bytes: u64) -> TcpEndpoint {
        let mut my_wscale = 0;
        while (cfg.rcv_buf >> my_wscale) > MAX_WIN_FIELD && my_wscale < 14 {
            my_wscale += 1;
        }
        TcpEndpoint {
            cfg,
            phase: Phase::Closed,
            active,
            my_wscale,
            peer_wscale: 0,
            peer_mss: 536,
            iss: cfg.iss,
            snd_una: cfg.iss,
            snd_nxt: cfg.iss,
            snd_max: cfg.iss,
            snd_wnd: 0,
            cwnd: cfg.initial_cwnd * cfg.mss,
            ssthresh: u32::MAX,
            dupacks: 0,
            recover: cfg.iss,
            in_recovery: false,
            to_send: bytes,
            sack_ok: false,
            sacked: BTreeMap::new(),
            rxt_next: cfg.iss,
            rcv_nxt: 0,
            ooo: BTreeMap::new(),
            ooo_last: None,
            unacked_segments: 0,
            delack_at: None,
            ack_now: false,
            srtt: None,
            rttvar: Duration::ZERO,
            rto: Duration::secs(1),
            rto_at: None,
            rtt_probe: None,
            out: VecDeque::new(),
            stats: TcpStats::default(),
            reply: None,
            close: None,
            fin_seq: None,
            fin_acked: false,
            peer_fin: false,
            reset: false,
        }
    }

    /// Whether the handshake has completed.
    pub fn established(&self) -> bool {
        self.phase == Phase::Established
    }

    /// Whether the connection is over for this end: it sent or accepted a RST, or its FIN was
    /// acknowledged and the peer's arrived.
    pub fn finished(&self) -> bool {
        self.reset || (self.fin_acked && self.peer_fin)
    }

    /// Whether a RST ended the connection.
    pub fn was_reset(&self) -> bool {
        self.reset
    }

    /// Counters.
    pub fn stats(&self) -> TcpStats {
        self.stats
    }

    /// The congestion window in bytes.
    pub fn cwnd(&self) -> u32 {
        self.cwnd
    }

    fn mss(&self) -> u32 {
        self.cfg.mss.min(self.peer_mss)
    }

    /// The application reads in-order data at once and out-of-order data has room of its own, so the
    /// window stays the buffer size: duplicate ACKs then carry an unchanged window, as RFC 5681 requires
    /// for them to count.
    fn rcv_window(&self) -> u32 {
        self.cfg.rcv_buf
    }

    fn win_field(&self, syn: bool) -> u16 {
        // RFC 7323 section 2.2: the window in a SYN is never scaled.
        let shift = if syn { 0 } else { self.my_wscale };
        (self.rcv_window() >> shift).min(MAX_WIN_FIELD) as u16
    }

    fn queue_syn(&mut self, now: Instant, ack: bool) {
        let seg = Segment {
            seq: self.iss,
            ack: if ack { self.rcv_nxt } else { 0 },
            flags: if ack {
                flags::SYN | flags::ACK
            } else {
                flags::SYN
            },
            win: self.win_field(true),
            len: 0,
            mss: Some(self.cfg.mss.min(u32::from(u16::MAX)) as u16),
            wscale: Some(self.my_wscale),
            sack_ok: self.cfg.sack && (!ack || self.sack_ok),
            sack: [None; 3],
        };
        self.out.push_back(seg);
        self.stats.segments_sent += 1;
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rto);
        }
    }

    /// SACK blocks to report: the range of the latest out-of-order arrival first, then the highest.
    fn sack_blocks(&self) -> [Option<(u32, u32)>; 3] {
        let mut blocks = [None; 3];
        if !self.sack_ok || self.ooo.is_empty() {
            return blocks;
        }
        let mut n = 0;
        let first = self
            .ooo_last
            .and_then(|start| self.ooo.get(&start).map(|&end| (start, end)));
        if let Some(b) = first {
            blocks[0] = Some(b);
            n = 1;
        }
        for (&start, &end) in self.ooo.iter().rev() {
            if n == 3 {
                break;
            }
            if Some((start, end)) != first {
                blocks[n] = Some((start, end));
                n += 1;
            }
        }
        blocks
    }

    /// Queues a segment of the synchronised connection that acknowledges what has arrived: it pays
    /// whatever acknowledgement was owed.
    fn queue_segment(&mut self, seq_no: u32, tcp_flags: u8, len: u32) {
        let seg = Segment {
            seq: seq_no,
            ack: self.rcv_nxt,
            flags: tcp_flags,
            win: self.win_field(false),
            len,
            mss: None,
            wscale: None,
            sack_ok: false,
            sack: self.sack_blocks(),
        };
        self.out.push_back(seg);
        self.stats.segments_sent += 1;
        self.unacked_segments = 0;
        self.delack_at = None;
        self.ack_now = false;
    }

    fn queue_ack(&mut self) {
        // The next unsent octet even while retransmitting (`snd_nxt` went back to `snd_una` at the
        // timeout): FreeBSD's pure ACKs carry `snd_max`, Linux never moves `snd_nxt` back.
        self.queue_segment(self.snd_max, flags::ACK, 0);
    }

    fn queue_data(&mut self, now: Instant, seq_no: u32, len: u32, retransmit: bool) {
        self.queue_segment(seq_no, flags::ACK | flags::PSH, len);
        if retransmit {
            self.stats.retransmits += 1;
            // Karn's rule: no RTT sample across a retransmission.
            self.rtt_probe = None;
        } else if self.rtt_probe.is_none() {
            self.rtt_probe = Some((seq_no.wrapping_add(len), now));
        }
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rto);
        }
    }

    /// Handles a segment from the peer.
    pub fn on_segment(&mut self, now: Instant, seg: &Segment) {
        let syn = seg.flags & flags::SYN != 0;
        let ack = seg.flags & flags::ACK != 0;
        if seg.flags & flags::RST != 0 {
            self.on_reset(seg);
            return;
        }
        if self.reset {
            return;
        }
        match self.phase {
            Phase::Closed if !self.active && syn && !ack => {
                self.rcv_nxt = seg.seq.wrapping_add(1);
                self.peer_wscale = seg.wscale.map_or(0, |s| s.min(14));
                if seg.wscale.is_none() {
                    self.my_wscale = 0;
                }
                self.peer_mss = seg.mss.map_or(536, u32::from);
                self.snd_wnd = u32::from(seg.win);
                self.sack_ok = self.cfg.sack && seg.sack_ok;
                self.phase = Phase::SynReceived;
                self.snd_nxt = self.iss.wrapping_add(1);
                self.snd_max = self.snd_nxt;
                self.queue_syn(now, true);
                return;
            }
            Phase::Closed => return,
            Phase::SynSent => {
                if syn && ack && seg.ack == self.iss.wrapping_add(1) {
                    self.rcv_nxt = seg.seq.wrapping_add(1);
                    self.peer_wscale = seg.wscale.map_or(0, |s| s.min(14));
                    if seg.wscale.is_none() {
                        self.my_wscale = 0;
                    }
                    self.peer_mss = seg.mss.map_or(536, u32::from);
                    self.sack_ok = self.cfg.sack && seg.sack_ok;
                    self.snd_una = seg.ack;
                    self.snd_wnd = u32::from(seg.win);
                    self.phase = Phase::Established;
                    self.rto_at = None;
                    self.queue_ack();
                    self.fill(now);
                }
                return;
            }
            Phase::SynReceived => {
                if syn && !ack {
                    // Our SYN-ACK was lost: send it again.
                    self.out.retain(|s| s.flags & flags::SYN == 0);
                    self.queue_syn(now, true);
                    return;
                }
                if ack && seg.ack == self.iss.wrapping_add(1) {
                    self.phase = Phase::Established;
                    self.snd_una = seg.ack;
                    self.rto_at = None;
                } else {
                    return;
                }
            }
            Phase::Established => {
                if syn {
                    // A retransmitted SYN-ACK: our ACK was lost.
                    self.ack_now = true;
                    self.flush_ack();
                    return;
                }
                if self.far_below_window(seg) {
                    // RFC 9293 section 3.10.7.4: an unacceptable segment is answered with an ACK and
                    // dropped (a keepalive probe's answer).
                    self.ack_now = true;
                    self.flush_ack();
                    return;
                }
            }
        }
        if ack {
            self.on_ack(now, seg);
        }
        if seg.len > 0 {
            self.on_data(now, seg);
        }
        if seg.flags & flags::FIN != 0 {
            self.on_fin(seg);
        }
        if let Some((after, bytes)) = self.reply
            && self.stats.delivered >= after
        {
            self.reply = None;
            self.to_send = self.to_send.saturating_add(bytes);
        }
        self.fill(now);
        self.maybe_close(now);
        self.flush_ack();
    }

    /// RFC 9293 section 3.10.7: a RST is accepted when its sequence number is the next expected (in
    /// SYN-SENT, when it acknowledges our SYN); the connection is then gone.
    fn on_reset(&mut self, seg: &Segment) {
        let acceptable = match self.phase {
            Phase::Closed => false,
            Phase::SynSent => seg.flags & flags::ACK != 0 && seg.ack == self.iss.wrapping_add(1),
            _ => seg.seq == self.rcv_nxt,
        };
        if acceptable && !self.reset {
            self.reset = true;
            self.phase = Phase::Closed;
            self.out.clear();
            self.rto_at = None;
            self.delack_at = None;
            self.ack_now = false;
        }
    }

    /// The peer's FIN, in order after its data, takes one sequence number; a repeated one means our
    /// acknowledgement of it was lost.
    fn on_fin(&mut self, seg: &Segment) {
        let at = seg.seq.wrapping_add(seg.len);
        if !self.peer_fin && at == self.rcv_nxt {
            self.peer_fin = true;
            self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
        }
        self.ack_now = true;
    }

    /// Closes when the conversation is done: the client once its data is acknowledged and it has what it
    /// expects; the passive end, after the peer's FIN, once its own data is acknowledged.
    fn maybe_close(&mut self, now: Instant) {
        if self.fin_seq.is_some()
            || self.reset
            || self.phase != Phase::Established
            || self.to_send > 0
            || self.reply.is_some()
            || self.snd_una != self.snd_max
        {
            return;
        }
        let how = match self.close {
            Some((after, how)) if self.stats.delivered >= after => how,
            _ if self.peer_fin => Teardown::Fin,
            _ => return,
        };
        match how {
            Teardown::Fin => self.queue_fin(now),
            Teardown::Rst => {
                self.queue_segment(self.snd_max, flags::RST | flags::ACK, 0);
                self.reset = true;
                self.phase = Phase::Closed;
                self.rto_at = None;
            }
        }
    }

    /// Sends (or sends again) our FIN, which carries the acknowledgement.
    fn queue_fin(&mut self, now: Instant) {
        let fin = *self.fin_seq.get_or_insert(self.snd_max);
        if fin == self.snd_max {
            self.snd_max = self.snd_max.wrapping_add(1);
            self.snd_nxt = self.snd_max;
        }
        self.queue_segment(fin, flags::FIN | flags::ACK, 0);
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.rto);
        }
    }

    /// Whether `seg` is a bare ACK whose sequence number lies more than a receive window below
    /// `rcv_nxt`: unacceptable by RFC 9293's test, and by Linux's looser one, which accepts a bare segment
    /// down to where `rcv_nxt` stood at its last window update (at most a window below).
    fn far_below_window(&self, seg: &Segment) -> bool {
        seg.len == 0
            && seg.flags & (flags::SYN | flags::FIN | flags::RST) == 0
            && seq::lt(seg.seq, self.rcv_nxt.wrapping_sub(self.rcv_window()))
    }

    fn on_ack(&mut self, now: Instant, seg: &Segment) {
        let window = u32::from(seg.win) << self.peer_wscale;
        if self.sack_ok {
            for &(start, end) in seg.sack.iter().flatten() {
                if seq::gt(end, self.snd_una) && seq::leq(end, self.snd_max) {
                    let start = if seq::lt(start, self.snd_una) {
                        self.snd_una
                    } else {
                        start
                    };
                    insert_range(&mut self.sacked, start, end);
                }
            }
        }
        if seq::gt(seg.ack, self.snd_una) && seq::leq(seg.ack, self.snd_max) {
            let acked = seg.ack.wrapping_sub(self.snd_una);
            self.snd_una = seg.ack;
            if seq::lt(self.snd_nxt, self.snd_una) {
                self.snd_nxt = self.snd_una;
            }
            trim_below(&mut self.sacked, self.snd_una);
            let fin_acked = self.fin_seq.is_some_and(|fin| seq::gt(self.snd_una, fin));
            self.stats.acked += u64::from(acked) - u64::from(fin_acked && !self.fin_acked);
            self.fin_acked |= fin_acked;
            if let Some((end, sent)) = self.rtt_probe
                && seq::geq(seg.ack, end)
            {
                self.rtt_sample(now.since(sent));
                self.rtt_probe = None;
            }
            let mss = self.mss();
            if self.in_recovery {
                if seq::geq(seg.ack, self.recover) {
                    self.in_recovery = false;
                    self.cwnd = self.ssthresh;
                } else if self.sack_ok {
                    // RFC 6675: a partial ack moves the holes on; what may be sent is decided below.
                    if seq::lt(self.rxt_next, self.snd_una) {
                        self.rxt_next = self.snd_una;
                    }
                } else {
                    // RFC 6582: a partial ack retransmits the next hole and deflates the window.
                    let len = mss.min(self.snd_max.wrapping_sub(self.snd_una));
                    self.queue_data(now, self.snd_una, len, true);
                    self.cwnd = self.cwnd.saturating_sub(acked).saturating_add(mss);
                }
            } else if self.cwnd < self.ssthresh {
                self.cwnd = self.cwnd.saturating_add(acked.min(2 * mss));
            } else {
                let growth = (u64::from(mss) * u64::from(acked.min(mss))
                    / u64::from(self.cwnd.max(1)))
                .max(1);
                self.cwnd = self.cwnd.saturating_add(growth as u32);
            }
            self.dupacks = 0;
            self.rto_at = if self.snd_una == self.snd_max {
                None
            } else {
                Some(now + self.rto)
            };
        } else if seg.ack == self.snd_una
            && seg.len == 0
            && self.snd_una != self.snd_max
            && self.fin_seq.is_none()
            && window == self.snd_wnd
        {
            self.dupacks += 1;
            let mss = self.mss();
            if self.dupacks == 3 && !self.in_recovery {
                let flight = self.snd_max.wrapping_sub(self.snd_una);
                self.ssthresh = (flight / 2).max(2 * mss);
                self.recover = self.snd_max;
                self.in_recovery = true;
                if self.sack_ok {
                    self.cwnd = self.ssthresh;
                    self.rxt_next = self.snd_una;
                } else {
                    self.cwnd = self.ssthresh + 3 * mss;
                    let len = mss.min(flight);
                    self.queue_data(now, self.snd_una, len, true);
                }
            } else if self.in_recovery && !self.sack_ok {
                self.cwnd = self.cwnd.saturating_add(mss);
            }
        }
        self.snd_wnd = window;
        if self.in_recovery && self.sack_ok {
            self.sack_recovery_send(now);
        }
    }

    /// Bytes the peer reported holding above `snd_una`, and the highest of them.
    fn sacked_summary(&self) -> (u32, Option<u32>) {
        let bytes = self.sacked.iter().map(|(&s, &e)| e.wrapping_sub(s)).sum();
        (bytes, self.sacked.last_key_value().map(|(_, &e)| e))
    }

    /// RFC 6675's estimate of what is in flight: everything sent above the highest SACKed byte, plus the
    /// retransmitted holes; holes not yet retransmitted are taken as lost.
    fn pipe(&self) -> u32 {
        let Some(high) = self.sacked.last_key_value().map(|(_, &e)| e) else {
            return self.snd_max.wrapping_sub(self.snd_una);
        };
        let above = self.snd_max.wrapping_sub(high);
        // Retransmitted and not since SACKed: [snd_una, rxt_next) less the SACKed ranges inside it.
        let span = self.rxt_next.wrapping_sub(self.snd_una);
        let sacked_in_span: u32 = self
            .sacked
            .iter()
            .filter(|&(&s, _)| seq::lt(s, self.rxt_next))
            .map(|(&s, &e)| {
                let e = if seq::gt(e, self.rxt_next) {
                    self.rxt_next
                } else {
                    e
                };
                e.wrapping_sub(s)
            })
            .sum();
        above + span.saturating_sub(sacked_in_span)
    }

    /// The next hole at or above `rxt_next` and below the highest SACKed byte: (start, length).
    fn next_hole(&self, mss: u32) -> Option<(u32, u32)> {
        let (_, high) = self.sacked_summary();
        let high = high?;
        let mut at = self.rxt_next;
        for (&start, &end) in &self.sacked {
            if seq::leq(end, at) {
                continue;
            }
            if seq::lt(at, start) {
                return Some((at, mss.min(start.wrapping_sub(at))));
            }
            at = end;
        }
        seq::lt(at, high).then(|| (at, mss.min(high.wrapping_sub(at))))
    }

    /// Sends holes first, then new data, while what is in flight stays under the congestion window.
    fn sack_recovery_send(&mut self, now: Instant) {
        let mss = self.mss();
        for _ in 0..1024 {
            if self.pipe().saturating_add(mss) > self.cwnd {
                break;
            }
            if let Some((start, len)) = self.next_hole(mss) {
                self.rxt_next = start.wrapping_add(len);
                self.queue_data(now, start, len, true);
                continue;
            }
            let flight = self.snd_max.wrapping_sub(self.snd_una);
            if flight.saturating_add(mss) > self.snd_wnd || self.to_send == 0 {
                break;
            }
            let len = u64::from(mss).min(self.to_send) as u32;
            self.to_send -= u64::from(len);
            let at = self.snd_max;
            self.snd_max = self.snd_max.wrapping_add(len);
            self.snd_nxt = self.snd_max;
            self.queue_data(now, at, len, false);
        }
    }

    fn rtt_sample(&mut self, rtt: Duration) {
        // RFC 6298 section 2.
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = Duration(rtt.0 / 2);
            }
            Some(srtt) => {
                let delta = srtt.0.abs_diff(rtt.0);
                self.rttvar = Duration((3 * self.rttvar.0 + delta) / 4);
                self.srtt = Some(Duration((7 * srtt.0 + rtt.0) / 8));
            }
        }
        let srtt = self.srtt.unwrap_or(rtt);
        self.rto = Duration(srtt.0 + (4 * self.rttvar.0).max(1000)).max(self.cfg.min_rto);
    }

    fn on_data(&mut self, now: Instant, seg: &Segment) {
        let end = seg.seq.wrapping_add(seg.len);
        if seq::leq(seg.seq, self.rcv_nxt) && seq::gt(end, self.rcv_nxt) {
            self.stats.delivered += u64::from(end.wrapping_sub(self.rcv_nxt));
            self.rcv_nxt = end;
            let had_holes = !self.ooo.is_empty();
            // Pull in what was waiting behind the hole.
            while let Some((&start, &stored_end)) = self.ooo.first_key_value() {
                if seq::gt(start, self.rcv_nxt) {
                    break;
                }
                self.ooo.pop_first();
                if seq::gt(stored_end, self.rcv_nxt) {
                    self.stats.delivered += u64::from(stored_end.wrapping_sub(self.rcv_nxt));
                    self.rcv_nxt = stored_end;
                }
            }
            if self.ooo_last.is_some_and(|s| !self.ooo.contains_key(&s)) {
                self.ooo_last = None;
            }
            self.unacked_segments += 1;
            if had_holes || self.unacked_segments >= 2 {
                self.ack_now = true;
            } else if self.delack_at.is_none() {
                self.delack_at = Some(now + self.cfg.delayed_ack);
            }
        } else if seq::gt(seg.seq, self.rcv_nxt) {
            if seq::leq(end, self.rcv_nxt.wrapping_add(self.rcv_window())) {
                self.ooo_last = Some(insert_range(&mut self.ooo, seg.seq, end));
            }
            self.ack_now = true;
        } else {
            // Old data: our ACK was lost or the sender timed out early.
            self.ack_now = true;
        }
    }

    fn flush_ack(&mut self) {
        if self.ack_now {
            self.queue_ack();
        }
    }

    /// Sends what the congestion and receive windows allow.
    fn fill(&mut self, now: Instant) {
        if self.phase != Phase::Established
            || self.to_send == 0
            || (self.in_recovery && self.sack_ok)
        {
            return;
        }
        let mss = self.mss();
        loop {
            let flight = self.snd_nxt.wrapping_sub(self.snd_una);
            let window = self.cwnd.min(self.snd_wnd);
            if flight >= window || window - flight < mss.min(window) {
                break;
            }
            let retransmitting = seq::lt(self.snd_nxt, self.snd_max);
            let len = if retransmitting {
                mss.min(self.snd_max.wrapping_sub(self.snd_nxt))
            } else {
                let len = u64::from(mss).min(self.to_send) as u32;
                if len == 0 {
                    break;
                }
                self.to_send -= u64::from(len);
                len
            };
            let at = self.snd_nxt;
            self.snd_nxt = self.snd_nxt.wrapping_add(len);
            if seq::gt(self.snd_nxt, self.snd_max) {
                self.snd_max = self.snd_nxt;
            }
            self.queue_data(now, at, len, retransmitting);
        }
    }

    /// The next segment to put on the wire, if any.
    pub fn poll_transmit(&mut self) -> Option<Segment> {
        self.out.pop_front()
    }

    /// When [`TcpEndpoint::on_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.rto_at, self.delack_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the timers that are due.
    pub fn on_timeout(&mut self, now: Instant) {
        if self.delack_at.is_some_and(|t| t <= now) {
            self.queue_ack();
        }
        if self.rto_at.is_some_and(|t| t <= now) {
            self.stats.timeouts += 1;
            self.rto = Duration((self.rto.0 * 2).min(60_000_000));
            self.rto_at = Some(now + self.rto);
            match self.phase {
                Phase::SynSent => self.queue_syn(now, false),
                Phase::SynReceived => self.queue_syn(now, true),
                // Data is all acknowledged before a FIN goes out, so only the FIN is missing.
                Phase::Established if self.fin_seq.is_some() && !self.fin_acked => {
                    self.queue_fin(now)
                }
                Phase::Established if self.snd_una != self.snd_max => {
                    // RFC 5681 section 3.1: after a timeout, one segment and slow start again.
                    let mss = self.mss();
                    let flight = self.snd_max.wrapping_sub(self.snd_una);
                    self.ssthresh = (flight / 2).max(2 * mss);
                    self.cwnd = mss;
                    self.in_recovery = false;
                    self.dupacks = 0;
                    // RFC 6675 section 5.1: after a timeout the SACK scoreboard is not trusted.
                    self.sacked.clear();
                    self.snd_nxt = self.snd_una;
                    let len = mss.min(flight);
                    self.snd_nxt = self.snd_una.wrapping_add(len);
                    self.queue_data(now, self.snd_una, len, true);
                }
                _ => self.rto_at = None,
            }
        }
    }
}

/// Adds [start, end) to a set of merged ranges; returns the start of the range that now holds it.
fn insert_range(ranges: &mut BTreeMap<u32, u32>, start: u32, end: u32) -> u32 {
    let (mut start, mut end) = (start, end);
    // Merge with a range that starts before and reaches `start`.
    if let Some((&s, &e)) = ranges.range(..=start).next_back()
        && seq::geq(e, start)
    {
        ranges.remove(&s);
        start = s;
        if seq::gt(e, end) {
            end = e;
        }
    }
    // Swallow ranges that start inside [start, end].
    while let Some((&s, &e)) = ranges.range(start..).next() {
        if seq::gt(s, end) {
            break;
        }
        ranges.remove(&s);
        if seq::gt(e, end) {
            end = e;
        }
    }
    ranges.insert(start, end);
    start
}

/// Drops what lies below `at` from a set of merged ranges.
fn trim_below(ranges: &mut BTreeMap<u32, u32>, at: u32) {
    while let Some((&s, &e)) = ranges.first_key_value() {
        if seq::gt(s, at) || s == at {
            break;
        }
        ranges.pop_first();
        if seq::gt(e, at) {
            ranges.insert(at, e);
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    /// Two endpoints joined by a link of `bw_bps` and `delay` each way with a drop-tail queue of `queue`
    /// bytes, dropping the segments for which `drop(n)` says so; returns (client, server) after `secs`.
    fn run(
        bw_bps: u64,
        delay: Duration,
        queue: u64,
        secs: u64,
        mut drop: impl FnMut(u64) -> bool,
    ) -> (TcpEndpoint, TcpEndpoint) {
        let cfg = TcpConfig::default();
        let mut c = TcpEndpoint::client(cfg, Instant::ZERO, u64::MAX);
        let mut s = TcpEndpoint::server(TcpConfig { iss: 7_000, ..cfg });
        let mut events: BinaryHeap<Reverse<(u64, u64, bool, Segment)>> = BinaryHeap::new();
        let mut busy = [0u64; 2];
        let mut n = 0u64;
        let mut now = Instant::ZERO;
        let end = Instant(secs * 1_000_000);
        while now < end {
            for (to_server, e) in [(true, &mut c), (false, &mut s)] {
                while let Some(seg) = e.poll_transmit() {
                    n += 1;
                    let dir = usize::from(!to_server);
                    let wire = (u64::from(seg.len) + 54) * 8 * 1_000_000 / bw_bps;
                    let start = busy[dir].max(now.0);
                    if start - now.0 > queue * 8 * 1_000_000 / bw_bps || drop(n) {
                        continue;
                    }
                    busy[dir] = start + wire;
                    let at = busy[dir] + delay.0;
                    events.push(Reverse((at, n, to_server, seg)));
                }
            }
            let next_timer = [c.poll_timeout(), s.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            let next_event = events.peek().map(|Reverse(e)| Instant(e.0));
            let Some(next) = [next_timer, next_event].into_iter().flatten().min() else {
                break;
            };
            now = next.max(now);
            if next_event == Some(next) {
                let Reverse((_, _, to_server, seg)) = events.pop().expect("peeked");
                if to_server {
                    s.on_segment(now, &seg)
                } else {
                    c.on_segment(now, &seg)
                }
            } else {
                c.on_timeout(now);
                s.on_timeout(now);
            }
        }
        (c, s)
    }

    #[test]
    fn a_clean_link_is_filled_by_slow_start_and_congestion_avoidance() {
        // 100 Mbit/s, 1 ms each way: BDP 25 KB, 2 s of transfer.
        let (c, s) = run(100_000_000, Duration::millis(1), 256 << 10, 2, |_| false);
        let goodput = s.stats().delivered as f64 * 8.0 / 2.0;
        assert!(
            goodput > 0.85 * 100e6 * 1448.0 / 1502.0,
            "goodput {goodput}"
        );
        // Slow start overshoots the queue once; fast recovery repairs it without a timeout.
        assert_eq!(c.stats().timeouts, 0);
        assert!(c.stats().acked <= s.stats().delivered);
    }

    #[test]
    fn a_lost_segment_is_repaired_by_fast_retransmit_without_a_timeout() {
        let (c, s) = run(100_000_000, Duration::millis(1), 1 << 20, 1, |n| n == 300);
        assert!(c.stats().retransmits >= 1);
        assert_eq!(c.stats().timeouts, 0);
        assert!(s.stats().delivered > 5_000_000);
    }

    #[test]
    fn heavy_loss_still_makes_progress_through_timeouts() {
        let (c, s) = run(10_000_000, Duration::millis(5), 64 << 10, 5, |n| n % 7 == 0);
        assert!(c.stats().timeouts + c.stats().retransmits > 0);
        assert!(
            s.stats().delivered > 50_000,
            "delivered {}",
            s.stats().delivered
        );
    }

    #[test]
    fn a_bare_ack_far_below_the_window_is_answered_with_the_endpoints_numbers() {
        let (mut c, mut s) = run(10_000_000, Duration::millis(1), 64 << 10, 1, |_| false);
        while s.poll_transmit().is_some() {}
        let (rcv_nxt, snd_nxt) = (s.rcv_nxt, s.snd_nxt);
        let probe = Segment {
            seq: rcv_nxt.wrapping_sub(1 << 30),
            ack: snd_nxt,
            flags: flags::ACK,
            win: 100,
            len: 0,
            mss: None,
            wscale: None,
            sack_ok: false,
            sack: [None; 3],
        };
        let now = Instant(2_000_000);
        s.on_segment(now, &probe);
        let answer = s.poll_transmit().expect("answered");
        assert_eq!((answer.seq, answer.ack, answer.len), (snd_nxt, rcv_nxt, 0));
        // A bare ACK inside the window is not answered.
        while c.poll_transmit().is_some() {}
        s.on_segment(
            now,
            &Segment {
                seq: rcv_nxt,
                ..probe
            },
        );
        assert!(s.poll_transmit().is_none());
    }

    #[test]
    fn the_handshake_carries_options_and_survives_a_lost_syn() {
        let (c, s) = run(10_000_000, Duration::millis(1), 64 << 10, 3, |n| n == 1);
        assert!(c.established() && s.established());
        assert_eq!(c.stats().timeouts, 1);
        assert!(s.stats().delivered > 0);
    }

    /// Runs a client and a server segment by segment over a lossless zero-delay exchange, dropping the
    /// segments `drop(n)` names, with time moving 1 ms per step; returns them when both are finished or
    /// after `steps`.
    fn converse(
        mut c: TcpEndpoint,
        mut s: TcpEndpoint,
        steps: u64,
        mut drop: impl FnMut(u64, &Segment) -> bool,
    ) -> (TcpEndpoint, TcpEndpoint, Vec<(bool, Segment)>) {
        let mut wire = Vec::new();
        let mut n = 0;
        for step in 0..steps {
            let now = Instant(step * 1000);
            c.on_timeout(now);
            s.on_timeout(now);
            let mut moved = false;
            while let Some(seg) = c.poll_transmit() {
                n += 1;
                wire.push((true, seg));
                moved = true;
                if !drop(n, &seg) {
                    s.on_segment(now, &seg);
                }
            }
            while let Some(seg) = s.poll_transmit() {
                n += 1;
                wire.push((false, seg));
                moved = true;
                if !drop(n, &seg) {
                    c.on_segment(now, &seg);
                }
            }
            if !moved && c.finished() && s.finished() {
                break;
            }
        }
        (c, s, wire)
    }

    fn request_response(how: Teardown) -> (TcpEndpoint, TcpEndpoint) {
        let cfg = TcpConfig::default();
        let c = TcpEndpoint::client(cfg, Instant::ZERO, 300).closing(5000, how);
        let s = TcpEndpoint::server(TcpConfig { iss: 9_000, ..cfg }).replying(300, 5000);
        (c, s)
    }

    #[test]
    fn a_request_is_answered_and_the_client_closes_with_fin_answered_by_fin() {
        let (c, s) = request_response(Teardown::Fin);
        let (c, s, wire) = converse(c, s, 1000, |_, _| false);
        assert!(c.finished() && s.finished());
        assert!(!c.was_reset() && !s.was_reset());
        assert_eq!((s.stats().delivered, c.stats().delivered), (300, 5000));
        assert_eq!((c.stats().acked, s.stats().acked), (300, 5000));
        let fins: Vec<(bool, u32, u32)> = wire
            .iter()
            .filter(|(_, seg)| seg.flags & flags::FIN != 0)
            .map(|&(from_client, seg)| (from_client, seg.seq, seg.ack))
            .collect();
        // The client's FIN follows its 300 bytes; the server's follows its 5000 and acknowledges the FIN.
        assert_eq!(
            fins,
            [
                (true, 1_000_001 + 300, 9_001 + 5000),
                (false, 9_001 + 5000, 1_000_001 + 301)
            ]
        );
        // The last segment acknowledges the server's FIN.
        let (from_client, last) = wire.last().copied().expect("segments");
        assert!(from_client && last.flags == flags::ACK && last.ack == 9_001 + 5001);
    }

    #[test]
    fn a_lost_fin_and_a_lost_last_ack_are_repaired_by_retransmission() {
        for lost in [flags::FIN | flags::ACK, flags::ACK] {
            let (c, s) = request_response(Teardown::Fin);
            let mut dropped = false;
            // Drop the client's FIN, or the client's final ACK of the server's FIN, once.
            let (c, s, _) = converse(c, s, 5000, |_, seg| {
                let hit = !dropped
                    && seg.flags == lost
                    && (lost != flags::ACK || seg.ack == 9_001 + 5001);
                dropped |= hit;
                hit
            });
            assert!(dropped);
            assert!(c.finished() && s.finished(), "lost {lost:#x}");
            assert!(c.stats().timeouts + s.stats().timeouts >= 1);
        }
    }

    #[test]
    fn a_client_may_end_with_a_rst_that_the_server_accepts() {
        let (c, s) = request_response(Teardown::Rst);
        let (c, s, wire) = converse(c, s, 1000, |_, _| false);
        assert!(c.was_reset() && s.was_reset());
        assert!(c.finished() && s.finished());
        let (from_client, rst) = wire.last().copied().expect("segments");
        assert!(from_client && rst.flags & flags::RST != 0);
        assert_eq!(rst.seq, 1_000_001 + 300);
    }

    #[test]
    fn a_rst_outside_the_window_is_ignored() {
        let (c, s) = request_response(Teardown::Fin);
        let (_, mut s, _) = converse(c, s, 3, |_, _| false);
        let forged = Segment {
            seq: 12345,
            ack: 0,
            flags: flags::RST,
            win: 0,
            len: 0,
            mss: None,
            wscale: None,
            sack_ok: false,
            sack: [None; 3],
        };
        s.on_segment(Instant(10_000), &forged);
        assert!(!s.was_reset() && s.established());
    }

    #[test]
    fn a_reused_endpoint_is_the_fresh_one() {
        let (c, s) = request_response(Teardown::Fin);
        let (mut c, _, _) = converse(c, s, 1000, |_, _| false);
        c.reuse(TcpEndpoint::client(
            TcpConfig::default(),
            Instant::ZERO,
            300,
        ));
        assert!(!c.finished() && !c.established());
        let syn = c.poll_transmit().expect("a SYN");
        assert_eq!((syn.flags, syn.seq), (flags::SYN, 1_000_000));
        assert!(c.poll_transmit().is_none());
    }

    #[test]
    fn the_codec_carries_every_field_of_a_segment() {
        use tandem_dataplane::wire::build::{self, Endpoints};
        use tandem_dataplane::wire::ethernet::MacAddr;
        let seg = Segment {
            seq: 7,
            ack: 9,
            flags: flags::ACK,
            win: 1000,
            len: 10,
            mss: None,
            wscale: None,
            sack_ok: false,
            sack: [Some((100, 200)), Some((300, 400)), None],
        };
        let ends = Endpoints::v4(
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 2]),
            std::net::Ipv4Addr::new(10, 0, 0, 1),
            std::net::Ipv4Addr::new(10, 0, 0, 2),
        );
        let frame = build::tcp(&ends, &seg.repr(1000, 80), &[0; 10]).expect("builds");
        let tcp = TcpPacket::new_checked(&frame[34..]).expect("TCP");
        assert_eq!(Segment::of_tcp(&tcp), Some(seg));
    }
}
