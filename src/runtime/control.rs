//! The control thread's loop, on the main thread: neighbours (ARP and neighbour discovery answered and
//! resolved for the workers, through their punt and inject queues), the VRRP groups (advertisements punted
//! and injected the same way, virtual MACs handed to the workers), the admin socket, and metrics. It
//! reads the workers' counters and the sync core's snapshot, and asks workers for their states only when
//! `tandem show states` wants them; it never touches a packet on the fast path.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use anyhow::{Context, Result};
use tandem_config::{Direction, Profile, Rule, RuleAction};
use tandem_control::admin::{
    Counter, GroupRow, HistogramRow, PeerRow, PortRow, Request, RuleRow, Snapshot, SyncView, Topic,
    WorkerRow,
};
use tandem_control::failover::{self, Failover, PortInfo};
use tandem_control::neighbor::{NeighborAction, PortAddresses, handle_punted, solicit};
use tandem_control::server::AdminServer;
use tandem_dataplane::counters::{self, WorkerCounters};
use tandem_dataplane::worker::ControlOp;
use tandem_sync::engine::stats::ACTIONS;

use super::Clock;
use super::links::{StateDump, WorkerChannels};
use super::sync_thread::SyncShared;
use super::worker_thread::{DUMP_LIMIT, state_row};
use crate::dpdk::mempool::PacketPool;
use crate::dpdk::port::EthPort;

/// The control thread's state.
pub struct Control<'a> {
    admin: Option<AdminServer>,
    metrics: bool,
    node: String,
    cores: Vec<usize>,
    rules: Vec<String>,
    policy: String,
    sync_on: bool,
    channels: &'a [Arc<WorkerChannels>],
    counters: &'a [Arc<WorkerCounters>],
    rule_stats: &'a [Arc<Vec<[counters::Counter; 2]>>],
    sync: Arc<SyncShared>,
    pool: &'static PacketPool,
    addresses: Vec<PortAddresses>,
    devices: Vec<String>,
    last_export: StdInstant,
    _clock: Clock,
    /// The VRRP groups.
    failover: Failover,
    /// Port names, by index (for `show failover`).
    port_names: Vec<String>,
    /// The failover clock's zero.
    started: StdInstant,
    /// Whether the groups have been started.
    failover_started: bool,
}

/// Every worker counter, summed over workers.
pub fn totals(counters: &[Arc<WorkerCounters>]) -> Vec<(String, u64)> {
    let mut sum: Vec<(String, u64)> = Vec::new();
    for c in counters {
        for (name, value) in c.named() {
            match sum.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => *v += value,
                None => sum.push((name, value)),
            }
        }
    }
    sum
}

/// A rule in pf.conf's words, for `show rules`.
pub fn rule_text(rule: &Rule, profile: &Profile) -> String {
    let mut words = vec![match rule.action {
        RuleAction::Pass => "pass".to_string(),
        RuleAction::Block if rule.block_return => "block return".to_string(),
        RuleAction::Block => "block".to_string(),
    }];
    if let Some(port) = rule.port {
        let dir = match rule.direction {
            Direction::In => "in ",
            Direction::Out => "out ",
            Direction::Any => "",
        };
        words.push(format!("{dir}on {}", profile.port(port).name));
    }
    if let Some(f) = rule.family {
        words.push(f.to_string());
    }
    if let Some(p) = rule.proto {
        words.push(format!(
            "proto {}",
            match p {
                6 => "tcp".to_string(),
                17 => "udp".to_string(),
                1 => "icmp".to_string(),
                58 => "icmp6".to_string(),
                n => n.to_string(),
            }
        ));
    }
    let list = |v: Vec<String>| {
        if v.len() == 1 {
            v[0].clone()
        } else {
            format!("{{ {} }}", v.join(", "))
        }
    };
    let side = |nets: &[tandem_config::Prefix], ports: &[tandem_config::PortRange]| {
        let mut s = if nets.is_empty() {
            "any".to_string()
        } else {
            list(nets.iter().map(|n| n.to_string()).collect())
        };
        if !ports.is_empty() {
            s.push_str(&format!(
                " port {}",
                list(ports.iter().map(|p| p.to_string()).collect())
            ));
        }
        s
    };
    words.push(format!(
        "from {} to {}",
        side(&rule.from, &rule.from_ports),
        side(&rule.to, &rule.to_ports)
    ));
    if let Some(t) = rule.icmp_type {
        words.push(format!("icmp-type {t}"));
    }
    if let Some(flags) = rule.tcp_flags {
        words.push(format!("flags {flags}"));
    }
    if rule.action == RuleAction::Pass {
        words.push(
            if rule.keep_state {
                "keep state"
            } else {
                "no state"
            }
            .to_string(),
        );
    }
    if let Some(label) = &rule.label {
        words.push(format!("label \"{label}\""));
    }
    words.join(" ")
}

