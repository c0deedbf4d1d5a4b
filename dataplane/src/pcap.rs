//! Classic libpcap capture files: a streaming reader (microsecond and nanosecond magic, either byte order)
//! and a writer (little-endian, microseconds, LINKTYPE_ETHERNET) over any `io::Read` or `io::Write`. The
//! reader never panics on a truncated or garbage file; it returns a [`PcapError`]. pcapng, the newer
//! format, is not read: `tcpdump -w` and DPDK's `net_pcap` write the classic one. What is in the frames is
//! the wire module's business.
//!
//! The layout follows the libpcap file format (draft-ietf-opsawg-pcap): a 24-byte file header, then
//! records of a 16-byte header and the captured bytes.

use std::io::{self, Read, Write};
use std::time::Duration;

/// LINKTYPE_ETHERNET: frames start with an Ethernet header.
pub const LINKTYPE_ETHERNET: u32 = 1;

/// The magic of a file with microsecond timestamps, as written in the file's own byte order.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
/// The magic of a file with nanosecond timestamps.
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
/// The largest record the reader accepts regardless of the snapshot length: 256 KiB, libpcap's own
/// maximum snapshot length. A bigger length field means a corrupt file, not a big packet, and must not
/// make the reader allocate it.
pub const MAX_RECORD_LEN: u32 = 262_144;
/// The snapshot length the writer declares.
pub const DEFAULT_SNAPLEN: u32 = 65_535;

/// Why a capture file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PcapError {
    /// Reading or writing failed.
    #[error("pcap I/O: {0}")]
    Io(#[from] io::Error),
    /// The file does not start with a classic pcap magic number (pcapng starts 0x0a0d0d0a).
    #[error("not a classic pcap file (magic {0:#010x})")]
    BadMagic(u32),
    /// A version other than 2.x.
    #[error("unsupported pcap version {major}.{minor}")]
    UnsupportedVersion {
        /// Major version.
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// The file ends inside a header or a record.
    #[error("pcap file truncated inside {what}")]
    Truncated {
        /// Which part was cut.
        what: &'static str,
    },
    /// A record claims more bytes than any capture holds.
    #[error("pcap record of {len} bytes exceeds the {limit}-byte limit")]
    RecordTooLong {
        /// Captured length the record claims.
        len: u32,
        /// The limit.
        limit: u32,
    },
    /// A record's sub-second field is not below one second.
    #[error("pcap timestamp fraction {0} is out of range")]
    BadTimestamp(u32),
}

/// The resolution of a file's timestamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Microseconds.
    Micros,
    /// Nanoseconds.
    Nanos,
}

/// One captured frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Time since the Unix epoch.
    pub timestamp: Duration,
    /// The frame's length on the wire; more than `data.len()` when the capture cut it.
    pub orig_len: u32,
    /// The captured bytes.
    pub data: &'a [u8],
}

/// Reads exactly `buf.len()` bytes, or reports how many it got before end of file.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(got)
}

/// A streaming reader of a classic pcap file. Each record borrows the reader's buffer until the next call.
#[derive(Debug)]
pub struct PcapReader<R: Read> {
    reader: R,
    big_endian: bool,
    resolution: Resolution,
    snaplen: u32,
    linktype: u32,
    buffer: Vec<u8>,
}

impl<R: Read> PcapReader<R> {
    /// Reads and checks the file header.
    pub fn new(mut reader: R) -> Result<PcapReader<R>, PcapError> {
        let mut header = [0u8; FILE_HEADER_LEN];
        if read_full(&mut reader, &mut header)? < FILE_HEADER_LEN {
            return Err(PcapError::Truncated {
                what: "the file header",
            });
        }
        let magic = [header[0], header[1], header[2], header[3]];
        let (big_endian, resolution) = match (u32::from_le_bytes(magic), u32::from_be_bytes(magic))
        {
            (MAGIC_MICROS, _) => (false, Resolution::Micros),
            (MAGIC_NANOS, _) => (false, Resolution::Nanos),
            (_, MAGIC_MICROS) => (true, Resolution::Micros),
            (_, MAGIC_NANOS) => (true, Resolution::Nanos),
            (_, other) => return Err(PcapError::BadMagic(other)),
        };
        let u16_at = |at: usize| {
            let b = [header[at], header[at + 1]];
            if big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let u32_at = |at: usize| read_u32(&header[at..at + 4], big_endian);
        let (major, minor) = (u16_at(4), u16_at(6));
        if major != 2 {
            return Err(PcapError::UnsupportedVersion { major, minor });
        }
        Ok(PcapReader {
            reader,
            big_endian,
            resolution,
            snaplen: u32_at(16),
            // The top four bits may carry an FCS length (draft-ietf-opsawg-pcap section 4); the link type
            // proper is the low 16 bits.
            linktype: u32_at(20) & 0xffff,
            buffer: Vec::new(),
        })
    }

    /// The link type of every record (1 for Ethernet).
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// The snapshot length the file declares.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// The timestamp resolution.
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// The next record, `None` at a clean end of file, or an error for a cut or corrupt record.
    pub fn next_record(&mut self) -> Result<Option<Record<'_>>, PcapError> {
        let mut header = [0u8; RECORD_HEADER_LEN];
        match read_full(&mut self.reader, &mut header)? {
            0 => return Ok(None),
            RECORD_HEADER_LEN => {}
            _ => {
                return Err(PcapError::Truncated {
                    what: "a record header",
                });
            }
        }
        let field = |i: usize| read_u32(&header[i * 4..i * 4 + 4], self.big_endian);
        let (secs, frac, incl_len, orig_len) = (field(0), field(1), field(2), field(3));
        // Writers may store a snaplen of 0 or one smaller than their records; only the absolute limit is
        // trusted.
        if incl_len > MAX_RECORD_LEN {
            return Err(PcapError::RecordTooLong {
                len: incl_len,
                limit: MAX_RECORD_LEN,
            });
        }
        let nanos = match self.resolution {
            Resolution::Micros if frac < 1_000_000 => frac * 1_000,
            Resolution::Nanos if frac < 1_000_000_000 => frac,
            _ => return Err(PcapError::BadTimestamp(frac)),
        };
        let len = incl_len as usize;
        self.buffer.resize(len, 0);
        if read_full(&mut self.reader, &mut self.buffer)? < len {
            return Err(PcapError::Truncated {
                what: "a record's data",
            });
        }
        Ok(Some(Record {
            timestamp: Duration::new(u64::from(secs), nanos),
            orig_len,
            data: &self.buffer,
        }))
    }
}

