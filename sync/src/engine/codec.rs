//! Between the engine's messages and pfsync bytes: builds packets through the packetizer and reads
//! packets through the wire layer's checked iterators, applying OpenBSD's per-message checks.
//!
//! Conventions on the wire (pfsync spec sections 4 and 9.4): Tandem evaluates rules on the way in, so every
//! state it sends has direction "in" and its key lists the initiator first; a state another pfsync sent
//! with direction "out" lists the initiator second and is turned round here. States learned from peers
//! carry no rule number (pf hangs synced states off its default rule). A CLR naming an interface is not
//! applied: Tandem's states are floating, and OpenBSD applies an unknown interface name to nothing.

use tandem_config::Family;

use crate::event::{StateName, StateRecord, StateUpdate};
use crate::identity::AddressFamily;
pub use crate::packetizer::Encapsulation;
use crate::packetizer::Packetizer;
use crate::state::{TimeoutClass, state_flags, tcp_state};
use crate::wire::{
    self, Action, BusRepr, BusStatus, ClrRepr, HEADER_LEN, InterfaceName, Message, PeerRepr,
    PfsyncPacket, SUBHEADER_LEN, StateKeyRepr, StateRefRepr, StateRepr, UpdCRepr,
};

use super::message::{BulkStatus, Incoming, Outgoing};

/// Bytes of a full state message.
pub(crate) const STATE_LEN: usize = Action::Ins.message_len();
/// Bytes of a compressed update.
pub(crate) const UPD_C_LEN: usize = Action::UpdC.message_len();
/// Bytes of the 12-byte messages (INS_ACK, UPD_REQ, DEL_C).
pub(crate) const SMALL_LEN: usize = Action::DelC.message_len();

/// pf's direction values in a full state.
const PF_IN: u8 = 1;
const PF_OUT: u8 = 2;

/// Builds packets, exactly sized to the MTU.
#[derive(Debug)]
pub(crate) struct Encoder {
    packetizer: Packetizer,
    capacity: usize,
}

impl Encoder {
    /// An encoder for packets of at most `mtu` bytes on the wire; `None` if a full state cannot fit.
    pub fn new(mtu: u16, encapsulation: Encapsulation) -> Option<Encoder> {
        let packetizer = Packetizer::new(usize::from(mtu), encapsulation).ok()?;
        Some(Encoder {
            capacity: usize::from(mtu) - encapsulation.overhead() - HEADER_LEN,
            packetizer,
        })
    }

    /// Bytes of sections one packet holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Full states one packet holds.
    pub fn states_per_packet(&self) -> usize {
        (self.capacity - SUBHEADER_LEN) / STATE_LEN
    }

    /// Adds a message; packets that fill up are handed to `sink`.
    pub fn push(&mut self, message: &Outgoing, sink: &mut impl FnMut(&[u8])) {
        self.packetizer.push(&to_wire(message), sink);
    }

    /// Hands over the packet being built, if any.
    pub fn flush(&mut self, sink: &mut impl FnMut(&[u8])) {
        self.packetizer.flush(sink);
    }

    /// A pfsync packet with no sections, which peers accept and ignore: our keepalive.
    pub fn empty_packet(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; HEADER_LEN];
        let header = wire::HeaderRepr {
            len: HEADER_LEN as u16,
            checksum: [0; 16],
        };
        header.emit(&mut wire::Header::new_unchecked(&mut bytes[..]));
        bytes
    }
}

fn state_ref(name: StateName) -> StateRefRepr {
    StateRefRepr {
        creator: name.creator,
        id: name.id,
    }
}

fn peer_repr(peer: &crate::state::TcpPeer) -> PeerRepr {
    PeerRepr {
        tcp: *peer,
        ..PeerRepr::default()
    }
}

fn wire_family(family: Family) -> AddressFamily {
    match family {
        Family::Inet => AddressFamily::Inet,
        Family::Inet6 => AddressFamily::Inet6,
    }
}

