//! Packing messages into sync packets that never exceed the sync link's MTU (the original pfsync sized its
//! packets by the pseudo-interface's MTU and could exceed the link's). It owns section grouping and order and
//! the exact running length; it does not decide what to send or when (coalescing and flush timing are the
//! engine's), and it never sees an IP header: it is told the encapsulation so its arithmetic stays exact.
//!
//! The running length follows OpenBSD's `sc_len` (if_pfsync.c, `pfsync_q_ins`): it starts at the
//! encapsulation plus the pfsync header, grows by a message's size plus a subheader when the message opens
//! its section, and a message that would take it past the MTU first sends the packet built so far.
//!
//! Section order. OpenBSD writes INS_ACK, UPD_C, DEL_C, INS, UPD, TDB, each at most once per packet, and
//! sends CLR, UPD_REQ and BUS in packets of their own. Tandem puts every action in one packet, in
//! [`SECTION_ORDER`], keeping OpenBSD's relative order and placing the others where a receiver processing
//! sections in order (as OpenBSD does) gets the meaning the sender intended:
//! - CLR first: a flush happened before anything the same packet says about states created after it.
//! - UPD_REQ after UPD_C: requests never depend on the rest of the packet.
//! - DEL after DEL_C and before INS: both delete, and a deleted flow's key must be free before a new state
//!   with the same key is inserted (OpenBSD refuses an insert whose key exists).
//! - BUS last, at most one per packet: END must follow every state of the bulk update it ends, and OpenBSD's
//!   BUS handler reads only the first message of its section, so a second BUS starts a new packet.

use crate::wire::{
    Action, HEADER_LEN, Header, HeaderRepr, Message, SUBHEADER_LEN, Subheader, SubheaderRepr,
};

/// The order of sections in every packet Tandem sends (see the module documentation for why).
pub const SECTION_ORDER: [Action; 10] = [
    Action::Clr,
    Action::InsAck,
    Action::UpdC,
    Action::UpdReq,
    Action::DelC,
    Action::Del,
    Action::Ins,
    Action::Upd,
    Action::Tdb,
    Action::Bus,
];

/// Where an action's section sits in [`SECTION_ORDER`].
const fn slot(action: Action) -> usize {
    match action {
        Action::Clr => 0,
        Action::InsAck => 1,
        Action::UpdC => 2,
        Action::UpdReq => 3,
        Action::DelC => 4,
        Action::Del => 5,
        Action::Ins => 6,
        Action::Upd => 7,
        Action::Tdb => 8,
        Action::Bus => 9,
    }
}

/// How sync packets travel: what sits between the MTU and the pfsync header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encapsulation {
    /// Raw IPv4, protocol 240, no options (pfsync's own transport).
    Ip,
    /// IPv4 and UDP, for networks that cannot carry protocol 240.
    Udp,
}

impl Encapsulation {
    /// Bytes of headers before the pfsync header.
    pub const fn overhead(self) -> usize {
        match self {
            Encapsulation::Ip => 20,
            Encapsulation::Udp => 20 + 8,
        }
    }

    /// The smallest MTU that holds one full state: encapsulation, pfsync header, subheader, 264 bytes.
    pub const fn min_mtu(self) -> usize {
        self.overhead() + HEADER_LEN + SUBHEADER_LEN + Action::Ins.message_len()
    }
}

/// The largest MTU: IPv4's total length is a 16-bit field.
pub const MAX_MTU: usize = u16::MAX as usize;

/// Why a packetizer cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Too small for one full state, so some messages could never be sent.
    #[error("MTU {mtu} cannot hold one full state; the smallest usable is {min}")]
    MtuTooSmall {
        /// The MTU asked for.
        mtu: usize,
        /// The smallest usable with this encapsulation.
        min: usize,
    },
    /// Larger than an IPv4 packet can be.
    #[error("MTU {mtu} is larger than an IPv4 packet ({MAX_MTU})")]
    MtuTooLarge {
        /// The MTU asked for.
        mtu: usize,
    },
}

/// Builds sync packets from messages, grouped by action, each packet at most the MTU.
#[derive(Clone, Debug)]
pub struct Packetizer {
    mtu: usize,
    encapsulation: Encapsulation,
    /// The running length (OpenBSD's `sc_len`): encapsulation, header, subheaders and messages so far.
    len: usize,
    /// Each section's messages, already in wire form, by [`slot`]. Emitting at push time keeps a queued
    /// message independent of the caller's buffers; the vectors keep their capacity across packets.
    sections: [Vec<u8>; SECTION_ORDER.len()],
    /// Messages per section.
    counts: [u16; SECTION_ORDER.len()],
    /// The packet being assembled at flush, reused.
    packet: Vec<u8>,
}

