//! The `failover` section: VRRPv3 (RFC 5798) groups on data ports, and how much a node lowers its priority
//! while it is not in sync.

use std::net::IpAddr;

use crate::decode::{Decode, Decoder, Node};
use crate::net::Family;
use crate::profile::{PortId, PortNames};
use crate::sync::bounded;

/// One VRRP virtual router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverGroup {
    /// A name for `tandem show` and logs.
    pub name: String,
    /// Virtual router id, 1-255, unique per port and family.
    pub vrid: u8,
    /// The data port the group runs on.
    pub port: PortId,
    /// Priority 1-254, or 255 for the owner of the virtual addresses (RFC 5798 section 6.1: it becomes
    /// master at once and is never demoted).
    pub priority: u8,
    /// Advertisement interval in milliseconds (VRRPv3 carries centiseconds).
    pub advert_interval_ms: u32,
    /// Whether a higher-priority backup takes over from a lower-priority master.
    pub preempt: bool,
    /// After the node starts, how long it waits before it preempts, in milliseconds.
    pub preempt_delay_ms: u32,
    /// The virtual addresses, all of one family.
    pub addresses: Vec<IpAddr>,
}

impl FailoverGroup {
    /// The family of the group's addresses.
    pub fn family(&self) -> Family {
        self.addresses.first().map_or(Family::Inet, Family::of)
    }
}

/// The validated `failover` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failover {
    /// The groups.
    pub groups: Vec<FailoverGroup>,
    /// Subtracted from every group's priority while the node is not in sync or its sync link is down.
    pub demotion: u8,
}

pub(crate) fn decode_failover(
    d: &mut Decoder,
    node: &Node<'_>,
    ports: &PortNames,
) -> Option<Failover> {
    let mut f = d.fields(node)?;
    let demotion = bounded(&mut f, d, "demotion", 50, 1, 254) as u8;
    let groups_node = f.node("groups");
    f.finish(d);
    let mut groups: Vec<FailoverGroup> = Vec::new();
    let Some(groups_node) = groups_node else {
        return Some(Failover { groups, demotion });
    };
    let Some(items) = groups_node.value.as_sequence() else {
        d.error(&groups_node.path, "expected a sequence of groups");
        return None;
    };
    for (i, item) in items.iter().enumerate() {
        let node = groups_node.index(i, item);
        if let Some(group) = decode_group(d, &node, ports) {
            let clash = groups.iter().any(|g| {
                g.port == group.port && g.vrid == group.vrid && g.family() == group.family()
            });
            if clash {
                d.error(
                    &node.path.key("vrid"),
                    format!(
                        "vrid {} is already used on this port for {}",
                        group.vrid,
                        group.family()
                    ),
                );
            }
            if groups.iter().any(|g| g.name == group.name) {
                d.error(
                    &node.path.key("name"),
                    format!("group name `{}` is used twice", group.name),
                );
            }
            groups.push(group);
        }
    }
    Some(Failover { groups, demotion })
}

fn decode_group(d: &mut Decoder, node: &Node<'_>, ports: &PortNames) -> Option<FailoverGroup> {
    let mut f = d.fields(node)?;
    let name = f.required::<String>(d, "name");
    let vrid = f.node("vrid").and_then(|n| match u8::decode(&n, d) {
        Some(0) => {
            d.error(&n.path, "vrid must be 1-255");
            None
        }
        other => other,
    });
    if vrid.is_none() && !f.has("vrid") {
        d.error(f.path(), "missing key `vrid`");
    }
    let port = match f.node("port") {
        Some(n) => ports.resolve_data_port(d, &n),
        None => {
            d.error(f.path(), "missing key `port`");
            None
        }
    };
    let priority = bounded(&mut f, d, "priority", 100, 1, 255) as u8;
    let advert_interval_ms = bounded(&mut f, d, "advert-interval-ms", 1000, 10, 40_950);
    let preempt = f.or(d, "preempt", true);
    let preempt_delay_ms = bounded(&mut f, d, "preempt-delay-ms", 0, 0, 3_600_000);
    let addresses_node = f.node("addresses");
    f.finish(d);
    let addresses: Vec<IpAddr> = addresses_node
        .as_ref()
        .and_then(|n| d.one_or_many(n))
        .unwrap_or_default();
    match &addresses_node {
        None => d.error(&node.path, "missing key `addresses`"),
        Some(n) if addresses.is_empty() && n.value.is_sequence() => {
            d.error(&n.path, "a group needs at least one address")
        }
        _ => {}
    }
    if let Some(n) = &addresses_node {
        let family = addresses.first().map(Family::of);
        for (i, a) in addresses.iter().enumerate() {
            let path = if n.value.is_sequence() {
                n.path.index(i)
            } else {
                n.path.clone()
            };
            if Some(Family::of(a)) != family {
                d.error(
                    &path,
                    format!(
                        "{a}: all addresses of a group must be one family (RFC 5798 section 5.2.9)"
                    ),
                );
                continue;
            }
            if let Some(port) = port
                && !ports.subnets(port).iter().any(|net| net.contains(a))
                && !is_link_local(a)
            {
                d.error(
                    &path,
                    format!("{a} is not in any subnet of port `{}`", ports.name(port)),
                );
            }
        }
        // RFC 5798 section 6.1: priority 255 says this node owns the addresses.
        if priority == 255
            && let Some(port) = port
            && let Some(a) = addresses
                .iter()
                .find(|a| !ports.addresses(port).contains(a))
        {
            d.error(
                &node.path.key("priority"),
                format!(
                    "priority 255 is for the owner of the addresses (RFC 5798 section 6.1): {a} is \
                     not an address of port `{}`",
                    ports.name(port)
                ),
            );
        }
        // RFC 5798 section 5.2.9: for IPv6 the first address must be the link-local one.
        if let Some(IpAddr::V6(first)) = addresses.first()
            && !is_link_local(&IpAddr::V6(*first))
        {
            let path = if n.value.is_sequence() {
                n.path.index(0)
            } else {
                n.path.clone()
            };
            d.error(
                &path,
                "the first IPv6 address of a group must be link-local (RFC 5798 section 5.2.9)",
            );
        }
    }
    Some(FailoverGroup {
        name: name?,
        vrid: vrid?,
        port: port?,
        priority,
        advert_interval_ms,
        preempt,
        preempt_delay_ms,
        addresses,
    })
}

fn is_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(_) => false,
        IpAddr::V6(v6) => v6.segments()[0] & 0xffc0 == 0xfe80,
    }
}
