//! A tcpdump-style one-line description of a whole frame, for logs, `tandem` diagnostics and the fuzz
//! target: it parses every layer with the full `Repr` parsers (Ethernet, ARP, IPv4, IPv6 and its extension
//! headers, TCP, UDP, ICMP, ICMPv6) and prints each, or the error that stopped it. It is the slow,
//! thorough counterpart of [`super::meta::parse_meta`] and never runs on the hot path.

use std::fmt;

use super::arp::{self, ArpRepr};
use super::build;
use super::checksum::{ChecksumCaps, PseudoHeader};
use super::ethernet::{self, EthernetRepr, ethertype};
use super::icmpv4::{self, Icmpv4Repr};
use super::icmpv6::{self, Icmpv6Repr};
use super::ip::protocol;
use super::ipv4::{self, Ipv4Repr};
use super::ipv6::{self, ExtensionHeaders, Ipv6Repr};
use super::meta::{Malformed, PacketMeta, parse_meta};
use super::tcp::{self, TcpRepr};
use super::udp::{self, UdpRepr};
use super::vrrp;

/// A frame to describe; see [`describe`].
#[derive(Clone, Copy, Debug)]
pub struct Description<'a> {
    frame: &'a [u8],
}

/// Describes `frame`, an Ethernet frame, layer by layer.
pub fn describe(frame: &[u8]) -> Description<'_> {
    Description { frame }
}

impl fmt::Display for Description<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let eth = match ethernet::Frame::new_checked(self.frame)
            .and_then(|frame| EthernetRepr::parse(&frame).map(|repr| (frame, repr)))
        {
            Ok((frame, repr)) => {
                write!(f, "{repr}")?;
                frame
            }
            Err(err) => return write!(f, "Ethernet ({err})"),
        };
        let payload = eth.payload();
        match eth.payload_ethertype() {
            ethertype::ARP => {
                match arp::Packet::new_checked(payload).and_then(|p| ArpRepr::parse(&p)) {
                    Ok(repr) => write!(f, " | {repr}"),
                    Err(err) => write!(f, " | ARP ({err})"),
                }
            }
            ethertype::IPV4 => ipv4_layers(f, payload),
            ethertype::IPV6 => ipv6_layers(f, payload),
            _ => Ok(()),
        }
    }
}

fn ipv4_layers(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let packet = match ipv4::Packet::new_checked(bytes) {
        Ok(packet) => packet,
        Err(err) => return write!(f, " | IP ({err})"),
    };
    let repr = match Ipv4Repr::parse(&packet, ChecksumCaps::OFFLOADED) {
        Ok(repr) => repr,
        Err(err) => return write!(f, " | IP ({err})"),
    };
    write!(f, " | {repr}")?;
    // A bad checksum is noted rather than fatal: the point of a description is to show what is there.
    if !packet.verify_checksum() {
        f.write_str(" [bad ip cksum]")?;
    }
    if repr.frag_offset > 0 {
        return write!(
            f,
            " | fragment of id {} at {}",
            repr.ident, repr.frag_offset
        );
    }
    let pseudo = PseudoHeader::V4 {
        src: repr.src_addr,
        dst: repr.dst_addr,
    };
    transport(f, repr.protocol, packet.payload(), &pseudo)
}

