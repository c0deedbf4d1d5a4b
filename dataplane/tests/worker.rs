//! The worker end to end over in-memory ports: frames in, frames out, counters, and what it tells the sync
//! core. Each test builds a profile, sends real frames through `Worker::poll` and checks what comes out.

mod support;

use support::*;

#[test]
fn in_wire_mode_a_stateful_connection_passes_both_ways_unchanged() {
    let mut b = bench(WIRE_PASS);
    let syn = c2s(1000, 0, SYN, 0);
    assert_eq!(b.send(INSIDE, syn.clone()), [syn]);
    let reply = s2c(5000, 1001, syn_ack(), 0);
    assert_eq!(
        b.send(OUTSIDE, reply.clone()),
        [reply],
        "the reply matches the state"
    );
    let data = c2s(1001, 5001, ACK, 1448);
    assert_eq!(b.send(INSIDE, data.clone()), [data]);
    assert_eq!(b.worker.table().len(), 1);
    assert_eq!(b.counters.states_created.get(), 1);
    assert_eq!(b.counters.state_hits.get(), 2);
}

#[test]
fn connections_from_the_other_side_are_blocked_by_default() {
    let mut b = bench(WIRE_PASS);
    assert!(b.send(OUTSIDE, s2c(5000, 0, SYN, 0)).is_empty());
    assert!(
        b.send(OUTSIDE, s2c(5000, 77, ACK, 10)).is_empty(),
        "a stray ACK opens nothing"
    );
    assert_eq!(b.dropped(DropReason::BlockedByDefault), 2);
    assert!(b.worker.table().is_empty());
}

#[test]
fn a_segment_outside_the_window_is_dropped_and_counted() {
    let mut b = bench(WIRE_PASS);
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    b.send(INSIDE, c2s(1001, 5001, ACK, 0));
    // 200 KB past what the server's 64 KB window allows.
    assert!(
        b.send(INSIDE, c2s(1001 + 200_000, 5001, ACK, 1448))
            .is_empty()
    );
    assert_eq!(b.dropped(DropReason::OutOfWindow), 1);
    // An ACK acknowledging data the client never sent.
    assert!(
        b.send(OUTSIDE, s2c(5001, 1001 + 100_000, ACK, 0))
            .is_empty()
    );
    assert_eq!(b.dropped(DropReason::OutOfWindow), 2);
    // The connection goes on.
    assert_eq!(b.send(INSIDE, c2s(1001, 5001, ACK, 1448)).len(), 1);
}

#[test]
fn rule_counters_count_packets_and_states() {
    let mut b = bench(
        "forwarding: {mode: wire, pairs: [[inside, outside]]}\nrules:\n  - {action: block, proto: tcp, to-port: 25}\n  - {action: pass, direction: in, port: inside}\n",
    );
    let smtp = {
        let ends = Endpoints::v4(
            CLIENT_MAC,
            MacAddr(FW_IN_MAC),
            [198, 18, 0, 10].into(),
            [198, 19, 0, 20].into(),
        );
        let repr = TcpRepr {
            src_port: 40001,
            dst_port: 25,
            seq: 1,
            flags: SYN,
            window: 1000,
            ..TcpRepr::default()
        };
        build::tcp(&ends, &repr, &[]).expect("builds")
    };
    assert!(b.send(INSIDE, smtp).is_empty());
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    assert_eq!(b.dropped(DropReason::BlockedByRule), 1);
    assert_eq!(b.counters.states_created.get(), 1);
}

#[test]
fn a_full_shard_refuses_new_states_and_keeps_the_old_ones() {
    let mut b = bench(&format!("{WIRE_PASS}limits: {{states: 3}}\n"));
    for port in 0..5u16 {
        let ends = Endpoints::v4(
            CLIENT_MAC,
            MacAddr(FW_IN_MAC),
            [198, 18, 0, 10].into(),
            [198, 19, 0, 20].into(),
        );
        let repr = TcpRepr {
            src_port: 1000 + port,
            dst_port: 80,
            seq: 1,
            flags: SYN,
            window: 1000,
            ..TcpRepr::default()
        };
        b.send(INSIDE, build::tcp(&ends, &repr, &[]).expect("builds"));
    }
    assert_eq!(b.worker.table().len(), 3);
    assert_eq!(b.dropped(DropReason::StateLimit), 2);
}

#[test]
fn udp_and_icmp_echo_make_pseudo_states() {
    let mut b = bench(WIRE_PASS);
    let out = Endpoints::v4(
        CLIENT_MAC,
        MacAddr(FW_IN_MAC),
        [198, 18, 0, 10].into(),
        [198, 19, 0, 53].into(),
    );
    let back = Endpoints::v4(
        SERVER_MAC,
        MacAddr(FW_OUT_MAC),
        [198, 19, 0, 53].into(),
        [198, 18, 0, 10].into(),
    );
    let query = build::udp(
        &out,
        &UdpRepr {
            src_port: 5353,
            dst_port: 53,
        },
        b"q",
    )
    .expect("builds");
    let answer = build::udp(
        &back,
        &UdpRepr {
            src_port: 53,
            dst_port: 5353,
        },
        b"a",
    )
    .expect("builds");
    assert_eq!(b.send(INSIDE, query).len(), 1);
    assert_eq!(b.send(OUTSIDE, answer).len(), 1);
    let ping = build::icmp_echo(
        &out,
        build::Echo {
            request: true,
            ident: 7,
            seq_no: 1,
        },
        b"x",
    )
    .expect("builds");
    let pong = build::icmp_echo(
        &back,
        build::Echo {
            request: false,
            ident: 7,
            seq_no: 1,
        },
        b"x",
    )
    .expect("builds");
    assert_eq!(b.send(INSIDE, ping).len(), 1);
    assert_eq!(b.send(OUTSIDE, pong).len(), 1);
    let stray = build::icmp_echo(
        &back,
        build::Echo {
            request: false,
            ident: 8,
            seq_no: 1,
        },
        b"x",
    )
    .expect("builds");
    assert!(
        b.send(OUTSIDE, stray).is_empty(),
        "a reply with another id has no state"
    );
    assert_eq!(b.worker.table().len(), 2);
}

#[test]
fn an_icmp_error_about_a_flow_passes_only_if_its_quote_fits_the_window() {
    let mut b = bench(WIRE_PASS);
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    // A router beyond the firewall reports the client's segment unreachable.
    let router = Endpoints::v4(
        SERVER_MAC,
        MacAddr(FW_OUT_MAC),
        [198, 19, 0, 254].into(),
        [198, 18, 0, 10].into(),
    );
    let offending = c2s(1001, 5001, ACK, 100);
    let quoted = &offending[14..];
    let error =
        build::icmp_error(&router, build::IcmpError::Unreachable(1), quoted).expect("builds");
    assert_eq!(b.send(OUTSIDE, error).len(), 1);
    let forged = c2s(1001 + 500_000, 5001, ACK, 100);
    let error = build::icmp_error(&router, build::IcmpError::Unreachable(1), &forged[14..])
        .expect("builds");
    assert!(b.send(OUTSIDE, error).is_empty());
    assert_eq!(b.dropped(DropReason::IcmpMismatch), 1);
}

