//! Ethernet II frames with at most one IEEE 802.1Q VLAN tag. The view reads the tag when the outer
//! ethertype announces one; the `Repr` refuses stacked tags (802.1ad QinQ), which Tandem does not forward.
//! The frame check sequence is not here: NICs strip it before software sees a frame.

use std::fmt;
use std::net::Ipv6Addr;

use super::{Error, Field, Header, Result, read_u16, truncated, write_u16};

pub use tandem_config::MacAddr;

/// Ethertypes Tandem recognises.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// An IEEE 802.1Q customer VLAN tag follows.
    pub const VLAN: u16 = 0x8100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// An IEEE 802.1ad service tag (QinQ) follows.
    pub const QINQ: u16 = 0x88a8;
    /// The pre-standard QinQ service tag some switches still send.
    pub const QINQ_LEGACY: u16 = 0x9100;
}

/// The broadcast address.
pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

/// Whether `addr` is a group address (multicast or broadcast): the I/G bit, the least significant bit of
/// the first octet (IEEE 802-2014 section 8.2).
pub fn is_group(addr: &MacAddr) -> bool {
    addr.0[0] & 0x01 != 0
}

/// The Ethernet address an IPv6 multicast address maps to: 33:33 and its last four octets (RFC 2464
/// section 7).
pub fn ipv6_multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// The Ethernet address an IPv4 multicast address maps to: 01:00:5e and its low 23 bits (RFC 1112
/// section 6.4).
pub fn ipv4_multicast_mac(group: std::net::Ipv4Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]])
}

/// Whether an ethertype announces a VLAN tag of either kind.
fn is_tag(ethertype: u16) -> bool {
    matches!(
        ethertype,
        ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_LEGACY
    )
}

mod field {
    use super::Field;

    pub const DESTINATION: Field = 0..6;
    pub const SOURCE: Field = 6..12;
    pub const ETHERTYPE: Field = 12..14;
    /// Tag control information (PCP, DEI, VID), present when ETHERTYPE is a tag.
    pub const TAG_CONTROL: Field = 14..16;
    /// The ethertype of the tagged payload.
    pub const TAG_ETHERTYPE: Field = 16..18;
}

/// Length of an untagged Ethernet II header.
pub const HEADER_LEN: usize = field::ETHERTYPE.end;
/// Length of an Ethernet II header with one 802.1Q tag.
pub const TAGGED_HEADER_LEN: usize = field::TAG_ETHERTYPE.end;

/// An 802.1Q tag's control information.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// Priority code point (3 bits).
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier (12 bits).
    pub vid: u16,
}

impl VlanTag {
    /// A tag for VLAN `vid` with priority 0.
    pub fn new(vid: u16) -> VlanTag {
        VlanTag {
            pcp: 0,
            dei: false,
            vid: vid & 0x0fff,
        }
    }

    /// Decodes the 16-bit tag control information.
    pub fn from_tci(tci: u16) -> VlanTag {
        VlanTag {
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    /// Encodes the 16-bit tag control information; bits beyond each field's width are dropped.
    pub fn tci(&self) -> u16 {
        u16::from(self.pcp & 0x07) << 13 | u16::from(self.dei) << 12 | (self.vid & 0x0fff)
    }
}

/// A view of an Ethernet II frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it.
    #[inline]
    pub const fn new_unchecked(buffer: T) -> Frame<T> {
        Frame { buffer }
    }

    /// Wraps a buffer after [`Frame::check_len`].
    #[inline]
    pub fn new_checked(buffer: T) -> Result<Frame<T>> {
        let frame = Frame::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks that the header, and the tag when the ethertype announces one, are present.
    #[inline]
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(truncated(Header::Ethernet, HEADER_LEN, len));
        }
        if len < self.header_len() {
            return Err(truncated(Header::Vlan, self.header_len(), len));
        }
        Ok(())
    }

