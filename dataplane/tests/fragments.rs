//! IPv4 fragments through the worker as pf handles them by default (`set reassemble yes`): held until
//! their datagram is whole, the whole checked against states and rules, then all forwarded or all dropped;
//! overlaps, excess and timeouts drop the whole datagram.

mod support;

use support::*;
use tandem_dataplane::forward::ipv4_fragment_into;

/// `frame` cut into IPv4 fragments of at most `piece` payload bytes (a multiple of 8), in order.
fn fragment(frame: &[u8], piece: usize) -> Vec<Vec<u8>> {
    let m = parse_meta(frame, ChecksumCaps::SOFTWARE).expect("valid");
    let total = usize::from(m.ip_payload_len);
    (0..total)
        .step_by(piece)
        .map(|start| {
            let end = (start + piece).min(total);
            let mut out = vec![0u8; frame.len()];
            let len =
                ipv4_fragment_into(frame, &m, start, end, end < total, &mut out).expect("fits");
            out.truncate(len);
            out
        })
        .collect()
}

fn udp_query(len: usize) -> Vec<u8> {
    let ends = Endpoints::v4(
        CLIENT_MAC,
        MacAddr(FW_IN_MAC),
        [198, 18, 0, 10].into(),
        [198, 19, 0, 53].into(),
    );
    build::udp(
        &ends,
        &UdpRepr {
            src_port: 5353,
            dst_port: 53,
        },
        &vec![7u8; len],
    )
    .expect("builds")
}

#[test]
fn a_fragmented_udp_datagram_is_checked_whole_and_passes_with_all_its_fragments() {
    let mut b = bench(WIRE_PASS);
    let datagram = udp_query(600);
    let frags = fragment(&datagram, 256);
    assert_eq!(frags.len(), 3);
    // Out of order: the last first, then the first.
    assert!(b.send(INSIDE, frags[2].clone()).is_empty(), "held");
    assert!(b.send(INSIDE, frags[0].clone()).is_empty(), "still held");
    let out = b.send(INSIDE, frags[1].clone());
    assert_eq!(out.len(), 3, "the whole datagram leaves");
    assert_eq!(out[0], frags[0], "its first fragment first, unchanged");
    let mut sorted = out.clone();
    sorted.sort();
    let mut expected = frags.clone();
    expected.sort();
    assert_eq!(sorted, expected);
    assert_eq!(
        b.worker.table().len(),
        1,
        "one state, from the whole datagram"
    );
    assert_eq!(b.counters.datagrams_reassembled.get(), 1);
    assert_eq!(b.dropped(DropReason::Malformed), 0);
}

#[test]
fn a_datagram_the_rules_block_is_dropped_with_every_fragment() {
    let mut b = bench(WIRE_PASS);
    // From the outside no rule passes anything.
    let ends = Endpoints::v4(
        SERVER_MAC,
        MacAddr(FW_OUT_MAC),
        [198, 19, 0, 53].into(),
        [198, 18, 0, 10].into(),
    );
    let datagram = build::udp(
        &ends,
        &UdpRepr {
            src_port: 53,
            dst_port: 5353,
        },
        &[1u8; 900],
    )
    .expect("builds");
    let frags = fragment(&datagram, 400);
    for f in &frags {
        assert!(b.send(OUTSIDE, f.clone()).is_empty());
    }
    assert_eq!(
        b.dropped(DropReason::BlockedByDefault),
        1,
        "the whole, once"
    );
    assert_eq!(
        b.dropped(DropReason::FragmentOfDropped),
        frags.len() as u64 - 1
    );
}

