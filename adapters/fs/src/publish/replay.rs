//! Opening a publish store: the segments found on disk are read in order and their records
//! applied exactly as the running store applied the calls, so the recovered store is the store
//! that was running (segment.rs describes the records). Then what recovery decided is made
//! durable before the store is used: a torn tail cut off, or, in repair mode, the store
//! rewritten into one new segment without the damage.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use crate::durable::Staged;
use crate::error::{AtStake, Damage, OpenError, RecoveryReport, TailCut, TailDamage};
use crate::record;
use crate::vfs::{Vfs, VfsFile};

use super::segment::{self, Op, SUPERSEDES, T_SEQ_FLOOR, T_STORE};
use super::{Entry, Segment};

/// The store as the segments describe it.
pub(super) struct Found {
    pub(super) segments: VecDeque<Segment>,
    /// The newest segment, its valid length, and whether it is an older format (without a
    /// durable mark: the store moves to a new segment before writing).
    pub(super) active: (Arc<dyn VfsFile>, u64, bool),
    pub(super) entries: VecDeque<Entry>,
    pub(super) last_seq: u64,
    pub(super) report: RecoveryReport,
}

/// Read every segment in `dir` (creating the first one for a new store).
pub(super) fn recover(
    fs: &dyn Vfs,
    dir: &Path,
    client_name: &str,
    repair: bool,
) -> Result<Found, OpenError> {
    let io = |p: &Path, what, e| OpenError::io(p, what, e);
    let mut ids = segment::list(fs, dir)?;
    let mut report = RecoveryReport::default();
    if let Some(&last) = ids.last() {
        // Only a store written by an older version of this crate can hold an empty segment
        // (new segments are synced before they appear): nothing was in it.
        let p = segment::path(dir, last);
        if fs.file_len(&p).map_err(|e| io(&p, "stat", e))? == Some(0) {
            log::warn!("amps-fs: {}: removing an empty segment", p.display());
            fs.remove(&p).map_err(|e| io(&p, "remove", e))?;
            ids.pop();
            report.cut = Some(TailCut {
                path: p,
                offset: 0,
                bytes: 0,
                damage: TailDamage::Partial,
            });
        }
    }
    // A segment written by a repair holds the whole store: older ones are stale.
    let start = ids
        .iter()
        .rposition(|&id| {
            segment::peek(fs, dir, id, client_name).is_some_and(|h| h.flags & SUPERSEDES != 0)
        })
        .unwrap_or(0);
    let mut stale: Vec<u64> = ids.drain(..start).collect();

    let mut state = Replay::default();
    let mut segments = VecDeque::new();
    let mut active = None;
    let mut rewrite = false;
    for (i, &id) in ids.iter().enumerate() {
        let is_last = i + 1 == ids.len();
        let seq_before = state.last_seq;
        let (file, read) = segment::scan(fs, dir, id, client_name, repair, seq_before, |op| {
            state.apply(id, op)
        })?;
        report.records += read.records;
        rewrite |= !read.lost.is_empty();
        report.lost.extend(read.lost);
        segments.push_back(Segment {
            id,
            file: Arc::clone(&file),
            live: 0,
        });
        let old_format = read.version == record::VERSION_1;
        match read.cut {
            Some(cut) if !is_last && repair => {
                // Keep reading: everything after the tear is still wanted.
                rewrite = true;
                report.lost.push(Damage {
                    path: cut.path,
                    offset: cut.offset,
                    bytes: cut.bytes,
                    cause: cut.damage,
                    at_stake: AtStake::Messages {
                        after: state.last_seq,
                        before: None,
                    },
                });
            }
            Some(cut) if !is_last => {
                // A tear in a segment that is not the newest: the store did not sync (`Never`)
                // before starting the next one, so everything after the tear is newer and was
                // not on stable storage either. The newer segments go first, durably, so that
                // they cannot come back after the cut segment takes new records.
                for &newer in &ids[i + 1..] {
                    let p = segment::path(dir, newer);
                    log::warn!("amps-fs: {}: removing, after a torn segment", p.display());
                    fs.remove(&p).map_err(|e| io(&p, "remove", e))?;
                }
                fs.sync_dir(dir).map_err(|e| io(dir, "sync", e))?;
                active = Some((file, read.end, old_format));
                report.cut = Some(cut);
                break;
            }
            cut => {
                if cut.is_some() {
                    report.cut = cut;
                }
                if is_last {
                    active = Some((file, read.end, old_format));
                }
            }
        }
    }
    for e in &state.entries {
        if let Some(s) = segments.iter_mut().find(|s| s.id == e.segment) {
            s.live += 1;
        }
    }
    if rewrite {
        let next_id = ids.last().map_or(1, |&id| id + 1);
        let (seg, entries) = rewrite_store(fs, dir, client_name, next_id, &segments, &state)?;
        stale.extend(segments.iter().map(|s| s.id));
        remove_segments(fs, dir, &stale)?;
        let len = seg.file.size().map_err(|e| io(dir, "stat", e))?;
        return Ok(Found {
            active: (Arc::clone(&seg.file), len, false),
            segments: VecDeque::from([seg]),
            entries,
            last_seq: state.last_seq,
            report,
        });
    }
    if let (Some((file, end, _)), Some(cut)) = (&active, &report.cut)
        && cut.bytes > 0
    {
        // Durably, before anything new is written where the tail was.
        file.set_len(*end)
            .and_then(|()| file.sync_data())
            .map_err(|e| io(&cut.path, "cut a torn tail", e))?;
    }
    remove_segments(fs, dir, &stale)?;
    let active = match active {
        Some(a) => a,
        None => {
            report.created = report.cut.is_none();
            let (file, len) = segment::create(fs, dir, 1, client_name, state.last_seq)
                .map_err(|e| io(&segment::path(dir, 1), "create segment", e))?;
            segments.push_back(Segment {
                id: 1,
                file: Arc::clone(&file),
                live: 0,
            });
            (file, len, false)
        }
    };
    Ok(Found {
        segments,
        active,
        entries: state.entries,
        last_seq: state.last_seq,
        report,
    })
}

