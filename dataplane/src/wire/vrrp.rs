//! VRRP version 3 (RFC 5798 section 5): the advertisement a virtual router's master multicasts, for IPv4
//! and IPv6. The view reads the fixed header; the addresses that follow are 4 or 16 bytes each depending
//! on the IP version that carried the packet, which only the caller knows, so the `Repr` takes the
//! pseudo-header (it is also what the checksum covers, section 5.2.8). Elections belong to the control
//! thread, not here.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::checksum::PseudoHeader;
use super::ethernet::MacAddr;
use super::{Error, Field, Header, Result, read_u16, truncated, write_u16};

mod field {
    use super::Field;

    pub const VERSION_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// 4 reserved bits, then the maximum advertisement interval in centiseconds (12 bits).
    pub const INTERVAL: Field = 4..6;
    pub const CHECKSUM: Field = 6..8;
}

/// Length of the fixed header, before the addresses.
pub const HEADER_LEN: usize = field::CHECKSUM.end;

/// IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// The version this module speaks.
pub const VERSION: u8 = 3;
/// The only message type, an advertisement.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// The IPv4 group advertisements go to (section 5.1.1.2).
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 group (section 5.1.2.2).
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The TTL or hop limit advertisements are sent with and must arrive with (sections 5.1.1.3, 7.1).
pub const HOP_LIMIT: u8 = 255;
/// The largest interval the 12-bit field holds, in centiseconds.
pub const MAX_INTERVAL_CS: u16 = 0x0fff;

/// The virtual router MAC of `vrid`: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6
/// (section 7.3).
pub const fn virtual_mac(ipv6: bool, vrid: u8) -> MacAddr {
    MacAddr([0x00, 0x00, 0x5e, 0x00, if ipv6 { 0x02 } else { 0x01 }, vrid])
}

/// A view of a VRRP packet.
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

    /// Checks that the fixed header is present (the addresses are checked by [`VrrpRepr::parse`], which
    /// knows their size).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(truncated(Header::Vrrp, HEADER_LEN, len));
        }
        Ok(())
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version (the high nibble of the first byte).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_TYPE] >> 4
    }

    /// Message type (the low nibble).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::VERSION_TYPE] & 0x0f
    }

    /// Virtual router id.
    pub fn vrid(&self) -> u8 {
        self.buffer.as_ref()[field::VRID]
    }

    /// The sender's priority for the virtual router (0: the master is leaving).
    pub fn priority(&self) -> u8 {
        self.buffer.as_ref()[field::PRIORITY]
    }

    /// How many addresses follow.
    pub fn count(&self) -> u8 {
        self.buffer.as_ref()[field::COUNT]
    }

    /// Maximum advertisement interval, centiseconds.
    pub fn interval_cs(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::INTERVAL]) & MAX_INTERVAL_CS
    }

    /// The reserved bits before the interval.
    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[field::INTERVAL.start] >> 4
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::CHECKSUM])
    }

    /// The bytes after the fixed header.
    pub fn addresses(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version and type.
    pub fn set_version_type(&mut self, version: u8, msg_type: u8) {
        self.buffer.as_mut()[field::VERSION_TYPE] = (version << 4) | (msg_type & 0x0f);
    }

    /// Sets the virtual router id.
    pub fn set_vrid(&mut self, value: u8) {
        self.buffer.as_mut()[field::VRID] = value;
    }

    /// Sets the priority.
    pub fn set_priority(&mut self, value: u8) {
        self.buffer.as_mut()[field::PRIORITY] = value;
    }

    /// Sets the address count (a length field: the addresses must follow).
    pub fn set_count(&mut self, value: u8) {
        self.buffer.as_mut()[field::COUNT] = value;
    }

    /// Sets the interval, clearing the reserved bits.
    pub fn set_interval_cs(&mut self, value: u16) {
        write_u16(
            &mut self.buffer.as_mut()[field::INTERVAL],
            value & MAX_INTERVAL_CS,
        );
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::CHECKSUM], value);
    }

    /// The bytes after the fixed header, to write.
    pub fn addresses_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
    }
}

/// An advertisement. Not `Copy` like the other `Repr`s: it carries its addresses (the control thread's,
/// never the packet path's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpRepr {
    /// Virtual router id, 1-255.
    pub vrid: u8,
    /// Priority, 0-255.
    pub priority: u8,
    /// Maximum advertisement interval, centiseconds (12 bits).
    pub interval_cs: u16,
    /// The virtual addresses, all of the family that carried the packet.
    pub addresses: Vec<IpAddr>,
}