#[test]
fn block_return_answers_tcp_with_a_reset() {
    let mut b = bench(
        "forwarding: {mode: wire, pairs: [[inside, outside]]}\nrules:\n  - {action: block, return: true}\n",
    );
    assert!(b.send(INSIDE, c2s(1000, 0, SYN, 0)).is_empty());
    let answers = b.answers(INSIDE);
    assert_eq!(answers.len(), 1);
    let m = parse_meta(&answers[0], ChecksumCaps::SOFTWARE).expect("valid");
    match m.l4 {
        L4::Tcp(t) => {
            assert!(t.flags.contains(TcpFlags::RST));
            assert_eq!(t.ack, 1001);
            assert_eq!((t.src_port, t.dst_port), (80, 40000));
        }
        other => panic!("expected a RST, got {other:?}"),
    }
}

#[test]
fn malformed_frames_are_dropped_with_their_reason() {
    let mut b = bench(WIRE_PASS);
    let mut frame = c2s(1000, 0, SYN, 0);
    frame.truncate(30);
    assert!(b.send(INSIDE, frame).is_empty());
    assert_eq!(b.dropped(DropReason::Malformed), 1);
    assert_eq!(b.counters.malformed.iter().map(|c| c.get()).sum::<u64>(), 1);
}

const ROUTER: &str = "rules:\n  - {action: pass, direction: in, port: inside}\n";

/// The control thread reports the server's MAC (198.19.0.20 on the outside port) and the worker polls.
fn server_neighbour_answers(b: &mut Bench) {
    let server = addr_of(&Ipv4Addr::new(198, 19, 0, 20).into());
    b.links.control.push_back(ControlOp::Neighbor {
        port: OUTSIDE,
        addr: server,
        mac: SERVER_MAC.0,
    });
    b.worker
        .poll(&mut b.io, &mut b.links, &[INSIDE, OUTSIDE], b.now);
}

/// One frame left, routed to the server: a valid IPv4 checksum, TTL 63, the server's and our MACs.
fn assert_routed_to_server(out: Vec<Vec<u8>>, what: &str) {
    assert_eq!(out.len(), 1, "{what}");
    let m = parse_meta(&out[0], ChecksumCaps::SOFTWARE)
        .expect("a valid frame with a valid IPv4 checksum");
    assert_eq!(m.ttl, 63);
    assert_eq!(&out[0][..12], &[SERVER_MAC.0, FW_OUT_MAC].concat()[..]);
}

#[test]
fn a_router_holds_a_packet_for_an_unknown_neighbour_then_forwards_it_with_ttl_and_macs_rewritten() {
    let mut b = bench(ROUTER);
    let syn = c2s(1000, 0, SYN, 0);
    assert!(
        b.send(INSIDE, syn).is_empty(),
        "held while the MAC is resolved"
    );
    assert_eq!(b.counters.parked.get(), 1);
    assert_eq!(b.dropped(DropReason::NoNeighbor), 0);
    let server = addr_of(&Ipv4Addr::new(198, 19, 0, 20).into());
    assert_eq!(
        b.links.resolve,
        [NextHop {
            port: OUTSIDE,
            addr: server
        }]
    );
    server_neighbour_answers(&mut b);
    assert_routed_to_server(b.io.take_sent(OUTSIDE), "the first packet was not lost");
}

#[test]
fn a_packet_for_a_neighbour_that_never_answers_is_dropped_after_a_second() {
    let mut b = bench(ROUTER);
    for i in 0..10 {
        assert!(b.send(INSIDE, c2s(1000 + i, 0, SYN, 0)).is_empty());
    }
    assert_eq!(b.counters.parked.get(), 8, "a few per next hop");
    assert_eq!(b.dropped(DropReason::NoNeighbor), 2);
    b.now = b.now + Duration::secs(2);
    b.worker
        .poll(&mut b.io, &mut b.links, &[INSIDE, OUTSIDE], b.now);
    assert_eq!(b.dropped(DropReason::NoNeighbor), 10);
}

#[test]
fn a_router_answers_an_expiring_ttl_with_time_exceeded() {
    let mut b = bench(ROUTER);
    let ends = Endpoints::v4(
        CLIENT_MAC,
        MacAddr(FW_IN_MAC),
        [198, 18, 0, 10].into(),
        [198, 19, 0, 20].into(),
    )
    .with_hop_limit(1);
    let repr = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq: 1,
        flags: SYN,
        window: 1000,
        ..TcpRepr::default()
    };
    let server = addr_of(&Ipv4Addr::new(198, 19, 0, 20).into());
    b.links.control.push_back(ControlOp::Neighbor {
        port: OUTSIDE,
        addr: server,
        mac: SERVER_MAC.0,
    });
    assert!(
        b.send(INSIDE, build::tcp(&ends, &repr, &[]).expect("builds"))
            .is_empty()
    );
    assert_eq!(b.dropped(DropReason::TtlExceeded), 1);
    let answers = b.answers(INSIDE);
    let m = parse_meta(&answers[0], ChecksumCaps::SOFTWARE).expect("valid");
    assert!(
        matches!(m.l4, L4::Icmp(i) if i.icmp_type == 11 && matches!(i.kind, IcmpKind::Error(_)))
    );
    assert_eq!(
        &m.src[..4],
        &[198, 18, 0, 1],
        "from the router's inside address"
    );
}

#[test]
fn arp_and_packets_for_the_appliance_are_punted_in_router_mode() {
    let mut b = bench(ROUTER);
    let arp = build::arp_request(
        MacAddr(CLIENT_MAC.0),
        [198, 18, 0, 10].into(),
        [198, 18, 0, 1].into(),
        None,
    );
    b.send(INSIDE, arp);
    let ends = Endpoints::v4(
        CLIENT_MAC,
        MacAddr(FW_IN_MAC),
        [198, 18, 0, 10].into(),
        [198, 18, 0, 1].into(),
    );
    let ping = build::icmp_echo(
        &ends,
        build::Echo {
            request: true,
            ident: 1,
            seq_no: 1,
        },
        b"",
    )
    .expect("builds");
    b.send(INSIDE, ping);
    assert_eq!(b.links.punted.len(), 2);
    assert_eq!(b.counters.punted.get(), 2);
}

fn synced(defer: bool) -> Bench {
    let sync = format!(
        "forwarding: {{mode: wire, pairs: [[inside, outside]]}}\nrules:\n  - {{action: pass, direction: in, port: inside}}\nsync: {{interface: sync0, core: 0, transport: udp, peers: [198.20.0.2]{}}}\n",
        if defer {
            ", defer: {enabled: true, timeout-us: 20000}"
        } else {
            ""
        }
    );
    bench(&sync)
}

