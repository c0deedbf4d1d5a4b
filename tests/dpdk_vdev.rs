//! The real binary on DPDK virtual devices, one process (one EAL) per appliance: pcap replay through the
//! forwarder and through stateful workers, two appliances syncing over net_memif, the admin socket and
//! metrics endpoint answering during traffic, and `tandem relay`'s delaying link.

mod support;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Duration;

use support::{EAL, Scratch, Tandem, empty_pcap, read_pcap, write_pcap};
use tandem::runtime::io::owner_of_frame;
use tandem::traffic::{self, TrafficSpec};
use tandem_dataplane::flow::{FlowKey, Placement};
use tandem_dataplane::wire::build::{self, Endpoints};
use tandem_dataplane::wire::checksum::ChecksumCaps;
use tandem_dataplane::wire::ethernet::MacAddr;
use tandem_dataplane::wire::meta::parse_meta;
use tandem_dataplane::wire::udp::UdpRepr;

fn profile(dir: &Scratch, name: &str, body: &str) -> std::path::PathBuf {
    profile_with_control(dir, name, "", body)
}

/// A profile for node `name`, with `control` added to its control section.
fn profile_with_control(
    dir: &Scratch,
    name: &str,
    control: &str,
    body: &str,
) -> std::path::PathBuf {
    let text = format!(
        "node: {{name: {name}, host-id: {}}}\ndpdk: {{eal-args: {EAL}}}\ncontrol: {{{control}admin-socket: {}}}\n{body}",
        1 + name.len(),
        dir.path(&format!("{name}.sock")).display()
    );
    let path = dir.path(&format!("{name}.yaml"));
    std::fs::write(&path, text).expect("write profile");
    path
}

/// 10,000 UDP frames of varied sizes between a few hosts.
fn udp_frames(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let ends = Endpoints::v4(
                MacAddr([2, 0, 0, 0, 0, 1]),
                MacAddr([2, 0, 0, 0, 0, 2]),
                [198, 18, 0, 1 + (i % 7) as u8].into(),
                [198, 19, 0, 1 + (i % 5) as u8].into(),
            );
            let payload = vec![(i % 251) as u8; 18 + (i * 37) % 1400];
            build::udp(
                &ends,
                &UdpRepr {
                    src_port: 1024 + (i % 300) as u16,
                    dst_port: 53,
                },
                &payload,
            )
            .expect("builds")
        })
        .collect()
}

fn wait_until_done(t: &mut Tandem, expect_rx: u64) {
    let line = t.wait_for_line(
        |l| {
            l.starts_with("stats: rx ")
                && l.split_whitespace()
                    .nth(2)
                    .and_then(|v| v.parse::<u64>().ok())
                    == Some(expect_rx)
        },
        Duration::from_secs(60),
    );
    assert!(
        line.is_some(),
        "the appliance never received all {expect_rx} packets"
    );
    // One more report: what was received has been sent.
    t.wait_for_line(|l| l.starts_with("stats: "), Duration::from_secs(5));
}

#[test]
fn a_pcap_of_ten_thousand_packets_comes_out_unchanged_on_the_other_port() {
    let dir = Scratch::new("forward-pcap");
    let frames = udp_frames(10_000);
    write_pcap(&dir.path("in.pcap"), &frames);
    empty_pcap(&dir.path("empty.pcap"));
    let body = format!(
        "ports:\n  - {{name: a, device: \"net_pcap0,rx_pcap={0}/in.pcap,tx_pcap={0}/out-a.pcap\"}}\n  - {{name: b, device: \"net_pcap1,rx_pcap={0}/empty.pcap,tx_pcap={0}/out-b.pcap\"}}\nworkers: {{cores: [0]}}\nforwarding: {{mode: wire, pairs: [[a, b]]}}\nrules:\n  - {{action: pass, state: none}}\n",
        dir.0.display()
    );
    let path = profile(&dir, "fwd", &body);
    let mut t = Tandem::start(&path, &["--stats-interval-ms", "100"]);
    wait_until_done(&mut t, 10_000);
    let (ok, stdout, lines) = t.stop();
    assert!(ok, "tandem failed:\n{}", lines.join("\n"));
    assert!(stdout.contains("buffers still in use: 0"), "{stdout}");
    let out = read_pcap(&dir.path("out-b.pcap"));
    assert_eq!(out.len(), frames.len());
    assert!(
        out == frames,
        "every packet comes out unchanged and in order"
    );
    assert!(read_pcap(&dir.path("out-a.pcap")).is_empty());
}

