//! What IPv4 and IPv6 share: protocol numbers (the IANA "Assigned Internet Protocol Numbers" registry,
//! which both the IPv4 protocol field and the IPv6 next-header field draw from) and pf's 16-byte address
//! layout. The headers themselves live in [`super::ipv4`] and [`super::ipv6`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IP protocol and IPv6 next-header numbers. The upper-layer ones are the profile's own
/// ([`tandem_config::proto`]), so that a rule and a packet always compare the same number.
pub mod protocol {
    pub use tandem_config::proto::{ICMP, ICMPV6, TCP, UDP};

    /// IPv6 hop-by-hop options (RFC 8200 section 4.3).
    pub const HOP_BY_HOP: u8 = 0;
    /// IPv6 routing header (RFC 8200 section 4.4).
    pub const IPV6_ROUTING: u8 = 43;
    /// IPv6 fragment header (RFC 8200 section 4.5).
    pub const IPV6_FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (RFC 4303).
    pub const ESP: u8 = 50;
    /// Authentication Header (RFC 4302).
    pub const AH: u8 = 51;
    /// IPv6 "no next header" (RFC 8200 section 4.7).
    pub const IPV6_NO_NEXT: u8 = 59;
    /// IPv6 destination options (RFC 8200 section 4.6).
    pub const IPV6_DEST_OPTS: u8 = 60;
}

/// The short name tcpdump prints for a protocol number, if it has one.
pub fn protocol_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        protocol::ICMP => "ICMP",
        protocol::TCP => "TCP",
        protocol::UDP => "UDP",
        protocol::ICMPV6 => "ICMP6",
        protocol::ESP => "ESP",
        protocol::AH => "AH",
        protocol::IPV6_NO_NEXT => "no next header",
        _ => return None,
    })
}

/// An address in pf's layout: IPv4 in bytes 0..4 (network order) and zeros after, IPv6 as it is.
pub fn pf_addr(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => pf_addr_v4(v4.octets()),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// An IPv4 address's octets in pf's layout.
#[inline]
pub fn pf_addr_v4(octets: [u8; 4]) -> [u8; 16] {
    let mut addr = [0u8; 16];
    addr[..4].copy_from_slice(&octets);
    addr
}

/// The IPv4 address held in a pf-layout address.
pub fn ipv4_of_pf(addr: &[u8; 16]) -> Ipv4Addr {
    Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])
}

/// The IPv6 address held in a pf-layout address.
pub fn ipv6_of_pf(addr: &[u8; 16]) -> Ipv6Addr {
    Ipv6Addr::from(*addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pf_layout_puts_ipv4_first_and_zeroes_the_rest() {
        let addr = pf_addr(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(addr, [192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(ipv4_of_pf(&addr), Ipv4Addr::new(192, 0, 2, 1));
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(ipv6_of_pf(&pf_addr(IpAddr::V6(v6))), v6);
    }
}