fn ipv6_layers(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    let packet = match ipv6::Packet::new_checked(bytes) {
        Ok(packet) => packet,
        Err(err) => return write!(f, " | IP6 ({err})"),
    };
    let repr = match Ipv6Repr::parse(&packet) {
        Ok(repr) => repr,
        Err(err) => return write!(f, " | IP6 ({err})"),
    };
    write!(f, " | {repr}")?;
    let payload = packet.payload();
    let mut walk = ExtensionHeaders::new(repr.next_header, payload);
    for header in walk.by_ref() {
        match header {
            Ok(header) => write!(f, " | ext {} ({} bytes)", header.kind, header.bytes.len())?,
            Err(err) => return write!(f, " | ({err})"),
        }
    }
    // Where the walk stopped: the upper layer, or a non-first fragment's data, which has no header to show.
    let chain = walk.end();
    if let Some(frag) = chain.fragment {
        write!(
            f,
            " | frag id {} offset {}{}",
            frag.ident,
            frag.offset,
            if frag.more_frags { " M" } else { "" }
        )?;
    }
    if !chain.has_upper_layer_header() {
        return Ok(());
    }
    let pseudo = PseudoHeader::V6 {
        src: repr.src_addr,
        dst: repr.dst_addr,
    };
    let upper = payload.get(chain.offset..).unwrap_or_default();
    transport(f, chain.protocol, upper, &pseudo)
}

fn transport(
    f: &mut fmt::Formatter<'_>,
    proto: u8,
    bytes: &[u8],
    pseudo: &PseudoHeader,
) -> fmt::Result {
    let v6 = matches!(pseudo, PseudoHeader::V6 { .. });
    match proto {
        protocol::TCP => match tcp::Packet::new_checked(bytes) {
            Ok(packet) => {
                match TcpRepr::parse(&packet) {
                    Ok(repr) => write!(f, " | {repr}, length {}", packet.payload().len())?,
                    Err(err) => write!(f, " | TCP ({err})")?,
                }
                checksum_note(f, packet.verify_checksum(pseudo))
            }
            Err(err) => write!(f, " | TCP ({err})"),
        },
        protocol::UDP => match udp::Packet::new_checked(bytes) {
            Ok(packet) => {
                let repr = UdpRepr::parse(&packet);
                write!(f, " | {repr}, length {}", packet.payload().len())?;
                checksum_note(f, packet.verify_checksum(pseudo))
            }
            Err(err) => write!(f, " | UDP ({err})"),
        },
        protocol::ICMP if !v6 => match icmpv4::Packet::new_checked(bytes) {
            Ok(packet) => {
                match Icmpv4Repr::parse(&packet) {
                    Ok(repr) => write!(f, " | {repr}")?,
                    Err(err) => write!(f, " | ICMP ({err})")?,
                }
                checksum_note(f, packet.verify_checksum())
            }
            Err(err) => write!(f, " | ICMP ({err})"),
        },
        protocol::ICMPV6 if v6 => match icmpv6::Packet::new_checked(bytes) {
            Ok(packet) => {
                match Icmpv6Repr::parse(&packet) {
                    Ok(repr) => write!(f, " | {repr}")?,
                    Err(err) => write!(f, " | ICMP6 ({err})")?,
                }
                checksum_note(f, packet.verify_checksum(pseudo))
            }
            Err(err) => write!(f, " | ICMP6 ({err})"),
        },
        vrrp::PROTOCOL => {
            match vrrp::Packet::new_checked(bytes).and_then(|p| vrrp::VrrpRepr::parse(&p, pseudo)) {
                Ok(repr) => write!(f, " | {repr}"),
                Err(err) => write!(f, " | VRRP ({err})"),
            }
        }
        other => write!(f, " | protocol {other}, {} bytes", bytes.len()),
    }
}

fn checksum_note(f: &mut fmt::Formatter<'_>, ok: bool) -> fmt::Result {
    if ok {
        Ok(())
    } else {
        f.write_str(" [bad cksum]")
    }
}

