//! ARP (RFC 826). The view reads any hardware and protocol address lengths; the `Repr` handles the only
//! combination Tandem answers and learns from, Ethernet with IPv4. Neighbour caches and replies to
//! requests belong to the control thread, not here.

use std::fmt;
use std::net::Ipv4Addr;

use super::ethernet::{MacAddr, ethertype};
use super::{Error, Field, Header, Result, read_u16, truncated, write_u16};

mod field {
    use super::Field;

    pub const HARDWARE_TYPE: Field = 0..2;
    pub const PROTOCOL_TYPE: Field = 2..4;
    pub const HARDWARE_LEN: usize = 4;
    pub const PROTOCOL_LEN: usize = 5;
    pub const OPERATION: Field = 6..8;

    // The addresses follow with the lengths the header announces (RFC 826, "Packet format").
    pub const fn source_hardware(hlen: usize) -> Field {
        OPERATION.end..OPERATION.end + hlen
    }

    pub const fn source_protocol(hlen: usize, plen: usize) -> Field {
        let start = source_hardware(hlen).end;
        start..start + plen
    }

    pub const fn target_hardware(hlen: usize, plen: usize) -> Field {
        let start = source_protocol(hlen, plen).end;
        start..start + hlen
    }

    pub const fn target_protocol(hlen: usize, plen: usize) -> Field {
        let start = target_hardware(hlen, plen).end;
        start..start + plen
    }
}

/// Length of the fixed part, before the addresses.
pub const HEADER_LEN: usize = field::OPERATION.end;

/// The `ar$hrd` value for Ethernet.
pub const HARDWARE_ETHERNET: u16 = 1;

/// An ARP operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `ares_op$REQUEST`.
    Request,
    /// `ares_op$REPLY`.
    Reply,
    /// Anything else (RARP, InARP, ...).
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(value: u16) -> Self {
        match value {
            1 => Operation::Request,
            2 => Operation::Reply,
            other => Operation::Unknown(other),
        }
    }
}

impl From<Operation> for u16 {
    fn from(op: Operation) -> u16 {
        match op {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(other) => other,
        }
    }
}

/// A view of an ARP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Packet::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the fixed part and the four addresses it announces are present.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(truncated(Header::Arp, HEADER_LEN, len));
        }
        let need = self.target_protocol_field().end;
        if len < need {
            return Err(truncated(Header::Arp, need, len));
        }
        Ok(())
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn target_protocol_field(&self) -> Field {
        field::target_protocol(self.hardware_len().into(), self.protocol_len().into())
    }

    /// Hardware type (`ar$hrd`).
    pub fn hardware_type(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::HARDWARE_TYPE])
    }

    /// Protocol type (`ar$pro`), an ethertype.
    pub fn protocol_type(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::PROTOCOL_TYPE])
    }

    /// Hardware address length (`ar$hln`).
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HARDWARE_LEN]
    }

    /// Protocol address length (`ar$pln`).
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL_LEN]
    }

    /// Operation (`ar$op`).
    pub fn operation(&self) -> Operation {
        read_u16(&self.buffer.as_ref()[field::OPERATION]).into()
    }

    fn lens(&self) -> (usize, usize) {
        (self.hardware_len().into(), self.protocol_len().into())
    }

    /// Sender hardware address (`ar$sha`).
    pub fn source_hardware_addr(&self) -> &[u8] {
        let (h, _) = self.lens();
        &self.buffer.as_ref()[field::source_hardware(h)]
    }

    /// Sender protocol address (`ar$spa`).
    pub fn source_protocol_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::source_protocol(h, p)]
    }

    /// Target hardware address (`ar$tha`).
    pub fn target_hardware_addr(&self) -> &[u8] {
        let (h, p) = self.lens();
        &self.buffer.as_ref()[field::target_hardware(h, p)]
    }

    /// Target protocol address (`ar$tpa`).
    pub fn target_protocol_addr(&self) -> &[u8] {
        &self.buffer.as_ref()[self.target_protocol_field()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the hardware type.
    pub fn set_hardware_type(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::HARDWARE_TYPE], value);
    }

    /// Sets the protocol type.
    pub fn set_protocol_type(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::PROTOCOL_TYPE], value);
    }

    /// Sets the hardware address length; moves every address after it.
    pub fn set_hardware_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::HARDWARE_LEN] = value;
    }

    /// Sets the protocol address length; moves every address after it.
    pub fn set_protocol_len(&mut self, value: u8) {
        self.buffer.as_mut()[field::PROTOCOL_LEN] = value;
    }

    /// Sets the operation.
    pub fn set_operation(&mut self, op: Operation) {
        write_u16(&mut self.buffer.as_mut()[field::OPERATION], op.into());
    }

    /// Sets the sender hardware address; `addr` must be `hardware_len` long.
    pub fn set_source_hardware_addr(&mut self, addr: &[u8]) {
        let (h, _) = self.lens();
        self.buffer.as_mut()[field::source_hardware(h)].copy_from_slice(addr);
    }

    /// Sets the sender protocol address; `addr` must be `protocol_len` long.
    pub fn set_source_protocol_addr(&mut self, addr: &[u8]) {
        let (h, p) = self.lens();
        self.buffer.as_mut()[field::source_protocol(h, p)].copy_from_slice(addr);
    }

    /// Sets the target hardware address; `addr` must be `hardware_len` long.
    pub fn set_target_hardware_addr(&mut self, addr: &[u8]) {
        let (h, p) = self.lens();
        self.buffer.as_mut()[field::target_hardware(h, p)].copy_from_slice(addr);
    }

    /// Sets the target protocol address; `addr` must be `protocol_len` long.
    pub fn set_target_protocol_addr(&mut self, addr: &[u8]) {
        let (h, p) = self.lens();
        self.buffer.as_mut()[field::target_protocol(h, p)].copy_from_slice(addr);
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Packet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.check_len().and_then(|()| ArpRepr::parse(self)) {
            Ok(repr) => write!(f, "{repr}"),
            Err(err) => write!(f, "ARP ({err})"),
        }
    }
}

