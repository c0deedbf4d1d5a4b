//! The sync packets a hostile host on the sync link would send, for scripts/hostile-sync.sh: a pfsync
//! packet written to stdout, to be sent as IPv4 protocol 240 with TTL 255.
//!
//!   forge ins-udp CREATOR SRC_IP SRC_PORT DST_IP DST_PORT   an INS of an established UDP state
//!   forge clr CREATOR                                       a CLR of every state CREATOR made
//!   forge bulk                                              a bulk update request
//!
//! With `--seal-as ADDRESS` last, the packet carries an authentication trailer as from ADDRESS, under a
//! key that is not the cluster's: what a host without the key can make.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::ExitCode;

use tandem_sync::auth::{Keyring, Sealer};
use tandem_sync::identity::{AddressFamily, CreatorId, StateId};
use tandem_sync::packetizer::{Encapsulation, Packetizer};
use tandem_sync::state::{TimeoutClass, single_state};
use tandem_sync::wire::{
    ClrRepr, InterfaceName, Message, PeerRepr, StateKeyRepr, StateRefRepr, StateRepr,
};

const NOT_THE_KEY: &str = "1 6e6f7420746865206b6579206e6f7420746865206b6579206e6f742074686520";

fn pf_addr(ip: Ipv4Addr) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&ip.octets());
    a
}

fn creator(arg: &str) -> Option<CreatorId> {
    let hex = arg.trim_start_matches("0x");
    u32::from_str_radix(hex, 16).ok().map(CreatorId)
}

fn udp_state(creator: CreatorId, src: (Ipv4Addr, u16), dst: (Ipv4Addr, u16)) -> StateRepr {
    let side = |state| {
        let mut p = PeerRepr::default();
        p.tcp.state = state;
        p
    };
    let key = StateKeyRepr {
        addr: [pf_addr(src.0), pf_addr(dst.0)],
        port: [src.1, dst.1],
        rdomain: 0,
        af: Some(AddressFamily::Inet),
    };
    StateRepr {
        id: StateId(0x0bad_0000_0000_0001),
        creator,
        ifname: InterfaceName::new(""),
        key: [key, key],
        src: side(single_state::MULTIPLE),
        dst: side(single_state::MULTIPLE),
        rt_addr: [0; 16],
        rule: u32::MAX,
        anchor: u32::MAX,
        nat_rule: u32::MAX,
        creation: 1,
        expire: 60,
        packets: [1, 1],
        bytes: [100, 100],
        rtableid: [-1, -1],
        max_mss: 0,
        af: AddressFamily::Inet,
        proto: 17,
        direction: 1,
        log: 0,
        rt: 0,
        timeout: TimeoutClass::UdpMultiple as u8,
        sync_flags: 0,
        updates: 0,
        min_ttl: 0,
        set_tos: 0,
        state_flags: 0,
        set_prio: [0, 0],
    }
}

fn message(args: &[String]) -> Option<Message> {
    let ip = |s: &String| s.parse::<Ipv4Addr>().ok();
    let port = |s: &String| s.parse::<u16>().ok();
    match args {
        [kind, c, sip, sport, dip, dport] if kind == "ins-udp" => Some(Message::Ins(udp_state(
            creator(c)?,
            (ip(sip)?, port(sport)?),
            (ip(dip)?, port(dport)?),
        ))),
        [kind, c] if kind == "clr" => Some(Message::Clr(ClrRepr {
            ifname: InterfaceName::new(""),
            creator: creator(c)?,
        })),
        [kind] if kind == "bulk" => Some(Message::UpdReq(StateRefRepr {
            creator: CreatorId(0),
            id: StateId(0),
        })),
        _ => None,
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let seal_as = match args.iter().position(|a| a == "--seal-as") {
        Some(i) if i + 1 < args.len() => {
            let address = args[i + 1].parse::<Ipv4Addr>().ok();
            args.truncate(i);
            address
        }
        _ => None,
    };
    let Some(message) = message(&args) else {
        eprintln!(
            "usage: forge ins-udp CREATOR SRC_IP SRC_PORT DST_IP DST_PORT | clr CREATOR | bulk \
             [--seal-as ADDRESS]"
        );
        return ExitCode::from(2);
    };
    let mut packetizer =
        Packetizer::new(1500, Encapsulation::Ip).expect("an MTU of 1500 holds a state");
    let mut packet = Vec::new();
    packetizer.push(&message, &mut |b| packet = b.to_vec());
    packetizer.flush(&mut |b| packet = b.to_vec());
    if let Some(address) = seal_as {
        let ring = Keyring::parse(NOT_THE_KEY).expect("a key");
        Sealer::new(&ring, address, u32::MAX).seal(&mut packet);
    }
    if std::io::stdout().write_all(&packet).is_err() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
