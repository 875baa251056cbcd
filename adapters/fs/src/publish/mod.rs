//! [`FilePublishStore`]: the file-backed publish store.

mod replay;
mod segment;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use amps_core::session::StoreError;
use amps_core::store::PublishStore;

use crate::durable::{self, Log};
use crate::error::{OpenError, RecoveryReport};
use crate::options::{FileStoreOptions, OpenMode};
use crate::record;
use crate::vfs::{Vfs, VfsFile, VfsLock};
use segment::{STORE_OVERHEAD, T_DISCARD_ONE, T_DISCARD_UP_TO, T_STORE};

pub(crate) use replay::Replay;
pub(crate) use segment::{read_segment, store_seq};

/// A durable publish store: every sequenced command the session stores is appended to a
/// segment file before `store` returns, and survives a crash of the process (and, depending on
/// [`FsyncPolicy`](crate::FsyncPolicy), of the machine) until the server acknowledges it as
/// persisted.
///
/// Behaves exactly like [`amps_core::store::MemoryPublishStore`] (same results for the same
/// calls, including `discard(seq)` removing only the oldest entry, and `store` refusing a
/// sequence number not above `last_seq` unless the store is empty), bounded by
/// [`FileStoreOptions::max_messages`] and [`FileStoreOptions::max_bytes`] instead of a buffer.
///
/// On disk: a directory with a `LOCK` file and segment files. Frames stay on disk; memory holds
/// 32 bytes of index per unpersisted message, and one frame while it is replayed. Segments
/// whose messages are all persisted are deleted, so disk use is about the unpersisted bytes
/// plus one segment.
///
/// After a restart `open` rebuilds the store as it was (a torn last record is cut off with a
/// warning, see [`FilePublishStore::recovery`]; damage no crash causes is refused, see
/// [`OpenError::Damaged`]); the session replays what is left in sequence order after its logon
/// and continues numbering after [`PublishStore::last_seq`].
///
/// ```
/// use amps_core::store::PublishStore;
/// use amps_fs::{FilePublishStore, FileStoreOptions};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("publish");
/// let mut store = FilePublishStore::open(&path, "pub-1", FileStoreOptions::default())?;
/// store.store(1, b"frame one")?;
/// store.store(2, b"frame two")?;
/// store.discard_up_to(1); // the server persisted 1
/// drop(store);
///
/// let mut store = FilePublishStore::open(&path, "pub-1", FileStoreOptions::default())?;
/// assert_eq!(store.unpersisted_count(), 1);
/// assert_eq!(store.next_after(0), Some((2, &b"frame two"[..])));
/// assert_eq!(store.last_seq(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FilePublishStore {
    fs: Arc<dyn Vfs>,
    dir: PathBuf,
    client_name: String,
    opts: FileStoreOptions,
    /// Held for the store's lifetime (one client instance per store).
    _lock: VfsLock,
    /// Live segments, oldest first; the last one is the one `log` appends to.
    segments: VecDeque<Segment>,
    log: Log,
    entries: VecDeque<Entry>,
    bytes: usize,
    last_seq: u64,
    /// Record being built.
    rec: Vec<u8>,
    /// The frame last read back for `next_after` / `get`.
    frame: Vec<u8>,
    report: RecoveryReport,
}

struct Segment {
    id: u64,
    file: Arc<dyn VfsFile>,
    /// Entries of `entries` stored in this segment.
    live: usize,
}

/// An unpersisted message: where its frame is.
#[derive(Clone, Copy)]
struct Entry {
    seq: u64,
    segment: u64,
    at: u64,
    len: u32,
}

impl FilePublishStore {
    /// Open the store in directory `path` (created if missing) for client `client_name`,
    /// recovering what a previous run left.
    ///
    /// Errors: [`OpenError::Locked`] if another instance has it open,
    /// [`OpenError::ClientName`] if it belongs to another client, [`OpenError::Version`],
    /// [`OpenError::NotAStore`], [`OpenError::Damaged`] for damage no crash causes (see
    /// [`OpenMode::repair`]), [`OpenError::Corrupt`] for records the store cannot have
    /// written, [`OpenError::Io`].
    pub fn open(
        path: impl AsRef<Path>,
        client_name: &str,
        opts: FileStoreOptions,
    ) -> Result<FilePublishStore, OpenError> {
        FilePublishStore::open_with(path, client_name, opts, OpenMode::default())
    }

