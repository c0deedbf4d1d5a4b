//! Our Wireshark dissector (`scripts/wireshark/pfsync.lua`) against our emitter: sync packets carrying every
//! message type (several per section, several sections per packet, a longer-than-known section and skipped
//! ones) are written to a pcap as Ethernet + IPv4 protocol 240 frames (and one UDP frame on port 8240),
//! decoded by tshark, and every field tshark reports is compared with the value we emitted. Both sides were
//! written from the layouts in docs/pfsync-wire.md, so a field at the wrong offset on either side fails here.
//! Needs tshark: the test fails, never skips, when it is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;

use tandem_sync::identity::{AddressFamily, CreatorId, StateId};
use tandem_sync::state::TcpPeer;
use tandem_sync::wire::{
    Action, BusRepr, BusStatus, ClrRepr, HEADER_LEN, Header, HeaderRepr, InterfaceName, Message,
    PeerRepr, ScrubRepr, StateKeyRepr, StateRefRepr, StateRepr, Subheader, SubheaderRepr,
    TdbDestination, TdbRepr, UpdCRepr,
};

const DISSECTOR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/wireshark/pfsync.lua");

/// Expected decoded values: field name (without `pfsync.`) to its occurrences, in packet order.
type Expected = BTreeMap<String, Vec<String>>;

fn hex(width: usize, value: u64) -> String {
    format!("{value:#0w$x}", w = width + 2)
}

/// A pfsync packet under construction, with the values tshark should report for it.
struct PacketBuilder {
    body: Vec<u8>,
    expected: Expected,
}

impl PacketBuilder {
    fn new() -> PacketBuilder {
        PacketBuilder {
            body: Vec::new(),
            expected: Expected::new(),
        }
    }

    fn expect(&mut self, field: &str, value: impl ToString) {
        self.expected
            .entry(field.to_string())
            .or_default()
            .push(value.to_string());
    }

    fn subheader(&mut self, code: u8, words: u8, count: u16) {
        let repr = SubheaderRepr { code, words, count };
        let at = self.body.len();
        self.body.resize(at + repr.buffer_len(), 0);
        repr.emit(&mut Subheader::new_unchecked(&mut self.body[at..]));
        self.expect("action", code);
        self.expect("action_len", words);
        self.expect("count", count);
    }

    /// A section of `messages`, each padded by `extra_words` of 0xee beyond its known size.
    fn section(&mut self, action: Action, extra_words: u8, messages: &[Message]) {
        let known = action.message_len();
        let words = (known / 4) as u8 + extra_words;
        self.subheader(action.code(), words, messages.len() as u16);
        for message in messages {
            assert_eq!(message.action(), action);
            let at = self.body.len();
            self.body.resize(at + usize::from(words) * 4, 0xee);
            message.emit(&mut self.body[at..at + known]).unwrap();
            expect_message(self, message);
            if extra_words > 0 {
                self.expect("extra", "ee".repeat(usize::from(extra_words) * 4));
            }
        }
    }

    /// A section the receiver must skip.
    fn skipped(&mut self, code: u8, words: u8, count: u16) {
        self.subheader(code, words, count);
        let len = usize::from(words) * 4 * usize::from(count);
        let bytes: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
        if len > 0 {
            let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            self.expect("skipped", text);
        }
        self.body.extend_from_slice(&bytes);
    }

    fn finish(mut self) -> (Vec<u8>, Expected) {
        let len = HEADER_LEN + self.body.len();
        let mut bytes = vec![0xa5; HEADER_LEN];
        let header = HeaderRepr {
            len: len as u16,
            checksum: [0; 16],
        };
        header.emit(&mut Header::new_unchecked(&mut bytes[..]));
        bytes.extend_from_slice(&self.body);
        self.expect("version", 6);
        self.expect("len", len);
        self.expect("cksum", "00".repeat(16));
        (bytes, self.expected)
    }
}

