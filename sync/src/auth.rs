//! Sync authentication: a trailer on every sync datagram (pfsync packets and owner-redirect datagrams
//! alike) with a sequence number and an HMAC-SHA256 over the sender's address and the whole datagram
//! (docs/sync-auth.md has the layout). pfsync has no authentication of its own; with this on, a datagram
//! is handed to the engine only when its MAC verifies under one of the cluster's keys and its sequence
//! number is new for its sender (a replay window per peer, as IPsec's). Sans-IO: bytes in, bytes out.
//!
//! Keys come from a file named by the profile, one key per line (`<id> <hex>`, at least 32 bytes, the first
//! line the key this node sends with); two keys are accepted during a rotation. The sequence number's top
//! 32 bits are the sender's start time in seconds, so a node that restarts begins above all it sent before.

use std::net::Ipv4Addr;

use hashbrown::HashMap;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The trailer: magic "TA", version, key id, sequence number (8 bytes), truncated MAC (16 bytes).
pub const TRAILER_LEN: usize = 4 + 8 + MAC_LEN;
const _: () = assert!(TRAILER_LEN == tandem_config::AUTH_OVERHEAD as usize);
/// Bytes of the MAC kept (HMAC-SHA256-128, RFC 4868's truncation).
pub const MAC_LEN: usize = 16;
/// The shortest key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;
/// Keys a keyring holds at most: the current one and the one being rotated out (or in).
pub const MAX_KEYS: usize = 2;
/// Sequence numbers below the highest seen from a peer that are still accepted (once each).
pub const REPLAY_WINDOW: u64 = 64;
/// Senders whose replay windows are kept; a key holder beyond this is refused.
pub const MAX_SENDERS: usize = 256;

const MAGIC: [u8; 2] = *b"TA";
const VERSION: u8 = 1;

type HmacSha256 = Hmac<Sha256>;

/// One key, with its HMAC state keyed once.
#[derive(Clone)]
struct Key {
    id: u8,
    mac: HmacSha256,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a key file was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// A line is not `<id> <hex>`.
    #[error("line {line}: expected `<key id 0-255> <key in hex>`")]
    Syntax {
        /// 1-based.
        line: usize,
    },
    /// A key is too short.
    #[error("line {line}: the key has {len} bytes, at least {MIN_KEY_LEN} are needed")]
    TooShort {
        /// 1-based.
        line: usize,
        /// Its length in bytes.
        len: usize,
    },
    /// Two lines name one id.
    #[error("line {line}: key id {id} appears twice")]
    DuplicateId {
        /// 1-based.
        line: usize,
        /// The id.
        id: u8,
    },
    /// No key, or more than [`MAX_KEYS`].
    #[error("the file holds {0} keys; it must hold 1 or {MAX_KEYS}")]
    Count(usize),
}

/// The cluster's keys: the first sends, all are accepted.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// Reads a key file's text: one key per line, `<id> <hex>`; blank lines and `#` comments ignored.
    pub fn parse(text: &str) -> Result<Keyring, KeyError> {
        let mut keys: Vec<Key> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(id), Some(hex), None) = (fields.next(), fields.next(), fields.next()) else {
                return Err(KeyError::Syntax { line: line_no });
            };
            let id: u8 = id.parse().map_err(|_| KeyError::Syntax { line: line_no })?;
            let bytes = decode_hex(hex).ok_or(KeyError::Syntax { line: line_no })?;
            if bytes.len() < MIN_KEY_LEN {
                return Err(KeyError::TooShort {
                    line: line_no,
                    len: bytes.len(),
                });
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyError::DuplicateId { line: line_no, id });
            }
            let mac = HmacSha256::new_from_slice(&bytes).expect("HMAC takes keys of any length");
            keys.push(Key { id, mac });
        }
        if keys.is_empty() || keys.len() > MAX_KEYS {
            return Err(KeyError::Count(keys.len()));
        }
        Ok(Keyring { keys })
    }

    /// The id of the key this node sends with.
    pub fn sending_id(&self) -> u8 {
        self.keys[0].id
    }

    fn get(&self, id: u8) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The MAC over what `from` signs: its address, then the datagram up to the trailer's MAC field.
fn mac_of(key: &Key, from: Ipv4Addr, signed: &[u8]) -> HmacSha256 {
    let mut mac = key.mac.clone();
    mac.update(&from.octets());
    mac.update(signed);
    mac
}

/// Adds trailers to the datagrams this node sends.
#[derive(Debug)]
pub struct Sealer {
    key: Key,
    local: Ipv4Addr,
    next: u64,
}

impl Sealer {
    /// Seals with `ring`'s sending key for a node whose sync address is `local`, started at `start_secs`
    /// (seconds since the Unix epoch: the top half of its sequence numbers).
    pub fn new(ring: &Keyring, local: Ipv4Addr, start_secs: u32) -> Sealer {
        Sealer {
            key: ring.keys[0].clone(),
            local,
            next: u64::from(start_secs) << 32,
        }
    }

