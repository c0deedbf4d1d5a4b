//! One worker's state shard: a slab of states preallocated up to the profile's limit, found by flow key
//! (packets) and by (creator id, state id) (sync), expired by a timing wheel. Single writer: only the
//! owning worker touches it, so there is no lock anywhere.
//!
//! Over the limit a new state is refused and the caller counts it; nothing grows and nothing crashes.

use tandem_sync::identity::{CreatorId, StateId};
use tandem_sync::state::{SyncMark, TcpPeer, TimeoutClass};
use tandem_sync::time::{Duration, Instant};

use crate::expiry::{Due, ExpiryWheel};
use crate::flow::FlowKey;
use crate::route::HopRef;
use crate::slot_index::SlotIndex;
use crate::tracker::{Side, Tracking};

/// Rule index of states that no local rule created (learned from a peer).
pub const NO_RULE: u32 = u32::MAX;

/// Where a state came from and what is pending for it.
pub mod origin {
    /// Created by a peer and learned through sync.
    pub const FROM_PEER: u8 = 0x01;
    /// Its creating packet is held until peers acknowledge the insert.
    pub const DEFERRED: u8 = 0x02;
    /// IPv4 options may pass on it (its rule said `allow-opts`; pfsync's `PFSTATE_ALLOWOPTS`).
    pub const ALLOW_OPTS: u8 = 0x04;
    /// A peer has sent updates of it: packets ahead of what this node knows may wait for the next.
    pub const PEER_UPDATED: u8 = 0x08;
    /// Peers acknowledged its insert (deferral): on an asymmetric path they see the other direction and
    /// will update it, so packets ahead of what this node knows may wait for that.
    pub const PEER_ACKED: u8 = 0x10;
}

/// One connection's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The flow, direction-independent.
    pub key: FlowKey,
    /// Whether the initiator is `key.ends[0]`.
    pub initiator_first: bool,
    /// Which tracker runs on it.
    pub tracking: Tracking,
    /// Initiator and responder, pf's `src` and `dst`.
    pub peers: [TcpPeer; 2],
    /// Cluster-wide name.
    pub creator: CreatorId,
    /// Cluster-wide name.
    pub id: StateId,
    /// The rule that created it, or [`NO_RULE`].
    pub rule: u32,
    /// When it was created.
    pub created: Instant,
    /// When it expires unless refreshed.
    pub expires: Instant,
    /// Its timeout class.
    pub timeout: TimeoutClass,
    /// Packets from the initiator and from the responder.
    pub packets: [u64; 2],
    /// Bytes from the initiator and from the responder.
    pub bytes: [u64; 2],
    /// [`origin`] bits.
    pub origin: u8,
    /// What peers were last told about it.
    pub sync: SyncMark,
    /// The highest acknowledgement each side (initiator, responder) sent through this node; 0 when none.
    /// Local knowledge, never synced: it lets a FIN learnt from a peer after this node already passed its
    /// acknowledgement still close the side (see `Worker`'s merge).
    pub acked: [u32; 2],
    /// Router mode: the next hop of the packets each side (initiator, responder) sends, cached from the
    /// first of them that was routed; local, never synced.
    pub hops: [HopRef; 2],
    /// Packets of it waiting for a peer's update (hold-and-recheck).
    pub waiting: u16,
    /// The side a takeover probe asked for its numbers, while its answer is awaited (see the worker).
    pub probed: Option<Side>,
    /// When that probe went out, in units of 10 ms (wrapping).
    pub probe_at: u16,
    /// Owner redirect's view of it; local, never synced.
    pub redirect: RedirectMark,
}

/// What owner redirect keeps of a state a peer created: its packets through this node in the current
/// 100 ms epoch, the holds they needed, and whether its frames go to the owner now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RedirectMark {
    /// The epoch counted (time in 100 ms units, wrapping).
    pub epoch: u32,
    /// Packets in it (saturating).
    pub packets: u16,
    /// Packets in it that needed a hold (saturating).
    pub holds: u8,
    /// Whether the state's frames are redirected to its owner.
    pub on: bool,
}

impl State {
    /// Which side sent a packet whose source is the key's first endpoint (`src_first`) or not.
    #[inline]
    pub fn side_of(&self, src_first: bool) -> Side {
        if src_first == self.initiator_first {
            Side::Initiator
        } else {
            Side::Responder
        }
    }
}

/// Why a state could not be inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// The shard holds its limit of states.
    Full,
    /// A state with the same flow key exists.
    KeyExists(u32),
    /// A state with the same (creator, id) exists.
    IdExists(u32),
}