#[test]
fn a_new_state_is_reported_to_the_sync_core() {
    let mut b = synced(false);
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    match b.links.events.as_slice() {
        [
            LocalEvent::Inserted {
                record,
                deferred: false,
                ..
            },
        ] => {
            assert_eq!(record.port, [40000, 80], "endpoint 0 is the initiator");
            assert_eq!(&record.addr[0][..4], &[198, 18, 0, 10]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn progress_is_reported_by_the_quantum_not_per_packet() {
    let mut b = synced(false);
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    b.send(INSIDE, c2s(1001, 5001, ACK, 0));
    let before = b.links.events.len();
    let mut seq = 1001;
    for _ in 0..30 {
        b.send(INSIDE, c2s(seq, 5001, ACK, 1000));
        seq += 1000;
    }
    let updates = b.links.events.len() - before;
    // 30 KB of progress in 1000-byte segments at a 2 KB quantum: a report every third segment, not 30.
    assert!((9..=11).contains(&updates), "{updates} reports");
}

#[test]
fn a_peers_update_does_not_hide_our_own_newer_progress_from_the_sync_core() {
    // Asymmetric flow: this node sees the client's data, the peer sees the server's acknowledgements
    // and keeps sending us updates that carry the client's side as it last heard of it.
    let mut b = synced(false);
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    b.send(INSIDE, c2s(1001, 5001, ACK, 0));
    let name = match b.links.events[0] {
        LocalEvent::Inserted { record, .. } => record.name,
        ref other => panic!("{other:?}"),
    };
    let mut seq = 1001;
    let mut send = |b: &mut Bench, n: usize| {
        for _ in 0..n {
            b.send(INSIDE, c2s(seq, 5001, ACK, 1000));
            seq += 1000;
        }
    };
    send(&mut b, 1);
    let index = b.worker.table().iter().next().expect("a state").0;
    let mut theirs = b.worker.table().get(index).peers;
    // The peer's copy of our side is 1 KB behind (short of the quantum, so not yet reported); its own
    // side moved on.
    theirs[0].seqlo = 1001;
    theirs[1].seqhi += 8000;
    b.links.ops.push_back(PeerOp::Update {
        update: StateUpdate {
            name,
            peers: theirs,
            timeout: tandem_sync::state::TimeoutClass::TcpEstablished,
            updates: 0,
        },
    });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    let before = b.links.events.len();
    // 2 KB more: 3 KB beyond what the peer knows, past the 2 KB quantum (but only 2000 bytes beyond
    // what this node had when the update came: a mark moved to our own state would stay silent).
    send(&mut b, 2);
    assert!(
        b.links.events.len() > before,
        "3 KB of progress the peer has not heard of must be reported"
    );
}

#[test]
fn a_deferred_packet_waits_for_the_sync_core_and_then_leaves() {
    let mut b = synced(true);
    assert!(b.send(INSIDE, c2s(1000, 0, SYN, 0)).is_empty(), "held");
    assert_eq!(b.worker.held(), 1);
    let LocalEvent::Inserted {
        record,
        deferred: true,
        ..
    } = b.links.events[0]
    else {
        panic!("deferred insert")
    };
    b.links.ops.push_back(PeerOp::ReleaseDeferred {
        name: record.name,
        reason: ReleaseReason::Acknowledged,
    });
    b.worker
        .poll(&mut b.io, &mut b.links, &[INSIDE, OUTSIDE], b.now);
    assert_eq!(b.io.take_sent(OUTSIDE).len(), 1);
    assert_eq!(b.worker.held(), 0);
}

#[test]
fn a_held_packet_is_released_at_the_backstop_if_the_sync_core_never_answers() {
    let mut b = synced(true);
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    b.now = b.now + Duration::millis(41);
    b.worker
        .poll(&mut b.io, &mut b.links, &[INSIDE, OUTSIDE], b.now);
    assert_eq!(b.io.take_sent(OUTSIDE).len(), 1);
    assert_eq!(b.counters.deferred_backstop.get(), 1);
}

/// Node A's insert of the connection whose SYN it saw (the client's 1000 to the server).
fn syn_seen_by_a() -> StateRecord {
    let mut a = synced(false);
    a.send(INSIDE, c2s(1000, 0, SYN, 0));
    let LocalEvent::Inserted { record, .. } = a.links.events[0] else {
        panic!("insert")
    };
    record
}

#[test]
fn a_reply_ahead_of_its_peers_insert_waits_for_it_and_then_passes_on_this_node() {
    // Asymmetric path: node A saw the SYN; this node sees only the reply, which beat A's insert here.
    let record = syn_seen_by_a();
    let mut b = synced(false);
    let reply = s2c(5000, 1001, syn_ack(), 0);
    assert!(b.send(OUTSIDE, reply.clone()).is_empty(), "no state yet");
    assert_eq!(b.counters.held_for_state.get(), 1, "held, not blocked");
    assert_eq!(b.dropped(DropReason::BlockedByDefault), 0);
    b.links.ops.push_back(PeerOp::Insert { record, ack: true });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert_eq!(
        b.io.take_sent(INSIDE),
        [reply],
        "checked on the peer's state and forwarded"
    );
    assert_eq!(b.counters.held_for_state_found.get(), 1);
    assert!(
        b.links
            .events
            .contains(&LocalEvent::PeerInserted { name: record.name }),
        "the sync core hears the state is in the shard, and only then acknowledges it"
    );
    assert_eq!(b.counters.states_from_peers.get(), 1);
    assert_eq!(b.counters.state_hits.get(), 1);
}

#[test]
fn a_blocked_packet_no_state_comes_for_meets_the_rules_at_the_hold_timeout() {
    let mut b = synced(false);
    assert!(b.send(OUTSIDE, s2c(5000, 1001, ACK, 100)).is_empty());
    assert_eq!(b.counters.held_for_state.get(), 1);
    b.now = b.now + Duration::micros(9_000);
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert_eq!(b.dropped(DropReason::BlockedByDefault), 0, "still waiting");
    b.now = b.now + Duration::micros(1_001);
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert_eq!(b.dropped(DropReason::BlockedByDefault), 1);
    assert_eq!(b.counters.held_for_state_timeout.get(), 1);
    assert!(b.io.take_sent(INSIDE).is_empty(), "never forwarded");
    // A state arriving later lets nothing out: the packet is gone.
    b.links.ops.push_back(PeerOp::Insert {
        record: syn_seen_by_a(),
        ack: false,
    });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert!(b.io.take_sent(INSIDE).is_empty());
}

#[test]
fn with_deferral_on_a_packet_of_no_state_waits_as_long_as_a_deferral_may() {
    // The peer's insert of a state whose first packet left can take the deferral timeout (20 ms here).
    let mut b = synced(true);
    b.send(OUTSIDE, s2c(5000, 1001, ACK, 100));
    b.now = b.now + Duration::millis(15);
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert_eq!(
        b.dropped(DropReason::BlockedByDefault),
        0,
        "past the hold timeout, still waiting"
    );
    b.now = b.now + Duration::millis(5);
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert_eq!(b.dropped(DropReason::BlockedByDefault), 1);
}

#[test]
fn a_block_return_answer_waits_with_the_packet_and_goes_only_if_no_state_comes() {
    let profile = "forwarding: {mode: wire, pairs: [[inside, outside]]}\nrules:\n  - {action: block, return: true, direction: in, port: outside}\n  - {action: pass, direction: in, port: inside}\nsync: {interface: sync0, core: 0, transport: udp, peers: [198.20.0.2]}\n";
    let mut b = bench(profile);
    // The reply whose state is coming: no reset may kill the connection.
    b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    b.links.ops.push_back(PeerOp::Insert {
        record: syn_seen_by_a(),
        ack: false,
    });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert_eq!(b.io.take_sent(INSIDE).len(), 1, "passed on its state");
    assert!(b.answers(OUTSIDE).is_empty(), "and was not answered");
    // A stray segment of no state: answered with a reset at the hold timeout.
    b.send(OUTSIDE, stray_to_client_port(41000));
    assert!(b.answers(OUTSIDE).is_empty());
    b.now = b.now + Duration::millis(11);
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert_eq!(b.answers(OUTSIDE).len(), 1, "the reset");
    assert_eq!(b.dropped(DropReason::BlockedByRule), 1);
}

#[test]
fn a_held_packet_the_peers_state_does_not_accept_is_refused_by_pfs_checks() {
    let record = syn_seen_by_a();
    let mut b = synced(false);
    // On the connection's ports, but not the SYN-ACK its state expects: acknowledges data never sent,
    // beyond any margin.
    b.send(OUTSIDE, s2c(5000, 1001 + 5_000_000, syn_ack(), 0));
    b.links.ops.push_back(PeerOp::Insert { record, ack: false });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert!(b.io.take_sent(INSIDE).is_empty(), "never forwarded");
    assert_eq!(b.counters.held_for_state_found.get(), 1);
    assert_eq!(b.dropped(DropReason::OutOfWindow), 1);
}

#[test]
fn only_packets_that_can_follow_a_peers_state_wait_and_only_while_a_peer_lives() {
    let mut b = synced(false);
    // A bare SYN opens states, it never follows one: the rules' block stands at once.
    b.send(OUTSIDE, s2c(5000, 0, SYN, 0));
    assert_eq!(b.dropped(DropReason::BlockedByDefault), 1);
    // No live peer can insert a state.
    b.links.peers_dead = true;
    b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    assert_eq!(b.dropped(DropReason::BlockedByDefault), 2);
    assert_eq!(b.counters.held_for_state.get(), 0);
    // Nor does a node without sync.
    let mut alone = bench(WIRE_PASS);
    alone.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    assert_eq!(alone.dropped(DropReason::BlockedByDefault), 1);
}

#[test]
fn a_flood_of_blocked_packets_takes_at_most_its_share_of_the_hold_pool() {
    let (mut b, name) = return_path();
    // A quarter of the hold pool may wait for states.
    let share = b.worker.config().hold.expect("holding").pool as u64 / 4;
    let flood = share + 76;
    for port in 0..flood as u16 {
        b.send(OUTSIDE, stray_to_client_port(1000 + port));
    }
    assert_eq!(b.counters.held_for_state.get(), share);
    assert_eq!(b.counters.hold_pool_full.get(), 76);
    assert_eq!(b.dropped(DropReason::BlockedByDefault), 76);
    // An established flow's packet ahead of the sync still waits for its update.
    b.send(OUTSIDE, server_data(5001 + 65535));
    assert_eq!(b.counters.held.get(), 1);
    assert!(
        b.links.events.contains(&LocalEvent::UpdateWanted { name }),
        "and asks for it"
    );
    // At the timeout every flood packet is refused as the rules decided; none passed.
    b.now = b.now + Duration::millis(11);
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert_eq!(b.dropped(DropReason::BlockedByDefault), flood);
    assert_eq!(b.counters.held_for_state_timeout.get(), share);
    assert!(b.io.take_sent(INSIDE).is_empty());
}

#[test]
fn the_later_packets_of_a_deferred_state_wait_behind_its_first() {
    let mut b = synced(true);
    assert!(
        b.send(INSIDE, udp_c2s(b"1")).is_empty(),
        "the first is deferred"
    );
    assert!(
        b.send(INSIDE, udp_c2s(b"2")).is_empty(),
        "its answer could reach a peer before the state: it waits too"
    );
    assert_eq!(b.worker.held(), 2);
    let LocalEvent::Inserted { record, .. } = b.links.events[0] else {
        panic!("insert")
    };
    b.links.ops.push_back(PeerOp::ReleaseDeferred {
        name: record.name,
        reason: ReleaseReason::Acknowledged,
    });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert_eq!(
        b.io.take_sent(OUTSIDE),
        [udp_c2s(b"1"), udp_c2s(b"2")],
        "both, in order"
    );
    assert_eq!(b.send(INSIDE, udp_c2s(b"3")).len(), 1, "then at once");
}

#[test]
fn the_backstop_releases_a_deferred_states_later_packets_with_its_first() {
    let mut b = synced(true);
    b.send(INSIDE, udp_c2s(b"1"));
    b.now = b.now + Duration::millis(20);
    b.send(INSIDE, udp_c2s(b"2"));
    b.now = b.now + Duration::millis(21);
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert_eq!(b.io.take_sent(OUTSIDE), [udp_c2s(b"1"), udp_c2s(b"2")]);
    assert_eq!(b.counters.deferred_backstop.get(), 2);
    assert_eq!(b.send(INSIDE, udp_c2s(b"3")).len(), 1, "no longer deferred");
}

/// A stray ACK from the server's address to the client's `port`.
fn stray_to_client_port(port: u16) -> Vec<u8> {
    let ends = Endpoints::v4(
        SERVER_MAC,
        MacAddr(FW_OUT_MAC),
        [198, 19, 0, 20].into(),
        [198, 18, 0, 10].into(),
    );
    let repr = TcpRepr {
        src_port: 80,
        dst_port: port,
        seq: 9000,
        ack: 77,
        flags: ACK,
        window: 65535,
        ..TcpRepr::default()
    };
    build::tcp(&ends, &repr, b"").expect("builds")
}

/// A datagram from the client 198.18.0.10:5353 to 198.19.0.53:53.
fn udp_c2s(payload: &[u8]) -> Vec<u8> {
    let out = Endpoints::v4(
        CLIENT_MAC,
        MacAddr(FW_IN_MAC),
        [198, 18, 0, 10].into(),
        [198, 19, 0, 53].into(),
    );
    build::udp(
        &out,
        &UdpRepr {
            src_port: 5353,
            dst_port: 53,
        },
        payload,
    )
    .expect("builds")
}

#[test]
fn a_fin_learnt_from_a_peer_after_its_acknowledgement_passed_here_still_closes_the_side() {
    use tandem_sync::state::tcp_state;
    // Node A sees the client's side: handshake (both ways, for simplicity), then the client's FIN.
    let mut a = synced(false);
    a.send(INSIDE, c2s(1000, 0, SYN, 0));
    a.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    a.send(INSIDE, c2s(1001, 5001, ACK, 0));
    let LocalEvent::Inserted { mut record, .. } = a.links.events[0] else {
        panic!("insert")
    };
    let index = a.worker.table().iter().next().expect("a state").0;
    record.peers = a.worker.table().get(index).peers;
    // Node B, on the return path, has the established state from A.
    let mut b = synced(false);
    b.links.ops.push_back(PeerOp::Insert { record, ack: false });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    // The server acknowledges the client's FIN (sequence 1001, ending at 1002) through B before A's
    // update about that FIN reaches B: B cannot close the client's side yet.
    assert_eq!(b.send(OUTSIDE, s2c(5001, 1002, ACK, 0)).len(), 1);
    let index = b.worker.table().iter().next().expect("a state").0;
    assert_eq!(
        b.worker.table().get(index).peers[0].state,
        tcp_state::ESTABLISHED
    );
    // Then A's update arrives: the client's side is CLOSING, its FIN ending at 1002.
    let mut peers = b.worker.table().get(index).peers;
    peers[0].state = tcp_state::CLOSING;
    peers[0].seqlo = 1002;
    let events = b.links.events.len();
    b.links.ops.push_back(PeerOp::Update {
        update: StateUpdate {
            name: record.name,
            peers,
            timeout: tandem_sync::state::TimeoutClass::TcpClosing,
            updates: 0,
        },
    });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert_eq!(
        b.worker.table().get(index).peers[0].state,
        tcp_state::FIN_WAIT_2,
        "B saw the acknowledgement that covers the FIN"
    );
    assert!(
        matches!(b.links.events[events..], [LocalEvent::Updated { .. }]),
        "and tells A, which never sees the server's packets"
    );
}

#[test]
fn expired_states_are_removed_and_reported() {
    let mut b = synced(false);
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    // tcp.first is 120 s.
    b.now = b.now + Duration::secs(121);
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert!(b.worker.table().is_empty());
    assert!(matches!(
        b.links.events.last(),
        Some(LocalEvent::Deleted { .. })
    ));
    assert_eq!(b.counters.states_expired.get(), 1);
}

#[test]
fn a_peers_delete_removes_the_state_without_echo() {
    let mut b = synced(false);
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    let LocalEvent::Inserted { record, .. } = b.links.events[0] else {
        panic!("insert")
    };
    let events = b.links.events.len();
    b.links.ops.push_back(PeerOp::Delete {
        name: StateName { ..record.name },
    });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert!(b.worker.table().is_empty());
    assert_eq!(b.links.events.len(), events, "no delete echoed back");
}

#[test]
fn a_full_event_queue_is_counted_never_waited_on() {
    let mut b = synced(false);
    b.links.event_room = Some(0);
    assert_eq!(
        b.send(INSIDE, c2s(1000, 0, SYN, 0)).len(),
        1,
        "the packet still passes"
    );
    assert_eq!(b.counters.events_dropped.get(), 1);
}

/// Queues every frame on `port` and polls once, so they arrive as one burst.
fn send_burst(b: &mut Bench, port: PortId, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    for f in frames {
        b.io.inject(port, f.clone());
    }
    b.worker
        .poll(&mut b.io, &mut b.links, &[INSIDE, OUTSIDE], b.now);
    let out_port = if port == INSIDE { OUTSIDE } else { INSIDE };
    b.io.take_sent(out_port)
}

#[test]
fn a_state_created_early_in_a_burst_is_found_by_the_packets_after_it() {
    let mut b = bench(WIRE_PASS);
    let syn = c2s(1000, 0, SYN, 0);
    let out = send_burst(&mut b, INSIDE, &[syn.clone(), syn.clone(), syn.clone()]);
    assert_eq!(
        out.len(),
        3,
        "the retransmitted SYNs match the state the first one made"
    );
    assert_eq!(b.counters.states_created.get(), 1);
    assert_eq!(b.counters.state_hits.get(), 2);
}

#[test]
fn a_state_removed_early_in_a_burst_is_not_used_by_the_packets_after_it() {
    let mut b = bench(WIRE_PASS);
    let fin_ack = TcpFlags::FIN | TcpFlags::ACK;
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    b.send(INSIDE, c2s(1001, 5001, ACK, 0));
    assert_eq!(b.send(INSIDE, c2s(1001, 5001, fin_ack, 0)).len(), 1);
    assert_eq!(b.send(OUTSIDE, s2c(5001, 1002, fin_ack, 0)).len(), 1);
    assert_eq!(b.send(INSIDE, c2s(1002, 5002, ACK, 0)).len(), 1);
    assert_eq!(b.worker.table().len(), 1);
    // A new connection on the same ports: the first SYN replaces the closed state with a fresh one, and
    // the retransmission right behind it in the same burst meets the fresh one, not the removed index.
    let syn = c2s(90000, 0, SYN, 0);
    let out = send_burst(&mut b, INSIDE, &[syn.clone(), syn.clone()]);
    assert_eq!(out, [syn.clone(), syn]);
    assert_eq!(b.worker.table().len(), 1);
    assert_eq!(b.counters.states_created.get(), 2);
    assert_eq!(b.counters.states_reopened.get(), 1);
    assert_eq!(b.dropped(DropReason::BlockedByDefault), 0);
}

/// This node made a state for the client's SYN; a peer inserts the same flow under `peer_creator`.
fn colliding_insert(peer_creator: u32) -> (Bench, StateName, StateName) {
    let mut b = synced(false);
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    let LocalEvent::Inserted { mut record, .. } = b.links.events[0] else {
        panic!("insert")
    };
    let ours = record.name;
    record.name = StateName {
        creator: tandem_sync::identity::CreatorId(peer_creator),
        id: tandem_sync::identity::StateId(7),
    };
    b.links.events.clear();
    b.links.ops.push_back(PeerOp::Insert { record, ack: false });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    (b, ours, record.name)
}

#[test]
fn a_colliding_peer_insert_with_the_lower_name_renames_the_state_and_its_updates_keep_merging() {
    use tandem_sync::state::tcp_state;
    let (mut b, ours, theirs) = colliding_insert(0x0a00_0000);
    assert_eq!(b.worker.table().len(), 1);
    let (_, st) = b.worker.table().iter().next().expect("the state");
    assert_eq!((st.creator, st.id), (theirs.creator, theirs.id));
    assert!(
        b.links.events.contains(&LocalEvent::Deleted { name: ours }),
        "peers are told the losing name is gone"
    );
    // The peer's later updates, under its name, reach the state.
    let mut peers = st.peers;
    peers[1].state = tcp_state::ESTABLISHED;
    peers[1].seqlo = 5001;
    peers[1].seqhi = 5001 + 65535;
    peers[1].max_win = 65535;
    b.links.ops.push_back(PeerOp::Update {
        update: StateUpdate {
            name: theirs,
            peers,
            timeout: tandem_sync::state::TimeoutClass::TcpOpening,
            updates: 1,
        },
    });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    let (_, st) = b.worker.table().iter().next().expect("the state");
    assert_eq!(st.peers[1].state, tcp_state::ESTABLISHED);
    assert_eq!(b.counters.states_merged_on_insert.get(), 1);
}

#[test]
fn a_colliding_peer_insert_with_the_higher_name_is_merged_into_ours() {
    let (b, ours, _) = colliding_insert(0x0a00_0009);
    let (_, st) = b.worker.table().iter().next().expect("the state");
    assert_eq!((st.creator, st.id), (ours.creator, ours.id));
    assert!(
        !b.links
            .events
            .iter()
            .any(|e| matches!(e, LocalEvent::Deleted { .. }))
    );
    assert_eq!(b.counters.states_merged_on_insert.get(), 1);
}

#[test]
fn a_routed_state_caches_its_next_hops_and_follows_a_neighbour_that_moves() {
    let mut b = bench(ROUTER);
    let server = addr_of(&Ipv4Addr::new(198, 19, 0, 20).into());
    let client = addr_of(&Ipv4Addr::new(198, 18, 0, 10).into());
    for (port, addr, mac) in [
        (OUTSIDE, server, SERVER_MAC.0),
        (INSIDE, client, CLIENT_MAC.0),
    ] {
        b.links
            .control
            .push_back(ControlOp::Neighbor { port, addr, mac });
    }
    assert_eq!(b.send(INSIDE, c2s(1000, 0, SYN, 0)).len(), 1);
    assert_eq!(b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0)).len(), 1);
    let (_, st) = b.worker.table().iter().next().expect("the state");
    assert!(
        st.hops
            .iter()
            .all(|h| *h != tandem_dataplane::route::HopRef::NONE),
        "both directions' next hops are cached: {:?}",
        st.hops
    );
    // The server's MAC changes: the established flow follows at once.
    let moved = [2, 0, 0, 0, 0, 0x21];
    b.links.control.push_back(ControlOp::Neighbor {
        port: OUTSIDE,
        addr: server,
        mac: moved,
    });
    let out = b.send(INSIDE, c2s(1001, 5001, ACK, 10));
    assert_eq!(&out[0][..6], &moved);
    // The server's entry goes: the flow asks for resolution instead of using a stale MAC.
    b.links.control.push_back(ControlOp::NeighborGone {
        port: OUTSIDE,
        addr: server,
    });
    b.links.resolve.clear();
    assert!(b.send(INSIDE, c2s(1011, 5001, ACK, 10)).is_empty());
    assert_eq!(
        b.counters.parked.get(),
        1,
        "held for resolution, not sent to the old MAC"
    );
    assert_eq!(b.links.resolve.len(), 1);
}

/// A connection through this node, closed on both sides (FIN_WAIT_2:FIN_WAIT_2).
fn closed_connection(b: &mut Bench) {
    let fin_ack = TcpFlags::FIN | TcpFlags::ACK;
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    b.send(INSIDE, c2s(1001, 5001, ACK, 0));
    b.send(INSIDE, c2s(1001, 5001, fin_ack, 0));
    b.send(OUTSIDE, s2c(5001, 1002, fin_ack, 0));
    assert_eq!(b.send(INSIDE, c2s(1002, 5002, ACK, 0)).len(), 1);
}

#[test]
fn a_new_connection_on_the_ports_of_a_closed_one_connects_on_its_first_syn() {
    let mut b = synced(false);
    closed_connection(&mut b);
    let (_, old) = b.worker.table().iter().next().expect("the closed state");
    let old = StateName {
        creator: old.creator,
        id: old.id,
    };
    b.links.events.clear();
    let syn = c2s(7_000_000, 0, SYN, 0);
    assert_eq!(
        b.send(INSIDE, syn.clone()),
        [syn],
        "not lost: no 1 s retransmission"
    );
    assert_eq!(
        b.send(OUTSIDE, s2c(9_000_000, 7_000_001, syn_ack(), 0))
            .len(),
        1
    );
    let (_, new) = b.worker.table().iter().next().expect("the new state");
    assert_ne!(new.id, old.id);
    assert_eq!(b.counters.states_reopened.get(), 1);
    // Peers hear of both: the old state's delete before the new one's insert.
    let deleted = b
        .links
        .events
        .iter()
        .position(|e| *e == LocalEvent::Deleted { name: old });
    let inserted = b
        .links
        .events
        .iter()
        .position(|e| matches!(e, LocalEvent::Inserted { .. }));
    assert!(
        matches!((deleted, inserted), (Some(d), Some(i)) if d < i),
        "{:?}",
        b.links.events
    );
}

#[test]
fn a_peers_insert_of_a_new_connection_replaces_the_closed_state_here_too() {
    // Node A sees the new SYN; this node (B) still holds the old, closed connection.
    let mut a = synced(false);
    closed_connection(&mut a);
    a.links.events.clear();
    a.send(INSIDE, c2s(7_000_000, 0, SYN, 0));
    let record = a
        .links
        .events
        .iter()
        .find_map(|e| match e {
            LocalEvent::Inserted { record, .. } => Some(*record),
            _ => None,
        })
        .expect("the new state's insert");
    let mut b = synced(false);
    closed_connection(&mut b);
    b.links.ops.push_back(PeerOp::Insert { record, ack: true });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    assert!(
        b.links
            .events
            .contains(&LocalEvent::PeerInserted { name: record.name })
    );
    assert_eq!(b.counters.states_reopened.get(), 1);
    // The server's answer to the new SYN comes back through B: it passes.
    assert_eq!(
        b.send(OUTSIDE, s2c(9_000_000, 7_000_001, syn_ack(), 0))
            .len(),
        1
    );
    let (_, st) = b.worker.table().iter().next().expect("state");
    assert_eq!((st.creator, st.id), (record.name.creator, record.name.id));
}

const HOLDING: &str = "forwarding: {mode: wire, pairs: [[inside, outside]]}\nrules:\n  - {action: pass, direction: in, port: inside}\nsync: {interface: sync0, core: 0, transport: udp, peers: [198.20.0.2], hold: {timeout-us: 5000, margin: 100000, per-state: 4}}\n";

/// Node B on the return path: it holds the connection A saw open (through a peer insert) and sees only
/// the server's side; A is alive. Returns B and the state's name.
fn return_path() -> (Bench, StateName) {
    let mut a = synced(false);
    a.send(INSIDE, c2s(1000, 0, SYN, 0));
    a.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    a.send(INSIDE, c2s(1001, 5001, ACK, 0));
    let (_, st) = a.worker.table().iter().next().expect("A's state");
    let mut record = tandem_dataplane::worker::record_of(st, a.now);
    // A's host id (both benches share one profile's).
    record.name.creator = CreatorId(0x0a00_0002);
    let mut b = bench(HOLDING);
    b.links.alive.push(record.name.creator);
    b.links.ops.push_back(PeerOp::Insert { record, ack: false });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    (b, record.name)
}

/// [`return_path`] after A failed: B holds the only copy of the state.
fn return_path_after_a_failed() -> Bench {
    let (mut b, _) = return_path();
    b.links.alive.clear();
    b
}

/// [`return_path_after_a_failed`], A's last update having told B that the server lets the client send up
/// to `edge` (its window opened well past what the handshake announced).
fn return_path_after_a_failed_with_client_edge(edge: u32) -> Bench {
    let (mut b, name) = return_path();
    let (_, st) = b.worker.table().iter().next().expect("state");
    let mut peers = st.peers;
    peers[0].seqhi = edge;
    b.links.ops.push_back(PeerOp::Update {
        update: StateUpdate {
            name,
            peers,
            timeout: tandem_sync::state::TimeoutClass::TcpEstablished,
            updates: 1,
        },
    });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);
    b.links.alive.clear();
    b
}

/// The server's data at `seq`, 1448 bytes, as B sees it.
fn server_data(seq: u32) -> Vec<u8> {
    s2c(seq, 1001, ACK, 1448)
}

#[test]
fn a_packet_ahead_of_the_sync_waits_for_the_peers_update_and_then_passes_pfs_checks() {
    let (mut b, name) = return_path();
    // The client's window (65535 from 5001) is all B knows; the server is already past it.
    let ahead = server_data(5001 + 65535);
    assert!(
        b.send(OUTSIDE, ahead.clone()).is_empty(),
        "held, not dropped"
    );
    assert_eq!(b.counters.held.get(), 1);
    assert_eq!(b.dropped(DropReason::OutOfWindow), 0);
    assert!(
        b.links.events.contains(&LocalEvent::UpdateWanted { name }),
        "the sync core is asked for a fresh copy"
    );
    // The peer's update: the client opened its window further.
    let (_, st) = b.worker.table().iter().next().expect("state");
    let mut peers = st.peers;
    peers[1].seqhi = 5001 + 200_000;
    b.links.ops.push_back(PeerOp::Update {
        update: StateUpdate {
            name,
            peers,
            timeout: tandem_sync::state::TimeoutClass::TcpEstablished,
            updates: 1,
        },
    });
    b.worker
        .poll(&mut b.io, &mut b.links, &[INSIDE, OUTSIDE], b.now);
    assert_eq!(
        b.io.take_sent(INSIDE),
        [ahead],
        "checked again and forwarded"
    );
    assert_eq!(b.counters.hold_released.get(), 1);
    assert_eq!(b.worker.table().iter().next().expect("state").1.waiting, 0);
}

#[test]
fn nothing_loosens_forgeries_ahead_wait_and_are_dropped_beyond_the_margin_at_once() {
    let (mut b, _) = return_path();
    // Beyond the margin: dropped at once.
    assert!(
        b.send(OUTSIDE, server_data(5001 + 65535 + 200_000))
            .is_empty()
    );
    assert_eq!(b.dropped(DropReason::OutOfWindow), 1);
    assert_eq!(b.counters.held.get(), 0);
    // A flood inside the margin that no update will cover: the state's share waits, the rest is dropped.
    for i in 0..10 {
        assert!(
            b.send(OUTSIDE, server_data(5001 + 65535 + i * 1448))
                .is_empty()
        );
    }
    assert_eq!(b.counters.held.get(), 4, "per-state cap");
    assert_eq!(b.counters.hold_state_full.get(), 6);
    // The established flow keeps passing meanwhile.
    assert_eq!(b.send(OUTSIDE, server_data(5001)).len(), 1);
    // No update comes: after the hold timeout every held forgery is dropped, none forwarded.
    b.now = b.now + Duration::millis(6);
    b.worker
        .poll(&mut b.io, &mut b.links, &[INSIDE, OUTSIDE], b.now);
    assert!(b.io.take_sent(INSIDE).is_empty());
    assert_eq!(b.counters.hold_timeout.get(), 4);
    assert_eq!(b.dropped(DropReason::OutOfWindow), 1 + 6 + 4);
    assert!(b.counters.hold_quantile(0.5).is_some_and(|us| us >= 4096));
}

#[test]
fn a_state_no_peer_updates_never_holds() {
    let mut b = bench(HOLDING);
    b.send(INSIDE, c2s(1000, 0, SYN, 0));
    b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0));
    b.send(INSIDE, c2s(1001, 5001, ACK, 0));
    // This node sees both directions: a segment past the window is pf's plain drop.
    assert!(b.send(OUTSIDE, server_data(5001 + 65535)).is_empty());
    assert_eq!(b.counters.held.get(), 0);
    assert_eq!(b.dropped(DropReason::OutOfWindow), 1);
}

