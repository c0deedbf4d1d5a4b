//! Filter rules as an operator writes them: ordered, first match wins, default block (pf's `quick` on every
//! rule). This module parses and checks them; the dataplane compiles them into its matcher.

use std::fmt;

use crate::decode::{Decode, Decoder, Node};
use crate::net::{Family, PortRange, Prefix};
use crate::profile::{PortId, PortNames};

/// What a matching rule does with the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleAction {
    /// Let it through (and create a state unless the rule says `state: none`).
    Pass,
    /// Drop it.
    Block,
}

/// Which packets a rule's `port` refers to: those arriving on it, those leaving by it, or either.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The packet arrived on the port.
    In,
    /// The packet will leave by the port.
    Out,
    /// Either.
    Any,
}

/// A TCP flags test in pf's `flags S/SA` form: the flags in `mask` must equal `set`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpFlagsMatch {
    /// Flags that must be set.
    pub set: u8,
    /// Flags that are looked at.
    pub mask: u8,
}

impl TcpFlagsMatch {
    /// pf's default for stateful TCP rules: only an initial SYN (SYN set, ACK clear) creates a state.
    pub const SYN_ONLY: TcpFlagsMatch = TcpFlagsMatch {
        set: 0x02,
        mask: 0x12,
    };

    /// Whether a packet with `flags` passes the test.
    pub fn matches(&self, flags: u8) -> bool {
        flags & self.mask == self.set
    }
}

const FLAG_LETTERS: [(char, u8); 8] = [
    ('F', 0x01),
    ('S', 0x02),
    ('R', 0x04),
    ('P', 0x08),
    ('A', 0x10),
    ('U', 0x20),
    ('E', 0x40),
    ('W', 0x80),
];

fn parse_flag_letters(text: &str) -> Result<u8, String> {
    text.chars().try_fold(0u8, |acc, c| {
        FLAG_LETTERS
            .iter()
            .find(|(letter, _)| *letter == c)
            .map(|(_, bit)| acc | bit)
            .ok_or_else(|| format!("`{c}` is not a TCP flag (FSRPAUEW)"))
    })
}

impl std::str::FromStr for TcpFlagsMatch {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let Some((set, mask)) = text.split_once('/') else {
            return Err("write flags as set/mask, such as S/SA, or `any`".to_string());
        };
        let (set, mask) = (parse_flag_letters(set)?, parse_flag_letters(mask)?);
        if mask == 0 || set & !mask != 0 {
            return Err("the flags that must be set must all be in the mask".to_string());
        }
        Ok(TcpFlagsMatch { set, mask })
    }
}

impl fmt::Display for TcpFlagsMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letters = |bits: u8| -> String {
            FLAG_LETTERS
                .iter()
                .filter(|(_, b)| bits & b != 0)
                .map(|(c, _)| *c)
                .collect()
        };
        write!(f, "{}/{}", letters(self.set), letters(self.mask))
    }
}

/// IP protocol numbers with names in profiles.
pub mod proto {
    /// ICMP (IPv4).
    pub const ICMP: u8 = 1;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
}

fn proto_by_name(name: &str) -> Option<u8> {
    match name {
        "tcp" => Some(proto::TCP),
        "udp" => Some(proto::UDP),
        "icmp" => Some(proto::ICMP),
        "icmp6" | "ipv6-icmp" => Some(proto::ICMPV6),
        _ => None,
    }
}

/// ICMP type names, pf's short ones and the long ones.
fn icmp_type_by_name(proto: u8, name: &str) -> Option<u8> {
    let v4 = [
        (&["echorep", "echo-reply"][..], 0),
        (&["unreach", "destination-unreachable"][..], 3),
        (&["redir", "redirect"][..], 5),
        (&["echoreq", "echo-request"][..], 8),
        (&["timex", "time-exceeded"][..], 11),
        (&["paramprob", "parameter-problem"][..], 12),
    ];
    let v6 = [
        (&["unreach", "destination-unreachable"][..], 1),
        (&["toobig", "packet-too-big"][..], 2),
        (&["timex", "time-exceeded"][..], 3),
        (&["paramprob", "parameter-problem"][..], 4),
        (&["echoreq", "echo-request"][..], 128),
        (&["echorep", "echo-reply"][..], 129),
        (&["neighbrsol", "neighbor-solicitation"][..], 135),
        (&["neighbradv", "neighbor-advertisement"][..], 136),
    ];
    let table: &[(&[&str], u8)] = if proto == proto::ICMPV6 { &v6 } else { &v4 };
    table
        .iter()
        .find(|(names, _)| names.contains(&name))
        .map(|(_, t)| *t)
}

