//! The admin protocol behind `tandem show`: a client writes one request line to the admin Unix socket and
//! reads the answer until the server closes the connection. Requests are `show <topic>` or
//! `show <topic> json`; topics are states, sync, peers, ports, rules and counters. The answer is an aligned
//! text table (in the manner of `pfctl -ss` and `conntrackd -s`) or a JSON document.
//!
//! This module owns parsing and rendering; the data comes from a [`Snapshot`] that the runtime fills from
//! the workers and the sync core.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// What can be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Topic {
    /// The state table, like `pfctl -ss`.
    States,
    /// Sync engine counters, lag and deferrals.
    Sync,
    /// Sync peers and their liveness.
    Peers,
    /// Ports and their counters.
    Ports,
    /// Rules and their counters.
    Rules,
    /// Per-worker packet counters and drops by reason.
    Counters,
    /// VRRP groups: state, priority, master, transitions.
    Failover,
    /// Not a view but an order (`tandem sync resync`): ask the peers for a fresh bulk update.
    Resync,
}

impl Topic {
    /// Every topic, in the order `tandem show` lists them.
    pub const ALL: [Topic; 7] = [
        Topic::States,
        Topic::Sync,
        Topic::Peers,
        Topic::Ports,
        Topic::Rules,
        Topic::Counters,
        Topic::Failover,
    ];

    /// The topic's name in requests.
    pub fn name(self) -> &'static str {
        match self {
            Topic::States => "states",
            Topic::Sync => "sync",
            Topic::Peers => "peers",
            Topic::Ports => "ports",
            Topic::Rules => "rules",
            Topic::Counters => "counters",
            Topic::Failover => "failover",
            Topic::Resync => "resync",
        }
    }
}

/// How the answer is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Aligned text columns.
    Text,
    /// A JSON document.
    Json,
}

/// A parsed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// What to show.
    pub topic: Topic,
    /// How.
    pub format: Format,
}

/// Why a request line was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The line is not `show <topic> [json]`.
    #[error(
        "expected `show <topic> [json]` with topic one of: states, sync, peers, ports, rules, counters, \
         failover"
    )]
    Malformed,
}

impl Request {
    /// Parses one request line.
    pub fn parse(line: &str) -> Result<Request, RequestError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (topic, format) = match words.as_slice() {
            ["sync", "resync"] => {
                return Ok(Request {
                    topic: Topic::Resync,
                    format: Format::Text,
                });
            }
            ["show", topic] => (*topic, Format::Text),
            ["show", topic, "json"] => (*topic, Format::Json),
            _ => return Err(RequestError::Malformed),
        };
        let topic = Topic::ALL
            .into_iter()
            .find(|t| t.name() == topic)
            .ok_or(RequestError::Malformed)?;
        Ok(Request { topic, format })
    }

    /// The request line for this request.
    pub fn line(&self) -> String {
        if self.topic == Topic::Resync {
            return "sync resync\n".into();
        }
        match self.format {
            Format::Text => format!("show {}\n", self.topic.name()),
            Format::Json => format!("show {} json\n", self.topic.name()),
        }
    }
}

/// One state, as `show states` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRow {
    /// `tcp`, `udp`, `icmp`, ... or the protocol number.
    pub proto: String,
    /// Initiator, `address:port` (IPv6 in brackets).
    pub initiator: String,
    /// Responder, `address:port`.
    pub responder: String,
    /// Both sides' states, pf's `ESTABLISHED:ESTABLISHED` or `MULTIPLE:SINGLE`.
    pub state: String,
    /// Seconds since creation.
    pub age_secs: u64,
    /// Seconds until expiry.
    pub expires_secs: u64,
    /// Packets from the initiator and from the responder.
    pub packets: [u64; 2],
    /// Bytes from the initiator and from the responder.
    pub bytes: [u64; 2],
    /// The creator's host id, hex.
    pub creator: String,
    /// The state id, hex.
    pub id: String,
    /// `local` or `peer`.
    pub origin: String,
    /// The worker owning it.
    pub worker: usize,
}

