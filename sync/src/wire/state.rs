//! The full state record (`struct pfsync_state`, 264 bytes, pfsync spec sections 4.2 and 4.3) that INS, UPD
//! and DEL carry, with its two 40-byte state keys. What a receiver does with one (import, merge, delete) is
//! the engine's business; which values it refuses is [`StateRepr::validate_insert`] and
//! [`StateRepr::validate_update`].

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::upd_c::check_updates;
use super::{Action, Error, InterfaceName, PeerRepr, Result, StatePeer, fixed_view, view_fields};
use crate::identity::{AddressFamily, CreatorId, StateId};

mod field {
    use std::ops::Range;

    // struct pfsync_state_key
    pub const KEY_ADDR0: Range<usize> = 0..16;
    pub const KEY_ADDR1: Range<usize> = 16..32;
    pub const KEY_PORT0: Range<usize> = 32..34;
    pub const KEY_PORT1: Range<usize> = 34..36;
    pub const KEY_RDOMAIN: Range<usize> = 36..38;
    pub const KEY_AF: usize = 38;
    pub const KEY_PAD: usize = 39;

    // struct pfsync_state
    pub const ID: Range<usize> = 0..8;
    pub const IFNAME: Range<usize> = 8..24;
    pub const KEY_WIRE: Range<usize> = 24..64;
    pub const KEY_STACK: Range<usize> = 64..104;
    pub const SRC: Range<usize> = 104..136;
    pub const DST: Range<usize> = 136..168;
    pub const RT_ADDR: Range<usize> = 168..184;
    pub const RULE: Range<usize> = 184..188;
    pub const ANCHOR: Range<usize> = 188..192;
    pub const NAT_RULE: Range<usize> = 192..196;
    pub const CREATION: Range<usize> = 196..200;
    pub const EXPIRE: Range<usize> = 200..204;
    // Each counter is two big-endian u32 words, high then low: the same bytes as one big-endian u64.
    pub const PACKETS0: Range<usize> = 204..212;
    pub const PACKETS1: Range<usize> = 212..220;
    pub const BYTES0: Range<usize> = 220..228;
    pub const BYTES1: Range<usize> = 228..236;
    pub const CREATORID: Range<usize> = 236..240;
    pub const RTABLEID0: Range<usize> = 240..244;
    pub const RTABLEID1: Range<usize> = 244..248;
    pub const MAX_MSS: Range<usize> = 248..250;
    pub const AF: usize = 250;
    pub const PROTO: usize = 251;
    pub const DIRECTION: usize = 252;
    pub const LOG: usize = 253;
    pub const RT: usize = 254;
    pub const TIMEOUT: usize = 255;
    pub const SYNC_FLAGS: usize = 256;
    pub const UPDATES: usize = 257;
    pub const MIN_TTL: usize = 258;
    pub const SET_TOS: usize = 259;
    pub const STATE_FLAGS: Range<usize> = 260..262;
    pub const SET_PRIO0: usize = 262;
    pub const SET_PRIO1: usize = 263;
}

/// Size of a state key.
pub const KEY_LEN: usize = field::KEY_PAD + 1;
/// Size of the message.
pub const MESSAGE_LEN: usize = field::SET_PRIO1 + 1;

/// pf's `PF_OUT`: OpenBSD's insert refuses a larger direction.
const DIRECTION_MAX: u8 = 2;

fixed_view!(
    /// A view of a state key.
    StateKey,
    KEY_LEN
);

view_fields!(StateKey {
    /// First endpoint's address (`pf_addr`: IPv4 in the first 4 bytes).
    addr0, set_addr0: [u8; 16] = field::KEY_ADDR0;
    /// Second endpoint's address.
    addr1, set_addr1: [u8; 16] = field::KEY_ADDR1;
    /// First endpoint's port (ICMP: the id).
    port0, set_port0: u16 = field::KEY_PORT0;
    /// Second endpoint's port.
    port1, set_port1: u16 = field::KEY_PORT1;
    /// Routing domain.
    rdomain, set_rdomain: u16 = field::KEY_RDOMAIN;
    /// Address family byte (2, 24, or 0 from old senders).
    af, set_af: u8 = field::KEY_AF;
});

impl<T: AsRef<[u8]> + AsMut<[u8]>> StateKey<T> {
    /// Zeroes the padding.
    pub fn clear_padding(&mut self) {
        self.buffer.as_mut()[field::KEY_PAD] = 0;
    }
}

