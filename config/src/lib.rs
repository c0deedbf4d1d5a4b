//! Tandem's profile: the YAML schema of a whole appliance, parsed with `yaml_serde` and validated completely
//! before anything starts. Owns nothing at run time; every other crate reads the validated [`Profile`].
//!
//! Every error names the YAML path and the line and column, and all errors are reported at once:
//! decoding goes on past a bad value, and cross-references (a rule naming a port, the sync port used as a
//! data port, ...) are checked as each section is read.
#![forbid(unsafe_code)]

mod decode;
mod error;
mod failover;
mod generator;
mod locate;
mod net;
mod profile;
mod rules;
mod sync;

use std::path::Path;

pub use error::{LoadError, Location, ProfileError, Segment, YamlPath};
pub use failover::{Failover, FailoverGroup};
pub use generator::{GenPort, GenProfile, GenTeardown, Sides, SynFlood, TcpLoad, UdpLoad};
pub use net::{Family, InterfaceAddress, MacAddr, PortRange, Prefix};
pub use profile::{
    Control, DpdkSettings, Forwarding, Limits, NodeSettings, PollMode, Port, PortId, Profile,
    Route, Timeouts, Workers,
};
pub use rules::{Direction, Rule, RuleAction, TcpFlagsMatch, proto};
pub use sync::{
    AUTH_OVERHEAD, DEFAULT_UDP_PORT, Defer, Delivery, Hold, MIN_SYNC_MTU, PFSYNC_GROUP,
    REDIRECT_OVERHEAD, Redirect, SyncLink, SyncPeer, SyncSettings, Transport, UpdatePolicy,
};

/// Reads and validates the profile at `path`. Relative paths inside it (the sync key file) are taken
/// relative to the profile's directory.
pub fn load(path: &Path) -> Result<Profile, LoadError> {
    let src = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut profile = parse(&src, &path.display().to_string())?;
    if let Some(key) = profile.sync.as_mut().and_then(|s| s.auth_key_file.as_mut())
        && key.is_relative()
        && let Some(dir) = path.parent()
    {
        *key = dir.join(&*key);
    }
    Ok(profile)
}

/// Validates a profile given as text; `file` names it in errors.
pub fn parse(src: &str, file: &str) -> Result<Profile, LoadError> {
    parse_with(src, file, profile::decode_profile)
}

/// Reads and validates the generator profile at `path`.
pub fn load_gen(path: &Path) -> Result<GenProfile, LoadError> {
    let src = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_gen(&src, &path.display().to_string())
}

/// Validates a generator profile given as text; `file` names it in errors.
pub fn parse_gen(src: &str, file: &str) -> Result<GenProfile, LoadError> {
    parse_with(src, file, generator::decode_gen)
}

/// Parses the YAML, decodes its root with `decode`, and gives every problem with its position.
fn parse_with<T>(
    src: &str,
    file: &str,
    decode: fn(&mut decode::Decoder, &yaml_serde::Value) -> Option<T>,
) -> Result<T, LoadError> {
    let invalid = |errors: Vec<ProfileError>| LoadError::Invalid {
        file: file.to_string(),
        errors,
    };
    let root: yaml_serde::Value = match yaml_serde::from_str(src) {
        Ok(root) => root,
        Err(error) => {
            // A syntax error leaves no tree to check further: report it alone.
            let message = error.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_string();
            return Err(invalid(vec![ProfileError {
                path: YamlPath::root(),
                location: error.location().map(|at| Location {
                    line: at.line(),
                    column: at.column(),
                }),
                message: format!("YAML syntax: {message}"),
            }]));
        }
    };
    if root.is_null() {
        return Err(invalid(vec![ProfileError {
            path: YamlPath::root(),
            location: None,
            message: "the profile is empty".to_string(),
        }]));
    }
    let mut decoder = decode::Decoder::default();
    let profile = decode(&mut decoder, &root);
    if decoder.problems.is_empty()
        && let Some(profile) = profile
    {
        return Ok(profile);
    }
    let mut errors: Vec<ProfileError> = decoder
        .problems
        .into_iter()
        .map(|p| ProfileError {
            location: locate::locate(src, p.path.segments(), p.on_key),
            path: p.path,
            message: p.message,
        })
        .collect();
    errors.sort_by_key(|e| e.location);
    errors.dedup();
    Err(invalid(errors))
}