    /// [`open`](FilePublishStore::open) through another file layer, or in repair mode.
    pub fn open_with(
        path: impl AsRef<Path>,
        client_name: &str,
        opts: FileStoreOptions,
        mode: OpenMode,
    ) -> Result<FilePublishStore, OpenError> {
        crate::scan::check_client_name(client_name)?;
        if opts.max_messages == 0 || opts.max_bytes == 0 || opts.segment_bytes == 0 {
            return Err(OpenError::InvalidOptions(
                "capacities and segment size must be above zero",
            ));
        }
        let fs = mode.fs;
        let dir = path.as_ref().to_path_buf();
        let existed = fs.list(&dir).is_ok();
        fs.create_dir_all(&dir)
            .map_err(|e| OpenError::io(&dir, "create directory", e))?;
        if !existed {
            let parent = durable::parent_dir(&dir);
            fs.sync_dir(&parent)
                .map_err(|e| OpenError::io(parent, "sync", e))?;
        }
        let lock = durable::lock(&*fs, &dir.join("LOCK"))?;
        let found = replay::recover(&*fs, &dir, client_name, mode.repair)?;
        let (file, len, old_format) = found.active;
        let log = Log::new(file, len, !old_format, opts.fsync)
            .map_err(|e| OpenError::io(&dir, "start sync thread", e))?;
        let bytes = found.entries.iter().map(|e| e.len as usize).sum();
        let mut store = FilePublishStore {
            fs,
            dir,
            client_name: client_name.to_string(),
            opts,
            _lock: lock,
            segments: found.segments,
            log,
            entries: found.entries,
            bytes,
            last_seq: found.last_seq,
            rec: Vec::new(),
            frame: Vec::new(),
            report: found.report,
        };
        if old_format {
            // Written by an older version of this crate: continue in a new segment.
            store
                .rotate()
                .map_err(|e| OpenError::io(&store.dir, "start a segment", e))?;
        }
        store.reclaim();
        Ok(store)
    }

    /// What opening found: records read, a torn tail cut off, whether the store was created.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.report
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Force everything written so far to stable storage now, whatever the policy (except
    /// [`FsyncPolicy::Never`](crate::FsyncPolicy::Never), which never syncs).
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.log.sync()
    }

    /// Bytes the store's segments occupy on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.segments
            .iter()
            .filter_map(|s| s.file.size().ok())
            .sum()
    }

    fn active_id(&self) -> u64 {
        self.segments.back().map_or(0, |s| s.id)
    }

    /// Start a new segment once the active one is full.
    fn rotate_if_full(&mut self) -> std::io::Result<()> {
        if self.log.len() < self.opts.segment_bytes {
            return Ok(());
        }
        self.rotate()
    }

    /// Continue in a new segment. The finished segment is made durable (with its durable
    /// mark) before the new one exists, so a power cut can only tear the newest segment; the
    /// new one is durable before it appears under its name.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.log.seal()?;
        let id = self.active_id() + 1;
        let (file, len) =
            segment::create(&*self.fs, &self.dir, id, &self.client_name, self.last_seq)?;
        self.log.switch(Arc::clone(&file), len);
        self.segments.push_back(Segment { id, file, live: 0 });
        self.reclaim();
        Ok(())
    }

    /// Delete the oldest segments once every message in them is persisted (never the active
    /// one), and make the deletions durable when the policy syncs. Space is reused this way
    /// instead of by compaction: the unpersisted messages are always the newest ones, so
    /// segments empty in order. A deletion a power cut undoes is harmless: the segment's
    /// messages are replayed and the server drops them as duplicates, and numbering never goes
    /// back because every segment records `last_seq`.
    fn reclaim(&mut self) {
        let mut removed = false;
        while self.segments.len() > 1 && self.segments.front().is_some_and(|s| s.live == 0) {
            let Some(s) = self.segments.pop_front() else {
                break;
            };
            let p = segment::path(&self.dir, s.id);
            match self.fs.remove(&p) {
                Ok(()) => removed = true,
                // Harmless: a leftover segment only replays messages the server discards as
                // duplicates; it is deleted on a later open.
                Err(e) => log::warn!("amps-fs: cannot delete {}: {e}", p.display()),
            }
        }
        if removed
            && self.log.syncs()
            && let Err(e) = self.fs.sync_dir(&self.dir)
        {
            log::warn!("amps-fs: cannot sync {}: {e}", self.dir.display());
        }
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.len as usize;
            if let Some(s) = self.segments.iter_mut().find(|s| s.id == e.segment) {
                s.live -= 1;
            }
        }
    }

    /// Record a discard that removed entries. A lost discard record is harmless (the server
    /// drops replayed duplicates), so failures are only logged.
    fn log_discard(&mut self, kind: u8, seq: u64) {
        self.rec.clear();
        let at = record::begin(&mut self.rec, kind);
        self.rec.extend_from_slice(&seq.to_le_bytes());
        record::finish(&mut self.rec, at);
        if let Err(e) = self.log.append(&self.rec) {
            log::warn!(
                "amps-fs: {}: cannot record a discard: {e}",
                self.dir.display()
            );
        }
        self.reclaim();
    }

    /// Read entry `i`'s frame into `self.frame`.
    fn read(&mut self, i: usize) -> Option<(u64, &[u8])> {
        let e = *self.entries.get(i)?;
        let file = &self.segments.iter().find(|s| s.id == e.segment)?.file;
        self.frame.resize(e.len as usize, 0);
        if let Err(err) = file.read_at(&mut self.frame, e.at) {
            log::warn!(
                "amps-fs: {}: cannot read message {}: {err}",
                self.dir.display(),
                e.seq
            );
            return None;
        }
        Some((e.seq, &self.frame))
    }
}

