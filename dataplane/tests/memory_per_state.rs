//! Memory per state, measured: the resident memory a shard grows by when filled with one million states
//! (the slab, both indexes and the expiry wheel), divided by one million. This test binary runs in its
//! own process, so the resident set measures the table alone. Target: 256 bytes per state at most.

use tandem_config::Family;
use tandem_dataplane::flow::{Endpoint, FlowKey};
use tandem_dataplane::table::{State, StateTable};
use tandem_dataplane::tracker::Tracking;
use tandem_sync::identity::{CreatorId, StateId};
use tandem_sync::state::{SyncMark, TcpPeer, TimeoutClass};
use tandem_sync::time::{Duration, Instant};

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

#[test]
#[ignore = "measured in release mode by scripts/test.sh"]
fn a_million_states_take_at_most_256_bytes_each() {
    const N: usize = 1_000_000;
    let before = resident_bytes();
    let mut table = StateTable::new(N, Instant::ZERO);
    for n in 0..N as u32 {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&(0xc612_0000u32 + n).to_be_bytes());
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[198, 19, 0, 1]);
        let (key, first) = FlowKey::of_packet(
            Family::Inet,
            6,
            Endpoint {
                addr: a,
                port: 40_000 + (n % 20_000) as u16,
            },
            Endpoint { addr: b, port: 443 },
        );
        let state = State {
            key,
            initiator_first: first,
            tracking: Tracking::Tcp,
            peers: [TcpPeer::default(); 2],
            creator: CreatorId(1),
            id: StateId(u64::from(n)),
            rule: 0,
            created: Instant::ZERO,
            expires: Instant::ZERO + Duration::secs(60 + u64::from(n % 600)),
            timeout: TimeoutClass::TcpEstablished,
            packets: [1, 1],
            bytes: [60, 60],
            origin: 0,
            sync: SyncMark::default(),
            acked: [0; 2],
            hops: [tandem_dataplane::route::HopRef::NONE; 2],
            waiting: 0,
            probed: None,
            probe_at: 0,
            redirect: Default::default(),
        };
        table.insert(state).expect("room");
    }
    let after = resident_bytes();
    let per_state = (after - before) as f64 / N as f64;
    eprintln!(
        "memory per state: {per_state:.1} bytes measured ({} bytes by the table's own account)",
        table.bytes_per_state()
    );
    assert_eq!(table.len(), N);
    assert!(per_state <= 256.0, "{per_state:.1} bytes per state");
}
