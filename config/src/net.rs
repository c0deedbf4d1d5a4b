//! Network values that appear in profiles: address families, prefixes, interface addresses, port ranges and
//! MAC addresses, each parsed strictly from the text an operator writes.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use crate::decode::{Decode, Decoder, Node, parsed};

/// An IP address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
}

impl Family {
    /// The family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }

    /// The longest prefix length in this family.
    pub fn max_len(self) -> u8 {
        match self {
            Family::Inet => 32,
            Family::Inet6 => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::Inet => "inet",
            Family::Inet6 => "inet6",
        })
    }
}

impl Decode for Family {
    fn decode(node: &Node<'_>, d: &mut Decoder) -> Option<Self> {
        match node.as_str() {
            Some("inet" | "ipv4") => Some(Family::Inet),
            Some("inet6" | "ipv6") => Some(Family::Inet6),
            _ => {
                d.error(&node.path, "expected an address family: `inet` or `inet6`");
                None
            }
        }
    }
}

/// The address as a 128-bit number, IPv4 in the low 32 bits.
fn bits(addr: &IpAddr) -> u128 {
    match addr {
        IpAddr::V4(v4) => u128::from(u32::from(*v4)),
        IpAddr::V6(v6) => u128::from(*v6),
    }
}

/// The mask of a prefix of `len` bits in a family whose addresses have `width` bits.
fn mask(len: u8, width: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let all = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        all & !((1u128 << (width - len)) - 1)
    }
}

/// Splits `a.b.c.d/len`; a bare address has the full length.
fn split_prefix(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr_text, len_text) = match text.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (text, None),
    };
    let addr: IpAddr = addr_text
        .parse()
        .map_err(|_| format!("`{addr_text}` is not an IP address"))?;
    let max = Family::of(&addr).max_len();
    let len = match len_text {
        None => max,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("prefix length must be 0 to {max}"))?,
    };
    Ok((addr, len))
}

/// A network prefix such as `10.0.0.0/8`, with no host bits set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Prefix {
    /// The network address.
    pub addr: IpAddr,
    /// The prefix length in bits.
    pub len: u8,
}

impl Prefix {
    /// The prefix's family.
    pub fn family(&self) -> Family {
        Family::of(&self.addr)
    }

    /// Whether `addr` lies inside this prefix (always false across families).
    pub fn contains(&self, addr: &IpAddr) -> bool {
        if Family::of(addr) != self.family() {
            return false;
        }
        let width = self.family().max_len();
        bits(addr) & mask(self.len, width) == bits(&self.addr)
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Prefix) -> bool {
        self.contains(&other.addr) || other.contains(&self.addr)
    }
}

impl FromStr for Prefix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (addr, len) = split_prefix(text)?;
        let width = Family::of(&addr).max_len();
        let network = bits(&addr) & mask(len, width);
        if network != bits(&addr) {
            let net = match addr {
                IpAddr::V4(_) => IpAddr::V4((network as u32).into()),
                IpAddr::V6(_) => IpAddr::V6(network.into()),
            };
            return Err(format!("host bits are set (did you mean {net}/{len}?)"));
        }
        Ok(Prefix { addr, len })
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Decode for Prefix {
    fn decode(node: &Node<'_>, d: &mut Decoder) -> Option<Self> {
        parsed(node, d, "CIDR")
    }
}

/// An address assigned to a port, with the length of its connected subnet, such as `198.18.0.1/24`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InterfaceAddress {
    /// The port's own address.
    pub addr: IpAddr,
    /// Length of the connected subnet.
    pub len: u8,
}

impl InterfaceAddress {
    /// The connected subnet.
    pub fn network(&self) -> Prefix {
        let width = Family::of(&self.addr).max_len();
        let network = bits(&self.addr) & mask(self.len, width);
        let addr = match self.addr {
            IpAddr::V4(_) => IpAddr::V4((network as u32).into()),
            IpAddr::V6(_) => IpAddr::V6(network.into()),
        };
        Prefix {
            addr,
            len: self.len,
        }
    }
}

impl FromStr for InterfaceAddress {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if !text.contains('/') {
            return Err("give the subnet length too, as in 198.18.0.1/24".to_string());
        }
        let (addr, len) = split_prefix(text)?;
        Ok(InterfaceAddress { addr, len })
    }
}

impl fmt::Display for InterfaceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl Decode for InterfaceAddress {
    fn decode(node: &Node<'_>, d: &mut Decoder) -> Option<Self> {
        parsed(node, d, "interface address")
    }
}

impl Decode for IpAddr {
    fn decode(node: &Node<'_>, d: &mut Decoder) -> Option<Self> {
        parsed(node, d, "IP address")
    }
}

