//! The on-disk framing both stores share, and a verifying parser over any byte source.
//!
//! A store file is `preamble | header record | record*`:
//!
//! - preamble, version 2: `magic (8 bytes) | version (u32 LE) | durable mark (12 bytes)`;
//!   version 1 files (read, never written) have no mark;
//! - the durable mark is `length (u64 LE) | CRC-32 of those 8 bytes (u32 LE)`: the first
//!   `length` bytes of the file were on stable storage when the mark was written. The store
//!   rewrites it in place after each fsync of the file (it is a lower bound, so a mark lost by
//!   a power cut is harmless); it lives in the first 512-byte sector, which a power cut never
//!   tears;
//! - a record is `length (u32 LE) | crc32 (u32 LE) | payload`, where `length` counts the
//!   payload and the CRC-32 (IEEE, `crc32fast`) covers the length field and the payload, so a
//!   zero-filled or shifted tail never passes as a record. The payload's first byte is its
//!   type. The header record's payload is `type | name length (u16 LE) | client name |
//!   kind-specific bytes`.
//!
//! [`parse`] reads one record through a [`Source`] (a byte slice, or a file through a window),
//! never trusting a length before checking it against the bytes that are there, so the whole
//! reader can be fed arbitrary bytes (see `crate::fuzz`).

use std::io;
use std::sync::Arc;

use crate::error::TailDamage;
use crate::vfs::VfsFile;

/// The format version written.
pub(crate) const VERSION: u32 = 2;
/// The older format version still read (no durable mark).
pub(crate) const VERSION_1: u32 = 1;
/// Length and checksum in front of every payload.
pub(crate) const REC_HDR: usize = 8;
/// Offset of the durable mark.
pub(crate) const MARK_AT: u64 = 12;
/// Bytes of the durable mark.
pub(crate) const MARK_LEN: usize = 12;
/// Magic and version in front of the header record (version 1).
const PREAMBLE_V1: u64 = 12;
/// Magic, version and durable mark in front of the header record (version 2).
const PREAMBLE_V2: u64 = MARK_AT + MARK_LEN as u64;
/// The largest payload any store writes (a publish frame is at most 200 MB).
pub(crate) const MAX_PAYLOAD: u32 = 1 << 30;
/// Type byte of the header record (both kinds).
pub(crate) const T_HEADER: u8 = 0x01;
/// The unit a power cut writes whole or not at all (the smallest sector of common devices;
/// larger physical sectors are whole multiples of it).
pub(crate) const SECTOR: u64 = 512;

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
    hdr[..4].copy_from_slice(&len);
    hdr[4..].copy_from_slice(&checksum(&len, payload).to_le_bytes());
}

fn checksum(len: &[u8; 4], payload: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(len);
    crc.update(payload);
    crc.finalize()
}

/// The durable mark claiming the first `len` bytes.
pub(crate) fn mark(len: u64) -> [u8; MARK_LEN] {
    let mut m = [0u8; MARK_LEN];
    let l = len.to_le_bytes();
    m[..8].copy_from_slice(&l);
    m[8..].copy_from_slice(&crc32fast::hash(&l).to_le_bytes());
    m
}

fn decode_mark(m: &[u8]) -> Option<u64> {
    let (l, crc) = m.split_first_chunk::<8>()?;
    let crc = u32::from_le_bytes(crc.try_into().ok()?);
    (crc32fast::hash(l) == crc).then(|| u64::from_le_bytes(*l))
}

/// Set the durable mark of a file image built in memory (its first bytes).
pub(crate) fn set_mark(buf: &mut [u8], len: u64) {
    if let Some(m) = buf.get_mut(MARK_AT as usize..MARK_AT as usize + MARK_LEN) {
        m.copy_from_slice(&mark(len));
    }
}

