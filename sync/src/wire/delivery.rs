//! Tandem's acknowledged-delivery sections: a sequence number on the packets that carry states, and the
//! acknowledgements that answer them. Not part of pfsync: their action codes lie past `PFSYNC_ACT_MAX` and
//! each declares its message length and count, so a plain pfsync peer skips them as it skips any unknown
//! section (and the sequence section goes last in a packet, after everything such a peer can use). Layout
//! (docs/sync-delivery.md), every field a big-endian u32:
//!
//! ```text
//! SEQ  (0xf1, 4 words)  sender's host id | sender's epoch | sequence number | lowest number still expected
//! ACK  (0xf2, 3 words)  acknowledged sender's host id | its epoch | every number up to this one received
//! NACK (0xf3, 4 words)  acknowledged sender's host id | its epoch | first missing | last missing
//! EPOCH (0xf4, 3 words) sender's host id | sender's epoch | lowest number still expected
//! ```
//!
//! A packet that carries states to the group ends with a SEQ section; every other packet from a node
//! with acknowledged delivery on ends with an EPOCH section, so that a peer learns of a restart from
//! whatever it sends first.
//!
//! ```text
//! ```

use super::{HEADER_LEN, SUBHEADER_LEN};
use crate::identity::CreatorId;

/// The section code of a packet's sequence number.
pub const SEQ_ACTION: u8 = 0xf1;
/// The section code of cumulative acknowledgements.
pub const ACK_ACTION: u8 = 0xf2;
/// The section code of negative acknowledgements (ranges of missing numbers).
pub const NACK_ACTION: u8 = 0xf3;
/// The section code of an unnumbered packet's epoch.
pub const EPOCH_ACTION: u8 = 0xf4;

/// Bytes a sequence section adds to a packet.
pub const SEQ_SECTION_LEN: usize = SUBHEADER_LEN + 16;
/// Bytes an epoch section adds to a packet.
pub const EPOCH_SECTION_LEN: usize = SUBHEADER_LEN + 12;

/// One delivery message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// This packet is number `seq` of `sender`'s stream `epoch` (an epoch is one run of the sender: a new one
    /// means it restarted).
    Seq {
        /// The sender's host id.
        sender: CreatorId,
        /// The sender's epoch.
        epoch: u32,
        /// The packet's number.
        seq: u32,
        /// The lowest number the receiver still needs: every packet before it either arrived or had its
        /// states sent again in a later packet, so a gap below it is closed.
        low: u32,
    },
    /// Every packet of `sender`'s stream `epoch` up to `through` arrived.
    Ack {
        /// Whose stream.
        sender: CreatorId,
        /// Its epoch.
        epoch: u32,
        /// The last number of the unbroken run received.
        through: u32,
    },
    /// An unnumbered packet from `sender`, in its run `epoch`, which needs nothing below `low`.
    Epoch {
        /// The sender's host id.
        sender: CreatorId,
        /// The sender's epoch.
        epoch: u32,
        /// The lowest number the receiver still needs.
        low: u32,
    },
    /// Packets `first` to `last` of `sender`'s stream `epoch` did not arrive.
    Nack {
        /// Whose stream.
        sender: CreatorId,
        /// Its epoch.
        epoch: u32,
        /// The first missing number.
        first: u32,
        /// The last missing number.
        last: u32,
    },
}

/// Whether `code` is a delivery section's.
pub const fn is_delivery(code: u8) -> bool {
    matches!(code, SEQ_ACTION | ACK_ACTION | NACK_ACTION | EPOCH_ACTION)
}