/// The ICMP "fragmentation needed" a router on the server side sends to the source of `frame`, quoting
/// it: its outer addresses (router, client) name no flow, its quote names the connection.
fn frag_needed_for(frame: &[u8]) -> Vec<u8> {
    let m = parse_meta(frame, ChecksumCaps::SOFTWARE).expect("valid");
    let src = std::net::Ipv4Addr::new(m.src[0], m.src[1], m.src[2], m.src[3]);
    let router = Endpoints::v4(
        MacAddr([2, 0, 0, 0, 0x5e, 0xfe]),
        MacAddr([2, 0, 0, 0, 0x0c, 0xfe]),
        [198, 19, 0, 254].into(),
        src,
    );
    build::icmp_error(&router, build::IcmpError::PacketTooBig(1280), &frame[14..]).expect("builds")
}

#[test]
fn both_directions_of_every_flow_and_its_icmp_errors_hash_to_one_worker() {
    let frames = traffic::frames(&TrafficSpec {
        flows: 500,
        segments: 4,
        close: true,
        ..TrafficSpec::default()
    });
    for workers in [2, 3, 4, 7] {
        let placement = Placement::new(workers, []);
        let mut owner: HashMap<FlowKey, usize> = HashMap::new();
        let mut errors_elsewhere = 0;
        for f in &frames {
            let m = parse_meta(f, ChecksumCaps::SOFTWARE).expect("valid");
            let (sport, dport) = m.ports().expect("TCP");
            let (flow, _) = FlowKey::between(
                m.family().expect("IP"),
                m.proto,
                (m.src, sport),
                (m.dst, dport),
            );
            let w = owner_of_frame(f, &placement);
            assert_eq!(
                *owner.entry(flow).or_insert(w),
                w,
                "a flow split across workers"
            );
            let error = frag_needed_for(f);
            assert_eq!(
                owner_of_frame(&error, &placement),
                w,
                "an error away from its flow"
            );
            // What a NIC would do: hash the error's outer addresses.
            let outer = parse_meta(&error, ChecksumCaps::SOFTWARE).expect("valid");
            let nic = placement.worker_of_hash(tandem_dataplane::flow::rss_hash(
                tandem_config::Family::Inet,
                &outer.src,
                &outer.dst,
                None,
            ));
            errors_elsewhere += usize::from(nic != w);
        }
        let used: std::collections::HashSet<usize> = owner.values().copied().collect();
        assert_eq!(used.len(), workers, "flows spread over every worker");
        assert!(errors_elsewhere > 0, "outer hashing would misplace errors");
    }
}

#[test]
fn icmp_errors_reach_the_worker_of_the_flow_they_quote() {
    let dir = Scratch::new("icmp-errors");
    let spec = TrafficSpec {
        flows: 40,
        segments: 2,
        ..TrafficSpec::default()
    };
    // Each connection, then an error about its last segment, on the queue of the connection's client
    // host. The servers differ, so that the hash of an error's outer addresses (router, client) and that
    // of its flow differ by more than a constant (the Toeplitz hash is linear in its input): a NIC would
    // put about half of the errors on the wrong worker.
    let mut queues = [Vec::new(), Vec::new()];
    for n in 0..spec.flows {
        let flow = traffic::frames(&TrafficSpec {
            flows: 1,
            client_net: std::net::Ipv4Addr::new(198, 18, 0, n as u8),
            server_net: std::net::Ipv4Addr::new(198, 19, n as u8, 0),
            ..spec.clone()
        });
        let last_from_client = flow
            .iter()
            .rev()
            .find(|f| f[26] == 198 && f[27] == 18)
            .expect("a client segment")
            .clone();
        let q = &mut queues[n as usize % 2];
        q.extend(flow);
        q.push(frag_needed_for(&last_from_client));
    }
    let total: usize = queues.iter().map(Vec::len).sum();
    write_pcap(&dir.path("q0.pcap"), &queues[0]);
    write_pcap(&dir.path("q1.pcap"), &queues[1]);
    empty_pcap(&dir.path("empty.pcap"));
    let d = dir.0.display();
    let body = format!(
        "ports:\n  - {{name: inside, queues: 2, device: \"net_pcap0,rx_pcap={d}/q0.pcap,rx_pcap={d}/q1.pcap,tx_pcap={d}/in0.pcap,tx_pcap={d}/in1.pcap\"}}\n  - {{name: outside, queues: 2, device: \"net_pcap1,rx_pcap={d}/empty.pcap,rx_pcap={d}/empty.pcap,tx_pcap={d}/out0.pcap,tx_pcap={d}/out1.pcap\"}}\nworkers: {{cores: [0, 1], polling: adaptive}}\nforwarding: {{mode: wire, pairs: [[inside, outside]]}}\nrules:\n  - {{action: pass, from: 198.18.0.0/16}}\n"
    );
    let path = profile(&dir, "icmp", &body);
    let mut t = Tandem::start(&path, &["--stats-interval-ms", "100"]);
    wait_until_done(&mut t, total as u64);
    let no_state = t.counter("drop_icmp_no_state");
    let mismatch = t.counter("drop_icmp_mismatch");
    let forwarded = t.counter("tx_packets");
    let (ok, _, lines) = t.stop();
    assert!(ok, "tandem failed:\n{}", lines.join("\n"));
    assert_eq!(
        (no_state, mismatch),
        (0, 0),
        "every error found its flow's state"
    );
    assert_eq!(forwarded, total as u64, "flows and errors all pass");
}