fn address_len(pseudo: &PseudoHeader) -> usize {
    match pseudo {
        PseudoHeader::V4 { .. } => 4,
        PseudoHeader::V6 { .. } => 16,
    }
}

impl VrrpRepr {
    /// Reads an advertisement carried under `pseudo` (the IP addresses of its packet): version 3, type 1,
    /// the announced addresses present, the checksum verified over the pseudo-header. Bytes after the
    /// addresses are refused (the IP length and the count disagree).
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>, pseudo: &PseudoHeader) -> Result<VrrpRepr> {
        packet.check_len()?;
        if packet.version() != VERSION {
            return Err(Error::BadVersion {
                header: Header::Vrrp,
                version: packet.version(),
                expected: VERSION,
            });
        }
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return Err(Error::WrongMessage {
                header: Header::Vrrp,
                msg_type: packet.msg_type(),
                expected: "an advertisement",
            });
        }
        let step = address_len(pseudo);
        let need = HEADER_LEN + step * usize::from(packet.count());
        let have = packet.buffer.as_ref().len();
        if have != need {
            return Err(Error::BadLength {
                header: Header::Vrrp,
                len: need,
                have,
            });
        }
        if !pseudo.verify(PROTOCOL, packet.buffer.as_ref()) {
            return Err(Error::BadChecksum(Header::Vrrp));
        }
        let addresses = packet
            .addresses()
            .chunks_exact(step)
            .map(|a| match <[u8; 4]>::try_from(a) {
                Ok(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
                Err(_) => {
                    let mut v6 = [0u8; 16];
                    v6.copy_from_slice(a);
                    IpAddr::V6(Ipv6Addr::from(v6))
                }
            })
            .collect();
        Ok(VrrpRepr {
            vrid: packet.vrid(),
            priority: packet.priority(),
            interval_cs: packet.interval_cs(),
            addresses,
        })
    }

    /// Bytes of the packet.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self
                .addresses
                .iter()
                .map(|a| if a.is_ipv4() { 4 } else { 16 })
                .sum::<usize>()
    }

    /// Writes the advertisement and its checksum under `pseudo`; at most 255 addresses are written, each
    /// as its own family (the caller gives addresses of the pseudo-header's family).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Packet<T>,
        pseudo: &PseudoHeader,
    ) {
        let count = self.addresses.len().min(255);
        packet.set_version_type(VERSION, TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        packet.set_count(count as u8);
        packet.set_interval_cs(self.interval_cs);
        packet.set_checksum(0);
        let mut at = 0;
        for a in &self.addresses[..count] {
            let bytes = packet.addresses_mut();
            match a {
                IpAddr::V4(v4) => {
                    bytes[at..at + 4].copy_from_slice(&v4.octets());
                    at += 4;
                }
                IpAddr::V6(v6) => {
                    bytes[at..at + 16].copy_from_slice(&v6.octets());
                    at += 16;
                }
            }
        }
        let len = HEADER_LEN + at;
        let sum = pseudo.checksum(PROTOCOL, &packet.buffer.as_ref()[..len]);
        packet.set_checksum(sum);
    }
}

