//! Properties of the packetizer over every MTU from 576 to 9216: packets never exceed the MTU with their
//! encapsulation, every message goes out exactly once and in order within its action, sections are never
//! empty and follow the documented order, the header length is exact, and a packet is sent early only when
//! the next message could not join it.

mod support;

use proptest::prelude::*;
use support::{Rng, by_action, message};
use tandem_sync::packetizer::{Encapsulation, Packetizer, SECTION_ORDER};
use tandem_sync::wire::{Action, HEADER_LEN, Message, PfsyncPacket, SUBHEADER_LEN};

/// Packs `messages` at `mtu` and checks every property; returns the number of packets.
fn pack_and_check(mtu: usize, encapsulation: Encapsulation, messages: &[Message]) -> usize {
    let mut packetizer = Packetizer::new(mtu, encapsulation).unwrap();
    let mut packets: Vec<Vec<u8>> = Vec::new();
    for message in messages {
        let action = message.action();
        let fitted = packetizer.fits(action);
        let before = packets.len();
        let len_before = packetizer.len();
        packetizer.push(message, &mut |bytes: &[u8]| packets.push(bytes.to_vec()));
        let flushed = packets.len() - before;
        // A packet goes out during a push exactly when the message did not fit, and only then.
        assert_eq!(
            flushed,
            usize::from(!fitted),
            "mtu {mtu}: early or missing flush"
        );
        if flushed == 1 {
            let sent = packets.last().unwrap();
            assert_eq!(
                sent.len() + encapsulation.overhead(),
                len_before,
                "mtu {mtu}: running length"
            );
            // It really did not fit: too long, or a second BUS.
            let section_open = PfsyncPacket::new_checked(&sent[..])
                .unwrap()
                .sections()
                .any(|s| s.unwrap().action() == Some(action));
            let growth = action.message_len() + if section_open { 0 } else { SUBHEADER_LEN };
            assert!(
                len_before + growth > mtu || (action == Action::Bus && section_open),
                "mtu {mtu}: {action} would have fitted"
            );
        }
        assert!(packetizer.len() <= mtu);
    }
    packetizer.flush(&mut |bytes: &[u8]| packets.push(bytes.to_vec()));
    assert!(packetizer.is_empty());

    let mut received = Vec::new();
    for bytes in &packets {
        assert!(
            bytes.len() + encapsulation.overhead() <= mtu,
            "mtu {mtu}: packet of {} bytes",
            bytes.len()
        );
        let packet = PfsyncPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(
            usize::from(packet.header().len()),
            bytes.len(),
            "header length must be exact"
        );
        let mut last_slot = None;
        let mut in_packet = 0;
        for section in packet.sections() {
            let section = section.unwrap();
            let action = section.action().expect("we send only known actions");
            let subheader = section.subheader();
            assert!(subheader.count > 0, "mtu {mtu}: empty {action} section");
            assert_eq!(subheader.message_len(), action.message_len());
            if action == Action::Bus {
                assert_eq!(subheader.count, 1, "one BUS per packet");
            }
            let slot = SECTION_ORDER.iter().position(|&a| a == action);
            assert!(
                slot > last_slot,
                "mtu {mtu}: {action} out of order or repeated"
            );
            last_slot = slot;
            for m in section.messages() {
                received.push(m.unwrap());
                in_packet += 1;
            }
        }
        assert!(in_packet > 0, "empty packet");
        assert!(bytes.len() >= HEADER_LEN + SUBHEADER_LEN);
    }
    // Exactly once, and in order within each action (which implies equal multisets).
    assert_eq!(received.len(), messages.len());
    assert_eq!(by_action(&received), by_action(messages), "mtu {mtu}");
    packets.len()
}

/// A mix of `n` random messages; some mixes are all one action, to fill sections to the brim.
fn mix(rng: &mut Rng, n: usize) -> Vec<Message> {
    if rng.chance(1, 8) {
        let action = rng.pick(&Action::ALL);
        (0..n).map(|_| support::message_of(rng, action)).collect()
    } else {
        (0..n).map(|_| message(rng)).collect()
    }
}

#[test]
fn every_mtu_from_576_to_9216_packs_within_the_mtu_exactly_once() {
    let mut rng = Rng::new(0x7a4d_e305);
    let mut split = 0;
    for mtu in 576usize..=9216 {
        let encapsulation = if mtu.is_multiple_of(2) {
            Encapsulation::Ip
        } else {
            Encapsulation::Udp
        };
        // On average about one MTU's worth of messages (~100 bytes each), from one message to two MTUs'.
        let n = 1 + rng.below(mtu / 50);
        if pack_and_check(mtu, encapsulation, &mix(&mut rng, n)) > 1 {
            split += 1;
        }
    }
    // The mixes must exercise splitting at a good share of MTUs, or this test proves little.
    assert!(
        split > 2000,
        "only {split} MTUs needed more than one packet"
    );
}

#[test]
fn smallest_mtu_sends_one_full_state_per_packet() {
    let mut rng = Rng::new(3);
    for encapsulation in [Encapsulation::Ip, Encapsulation::Udp] {
        let states: Vec<_> = (0..5)
            .map(|_| support::message_of(&mut rng, Action::Upd))
            .collect();
        assert_eq!(
            pack_and_check(encapsulation.min_mtu(), encapsulation, &states),
            5
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_mtus_and_large_mixes_pack_correctly(
        mtu in prop_oneof![Just(576usize), Just(9216usize), 576usize..=9216],
        udp in any::<bool>(),
        seed in any::<u64>(),
        n in 1usize..600,
    ) {
        let encapsulation = if udp { Encapsulation::Udp } else { Encapsulation::Ip };
        let mut rng = Rng::new(seed);
        pack_and_check(mtu, encapsulation, &mix(&mut rng, n));
    }
}