fixed_view!(
    /// A view of a full state (INS, UPD, DEL).
    StateMessage,
    MESSAGE_LEN
);

view_fields!(StateMessage {
    /// The state id.
    id, set_id: u64 = field::ID;
    /// The interface the state is bound to (`all` for floating states).
    ifname, set_ifname: [u8; 16] = field::IFNAME;
    /// Route-to next hop.
    rt_addr, set_rt_addr: [u8; 16] = field::RT_ADDR;
    /// Rule number, `u32::MAX` for none.
    rule, set_rule: u32 = field::RULE;
    /// Anchor number, `u32::MAX` for none.
    anchor, set_anchor: u32 = field::ANCHOR;
    /// NAT rule number, always `u32::MAX` now.
    nat_rule, set_nat_rule: u32 = field::NAT_RULE;
    /// Age in seconds.
    creation, set_creation: u32 = field::CREATION;
    /// Seconds until expiry.
    expire, set_expire: u32 = field::EXPIRE;
    /// Packets in the state's direction.
    packets0, set_packets0: u64 = field::PACKETS0;
    /// Packets in the reverse direction.
    packets1, set_packets1: u64 = field::PACKETS1;
    /// Bytes in the state's direction.
    bytes0, set_bytes0: u64 = field::BYTES0;
    /// Bytes in the reverse direction.
    bytes1, set_bytes1: u64 = field::BYTES1;
    /// The creator's host id.
    creatorid, set_creatorid: u32 = field::CREATORID;
    /// Routing table of the wire key, -1 unset.
    rtableid0, set_rtableid0: i32 = field::RTABLEID0;
    /// Routing table of the stack key, -1 unset.
    rtableid1, set_rtableid1: i32 = field::RTABLEID1;
    /// MSS clamp.
    max_mss, set_max_mss: u16 = field::MAX_MSS;
    /// Address family of the wire key.
    af, set_af: u8 = field::AF;
    /// IP protocol.
    proto, set_proto: u8 = field::PROTO;
    /// 1 in, 2 out.
    direction, set_direction: u8 = field::DIRECTION;
    /// Log flags.
    log, set_log: u8 = field::LOG;
    /// 0 none, 1 route-to, 2 dup-to, 3 reply-to.
    rt, set_rt: u8 = field::RT;
    /// Timeout class (`PFTM_*`).
    timeout, set_timeout: u8 = field::TIMEOUT;
    /// 0x04 had a source node, 0x08 a NAT source node.
    sync_flags, set_sync_flags: u8 = field::SYNC_FLAGS;
    /// Unused, 0.
    updates, set_updates: u8 = field::UPDATES;
    /// Minimum TTL scrub enforces.
    min_ttl, set_min_ttl: u8 = field::MIN_TTL;
    /// TOS to set.
    set_tos, set_set_tos: u8 = field::SET_TOS;
    /// pf's state flags (`PFSTATE_*`), a big-endian u16.
    state_flags, set_state_flags: u16 = field::STATE_FLAGS;
    /// Priority queue for ordinary packets.
    set_prio0, set_set_prio0: u8 = field::SET_PRIO0;
    /// Priority queue for low-delay packets.
    set_prio1, set_set_prio1: u8 = field::SET_PRIO1;
});

impl<T: AsRef<[u8]>> StateMessage<T> {
    /// The wire key (index 0) or the stack key (index 1); any other index is the stack key.
    pub fn key(&self, index: usize) -> StateKey<&[u8]> {
        let range = if index == 0 {
            field::KEY_WIRE
        } else {
            field::KEY_STACK
        };
        StateKey::new_unchecked(&self.buffer.as_ref()[range])
    }

    /// The side that created the state.
    pub fn src(&self) -> StatePeer<&[u8]> {
        StatePeer::new_unchecked(&self.buffer.as_ref()[field::SRC])
    }