#[test]
fn two_workers_track_stateful_flows_and_block_the_rest() {
    let dir = Scratch::new("stateful");
    // 40 connections; every 4th comes from the server side, which no rule lets in.
    let spec = TrafficSpec {
        flows: 40,
        segments: 6,
        close: true,
        blocked_every: Some(4),
        ..TrafficSpec::default()
    };
    let per_flow = traffic::frames(&TrafficSpec {
        flows: 1,
        ..spec.clone()
    })
    .len() as u64;
    // Each connection's frames go to one RX queue, alternating by connection, so that about half the
    // connections arrive on a queue whose worker does not own them: software dispatch must move them.
    let all = traffic::frames(&spec);
    let mut queues = [Vec::new(), Vec::new()];
    for f in &all {
        let m = parse_meta(f, ChecksumCaps::SOFTWARE).expect("valid");
        let host = m.src[3].max(m.dst[3]) as usize;
        queues[host % 2].push(f.clone());
    }
    write_pcap(&dir.path("q0.pcap"), &queues[0]);
    write_pcap(&dir.path("q1.pcap"), &queues[1]);
    empty_pcap(&dir.path("empty.pcap"));
    let d = dir.0.display();
    let body = format!(
        "ports:\n  - {{name: inside, queues: 2, device: \"net_pcap0,rx_pcap={d}/q0.pcap,rx_pcap={d}/q1.pcap,tx_pcap={d}/in0.pcap,tx_pcap={d}/in1.pcap\"}}\n  - {{name: outside, queues: 2, device: \"net_pcap1,rx_pcap={d}/empty.pcap,rx_pcap={d}/empty.pcap,tx_pcap={d}/out0.pcap,tx_pcap={d}/out1.pcap\"}}\nworkers: {{cores: [0, 1], polling: adaptive}}\nforwarding: {{mode: wire, pairs: [[inside, outside]]}}\nrules:\n  - {{label: clients, action: pass, from: 198.18.0.0/24}}\n"
    );
    let path = profile(&dir, "stateful", &body);
    let mut t = Tandem::start(&path, &["--stats-interval-ms", "100"]);
    wait_until_done(&mut t, all.len() as u64);
    let rules = t.show_json("rules");
    let states_per_worker: Vec<u64> = t
        .show_json("counters")
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w["states"].as_u64().unwrap_or(0))
        .collect();
    let drops = t.counter("drop_blocked_by_default");
    let window = t.counter("drop_out_of_window");
    let forwarded = t.counter("tx_packets");
    let (ok, stdout, lines) = t.stop();
    assert!(ok, "tandem failed:\n{}", lines.join("\n"));
    let allowed = 30;
    let blocked = 10;
    assert_eq!(rules[0]["states"], allowed, "{rules}");
    assert_eq!(
        rules[0]["packets"], allowed,
        "only each opening SYN meets the rules"
    );
    assert_eq!(
        forwarded,
        allowed * per_flow,
        "every packet of every allowed connection passes"
    );
    assert_eq!(
        drops,
        blocked * per_flow,
        "every packet of every other connection is blocked"
    );
    assert_eq!(window, 0);
    assert_eq!(states_per_worker.iter().sum::<u64>(), allowed);
    assert!(
        states_per_worker.iter().all(|s| *s > 0),
        "both workers hold states: {states_per_worker:?}"
    );
    assert!(stdout.contains("buffers still in use: 0"), "{stdout}");
    let out: usize = ["out0.pcap", "out1.pcap"]
        .iter()
        .map(|f| read_pcap(&dir.path(f)).len())
        .sum();
    assert_eq!(out as u64, forwarded);
}