impl fmt::Display for VrrpRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VRRPv3, Advertisement, vrid {}, prio {}, intvl {}cs, addrs({}):",
            self.vrid,
            self.priority,
            self.interval_cs,
            self.addresses.len()
        )?;
        for (i, a) in self.addresses.iter().enumerate() {
            write!(f, "{}{a}", if i == 0 { " " } else { "," })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);

    fn pseudo() -> PseudoHeader {
        PseudoHeader::V4 {
            src: SRC,
            dst: GROUP_V4,
        }
    }

    /// Worked by hand from RFC 5798 section 5.2: version 3 type 1, VRID 7, priority 100, one address,
    /// interval 100 cs, then 198.18.1.254. The checksum covers the IPv4 pseudo-header (198.18.1.2,
    /// 224.0.0.18, protocol 112, length 12) and the message: words c612 0102 e000 0012 0070 000c 3107 6401
    /// 0064 c612 01fe sum to 0x3051e, 0x0521 after the carry, whose complement is 0xfade.
    const GOLDEN: [u8; 12] = [
        0x31, 0x07, 0x64, 0x01, 0x00, 0x64, 0xfa, 0xde, 198, 18, 1, 254,
    ];

    fn golden_repr() -> VrrpRepr {
        VrrpRepr {
            vrid: 7,
            priority: 100,
            interval_cs: 100,
            addresses: vec![IpAddr::V4(Ipv4Addr::new(198, 18, 1, 254))],
        }
    }

    #[test]
    fn the_golden_advertisement_parses_and_emits_byte_for_byte() {
        let packet = Packet::new_checked(&GOLDEN[..]).expect("long enough");
        assert_eq!(VrrpRepr::parse(&packet, &pseudo()), Ok(golden_repr()));
        let repr = golden_repr();
        let mut bytes = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]), &pseudo());
        assert_eq!(bytes, GOLDEN);
        assert_eq!(
            repr.to_string(),
            "VRRPv3, Advertisement, vrid 7, prio 100, intvl 100cs, addrs(1): 198.18.1.254"
        );
    }

    #[test]
    fn ipv6_advertisements_carry_sixteen_byte_addresses_under_their_pseudo_header() {
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
        let pseudo = PseudoHeader::V6 { src, dst: GROUP_V6 };
        let repr = VrrpRepr {
            vrid: 9,
            priority: 255,
            interval_cs: 4095,
            addresses: vec![
                IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            ],
        };
        let mut bytes = vec![0u8; repr.buffer_len()];
        assert_eq!(bytes.len(), 40);
        repr.emit(&mut Packet::new_unchecked(&mut bytes[..]), &pseudo);
        let packet = Packet::new_checked(&bytes[..]).unwrap();
        assert_eq!(VrrpRepr::parse(&packet, &pseudo), Ok(repr));
        // The same bytes under the IPv4 pseudo-header: the count does not match the length.
        assert!(matches!(
            VrrpRepr::parse(
                &packet,
                &PseudoHeader::V4 {
                    src: SRC,
                    dst: GROUP_V4
                }
            ),
            Err(Error::BadLength { .. })
        ));
    }

    #[test]
    fn bad_advertisements_are_refused_by_reason() {
        let check =
            |bytes: &[u8]| Packet::new_checked(bytes).and_then(|p| VrrpRepr::parse(&p, &pseudo()));
        assert!(matches!(
            check(&GOLDEN[..7]),
            Err(Error::Truncated {
                header: Header::Vrrp,
                ..
            })
        ));
        let mut v2 = GOLDEN;
        v2[0] = 0x21;
        assert!(matches!(
            check(&v2),
            Err(Error::BadVersion { version: 2, .. })
        ));
        let mut other_type = GOLDEN;
        other_type[0] = 0x32;
        assert!(matches!(
            check(&other_type),
            Err(Error::WrongMessage { msg_type: 2, .. })
        ));
        let mut two = GOLDEN;
        two[3] = 2;
        assert!(matches!(check(&two), Err(Error::BadLength { .. })));
        let mut trailing = GOLDEN.to_vec();
        trailing.extend_from_slice(&[0; 4]);
        assert!(matches!(check(&trailing), Err(Error::BadLength { .. })));
        let mut flipped = GOLDEN;
        flipped[2] = 101;
        assert_eq!(check(&flipped), Err(Error::BadChecksum(Header::Vrrp)));
        // Another source address: the pseudo-header differs, so does the sum.
        let other = PseudoHeader::V4 {
            src: Ipv4Addr::new(198, 18, 1, 3),
            dst: GROUP_V4,
        };
        assert_eq!(
            VrrpRepr::parse(&Packet::new_checked(&GOLDEN[..]).unwrap(), &other),
            Err(Error::BadChecksum(Header::Vrrp))
        );
    }

    #[test]
    fn virtual_macs_follow_the_rfc() {
        assert_eq!(virtual_mac(false, 7).0, [0, 0, 0x5e, 0, 1, 7]);
        assert_eq!(virtual_mac(true, 255).0, [0, 0, 0x5e, 0, 2, 255]);
    }

    #[test]
    fn the_reserved_bits_are_ignored_on_read_and_cleared_on_write() {
        let mut bytes = GOLDEN;
        bytes[4] |= 0xf0;
        let p = Packet::new_unchecked(&bytes[..]);
        assert_eq!((p.reserved(), p.interval_cs()), (0xf, 100));
        let mut out = [0u8; HEADER_LEN];
        let mut p = Packet::new_unchecked(&mut out[..]);
        p.set_interval_cs(0xffff);
        assert_eq!((p.reserved(), p.interval_cs()), (0, MAX_INTERVAL_CS));
    }
}
