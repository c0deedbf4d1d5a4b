//! The sync engine driven by arbitrary bytes, shared by the in-suite test (sync/tests/engine_fuzz.rs) and the
//! AFL target (tests/fuzz): the bytes are a program of sync packets from two peers and a stranger (raw, or
//! through the authentication layer under a key the input cannot know), local inserts, updates and
//! deletes, worker answers and the passing of time, with acknowledged delivery on or off. Whatever the
//! program, nothing panics, and:
//! - nothing reaches the engine from a datagram that fails authentication (a forgery under the key would
//!   be a break of HMAC-SHA256: the run panics);
//! - no operation the engine hands a worker carries a state with impossible fields (creator 0, a TCP side
//!   in no TCP state, a timeout class the state's protocol cannot have, IPv4 addresses with bytes past the
//!   fourth);
//! - what the engine keeps stays bounded by what it was given: its states by the inserts it saw, its
//!   deferrals by the local inserts, every sync packet it sends within its MTU.

use std::net::Ipv4Addr;

use tandem_config::Family;
use tandem_sync::auth::{Keyring, Opener};
use tandem_sync::engine::{Engine, EngineConfig, Policy};
use tandem_sync::event::{LocalEvent, PeerOp, StateName, StateRecord, StateUpdate};
use tandem_sync::identity::{CreatorId, StateId};
use tandem_sync::packetizer::Encapsulation;
use tandem_sync::policy::WindowBudget;
use tandem_sync::state::{TcpPeer, TimeoutClass, tcp_state};
use tandem_sync::time::{Duration, Instant};

const OURS: CreatorId = CreatorId(0x0a00_0001);
const PEERS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 19, 0, 2), Ipv4Addr::new(198, 19, 0, 3)];
const STRANGER: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 99);
const MTU: u16 = 1500;
const KEY: &str = "1 5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592";

/// What one run saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// Datagrams handed to the engine.
    pub datagrams: usize,
    /// Datagrams the authentication layer refused.
    pub refused: usize,
    /// Operations handed to the worker.
    pub ops: usize,
    /// Of them, peers' states inserted.
    pub inserts: usize,
    /// Packets the engine sent.
    pub sent: usize,
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.byte()?, self.byte()?]))
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

fn config(multicast: bool, acknowledged: bool) -> EngineConfig {
    EngineConfig {
        creator: OURS,
        workers: 1,
        mtu: MTU,
        encapsulation: Encapsulation::Ip,
        multicast,
        peers: if multicast {
            Vec::new()
        } else {
            PEERS.iter().map(|a| (*a, None)).collect()
        },
        policy: Policy::WindowAware {
            budget: WindowBudget::default(),
        },
        flush_deadline: Duration::micros(100),
        defer_timeout: Some(Duration::millis(20)),
        peer_dead: Duration::millis(300),
        keepalive: Duration::millis(100),
        bulk_rate: 1_000_000_000 / 8,
        bulk_timeout: Duration::millis(200),
        bulk_retries: 3,
        request_interval: Duration::millis(50),
        delivery: acknowledged.then_some(tandem_sync::engine::DeliveryConfig {
            epoch: 7,
            ack_delay: Duration::millis(1),
            resend_after: Duration::millis(10),
            give_up: Duration::millis(300),
            queue_limit: 4096,
        }),
        limits: tandem_sync::engine::PeerLimits::default(),
    }
}

fn one_worker(_: &StateRecord) -> usize {
    0
}

/// A local TCP state of ours, from two input bytes.
fn local_record(id: u8, seq: u8) -> StateRecord {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[198, 18, 0, id]);
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&[198, 19, 0, 1]);
    let side = |seqlo: u32| TcpPeer {
        seqlo,
        seqhi: seqlo.wrapping_add(65535),
        max_win: 65535,
        state: tcp_state::ESTABLISHED,
        ..TcpPeer::default()
    };
    StateRecord {
        name: StateName {
            creator: OURS,
            id: StateId(u64::from(id)),
        },
        family: Family::Inet,
        proto: 6,
        addr: [a, b],
        port: [40000 + u16::from(id), 443],
        peers: [side(1000 + u32::from(seq) * 1448), side(5000)],
        timeout: TimeoutClass::TcpEstablished,
        expire_secs: 86_400,
        age_secs: 0,
        packets: [1, 1],
        bytes: [60, 60],
        rule: 0,
        flags: 0,
    }
}

