//! Arbitrary bytes as an Ethernet frame, through every parser of the wire layer: the per-packet classifier
//! (`parse_meta`, with and without IPv4 checksum verification) and the full `Repr` parsers of every layer
//! (via `describe`). Beyond "never panics", it checks what the worker relies on: offsets inside the frame,
//! verification changing no verdict but its own, and the RST or ICMP error answering an accepted frame
//! classifying cleanly itself. The unit test `random_and_mutated_frames_never_panic_any_parser` checks the
//! same on a seeded corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_dataplane::wire::build::{reset_for, unreachable_for};
use tandem_dataplane::wire::checksum::ChecksumCaps;
use tandem_dataplane::wire::describe::describe;
use tandem_dataplane::wire::meta::{Malformed, parse_meta};

fuzz_target!(|frame: &[u8]| {
    let _ = describe(frame).to_string();
    let offloaded = parse_meta(frame, ChecksumCaps::OFFLOADED);
    let verified = parse_meta(frame, ChecksumCaps::SOFTWARE);
    let Ok(meta) = offloaded else {
        assert!(verified == offloaded || verified == Err(Malformed::Ipv4BadChecksum));
        return;
    };
    if meta.family().is_some() {
        let end = usize::from(meta.l4_offset) + usize::from(meta.ip_payload_len);
        assert!(usize::from(meta.l3_offset) < usize::from(meta.l4_offset) && end <= frame.len());
    }
    let _ = meta.l4_checksum_ok(frame);
    for answer in [
        reset_for(frame, &meta, 64),
        unreachable_for(frame, &meta, 1, 64),
    ]
    .into_iter()
    .flatten()
    {
        let bytes = answer.to_vec().expect("an answer to a parsed frame fits");
        assert!(parse_meta(&bytes, ChecksumCaps::SOFTWARE).is_ok());
    }
});
