//! What workers and the sync core tell each other, through one bounded queue each way per worker.
//!
//! Workers own the states; the sync core owns the protocol. A worker reports what happened to its states
//! ([`LocalEvent`]); the sync core asks workers to apply what peers sent or to read states out
//! ([`PeerOp`]). Every value is plain fixed-size data, so the queues carry them without allocating.

use tandem_config::Family;

use crate::identity::{CreatorId, StateId};
use crate::state::{TcpPeer, TimeoutClass};
use crate::time::Instant;

/// A state's cluster-wide name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateName {
    /// The node that created it.
    pub creator: CreatorId,
    /// Its id on that node.
    pub id: StateId,
}

/// A whole state as the protocol carries it (pfsync's full state message, less what Tandem does not use).
/// Endpoint 0 is the initiator, endpoint 1 the responder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateRecord {
    /// Name.
    pub name: StateName,
    /// Address family.
    pub family: Family,
    /// IP protocol.
    pub proto: u8,
    /// Initiator's and responder's addresses, pf layout (IPv4 in the first four bytes).
    pub addr: [[u8; 16]; 2],
    /// Initiator's and responder's ports (ICMP echo: the id in both).
    pub port: [u16; 2],
    /// Initiator and responder.
    pub peers: [TcpPeer; 2],
    /// Timeout class.
    pub timeout: TimeoutClass,
    /// Seconds until it expires.
    pub expire_secs: u32,
    /// Seconds since it was created.
    pub age_secs: u32,
    /// Packets from the initiator and from the responder.
    pub packets: [u64; 2],
    /// Bytes from the initiator and from the responder.
    pub bytes: [u64; 2],
    /// The creating rule's number, `u32::MAX` when none.
    pub rule: u32,
    /// pf's state flags (`state_flags`).
    pub flags: u16,
}

/// A change of one state's protocol data: what an update carries (pfsync's compressed update).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateUpdate {
    /// Name.
    pub name: StateName,
    /// Initiator and responder as they are now.
    pub peers: [TcpPeer; 2],
    /// Timeout class now.
    pub timeout: TimeoutClass,
    /// Packets on the state since the worker last reported it (pfsync's `sync_updates`).
    pub updates: u16,
}

/// What a worker reports to the sync core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalEvent {
    /// The worker created a state. `deferred`: its creating packet is held until peers acknowledge.
    Inserted {
        /// The state.
        record: StateRecord,
        /// Whether the creating packet is held.
        deferred: bool,
        /// When.
        at: Instant,
    },
    /// A state moved enough to be worth telling peers.
    Updated {
        /// The change.
        update: StateUpdate,
        /// When.
        at: Instant,
    },
    /// A state went away locally (expired, closed, or flushed) and peers should drop it too.
    Deleted {
        /// Which.
        name: StateName,
    },
    /// A state read out on the sync core's request (a bulk update or an update request).
    Snapshot {
        /// The state.
        record: StateRecord,
        /// Which request this answers.
        request: SnapshotRequest,
    },
    /// The worker has read out every state for bulk request `request`.
    SnapshotDone {
        /// Which bulk request.
        request: u32,
    },
    /// A packet of this state is waiting for a peer's newer update (hold-and-recheck): ask for one.
    UpdateWanted {
        /// Which state.
        name: StateName,
    },
    /// The worker released a held packet on its own (deferral backstop or cap reached).
    DeferralDropped {
        /// Which state's packet.
        name: StateName,
    },
    /// A peer's state that the peer asked us to acknowledge is now in the shard: packets of the flow
    /// arriving here from now on find it, so the acknowledgement (INS_ACK) may go out.
    PeerInserted {
        /// Which state.
        name: StateName,
    },
}

/// Which request a snapshot answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotRequest {
    /// A peer asked for one state (UPD_REQ).
    One,
    /// A bulk update, numbered by the sync core.
    Bulk(u32),
}

/// Why a deferred packet is released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReleaseReason {
    /// Every live peer acknowledged the insert.
    Acknowledged,
    /// A peer sent an update of the state, so it has it.
    UpdateReceived,
    /// The deferral timeout expired.
    Timeout,
    /// No live peer is left to wait for.
    NoPeers,
}

/// What the sync core asks a worker to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerOp {
    /// Insert a state a peer created (or replace a dead local copy).
    Insert {
        /// The state.
        record: StateRecord,
        /// The peer holds the creating packet until we acknowledge: report
        /// [`LocalEvent::PeerInserted`] once the state is in the shard.
        ack: bool,
    },
    /// Merge a peer's update into a state (pfsync's merge rules: only newer halves are taken).
    Update {
        /// The peer's view.
        update: StateUpdate,
    },
    /// Delete a state.
    Delete {
        /// Which.
        name: StateName,
    },
    /// Delete every state created by `creator` (pfsync CLR).
    Clear {
        /// Whose.
        creator: CreatorId,
    },
    /// Send the held creating packet of a state.
    ReleaseDeferred {
        /// Which state.
        name: StateName,
        /// Why.
        reason: ReleaseReason,
    },
    /// Report one state as a snapshot (answering a peer's update request).
    ReadOne {
        /// Which.
        name: StateName,
    },
    /// Report up to `budget` more states as snapshots for bulk request `request`, continuing where the last
    /// read stopped; report `SnapshotDone` when none are left.
    ReadBulk {
        /// Which bulk request.
        request: u32,
        /// How many states at most this time.
        budget: u32,
    },
}
