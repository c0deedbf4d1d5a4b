//! The sync engine against 20,000 hostile programs, deterministically: sync packets (random bytes, and
//! valid packets of random messages mutated at random) from peers and a stranger, with and without the
//! authentication layer in front, among local inserts, updates, deletes and the passing of time. The
//! invariants are `engine_run`'s; the AFL target tests/fuzz/src/bin/engine.rs checks the same on what its
//! coverage feedback finds.

#[path = "support/engine_run.rs"]
mod engine_run;
mod support;

use support::{Rng, message};
use tandem_sync::identity::CreatorId;
use tandem_sync::packetizer::{Encapsulation, Packetizer};
use tandem_sync::wire::Message;

/// An INS or UPD of a state the engine would take: no routing domain, one key, a valid timeout class,
/// a real creator; everything else (addresses, windows, TCP states) at random.
fn plausible_state(rng: &mut Rng) -> Message {
    let mut s = support::state(rng);
    s.key[0].rdomain = 0;
    s.key[0].af = if rng.chance(1, 2) { None } else { Some(s.af) };
    s.key[1] = s.key[0];
    s.timeout = rng.below(13) as u8;
    s.creator = CreatorId(1 + rng.below(4) as u32);
    s.proto = if rng.chance(1, 2) { 6 } else { 17 };
    s.direction = 1 + rng.below(2) as u8;
    if rng.chance(1, 2) {
        Message::Ins(s)
    } else {
        Message::Upd(s)
    }
}

/// A program of `steps` operations in `engine_run`'s encoding.
fn program(rng: &mut Rng, steps: usize) -> Vec<u8> {
    let mut p = vec![rng.u8()];
    for _ in 0..steps {
        match rng.below(4) {
            0 => {
                // A sync packet: valid messages, sometimes mutated, or noise.
                let mut packet = Vec::new();
                let mut packetizer = Packetizer::new(1500, Encapsulation::Ip).unwrap();
                for _ in 0..=rng.below(6) {
                    let m = if rng.chance(1, 2) {
                        plausible_state(rng)
                    } else {
                        message(rng)
                    };
                    packetizer.push(&m, &mut |b| packet = b.to_vec());
                }
                packetizer.flush(&mut |b| packet = b.to_vec());
                if rng.chance(1, 2) && !packet.is_empty() {
                    for _ in 0..=rng.below(3) {
                        let at = rng.below(packet.len());
                        packet[at] = rng.u8();
                    }
                }
                if rng.chance(1, 10) {
                    packet = (0..rng.below(300)).map(|_| rng.u8()).collect();
                }
                p.push(0);
                p.push(rng.u8());
                p.extend_from_slice(&(packet.len() as u16).to_be_bytes());
                p.extend_from_slice(&packet);
            }
            1 => p.extend([2, rng.u8() % 16, rng.u8()]),
            2 => p.extend([3, rng.u8() % 16, rng.u8()]),
            _ => {
                p.push(4);
                p.extend_from_slice(&rng.u16().to_be_bytes());
            }
        }
    }
    p
}

#[test]
fn hostile_programs_never_break_the_engines_invariants() {
    let mut rng = Rng::new(0x5eed_0e11_9111_e000);
    let (mut datagrams, mut ops, mut refused, mut inserts) = (0, 0, 0, 0);
    for _ in 0..20_000 {
        let steps = 1 + rng.below(24);
        let p = program(&mut rng, steps);
        let plain = engine_run::run(&p, false);
        let sealed = engine_run::run(&p, true);
        datagrams += plain.datagrams;
        ops += plain.ops;
        inserts += plain.inserts;
        refused += sealed.refused;
        assert_eq!(sealed.datagrams, 0, "nothing passes authentication");
    }
    // The programs must reach deep: many datagrams, and operations handed to the worker.
    assert!(datagrams > 50_000, "{datagrams} datagrams");
    assert!(ops > 10_000, "{ops} operations");
    assert!(inserts > 5_000, "{inserts} states handed to the worker");
    assert_eq!(refused, datagrams);
}
