//! Wire-format throughput, in messages per second: parsing received packets of compressed updates (UPD_C)
//! and of full states (INS/UPD), emitting those messages, and packing them into packets. The numbers and
//! the command that produced them are in docs/pfsync-wire.md.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tandem_sync::identity::{AddressFamily, CreatorId, StateId};
use tandem_sync::packetizer::{Encapsulation, Packetizer};
use tandem_sync::state::TcpPeer;
use tandem_sync::wire::{
    InterfaceName, Message, PeerRepr, PfsyncPacket, ScrubRepr, StateKeyRepr, StateRepr, UpdCRepr,
};

const MTU: usize = 1500;

fn peer(i: u32) -> PeerRepr {
    PeerRepr {
        tcp: TcpPeer {
            seqlo: 1_000_000 + i * 1448,
            seqhi: 2_000_000 + i * 1448,
            seqdiff: 0,
            max_win: 64240,
            mss: 1460,
            state: 4,
            wscale: 0x87,
        },
        scrub: ScrubRepr::default(),
    }
}

fn upd_c(i: u32) -> Message {
    Message::UpdC(UpdCRepr {
        id: StateId(0x5f3e_0000_0000_0000 + u64::from(i)),
        creator: CreatorId(0xc0ff_ee01),
        src: peer(i),
        dst: peer(i + 1),
        expire: 0,
        timeout: 2,
        state_flags: 0,
    })
}

fn full_state(i: u32) -> Message {
    let mut addr = [[0u8; 16]; 2];
    addr[0][..4].copy_from_slice(&[10, 0, (i >> 8) as u8, i as u8]);
    addr[1][..4].copy_from_slice(&[192, 0, 2, 1]);
    let key = StateKeyRepr {
        addr,
        port: [40000 + i as u16, 443],
        rdomain: 0,
        af: Some(AddressFamily::Inet),
    };
    Message::Upd(StateRepr {
        id: StateId(0x5f3e_0000_0000_0000 + u64::from(i)),
        creator: CreatorId(0xc0ff_ee01),
        ifname: InterfaceName::new("em0"),
        key: [key, key],
        src: peer(i),
        dst: peer(i + 1),
        rt_addr: [0; 16],
        rule: 3,
        anchor: u32::MAX,
        nat_rule: u32::MAX,
        creation: 12,
        expire: 86_000,
        packets: [9, 7],
        bytes: [1500, 4000],
        rtableid: [-1, -1],
        max_mss: 0,
        af: AddressFamily::Inet,
        proto: 6,
        direction: 2,
        log: 0,
        rt: 0,
        timeout: 2,
        sync_flags: 0,
        updates: 0,
        min_ttl: 0,
        set_tos: 0,
        state_flags: 0,
        set_prio: [0, 0],
    })
}

/// Full packets at MTU 1500 (17 UPD_C or 5 full states each), as a sender would produce them.
fn packets(messages: &[Message]) -> Vec<Vec<u8>> {
    let mut packetizer = Packetizer::new(MTU, Encapsulation::Ip).expect("valid MTU");
    let mut out = Vec::new();
    let mut sink = |bytes: &[u8]| out.push(bytes.to_vec());
    for message in messages {
        packetizer.push(message, &mut sink);
    }
    packetizer.flush(&mut sink);
    out
}

fn bench_kind(c: &mut Criterion, name: &str, messages: &[Message]) {
    let packets = packets(messages);
    let count = messages.len() as u64;
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(count));

    group.bench_function("parse", |b| {
        b.iter(|| {
            let mut parsed = 0u64;
            for bytes in &packets {
                let packet =
                    PfsyncPacket::new_checked(black_box(&bytes[..])).expect("valid packet");
                for message in packet.messages() {
                    black_box(message.expect("valid message"));
                    parsed += 1;
                }
            }
            assert_eq!(parsed, count);
        })
    });

    let mut buffer = [0u8; 264];
    group.bench_function("emit", |b| {
        b.iter(|| {
            for message in messages {
                let len = message.buffer_len();
                black_box(message)
                    .emit(&mut buffer[..len])
                    .expect("sized buffer");
                black_box(&buffer);
            }
        })
    });

    let mut packetizer = Packetizer::new(MTU, Encapsulation::Ip).expect("valid MTU");
    group.bench_function("packetize", |b| {
        b.iter(|| {
            let mut sent = 0usize;
            let mut sink = |bytes: &[u8]| sent += black_box(bytes).len();
            for message in messages {
                packetizer.push(black_box(message), &mut sink);
            }
            packetizer.flush(&mut sink);
            black_box(sent)
        })
    });
    group.finish();
}

fn wire(c: &mut Criterion) {
    let upd_c: Vec<Message> = (0..1700).map(upd_c).collect();
    let states: Vec<Message> = (0..500).map(full_state).collect();
    bench_kind(c, "upd_c", &upd_c);
    bench_kind(c, "full_state", &states);
}

criterion_group!(benches, wire);
criterion_main!(benches);
