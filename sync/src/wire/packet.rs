//! A whole pfsync packet (header onwards) as received: the checks OpenBSD's `pfsync_input` makes before
//! trusting any section (pfsync spec section 6), and zero-allocation iterators over its sections and their
//! messages. What a message makes the receiver do is the engine's business.

use std::fmt;

use super::{
    Action, Dispatch, Error, HEADER_LEN, Header, HeaderRepr, Message, Result, SUBHEADER_LEN,
    Subheader, SubheaderRepr, VERSION, dispatch,
};

/// The most bytes of messages one section can hold: a pfsync packet's length is a 16-bit field.
const SECTION_BODY_MAX: usize = u16::MAX as usize - HEADER_LEN - SUBHEADER_LEN;

/// A view of a received pfsync packet: the IP payload, starting at the pfsync header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PfsyncPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> PfsyncPacket<T> {
    /// Wraps `buffer` without any check. Only [`PfsyncPacket::new_checked`] makes [`PfsyncPacket::header`]
    /// safe to call; the iterators never panic either way.
    pub const fn new_unchecked(buffer: T) -> Self {
        PfsyncPacket { buffer }
    }

    /// Wraps a received packet after OpenBSD's checks, in its order: at least a header (`hdrops`), version 6
    /// (`badver`), a length field no longer than what arrived (`badlen`). A shorter length field is fine:
    /// the bytes beyond it are ignored, as OpenBSD truncates the packet to it.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let packet = Self::new_unchecked(buffer);
        let available = packet.buffer.as_ref().len();
        if available < HEADER_LEN {
            return Err(Error::ShortHeader { available });
        }
        let version = packet.header().version();
        if version != VERSION {
            return Err(Error::BadVersion(version));
        }
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the lengths alone: a whole header, and a length field between the header's size and the
    /// buffer's.
    pub fn check_len(&self) -> Result<()> {
        let bytes = self.buffer.as_ref();
        let available = bytes.len();
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or(Error::ShortHeader { available })?;
        let len = Header::new_unchecked(header).len();
        if usize::from(len) > available {
            return Err(Error::LengthExceedsPacket {
                header: len,
                available,
            });
        }
        if usize::from(len) < HEADER_LEN {
            return Err(Error::LengthBelowHeader { header: len });
        }
        Ok(())
    }

    /// The header.
    pub fn header(&self) -> Header<&[u8]> {
        Header::new_unchecked(&self.buffer.as_ref()[..HEADER_LEN])
    }

    /// The header's meaning.
    pub fn header_repr(&self) -> Result<HeaderRepr> {
        HeaderRepr::parse(&self.header())
    }

    /// The packet as its header's length field delimits it (trailing bytes cut off).
    pub fn packet_bytes(&self) -> &[u8] {
        let bytes = self.buffer.as_ref();
        let len = bytes
            .get(..HEADER_LEN)
            .map_or(0, |header| usize::from(Header::new_unchecked(header).len()));
        bytes.get(..len).unwrap_or(bytes)
    }

    /// The sections, in packet order.
    pub fn sections(&self) -> Sections<'_> {
        Sections {
            packet: self.packet_bytes(),
            offset: HEADER_LEN,
            done: false,
        }
    }

    /// Every message of every parsed section, in packet order, then the error that ended the packet if
    /// one did.
    pub fn messages(&self) -> PacketMessages<'_> {
        PacketMessages {
            sections: self.sections(),
            current: None,
        }
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]>> fmt::Display for PfsyncPacket<T> {
    /// A multi-line dump: the header, then each section and its messages, indented.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.buffer.as_ref().get(..HEADER_LEN) {
            Some(header) => match HeaderRepr::parse(&Header::new_unchecked(header)) {
                Ok(repr) => write!(f, "{repr}")?,
                Err(e) => return write!(f, "pfsync ({e})"),
            },
            None => return write!(f, "pfsync (truncated header)"),
        }
        for section in self.sections() {
            match section {
                Ok(section) => {
                    write!(f, "\n  {}", section.subheader())?;
                    if section.action().is_none() {
                        f.write_str(" (skipped)")?;
                    }
                    for message in section.messages() {
                        match message {
                            Ok(message) => write!(f, "\n    {message}")?,
                            Err(e) => write!(f, "\n    ({e})")?,
                        }
                    }
                }
                Err(e) => write!(f, "\n  ({e})")?,
            }
        }
        Ok(())
    }
}