/// A TCP frame's classification and its segment's header.
fn tcp_of(frame: &[u8]) -> (PacketMeta, TcpMeta) {
    let m = parse_meta(frame, ChecksumCaps::SOFTWARE).expect("a frame");
    let L4::Tcp(seg) = m.l4 else {
        panic!("a TCP segment")
    };
    (m, seg)
}

#[test]
fn a_packet_ahead_of_a_state_whose_updater_failed_is_cured_by_the_endpoints_answer_to_a_probe() {
    // Node A created the state and updated it, then failed: no update will come, and the client
    // acknowledged server data that went through A, which B never saw.
    let mut b = return_path_after_a_failed();
    let ahead = server_data(5001 + 65535);
    // Held; B asks the client for its numbers in the server's name: a bare ACK far below its window,
    // which it discards and answers.
    let probe = b.send(OUTSIDE, ahead.clone());
    assert_eq!(b.counters.held.get(), 1);
    assert_eq!(probe.len(), 1, "one probe, to the client, and nothing else");
    let (pm, seg) = tcp_of(&probe[0]);
    let (hm, held) = tcp_of(&ahead);
    assert_eq!((pm.src, pm.dst), (hm.src, hm.dst));
    assert_eq!((seg.src_port, seg.dst_port), (held.src_port, held.dst_port));
    assert_eq!(seg.flags, ACK);
    assert_eq!(seg.payload_len, 0);
    assert_eq!(
        seg.seq,
        5001u32.wrapping_sub(1 << 30),
        "behind all the server sent"
    );
    assert_eq!(
        seg.ack, 1000,
        "what B knows the client sent (pf's seqlo after the SYN)"
    );
    assert_eq!(b.counters.hold_probed.get(), 1);
    // A second held packet of the same hold sends no second probe.
    assert!(b.send(OUTSIDE, server_data(5001 + 65535 + 1448)).is_empty());
    // The client's answer carries what it received through A: pf's checks pass it, it teaches the state
    // the client's window, and the held packets are checked again and leave, in order.
    let answer = c2s(1001, 5001 + 65535, ACK, 0);
    let out = b.send(INSIDE, answer.clone());
    assert_eq!(out, [answer], "the answer goes on to the server");
    assert_eq!(
        b.answers(INSIDE),
        [ahead, server_data(5001 + 65535 + 1448)],
        "the held packets, rechecked"
    );
    assert_eq!(b.counters.hold_released.get(), 2);
    assert_eq!(b.dropped(DropReason::OutOfWindow), 0);
}