fn read_u32(bytes: &[u8], big_endian: bool) -> u32 {
    let b = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// A writer of classic pcap files: little-endian, microsecond timestamps, Ethernet frames.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    writer: W,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header with snapshot length [`DEFAULT_SNAPLEN`].
    pub fn new(writer: W) -> io::Result<PcapWriter<W>> {
        PcapWriter::with_snaplen(writer, DEFAULT_SNAPLEN)
    }

    /// Writes the file header; frames longer than `snaplen` are cut to it.
    pub fn with_snaplen(mut writer: W, snaplen: u32) -> io::Result<PcapWriter<W>> {
        let mut header = [0u8; FILE_HEADER_LEN];
        header[0..4].copy_from_slice(&MAGIC_MICROS.to_le_bytes());
        header[4..6].copy_from_slice(&2u16.to_le_bytes());
        header[6..8].copy_from_slice(&4u16.to_le_bytes());
        // Bytes 8..16: time zone offset and timestamp accuracy, both zero in practice.
        header[16..20].copy_from_slice(&snaplen.to_le_bytes());
        header[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        writer.write_all(&header)?;
        Ok(PcapWriter { writer, snaplen })
    }

    /// Appends a frame seen at `timestamp` (since the Unix epoch; seconds past 2106 wrap, as the format's
    /// 32-bit field does).
    pub fn write_frame(&mut self, timestamp: Duration, frame: &[u8]) -> io::Result<()> {
        let orig_len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let incl_len = orig_len.min(self.snaplen);
        let mut header = [0u8; RECORD_HEADER_LEN];
        header[0..4].copy_from_slice(&(timestamp.as_secs() as u32).to_le_bytes());
        header[4..8].copy_from_slice(&timestamp.subsec_micros().to_le_bytes());
        header[8..12].copy_from_slice(&incl_len.to_le_bytes());
        header[12..16].copy_from_slice(&orig_len.to_le_bytes());
        self.writer.write_all(&header)?;
        self.writer.write_all(&frame[..incl_len as usize])
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start of a file written by tshark 4.x (`-F pcap`): the file header and the first record's
    /// header.
    static TSHARK_HEAD: [u8; 40] = [
        0xd4, 0xc3, 0xb2, 0xa1, // magic, little-endian, microseconds
        0x02, 0x00, 0x04, 0x00, // version 2.4
        0x00, 0x00, 0x00, 0x00, // time zone offset
        0x00, 0x00, 0x00, 0x00, // timestamp accuracy
        0x00, 0x00, 0x04, 0x00, // snapshot length 262144
        0x01, 0x00, 0x00, 0x00, // LINKTYPE_ETHERNET
        0xa0, 0x70, 0x06, 0x6b, // seconds 1795584160
        0x6d, 0x87, 0x0a, 0x00, // microseconds 690029
        0x6e, 0x00, 0x00, 0x00, // captured length 110
        0x6e, 0x00, 0x00, 0x00, // original length 110
    ];

    fn tshark_file() -> Vec<u8> {
        let mut file = TSHARK_HEAD.to_vec();
        file.extend((0..110u8).map(|i| i.wrapping_mul(7)));
        file
    }

    #[test]
    fn reads_a_file_written_by_tshark() {
        let file = tshark_file();
        let mut reader = PcapReader::new(&file[..]).unwrap();
        assert_eq!(reader.linktype(), LINKTYPE_ETHERNET);
        assert_eq!(reader.snaplen(), 262_144);
        assert_eq!(reader.resolution(), Resolution::Micros);
        let record = reader.next_record().unwrap().unwrap();
        assert_eq!(record.timestamp, Duration::new(1_795_584_160, 690_029_000));
        assert_eq!(record.orig_len, 110);
        assert_eq!(record.data, &file[40..]);
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn what_the_writer_writes_the_reader_reads_back() {
        let frames: [(Duration, Vec<u8>); 3] = [
            (Duration::new(10, 1_000), vec![1, 2, 3]),
            (Duration::new(11, 999_999_000), vec![]),
            (Duration::new(12, 0), vec![9; 1514]),
        ];
        let mut writer = PcapWriter::new(Vec::new()).unwrap();
        for (ts, frame) in &frames {
            writer.write_frame(*ts, frame).unwrap();
        }
        let file = writer.into_inner();
        // The same file header as tshark's but for the snapshot length, 65535 where tshark's is 262144.
        let mut expected = TSHARK_HEAD[..24].to_vec();
        expected[16..20].copy_from_slice(&65_535u32.to_le_bytes());
        assert_eq!(&file[..24], &expected[..]);
        let mut reader = PcapReader::new(&file[..]).unwrap();
        for (ts, frame) in &frames {
            let record = reader.next_record().unwrap().unwrap();
            assert_eq!((record.timestamp, record.data), (*ts, &frame[..]));
        }
        assert!(reader.next_record().unwrap().is_none());
    }

    #[test]
    fn the_writer_cuts_frames_to_the_snapshot_length() {
        let mut writer = PcapWriter::with_snaplen(Vec::new(), 4).unwrap();
        writer
            .write_frame(Duration::ZERO, &[1, 2, 3, 4, 5, 6])
            .unwrap();
        let file = writer.into_inner();
        let mut reader = PcapReader::new(&file[..]).unwrap();
        let record = reader.next_record().unwrap().unwrap();
        assert_eq!((record.data, record.orig_len), (&[1, 2, 3, 4][..], 6));
    }

    /// The tshark file rewritten big-endian with nanosecond timestamps.
    fn big_endian_nanos() -> Vec<u8> {
        let mut file = vec![0xa1, 0xb2, 0x3c, 0x4d, 0x00, 0x02, 0x00, 0x04];
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&262_144u32.to_be_bytes());
        file.extend_from_slice(&1u32.to_be_bytes());
        for value in [1_795_584_160u32, 690_029_123, 2, 60] {
            file.extend_from_slice(&value.to_be_bytes());
        }
        file.extend_from_slice(&[0xab, 0xcd]);
        file
    }

    #[test]
    fn reads_big_endian_nanosecond_files() {
        let file = big_endian_nanos();
        let mut reader = PcapReader::new(&file[..]).unwrap();
        assert_eq!(reader.resolution(), Resolution::Nanos);
        assert_eq!(reader.linktype(), LINKTYPE_ETHERNET);
        let record = reader.next_record().unwrap().unwrap();
        assert_eq!(record.timestamp, Duration::new(1_795_584_160, 690_029_123));
        assert_eq!((record.data, record.orig_len), (&[0xab, 0xcd][..], 60));
    }

    #[test]
    fn truncated_and_garbage_files_are_errors() {
        let file = tshark_file();
        assert!(matches!(
            PcapReader::new(&file[..10]),
            Err(PcapError::Truncated { .. })
        ));
        let pcapng = [0x0a, 0x0d, 0x0d, 0x0a].repeat(6);
        assert!(matches!(
            PcapReader::new(&pcapng[..]),
            Err(PcapError::BadMagic(0x0a0d_0d0a))
        ));
        let mut version_3 = file.clone();
        version_3[4] = 3;
        assert!(matches!(
            PcapReader::new(&version_3[..]),
            Err(PcapError::UnsupportedVersion { major: 3, minor: 4 })
        ));
        for (cut, what) in [(30, "a record header"), (100, "a record's data")] {
            let mut reader = PcapReader::new(&file[..cut]).unwrap();
            match reader.next_record() {
                Err(PcapError::Truncated { what: got }) => assert_eq!(got, what),
                other => panic!("expected a truncation, got {other:?}"),
            }
        }
        let mut huge = file.clone();
        huge[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut reader = PcapReader::new(&huge[..]).unwrap();
        assert!(matches!(
            reader.next_record(),
            Err(PcapError::RecordTooLong { .. })
        ));
        let mut bad_micros = file.clone();
        bad_micros[28..32].copy_from_slice(&1_000_000u32.to_le_bytes());
        let mut reader = PcapReader::new(&bad_micros[..]).unwrap();
        assert!(matches!(
            reader.next_record(),
            Err(PcapError::BadTimestamp(1_000_000))
        ));
    }

    #[test]
    fn random_bytes_never_panic_the_reader() {
        // A small xorshift stream: garbage after a valid header, and garbage headers.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..2_000 {
            let len = (next() % 200) as usize;
            let mut file: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if case % 2 == 0 {
                let mut valid = TSHARK_HEAD[..24].to_vec();
                valid.append(&mut file);
                file = valid;
            }
            if let Ok(mut reader) = PcapReader::new(&file[..]) {
                while let Ok(Some(_)) = reader.next_record() {}
            }
        }
    }
}
