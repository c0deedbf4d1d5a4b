//! How sync packets reach peers: IPv4 protocol 240 (pfsync's own transport, to the multicast group or to
//! unicast peers) or UDP, over a DPDK port or a kernel interface. Each transport checks pfsync's input
//! guards before the engine sees a byte: the packet arrived on the sync link, it is for us (our address or
//! the group), and, for protocol 240, its TTL is exactly 255 (pfsync spec section 1: sync is link-local).
//! The engine then accepts only configured peers (or, on the group, anyone on the link).

use std::collections::VecDeque;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};

use hashbrown::HashMap;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tandem_dataplane::wire::build::{self, Endpoints};
use tandem_dataplane::wire::checksum::ChecksumCaps;
use tandem_dataplane::wire::ethernet::MacAddr;
use tandem_dataplane::wire::meta::{self, EtherClass, L4};
use tandem_dataplane::wire::udp::UdpRepr;
use tandem_sync::auth::{AuthStats, Keyring, Opener, Sealer};
use tandem_sync::engine::Destination;

use crate::dpdk::mbuf::Mbuf;
use crate::dpdk::mempool::PacketPool;
use crate::dpdk::port::{RxQueue, TxQueue};

/// IANA-unassigned protocol 240, which pfsync uses.
pub const PROTO_PFSYNC: u8 = 240;
/// The TTL pfsync sends and demands.
pub const SYNC_TTL: u8 = 255;

/// Why received frames on the sync link were not handed to the engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// TTL not 255 (pfsync's `badttl`).
    pub bad_ttl: u64,
    /// Not for our address or the group.
    pub not_for_us: u64,
    /// Not pfsync (another protocol or port), or unparsable.
    pub not_sync: u64,
    /// Sync packets that could not be sent (socket error, no buffer, no MAC for the peer).
    pub send_failures: u64,
    /// ARP messages handled on a DPDK sync port.
    pub arp: u64,
    /// Authentication, when on: datagrams accepted and refused by reason.
    pub auth: AuthStats,
}

/// A sync link.
pub trait SyncTransport: Send {
    /// The next sync payload received (pfsync header onwards) into `buf`, with its sender.
    fn recv(&mut self, buf: &mut Vec<u8>) -> Option<Ipv4Addr>;
    /// Sends a payload.
    fn send(&mut self, to: Destination, payload: &[u8]);
    /// Counters.
    fn stats(&self) -> TransportStats;
}

/// Where to send, and the local address.
#[derive(Clone, Copy, Debug)]
pub struct Addressing {
    /// Our sync address.
    pub local: Ipv4Addr,
    /// The multicast group.
    pub group: Ipv4Addr,
    /// UDP port, for the UDP encapsulation.
    pub udp_port: Option<u16>,
}

fn destination_ip(to: Destination, addressing: &Addressing) -> Ipv4Addr {
    match to {
        Destination::Group => addressing.group,
        Destination::Peer(address) => address,
    }
}

/// A kernel socket for sync.
#[derive(Debug)]
enum KernelSocket {
    /// Raw IPv4, protocol 240: reads include the IP header.
    Raw(Socket),
    /// UDP.
    Udp(std::net::UdpSocket),
}

/// Sync over a kernel interface: a raw protocol-240 socket or a UDP socket bound to the interface.
#[derive(Debug)]
pub struct KernelTransport {
    socket: KernelSocket,
    addressing: Addressing,
    scratch: Vec<u8>,
    stats: TransportStats,
}

impl KernelTransport {
    /// Opens the sockets on `interface`.
    pub fn open(
        interface: &str,
        addressing: Addressing,
        multicast: bool,
    ) -> std::io::Result<KernelTransport> {
        let raw = addressing.udp_port.is_none();
        let socket = if raw {
            Socket::new(
                Domain::IPV4,
                Type::RAW,
                Some(Protocol::from(i32::from(PROTO_PFSYNC))),
            )?
        } else {
            Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?
        };
        socket.bind_device(Some(interface.as_bytes()))?;
        socket.set_reuse_address(true)?;
        if let Some(port) = addressing.udp_port {
            let bind = if multicast {
                Ipv4Addr::UNSPECIFIED
            } else {
                addressing.local
            };
            socket.bind(&SockAddr::from(SocketAddrV4::new(bind, port)))?;
        }
        socket.set_ttl_v4(u32::from(SYNC_TTL))?;
        socket.set_multicast_ttl_v4(u32::from(SYNC_TTL))?;
        socket.set_multicast_loop_v4(false)?;
        socket.set_multicast_if_v4(&addressing.local)?;
        if multicast {
            socket.join_multicast_v4(&addressing.group, &addressing.local)?;
        }
        socket.set_nonblocking(true)?;
        let socket = if raw {
            KernelSocket::Raw(socket)
        } else {
            KernelSocket::Udp(socket.into())
        };
        Ok(KernelTransport {
            socket,
            addressing,
            scratch: vec![0; 65_536],
            stats: TransportStats::default(),
        })
    }
}

