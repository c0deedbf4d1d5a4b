//! The `sync` section: where state sync runs (a DPDK port or a kernel interface, and on which core), how
//! packets travel (raw IP protocol 240 to the pfsync group or to unicast peers, or UDP), deferral, batching,
//! the update policy, peer liveness, bulk updates, acknowledged delivery and authentication.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::decode::{Decode, Decoder, Node};
use crate::profile::{PortId, PortNames};

/// OpenBSD's pfsync multicast group, `INADDR_PFSYNC_GROUP`.
pub const PFSYNC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 240);
/// The UDP port of our UDP encapsulation unless the profile says otherwise.
pub const DEFAULT_UDP_PORT: u16 = 8240;
/// Smallest sync MTU: IPv4's minimum reassembly size, enough for a full state message with every header.
pub const MIN_SYNC_MTU: u16 = 576;

/// Where sync packets are sent and received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncLink {
    /// A DPDK port from `ports`, dedicated to sync.
    Port(PortId),
    /// A kernel network interface, used through a raw or UDP socket.
    Kernel {
        /// The interface name.
        interface: String,
    },
}

/// How sync packets are carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Raw IPv4 protocol 240 to a multicast group (pfsync's default).
    Multicast {
        /// The group, 224.0.0.240 unless set.
        group: Ipv4Addr,
    },
    /// Raw IPv4 protocol 240 to each peer.
    Unicast,
    /// UDP to each peer, for networks that cannot carry protocol 240, and for tests.
    Udp {
        /// The UDP port on every node.
        port: u16,
    },
}

/// When updates of a state are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdatePolicy {
    /// Send a state before a peer's copy lags far enough for pf's window checks to reject a valid packet.
    WindowAware,
    /// pfsync's: after `max_updates` updates of a TCP state, or when the interval elapses.
    Classic {
        /// pfsync's `maxupd`.
        max_updates: u8,
        /// pfsync's timer, 1 s.
        interval_ms: u32,
    },
}

/// Holding the creating packet of a new state until peers acknowledge the insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defer {
    /// Whether new states' first packets are held.
    pub enabled: bool,
    /// The longest a packet is held before it is released anyway.
    pub timeout_us: u32,
    /// Most packets held per worker; past it the oldest is released.
    pub limit: u32,
}

/// Holding packets that fail pf's checks only because a peer's newer update has not arrived yet, until it
/// does (or a timeout), then checking them again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// Whether such packets are held (otherwise they are dropped at once, as pf does).
    pub enabled: bool,
    /// The longest a packet waits for the update before it is dropped as out of window.
    pub timeout_us: u32,
    /// How far (bytes) past what this node knows a packet's sequence or acknowledgement may reach and
    /// still be held; beyond it, it is dropped at once.
    pub margin: u32,
    /// Packets held per worker at most (and never more than a quarter of the worker's share of the
    /// packet pool, `dpdk.mbufs`).
    pub pool: u32,
    /// Packets held per state at most, so one flow cannot take the pool.
    pub per_state: u32,
}

impl Hold {
    /// The defaults: on, 10 ms, 1 MiB, 4,096 per worker, 256 per state (a millisecond of a 3 Gbit/s
    /// flow's full-sized segments).
    pub const DEFAULT: Hold = Hold {
        enabled: true,
        timeout_us: 10_000,
        margin: 1 << 20,
        pool: 4096,
        per_state: 256,
    };
}

/// Acknowledged delivery (a Tandem extension every node of the cluster must have on): numbered sync
/// packets, acknowledgements and gap reports, and resends of lost states as they are now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// Whether it is on (off: pfsync's fire-and-forget).
    pub acknowledged: bool,
    /// The longest a receiver waits before acknowledging, in microseconds.
    pub ack_delay_us: u32,
    /// A packet unacknowledged this long has its states sent again, in milliseconds.
    pub resend_after_ms: u32,
    /// State names the resend queue holds at most.
    pub resend_queue: u32,
}

impl Delivery {
    /// The defaults: off; 2 ms, 20 ms, 131,072 names (conntrackd's resend queue size).
    pub const DEFAULT: Delivery = Delivery {
        acknowledged: false,
        ack_delay_us: 2_000,
        resend_after_ms: 20,
        resend_queue: 131_072,
    };
}

