//! Tandem's owner-redirect datagram: data frames one node sends over the sync link to the node that owns
//! their state, which checks and forwards them as if it had received them. Not part of pfsync: it is a
//! pfsync version 6 header and one section per frame, of an action code OpenBSD does not know
//! ([`REDIRECT_ACTION`], past `PFSYNC_ACT_MAX`) made of 4-byte "messages", so that a plain pfsync peer
//! skips each section as it skips any unknown one; a section holds a 4-byte redirect header and the whole
//! Ethernet frame, padded to a multiple of 4. Layout (docs/redirect.md):
//!
//! ```text
//! 0      pfsync header: version 6, pad, length (whole datagram), checksum (zeros)      20 bytes
//! 20     subheader: action 0xf0, length 1 (word), count n                               4 bytes
//! 24     ingress port (u16, the index in the profile's `ports`), frame length (u16)     4 bytes
//! 28     the frame, from its destination MAC, then 0-3 zero bytes                      4 (n - 1) bytes
//!        more sections like the one at 20, to the header's length
//! ```

use super::{Error, HEADER_LEN, Result, SUBHEADER_LEN, VERSION};

/// The section code of a redirected frame.
pub const REDIRECT_ACTION: u8 = 0xf0;
/// Bytes before the frame of a datagram's first section.
pub const REDIRECT_HEADER_LEN: usize = HEADER_LEN + SUBHEADER_LEN + 4;

/// A redirected frame as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redirected<'a> {
    /// The port it arrived on at the sender, by index in the profile's `ports`.
    pub port: u16,
    /// The Ethernet frame.
    pub frame: &'a [u8],
}

/// Bytes a section adds before its frame: the subheader and the redirect header.
pub const SECTION_HEADER_LEN: usize = SUBHEADER_LEN + 4;

/// Whether a sync datagram carries redirected frames (its first section has the redirect code); says
/// nothing about whether it is well formed.
pub fn is_redirect(payload: &[u8]) -> bool {
    payload.first() == Some(&VERSION) && payload.get(HEADER_LEN) == Some(&REDIRECT_ACTION)
}

/// The frames of a datagram that [`is_redirect`], in order: the header's length must fit the bytes
/// received (bytes past it are ignored, as pfsync ignores them), and each section's shape and frame
/// length must agree with what is left. The first error ends the iteration.
pub fn frames(payload: &[u8]) -> Frames<'_> {
    let available = payload.len();
    let checked = if available < HEADER_LEN {
        Err(Error::ShortHeader { available })
    } else if payload[0] != VERSION {
        Err(Error::BadVersion(payload[0]))
    } else {
        let len = u16::from_be_bytes([payload[2], payload[3]]);
        if usize::from(len) > available {
            Err(Error::LengthExceedsPacket {
                header: len,
                available,
            })
        } else if usize::from(len) < HEADER_LEN + SECTION_HEADER_LEN {
            Err(Error::Truncated {
                needed: HEADER_LEN + SECTION_HEADER_LEN,
                available: usize::from(len),
            })
        } else {
            Ok(&payload[..usize::from(len)])
        }
    };
    match checked {
        Ok(packet) => Frames {
            packet,
            at: HEADER_LEN,
            error: None,
        },
        Err(e) => Frames {
            packet: &[],
            at: 0,
            error: Some(e),
        },
    }
}

/// Iterator over a redirect datagram's frames; see [`frames`].
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    packet: &'a [u8],
    at: usize,
    error: Option<Error>,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Redirected<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            self.at = self.packet.len();
            return Some(Err(e));
        }
        if self.at >= self.packet.len() {
            return None;
        }
        let item = section_at(self.packet, self.at);
        match &item {
            Ok((_, next)) => self.at = *next,
            Err(_) => self.at = self.packet.len(),
        }
        Some(item.map(|(r, _)| r))
    }
}

/// The section at `at`: its frame, and where the next section starts.
fn section_at(packet: &[u8], at: usize) -> Result<(Redirected<'_>, usize)> {
    let rest = &packet[at..];
    if rest.len() < SECTION_HEADER_LEN {
        return Err(Error::Truncated {
            needed: SECTION_HEADER_LEN,
            available: rest.len(),
        });
    }
    let count = u16::from_be_bytes([rest[2], rest[3]]);
    let body = 4 * usize::from(count);
    if rest[0] != REDIRECT_ACTION || rest[1] != 1 || count < 2 {
        return Err(Error::BadAction {
            offset: at,
            code: rest[0],
            message_len: usize::from(rest[1]) * 4,
            count,
        });
    }
    if SUBHEADER_LEN + body > rest.len() {
        return Err(Error::TruncatedSection {
            offset: at,
            code: rest[0],
            needed: body,
            available: rest.len() - SUBHEADER_LEN,
        });
    }
    let port = u16::from_be_bytes([rest[4], rest[5]]);
    let frame_len = usize::from(u16::from_be_bytes([rest[6], rest[7]]));
    let padded = body - 4;
    if frame_len == 0 || frame_len > padded || padded - frame_len > 3 {
        return Err(Error::Truncated {
            needed: frame_len.max(1).next_multiple_of(4),
            available: padded,
        });
    }
    let frame = &rest[SECTION_HEADER_LEN..SECTION_HEADER_LEN + frame_len];
    Ok((Redirected { port, frame }, at + SUBHEADER_LEN + body))
}

/// Bytes `frame` takes in a datagram: its section's headers and the frame padded to a multiple of 4.
pub fn section_len(frame: &[u8]) -> usize {
    SECTION_HEADER_LEN + frame.len().next_multiple_of(4)
}