fn expect_peer(b: &mut PacketBuilder, prefix: &str, peer: &PeerRepr) {
    let p = |name: &str| format!("{prefix}.{name}");
    b.expect(&p("scrub.flags"), hex(4, u64::from(peer.scrub.flags)));
    b.expect(&p("scrub.ttl"), peer.scrub.ttl);
    b.expect(&p("scrub.valid"), peer.scrub.valid);
    b.expect(&p("scrub.ts_mod"), peer.scrub.ts_mod);
    b.expect(&p("seqlo"), peer.tcp.seqlo);
    b.expect(&p("seqhi"), peer.tcp.seqhi);
    b.expect(&p("seqdiff"), peer.tcp.seqdiff);
    b.expect(&p("max_win"), peer.tcp.max_win);
    b.expect(&p("mss"), peer.tcp.mss);
    b.expect(&p("state"), peer.tcp.state);
    b.expect(&p("wscale"), hex(2, u64::from(peer.tcp.wscale)));
}

/// The field name and text tshark gives a 16-byte pf address of family `af`.
fn address(name: &str, af: AddressFamily, addr: &[u8; 16]) -> (String, String) {
    match af {
        AddressFamily::Inet => (
            name.to_string(),
            Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]).to_string(),
        ),
        AddressFamily::Inet6 => (format!("{name}_v6"), Ipv6Addr::from(*addr).to_string()),
    }
}

fn expect_state(b: &mut PacketBuilder, state: &StateRepr) {
    b.expect("state.id", hex(16, state.id.0));
    b.expect(
        "state.ifname",
        String::from_utf8_lossy(state.ifname.as_bytes()),
    );
    for (index, key) in state.key.iter().enumerate() {
        let prefix = format!("state.key{index}");
        let af = key.af.unwrap_or(state.af);
        for endpoint in 0..2 {
            let (name, text) =
                address(&format!("{prefix}.addr{endpoint}"), af, &key.addr[endpoint]);
            b.expect(&name, text);
        }
        b.expect(&format!("{prefix}.port0"), key.port[0]);
        b.expect(&format!("{prefix}.port1"), key.port[1]);
        b.expect(&format!("{prefix}.rdomain"), key.rdomain);
        b.expect(
            &format!("{prefix}.af"),
            key.af.map_or(0, AddressFamily::to_wire),
        );
    }
    expect_peer(b, "state.src", &state.src);
    expect_peer(b, "state.dst", &state.dst);
    let (name, text) = address("state.rt_addr", state.af, &state.rt_addr);
    b.expect(&name, text);
    b.expect("state.rule", state.rule);
    b.expect("state.anchor", state.anchor);
    b.expect("state.nat_rule", state.nat_rule);
    b.expect("state.creation", state.creation);
    b.expect("state.expire", state.expire);
    b.expect("state.packets0", state.packets[0]);
    b.expect("state.packets1", state.packets[1]);
    b.expect("state.bytes0", state.bytes[0]);
    b.expect("state.bytes1", state.bytes[1]);
    b.expect("state.creatorid", hex(8, u64::from(state.creator.0)));
    b.expect("state.rtableid0", state.rtableid[0]);
    b.expect("state.rtableid1", state.rtableid[1]);
    b.expect("state.max_mss", state.max_mss);
    b.expect("state.af", state.af.to_wire());
    b.expect("state.proto", state.proto);
    b.expect("state.direction", state.direction);
    b.expect("state.log", hex(2, u64::from(state.log)));
    b.expect("state.rt", state.rt);
    b.expect("state.timeout", state.timeout);
    b.expect("state.sync_flags", hex(2, u64::from(state.sync_flags)));
    b.expect("state.updates", state.updates);
    b.expect("state.min_ttl", state.min_ttl);
    b.expect("state.set_tos", hex(2, u64::from(state.set_tos)));
    b.expect("state.state_flags", hex(4, u64::from(state.state_flags)));
    b.expect("state.set_prio0", state.set_prio[0]);
    b.expect("state.set_prio1", state.set_prio[1]);
}