impl Packetizer {
    /// A packetizer for packets of at most `mtu` bytes including the `encapsulation`.
    pub fn new(mtu: usize, encapsulation: Encapsulation) -> Result<Packetizer, Error> {
        let min = encapsulation.min_mtu();
        if mtu < min {
            return Err(Error::MtuTooSmall { mtu, min });
        }
        if mtu > MAX_MTU {
            return Err(Error::MtuTooLarge { mtu });
        }
        let payload = mtu - encapsulation.overhead();
        Ok(Packetizer {
            mtu,
            encapsulation,
            len: encapsulation.overhead() + HEADER_LEN,
            sections: std::array::from_fn(|_| Vec::with_capacity(payload)),
            counts: [0; SECTION_ORDER.len()],
            packet: Vec::with_capacity(payload),
        })
    }

    /// The MTU.
    pub fn mtu(&self) -> usize {
        self.mtu
    }

    /// The encapsulation.
    pub fn encapsulation(&self) -> Encapsulation {
        self.encapsulation
    }

    /// The length the packet built so far would have on the link, encapsulation included.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&count| count == 0)
    }

    /// The length a message of `action` would add: its size, plus a subheader if it opens its section.
    fn growth(&self, action: Action) -> usize {
        let opens = self.counts[slot(action)] == 0;
        action.message_len() + if opens { SUBHEADER_LEN } else { 0 }
    }

    /// Whether a message of `action` joins the current packet without sending it first.
    pub fn fits(&self, action: Action) -> bool {
        let count = self.counts[slot(action)];
        // One BUS per packet: OpenBSD acts on the first message of a BUS section only.
        if action == Action::Bus && count > 0 {
            return false;
        }
        count < u16::MAX && self.len + self.growth(action) <= self.mtu
    }

    /// Queues `message`; if it does not fit, the packet built so far first goes to `sink` (the pfsync
    /// payload, header onwards). Never fails: every message fits an empty packet.
    pub fn push(&mut self, message: &Message, sink: &mut impl FnMut(&[u8])) {
        let action = message.action();
        if !self.fits(action) {
            self.flush(sink);
        }
        self.len += self.growth(action);
        let index = slot(action);
        let section = &mut self.sections[index];
        let start = section.len();
        section.resize(start + message.buffer_len(), 0);
        // The slice is exactly the message's size, so emit cannot refuse it.
        let emitted = message.emit(&mut section[start..]);
        debug_assert!(emitted.is_ok());
        self.counts[index] += 1;
    }

    /// Sends the packet built so far to `sink`, if it holds any message, and starts an empty one.
    pub fn flush(&mut self, sink: &mut impl FnMut(&[u8])) {
        if self.is_empty() {
            return;
        }
        let payload_len = self.len - self.encapsulation.overhead();
        self.packet.clear();
        self.packet.resize(HEADER_LEN, 0);
        let header = HeaderRepr {
            // At most MAX_MTU minus the encapsulation, so it fits.
            len: u16::try_from(payload_len).unwrap_or(u16::MAX),
            checksum: [0; 16],
        };
        header.emit(&mut Header::new_unchecked(&mut self.packet[..]));
        for (index, &action) in SECTION_ORDER.iter().enumerate() {
            let count = self.counts[index];
            if count == 0 {
                continue;
            }
            let at = self.packet.len();
            self.packet.resize(at + SUBHEADER_LEN, 0);
            SubheaderRepr::new(action, count)
                .emit(&mut Subheader::new_unchecked(&mut self.packet[at..]));
            self.packet.extend_from_slice(&self.sections[index]);
            self.sections[index].clear();
            self.counts[index] = 0;
        }
        debug_assert_eq!(self.packet.len(), payload_len);
        sink(&self.packet);
        self.len = self.encapsulation.overhead() + HEADER_LEN;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{CreatorId, StateId};
    use crate::wire::{BusRepr, BusStatus, PfsyncPacket, StateRefRepr, golden};

    fn del_c(id: u64) -> Message {
        Message::DelC(StateRefRepr {
            creator: CreatorId(1),
            id: StateId(id),
        })
    }

    fn bus(status: BusStatus) -> Message {
        Message::Bus(BusRepr {
            creator: CreatorId(1),
            endtime: 0,
            status,
        })
    }

    /// Pushes `n` copies of `message` at `mtu` and returns the packets' message counts.
    fn per_packet(mtu: usize, message: Message, n: usize) -> Vec<usize> {
        let mut packetizer = Packetizer::new(mtu, Encapsulation::Ip).unwrap();
        let mut counts = Vec::new();
        let mut sink = |bytes: &[u8]| {
            let packet = PfsyncPacket::new_checked(bytes).unwrap();
            counts.push(packet.messages().count());
        };
        for _ in 0..n {
            packetizer.push(&message, &mut sink);
        }
        packetizer.flush(&mut sink);
        counts
    }

    /// One packet with a section of every action, written out: header and subheaders here, each message
    /// from its own file's golden bytes.
    fn golden_packet() -> Vec<u8> {
        let mut bytes = vec![
            0x06, // version 6
            0x00, // pad
            0x04,
            0x20, // len 1056 = 20 + 10 subheaders + 20 + 3 * 12 + 84 + 12 + 3 * 264 + 52 + 12
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // pfcksum
        ];
        let sections: [([u8; 4], &[u8]); 10] = [
            ([0, 5, 0, 1], &golden::CLR),       // CLR, 5 words, 1 message
            ([2, 3, 0, 1], &golden::STATE_REF), // INS_ACK, 3 words
            ([4, 21, 0, 1], &golden::UPD_C),    // UPD_C, 21 words
            ([5, 3, 0, 1], &golden::STATE_REF), // UPD_REQ, 3 words
            ([7, 3, 0, 1], &golden::STATE_REF), // DEL_C, 3 words
            ([6, 66, 0, 1], &golden::STATE),    // DEL, 66 words
            ([13, 66, 0, 1], &golden::STATE),   // INS, 66 words
            ([14, 66, 0, 1], &golden::STATE),   // UPD, 66 words
            ([15, 13, 0, 1], &golden::TDB),     // TDB, 13 words
            ([10, 3, 0, 1], &golden::BUS),      // BUS, 3 words
        ];
        for (subheader, message) in sections {
            bytes.extend_from_slice(&subheader);
            bytes.extend_from_slice(message);
        }
        bytes
    }

    fn golden_messages() -> Vec<Message> {
        let bus = match Message::parse(Action::Bus, &golden::BUS) {
            Ok(m) => m,
            Err(e) => panic!("{e}"),
        };
        vec![
            Message::Clr(golden::clr()),
            Message::InsAck(golden::state_ref()),
            Message::UpdC(golden::upd_c()),
            Message::UpdReq(golden::state_ref()),
            Message::DelC(golden::state_ref()),
            Message::Del(golden::state()),
            Message::Ins(golden::state()),
            Message::Upd(golden::state()),
            Message::Tdb(golden::tdb()),
            bus,
        ]
    }

    #[test]
    fn golden_packet_parses_to_every_action_in_order() {
        let bytes = golden_packet();
        assert_eq!(bytes.len(), 1056);
        let packet = PfsyncPacket::new_checked(&bytes[..]).unwrap();
        let parsed: Vec<_> = packet.messages().map(|m| m.unwrap()).collect();
        assert_eq!(parsed, golden_messages());
        let actions: Vec<_> = packet
            .sections()
            .map(|s| s.unwrap().action().unwrap())
            .collect();
        assert_eq!(actions, SECTION_ORDER);
    }

    #[test]
    fn packing_every_action_in_any_order_rebuilds_the_golden_packet() {
        let mut messages = golden_messages();
        messages.reverse();
        messages.rotate_left(3);
        let mut packetizer = Packetizer::new(1500, Encapsulation::Ip).unwrap();
        let mut sent = Vec::new();
        for message in &messages {
            packetizer.push(message, &mut |bytes: &[u8]| sent.push(bytes.to_vec()));
        }
        assert_eq!(packetizer.len(), 20 + 1056);
        packetizer.flush(&mut |bytes: &[u8]| sent.push(bytes.to_vec()));
        assert_eq!(sent, vec![golden_packet()]);
    }

    #[test]
    fn messages_per_packet_match_openbsd_at_1500_and_9000() {
        // pfsync spec section 3: 5 full states, 17 UPD_C, 121 12-byte messages, 28 TDB per 1500 bytes.
        let state = Message::Upd(golden::state());
        let upd_c = Message::UpdC(golden::upd_c());
        let tdb = Message::Tdb(golden::tdb());
        assert_eq!(per_packet(1500, state, 6), vec![5, 1]);
        assert_eq!(per_packet(1500, upd_c, 18), vec![17, 1]);
        assert_eq!(per_packet(1500, del_c(1), 122), vec![121, 1]);
        assert_eq!(per_packet(1500, tdb, 29), vec![28, 1]);
        assert_eq!(per_packet(9000, state, 34), vec![33, 1]);
        assert_eq!(per_packet(9000, upd_c, 107), vec![106, 1]);
    }

    #[test]
    fn running_length_counts_encapsulation_header_subheaders_and_messages() {
        let mut packetizer = Packetizer::new(1500, Encapsulation::Udp).unwrap();
        let mut sink = |_: &[u8]| panic!("nothing should be sent");
        assert_eq!(packetizer.len(), 28 + 20);
        assert!(packetizer.is_empty());
        packetizer.push(&del_c(1), &mut sink);
        assert_eq!(packetizer.len(), 48 + 4 + 12);
        packetizer.push(&del_c(2), &mut sink);
        assert_eq!(packetizer.len(), 48 + 4 + 24);
        packetizer.push(&bus(BusStatus::Start), &mut sink);
        assert_eq!(packetizer.len(), 48 + 4 + 24 + 4 + 12);
        assert!(!packetizer.is_empty());
        let mut sent = Vec::new();
        packetizer.flush(&mut |bytes: &[u8]| sent.push(bytes.to_vec()));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].len() + 28, 48 + 4 + 24 + 4 + 12);
        assert_eq!(packetizer.len(), 48);
        assert!(packetizer.is_empty());
    }

    #[test]
    fn a_message_that_would_pass_the_mtu_sends_the_packet_first() {
        // The smallest MTU holds one full state, or (308 - 20 - 20 - 4) / 12 = 22 DEL_C.
        let mut packetizer =
            Packetizer::new(Encapsulation::Ip.min_mtu(), Encapsulation::Ip).unwrap();
        let mut sent = Vec::new();
        for id in 0..23 {
            packetizer.push(&del_c(id), &mut |bytes: &[u8]| sent.push(bytes.len()));
        }
        assert_eq!(sent, vec![20 + 4 + 22 * 12]);
        assert!(packetizer.fits(Action::DelC));
        assert!(
            !packetizer.fits(Action::Ins),
            "a new section of 264 does not fit beside one DEL_C"
        );
    }

    #[test]
    fn one_bus_per_packet() {
        let mut packetizer = Packetizer::new(1500, Encapsulation::Ip).unwrap();
        let mut sent = Vec::new();
        let mut sink = |bytes: &[u8]| sent.push(bytes.to_vec());
        packetizer.push(&bus(BusStatus::Start), &mut sink);
        assert!(!packetizer.fits(Action::Bus));
        packetizer.push(&del_c(1), &mut sink);
        packetizer.push(&bus(BusStatus::End), &mut sink);
        packetizer.flush(&mut sink);
        assert_eq!(sent.len(), 2);
        let first: Vec<_> = PfsyncPacket::new_checked(&sent[0][..])
            .unwrap()
            .messages()
            .collect();
        assert_eq!(first, vec![Ok(del_c(1)), Ok(bus(BusStatus::Start))]);
    }

    #[test]
    fn steady_state_packing_reuses_its_buffers() {
        // Every allocation push and flush could make is a vector growing; after the first packets none may.
        let mut packetizer = Packetizer::new(9000, Encapsulation::Ip).unwrap();
        let messages = golden_messages();
        let mut sent = 0;
        let mut sink = |bytes: &[u8]| sent += bytes.len();
        for message in messages.iter().cycle().take(200) {
            packetizer.push(message, &mut sink);
        }
        let buffers = |p: &Packetizer| {
            let mut all: Vec<_> = p
                .sections
                .iter()
                .map(|s| (s.as_ptr(), s.capacity()))
                .collect();
            all.push((p.packet.as_ptr(), p.packet.capacity()));
            all
        };
        let before = buffers(&packetizer);
        for message in messages.iter().cycle().take(20_000) {
            packetizer.push(message, &mut sink);
        }
        packetizer.flush(&mut sink);
        assert_eq!(buffers(&packetizer), before);
        assert!(sent > 20_000 * 12);
    }

    #[test]
    fn flushing_nothing_sends_nothing() {
        let mut packetizer = Packetizer::new(1500, Encapsulation::Ip).unwrap();
        packetizer.flush(&mut |_: &[u8]| panic!("empty packet sent"));
    }

    #[test]
    fn mtus_outside_what_one_state_and_ipv4_allow_are_refused() {
        assert_eq!(Encapsulation::Ip.min_mtu(), 308);
        assert_eq!(Encapsulation::Udp.min_mtu(), 316);
        assert!(Packetizer::new(308, Encapsulation::Ip).is_ok());
        assert_eq!(
            Packetizer::new(315, Encapsulation::Udp).unwrap_err(),
            Error::MtuTooSmall { mtu: 315, min: 316 }
        );
        assert!(Packetizer::new(65535, Encapsulation::Udp).is_ok());
        assert_eq!(
            Packetizer::new(65536, Encapsulation::Ip).unwrap_err(),
            Error::MtuTooLarge { mtu: 65536 }
        );
    }
}