/// Remove segments, durably.
fn remove_segments(fs: &dyn Vfs, dir: &Path, ids: &[u64]) -> Result<(), OpenError> {
    for &id in ids {
        let p = segment::path(dir, id);
        match fs.remove(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(OpenError::io(p, "remove", e));
            }
            _ => {}
        }
    }
    if !ids.is_empty() {
        fs.sync_dir(dir)
            .map_err(|e| OpenError::io(dir, "sync", e))?;
    }
    Ok(())
}

/// Write the recovered store as segment `id`, which supersedes every older segment: its
/// unpersisted messages, then the sequence floor. Durable (and named) when this returns.
fn rewrite_store(
    fs: &dyn Vfs,
    dir: &Path,
    client_name: &str,
    id: u64,
    segments: &VecDeque<Segment>,
    state: &Replay,
) -> Result<(Segment, VecDeque<Entry>), OpenError> {
    let p = segment::path(dir, id);
    let err = |e| OpenError::io(&p, "write a repaired segment", e);
    let mut f = Staged::new(fs, &p).map_err(err)?;
    f.append(&segment::header(
        client_name,
        id,
        state.last_seq,
        SUPERSEDES,
    ))
    .map_err(err)?;
    let mut entries = VecDeque::with_capacity(state.entries.len());
    let mut rec = Vec::new();
    let mut frame = Vec::new();
    for e in &state.entries {
        let Some(s) = segments.iter().find(|s| s.id == e.segment) else {
            continue;
        };
        frame.resize(e.len as usize, 0);
        s.file.read_at(&mut frame, e.at).map_err(err)?;
        rec.clear();
        let at = record::begin(&mut rec, T_STORE);
        rec.extend_from_slice(&e.seq.to_le_bytes());
        rec.extend_from_slice(&frame);
        record::finish(&mut rec, at);
        let off = f.len();
        f.append(&rec).map_err(err)?;
        entries.push_back(Entry {
            seq: e.seq,
            segment: id,
            at: off + segment::STORE_OVERHEAD,
            len: e.len,
        });
    }
    rec.clear();
    let at = record::begin(&mut rec, T_SEQ_FLOOR);
    rec.extend_from_slice(&state.last_seq.to_le_bytes());
    record::finish(&mut rec, at);
    f.append(&rec).map_err(err)?;
    let len = f.len();
    f.write_at(&record::mark(len), record::MARK_AT)
        .map_err(err)?;
    let (file, _) = f.commit().map_err(err)?;
    log::warn!(
        "amps-fs: {}: store rewritten without its damage ({} messages kept)",
        p.display(),
        entries.len()
    );
    Ok((
        Segment {
            id,
            file,
            live: entries.len(),
        },
        entries,
    ))
}

/// The store rebuilt from the records, applying each as the running store did.
#[derive(Default)]
pub(crate) struct Replay {
    entries: VecDeque<Entry>,
    last_seq: u64,
}

impl Replay {
    /// Unpersisted messages so far.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn apply(&mut self, segment: u64, op: Op<'_>) -> Result<(), &'static str> {
        match op {
            Op::Begin(h) => {
                // `last_seq` when the segment was started: it keeps numbering right even when
                // older segments (holding only persisted messages) are gone.
                if let Some(h) = h {
                    self.last_seq = self.last_seq.max(h.base_seq);
                }
            }
            Op::Store {
                seq,
                frame_at,
                frame,
            } => {
                if seq <= self.last_seq && !self.entries.is_empty() {
                    return Err("sequence number out of order");
                }
                self.entries.push_back(Entry {
                    seq,
                    segment,
                    at: frame_at,
                    len: u32::try_from(frame.len()).map_err(|_| "frame too long")?,
                });
                self.last_seq = seq;
            }
            Op::DiscardUpTo(seq) => {
                while self.entries.front().is_some_and(|e| e.seq <= seq) {
                    self.entries.pop_front();
                }
            }
            Op::DiscardOne(seq) => {
                if self.entries.front().is_some_and(|e| e.seq == seq) {
                    self.entries.pop_front();
                }
            }
            Op::SeqFloor(seq) => self.last_seq = self.last_seq.max(seq),
        }
        Ok(())
    }
}