impl SyncTransport for KernelTransport {
    fn recv(&mut self, buf: &mut Vec<u8>) -> Option<Ipv4Addr> {
        loop {
            let socket = match &self.socket {
                KernelSocket::Raw(socket) => socket,
                KernelSocket::Udp(udp) => {
                    let (n, from) = udp.recv_from(&mut self.scratch).ok()?;
                    let std::net::SocketAddr::V4(from) = from else {
                        continue;
                    };
                    buf.clear();
                    buf.extend_from_slice(&self.scratch[..n]);
                    return Some(*from.ip());
                }
            };
            // A raw IPv4 socket hands over the IP header too: check it as pfsync does.
            let n = (&*socket).read(&mut self.scratch).ok()?;
            let packet = &self.scratch[..n];
            if n < 20 || packet[0] >> 4 != 4 {
                self.stats.not_sync += 1;
                continue;
            }
            let ihl = usize::from(packet[0] & 0x0f) * 4;
            let ttl = packet[8];
            let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
            let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
            if packet[9] != PROTO_PFSYNC || ihl < 20 || n < ihl {
                self.stats.not_sync += 1;
                continue;
            }
            if ttl != SYNC_TTL {
                self.stats.bad_ttl += 1;
                continue;
            }
            if dst != self.addressing.local && dst != self.addressing.group {
                self.stats.not_for_us += 1;
                continue;
            }
            buf.clear();
            buf.extend_from_slice(&packet[ihl..]);
            return Some(src);
        }
    }

    fn send(&mut self, to: Destination, payload: &[u8]) {
        let ip = destination_ip(to, &self.addressing);
        let port = self.addressing.udp_port.unwrap_or(0);
        let sent = match &self.socket {
            KernelSocket::Raw(socket) => {
                socket.send_to(payload, &SockAddr::from(SocketAddrV4::new(ip, port)))
            }
            KernelSocket::Udp(udp) => udp.send_to(payload, SocketAddrV4::new(ip, port)),
        };
        if sent.is_err() {
            self.stats.send_failures += 1;
        }
    }

    fn stats(&self) -> TransportStats {
        self.stats
    }
}

