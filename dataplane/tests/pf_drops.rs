//! What pf drops, the worker drops: the checks around pf's window tracking (a SYN on an established
//! state, pf's TCP normalization, ICMP errors that do not fit their state, echo direction, IPv4 options,
//! frames for other hosts), each sent through `Worker::poll` as real frames.

mod support;

use support::*;

/// A connection 198.18.0.10:40000 -> 198.19.0.20:80 through the worker, established, with some data.
fn established(b: &mut Bench) {
    assert_eq!(b.send(INSIDE, c2s(1000, 0, SYN, 0)).len(), 1);
    assert_eq!(b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0)).len(), 1);
    assert_eq!(b.send(INSIDE, c2s(1001, 5001, ACK, 1448)).len(), 1);
    assert_eq!(b.send(OUTSIDE, s2c(5001, 2449, ACK, 0)).len(), 1);
}

fn tcp_of(frame: &[u8]) -> tandem_dataplane::wire::meta::TcpMeta {
    match parse_meta(frame, ChecksumCaps::SOFTWARE).expect("valid").l4 {
        L4::Tcp(t) => t,
        other => panic!("expected TCP, got {other:?}"),
    }
}

#[test]
fn an_in_window_syn_on_an_established_state_is_dropped_and_answered_with_a_challenge_ack() {
    let mut b = bench(WIRE_PASS);
    established(&mut b);
    let before = b.worker.table().iter().next().expect("a state").1.peers;
    assert!(
        b.send(INSIDE, c2s(2449, 0, SYN, 0)).is_empty(),
        "not forwarded"
    );
    assert_eq!(b.dropped(DropReason::SynOnEstablished), 1);
    let after = b.worker.table().iter().next().expect("the state").1.peers;
    assert_eq!(before, after, "the forged SYN moved nothing");
    let answers = b.answers(INSIDE);
    assert_eq!(answers.len(), 1, "one challenge ACK to the SYN's sender");
    let m = parse_meta(&answers[0], ChecksumCaps::SOFTWARE).expect("valid");
    assert!(m.l4_checksum_ok(&answers[0]));
    let t = tcp_of(&answers[0]);
    assert_eq!((t.src_port, t.dst_port), (80, 40000));
    assert_eq!((t.flags, t.seq, t.ack), (ACK, 5001, 2449));
    // The connection itself goes on.
    assert_eq!(b.send(INSIDE, c2s(2449, 5001, ACK, 100)).len(), 1);
}

#[test]
fn flag_combinations_no_stack_sends_create_no_state_and_pass_nowhere() {
    let mut b = bench(WIRE_PASS);
    let rst = TcpFlags::RST;
    let fin = TcpFlags::FIN;
    let urg = TcpFlags::URG;
    for (i, flags) in [SYN | rst, SYN | urg, SYN | fin, fin, TcpFlags(0)]
        .iter()
        .enumerate()
    {
        assert!(
            b.send(INSIDE, c2s(1000 + i as u32, 0, *flags, 0))
                .is_empty(),
            "{flags:?}"
        );
    }
    assert_eq!(b.dropped(DropReason::BadTcpFlags), 5);
    assert!(b.worker.table().is_empty());
    // On an established state too: a FIN without ACK is dropped before any lookup.
    established(&mut b);
    assert!(b.send(INSIDE, c2s(2449, 5001, fin, 0)).is_empty());
    assert_eq!(b.dropped(DropReason::BadTcpFlags), 6);
}

#[test]
fn a_fin_on_a_syn_ack_is_cleared_and_the_checksum_stays_valid() {
    let mut b = bench(WIRE_PASS);
    assert_eq!(b.send(INSIDE, c2s(1000, 0, SYN, 0)).len(), 1);
    let out = b.send(OUTSIDE, s2c(5000, 1001, syn_ack() | TcpFlags::FIN, 0));
    assert_eq!(out.len(), 1);
    let t = tcp_of(&out[0]);
    assert_eq!(t.flags, syn_ack());
    let m = parse_meta(&out[0], ChecksumCaps::SOFTWARE).expect("valid");
    assert!(m.l4_checksum_ok(&out[0]), "incremental checksum update");
    assert_eq!(b.counters.normalized.get(), 1);
}

const BLOCK_RETURN: &str = "forwarding: {mode: wire, pairs: [[inside, outside]]}\nrules:\n  - {action: block, return: true}\n";