    /// The other side.
    pub fn dst(&self) -> StatePeer<&[u8]> {
        StatePeer::new_unchecked(&self.buffer.as_ref()[field::DST])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> StateMessage<T> {
    /// The wire key (index 0) or the stack key (index 1), writable.
    pub fn key_mut(&mut self, index: usize) -> StateKey<&mut [u8]> {
        let range = if index == 0 {
            field::KEY_WIRE
        } else {
            field::KEY_STACK
        };
        StateKey::new_unchecked(&mut self.buffer.as_mut()[range])
    }

    /// The side that created the state, writable.
    pub fn src_mut(&mut self) -> StatePeer<&mut [u8]> {
        StatePeer::new_unchecked(&mut self.buffer.as_mut()[field::SRC])
    }

    /// The other side, writable.
    pub fn dst_mut(&mut self) -> StatePeer<&mut [u8]> {
        StatePeer::new_unchecked(&mut self.buffer.as_mut()[field::DST])
    }
}

/// A state key: the two endpoints as pf keys them. Index 0 and 1 are pf's "wire key" orientation, not the
/// source and destination of any packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StateKeyRepr {
    /// Addresses, raw `pf_addr` bytes (IPv4 in the first four).
    pub addr: [[u8; 16]; 2],
    /// Ports, numeric (network order on the wire).
    pub port: [u16; 2],
    /// Routing domain.
    pub rdomain: u16,
    /// Family; `None` when an old sender left it 0, in which case the state's family applies.
    pub af: Option<AddressFamily>,
}

impl StateKeyRepr {
    /// Reads a key; a family byte other than 0, 2 or 24 is an error naming `key_field`.
    fn parse<T: AsRef<[u8]>>(key: &StateKey<T>, key_field: &'static str) -> Result<StateKeyRepr> {
        let af = match key.af() {
            0 => None,
            value => Some(
                AddressFamily::from_wire(value).ok_or(Error::BadAddressFamily {
                    action: Action::Ins,
                    field: key_field,
                    value,
                })?,
            ),
        };
        Ok(StateKeyRepr {
            addr: [key.addr0(), key.addr1()],
            port: [key.port0(), key.port1()],
            rdomain: key.rdomain(),
            af,
        })
    }

    /// Writes a key, padding zeroed.
    fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, key: &mut StateKey<T>) {
        key.set_addr0(self.addr[0]);
        key.set_addr1(self.addr[1]);
        key.set_port0(self.port[0]);
        key.set_port1(self.port[1]);
        key.set_rdomain(self.rdomain);
        key.set_af(self.af.map_or(0, AddressFamily::to_wire));
        key.clear_padding();
    }

    /// Writes `endpoint` (0 or 1) as `address:port` in `af` (this key's own family if it has one).
    fn fmt_endpoint(
        &self,
        f: &mut fmt::Formatter<'_>,
        endpoint: usize,
        af: AddressFamily,
    ) -> fmt::Result {
        let (addr, port) = if endpoint == 0 {
            (&self.addr[0], self.port[0])
        } else {
            (&self.addr[1], self.port[1])
        };
        match self.af.unwrap_or(af) {
            AddressFamily::Inet => {
                let v4 = Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]);
                write!(f, "{v4}:{port}")
            }
            AddressFamily::Inet6 => write!(f, "[{}]:{port}", Ipv6Addr::from(*addr)),
        }
    }
}

/// A full state's meaning: every field of `struct pfsync_state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StateRepr {
    /// The state id.
    pub id: StateId,
    /// The creator.
    pub creator: CreatorId,
    /// The bound interface.
    pub ifname: InterfaceName,
    /// Wire key (index 0) and stack key (index 1); they differ under NAT, rdr, af-to or rdomain changes.
    pub key: [StateKeyRepr; 2],
    /// The side that created the state.
    pub src: PeerRepr,
    /// The other side.
    pub dst: PeerRepr,
    /// Route-to next hop, raw `pf_addr`.
    pub rt_addr: [u8; 16],
    /// Rule number, `u32::MAX` for none.
    pub rule: u32,
    /// Anchor number, `u32::MAX` for none.
    pub anchor: u32,
    /// NAT rule number, `u32::MAX` (compatibility field).
    pub nat_rule: u32,
    /// Age in seconds.
    pub creation: u32,
    /// Seconds left until expiry.
    pub expire: u32,
    /// Packets in the state's direction and the reverse.
    pub packets: [u64; 2],
    /// Bytes in the state's direction and the reverse.
    pub bytes: [u64; 2],
    /// Routing tables per key, -1 unset.
    pub rtableid: [i32; 2],
    /// MSS clamp.
    pub max_mss: u16,
    /// Family of the wire key.
    pub af: AddressFamily,
    /// IP protocol.
    pub proto: u8,
    /// 1 in, 2 out.
    pub direction: u8,
    /// Log flags.
    pub log: u8,
    /// Route type.
    pub rt: u8,
    /// Timeout class.
    pub timeout: u8,
    /// Source-node flags.
    pub sync_flags: u8,
    /// `updates`, 0.
    pub updates: u8,
    /// Minimum TTL.
    pub min_ttl: u8,
    /// TOS to set.
    pub set_tos: u8,
    /// pf's state flags; `PFSTATE_ACK` (0x0010) asks receivers of an INS for an INS_ACK.
    pub state_flags: u16,
    /// Priority queues.
    pub set_prio: [u8; 2],
}

