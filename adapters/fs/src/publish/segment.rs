//! Segment files of the publish store: naming, creation, and the recovery scan.
//!
//! A segment is `<16 hex digits>.seg` in the store's directory. Its header carries the segment
//! id, the store's `last_seq` when the segment was started (so numbering survives even when
//! every older segment has been deleted) and flags. Records:
//!
//! | type | payload after the type byte | meaning |
//! |---|---|---|
//! | `0x02` store | seq (u64 LE), frame | keep `frame` under `seq` |
//! | `0x03` discard up to | seq (u64 LE) | `discard_up_to(seq)` |
//! | `0x04` discard one | seq (u64 LE) | `discard(seq)` |
//! | `0x05` sequence floor | seq (u64 LE) | `last_seq` is at least `seq` (written by a repair) |
//!
//! Recovery applies the records of all segments in order, exactly as the calls were applied
//! when they were written, so the recovered store is the store that was running. A segment
//! whose header has the [`SUPERSEDES`] flag (written by a repair) holds the whole store: older
//! segments are ignored and deleted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::durable;
use crate::error::OpenError;
use crate::record::{self, FileSource, Kind};
use crate::scan::{self, Item, ScanOptions, Scanned};
use crate::vfs::{Vfs, VfsFile};

pub(super) const T_STORE: u8 = 0x02;
pub(super) const T_DISCARD_UP_TO: u8 = 0x03;
pub(super) const T_DISCARD_ONE: u8 = 0x04;
pub(super) const T_SEQ_FLOOR: u8 = 0x05;
/// Bytes in front of a stored frame: record header, type, sequence number.
pub(super) const STORE_OVERHEAD: u64 = record::REC_HDR as u64 + 1 + 8;
/// Header flag: this segment holds the whole store; older segments are stale.
pub(super) const SUPERSEDES: u8 = 1;

const SUFFIX: &str = ".seg";

/// The file of segment `id`.
pub(super) fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}{SUFFIX}"))
}

