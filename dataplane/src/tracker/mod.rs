//! Protocol trackers: pf's TCP window tracking ([`tcp`]) and the pseudo-states of UDP, ICMP echo and other
//! protocols, which only record whether each side has spoken (pf's `PFUDPS_*`/`PFOTHERS_*`).

pub mod tcp;

use tandem_sync::state::{TcpPeer, TimeoutClass, single_state};

pub use tcp::Side;

/// The protocol family of a state, for timeouts and tracking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tracking {
    /// pf's TCP window tracking.
    Tcp,
    /// UDP pseudo-state.
    Udp,
    /// ICMP or ICMPv6 echo (query and reply).
    IcmpEcho,
    /// Any other protocol: pseudo-state like UDP with the `other` timeouts.
    Other,
}

impl Tracking {
    /// The class of a state's first timeout.
    pub fn first_timeout(self) -> TimeoutClass {
        match self {
            Tracking::Tcp => TimeoutClass::TcpFirstPacket,
            Tracking::Udp => TimeoutClass::UdpFirstPacket,
            Tracking::IcmpEcho => TimeoutClass::IcmpFirstPacket,
            Tracking::Other => TimeoutClass::OtherFirstPacket,
        }
    }
}

/// The peers of a new pseudo-state: the creator has sent once, the other side nothing.
pub fn initial_pseudo_peers() -> [TcpPeer; 2] {
    [
        TcpPeer {
            state: single_state::SINGLE,
            ..TcpPeer::default()
        },
        TcpPeer {
            state: single_state::NO_TRAFFIC,
            ..TcpPeer::default()
        },
    ]
}

/// A packet from `from` on a pseudo-state: records who has spoken and returns the new timeout class
/// (pf's `pf_test_state` for UDP and other protocols; ICMP echo moves to the error/reply timeout once
/// answered).
pub fn track_pseudo(peers: &mut [TcpPeer; 2], from: Side, tracking: Tracking) -> TimeoutClass {
    let (src, dst) = (from.index(), from.other().index());
    if peers[src].state < single_state::SINGLE {
        peers[src].state = single_state::SINGLE;
    }
    if peers[dst].state == single_state::SINGLE {
        peers[dst].state = single_state::MULTIPLE;
    }
    let both =
        peers[src].state == single_state::MULTIPLE && peers[dst].state == single_state::MULTIPLE;
    match tracking {
        Tracking::IcmpEcho => {
            if from == Side::Responder {
                TimeoutClass::IcmpErrorReply
            } else {
                TimeoutClass::IcmpFirstPacket
            }
        }
        Tracking::Other if both => TimeoutClass::OtherMultiple,
        Tracking::Other => TimeoutClass::OtherSingle,
        _ if both => TimeoutClass::UdpMultiple,
        _ => TimeoutClass::UdpSingle,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_moves_from_single_to_multiple_once_both_sides_speak() {
        let mut peers = initial_pseudo_peers();
        assert_eq!(
            track_pseudo(&mut peers, Side::Initiator, Tracking::Udp),
            TimeoutClass::UdpSingle
        );
        assert_eq!(
            track_pseudo(&mut peers, Side::Responder, Tracking::Udp),
            TimeoutClass::UdpSingle
        );
        assert_eq!(peers[0].state, single_state::MULTIPLE);
        assert_eq!(
            track_pseudo(&mut peers, Side::Initiator, Tracking::Udp),
            TimeoutClass::UdpMultiple
        );
    }

    #[test]
    fn an_answered_echo_takes_the_reply_timeout() {
        let mut peers = initial_pseudo_peers();
        assert_eq!(
            track_pseudo(&mut peers, Side::Responder, Tracking::IcmpEcho),
            TimeoutClass::IcmpErrorReply
        );
    }

    #[test]
    fn other_protocols_use_their_own_timeouts() {
        let mut peers = initial_pseudo_peers();
        assert_eq!(
            track_pseudo(&mut peers, Side::Initiator, Tracking::Other),
            TimeoutClass::OtherSingle
        );
        track_pseudo(&mut peers, Side::Responder, Tracking::Other);
        assert_eq!(
            track_pseudo(&mut peers, Side::Initiator, Tracking::Other),
            TimeoutClass::OtherMultiple
        );
    }
}