/// The full state message for `record`.
pub(crate) fn state_repr(record: &StateRecord, ack: bool) -> StateRepr {
    let af = wire_family(record.family);
    let key = StateKeyRepr {
        addr: record.addr,
        port: record.port,
        rdomain: 0,
        af: Some(af),
    };
    let mut flags = record.flags & !state_flags::ACK;
    if ack {
        flags |= state_flags::ACK;
    }
    StateRepr {
        id: record.name.id,
        creator: record.name.creator,
        ifname: InterfaceName::new("all"),
        key: [key, key],
        src: peer_repr(&record.peers[0]),
        dst: peer_repr(&record.peers[1]),
        rt_addr: [0; 16],
        rule: record.rule,
        anchor: u32::MAX,
        nat_rule: u32::MAX,
        creation: record.age_secs,
        expire: record.expire_secs,
        packets: record.packets,
        bytes: record.bytes,
        rtableid: [-1, -1],
        max_mss: 0,
        af,
        proto: record.proto,
        direction: PF_IN,
        log: 0,
        rt: 0,
        timeout: record.timeout as u8,
        sync_flags: 0,
        updates: 0,
        min_ttl: 0,
        set_tos: 0,
        state_flags: flags,
        set_prio: [0, 0],
    }
}

fn to_wire(message: &Outgoing) -> Message {
    match *message {
        Outgoing::InsAck(name) => Message::InsAck(state_ref(name)),
        Outgoing::UpdC(update) => Message::UpdC(UpdCRepr {
            id: update.name.id,
            creator: update.name.creator,
            src: peer_repr(&update.peers[0]),
            dst: peer_repr(&update.peers[1]),
            // OpenBSD sends 0 and ignores it on input.
            expire: 0,
            timeout: update.timeout as u8,
            state_flags: 0,
        }),
        Outgoing::UpdReq(name) => Message::UpdReq(match name {
            Some(name) => state_ref(name),
            None => StateRefRepr::BULK_REQUEST,
        }),
        Outgoing::DelC(name) => Message::DelC(state_ref(name)),
        Outgoing::Ins { record, ack } => Message::Ins(state_repr(&record, ack)),
        Outgoing::Upd(record) => Message::Upd(state_repr(&record, false)),
        Outgoing::Clr(creator) => Message::Clr(ClrRepr {
            ifname: InterfaceName::NONE,
            creator,
        }),
        Outgoing::Bus(creator, status) => Message::Bus(BusRepr {
            creator,
            endtime: 0,
            status: match status {
                BulkStatus::Start => BusStatus::Start,
                BulkStatus::End => BusStatus::End,
            },
        }),
    }
}

/// Why a received message was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// A value OpenBSD refuses too (pfsync's `badval`).
    BadValue,
    /// A valid state of a kind Tandem cannot carry yet: refused, so that it is not mistaken for another.
    Unsupported(Unsupported),
    /// A state whose key names another address family than the state itself: refused, since reading it
    /// either way would make a state for addresses nobody sent.
    FamilyMismatch,
    /// A whole section not parsed, as OpenBSD skips it: a legacy or unknown action, or a known action
    /// declaring messages shorter than its own.
    Section(SkippedSection),
}

/// Why a section was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkippedSection {
    /// One of pfsync's retired actions (1, 3, 8, 9, 11, 12).
    Legacy,
    /// An action this version does not know.
    Unknown,
    /// A known action whose declared message length is below its size.
    Short,
}

/// States a pf peer may send that Tandem does not carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// A SYN proxy still in one of its handshakes (`PF_TCPS_PROXY_SRC`/`_DST`): its sequence numbers are
    /// the proxy's, and treating the phase as a TCP state would read it as closed.
    Synproxy,
    /// A state in a routing domain other than 0.
    Rdomain,
    /// A translated state (NAT, rdr, af-to): its wire and stack keys differ.
    Translated,
}