    /// Returns the buffer.
    #[inline]
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Destination address.
    #[inline]
    pub fn dst_addr(&self) -> MacAddr {
        let mut addr = [0u8; 6];
        addr.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        MacAddr(addr)
    }

    /// Source address.
    #[inline]
    pub fn src_addr(&self) -> MacAddr {
        let mut addr = [0u8; 6];
        addr.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        MacAddr(addr)
    }

    /// The outer ethertype: a tag's type when the frame is tagged.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        read_u16(&self.buffer.as_ref()[field::ETHERTYPE])
    }

    /// Whether the outer ethertype announces a tag (802.1Q or QinQ).
    #[inline]
    pub fn is_tagged(&self) -> bool {
        is_tag(self.ethertype())
    }

    /// The outer tag, if the frame carries one.
    #[inline]
    pub fn vlan_tag(&self) -> Option<VlanTag> {
        self.is_tagged()
            .then(|| VlanTag::from_tci(read_u16(&self.buffer.as_ref()[field::TAG_CONTROL])))
    }

    /// The ethertype of the payload: after the tag when there is one.
    #[inline]
    pub fn payload_ethertype(&self) -> u16 {
        if self.is_tagged() {
            read_u16(&self.buffer.as_ref()[field::TAG_ETHERTYPE])
        } else {
            self.ethertype()
        }
    }

    /// Refuses stacked tags: only a single customer tag is supported, and an S-tag outside it, or a tag
    /// inside it, is QinQ.
    #[inline]
    pub fn check_single_tag(&self) -> Result<()> {
        let outer = self.ethertype();
        if matches!(outer, ethertype::QINQ | ethertype::QINQ_LEGACY) {
            return Err(Error::VlanStacked { ethertype: outer });
        }
        let inner = self.payload_ethertype();
        if self.is_tagged() && is_tag(inner) {
            return Err(Error::VlanStacked { ethertype: inner });
        }
        Ok(())
    }

    /// Length of the header, tag included.
    #[inline]
    pub fn header_len(&self) -> usize {
        if self.is_tagged() {
            TAGGED_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// The payload: everything after the header, Ethernet padding included.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, addr: MacAddr) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the outer ethertype. Setting or clearing a tag type moves the payload; run
    /// [`Frame::check_len`] again before reading.
    pub fn set_ethertype(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::ETHERTYPE], value);
    }

    /// Writes the tag's control information (the outer ethertype must announce a tag).
    pub fn set_vlan_tag(&mut self, tag: VlanTag) {
        write_u16(&mut self.buffer.as_mut()[field::TAG_CONTROL], tag.tci());
    }

    /// Writes the payload's ethertype after the tag (the outer ethertype must announce a tag).
    pub fn set_tag_ethertype(&mut self, value: u16) {
        write_u16(&mut self.buffer.as_mut()[field::TAG_ETHERTYPE], value);
    }

    /// The payload, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

impl<T: AsRef<[u8]>> fmt::Display for Frame<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.check_len().and_then(|()| EthernetRepr::parse(self)) {
            Ok(repr) => write!(f, "{repr}"),
            Err(err) => write!(f, "Ethernet ({err})"),
        }
    }
}

/// The meaning of an Ethernet II header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EthernetRepr {
    /// Source address.
    pub src_addr: MacAddr,
    /// Destination address.
    pub dst_addr: MacAddr,
    /// The 802.1Q tag, if any.
    pub vlan: Option<VlanTag>,
    /// The payload's ethertype.
    pub ethertype: u16,
}

