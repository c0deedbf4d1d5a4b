//! The filter rule set, compiled from the profile: ordered, first match wins, default block. Rules are
//! evaluated only for packets that match no state, so a linear scan over compact rules is enough; the
//! worker keeps per-rule counters of its own.

use tandem_config::{
    Direction, Family, PortId, PortRange, Prefix, Rule, RuleAction, TcpFlagsMatch,
};

use crate::flow::Addr;

/// A prefix as pf-layout address bits and a mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Net {
    family: Family,
    bits: u128,
    mask: u128,
}

impl Net {
    fn from_prefix(p: &Prefix) -> Net {
        let (bits, width) = match p.addr {
            std::net::IpAddr::V4(v4) => (u128::from(u32::from(v4)) << 96, 32u32),
            std::net::IpAddr::V6(v6) => (u128::from(v6), 128u32),
        };
        let mask = if p.len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(p.len))
        };
        debug_assert!(u32::from(p.len) <= width);
        Net {
            family: p.family(),
            bits: bits & mask,
            mask,
        }
    }

    fn contains(&self, family: Family, addr: u128) -> bool {
        self.family == family && addr & self.mask == self.bits
    }
}

/// What a matching rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pass; create a state when `keep_state`.
    Pass {
        /// Whether the packet creates a state.
        keep_state: bool,
        /// Whether IPv4 options may pass (pf's `allow-opts`), on this packet and its state.
        allow_opts: bool,
    },
    /// Drop; answer with a TCP RST or ICMP unreachable when `answer`.
    Block {
        /// Whether to answer the sender.
        answer: bool,
    },
}

/// A rule ready for matching.
#[derive(Clone, Debug)]
struct CompiledRule {
    direction: Direction,
    port: Option<PortId>,
    family: Option<Family>,
    proto: Option<u8>,
    from: Vec<Net>,
    to: Vec<Net>,
    from_ports: Vec<PortRange>,
    to_ports: Vec<PortRange>,
    icmp_type: Option<u8>,
    icmp_code: Option<u8>,
    tcp_flags: Option<TcpFlagsMatch>,
    verdict: Verdict,
}

/// What the rules look at in a packet that matched no state.
#[derive(Clone, Copy, Debug)]
pub struct RuleInput {
    /// The port it arrived on.
    pub ingress: PortId,
    /// The port it will leave by, when known.
    pub egress: Option<PortId>,
    /// Address family.
    pub family: Family,
    /// IP protocol.
    pub proto: u8,
    /// Source address, pf layout.
    pub src: Addr,
    /// Destination address, pf layout.
    pub dst: Addr,
    /// Source port (TCP/UDP).
    pub sport: u16,
    /// Destination port (TCP/UDP).
    pub dport: u16,
    /// ICMP type and code, for ICMP and ICMPv6.
    pub icmp: Option<(u8, u8)>,
    /// TCP flags, for TCP.
    pub tcp_flags: Option<u8>,
}

/// The rule set of one node.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
}

/// The outcome of rule evaluation: the matching rule's index, or none (default block), and the verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleMatch {
    /// Index of the matching rule in the profile, `None` for the default block.
    pub rule: Option<usize>,
    /// What to do.
    pub verdict: Verdict,
}

fn addr_bits(a: &Addr) -> u128 {
    u128::from_be_bytes(*a)
}