    /// Appends the trailer to `datagram`.
    pub fn seal(&mut self, datagram: &mut Vec<u8>) {
        let seq = self.next;
        self.next = self.next.wrapping_add(1);
        datagram.extend_from_slice(&MAGIC);
        datagram.push(VERSION);
        datagram.push(self.key.id);
        datagram.extend_from_slice(&seq.to_be_bytes());
        let mac = mac_of(&self.key, self.local, datagram)
            .finalize()
            .into_bytes();
        datagram.extend_from_slice(&mac[..MAC_LEN]);
    }
}

/// Why a received datagram was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Shorter than a trailer, or without its magic and version: not sealed.
    Unsealed,
    /// Sealed with a key id this node does not hold.
    UnknownKey,
    /// The MAC does not verify: forged, damaged, or another key under a known id.
    BadMac,
    /// Its sequence number was seen before, or lies below the replay window.
    Replayed,
    /// A key holder beyond [`MAX_SENDERS`].
    TooManySenders,
}

/// Rejections by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Datagrams that verified.
    pub accepted: u64,
    /// [`Rejected::Unsealed`].
    pub unsealed: u64,
    /// [`Rejected::UnknownKey`].
    pub unknown_key: u64,
    /// [`Rejected::BadMac`].
    pub bad_mac: u64,
    /// [`Rejected::Replayed`].
    pub replayed: u64,
    /// [`Rejected::TooManySenders`].
    pub too_many_senders: u64,
}

impl AuthStats {
    fn count(&mut self, outcome: Result<(), Rejected>) {
        let c = match outcome {
            Ok(()) => &mut self.accepted,
            Err(Rejected::Unsealed) => &mut self.unsealed,
            Err(Rejected::UnknownKey) => &mut self.unknown_key,
            Err(Rejected::BadMac) => &mut self.bad_mac,
            Err(Rejected::Replayed) => &mut self.replayed,
            Err(Rejected::TooManySenders) => &mut self.too_many_senders,
        };
        *c += 1;
    }
}

/// A sender's replay window: the highest sequence number accepted and which of the 64 below it were.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Window {
    top: u64,
    seen: u64,
}

impl Window {
    /// Whether `seq` is new; records it if so.
    fn admit(&mut self, seq: u64) -> bool {
        if seq > self.top {
            let shift = seq - self.top;
            self.seen = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.seen << shift
            } | 1;
            self.top = seq;
            return true;
        }
        let behind = self.top - seq;
        if behind >= REPLAY_WINDOW || self.seen & (1 << behind) != 0 {
            return false;
        }
        self.seen |= 1 << behind;
        true
    }
}

/// Verifies and strips the trailers of received datagrams.
#[derive(Debug)]
pub struct Opener {
    ring: Keyring,
    windows: HashMap<Ipv4Addr, Window>,
    stats: AuthStats,
}

impl Opener {
    /// Accepts datagrams sealed with any key of `ring`.
    pub fn new(ring: Keyring) -> Opener {
        Opener {
            ring,
            windows: HashMap::new(),
            stats: AuthStats::default(),
        }
    }