/// The record a peer's full state describes, or why it is skipped: an invalid timeout class or a creator
/// id of 0 (values pfsync refuses), or a state Tandem cannot carry.
fn record_from(s: &StateRepr) -> Result<StateRecord, Skipped> {
    let timeout = TimeoutClass::from_index(s.timeout).ok_or(Skipped::BadValue)?;
    if s.creator.0 == 0 {
        return Err(Skipped::BadValue);
    }
    if s.proto == 6
        && [s.src.tcp.state, s.dst.tcp.state]
            .iter()
            .any(|&st| st == tcp_state::PROXY_SRC || st == tcp_state::PROXY_DST)
    {
        return Err(Skipped::Unsupported(Unsupported::Synproxy));
    }
    if s.key[0].rdomain != 0 || s.key[1].rdomain != 0 {
        return Err(Skipped::Unsupported(Unsupported::Rdomain));
    }
    // `af` is the wire key's family; the stack key may differ only under af-to (refused below as
    // translated).
    if s.key[0].af.is_some_and(|af| af != s.af) {
        return Err(Skipped::FamilyMismatch);
    }
    let same_key = s.key[0].addr == s.key[1].addr
        && s.key[0].port == s.key[1].port
        && s.key[0].af.unwrap_or(s.af) == s.key[1].af.unwrap_or(s.af);
    if !same_key {
        return Err(Skipped::Unsupported(Unsupported::Translated));
    }
    let family = match s.key[0].af.unwrap_or(s.af) {
        AddressFamily::Inet => Family::Inet,
        AddressFamily::Inet6 => Family::Inet6,
    };
    let key = &s.key[0];
    let (mut addr, port) = if s.direction == PF_OUT {
        ([key.addr[1], key.addr[0]], [key.port[1], key.port[0]])
    } else {
        (key.addr, key.port)
    };
    if family == Family::Inet {
        // pf copies an IPv4 address's four bytes and no more (`pf_addrcpy`); whatever a sender left in
        // the rest of the `pf_addr` is not part of the address, and kept would make a key no packet matches.
        for a in &mut addr {
            a[4..].fill(0);
        }
    }
    Ok(StateRecord {
        name: StateName {
            creator: s.creator,
            id: s.id,
        },
        family,
        proto: s.proto,
        addr,
        port,
        peers: [s.src.tcp, s.dst.tcp],
        timeout,
        expire_secs: s.expire,
        age_secs: s.creation,
        packets: s.packets,
        bytes: s.bytes,
        rule: u32::MAX,
        flags: s.state_flags & !state_flags::ACK,
    })
}

fn name_of(r: &StateRefRepr) -> StateName {
    StateName {
        creator: r.creator,
        id: r.id,
    }
}

/// Reads every message of a sync packet's payload, giving each checked message (or `Err` for one with a
/// value OpenBSD refuses, which is skipped) to `each`. A packet-level error ends the parse and is returned
/// after the messages before it were given, as OpenBSD processes the sections before a bad one.
pub(crate) fn decode(
    payload: &[u8],
    mut each: impl FnMut(Result<Incoming, Skipped>),
) -> Result<(), wire::Error> {
    let packet = PfsyncPacket::new_checked(payload)?;
    for section in packet.sections() {
        let section = section?;
        let code = section.subheader().code;
        if wire::delivery::is_delivery(code) {
            decode_delivery(&section, &mut each);
            continue;
        }
        if section.action().is_none() {
            each(Err(Skipped::Section(if wire::is_legacy(code) {
                SkippedSection::Legacy
            } else if Action::from_code(code).is_some() {
                SkippedSection::Short
            } else {
                SkippedSection::Unknown
            })));
            continue;
        }
        decode_section(&section, &mut each)?;
    }
    Ok(())
}

/// The messages of one of Tandem's delivery sections (skipped whole, like any unknown section, when its
/// messages are shorter than their size; one with host id 0 is a bad value).
fn decode_delivery(section: &wire::Section<'_>, each: &mut impl FnMut(Result<Incoming, Skipped>)) {
    let sub = section.subheader();
    let code = sub.code;
    let len = sub.message_len();
    if len < wire::delivery::message_len(code) {
        each(Err(Skipped::Section(SkippedSection::Short)));
        return;
    }
    for bytes in section
        .body()
        .chunks_exact(len)
        .take(usize::from(sub.count))
    {
        each(
            wire::delivery::Delivery::parse(code, bytes)
                .map(Incoming::Delivery)
                .ok_or(Skipped::BadValue),
        );
    }
}