/// The preamble and header record of a new file, whose mark claims the whole header (new
/// files are synced before they are renamed into place).
pub(crate) fn header(kind: Kind, client_name: &str, extra: &[u8]) -> Vec<u8> {
    let mut buf =
        Vec::with_capacity(PREAMBLE_V2 as usize + REC_HDR + 3 + client_name.len() + extra.len());
    buf.extend_from_slice(kind.magic());
    buf.extend_from_slice(&VERSION.to_le_bytes());
    buf.extend_from_slice(&[0; MARK_LEN]);
    let at = begin(&mut buf, T_HEADER);
    // Client names are at most 128 bytes (the session's limit); longer ones are refused by
    // `open` before this is called.
    buf.extend_from_slice(&(client_name.len() as u16).to_le_bytes());
    buf.extend_from_slice(client_name.as_bytes());
    buf.extend_from_slice(extra);
    finish(&mut buf, at);
    let len = buf.len() as u64;
    set_mark(&mut buf, len);
    buf
}

/// Where the bytes come from: random access to `len()` bytes.
pub(crate) trait Source {
    /// Bytes in the source.
    fn len(&self) -> u64;
    /// The `n` bytes at `at`; callers stay within `len()`.
    fn get(&mut self, at: u64, n: usize) -> io::Result<&[u8]>;
}

impl Source for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn get(&mut self, at: u64, n: usize) -> io::Result<&[u8]> {
        let bytes: &[u8] = self;
        usize::try_from(at)
            .ok()
            .and_then(|at| bytes.get(at..at.checked_add(n)?))
            .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
    }
}

/// A file read through a window of at least 64 KiB that moves forward with the reads.
pub(crate) struct FileSource {
    file: Arc<dyn VfsFile>,
    len: u64,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_at: u64,
}

impl FileSource {
    const WINDOW: usize = 64 * 1024;

    /// Read `file`, whose length is `len`.
    pub(crate) fn new(file: Arc<dyn VfsFile>, len: u64) -> FileSource {
        FileSource {
            file,
            len,
            buf: Vec::new(),
            buf_at: 0,
        }
    }
}

impl Source for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn get(&mut self, at: u64, n: usize) -> io::Result<&[u8]> {
        let end = at.checked_add(n as u64).filter(|&e| e <= self.len);
        let Some(end) = end else {
            return Err(io::ErrorKind::UnexpectedEof.into());
        };
        if at < self.buf_at || end > self.buf_at + self.buf.len() as u64 {
            let want = (self.len - at).min(n.max(Self::WINDOW) as u64) as usize;
            self.buf.resize(want, 0);
            self.buf_at = at;
            if let Err(e) = self.file.read_at(&mut self.buf, at) {
                self.buf.clear();
                return Err(e);
            }
        }
        let from = (at - self.buf_at) as usize;
        self.buf
            .get(from..from + n)
            .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
    }
}

/// What is at an offset of a store file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// The end of the file.
    End,
    /// A valid record with a payload of this many bytes.
    Record(u32),
    /// Not a valid record. `len`: the payload length its header announces, when the header is
    /// there and announces a possible length.
    Bad {
        damage: TailDamage,
        len: Option<u32>,
    },
}

/// The record at `at`. Never reads past `src.len()`, never allocates beyond the bytes there.
pub(crate) fn parse<S: Source + ?Sized>(src: &mut S, at: u64) -> io::Result<Parsed> {
    let left = src.len().saturating_sub(at);
    if left == 0 {
        return Ok(Parsed::End);
    }
    if left < REC_HDR as u64 {
        return Ok(Parsed::Bad {
            damage: TailDamage::Partial,
            len: None,
        });
    }
    let (len_bytes, crc) = header_fields(src.get(at, REC_HDR)?);
    let len = u32::from_le_bytes(len_bytes);
    if len == 0 || len > MAX_PAYLOAD {
        return Ok(Parsed::Bad {
            damage: TailDamage::BadLength,
            len: None,
        });
    }
    if u64::from(len) > left - REC_HDR as u64 {
        return Ok(Parsed::Bad {
            damage: TailDamage::Partial,
            len: Some(len),
        });
    }
    let payload = src.get(at + REC_HDR as u64, len as usize)?;
    if checksum(&len_bytes, payload) != crc {
        return Ok(Parsed::Bad {
            damage: TailDamage::BadChecksum,
            len: Some(len),
        });
    }
    Ok(Parsed::Record(len))
}

