//! Shared by the integration tests: a small seeded PRNG (so every run sees the same inputs) and random
//! messages whose values survive a round trip. The consistency check lives in `consistency.rs`, which the
//! fuzz target includes too.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod consistency;

use std::net::{Ipv4Addr, Ipv6Addr};

use tandem_sync::identity::{AddressFamily, CreatorId, StateId};
use tandem_sync::state::TcpPeer;
use tandem_sync::wire::{
    Action, BusRepr, BusStatus, ClrRepr, InterfaceName, Message, PeerRepr, ScrubRepr, StateKeyRepr,
    StateRefRepr, StateRepr, TdbDestination, TdbRepr, UpdCRepr,
};

/// splitmix64: tiny, fast, and good enough to drive tests deterministically.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    pub fn u16(&mut self) -> u16 {
        self.next_u64() as u16
    }

    pub fn u8(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.u8())
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Mostly small numbers with the occasional extreme, the way real fields look.
fn small(rng: &mut Rng, max: u8) -> u8 {
    if rng.chance(1, 16) {
        rng.u8()
    } else {
        rng.below(usize::from(max) + 1) as u8
    }
}

fn family(rng: &mut Rng) -> AddressFamily {
    if rng.chance(1, 2) {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn peer(rng: &mut Rng) -> PeerRepr {
    PeerRepr {
        tcp: TcpPeer {
            seqlo: rng.u32(),
            seqhi: rng.u32(),
            seqdiff: rng.u32(),
            max_win: rng.u16(),
            mss: rng.u16(),
            state: small(rng, 12),
            wscale: rng.u8(),
        },
        scrub: ScrubRepr {
            flags: rng.u16(),
            ttl: rng.u8(),
            valid: rng.u8(),
            ts_mod: rng.u32(),
        },
    }
}

fn key(rng: &mut Rng) -> StateKeyRepr {
    StateKeyRepr {
        addr: [rng.bytes(), rng.bytes()],
        port: [rng.u16(), rng.u16()],
        rdomain: rng.u16(),
        af: match rng.below(3) {
            0 => None,
            _ => Some(family(rng)),
        },
    }
}

pub fn state(rng: &mut Rng) -> StateRepr {
    StateRepr {
        id: StateId(rng.next_u64()),
        creator: CreatorId(rng.u32()),
        ifname: InterfaceName(rng.bytes()),
        key: [key(rng), key(rng)],
        src: peer(rng),
        dst: peer(rng),
        rt_addr: rng.bytes(),
        rule: rng.u32(),
        anchor: rng.u32(),
        nat_rule: rng.u32(),
        creation: rng.u32(),
        expire: rng.u32(),
        packets: [rng.next_u64(), rng.next_u64()],
        bytes: [rng.next_u64(), rng.next_u64()],
        rtableid: [rng.u32() as i32, rng.u32() as i32],
        max_mss: rng.u16(),
        af: family(rng),
        proto: rng.u8(),
        direction: small(rng, 2),
        log: rng.u8(),
        rt: rng.u8(),
        timeout: small(rng, 19),
        sync_flags: rng.u8(),
        updates: rng.u8(),
        min_ttl: rng.u8(),
        set_tos: rng.u8(),
        state_flags: rng.u16(),
        set_prio: [rng.u8(), rng.u8()],
    }
}

pub fn upd_c(rng: &mut Rng) -> UpdCRepr {
    UpdCRepr {
        id: StateId(rng.next_u64()),
        creator: CreatorId(rng.u32()),
        src: peer(rng),
        dst: peer(rng),
        expire: rng.u32(),
        timeout: small(rng, 19),
        state_flags: rng.u8(),
    }
}

pub fn state_ref(rng: &mut Rng) -> StateRefRepr {
    StateRefRepr {
        creator: CreatorId(rng.u32()),
        id: StateId(rng.next_u64()),
    }
}

pub fn tdb(rng: &mut Rng) -> TdbRepr {
    let dst = if rng.chance(1, 2) {
        TdbDestination::Inet {
            len: rng.u8(),
            port: rng.u16(),
            addr: Ipv4Addr::from(rng.u32()),
        }
    } else {
        TdbDestination::Inet6 {
            len: rng.u8(),
            port: rng.u16(),
            flowinfo: rng.u32(),
            addr: Ipv6Addr::from(rng.bytes::<16>()),
            scope_id: rng.u32(),
        }
    };
    TdbRepr {
        spi: rng.u32(),
        dst,
        rpl: rng.next_u64(),
        cur_bytes: rng.next_u64(),
        sproto: rng.u8(),
        updates: rng.u8(),
        rdomain: rng.u16(),
    }
}

/// A random message of `action`.
pub fn message_of(rng: &mut Rng, action: Action) -> Message {
    match action {
        Action::Clr => Message::Clr(ClrRepr {
            ifname: InterfaceName(rng.bytes()),
            creator: CreatorId(rng.u32()),
        }),
        Action::InsAck => Message::InsAck(state_ref(rng)),
        Action::UpdC => Message::UpdC(upd_c(rng)),
        Action::UpdReq => Message::UpdReq(state_ref(rng)),
        Action::Del => Message::Del(state(rng)),
        Action::DelC => Message::DelC(state_ref(rng)),
        Action::Bus => Message::Bus(BusRepr {
            creator: CreatorId(rng.u32()),
            endtime: rng.u32(),
            // from_wire keeps Unknown away from 1 and 2, so the value is canonical.
            status: BusStatus::from_wire(small(rng, 3)),
        }),
        Action::Ins => Message::Ins(state(rng)),
        Action::Upd => Message::Upd(state(rng)),
        Action::Tdb => Message::Tdb(tdb(rng)),
    }
}

/// A random message, of any action with equal odds.
pub fn message(rng: &mut Rng) -> Message {
    let action = rng.pick(&Action::ALL);
    message_of(rng, action)
}

/// Messages grouped by action, each group in arrival order.
pub fn by_action<'a>(messages: impl IntoIterator<Item = &'a Message>) -> Vec<Vec<Message>> {
    let mut groups = vec![Vec::new(); Action::ALL.len()];
    for m in messages {
        let index = Action::ALL
            .iter()
            .position(|&a| a == m.action())
            .unwrap_or(0);
        groups[index].push(*m);
    }
    groups
}
