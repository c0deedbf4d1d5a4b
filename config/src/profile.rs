//! The whole profile: node identity, DPDK, ports, workers, control thread, forwarding, routes, sync,
//! failover, rules, state limits and timeouts. Decoding reads the sections in dependency order (ports
//! before anything that names a port), whatever their order in the file, and collects every error.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;

use yaml_serde::Value;

use crate::decode::{Decode, Decoder, Node};
use crate::error::YamlPath;
use crate::failover::{Failover, decode_failover};
use crate::net::{InterfaceAddress, MacAddr, Prefix};
use crate::rules::{Rule, decode_rules};
use crate::sync::{
    AUTH_OVERHEAD, REDIRECT_OVERHEAD, Redirect, SyncLink, SyncSettings, bounded, decode_host_id,
    decode_sync,
};

/// Index of a port in the profile's `ports` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

/// Who this node is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSettings {
    /// The node's name, shown in logs and `tandem show`.
    pub name: String,
    /// The pfsync creator id of every state this node creates; unique in the cluster, never 0.
    pub host_id: u32,
}

/// DPDK's environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpdkSettings {
    /// Extra EAL arguments (`--no-huge`, `--file-prefix`, `-m`, ...); cores are set from the profile.
    pub eal_args: Vec<String>,
    /// Packet buffers in the pool.
    pub mbufs: u32,
    /// Per-lcore cache of the pool.
    pub mbuf_cache: u32,
    /// Data room of each buffer, headroom included.
    pub mbuf_data_size: u16,
    /// Receive descriptors per queue.
    pub rx_descriptors: u16,
    /// Transmit descriptors per queue.
    pub tx_descriptors: u16,
}

/// A port: a DPDK device with its queues, MTU and addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// The name rules, routes and failover groups use.
    pub name: String,
    /// The DPDK device: a PCI address, or vdev arguments such as `net_af_xdp0,iface=veth0`.
    pub device: String,
    /// Receive and transmit queues.
    pub queues: u16,
    /// Largest IP packet on this port.
    pub mtu: u16,
    /// The port's own addresses, each with its connected subnet.
    pub addresses: Vec<InterfaceAddress>,
    /// A MAC address to use instead of the device's.
    pub mac: Option<MacAddr>,
}

/// How worker threads wait for packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollMode {
    /// Poll without pause: lowest latency, one core per thread.
    Busy,
    /// Back off when idle, sleeping up to `idle_sleep_us`, so threads can share cores.
    Adaptive,
}

/// The worker threads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workers {
    /// One worker per core, each owning one state shard.
    pub cores: Vec<usize>,
    /// How they poll.
    pub polling: PollMode,
    /// The longest an idle adaptive poller sleeps.
    pub idle_sleep_us: u32,
}

/// The control thread: admin socket and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Control {
    /// A core to pin the control thread to; unpinned when absent.
    pub core: Option<usize>,
    /// The Unix socket `tandem show` talks to.
    pub admin_socket: PathBuf,
    /// Where Prometheus scrapes metrics; none when absent.
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// How packets cross the appliance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Forwarding {
    /// An IP router between the data ports: routes, ARP and neighbour discovery, TTL decrement.
    Router,
    /// A transparent bump in the wire: each packet leaves by the other port of its pair, unchanged.
    Wire {
        /// The port pairs.
        pairs: Vec<(PortId, PortId)>,
    },
}

/// A static route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The destination prefix.
    pub to: Prefix,
    /// The next hop; absent for a route straight out of `port`.
    pub via: Option<IpAddr>,
    /// The port to leave by; found from the next hop's connected subnet when absent.
    pub port: PortId,
}

/// State limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most states in the whole node (pf's `set limit states`), split evenly across worker shards.
    pub states: u32,
}

/// State timeouts in seconds, pf's names and defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Timeouts {
    pub tcp_first: u32,
    pub tcp_opening: u32,
    pub tcp_established: u32,
    pub tcp_closing: u32,
    pub tcp_finwait: u32,
    pub tcp_closed: u32,
    pub udp_first: u32,
    pub udp_single: u32,
    pub udp_multiple: u32,
    pub icmp_first: u32,
    pub icmp_error: u32,
    pub other_first: u32,
    pub other_single: u32,
    pub other_multiple: u32,
}

