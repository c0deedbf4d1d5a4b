//! The pfsync version 6 wire format (OpenBSD's `if_pfsync.h`): bytes in, typed values out, and back. No
//! protocol logic lives here (that is the engine's), and no IP or UDP header: the runtime strips and adds
//! those, so every buffer here starts at the pfsync header.
//!
//! The contract, smoltcp's, holds for every file below:
//! - A view (`Header<T>`, `UpdC<T>`, ...) wraps any `T: AsRef<[u8]>`. `new_checked` checks the length once;
//!   after it succeeds no getter can panic. Getters read named byte ranges (a private `field` module per
//!   file) in network order; setters need `T: AsMut<[u8]>`. Nothing is cast from memory.
//! - A `Repr` is a small owned value: `parse` reads a checked view and never panics; `emit` writes every byte
//!   of a view (padding included, so a recycled buffer leaves nothing stale) and never panics if the buffer
//!   is at least `buffer_len()` long. Emit through `new_unchecked`: a length check on a reused buffer would
//!   read stale bytes.
//! - Untrusted packets enter only through [`PfsyncPacket::new_checked`], whose section and message
//!   iterators allocate nothing.
//!
//! Errors come in two kinds, one enum. Packet errors ([`Error::ends_packet`]) stop the parse of the rest of
//! the packet, as OpenBSD stops (`hdrops`, `badver`, `badlen`, `badact`). Message errors are per message and
//! the next message is still parsed (`badval`): a value our Reprs cannot hold (an address family other than
//! 2 or 24) is reported by the iterator itself; a value a Repr holds but OpenBSD's handler refuses (timeout
//! >= 20, peer state > 12, ...) is reported by [`Message::validate`], which the engine calls before acting.

use std::fmt;
use std::ops::Range;

mod action;
mod bus;
mod clr;
pub mod delivery;
mod header;
mod message;
mod packet;
mod peer;
pub mod redirect;
mod state;
mod state_ref;
mod subheader;
mod tdb;
mod upd_c;

pub use action::{ACTION_MAX, Action, Dispatch, dispatch, is_legacy};
pub use bus::{Bus, BusRepr, BusStatus};
pub use clr::{Clr, ClrRepr};
pub use header::{HEADER_LEN, Header, HeaderRepr, VERSION};
pub use message::Message;
pub use packet::{Messages, PacketMessages, PfsyncPacket, Section, Sections};
pub use peer::{PEER_LEN, PeerRepr, SCRUB_LEN, ScrubRepr, StatePeer, StateScrub};
pub use state::{KEY_LEN, StateKey, StateKeyRepr, StateMessage, StateRepr};
pub use state_ref::{StateRef, StateRefRepr};
pub use subheader::{SUBHEADER_LEN, Subheader, SubheaderRepr};
pub use tdb::{Tdb, TdbDestination, TdbRepr};
pub use upd_c::{UpdC, UpdCRepr};

/// The hand-written golden messages of each file's tests, for tests elsewhere in the crate.
#[cfg(test)]
pub(crate) mod golden {
    pub(crate) use super::bus::tests::GOLDEN as BUS;
    pub(crate) use super::clr::tests::{GOLDEN as CLR, golden_repr as clr};
    pub(crate) use super::state::tests::{GOLDEN as STATE, golden_repr as state};
    pub(crate) use super::state_ref::tests::{GOLDEN as STATE_REF, golden_repr as state_ref};
    pub(crate) use super::tdb::tests::{GOLDEN_INET6 as TDB, golden_inet6 as tdb};
    pub(crate) use super::upd_c::tests::{GOLDEN as UPD_C, golden_repr as upd_c};
}