/// An Ethernet/IPv4 ARP message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArpRepr {
    /// Request, reply or other.
    pub operation: Operation,
    /// Sender hardware address.
    pub source_hardware_addr: MacAddr,
    /// Sender protocol address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target hardware address (zero in a request).
    pub target_hardware_addr: MacAddr,
    /// Target protocol address.
    pub target_protocol_addr: Ipv4Addr,
}

fn mac(bytes: &[u8]) -> MacAddr {
    let mut addr = [0u8; 6];
    addr.copy_from_slice(bytes);
    MacAddr(addr)
}

fn ipv4(bytes: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
}

impl ArpRepr {
    /// Parses a checked packet; anything but Ethernet with IPv4 is unsupported.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<ArpRepr> {
        if packet.hardware_type() != HARDWARE_ETHERNET || packet.hardware_len() != 6 {
            return Err(Error::Unsupported {
                header: Header::Arp,
                what: "hardware type (only Ethernet)",
            });
        }
        if packet.protocol_type() != ethertype::IPV4 || packet.protocol_len() != 4 {
            return Err(Error::Unsupported {
                header: Header::Arp,
                what: "protocol type (only IPv4)",
            });
        }
        Ok(ArpRepr {
            operation: packet.operation(),
            source_hardware_addr: mac(packet.source_hardware_addr()),
            source_protocol_addr: ipv4(packet.source_protocol_addr()),
            target_hardware_addr: mac(packet.target_hardware_addr()),
            target_protocol_addr: ipv4(packet.target_protocol_addr()),
        })
    }

    /// Length of the packet this emits: 28 bytes.
    pub fn buffer_len(&self) -> usize {
        field::target_protocol(6, 4).end
    }

    /// Writes the packet into a buffer at least [`ArpRepr::buffer_len`] long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_hardware_type(HARDWARE_ETHERNET);
        packet.set_protocol_type(ethertype::IPV4);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(self.operation);
        packet.set_source_hardware_addr(&self.source_hardware_addr.0);
        packet.set_source_protocol_addr(&self.source_protocol_addr.octets());
        packet.set_target_hardware_addr(&self.target_hardware_addr.0);
        packet.set_target_protocol_addr(&self.target_protocol_addr.octets());
    }
}

