//! AFL target: the sync engine driven by a program of sync packets and local events, with and without the
//! authentication layer in front (sync/tests/support/engine_run.rs, which sync/tests/engine_fuzz.rs runs
//! in the test suite): nothing panics, nothing unauthenticated is applied, no state has impossible fields,
//! what the engine keeps is bounded by what it was given.

#[path = "../../../../sync/tests/support/engine_run.rs"]
#[allow(dead_code)]
mod engine_run;

fn main() {
    afl::fuzz!(|data: &[u8]| {
        engine_run::run(data, false);
        engine_run::run(data, true);
    });
}