/// Owner redirect: whether frames of a state this node cannot check in time travel over the sync link to
/// the node that owns the state (its creator), which checks and forwards them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Redirect {
    /// Never: such frames are held (hold-and-recheck) or dropped.
    #[default]
    Off,
    /// For a TCP state that keeps needing holds, until its rate falls or its owner dies.
    Auto,
    /// Every frame of a TCP state a live peer created.
    Always,
}

/// Bytes a redirected frame carries beyond itself over the sync link: an IPv4 header, a UDP header (when
/// sync runs over UDP), the redirect datagram's headers (28 bytes) and up to 3 bytes of padding.
pub const REDIRECT_OVERHEAD: u16 = 20 + 8 + 28 + 3;

/// Bytes the authentication trailer adds to every sync datagram (`sync.auth-key-file`): magic, version,
/// key id, sequence number and a 16-byte MAC.
pub const AUTH_OVERHEAD: u16 = 4 + 8 + 16;

/// A sync peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncPeer {
    /// Where to send to, and whom to accept sync packets from.
    pub address: Ipv4Addr,
    /// The peer's host id (its pfsync creator id), when known: a conflict with ours is then caught early.
    pub host_id: Option<u32>,
}

/// The validated `sync` section.
#[derive(Clone, Debug, PartialEq)]
pub struct SyncSettings {
    /// Where sync runs.
    pub link: SyncLink,
    /// The core of the sync thread.
    pub core: usize,
    /// How packets travel.
    pub transport: Transport,
    /// Our source address; when absent, the sync port's (or interface's) first IPv4 address.
    pub source: Option<Ipv4Addr>,
    /// The peers; may be empty for multicast, where anyone on the link with TTL 255 is a peer.
    pub peers: Vec<SyncPeer>,
    /// Largest sync packet, IPv4 header included; defaults to the sync port's MTU.
    pub mtu: Option<u16>,
    /// The longest an update waits before it is sent, in microseconds.
    pub flush_deadline_us: u32,
    /// How much later a sync update reaches a peer than a flow's acknowledgement reaches it, in
    /// microseconds: the window-aware policy sends updates this much before a peer's copy would lag past
    /// pf's tolerance. The sync path's one-way delay (link and both sync cores) less the data's return
    /// path delay around the flow.
    pub sync_delay_us: u32,
    /// When updates are sent.
    pub update_policy: UpdatePolicy,
    /// First-packet deferral.
    pub defer: Defer,
    /// Hold-and-recheck for packets ahead of the sync.
    pub hold: Hold,
    /// Owner redirect (a Tandem extension: every node of the cluster must have the same setting).
    pub redirect: Redirect,
    /// Acknowledged delivery.
    pub delivery: Delivery,
    /// A peer silent this long is considered gone.
    pub peer_dead_ms: u32,
    /// We send at least one packet this often, so peers know we are alive.
    pub keepalive_ms: u32,
    /// Bulk update send rate, in Mbit/s.
    pub bulk_rate_mbit: u32,
    /// How long a bulk request waits for an answer before it is sent again.
    pub bulk_timeout_ms: u32,
    /// How many times a bulk request is sent before the node gives up and declares itself in sync.
    pub bulk_retries: u32,
    /// Key for the authenticated envelope; off (plain pfsync) when absent.
    pub auth_key_file: Option<PathBuf>,
    /// What one peer may make this node hold or do.
    pub peer_limits: PeerLimits,
}

/// `sync.limits`: what one peer may make this node hold or do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLimits {
    /// States one peer's host id may have here; `None`: the node's own state limit (`limits.states`).
    pub states_per_peer: Option<u32>,
    /// Update requests for single states answered per second, per peer.
    pub requests_per_sec: u32,
}

impl Decode for SyncPeer {
    fn decode(node: &Node<'_>, d: &mut Decoder) -> Option<Self> {
        let ipv4 = |d: &mut Decoder, node: &Node<'_>| -> Option<Ipv4Addr> {
            match IpAddr::decode(node, d)? {
                IpAddr::V4(a) if a.is_multicast() || a.is_broadcast() || a.is_unspecified() => {
                    d.error(
                        &node.path,
                        format!("{a} cannot be a peer: give the peer's unicast address"),
                    );
                    None
                }
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(a) => {
                    d.error(
                        &node.path,
                        format!("{a}: sync peers must be IPv4 (pfsync runs over IPv4)"),
                    );
                    None
                }
            }
        };
        if node.value.is_string() {
            return ipv4(d, node).map(|address| SyncPeer {
                address,
                host_id: None,
            });
        }
        let mut f = d.fields(node)?;
        let address = f.node("address");
        let host_id = f.node("host-id").and_then(|n| decode_host_id(d, &n));
        if address.is_none() {
            d.error(f.path(), "missing key `address`");
        }
        f.finish(d);
        Some(SyncPeer {
            address: ipv4(d, &address?)?,
            host_id,
        })
    }
}