impl EthernetRepr {
    /// Parses a checked frame, refusing stacked tags.
    pub fn parse<T: AsRef<[u8]>>(frame: &Frame<T>) -> Result<EthernetRepr> {
        frame.check_single_tag()?;
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            vlan: frame.vlan_tag(),
            ethertype: frame.payload_ethertype(),
        })
    }

    /// Length of the header this emits.
    pub fn buffer_len(&self) -> usize {
        if self.vlan.is_some() {
            TAGGED_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }

    /// Writes the header (and tag) into a frame at least [`EthernetRepr::buffer_len`] long.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, frame: &mut Frame<T>) {
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        match self.vlan {
            Some(tag) => {
                frame.set_ethertype(ethertype::VLAN);
                frame.set_vlan_tag(tag);
                frame.set_tag_ethertype(self.ethertype);
            }
            None => frame.set_ethertype(self.ethertype),
        }
    }
}

/// tcpdump's name for an ethertype.
fn ethertype_name(value: u16) -> &'static str {
    match value {
        ethertype::IPV4 => "IPv4",
        ethertype::ARP => "ARP",
        ethertype::VLAN => "802.1Q",
        ethertype::IPV6 => "IPv6",
        ethertype::QINQ => "802.1Q-QinQ",
        _ => "Unknown",
    }
}

