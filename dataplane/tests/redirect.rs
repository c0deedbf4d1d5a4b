//! Owner redirect at the worker: which frames leave for their state's owner, how the owner handles what
//! peers redirect to it, and when redirection starts and ends. The sync core's transport of the frames
//! is tested in the root package (tests/dpdk_vdev.rs) and in the simulation.

mod support;

use support::*;
use tandem_sync::event::StateRecord;

/// Node A, the flow's creator and owner, in this test's terms.
const A: CreatorId = CreatorId(0x0a00_0002);

fn profile_with(redirect: &str) -> String {
    format!(
        "forwarding: {{mode: wire, pairs: [[inside, outside]]}}\nrules:\n  - {{action: pass, direction: in, port: inside}}\nsync: {{interface: sync0, core: 0, transport: udp, peers: [198.20.0.2], hold: {{timeout-us: 5000, margin: 100000, per-state: 4}}, redirect: {redirect}}}\n"
    )
}

/// A's state after the handshake, as a peer insert names it.
fn record_from_a() -> StateRecord {
    let mut a = bench(&profile_with("off"));
    a.send(INSIDE, c2s(1000, 0, SYN, 0));
    a.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    a.send(INSIDE, c2s(1001, 5001, ACK, 0));
    let (_, st) = a.worker.table().iter().next().expect("A's state");
    let mut record = tandem_dataplane::worker::record_of(st, a.now);
    record.name.creator = A;
    record
}

/// Node B on the return path, with A's state from a peer insert, A alive.
fn node_b(redirect: &str) -> Bench {
    let mut b = bench(&profile_with(redirect));
    b.links.ops.push_back(PeerOp::Insert {
        record: record_from_a(),
        ack: false,
    });
    b.links.alive.push(A);
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    b
}

fn server_data(seq: u32) -> Vec<u8> {
    s2c(seq, 1001, ACK, 1448)
}

#[test]
fn always_sends_every_frame_of_a_peers_tcp_state_to_its_creator_while_it_lives() {
    let mut b = node_b("always");
    let frame = server_data(5001);
    assert!(
        b.send(OUTSIDE, frame.clone()).is_empty(),
        "not forwarded here"
    );
    assert_eq!(b.links.to_owner, [(A, OUTSIDE, frame.clone())]);
    assert_eq!(b.counters.owner_redirected.get(), 1);
    assert_eq!(b.counters.owner_redirected_bytes.get(), frame.len() as u64);
    // The owner dies: the state is this node's now, checked and forwarded here.
    b.links.alive.clear();
    assert_eq!(b.send(OUTSIDE, frame.clone()), [frame]);
    assert_eq!(b.links.to_owner.len(), 1);
}

#[test]
fn a_full_queue_to_the_sync_core_leaves_the_frame_to_the_local_checks() {
    let mut b = node_b("always");
    b.links.to_owner_room = Some(0);
    let frame = server_data(5001);
    assert_eq!(b.send(OUTSIDE, frame.clone()), [frame]);
    assert_eq!(b.counters.owner_redirect_full.get(), 1);
    // Beyond the window it is still refused: a full queue never loosens a check.
    assert!(
        b.send(OUTSIDE, server_data(5001 + 65535 + 200_000))
            .is_empty()
    );
    assert_eq!(b.dropped(DropReason::OutOfWindow), 1);
}

#[test]
fn off_never_redirects_and_a_states_creator_never_redirects_its_own() {
    let mut b = node_b("off");
    assert_eq!(b.send(OUTSIDE, server_data(5001)).len(), 1);
    assert!(b.links.to_owner.is_empty());
    // The creator, even with `always`.
    let mut a = bench(&profile_with("always"));
    a.links.alive.push(A);
    a.send(INSIDE, c2s(1000, 0, SYN, 0));
    assert_eq!(a.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0)).len(), 1);
    assert!(a.links.to_owner.is_empty());
}

