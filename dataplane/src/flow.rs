//! Flow keys and flow placement.
//!
//! A [`FlowKey`] names a connection the same way whichever direction a packet travels: its two endpoints
//! are stored in a fixed order (the lower address-and-port first), and each packet learns which endpoint
//! sent it. [`rss_hash`] is the symmetric Toeplitz hash NICs compute with the repeated `0x6d5a` key, and
//! a [`Placement`] turns it into a worker the way the NIC's redirection table does (the NIC's table is
//! programmed from it); software dispatch, the sync core and the workers use the same placement to bring a
//! packet, a peer's state and an ICMP error about the flow to the worker that owns it.

use tandem_config::Family;

use crate::wire::meta::{IcmpKind, IcmpMeta, L4, PacketMeta, QuotedL4};

/// An IP address in pf's layout: IPv4 in the first four bytes (network order), the rest zero.
pub type Addr = [u8; 16];

/// One end of a flow. Ordered by address (as a big-endian number, which is byte order), then port.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint {
    /// Address, pf layout.
    pub addr: Addr,
    /// Port for TCP and UDP, the echo id for ICMP echo, 0 otherwise.
    pub port: u16,
}

impl Endpoint {
    /// The address as one number: comparing two of these is two word compares, not sixteen byte compares.
    #[inline]
    fn number(&self) -> u128 {
        u128::from_be_bytes(self.addr)
    }
}

impl PartialEq for Endpoint {
    #[inline]
    fn eq(&self, other: &Endpoint) -> bool {
        self.number() == other.number() && self.port == other.port
    }
}

impl Eq for Endpoint {}

impl std::hash::Hash for Endpoint {
    // Hashes exactly what `eq` compares, so equal endpoints hash alike.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.addr.hash(state);
        self.port.hash(state);
    }
}

impl PartialOrd for Endpoint {
    #[inline]
    fn partial_cmp(&self, other: &Endpoint) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Endpoint {
    #[inline]
    fn cmp(&self, other: &Endpoint) -> std::cmp::Ordering {
        (self.number(), self.port).cmp(&(other.number(), other.port))
    }
}

/// A connection's name, the same for both directions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// The two endpoints, lower first.
    pub ends: [Endpoint; 2],
    /// IP protocol.
    pub proto: u8,
    /// Address family.
    pub family: Family,
}

impl FlowKey {
    /// The key of a packet between two (address, port) pairs, from the first to the second; see
    /// [`FlowKey::of_packet`].
    #[inline]
    pub fn between(
        family: Family,
        proto: u8,
        src: (Addr, u16),
        dst: (Addr, u16),
    ) -> (FlowKey, bool) {
        let end = |(addr, port)| Endpoint { addr, port };
        FlowKey::of_packet(family, proto, end(src), end(dst))
    }

    /// The key of a packet from `src` to `dst`, and whether `src` is the key's first (lower) endpoint.
    #[inline]
    pub fn of_packet(family: Family, proto: u8, src: Endpoint, dst: Endpoint) -> (FlowKey, bool) {
        let src_first = src <= dst;
        let ends = if src_first { [src, dst] } else { [dst, src] };
        (
            FlowKey {
                ends,
                proto,
                family,
            },
            src_first,
        )
    }

    /// A 64-bit hash for the state table (not the RSS hash): five folded multiplies over the key's words.
    #[inline]
    pub fn table_hash(&self) -> u64 {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let word = |b: &[u8; 16], half: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[half * 8..half * 8 + 8]);
            u64::from_le_bytes(w)
        };
        let tail = u64::from(self.ends[0].port)
            | u64::from(self.ends[1].port) << 16
            | u64::from(self.proto) << 32
            | u64::from(self.family == Family::Inet6) << 40;
        let mut h = K;
        for w in [
            word(&self.ends[0].addr, 0),
            word(&self.ends[0].addr, 1),
            word(&self.ends[1].addr, 0),
            word(&self.ends[1].addr, 1),
            tail,
        ] {
            h = folded_multiply(h ^ w, K);
        }
        h
    }
}

#[inline]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

/// Contribution of each byte value to the Toeplitz hash, for even and odd byte positions. With a key that
/// repeats every 16 bits, the 32-bit key window a byte selects depends only on its position modulo 2.
const TOEPLITZ: [[u32; 256]; 2] = toeplitz_tables();

/// The 40-byte symmetric key as a bit string: `0x6d5a` repeated.
const fn key_window(bit: usize) -> u32 {
    // The 32-bit window starting at `bit` of the infinitely repeated 16-bit word 0x6d5a.
    let pattern: u64 = 0x6d5a_6d5a_6d5a_6d5a;
    let shift = bit % 16;
    ((pattern << shift) >> 32) as u32
}

