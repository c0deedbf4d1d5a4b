//! The per-packet cost of `parse_meta`, the classifier every received frame goes through: an established
//! TCP/IPv4 data segment (with the NIC having verified the IPv4 checksum, and without), the same over IPv6,
//! and a SYN whose options are parsed. Criterion reports time per iteration, which is time per packet.
//!
//! Run: `cargo bench -p tandem-dataplane --bench parse -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tandem_dataplane::wire::build::{self, Endpoints};
use tandem_dataplane::wire::checksum::ChecksumCaps;
use tandem_dataplane::wire::ethernet::MacAddr;
use tandem_dataplane::wire::meta::parse_meta;
use tandem_dataplane::wire::tcp::{TcpFlags, TcpRepr};

const CLIENT: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 1]);
const SERVER: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 2]);

fn v4() -> Endpoints {
    Endpoints::v4(
        CLIENT,
        SERVER,
        Ipv4Addr::new(198, 18, 0, 10),
        Ipv4Addr::new(198, 19, 0, 1),
    )
}

fn v6() -> Endpoints {
    let src: Ipv6Addr = "2001:db8::10".parse().expect("address");
    let dst: Ipv6Addr = "2001:db8:1::1".parse().expect("address");
    Endpoints::v6(CLIENT, SERVER, src, dst)
}

/// A data segment of an established connection as Linux sends it: ACK|PSH, timestamps, 1,400 bytes.
fn established() -> TcpRepr {
    TcpRepr {
        src_port: 40_000,
        dst_port: 443,
        seq: 0x1234_5678,
        ack: 0x9abc_def0,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 502,
        timestamps: Some((1_000_000, 2_000_000)),
        ..TcpRepr::default()
    }
}

/// A SYN with Linux's options: MSS, SACK permitted, timestamps, window scale.
fn syn() -> TcpRepr {
    TcpRepr {
        src_port: 40_000,
        dst_port: 443,
        seq: 0x1234_5677,
        flags: TcpFlags::SYN,
        window: 64_240,
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: Some((1_000_000, 0)),
        ..TcpRepr::default()
    }
}

fn parse(c: &mut Criterion) {
    let payload = vec![0x5a; 1400];
    let cases = [
        (
            "tcp_v4_established",
            build::tcp(&v4(), &established(), &payload),
            ChecksumCaps::OFFLOADED,
        ),
        (
            "tcp_v4_established_sw_ipv4_csum",
            build::tcp(&v4(), &established(), &payload),
            ChecksumCaps::SOFTWARE,
        ),
        (
            "tcp_v6_established",
            build::tcp(&v6(), &established(), &payload),
            ChecksumCaps::OFFLOADED,
        ),
        (
            "tcp_v4_syn_options",
            build::tcp(&v4(), &syn(), &[]),
            ChecksumCaps::OFFLOADED,
        ),
    ];
    let mut group = c.benchmark_group("parse_meta");
    group.throughput(Throughput::Elements(1));
    for (name, frame, caps) in cases {
        let frame = frame.expect("benchmark frame");
        assert!(parse_meta(&frame, caps).is_ok(), "{name} must classify");
        group.bench_function(name, |b| b.iter(|| parse_meta(black_box(&frame), caps)));
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
