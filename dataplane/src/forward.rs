//! What router mode does to a frame on its way out: the next hop's MAC as destination, the egress port's
//! MAC as source, and the TTL or hop limit one less (RFC 1812 section 5.3.1, RFC 8200 section 3), the
//! IPv4 header checksum updated incrementally by the wire layer (RFC 1624). And the ICMP time
//! exceeded sent when the TTL runs out, from the router's own address.

use tandem_config::Family;

use crate::flow::Addr;
use crate::wire::build::{Answer, AnswerKind, Endpoints, IcmpError, IpPair};
use crate::wire::ethernet::{self, MacAddr};
use crate::wire::ipv4;
use crate::wire::ipv6;
use crate::wire::meta::{EtherClass, Fragment, IcmpKind, L4, PacketMeta};

/// Why a frame cannot be forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RewriteError {
    /// The TTL or hop limit would reach zero.
    TtlExpired,
    /// The frame is not an IP packet the classifier accepted.
    NotIp,
}

/// Rewrites `frame` (classified as `meta`) to leave towards `next_hop_mac` from `port_mac`.
pub fn route_rewrite(
    frame: &mut [u8],
    meta: &PacketMeta,
    next_hop_mac: [u8; 6],
    port_mac: [u8; 6],
) -> Result<(), RewriteError> {
    if meta.ttl <= 1 {
        return Err(RewriteError::TtlExpired);
    }
    let ip = frame
        .get_mut(usize::from(meta.l3_offset)..)
        .ok_or(RewriteError::NotIp)?;
    match meta.class {
        EtherClass::Ipv4 => {
            ipv4::Packet::new_unchecked(ip).decrement_ttl();
        }
        EtherClass::Ipv6 => {
            ipv6::Packet::new_unchecked(ip).decrement_hop_limit();
        }
        EtherClass::Arp | EtherClass::Other => return Err(RewriteError::NotIp),
    }
    let mut eth = ethernet::Frame::new_unchecked(frame);
    eth.set_dst_addr(MacAddr(next_hop_mac));
    eth.set_src_addr(MacAddr(port_mac));
    Ok(())
}

/// The length of the IP datagram in `frame` (classified as `meta`), from its own header: IPv4's total
/// length, IPv6's payload length and header.
pub fn ip_len(frame: &[u8], meta: &PacketMeta) -> usize {
    let l3 = usize::from(meta.l3_offset);
    let field = |at: usize| {
        frame
            .get(at..at + 2)
            .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    };
    match meta.class {
        EtherClass::Ipv4 => field(l3 + 2),
        EtherClass::Ipv6 => field(l3 + 4) + ipv6::HEADER_LEN,
        EtherClass::Arp | EtherClass::Other => 0,
    }
}

/// Whether the IPv4 packet in `frame` says "don't fragment".
pub fn dont_fragment(frame: &[u8], meta: &PacketMeta) -> bool {
    meta.class == EtherClass::Ipv4
        && frame
            .get(usize::from(meta.l3_offset) + 6)
            .is_some_and(|b| b & 0x40 != 0)
}

/// Writes into `out` the IPv4 fragment of `frame` (classified as `meta`, a whole packet or itself a
/// fragment) that carries bytes `start..end` of its IP payload, `more` saying whether more of that payload
/// follows: Ethernet and IP headers copied (options included), offset, MF, total length and header
/// checksum set (RFC 791 section 3.2, "An Example Fragmentation Procedure"). `start` must be a multiple of
/// 8. Returns the fragment's length, or `None` if `out` is too short or the ranges do not fit.
pub fn ipv4_fragment_into(
    frame: &[u8],
    meta: &PacketMeta,
    start: usize,
    end: usize,
    more: bool,
    out: &mut [u8],
) -> Option<usize> {
    let header_end = usize::from(meta.l4_offset);
    let payload = frame.get(header_end..header_end + usize::from(meta.ip_payload_len))?;
    let piece = payload.get(start..end)?;
    let len = header_end + piece.len();
    let out = out.get_mut(..len)?;
    out[..header_end].copy_from_slice(&frame[..header_end]);
    out[header_end..].copy_from_slice(piece);
    let (base, was_more) = match meta.fragment {
        Fragment::None => (0, false),
        Fragment::First { .. } => (0, true),
        Fragment::Later { offset, last, .. } => (usize::from(offset), !last),
    };
    let offset = u16::try_from(base + start).ok()?;
    let mut ip = ipv4::Packet::new_unchecked(out.get_mut(usize::from(meta.l3_offset)..)?);
    ip.set_total_len(u16::try_from(len - usize::from(meta.l3_offset)).ok()?);
    ip.set_fragment(false, more || was_more, offset);
    ip.fill_checksum();
    Some(len)
}