impl RuleSet {
    /// Compiles the profile's rules.
    pub fn compile(rules: &[Rule]) -> RuleSet {
        let rules = rules
            .iter()
            .map(|r| CompiledRule {
                direction: r.direction,
                port: r.port,
                family: r.family,
                proto: r.proto,
                from: r.from.iter().map(Net::from_prefix).collect(),
                to: r.to.iter().map(Net::from_prefix).collect(),
                from_ports: r.from_ports.clone(),
                to_ports: r.to_ports.clone(),
                icmp_type: r.icmp_type,
                icmp_code: r.icmp_code,
                tcp_flags: r.tcp_flags,
                verdict: match r.action {
                    RuleAction::Pass => Verdict::Pass {
                        keep_state: r.keep_state,
                        allow_opts: r.allow_opts,
                    },
                    RuleAction::Block => Verdict::Block {
                        answer: r.block_return,
                    },
                },
            })
            .collect();
        RuleSet { rules }
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules (everything is blocked).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Evaluates the rules in order; the first that matches decides, and nothing matching means block.
    pub fn evaluate(&self, p: &RuleInput) -> RuleMatch {
        let (src, dst) = (addr_bits(&p.src), addr_bits(&p.dst));
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.matches(p, src, dst) {
                return RuleMatch {
                    rule: Some(index),
                    verdict: rule.verdict,
                };
            }
        }
        RuleMatch {
            rule: None,
            verdict: Verdict::Block { answer: false },
        }
    }
}