/// Iterator over a packet's sections. After an error it yields nothing more: OpenBSD abandons the rest of
/// the packet at the first bad section.
#[derive(Clone, Debug)]
pub struct Sections<'a> {
    packet: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Sections<'a> {
    fn fail(&mut self, error: Error) -> Option<Result<Section<'a>>> {
        self.done = true;
        Some(Err(error))
    }
}

impl<'a> Iterator for Sections<'a> {
    type Item = Result<Section<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let offset = self.offset;
        // Fewer than a subheader's bytes left ends the packet quietly, as OpenBSD's loop does.
        let Some(subheader_bytes) = self.packet.get(offset..offset + SUBHEADER_LEN) else {
            self.done = true;
            return None;
        };
        let subheader = Subheader::new_unchecked(subheader_bytes);
        let repr = SubheaderRepr {
            code: subheader.action(),
            words: subheader.len(),
            count: subheader.count(),
        };
        let message_len = repr.message_len();
        let action = match dispatch(offset, repr.code, message_len, repr.count) {
            Ok(Dispatch::Parse(action)) => Some(action),
            Ok(Dispatch::Skip) => None,
            Err(e) => return self.fail(e),
        };
        // A skipped section is length-checked too: OpenBSD checks before choosing the handler.
        let needed = repr.body_len();
        if needed > SECTION_BODY_MAX {
            return self.fail(Error::SectionOverflow {
                offset,
                code: repr.code,
                message_len,
                count: repr.count,
            });
        }
        let start = offset + SUBHEADER_LEN;
        let available = self.packet.len().saturating_sub(start);
        let Some(body) = self.packet.get(start..start + needed) else {
            return self.fail(Error::TruncatedSection {
                offset,
                code: repr.code,
                needed,
                available,
            });
        };
        self.offset = start + needed;
        Some(Ok(Section {
            offset,
            subheader: repr,
            action,
            body,
        }))
    }
}

/// One section of a received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section<'a> {
    offset: usize,
    subheader: SubheaderRepr,
    action: Option<Action>,
    body: &'a [u8],
}

impl<'a> Section<'a> {
    /// Offset of the subheader in the packet.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The subheader as received.
    pub fn subheader(&self) -> SubheaderRepr {
        self.subheader
    }

    /// The action whose messages this section holds, `None` for a skipped section (a legacy or unknown
    /// code, or a known one declaring shorter messages).
    pub fn action(&self) -> Option<Action> {
        self.action
    }

    /// The messages' bytes, `count x len`.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The messages; none for a skipped section.
    pub fn messages(&self) -> Messages<'a> {
        Messages {
            action: self.action,
            body: self.body,
            message_len: self.subheader.message_len(),
            next: 0,
            count: if self.action.is_some() {
                self.subheader.count
            } else {
                0
            },
        }
    }
}

/// Iterator over one section's messages. An error is about one message only; the next is still parsed.
#[derive(Clone, Debug)]
pub struct Messages<'a> {
    action: Option<Action>,
    body: &'a [u8],
    message_len: usize,
    next: u16,
    count: u16,
}

