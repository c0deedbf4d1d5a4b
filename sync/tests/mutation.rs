//! The parser against 100,000 hostile packets, deterministically: random bytes, and valid packets mutated
//! the ways a corrupting link or a hostile sender would (bit flips, byte changes, truncations, extensions,
//! length and count edits, action swaps, section splices). Every one must parse without panicking and
//! consistently (`support::consistency`), and the mutations must reach every error the parser can report.

mod support;

use std::collections::BTreeMap;

use support::consistency::{Outcome, check};
use support::{Rng, message};
use tandem_sync::packetizer::{Encapsulation, Packetizer};
use tandem_sync::wire::{HEADER_LEN, PfsyncPacket};

const PACKETS: usize = 100_000;

/// Valid packets of random messages at a few MTUs, to mutate.
fn valid_packets(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    for mtu in [400, 576, 1500, 1500, 1500, 9000] {
        let mut packetizer = Packetizer::new(mtu, Encapsulation::Ip).unwrap();
        let mut sink = |bytes: &[u8]| packets.push(bytes.to_vec());
        for _ in 0..150 {
            packetizer.push(&message(rng), &mut sink);
        }
        packetizer.flush(&mut sink);
    }
    packets
}

/// Offsets of the subheaders of a packet (as parsed before any mutation).
fn section_offsets(bytes: &[u8]) -> Vec<usize> {
    PfsyncPacket::new_checked(bytes)
        .map(|p| {
            p.sections()
                .filter_map(|s| s.ok().map(|s| s.offset()))
                .collect()
        })
        .unwrap_or_default()
}

fn set_header_len(bytes: &mut [u8], len: usize) {
    if bytes.len() >= 4 {
        bytes[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    }
}

/// One mutation of `bytes`, chosen at random; `donor` supplies sections to splice in.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, donor: &[u8]) {
    let sections = section_offsets(bytes);
    match rng.below(11) {
        // Flip one bit.
        0 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes[at] ^= 1 << rng.below(8);
        }
        // Overwrite one byte.
        1 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes[at] = rng.u8();
        }
        // Truncate, keeping the header's length (a short packet), or fixing it (a short section).
        2 => {
            let keep = rng.below(bytes.len() + 1);
            bytes.truncate(keep);
            if rng.chance(1, 2) {
                set_header_len(bytes, keep);
            }
        }
        // Extend with garbage, with or without the header length following.
        3 => {
            let extra = 1 + rng.below(300);
            bytes.extend((0..extra).map(|_| rng.u8()));
            if rng.chance(1, 2) {
                let len = bytes.len();
                set_header_len(bytes, len);
            }
        }
        // Edit the header's length field.
        4 => {
            let len = bytes.len();
            let new = match rng.below(3) {
                0 => rng.below(len + 8),
                1 => len.saturating_sub(1 + rng.below(4)),
                _ => rng.u16() as usize,
            };
            set_header_len(bytes, new);
        }
        // Edit a section's count.
        5 if !sections.is_empty() => {
            let at = rng.pick(&sections) + 2;
            let old = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
            let new = match rng.below(4) {
                0 => 0,
                1 => old.wrapping_add(1),
                2 => old.wrapping_sub(1),
                _ => rng.u16(),
            };
            bytes[at..at + 2].copy_from_slice(&new.to_be_bytes());
        }
        // Edit a section's message length (in words).
        6 if !sections.is_empty() => {
            let at = rng.pick(&sections) + 1;
            bytes[at] = match rng.below(3) {
                0 => 0,
                1 => bytes[at].wrapping_add(1),
                _ => rng.u8(),
            };
        }
        // Swap a section's action for another code, known, legacy or unknown.
        7 if !sections.is_empty() => {
            let at = rng.pick(&sections);
            bytes[at] = if rng.chance(3, 4) {
                rng.below(20) as u8
            } else {
                rng.u8()
            };
        }
        // Splice a section of another packet in at a section boundary, fixing the header length.
        8 => {
            let donor_sections = section_offsets(donor);
            if let (Some(&from), false) = (donor_sections.first(), sections.is_empty()) {
                let index = rng.below(donor_sections.len());
                let from = donor_sections[index].max(from);
                let to = donor_sections
                    .get(index + 1)
                    .copied()
                    .unwrap_or(donor.len());
                let at = rng.pick(&sections);
                let piece = donor[from..to].to_vec();
                bytes.splice(at..at, piece);
                let len = bytes.len();
                set_header_len(bytes, len);
            }
        }
        // Cut a section out, fixing the header length.
        9 if !sections.is_empty() => {
            let index = rng.below(sections.len());
            let from = sections[index];
            let to = sections.get(index + 1).copied().unwrap_or(bytes.len());
            bytes.drain(from..to);
            let len = bytes.len();
            set_header_len(bytes, len);
        }
        // Change the version.
        _ if !bytes.is_empty() => bytes[0] = rng.pick(&[5, 7, 0, 255]),
        _ => {}
    }
}

/// Random bytes, usually behind a plausible header so the sections get parsed.
fn random_packet(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(1600);
    let mut bytes: Vec<u8> = (0..len).map(|_| rng.u8()).collect();
    if len >= HEADER_LEN && rng.chance(3, 4) {
        bytes[0] = 6;
        set_header_len(&mut bytes, len);
        // Steer the first subheader towards real actions with sane lengths now and then.
        if len >= HEADER_LEN + 4 && rng.chance(1, 2) {
            bytes[HEADER_LEN] = rng.below(16) as u8;
            bytes[HEADER_LEN + 1] = rng.pick(&[3, 5, 13, 21, 66]);
            bytes[HEADER_LEN + 2] = 0;
            bytes[HEADER_LEN + 3] = rng.below(4) as u8;
        }
    }
    bytes
}

#[test]
fn hostile_packets_never_panic_and_parse_consistently() {
    let mut rng = Rng::new(0x005e_ed0f_7a4d);
    let valid = valid_packets(&mut rng);
    assert!(valid.len() > 100);
    let mut errors: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut totals = Outcome::default();
    let mut with_messages = 0;
    for i in 0..PACKETS {
        let bytes = if i.is_multiple_of(10) {
            random_packet(&mut rng)
        } else {
            let mut bytes = valid[rng.below(valid.len())].clone();
            let donor = &valid[rng.below(valid.len())];
            for _ in 0..1 + rng.below(3) {
                mutate(&mut rng, &mut bytes, donor);
            }
            bytes
        };
        let outcome = check(&bytes, i.is_multiple_of(64));
        if let Some(counter) = outcome.packet_error {
            *errors.entry(counter).or_default() += 1;
        }
        totals.messages += outcome.messages;
        totals.message_errors += outcome.message_errors;
        if outcome.messages > 0 {
            with_messages += 1;
        }
    }
    // The mutations must reach deep into packets and trigger every kind of error, or they test little.
    for counter in ["hdrops", "badver", "badlen", "badact"] {
        assert!(
            errors.get(counter).copied().unwrap_or(0) > 100,
            "{counter} seen too rarely: {errors:?}"
        );
    }
    assert!(
        totals.message_errors > 100,
        "bad families: {}",
        totals.message_errors
    );
    assert!(
        with_messages > PACKETS * 2 / 5,
        "only {with_messages} packets yielded messages"
    );
    eprintln!(
        "{with_messages} packets with messages, {} messages, {} bad families, ends: {errors:?}",
        totals.messages, totals.message_errors
    );
}