#[test]
fn the_owner_checks_redirected_frames_with_pfs_checks_and_never_redirects_them_again() {
    let mut a = bench(&profile_with("always"));
    a.links.alive.push(A);
    a.send(INSIDE, c2s(1000, 0, SYN, 0));
    a.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    a.send(INSIDE, c2s(1001, 5001, ACK, 0));
    // B redirected the server's data: forwarded as if A had received it on its outside port.
    let valid = server_data(5001);
    a.links.from_peers.push_back((OUTSIDE, valid.clone()));
    a.worker.poll(&mut a.io, &mut a.links, &[], a.now);
    assert_eq!(a.io.take_sent(INSIDE), [valid]);
    assert_eq!(a.counters.owner_received.get(), 1);
    // A forgery beyond the client's window: refused like any packet A receives itself.
    a.links
        .from_peers
        .push_back((OUTSIDE, server_data(5001 + 65535 + 200_000)));
    a.worker.poll(&mut a.io, &mut a.links, &[], a.now);
    assert!(a.io.take_sent(INSIDE).is_empty());
    assert_eq!(a.dropped(DropReason::OutOfWindow), 1);
    // A port this node does not have: dropped, counted.
    a.links.from_peers.push_back((PortId(9), server_data(5001)));
    a.worker.poll(&mut a.io, &mut a.links, &[], a.now);
    assert_eq!(a.dropped(DropReason::Malformed), 1);
    // A frame redirected to B, which did not create the state: B checks it, never sends it on.
    let mut b = node_b("always");
    b.links.from_peers.push_back((OUTSIDE, server_data(5001)));
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert_eq!(b.io.take_sent(INSIDE).len(), 1);
    assert!(b.links.to_owner.is_empty());
}

#[test]
fn auto_redirects_a_state_that_keeps_needing_holds_until_its_flow_slows_down() {
    let mut b = node_b("auto");
    // In the window: passes here.
    assert_eq!(b.send(OUTSIDE, server_data(5001)).len(), 1);
    // Two packets ahead of the sync: held, and the state starts redirecting.
    for i in 0..2 {
        assert!(
            b.send(OUTSIDE, server_data(5001 + 65535 + i * 1448))
                .is_empty()
        );
    }
    assert_eq!(b.counters.held.get(), 2);
    assert_eq!(b.counters.redirect_started.get(), 1);
    assert!(b.links.to_owner.is_empty());
    // From now on the flow's frames go to the owner, in the window or not.
    b.send(OUTSIDE, server_data(5001 + 1448));
    b.send(OUTSIDE, server_data(5001 + 65535 + 3 * 1448));
    assert_eq!(b.links.to_owner.len(), 2);
    assert_eq!(b.counters.held.get(), 2, "nothing more held");
    // A busy epoch (at least 100 packets: 1,000 a second) keeps it going into the next.
    for _ in 0..100 {
        b.send(OUTSIDE, server_data(5001 + 1448));
    }
    assert_eq!(b.links.to_owner.len(), 102);
    b.now = b.now + Duration::millis(100);
    b.send(OUTSIDE, server_data(5001 + 1448));
    assert_eq!(b.links.to_owner.len(), 103);
    // After an epoch with fewer packets the flow has slowed down: checked here again.
    b.now = b.now + Duration::millis(100);
    assert_eq!(b.send(OUTSIDE, server_data(5001 + 2 * 1448)).len(), 1);
    assert_eq!(b.links.to_owner.len(), 103);
}

#[test]
fn the_profile_refuses_redirect_over_a_sync_link_too_small_for_a_data_frame() {
    let body = "forwarding: {mode: wire, pairs: [[inside, outside]]}\nsync: {interface: sync0, core: 0, transport: udp, peers: [198.20.0.2], mtu: 1500, redirect: auto}\n";
    let src = format!(
        "node: {{name: fw, host-id: 1}}\nports:\n  - {{name: inside, device: net_null0}}\n  - {{name: outside, device: net_null1}}\nworkers: {{cores: [0]}}\n{body}"
    );
    let err = tandem_config::parse(&src, "test").expect_err("refused");
    assert!(
        err.report()
            .contains("sync.redirect needs a sync MTU of at least 1577"),
        "{}",
        err.report()
    );
    let fits = src.replace("mtu: 1500", "mtu: 1600");
    assert!(tandem_config::parse(&fits, "test").is_ok());
    let bad = src.replace("redirect: auto", "redirect: sometimes");
    assert!(
        tandem_config::parse(&bad, "test")
            .expect_err("refused")
            .report()
            .contains("expected `off`, `auto` or `always`")
    );
}
