//! The parser's consistency property, shared by the mutation test and the fuzz target: whatever bytes
//! come in, parsing never panics, and every message that parses re-emits (singly, and packed again into
//! packets by the packetizer) to bytes that parse to the same value.

use tandem_sync::packetizer::{Encapsulation, MAX_MTU, Packetizer};
use tandem_sync::wire::{Action, Message, PfsyncPacket};

/// What one run of [`check`] saw, for the caller's statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Whether the header passed.
    pub accepted: bool,
    /// Messages parsed.
    pub messages: usize,
    /// Messages refused on their own (bad family).
    pub message_errors: usize,
    /// The error that ended the packet, by counter name.
    pub packet_error: Option<&'static str>,
}

/// Checks `bytes` parse consistently; panics (failing the test or the fuzz run) if not. `display` also
/// renders the packet as text, exercising every Display.
pub fn check(bytes: &[u8], display: bool) -> Outcome {
    let mut outcome = Outcome::default();
    let packet = match PfsyncPacket::new_checked(bytes) {
        Ok(packet) => packet,
        Err(e) => {
            assert!(e.ends_packet(), "a header error must end the packet: {e}");
            outcome.packet_error = Some(e.counter());
            return outcome;
        }
    };
    outcome.accepted = true;
    if display {
        let _ = packet.to_string();
    }
    let mut parsed = Vec::new();
    for item in packet.messages() {
        match item {
            Ok(message) => parsed.push(message),
            Err(e) if e.ends_packet() => {
                assert!(outcome.packet_error.is_none(), "two packet errors");
                outcome.packet_error = Some(e.counter());
            }
            Err(_) => outcome.message_errors += 1,
        }
    }
    outcome.messages = parsed.len();

    // Each message alone: emit, parse, same value; validate is a function of the value, so it agrees too.
    let mut buffer = [0u8; 264];
    for message in &parsed {
        let len = message.buffer_len();
        message
            .emit(&mut buffer[..len])
            .expect("buffer sized by buffer_len");
        let again =
            Message::parse(message.action(), &buffer[..len]).expect("re-emitted message parses");
        assert_eq!(&again, message);
        assert_eq!(again.validate(), message.validate());
    }

    // All of them packed again: the packets parse without any error to the same messages, per action in
    // the same order (the packetizer regroups sections but keeps each action's order).
    let mut packetizer = Packetizer::new(MAX_MTU, Encapsulation::Ip).expect("largest MTU is valid");
    let mut repacked: Vec<Message> = Vec::new();
    let mut sink = |out: &[u8]| {
        let packet = PfsyncPacket::new_checked(out).expect("our packets pass the header checks");
        for item in packet.messages() {
            repacked.push(item.expect("our packets parse without errors"));
        }
    };
    for message in &parsed {
        packetizer.push(message, &mut sink);
    }
    packetizer.flush(&mut sink);
    for action in Action::ALL {
        let before = parsed.iter().filter(|m| m.action() == action);
        let after = repacked.iter().filter(|m| m.action() == action);
        assert!(before.eq(after), "{action} messages changed on re-emission");
    }
    assert_eq!(parsed.len(), repacked.len());
    outcome
}
