//! A state's cluster-wide name: the creator id of the node that made it and a 64-bit state id unique on
//! that node. On the wire both are opaque bytes; Tandem emits both big-endian, as OpenBSD does.

use std::fmt;

/// A state id, unique among the states one node creates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateId(pub u64);

/// The host id of the node that created a state (pf's `creatorid`); never 0 on the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CreatorId(pub u32);

impl fmt::Display for StateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Display for CreatorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}", self.0)
    }
}