#[test]
fn an_acknowledgement_of_data_b_never_saw_is_cured_by_the_sequence_number_of_the_probes_answer() {
    // The failover case: the client sent 100 KB through A, the server acknowledged it, and A failed
    // before its update reached B. A's last update told B the server's window (300 KB).
    let mut b = return_path_after_a_failed_with_client_edge(1001 + 300_000);
    // The server's acknowledgement runs 100 KB ahead of all B knows the client sent: held, probe sent.
    let ack = s2c(5001, 1001 + 100_000, ACK, 0);
    let probe = b.send(OUTSIDE, ack.clone());
    assert_eq!((b.counters.held.get(), probe.len()), (1, 1));
    // pf alone learns nothing from a bare ACK's sequence number; the probe's answer, checked as a data
    // segment, says the client sent up to 102,896: the acknowledgement passes.
    let answer = c2s(1001 + 100_000 + 2896, 5001, ACK, 0);
    assert_eq!(b.send(INSIDE, answer.clone()), [answer]);
    assert_eq!(
        b.answers(INSIDE),
        [ack],
        "the held acknowledgement, rechecked"
    );
    assert_eq!(b.counters.hold_released.get(), 1);
    assert_eq!(
        b.worker.table().iter().next().expect("state").1.probed,
        None
    );
}

