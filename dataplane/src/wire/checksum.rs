//! The Internet checksum (RFC 1071): the one's-complement sum over 16-bit words, the IPv4 and IPv6
//! pseudo-headers that TCP, UDP and ICMPv6 include in theirs, and the RFC 1624 incremental update that
//! lets the forwarder change one word (the TTL) without summing the header again. Which checksums
//! software must verify on receive is a [`ChecksumCaps`] parameter, because the NIC often has done it.
//! Where each checksum field lives is the business of the header modules, not this one.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Which checksums software verifies on receive. The worker may build one per packet from the NIC's
/// verdict (DPDK's `RTE_MBUF_F_RX_IP_CKSUM_GOOD` means no software check is needed; `UNKNOWN` means it is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChecksumCaps {
    /// Verify the IPv4 header checksum in software.
    pub verify_ipv4_header: bool,
}

impl ChecksumCaps {
    /// Software verifies everything it is asked to.
    pub const SOFTWARE: ChecksumCaps = ChecksumCaps {
        verify_ipv4_header: true,
    };
    /// The NIC has verified the checksums; software trusts it.
    pub const OFFLOADED: ChecksumCaps = ChecksumCaps {
        verify_ipv4_header: false,
    };
}

impl Default for ChecksumCaps {
    /// Verifying is the safe default.
    fn default() -> Self {
        ChecksumCaps::SOFTWARE
    }
}

/// Folds a wide one's-complement accumulator to 16 bits (end-around carry).
#[inline]
fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The one's-complement sum of `data` taken as big-endian 16-bit words, an odd last byte padded with a
/// zero byte (RFC 1071 section 4.1). Not inverted: combine it with [`combine`], invert with `!`.
pub fn sum(data: &[u8]) -> u16 {
    // Summing 32-bit words into a 64-bit accumulator and folding once at the end gives the same result as
    // 16-bit words, because 2^16 is 1 modulo 2^16 - 1 (RFC 1071 section 2, "parallel summation").
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_be_bytes(tail));
    fold(acc)
}

/// The one's-complement sum of partial sums.
pub fn combine(sums: &[u16]) -> u16 {
    fold(sums.iter().map(|&s| u64::from(s)).sum())
}

/// The checksum field value for `data` whose checksum field is zero: the inverted sum.
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// RFC 1624 equation 3: the new checksum after one 16-bit word of the covered data changes from `old` to
/// `new`, `HC' = ~(~HC + ~m + m')`. Equation 3 rather than 2 because 2 can yield 0xffff where a full
/// recomputation gives 0x0000 (RFC 1624 section 3).
pub fn update(checksum: u16, old: u16, new: u16) -> u16 {
    !combine(&[!checksum, !old, new])
}

/// The addresses of the pseudo-header that TCP, UDP and ICMPv6 checksums cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PseudoHeader {
    /// IPv4 (RFC 9293 section 3.1, RFC 768).
    V4 {
        /// Source address.
        src: Ipv4Addr,
        /// Destination address.
        dst: Ipv4Addr,
    },
    /// IPv6 (RFC 8200 section 8.1).
    V6 {
        /// Source address.
        src: Ipv6Addr,
        /// Destination address; the final one when a routing header is present.
        dst: Ipv6Addr,
    },
}

impl PseudoHeader {
    /// The sum of the pseudo-header for an upper-layer packet of protocol `proto` and `len` bytes.
    pub fn sum(&self, proto: u8, len: u32) -> u16 {
        match self {
            PseudoHeader::V4 { src, dst } => {
                // Zero byte, protocol, 16-bit length: the IPv4 pseudo-header's last word pair. The length is
                // a 16-bit field there; IPv4 cannot carry more.
                let mut bytes = [0u8; 12];
                bytes[..4].copy_from_slice(&src.octets());
                bytes[4..8].copy_from_slice(&dst.octets());
                bytes[9] = proto;
                bytes[10..12].copy_from_slice(&(len as u16).to_be_bytes());
                sum(&bytes)
            }
            PseudoHeader::V6 { src, dst } => {
                // RFC 8200 section 8.1: 32-bit upper-layer length, three zero bytes, next header.
                let mut bytes = [0u8; 40];
                bytes[..16].copy_from_slice(&src.octets());
                bytes[16..32].copy_from_slice(&dst.octets());
                bytes[32..36].copy_from_slice(&len.to_be_bytes());
                bytes[39] = proto;
                sum(&bytes)
            }
        }
    }