/// The parsers' consistency property, for the mutation test and the fuzz target (tests/fuzz): whatever
/// bytes come in as a frame, no parser panics (the classifier with and without checksum verification, and
/// every layer's full parser through [`describe`]); verification adds no verdict but its own; a classified
/// frame's offsets lie inside it; and the RST or ICMP error answering it classifies cleanly itself. Panics
/// when the property fails; returns the verified classification.
pub fn check_parsers(frame: &[u8]) -> Result<PacketMeta, Malformed> {
    let _ = describe(frame).to_string();
    let offloaded = parse_meta(frame, ChecksumCaps::OFFLOADED);
    let result = parse_meta(frame, ChecksumCaps::SOFTWARE);
    let Ok(meta) = offloaded else {
        // Verifying the header checksum may only add that reason, found before the transport layer.
        assert!(
            result == offloaded || result == Err(Malformed::Ipv4BadChecksum),
            "{result:?} with verification, {offloaded:?} without"
        );
        return result;
    };
    if meta.family().is_some() {
        let end = usize::from(meta.l4_offset) + usize::from(meta.ip_payload_len);
        assert!(usize::from(meta.l3_offset) < usize::from(meta.l4_offset) && end <= frame.len());
    }
    let _ = meta.l4_checksum_ok(frame);
    check_vrrp(frame, &meta);
    let answers = [
        build::reset_for(frame, &meta, 64),
        build::unreachable_for(frame, &meta, 1, 64),
    ];
    for answer in answers.into_iter().flatten() {
        let bytes = answer.to_vec().expect("an answer to a parsed frame fits");
        let answered = parse_meta(&bytes, ChecksumCaps::SOFTWARE);
        assert!(
            answered.is_ok(),
            "answer {answered:?}: {}\nto {meta:?}: {}\n{frame:02x?}",
            describe(&bytes),
            describe(frame)
        );
    }
    result
}

/// A VRRP advertisement that parses emits again to bytes that parse to the same advertisement.
fn check_vrrp(frame: &[u8], meta: &PacketMeta) {
    if meta.proto != vrrp::PROTOCOL || meta.fragment != crate::wire::meta::Fragment::None {
        return;
    }
    let (Some(pseudo), Some(l4)) = (
        meta.pseudo_header(),
        frame.get(
            usize::from(meta.l4_offset)
                ..usize::from(meta.l4_offset) + usize::from(meta.ip_payload_len),
        ),
    ) else {
        return;
    };
    let Ok(repr) = vrrp::Packet::new_checked(l4).and_then(|p| vrrp::VrrpRepr::parse(&p, &pseudo))
    else {
        return;
    };
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut vrrp::Packet::new_unchecked(&mut bytes[..]), &pseudo);
    let again = vrrp::VrrpRepr::parse(&vrrp::Packet::new_unchecked(&bytes[..]), &pseudo);
    assert_eq!(
        again.as_ref(),
        Ok(&repr),
        "VRRP {repr} re-emitted as {bytes:02x?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::captured;

    #[test]
    fn describes_every_layer_of_a_captured_syn() {
        assert_eq!(
            describe(&captured::SYN_V4).to_string(),
            "f2:28:c2:96:65:e0 > 3e:96:6a:d9:fe:70, ethertype IPv4 (0x0800) | IP (tos 0x0, ttl 64, id 8000, \
             offset 0, flags [DF], proto TCP (6), length 60) 10.0.0.1 > 10.0.0.2 | TCP 35726 > 80: Flags [S], \
             seq 2682626137, win 64240, options [mss 1460,sackOK,TS val 1135181092 ecr 0,wscale 10], length 0"
        );
    }

    #[test]
    fn describes_extension_headers_and_flags_bad_checksums() {
        let text = describe(&captured::MLD_REPORT).to_string();
        assert!(
            text.contains("| ext 0 (8 bytes) | ICMP6, type 143, code 0"),
            "{text}"
        );
        assert!(!text.contains("bad"), "{text}");
        let mut corrupt = captured::UDP_V4;
        corrupt[43] ^= 0xff;
        let text = describe(&corrupt).to_string();
        assert!(
            text.ends_with("UDP 56066 > 9999, length 2 [bad cksum]"),
            "{text}"
        );
    }

    #[test]
    fn stops_at_the_first_error() {
        assert_eq!(
            describe(&captured::SYN_V4[..20])
                .to_string()
                .rsplit(" | ")
                .next(),
            Some("IP (IPv4 truncated: needs 20 bytes, has 6)")
        );
    }
}