/// The Ethernet multicast MAC of an IPv4 group (RFC 1112 section 6.4).
fn group_mac(group: Ipv4Addr) -> [u8; 6] {
    let o = group.octets();
    [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
}

/// Sync over a DPDK port the sync thread owns: frames are built and checked here, and the port answers
/// and asks ARP for its own address and its peers.
#[derive(Debug)]
pub struct PortTransport {
    rx: RxQueue,
    tx: TxQueue,
    pool: &'static PacketPool,
    mac: [u8; 6],
    addressing: Addressing,
    arp: HashMap<Ipv4Addr, [u8; 6]>,
    waiting: VecDeque<(Ipv4Addr, Vec<u8>)>,
    received: Vec<Mbuf>,
    out: Vec<Mbuf>,
    stats: TransportStats,
}

/// Sync packets held while their peer's MAC is resolved.
const WAITING_FOR_ARP: usize = 256;

impl PortTransport {
    /// A transport over the sync port's queue 0.
    pub fn new(
        rx: RxQueue,
        tx: TxQueue,
        pool: &'static PacketPool,
        mac: [u8; 6],
        addressing: Addressing,
    ) -> PortTransport {
        PortTransport {
            rx,
            tx,
            pool,
            mac,
            addressing,
            arp: HashMap::new(),
            waiting: VecDeque::new(),
            received: Vec::with_capacity(32),
            out: Vec::with_capacity(32),
            stats: TransportStats::default(),
        }
    }

    fn transmit(&mut self, frame: impl FnOnce(&mut [u8]) -> Option<usize>) {
        let Some(mut m) = self.pool.alloc() else {
            self.stats.send_failures += 1;
            return;
        };
        if !m.resize(9216.min(m.tailroom() + m.len())) {
            self.stats.send_failures += 1;
            return;
        }
        match frame(m.as_mut()) {
            Some(len) if m.resize(len) => {
                self.out.push(m);
                self.tx.send(&mut self.out);
                if !self.out.is_empty() {
                    self.stats.send_failures += self.out.len() as u64;
                    self.out.clear();
                }
            }
            _ => self.stats.send_failures += 1,
        }
    }

    fn send_frame(&mut self, dst_mac: [u8; 6], dst: Ipv4Addr, payload: &[u8]) {
        let ends = Endpoints::v4(
            MacAddr(self.mac),
            MacAddr(dst_mac),
            self.addressing.local,
            dst,
        )
        .with_hop_limit(SYNC_TTL);
        let udp_port = self.addressing.udp_port;
        self.transmit(|buf| match udp_port {
            Some(port) => build::udp_into(
                buf,
                &ends,
                &UdpRepr {
                    src_port: port,
                    dst_port: port,
                },
                payload,
            )
            .ok(),
            None => build::ip_into(buf, &ends, PROTO_PFSYNC, payload).ok(),
        });
    }

    fn handle_arp(&mut self, frame: &[u8]) {
        use tandem_dataplane::wire::arp::{ArpRepr, Operation, Packet};
        self.stats.arp += 1;
        let Ok(eth) = tandem_dataplane::wire::ethernet::Frame::new_checked(frame) else {
            return;
        };
        let Ok(arp) = Packet::new_checked(eth.payload()) else {
            return;
        };
        let Ok(repr) = ArpRepr::parse(&arp) else {
            return;
        };
        self.arp
            .insert(repr.source_protocol_addr, repr.source_hardware_addr.0);
        if repr.operation == Operation::Request
            && repr.target_protocol_addr == self.addressing.local
        {
            let (mac, local) = (MacAddr(self.mac), self.addressing.local);
            let reply = build::arp_reply(
                mac,
                local,
                repr.source_hardware_addr,
                repr.source_protocol_addr,
                None,
            );
            self.transmit(|buf| {
                let n = reply.len().min(buf.len());
                buf[..n].copy_from_slice(&reply[..n]);
                Some(n)
            });
        }
        // Send what waited for this peer.
        let peer = repr.source_protocol_addr;
        let ready: Vec<Vec<u8>> = {
            let mut ready = Vec::new();
            self.waiting.retain(|(ip, payload)| {
                if *ip == peer {
                    ready.push(payload.clone());
                    false
                } else {
                    true
                }
            });
            ready
        };
        for payload in ready {
            self.send_frame(repr.source_hardware_addr.0, peer, &payload);
        }
    }
}

impl SyncTransport for PortTransport {
    fn recv(&mut self, buf: &mut Vec<u8>) -> Option<Ipv4Addr> {
        loop {
            if self.received.is_empty() {
                self.rx.recv(&mut self.received, 32);
                if self.received.is_empty() {
                    return None;
                }
                self.received.reverse();
            }
            let m = self.received.pop()?;
            let frame = m.as_ref();
            let Ok(p) = meta::parse_meta(frame, ChecksumCaps::SOFTWARE) else {
                self.stats.not_sync += 1;
                continue;
            };
            if p.class == EtherClass::Arp {
                let copy = frame.to_vec();
                drop(m);
                self.handle_arp(&copy);
                continue;
            }
            if p.class != EtherClass::Ipv4 {
                self.stats.not_sync += 1;
                continue;
            }
            let src = Ipv4Addr::new(p.src[0], p.src[1], p.src[2], p.src[3]);
            let dst = Ipv4Addr::new(p.dst[0], p.dst[1], p.dst[2], p.dst[3]);
            let payload_at = match (self.addressing.udp_port, p.l4) {
                (None, _) if p.proto == PROTO_PFSYNC => usize::from(p.l4_offset),
                (Some(port), L4::Udp(u)) if u.dst_port == port => usize::from(p.l4_offset) + 8,
                _ => {
                    self.stats.not_sync += 1;
                    continue;
                }
            };
            if self.addressing.udp_port.is_none() && p.ttl != SYNC_TTL {
                self.stats.bad_ttl += 1;
                continue;
            }
            if dst != self.addressing.local && dst != self.addressing.group {
                self.stats.not_for_us += 1;
                continue;
            }
            let end = usize::from(p.l4_offset) + usize::from(p.ip_payload_len);
            let Some(payload) = frame.get(payload_at..end) else {
                self.stats.not_sync += 1;
                continue;
            };
            buf.clear();
            buf.extend_from_slice(payload);
            // Learn the peer's MAC from its sync traffic too.
            if let Ok(eth) = tandem_dataplane::wire::ethernet::Frame::new_checked(frame) {
                self.arp.insert(src, eth.src_addr().0);
            }
            return Some(src);
        }
    }

    fn send(&mut self, to: Destination, payload: &[u8]) {
        let ip = destination_ip(to, &self.addressing);
        let mac = match to {
            Destination::Group => Some(group_mac(self.addressing.group)),
            Destination::Peer(peer) => self.arp.get(&peer).copied(),
        };
        match mac {
            Some(mac) => self.send_frame(mac, ip, payload),
            None => {
                if self.waiting.len() >= WAITING_FOR_ARP {
                    self.waiting.pop_front();
                    self.stats.send_failures += 1;
                }
                self.waiting.push_back((ip, payload.to_vec()));
                let request =
                    build::arp_request(MacAddr(self.mac), self.addressing.local, ip, None);
                self.transmit(|buf| {
                    let n = request.len().min(buf.len());
                    buf[..n].copy_from_slice(&request[..n]);
                    Some(n)
                });
            }
        }
    }

    fn stats(&self) -> TransportStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pfsync_group_maps_to_its_ethernet_multicast_address() {
        assert_eq!(
            group_mac(Ipv4Addr::new(224, 0, 0, 240)),
            [0x01, 0x00, 0x5e, 0x00, 0x00, 0xf0]
        );
        assert_eq!(
            group_mac(Ipv4Addr::new(239, 129, 2, 3)),
            [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03]
        );
    }
}

/// A sync link whose datagrams carry the authentication trailer ([`tandem_sync::auth`]): every datagram
/// sent is sealed, and a received one reaches the engine (or owner redirect) only when it verifies and is
/// new for its sender; the rest are counted by reason and dropped.
pub struct AuthTransport {
    inner: Box<dyn SyncTransport>,
    sealer: Sealer,
    opener: Opener,
    out: Vec<u8>,
}

impl std::fmt::Debug for AuthTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthTransport")
            .field("stats", &self.opener.stats())
            .finish_non_exhaustive()
    }
}

