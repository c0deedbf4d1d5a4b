//! A state's cluster-wide name: the creator id of the node that made it and a 64-bit state id unique on
//! that node. On the wire both are opaque bytes; Tandem emits both big-endian, as OpenBSD does.
//! Also the address family, which pfsync carries as the sender's native `AF_*` number: this module owns the
//! mapping between our [`AddressFamily`] and OpenBSD's numbers, so no other code sees a raw family byte.

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

/// The address family of a state, a state key or an IPsec destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressFamily {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
}

impl AddressFamily {
    /// OpenBSD's `AF_INET`, the same on every BSD and on Linux.
    pub const WIRE_INET: u8 = 2;
    /// OpenBSD's `AF_INET6`. pfsync carries the sender's native number (FreeBSD 28, Linux 10), so an
    /// OpenBSD-compatible peer must send 24 (pfsync spec section 4.5).
    pub const WIRE_INET6: u8 = 24;

    /// The family a pfsync af byte names, `None` for any number OpenBSD does not accept.
    pub const fn from_wire(value: u8) -> Option<AddressFamily> {
        match value {
            Self::WIRE_INET => Some(AddressFamily::Inet),
            Self::WIRE_INET6 => Some(AddressFamily::Inet6),
            _ => None,
        }
    }

    /// The af byte OpenBSD sends for this family.
    pub const fn to_wire(self) -> u8 {
        match self {
            AddressFamily::Inet => Self::WIRE_INET,
            AddressFamily::Inet6 => Self::WIRE_INET6,
        }
    }

    /// How many leading bytes of a 16-byte pf address hold an address of this family.
    pub const fn address_len(self) -> usize {
        match self {
            AddressFamily::Inet => 4,
            AddressFamily::Inet6 => 16,
        }
    }
}

impl TryFrom<u8> for AddressFamily {
    type Error = u8;

    /// Fails with the byte itself when it is neither 2 nor 24.
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        AddressFamily::from_wire(value).ok_or(value)
    }
}

impl From<AddressFamily> for u8 {
    fn from(af: AddressFamily) -> u8 {
        af.to_wire()
    }
}

impl From<tandem_config::Family> for AddressFamily {
    fn from(family: tandem_config::Family) -> AddressFamily {
        match family {
            tandem_config::Family::Inet => AddressFamily::Inet,
            tandem_config::Family::Inet6 => AddressFamily::Inet6,
        }
    }
}

impl From<AddressFamily> for tandem_config::Family {
    fn from(af: AddressFamily) -> tandem_config::Family {
        match af {
            AddressFamily::Inet => tandem_config::Family::Inet,
            AddressFamily::Inet6 => tandem_config::Family::Inet6,
        }
    }
}

impl fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressFamily::Inet => "inet",
            AddressFamily::Inet6 => "inet6",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_in_hex_like_pfctl() {
        assert_eq!(
            StateId(0x5f3e_0000_0000_002a).to_string(),
            "5f3e00000000002a"
        );
        assert_eq!(StateId(1).to_string(), "0000000000000001");
        assert_eq!(CreatorId(0xdead_beef).to_string(), "deadbeef");
        assert_eq!(CreatorId(7).to_string(), "00000007");
    }

    #[test]
    fn address_families_map_to_openbsd_numbers() {
        assert_eq!(AddressFamily::Inet.to_wire(), 2);
        assert_eq!(AddressFamily::Inet6.to_wire(), 24);
        assert_eq!(AddressFamily::try_from(2), Ok(AddressFamily::Inet));
        assert_eq!(AddressFamily::try_from(24), Ok(AddressFamily::Inet6));
        // Linux's and FreeBSD's AF_INET6, and the zero of an old sender, are not OpenBSD families.
        for other in [0u8, 10, 28, 255] {
            assert_eq!(AddressFamily::try_from(other), Err(other));
        }
        for af in [AddressFamily::Inet, AddressFamily::Inet6] {
            assert_eq!(AddressFamily::from_wire(u8::from(af)), Some(af));
            assert_eq!(AddressFamily::from(tandem_config::Family::from(af)), af);
        }
    }
}
