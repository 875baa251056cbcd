//! Store files of `amps-fs` built from records, for the [`fs_store`](crate::fs_store) check,
//! so that the fuzzer gets past the checksums: the input gives each record's payload, this
//! writes its length and CRC-32.
//!
//! The layout is the one `adapters/fs/src/record.rs` documents: `preamble | header record |
//! record*`, where the preamble is `magic (8) | version (u32 LE)` followed, in version 2, by the
//! durable mark `length (u64 LE) | CRC-32 of those 8 bytes (u32 LE)`; each record is
//! `length (u32 LE) | crc32 (u32 LE) | payload`, the CRC over the length field and the payload;
//! the header record's payload is `0x01 | name length (u16 LE) | client name | extra`, where a
//! publish segment's extra is `segment id (u64 LE) | last_seq before it (u64 LE) | flags (u8)`
//! (version 1: no flags byte) and a bookmark log has none.
//!
//! The description a file is built from (what the fuzz input holds after its mode byte):
//!
//! - publish, version 2: `last_seq (8 bytes) | flags (1) | mark (1) | records`;
//! - publish, version 1: `last_seq (8 bytes) | records`;
//! - bookmark, version 2: `mark (1) | records`; version 1: `records`.
//!
//! `records` is a length byte and that many payload bytes (type byte first), repeated (a record
//! cut short by the end of the input keeps what there is); a length byte of [`RAW_TAIL`]
//! appends the rest of the input raw, as a torn or damaged tail. The mark byte `m` chooses the
//! durable mark: `m & 3` = 0, the header only (a new file, nothing synced since); 1, the whole
//! file; 2, a mark whose checksum is wrong; 3, the end of record `k = m >> 2` after the header
//! (what a sync after that record leaves), or, with fewer than `k` records, `64 × (k −
//! records)` bytes past the end of the file.

/// The segment id of the publish segment built (the first a store creates, the one
/// `amps_fs::fuzz::read_publish_segment` reads).
pub const SEGMENT_ID: u64 = 1;
/// A length byte that ends the records: the rest of the input is appended raw.
pub const RAW_TAIL: u8 = 0xff;

const MAGIC_PUBLISH: &[u8; 8] = b"AMPSFSPS";
const MAGIC_BOOKMARK: &[u8; 8] = b"AMPSFSBM";
/// Magic and version.
const PREAMBLE_V1: usize = 12;
/// Where the durable mark is, and its length.
const MARK_AT: usize = 12;
const MARK_LEN: usize = 12;
/// Record length and checksum.
const REC_HDR: usize = 8;

/// Which store a file belongs to, if it starts like one.
pub fn kind_of(file: &[u8]) -> Option<bool> {
    if file.starts_with(MAGIC_BOOKMARK) {
        Some(true)
    } else if file.starts_with(MAGIC_PUBLISH) {
        Some(false)
    } else {
        None
    }
}

