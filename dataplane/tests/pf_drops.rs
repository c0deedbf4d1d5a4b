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