impl Timeouts {
    /// pf's defaults (pf.conf(5), `set timeout`).
    pub const PF_DEFAULTS: Timeouts = Timeouts {
        tcp_first: 120,
        tcp_opening: 30,
        tcp_established: 86_400,
        tcp_closing: 900,
        tcp_finwait: 45,
        tcp_closed: 90,
        udp_first: 60,
        udp_single: 30,
        udp_multiple: 60,
        icmp_first: 20,
        icmp_error: 10,
        other_first: 60,
        other_single: 30,
        other_multiple: 60,
    };
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts::PF_DEFAULTS
    }
}

/// A validated profile. It can only be obtained from [`crate::parse`] or [`crate::load`], which check it
/// completely, so everything that reads it may rely on its cross-references.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// Identity.
    pub node: NodeSettings,
    /// DPDK environment.
    pub dpdk: DpdkSettings,
    /// All ports, the sync port included when sync runs on DPDK.
    pub ports: Vec<Port>,
    /// Worker threads.
    pub workers: Workers,
    /// The control thread.
    pub control: Control,
    /// Router or wire.
    pub forwarding: Forwarding,
    /// Static routes.
    pub routes: Vec<Route>,
    /// State sync; a single node has none.
    pub sync: Option<SyncSettings>,
    /// VRRP groups.
    pub failover: Failover,
    /// Filter rules, first match wins, default block.
    pub rules: Vec<Rule>,
    /// State limits.
    pub limits: Limits,
    /// State timeouts.
    pub timeouts: Timeouts,
}

impl Profile {
    /// The port a [`PortId`] names.
    pub fn port(&self, id: PortId) -> &Port {
        &self.ports[usize::from(id.0)]
    }

    /// The port carrying sync, when sync runs on a DPDK port.
    pub fn sync_port(&self) -> Option<PortId> {
        match self.sync.as_ref().map(|s| &s.link) {
            Some(SyncLink::Port(id)) => Some(*id),
            _ => None,
        }
    }

    /// The ports that carry traffic (every port but the sync port).
    pub fn data_ports(&self) -> impl Iterator<Item = (PortId, &Port)> {
        let sync = self.sync_port();
        self.ports
            .iter()
            .enumerate()
            .map(|(i, p)| (PortId(i as u16), p))
            .filter(move |(id, _)| Some(*id) != sync)
    }

    /// The number of states each worker's shard may hold.
    pub fn states_per_worker(&self) -> u32 {
        let workers = self.workers.cores.len().max(1) as u32;
        self.limits.states.div_ceil(workers)
    }
}

/// Port names and what later sections need to know about ports while they are decoded.
#[derive(Debug, Default)]
pub(crate) struct PortNames {
    names: Vec<String>,
    addresses: Vec<Vec<IpAddr>>,
    subnets: Vec<Vec<Prefix>>,
    mtus: Vec<u16>,
    sync: Option<PortId>,
    sync_mtu: Option<(u16, YamlPath)>,
}

impl PortNames {
    fn lookup(&self, name: &str) -> Option<PortId> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| PortId(i as u16))
    }

    fn resolve(&self, d: &mut Decoder, node: &Node<'_>) -> Option<PortId> {
        let name = String::decode(node, d)?;
        let found = self.lookup(&name);
        if found.is_none() {
            let known = if self.names.is_empty() {
                "none are defined".to_string()
            } else {
                self.names.join(", ")
            };
            d.error(
                &node.path,
                format!("no port named `{name}` (ports: {known})"),
            );
        }
        found
    }

    /// Resolves a port that will carry traffic: it must exist and must not be the sync port.
    pub fn resolve_data_port(&self, d: &mut Decoder, node: &Node<'_>) -> Option<PortId> {
        let id = self.resolve(d, node)?;
        if Some(id) == self.sync {
            d.error(
                &node.path,
                format!(
                    "port `{}` is the sync port and cannot carry data",
                    self.name(id)
                ),
            );
            return None;
        }
        Some(id)
    }

    /// Resolves the sync port and remembers it, so that data sections cannot use it.
    pub fn claim_sync_port(&mut self, d: &mut Decoder, node: &Node<'_>) -> Option<PortId> {
        let id = self.resolve(d, node)?;
        self.sync = Some(id);
        Some(id)
    }

    pub fn note_sync_mtu(&mut self, mtu: u16, path: YamlPath) {
        self.sync_mtu = Some((mtu, path));
    }

    pub fn name(&self, id: PortId) -> &str {
        self.names
            .get(usize::from(id.0))
            .map_or("?", String::as_str)
    }

    /// The port's own addresses.
    pub fn addresses(&self, id: PortId) -> &[IpAddr] {
        self.addresses
            .get(usize::from(id.0))
            .map_or(&[], Vec::as_slice)
    }

    /// The subnets the port's addresses are in.
    pub fn subnets(&self, id: PortId) -> &[Prefix] {
        self.subnets
            .get(usize::from(id.0))
            .map_or(&[], Vec::as_slice)
    }
}