#[test]
fn a_packet_beyond_the_margin_on_an_orphaned_state_is_dropped_but_its_probe_lets_the_next_one_pass()
{
    // The survivor's copy lags by more than the hold margin (100 KB here): the acknowledgement is dropped
    // at once, as pf does, and the client is asked where it is; the server's next acknowledgement passes.
    let mut b = return_path_after_a_failed_with_client_edge(1001 + 1_000_000);
    let ack = s2c(5001, 1001 + 300_000, ACK, 0);
    let probe = b.send(OUTSIDE, ack.clone());
    assert_eq!(probe.len(), 1, "the probe, not the acknowledgement");
    assert_eq!(b.counters.held.get(), 0);
    assert_eq!(b.dropped(DropReason::OutOfWindow), 1);
    let answer = c2s(1001 + 300_000, 5001, ACK, 0);
    assert_eq!(b.send(INSIDE, answer.clone()), [answer]);
    assert_eq!(b.send(OUTSIDE, ack.clone()), [ack], "the next one passes");
}

#[test]
fn a_state_whose_updater_is_alive_waits_for_its_update_and_sends_no_probe() {
    let (mut b, _) = return_path();
    assert!(b.send(OUTSIDE, server_data(5001 + 65535)).is_empty());
    assert_eq!(b.counters.held.get(), 1);
    assert_eq!(b.counters.hold_probed.get(), 0, "no probe");
}