fn expect_message(b: &mut PacketBuilder, message: &Message) {
    let state_ref = |b: &mut PacketBuilder, prefix: &str, m: &StateRefRepr| {
        b.expect(&format!("{prefix}.id"), hex(16, m.id.0));
        b.expect(
            &format!("{prefix}.creatorid"),
            hex(8, u64::from(m.creator.0)),
        );
    };
    match message {
        Message::Clr(m) => {
            b.expect("clr.ifname", String::from_utf8_lossy(m.ifname.as_bytes()));
            b.expect("clr.creatorid", hex(8, u64::from(m.creator.0)));
        }
        Message::InsAck(m) => state_ref(b, "ins_ack", m),
        Message::UpdReq(m) => state_ref(b, "upd_req", m),
        Message::DelC(m) => state_ref(b, "del_c", m),
        Message::UpdC(m) => {
            b.expect("upd_c.id", hex(16, m.id.0));
            expect_peer(b, "upd_c.src", &m.src);
            expect_peer(b, "upd_c.dst", &m.dst);
            b.expect("upd_c.creatorid", hex(8, u64::from(m.creator.0)));
            b.expect("upd_c.expire", m.expire);
            b.expect("upd_c.timeout", m.timeout);
            b.expect("upd_c.state_flags", hex(2, u64::from(m.state_flags)));
        }
        Message::Del(m) | Message::Ins(m) | Message::Upd(m) => expect_state(b, m),
        Message::Bus(m) => {
            b.expect("bus.creatorid", hex(8, u64::from(m.creator.0)));
            b.expect("bus.endtime", m.endtime);
            b.expect("bus.status", m.status.to_wire());
        }
        Message::Tdb(m) => {
            b.expect("tdb.spi", hex(8, u64::from(m.spi)));
            match m.dst {
                TdbDestination::Inet { len, port, addr } => {
                    b.expect("tdb.dst.len", len);
                    b.expect("tdb.dst.family", 2);
                    b.expect("tdb.dst.port", port);
                    b.expect("tdb.dst.addr", addr);
                }
                TdbDestination::Inet6 {
                    len,
                    port,
                    flowinfo,
                    addr,
                    scope_id,
                } => {
                    b.expect("tdb.dst.len", len);
                    b.expect("tdb.dst.family", 24);
                    b.expect("tdb.dst.port", port);
                    b.expect("tdb.dst.flowinfo", hex(8, u64::from(flowinfo)));
                    b.expect("tdb.dst.addr_v6", addr);
                    b.expect("tdb.dst.scope_id", scope_id);
                }
            }
            b.expect("tdb.rpl", m.rpl);
            b.expect("tdb.cur_bytes", m.cur_bytes);
            b.expect("tdb.sproto", m.sproto);
            b.expect("tdb.updates", m.updates);
            b.expect("tdb.rdomain", m.rdomain);
        }
    }
}

// Message values: varied by `i`, with extremes (u32::MAX, high bits, -1) so no field can hide in zeros.