/// Owner redirect carries whole data frames over the sync link: its MTU (the `mtu` given, or the sync
/// port's) must take the largest data port's frame and the redirect's headers. A kernel interface's MTU is
/// known only at run time, where a frame that does not fit is counted and dropped.
fn check_redirect_mtu(d: &mut Decoder, sync: &SyncSettings, names: &PortNames, root: &Node<'_>) {
    if sync.redirect == Redirect::Off {
        return;
    }
    let sync_port = match sync.link {
        SyncLink::Port(id) => Some(id),
        SyncLink::Kernel { .. } => None,
    };
    let sync_mtu = match (&names.sync_mtu, sync_port) {
        (Some((mtu, _)), _) => *mtu,
        (None, Some(id)) => names.mtus[usize::from(id.0)],
        (None, None) => return,
    };
    let data = (0..names.mtus.len())
        .filter(|&i| Some(PortId(i as u16)) != sync_port)
        .max_by_key(|&i| names.mtus[i]);
    if let Some(i) = data {
        let auth = if sync.auth_key_file.is_some() {
            AUTH_OVERHEAD
        } else {
            0
        };
        let overhead = 18 + REDIRECT_OVERHEAD + auth;
        let need = u32::from(names.mtus[i]) + u32::from(overhead);
        if u32::from(sync_mtu) < need {
            d.error(
                &root.path,
                format!(
                    "sync.redirect needs a sync MTU of at least {need} (port `{}`'s MTU {} plus its \
                     Ethernet header and the redirect's {overhead} bytes{}); it is {sync_mtu}",
                    names.name(PortId(i as u16)),
                    names.mtus[i],
                    if auth > 0 {
                        ", authentication trailer included"
                    } else {
                        ""
                    }
                ),
            );
        }
    }
}

const EAL_CORE_ARGS: [&str; 5] = ["-l", "-c", "--lcores", "--main-lcore", "--master-lcore"];

/// Decodes the whole document into a profile, recording every problem in `d`.
pub(crate) fn decode_profile(d: &mut Decoder, root: &Value) -> Option<Profile> {
    let root = Node::root(root);
    let mut f = d.fields(&root)?;

    let node = match f.node("node") {
        Some(n) => decode_node(d, &n),
        None => {
            d.error(&root.path, "missing section `node` (name and host-id)");
            None
        }
    };
    let dpdk = decode_dpdk(d, f.node("dpdk"));

    let mut names = PortNames::default();
    let ports_node = f.node("ports");
    let workers_node = f.node("workers");
    let worker_count = workers_node
        .as_ref()
        .and_then(|n| n.value.get("cores"))
        .and_then(Value::as_sequence)
        .map_or(1, |c| c.len().max(1));
    let ports = match &ports_node {
        Some(n) => decode_ports(d, n, worker_count, &mut names),
        None => {
            d.error(&root.path, "missing section `ports`");
            Vec::new()
        }
    };

    if let (Some(dpdk), Some(n)) = (&dpdk, &ports_node) {
        check_data_room(d, dpdk.mbuf_data_size, n, &names);
    }

    let sync = f.node("sync").and_then(|n| decode_sync(d, &n, &mut names));
    if let (Some((mtu, path)), Some(SyncLink::Port(id))) =
        (&names.sync_mtu, sync.as_ref().map(|s| &s.link))
    {
        let port_mtu = names.mtus[usize::from(id.0)];
        if *mtu > port_mtu {
            d.error(
                path,
                format!(
                    "sync MTU {mtu} is larger than port `{}`'s MTU {port_mtu}",
                    names.name(*id)
                ),
            );
        }
    }

    if let Some(s) = &sync {
        check_redirect_mtu(d, s, &names, &root);
    }

    let workers = match &workers_node {
        Some(n) => decode_workers(d, n, sync.as_ref()),
        None => {
            d.error(&root.path, "missing section `workers` (their cores)");
            None
        }
    };
    let node_name = node
        .as_ref()
        .map_or("tandem", |n: &NodeSettings| n.name.as_str())
        .to_string();
    let control = decode_control(d, f.node("control"), &node_name);
    let forwarding = decode_forwarding(d, f.node("forwarding"), &names);
    let routes = match f.node("routes") {
        Some(n) => {
            if matches!(forwarding, Some(Forwarding::Wire { .. })) {
                d.error(
                    &n.path,
                    "routes are for forwarding mode router; wire mode forwards by port pair",
                );
            }
            decode_routes(d, &n, &names)
        }
        None => Vec::new(),
    };
    let failover = match f.node("failover") {
        Some(n) => decode_failover(d, &n, &names),
        None => Some(Failover {
            groups: Vec::new(),
            demotion: 50,
        }),
    };
    let rules = f
        .node("rules")
        .map(|n| decode_rules(d, &n, &names))
        .unwrap_or_default();
    let limits = decode_limits(d, f.node("limits"), worker_count);
    let timeouts = decode_timeouts(d, f.node("timeouts"));
    f.finish(d);

    Some(Profile {
        node: node?,
        dpdk: dpdk?,
        ports,
        workers: workers?,
        control: control?,
        forwarding: forwarding?,
        routes,
        sync,
        failover: failover?,
        rules,
        limits: limits?,
        timeouts: timeouts?,
    })
}