fn header_fields(hdr: &[u8]) -> ([u8; 4], u32) {
    let mut len = [0u8; 4];
    let mut crc = [0u8; 4];
    if let (Some(l), Some(c)) = (hdr.get(..4), hdr.get(4..REC_HDR)) {
        len.copy_from_slice(l);
        crc.copy_from_slice(c);
    }
    (len, u32::from_le_bytes(crc))
}

/// Whether the bad record at `at`, read as ending at `end` instead of where its length field
/// says, is a complete record with a valid checksum: its length field, not a write, was
/// damaged.
pub(crate) fn whole_but_length<S: Source + ?Sized>(
    src: &mut S,
    at: u64,
    end: u64,
) -> io::Result<bool> {
    let Some(len) = end
        .checked_sub(at + REC_HDR as u64)
        .and_then(|l| u32::try_from(l).ok())
        .filter(|&l| l > 0 && l <= MAX_PAYLOAD && end <= src.len())
    else {
        return Ok(false);
    };
    let (_, crc) = header_fields(src.get(at, REC_HDR)?);
    let payload = src.get(at + REC_HDR as u64, len as usize)?;
    Ok(checksum(&len.to_le_bytes(), payload) == crc)
}

/// A file's preamble and header record, checked.
#[derive(Debug)]
pub(crate) struct Header {
    /// The format version.
    pub(crate) version: u32,
    /// The durable mark: this many bytes were on stable storage. `None` for a version 1 file;
    /// a damaged mark reads as `Some(0)`.
    pub(crate) mark: Option<u64>,
    /// Whether the mark was damaged.
    pub(crate) bad_mark: bool,
    /// Offset of the header record.
    pub(crate) record_at: u64,
    /// Offset just past the header record (where records start), when it is valid.
    pub(crate) end: Option<u64>,
    /// The header record's kind-specific bytes, when it is valid and names this client.
    pub(crate) extra: Vec<u8>,
    /// How the header record is damaged, if it is.
    pub(crate) damage: Option<TailDamage>,
}

/// What is wrong with a preamble, in a way that says the file is not this store's.
#[derive(Debug)]
pub(crate) enum HeaderError {
    Io(io::Error),
    NotAStore,
    Version(u32),
    /// A valid header record with nonsense in it.
    Corrupt(&'static str),
    ClientName(String),
}

/// Check the preamble and the header record of a file of `kind` that must belong to
/// `client_name`. A damaged header record is reported in [`Header::damage`], not as an error,
/// so that the caller decides (refuse, or repair).
pub(crate) fn read_header<S: Source + ?Sized>(
    src: &mut S,
    kind: Kind,
    client_name: &str,
) -> Result<Header, HeaderError> {
    if src.len() < PREAMBLE_V1 {
        return Err(HeaderError::NotAStore);
    }
    let pre = src.get(0, PREAMBLE_V1 as usize).map_err(HeaderError::Io)?;
    let (magic, version) = pre.split_at(8);
    if magic != kind.magic() {
        return Err(HeaderError::NotAStore);
    }
    let version = u32::from_le_bytes(version.try_into().unwrap_or([0; 4]));
    let (record_at, mark, bad_mark) = match version {
        VERSION_1 => (PREAMBLE_V1, None, false),
        VERSION if src.len() >= PREAMBLE_V2 => {
            let m = src.get(MARK_AT, MARK_LEN).map_err(HeaderError::Io)?;
            match decode_mark(m) {
                Some(l) => (PREAMBLE_V2, Some(l), false),
                None => (PREAMBLE_V2, Some(0), true),
            }
        }
        VERSION => return Err(HeaderError::NotAStore),
        other => return Err(HeaderError::Version(other)),
    };
    let mut h = Header {
        version,
        mark,
        bad_mark,
        record_at,
        end: None,
        extra: Vec::new(),
        damage: None,
    };
    let len = match parse(src, record_at).map_err(HeaderError::Io)? {
        Parsed::Record(len) => len,
        Parsed::End => {
            h.damage = Some(TailDamage::Partial);
            return Ok(h);
        }
        Parsed::Bad { damage, .. } => {
            h.damage = Some(damage);
            return Ok(h);
        }
    };
    let payload = src
        .get(record_at + REC_HDR as u64, len as usize)
        .map_err(HeaderError::Io)?;
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
    h.extra = extra.to_vec();
    h.end = Some(record_at + REC_HDR as u64 + u64::from(len));
    Ok(h)
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
        let mut src = &bytes[..];
        let h = read_header(&mut src, Kind::Publish, "me").unwrap();
        assert_eq!(h.extra, b"xyz");
        assert_eq!((h.version, h.mark, h.bad_mark), (VERSION, h.end, false));
        let at = h.end.unwrap();
        assert_eq!(parse(&mut src, at).unwrap(), Parsed::Record(4));
        assert_eq!(parse(&mut src, at + 12).unwrap(), Parsed::Record(1));
        assert_eq!(parse(&mut src, at + 21).unwrap(), Parsed::End);

        assert!(matches!(
            read_header(&mut src, Kind::Publish, "you"),
            Err(HeaderError::ClientName(n)) if n == "me"
        ));
        assert!(matches!(
            read_header(&mut src, Kind::Bookmark, "me"),
            Err(HeaderError::NotAStore)
        ));
        let mut v9 = bytes.clone();
        v9[8] = 9;
        assert!(matches!(
            read_header(&mut &v9[..], Kind::Publish, "me"),
            Err(HeaderError::Version(9))
        ));
        let mut bad_mark = bytes.clone();
        bad_mark[MARK_AT as usize] ^= 4;
        let h = read_header(&mut &bad_mark[..], Kind::Publish, "me").unwrap();
        assert_eq!((h.mark, h.bad_mark), (Some(0), true));
    }