/// One filter rule, checked and with its port resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// An optional label shown by `tandem show rules`.
    pub label: Option<String>,
    /// Pass or block.
    pub action: RuleAction,
    /// For block rules: answer TCP with a RST and other protocols with ICMP unreachable.
    pub block_return: bool,
    /// Which side of `port` the rule looks at.
    pub direction: Direction,
    /// The port the rule is bound to, or any port.
    pub port: Option<PortId>,
    /// Address family, or both.
    pub family: Option<Family>,
    /// IP protocol number, or any.
    pub proto: Option<u8>,
    /// Source prefixes; empty means any.
    pub from: Vec<Prefix>,
    /// Destination prefixes; empty means any.
    pub to: Vec<Prefix>,
    /// Source port ranges (TCP/UDP); empty means any.
    pub from_ports: Vec<PortRange>,
    /// Destination port ranges (TCP/UDP); empty means any.
    pub to_ports: Vec<PortRange>,
    /// ICMP or ICMPv6 type.
    pub icmp_type: Option<u8>,
    /// ICMP or ICMPv6 code.
    pub icmp_code: Option<u8>,
    /// TCP flags a packet must carry to match; `None` is `flags any`.
    pub tcp_flags: Option<TcpFlagsMatch>,
    /// Whether a passing packet creates a state.
    pub keep_state: bool,
    /// pf's `allow-opts`: IPv4 packets with options pass this rule and its states (pf drops them by
    /// default).
    pub allow_opts: bool,
}

/// Decodes the `rules` list; ports are resolved against `ports`, which also refuses the sync port.
pub(crate) fn decode_rules(d: &mut Decoder, node: &Node<'_>, ports: &PortNames) -> Vec<Rule> {
    let mut rules = Vec::new();
    let Some(items) = node.value.as_sequence() else {
        if !node.value.is_null() {
            d.error(&node.path, "expected a sequence of rules");
        }
        return rules;
    };
    for (i, item) in items.iter().enumerate() {
        if let Some(rule) = decode_rule(d, &node.index(i, item), ports) {
            rules.push(rule);
        }
    }
    rules
}

