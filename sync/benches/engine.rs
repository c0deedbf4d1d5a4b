//! The sync core's cost per update, end to end through two engines: node A hears of a flow's progress
//! from its worker, sends the compressed update (UPD_C) in a packet of its own, and node B parses it,
//! merges it and hands its worker the operation. This is the per-packet work the simulator's
//! `Cpu::TANDEM` model charges (docs/simulation.md); the number and its command are in docs/benchmarks.md.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tandem_config::Family;
use tandem_sync::engine::{Encapsulation, Engine, EngineConfig, Policy};
use tandem_sync::event::{LocalEvent, StateName, StateRecord, StateUpdate};
use tandem_sync::identity::{CreatorId, StateId};
use tandem_sync::state::{TcpPeer, TimeoutClass, tcp_state};
use tandem_sync::time::{Duration, Instant};

fn one_worker(_: &StateRecord) -> usize {
    0
}

fn address(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, 0, 10 + i)
}

fn config(me: u8, peer: u8) -> EngineConfig {
    EngineConfig {
        creator: CreatorId(0x0a00_0001 + u32::from(me)),
        workers: 1,
        mtu: 1500,
        encapsulation: Encapsulation::Ip,
        multicast: false,
        peers: vec![(address(peer), None)],
        // Classic sends a state a peer touched at once: one update, one packet.
        policy: Policy::Classic {
            max_updates: 128,
            interval: Duration::secs(1),
        },
        flush_deadline: Duration::micros(50),
        defer_timeout: None,
        peer_dead: Duration::secs(3600),
        keepalive: Duration::secs(3600),
        bulk_rate: 1 << 30,
        bulk_timeout: Duration::secs(3600),
        bulk_retries: 1,
        request_interval: Duration::millis(50),
        delivery: None,
        limits: tandem_sync::engine::PeerLimits::default(),
    }
}

fn record(seqlo: u32) -> StateRecord {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[198, 18, 0, 1]);
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&[198, 19, 0, 1]);
    let peer = |lo: u32| TcpPeer {
        seqlo: lo,
        seqhi: lo.wrapping_add(6 << 20),
        max_win: 65535,
        state: tcp_state::ESTABLISHED,
        wscale: 0x87,
        ..TcpPeer::default()
    };
    StateRecord {
        name: StateName {
            creator: CreatorId(0x0a00_0001),
            id: StateId(1),
        },
        family: Family::Inet,
        proto: 6,
        addr: [a, b],
        port: [40000, 443],
        peers: [peer(seqlo), peer(5000)],
        timeout: TimeoutClass::TcpEstablished,
        expire_secs: 86_400,
        age_secs: 0,
        packets: [1, 1],
        bytes: [60, 60],
        rule: 0,
        flags: 0,
    }
}

/// A worker's report that `rec` moved to `peers`.
fn moved(rec: &StateRecord, peers: [TcpPeer; 2], now: Instant) -> LocalEvent {
    LocalEvent::Updated {
        update: StateUpdate {
            name: rec.name,
            peers,
            timeout: rec.timeout,
            updates: 1,
        },
        at: now,
    }
}

fn bench(c: &mut Criterion) {
    let t0 = Instant(1_000_000);
    let mut a =
        Engine::new(config(0, 1), one_worker as fn(&StateRecord) -> usize, t0).expect("engine");
    let mut b =
        Engine::new(config(1, 0), one_worker as fn(&StateRecord) -> usize, t0).expect("engine");
    let rec = record(1_000_000);
    a.handle_event(
        t0,
        0,
        LocalEvent::Inserted {
            record: rec,
            deferred: false,
            at: t0,
        },
    );
    let mut now = t0;
    // Let the insert cross, and let B send an update of its own half, so that A treats the state as one
    // a peer touches (pfsync then sends each change at once).
    for i in 0..4 {
        // pfsync's timer sends the insert within a second.
        now = now + Duration::millis(if i == 0 { 1100 } else { 1 });
        if i == 1 {
            let mut peers = rec.peers;
            peers[1].seqlo += 100;
            b.handle_event(now, 0, moved(&rec, peers, now));
        }
        a.handle_timeout(now);
        b.handle_timeout(now);
        while let Some(p) = a.poll_transmit(now) {
            b.handle_datagram(now, address(0), &p.payload);
        }
        while let Some(p) = b.poll_transmit(now) {
            a.handle_datagram(now, address(1), &p.payload);
        }
        a.drain_ops(0, |_| true);
        b.drain_ops(0, |_| true);
    }
    let mut seqlo = 1_000_000u32;
    let mut round = |a: &mut Engine<fn(&StateRecord) -> usize>,
                     b: &mut Engine<fn(&StateRecord) -> usize>| {
        now = now + Duration(1);
        seqlo = seqlo.wrapping_add(1448);
        let mut peers = rec.peers;
        peers[0].seqlo = seqlo;
        a.handle_event(now, 0, moved(&rec, peers, now));
        a.handle_timeout(now);
        let mut ops = 0;
        while let Some(p) = a.poll_transmit(now) {
            b.handle_datagram(now, address(0), black_box(&p.payload));
            a.recycle(p.payload);
        }
        b.drain_ops(0, |op| {
            black_box(op);
            ops += 1;
            true
        });
        // B's echo (its own half is newer) goes back to A, as on a real asymmetric flow.
        b.handle_timeout(now);
        while let Some(p) = b.poll_transmit(now) {
            a.handle_datagram(now, address(1), black_box(&p.payload));
            b.recycle(p.payload);
        }
        a.drain_ops(0, |_| true);
        ops
    };
    let sent = a.stats().packets_out;
    assert_eq!(round(&mut a, &mut b), 1, "B applies the update");
    assert!(a.stats().packets_out > sent, "A sends it at once");
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(1));
    group.bench_function("update_sent_by_a_and_applied_by_b", |bench| {
        bench.iter(|| round(&mut a, &mut b))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