/// One named counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Its name, such as `rx` or `drop_out_of_window`.
    pub name: String,
    /// Its value.
    pub value: u64,
}

/// A sync peer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRow {
    /// The peer's address.
    pub address: String,
    /// Its host id, hex, once heard from.
    pub host_id: String,
    /// Whether it is alive (heard from within its dead interval).
    pub alive: bool,
    /// Milliseconds since it was last heard from.
    pub last_heard_ms: u64,
    /// Packets and bytes received from it and sent to it.
    pub counters: Vec<Counter>,
}

/// The sync engine's view.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncView {
    /// Whether the node has finished its bulk update (and so may win failover elections).
    pub in_sync: bool,
    /// The update policy.
    pub policy: String,
    /// Counters: messages and bytes by action and direction, drops by reason, deferrals.
    pub counters: Vec<Counter>,
    /// Sync lag percentiles in microseconds: change to transmission, change to acknowledgement.
    pub lag_us: Vec<Counter>,
    /// The same latencies as histograms, for metrics.
    pub histograms: Vec<HistogramRow>,
}

/// A latency histogram, Prometheus-style: cumulative counts at upper bounds in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramRow {
    /// What it measures (`change_to_send`, `iack`).
    pub stage: String,
    /// `(upper bound in microseconds, values at or below it)`, bounds rising.
    pub buckets: Vec<(u64, u64)>,
    /// Sum of the values, microseconds.
    pub sum_us: u64,
    /// Values recorded.
    pub count: u64,
}

/// A port.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRow {
    /// Profile name.
    pub name: String,
    /// DPDK device.
    pub device: String,
    /// MAC address.
    pub mac: String,
    /// Link state.
    pub link_up: bool,
    /// DPDK's counters.
    pub counters: Vec<Counter>,
}

/// A rule.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRow {
    /// Position in the profile.
    pub index: usize,
    /// The rule in one line.
    pub text: String,
    /// Packets it decided.
    pub packets: u64,
    /// States it created.
    pub states: u64,
}

/// A worker's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRow {
    /// Worker number.
    pub worker: usize,
    /// Its core.
    pub core: usize,
    /// States it holds.
    pub states: u64,
    /// Its counters, drops by reason included.
    pub counters: Vec<Counter>,
}

/// A VRRP group.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRow {
    /// Its name.
    pub name: String,
    /// Its port.
    pub port: String,
    /// Virtual router id.
    pub vrid: u8,
    /// `initialize`, `backup` or `master`.
    pub state: String,
    /// The configured priority.
    pub priority: u8,
    /// The priority advertised now.
    pub effective_priority: u8,
    /// Why it is demoted (empty when it is not).
    pub demoted: String,
    /// The master's address as last heard.
    pub master: String,
    /// Milliseconds in the present state.
    pub since_ms: u64,
    /// When the present state began, milliseconds since the Unix epoch (the node's clock).
    pub changed_unix_ms: u64,
    /// The virtual addresses.
    pub addresses: Vec<String>,
    /// Advertisements sent, received, refused; transitions.
    pub counters: Vec<Counter>,
}

/// Everything `show` can print, filled by the runtime on request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The node's name.
    pub node: String,
    /// States (only filled for `show states`).
    pub states: Vec<StateRow>,
    /// Sync.
    pub sync: Option<SyncView>,
    /// Peers.
    pub peers: Vec<PeerRow>,
    /// Ports.
    pub ports: Vec<PortRow>,
    /// Rules.
    pub rules: Vec<RuleRow>,
    /// Workers.
    pub workers: Vec<WorkerRow>,
    /// VRRP groups.
    pub failover: Vec<GroupRow>,
}