#[test]
fn a_probe_cannot_loosen_anything_a_forged_answer_is_checked_and_the_held_forgery_times_out() {
    let mut b = return_path_after_a_failed();
    assert_eq!(
        b.send(OUTSIDE, server_data(5001 + 65535)).len(),
        1,
        "the probe"
    );
    // An "answer" acknowledging more than the server can have sent is out of window: dropped, and the
    // held packet stays held.
    assert!(
        b.send(INSIDE, c2s(1001, 5001 + 10_000_000, ACK, 0))
            .is_empty()
    );
    assert_eq!(b.dropped(DropReason::OutOfWindow), 1);
    assert!(b.answers(INSIDE).is_empty(), "nothing released");
    b.now = b.now + Duration::millis(6);
    b.worker
        .poll(&mut b.io, &mut b.links, &[INSIDE, OUTSIDE], b.now);
    assert!(b.io.take_sent(INSIDE).is_empty());
    assert_eq!(b.counters.hold_timeout.get(), 1);
}

#[test]
fn held_packets_never_take_more_than_a_quarter_of_the_packet_pool() {
    let p = profile(&format!(
        "dpdk: {{mbufs: 1023, mbuf-cache: 128}}\n{HOLDING}"
    ));
    let cfg = WorkerConfig::from_profile(&p, 0, Vec::new(), 1 << 32);
    assert_eq!(cfg.hold.map(|h| h.pool), Some(1023 / 4));
}