#[test]
fn overlapping_fragments_drop_the_whole_datagram() {
    let mut b = bench(WIRE_PASS);
    let datagram = udp_query(600);
    let frags = fragment(&datagram, 256);
    // A forged fragment that rewrites part of the first one's range (offset 248).
    let m = parse_meta(&datagram, ChecksumCaps::SOFTWARE).expect("valid");
    let mut forged = vec![0u8; datagram.len()];
    let len = ipv4_fragment_into(&datagram, &m, 248, 400, true, &mut forged).expect("fits");
    forged.truncate(len);
    assert!(b.send(INSIDE, frags[0].clone()).is_empty());
    assert!(b.send(INSIDE, forged).is_empty());
    assert_eq!(b.dropped(DropReason::FragmentOverlap), 2, "both go");
    // The rest of the datagram then never completes anything.
    assert!(b.send(INSIDE, frags[1].clone()).is_empty());
    assert!(b.send(INSIDE, frags[2].clone()).is_empty());
    assert!(b.worker.table().is_empty());
    // A plain duplicate costs only itself.
    let mut b = bench(WIRE_PASS);
    assert!(b.send(INSIDE, frags[0].clone()).is_empty());
    assert!(b.send(INSIDE, frags[0].clone()).is_empty());
    assert_eq!(b.dropped(DropReason::FragmentDuplicate), 1);
    assert!(b.send(INSIDE, frags[1].clone()).is_empty());
    assert_eq!(b.send(INSIDE, frags[2].clone()).len(), 3);
}

#[test]
fn an_incomplete_datagram_is_dropped_at_the_timeout() {
    let mut b = bench(WIRE_PASS);
    let frags = fragment(&udp_query(600), 256);
    assert!(b.send(INSIDE, frags[0].clone()).is_empty());
    assert!(b.send(INSIDE, frags[2].clone()).is_empty());
    b.now = b.now + tandem_dataplane::reassembly::FRAGMENT_TIMEOUT + Duration::secs(1);
    b.worker
        .poll(&mut b.io, &mut b.links, &[INSIDE, OUTSIDE], b.now);
    assert_eq!(b.dropped(DropReason::FragmentTimeout), 2);
    // The missing piece, late, completes nothing.
    assert!(b.send(INSIDE, frags[1].clone()).is_empty());
    assert!(b.worker.table().is_empty());
}

#[test]
fn a_datagram_of_too_many_fragments_is_dropped() {
    let mut b = bench(WIRE_PASS);
    let frags = fragment(&udp_query(1200), 16);
    assert!(frags.len() > tandem_dataplane::reassembly::FRAGMENTS_PER_DATAGRAM);
    for f in &frags {
        assert!(b.send(INSIDE, f.clone()).is_empty());
    }
    assert!(b.dropped(DropReason::FragmentLimit) > 0);
    assert!(b.worker.table().is_empty());
}

#[test]
fn a_fragmented_tcp_segment_outside_the_window_is_dropped_whole() {
    let mut b = bench(WIRE_PASS);
    assert_eq!(b.send(INSIDE, c2s(1000, 0, SYN, 0)).len(), 1);
    assert_eq!(b.send(OUTSIDE, s2c(5000, 1001, syn_ack(), 0)).len(), 1);
    // Inside the window, whole: passes in pieces.
    let frags = fragment(&c2s(1001, 5001, ACK, 1200), 512);
    let mut out = Vec::new();
    for f in &frags {
        out.extend(b.send(INSIDE, f.clone()));
    }
    assert_eq!(out.len(), frags.len());
    // Far outside: every piece dropped.
    let frags = fragment(&c2s(1001 + 900_000, 5001, ACK, 1200), 512);
    for f in &frags {
        assert!(b.send(INSIDE, f.clone()).is_empty());
    }
    assert_eq!(b.dropped(DropReason::OutOfWindow), 1);
    assert_eq!(
        b.dropped(DropReason::FragmentOfDropped),
        frags.len() as u64 - 1
    );
}

const ROUTER: &str = "rules:\n  - {action: pass, direction: in, port: inside}\n";

/// A router whose outside port has a 1000-byte MTU and knows the server's MAC.
fn narrow_router() -> Bench {
    let mut b = bench_with_mtu(ROUTER, 1000);
    b.links.control.push_back(ControlOp::Neighbor {
        port: OUTSIDE,
        addr: addr_of(&Ipv4Addr::new(198, 19, 0, 53).into()),
        mac: SERVER_MAC.0,
    });
    b
}

fn with_df(mut frame: Vec<u8>, df: bool) -> Vec<u8> {
    let mut ip = tandem_dataplane::wire::ipv4::Packet::new_unchecked(&mut frame[14..]);
    ip.set_fragment(df, false, 0);
    ip.fill_checksum();
    frame
}

