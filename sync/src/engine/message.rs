//! The sync messages as the engine thinks of them: states, names and statuses rather than bytes. The
//! codec turns them into pfsync sections and back; everything else in the engine works on these.

use crate::event::{StateName, StateRecord, StateUpdate};
use crate::identity::CreatorId;

/// pfsync's bulk update status (`PFSYNC_BUS_START`, `PFSYNC_BUS_END`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkStatus {
    /// A bulk update begins.
    Start,
    /// The bulk update is complete.
    End,
}

/// A message to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// Acknowledge an insert that asked for it (INS_ACK).
    InsAck(StateName),
    /// A compressed update (UPD_C).
    UpdC(StateUpdate),
    /// Ask for a full state; `None` asks for all of them (UPD_REQ with id 0 and creator 0).
    UpdReq(Option<StateName>),
    /// A state was deleted (DEL_C).
    DelC(StateName),
    /// A new state (INS); `ack` sets PFSTATE_ACK, asking peers for an INS_ACK.
    Ins {
        /// The state.
        record: StateRecord,
        /// Whether an acknowledgement is wanted.
        ack: bool,
    },
    /// A full state (UPD): answers to update requests and bulk updates.
    Upd(StateRecord),
    /// All states created by this creator were flushed (CLR).
    Clr(CreatorId),
    /// Bulk update status (BUS), with our host id.
    Bus(CreatorId, BulkStatus),
}

/// A message received, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Incoming {
    /// CLR.
    Clr(CreatorId),
    /// INS_ACK.
    InsAck(StateName),
    /// UPD_C.
    UpdC(StateUpdate),
    /// UPD_REQ; `None` for a bulk request.
    UpdReq(Option<StateName>),
    /// DEL or DEL_C.
    Del(StateName),
    /// INS, with its PFSTATE_ACK flag.
    Ins {
        /// The state.
        record: StateRecord,
        /// Whether the sender wants an INS_ACK.
        ack: bool,
    },
    /// UPD.
    Upd(StateRecord),
    /// BUS.
    Bus(CreatorId, BulkStatus),
    /// Acknowledged delivery (a Tandem section): a packet's number, or an acknowledgement.
    Delivery(crate::wire::delivery::Delivery),
}