const fn toeplitz_tables() -> [[u32; 256]; 2] {
    let mut tables = [[0u32; 256]; 2];
    let mut parity = 0;
    while parity < 2 {
        let mut value = 0;
        while value < 256 {
            let mut acc = 0u32;
            let mut bit = 0;
            while bit < 8 {
                if value & (0x80 >> bit) != 0 {
                    acc ^= key_window(parity * 8 + bit);
                }
                bit += 1;
            }
            tables[parity][value] = acc;
            value += 1;
        }
        parity += 1;
    }
    tables
}

fn toeplitz(input: &[u8]) -> u32 {
    input
        .iter()
        .enumerate()
        .fold(0, |h, (i, b)| h ^ TOEPLITZ[i & 1][usize::from(*b)])
}

/// The symmetric RSS hash of a packet, as a NIC with the `0x6d5a` key computes it: over source and
/// destination address and, for TCP and UDP that are not fragments, source and destination port. Swapping
/// source and destination gives the same hash.
pub fn rss_hash(family: Family, src: &Addr, dst: &Addr, ports: Option<(u16, u16)>) -> u32 {
    let mut input = [0u8; 36];
    let alen = if family == Family::Inet { 4 } else { 16 };
    input[..alen].copy_from_slice(&src[..alen]);
    input[alen..2 * alen].copy_from_slice(&dst[..alen]);
    let mut len = 2 * alen;
    if let Some((sport, dport)) = ports {
        input[len..len + 2].copy_from_slice(&sport.to_be_bytes());
        input[len + 2..len + 4].copy_from_slice(&dport.to_be_bytes());
        len += 4;
    }
    toeplitz(&input[..len])
}

/// The RSS hash of a flow key (ports used for TCP and UDP).
pub fn rss_hash_of_key(key: &FlowKey) -> u32 {
    let ports = matches!(key.proto, 6 | 17).then_some((key.ends[0].port, key.ends[1].port));
    rss_hash(key.family, &key.ends[0].addr, &key.ends[1].addr, ports)
}

/// Which worker holds each flow's state: the flow's symmetric RSS hash through a redirection table of
/// `reta_size` entries filled round-robin over the workers, `(hash % reta_size) % workers`. The NICs' own
/// tables are programmed from it (entry `i` of a table of any multiple of `reta_size` entries is
/// [`Placement::reta_entry`]), software dispatch computes it for ports without RSS, the sync core places
/// peers' states with it, and a worker redirects an ICMP error to the worker it names for the quoted
/// flow: one function, so that a state and every packet that needs it meet on one worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Entries of the common redirection table: the smallest of the NICs' tables, or
    /// [`Placement::SOFTWARE_RETA`] without RSS.
    pub reta_size: u32,
    /// Workers.
    pub workers: usize,
}

impl Placement {
    /// The table size software dispatch uses where no NIC table sets it (DPDK's common RETA size).
    pub const SOFTWARE_RETA: u32 = 512;

    /// One worker: everything is its own.
    pub const SINGLE: Placement = Placement {
        reta_size: Placement::SOFTWARE_RETA,
        workers: 1,
    };

    /// The placement for `workers` workers and ports whose NICs' redirection tables have `nic_sizes`
    /// entries: the common table is the smallest (every size DPDK reports is a multiple of 64, and sizes
    /// that are not multiples of it cannot share one placement; see [`Placement::fits`]).
    pub fn new(workers: usize, nic_sizes: impl IntoIterator<Item = u32>) -> Placement {
        let reta_size = nic_sizes
            .into_iter()
            .filter(|&s| s > 0)
            .min()
            .unwrap_or(Placement::SOFTWARE_RETA);
        Placement {
            reta_size,
            workers: workers.max(1),
        }
    }

    /// Whether a NIC table of `size` entries can carry this placement (its size is a multiple of the
    /// common one); a port whose table cannot falls back to software dispatch.
    pub fn fits(&self, size: u32) -> bool {
        size > 0 && size.is_multiple_of(self.reta_size)
    }

    /// The worker (queue) for entry `entry` of a NIC table whose size [`Placement::fits`].
    pub fn reta_entry(&self, entry: u32) -> u16 {
        ((entry % self.reta_size) as usize % self.workers) as u16
    }

    /// The worker a hash selects.
    #[inline]
    pub fn worker_of_hash(&self, hash: u32) -> usize {
        (hash % self.reta_size.max(1)) as usize % self.workers
    }

    /// The worker holding the state of `key`.
    pub fn worker_of_key(&self, key: &FlowKey) -> usize {
        self.worker_of_hash(rss_hash_of_key(key))
    }