/// The messages of one parsed section, as [`decode`] gives them.
fn decode_section(
    section: &wire::Section<'_>,
    each: &mut impl FnMut(Result<Incoming, Skipped>),
) -> Result<(), wire::Error> {
    for message in section.messages() {
        let message = match message {
            Ok(m) => m,
            Err(e) if e.ends_packet() => return Err(e),
            Err(_) => {
                each(Err(Skipped::BadValue));
                continue;
            }
        };
        if message.validate().is_err() {
            each(Err(Skipped::BadValue));
            continue;
        }
        let incoming = match message {
            Message::Clr(c) if c.ifname == InterfaceName::NONE => Ok(Incoming::Clr(c.creator)),
            Message::Clr(_) => Err(Skipped::BadValue),
            Message::InsAck(r) => Ok(Incoming::InsAck(name_of(&r))),
            Message::UpdC(u) => TimeoutClass::from_index(u.timeout)
                .ok_or(Skipped::BadValue)
                .map(|timeout| {
                    Incoming::UpdC(StateUpdate {
                        name: StateName {
                            creator: u.creator,
                            id: u.id,
                        },
                        peers: [u.src.tcp, u.dst.tcp],
                        timeout,
                        updates: 0,
                    })
                }),
            Message::UpdReq(r) if r.is_bulk_request() => Ok(Incoming::UpdReq(None)),
            Message::UpdReq(r) => Ok(Incoming::UpdReq(Some(name_of(&r)))),
            Message::Del(s) => Ok(Incoming::Del(StateName {
                creator: s.creator,
                id: s.id,
            })),
            Message::DelC(r) => Ok(Incoming::Del(name_of(&r))),
            Message::Ins(s) => record_from(&s).map(|record| Incoming::Ins {
                record,
                ack: s.state_flags & state_flags::ACK != 0,
            }),
            Message::Upd(s) => record_from(&s).map(Incoming::Upd),
            Message::Bus(b) => match b.status {
                BusStatus::Start => Ok(Incoming::Bus(b.creator, BulkStatus::Start)),
                BusStatus::End => Ok(Incoming::Bus(b.creator, BulkStatus::End)),
                BusStatus::Unknown(_) => Err(Skipped::BadValue),
            },
            // IPsec replay counters: Tandem has no IPsec.
            Message::Tdb(_) => continue,
        };
        each(incoming);
    }
    Ok(())
}

/// The counter slot and wire size of a received pfsync message (`None` for Tandem's delivery messages,
/// counted apart).
pub(crate) fn action_and_size(message: &Incoming) -> Option<(usize, usize)> {
    let action = match message {
        Incoming::Delivery(_) => return None,
        Incoming::Clr(_) => Action::Clr,
        Incoming::InsAck(_) => Action::InsAck,
        Incoming::UpdC(_) => Action::UpdC,
        Incoming::UpdReq(_) => Action::UpdReq,
        Incoming::Del(_) => Action::DelC,
        Incoming::Ins { .. } => Action::Ins,
        Incoming::Upd(_) => Action::Upd,
        Incoming::Bus(..) => Action::Bus,
    };
    Some(slot(action))
}

/// The counter slot and wire size of a message to send.
pub(crate) fn outgoing_action_and_size(message: &Outgoing) -> (usize, usize) {
    slot(to_wire_action(message))
}

fn to_wire_action(message: &Outgoing) -> Action {
    match message {
        Outgoing::InsAck(_) => Action::InsAck,
        Outgoing::UpdC(_) => Action::UpdC,
        Outgoing::UpdReq(_) => Action::UpdReq,
        Outgoing::DelC(_) => Action::DelC,
        Outgoing::Ins { .. } => Action::Ins,
        Outgoing::Upd(_) => Action::Upd,
        Outgoing::Clr(_) => Action::Clr,
        Outgoing::Bus(..) => Action::Bus,
    }
}