/// Renders the part of `snapshot` a request asks for.
pub fn render(request: &Request, snapshot: &Snapshot) -> String {
    if request.format == Format::Json {
        let value = match request.topic {
            Topic::States => serde_json::to_value(&snapshot.states),
            Topic::Sync => serde_json::to_value(&snapshot.sync),
            Topic::Peers => serde_json::to_value(&snapshot.peers),
            Topic::Ports => serde_json::to_value(&snapshot.ports),
            Topic::Rules => serde_json::to_value(&snapshot.rules),
            Topic::Counters => serde_json::to_value(&snapshot.workers),
            Topic::Failover => serde_json::to_value(&snapshot.failover),
            Topic::Resync => serde_json::to_value(&snapshot.sync),
        };
        let mut text = value
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
        text.push('\n');
        return text;
    }
    match request.topic {
        Topic::States => {
            let mut t = TextTable::new(&[
                "proto",
                "initiator",
                "",
                "responder",
                "state",
                "age",
                "expires",
                "pkts",
                "bytes",
                "creator:id",
            ]);
            for s in &snapshot.states {
                t.row(vec![
                    s.proto.clone(),
                    s.initiator.clone(),
                    "->".into(),
                    s.responder.clone(),
                    s.state.clone(),
                    format!("{}s", s.age_secs),
                    format!("{}s", s.expires_secs),
                    format!("{}:{}", s.packets[0], s.packets[1]),
                    format!("{}:{}", s.bytes[0], s.bytes[1]),
                    format!(
                        "{}:{}{}",
                        s.creator,
                        s.id,
                        if s.origin == "peer" { " (peer)" } else { "" }
                    ),
                ]);
            }
            format!("{}{} state(s)\n", t.render(), snapshot.states.len())
        }
        Topic::Sync => match &snapshot.sync {
            None => "sync is not configured\n".to_string(),
            Some(sync) => {
                let mut out = format!(
                    "in sync: {}\npolicy: {}\n",
                    if sync.in_sync { "yes" } else { "no" },
                    sync.policy
                );
                out.push_str(&counters_table(&sync.counters));
                if !sync.lag_us.is_empty() {
                    out.push_str("lag (us):\n");
                    out.push_str(&counters_table(&sync.lag_us));
                }
                out
            }
        },
        Topic::Peers => {
            let mut t = TextTable::new(&["peer", "host-id", "alive", "last-heard", "counters"]);
            for p in &snapshot.peers {
                t.row(vec![
                    p.address.clone(),
                    p.host_id.clone(),
                    if p.alive { "yes" } else { "no" }.into(),
                    format!("{}ms", p.last_heard_ms),
                    p.counters
                        .iter()
                        .map(|c| format!("{}={}", c.name, c.value))
                        .collect::<Vec<_>>()
                        .join(" "),
                ]);
            }
            t.render()
        }
        Topic::Resync => match &snapshot.sync {
            Some(_) => {
                "resync: the sync core asks its peers for a bulk update; `tandem show sync` says \
                        when the node is in sync again\n"
                    .into()
            }
            None => "resync: sync is not configured on this node\n".into(),
        },
        Topic::Failover => {
            let mut t = TextTable::new(&[
                "group", "port", "vrid", "state", "prio", "eff", "master", "since", "demoted",
                "counters",
            ]);
            for g in &snapshot.failover {
                t.row(vec![
                    g.name.clone(),
                    g.port.clone(),
                    g.vrid.to_string(),
                    g.state.clone(),
                    g.priority.to_string(),
                    g.effective_priority.to_string(),
                    g.master.clone(),
                    format!("{}ms", g.since_ms),
                    if g.demoted.is_empty() {
                        "-".into()
                    } else {
                        g.demoted.clone()
                    },
                    g.counters
                        .iter()
                        .map(|c| format!("{}={}", c.name, c.value))
                        .collect::<Vec<_>>()
                        .join(" "),
                ]);
            }
            t.render()
        }
        Topic::Ports => {
            let mut t = TextTable::new(&["port", "device", "mac", "link", "counters"]);
            for p in &snapshot.ports {
                t.row(vec![
                    p.name.clone(),
                    p.device.clone(),
                    p.mac.clone(),
                    if p.link_up { "up" } else { "down" }.into(),
                    p.counters
                        .iter()
                        .map(|c| format!("{}={}", c.name, c.value))
                        .collect::<Vec<_>>()
                        .join(" "),
                ]);
            }
            t.render()
        }
        Topic::Rules => {
            let mut t = TextTable::new(&["#", "rule", "packets", "states"]);
            for r in &snapshot.rules {
                t.row(vec![
                    r.index.to_string(),
                    r.text.clone(),
                    r.packets.to_string(),
                    r.states.to_string(),
                ]);
            }
            t.render()
        }
        Topic::Counters => {
            let mut out = String::new();
            for w in &snapshot.workers {
                let _ = writeln!(
                    out,
                    "worker {} (core {}, {} states):",
                    w.worker, w.core, w.states
                );
                out.push_str(&counters_table(&w.counters));
            }
            out
        }
    }
}