fn mac_text(mac: [u8; 6]) -> String {
    tandem_config::MacAddr(mac).to_string()
}

fn counter(name: impl Into<String>, value: u64) -> Counter {
    Counter {
        name: name.into(),
        value,
    }
}

impl<'a> Control<'a> {
    /// The control thread for a running appliance.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        profile: &Profile,
        ports: &[(String, EthPort)],
        channels: &'a [Arc<WorkerChannels>],
        counters: &'a [Arc<WorkerCounters>],
        rule_stats: &'a [Arc<Vec<[counters::Counter; 2]>>],
        sync: Arc<SyncShared>,
        pool: &'static PacketPool,
        clock: Clock,
    ) -> Result<Control<'a>> {
        let admin = AdminServer::bind(&profile.control.admin_socket).with_context(|| {
            format!(
                "opening the admin socket {}",
                profile.control.admin_socket.display()
            )
        })?;
        let metrics = match profile.control.metrics_listen {
            Some(listen) => {
                tandem_control::metrics::install(listen).map_err(anyhow::Error::msg)?;
                true
            }
            None => false,
        };
        let addresses = profile
            .ports
            .iter()
            .zip(ports)
            .map(|(p, (_, eth))| PortAddresses {
                mac: eth.mac(),
                v4: p
                    .addresses
                    .iter()
                    .filter_map(|a| match a.addr {
                        IpAddr::V4(v4) => Some(v4),
                        IpAddr::V6(_) => None,
                    })
                    .collect::<Vec<Ipv4Addr>>(),
                v6: p
                    .addresses
                    .iter()
                    .filter_map(|a| match a.addr {
                        IpAddr::V6(v6) => Some(v6),
                        IpAddr::V4(_) => None,
                    })
                    .collect::<Vec<Ipv6Addr>>(),
                virtual_addrs: Vec::new(),
            })
            .collect();
        let infos: Vec<PortInfo> = profile
            .ports
            .iter()
            .zip(ports)
            .map(|(p, (_, eth))| {
                let mac = eth.mac();
                let v6 = p.addresses.iter().find_map(|a| match a.addr {
                    IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => Some(v6),
                    _ => None,
                });
                PortInfo {
                    mac,
                    v4: p.addresses.iter().find_map(|a| match a.addr {
                        IpAddr::V4(v4) => Some(v4),
                        IpAddr::V6(_) => None,
                    }),
                    link_local: v6.unwrap_or_else(|| PortInfo::link_local_of(mac)),
                }
            })
            .collect();
        let failover = Failover::new(&profile.failover.groups, profile.failover.demotion, &infos);
        Ok(Control {
            failover,
            port_names: profile.ports.iter().map(|p| p.name.clone()).collect(),
            started: StdInstant::now(),
            failover_started: false,
            admin: Some(admin),
            metrics,
            node: profile.node.name.clone(),
            cores: profile.workers.cores.clone(),
            rules: profile
                .rules
                .iter()
                .map(|r| rule_text(r, profile))
                .collect(),
            policy: match profile.sync.as_ref().map(|s| s.update_policy) {
                Some(tandem_config::UpdatePolicy::Classic { .. }) => "classic".into(),
                _ => "window-aware".into(),
            },
            sync_on: profile.sync.is_some(),
            channels,
            counters,
            rule_stats,
            sync,
            pool,
            addresses,
            devices: profile.ports.iter().map(|p| p.device.clone()).collect(),
            last_export: StdInstant::now(),
            _clock: clock,
        })
    }

    /// States held by all workers.
    pub fn states(&self) -> u64 {
        self.counters.iter().map(|c| c.states.get()).sum()
    }

    /// One round of the control loop.
    pub fn poll(&mut self, ports: &[(String, EthPort)]) {
        self.neighbors();
        self.run_failover();
        if let Some(mut admin) = self.admin.take() {
            admin.serve_pending(|request| self.snapshot(request, ports));
            self.admin = Some(admin);
        }
        if self.metrics && self.last_export.elapsed() >= StdDuration::from_secs(1) {
            let all = Request {
                topic: Topic::Counters,
                format: tandem_control::admin::Format::Json,
            };
            tandem_control::metrics::export(&self.snapshot(&all, ports));
            self.last_export = StdInstant::now();
        }
    }

    fn inject(&self, worker: usize, port: tandem_config::PortId, frame: &[u8]) {
        let Some(mut m) = self.pool.alloc() else {
            return;
        };
        if !m.resize(frame.len()) {
            return;
        }
        m.as_mut().copy_from_slice(frame);
        let _ = self.channels[worker].inject.push((port, m));
    }

    fn neighbors(&mut self) {
        for (w, ch) in self.channels.iter().enumerate() {
            while let Some((port, packet)) = ch.punt.pop() {
                if Failover::is_vrrp(packet.as_ref()) {
                    let now = self.micros();
                    let actions = self.failover.receive(now, port, packet.as_ref());
                    self.apply_failover(actions);
                    continue;
                }
                let Some(addresses) = self.addresses.get(usize::from(port.0)) else {
                    continue;
                };
                for action in handle_punted(port, packet.as_ref(), addresses) {
                    match action {
                        NeighborAction::Send(frame) => self.inject(w, port, &frame),
                        NeighborAction::Learn { port, addr, mac } => {
                            for other in self.channels {
                                let _ = other.control.push(ControlOp::Neighbor { port, addr, mac });
                            }
                        }
                    }
                }
            }
            while let Some(hop) = ch.resolve.pop() {
                if let Some(frame) = self
                    .addresses
                    .get(usize::from(hop.port.0))
                    .and_then(|a| solicit(&hop, a))
                {
                    self.inject(w, hop.port, &frame);
                }
            }
        }
    }

    /// Microseconds on the failover clock.
    fn micros(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }

    /// Why the VRRP groups are demoted now: sync is configured and the node has not finished its bulk
    /// update, or no sync peer is alive.
    fn demotion(&self) -> Option<&'static str> {
        if !self.sync_on {
            return None;
        }
        if !self.sync.in_sync.load(Ordering::Relaxed) {
            return Some("not in sync (bulk update pending)");
        }
        let alive = self
            .sync
            .snapshot
            .lock()
            .is_ok_and(|s| s.peers.iter().any(|p| p.alive));
        (!alive).then_some("no sync peer alive")
    }

    /// Shuts the VRRP groups down before the workers stop: a master injects its priority-0 advertisement.
    /// Returns whether there was anything to send.
    pub fn shutdown_failover(&mut self) -> bool {
        if !self.failover_started {
            return false;
        }
        let now = self.micros();
        let actions = self.failover.shutdown(now);
        let any = !actions.is_empty();
        self.apply_failover(actions);
        any
    }

    /// Starts the groups, follows the node's sync state and runs their timers.
    fn run_failover(&mut self) {
        if self.failover.groups().is_empty() {
            return;
        }
        let now = self.micros();
        let reason = self.demotion();
        let mut actions = Vec::new();
        if !self.failover_started {
            self.failover_started = true;
            actions.extend(self.failover.set_demoted(now, reason));
            actions.extend(self.failover.start(now));
        } else if reason != self.failover.demoted() {
            actions.extend(self.failover.set_demoted(now, reason));
        }
        if self.failover.poll_timeout().is_some_and(|t| t <= now) {
            actions.extend(self.failover.handle_timeout(now));
        }
        self.apply_failover(actions);
    }

    /// Sends the groups' frames (through worker 0's inject queue) and tells every worker which virtual
    /// MACs to accept.
    fn apply_failover(&mut self, actions: Vec<failover::Action>) {
        for action in actions {
            match action {
                failover::Action::Send { port, frame } => self.inject(0, port, &frame),
                failover::Action::Master {
                    port,
                    mac,
                    addresses,
                    master,
                } => {
                    for ch in self.channels {
                        let _ = ch.control.push(ControlOp::VirtualMac {
                            port,
                            mac,
                            accept: master,
                        });
                    }
                    if let Some(a) = self.addresses.get_mut(usize::from(port.0)) {
                        a.virtual_addrs.retain(|(_, m)| *m != mac);
                        if master {
                            a.virtual_addrs
                                .extend(addresses.into_iter().map(|ip| (ip, mac)));
                        }
                    }
                }
            }
        }
    }

    /// The groups, for `show failover`.
    fn failover_rows(&self) -> Vec<GroupRow> {
        let now = self.micros();
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let refused = self.failover.refused();
        self.failover
            .groups()
            .iter()
            .map(|g| {
                let r = &g.router;
                let c = r.counts();
                GroupRow {
                    name: g.name.clone(),
                    port: self
                        .port_names
                        .get(usize::from(g.port.0))
                        .cloned()
                        .unwrap_or_default(),
                    vrid: r.config().vrid,
                    state: r.state().name().into(),
                    priority: r.config().priority,
                    effective_priority: r.effective_priority(),
                    demoted: if r.demoted() {
                        self.failover.demoted().unwrap_or("").into()
                    } else {
                        String::new()
                    },
                    master: r.master().map(|a| a.to_string()).unwrap_or_default(),
                    since_ms: now.saturating_sub(g.since) / 1000,
                    changed_unix_ms: unix_ms.saturating_sub(now.saturating_sub(g.since) / 1000),
                    addresses: r.config().addresses.iter().map(|a| a.to_string()).collect(),
                    counters: [
                        ("advertisements_sent", c.sent),
                        ("advertisements_received", c.received),
                        ("refused_hop_limit", c.bad_hop_limit),
                        ("address_mismatch", c.address_mismatch),
                        ("interval_mismatch", c.interval_mismatch),
                        ("became_master", c.became_master),
                        ("became_backup", c.became_backup),
                        ("master_left", c.master_left),
                        // Refused before any group saw them, the same for every group.
                        ("refused_malformed", refused.malformed),
                        ("refused_bad_checksum", refused.bad_checksum),
                        ("refused_not_to_group", refused.not_to_group),
                        ("refused_unknown_vrid", refused.unknown_vrid),
                    ]
                    .into_iter()
                    .map(|(name, value)| counter(name, value))
                    .collect(),
                }
            })
            .collect()
    }

    fn snapshot(&self, request: &Request, ports: &[(String, EthPort)]) -> Snapshot {
        let mut snap = Snapshot {
            node: self.node.clone(),
            failover: self.failover_rows(),
            ..Snapshot::default()
        };
        if request.topic == Topic::Resync && self.sync_on {
            self.sync.resync.store(true, Ordering::Relaxed);
        }
        if request.topic == Topic::States {
            for (ch, c) in self.channels.iter().zip(self.counters.iter()) {
                // Room for the states the worker last counted and the few it may have made since.
                let room = (c.states.get() as usize + 1024).min(DUMP_LIMIT);
                if let Ok(mut slot) = ch.dump.lock() {
                    *slot = StateDump::Requested(Vec::with_capacity(room));
                }
                ch.dump_requested.store(true, Ordering::Relaxed);
            }
            let deadline = StdInstant::now() + StdDuration::from_secs(1);
            for (worker, ch) in self.channels.iter().enumerate() {
                loop {
                    if let Ok(mut slot) = ch.dump.lock()
                        && matches!(*slot, StateDump::Filled { .. })
                        && let StateDump::Filled { states, at } = std::mem::take(&mut *slot)
                    {
                        snap.states
                            .extend(states.iter().map(|s| state_row(s, worker, at)));
                        break;
                    }
                    if StdInstant::now() > deadline {
                        break;
                    }
                    std::thread::sleep(StdDuration::from_millis(1));
                }
            }
        }
        for (w, c) in self.counters.iter().enumerate() {
            snap.workers.push(WorkerRow {
                worker: w,
                core: self.cores.get(w).copied().unwrap_or(0),
                states: c.states.get(),
                counters: c.named().into_iter().map(|(n, v)| counter(n, v)).collect(),
            });
        }
        for (i, text) in self.rules.iter().enumerate() {
            let (packets, states) = self
                .rule_stats
                .iter()
                .filter_map(|r| r.get(i))
                .fold((0, 0), |(p, s), c| (p + c[0].get(), s + c[1].get()));
            snap.rules.push(RuleRow {
                index: i,
                text: text.clone(),
                packets,
                states,
            });
        }
        for (i, (name, eth)) in ports.iter().enumerate() {
            let s = eth.stats().unwrap_or_default();
            snap.ports.push(PortRow {
                name: name.clone(),
                device: self.devices.get(i).cloned().unwrap_or_default(),
                mac: mac_text(eth.mac()),
                link_up: eth.link_up(),
                counters: vec![
                    counter("rx_packets", s.rx_packets),
                    counter("tx_packets", s.tx_packets),
                    counter("rx_bytes", s.rx_bytes),
                    counter("tx_bytes", s.tx_bytes),
                    counter("rx_missed", s.rx_missed),
                    counter("rx_errors", s.rx_errors),
                    counter("tx_errors", s.tx_errors),
                    counter("rx_no_mbuf", s.rx_no_mbuf),
                ],
            });
        }
        if self.sync_on {
            let s = self
                .sync
                .snapshot
                .lock()
                .map(|s| s.clone())
                .unwrap_or_default();
            let st = &s.stats;
            let mut counters = Vec::new();
            for (i, action) in ACTIONS.iter().enumerate() {
                counters.push(counter(
                    format!("out_{action}_messages"),
                    st.sent[i].messages,
                ));
                counters.push(counter(format!("out_{action}_bytes"), st.sent[i].bytes));
                counters.push(counter(
                    format!("in_{action}_messages"),
                    st.received[i].messages,
                ));
                counters.push(counter(format!("in_{action}_bytes"), st.received[i].bytes));
            }
            for (name, value) in [
                ("packets_out", st.packets_out),
                ("bytes_out", st.bytes_out),
                ("packets_in", st.packets_in),
                ("bytes_in", st.bytes_in),
                ("drop_not_a_peer", st.drop_not_a_peer),
                ("drop_malformed", st.drop_malformed),
                ("drop_version_freebsd", st.drop_version_freebsd),
                ("drop_version_other", st.drop_version_other),
                ("drop_bad_value", st.drop_bad_value),
                ("refused_synproxy", st.refused[0]),
                ("refused_rdomain", st.refused[1]),
                ("refused_translated", st.refused[2]),
                ("drop_bad_ttl", s.transport.bad_ttl),
                ("drop_not_for_us", s.transport.not_for_us),
                ("drop_not_sync", s.transport.not_sync),
                ("send_failures", s.transport.send_failures),
                ("auth_accepted", s.transport.auth.accepted),
                ("auth_unsealed", s.transport.auth.unsealed),
                ("auth_unknown_key", s.transport.auth.unknown_key),
                ("auth_bad_mac", s.transport.auth.bad_mac),
                ("auth_replayed", s.transport.auth.replayed),
                ("auth_too_many_senders", s.transport.auth.too_many_senders),
                ("unknown_state", st.unknown_state),
                ("stale", st.stale),
                ("requests_sent", st.requests_sent),
                ("requests_suppressed", st.requests_suppressed),
                ("creator_conflicts", st.creator_conflicts),
                ("clr_refused", st.clr_refused),
                ("drop_family_mismatch", st.drop_family_mismatch),
                ("skipped_legacy_sections", st.sections_skipped[0]),
                ("skipped_unknown_sections", st.sections_skipped[1]),
                ("skipped_short_sections", st.sections_skipped[2]),
                ("bulk_requests_limited", st.bulk_requests_limited),
                ("refused_state_limit", st.refused_state_limit),
                ("requests_limited", st.requests_limited),
                (
                    "deferral_skipped_unresponsive",
                    st.deferral_skipped_unresponsive,
                ),
                ("deferred", st.deferred),
                ("released_by_iack", st.released_by_iack),
                ("released_by_update", st.released_by_update),
                ("released_by_timeout", st.released_by_timeout),
                ("ins_resent", st.ins_resent),
                ("released_no_peers", st.released_no_peers),
                ("bulks_sent", st.bulks_sent),
                ("bulk_states_sent", st.bulk_states_sent),
                ("bulks_received", st.bulks_received),
                ("bulk_failures", st.bulk_failures),
                // Acknowledged delivery (zero when it is off).
                ("delivery_numbered", st.delivery.sender.numbered),
                ("delivery_resent_on_gap", st.delivery.sender.resent_on_nack),
                (
                    "delivery_resent_on_timeout",
                    st.delivery.sender.resent_on_timeout,
                ),
                ("delivery_queue_overflows", st.delivery.sender.overflowed),
                ("delivery_peers_given_up", st.delivery.sender.gave_up),
                ("delivery_acks_sent", st.delivery.acks_sent),
                ("delivery_gaps_reported", st.delivery.gaps_reported),
                ("delivery_acks_received", st.delivery.acks_received),
                ("delivery_gaps_received", st.delivery.gaps_received),
                ("delivery_duplicates", st.delivery.duplicates),
                ("delivery_peer_restarts", st.delivery.peer_restarts),
                ("delivery_states_resent", st.delivery.states_resent),
                ("delivery_bulks_for_missed", st.delivery.bulks_for_missed),
                ("delivery_acks_ignored", st.delivery.acks_ignored),
                ("states", s.states as u64),
                ("deferrals_now", s.deferrals as u64),
            ] {
                counters.push(counter(name, value));
            }
            // Hold-and-recheck happens on the workers: their counters, summed.
            let sum =
                |f: fn(&WorkerCounters) -> u64| self.counters.iter().map(|c| f(c)).sum::<u64>();
            for (name, value) in [
                ("held", sum(|c| c.held.get())),
                ("hold_released", sum(|c| c.hold_released.get())),
                ("hold_refused", sum(|c| c.hold_refused.get())),
                ("hold_timeout", sum(|c| c.hold_timeout.get())),
                ("hold_probed", sum(|c| c.hold_probed.get())),
                ("hold_pool_full", sum(|c| c.hold_pool_full.get())),
                ("hold_state_full", sum(|c| c.hold_state_full.get())),
                // Packets of no state held for a peer's insert.
                ("held_for_state", sum(|c| c.held_for_state.get())),
                (
                    "held_for_state_found",
                    sum(|c| c.held_for_state_found.get()),
                ),
                (
                    "held_for_state_timeout",
                    sum(|c| c.held_for_state_timeout.get()),
                ),
                // Owner redirect: frames sent to their states' owners and received as owner.
                ("redirected_to_owner", sum(|c| c.owner_redirected.get())),
                (
                    "redirected_to_owner_bytes",
                    sum(|c| c.owner_redirected_bytes.get()),
                ),
                ("redirect_received", sum(|c| c.owner_received.get())),
                (
                    "redirect_received_bytes",
                    sum(|c| c.owner_received_bytes.get()),
                ),
                ("redirect_started", sum(|c| c.redirect_started.get())),
                ("redirect_queue_full", sum(|c| c.owner_redirect_full.get())),
                ("redirect_no_owner", s.redirect_drops.no_owner),
                ("redirect_too_big", s.redirect_drops.too_big),
                ("redirect_not_from_peer", s.redirect_drops.not_from_peer),
                ("redirect_off_here", s.redirect_drops.disabled),
                ("redirect_malformed", s.redirect_drops.malformed),
                ("redirect_no_room", s.redirect_drops.no_room),
            ] {
                counters.push(counter(name, value));
            }
            let mut lag = Vec::new();
            let mut hold_times = [0u64; counters::HOLD_BUCKETS];
            for c in self.counters {
                for (total, bucket) in hold_times.iter_mut().zip(&c.hold_time) {
                    *total += bucket.get();
                }
            }
            for (q, label) in [(0.5, "50"), (0.99, "99")] {
                lag.push(counter(
                    format!("hold_p{label}"),
                    counters::quantile_of(&hold_times, q).unwrap_or(0),
                ));
            }
            for (stage, h) in [("change_to_send", &st.sync_lag), ("iack", &st.iack_latency)] {
                for (q, label) in [(0.5, "50"), (0.9, "90"), (0.99, "99")] {
                    lag.push(counter(
                        format!("{stage}_p{label}"),
                        h.quantile(q).as_micros(),
                    ));
                }
            }
            let histograms = [("change_to_send", &st.sync_lag), ("iack", &st.iack_latency)]
                .into_iter()
                .map(|(stage, h)| {
                    let mut seen = 0;
                    HistogramRow {
                        stage: stage.into(),
                        buckets: h
                            .buckets()
                            .map(|(le, n)| {
                                seen += n;
                                (le, seen)
                            })
                            .collect(),
                        sum_us: h.sum().as_micros(),
                        count: h.count(),
                    }
                })
                .collect();
            snap.sync = Some(SyncView {
                in_sync: s.in_sync,
                policy: self.policy.clone(),
                counters,
                lag_us: lag,
                histograms,
            });
            snap.peers = s
                .peers
                .iter()
                .map(|p| PeerRow {
                    address: p.address.clone(),
                    host_id: p.host_id.map(|h| format!("{h:08x}")).unwrap_or_default(),
                    alive: p.alive,
                    last_heard_ms: p.last_heard_us.map_or(0, |us| us / 1000),
                    counters: vec![
                        counter("packets_in", p.packets_in),
                        counter("bytes_in", p.bytes_in),
                        counter("redirected_to", p.redirect.frames_out),
                        counter("redirected_to_bytes", p.redirect.bytes_out),
                        counter("redirected_from", p.redirect.frames_in),
                        counter("redirected_from_bytes", p.redirect.bytes_in),
                    ],
                })
                .collect();
        }
        snap
    }
}
