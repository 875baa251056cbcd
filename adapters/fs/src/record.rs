//! The on-disk framing both stores share.
//!
//! A store file is `magic (8 bytes) | version (u32 LE) | header record | record*`. A record is
//! `length (u32 LE) | crc32 (u32 LE) | payload`, where `length` counts the payload and the
//! CRC-32 (IEEE, `crc32fast`) covers the length field and the payload, so a zero-filled or
//! shifted tail never passes as a record. The payload's first byte is its type. The header
//! record's payload is `type | name length (u16 LE) | client name | kind-specific bytes`.
//!
//! Reading stops at the first record that is cut short, has an impossible length or a bad
//! checksum: everything from there on is the damaged tail (a crash can only tear the end of an
//! append-only file; an OS crash can also leave unwritten pages there, which read as zeros or old
//! bytes and fail the checksum).

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use crate::error::{OpenError, TailDamage};

/// The format version written and accepted.
pub(crate) const VERSION: u32 = 1;
/// Length and checksum in front of every payload.
pub(crate) const REC_HDR: usize = 8;
/// Magic and version in front of the header record.
pub(crate) const PREAMBLE: usize = 12;
/// The largest payload any store writes (a publish frame is at most 200 MB, protocol.md §1.4).
pub(crate) const MAX_PAYLOAD: u32 = 1 << 30;
/// Type byte of the header record (both kinds).
pub(crate) const T_HEADER: u8 = 0x01;

/// Which store a file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Publish,
    Bookmark,
}

impl Kind {
    fn magic(self) -> &'static [u8; 8] {
        match self {
            Kind::Publish => b"AMPSFSPS",
            Kind::Bookmark => b"AMPSFSBM",
        }
    }
}

/// Start a record at the end of `buf`; fill in its payload, then call [`finish`].
pub(crate) fn begin(buf: &mut Vec<u8>, kind: u8) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&[0; REC_HDR]);
    buf.push(kind);
    at
}

/// Write the length and checksum of the record that starts at `at`.
pub(crate) fn finish(buf: &mut [u8], at: usize) {
    let Some(rec) = buf.get_mut(at..) else { return };
    let Some((hdr, payload)) = rec.split_first_chunk_mut::<REC_HDR>() else {
        return;
    };
    // Callers never build a payload above MAX_PAYLOAD (they check sizes first).
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(payload);
    hdr[..4].copy_from_slice(&len);
    hdr[4..].copy_from_slice(&crc.finalize().to_le_bytes());
}

/// The preamble and header record of a new file.
pub(crate) fn header(kind: Kind, client_name: &str, extra: &[u8]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(PREAMBLE + REC_HDR + 3 + client_name.len() + extra.len());
    buf.extend_from_slice(kind.magic());
    buf.extend_from_slice(&VERSION.to_le_bytes());
    let at = begin(&mut buf, T_HEADER);
    // Client names are at most 128 bytes (the session's limit); longer ones are refused by
    // `open` before this is called.
    buf.extend_from_slice(&(client_name.len() as u16).to_le_bytes());
    buf.extend_from_slice(client_name.as_bytes());
    buf.extend_from_slice(extra);
    finish(&mut buf, at);
    buf
}

