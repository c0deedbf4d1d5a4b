//! The example profiles shipped in `config/profiles/` are valid and consistent per cluster, and every broken
//! profile in `tests/broken/` produces exactly the errors written in its `# expect:` header lines.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use tandem_config::{LoadError, Profile, SyncLink, Transport};

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).expect("readable directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn example_profiles_are_valid() {
    let files = yaml_files(&manifest_dir().join("profiles"));
    assert!(
        files.len() >= 8,
        "single, active-passive pair, active-active pair, three-node cluster"
    );
    for file in files {
        if let Err(error) = tandem_config::load(&file) {
            panic!("{}:\n{}", file.display(), error.report());
        }
    }
}

/// The sync address of a member: its sync port's first IPv4 address, or its configured source.
fn sync_address(profile: &Profile) -> Option<std::net::IpAddr> {
    let sync = profile.sync.as_ref()?;
    if let Some(source) = sync.source {
        return Some(source.into());
    }
    match &sync.link {
        SyncLink::Port(id) => profile.port(*id).addresses.first().map(|a| a.addr),
        SyncLink::Kernel { .. } => None,
    }
}

#[test]
fn cluster_members_have_distinct_host_ids_and_list_each_other_as_peers() {
    let mut clusters: BTreeMap<PathBuf, Vec<Profile>> = BTreeMap::new();
    for file in yaml_files(&manifest_dir().join("profiles")) {
        let profile = tandem_config::load(&file).expect("example profiles are valid");
        clusters
            .entry(file.parent().expect("in a directory").to_path_buf())
            .or_default()
            .push(profile);
    }
    let mut clustered = 0;
    for (dir, members) in clusters.iter().filter(|(_, m)| m.len() > 1) {
        clustered += 1;
        let mut ids: Vec<u32> = members.iter().map(|p| p.node.host_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            members.len(),
            "{}: host ids must be unique in a cluster",
            dir.display()
        );
        for member in members {
            let sync = member.sync.as_ref().expect("cluster members sync");
            if matches!(sync.transport, Transport::Multicast { .. }) && sync.peers.is_empty() {
                continue;
            }
            let others: Vec<_> = members
                .iter()
                .filter(|o| o.node.name != member.node.name)
                .filter_map(sync_address)
                .collect();
            let peers: Vec<std::net::IpAddr> =
                sync.peers.iter().map(|p| p.address.into()).collect();
            assert_eq!(
                sorted(peers),
                sorted(others),
                "{}: {} must list every other member",
                dir.display(),
                member.node.name
            );
        }
    }
    assert_eq!(
        clustered, 4,
        "active-passive, active-active, the three-node cluster and the namespace cluster"
    );
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// `line:column: path: message` for every error, as `tandem check` prints them (less the file name).
fn report_lines(error: &LoadError) -> Vec<String> {
    match error {
        LoadError::Invalid { errors, .. } => errors
            .iter()
            .map(|e| match e.location {
                Some(at) => format!("{}:{}: {}: {}", at.line, at.column, e.path, e.message),
                None => format!("-: {}: {}", e.path, e.message),
            })
            .collect(),
        LoadError::Read { .. } => vec![error.to_string()],
    }
}

#[test]
fn broken_profiles_report_every_error_with_its_position() {
    let files = yaml_files(&manifest_dir().join("tests/broken"));
    assert!(files.len() >= 15, "at least 15 broken profiles");
    let mut failures = Vec::new();
    for file in &files {
        let text = fs::read_to_string(file).expect("readable");
        let expected: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(str::to_string)
            .collect();
        assert!(
            !expected.is_empty(),
            "{} has no `# expect:` lines",
            file.display()
        );

        let actual = match tandem_config::load(file) {
            Ok(_) => vec!["(profile accepted)".to_string()],
            Err(error) => report_lines(&error),
        };
        if actual != expected {
            failures.push(format!(
                "{}\n  expected:\n    {}\n  actual:\n    {}",
                file.display(),
                expected.join("\n    "),
                actual.join("\n    ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
