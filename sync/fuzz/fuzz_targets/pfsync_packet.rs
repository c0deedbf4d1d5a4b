//! Fuzzes the pfsync packet parser: arbitrary bytes as a received IP payload. Nothing may panic, and every
//! message that parses must re-emit, alone and packed again into packets, to bytes that parse to the same
//! value (the same check the in-suite mutation test makes).
#![no_main]

use libfuzzer_sys::fuzz_target;

// One definition of the property for the fuzzer and the test suite.
#[path = "../../tests/support/consistency.rs"]
#[allow(dead_code)]
mod consistency;

fuzz_target!(|data: &[u8]| {
    consistency::check(data, true);
});
