//! Sync peers: who they are (address, and host id once known), whether they are alive (heard from within
//! the dead interval), and per-peer counters. A peer that goes silent stops being waited for by deferrals;
//! one that comes back is sent a bulk request, as is every peer when the node starts.

use std::net::Ipv4Addr;

use crate::identity::CreatorId;
use crate::time::{Duration, Instant};

/// Index of a peer in the engine's list.
pub type PeerIndex = usize;

/// Most peers the engine tracks (deferrals keep one bit per peer).
pub const MAX_PEERS: usize = 64;

/// One peer.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Its sync address.
    pub address: Ipv4Addr,
    /// Its host id, configured or learned from its bulk-status messages.
    pub host_id: Option<CreatorId>,
    /// When it was last heard from.
    pub last_heard: Option<Instant>,
    /// Whether it counts as alive.
    pub alive: bool,
    /// Whether it was configured (as opposed to discovered on the multicast group).
    pub configured: bool,
    /// Sync packets received from it.
    pub packets_in: u64,
    /// Sync bytes received from it.
    pub bytes_in: u64,
    /// Deferrals in a row that timed out without its acknowledgement. At [`UNRESPONSIVE_AFTER`] it is no
    /// longer waited for, until it acknowledges an insert again: a "peer" that talks but never answers
    /// (or a forger of empty packets) cannot make every new connection wait out the deferral timeout.
    pub missed_acks: u32,
    /// When it last had a bulk update from us, for the per-peer limit.
    pub bulk_served: Option<Instant>,
    /// Update requests it may still make this second, and when that second began.
    pub requests: (u32, Option<Instant>),
}

/// Deferral timeouts in a row after which a peer that never acknowledged is no longer waited for.
pub const UNRESPONSIVE_AFTER: u32 = 3;

/// The peer list.
#[derive(Clone, Debug, Default)]
pub struct Peers {
    list: Vec<Peer>,
}

/// What changed when the liveness of peers was re-evaluated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LivenessChange {
    /// Peers that went silent.
    pub died: Vec<PeerIndex>,
}

impl Peers {
    /// The configured peers, none heard from yet.
    pub fn new(configured: &[(Ipv4Addr, Option<CreatorId>)]) -> Peers {
        Peers {
            list: configured
                .iter()
                .map(|(address, host_id)| Peer {
                    address: *address,
                    host_id: *host_id,
                    last_heard: None,
                    alive: false,
                    configured: true,
                    packets_in: 0,
                    bytes_in: 0,
                    missed_acks: 0,
                    bulk_served: None,
                    requests: (0, None),
                })
                .collect(),
        }
    }

    /// Every peer.
    pub fn iter(&self) -> impl Iterator<Item = (PeerIndex, &Peer)> {
        self.list.iter().enumerate()
    }

    /// The peer at `index`.
    pub fn get(&self, index: PeerIndex) -> &Peer {
        &self.list[index]
    }

    /// The number of peers.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// A bit per alive peer that has not stopped acknowledging inserts: whom a deferral waits for.
    pub fn answering_mask(&self) -> u64 {
        self.list
            .iter()
            .enumerate()
            .filter(|(_, p)| p.alive && p.missed_acks < UNRESPONSIVE_AFTER)
            .fold(0, |mask, (i, _)| mask | 1 << i)
    }

    /// Records that the peers in `mask` acknowledged an insert (`true`) or let a deferral time out.
    pub fn note_acks(&mut self, mask: u64, acknowledged: bool) {
        for (i, p) in self.list.iter_mut().enumerate() {
            if mask & (1 << i) != 0 {
                p.missed_acks = if acknowledged {
                    0
                } else {
                    p.missed_acks.saturating_add(1)
                };
            }
        }
    }

    /// Records a bulk update for `index` at `now`, unless it had one within `interval`: then `false`.
    pub fn take_bulk(&mut self, index: PeerIndex, now: Instant, interval: Duration) -> bool {
        let peer = &mut self.list[index];
        if peer.bulk_served.is_some_and(|t| now.since(t) < interval) {
            return false;
        }
        peer.bulk_served = Some(now);
        true
    }