/// DPDK's headroom at the front of every mbuf (`RTE_PKTMBUF_HEADROOM`).
pub const MBUF_HEADROOM: usize = 128;
/// An Ethernet header with one VLAN tag: what a frame carries besides its IP packet.
const FRAME_OVERHEAD: usize = 14 + 4;

/// Frames are received into one mbuf each: every port's largest frame must fit an mbuf's data room after
/// DPDK's headroom, or the NIC would chain segments the worker does not read.
fn check_data_room(d: &mut Decoder, data_room: u16, ports: &Node<'_>, names: &PortNames) {
    for (i, &mtu) in names.mtus.iter().enumerate() {
        let needed = MBUF_HEADROOM + FRAME_OVERHEAD + usize::from(mtu);
        if needed > usize::from(data_room) {
            d.error(
                &ports.path.index(i).key("mtu"),
                format!(
                    "MTU {mtu} needs an mbuf data room of {needed} bytes ({MBUF_HEADROOM} headroom, \
                     {FRAME_OVERHEAD} Ethernet and VLAN header); dpdk.mbuf-data-size is {data_room}"
                ),
            );
        }
    }
}

fn decode_node(d: &mut Decoder, node: &Node<'_>) -> Option<NodeSettings> {
    let mut f = d.fields(node)?;
    let name = f.required::<String>(d, "name");
    let host_id = match f.node("host-id") {
        Some(n) => decode_host_id(d, &n),
        None => {
            d.error(
                f.path(),
                "missing key `host-id` (this node's pfsync creator id)",
            );
            None
        }
    };
    f.finish(d);
    let name = name?;
    if !valid_name(&name) {
        d.error(
            &node.path.key("name"),
            "a node name is 1-32 characters: letters, digits, `-`, `_`",
        );
    }
    Some(NodeSettings {
        name,
        host_id: host_id?,
    })
}