/// A worker's states.
#[derive(Debug)]
pub struct StateTable {
    slab: Vec<State>,
    live: Vec<bool>,
    free: Vec<u32>,
    by_key: SlotIndex,
    by_id: SlotIndex,
    wheel: ExpiryWheel,
    /// Indices found expired during one `expire` call, kept to avoid allocating on every call.
    expired: Vec<u32>,
    limit: usize,
    len: usize,
}

fn id_hash(creator: CreatorId, id: StateId) -> u64 {
    let full = u128::from(id.0 ^ u64::from(creator.0).rotate_left(32)) * 0x9e37_79b9_7f4a_7c15;
    (full as u64) ^ ((full >> 64) as u64)
}

/// Most states one `expire` call looks at: its list of expired indices is allocated once, this long.
pub const EXPIRY_BATCH: usize = 1024;

/// Slots of the expiry wheel and their width: 8192 x 100 ms = a 13.6-minute turn.
const WHEEL_SLOTS: usize = 8192;
const WHEEL_TICK: Duration = Duration::millis(100);

impl StateTable {
    /// A table for at most `limit` states; its indices are allocated now so nothing grows later.
    pub fn new(limit: usize, now: Instant) -> StateTable {
        StateTable {
            slab: Vec::with_capacity(limit),
            live: Vec::with_capacity(limit),
            free: Vec::with_capacity(limit),
            by_key: SlotIndex::with_limit(limit),
            by_id: SlotIndex::with_limit(limit),
            wheel: ExpiryWheel::new(limit, WHEEL_SLOTS, WHEEL_TICK, now),
            expired: Vec::with_capacity(EXPIRY_BATCH),
            limit,
            len: 0,
        }
    }

    /// States held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most states this table holds.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Finds the state of `key` (whose [`FlowKey::table_hash`] is `hash`).
    #[inline]
    pub fn find(&self, key: &FlowKey, hash: u64) -> Option<u32> {
        self.by_key
            .find(hash, |i| self.slab[i as usize].key == *key)
    }

    /// Whether `index` still holds the live state of `key`: an index found earlier in a burst is checked
    /// with this before use, since a packet in between may have removed that state.
    #[inline]
    pub fn holds(&self, index: u32, key: &FlowKey) -> bool {
        self.live.get(index as usize).copied().unwrap_or(false)
            && self.slab[index as usize].key == *key
    }

    /// Finds a state by its cluster-wide name.
    pub fn find_id(&self, creator: CreatorId, id: StateId) -> Option<u32> {
        self.by_id.find(id_hash(creator, id), |i| {
            let s = &self.slab[i as usize];
            s.id == id && s.creator == creator
        })
    }

    /// The state at `index`.
    #[inline]
    pub fn get(&self, index: u32) -> &State {
        &self.slab[index as usize]
    }

    /// The state at `index`, to update.
    #[inline]
    pub fn get_mut(&mut self, index: u32) -> &mut State {
        &mut self.slab[index as usize]
    }

    /// Inserts a state; it expires at `state.expires` unless refreshed.
    pub fn insert(&mut self, state: State) -> Result<u32, InsertError> {
        let hash = state.key.table_hash();
        if let Some(existing) = self.find(&state.key, hash) {
            return Err(InsertError::KeyExists(existing));
        }
        if let Some(existing) = self.find_id(state.creator, state.id) {
            return Err(InsertError::IdExists(existing));
        }
        let index = match self.free.pop() {
            Some(index) => {
                self.slab[index as usize] = state;
                self.live[index as usize] = true;
                index
            }
            None if self.slab.len() < self.limit => {
                self.slab.push(state);
                self.live.push(true);
                (self.slab.len() - 1) as u32
            }
            None => return Err(InsertError::Full),
        };
        let s = &self.slab[index as usize];
        let (creator, id, expires) = (s.creator, s.id, s.expires);
        // Both indexes hold `limit` entries, as many as the slab: neither can refuse here.
        self.by_key.insert(hash, index);
        self.by_id.insert(id_hash(creator, id), index);
        self.wheel.schedule(index, expires);
        self.len += 1;
        Ok(index)
    }

    /// Gives the state at `index` another cluster-wide name; `false` (and nothing changed) if a state of
    /// that name exists.
    pub fn rename(&mut self, index: u32, creator: CreatorId, id: StateId) -> bool {
        if self.find_id(creator, id).is_some() {
            return false;
        }
        let s = &mut self.slab[index as usize];
        self.by_id.remove(id_hash(s.creator, s.id), index);
        (s.creator, s.id) = (creator, id);
        self.by_id.insert(id_hash(creator, id), index);
        true
    }

