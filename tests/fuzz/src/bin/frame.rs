//! AFL target: arbitrary bytes as an Ethernet frame, through every parser of the wire layer
//! (`tandem_dataplane::wire::describe::check_parsers`, which the unit test
//! `random_and_mutated_frames_never_panic_any_parser` runs in the test suite).

fn main() {
    afl::fuzz!(|frame: &[u8]| {
        let _ = tandem_dataplane::wire::describe::check_parsers(frame);
    });
}