fn valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(crate) fn decode_dpdk(d: &mut Decoder, node: Option<Node<'_>>) -> Option<DpdkSettings> {
    let defaults = DpdkSettings {
        eal_args: Vec::new(),
        mbufs: 8191,
        mbuf_cache: 256,
        mbuf_data_size: 2048 + 128,
        rx_descriptors: 1024,
        tx_descriptors: 1024,
    };
    let Some(node) = node else {
        return Some(defaults);
    };
    let mut f = d.fields(&node)?;
    let args_node = f.node("eal-args");
    let eal_args: Vec<String> = args_node
        .as_ref()
        .and_then(|n| d.list(n))
        .unwrap_or_default();
    for (i, arg) in eal_args.iter().enumerate() {
        let name = arg.split('=').next().unwrap_or(arg);
        if EAL_CORE_ARGS.contains(&name)
            && let Some(n) = &args_node
        {
            d.error(
                &n.path.index(i),
                format!(
                    "`{arg}`: cores come from workers, sync and control, not from EAL arguments"
                ),
            );
        }
    }
    let mbufs = bounded(&mut f, d, "mbufs", defaults.mbufs, 1023, 16 << 20);
    let mbuf_cache = bounded(&mut f, d, "mbuf-cache", defaults.mbuf_cache, 0, 512);
    let mbuf_data_size = bounded(&mut f, d, "mbuf-data-size", 2176, 1024, 65535) as u16;
    let rx_descriptors = bounded(&mut f, d, "rx-descriptors", 1024, 32, 32768) as u16;
    let tx_descriptors = bounded(&mut f, d, "tx-descriptors", 1024, 32, 32768) as u16;
    f.finish(d);
    if mbuf_cache > mbufs / 4 {
        d.error(
            &node.path.key("mbuf-cache"),
            "mbuf-cache must be at most a quarter of mbufs",
        );
    }
    Some(DpdkSettings {
        eal_args,
        mbufs,
        mbuf_cache,
        mbuf_data_size,
        rx_descriptors,
        tx_descriptors,
    })
}

fn decode_ports(
    d: &mut Decoder,
    node: &Node<'_>,
    workers: usize,
    names: &mut PortNames,
) -> Vec<Port> {
    let mut ports = Vec::new();
    let Some(items) = node.value.as_sequence() else {
        d.error(&node.path, "expected a sequence of ports");
        return ports;
    };
    if items.is_empty() {
        d.error(&node.path, "at least one port is needed");
    }
    for (i, item) in items.iter().enumerate() {
        let item = node.index(i, item);
        let Some(port) = decode_port(d, &item, workers) else {
            // Keep indices aligned with the YAML list so later references point at the right port.
            names.names.push(String::new());
            names.subnets.push(Vec::new());
            names.addresses.push(Vec::new());
            names.mtus.push(1500);
            continue;
        };
        if names.lookup(&port.name).is_some() {
            d.error(
                &item.path.key("name"),
                format!("port name `{}` is used twice", port.name),
            );
        }
        if ports.iter().any(|p: &Port| p.device == port.device) {
            d.error(
                &item.path.key("device"),
                format!("device `{}` is used by two ports", port.device),
            );
        }
        names.names.push(port.name.clone());
        names
            .addresses
            .push(port.addresses.iter().map(|a| a.addr).collect());
        names.subnets.push(
            port.addresses
                .iter()
                .map(InterfaceAddress::network)
                .collect(),
        );
        names.mtus.push(port.mtu);
        ports.push(port);
    }
    ports
}

fn decode_port(d: &mut Decoder, node: &Node<'_>, workers: usize) -> Option<Port> {
    let mut f = d.fields(node)?;
    let name = f.required::<String>(d, "name");
    let device = f.required::<String>(d, "device");
    let queues = match f.node("queues") {
        None => Some(workers as u16),
        Some(n) => match u16::decode(&n, d) {
            Some(0) => {
                d.error(&n.path, "a port needs at least one queue");
                None
            }
            Some(q) if usize::from(q) > workers => {
                d.error(
                    &n.path,
                    format!("{q} queues but only {workers} worker(s) to poll them"),
                );
                None
            }
            other => other,
        },
    };
    let mtu = bounded(&mut f, d, "mtu", 1500, 576, 9600) as u16;
    let addresses: Vec<InterfaceAddress> = f.one_or_many(d, "addresses");
    let mac = f.optional::<MacAddr>(d, "mac");
    f.finish(d);
    for (i, a) in addresses.iter().enumerate() {
        if addresses[..i].iter().any(|b| b.addr == a.addr) {
            d.error(
                &node.path.key("addresses").index(i),
                format!("address {} is listed twice", a.addr),
            );
        }
    }
    if let Some(n) = &name
        && (!(1..=15).contains(&n.len())
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        d.error(
            &node.path.key("name"),
            "a port name is 1-15 characters (pfsync's ifname): letters, digits, `-`, `_`",
        );
    }
    if device.as_deref() == Some("") {
        d.error(&node.path.key("device"), "the device must not be empty");
    }
    Some(Port {
        name: name?,
        device: device?,
        queues: queues.unwrap_or(1),
        mtu,
        addresses,
        mac,
    })
}