    /// Whether `segment` (checksum field included) of protocol `proto` verifies under this pseudo-header.
    pub fn verify(&self, proto: u8, segment: &[u8]) -> bool {
        combine(&[self.sum(proto, segment.len() as u32), sum(segment)]) == 0xffff
    }

    /// The checksum field value for `segment`, whose checksum field must be zero.
    pub fn checksum(&self, proto: u8, segment: &[u8]) -> u16 {
        !combine(&[self.sum(proto, segment.len() as u32), sum(segment)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc_1071_worked_example_sums_to_ddf2() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2.
        assert_eq!(
            sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn an_odd_last_byte_is_padded_with_zero() {
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(sum(&[0xff]), 0xff00);
    }

    /// A TCP SYN captured from Linux on a veth with checksum offload off (10.0.0.1:35726 -> 10.0.0.2:80),
    /// with the checksum the kernel computed in software and Wireshark verified: 0xac1e.
    #[test]
    fn a_captured_tcp_syn_verifies_with_its_ipv4_pseudo_header() {
        let segment: [u8; 40] = [
            0x8b, 0x8e, // source port 35726
            0x00, 0x50, // destination port 80
            0x9f, 0xe5, 0xa0, 0x59, // sequence number
            0x00, 0x00, 0x00, 0x00, // acknowledgement number
            0xa0, 0x02, // data offset 10 words, SYN
            0xfa, 0xf0, // window 64240
            0xac, 0x1e, // checksum
            0x00, 0x00, // urgent pointer
            0x02, 0x04, 0x05, 0xb4, // MSS 1460
            0x04, 0x02, // SACK permitted
            0x08, 0x0a, 0x43, 0xa9, 0x7d, 0x24, 0x00, 0x00, 0x00, 0x00, // timestamps
            0x01, // NOP
            0x03, 0x03, 0x0a, // window scale 10
        ];
        let pseudo = PseudoHeader::V4 {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
        };
        assert!(pseudo.verify(6, &segment));
        let mut zeroed = segment;
        zeroed[16..18].fill(0);
        assert_eq!(pseudo.checksum(6, &zeroed), 0xac1e);
        let mut flipped = segment;
        flipped[4] ^= 1;
        assert!(!pseudo.verify(6, &flipped));
    }

    /// The worked example of Wikipedia's "IPv4 header checksum" article: 4500 0073 0000 4000 4011 *b861*
    /// c0a8 0001 c0a8 00c7.
    #[test]
    fn a_known_ipv4_header_checksum_is_b861() {
        let mut header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&header), 0xb861);
        header[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(sum(&header), 0xffff);
    }

    #[test]
    fn the_ipv6_pseudo_header_uses_a_32_bit_length_and_the_next_header_last() {
        let src: Ipv6Addr = "fe80::1".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1".parse().unwrap();
        let manual = combine(&[
            sum(&src.octets()),
            sum(&dst.octets()),
            sum(&70_000u32.to_be_bytes()),
            58,
        ]);
        assert_eq!(PseudoHeader::V6 { src, dst }.sum(58, 70_000), manual);
    }

    proptest! {
        #[test]
        fn incremental_update_matches_a_full_recomputation(
            mut header in prop::collection::vec(any::<u8>(), 20),
            word in 0usize..10,
            new in any::<u16>(),
        ) {
            // A valid IPv4 header's first byte is 0x45..0x4f, which keeps the sum away from zero, the one
            // case where equation 3 and a recomputation may pick different zeros.
            header[0] = 0x45;
            prop_assume!(word != 5 && word != 0);
            header[10..12].fill(0);
            let before = checksum(&header);
            let at = word * 2;
            let old = u16::from_be_bytes([header[at], header[at + 1]]);
            header[at..at + 2].copy_from_slice(&new.to_be_bytes());
            prop_assert_eq!(update(before, old, new), checksum(&header));
        }

        #[test]
        fn wide_summation_equals_word_by_word_summation(data in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut acc: u32 = 0;
            for pair in data.chunks(2) {
                let word = u32::from(pair[0]) << 8 | u32::from(pair.get(1).copied().unwrap_or(0));
                acc += word;
                acc = (acc & 0xffff) + (acc >> 16);
            }
            prop_assert_eq!(sum(&data), acc as u16);
        }
    }
}