/// The ICMP time exceeded (code 0, TTL exceeded in transit) answering `frame`, from `router` (our address
/// on the port it came in by) to its source; `None` where the RFCs forbid an error: in answer to an ICMP
/// error, to a later fragment, to a multicast destination (RFC 1812 section 4.3.2.7, RFC 4443 section 2.4).
pub fn time_exceeded<'a>(frame: &'a [u8], meta: &PacketMeta, router: &Addr) -> Option<Answer<'a>> {
    router_error(frame, meta, router, IcmpError::TimeExceeded(0))
}

/// The ICMP "fragmentation needed" (IPv4, RFC 1191) or "packet too big" (IPv6, RFC 8201) answering a
/// packet larger than the next link's `mtu` that may not be fragmented here, from `router`; `None` where
/// the RFCs forbid an error, as for [`time_exceeded`].
pub fn too_big<'a>(
    frame: &'a [u8],
    meta: &PacketMeta,
    router: &Addr,
    mtu: u16,
) -> Option<Answer<'a>> {
    router_error(frame, meta, router, IcmpError::PacketTooBig(u32::from(mtu)))
}

fn router_error<'a>(
    frame: &'a [u8],
    meta: &PacketMeta,
    router: &Addr,
    error: IcmpError,
) -> Option<Answer<'a>> {
    if matches!(meta.l4, L4::Icmp(icmp) if matches!(icmp.kind, IcmpKind::Error(_)))
        || matches!(meta.fragment, Fragment::Later { .. })
    {
        return None;
    }
    let mut ends = Endpoints::of_frame(frame, meta)?.reversed();
    ends.hop_limit = crate::wire::build::DEFAULT_HOP_LIMIT;
    ends.ips = match (meta.family()?, ends.ips) {
        (Family::Inet, IpPair::V4 { dst, .. }) => {
            if crate::route::v4_of(&meta.dst).is_multicast() || dst.is_unspecified() {
                return None;
            }
            IpPair::V4 {
                src: crate::route::v4_of(router),
                dst,
            }
        }
        (Family::Inet6, IpPair::V6 { dst, .. }) => {
            if meta.dst[0] == 0xff || dst.is_unspecified() {
                return None;
            }
            IpPair::V6 {
                src: std::net::Ipv6Addr::from(*router),
                dst,
            }
        }
        _ => return None,
    };
    Some(Answer {
        ends,
        kind: AnswerKind::IcmpError {
            error,
            quoted: crate::wire::build::quote_of(frame, meta)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::build;
    use crate::wire::checksum::ChecksumCaps;
    use crate::wire::meta::parse_meta;
    use crate::wire::tcp::{TcpFlags, TcpRepr};

    fn segment(ttl: u8) -> Vec<u8> {
        let ends = Endpoints::v4(
            MacAddr([2, 0, 0, 0, 0, 1]),
            MacAddr([2, 0, 0, 0, 0, 2]),
            [198, 18, 0, 10].into(),
            [198, 19, 0, 20].into(),
        )
        .with_hop_limit(ttl);
        let repr = TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: 1,
            flags: TcpFlags::SYN,
            window: 65535,
            ..TcpRepr::default()
        };
        build::tcp(&ends, &repr, &[]).expect("builds")
    }

    #[test]
    fn forwarding_decrements_the_ttl_keeps_the_checksum_valid_and_rewrites_macs() {
        let mut frame = segment(64);
        let meta = parse_meta(&frame, ChecksumCaps::SOFTWARE).expect("valid");
        route_rewrite(&mut frame, &meta, [2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 8])
            .expect("forwardable");
        // The software-verifying classifier refuses a bad header checksum: it must still accept the frame.
        let after = parse_meta(&frame, ChecksumCaps::SOFTWARE).expect("checksum still valid");
        assert_eq!(after.ttl, 63);
        assert_eq!(&frame[..12], &[2, 0, 0, 0, 0, 9, 2, 0, 0, 0, 0, 8]);
    }

    #[test]
    fn a_ttl_of_one_is_not_forwarded_and_gets_a_time_exceeded_from_the_router() {
        let mut frame = segment(1);
        let meta = parse_meta(&frame, ChecksumCaps::SOFTWARE).expect("valid");
        assert_eq!(
            route_rewrite(&mut frame, &meta, [0; 6], [0; 6]),
            Err(RewriteError::TtlExpired)
        );
        let mut router = [0u8; 16];
        router[..4].copy_from_slice(&[198, 18, 0, 1]);
        let answer = time_exceeded(&frame, &meta, &router).expect("answered");
        let bytes = answer.to_vec().expect("builds");
        let m = parse_meta(&bytes, ChecksumCaps::SOFTWARE).expect("valid ICMP");
        assert_eq!(&m.src[..4], &[198, 18, 0, 1]);
        assert_eq!(&m.dst[..4], &[198, 18, 0, 10]);
        assert!(
            matches!(m.l4, L4::Icmp(i) if i.icmp_type == 11 && matches!(i.kind, IcmpKind::Error(_)))
        );
    }
}