/// Everything that can be wrong with pfsync bytes. Each variant names the pfsync input counter OpenBSD
/// would bump ([`Error::counter`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Fewer bytes than a pfsync header (`hdrops`).
    #[error("{available} bytes is shorter than the 20-byte pfsync header")]
    ShortHeader {
        /// Bytes received.
        available: usize,
    },
    /// A version other than 6, such as FreeBSD's 5 (`badver`).
    #[error("pfsync version {0}; only version 6 is understood")]
    BadVersion(u8),
    /// The header's length is longer than the bytes received (`badlen`). A shorter one is not an error: the
    /// trailing bytes are ignored.
    #[error("header length {header} is longer than the {available} bytes received")]
    LengthExceedsPacket {
        /// The header's length field.
        header: u16,
        /// Bytes received (the IP payload).
        available: usize,
    },
    /// The header's length does not even cover the header (`badlen`).
    #[error("header length {header} is shorter than the pfsync header itself")]
    LengthBelowHeader {
        /// The header's length field.
        header: u16,
    },
    /// A section that can be neither parsed nor skipped: an unknown action, or a known one declaring shorter
    /// messages than it has, with a zero length or count (`badact`).
    #[error(
        "section at offset {offset}: action {code} with {count} messages of {message_len} bytes can be \
         neither parsed nor skipped"
    )]
    BadAction {
        /// Offset of the subheader in the packet.
        offset: usize,
        /// The action code.
        code: u8,
        /// Declared bytes per message.
        message_len: usize,
        /// Declared number of messages.
        count: u16,
    },
    /// A section whose count times message length exceeds what any pfsync packet can hold (its length is a
    /// 16-bit field): a corrupted count rather than a short packet (`badlen`).
    #[error(
        "section at offset {offset}: {count} messages of {message_len} bytes exceed the largest pfsync packet"
    )]
    SectionOverflow {
        /// Offset of the subheader in the packet.
        offset: usize,
        /// The action code.
        code: u8,
        /// Declared bytes per message.
        message_len: usize,
        /// Declared number of messages.
        count: u16,
    },
    /// A section declaring more bytes than the packet has left (`badlen`).
    #[error("section at offset {offset}: action {code} needs {needed} bytes, {available} left")]
    TruncatedSection {
        /// Offset of the subheader in the packet.
        offset: usize,
        /// The action code.
        code: u8,
        /// Bytes its messages need.
        needed: usize,
        /// Bytes left after its subheader.
        available: usize,
    },
    /// A buffer shorter than the view laid over it (`badlen`).
    #[error("{needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the view needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// An address family byte other than 2 or 24 (or 0 where old senders may leave a key's family unset);
    /// this message is dropped, the next one parsed (`badval`).
    #[error("{action} message: {field} {value} is neither 2 (inet) nor 24 (inet6)")]
    BadAddressFamily {
        /// The message's action.
        action: Action,
        /// The field, as OpenBSD's struct names it.
        field: &'static str,
        /// The byte.
        value: u8,
    },
    /// A value OpenBSD's handler refuses (from [`Message::validate`]); this message is dropped, the next
    /// one processed (`badval`).
    #[error("{action} message: {field} {value} is out of range")]
    BadValue {
        /// The message's action.
        action: Action,
        /// The field, as OpenBSD's struct names it.
        field: &'static str,
        /// Its value.
        value: u32,
    },
}

impl Error {
    /// Whether this error ends the parse of the packet (true) or only drops one message (false).
    pub const fn ends_packet(&self) -> bool {
        !matches!(
            self,
            Error::BadAddressFamily { .. } | Error::BadValue { .. }
        )
    }

    /// The OpenBSD input counter (`netstat -s -p pfsync`) this error corresponds to.
    pub const fn counter(&self) -> &'static str {
        match self {
            Error::ShortHeader { .. } => "hdrops",
            Error::BadVersion(_) => "badver",
            Error::LengthExceedsPacket { .. }
            | Error::LengthBelowHeader { .. }
            | Error::SectionOverflow { .. }
            | Error::TruncatedSection { .. }
            | Error::Truncated { .. } => "badlen",
            Error::BadAction { .. } => "badact",
            Error::BadAddressFamily { .. } | Error::BadValue { .. } => "badval",
        }
    }
}

/// The wire layer's result.
pub type Result<T> = core::result::Result<T, Error>;

/// A pf interface name (`IFNAMSIZ`, 16 bytes, NUL-padded) as carried by full states and CLR. Kept as raw
/// bytes: the name is the sender's, and `all` means a floating state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InterfaceName(pub [u8; 16]);

impl InterfaceName {
    /// The empty name: CLR's "every interface".
    pub const NONE: InterfaceName = InterfaceName([0; 16]);

    /// The name `name`, cut to 15 bytes so a NUL always ends it, as `strlcpy` does.
    pub fn new(name: &str) -> InterfaceName {
        let mut raw = [0u8; 16];
        for (slot, byte) in raw.iter_mut().take(15).zip(name.bytes()) {
            *slot = byte;
        }
        InterfaceName(raw)
    }

    /// The bytes before the first NUL.
    pub fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        self.0.get(..end).unwrap_or(&[])
    }

    /// Whether the name is empty.
    pub fn is_empty(&self) -> bool {
        self.0[0] == 0
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A peer's bytes may be anything: print them escaped, never raw.
        for &b in self.as_bytes() {
            write!(f, "{}", std::ascii::escape_default(b))?;
        }
        Ok(())
    }
}

/// A fixed-size value stored in network byte order. Implemented for the integer widths pfsync uses and for
/// raw byte arrays (addresses, names), which are copied unchanged.
pub(crate) trait NetworkOrder: Copy {
    /// Reads the value from exactly its size in bytes.
    fn read(bytes: &[u8]) -> Self;
    /// Writes the value into exactly its size in bytes.
    fn write(self, bytes: &mut [u8]);
}