impl Iterator for Messages<'_> {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Self::Item> {
        let action = self.action?;
        if self.next >= self.count {
            return None;
        }
        let start = usize::from(self.next) * self.message_len;
        self.next += 1;
        // The section's length was checked, so every message is whole; `get` keeps that a non-panicking
        // fact rather than an assumption.
        let bytes = self
            .body
            .get(start..start + self.message_len)
            .unwrap_or(&[]);
        Some(Message::parse(action, bytes))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.action.is_some() {
            usize::from(self.count - self.next)
        } else {
            0
        };
        (left, Some(left))
    }
}

impl ExactSizeIterator for Messages<'_> {}

/// Iterator over every message of a packet: per-message errors ([`Error::ends_packet`] false) are yielded
/// in place and iteration goes on; a packet error is yielded last.
#[derive(Clone, Debug)]
pub struct PacketMessages<'a> {
    sections: Sections<'a>,
    current: Option<Messages<'a>>,
}

impl Iterator for PacketMessages<'_> {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(message) = self.current.as_mut().and_then(Iterator::next) {
                return Some(message);
            }
            match self.sections.next()? {
                Ok(section) => self.current = Some(section.messages()),
                Err(e) => {
                    self.current = None;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{CreatorId, StateId};
    use crate::wire::{StateRefRepr, state, upd_c};

    /// A pfsync header for a packet of `len` bytes.
    fn header(len: u16) -> Vec<u8> {
        let mut bytes = vec![6, 0];
        bytes.extend_from_slice(&len.to_be_bytes());
        bytes.extend_from_slice(&[0; 16]);
        bytes
    }

    /// A packet of `sections`, each a subheader (code, words, count) and its body, with an exact length.
    fn packet(sections: &[(u8, u8, u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for &(code, words, count, messages) in sections {
            body.push(code);
            body.push(words);
            body.extend_from_slice(&count.to_be_bytes());
            body.extend_from_slice(messages);
        }
        let mut bytes = header((HEADER_LEN + body.len()) as u16);
        bytes.extend_from_slice(&body);
        bytes
    }

    /// A DEL_C naming state `id` of creator 1, written out.
    fn del_c(id: u8) -> [u8; 12] {
        [0, 0, 0, 0, 0, 0, 0, id, 0, 0, 0, 1]
    }

    fn del_c_repr(id: u64) -> Message {
        Message::DelC(StateRefRepr {
            creator: CreatorId(1),
            id: StateId(id),
        })
    }

    fn all(bytes: &[u8]) -> Vec<Result<Message>> {
        PfsyncPacket::new_checked(bytes)
            .unwrap()
            .messages()
            .collect()
    }

    #[test]
    fn sections_and_messages_come_in_packet_order() {
        let two = [del_c(1), del_c(2)].concat();
        let bytes = packet(&[
            (7, 3, 2, &two),
            (4, 21, 1, &upd_c::tests::GOLDEN),
            (7, 3, 1, &del_c(3)),
        ]);
        let packet = PfsyncPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.header_repr().unwrap().len as usize, bytes.len());
        let sections: Vec<_> = packet.sections().map(|s| s.unwrap()).collect();
        assert_eq!(sections.len(), 3);
        assert_eq!(sections[0].offset(), 20);
        assert_eq!(sections[1].offset(), 20 + 4 + 24);
        assert_eq!(sections[1].action(), Some(Action::UpdC));
        assert_eq!(sections[0].messages().len(), 2);
        let messages: Vec<_> = packet.messages().map(|m| m.unwrap()).collect();
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[0], del_c_repr(1));
        assert_eq!(messages[1], del_c_repr(2));
        assert_eq!(messages[2], Message::UpdC(upd_c::tests::golden_repr()));
        assert_eq!(messages[3], del_c_repr(3));
    }

    #[test]
    fn bytes_beyond_the_header_length_are_ignored() {
        let mut bytes = packet(&[(7, 3, 1, &del_c(1))]);
        // A whole extra section after the declared end must not be seen.
        bytes.extend_from_slice(&[7, 3, 0, 1]);
        bytes.extend_from_slice(&del_c(2));
        assert_eq!(all(&bytes), vec![Ok(del_c_repr(1))]);
    }

    #[test]
    fn a_trailing_partial_subheader_ends_the_packet_quietly() {
        let mut bytes = packet(&[(7, 3, 1, &del_c(1))]);
        bytes.extend_from_slice(&[7, 3, 0]);
        let len = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&len.to_be_bytes());
        assert_eq!(all(&bytes), vec![Ok(del_c_repr(1))]);
    }

    #[test]
    fn longer_messages_than_known_are_parsed_and_their_tail_ignored() {
        // DEL_C declared as 4 words (16 bytes): a future sender's extension.
        let mut two = Vec::new();
        for id in [1, 2] {
            two.extend_from_slice(&del_c(id));
            two.extend_from_slice(&[0xee; 4]);
        }
        let bytes = packet(&[(7, 4, 2, &two), (7, 3, 1, &del_c(3))]);
        assert_eq!(
            all(&bytes),
            vec![Ok(del_c_repr(1)), Ok(del_c_repr(2)), Ok(del_c_repr(3))]
        );
    }

    #[test]
    fn legacy_sections_are_skipped_by_their_declared_length() {
        // FreeBSD's EOF (code 12, len 0, count 1) skips nothing; an old OUPD (3) with a length skips its
        // bytes.
        let bytes = packet(&[
            (12, 0, 1, &[]),
            (3, 2, 2, &[0xff; 16]),
            (7, 3, 1, &del_c(1)),
        ]);
        let packet = PfsyncPacket::new_checked(&bytes[..]).unwrap();
        let actions: Vec<_> = packet.sections().map(|s| s.unwrap().action()).collect();
        assert_eq!(actions, vec![None, None, Some(Action::DelC)]);
        assert_eq!(all(&bytes), vec![Ok(del_c_repr(1))]);
    }

    #[test]
    fn unknown_actions_with_length_and_count_are_skipped() {
        let bytes = packet(&[(200, 1, 3, &[0xff; 12]), (7, 3, 1, &del_c(1))]);
        assert_eq!(all(&bytes), vec![Ok(del_c_repr(1))]);
    }

    #[test]
    fn unknown_action_without_length_abandons_the_rest() {
        let bytes = packet(&[(7, 3, 1, &del_c(1)), (16, 0, 1, &[]), (7, 3, 1, &del_c(2))]);
        assert_eq!(
            all(&bytes),
            vec![
                Ok(del_c_repr(1)),
                Err(Error::BadAction {
                    offset: 36,
                    code: 16,
                    message_len: 0,
                    count: 1
                })
            ]
        );
    }

    #[test]
    fn known_action_with_short_messages_and_zero_count_is_a_bad_action() {
        let bytes = packet(&[(13, 65, 0, &[]), (7, 3, 1, &del_c(1))]);
        assert!(matches!(
            all(&bytes)[..],
            [Err(Error::BadAction {
                code: 13,
                count: 0,
                ..
            })]
        ));
    }

    #[test]
    fn truncated_section_ends_the_packet_after_earlier_sections() {
        // A section that claims two DEL_C but carries one.
        let bytes = packet(&[(7, 3, 1, &del_c(1)), (7, 3, 2, &del_c(2))]);
        assert_eq!(
            all(&bytes),
            vec![
                Ok(del_c_repr(1)),
                Err(Error::TruncatedSection {
                    offset: 36,
                    code: 7,
                    needed: 24,
                    available: 12
                })
            ]
        );
        // Skipped sections are length-checked too.
        let bytes = packet(&[(200, 1, 4, &[0; 12])]);
        assert!(matches!(
            all(&bytes)[..],
            [Err(Error::TruncatedSection { code: 200, .. })]
        ));
    }

    #[test]
    fn count_times_size_beyond_any_packet_is_an_overflow() {
        let bytes = packet(&[(7, 3, u16::MAX, &del_c(1))]);
        assert_eq!(
            all(&bytes),
            vec![Err(Error::SectionOverflow {
                offset: 20,
                code: 7,
                message_len: 12,
                count: u16::MAX
            })]
        );
        // 255 words x 65535 would overflow 16-bit arithmetic, not ours.
        let bytes = packet(&[(200, 255, u16::MAX, &[])]);
        assert!(matches!(
            all(&bytes)[..],
            [Err(Error::SectionOverflow {
                message_len: 1020,
                ..
            })]
        ));
    }

    #[test]
    fn short_header_is_refused() {
        assert_eq!(
            PfsyncPacket::new_checked(&[6u8, 0, 0, 20][..]),
            Err(Error::ShortHeader { available: 4 })
        );
        assert_eq!(
            PfsyncPacket::new_checked(&[][..]),
            Err(Error::ShortHeader { available: 0 })
        );
    }

    #[test]
    fn other_versions_are_refused_before_lengths() {
        let mut bytes = header(9999);
        bytes[0] = 5;
        assert_eq!(
            PfsyncPacket::new_checked(&bytes[..]),
            Err(Error::BadVersion(5))
        );
    }

    #[test]
    fn header_length_longer_than_the_packet_is_refused() {
        let mut bytes = packet(&[(7, 3, 1, &del_c(1))]);
        bytes.truncate(35);
        assert_eq!(
            PfsyncPacket::new_checked(&bytes[..]),
            Err(Error::LengthExceedsPacket {
                header: 36,
                available: 35
            })
        );
    }

    #[test]
    fn header_length_shorter_than_the_header_is_refused() {
        let bytes = header(19);
        assert_eq!(
            PfsyncPacket::new_checked(&bytes[..]),
            Err(Error::LengthBelowHeader { header: 19 })
        );
    }

    #[test]
    fn a_bad_family_drops_one_message_and_parsing_goes_on() {
        let mut bad = state::tests::GOLDEN;
        bad[250] = 28;
        let states = [bad, state::tests::GOLDEN].concat();
        let bytes = packet(&[(13, 66, 2, &states), (7, 3, 1, &del_c(1))]);
        let messages = all(&bytes);
        assert_eq!(messages.len(), 3);
        assert_eq!(
            messages[0],
            Err(Error::BadAddressFamily {
                action: Action::Ins,
                field: "af",
                value: 28
            })
        );
        assert!(!messages[0].as_ref().unwrap_err().ends_packet());
        assert_eq!(messages[1], Ok(Message::Ins(state::tests::golden_repr())));
        assert_eq!(messages[2], Ok(del_c_repr(1)));
    }

    #[test]
    fn bad_values_parse_and_are_refused_by_validate() {
        let mut late = upd_c::tests::GOLDEN;
        late[80] = 20; // timeout PFTM_MAX
        let bytes = packet(&[(4, 21, 1, &late)]);
        let messages = all(&bytes);
        let message = messages[0].as_ref().unwrap();
        assert_eq!(
            message.validate(),
            Err(Error::BadValue {
                action: Action::UpdC,
                field: "timeout",
                value: 20
            })
        );
    }

    #[test]
    fn unchecked_garbage_never_panics() {
        for len in 0..64 {
            let bytes = vec![0xffu8; len];
            let packet = PfsyncPacket::new_unchecked(&bytes[..]);
            assert!(packet.messages().count() <= 1);
            let _ = packet.to_string();
        }
    }

    #[test]
    fn display_dumps_every_section() {
        let bytes = packet(&[(7, 3, 1, &del_c(1)), (12, 0, 1, &[])]);
        let text = PfsyncPacket::new_checked(&bytes[..]).unwrap().to_string();
        assert_eq!(
            text,
            "pfsync v6 len 40\n  DEL_C len 12 count 1\n    DEL_C id 0000000000000001 creator 00000001\n  \
             action 12 len 0 count 1 (skipped)"
        );
    }
}