fn decode_rule(d: &mut Decoder, node: &Node<'_>, ports: &PortNames) -> Option<Rule> {
    let mut f = d.fields(node)?;
    let label = f.optional::<String>(d, "label");
    let action = match f.node("action") {
        None => {
            d.error(f.path(), "missing key `action` (pass or block)");
            None
        }
        Some(n) => match n.as_str() {
            Some("pass") => Some(RuleAction::Pass),
            Some("block") => Some(RuleAction::Block),
            _ => {
                d.error(&n.path, "expected `pass` or `block`");
                None
            }
        },
    };
    let direction = match f.node("direction") {
        None => Direction::Any,
        Some(n) => match n.as_str() {
            Some("in") => Direction::In,
            Some("out") => Direction::Out,
            Some("any") => Direction::Any,
            _ => {
                d.error(&n.path, "expected `in`, `out` or `any`");
                Direction::Any
            }
        },
    };
    let port = f.node("port").and_then(|n| ports.resolve_data_port(d, &n));
    let family = f.optional::<Family>(d, "family");
    let proto_node = f.node("proto");
    let proto = proto_node.as_ref().and_then(|n| match n.value {
        yaml_serde::Value::Number(_) => u8::decode(n, d),
        _ => match n.as_str().and_then(proto_by_name) {
            Some(p) => Some(p),
            None => {
                d.error(
                    &n.path,
                    "expected tcp, udp, icmp, icmp6 or a protocol number 0-255",
                );
                None
            }
        },
    });
    let from = f.one_or_many::<Prefix>(d, "from");
    let to = f.one_or_many::<Prefix>(d, "to");
    let from_ports_node = f.node("from-port");
    let to_ports_node = f.node("to-port");
    let from_ports = from_ports_node
        .as_ref()
        .and_then(|n| d.one_or_many::<PortRange>(n))
        .unwrap_or_default();
    let to_ports = to_ports_node
        .as_ref()
        .and_then(|n| d.one_or_many::<PortRange>(n))
        .unwrap_or_default();
    let icmp_type_node = f.node("icmp-type");
    let icmp_code_node = f.node("icmp-code");
    let flags_node = f.node("flags");
    let state_node = f.node("state");
    let return_node = f.node("return");
    let allow_opts = f.optional::<bool>(d, "allow-opts").unwrap_or(false);
    f.finish(d);

    // Family agreement: every prefix must match the rule's family, and all prefixes one another.
    let mut family = family;
    for (key, prefixes) in [("from", &from), ("to", &to)] {
        for (i, prefix) in prefixes.iter().enumerate() {
            let p_family = prefix.family();
            match family {
                None => family = Some(p_family),
                Some(fam) if fam != p_family => {
                    let path = node.path.key(key);
                    let path = if prefixes.len() > 1 {
                        path.index(i)
                    } else {
                        path
                    };
                    d.error(
                        &path,
                        format!("{prefix} is {p_family} but the rule is {fam}"),
                    );
                }
                _ => {}
            }
        }
    }

    let is_ports_proto = matches!(proto, Some(proto::TCP | proto::UDP));
    for n in [&from_ports_node, &to_ports_node].into_iter().flatten() {
        if !is_ports_proto {
            d.error(&n.path, "ports can only be matched with proto tcp or udp");
        }
    }
    let is_icmp = matches!(proto, Some(proto::ICMP | proto::ICMPV6));
    if let (Some(Family::Inet6), Some(proto::ICMP)) | (Some(Family::Inet), Some(proto::ICMPV6)) =
        (family, proto)
        && let Some(n) = &proto_node
    {
        d.error(&n.path, "icmp is for inet and icmp6 for inet6");
    }
    let icmp_type = icmp_type_node.as_ref().and_then(|n| {
        if !is_icmp {
            d.error(&n.path, "icmp-type needs proto icmp or icmp6");
            return None;
        }
        match n.value {
            yaml_serde::Value::Number(_) => u8::decode(n, d),
            _ => {
                let name = n.as_str().unwrap_or("");
                let found = icmp_type_by_name(proto.unwrap_or(proto::ICMP), name);
                if found.is_none() {
                    d.error(
                        &n.path,
                        format!(
                            "unknown ICMP type `{name}` (use a number or a name such as echoreq)"
                        ),
                    );
                }
                found
            }
        }
    });
    let icmp_code = icmp_code_node.as_ref().and_then(|n| {
        if icmp_type.is_none() {
            d.error(&n.path, "icmp-code needs icmp-type");
            return None;
        }
        u8::decode(n, d)
    });

    let keep_state = match &state_node {
        None => true,
        Some(n) => match n.as_str() {
            Some("keep") => true,
            Some("none") => false,
            _ => {
                d.error(&n.path, "expected `keep` or `none`");
                true
            }
        },
    };
    let block_return = match &return_node {
        None => false,
        Some(n) => {
            let value = bool::decode(n, d).unwrap_or(false);
            if value && action == Some(RuleAction::Pass) {
                d.error(&n.path, "`return` is only for block rules");
            }
            value
        }
    };
    if state_node.is_some()
        && action == Some(RuleAction::Block)
        && let Some(n) = &state_node
    {
        d.error(&n.path, "`state` is only for pass rules");
    }

    let could_be_tcp = proto.is_none() || proto == Some(proto::TCP);
    let tcp_flags = match &flags_node {
        Some(n) => {
            if !could_be_tcp {
                d.error(&n.path, "flags can only be matched with proto tcp");
                None
            } else if n.as_str() == Some("any") {
                None
            } else {
                n.as_str()
                    .ok_or_else(|| "write flags as set/mask, such as S/SA, or `any`".to_string())
                    .and_then(str::parse::<TcpFlagsMatch>)
                    .map_err(|e| d.error(&n.path, e))
                    .ok()
            }
        }
        // pf: stateful TCP pass rules default to `flags S/SA`, so only a real connection opening makes a state.
        None if action == Some(RuleAction::Pass) && keep_state && could_be_tcp => {
            Some(TcpFlagsMatch::SYN_ONLY)
        }
        None => None,
    };

    Some(Rule {
        label,
        action: action?,
        block_return,
        direction,
        port,
        family,
        proto,
        from,
        to,
        from_ports,
        to_ports,
        icmp_type,
        icmp_code,
        tcp_flags,
        keep_state,
        allow_opts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_like_pf() {
        assert_eq!("S/SA".parse::<TcpFlagsMatch>(), Ok(TcpFlagsMatch::SYN_ONLY));
        let m: TcpFlagsMatch = "S/FSRPAUEW".parse().expect("valid");
        assert_eq!(m.mask, 0xff);
        assert_eq!(m.to_string(), "S/FSRPAUEW");
        assert!("SA/S".parse::<TcpFlagsMatch>().is_err());
        assert!("X/SA".parse::<TcpFlagsMatch>().is_err());
        assert!("S".parse::<TcpFlagsMatch>().is_err());
    }

    #[test]
    fn syn_only_matches_an_opening_syn_and_nothing_else() {
        let m = TcpFlagsMatch::SYN_ONLY;
        assert!(m.matches(0x02));
        assert!(
            m.matches(0x02 | 0x08 | 0x01),
            "flags outside the mask are ignored"
        );
        assert!(!m.matches(0x12), "SYN+ACK is a reply, not an opening");
        assert!(!m.matches(0x10));
    }

    #[test]
    fn icmp_type_names_depend_on_the_protocol() {
        assert_eq!(icmp_type_by_name(proto::ICMP, "echoreq"), Some(8));
        assert_eq!(icmp_type_by_name(proto::ICMPV6, "echo-request"), Some(128));
        assert_eq!(icmp_type_by_name(proto::ICMPV6, "toobig"), Some(2));
        assert_eq!(icmp_type_by_name(proto::ICMP, "toobig"), None);
    }
}
