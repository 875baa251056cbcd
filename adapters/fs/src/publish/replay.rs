//! Opening a publish store: the segments found on disk are read in order and their records
//! applied exactly as the running store applied the calls, so the recovered store is the store
//! that was running (segment.rs describes the records).

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use crate::error::{OpenError, RecoveryReport, TailCut, TailDamage};
use crate::options::FsyncPolicy;

use super::segment::{self, Op};
use super::{Entry, Segment};

/// The store as the segments describe it.
pub(super) struct Found {
    pub(super) segments: VecDeque<Segment>,
    /// The newest segment, opened for appending, and its valid length.
    pub(super) active: (File, u64),
    pub(super) entries: VecDeque<Entry>,
    pub(super) last_seq: u64,
    pub(super) report: RecoveryReport,
}

/// Read every segment in `dir` (creating the first one for a new store).
pub(super) fn recover(
    dir: &Path,
    client_name: &str,
    fsync: FsyncPolicy,
) -> Result<Found, OpenError> {
    let mut ids = segment::list(dir)?;
    let mut report = RecoveryReport::default();
    if let Some(&last) = ids.last() {
        // Under `FsyncPolicy::Never` an OS crash can leave a renamed but empty new segment.
        let p = segment::path(dir, last);
        let len = std::fs::metadata(&p).map_err(|e| OpenError::io(&p, "stat", e))?;
        if len.len() == 0 {
            log::warn!("amps-fs: {}: removing an empty segment", p.display());
            std::fs::remove_file(&p).map_err(|e| OpenError::io(&p, "remove", e))?;
            ids.pop();
            report.cut = Some(TailCut {
                path: p,
                offset: 0,
                bytes: 0,
                damage: TailDamage::Partial,
            });
        }
    }

    let mut state = Replay::default();
    let mut segments = VecDeque::new();
    let mut active = None;
    for (i, &id) in ids.iter().enumerate() {
        let is_last = i + 1 == ids.len();
        let read = segment::scan(dir, id, client_name, is_last, |op| state.apply(id, op))?;
        report.records += read.records;
        if read.cut.is_some() {
            report.cut = read.cut;
        }
        segments.push_back(Segment {
            id,
            file: shared(&read.file, dir, id)?,
            live: 0,
        });
        if is_last {
            active = Some((read.file, read.len));
        }
    }
    for e in &state.entries {
        if let Some(s) = segments.iter_mut().find(|s| s.id == e.segment) {
            s.live += 1;
        }
    }
    let active = match active {
        Some(a) => a,
        None => {
            report.created = report.cut.is_none();
            let sync = fsync != FsyncPolicy::Never;
            let (file, len) = segment::create(dir, 1, client_name, state.last_seq, sync)
                .map_err(|e| OpenError::io(segment::path(dir, 1), "create segment", e))?;
            segments.push_back(Segment {
                id: 1,
                file: shared(&file, dir, 1)?,
                live: 0,
            });
            (file, len)
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

/// A second handle on a segment, for reading frames back.
fn shared(file: &File, dir: &Path, id: u64) -> Result<Arc<File>, OpenError> {
    file.try_clone()
        .map(Arc::new)
        .map_err(|e| OpenError::io(segment::path(dir, id), "open", e))
}

/// The store rebuilt from the records, applying each as the running store did.
#[derive(Default)]
struct Replay {
    entries: VecDeque<Entry>,
    last_seq: u64,
    started: bool,
}

impl Replay {
    fn apply(&mut self, segment: u64, op: Op<'_>) -> Result<(), &'static str> {
        match op {
            Op::Begin { base_seq } => {
                // The oldest segment left knows `last_seq` from before its first record (older
                // segments, deleted, held only persisted messages).
                if !self.started {
                    self.last_seq = base_seq;
                    self.started = true;
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
        }
        Ok(())
    }
}