fn decode_workers(
    d: &mut Decoder,
    node: &Node<'_>,
    sync: Option<&SyncSettings>,
) -> Option<Workers> {
    let mut f = d.fields(node)?;
    let cores_node = f.node("cores");
    let cores: Vec<usize> = cores_node
        .as_ref()
        .and_then(|n| d.list(n))
        .unwrap_or_default();
    let polling = match f.node("polling") {
        None => PollMode::Adaptive,
        Some(n) => match n.as_str() {
            Some("busy") => PollMode::Busy,
            Some("adaptive") => PollMode::Adaptive,
            _ => {
                d.error(&n.path, "expected `busy` or `adaptive`");
                PollMode::Adaptive
            }
        },
    };
    let idle_sleep_us = bounded(&mut f, d, "idle-sleep-us", 100, 1, 100_000);
    f.finish(d);
    let Some(cores_node) = cores_node else {
        d.error(&node.path, "missing key `cores` (one worker per core)");
        return None;
    };
    if cores.is_empty() {
        d.error(&cores_node.path, "at least one worker core is needed");
    }
    let mut seen = HashSet::new();
    for (i, core) in cores.iter().enumerate() {
        if !seen.insert(core) {
            d.error(
                &cores_node.path.index(i),
                format!("core {core} is given to two workers"),
            );
        }
        if let Some(sync) = sync
            && sync.core == *core
            && polling == PollMode::Busy
        {
            d.error(
                    &cores_node.path.index(i),
                    format!("core {core} is also the sync core; busy polling needs a core of its own (use polling: adaptive to share)"),
                );
        }
    }
    Some(Workers {
        cores,
        polling,
        idle_sleep_us,
    })
}

fn decode_control(d: &mut Decoder, node: Option<Node<'_>>, node_name: &str) -> Option<Control> {
    let default_socket = PathBuf::from(format!("/run/tandem/{node_name}.sock"));
    let Some(node) = node else {
        return Some(Control {
            core: None,
            admin_socket: default_socket,
            metrics_listen: None,
        });
    };
    let mut f = d.fields(&node)?;
    let core = f.optional::<usize>(d, "core");
    let admin_socket = f
        .optional::<String>(d, "admin-socket")
        .map_or(default_socket, PathBuf::from);
    let metrics_listen = f.optional(d, "metrics-listen");
    f.finish(d);
    if admin_socket.as_os_str().is_empty() {
        d.error(
            &node.path.key("admin-socket"),
            "the admin socket path must not be empty",
        );
    }
    Some(Control {
        core,
        admin_socket,
        metrics_listen,
    })
}

fn decode_forwarding(
    d: &mut Decoder,
    node: Option<Node<'_>>,
    names: &PortNames,
) -> Option<Forwarding> {
    let Some(node) = node else {
        return Some(Forwarding::Router);
    };
    let mut f = d.fields(&node)?;
    let mode = match f.node("mode") {
        None => Some("router"),
        Some(n) => match n.as_str() {
            Some(m @ ("router" | "wire")) => Some(m),
            _ => {
                d.error(&n.path, "expected `router` or `wire`");
                None
            }
        },
    };
    let pairs_node = f.node("pairs");
    f.finish(d);
    match (mode?, pairs_node) {
        ("router", None) => Some(Forwarding::Router),
        ("router", Some(n)) => {
            d.error(&n.path, "`pairs` is for forwarding mode wire");
            Some(Forwarding::Router)
        }
        (_, None) => {
            d.error(
                &node.path,
                "wire mode needs `pairs` of ports, such as [[inside, outside]]",
            );
            None
        }
        (_, Some(n)) => {
            let Some(items) = n.value.as_sequence() else {
                d.error(&n.path, "expected a sequence of port pairs");
                return None;
            };
            let mut pairs = Vec::new();
            let mut used = HashSet::new();
            for (i, item) in items.iter().enumerate() {
                let pair = n.index(i, item);
                match item.as_sequence().map(Vec::as_slice) {
                    Some([a, b]) => {
                        let a = names.resolve_data_port(d, &pair.index(0, a));
                        let b = names.resolve_data_port(d, &pair.index(1, b));
                        if let (Some(a), Some(b)) = (a, b) {
                            if a == b {
                                d.error(&pair.path, "a pair needs two different ports");
                            } else if !used.insert(a) || !used.insert(b) {
                                d.error(&pair.path, "a port can be in only one pair");
                            } else {
                                pairs.push((a, b));
                            }
                        }
                    }
                    _ => d.error(&pair.path, "a pair is a list of two port names"),
                }
            }
            Some(Forwarding::Wire { pairs })
        }
    }
}

