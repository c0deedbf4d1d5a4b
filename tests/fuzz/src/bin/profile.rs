//! AFL target: arbitrary bytes as a YAML profile. The parser may refuse anything, with errors that name a
//! position; it must never panic, and a profile it accepts must be accepted again when parsed twice.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        match tandem_config::parse(text, "fuzz.yaml") {
            Ok(profile) => {
                let again = tandem_config::parse(text, "fuzz.yaml").expect("accepted twice");
                assert_eq!(format!("{profile:?}"), format!("{again:?}"));
            }
            Err(error) => {
                let _ = error.report();
            }
        }
    });
}