#[test]
fn block_return_does_not_answer_a_segment_whose_checksum_fails() {
    let mut b = bench(BLOCK_RETURN);
    let mut syn = c2s(1000, 0, SYN, 0);
    let last = syn.len() - 1;
    syn[last - 3] ^= 0x55; // the TCP checksum field: the checksum no longer holds
    assert!(b.send(INSIDE, syn).is_empty());
    assert!(b.answers(INSIDE).is_empty());
    assert_eq!(b.counters.answers_bad_checksum.get(), 1);
    assert_eq!(b.dropped(DropReason::BlockedByRule), 1);
}

#[test]
fn answers_are_rate_limited_per_worker() {
    let mut b = bench(BLOCK_RETURN);
    for i in 0..200u32 {
        b.io.inject(INSIDE, c2s(1000 + i * 10, 0, SYN, 0));
    }
    // 200 SYNs in one instant: the burst allowance answers, the rest are counted.
    for _ in 0..7 {
        b.worker
            .poll(&mut b.io, &mut b.links, &[INSIDE, OUTSIDE], b.now);
    }
    let answered = b.answers(INSIDE).len() as u64;
    assert!((1..200).contains(&answered), "answered {answered}");
    assert_eq!(answered + b.counters.answers_limited.get(), 200);
    // A second later the budget is back.
    b.now = b.now + Duration::secs(1);
    b.send(INSIDE, c2s(99, 0, SYN, 0));
    assert_eq!(b.answers(INSIDE).len(), 1);
}

fn client_to(last: u8) -> Endpoints {
    Endpoints::v4(
        CLIENT_MAC,
        MacAddr(FW_IN_MAC),
        [198, 18, 0, 10].into(),
        [198, 19, 0, last].into(),
    )
}

fn to_client_from(last: u8) -> Endpoints {
    Endpoints::v4(
        SERVER_MAC,
        MacAddr(FW_OUT_MAC),
        [198, 19, 0, last].into(),
        [198, 18, 0, 10].into(),
    )
}

fn echo(ends: &Endpoints, request: bool) -> Vec<u8> {
    let echo = build::Echo {
        request,
        ident: 7,
        seq_no: 1,
    };
    build::icmp_echo(ends, echo, b"x").expect("builds")
}

fn unreachable(ends: &Endpoints, offending: &[u8]) -> Vec<u8> {
    build::icmp_error(ends, build::IcmpError::Unreachable(1), &offending[14..]).expect("builds")
}

#[test]
fn an_icmp_error_must_go_back_to_the_sender_of_the_packet_it_quotes() {
    let mut b = bench(WIRE_PASS);
    established(&mut b);
    let offending = c2s(2449, 5001, ACK, 100);
    // Correct: a router on the server's side tells the client.
    assert_eq!(
        b.send(OUTSIDE, unreachable(&to_client_from(254), &offending))
            .len(),
        1
    );
    // Forged: the same quote, sent to some other inside host.
    let elsewhere = Endpoints::v4(
        SERVER_MAC,
        MacAddr(FW_OUT_MAC),
        [198, 19, 0, 254].into(),
        [198, 18, 0, 99].into(),
    );
    assert!(
        b.send(OUTSIDE, unreachable(&elsewhere, &offending))
            .is_empty()
    );
    assert_eq!(b.dropped(DropReason::IcmpMismatch), 1);
}

#[test]
fn an_icmp_error_about_udp_passes_only_for_the_states_ports() {
    let mut b = bench(WIRE_PASS);
    let query = |sport| {
        build::udp(
            &client_to(53),
            &UdpRepr {
                src_port: sport,
                dst_port: 53,
            },
            b"q",
        )
        .expect("builds")
    };
    assert_eq!(b.send(INSIDE, query(5353)).len(), 1);
    let router = to_client_from(254);
    assert_eq!(b.send(OUTSIDE, unreachable(&router, &query(5353))).len(), 1);
    assert!(
        b.send(OUTSIDE, unreachable(&router, &query(5354)))
            .is_empty()
    );
    assert_eq!(b.dropped(DropReason::IcmpNoState), 1);
}

#[test]
fn echo_requests_and_replies_pass_only_in_their_own_direction() {
    let mut b = bench(WIRE_PASS);
    assert_eq!(b.send(INSIDE, echo(&client_to(20), true)).len(), 1);
    assert_eq!(b.send(OUTSIDE, echo(&to_client_from(20), false)).len(), 1);
    assert!(
        b.send(OUTSIDE, echo(&to_client_from(20), true)).is_empty(),
        "a request from the answering side"
    );
    assert!(
        b.send(INSIDE, echo(&client_to(20), false)).is_empty(),
        "a reply from the asking side"
    );
    assert_eq!(b.dropped(DropReason::EchoDirection), 2);
    // An error quoting the client's request goes back to the client; one quoting a "reply" from the
    // client fits no exchange.
    let router = to_client_from(254);
    assert_eq!(
        b.send(OUTSIDE, unreachable(&router, &echo(&client_to(20), true)))
            .len(),
        1
    );
    assert!(
        b.send(OUTSIDE, unreachable(&router, &echo(&client_to(20), false)))
            .is_empty()
    );
    assert_eq!(b.dropped(DropReason::IcmpMismatch), 1);
}