impl StateRepr {
    /// Reads a full state. A family byte other than 2 or 24 (0 allowed in the keys) is an error; every
    /// other value is representable and left to the validate functions. Errors name INS as the action;
    /// `Message::parse` names the section's.
    pub fn parse<T: AsRef<[u8]>>(message: &StateMessage<T>) -> Result<StateRepr> {
        let af_value = message.af();
        let af = AddressFamily::from_wire(af_value).ok_or(Error::BadAddressFamily {
            action: Action::Ins,
            field: "af",
            value: af_value,
        })?;
        Ok(StateRepr {
            id: StateId(message.id()),
            creator: CreatorId(message.creatorid()),
            ifname: InterfaceName(message.ifname()),
            key: [
                StateKeyRepr::parse(&message.key(0), "key[0].af")?,
                StateKeyRepr::parse(&message.key(1), "key[1].af")?,
            ],
            src: PeerRepr::parse(&message.src())?,
            dst: PeerRepr::parse(&message.dst())?,
            rt_addr: message.rt_addr(),
            rule: message.rule(),
            anchor: message.anchor(),
            nat_rule: message.nat_rule(),
            creation: message.creation(),
            expire: message.expire(),
            packets: [message.packets0(), message.packets1()],
            bytes: [message.bytes0(), message.bytes1()],
            rtableid: [message.rtableid0(), message.rtableid1()],
            max_mss: message.max_mss(),
            af,
            proto: message.proto(),
            direction: message.direction(),
            log: message.log(),
            rt: message.rt(),
            timeout: message.timeout(),
            sync_flags: message.sync_flags(),
            updates: message.updates(),
            min_ttl: message.min_ttl(),
            set_tos: message.set_tos(),
            state_flags: message.state_flags(),
            set_prio: [message.set_prio0(), message.set_prio1()],
        })
    }

    /// Bytes the message takes.
    pub const fn buffer_len(&self) -> usize {
        MESSAGE_LEN
    }

    /// Writes the message, padding zeroed.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, message: &mut StateMessage<T>) {
        message.set_id(self.id.0);
        message.set_ifname(self.ifname.0);
        self.key[0].emit(&mut message.key_mut(0));
        self.key[1].emit(&mut message.key_mut(1));
        self.src.emit(&mut message.src_mut());
        self.dst.emit(&mut message.dst_mut());
        message.set_rt_addr(self.rt_addr);
        message.set_rule(self.rule);
        message.set_anchor(self.anchor);
        message.set_nat_rule(self.nat_rule);
        message.set_creation(self.creation);
        message.set_expire(self.expire);
        message.set_packets0(self.packets[0]);
        message.set_packets1(self.packets[1]);
        message.set_bytes0(self.bytes[0]);
        message.set_bytes1(self.bytes[1]);
        message.set_creatorid(self.creator.0);
        message.set_rtableid0(self.rtableid[0]);
        message.set_rtableid1(self.rtableid[1]);
        message.set_max_mss(self.max_mss);
        message.set_af(self.af.to_wire());
        message.set_proto(self.proto);
        message.set_direction(self.direction);
        message.set_log(self.log);
        message.set_rt(self.rt);
        message.set_timeout(self.timeout);
        message.set_sync_flags(self.sync_flags);
        message.set_updates(self.updates);
        message.set_min_ttl(self.min_ttl);
        message.set_set_tos(self.set_tos);
        message.set_state_flags(self.state_flags);
        message.set_set_prio0(self.set_prio[0]);
        message.set_set_prio1(self.set_prio[1]);
    }

    /// OpenBSD's checks on an INS (`pfsync_in_ins`): timeout below `PFTM_MAX`, peer states at most
    /// `PF_TCPS_PROXY_DST`, direction at most `PF_OUT`, and key families either both unset or both set. (A
    /// family byte other than 2 or 24 never gets this far: parsing refuses it.)
    pub fn validate_insert(&self) -> Result<()> {
        check_updates(Action::Ins, self.timeout, &self.src, &self.dst)?;
        if self.direction > DIRECTION_MAX {
            return Err(Error::BadValue {
                action: Action::Ins,
                field: "direction",
                value: u32::from(self.direction),
            });
        }
        if self.key[0].af.is_some() != self.key[1].af.is_some() {
            // One key's family unset and the other's set: OpenBSD requires both valid once either is.
            return Err(Error::BadValue {
                action: Action::Ins,
                field: "key[].af",
                value: 0,
            });
        }
        Ok(())
    }

    /// OpenBSD's checks on a full UPD (`pfsync_in_upd`): timeout and peer states only.
    pub fn validate_update(&self) -> Result<()> {
        check_updates(Action::Upd, self.timeout, &self.src, &self.dst)
    }
}

