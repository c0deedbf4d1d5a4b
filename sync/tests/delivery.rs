//! Acknowledged delivery in virtual time: engines joined by lossy links converge on every state, a
//! restarted peer is found and sent everything, and a peer without the extension costs nothing.

mod cluster;

use cluster::{Cluster, Link, states, tcp_record, update_of};
use tandem_sync::engine::{DeliveryConfig, Engine, EngineConfig};
use tandem_sync::event::{LocalEvent, StateName, StateRecord};
use tandem_sync::time::{Duration, Instant};

const LAN: Link = Link {
    latency: Duration(50),
    bandwidth_bps: 10_000_000_000,
    loss: 0.0,
};

fn acknowledged(epoch: u32) -> DeliveryConfig {
    DeliveryConfig {
        epoch,
        ack_delay: Duration::millis(1),
        resend_after: Duration::millis(10),
        give_up: Duration::millis(250),
        queue_limit: 100_000,
    }
}

fn creator(node: usize) -> u32 {
    0x0a00_0000 + node as u32 + 1
}

fn cluster(n: usize, link: Link, delivery: bool) -> Cluster {
    let mut c = Cluster::new(n, link, |i, cfg: &mut EngineConfig| {
        cfg.delivery = delivery.then(|| acknowledged(100 + i as u32));
    });
    for node in &mut c.nodes {
        node.engine.start(Instant::ZERO);
    }
    c.run_for(Duration::millis(20));
    c
}

/// Each node creates `per_node` states, updates them ten times and deletes every fifth, with traffic
/// between; then everything settles.
fn workload(c: &mut Cluster, per_node: u64) -> Vec<(usize, StateRecord, u32)> {
    let n = c.nodes.len();
    let mut live = Vec::new();
    for node in 0..n {
        for id in 1..=per_node {
            let r = tcp_record(creator(node), id, 1000);
            c.insert(node, r, false);
            live.push((node, r, 1000));
        }
        c.run_for(Duration::millis(1));
    }
    for round in 1..=10u32 {
        for (node, r, seqlo) in &mut live {
            *seqlo = 1000 + round * 1448;
            let now = c.now;
            let update = update_of(r, *seqlo);
            c.event(*node, LocalEvent::Updated { update, at: now });
        }
        c.run_for(Duration::millis(2));
    }
    let (gone, kept): (Vec<_>, Vec<_>) =
        live.into_iter().partition(|(_, r, _)| r.name.id.0 % 5 == 0);
    for (node, r, _) in &gone {
        let name = r.name;
        // The worker deletes its state, then tells the engine.
        c.nodes[*node].shard.states.remove(&name);
        c.event(*node, LocalEvent::Deleted { name });
    }
    c.run_for(Duration::millis(500));
    kept
}

/// States some node holds wrongly: missing, stale, or deleted by its creator and still there.
fn diverged(c: &Cluster, kept: &[(usize, StateRecord, u32)]) -> usize {
    let mut wrong = 0;
    for node in 0..c.nodes.len() {
        let held = states(c, node);
        for (_, r, seqlo) in kept {
            if held.get(&r.name).is_none_or(|h| h.peers[0].seqlo != *seqlo) {
                wrong += 1;
            }
        }
        let wanted: std::collections::BTreeSet<StateName> =
            kept.iter().map(|(_, r, _)| r.name).collect();
        wrong += held.keys().filter(|k| !wanted.contains(k)).count();
    }
    wrong
}