/// Bytes of one message of a delivery section `code` (0 for other codes).
pub const fn message_len(code: u8) -> usize {
    match code {
        ACK_ACTION | EPOCH_ACTION => 12,
        SEQ_ACTION | NACK_ACTION => 16,
        _ => 0,
    }
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

impl Delivery {
    /// Reads one message of section `code` from `bytes` (at least its length; a longer message's tail is
    /// ignored, as pfsync ignores the tail of longer messages). `None` for a short message, another code,
    /// or a host id of 0 (no node has it).
    pub fn parse(code: u8, bytes: &[u8]) -> Option<Delivery> {
        if bytes.len() < message_len(code) || message_len(code) == 0 {
            return None;
        }
        let sender = CreatorId(word(bytes, 0));
        if sender.0 == 0 {
            return None;
        }
        let epoch = word(bytes, 4);
        Some(match code {
            SEQ_ACTION => Delivery::Seq {
                sender,
                epoch,
                seq: word(bytes, 8),
                low: word(bytes, 12),
            },
            EPOCH_ACTION => Delivery::Epoch {
                sender,
                epoch,
                low: word(bytes, 8),
            },
            ACK_ACTION => Delivery::Ack {
                sender,
                epoch,
                through: word(bytes, 8),
            },
            _ => Delivery::Nack {
                sender,
                epoch,
                first: word(bytes, 8),
                last: word(bytes, 12),
            },
        })
    }

    /// Its section code.
    pub const fn code(&self) -> u8 {
        match self {
            Delivery::Seq { .. } => SEQ_ACTION,
            Delivery::Ack { .. } => ACK_ACTION,
            Delivery::Epoch { .. } => EPOCH_ACTION,
            Delivery::Nack { .. } => NACK_ACTION,
        }
    }

    fn words(&self) -> ([u32; 4], usize) {
        match *self {
            Delivery::Seq {
                sender,
                epoch,
                seq,
                low,
            } => ([sender.0, epoch, seq, low], 4),
            Delivery::Ack {
                sender,
                epoch,
                through,
            } => ([sender.0, epoch, through, 0], 3),
            Delivery::Epoch { sender, epoch, low } => ([sender.0, epoch, low, 0], 3),
            Delivery::Nack {
                sender,
                epoch,
                first,
                last,
            } => ([sender.0, epoch, first, last], 4),
        }
    }
}

/// Appends a section of `messages` (all of one code, at most 65,535) to the pfsync packet in `packet`
/// and updates its header's length. Nothing is appended for no messages.
///
/// # Panics
/// If `packet` is shorter than a pfsync header, the messages mix codes or the packet would pass 65,535
/// bytes: the engine builds these packets and sizes them to the MTU, so each is a bug there.
pub fn append(packet: &mut Vec<u8>, messages: &[Delivery]) {
    let Some(first) = messages.first() else {
        return;
    };
    assert!(packet.len() >= HEADER_LEN, "not a pfsync packet");
    let code = first.code();
    let count = u16::try_from(messages.len()).expect("at most 65,535 messages");
    packet.extend_from_slice(&[code, (message_len(code) / 4) as u8]);
    packet.extend_from_slice(&count.to_be_bytes());
    for m in messages {
        assert_eq!(m.code(), code, "one code per section");
        let (words, n) = m.words();
        for w in &words[..n] {
            packet.extend_from_slice(&w.to_be_bytes());
        }
    }
    let len = u16::try_from(packet.len()).expect("a pfsync packet fits 65,535 bytes");
    packet[2..4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PfsyncPacket;

    fn empty() -> Vec<u8> {
        let mut p = vec![0u8; HEADER_LEN];
        p[0] = crate::wire::VERSION;
        p[3] = HEADER_LEN as u8;
        p
    }

    #[test]
    fn sections_have_the_documented_bytes() {
        let mut p = empty();
        append(
            &mut p,
            &[Delivery::Seq {
                sender: CreatorId(0x0a0b_0c0d),
                epoch: 7,
                seq: 0x0102_0304,
                low: 5,
            }],
        );
        append(
            &mut p,
            &[Delivery::Nack {
                sender: CreatorId(1),
                epoch: 2,
                first: 3,
                last: 4,
            }],
        );
        assert_eq!(&p[2..4], &[0, 20 + 20 + 20]);
        assert_eq!(
            &p[20..40],
            &[
                0xf1, 4, 0, 1, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 7, 1, 2, 3, 4, 0, 0, 0, 5
            ]
        );
        assert_eq!(
            &p[40..],
            &[
                0xf3, 4, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4
            ]
        );
        // A pfsync parser walks over them as sections it does not know.
        let packet = PfsyncPacket::new_checked(&p[..]).expect("a valid packet");
        let codes: Vec<u8> = packet
            .sections()
            .map(|s| s.expect("well formed").subheader().code)
            .collect();
        assert_eq!(codes, [0xf1, 0xf3]);
    }

    #[test]
    fn messages_read_back_and_bad_ones_are_refused() {
        for m in [
            Delivery::Seq {
                sender: CreatorId(9),
                epoch: u32::MAX,
                seq: 0,
                low: u32::MAX,
            },
            Delivery::Ack {
                sender: CreatorId(9),
                epoch: 1,
                through: 77,
            },
            Delivery::Nack {
                sender: CreatorId(9),
                epoch: 1,
                first: u32::MAX,
                last: 2,
            },
            Delivery::Epoch {
                sender: CreatorId(9),
                epoch: 3,
                low: 4,
            },
        ] {
            let mut p = empty();
            append(&mut p, &[m]);
            let body = &p[HEADER_LEN + SUBHEADER_LEN..];
            assert_eq!(Delivery::parse(m.code(), body), Some(m));
            // A longer message reads the same; a shorter one, or host id 0, is refused.
            let mut longer = body.to_vec();
            longer.extend_from_slice(&[0xee; 4]);
            assert_eq!(Delivery::parse(m.code(), &longer), Some(m));
            assert_eq!(Delivery::parse(m.code(), &body[..body.len() - 1]), None);
            let mut zero = body.to_vec();
            zero[..4].fill(0);
            assert_eq!(Delivery::parse(m.code(), &zero), None);
        }
        assert_eq!(Delivery::parse(0x04, &[1; 84]), None, "not a delivery code");
    }
}