impl fmt::Display for EthernetRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} > {}", self.src_addr, self.dst_addr)?;
        if let Some(tag) = self.vlan {
            write!(
                f,
                ", ethertype 802.1Q (0x8100), vlan {}, p {}",
                tag.vid, tag.pcp
            )?;
        }
        write!(
            f,
            ", ethertype {} ({:#06x})",
            ethertype_name(self.ethertype),
            self.ethertype
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::marked;
    use proptest::prelude::*;

    /// The start of a captured ICMP echo request (Linux, veth): the Ethernet header and the first payload
    /// bytes.
    static UNTAGGED: [u8; 16] = [
        0x7e, 0x7d, 0x87, 0xd2, 0x7f, 0x78, // destination 7e:7d:87:d2:7f:78
        0xba, 0x7f, 0xa3, 0x06, 0xf2, 0xf9, // source ba:7f:a3:06:f2:f9
        0x08, 0x00, // ethertype IPv4
        0x45, 0x00, // payload: IPv4 version and IHL, DSCP
    ];

    /// The same frame in VLAN 100 with priority 5 and DEI set.
    static TAGGED: [u8; 20] = [
        0x7e, 0x7d, 0x87, 0xd2, 0x7f, 0x78, // destination
        0xba, 0x7f, 0xa3, 0x06, 0xf2, 0xf9, // source
        0x81, 0x00, // ethertype 802.1Q
        0xb0, 0x64, // PCP 5, DEI 1, VID 100
        0x08, 0x00, // payload ethertype IPv4
        0x45, 0x00, // payload
    ];

    fn repr(vlan: Option<VlanTag>) -> EthernetRepr {
        EthernetRepr {
            src_addr: MacAddr([0xba, 0x7f, 0xa3, 0x06, 0xf2, 0xf9]),
            dst_addr: MacAddr([0x7e, 0x7d, 0x87, 0xd2, 0x7f, 0x78]),
            vlan,
            ethertype: ethertype::IPV4,
        }
    }

    const TAG: VlanTag = VlanTag {
        pcp: 5,
        dei: true,
        vid: 100,
    };

    #[test]
    fn deconstructs_an_untagged_frame() {
        let frame = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert_eq!(frame.dst_addr(), repr(None).dst_addr);
        assert_eq!(frame.src_addr(), repr(None).src_addr);
        assert_eq!(frame.ethertype(), ethertype::IPV4);
        assert_eq!(frame.vlan_tag(), None);
        assert_eq!(frame.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn deconstructs_a_tagged_frame() {
        let frame = Frame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(frame.ethertype(), ethertype::VLAN);
        assert_eq!(frame.vlan_tag(), Some(TAG));
        assert_eq!(frame.payload_ethertype(), ethertype::IPV4);
        assert_eq!(frame.header_len(), TAGGED_HEADER_LEN);
        assert_eq!(frame.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn constructs_both_frames_over_marked_bytes() {
        for (golden, vlan) in [(&UNTAGGED[..], None), (&TAGGED[..], Some(TAG))] {
            let mut bytes = marked(golden.len());
            let mut frame = Frame::new_unchecked(&mut bytes);
            frame.set_dst_addr(repr(vlan).dst_addr);
            frame.set_src_addr(repr(vlan).src_addr);
            if let Some(tag) = vlan {
                frame.set_ethertype(ethertype::VLAN);
                frame.set_vlan_tag(tag);
                frame.set_tag_ethertype(ethertype::IPV4);
            } else {
                frame.set_ethertype(ethertype::IPV4);
            }
            frame.payload_mut().copy_from_slice(&[0x45, 0x00]);
            assert_eq!(bytes, golden);
        }
    }

    #[test]
    fn parses_and_emits_both_frames() {
        for (golden, vlan) in [(&UNTAGGED[..], None), (&TAGGED[..], Some(TAG))] {
            let frame = Frame::new_checked(golden).unwrap();
            assert_eq!(EthernetRepr::parse(&frame), Ok(repr(vlan)));
            let mut bytes = marked(golden.len());
            let mut frame = Frame::new_unchecked(&mut bytes);
            repr(vlan).emit(&mut frame);
            frame.payload_mut().copy_from_slice(&[0x45, 0x00]);
            assert_eq!(bytes, golden);
        }
    }

    #[test]
    fn a_short_header_or_missing_tag_is_truncated() {
        assert_eq!(
            Frame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            truncated(Header::Ethernet, 14, 13)
        );
        assert_eq!(
            Frame::new_checked(&TAGGED[..17]).unwrap_err(),
            truncated(Header::Vlan, 18, 17)
        );
    }

    #[test]
    fn stacked_tags_are_refused() {
        let mut inner_tag = TAGGED;
        inner_tag[16..18].copy_from_slice(&ethertype::VLAN.to_be_bytes());
        let frame = Frame::new_checked(&inner_tag[..]).unwrap();
        assert_eq!(
            EthernetRepr::parse(&frame),
            Err(Error::VlanStacked { ethertype: 0x8100 })
        );
        let mut s_tag = TAGGED;
        s_tag[12..14].copy_from_slice(&ethertype::QINQ.to_be_bytes());
        let frame = Frame::new_checked(&s_tag[..]).unwrap();
        assert_eq!(
            EthernetRepr::parse(&frame),
            Err(Error::VlanStacked { ethertype: 0x88a8 })
        );
    }

    #[test]
    fn displays_like_tcpdump_with_e() {
        assert_eq!(
            repr(Some(TAG)).to_string(),
            "ba:7f:a3:06:f2:f9 > 7e:7d:87:d2:7f:78, ethertype 802.1Q (0x8100), vlan 100, p 5, \
             ethertype IPv4 (0x0800)"
        );
    }

    #[test]
    fn ipv6_multicast_maps_to_33_33_and_the_low_octets() {
        let mac = ipv6_multicast_mac("ff02::1:ff00:2".parse().unwrap());
        assert_eq!(mac, MacAddr([0x33, 0x33, 0xff, 0x00, 0x00, 0x02]));
        assert!(is_group(&mac) && is_group(&BROADCAST));
        assert!(!is_group(&repr(None).src_addr));
    }

    proptest! {
        #[test]
        fn emitted_headers_parse_back(
            src: [u8; 6], dst: [u8; 6], tci: Option<u16>, ethertype in 0x0600u16..0x8100,
        ) {
            let repr = EthernetRepr {
                src_addr: MacAddr(src),
                dst_addr: MacAddr(dst),
                vlan: tci.map(VlanTag::from_tci),
                ethertype,
            };
            let mut bytes = vec![0u8; repr.buffer_len()];
            repr.emit(&mut Frame::new_unchecked(&mut bytes));
            let frame = Frame::new_checked(&bytes).unwrap();
            prop_assert_eq!(EthernetRepr::parse(&frame), Ok(repr));
        }
    }
}