/// What is wrong with a file's preamble or header record.
#[derive(Debug)]
pub(crate) enum HeaderError {
    Io(io::Error),
    NotAStore,
    Version(u32),
    /// The header record itself is torn or corrupt.
    Corrupt(&'static str),
    ClientName(String),
}

impl HeaderError {
    /// The error `open` reports for a bad header of the file at `path`.
    pub(crate) fn into_open_error(self, path: &Path, expected: &str) -> OpenError {
        let path = path.to_path_buf();
        match self {
            HeaderError::Io(e) => OpenError::io(path, "read", e),
            HeaderError::NotAStore => OpenError::NotAStore { path },
            HeaderError::Version(found) => OpenError::Version {
                path,
                found,
                supported: VERSION,
            },
            HeaderError::Corrupt(what) => OpenError::Corrupt {
                path,
                offset: PREAMBLE as u64,
                what,
            },
            HeaderError::ClientName(found) => OpenError::ClientName {
                path,
                expected: expected.to_string(),
                found,
            },
        }
    }
}

/// One step of reading a log.
pub(crate) enum Next<'a> {
    /// A valid record: its offset in the file and its payload (type byte first).
    Record(u64, &'a [u8]),
    /// The clean end of the file.
    End,
    /// A damaged tail starting at this offset.
    Damaged(u64, TailDamage),
}

/// Sequential, verifying reader of a store file.
pub(crate) struct Reader {
    r: BufReader<File>,
    pos: u64,
    len: u64,
    buf: Vec<u8>,
}

impl Reader {
    /// Read `file` (whose length is `len`) from the start.
    pub(crate) fn new(file: File, len: u64) -> Reader {
        Reader {
            r: BufReader::with_capacity(64 * 1024, file),
            pos: 0,
            len,
            buf: Vec::new(),
        }
    }

    /// Offset of the next unread byte.
    #[cfg(test)]
    pub(crate) fn pos(&self) -> u64 {
        self.pos
    }

    /// Check the preamble and the header record; return the header's kind-specific bytes.
    pub(crate) fn header(&mut self, kind: Kind, client_name: &str) -> Result<Vec<u8>, HeaderError> {
        let mut pre = [0u8; PREAMBLE];
        if self.len < PREAMBLE as u64 {
            return Err(HeaderError::NotAStore);
        }
        self.r.read_exact(&mut pre).map_err(HeaderError::Io)?;
        self.pos = PREAMBLE as u64;
        let (magic, version) = pre.split_at(8);
        if magic != kind.magic() {
            return Err(HeaderError::NotAStore);
        }
        let version = u32::from_le_bytes(version.try_into().unwrap_or([0; 4]));
        if version != VERSION {
            return Err(HeaderError::Version(version));
        }
        let payload = match self.next().map_err(HeaderError::Io)? {
            Next::Record(_, p) => p,
            Next::End | Next::Damaged(..) => return Err(HeaderError::Corrupt("torn header")),
        };
        let (&t, rest) = payload
            .split_first()
            .ok_or(HeaderError::Corrupt("empty header"))?;
        let (n, rest) = rest
            .split_first_chunk::<2>()
            .ok_or(HeaderError::Corrupt("short header"))?;
        let n = usize::from(u16::from_le_bytes(*n));
        if t != T_HEADER || rest.len() < n {
            return Err(HeaderError::Corrupt("bad header record"));
        }
        let (name, extra) = rest.split_at(n);
        if name != client_name.as_bytes() {
            return Err(HeaderError::ClientName(
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
        Ok(extra.to_vec())
    }

    /// The next record, the end, or the start of a damaged tail. Never reads past the length
    /// the file had when opened, and never allocates more than the bytes that are there.
    pub(crate) fn next(&mut self) -> io::Result<Next<'_>> {
        let at = self.pos;
        let left = self.len - at.min(self.len);
        if left == 0 {
            return Ok(Next::End);
        }
        if left < REC_HDR as u64 {
            return Ok(Next::Damaged(at, TailDamage::Partial));
        }
        let mut hdr = [0u8; REC_HDR];
        self.r.read_exact(&mut hdr)?;
        let (len, crc) = hdr.split_at(4);
        let len_bytes: [u8; 4] = len.try_into().unwrap_or([0; 4]);
        let len = u32::from_le_bytes(len_bytes);
        let crc = u32::from_le_bytes(crc.try_into().unwrap_or([0; 4]));
        if len == 0 || len > MAX_PAYLOAD {
            return Ok(Next::Damaged(at, TailDamage::BadLength));
        }
        if u64::from(len) > left - REC_HDR as u64 {
            return Ok(Next::Damaged(at, TailDamage::Partial));
        }
        self.buf.resize(len as usize, 0);
        self.r.read_exact(&mut self.buf)?;
        let mut h = crc32fast::Hasher::new();
        h.update(&len_bytes);
        h.update(&self.buf);
        if h.finalize() != crc {
            return Ok(Next::Damaged(at, TailDamage::BadChecksum));
        }
        self.pos = at + REC_HDR as u64 + u64::from(len);
        Ok(Next::Record(at, &self.buf))
    }
}

/// Split a payload `type | u64 LE | rest`.
pub(crate) fn split_u64(payload: &[u8]) -> Option<(u64, &[u8])> {
    let (n, rest) = payload.get(1..)?.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*n), rest))
}