/// What two appliances syncing over net_memif made of A's 25 connections: whether B learned them all,
/// and both nodes' `show sync`. `keys` are the two nodes' key files' texts (no authentication when `None`).
fn share_states(
    name: &str,
    keys: Option<(&str, &str)>,
) -> (bool, serde_json::Value, serde_json::Value) {
    let dir = Scratch::new(name);
    let spec = TrafficSpec {
        flows: 25,
        segments: 4,
        ..TrafficSpec::default()
    };
    let frames = traffic::frames(&spec);
    write_pcap(&dir.path("in.pcap"), &frames);
    empty_pcap(&dir.path("empty.pcap"));
    let d = dir.0.display();
    let auth = |node: &str, key: Option<&str>| match key {
        None => String::new(),
        Some(text) => {
            let path = dir.path(&format!("{node}.key"));
            std::fs::write(&path, text).expect("key file");
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .expect("chmod");
            format!(", auth-key-file: {}", path.display())
        }
    };
    let node = |name: &str, role: &str, rx: &str, sync_addr: &str, key: Option<&str>| {
        format!(
            "ports:\n  - {{name: inside, device: \"net_pcap0,rx_pcap={d}/{rx},tx_pcap={d}/{name}-in.pcap\"}}\n  - {{name: outside, device: \"net_pcap1,rx_pcap={d}/empty.pcap,tx_pcap={d}/{name}-out.pcap\"}}\n  - {{name: sync, device: \"net_memif0,role={role},socket={d}/memif.sock,socket-abstract=no\", addresses: [{sync_addr}/24]}}\nworkers: {{cores: [0], polling: adaptive}}\nforwarding: {{mode: wire, pairs: [[inside, outside]]}}\nrules:\n  - {{action: pass, from: 198.18.0.0/24}}\nsync: {{port: sync, core: 1, transport: multicast, keepalive-ms: 100, peer-dead-ms: 1000, bulk-timeout-ms: 300, bulk-retries: 3{}}}\n",
            auth(name, key)
        )
    };
    let (key_a, key_b) = keys.map_or((None, None), |(a, b)| (Some(a), Some(b)));
    // B starts first with no traffic; A brings the connections.
    let b = Tandem::start(
        &profile(
            &dir,
            "node-b",
            &node("node-b", "server", "empty.pcap", "198.20.0.2", key_b),
        ),
        &[],
    );
    let mut a = Tandem::start(
        &profile(
            &dir,
            "node-a",
            &node("node-a", "client", "in.pcap", "198.20.0.1", key_a),
        ),
        &["--stats-interval-ms", "100"],
    );
    wait_until_done(&mut a, frames.len() as u64);
    // Long enough for every insert and a bulk request's retries to have come and gone.
    let learned = b.eventually(
        Duration::from_secs(if keys.is_some_and(|(a, b)| a != b) {
            3
        } else {
            20
        }),
        |b| {
            let states = b.show_json("states");
            states
                .as_array()
                .is_some_and(|s| s.len() == 25 && s.iter().all(|s| s["origin"] == "peer"))
        },
    );
    let b_sync = b.show_json("sync");
    let a_sync = a.show_json("sync");
    let (a_ok, _, a_lines) = a.stop();
    let (b_ok, b_out, b_lines) = b.stop();
    assert!(a_ok, "{}", a_lines.join("\n"));
    assert!(b_ok, "{}", b_lines.join("\n"));
    assert!(b_out.contains("buffers still in use: 0"), "{b_out}");
    (learned, a_sync, b_sync)
}