#[test]
fn a_packet_larger_than_the_egress_mtu_leaves_in_fragments() {
    let mut b = narrow_router();
    let datagram = with_df(udp_query(1400), false);
    let out = b.send(INSIDE, datagram.clone());
    assert_eq!(out.len(), 2, "1428 bytes of IP over a 1000-byte link");
    let mut payload = Vec::new();
    for (i, f) in out.iter().enumerate() {
        let m = parse_meta(f, ChecksumCaps::SOFTWARE).expect("valid, header checksum included");
        assert!(f.len() - 14 <= 1000, "fragment {i} fits the link");
        assert_eq!(m.ttl, 63, "routed");
        payload.extend_from_slice(&f[usize::from(m.l4_offset)..][..usize::from(m.ip_payload_len)]);
    }
    let orig = parse_meta(&datagram, ChecksumCaps::SOFTWARE).expect("valid");
    assert_eq!(
        payload,
        datagram[usize::from(orig.l4_offset)..],
        "the same bytes, in pieces"
    );
    assert_eq!(b.counters.fragmented.get(), 1);
}

#[test]
fn a_dont_fragment_packet_too_large_is_answered_with_fragmentation_needed() {
    let mut b = narrow_router();
    let datagram = with_df(udp_query(1400), true);
    assert!(b.send(INSIDE, datagram).is_empty());
    assert_eq!(b.dropped(DropReason::TooBig), 1);
    let answers = b.answers(INSIDE);
    assert_eq!(answers.len(), 1);
    let m = parse_meta(&answers[0], ChecksumCaps::SOFTWARE).expect("valid");
    match m.l4 {
        L4::Icmp(icmp) => {
            assert_eq!((icmp.icmp_type, icmp.code), (3, 4), "fragmentation needed");
            assert!(matches!(icmp.kind, IcmpKind::Error(_)));
        }
        other => panic!("expected ICMP, got {other:?}"),
    }
    // The next-hop MTU (RFC 1191) in the low half of the second word; to the sender, from the router.
    assert_eq!(
        &answers[0][14 + 20 + 6..14 + 20 + 8],
        &1000u16.to_be_bytes()
    );
    assert_eq!(&m.dst[..4], &[198, 18, 0, 10]);
    assert_eq!(&m.src[..4], &[198, 18, 0, 1]);
    assert_eq!(
        &answers[0][..6],
        &CLIENT_MAC.0,
        "back to the hop it came from"
    );
}

#[test]
fn ipv6_fragments_are_reassembled_and_checked_whole_too() {
    use tandem_dataplane::wire::ipv6::FragmentHeader;
    let mut b = bench(
        "forwarding: {mode: wire, pairs: [[inside, outside]]}\nrules:\n  - {action: pass, direction: in, port: inside}\n",
    );
    let ends = Endpoints::v6(
        CLIENT_MAC,
        MacAddr(FW_IN_MAC),
        "2001:db8:1::10".parse().expect("v6"),
        "2001:db8:2::53".parse().expect("v6"),
    );
    let whole = build::udp(
        &ends,
        &UdpRepr {
            src_port: 5353,
            dst_port: 53,
        },
        &[9u8; 1000],
    )
    .expect("builds");
    let upper = &whole[14 + 40..];
    let frags: Vec<Vec<u8>> = (0..upper.len())
        .step_by(512)
        .map(|start| {
            let end = (start + 512).min(upper.len());
            let mut payload = vec![0u8; 8];
            FragmentHeader {
                next_header: 17,
                offset: start as u16,
                more_frags: end < upper.len(),
                ident: 0x0102_0304,
            }
            .emit(&mut payload);
            payload.extend_from_slice(&upper[start..end]);
            build::ip(&ends, 44, &payload).expect("builds")
        })
        .collect();
    assert_eq!(frags.len(), 2);
    assert!(b.send(INSIDE, frags[1].clone()).is_empty(), "held");
    let out = b.send(INSIDE, frags[0].clone());
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], frags[0]);
    assert_eq!(b.worker.table().len(), 1);
    assert_eq!(b.counters.datagrams_reassembled.get(), 1);
}