#[test]
fn an_echo_reply_opens_no_state_even_where_a_rule_passes_it() {
    let mut b = bench(WIRE_PASS);
    assert!(b.send(INSIDE, echo(&client_to(20), false)).is_empty());
    assert_eq!(b.dropped(DropReason::EchoDirection), 1);
    assert!(b.worker.table().is_empty());
}

/// `frame` with `options` (a multiple of four bytes) inserted after its IPv4 header.
fn with_ip_options(frame: &[u8], options: &[u8]) -> Vec<u8> {
    use tandem_dataplane::wire::ipv4;
    let mut out = frame[..14 + 20].to_vec();
    out.extend_from_slice(options);
    out.extend_from_slice(&frame[14 + 20..]);
    let total = (out.len() - 14) as u16;
    let mut ip = ipv4::Packet::new_unchecked(&mut out[14..]);
    ip.set_header_len(20 + options.len());
    ip.set_total_len(total);
    ip.fill_checksum();
    out
}

/// Loose source route (RFC 791), one address: what the barrage found forwarded.
const LSRR: [u8; 8] = [0x83, 7, 4, 198, 19, 0, 99, 0];

#[test]
fn ipv4_options_are_dropped_unless_the_rule_allows_them() {
    let mut b = bench(WIRE_PASS);
    assert!(
        b.send(INSIDE, with_ip_options(&c2s(1000, 0, SYN, 0), &LSRR))
            .is_empty()
    );
    assert_eq!(b.dropped(DropReason::IpOptions), 1);
    assert!(
        b.worker.table().is_empty(),
        "no state from a refused packet"
    );
    // Padding alone is no option.
    assert_eq!(
        b.send(
            INSIDE,
            with_ip_options(&c2s(1000, 0, SYN, 0), &[1, 1, 1, 0])
        )
        .len(),
        1
    );
    // On the state of a rule without allow-opts, options are refused too, and the state is untouched.
    assert!(
        b.send(
            OUTSIDE,
            with_ip_options(&s2c(5000, 1001, syn_ack(), 0), &LSRR)
        )
        .is_empty()
    );
    assert_eq!(b.dropped(DropReason::IpOptions), 2);
    assert_eq!(b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0)).len(), 1);
}

#[test]
fn a_rule_with_allow_opts_passes_options_on_its_packets_and_its_states() {
    let mut b = bench(
        "forwarding: {mode: wire, pairs: [[inside, outside]]}\nrules:\n  - {action: pass, direction: in, port: inside, allow-opts: true}\n",
    );
    assert_eq!(
        b.send(INSIDE, with_ip_options(&c2s(1000, 0, SYN, 0), &LSRR))
            .len(),
        1
    );
    assert_eq!(
        b.send(
            OUTSIDE,
            with_ip_options(&s2c(5000, 1001, syn_ack(), 0), &LSRR)
        )
        .len(),
        1
    );
    assert_eq!(b.dropped(DropReason::IpOptions), 0);
    // The permission travels with the state to peers (pfsync's PFSTATE_ALLOWOPTS).
    let (_, st) = b.worker.table().iter().next().expect("a state");
    let record = tandem_dataplane::worker::record_of(st, b.now);
    assert_eq!(record.flags & tandem_sync::state::state_flags::ALLOWOPTS, 1);
}

const ROUTER: &str = "rules:\n  - {action: pass, direction: in, port: inside}\n";

/// A router bench that knows the server's MAC, so that what it routes leaves at once.
fn router() -> Bench {
    let mut b = bench(ROUTER);
    b.links.control.push_back(ControlOp::Neighbor {
        port: OUTSIDE,
        addr: addr_of(&Ipv4Addr::new(198, 19, 0, 20).into()),
        mac: SERVER_MAC.0,
    });
    b
}

fn to_mac(mut frame: Vec<u8>, mac: [u8; 6]) -> Vec<u8> {
    frame[..6].copy_from_slice(&mac);
    frame
}