macro_rules! network_order_int {
    ($($int:ty),*) => {$(
        impl NetworkOrder for $int {
            #[inline]
            fn read(bytes: &[u8]) -> Self {
                let mut raw = [0u8; size_of::<$int>()];
                raw.copy_from_slice(bytes);
                <$int>::from_be_bytes(raw)
            }

            #[inline]
            fn write(self, bytes: &mut [u8]) {
                bytes.copy_from_slice(&self.to_be_bytes());
            }
        }
    )*};
}

network_order_int!(u8, u16, u32, u64, i32);

impl<const N: usize> NetworkOrder for [u8; N] {
    #[inline]
    fn read(bytes: &[u8]) -> Self {
        let mut raw = [0u8; N];
        raw.copy_from_slice(bytes);
        raw
    }

    #[inline]
    fn write(self, bytes: &mut [u8]) {
        bytes.copy_from_slice(&self);
    }
}

/// A field's byte range: single-byte fields are named by their offset, wider ones by a range.
pub(crate) trait Span {
    /// The bytes the field occupies.
    fn span(self) -> Range<usize>;
}

impl Span for usize {
    fn span(self) -> Range<usize> {
        self..self + 1
    }
}

impl Span for Range<usize> {
    fn span(self) -> Range<usize> {
        self
    }
}

/// Declares a fixed-size view: the struct, `new_unchecked`, `check_len`, `new_checked` and `into_inner`.
/// Every pfsync record is fixed-size, so the only length to check is the record's own.
macro_rules! fixed_view {
    ($(#[$meta:meta])* $view:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $view<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $view<T> {
            /// Wraps `buffer` without checking its length: for emission into a buffer at least
            /// `buffer_len()` long.
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            /// Wraps `buffer` after checking it is long enough for every accessor.
            pub fn new_checked(buffer: T) -> $crate::wire::Result<Self> {
                let view = Self::new_unchecked(buffer);
                view.check_len()?;
                Ok(view)
            }

            /// Checks the buffer holds the whole record; after this succeeds no getter can panic. Bytes
            /// beyond the record (a peer's longer message) are ignored.
            pub fn check_len(&self) -> $crate::wire::Result<()> {
                let available = self.buffer.as_ref().len();
                if available < $len {
                    Err($crate::wire::Error::Truncated { needed: $len, available })
                } else {
                    Ok(())
                }
            }

            /// The wrapped buffer.
            pub fn into_inner(self) -> T {
                self.buffer
            }
        }
    };
}

/// Declares a view's getters (on `AsRef`) and setters (on `AsMut`), each reading or writing one named byte
/// range in network order.
macro_rules! view_fields {
    ($view:ident { $($(#[$doc:meta])* $get:ident, $set:ident: $ty:ty = $range:expr;)* }) => {
        // Getters are named after the wire fields, so a `len` getter is a field, not a container size.
        #[allow(clippy::len_without_is_empty)]
        impl<T: AsRef<[u8]>> $view<T> {
            $(
                $(#[$doc])*
                #[inline]
                pub fn $get(&self) -> $ty {
                    <$ty as $crate::wire::NetworkOrder>::read(&self.buffer.as_ref()[$crate::wire::Span::span($range)])
                }
            )*
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $view<T> {
            $(
                #[doc = concat!("Writes the field [`Self::", stringify!($get), "`] reads.")]
                #[inline]
                pub fn $set(&mut self, value: $ty) {
                    let span = $crate::wire::Span::span($range);
                    <$ty as $crate::wire::NetworkOrder>::write(value, &mut self.buffer.as_mut()[span])
                }
            )*
        }
    };
}

pub(crate) use {fixed_view, view_fields};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_cut_to_fifteen_bytes_and_printed_escaped() {
        let name = InterfaceName::new("em0");
        assert_eq!(name.as_bytes(), b"em0");
        assert_eq!(name.to_string(), "em0");
        let long = InterfaceName::new("a-very-long-interface-name");
        assert_eq!(long.as_bytes().len(), 15);
        assert_eq!(long.0[15], 0);
        let mut raw = [0u8; 16];
        raw[..3].copy_from_slice(b"a\nb");
        assert_eq!(InterfaceName(raw).to_string(), "a\\nb");
        assert!(InterfaceName::NONE.is_empty());
        // Without a NUL every byte is the name.
        assert_eq!(InterfaceName([b'x'; 16]).as_bytes().len(), 16);
    }

    #[test]
    fn only_value_errors_leave_the_rest_of_the_packet_to_parse() {
        let per_message = [
            Error::BadAddressFamily {
                action: Action::Ins,
                field: "af",
                value: 28,
            },
            Error::BadValue {
                action: Action::UpdC,
                field: "timeout",
                value: 20,
            },
        ];
        for e in per_message {
            assert!(!e.ends_packet());
            assert_eq!(e.counter(), "badval");
        }
        assert!(Error::BadVersion(5).ends_packet());
        assert_eq!(Error::BadVersion(5).counter(), "badver");
        assert_eq!(Error::ShortHeader { available: 3 }.counter(), "hdrops");
    }
}