    /// The datagram `from` sent, its trailer removed, if it verifies and is new.
    pub fn open<'a>(&mut self, from: Ipv4Addr, datagram: &'a [u8]) -> Result<&'a [u8], Rejected> {
        let outcome = self.check(from, datagram);
        self.stats.count(outcome.map(|_| ()));
        outcome
    }

    /// Counters.
    pub fn stats(&self) -> AuthStats {
        self.stats
    }

    fn check<'a>(&mut self, from: Ipv4Addr, datagram: &'a [u8]) -> Result<&'a [u8], Rejected> {
        let Some(at) = datagram.len().checked_sub(TRAILER_LEN) else {
            return Err(Rejected::Unsealed);
        };
        let (inner, trailer) = datagram.split_at(at);
        if trailer[..2] != MAGIC || trailer[2] != VERSION {
            return Err(Rejected::Unsealed);
        }
        let key = self.ring.get(trailer[3]).ok_or(Rejected::UnknownKey)?;
        mac_of(key, from, &datagram[..at + 12])
            .verify_truncated_left(&trailer[12..])
            .map_err(|_| Rejected::BadMac)?;
        let seq = u64::from_be_bytes(trailer[4..12].try_into().expect("8 bytes"));
        if !self.windows.contains_key(&from) && self.windows.len() >= MAX_SENDERS {
            return Err(Rejected::TooManySenders);
        }
        if !self.windows.entry(from).or_default().admit(seq) {
            return Err(Rejected::Replayed);
        }
        Ok(inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 255, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 255, 2);
    const KEY1: &str = "1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const KEY2: &str = "2 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    fn ring(text: &str) -> Keyring {
        Keyring::parse(text).expect("keys")
    }

    fn sealed(sealer: &mut Sealer, body: &[u8]) -> Vec<u8> {
        let mut d = body.to_vec();
        sealer.seal(&mut d);
        d
    }

    #[test]
    fn a_sealed_datagram_opens_to_its_body_once() {
        let mut s = Sealer::new(&ring(KEY1), A, 1000);
        let mut o = Opener::new(ring(KEY1));
        let d = sealed(&mut s, b"pfsync bytes");
        assert_eq!(d.len(), 12 + TRAILER_LEN);
        assert_eq!(o.open(A, &d), Ok(&b"pfsync bytes"[..]));
        assert_eq!(o.open(A, &d), Err(Rejected::Replayed), "a replay");
        assert_eq!(o.stats().accepted, 1);
        assert_eq!(o.stats().replayed, 1);
    }

    #[test]
    fn a_changed_byte_a_wrong_key_or_another_senders_address_fails_the_mac() {
        let mut s = Sealer::new(&ring(KEY1), A, 1000);
        let mut o = Opener::new(ring(KEY1));
        let d = sealed(&mut s, b"pfsync bytes");
        for i in 0..d.len() {
            let mut bad = d.clone();
            bad[i] ^= 0x01;
            assert!(o.open(A, &bad).is_err(), "byte {i} flipped");
        }
        assert_eq!(o.open(B, &d), Err(Rejected::BadMac), "replayed as from B");
        // Key id 1, other bytes: BadMac; an id we do not hold: UnknownKey.
        let other = "1 ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
        let mut forger = Sealer::new(&ring(other), A, 1000);
        assert_eq!(o.open(A, &sealed(&mut forger, b"x")), Err(Rejected::BadMac));
        let mut stranger = Sealer::new(&ring(KEY2), A, 1000);
        assert_eq!(
            o.open(A, &sealed(&mut stranger, b"x")),
            Err(Rejected::UnknownKey)
        );
        assert_eq!(o.open(A, b"plain pfsync"), Err(Rejected::Unsealed));
        assert_eq!(o.open(A, &d), Ok(&b"pfsync bytes"[..]), "the genuine one");
    }

    #[test]
    fn during_a_rotation_both_keys_are_accepted() {
        let mut o = Opener::new(ring(&format!("{KEY2}\n{KEY1}\n")));
        let mut old = Sealer::new(&ring(KEY1), A, 1000);
        let mut new = Sealer::new(&ring(&format!("{KEY2}\n{KEY1}")), B, 1000);
        assert!(o.open(A, &sealed(&mut old, b"a")).is_ok());
        assert!(o.open(B, &sealed(&mut new, b"b")).is_ok());
    }

    #[test]
    fn the_replay_window_takes_late_packets_once_and_a_restart_starts_above() {
        let mut s = Sealer::new(&ring(KEY1), A, 1000);
        let mut o = Opener::new(ring(KEY1));
        let ds: Vec<Vec<u8>> = (0..100).map(|_| sealed(&mut s, b"d")).collect();
        assert!(o.open(A, &ds[99]).is_ok());
        assert!(o.open(A, &ds[50]).is_ok(), "late, inside the window");
        assert_eq!(o.open(A, &ds[50]), Err(Rejected::Replayed));
        assert_eq!(
            o.open(A, &ds[10]),
            Err(Rejected::Replayed),
            "below the window"
        );
        let mut restarted = Sealer::new(&ring(KEY1), A, 1001);
        assert!(o.open(A, &sealed(&mut restarted, b"d")).is_ok());
    }

    #[test]
    fn key_files_are_checked() {
        assert!(matches!(
            Keyring::parse("1 00ff"),
            Err(KeyError::TooShort { line: 1, len: 2 })
        ));
        assert_eq!(Keyring::parse("# none\n").err(), Some(KeyError::Count(0)));
        assert_eq!(
            Keyring::parse(&format!("{KEY1}\n{KEY1}")).err(),
            Some(KeyError::DuplicateId { line: 2, id: 1 })
        );
        assert_eq!(
            Keyring::parse("x 00").err(),
            Some(KeyError::Syntax { line: 1 })
        );
        assert_eq!(
            Keyring::parse(&format!("{KEY1}zz")).err(),
            Some(KeyError::Syntax { line: 1 })
        );
        let three = format!("{KEY1}\n{KEY2}\n3 {}", "ab".repeat(32));
        assert_eq!(Keyring::parse(&three).err(), Some(KeyError::Count(3)));
        assert_eq!(
            ring(&format!("# rotation\n{KEY2}\n\n{KEY1}")).sending_id(),
            2
        );
    }
}