    /// Removes the state at `index` and returns a copy of it.
    pub fn remove(&mut self, index: u32) -> State {
        let s = self.slab[index as usize].clone();
        self.by_key.remove(s.key.table_hash(), index);
        self.by_id.remove(id_hash(s.creator, s.id), index);
        self.wheel.cancel(index);
        self.live[index as usize] = false;
        self.free.push(index);
        self.len -= 1;
        s
    }

    /// Expires states whose deadline has passed, looking at no more than `budget` of them, and hands each
    /// expired state to `expired` after removing it. Returns how many expired.
    pub fn expire(&mut self, now: Instant, budget: usize, mut expired: impl FnMut(State)) -> usize {
        let budget = budget.min(EXPIRY_BATCH);
        let mut gone = std::mem::take(&mut self.expired);
        gone.clear();
        let slab = &self.slab;
        let live = &self.live;
        self.wheel.advance(now, budget, |index| {
            let i = index as usize;
            if !live[i] {
                return Due::Expired;
            }
            if slab[i].expires <= now {
                gone.push(index);
                Due::Expired
            } else {
                Due::Later(slab[i].expires)
            }
        });
        let count = gone.len();
        for &index in &gone {
            expired(self.remove(index));
        }
        self.expired = gone;
        count
    }

    /// Removes every state `doomed` picks (a peer's CLR); returns how many. Walks the slab in place and
    /// allocates nothing.
    pub fn remove_where(&mut self, mut doomed: impl FnMut(&State) -> bool) -> usize {
        let mut removed = 0;
        for index in 0..self.slab.len() as u32 {
            if self.live[index as usize] && doomed(&self.slab[index as usize]) {
                self.remove(index);
                removed += 1;
            }
        }
        removed
    }

    /// The first live state at or after slab index `from`, for reading states out in pieces (bulk updates)
    /// while packets keep being processed in between.
    pub fn next_live(&self, from: u32) -> Option<u32> {
        (from as usize..self.slab.len())
            .find(|i| self.live[*i])
            .map(|i| i as u32)
    }

