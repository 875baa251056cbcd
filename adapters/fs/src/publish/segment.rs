//! Segment files of the publish store: naming, creation, and the recovery scan.
//!
//! A segment is `<16 hex digits>.seg` in the store's directory. Its header carries the segment
//! id and the store's `last_seq` when the segment was started, so numbering survives even when
//! every older segment has been deleted. Records:
//!
//! | type | payload after the type byte | meaning |
//! |---|---|---|
//! | `0x02` store | seq (u64 LE), frame | keep `frame` under `seq` |
//! | `0x03` discard up to | seq (u64 LE) | `discard_up_to(seq)` |
//! | `0x04` discard one | seq (u64 LE) | `discard(seq)` |
//!
//! Recovery applies the records of all segments in order, exactly as the calls were applied
//! when they were written, so the recovered store is the store that was running.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::durable;
use crate::error::OpenError;
use crate::record::{self, Kind};
use crate::recover::{Item, Recovered, read_store_file};

pub(super) const T_STORE: u8 = 0x02;
pub(super) const T_DISCARD_UP_TO: u8 = 0x03;
pub(super) const T_DISCARD_ONE: u8 = 0x04;
/// Bytes in front of a stored frame: record header, type, sequence number.
pub(super) const STORE_OVERHEAD: u64 = record::REC_HDR as u64 + 1 + 8;

const SUFFIX: &str = ".seg";

/// The file of segment `id`.
pub(super) fn path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}{SUFFIX}"))
}

/// The segments in `dir`, oldest first; stale staging files are removed.
pub(super) fn list(dir: &Path) -> Result<Vec<u64>, OpenError> {
    let rd = std::fs::read_dir(dir).map_err(|e| OpenError::io(dir, "list", e))?;
    let mut ids = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| OpenError::io(dir, "list", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(stem) = name.strip_suffix(SUFFIX)
            && stem.len() == 16
            && let Ok(id) = u64::from_str_radix(stem, 16)
        {
            ids.push(id);
        } else if name.ends_with(".seg.tmp") {
            // A segment whose creation was interrupted before its rename: never part of the
            // store.
            let p = entry.path();
            std::fs::remove_file(&p).map_err(|e| OpenError::io(p, "remove", e))?;
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Create segment `id` (header only), durably when `sync`; returns it opened for appending
/// and its length.
pub(super) fn create(
    dir: &Path,
    id: u64,
    client_name: &str,
    last_seq: u64,
    sync: bool,
) -> std::io::Result<(File, u64)> {
    let bytes = header(client_name, id, last_seq);
    let file = durable::replace_file(&path(dir, id), &bytes, sync)?;
    Ok((file, bytes.len() as u64))
}

fn header(client_name: &str, id: u64, last_seq: u64) -> Vec<u8> {
    let mut extra = [0u8; 16];
    extra[..8].copy_from_slice(&id.to_le_bytes());
    extra[8..].copy_from_slice(&last_seq.to_le_bytes());
    record::header(Kind::Publish, client_name, &extra)
}

/// One record found by the scan.
pub(super) enum Op<'a> {
    /// The segment's header: `last_seq` when the segment was started (emitted first).
    Begin {
        base_seq: u64,
    },
    Store {
        seq: u64,
        /// Offset of the frame in the file.
        frame_at: u64,
        frame: &'a [u8],
    },
    DiscardUpTo(u64),
    DiscardOne(u64),
}

/// Read segment `id`, handing its header (as [`Op::Begin`]) and each record to `apply` in
/// order. A damaged tail is cut off when `is_last` (the only segment a crash can tear) and
/// refused otherwise.
pub(super) fn scan(
    dir: &Path,
    id: u64,
    client_name: &str,
    is_last: bool,
    mut apply: impl FnMut(Op<'_>) -> Result<(), &'static str>,
) -> Result<Recovered, OpenError> {
    read_store_file(
        &path(dir, id),
        Kind::Publish,
        client_name,
        is_last,
        |item| match item {
            Item::Header(extra) => {
                let (hid, base) = extra
                    .split_first_chunk::<8>()
                    .and_then(|(a, b)| Some((u64::from_le_bytes(*a), b.first_chunk::<8>()?)))
                    .ok_or("short segment header")?;
                if hid != id {
                    return Err("segment header names another segment");
                }
                apply(Op::Begin {
                    base_seq: u64::from_le_bytes(*base),
                })
            }
            Item::Record(at, payload) => apply(decode(at, payload).ok_or("unknown record")?),
        },
    )
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
        _ => None,
    }
}