/// Panics if `record` has fields no real state can have.
fn check_record(record: &StateRecord) {
    assert_ne!(record.name.creator.0, 0, "creator 0: {record:?}");
    if record.proto == 6 {
        for side in &record.peers {
            assert!(
                side.state <= tcp_state::TIME_WAIT,
                "TCP state {}",
                side.state
            );
        }
    }
    if record.family == Family::Inet {
        for addr in &record.addr {
            assert!(
                addr[4..].iter().all(|&b| b == 0),
                "IPv4 address {addr:02x?}"
            );
        }
    }
}

fn check_update(update: &StateUpdate) {
    assert_ne!(update.name.creator.0, 0, "creator 0: {update:?}");
}

/// Runs the program in `data`; `auth`: every datagram goes through the authentication layer first.
pub fn run(data: &[u8], auth: bool) -> Run {
    let mut input = Input(data);
    let first = input.byte().unwrap_or(0);
    let (multicast, acknowledged) = (first & 1 == 1, first & 2 == 2);
    let mut now = Instant(1_000_000);
    let mut engine = Engine::new(
        config(multicast, acknowledged),
        one_worker as fn(&StateRecord) -> usize,
        now,
    )
    .expect("engine");
    engine.start(now);
    let mut opener = Opener::new(Keyring::parse(KEY).expect("key"));
    let mut run = Run::default();
    let (mut inserts_seen, mut local_inserts) = (0usize, 0usize);
    while let Some(op) = input.byte() {
        match op % 6 {
            0 | 1 => {
                let from = match input.byte().unwrap_or(0) % 3 {
                    0 => PEERS[0],
                    1 => PEERS[1],
                    _ => STRANGER,
                };
                let len = usize::from(input.u16().unwrap_or(0)) % 4096;
                let payload = input.bytes(len).to_vec();
                // A datagram holds at most one MTU's worth of full states.
                inserts_seen += payload.len() / 264 + 1;
                if auth {
                    match opener.open(from, &payload) {
                        Ok(_) => panic!("a datagram the input made passed authentication"),
                        Err(_) => run.refused += 1,
                    }
                } else {
                    engine.handle_datagram(now, from, &payload);
                    run.datagrams += 1;
                }
            }
            2 => {
                let (id, seq) = (input.byte().unwrap_or(0), input.byte().unwrap_or(0));
                let record = local_record(id, seq);
                local_inserts += 1;
                engine.handle_event(
                    now,
                    0,
                    LocalEvent::Inserted {
                        record,
                        deferred: seq & 1 == 1,
                        at: now,
                    },
                );
            }
            3 => {
                let (id, seq) = (input.byte().unwrap_or(0), input.byte().unwrap_or(0));
                let record = local_record(id, seq);
                let event = if seq & 0x80 != 0 {
                    LocalEvent::Deleted { name: record.name }
                } else {
                    LocalEvent::Updated {
                        update: StateUpdate {
                            name: record.name,
                            peers: record.peers,
                            timeout: record.timeout,
                            updates: 1,
                        },
                        at: now,
                    }
                };
                engine.handle_event(now, 0, event);
            }
            4 => {
                now = now + Duration(u64::from(input.u16().unwrap_or(0)) * 10);
                if engine.poll_timeout().is_some_and(|due| due <= now) {
                    engine.handle_timeout(now);
                }
            }
            _ => {}
        }
        while let Some(packet) = engine.poll_transmit(now) {
            assert!(
                packet.payload.len() + 20 <= usize::from(MTU),
                "a packet over the MTU"
            );
            run.sent += 1;
            engine.recycle(packet.payload);
        }
        let mut answers = Vec::new();
        engine.drain_ops(0, |op| {
            run.ops += 1;
            match &op {
                PeerOp::Insert { record, ack } => {
                    run.inserts += 1;
                    check_record(record);
                    if *ack {
                        answers.push(LocalEvent::PeerInserted { name: record.name });
                    }
                }
                PeerOp::Update { update } => check_update(update),
                _ => {}
            }
            true
        });
        for event in answers {
            engine.handle_event(now, 0, event);
        }
        assert!(
            engine.states() <= inserts_seen + local_inserts,
            "states from nowhere"
        );
        assert!(
            engine.deferrals() <= local_inserts,
            "deferrals from nowhere"
        );
    }
    run
}