fn counters_table(counters: &[Counter]) -> String {
    let mut t = TextTable::new(&["counter", "value"]);
    for c in counters {
        t.row(vec![format!("  {}", c.name), c.value.to_string()]);
    }
    t.render()
}

/// Left-aligned text columns separated by two spaces; numbers are right-aligned.
#[derive(Debug)]
struct TextTable {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl TextTable {
    fn new(header: &[&str]) -> TextTable {
        TextTable {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let numeric = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                if numeric(cell) {
                    let _ = write!(line, "{cell:>w$}");
                } else {
                    let _ = write!(line, "{cell:<w$}");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_round_trip() {
        for topic in Topic::ALL {
            for format in [Format::Text, Format::Json] {
                let request = Request { topic, format };
                assert_eq!(Request::parse(&request.line()), Ok(request));
            }
        }
        assert_eq!(Request::parse("show"), Err(RequestError::Malformed));
        assert_eq!(
            Request::parse("show everything"),
            Err(RequestError::Malformed)
        );
        assert_eq!(
            Request::parse("show states yaml"),
            Err(RequestError::Malformed)
        );
        assert_eq!(Request::parse("flush states"), Err(RequestError::Malformed));
        // The one order: not a `show` topic, its own line.
        let resync = Request {
            topic: Topic::Resync,
            format: Format::Text,
        };
        assert_eq!(resync.line(), "sync resync\n");
        assert_eq!(Request::parse("sync resync"), Ok(resync));
        assert_eq!(Request::parse("show resync"), Err(RequestError::Malformed));
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            node: "fw-a".into(),
            states: vec![StateRow {
                proto: "tcp".into(),
                initiator: "198.18.0.10:40000".into(),
                responder: "198.19.0.20:80".into(),
                state: "ESTABLISHED:ESTABLISHED".into(),
                age_secs: 12,
                expires_secs: 86388,
                packets: [10, 8],
                bytes: [14480, 416],
                creator: "0a000001".into(),
                id: "0000000100000002".into(),
                origin: "local".into(),
                worker: 0,
            }],
            ..Snapshot::default()
        }
    }

    #[test]
    fn states_render_like_pfctl() {
        let text = render(
            &Request {
                topic: Topic::States,
                format: Format::Text,
            },
            &snapshot(),
        );
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("proto  initiator"));
        assert!(
            lines[1]
                .contains("tcp    198.18.0.10:40000  ->  198.19.0.20:80  ESTABLISHED:ESTABLISHED")
        );
        assert_eq!(lines.last(), Some(&"1 state(s)"));
    }

    #[test]
    fn json_answers_parse_back() {
        let text = render(
            &Request {
                topic: Topic::States,
                format: Format::Json,
            },
            &snapshot(),
        );
        let rows: Vec<StateRow> = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(rows, snapshot().states);
    }
}