/// Split a payload `type | u16 LE | rest`.
pub(crate) fn split_u16(payload: &[u8]) -> Option<(u16, &[u8])> {
    let (n, rest) = payload.get(1..)?.split_first_chunk::<2>()?;
    Some((u16::from_le_bytes(*n), rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn reader_over(bytes: &[u8]) -> Reader {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        use std::io::Seek;
        f.rewind().unwrap();
        Reader::new(f, bytes.len() as u64)
    }

    fn file_with(records: &[&[u8]]) -> Vec<u8> {
        let mut buf = header(Kind::Publish, "me", b"xyz");
        for r in records {
            let at = begin(&mut buf, r[0]);
            buf.extend_from_slice(&r[1..]);
            finish(&mut buf, at);
        }
        buf
    }

    #[test]
    fn round_trip_and_header_checks() {
        let bytes = file_with(&[b"\x02abc", b"\x03"]);
        let mut r = reader_over(&bytes);
        assert_eq!(r.header(Kind::Publish, "me").unwrap(), b"xyz");
        let first = match r.next().unwrap() {
            Next::Record(at, p) => (at, p.to_vec()),
            _ => panic!("record expected"),
        };
        assert_eq!(first.1, b"\x02abc");
        assert!(matches!(r.next().unwrap(), Next::Record(_, b"\x03")));
        assert!(matches!(r.next().unwrap(), Next::End));

        let mut r = reader_over(&bytes);
        assert!(matches!(
            r.header(Kind::Publish, "you"),
            Err(HeaderError::ClientName(n)) if n == "me"
        ));
        let mut r = reader_over(&bytes);
        assert!(matches!(
            r.header(Kind::Bookmark, "me"),
            Err(HeaderError::NotAStore)
        ));
        let mut v2 = bytes.clone();
        v2[8] = 2;
        assert!(matches!(
            reader_over(&v2).header(Kind::Publish, "me"),
            Err(HeaderError::Version(2))
        ));
    }

    #[test]
    fn every_truncation_and_every_bit_flip_of_the_tail_is_detected() {
        let bytes = file_with(&[b"\x02first", b"\x02second record"]);
        let mut r = reader_over(&bytes);
        r.header(Kind::Publish, "me").unwrap();
        let last_start = match r.next().unwrap() {
            Next::Record(..) => r.pos(),
            _ => panic!(),
        };
        for cut in last_start as usize + 1..bytes.len() {
            let mut r = reader_over(&bytes[..cut]);
            r.header(Kind::Publish, "me").unwrap();
            assert!(matches!(r.next().unwrap(), Next::Record(..)));
            assert!(
                matches!(r.next().unwrap(), Next::Damaged(at, _) if at == last_start),
                "cut at {cut}"
            );
        }
        for byte in last_start as usize..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[byte] ^= 1 << bit;
                let mut r = reader_over(&b);
                r.header(Kind::Publish, "me").unwrap();
                assert!(matches!(r.next().unwrap(), Next::Record(..)));
                assert!(
                    matches!(r.next().unwrap(), Next::Damaged(at, _) if at == last_start),
                    "flip {byte}:{bit}"
                );
            }
        }
    }

    #[test]
    fn zero_filled_tail_is_not_a_record() {
        let mut bytes = file_with(&[b"\x02x"]);
        bytes.extend_from_slice(&[0; 64]);
        let mut r = reader_over(&bytes);
        r.header(Kind::Publish, "me").unwrap();
        assert!(matches!(r.next().unwrap(), Next::Record(..)));
        assert!(matches!(
            r.next().unwrap(),
            Next::Damaged(_, TailDamage::BadLength)
        ));
    }
}