/// A host id: a non-zero 32-bit number, decimal or `0x` hexadecimal.
pub(crate) fn decode_host_id(d: &mut Decoder, node: &Node<'_>) -> Option<u32> {
    let value = match node.value.as_str() {
        Some(text) => {
            let digits = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
            match digits {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => text.parse::<u32>().ok(),
            }
        }
        None => node.value.as_u64().and_then(|v| u32::try_from(v).ok()),
    };
    match value {
        Some(0) => {
            d.error(
                &node.path,
                "host-id must not be 0 (pfsync refuses states from creator id 0)",
            );
            None
        }
        Some(v) => Some(v),
        None => {
            d.error(&node.path, "expected a 32-bit host id, decimal or 0x-hex");
            None
        }
    }
}

/// Reads an integer between `lo` and `hi` (inclusive) under `key`, or `default` when absent.
pub(crate) fn bounded(
    f: &mut crate::decode::Fields<'_>,
    d: &mut Decoder,
    key: &str,
    default: u32,
    lo: u32,
    hi: u32,
) -> u32 {
    match f.node(key) {
        None => default,
        Some(n) => match u32::decode(&n, d) {
            Some(v) if (lo..=hi).contains(&v) => v,
            Some(v) => {
                d.error(&n.path, format!("{v} is out of range ({lo} to {hi})"));
                default
            }
            None => default,
        },
    }
}