impl fmt::Display for StateRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [wire, stack] = &self.key;
        write!(f, "proto {} {} ", self.proto, self.af)?;
        wire.fmt_endpoint(f, 0, self.af)?;
        f.write_str(" <-> ")?;
        wire.fmt_endpoint(f, 1, self.af)?;
        if wire != stack {
            f.write_str(" (stack ")?;
            stack.fmt_endpoint(f, 0, self.af)?;
            f.write_str(" <-> ")?;
            stack.fmt_endpoint(f, 1, self.af)?;
            f.write_str(")")?;
        }
        let direction = match self.direction {
            1 => "in",
            2 => "out",
            _ => "?",
        };
        write!(
            f,
            " id {} creator {} if {} dir {direction} timeout {} expire {}s age {}s flags {:#06x} \
             pkts {}:{} bytes {}:{} src {} dst {}",
            self.id,
            self.creator,
            self.ifname,
            self.timeout,
            self.expire,
            self.creation,
            self.state_flags,
            self.packets[0],
            self.packets[1],
            self.bytes[0],
            self.bytes[1],
            self.src,
            self.dst
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::state::TcpPeer;
    use crate::wire::ScrubRepr;

    /// An OpenBSD INS of an outbound TCP state NATed from 192.168.1.10:51000 to 203.0.113.5:40001, talking
    /// to 198.51.100.7:443; each field at its spec 4.3 offset.
    #[rustfmt::skip]
    pub(crate) static GOLDEN: [u8; 264] = [
        0x5f, 0x3e, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2a, // @0 id 0x5f3e00010000002a
        b'e', b'm', b'1', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // @8 ifname "em1"
        // key[0], the wire key (after NAT)
        203, 0, 113, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // @24 key[0].addr[0] 203.0.113.5
        198, 51, 100, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // @40 key[0].addr[1] 198.51.100.7
        0x9c, 0x41, // @56 key[0].port[0] 40001
        0x01, 0xbb, // @58 key[0].port[1] 443
        0x00, 0x00, // @60 key[0].rdomain 0
        0x02, // @62 key[0].af AF_INET
        0x00, // @63 key[0].pad
        // key[1], the stack key (before NAT)
        192, 168, 1, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // @64 key[1].addr[0] 192.168.1.10
        198, 51, 100, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // @80 key[1].addr[1] 198.51.100.7
        0xc7, 0x38, // @96 key[1].port[0] 51000
        0x01, 0xbb, // @98 key[1].port[1] 443
        0x00, 0x00, // @100 key[1].rdomain 0
        0x02, // @102 key[1].af AF_INET
        0x00, // @103 key[1].pad
        0x00, 0x00, // @104 src.scrub.pfss_flags 0
        0x00, // @106 src.scrub.pfss_ttl 0
        0x00, // @107 src.scrub.scrub_flag: none
        0x00, 0x00, 0x00, 0x00, // @108 src.scrub.pfss_ts_mod 0
        0x00, 0x00, 0x27, 0x10, // @112 src.seqlo 10000
        0x00, 0x01, 0x2e, 0xe0, // @116 src.seqhi 77536
        0x00, 0x00, 0x00, 0x00, // @120 src.seqdiff 0
        0xfa, 0xf0, // @124 src.max_win 64240
        0x05, 0xb4, // @126 src.mss 1460
        0x04, // @128 src.state ESTABLISHED
        0x87, // @129 src.wscale: seen, shift 7
        0, 0, 0, 0, 0, 0, // @130 src.pad
        0x00, 0x00, // @136 dst.scrub.pfss_flags 0
        0x00, // @138 dst.scrub.pfss_ttl 0
        0x00, // @139 dst.scrub.scrub_flag: none
        0x00, 0x00, 0x00, 0x00, // @140 dst.scrub.pfss_ts_mod 0
        0x00, 0x01, 0x2e, 0xe0, // @144 dst.seqlo 77536
        0x00, 0x00, 0xf8, 0x20, // @148 dst.seqhi 63520
        0x00, 0x00, 0x00, 0x00, // @152 dst.seqdiff 0
        0xfe, 0x88, // @156 dst.max_win 65160
        0x05, 0x78, // @158 dst.mss 1400
        0x04, // @160 dst.state ESTABLISHED
        0x89, // @161 dst.wscale: seen, shift 9
        0, 0, 0, 0, 0, 0, // @162 dst.pad
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // @168 rt_addr: none
        0x00, 0x00, 0x00, 0x03, // @184 rule 3
        0xff, 0xff, 0xff, 0xff, // @188 anchor none
        0xff, 0xff, 0xff, 0xff, // @192 nat_rule none
        0x00, 0x00, 0x00, 0x0c, // @196 creation: 12 s old
        0x00, 0x01, 0x51, 0x7c, // @200 expire: 86396 s left
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, // @204 packets[0] 9 (hi word, lo word)
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // @212 packets[1] 7
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0xdc, // @220 bytes[0] 1500
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, // @228 bytes[1] 2^32 + 2
        0xc0, 0xff, 0xee, 0x01, // @236 creatorid 0xc0ffee01
        0xff, 0xff, 0xff, 0xff, // @240 rtableid[0] -1
        0x00, 0x00, 0x00, 0x05, // @244 rtableid[1] 5
        0x05, 0xb4, // @248 max_mss 1460
        0x02, // @250 af AF_INET
        0x06, // @251 proto TCP
        0x02, // @252 direction out
        0x01, // @253 log
        0x00, // @254 rt none
        0x02, // @255 timeout TCP_ESTABLISHED
        0x04, // @256 sync_flags: had a source node
        0x00, // @257 updates
        0x40, // @258 min_ttl 64
        0x10, // @259 set_tos 0x10
        0x00, 0x10, // @260 state_flags PFSTATE_ACK
        0x01, // @262 set_prio[0] 1
        0x02, // @263 set_prio[1] 2
    ];

    fn v4(a: u8, b: u8, c: u8, d: u8) -> [u8; 16] {
        let mut raw = [0u8; 16];
        raw[..4].copy_from_slice(&[a, b, c, d]);
        raw
    }

    pub(crate) fn golden_repr() -> StateRepr {
        let peer = |seqlo, seqhi, max_win, mss, wscale| PeerRepr {
            tcp: TcpPeer {
                seqlo,
                seqhi,
                seqdiff: 0,
                max_win,
                mss,
                state: 4,
                wscale,
            },
            scrub: ScrubRepr::default(),
        };
        StateRepr {
            id: StateId(0x5f3e_0001_0000_002a),
            creator: CreatorId(0xc0ff_ee01),
            ifname: InterfaceName::new("em1"),
            key: [
                StateKeyRepr {
                    addr: [v4(203, 0, 113, 5), v4(198, 51, 100, 7)],
                    port: [40001, 443],
                    rdomain: 0,
                    af: Some(AddressFamily::Inet),
                },
                StateKeyRepr {
                    addr: [v4(192, 168, 1, 10), v4(198, 51, 100, 7)],
                    port: [51000, 443],
                    rdomain: 0,
                    af: Some(AddressFamily::Inet),
                },
            ],
            src: peer(10000, 77536, 64240, 1460, 0x87),
            dst: peer(77536, 63520, 65160, 1400, 0x89),
            rt_addr: [0; 16],
            rule: 3,
            anchor: u32::MAX,
            nat_rule: u32::MAX,
            creation: 12,
            expire: 86396,
            packets: [9, 7],
            bytes: [1500, (1 << 32) + 2],
            rtableid: [-1, 5],
            max_mss: 1460,
            af: AddressFamily::Inet,
            proto: 6,
            direction: 2,
            log: 1,
            rt: 0,
            timeout: 2,
            sync_flags: 4,
            updates: 0,
            min_ttl: 64,
            set_tos: 0x10,
            state_flags: 0x0010,
            set_prio: [1, 2],
        }
    }

    #[test]
    fn deconstruct() {
        let message = StateMessage::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(message.id(), 0x5f3e_0001_0000_002a);
        assert_eq!(&message.ifname()[..4], b"em1\0");
        assert_eq!(message.key(0).addr0(), v4(203, 0, 113, 5));
        assert_eq!(message.key(0).addr1(), v4(198, 51, 100, 7));
        assert_eq!(message.key(0).port0(), 40001);
        assert_eq!(message.key(0).port1(), 443);
        assert_eq!(message.key(0).rdomain(), 0);
        assert_eq!(message.key(0).af(), 2);
        assert_eq!(message.key(1).addr0(), v4(192, 168, 1, 10));
        assert_eq!(message.key(1).port0(), 51000);
        assert_eq!(message.src().seqlo(), 10000);
        assert_eq!(message.src().wscale(), 0x87);
        assert_eq!(message.dst().seqhi(), 63520);
        assert_eq!(message.dst().wscale(), 0x89);
        assert_eq!(message.rt_addr(), [0; 16]);
        assert_eq!(message.rule(), 3);
        assert_eq!(message.anchor(), u32::MAX);
        assert_eq!(message.nat_rule(), u32::MAX);
        assert_eq!(message.creation(), 12);
        assert_eq!(message.expire(), 86396);
        assert_eq!(message.packets0(), 9);
        assert_eq!(message.packets1(), 7);
        assert_eq!(message.bytes0(), 1500);
        assert_eq!(message.bytes1(), (1 << 32) + 2);
        assert_eq!(message.creatorid(), 0xc0ff_ee01);
        assert_eq!(message.rtableid0(), -1);
        assert_eq!(message.rtableid1(), 5);
        assert_eq!(message.max_mss(), 1460);
        assert_eq!(message.af(), 2);
        assert_eq!(message.proto(), 6);
        assert_eq!(message.direction(), 2);
        assert_eq!(message.log(), 1);
        assert_eq!(message.rt(), 0);
        assert_eq!(message.timeout(), 2);
        assert_eq!(message.sync_flags(), 4);
        assert_eq!(message.updates(), 0);
        assert_eq!(message.min_ttl(), 64);
        assert_eq!(message.set_tos(), 0x10);
        assert_eq!(message.state_flags(), 0x0010);
        assert_eq!(message.set_prio0(), 1);
        assert_eq!(message.set_prio1(), 2);
    }

    #[test]
    fn construct() {
        let repr = golden_repr();
        let mut bytes = [0xa5u8; 264];
        let mut message = StateMessage::new_unchecked(&mut bytes[..]);
        message.set_id(0x5f3e_0001_0000_002a);
        message.set_ifname(*b"em1\0\0\0\0\0\0\0\0\0\0\0\0\0");
        for (index, key) in repr.key.iter().enumerate() {
            let mut view = message.key_mut(index);
            view.set_addr0(key.addr[0]);
            view.set_addr1(key.addr[1]);
            view.set_port0(key.port[0]);
            view.set_port1(key.port[1]);
            view.set_rdomain(0);
            view.set_af(2);
            view.clear_padding();
        }
        repr.src.emit(&mut message.src_mut());
        repr.dst.emit(&mut message.dst_mut());
        message.set_rt_addr([0; 16]);
        message.set_rule(3);
        message.set_anchor(u32::MAX);
        message.set_nat_rule(u32::MAX);
        message.set_creation(12);
        message.set_expire(86396);
        message.set_packets0(9);
        message.set_packets1(7);
        message.set_bytes0(1500);
        message.set_bytes1((1 << 32) + 2);
        message.set_creatorid(0xc0ff_ee01);
        message.set_rtableid0(-1);
        message.set_rtableid1(5);
        message.set_max_mss(1460);
        message.set_af(2);
        message.set_proto(6);
        message.set_direction(2);
        message.set_log(1);
        message.set_rt(0);
        message.set_timeout(2);
        message.set_sync_flags(4);
        message.set_updates(0);
        message.set_min_ttl(64);
        message.set_set_tos(0x10);
        message.set_state_flags(0x0010);
        message.set_set_prio0(1);
        message.set_set_prio1(2);
        assert_eq!(bytes, GOLDEN);
    }

    #[test]
    fn parse_and_emit_round_trip() {
        let repr = StateRepr::parse(&StateMessage::new_checked(&GOLDEN[..]).unwrap()).unwrap();
        assert_eq!(repr, golden_repr());
        let mut bytes = [0xa5u8; 264];
        repr.emit(&mut StateMessage::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes, GOLDEN);
        let text = repr.to_string();
        assert!(
            text.starts_with(
                "proto 6 inet 203.0.113.5:40001 <-> 198.51.100.7:443 \
                 (stack 192.168.1.10:51000 <-> 198.51.100.7:443) id 5f3e00010000002a creator c0ffee01 \
                 if em1 dir out timeout 2"
            ),
            "{text}"
        );
    }

    #[test]
    fn inet6_keys_use_openbsd_family_24() {
        let mut repr = golden_repr();
        let addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets();
        repr.af = AddressFamily::Inet6;
        for key in &mut repr.key {
            key.af = Some(AddressFamily::Inet6);
            key.addr[0] = addr;
        }
        let mut bytes = [0u8; 264];
        repr.emit(&mut StateMessage::new_unchecked(&mut bytes[..]));
        assert_eq!(bytes[250], 24);
        assert_eq!(bytes[24 + 38], 24);
        assert_eq!(bytes[64 + 38], 24);
        let parsed = StateRepr::parse(&StateMessage::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(parsed, repr);
        assert!(parsed.to_string().contains("inet6 [2001:db8::1]:40001"));
    }

    #[test]
    fn unset_key_families_from_old_senders_parse_as_none() {
        let mut bytes = GOLDEN;
        bytes[24 + 38] = 0;
        bytes[64 + 38] = 0;
        let repr = StateRepr::parse(&StateMessage::new_checked(&bytes[..]).unwrap()).unwrap();
        assert_eq!(repr.key[0].af, None);
        assert_eq!(repr.validate_insert(), Ok(()));
        assert!(repr.to_string().contains("203.0.113.5:40001"));
    }

    #[test]
    fn foreign_family_numbers_are_refused() {
        // FreeBSD's AF_INET6 (28) in the state, then in a key.
        let mut bytes = GOLDEN;
        bytes[250] = 28;
        assert_eq!(
            StateRepr::parse(&StateMessage::new_checked(&bytes[..]).unwrap()),
            Err(Error::BadAddressFamily {
                action: Action::Ins,
                field: "af",
                value: 28
            })
        );
        let mut bytes = GOLDEN;
        bytes[64 + 38] = 10;
        assert!(matches!(
            StateRepr::parse(&StateMessage::new_checked(&bytes[..]).unwrap()),
            Err(Error::BadAddressFamily {
                field: "key[1].af",
                value: 10,
                ..
            })
        ));
    }

    #[test]
    fn insert_validation_follows_openbsd() {
        let good = golden_repr();
        assert_eq!(good.validate_insert(), Ok(()));
        assert_eq!(good.validate_update(), Ok(()));
        let mut r = good;
        r.direction = 3;
        assert!(matches!(
            r.validate_insert(),
            Err(Error::BadValue {
                field: "direction",
                value: 3,
                ..
            })
        ));
        // An update does not look at the direction.
        assert_eq!(r.validate_update(), Ok(()));
        let mut r = good;
        r.timeout = 22; // PFTM_UNLINKED, sent by bulk updates for dying states
        assert!(matches!(
            r.validate_insert(),
            Err(Error::BadValue {
                field: "timeout",
                ..
            })
        ));
        assert!(matches!(
            r.validate_update(),
            Err(Error::BadValue {
                action: Action::Upd,
                field: "timeout",
                ..
            })
        ));
        let mut r = good;
        r.src.tcp.state = 13;
        assert!(r.validate_insert().is_err());
        let mut r = good;
        r.key[1].af = None;
        assert!(matches!(
            r.validate_insert(),
            Err(Error::BadValue {
                field: "key[].af",
                ..
            })
        ));
    }

    #[test]
    fn impossible_len() {
        assert_eq!(
            StateMessage::new_checked(&GOLDEN[..263]),
            Err(Error::Truncated {
                needed: 264,
                available: 263
            })
        );
        assert_eq!(KEY_LEN, 40);
        assert_eq!(MESSAGE_LEN, 264);
    }
}