#[test]
fn with_ten_percent_loss_every_node_converges_on_every_state() {
    let lossy = Link { loss: 0.10, ..LAN };
    let mut plain = cluster(3, lossy, false);
    let kept = workload(&mut plain, 100);
    let plain_wrong = diverged(&plain, &kept);

    let mut c = cluster(3, lossy, true);
    let kept = workload(&mut c, 100);
    let wrong = diverged(&c, &kept);
    let d = c.nodes[0].engine.stats().delivery;
    eprintln!("without: {plain_wrong} states wrong; with: {wrong}, {d:?}");
    assert!(
        plain_wrong > 0,
        "fire-and-forget loses some update or delete at 10% loss"
    );
    assert_eq!(wrong, 0, "acknowledged delivery converges");
    assert!(d.gaps_received > 0 && d.sender.resent_on_nack > 0, "{d:?}");
    assert!(d.acks_received > 0 && d.acks_sent > 0);
    for node in &c.nodes {
        assert_eq!(node.engine.stats().delivery.sender.overflowed, 0);
    }
}

#[test]
fn a_peer_that_restarts_is_detected_by_its_new_epoch_and_sent_everything() {
    let mut c = cluster(2, LAN, true);
    for id in 1..=40 {
        c.insert(0, tcp_record(creator(0), id, 1000), false);
    }
    c.run_for(Duration::millis(5));
    assert_eq!(states(&c, 1).len(), 40);
    // Node 1 restarts faster than node 0 declares it dead, and (say its bulk request was lost) does not
    // ask for a bulk update: its first numbered packet carries a new epoch.
    let cfg = EngineConfig {
        delivery: Some(acknowledged(999)),
        ..cluster::config(1, 2, cluster::window_aware())
    };
    let now = c.now;
    c.nodes[1].engine =
        Engine::new(cfg, cluster::one_worker as fn(&StateRecord) -> usize, now).expect("engine");
    c.nodes[1].shard = Default::default();
    c.insert(1, tcp_record(creator(1), 1, 1000), false);
    c.run_for(Duration::millis(50));
    assert_eq!(c.nodes[0].engine.stats().delivery.peer_restarts, 1);
    // Node 1 had a bulk update when it first started, 25 ms ago: the next one waits out the per-peer
    // interval (a forged restart cannot make a node send its table more often than a request can).
    assert_eq!(c.nodes[0].engine.stats().bulks_sent, 1);
    c.run_for(tandem_sync::engine::BULK_INTERVAL);
    assert_eq!(c.nodes[0].engine.stats().bulks_sent, 2);
    assert_eq!(states(&c, 1).len(), 41, "node 1 has node 0's states again");
}

#[test]
fn a_peer_without_the_extension_is_never_waited_for() {
    let mut c = Cluster::new(2, LAN, |i, cfg: &mut EngineConfig| {
        cfg.delivery = (i == 0).then(|| acknowledged(100));
    });
    for node in &mut c.nodes {
        node.engine.start(Instant::ZERO);
    }
    c.run_for(Duration::millis(20));
    for id in 1..=20 {
        c.insert(0, tcp_record(creator(0), id, 1000), false);
        c.run_for(Duration::millis(1));
    }
    c.run_for(Duration::millis(100));
    let d = c.nodes[0].engine.stats().delivery;
    assert!(d.sender.numbered > 0);
    assert_eq!(
        d.sender.resent_on_timeout, 0,
        "nobody acknowledges: nobody waited for"
    );
    assert_eq!(
        states(&c, 1).len(),
        20,
        "the plain peer reads the numbered packets"
    );
    assert_eq!(
        c.nodes[1].engine.stats().sections_skipped,
        [0; 3],
        "and knows the delivery sections"
    );
}

#[test]
fn a_lost_acknowledgement_costs_one_resend_not_a_gap() {
    // Loss in both directions at 30%: data and acknowledgements are lost alike; what was resent only
    // because its acknowledgement was lost arrives as a duplicate and is ignored.
    let lossy = Link { loss: 0.30, ..LAN };
    let mut c = cluster(2, lossy, true);
    let kept = workload(&mut c, 30);
    assert_eq!(diverged(&c, &kept), 0);
    let (a, b) = (
        c.nodes[0].engine.stats().delivery,
        c.nodes[1].engine.stats().delivery,
    );
    eprintln!("{a:?}\n{b:?}");
    assert!(a.sender.resent_on_timeout + b.sender.resent_on_timeout > 0);
}