fn peer(i: u32) -> PeerRepr {
    PeerRepr {
        tcp: TcpPeer {
            seqlo: 0xffff_fff0_u32.wrapping_add(i * 7919),
            seqhi: 0x8000_0000 + i * 104_729,
            seqdiff: i * 3,
            max_win: 65535 - i as u16,
            mss: 1460 - i as u16,
            state: (i % 13) as u8,
            wscale: 0x80 | (i % 15) as u8,
        },
        scrub: ScrubRepr {
            flags: (i % 2) as u16,
            ttl: 64 + i as u8,
            valid: (i % 2) as u8,
            ts_mod: 0xdead_0000 + i,
        },
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> [u8; 16] {
    let mut raw = [0u8; 16];
    raw[..4].copy_from_slice(&[a, b, c, d]);
    raw
}

fn v6(i: u16) -> [u8; 16] {
    Ipv6Addr::new(0x2001, 0xdb8, 0x1000 + i, 0xabcd, 0, 0, 0x42, i + 1).octets()
}

fn state(i: u32, af: AddressFamily) -> StateRepr {
    let n = i as u8;
    let (addr, key_af) = match af {
        AddressFamily::Inet => ([v4(10, 0, n, 1), v4(192, 0, 2, 200 + n)], Some(af)),
        // An old sender's unset key families: the state's family applies.
        AddressFamily::Inet6 => ([v6(i as u16), v6(100 + i as u16)], None),
    };
    StateRepr {
        id: StateId(0x5f3e_0001_0000_0000 + u64::from(i)),
        creator: CreatorId(0xc0ff_ee00 + i),
        ifname: InterfaceName::new(&format!("em{i}")),
        key: [
            StateKeyRepr {
                addr,
                port: [40000 + i as u16, 443],
                rdomain: i as u16,
                af: key_af,
            },
            StateKeyRepr {
                addr: [addr[1], addr[0]],
                port: [443, 50000 + i as u16],
                rdomain: 7,
                af: key_af,
            },
        ],
        src: peer(i),
        dst: peer(i + 100),
        rt_addr: if af == AddressFamily::Inet {
            v4(198, 51, 100, n)
        } else {
            v6(7)
        },
        rule: i,
        anchor: u32::MAX,
        nat_rule: u32::MAX - i,
        creation: 12 + i,
        expire: 86_400 - i,
        packets: [u64::from(i) << 40 | 9, 7],
        bytes: [1500, (1 << 32) + u64::from(i)],
        rtableid: [-1, i as i32],
        max_mss: 1400,
        af,
        proto: if i.is_multiple_of(2) { 6 } else { 17 },
        direction: 1 + (i % 2) as u8,
        log: 0x81,
        rt: (i % 4) as u8,
        timeout: (i % 20) as u8,
        sync_flags: 0x04,
        updates: 0,
        min_ttl: 64,
        set_tos: 0x10,
        state_flags: 0x0210 + i as u16,
        set_prio: [n, 7 - n],
    }
}

fn upd_c(i: u32) -> Message {
    Message::UpdC(UpdCRepr {
        id: StateId(u64::MAX - u64::from(i)),
        creator: CreatorId(0x8000_0001 + i),
        src: peer(i + 10),
        dst: peer(i + 20),
        expire: i,
        timeout: (2 + i % 3) as u8,
        state_flags: i as u8,
    })
}

fn name(i: u32) -> StateRefRepr {
    StateRefRepr {
        creator: CreatorId(0x0102_0304 * (i + 1)),
        id: StateId(0x1000_0000_0000_0000 * u64::from(i + 1) + 42),
    }
}

fn tdb(i: u32, af: AddressFamily) -> Message {
    let dst = match af {
        AddressFamily::Inet => TdbDestination::Inet {
            len: 16,
            port: 4500 + i as u16,
            addr: Ipv4Addr::new(192, 0, 2, i as u8),
        },
        AddressFamily::Inet6 => TdbDestination::Inet6 {
            len: 28,
            port: 0,
            flowinfo: 0x000a_bcde + i,
            addr: Ipv6Addr::from(v6(50 + i as u16)),
            scope_id: i,
        },
    };
    Message::Tdb(TdbRepr {
        spi: 0x1000 + i,
        dst,
        rpl: (1 << 40) + u64::from(i),
        cur_bytes: u64::MAX - u64::from(i),
        sproto: 50 + (i % 2) as u8,
        updates: 0,
        rdomain: i as u16,
    })
}

/// The sync packets: every action, several messages per section, several sections per packet.
fn packets() -> Vec<(Vec<u8>, Expected)> {
    use AddressFamily::{Inet, Inet6};
    let mut packets = Vec::new();

    let mut b = PacketBuilder::new();
    let clr = |ifname: &str, creator| {
        Message::Clr(ClrRepr {
            ifname: InterfaceName::new(ifname),
            creator: CreatorId(creator),
        })
    };
    b.section(
        Action::Clr,
        0,
        &[
            clr("em0", 1),
            clr("", 0xffff_ffff),
            clr("vlan100", 0x1234_5678),
        ],
    );
    b.section(
        Action::InsAck,
        0,
        &[Message::InsAck(name(0)), Message::InsAck(name(1))],
    );
    b.section(Action::UpdC, 0, &[upd_c(0), upd_c(1), upd_c(2)]);
    b.section(
        Action::UpdReq,
        0,
        &[
            Message::UpdReq(StateRefRepr::BULK_REQUEST),
            Message::UpdReq(name(2)),
        ],
    );
    b.section(
        Action::DelC,
        0,
        &[
            Message::DelC(name(3)),
            Message::DelC(name(4)),
            Message::DelC(name(5)),
        ],
    );
    packets.push(b.finish());

    let mut b = PacketBuilder::new();
    b.section(
        Action::Del,
        0,
        &[Message::Del(state(1, Inet)), Message::Del(state(2, Inet6))],
    );
    b.section(
        Action::Ins,
        0,
        &[
            Message::Ins(state(3, Inet)),
            Message::Ins(state(4, Inet6)),
            Message::Ins(state(5, Inet)),
        ],
    );
    b.section(
        Action::Upd,
        0,
        &[Message::Upd(state(6, Inet6)), Message::Upd(state(7, Inet))],
    );
    packets.push(b.finish());

    let mut b = PacketBuilder::new();
    b.skipped(12, 0, 1); // FreeBSD's EOF: legacy, skips nothing
    b.section(Action::Tdb, 0, &[tdb(1, Inet), tdb(2, Inet6), tdb(3, Inet)]);
    let bus = |status| {
        Message::Bus(BusRepr {
            creator: CreatorId(0xfeed_0001),
            endtime: 3,
            status,
        })
    };
    b.section(
        Action::Bus,
        0,
        &[
            bus(BusStatus::Start),
            bus(BusStatus::End),
            bus(BusStatus::Unknown(9)),
        ],
    );
    b.skipped(200, 2, 2); // an unknown action that declares its size: skipped
    b.section(Action::UpdC, 1, &[upd_c(7), upd_c(8)]); // a future sender's longer UPD_C
    b.section(Action::DelC, 2, &[Message::DelC(name(9))]);
    packets.push(b.finish());

    packets.push(redirect_packet());
    packets.push(sealed_packet());
    packets.push(delivery_packet());
    packets
}

/// Acknowledged delivery's sections (docs/sync-delivery.md), as the engine appends them: two
/// acknowledgements, a gap report, a packet number and an epoch (a packet carries one of the last two),
/// after a DEL_C.
fn delivery_packet() -> (Vec<u8>, Expected) {
    use tandem_sync::wire::delivery::{Delivery, append};
    let mut b = PacketBuilder::new();
    b.section(Action::DelC, 0, &[Message::DelC(name(3))]);
    let (mut bytes, mut expected) = b.finish();
    let (a, c) = (CreatorId(0x0a00_0001), CreatorId(0x0a00_0003));
    let acks = [
        Delivery::Ack {
            sender: a,
            epoch: 0x1234_5678,
            through: 41,
        },
        Delivery::Ack {
            sender: c,
            epoch: 9,
            through: 4_000_000_000,
        },
    ];
    append(&mut bytes, &acks);
    append(
        &mut bytes,
        &[Delivery::Nack {
            sender: a,
            epoch: 0x1234_5678,
            first: 43,
            last: 45,
        }],
    );
    append(
        &mut bytes,
        &[Delivery::Seq {
            sender: a,
            epoch: 0x1234_5678,
            seq: 46,
            low: 43,
        }],
    );
    append(
        &mut bytes,
        &[Delivery::Epoch {
            sender: CreatorId(0x0a00_0002),
            epoch: 77,
            low: 1000,
        }],
    );
    // The header's length covers what `append` added.
    expected.insert("len".to_string(), vec![bytes.len().to_string()]);
    let mut set = |field: &str, values: &[String]| {
        expected
            .entry(field.to_string())
            .or_default()
            .extend(values.iter().cloned());
    };
    set(
        "action",
        &["242".into(), "243".into(), "241".into(), "244".into()],
    );
    set(
        "action_len",
        &["3".into(), "4".into(), "4".into(), "3".into()],
    );
    set("count", &["2".into(), "1".into(), "1".into(), "1".into()]);
    set(
        "delivery.sender",
        &[
            hex(8, 0x0a00_0001),
            hex(8, 0x0a00_0003),
            hex(8, 0x0a00_0001),
            hex(8, 0x0a00_0001),
            hex(8, 0x0a00_0002),
        ],
    );
    set(
        "delivery.epoch",
        &[
            hex(8, 0x1234_5678),
            hex(8, 9),
            hex(8, 0x1234_5678),
            hex(8, 0x1234_5678),
            hex(8, 77),
        ],
    );
    set("delivery.through", &["41".into(), "4000000000".into()]);
    set("delivery.first", &["43".into()]);
    set("delivery.last", &["45".into()]);
    set("delivery.seq", &["46".into()]);
    set("delivery.low", &["43".into(), "1000".into()]);
    (bytes, expected)
}

/// A sync packet with the authentication trailer (docs/sync-auth.md), sealed as a node sends it.
fn sealed_packet() -> (Vec<u8>, Expected) {
    let mut b = PacketBuilder::new();
    b.section(
        Action::Clr,
        0,
        &[Message::Clr(ClrRepr {
            ifname: InterfaceName::new(""),
            creator: CreatorId(0x0a00_0001),
        })],
    );
    let (mut bytes, mut expected) = b.finish();
    let ring = tandem_sync::auth::Keyring::parse(
        "7 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    )
    .unwrap();
    let mut sealer = tandem_sync::auth::Sealer::new(&ring, Ipv4Addr::new(198, 18, 255, 1), 5);
    sealer.seal(&mut bytes);
    let at = bytes.len() - tandem_sync::auth::TRAILER_LEN;
    for (field, value) in [
        ("auth.version", "1".to_string()),
        ("auth.key_id", "7".to_string()),
        ("auth.seq", (5u64 << 32).to_string()),
        (
            "auth.mac",
            bytes[at + 12..]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        ),
    ] {
        expected.insert(field.to_string(), vec![value]);
    }
    (bytes, expected)
}

/// A frame redirected to its state's owner (docs/redirect.md): a 61-byte Ethernet frame of the local
/// experimental ethertype (not IP, so that the only TTL in the row is the outer one), from port 3.
fn redirect_packet() -> (Vec<u8>, Expected) {
    let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x88, 0xb5];
    frame.extend((0..47u8).map(|i| i ^ 0x3c));
    let mut bytes = Vec::new();
    tandem_sync::wire::redirect::push(&mut bytes, 3, &frame).unwrap();
    let mut expected = Expected::new();
    for (field, value) in [
        ("version", "6".to_string()),
        ("len", bytes.len().to_string()),
        ("cksum", "00".repeat(16)),
        ("action", "240".to_string()),
        ("action_len", "1".to_string()),
        ("count", ((bytes.len() - 24) / 4).to_string()),
        ("redirect.port", "3".to_string()),
        ("redirect.frame_len", frame.len().to_string()),
    ] {
        expected.insert(field.to_string(), vec![value]);
    }
    (bytes, expected)
}

fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet II frame to the pfsync multicast group: IPv4, TTL 255, DF, protocol 240 or UDP to 8240.
fn frame(payload: &[u8], udp: bool) -> Vec<u8> {
    let mut ip_payload = Vec::new();
    if udp {
        let len = (8 + payload.len()) as u16;
        for word in [8240u16, 8240, len, 0] {
            ip_payload.extend_from_slice(&word.to_be_bytes());
        }
    }
    ip_payload.extend_from_slice(payload);
    let total = (20 + ip_payload.len()) as u16;
    let mut ip = vec![0x45, 0x10];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[
        0x12,
        0x34,
        0x40,
        0x00,
        255,
        if udp { 17 } else { 240 },
        0,
        0,
    ]);
    ip.extend_from_slice(&[10, 0, 0, 1, 224, 0, 0, 240]);
    let checksum = ipv4_checksum(&ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    let mut frame = vec![
        0x01, 0x00, 0x5e, 0x00, 0x00, 0xf0, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
    ];
    frame.extend_from_slice(&ip);
    frame.extend_from_slice(&ip_payload);
    frame
}

/// A classic pcap file (microsecond timestamps, Ethernet link type).
fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65535, 1] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for (i, frame) in frames.iter().enumerate() {
        let len = frame.len() as u32;
        for word in [1_700_000_000 + i as u32, 0, len, len] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.extend_from_slice(frame);
    }
    out
}