fn sync_counter(s: &serde_json::Value, name: &str) -> u64 {
    s["counters"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .and_then(|c| c["value"].as_u64())
        .unwrap_or(0)
}

#[test]
fn two_appliances_share_their_states_over_memif() {
    let (learned, a_sync, b_sync) = share_states("memif", None);
    assert!(
        learned,
        "node B never held A's 25 states\nA: {a_sync}\nB: {b_sync}"
    );
    assert_eq!(b_sync["in_sync"], true, "{b_sync}");
    assert!(sync_counter(&a_sync, "out_ins_messages") >= 25, "{a_sync}");
    assert!(sync_counter(&b_sync, "in_ins_messages") >= 25, "{b_sync}");
}

const KEY: &str = "1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
const OTHER_KEY: &str = "1 f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f\n";

#[test]
fn appliances_holding_the_cluster_key_share_their_states_and_every_datagram_verifies() {
    let (learned, a_sync, b_sync) = share_states("memif-auth", Some((KEY, KEY)));
    assert!(
        learned,
        "node B never held A's 25 states\nA: {a_sync}\nB: {b_sync}"
    );
    assert!(sync_counter(&b_sync, "auth_accepted") > 0, "{b_sync}");
    for refused in [
        "auth_unsealed",
        "auth_unknown_key",
        "auth_bad_mac",
        "auth_replayed",
    ] {
        assert_eq!(sync_counter(&b_sync, refused), 0, "{refused}: {b_sync}");
    }
}

#[test]
fn an_appliance_with_another_key_is_heard_by_nobody() {
    let (learned, a_sync, b_sync) = share_states("memif-wrong-key", Some((OTHER_KEY, KEY)));
    assert!(!learned);
    assert_eq!(sync_counter(&b_sync, "in_ins_messages"), 0, "{b_sync}");
    assert_eq!(sync_counter(&b_sync, "packets_in"), 0, "{b_sync}");
    assert!(sync_counter(&b_sync, "auth_bad_mac") > 0, "{b_sync}");
    assert!(
        sync_counter(&a_sync, "auth_bad_mac") > 0,
        "B's packets to A: {a_sync}"
    );
}

#[test]
fn a_key_file_others_can_read_is_refused_by_tandem_check() {
    let dir = Scratch::new("key-mode");
    let key = dir.path("sync.key");
    std::fs::write(&key, KEY).expect("key file");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    let body = format!(
        "ports:\n  - {{name: inside, device: net_null0}}\n  - {{name: outside, device: net_null1}}\n  - {{name: sync, device: net_null2, addresses: [198.20.0.1/24]}}\nworkers: {{cores: [0]}}\nforwarding: {{mode: wire, pairs: [[inside, outside]]}}\nsync: {{port: sync, core: 1, transport: multicast, auth-key-file: {}}}\n",
        key.display()
    );
    let path = profile(&dir, "node", &body);
    let check = |path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["check", "--profile"])
            .arg(path)
            .output()
            .expect("tandem check")
    };
    let out = check(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("chmod 600"), "{text}");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let out = check(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to metrics");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("request");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    body
}

#[test]
fn the_admin_socket_and_metrics_answer_during_traffic() {
    let dir = Scratch::new("admin");
    let frames = traffic::frames(&TrafficSpec {
        flows: 32,
        segments: 16,
        ..TrafficSpec::default()
    });
    write_pcap(&dir.path("loop.pcap"), &frames);
    empty_pcap(&dir.path("empty.pcap"));
    let port = free_port();
    let d = dir.0.display();
    let body = format!(
        "ports:\n  - {{name: inside, device: \"net_pcap0,rx_pcap={d}/loop.pcap,infinite_rx=1\"}}\n  - {{name: outside, device: \"net_null0\"}}\nworkers: {{cores: [0], polling: adaptive}}\nforwarding: {{mode: wire, pairs: [[inside, outside]]}}\nrules:\n  - {{action: pass, from: 198.18.0.0/24}}\n"
    );
    let path = profile_with_control(
        &dir,
        "admin",
        &format!("metrics-listen: \"127.0.0.1:{port}\", "),
        &body,
    );
    let t = Tandem::start(&path, &[]);
    let first = t.counter("rx_packets");
    std::thread::sleep(Duration::from_millis(300));
    let second = t.counter("rx_packets");
    let states = t.show_json("states");
    let text = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["show", "states", "--profile"])
        .arg(&path)
        .output()
        .expect("show");
    let metrics = {
        let mut body = String::new();
        for _ in 0..40 {
            body = http_get(port, "/metrics");
            if body.contains("tandem_worker_rx_packets_total") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        body
    };
    let (ok, _, lines) = t.stop();
    assert!(ok, "{}", lines.join("\n"));
    assert!(
        second > first && first > 0,
        "traffic flows while we ask: {first} then {second}"
    );
    assert_eq!(states.as_array().map(Vec::len), Some(32));
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("ESTABLISHED:ESTABLISHED") && text.ends_with("32 state(s)\n"),
        "{text}"
    );
    assert!(
        metrics.contains("tandem_worker_rx_packets_total{worker=\"0\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tandem_states{worker=\"0\"} 32"),
        "{metrics}"
    );
    // Prometheus conventions: every family described and typed, what varies a label.
    for line in [
        "# HELP tandem_states States held, per worker.",
        "# TYPE tandem_states gauge",
        "# TYPE tandem_worker_drops_total counter",
        "# HELP tandem_worker_rx_packets_total Worker counter `rx_packets`",
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    assert!(
        metrics.contains("tandem_worker_drops_total{worker=\"0\",reason=\"out_of_window\"}"),
        "{metrics}"
    );
}