    #[test]
    fn every_truncation_and_every_bit_flip_of_a_record_is_detected() {
        let bytes = file_with(&[b"\x02first", b"\x02second record"]);
        let mut src = &bytes[..];
        let first = read_header(&mut src, Kind::Publish, "me")
            .unwrap()
            .end
            .unwrap();
        let last = first + REC_HDR as u64 + 6;
        for cut in last as usize + 1..bytes.len() {
            let mut src = &bytes[..cut];
            assert!(matches!(parse(&mut src, first).unwrap(), Parsed::Record(_)));
            assert!(
                matches!(
                    parse(&mut src, last).unwrap(),
                    Parsed::Bad {
                        damage: TailDamage::Partial,
                        ..
                    }
                ),
                "cut at {cut}"
            );
        }
        for byte in last as usize..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[byte] ^= 1 << bit;
                let mut src = &b[..];
                assert!(
                    matches!(parse(&mut src, last).unwrap(), Parsed::Bad { .. }),
                    "flip {byte}:{bit}"
                );
            }
        }
    }

    #[test]
    fn a_damaged_length_field_is_recognised() {
        let bytes = file_with(&[b"\x02first", b"\x02second record"]);
        let at = (bytes.len() - REC_HDR - 14) as u64;
        for bit in 0..32 {
            let mut b = bytes.clone();
            b[at as usize + bit / 8] ^= 1 << (bit % 8);
            let mut src = &b[..];
            assert!(whole_but_length(&mut src, at, b.len() as u64).unwrap());
            let mut intact = &bytes[..];
            assert!(whole_but_length(&mut intact, at, bytes.len() as u64).unwrap());
            assert!(!whole_but_length(&mut intact, at, bytes.len() as u64 - 1).unwrap());
        }
    }

    #[test]
    fn file_source_windows_agree_with_the_slice() {
        use crate::vfs::{RealFs, Vfs};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut src = FileSource::new(RealFs.open(&path).unwrap(), bytes.len() as u64);
        for (at, n) in [(0u64, 10usize), (70_000, 100_000), (5, 3), (199_990, 10)] {
            let want = &bytes[at as usize..at as usize + n];
            assert_eq!(src.get(at, n).unwrap(), want);
        }
        assert!(src.get(199_995, 10).is_err());
    }
}