pub(crate) fn decode_sync(
    d: &mut Decoder,
    node: &Node<'_>,
    ports: &mut PortNames,
) -> Option<SyncSettings> {
    let mut f = d.fields(node)?;
    let port_node = f.node("port");
    let interface = f.optional::<String>(d, "interface");
    let link = match (&port_node, interface) {
        (Some(n), None) => ports.claim_sync_port(d, n).map(SyncLink::Port),
        (None, Some(interface)) if !interface.is_empty() => Some(SyncLink::Kernel { interface }),
        (Some(_), Some(_)) => {
            d.error(
                f.path(),
                "give either `port` (a DPDK port) or `interface` (a kernel interface), not both",
            );
            None
        }
        _ => {
            d.error(
                f.path(),
                "missing key `port` (a DPDK port from `ports`) or `interface` (a kernel interface)",
            );
            None
        }
    };
    let core = f.required::<usize>(d, "core");
    let transport = match f.node("transport") {
        None => Some("multicast"),
        Some(n) => match n.as_str() {
            Some(t @ ("multicast" | "unicast" | "udp")) => Some(t),
            _ => {
                d.error(&n.path, "expected `multicast`, `unicast` or `udp`");
                None
            }
        },
    };
    let group_node = f.node("group");
    let udp_port_node = f.node("udp-port");
    let transport = match transport {
        Some("multicast") => {
            let group = match &group_node {
                None => Some(PFSYNC_GROUP),
                Some(n) => match IpAddr::decode(n, d) {
                    Some(IpAddr::V4(g)) if g.is_multicast() => Some(g),
                    Some(other) => {
                        d.error(&n.path, format!("{other} is not an IPv4 multicast group"));
                        None
                    }
                    None => None,
                },
            };
            group.map(|group| Transport::Multicast { group })
        }
        Some("unicast") => Some(Transport::Unicast),
        Some(_) => {
            let port = match &udp_port_node {
                None => Some(DEFAULT_UDP_PORT),
                Some(n) => u16::decode(n, d).filter(|p| {
                    if *p == 0 {
                        d.error(&n.path, "UDP port 0 cannot be used");
                    }
                    *p != 0
                }),
            };
            port.map(|port| Transport::Udp { port })
        }
        None => None,
    };
    if let (Some(n), Some(t)) = (&group_node, &transport)
        && !matches!(t, Transport::Multicast { .. })
    {
        d.error(&n.path, "`group` is only for the multicast transport");
    }
    if let (Some(n), Some(t)) = (&udp_port_node, &transport)
        && !matches!(t, Transport::Udp { .. })
    {
        d.error(&n.path, "`udp-port` is only for the udp transport");
    }
    let source = f.node("source").and_then(|n| match IpAddr::decode(&n, d)? {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => {
            d.error(&n.path, format!("{a}: the sync source must be IPv4"));
            None
        }
    });
    let peers_node = f.node("peers");
    let mut peers: Vec<SyncPeer> = Vec::new();
    if let Some(n) = &peers_node {
        match n.value.as_sequence() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    let item = n.index(i, item);
                    let Some(peer) = SyncPeer::decode(&item, d) else {
                        continue;
                    };
                    if peers.iter().any(|p| p.address == peer.address) {
                        d.error(&item.path, format!("peer {} is listed twice", peer.address));
                    } else {
                        peers.push(peer);
                    }
                }
            }
            None => d.error(&n.path, "expected a sequence of peers"),
        }
    }
    if matches!(transport, Some(Transport::Unicast | Transport::Udp { .. })) && peers.is_empty() {
        let path = peers_node
            .as_ref()
            .map_or_else(|| f.path().clone(), |n| n.path.clone());
        d.error(
            &path,
            "the unicast and udp transports need at least one peer",
        );
    }
    let mtu = f.node("mtu").and_then(|n| {
        let mtu = u16::decode(&n, d)?;
        if mtu < MIN_SYNC_MTU {
            d.error(
                &n.path,
                format!("sync MTU {mtu} is below the minimum of {MIN_SYNC_MTU}"),
            );
            return None;
        }
        ports.note_sync_mtu(mtu, n.path.clone());
        Some(mtu)
    });
    let flush_deadline_us = bounded(&mut f, d, "flush-deadline-us", 100, 1, 1_000_000);
    let sync_delay_us = bounded(&mut f, d, "sync-delay-us", 20, 0, 1_000_000);
    let policy = match f.node("update-policy") {
        None => Some("window-aware"),
        Some(n) => match n.as_str() {
            Some(p @ ("window-aware" | "classic")) => Some(p),
            _ => {
                d.error(&n.path, "expected `window-aware` or `classic`");
                None
            }
        },
    };
    let max_updates_node = f.node("max-updates");
    let max_updates = max_updates_node
        .as_ref()
        .and_then(|n| u8::decode(n, d))
        .unwrap_or(128);
    if policy == Some("window-aware")
        && let Some(n) = &max_updates_node
    {
        d.error(&n.path, "`max-updates` is for update-policy classic");
    }
    let update_policy = match policy {
        Some("classic") => UpdatePolicy::Classic {
            max_updates,
            interval_ms: 1000,
        },
        _ => UpdatePolicy::WindowAware,
    };
    let defer = match f.node("defer") {
        None => Defer {
            enabled: false,
            timeout_us: 20_000,
            limit: 128,
        },
        Some(n) => decode_defer(d, &n).unwrap_or(Defer {
            enabled: false,
            timeout_us: 20_000,
            limit: 128,
        }),
    };
    let hold = match f.node("hold") {
        None => Hold::DEFAULT,
        Some(n) => decode_hold(d, &n).unwrap_or(Hold::DEFAULT),
    };
    let redirect = match f.node("redirect") {
        None => Redirect::Off,
        Some(n) => match (n.as_str(), n.value.as_bool()) {
            (Some("off"), _) | (_, Some(false)) => Redirect::Off,
            (Some("auto"), _) => Redirect::Auto,
            (Some("always"), _) => Redirect::Always,
            _ => {
                d.error(&n.path, "expected `off`, `auto` or `always`");
                Redirect::Off
            }
        },
    };
    let delivery = match f.node("delivery") {
        None => Delivery::DEFAULT,
        Some(n) => decode_delivery(d, &n).unwrap_or(Delivery::DEFAULT),
    };
    let peer_dead_ms = bounded(&mut f, d, "peer-dead-ms", 3000, 10, 600_000);
    let keepalive_ms = bounded(&mut f, d, "keepalive-ms", 1000, 1, 60_000);
    if keepalive_ms >= peer_dead_ms {
        d.error(
            f.path(),
            format!(
                "keepalive-ms ({keepalive_ms}) must be shorter than peer-dead-ms ({peer_dead_ms})"
            ),
        );
    }
    let bulk_rate_mbit = bounded(&mut f, d, "bulk-rate-mbit", 1000, 1, 400_000);
    let bulk_timeout_ms = bounded(&mut f, d, "bulk-timeout-ms", 2000, 10, 600_000);
    let bulk_retries = bounded(&mut f, d, "bulk-retries", 12, 0, 1000);
    let peer_limits = match f.node("limits") {
        None => PeerLimits {
            states_per_peer: None,
            requests_per_sec: 20_000,
        },
        Some(n) => decode_peer_limits(d, &n).unwrap_or(PeerLimits {
            states_per_peer: None,
            requests_per_sec: 20_000,
        }),
    };
    let auth_key_file = f.optional::<String>(d, "auth-key-file").map(PathBuf::from);
    if auth_key_file.is_some()
        && let Some(mtu) = mtu
        && mtu < MIN_SYNC_MTU + AUTH_OVERHEAD
    {
        d.error(
            f.path(),
            format!(
                "sync MTU {mtu} leaves no room for a full state after the authentication trailer: \
                 at least {} is needed",
                MIN_SYNC_MTU + AUTH_OVERHEAD
            ),
        );
    }
    f.finish(d);
    Some(SyncSettings {
        link: link?,
        core: core?,
        transport: transport?,
        source,
        peers,
        mtu,
        flush_deadline_us,
        sync_delay_us,
        update_policy,
        defer,
        hold,
        redirect,
        delivery,
        peer_dead_ms,
        keepalive_ms,
        bulk_rate_mbit,
        bulk_timeout_ms,
        bulk_retries,
        auth_key_file,
        peer_limits,
    })
}