impl AuthTransport {
    /// Wraps `inner` for a node whose sync address is `local`, started at `start_secs` (Unix time).
    pub fn new(
        inner: Box<dyn SyncTransport>,
        ring: Keyring,
        local: Ipv4Addr,
        start_secs: u32,
    ) -> AuthTransport {
        AuthTransport {
            inner,
            sealer: Sealer::new(&ring, local, start_secs),
            opener: Opener::new(ring),
            out: Vec::with_capacity(65_536),
        }
    }
}

impl SyncTransport for AuthTransport {
    fn recv(&mut self, buf: &mut Vec<u8>) -> Option<Ipv4Addr> {
        loop {
            let from = self.inner.recv(buf)?;
            if let Ok(inner) = self.opener.open(from, buf) {
                let len = inner.len();
                buf.truncate(len);
                return Some(from);
            }
        }
    }

    fn send(&mut self, to: Destination, payload: &[u8]) {
        self.out.clear();
        self.out.extend_from_slice(payload);
        self.sealer.seal(&mut self.out);
        self.inner.send(to, &self.out);
    }

    fn stats(&self) -> TransportStats {
        TransportStats {
            auth: self.opener.stats(),
            ..self.inner.stats()
        }
    }
}

/// Why the sync key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Unreadable.
    #[error("reading the sync key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Readable or writable by others than its owner.
    #[error(
        "the sync key file {path} is open to its group or others (mode {mode:o}); it must be 0600 or \
         0400: chmod 600 {path}"
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// Not a key file.
    #[error("the sync key file {path}: {source}")]
    Keys {
        /// The file.
        path: String,
        /// What is wrong in it.
        source: tandem_sync::auth::KeyError,
    },
}

/// Reads the cluster's keys from `path`, which only its owner may read or write.
pub fn load_keyring(path: &std::path::Path) -> Result<Keyring, KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let shown = path.display().to_string();
    let read = |source| KeyFileError::Read {
        path: shown.clone(),
        source,
    };
    let mode = std::fs::metadata(path).map_err(read)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions { path: shown, mode });
    }
    let text = std::fs::read_to_string(path).map_err(read)?;
    Keyring::parse(&text).map_err(|source| KeyFileError::Keys {
        path: shown,
        source,
    })
}