impl CompiledRule {
    fn matches(&self, p: &RuleInput, src: u128, dst: u128) -> bool {
        if let Some(port) = self.port {
            let hit = match self.direction {
                Direction::In => p.ingress == port,
                Direction::Out => p.egress == Some(port),
                Direction::Any => p.ingress == port || p.egress == Some(port),
            };
            if !hit {
                return false;
            }
        }
        if self.family.is_some_and(|f| f != p.family) || self.proto.is_some_and(|x| x != p.proto) {
            return false;
        }
        if !self.from.is_empty() && !self.from.iter().any(|n| n.contains(p.family, src)) {
            return false;
        }
        if !self.to.is_empty() && !self.to.iter().any(|n| n.contains(p.family, dst)) {
            return false;
        }
        if !self.from_ports.is_empty() && !self.from_ports.iter().any(|r| r.contains(p.sport)) {
            return false;
        }
        if !self.to_ports.is_empty() && !self.to_ports.iter().any(|r| r.contains(p.dport)) {
            return false;
        }
        if let Some(t) = self.icmp_type {
            match p.icmp {
                Some((pt, pc)) if pt == t && self.icmp_code.is_none_or(|c| c == pc) => {}
                _ => return false,
            }
        }
        // pf applies `flags` only to TCP packets; a rule without a protocol still passes UDP and ICMP.
        if let (Some(flags), Some(pf)) = (self.tcp_flags, p.tcp_flags)
            && !flags.matches(pf)
        {
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile_rules(yaml_rules: &str) -> RuleSet {
        let src = format!(
            "node: {{name: t, host-id: 1}}\nports:\n  - {{name: inside, device: net_null0}}\n  - {{name: outside, device: net_null1}}\nworkers: {{cores: [0]}}\nrules:\n{yaml_rules}"
        );
        let profile =
            tandem_config::parse(&src, "test").unwrap_or_else(|e| panic!("{}", e.report()));
        RuleSet::compile(&profile.rules)
    }

    fn v4(a: [u8; 4]) -> Addr {
        let mut addr = [0u8; 16];
        addr[..4].copy_from_slice(&a);
        addr
    }

    fn tcp(ingress: u16, src: [u8; 4], dst: [u8; 4], dport: u16, flags: u8) -> RuleInput {
        RuleInput {
            ingress: PortId(ingress),
            egress: Some(PortId(1 - ingress)),
            family: Family::Inet,
            proto: 6,
            src: v4(src),
            dst: v4(dst),
            sport: 40000,
            dport,
            icmp: None,
            tcp_flags: Some(flags),
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_nothing_matching_blocks() {
        let rules = profile_rules(
            "  - {action: block, direction: in, port: inside, proto: tcp, to-port: 25}\n  - {action: pass, direction: in, port: inside}\n",
        );
        let smtp = rules.evaluate(&tcp(0, [10, 0, 0, 1], [192, 0, 2, 1], 25, 0x02));
        assert_eq!(
            smtp,
            RuleMatch {
                rule: Some(0),
                verdict: Verdict::Block { answer: false }
            }
        );
        let web = rules.evaluate(&tcp(0, [10, 0, 0, 1], [192, 0, 2, 1], 80, 0x02));
        assert_eq!(
            web,
            RuleMatch {
                rule: Some(1),
                verdict: Verdict::Pass {
                    keep_state: true,
                    allow_opts: false
                }
            }
        );
        let from_outside = rules.evaluate(&tcp(1, [192, 0, 2, 1], [10, 0, 0, 1], 80, 0x02));
        assert_eq!(from_outside.rule, None);
        assert_eq!(from_outside.verdict, Verdict::Block { answer: false });
    }

    #[test]
    fn stateful_tcp_rules_only_match_an_opening_syn() {
        let rules = profile_rules("  - {action: pass, proto: tcp}\n");
        assert_eq!(
            rules
                .evaluate(&tcp(0, [1, 1, 1, 1], [2, 2, 2, 2], 80, 0x02))
                .rule,
            Some(0)
        );
        assert_eq!(
            rules
                .evaluate(&tcp(0, [1, 1, 1, 1], [2, 2, 2, 2], 80, 0x10))
                .rule,
            None,
            "a bare ACK"
        );
        assert_eq!(
            rules
                .evaluate(&tcp(0, [1, 1, 1, 1], [2, 2, 2, 2], 80, 0x12))
                .rule,
            None,
            "a SYN-ACK"
        );
    }

    #[test]
    fn prefixes_ports_and_directions_all_have_to_match() {
        let rules = profile_rules(
            "  - {action: pass, direction: out, port: outside, proto: tcp, from: [10.0.0.0/8, 172.16.0.0/12], to: 192.0.2.0/24, to-port: [80, 8000-8080]}\n",
        );
        assert_eq!(
            rules
                .evaluate(&tcp(0, [172, 20, 1, 1], [192, 0, 2, 9], 8080, 2))
                .rule,
            Some(0)
        );
        assert_eq!(
            rules
                .evaluate(&tcp(0, [172, 32, 1, 1], [192, 0, 2, 9], 80, 2))
                .rule,
            None,
            "source outside"
        );
        assert_eq!(
            rules
                .evaluate(&tcp(0, [10, 1, 1, 1], [192, 0, 3, 9], 80, 2))
                .rule,
            None,
            "destination outside"
        );
        assert_eq!(
            rules
                .evaluate(&tcp(0, [10, 1, 1, 1], [192, 0, 2, 9], 8081, 2))
                .rule,
            None,
            "port outside"
        );
        assert_eq!(
            rules
                .evaluate(&tcp(1, [10, 1, 1, 1], [192, 0, 2, 9], 80, 2))
                .rule,
            None,
            "wrong direction"
        );
    }

    #[test]
    fn icmp_rules_match_type_and_family() {
        let rules = profile_rules("  - {action: pass, proto: icmp, icmp-type: echoreq}\n");
        let mut echo = tcp(0, [1, 1, 1, 1], [2, 2, 2, 2], 0, 0);
        echo.proto = 1;
        echo.tcp_flags = None;
        echo.icmp = Some((8, 0));
        assert_eq!(rules.evaluate(&echo).rule, Some(0));
        echo.icmp = Some((0, 0));
        assert_eq!(
            rules.evaluate(&echo).rule,
            None,
            "an echo reply does not open a state"
        );
    }

    #[test]
    fn a_slash_zero_matches_every_address_of_its_family_only() {
        let rules = profile_rules("  - {action: pass, from: 0.0.0.0/0, state: none}\n");
        assert_eq!(
            rules
                .evaluate(&tcp(0, [9, 9, 9, 9], [8, 8, 8, 8], 1, 0x10))
                .rule,
            Some(0)
        );
        let mut v6 = tcp(0, [0; 4], [0; 4], 1, 0x10);
        v6.family = Family::Inet6;
        assert_eq!(rules.evaluate(&v6).rule, None);
    }
}