fn slot(action: Action) -> (usize, usize) {
    let name = match action {
        Action::Clr => "clr",
        Action::InsAck => "ins_ack",
        Action::UpdC => "upd_c",
        Action::UpdReq => "upd_req",
        Action::Del => "del",
        Action::DelC => "del_c",
        Action::Bus => "bus",
        Action::Ins => "ins",
        Action::Upd => "upd",
        Action::Tdb => "upd",
    };
    (super::stats::action_index(name), action.message_len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{CreatorId, StateId};
    use crate::state::TcpPeer;

    fn record(direction_out: bool) -> StateRecord {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&[198, 18, 0, 10]);
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[198, 19, 0, 20]);
        let peer = |seqlo| TcpPeer {
            seqlo,
            seqhi: seqlo + 65535,
            max_win: 65535,
            state: tcp_state::ESTABLISHED,
            ..TcpPeer::default()
        };
        let _ = direction_out;
        StateRecord {
            name: StateName {
                creator: CreatorId(0x0a00_0001),
                id: StateId(0x1_0000_0002),
            },
            family: Family::Inet,
            proto: 6,
            addr: [a, b],
            port: [40000, 443],
            peers: [peer(1000), peer(5000)],
            timeout: TimeoutClass::TcpEstablished,
            expire_secs: 86_000,
            age_secs: 12,
            packets: [10, 9],
            bytes: [14_000, 600],
            rule: 3,
            flags: 0,
        }
    }

    fn packets_of(messages: &[Outgoing], mtu: u16) -> Vec<Vec<u8>> {
        let mut encoder = Encoder::new(mtu, Encapsulation::Ip).expect("mtu fits");
        let mut out = Vec::new();
        for m in messages {
            encoder.push(m, &mut |p: &[u8]| out.push(p.to_vec()));
        }
        encoder.flush(&mut |p: &[u8]| out.push(p.to_vec()));
        out
    }

    #[test]
    fn every_engine_message_survives_the_wire() {
        let r = record(false);
        let update = StateUpdate {
            name: r.name,
            peers: r.peers,
            timeout: r.timeout,
            updates: 0,
        };
        let sent = [
            Outgoing::InsAck(r.name),
            Outgoing::UpdC(update),
            Outgoing::UpdReq(Some(r.name)),
            Outgoing::UpdReq(None),
            Outgoing::DelC(r.name),
            Outgoing::Ins {
                record: r,
                ack: true,
            },
            Outgoing::Upd(r),
            Outgoing::Clr(CreatorId(7)),
            Outgoing::Bus(CreatorId(7), BulkStatus::End),
        ];
        let mut received = Vec::new();
        for packet in packets_of(&sent, 1500) {
            decode(&packet, |m| received.push(m.expect("valid"))).expect("well-formed");
        }
        let expected = [
            Incoming::InsAck(r.name),
            Incoming::UpdC(update),
            Incoming::UpdReq(Some(r.name)),
            Incoming::UpdReq(None),
            Incoming::Del(r.name),
            Incoming::Ins {
                record: StateRecord {
                    rule: u32::MAX,
                    ..r
                },
                ack: true,
            },
            Incoming::Upd(StateRecord {
                rule: u32::MAX,
                ..r
            }),
            Incoming::Clr(CreatorId(7)),
            Incoming::Bus(CreatorId(7), BulkStatus::End),
        ];
        for e in expected {
            assert!(received.contains(&e), "missing {e:?}");
        }
        assert_eq!(received.len(), expected.len());
    }

    #[test]
    fn a_state_sent_outbound_by_openbsd_is_turned_round() {
        let r = record(false);
        let mut repr = state_repr(&r, false);
        repr.direction = PF_OUT;
        for key in &mut repr.key {
            key.addr = [r.addr[1], r.addr[0]];
            key.port = [r.port[1], r.port[0]];
        }
        let back = record_from(&repr).expect("valid");
        assert_eq!(back.addr, r.addr);
        assert_eq!(back.port, r.port);
    }

    #[test]
    fn values_pfsync_refuses_are_reported_per_message() {
        let r = record(false);
        let mut repr = state_repr(&r, false);
        repr.creator = CreatorId(0);
        assert_eq!(record_from(&repr), Err(Skipped::BadValue), "creator id 0");
        let mut repr = state_repr(&r, false);
        repr.timeout = 17;
        assert_eq!(
            record_from(&repr),
            Err(Skipped::BadValue),
            "not a state timeout class"
        );
    }

    #[test]
    fn states_tandem_cannot_carry_are_refused_by_name() {
        let r = record(false);
        let mut synproxy = state_repr(&r, false);
        synproxy.src.tcp.state = tcp_state::PROXY_SRC;
        let mut rdomain = state_repr(&r, false);
        rdomain.key[0].rdomain = 3;
        rdomain.key[1].rdomain = 3;
        let mut nat = state_repr(&r, false);
        nat.key[1].addr[0][3] ^= 1;
        for (repr, why) in [
            (synproxy, Unsupported::Synproxy),
            (rdomain, Unsupported::Rdomain),
            (nat, Unsupported::Translated),
        ] {
            assert_eq!(record_from(&repr), Err(Skipped::Unsupported(why)));
        }
        assert!(record_from(&state_repr(&r, false)).is_ok());
    }

    #[test]
    fn the_keepalive_is_an_empty_but_valid_packet() {
        let encoder = Encoder::new(1500, Encapsulation::Ip).expect("fits");
        let mut n = 0;
        decode(&encoder.empty_packet(), |_| n += 1).expect("valid");
        assert_eq!(n, 0);
        assert_eq!(
            encoder.states_per_packet(),
            5,
            "1460 bytes: five 264-byte states, as pfsync"
        );
    }
}