#[test]
fn a_router_routes_only_frames_sent_to_its_own_mac() {
    let mut b = router();
    let peer_firewall = [2, 0, 0, 0, 9, 9];
    assert!(
        b.send(INSIDE, to_mac(c2s(1000, 0, SYN, 0), peer_firewall))
            .is_empty()
    );
    assert!(
        b.send(INSIDE, to_mac(c2s(1000, 0, SYN, 0), [0xff; 6]))
            .is_empty()
    );
    assert!(
        b.send(
            INSIDE,
            to_mac(c2s(1000, 0, SYN, 0), [0x01, 0, 0x5e, 0, 0, 1])
        )
        .is_empty()
    );
    assert_eq!(b.dropped(DropReason::NotForUs), 3);
    assert!(b.worker.table().is_empty());
    assert_eq!(
        b.send(INSIDE, c2s(1000, 0, SYN, 0)).len(),
        1,
        "to our MAC: routed"
    );
    // ARP requests are broadcast and still reach the control thread.
    let arp = build::arp_request(
        CLIENT_MAC,
        [198, 18, 0, 10].into(),
        [198, 18, 0, 1].into(),
        None,
    );
    b.send(INSIDE, arp);
    assert_eq!(b.links.punted.len(), 1);
}

#[test]
fn in_wire_mode_frames_for_any_mac_pass_as_a_bump_in_the_wire() {
    let mut b = bench(WIRE_PASS);
    assert_eq!(
        b.send(INSIDE, to_mac(c2s(1000, 0, SYN, 0), SERVER_MAC.0))
            .len(),
        1
    );
}

#[test]
fn with_three_workers_an_icmp_error_goes_to_the_worker_of_the_flow_it_quotes() {
    use tandem_dataplane::flow::Placement;
    let placement = Placement::new(3, []);
    let error = unreachable(&to_client_from(254), &c2s(2449, 5001, ACK, 100));
    let m = parse_meta(&error, ChecksumCaps::SOFTWARE).expect("valid");
    let owner = placement.owner_of_packet(&m);
    let flow = parse_meta(&c2s(1000, 0, SYN, 0), ChecksumCaps::SOFTWARE).expect("valid");
    assert_eq!(
        owner,
        placement.owner_of_packet(&flow),
        "the quoted flow's worker"
    );

    // The owner checks and forwards it.
    let mut b = bench_worker(WIRE_PASS, owner, 3);
    established(&mut b);
    assert_eq!(b.send(OUTSIDE, error.clone()).len(), 1);
    assert!(b.links.redirected.is_empty());

    // Another worker (where a NIC hashing the outer addresses may put it) hands it over untouched.
    for other in (0..3).filter(|&w| w != owner) {
        let mut b = bench_worker(WIRE_PASS, other, 3);
        assert!(b.send(OUTSIDE, error.clone()).is_empty());
        assert_eq!(b.links.redirected.len(), 1);
        let (to, port, frame) = &b.links.redirected[0];
        assert_eq!((*to, *port, frame), (owner, OUTSIDE, &error));
        assert_eq!(b.counters.redirected.get(), 1);
        assert_eq!(b.dropped(DropReason::IcmpNoState), 0);
    }
}

#[test]
fn a_modulated_state_from_a_pf_peer_keeps_translating_sequence_numbers() {
    let mut b = synced_pass();
    established(&mut b);
    // A pf peer that ran the flow with `modulate state` says the client's numbers are shifted by D.
    const D: u32 = 0x4000_0000;
    let (_, st) = b.worker.table().iter().next().expect("state");
    let mut peers = st.peers;
    peers[0].seqdiff = D;
    let name = StateName {
        creator: st.creator,
        id: st.id,
    };
    b.links.ops.push_back(PeerOp::Update {
        update: StateUpdate {
            name,
            peers,
            timeout: tandem_sync::state::TimeoutClass::TcpEstablished,
            updates: 1,
        },
    });
    b.worker.poll(&mut b.io, &mut b.links, &[], b.now);

    let out = b.send(INSIDE, c2s(2449, 5001, ACK, 100));
    assert_eq!(out.len(), 1);
    let t = tcp_of(&out[0]);
    assert_eq!(
        t.seq,
        2449u32.wrapping_add(D),
        "the server sees the modulated number"
    );
    assert!(
        parse_meta(&out[0], ChecksumCaps::SOFTWARE)
            .expect("valid")
            .l4_checksum_ok(&out[0])
    );
    // The server acknowledges in its (modulated) space; the client gets its own number back.
    let out = b.send(OUTSIDE, s2c(5001, 2549u32.wrapping_add(D), ACK, 0));
    assert_eq!(
        out.len(),
        1,
        "the tracker checks the demodulated acknowledgement"
    );
    assert_eq!(tcp_of(&out[0]).ack, 2549);
    assert!(
        parse_meta(&out[0], ChecksumCaps::SOFTWARE)
            .expect("valid")
            .l4_checksum_ok(&out[0])
    );
    // An ICMP error about the modulated segment reaches the client with the client's own number.
    let modulated = {
        let mut f = c2s(2449, 5001, ACK, 100);
        f[38..42].copy_from_slice(&2449u32.wrapping_add(D).to_be_bytes());
        f
    };
    let out = b.send(OUTSIDE, unreachable(&to_client_from(254), &modulated));
    assert_eq!(out.len(), 1);
    let m = parse_meta(&out[0], ChecksumCaps::SOFTWARE).expect("valid ICMP checksum too");
    assert!(m.l4_checksum_ok(&out[0]));
    let quote_seq = &out[0][14 + 20 + 8 + 20 + 4..][..4];
    assert_eq!(quote_seq, 2449u32.to_be_bytes());
}