fn record(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

fn mark(len: u64) -> [u8; MARK_LEN] {
    let mut m = [0u8; MARK_LEN];
    let l = len.to_le_bytes();
    m[..8].copy_from_slice(&l);
    m[8..].copy_from_slice(&crc32fast::hash(&l).to_le_bytes());
    m
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = rest.split_at(n.min(rest.len()));
    *rest = tail;
    head
}

/// A publish segment ([`SEGMENT_ID`]) or a bookmark log of `client_name`, in format version 1
/// (`v1`) or 2, built from the description `input` (see the module documentation).
pub fn from_records(bookmark: bool, v1: bool, client_name: &str, input: &[u8]) -> Vec<u8> {
    let mut rest = input;
    let mut out = Vec::with_capacity(64 + input.len() + input.len() / 2);
    out.extend_from_slice(if bookmark {
        MAGIC_BOOKMARK
    } else {
        MAGIC_PUBLISH
    });
    out.extend_from_slice(&(if v1 { 1u32 } else { 2 }).to_le_bytes());
    let mut header = vec![0x01];
    header.extend_from_slice(&(client_name.len() as u16).to_le_bytes());
    header.extend_from_slice(client_name.as_bytes());
    if !bookmark {
        let mut last = [0u8; 8];
        let l = take(&mut rest, 8);
        last[..l.len()].copy_from_slice(l);
        header.extend_from_slice(&SEGMENT_ID.to_le_bytes());
        header.extend_from_slice(&last);
        if !v1 {
            header.push(take(&mut rest, 1).first().copied().unwrap_or(0));
        }
    }
    let mark_byte = if v1 {
        None
    } else {
        out.extend_from_slice(&[0; MARK_LEN]);
        Some(take(&mut rest, 1).first().copied().unwrap_or(0))
    };
    record(&mut out, &header);
    // Where the header and each record end.
    let mut ends = vec![out.len() as u64];
    while let Some((&len, tail)) = rest.split_first() {
        if len == RAW_TAIL {
            out.extend_from_slice(tail);
            break;
        }
        let n = usize::from(len).min(tail.len());
        record(&mut out, &tail[..n]);
        ends.push(out.len() as u64);
        rest = &tail[n..];
    }
    if let Some(m) = mark_byte {
        let k = usize::from(m >> 2);
        let mut bytes = match m & 3 {
            0 => mark(ends[0]),
            1 => mark(out.len() as u64),
            2 => {
                let mut b = mark(ends[0]);
                b[MARK_LEN - 1] ^= 0x5a;
                b
            }
            _ => mark(
                ends.get(k)
                    .copied()
                    .unwrap_or_else(|| out.len() as u64 + 64 * (k - (ends.len() - 1)) as u64),
            ),
        };
        out[MARK_AT..MARK_AT + MARK_LEN].swap_with_slice(&mut bytes);
    }
    out
}

/// The description [`from_records`] rebuilds `file` from, for files the stores wrote (of
/// either kind and version): `None` if `file` is not such a file, or has a record of 255
/// bytes or more, or a mark the mark byte cannot express.
pub fn to_records(file: &[u8]) -> Option<Vec<u8>> {
    let bookmark = kind_of(file)?;
    let version = u32::from_le_bytes(file.get(8..12)?.try_into().ok()?);
    let v1 = match version {
        1 => true,
        2 => false,
        _ => return None,
    };
    let mut at = if v1 { PREAMBLE_V1 } else { MARK_AT + MARK_LEN };
    let mut out = Vec::new();
    let mut header_end = None;
    let mut ends = Vec::new();
    while at < file.len() {
        let hdr = file.get(at..at + REC_HDR)?;
        let len = u32::from_le_bytes(hdr[..4].try_into().ok()?) as usize;
        let payload = file.get(at + REC_HDR..at + REC_HDR + len)?;
        if header_end.is_none() {
            // 0x01 | name length | name | extra
            let n = usize::from(u16::from_le_bytes(payload.get(1..3)?.try_into().ok()?));
            let extra = payload.get(3 + n..)?;
            if !bookmark {
                // The segment id is always SEGMENT_ID here.
                out.extend_from_slice(extra.get(8..16)?);
                if !v1 {
                    out.push(*extra.get(16)?);
                }
            }
            header_end = Some((at + REC_HDR + len) as u64);
        } else {
            out.push(u8::try_from(len).ok().filter(|&l| l != RAW_TAIL)?);
            out.extend_from_slice(payload);
        }
        at += REC_HDR + len;
        ends.push(at as u64);
    }
    if !v1 {
        let m = file.get(MARK_AT..MARK_AT + MARK_LEN)?;
        let claimed = u64::from_le_bytes(m[..8].try_into().ok()?);
        let byte = if m != mark(claimed) {
            2
        } else if Some(claimed) == header_end {
            0
        } else if claimed == file.len() as u64 {
            1
        } else {
            let k = ends.iter().position(|&e| e == claimed)?;
            3 | u8::try_from(k).ok().filter(|&k| k < 64)? << 2
        };
        let mark_pos = if bookmark { 0 } else { 9 };
        out.insert(mark_pos, byte);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memfs::MemFs;
    use amps_core::store::{BookmarkStore, PublishStore};
    use amps_fs::{
        BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions, FsyncPolicy,
        OpenMode,
    };
    use std::path::Path;
    use std::sync::Arc;

    /// Files the stores wrote, under both a policy that never syncs and one that always does.
    fn written() -> Vec<Vec<u8>> {
        let mut files = Vec::new();
        for fsync in [FsyncPolicy::Never, FsyncPolicy::Always] {
            let fs = MemFs::new();
            let mode = || OpenMode::new().fs(Arc::new(fs.clone()));
            let dir = Path::new("/s/publish");
            let opts = FileStoreOptions {
                fsync,
                ..FileStoreOptions::default()
            };
            let mut p = FilePublishStore::open_with(dir, "fuzz", opts, mode()).unwrap();
            for seq in 1..=3 {
                p.store(seq, format!("frame {seq}").as_bytes()).unwrap();
            }
            p.discard_up_to(1);
            drop(p);
            files.push(fs.read(&dir.join("0000000000000001.seg")).unwrap());
            let log = Path::new("/s/bookmarks.log");
            let opts = BookmarkStoreOptions {
                fsync,
                ..BookmarkStoreOptions::default()
            };
            let mut b = FileBookmarkStore::open_with(log, "fuzz", opts, mode()).unwrap();
            b.log("s1", "1|1|").unwrap();
            b.log("s1", "1|2|").unwrap();
            b.discard("s1", "1|1|").unwrap();
            drop(b);
            files.push(fs.read(log).unwrap());
        }
        files
    }

    #[test]
    fn files_the_stores_write_round_trip_through_their_description() {
        for file in written() {
            let bookmark = kind_of(&file).unwrap();
            let desc = to_records(&file).unwrap();
            assert_eq!(from_records(bookmark, false, "fuzz", &desc), file);
            let s = if bookmark {
                amps_fs::fuzz::read_bookmark_log(&file, false)
            } else {
                amps_fs::fuzz::read_publish_segment(&file, false)
            };
            let s = s.unwrap();
            assert!(s.records > 0 && !s.torn && s.lost == 0);
        }
    }

    #[test]
    fn marks_and_version_1_are_built_as_described() {
        // publish: last_seq 7, flags 0, then the mark byte.
        let desc = |m: u8| [&7u64.to_le_bytes()[..], &[0, m, 2, 0x04, 9]].concat();
        let header_only = from_records(false, false, "fuzz", &desc(0));
        let whole = from_records(false, false, "fuzz", &desc(1));
        let bad = from_records(false, false, "fuzz", &desc(2));
        let past_end = from_records(false, false, "fuzz", &desc(3 | 2 << 2));
        let first = from_records(false, false, "fuzz", &desc(3 | 1 << 2));
        let claimed = |f: &[u8]| u64::from_le_bytes(f[12..20].try_into().unwrap());
        assert_eq!(claimed(&whole), whole.len() as u64);
        assert_eq!(claimed(&header_only), whole.len() as u64 - 10);
        assert_eq!(claimed(&past_end), whole.len() as u64 + 64);
        assert_eq!(claimed(&first), whole.len() as u64);
        assert_eq!(claimed(&bad), claimed(&header_only));
        assert_ne!(bad, header_only);
        for (f, d) in [(&header_only, 0), (&whole, 1), (&bad, 2)] {
            assert_eq!(to_records(f).unwrap(), desc(d));
        }
        // The mark at the end of the (only) record reads back as "the whole file"; one past
        // the end has no description.
        assert_eq!(to_records(&first).unwrap(), desc(1));
        assert_eq!(to_records(&past_end), None);
        let v1 = from_records(true, true, "fuzz", &[3, 0x10, 0, 0, RAW_TAIL, 1, 2]);
        assert_eq!(&v1[..12], b"AMPSFSBM\x01\0\0\0");
        assert!(v1.ends_with(&[1, 2]));
        let s = amps_fs::fuzz::read_bookmark_log(&v1, false);
        assert!(s.is_err() || s.unwrap().torn);
    }
}
