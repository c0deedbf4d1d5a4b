//! Tandem's owner-redirect datagram: a data frame one node sends over the sync link to the node that owns
//! the frame's state, which checks and forwards it as if it had received it. Not part of pfsync: it is a
//! pfsync version 6 header and one section of an action code OpenBSD does not know ([`REDIRECT_ACTION`],
//! past `PFSYNC_ACT_MAX`) made of 4-byte "messages", so that a plain pfsync peer skips the whole section
//! as it skips any unknown one; the section holds a 4-byte redirect header and the whole Ethernet frame,
//! padded to a multiple of 4. Layout (docs/redirect.md):
//!
//! ```text
//! 0      pfsync header: version 6, pad, length (whole datagram), checksum (zeros)      20 bytes
//! 20     subheader: action 0xf0, length 1 (word), count n                               4 bytes
//! 24     ingress port (u16, the index in the profile's `ports`), frame length (u16)     4 bytes
//! 28     the frame, from its destination MAC, then 0-3 zero bytes                      4 (n - 1) bytes
//! ```

use super::{Error, HEADER_LEN, Result, SUBHEADER_LEN, VERSION};

/// The section code of a redirected frame.
pub const REDIRECT_ACTION: u8 = 0xf0;
/// Bytes before the frame.
pub const REDIRECT_HEADER_LEN: usize = HEADER_LEN + SUBHEADER_LEN + 4;

/// A redirected frame as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Redirected<'a> {
    /// The port it arrived on at the sender, by index in the profile's `ports`.
    pub port: u16,
    /// The Ethernet frame.
    pub frame: &'a [u8],
}

/// Whether a sync datagram is a redirected frame (its first section has the redirect code); say nothing
/// about whether it is well formed.
pub fn is_redirect(payload: &[u8]) -> bool {
    payload.first() == Some(&VERSION) && payload.get(HEADER_LEN) == Some(&REDIRECT_ACTION)
}

/// Parses a datagram that [`is_redirect`]: header length, section shape and frame length must agree with
/// the bytes received; bytes past the header's length are ignored, as pfsync ignores them.
pub fn parse(payload: &[u8]) -> Result<Redirected<'_>> {
    let available = payload.len();
    if available < HEADER_LEN {
        return Err(Error::ShortHeader { available });
    }
    if payload[0] != VERSION {
        return Err(Error::BadVersion(payload[0]));
    }
    let len = u16::from_be_bytes([payload[2], payload[3]]);
    if usize::from(len) > available {
        return Err(Error::LengthExceedsPacket {
            header: len,
            available,
        });
    }
    let payload = &payload[..usize::from(len)];
    if payload.len() < REDIRECT_HEADER_LEN {
        return Err(Error::Truncated {
            needed: REDIRECT_HEADER_LEN,
            available: payload.len(),
        });
    }
    let sub = &payload[HEADER_LEN..HEADER_LEN + SUBHEADER_LEN];
    let count = u16::from_be_bytes([sub[2], sub[3]]);
    if sub[0] != REDIRECT_ACTION
        || sub[1] != 1
        || HEADER_LEN + SUBHEADER_LEN + 4 * usize::from(count) != payload.len()
    {
        return Err(Error::BadAction {
            offset: HEADER_LEN,
            code: sub[0],
            message_len: usize::from(sub[1]) * 4,
            count,
        });
    }
    let at = HEADER_LEN + SUBHEADER_LEN;
    let port = u16::from_be_bytes([payload[at], payload[at + 1]]);
    let frame_len = usize::from(u16::from_be_bytes([payload[at + 2], payload[at + 3]]));
    let padded = &payload[REDIRECT_HEADER_LEN..];
    if frame_len == 0 || frame_len > padded.len() || padded.len() - frame_len > 3 {
        return Err(Error::Truncated {
            needed: REDIRECT_HEADER_LEN + frame_len.max(1),
            available: payload.len(),
        });
    }
    Ok(Redirected {
        port,
        frame: &padded[..frame_len],
    })
}

/// Writes the datagram carrying `frame`, received on `port`, into `out` (cleared first). `None` when the
/// frame is empty or too long for a pfsync length field.
pub fn emit(out: &mut Vec<u8>, port: u16, frame: &[u8]) -> Option<()> {
    let padded = frame.len().next_multiple_of(4);
    let len = u16::try_from(REDIRECT_HEADER_LEN + padded).ok()?;
    let words = u16::try_from(1 + padded / 4).ok()?;
    if frame.is_empty() {
        return None;
    }
    out.clear();
    out.push(VERSION);
    out.push(0);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&[REDIRECT_ACTION, 1]);
    out.extend_from_slice(&words.to_be_bytes());
    out.extend_from_slice(&port.to_be_bytes());
    out.extend_from_slice(&(frame.len() as u16).to_be_bytes());
    out.extend_from_slice(frame);
    out.resize(usize::from(len), 0);
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

    #[test]
    fn emits_the_documented_bytes_and_parses_them_back() {
        let frame = &FRAME[..];
        let mut out = Vec::new();
        emit(&mut out, 2, frame).unwrap();
        assert_eq!(out, GOLDEN);
        assert!(is_redirect(&out));
        assert_eq!(parse(&out), Ok(Redirected { port: 2, frame }));
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
        for cut in 0..GOLDEN.len() {
            let _ = parse(&GOLDEN[..cut]);
            assert!(parse(&GOLDEN[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer_frame = GOLDEN;
        longer_frame[27] = 17;
        assert!(parse(&longer_frame).is_err());
        let mut shorter_frame = GOLDEN;
        shorter_frame[27] = 10;
        assert!(parse(&shorter_frame).is_err());
        let mut two = GOLDEN;
        two[23] = 4;
        assert!(parse(&two).is_err());
        let mut trailing = GOLDEN.to_vec();
        trailing.extend_from_slice(&[0xaa; 6]);
        assert_eq!(parse(&trailing).unwrap().frame, &FRAME[..]);
        assert!(emit(&mut Vec::new(), 0, &[]).is_none());
        assert!(emit(&mut Vec::new(), 0, &vec![0; 65_535]).is_none());
    }
}