    /// Every live state with its index.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &State)> {
        self.slab
            .iter()
            .enumerate()
            .filter(|(i, _)| self.live[*i])
            .map(|(i, s)| (i as u32, s))
    }

    /// Bytes the table has allocated, all at creation: the slab, its lists and both indexes. The same
    /// number after any churn shows that nothing grew on the worker.
    pub fn allocated_bytes(&self) -> usize {
        self.slab.capacity() * std::mem::size_of::<State>()
            + self.live.capacity()
            + (self.free.capacity() + self.expired.capacity()) * std::mem::size_of::<u32>()
            + (self.by_key.buckets() + self.by_id.buckets()) * SlotIndex::BUCKET_BYTES
    }

    /// Bytes the table uses per state at its limit: the slab entry, both index tables' buckets and the
    /// wheel's links, divided by the limit.
    pub fn bytes_per_state(&self) -> usize {
        let slab = std::mem::size_of::<State>() + 1; // the state and its liveness flag
        let buckets = (self.by_key.buckets() + self.by_id.buckets()) * SlotIndex::BUCKET_BYTES
            / self.limit.max(1);
        let wheel = 3 * std::mem::size_of::<u32>(); // next, prev, slot
        let free_list = std::mem::size_of::<u32>();
        slab + buckets + wheel + free_list
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Endpoint;
    use tandem_config::Family;

    fn key(n: u32) -> FlowKey {
        let mut a = [0u8; 16];
        a[..4].copy_from_slice(&n.to_be_bytes());
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&[192, 0, 2, 1]);
        FlowKey::of_packet(
            Family::Inet,
            6,
            Endpoint {
                addr: a,
                port: 40000,
            },
            Endpoint { addr: b, port: 80 },
        )
        .0
    }

    fn state(n: u32, expires: Instant) -> State {
        State {
            key: key(n),
            initiator_first: true,
            tracking: Tracking::Tcp,
            peers: [TcpPeer::default(); 2],
            creator: CreatorId(7),
            id: StateId(u64::from(n)),
            rule: 0,
            created: Instant::ZERO,
            expires,
            timeout: TimeoutClass::TcpEstablished,
            packets: [0; 2],
            bytes: [0; 2],
            origin: 0,
            sync: SyncMark::default(),
            acked: [0; 2],
            hops: [HopRef::NONE; 2],
            waiting: 0,
            probed: None,
            probe_at: 0,
            redirect: RedirectMark::default(),
        }
    }

    #[test]
    fn states_are_found_by_key_and_by_id_until_removed() {
        let mut table = StateTable::new(16, Instant::ZERO);
        let index = table.insert(state(1, Instant(10_000_000))).expect("room");
        let k = key(1);
        assert_eq!(table.find(&k, k.table_hash()), Some(index));
        assert_eq!(table.find_id(CreatorId(7), StateId(1)), Some(index));
        assert_eq!(table.find_id(CreatorId(8), StateId(1)), None);
        let removed = table.remove(index);
        assert_eq!(removed.id, StateId(1));
        assert_eq!(table.find(&k, k.table_hash()), None);
        assert_eq!(table.find_id(CreatorId(7), StateId(1)), None);
        assert!(table.is_empty());
    }

    #[test]
    fn a_full_table_refuses_new_states_and_reuses_freed_slots() {
        let mut table = StateTable::new(4, Instant::ZERO);
        for n in 0..4 {
            table.insert(state(n, Instant(1))).expect("room");
        }
        assert_eq!(table.insert(state(9, Instant(1))), Err(InsertError::Full));
        let index = table.find_id(CreatorId(7), StateId(2)).expect("present");
        table.remove(index);
        assert_eq!(table.insert(state(9, Instant(1))), Ok(index));
        assert_eq!(table.len(), 4);
    }

    #[test]
    fn duplicate_keys_and_ids_are_refused() {
        let mut table = StateTable::new(4, Instant::ZERO);
        let first = table.insert(state(1, Instant(1))).expect("room");
        assert_eq!(
            table.insert(state(1, Instant(1))),
            Err(InsertError::KeyExists(first))
        );
        let mut same_id = state(2, Instant(1));
        same_id.id = StateId(1);
        assert_eq!(table.insert(same_id), Err(InsertError::IdExists(first)));
    }

    #[test]
    fn expiry_removes_only_states_past_their_deadline() {
        let mut table = StateTable::new(8, Instant::ZERO);
        table.insert(state(1, Instant(1_000_000))).expect("room");
        let keep = table.insert(state(2, Instant(1_000_000))).expect("room");
        // A packet refreshed state 2: only its deadline changes.
        table.get_mut(keep).expires = Instant(5_000_000);
        let mut gone = Vec::new();
        table.expire(Instant(1_200_000), 100, |s| gone.push(s.id));
        assert_eq!(gone, [StateId(1)]);
        table.expire(Instant(4_000_000), 100, |s| gone.push(s.id));
        assert_eq!(gone.len(), 1);
        table.expire(Instant(5_200_000), 100, |s| gone.push(s.id));
        assert_eq!(gone, [StateId(1), StateId(2)]);
        assert!(table.is_empty());
    }

    #[test]
    fn churn_of_ten_times_the_limit_allocates_nothing() {
        let limit = 1000;
        let mut table = StateTable::new(limit, Instant::ZERO);
        let before = table.allocated_bytes();
        let mut now = Instant::ZERO;
        for round in 0..10u32 {
            for n in 0..limit as u32 {
                let n = round * limit as u32 + n;
                table
                    .insert(state(n, now + Duration::millis(500)))
                    .expect("room after the last round expired");
            }
            assert_eq!(table.insert(state(u32::MAX, now)), Err(InsertError::Full));
            now = now + Duration::secs(1);
            let mut expired = 0;
            while table.expire(now, 64, |_| expired += 1) > 0 {}
            assert_eq!(expired, limit, "round {round}");
            assert!(table.is_empty());
        }
        for n in 0..limit as u32 / 2 {
            table.insert(state(n, now)).expect("room");
        }
        let creator = CreatorId(7);
        assert_eq!(table.remove_where(|s| s.creator == creator), limit / 2);
        assert_eq!(table.allocated_bytes(), before, "nothing grew");
    }

    #[test]
    fn a_state_costs_at_most_256_bytes_with_its_share_of_the_table() {
        let table = StateTable::new(1 << 16, Instant::ZERO);
        let bytes = table.bytes_per_state();
        assert!(
            bytes <= 256,
            "{bytes} bytes per state (State alone is {})",
            std::mem::size_of::<State>()
        );
        eprintln!(
            "{bytes} bytes per state, State {} bytes",
            std::mem::size_of::<State>()
        );
    }
}
