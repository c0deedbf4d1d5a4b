//! Memory per state, measured: the resident memory a node grows by when it holds one million states,
//! divided by one million, in two parts: the worker's shard (the slab, both indexes and the expiry wheel)
//! and the sync engine's copy of the same states (what it merges peers' updates with). This test binary
//! runs in its own process, so the resident set measures these alone. Target (issue 18): 256 bytes per
//! state in all; the numbers and what binds them are in docs/benchmarks.md.

use tandem_config::Family;
use tandem_dataplane::flow::{Endpoint, FlowKey};
use tandem_dataplane::table::{State, StateTable};
use tandem_dataplane::tracker::Tracking;
use tandem_dataplane::worker::record_of;
use tandem_sync::engine::Engine;
use tandem_sync::event::{LocalEvent, StateRecord};
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

const N: usize = 1_000_000;

/// A node of one worker holding a million states, with a peer, the window-aware policy and
/// acknowledged delivery, as a cluster member runs.
const PROFILE: &str = "
node: {name: memory, host-id: 1}
ports:
  - {name: inside, device: a}
  - {name: outside, device: b}
  - {name: sync, device: c, addresses: [198.19.0.1/24]}
forwarding: {mode: wire, pairs: [[inside, outside]]}
workers: {cores: [1]}
limits: {states: 1000000}
sync: {port: sync, core: 0, transport: unicast, peers: [198.19.0.2], delivery: {acknowledged: true}}
rules:
  - {action: pass}
";

/// The `n`th state: an established TCP connection.
fn state(n: u32) -> State {
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
    State {
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
    }
}

/// The shard filled with `N` states; the resident bytes it grew by.
fn fill_table() -> (StateTable, u64) {
    let before = resident_bytes();
    let mut table = StateTable::new(N, Instant::ZERO);
    for n in 0..N as u32 {
        table.insert(state(n)).expect("room");
    }
    let grown = resident_bytes() - before;
    (table, grown)
}

/// An engine whose states all go to one worker.
type OneWorkerEngine = Engine<fn(&StateRecord) -> usize>;

/// The engine the node builds from its profile, told of the same `N` states as the worker tells it, each
/// insert sent (the packets dropped: the peer is silent); the resident bytes it grew by.
fn fill_engine() -> (OneWorkerEngine, u64) {
    fn one_worker(_: &StateRecord) -> usize {
        0
    }
    let profile =
        tandem_config::parse(PROFILE, "memory").unwrap_or_else(|e| panic!("{}", e.report()));
    let cfg = tandem::runtime::engine_config(&profile, 1500).expect("sync is configured");
    let before = resident_bytes();
    let mut now = Instant(1_000_000);
    let mut engine =
        Engine::new(cfg, one_worker as fn(&StateRecord) -> usize, now).expect("engine");
    let flush = |engine: &mut OneWorkerEngine, now: Instant| {
        engine.handle_timeout(now);
        while let Some(t) = engine.poll_transmit(now) {
            engine.recycle(t.payload);
        }
    };
    for n in 0..N as u32 {
        let inserted = LocalEvent::Inserted {
            record: record_of(&state(n), now),
            deferred: false,
            at: now,
        };
        engine.handle_event(now, 0, inserted);
        if n % 1024 == 1023 {
            now = now + Duration::millis(2);
            flush(&mut engine, now);
        }
    }
    flush(&mut engine, now + Duration::secs(2));
    let grown = resident_bytes() - before;
    (engine, grown)
}

#[test]
#[ignore = "measured in release mode by scripts/test.sh"]
fn a_million_states_in_the_shard_and_the_sync_engine() {
    let (table, table_bytes) = fill_table();
    let (engine, engine_bytes) = fill_engine();
    let per = |bytes: u64| bytes as f64 / N as f64;
    eprintln!(
        "memory per state: shard {:.1} bytes ({} by the table's own account), sync engine {:.1} bytes \
         ({} by its own account), in all {:.1} bytes",
        per(table_bytes),
        table.bytes_per_state(),
        per(engine_bytes),
        engine.bytes_per_state(),
        per(table_bytes + engine_bytes),
    );
    assert_eq!(table.len(), N);
    assert_eq!(engine.states(), N);
    assert!(
        per(table_bytes) <= 256.0,
        "shard: {:.1} bytes per state",
        per(table_bytes)
    );
}
