//! Generates Tandem's DPDK bindings: finds libdpdk (Debian's 22.11) with pkg-config, runs bindgen over
//! `src/dpdk/shim.h` with the `rte_`/`RTE_` allowlist, and compiles the one-line C wrappers in
//! `src/dpdk/shim.c` for the static inline functions we call. When DPDK or libclang is missing the build
//! fails with one line saying to run `scripts/setup.sh`.

use std::path::PathBuf;
use std::process::Command;

const SETUP: &str = "run scripts/setup.sh (it installs Debian's DPDK, clang and pkg-config)";

fn main() {
    println!("cargo::rerun-if-changed=src/dpdk/shim.h");
    println!("cargo::rerun-if-changed=src/dpdk/shim.c");
    println!("cargo::rerun-if-env-changed=PKG_CONFIG_PATH");

    let dpdk = match pkg_config::Config::new()
        .atleast_version("22.11")
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(_) => {
            println!("cargo::error=libdpdk (DPDK >= 22.11) was not found by pkg-config: {SETUP}");
            return;
        }
    };
    // The pkg-config crate drops `-include rte_config.h` and `-march=...`; DPDK's headers need both.
    let extra = match platform_flags() {
        Some(flags) => flags,
        None => {
            println!("cargo::error=`pkg-config --cflags-only-other libdpdk` failed: {SETUP}");
            return;
        }
    };
    let includes: Vec<String> = dpdk
        .include_paths
        .iter()
        .map(|p| format!("-I{}", p.display()))
        .collect();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));

    let builder = bindgen::Builder::default()
        .header("src/dpdk/shim.h")
        .clang_args(&includes)
        .clang_args(&extra)
        .allowlist_function("rte_.*")
        .allowlist_function("tandem_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        // A packed struct whose derived Debug does not compile.
        .no_debug("rte_gtp_psc_generic_hdr")
        // C comments would become Rust doc comments, and their examples failing doctests.
        .generate_comments(false)
        .layout_tests(true)
        // C configuration structs are plain data: zero is their documented default.
        .derive_default(true)
        .rust_edition(bindgen::RustEdition::Edition2024)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    // bindgen panics (rather than erring) when libclang cannot be loaded: turn that into the one-line hint.
    let generated =
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || builder.generate())) {
            Ok(Ok(bindings)) => bindings,
            Ok(Err(error)) => {
                println!("cargo::error=bindgen failed on DPDK's headers ({error}): {SETUP}");
                return;
            }
            Err(_) => {
                println!("cargo::error=libclang could not be loaded for bindgen: {SETUP}");
                return;
            }
        };
    generated
        .write_to_file(out.join("dpdk_bindings.rs"))
        .expect("OUT_DIR is writable");

    let mut shim = cc::Build::new();
    shim.file("src/dpdk/shim.c")
        .includes(&dpdk.include_paths)
        .opt_level(3)
        .warnings(true);
    for flag in &extra {
        shim.flag(flag);
    }
    shim.compile("tandem_dpdk_shim");
}

/// The non-include compiler flags libdpdk asks for (`-include rte_config.h -march=corei7` on Debian),
/// as separate arguments.
fn platform_flags() -> Option<Vec<String>> {
    let output = Command::new("pkg-config")
        .args(["--cflags-only-other", "libdpdk"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    Some(text.split_whitespace().map(str::to_string).collect())
}