const ROUTER_DEFERRING: &str = "rules:\n  - {action: pass, direction: in, port: inside}\nsync: {interface: sync0, core: 0, transport: udp, peers: [198.20.0.2], defer: {enabled: true, timeout-us: 20000}}\n";

/// The name of the state whose insert was reported deferred.
fn deferred_name(b: &Bench) -> StateName {
    b.links
        .events
        .iter()
        .find_map(|e| match e {
            LocalEvent::Inserted {
                record,
                deferred: true,
                ..
            } => Some(record.name),
            _ => None,
        })
        .expect("a deferred insert")
}

#[test]
fn a_deferred_syn_to_an_unknown_neighbour_waits_for_the_acknowledgement_then_for_the_mac() {
    // Defect this guards against: a creating packet held for deferral whose next hop's MAC was unknown
    // was dropped (`no_neighbor`) instead of waiting for it, so the first connection through a freshly
    // started router lost its SYN and the client waited a second to retry.
    let mut b = bench(ROUTER_DEFERRING);
    assert!(b.send(INSIDE, c2s(1000, 0, SYN, 0)).is_empty(), "deferred");
    assert_eq!(b.counters.deferred.get(), 1);
    assert_eq!(b.links.resolve.len(), 1, "the MAC is asked for at once");
    // The peer acknowledges before the neighbour answers: the SYN waits for the MAC.
    let name = deferred_name(&b);
    b.links.ops.push_back(PeerOp::ReleaseDeferred {
        name,
        reason: ReleaseReason::Acknowledged,
    });
    b.worker
        .poll(&mut b.io, &mut b.links, &[INSIDE, OUTSIDE], b.now);
    assert!(b.io.take_sent(OUTSIDE).is_empty());
    assert_eq!(b.counters.parked.get(), 1);
    assert_eq!(b.dropped(DropReason::NoNeighbor), 0);
    server_neighbour_answers(&mut b);
    assert_routed_to_server(b.io.take_sent(OUTSIDE), "the SYN was not lost");
}

#[test]
fn a_deferred_syn_whose_neighbour_answered_meanwhile_leaves_rewritten_on_the_acknowledgement() {
    let mut b = bench(ROUTER_DEFERRING);
    assert!(b.send(INSIDE, c2s(1000, 0, SYN, 0)).is_empty());
    server_neighbour_answers(&mut b);
    assert!(
        b.io.take_sent(OUTSIDE).is_empty(),
        "still waiting for the peer"
    );
    let name = deferred_name(&b);
    b.links.ops.push_back(PeerOp::ReleaseDeferred {
        name,
        reason: ReleaseReason::Acknowledged,
    });
    b.worker
        .poll(&mut b.io, &mut b.links, &[INSIDE, OUTSIDE], b.now);
    let out = b.io.take_sent(OUTSIDE);
    assert_eq!(out.len(), 1);
    assert_eq!(&out[0][..12], &[SERVER_MAC.0, FW_OUT_MAC].concat()[..]);
    assert_eq!(b.counters.parked.get(), 0);
}