/// Runs `tandem relay` between two net_pcap ports for `run`, with `delay_us` and `extra` arguments;
/// returns what it printed and the frames each port sent.
fn relay(
    dir: &Scratch,
    delay_us: u64,
    extra: &[&str],
    run: Duration,
) -> (String, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let device = |i: usize, side: &str| {
        format!(
            "net_pcap{i},rx_pcap={},tx_pcap={}",
            dir.path(&format!("{side}-in.pcap")).display(),
            dir.path(&format!("{side}-out-{delay_us}.pcap")).display()
        )
    };
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["relay", "--a", &device(0, "a"), "--b", &device(1, "b")])
        .args(["--delay-us", &delay_us.to_string()])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn tandem relay");
    std::thread::sleep(run);
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("relay exits");
    assert!(out.status.success(), "relay failed");
    let sent = |side: &str| read_pcap(&dir.path(&format!("{side}-out-{delay_us}.pcap")));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        sent("a"),
        sent("b"),
    )
}

#[test]
fn the_relay_passes_every_frame_both_ways_in_order_but_not_before_its_delay() {
    let dir = Scratch::new("relay");
    let frames = udp_frames(300);
    write_pcap(&dir.path("a-in.pcap"), &frames[..200]);
    write_pcap(&dir.path("b-in.pcap"), &frames[200..]);
    // A short delay: every frame comes out of the other port, in order.
    let (printed, from_a_side, from_b_side) = relay(&dir, 1000, &[], Duration::from_secs(3));
    assert_eq!(
        from_b_side,
        frames[..200],
        "port a's frames leave by port b"
    );
    assert_eq!(from_a_side, frames[200..], "and port b's by port a");
    assert!(
        printed.contains("relayed 200 and 100 frames, dropped 0 and 0"),
        "{printed}"
    );
    // A delay longer than the run: nothing has left when it stops.
    let (printed, from_a_side, from_b_side) = relay(&dir, 30_000_000, &[], Duration::from_secs(3));
    assert!(from_a_side.is_empty() && from_b_side.is_empty());
    assert!(printed.contains("relayed 0 and 0 frames"), "{printed}");
}

#[test]
fn the_relay_loses_the_share_of_frames_asked_for_and_keeps_the_rest_in_order() {
    let dir = Scratch::new("relay-loss");
    let frames = udp_frames(2000);
    write_pcap(&dir.path("a-in.pcap"), &frames);
    write_pcap(&dir.path("b-in.pcap"), &[]);
    let (printed, _, from_b_side) = relay(
        &dir,
        100,
        &["--loss-percent", "10", "--seed", "7"],
        Duration::from_secs(3),
    );
    let lost = frames.len() - from_b_side.len();
    assert!(
        (120..=280).contains(&lost),
        "{lost} of 2000 lost: {printed}"
    );
    assert!(printed.contains(&format!("lost {lost} and 0")), "{printed}");
    // What left is the input less the lost frames, in order.
    let mut rest = frames.iter();
    assert!(from_b_side.iter().all(|f| rest.any(|g| g == f)));
}
