//! AFL target: arbitrary bytes as a received pfsync packet. Nothing may panic, and every message that
//! parses must re-emit, alone and packed again, to bytes that parse to the same value
//! (sync/tests/support/consistency.rs, which sync/tests/mutation.rs checks in the test suite).

#[path = "../../../../sync/tests/support/consistency.rs"]
#[allow(dead_code)]
mod consistency;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        consistency::check(data, true);
    });
}