impl fmt::Display for ArpRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.operation {
            Operation::Request => write!(
                f,
                "ARP, Request who-has {} tell {}",
                self.target_protocol_addr, self.source_protocol_addr
            ),
            Operation::Reply => write!(
                f,
                "ARP, Reply {} is-at {}",
                self.source_protocol_addr, self.source_hardware_addr
            ),
            Operation::Unknown(op) => write!(
                f,
                "ARP, operation {op}, {} ({}) > {}",
                self.source_protocol_addr, self.source_hardware_addr, self.target_protocol_addr
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::marked;
    use proptest::prelude::*;

    /// A captured ARP reply (Linux, after the Ethernet header).
    static REPLY: [u8; 28] = [
        0x00, 0x01, // hardware type Ethernet
        0x08, 0x00, // protocol type IPv4
        0x06, // hardware address length
        0x04, // protocol address length
        0x00, 0x02, // operation reply
        0x7e, 0x7d, 0x87, 0xd2, 0x7f, 0x78, // sender hardware address
        0x0a, 0x00, 0x00, 0x02, // sender protocol address 10.0.0.2
        0xba, 0x7f, 0xa3, 0x06, 0xf2, 0xf9, // target hardware address
        0x0a, 0x00, 0x00, 0x01, // target protocol address 10.0.0.1
    ];

    fn reply() -> ArpRepr {
        ArpRepr {
            operation: Operation::Reply,
            source_hardware_addr: MacAddr([0x7e, 0x7d, 0x87, 0xd2, 0x7f, 0x78]),
            source_protocol_addr: Ipv4Addr::new(10, 0, 0, 2),
            target_hardware_addr: MacAddr([0xba, 0x7f, 0xa3, 0x06, 0xf2, 0xf9]),
            target_protocol_addr: Ipv4Addr::new(10, 0, 0, 1),
        }
    }

    #[test]
    fn deconstructs_a_reply() {
        let packet = Packet::new_checked(&REPLY[..]).unwrap();
        assert_eq!(packet.hardware_type(), 1);
        assert_eq!(packet.protocol_type(), 0x0800);
        assert_eq!((packet.hardware_len(), packet.protocol_len()), (6, 4));
        assert_eq!(packet.operation(), Operation::Reply);
        assert_eq!(packet.source_protocol_addr(), &[10, 0, 0, 2]);
        assert_eq!(packet.target_hardware_addr(), &REPLY[18..24]);
        assert_eq!(packet.target_protocol_addr(), &[10, 0, 0, 1]);
    }

    #[test]
    fn constructs_a_reply_over_marked_bytes() {
        let mut bytes = marked(28);
        let mut packet = Packet::new_unchecked(&mut bytes);
        packet.set_hardware_type(1);
        packet.set_protocol_type(0x0800);
        packet.set_hardware_len(6);
        packet.set_protocol_len(4);
        packet.set_operation(Operation::Reply);
        packet.set_source_hardware_addr(&REPLY[8..14]);
        packet.set_source_protocol_addr(&[10, 0, 0, 2]);
        packet.set_target_hardware_addr(&REPLY[18..24]);
        packet.set_target_protocol_addr(&[10, 0, 0, 1]);
        assert_eq!(bytes, REPLY);
    }

    #[test]
    fn parses_and_emits_a_reply() {
        let packet = Packet::new_checked(&REPLY[..]).unwrap();
        assert_eq!(ArpRepr::parse(&packet), Ok(reply()));
        let mut bytes = marked(reply().buffer_len());
        reply().emit(&mut Packet::new_unchecked(&mut bytes));
        assert_eq!(bytes, REPLY);
        assert_eq!(
            reply().to_string(),
            "ARP, Reply 10.0.0.2 is-at 7e:7d:87:d2:7f:78"
        );
    }

    #[test]
    fn addresses_past_the_end_are_truncated() {
        assert_eq!(
            Packet::new_checked(&REPLY[..7]).unwrap_err(),
            truncated(Header::Arp, 8, 7)
        );
        assert_eq!(
            Packet::new_checked(&REPLY[..27]).unwrap_err(),
            truncated(Header::Arp, 28, 27)
        );
        // A hardware length of 255 announces 8 + 2 * (255 + 4) bytes.
        let mut long = REPLY;
        long[4] = 255;
        assert_eq!(
            Packet::new_checked(&long[..]).unwrap_err(),
            truncated(Header::Arp, 526, 28)
        );
    }

    #[test]
    fn other_address_families_are_unsupported() {
        let mut token_ring = REPLY;
        token_ring[1] = 6;
        let packet = Packet::new_checked(&token_ring[..]).unwrap();
        assert!(matches!(
            ArpRepr::parse(&packet),
            Err(Error::Unsupported {
                header: Header::Arp,
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn emitted_messages_parse_back(
            op: u16, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4],
        ) {
            let repr = ArpRepr {
                operation: op.into(),
                source_hardware_addr: MacAddr(sha),
                source_protocol_addr: spa.into(),
                target_hardware_addr: MacAddr(tha),
                target_protocol_addr: tpa.into(),
            };
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Packet::new_unchecked(&mut bytes));
            prop_assert_eq!(ArpRepr::parse(&Packet::new_checked(&bytes).unwrap()), Ok(repr));
        }
    }
}