fn decode_peer_limits(d: &mut Decoder, node: &Node<'_>) -> Option<PeerLimits> {
    let mut f = d.fields(node)?;
    let states_per_peer = f
        .node("states-per-peer")
        .map(|_| bounded(&mut f, d, "states-per-peer", 1, 1, u32::MAX));
    let requests_per_sec = bounded(
        &mut f,
        d,
        "update-requests-per-second",
        20_000,
        1,
        10_000_000,
    );
    f.finish(d);
    Some(PeerLimits {
        states_per_peer,
        requests_per_sec,
    })
}

fn decode_delivery(d: &mut Decoder, node: &Node<'_>) -> Option<Delivery> {
    let mut f = d.fields(node)?;
    let x = Delivery::DEFAULT;
    let acknowledged = f.or(d, "acknowledged", x.acknowledged);
    let ack_delay_us = bounded(&mut f, d, "ack-delay-us", x.ack_delay_us, 1, 1_000_000);
    let resend_after_ms = bounded(&mut f, d, "resend-after-ms", x.resend_after_ms, 1, 60_000);
    let resend_queue = bounded(&mut f, d, "resend-queue", x.resend_queue, 64, 1 << 24);
    if u64::from(resend_after_ms) * 1000 <= u64::from(ack_delay_us) {
        d.error(
            f.path(),
            format!(
                "resend-after-ms ({resend_after_ms}) must be longer than ack-delay-us \
                 ({ack_delay_us}): a packet would be sent again before its acknowledgement is due"
            ),
        );
    }
    f.finish(d);
    Some(Delivery {
        acknowledged,
        ack_delay_us,
        resend_after_ms,
        resend_queue,
    })
}

fn decode_hold(d: &mut Decoder, node: &Node<'_>) -> Option<Hold> {
    let mut f = d.fields(node)?;
    let h = Hold::DEFAULT;
    let enabled = f.or(d, "enabled", h.enabled);
    let timeout_us = bounded(&mut f, d, "timeout-us", h.timeout_us, 1, 1_000_000);
    let margin = bounded(&mut f, d, "margin", h.margin, 1, 1 << 30);
    let pool = bounded(&mut f, d, "pool", h.pool, 1, 1 << 20);
    let per_state = bounded(&mut f, d, "per-state", h.per_state, 1, 1 << 16);
    f.finish(d);
    Some(Hold {
        enabled,
        timeout_us,
        margin,
        pool,
        per_state,
    })
}

fn decode_defer(d: &mut Decoder, node: &Node<'_>) -> Option<Defer> {
    let mut f = d.fields(node)?;
    let enabled = f.or(d, "enabled", true);
    let timeout_us = bounded(&mut f, d, "timeout-us", 20_000, 1, 1_000_000);
    let limit = bounded(&mut f, d, "limit", 128, 1, 1 << 20);
    f.finish(d);
    Some(Defer {
        enabled,
        timeout_us,
        limit,
    })
}