/// A pass-inside wire bench that talks to a sync core (so peer operations apply).
fn synced_pass() -> Bench {
    bench(
        "forwarding: {mode: wire, pairs: [[inside, outside]]}\nrules:\n  - {action: pass, direction: in, port: inside}\nsync: {interface: sync0, core: 0, transport: udp, peers: [198.20.0.2]}\n",
    )
}

#[test]
fn icmp_errors_pass_exactly_when_they_go_back_to_the_sender_and_quote_its_window() {
    let mut b = bench(WIRE_PASS);
    established(&mut b);
    let (_, st) = b.worker.table().iter().next().expect("state");
    let (client, server) = (st.peers[0], st.peers[1]);
    let lo = client.seqlo.wrapping_sub(u32::from(server.max_win));
    let hi = client.seqhi;
    let elsewhere = Endpoints::v4(
        SERVER_MAC,
        MacAddr(FW_OUT_MAC),
        [198, 19, 0, 254].into(),
        [198, 18, 0, 99].into(),
    );
    // A deterministic spread of quoted sequence numbers around the window, to either destination.
    let mut x: u32 = 0x9e37_79b9;
    let (mut passed, mut refused) = (0, 0);
    for i in 0..600u32 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let offset = (x % 400_000) as i64 - 200_000;
        let seq = (i64::from(client.seqlo) + offset) as u32;
        let to_sender = i % 3 != 0;
        let router = if to_sender {
            to_client_from(254)
        } else {
            elsewhere
        };
        let quote = c2s(seq, 5001, ACK, 100);
        let fits = tandem_sync::seq::geq(hi, seq) && tandem_sync::seq::geq(seq, lo);
        let out = b.send(OUTSIDE, unreachable(&router, &quote));
        assert_eq!(
            out.len() == 1,
            to_sender && fits,
            "seq {seq} (window {lo}..={hi}), to the sender: {to_sender}"
        );
        if out.is_empty() {
            refused += 1;
        } else {
            passed += 1;
        }
    }
    assert!(
        passed > 50 && refused > 50,
        "both outcomes exercised: {passed} / {refused}"
    );
    let (_, after) = b.worker.table().iter().next().expect("state");
    assert_eq!(after.peers, [client, server], "errors never move the state");
}

#[test]
fn a_vrrp_virtual_mac_is_routed_only_while_the_control_thread_says_this_node_is_master() {
    let mut b = router();
    let vmac = tandem_dataplane::wire::vrrp::virtual_mac(false, 7).0;
    assert!(
        b.send(INSIDE, to_mac(c2s(1000, 0, SYN, 0), vmac))
            .is_empty(),
        "backup: another node's frame"
    );
    assert_eq!(b.dropped(DropReason::NotForUs), 1);
    b.links.control.push_back(ControlOp::VirtualMac {
        port: INSIDE,
        mac: vmac,
        accept: true,
    });
    assert_eq!(
        b.send(INSIDE, to_mac(c2s(1000, 0, SYN, 0), vmac)).len(),
        1,
        "master: routed"
    );
    // Only on the port whose group it is.
    assert!(
        b.send(OUTSIDE, to_mac(s2c(5000, 1001, syn_ack(), 0), vmac))
            .is_empty()
    );
    assert_eq!(b.dropped(DropReason::NotForUs), 2);
    b.links.control.push_back(ControlOp::VirtualMac {
        port: INSIDE,
        mac: vmac,
        accept: false,
    });
    assert!(
        b.send(INSIDE, to_mac(c2s(1001, 0, ACK, 0), vmac))
            .is_empty()
    );
    assert_eq!(b.dropped(DropReason::NotForUs), 3, "backup again");
}