fn tshark(args: &[&str]) -> String {
    let output = match Command::new("tshark").args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!(
                "tshark is not on PATH: run scripts/setup.sh (it installs tshark), then rerun this test"
            )
        }
        Err(e) => panic!("could not run tshark: {e}"),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "tshark {args:?} failed: {stderr}");
    assert!(
        !stderr.contains("Lua: Error"),
        "the dissector failed to load: {stderr}"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every field with a value the dissector registers, from tshark's field list.
fn dissector_fields() -> BTreeSet<String> {
    let lua = format!("lua_script:{DISSECTOR}");
    tshark(&["-G", "fields", "-X", &lua])
        .lines()
        .filter_map(|line| {
            let columns: Vec<_> = line.split('\t').collect();
            // Expert infos are listed as fields too, typed FT_NONE; they carry no value.
            let valued = columns.get(3).is_some_and(|t| *t != "FT_NONE");
            (columns.first() == Some(&"F") && columns.get(4) == Some(&"pfsync") && valued)
                .then(|| {
                    columns
                        .get(2)
                        .map(|f| f.trim_start_matches("pfsync.").to_string())
                })
                .flatten()
        })
        .collect()
}

#[test]
fn tshark_decodes_every_field_of_every_message_as_emitted() {
    let mut expected = Vec::new();
    let mut frames = Vec::new();
    for (payload, values) in packets() {
        frames.push(frame(&payload, false));
        expected.push(values);
    }
    // The UDP encapsulation on its port carries the same packets.
    let (payload, values) = packets().swap_remove(1);
    frames.push(frame(&payload, true));
    expected.push(values);

    let path: PathBuf = [env!("CARGO_TARGET_TMPDIR"), "pfsync_dissector.pcap"]
        .iter()
        .collect();
    std::fs::write(&path, pcap(&frames)).unwrap();

    // Every field the dissector defines is compared, apart from those only malformed input produces.
    let registered = dissector_fields();
    let compared: BTreeSet<String> = expected.iter().flat_map(|e| e.keys().cloned()).collect();
    let malformed_only: BTreeSet<String> = registered
        .iter()
        .filter(|f| f.ends_with("_raw"))
        .cloned()
        .collect();
    let uncovered: Vec<_> = registered
        .difference(&compared)
        .filter(|f| !malformed_only.contains(*f))
        .collect();
    assert!(registered.len() > 120, "dissector fields: {registered:?}");
    assert!(
        uncovered.is_empty(),
        "fields this test never checks: {uncovered:?}"
    );
    let unknown: Vec<_> = compared.difference(&registered).collect();
    assert!(
        unknown.is_empty(),
        "fields the dissector does not define: {unknown:?}"
    );

    let fields: Vec<String> = registered.iter().map(|f| format!("pfsync.{f}")).collect();
    let lua = format!("lua_script:{DISSECTOR}");
    let mut args = vec![
        "-n",
        "-X",
        &lua,
        "-r",
        path.to_str().unwrap(),
        "-T",
        "fields",
    ];
    args.extend([
        "-E",
        "separator=/t",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-e",
        "ip.ttl",
    ]);
    for field in &fields {
        args.extend(["-e", field.as_str()]);
    }
    let output = tshark(&args);
    let rows: Vec<Vec<&str>> = output
        .lines()
        .map(|line| line.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), frames.len(), "one row per frame:\n{output}");

    let mut checked = 0;
    for (frame, (row, expected)) in rows.iter().zip(&expected).enumerate() {
        assert_eq!(row[0], "255", "frame {frame}: TTL");
        for (field, cell) in registered.iter().zip(&row[1..]) {
            let want = expected.get(field).map(|v| v.join(",")).unwrap_or_default();
            assert_eq!(*cell, want, "frame {frame}: pfsync.{field}");
            checked += expected.get(field).map_or(0, Vec::len);
        }
    }
    assert!(checked > 1000, "only {checked} values compared");

    // Nothing the dissector would flag as OpenBSD refusing it; the skipped sections are only notes.
    let flagged =
        "pfsync.hdrops || pfsync.badver || pfsync.badlen || pfsync.badact || pfsync.badval";
    let flagged_frames = tshark(&[
        "-n",
        "-X",
        &lua,
        "-r",
        path.to_str().unwrap(),
        "-Y",
        flagged,
    ]);
    assert!(
        flagged_frames.trim().is_empty(),
        "flagged frames:\n{flagged_frames}"
    );
    let skipped_frames = tshark(&[
        "-n",
        "-X",
        &lua,
        "-r",
        path.to_str().unwrap(),
        "-Y",
        "pfsync.skipped.note",
    ]);
    assert_eq!(
        skipped_frames.lines().count(),
        1,
        "one frame has skipped sections:\n{skipped_frames}"
    );
}