/// The segments in `dir`, oldest first; stale staging files are removed.
pub(super) fn list(fs: &dyn Vfs, dir: &Path) -> Result<Vec<u64>, OpenError> {
    let names = fs.list(dir).map_err(|e| OpenError::io(dir, "list", e))?;
    let mut ids = Vec::new();
    for name in names {
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(SUFFIX)
            && stem.len() == 16
            && let Ok(id) = u64::from_str_radix(stem, 16)
        {
            ids.push(id);
        } else if name.ends_with(".seg.tmp") {
            // A segment whose creation was interrupted before its rename: never part of the
            // store.
            let p = dir.join(name);
            fs.remove(&p).map_err(|e| OpenError::io(p, "remove", e))?;
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Create segment `id` (header only), durably whatever the policy; returns it and its length.
pub(super) fn create(
    fs: &dyn Vfs,
    dir: &Path,
    id: u64,
    client_name: &str,
    last_seq: u64,
) -> std::io::Result<(Arc<dyn VfsFile>, u64)> {
    durable::replace_file(fs, &path(dir, id), &header(client_name, id, last_seq, 0))
}

/// The preamble and header of segment `id`.
pub(super) fn header(client_name: &str, id: u64, last_seq: u64, flags: u8) -> Vec<u8> {
    let mut extra = [0u8; 17];
    extra[..8].copy_from_slice(&id.to_le_bytes());
    extra[8..16].copy_from_slice(&last_seq.to_le_bytes());
    extra[16] = flags;
    record::header(Kind::Publish, client_name, &extra)
}

/// A segment header's fields.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SegHeader {
    pub(super) id: u64,
    pub(super) base_seq: u64,
    pub(super) flags: u8,
}

fn decode_header(extra: &[u8]) -> Option<SegHeader> {
    let (id, rest) = extra.split_first_chunk::<8>()?;
    let (base, rest) = rest.split_first_chunk::<8>()?;
    let flags = match rest {
        [] => 0, // version 1
        [f] => *f,
        _ => return None,
    };
    Some(SegHeader {
        id: u64::from_le_bytes(*id),
        base_seq: u64::from_le_bytes(*base),
        flags,
    })
}

/// The header of segment `id` if it is valid and this client's (anything else is left to
/// [`scan`] to report).
pub(super) fn peek(fs: &dyn Vfs, dir: &Path, id: u64, client_name: &str) -> Option<SegHeader> {
    let file = fs.open(&path(dir, id)).ok()?;
    let len = file.size().ok()?;
    let mut src = FileSource::new(file, len);
    let h = record::read_header(&mut src, Kind::Publish, client_name).ok()?;
    h.end?;
    decode_header(&h.extra).filter(|s| s.id == id)
}

/// One record found by the scan.
pub(crate) enum Op<'a> {
    /// The segment's header (first); `None` when it was damaged and skipped by a repair.
    Begin(Option<SegHeader>),
    Store {
        seq: u64,
        /// Offset of the frame in the file.
        frame_at: u64,
        frame: &'a [u8],
    },
    DiscardUpTo(u64),
    DiscardOne(u64),
    SeqFloor(u64),
}

/// The sequence number of a store record's payload.
pub(crate) fn store_seq(payload: &[u8]) -> Option<u64> {
    match payload.first() {
        Some(&T_STORE) => record::split_u64(payload).map(|(seq, _)| seq),
        _ => None,
    }
}

/// Read segment `id` (whose predecessors stored up to `seq_before`), handing its header and
/// each record to `apply` in order; see [`scan::scan`] for how damage is handled.
pub(super) fn scan(
    fs: &dyn Vfs,
    dir: &Path,
    id: u64,
    client_name: &str,
    repair: bool,
    seq_before: u64,
    apply: impl FnMut(Op<'_>) -> Result<(), &'static str>,
) -> Result<(Arc<dyn VfsFile>, Scanned), OpenError> {
    let p = path(dir, id);
    let file = fs.open(&p).map_err(|e| OpenError::io(&p, "open", e))?;
    let len = file.size().map_err(|e| OpenError::io(&p, "stat", e))?;
    let mut src = FileSource::new(Arc::clone(&file), len);
    let o = ScanOptions {
        path: &p,
        kind: Kind::Publish,
        client_name,
        repair,
        seq_of: store_seq,
        seq_before,
    };
    let read = read_segment(&mut src, &o, id, apply)?;
    Ok((file, read))
}

/// The scan of a segment's bytes (also what the fuzzing entry point runs).
pub(crate) fn read_segment<S: record::Source + ?Sized>(
    src: &mut S,
    o: &ScanOptions<'_>,
    id: u64,
    mut apply: impl FnMut(Op<'_>) -> Result<(), &'static str>,
) -> Result<Scanned, OpenError> {
    scan::scan(src, o, |item| match item {
        Item::Header(Some(extra)) => {
            let h = decode_header(extra).ok_or("bad segment header")?;
            if h.id != id {
                return Err("segment header names another segment");
            }
            apply(Op::Begin(Some(h)))
        }
        Item::Header(None) => apply(Op::Begin(None)),
        Item::Record(at, payload) => apply(decode(at, payload).ok_or("unknown record")?),
    })
}

fn decode(at: u64, payload: &[u8]) -> Option<Op<'_>> {
    let (seq, rest) = record::split_u64(payload)?;
    match *payload.first()? {
        T_STORE => Some(Op::Store {
            seq,
            frame_at: at + STORE_OVERHEAD,
            frame: rest,
        }),
        T_DISCARD_UP_TO if rest.is_empty() => Some(Op::DiscardUpTo(seq)),
        T_DISCARD_ONE if rest.is_empty() => Some(Op::DiscardOne(seq)),
        T_SEQ_FLOOR if rest.is_empty() => Some(Op::SeqFloor(seq)),
        _ => None,
    }
}