    /// Takes one of `per_sec` update requests `index` may make each second; `false` when none is left.
    pub fn take_request(&mut self, index: PeerIndex, now: Instant, per_sec: u32) -> bool {
        let (left, since) = &mut self.list[index].requests;
        if since.is_none_or(|t| now.since(t) >= Duration::secs(1)) {
            *left = per_sec;
            *since = Some(now);
        }
        if *left == 0 {
            return false;
        }
        *left -= 1;
        true
    }

    /// A bit per alive peer.
    pub fn alive_mask(&self) -> u64 {
        self.list
            .iter()
            .enumerate()
            .filter(|(_, p)| p.alive)
            .fold(0, |mask, (i, _)| mask | 1 << i)
    }

    /// Records a packet from `address`. Unknown senders become peers only when `discover` (a multicast
    /// group, where anyone on the link is a peer); otherwise they are refused. Returns the peer and
    /// whether it has just come (back) to life.
    pub fn heard(
        &mut self,
        address: Ipv4Addr,
        now: Instant,
        bytes: usize,
        discover: bool,
    ) -> Option<(PeerIndex, bool)> {
        let index = match self.list.iter().position(|p| p.address == address) {
            Some(index) => index,
            None if discover && self.list.len() < MAX_PEERS => {
                self.list.push(Peer {
                    address,
                    host_id: None,
                    last_heard: None,
                    alive: false,
                    configured: false,
                    packets_in: 0,
                    bytes_in: 0,
                    missed_acks: 0,
                    bulk_served: None,
                    requests: (0, None),
                });
                self.list.len() - 1
            }
            None => return None,
        };
        let peer = &mut self.list[index];
        let revived = !peer.alive;
        peer.alive = true;
        peer.last_heard = Some(now);
        peer.packets_in += 1;
        peer.bytes_in += bytes as u64;
        Some((index, revived))
    }

    /// Records the host id a peer announced.
    pub fn learn_host_id(&mut self, index: PeerIndex, host_id: CreatorId) {
        self.list[index].host_id = Some(host_id);
    }

    /// Marks peers silent for longer than `dead` as gone.
    pub fn expire(&mut self, now: Instant, dead: Duration) -> LivenessChange {
        let mut change = LivenessChange::default();
        for (i, p) in self.list.iter_mut().enumerate() {
            if p.alive && p.last_heard.is_none_or(|t| now.since(t) > dead) {
                p.alive = false;
                change.died.push(i);
            }
        }
        change
    }

    /// When the next peer would be declared dead, if any is alive.
    pub fn next_death(&self, dead: Duration) -> Option<Instant> {
        self.list
            .iter()
            .filter(|p| p.alive)
            .filter_map(|p| p.last_heard)
            .min()
            .map(|t| t + dead + Duration(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
    const B: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 3);

    #[test]
    fn configured_peers_come_alive_when_heard_and_die_when_silent() {
        let mut peers = Peers::new(&[(A, None)]);
        assert_eq!(peers.alive_mask(), 0);
        assert_eq!(peers.heard(A, Instant(1000), 100, false), Some((0, true)));
        assert_eq!(peers.heard(A, Instant(2000), 100, false), Some((0, false)));
        assert_eq!(peers.alive_mask(), 1);
        assert_eq!(peers.next_death(Duration(5000)), Some(Instant(7001)));
        assert!(peers.expire(Instant(6000), Duration(5000)).died.is_empty());
        assert_eq!(peers.expire(Instant(7001), Duration(5000)).died, [0]);
        assert_eq!(
            peers.heard(A, Instant(8000), 100, false),
            Some((0, true)),
            "back from the dead"
        );
    }

    #[test]
    fn strangers_are_refused_unless_discovery_is_on() {
        let mut peers = Peers::new(&[(A, None)]);
        assert_eq!(peers.heard(B, Instant(1), 1, false), None);
        assert_eq!(peers.heard(B, Instant(1), 1, true), Some((1, true)));
        assert!(!peers.get(1).configured);
        assert_eq!(peers.alive_mask(), 0b10);
    }
}