    /// The worker whose shard holds the state a classified packet needs: its own flow's, or, for an ICMP
    /// error, the flow of the packet it quotes (a NIC hashes the error's outer addresses, which name
    /// another flow). Non-IP frames belong to worker 0.
    pub fn owner_of_packet(&self, m: &PacketMeta) -> usize {
        let Some(family) = m.family() else { return 0 };
        let hash = match m.l4 {
            L4::Tcp(t) => rss_hash(family, &m.src, &m.dst, Some((t.src_port, t.dst_port))),
            L4::Udp(u) => rss_hash(family, &m.src, &m.dst, Some((u.src_port, u.dst_port))),
            L4::Icmp(IcmpMeta {
                kind: IcmpKind::Error(q),
                ..
            }) => {
                let ports = match q.l4 {
                    QuotedL4::Tcp {
                        src_port, dst_port, ..
                    }
                    | QuotedL4::Udp { src_port, dst_port } => Some((src_port, dst_port)),
                    _ => None,
                };
                rss_hash(q.family, &q.src, &q.dst, ports)
            }
            _ => rss_hash(family, &m.src, &m.dst, None),
        };
        self.worker_of_hash(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(a: [u8; 4]) -> Addr {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&a);
        addr
    }

    /// The straightforward bit-by-bit Toeplitz hash over an explicit 40-byte key, as in Microsoft's RSS
    /// specification, to check the table-driven one against.
    fn toeplitz_reference(key: &[u8; 40], input: &[u8]) -> u32 {
        let mut result = 0u32;
        let mut window = u32::from_be_bytes([key[0], key[1], key[2], key[3]]);
        for (i, byte) in input.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    result ^= window;
                }
                let next_bit_index = 32 + i * 8 + bit;
                let next = (key[next_bit_index / 8] >> (7 - next_bit_index % 8)) & 1;
                window = (window << 1) | u32::from(next);
            }
        }
        result
    }

    #[test]
    fn the_table_driven_hash_matches_the_bitwise_definition() {
        let mut key = [0u8; 40];
        for pair in key.chunks_mut(2) {
            pair.copy_from_slice(&[0x6d, 0x5a]);
        }
        let input: Vec<u8> = (0..36u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect();
        for len in [8, 12, 32, 36] {
            assert_eq!(
                toeplitz(&input[..len]),
                toeplitz_reference(&key, &input[..len])
            );
        }
    }

    #[test]
    fn the_hash_is_the_same_in_both_directions() {
        let (a, b) = (v4([198, 18, 0, 10]), v4([198, 19, 7, 1]));
        let forward = rss_hash(Family::Inet, &a, &b, Some((40000, 443)));
        assert_eq!(forward, rss_hash(Family::Inet, &b, &a, Some((443, 40000))));
        assert_ne!(forward, rss_hash(Family::Inet, &a, &b, Some((40001, 443))));
    }

    #[test]
    fn keys_do_not_depend_on_direction() {
        let a = Endpoint {
            addr: v4([10, 0, 0, 1]),
            port: 1234,
        };
        let b = Endpoint {
            addr: v4([10, 0, 0, 2]),
            port: 80,
        };
        let (k1, first1) = FlowKey::of_packet(Family::Inet, 6, a, b);
        let (k2, first2) = FlowKey::of_packet(Family::Inet, 6, b, a);
        assert_eq!(k1, k2);
        assert_ne!(first1, first2);
        assert_eq!(k1.table_hash(), k2.table_hash());
    }

    #[test]
    fn nic_tables_of_any_multiple_of_the_common_size_place_like_it() {
        for workers in [1, 2, 3, 5] {
            let p = Placement::new(workers, [512, 128]);
            assert_eq!(p.reta_size, 128);
            assert!(p.fits(512) && p.fits(128) && !p.fits(192 + 1));
            for size in [128u32, 512] {
                for hash in (0..5000u32).map(|h| h.wrapping_mul(2_654_435_761)) {
                    let nic = p.reta_entry(hash % size);
                    assert_eq!(usize::from(nic), p.worker_of_hash(hash), "size {size}");
                }
            }
        }
        assert_eq!(Placement::new(3, []).reta_size, Placement::SOFTWARE_RETA);
    }

    proptest! {
        #[test]
        fn both_directions_of_any_flow_land_on_one_worker(
            a: [u8; 16], b: [u8; 16], sp: u16, dp: u16, v6: bool, workers in 1usize..16
        ) {
            let family = if v6 { Family::Inet6 } else { Family::Inet };
            let h1 = rss_hash(family, &a, &b, Some((sp, dp)));
            let h2 = rss_hash(family, &b, &a, Some((dp, sp)));
            let p = Placement { reta_size: 512, workers };
            prop_assert_eq!(p.worker_of_hash(h1), p.worker_of_hash(h2));
        }

        #[test]
        fn endpoints_order_by_address_bytes_then_port(a: [u8; 16], b: [u8; 16], sp: u16, dp: u16, same: bool) {
            let b = if same { a } else { b };
            let x = Endpoint { addr: a, port: sp };
            let y = Endpoint { addr: b, port: dp };
            prop_assert_eq!(x.cmp(&y), (a, sp).cmp(&(b, dp)));
            prop_assert_eq!(x == y, (a, sp) == (b, dp));
        }
    }
}