fn decode_routes(d: &mut Decoder, node: &Node<'_>, names: &PortNames) -> Vec<Route> {
    let mut routes = Vec::new();
    let Some(items) = node.value.as_sequence() else {
        d.error(&node.path, "expected a sequence of routes");
        return routes;
    };
    for (i, item) in items.iter().enumerate() {
        let item = node.index(i, item);
        let Some(mut f) = d.fields(&item) else {
            continue;
        };
        let to = f.required::<Prefix>(d, "to");
        let via_node = f.node("via");
        let via = via_node.as_ref().and_then(|n| IpAddr::decode(n, d));
        let port = f.node("port").and_then(|n| names.resolve_data_port(d, &n));
        f.finish(d);
        let Some(to) = to else { continue };
        if let (Some(via), Some(n)) = (via, &via_node)
            && crate::net::Family::of(&via) != to.family()
        {
            d.error(
                &n.path,
                format!("next hop {via} is not in the family of {to}"),
            );
            continue;
        }
        let port = match (port, via) {
            (Some(port), _) => Some(port),
            (None, Some(via)) => {
                let found = (0..names.names.len()).map(|p| PortId(p as u16)).find(|p| {
                    Some(*p) != names.sync && names.subnets(*p).iter().any(|net| net.contains(&via))
                });
                if let (None, Some(n)) = (found, &via_node) {
                    let on_sync = names
                        .sync
                        .is_some_and(|s| names.subnets(s).iter().any(|net| net.contains(&via)));
                    if on_sync {
                        d.error(
                            &n.path,
                            format!(
                                "next hop {via} is on the sync port's subnet, which carries no data"
                            ),
                        );
                    } else {
                        d.error(
                            &n.path,
                            format!("next hop {via} is in no port's subnet; add `port`"),
                        );
                    }
                }
                found
            }
            (None, None) => {
                d.error(&item.path, "a route needs `via` (a next hop) or `port`");
                None
            }
        };
        if let Some(port) = port {
            routes.push(Route { to, via, port });
        }
    }
    routes
}

fn decode_limits(d: &mut Decoder, node: Option<Node<'_>>, workers: usize) -> Option<Limits> {
    let Some(node) = node else {
        return Some(Limits { states: 100_000 });
    };
    let mut f = d.fields(&node)?;
    let states = bounded(&mut f, d, "states", 100_000, 1, 1 << 30);
    f.finish(d);
    if (states as usize) < workers {
        d.error(
            &node.path.key("states"),
            format!("{states} states cannot be shared by {workers} workers"),
        );
    }
    Some(Limits { states })
}

fn decode_timeouts(d: &mut Decoder, node: Option<Node<'_>>) -> Option<Timeouts> {
    let mut t = Timeouts::PF_DEFAULTS;
    let Some(node) = node else {
        return Some(t);
    };
    let mut f = d.fields(&node)?;
    let fields: [(&str, &mut u32); 14] = [
        ("tcp-first", &mut t.tcp_first),
        ("tcp-opening", &mut t.tcp_opening),
        ("tcp-established", &mut t.tcp_established),
        ("tcp-closing", &mut t.tcp_closing),
        ("tcp-finwait", &mut t.tcp_finwait),
        ("tcp-closed", &mut t.tcp_closed),
        ("udp-first", &mut t.udp_first),
        ("udp-single", &mut t.udp_single),
        ("udp-multiple", &mut t.udp_multiple),
        ("icmp-first", &mut t.icmp_first),
        ("icmp-error", &mut t.icmp_error),
        ("other-first", &mut t.other_first),
        ("other-single", &mut t.other_single),
        ("other-multiple", &mut t.other_multiple),
    ];
    for (key, slot) in fields {
        *slot = bounded(&mut f, d, key, *slot, 1, 7 * 86_400);
    }
    f.finish(d);
    Some(t)
}