/// Appends a section carrying `frame`, received on `port`, to the datagram in `out` (starting the
/// datagram, header first, when `out` is empty) and sets the header's length. `None`, with `out`
/// unchanged, when the frame is empty or the datagram would pass a pfsync length field.
pub fn push(out: &mut Vec<u8>, port: u16, frame: &[u8]) -> Option<()> {
    let start = if out.is_empty() {
        HEADER_LEN
    } else {
        out.len()
    };
    let len = u16::try_from(start + section_len(frame)).ok()?;
    let words = u16::try_from(1 + frame.len().div_ceil(4)).ok()?;
    if frame.is_empty() {
        return None;
    }
    if out.is_empty() {
        out.push(VERSION);
        out.push(0);
        out.extend_from_slice(&[0; 18]);
    }
    out.extend_from_slice(&[REDIRECT_ACTION, 1]);
    out.extend_from_slice(&words.to_be_bytes());
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&(frame.len() as u16).to_be_bytes());
    out.extend_from_slice(frame);
    out.resize(usize::from(len), 0);
    out[2..4].copy_from_slice(&len.to_be_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::PfsyncPacket;

    /// A 14-byte frame from port 2, byte by byte as docs/redirect.md lays it out.
    const GOLDEN: [u8; 44] = [
        6, 0, 0, 44, // version, pad, length
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // checksum
        0xf0, 1, 0, 5, // action, messages of one word, five of them
        0, 2, 0, 14, // port 2, 14 bytes
        2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00, // the frame
        0, 0, // padding
    ];
    const FRAME: [u8; 14] = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];

    fn all(payload: &[u8]) -> Result<Vec<Redirected<'_>>> {
        frames(payload).collect()
    }

    #[test]
    fn emits_the_documented_bytes_and_parses_them_back() {
        let mut out = Vec::new();
        push(&mut out, 2, &FRAME).unwrap();
        assert_eq!(out, GOLDEN);
        assert!(is_redirect(&out));
        assert_eq!(
            all(&out),
            Ok(vec![Redirected {
                port: 2,
                frame: &FRAME[..]
            }])
        );
        assert_eq!(section_len(&FRAME), 24);
    }

    #[test]
    fn several_frames_share_a_datagram_in_order() {
        let mut out = Vec::new();
        let long = [0x5au8; 61];
        push(&mut out, 2, &FRAME).unwrap();
        push(&mut out, 0, &long).unwrap();
        push(&mut out, 1, &FRAME[..13]).unwrap();
        assert_eq!(
            out.len(),
            HEADER_LEN + section_len(&FRAME) + section_len(&long) + section_len(&FRAME[..13])
        );
        assert_eq!(usize::from(u16::from_be_bytes([out[2], out[3]])), out.len());
        let got = all(&out).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].port, got[0].frame), (2, &FRAME[..]));
        assert_eq!((got[1].port, got[1].frame), (0, &long[..]));
        assert_eq!((got[2].port, got[2].frame), (1, &FRAME[..13]));
        // A plain pfsync parser skips every section.
        let packet = PfsyncPacket::new_checked(&out[..]).unwrap();
        assert_eq!(packet.sections().count(), 3);
        assert!(packet.sections().all(|s| s.is_ok()));
        assert_eq!(packet.messages().count(), 0);
    }

    #[test]
    fn a_plain_pfsync_parser_skips_it_as_an_unknown_section() {
        let packet = PfsyncPacket::new_checked(&GOLDEN[..]).unwrap();
        let sections: Vec<_> = packet.sections().collect();
        assert_eq!(sections.len(), 1);
        assert!(sections[0].is_ok());
        assert_eq!(packet.messages().count(), 0);
    }

    #[test]
    fn truncated_or_inconsistent_datagrams_are_errors_not_panics() {
        let mut two = Vec::new();
        push(&mut two, 2, &FRAME).unwrap();
        push(&mut two, 3, &FRAME).unwrap();
        for cut in 0..two.len() {
            // Any cut is an error: a short header, a length past the bytes, or a short section.
            assert!(all(&two[..cut]).is_err(), "cut at {cut}");
            let mut shorter = two[..cut].to_vec();
            if cut >= 4 {
                shorter[2..4].copy_from_slice(&(cut as u16).to_be_bytes());
                let _ = all(&shorter);
            }
        }
        let mut longer_frame = GOLDEN;
        longer_frame[27] = 17;
        assert!(all(&longer_frame).is_err());
        let mut shorter_frame = GOLDEN;
        shorter_frame[27] = 10;
        assert!(all(&shorter_frame).is_err());
        let mut too_many_words = GOLDEN;
        too_many_words[23] = 6;
        assert!(all(&too_many_words).is_err());
        let mut other_action = two.clone();
        other_action[HEADER_LEN + section_len(&FRAME)] = 4;
        let got: Vec<_> = frames(&other_action).collect();
        assert_eq!(got.len(), 2, "the first frame, then the error");
        assert!(got[0].is_ok() && got[1].is_err());
        let mut trailing = GOLDEN.to_vec();
        trailing.extend_from_slice(&[0xaa; 6]);
        assert_eq!(all(&trailing).unwrap()[0].frame, &FRAME[..]);
        let mut out = Vec::new();
        assert!(push(&mut out, 0, &[]).is_none());
        assert!(push(&mut out, 0, &vec![0; 65_535]).is_none());
        assert!(out.is_empty());
    }
}