impl PublishStore for FilePublishStore {
    fn sync(&mut self) -> Result<(), StoreError> {
        FilePublishStore::sync(self).map_err(|_| StoreError::Io)
    }

    fn store(&mut self, seq: u64, frame: &[u8]) -> Result<(), StoreError> {
        // The same checks in the same order as MemoryPublishStore.
        if seq <= self.last_seq && !self.entries.is_empty() {
            return Err(StoreError::OutOfOrder);
        }
        if frame.len() > self.opts.max_bytes
            || frame.len() as u64 + STORE_OVERHEAD > u64::from(record::MAX_PAYLOAD)
        {
            return Err(StoreError::TooLarge);
        }
        if self.entries.len() >= self.opts.max_messages
            || self.bytes + frame.len() > self.opts.max_bytes
        {
            return Err(StoreError::Full);
        }
        if let Err(e) = self.rotate_if_full() {
            log::warn!(
                "amps-fs: {}: cannot start a segment: {e}",
                self.dir.display()
            );
            return Err(StoreError::Io);
        }
        self.rec.clear();
        let at = record::begin(&mut self.rec, T_STORE);
        self.rec.extend_from_slice(&seq.to_le_bytes());
        self.rec.extend_from_slice(frame);
        record::finish(&mut self.rec, at);
        let off = match self.log.append(&self.rec) {
            Ok(off) => off,
            Err(e) => {
                log::warn!("amps-fs: {}: cannot store: {e}", self.dir.display());
                return Err(StoreError::Io);
            }
        };
        let segment = self.active_id();
        if let Some(s) = self.segments.back_mut() {
            s.live += 1;
        }
        self.entries.push_back(Entry {
            seq,
            segment,
            at: off + STORE_OVERHEAD,
            len: frame.len() as u32,
        });
        self.bytes += frame.len();
        self.last_seq = seq;
        Ok(())
    }

    fn discard_up_to(&mut self, seq: u64) {
        let mut popped = false;
        while self.entries.front().is_some_and(|e| e.seq <= seq) {
            self.pop_front();
            popped = true;
        }
        if popped {
            self.log_discard(T_DISCARD_UP_TO, seq);
        }
    }

    fn discard(&mut self, seq: u64) {
        // Like MemoryPublishStore: only the oldest entry is removed (the server splits
        // persisted runs at a failure, docs/protocol.md §8.4, so the failed one is the oldest by
        // then); any other stays and is replayed, and the server drops it as a duplicate.
        if self.entries.front().is_some_and(|e| e.seq == seq) {
            self.pop_front();
            self.log_discard(T_DISCARD_ONE, seq);
        }
    }

    fn next_after(&mut self, seq: u64) -> Option<(u64, &[u8])> {
        let i = self.entries.partition_point(|e| e.seq <= seq);
        self.read(i)
    }

    fn get(&mut self, seq: u64) -> Option<&[u8]> {
        let i = self.entries.binary_search_by_key(&seq, |e| e.seq).ok()?;
        self.read(i).map(|(_, f)| f)
    }

    fn unpersisted_count(&self) -> usize {
        self.entries.len()
    }

    fn unpersisted_bytes(&self) -> usize {
        self.bytes
    }

    fn last_seq(&self) -> u64 {
        self.last_seq
    }

    fn has_room(&self, len: usize) -> bool {
        // A store that can no longer write still "has room": `store` then reports `Io`, which
        // the session surfaces, rather than backpressure that would never end.
        self.entries.len() < self.opts.max_messages
            && self.bytes.saturating_add(len) <= self.opts.max_bytes
    }
}

impl std::fmt::Debug for FilePublishStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePublishStore")
            .field("dir", &self.dir)
            .field("client_name", &self.client_name)
            .field("unpersisted", &self.entries.len())
            .field("bytes", &self.bytes)
            .field("last_seq", &self.last_seq)
            .field("segments", &self.segments.len())
            .finish_non_exhaustive()
    }
}