impl Decode for std::net::SocketAddr {
    fn decode(node: &Node<'_>, d: &mut Decoder) -> Option<Self> {
        parsed(node, d, "socket address (address:port)")
    }
}

/// An inclusive range of TCP or UDP ports, written `80` or `1024-65535`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First port of the range.
    pub lo: u16,
    /// Last port of the range.
    pub hi: u16,
}

impl PortRange {
    /// Whether `port` is inside the range.
    pub fn contains(&self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let port = |t: &str| {
            t.trim()
                .parse::<u16>()
                .map_err(|_| format!("`{t}` is not a port number (0-65535)"))
        };
        match text.split_once('-') {
            None => port(text).map(|p| PortRange { lo: p, hi: p }),
            Some((lo, hi)) => {
                let (lo, hi) = (port(lo)?, port(hi)?);
                if lo > hi {
                    Err(format!(
                        "range {lo}-{hi} is out of order (did you mean {hi}-{lo}?)"
                    ))
                } else {
                    Ok(PortRange { lo, hi })
                }
            }
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl Decode for PortRange {
    fn decode(node: &Node<'_>, d: &mut Decoder) -> Option<Self> {
        parsed(node, d, "port range")
    }
}

/// An Ethernet MAC address written `02:00:5e:00:01:01`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl FromStr for MacAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut bytes = [0u8; 6];
        let mut parts = text.split(':');
        for byte in bytes.iter_mut() {
            let part = parts
                .next()
                .ok_or("expected six bytes such as 02:00:00:00:00:01")?;
            *byte =
                u8::from_str_radix(part, 16).map_err(|_| format!("`{part}` is not a hex byte"))?;
        }
        if parts.next().is_some() {
            return Err("expected six bytes such as 02:00:00:00:00:01".to_string());
        }
        Ok(MacAddr(bytes))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl Decode for MacAddr {
    fn decode(node: &Node<'_>, d: &mut Decoder) -> Option<Self> {
        parsed(node, d, "MAC address")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_reject_host_bits_and_long_lengths() {
        assert_eq!("10.0.0.0/8".parse::<Prefix>().map(|p| p.len), Ok(8));
        assert_eq!("10.1.2.3".parse::<Prefix>().map(|p| p.len), Ok(32));
        assert_eq!("2001:db8::/32".parse::<Prefix>().map(|p| p.len), Ok(32));
        assert_eq!(
            "10.0.0.1/8".parse::<Prefix>(),
            Err("host bits are set (did you mean 10.0.0.0/8?)".to_string())
        );
        assert_eq!(
            "10.0.0.0/33".parse::<Prefix>(),
            Err("prefix length must be 0 to 32".to_string())
        );
        assert!("10.0.0/8".parse::<Prefix>().is_err());
        assert!("0.0.0.0/0".parse::<Prefix>().is_ok());
    }

    #[test]
    fn prefix_contains_only_its_own_family() {
        let net: Prefix = "198.18.0.0/15".parse().expect("valid");
        assert!(net.contains(&"198.19.255.1".parse().expect("valid")));
        assert!(!net.contains(&"198.20.0.1".parse().expect("valid")));
        assert!(!net.contains(&"::ffff:198.18.0.1".parse().expect("valid")));
        let all6: Prefix = "::/0".parse().expect("valid");
        assert!(all6.contains(&"2001:db8::1".parse().expect("valid")));
    }

    #[test]
    fn interface_addresses_keep_host_bits_and_give_their_network() {
        let a: InterfaceAddress = "198.18.0.1/24".parse().expect("valid");
        assert_eq!(a.network().to_string(), "198.18.0.0/24");
        assert!("198.18.0.1".parse::<InterfaceAddress>().is_err());
    }

    #[test]
    fn port_ranges_must_be_in_order() {
        assert_eq!("80".parse::<PortRange>(), Ok(PortRange { lo: 80, hi: 80 }));
        assert_eq!(
            "1024-65535".parse::<PortRange>(),
            Ok(PortRange {
                lo: 1024,
                hi: 65535
            })
        );
        assert_eq!(
            "8080-80".parse::<PortRange>(),
            Err("range 8080-80 is out of order (did you mean 80-8080?)".to_string())
        );
        assert!("70000".parse::<PortRange>().is_err());
    }

    #[test]
    fn mac_addresses_have_six_hex_bytes() {
        assert_eq!(
            "02:00:5e:00:01:0a".parse::<MacAddr>(),
            Ok(MacAddr([2, 0, 0x5e, 0, 1, 10]))
        );
        assert!("02:00:5e:00:01".parse::<MacAddr>().is_err());
        assert!("02:00:5e:00:01:0a:0b".parse::<MacAddr>().is_err());
        assert!("zz:00:5e:00:01:0a".parse::<MacAddr>().is_err());
    }
}
