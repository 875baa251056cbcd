//! [`FileBookmarkStore`]: the logged bookmark store.

mod index;
mod journal;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use amps_core::session::StoreError;
use amps_core::store::{BookmarkStore, MAX_BOOKMARK, MAX_SUB_ID};

use crate::durable::{self, Log};
use crate::error::{OpenError, RecoveryReport};
use crate::options::{BookmarkStoreOptions, OpenMode};
use crate::record::{self, FileSource, Kind};
use crate::scan::{self, Item, ScanOptions, Scanned};
use crate::vfs::{Vfs, VfsFile, VfsLock};
pub(crate) use index::Index;
use journal::{T_DISCARDED, T_PERSISTED, T_RECEIVED, T_REMOVED, T_SUB};

/// A durable bookmark store (the Python client's logged bookmark store): every message received on
/// a bookmark subscription, every discard and every persisted ack is appended to a log before the
/// call returns, so after a crash the subscription resumes from MOST_RECENT with no gap and no
/// duplicate of a discarded message (docs/protocol.md §10; AMPS Python client guide:
/// "BookmarkStore", `discard()`, file-backed stores).
///
/// Answers every call exactly as [`amps_core::store::MemoryBookmarkStore`] does: the resume
/// point is the last bookmark of the longest prefix of received messages that were all
/// discarded, messages already discarded are reported as duplicates (`log` returns
/// `Ok(false)`), and capacity ([`BookmarkStoreOptions`]) is counted the same way. Lookups are
/// O(1) instead of scans.
///
/// On disk: the log file at the given path and a lock file next to it (`<path>.lock`).
/// [`FileBookmarkStore::prune`] rewrites the log to just the current state, atomically (new
/// file, fsync, rename, fsync directory), and runs by itself past
/// [`BookmarkStoreOptions::auto_prune_bytes`]. On open, a torn tail is cut off; damage no
/// crash causes is refused ([`OpenError::Damaged`]) unless the store is opened in repair mode
/// ([`OpenMode::repair`]).
///
/// ```
/// use amps_core::store::BookmarkStore;
/// use amps_fs::{BookmarkStoreOptions, FileBookmarkStore};
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("bookmarks.log");
/// let mut store = FileBookmarkStore::open(&path, "sub-app", BookmarkStoreOptions::default())?;
/// assert!(store.log("s1", "42|1|")?);
/// assert!(store.log("s1", "42|2|")?);
/// store.discard("s1", "42|1|")?;
/// drop(store); // or a crash
///
/// let mut store = FileBookmarkStore::open(&path, "sub-app", BookmarkStoreOptions::default())?;
/// let mut buf = [0u8; 256];
/// assert_eq!(store.most_recent("s1", &mut buf)?, "42|1|"); // resume after 42|1|
/// assert!(!store.log("s1", "42|1|")?); // a duplicate of a discarded message
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FileBookmarkStore {
    fs: Arc<dyn Vfs>,
    path: PathBuf,
    client_name: String,
    opts: BookmarkStoreOptions,
    /// Held for the store's lifetime (one client instance per store).
    _lock: VfsLock,
    log: Log,
    index: Index,
    /// Records being built.
    rec: Vec<u8>,
    /// Log length at which the next automatic prune runs.
    prune_at: Option<u64>,
    report: RecoveryReport,
}

impl FileBookmarkStore {
    /// Open the log at `path` (created if missing or empty) for client `client_name`,
    /// recovering the state a previous run left.
    ///
    /// Errors: [`OpenError::Locked`] if another instance has it open,
    /// [`OpenError::ClientName`] if it belongs to another client, [`OpenError::Version`],
    /// [`OpenError::NotAStore`], [`OpenError::Damaged`] for damage no crash causes (see
    /// [`OpenMode::repair`]), [`OpenError::Corrupt`] for a record with a valid checksum that
    /// the store cannot have written, [`OpenError::Io`].
    pub fn open(
        path: impl AsRef<Path>,
        client_name: &str,
        opts: BookmarkStoreOptions,
    ) -> Result<FileBookmarkStore, OpenError> {
        FileBookmarkStore::open_with(path, client_name, opts, OpenMode::default())
    }

    /// [`open`](FileBookmarkStore::open) through another file layer, or in repair mode.
    pub fn open_with(
        path: impl AsRef<Path>,
        client_name: &str,
        opts: BookmarkStoreOptions,
        mode: OpenMode,
    ) -> Result<FileBookmarkStore, OpenError> {
        scan::check_client_name(client_name)?;
        if opts.max_subscriptions == 0
            || opts.max_subscriptions > usize::from(u16::MAX)
            || opts.max_window_bytes == 0
        {
            return Err(OpenError::InvalidOptions(
                "max_subscriptions must be 1 to 65535 and max_window_bytes above zero",
            ));
        }
        let fs = mode.fs;
        let path = path.as_ref().to_path_buf();
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let lock = durable::lock(&*fs, Path::new(&lock_path))?;
        // A prune interrupted before its rename left only a staging file: the log is intact.
        let tmp = durable::tmp_path(&path);
        match fs.remove(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                return Err(OpenError::io(&tmp, "remove", e));
            }
            _ => {}
        }
        let mut index = Index::new(opts.max_subscriptions, opts.max_window_bytes);
        let mut report = RecoveryReport::default();
        let existing = fs
            .file_len(&path)
            .map_err(|e| OpenError::io(&path, "stat", e))?
            .is_some_and(|len| len > 0);
        let mut rewrite = false;
        let (file, len) = if existing {
            let (file, read) = recover(&*fs, &path, client_name, mode.repair, &mut index)?;
            report.records = read.records;
            rewrite = !read.lost.is_empty() || read.version == record::VERSION_1;
            report.lost = read.lost;
            if let Some(cut) = &read.cut
                && !rewrite
            {
                // Durably, before anything new is written where the tail was.
                file.set_len(read.end)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| OpenError::io(&cut.path, "cut a torn tail", e))?;
            }
            report.cut = read.cut;
            (file, read.end)
        } else {
            report.created = true;
            let bytes = record::header(Kind::Bookmark, client_name, &[]);
            durable::replace_file(&*fs, &path, &bytes)
                .map_err(|e| OpenError::io(&path, "create", e))?
        };
        let log = Log::new(file, len, !rewrite, opts.fsync)
            .map_err(|e| OpenError::io(&path, "start sync thread", e))?;
        let mut store = FileBookmarkStore {
            fs,
            path,
            client_name: client_name.to_string(),
            opts,
            _lock: lock,
            log,
            index,
            rec: Vec::new(),
            prune_at: opts.auto_prune_bytes.map(|b| b.max(2 * len)),
            report,
        };
        if rewrite {
            // A repair, or a log of an older version of this crate: write the state afresh.
            let path = store.path.clone();
            store
                .prune()
                .map_err(|e| OpenError::io(path, "rewrite the log", e))?;
        }
        Ok(store)
    }

    /// Rewrite the log to hold just the current state: write a new file, fsync it, rename it
    /// over the log, fsync the directory. A
    /// crash at any point leaves either the old log or the new one, both complete. Best
    /// called when the application is idle; its cost is proportional to the subscriptions and
    /// the undiscarded window, not to the log's length.
    pub fn prune(&mut self) -> io::Result<()> {
        let mut buf = record::header(Kind::Bookmark, &self.client_name, &[]);
        journal::snapshot(&self.index, &mut buf);
        let len = buf.len() as u64;
        record::set_mark(&mut buf, len);
        let (file, len) = durable::replace_file(&*self.fs, &self.path, &buf)?;
        self.log.switch(file, len);
        self.prune_at = self.opts.auto_prune_bytes.map(|b| b.max(2 * len));
        Ok(())
    }

    /// Force everything written so far to stable storage now (a no-op under
    /// [`FsyncPolicy::Never`](crate::FsyncPolicy::Never)).
    pub fn sync(&mut self) -> io::Result<()> {
        self.log.sync()
    }

    /// The last bookmark the server reported persisted for `sub_id` (§10.2).
    pub fn persisted_bookmark(&self, sub_id: &str) -> Option<&str> {
        let slot = self.index.find_sub(sub_id)?;
        let s = self.index.slot(slot)?;
        (!s.persisted.is_empty()).then_some(s.persisted.as_str())
    }

    /// What opening found: records read, a torn tail cut off, whether the log was created.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.report
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log's length in bytes (for a prune-by-size strategy, AMPS Python client guide: "when the
    /// store reaches a specific size").
    pub fn log_bytes(&self) -> u64 {
        self.log.len()
    }

    /// Append one record; `Io` if it could not be written (nothing changed then).
    fn write(&mut self, kind: u8, slot: u16, text: &str) -> Result<(), StoreError> {
        self.rec.clear();
        journal::put(&mut self.rec, kind, slot, text);
        self.log.append(&self.rec).map(|_| ()).map_err(|e| {
            log::warn!("amps-fs: {}: cannot write: {e}", self.path.display());
            StoreError::Io
        })
    }

    fn maybe_prune(&mut self) {
        if self.prune_at.is_some_and(|at| self.log.len() > at)
            && let Err(e) = self.prune()
        {
            log::warn!(
                "amps-fs: {}: automatic prune failed: {e}",
                self.path.display()
            );
            self.prune_at = Some(self.log.len().saturating_mul(2));
        }
    }

    /// MemoryBookmarkStore's `find_or_add`: the subscription's slot, taking a free one (and
    /// recording it) for a new sub_id.
    fn find_or_add(&mut self, sub_id: &str) -> Result<u16, StoreError> {
        if let Some(slot) = self.index.find_sub(sub_id) {
            return Ok(slot);
        }
        if sub_id.len() > MAX_SUB_ID {
            return Err(StoreError::TooLarge);
        }
        let slot = self.index.free_slot()?;
        self.write(T_SUB, slot, sub_id)?;
        self.index.add_sub(slot, sub_id);
        Ok(slot)
    }
}

/// Read the log at `path` into `index`. Returns the log and what the scan found (the whole
/// log is one file, so a torn tail is always its tail).
fn recover(
    fs: &dyn Vfs,
    path: &Path,
    client_name: &str,
    repair: bool,
    index: &mut Index,
) -> Result<(Arc<dyn VfsFile>, Scanned), OpenError> {
    let file = fs.open(path).map_err(|e| OpenError::io(path, "open", e))?;
    let len = file.size().map_err(|e| OpenError::io(path, "stat", e))?;
    let mut src = FileSource::new(Arc::clone(&file), len);
    let read = read_log(&mut src, path, client_name, repair, index)?;
    Ok((file, read))
}

/// The scan of a log's bytes into `index` (also what the fuzzing entry point runs).
pub(crate) fn read_log<S: record::Source + ?Sized>(
    src: &mut S,
    path: &Path,
    client_name: &str,
    repair: bool,
    index: &mut Index,
) -> Result<Scanned, OpenError> {
    let o = ScanOptions {
        path,
        kind: Kind::Bookmark,
        client_name,
        repair,
        seq_of: |_| None,
        seq_before: 0,
    };
    scan::scan(src, &o, |item| match item {
        Item::Header(_) => Ok(()),
        Item::Record(_, payload) => journal::replay(index, payload),
    })
}

impl BookmarkStore for FileBookmarkStore {
    fn sync(&mut self) -> Result<(), StoreError> {
        FileBookmarkStore::sync(self).map_err(|_| StoreError::Io)
    }

    fn prune(&mut self) -> Result<(), StoreError> {
        FileBookmarkStore::prune(self).map_err(|_| StoreError::Io)
    }

    fn log(&mut self, sub_id: &str, bookmark: &str) -> Result<bool, StoreError> {
        let slot = self.find_or_add(sub_id)?;
        if let Some((_, e)) = self.index.find(slot, bookmark) {
            return Ok(!e.discarded);
        }
        // Not in the window: a duplicate if at or below what was discarded (resume point,
        // high-water marks), as in MemoryBookmarkStore.
        if self
            .index
            .slot(slot)
            .is_some_and(|s| s.is_discarded(bookmark))
        {
            return Ok(false);
        }
        self.index.check_room(bookmark.len())?;
        self.write(T_RECEIVED, slot, bookmark)?;
        self.index.push(slot, bookmark, false);
        self.maybe_prune();
        Ok(true)
    }

    fn discard(&mut self, sub_id: &str, bookmark: &str) -> Result<(), StoreError> {
        let Some(slot) = self.index.find_sub(sub_id) else {
            return Ok(());
        };
        let Some((abs, _)) = self
            .index
            .find(slot, bookmark)
            .filter(|(_, e)| !e.discarded)
        else {
            return Ok(());
        };
        self.write(T_DISCARDED, slot, bookmark)?;
        self.index.discard_at(abs);
        self.maybe_prune();
        Ok(())
    }

    fn persisted(&mut self, sub_id: &str, bookmark: &str) -> Result<(), StoreError> {
        let slot = self.find_or_add(sub_id)?;
        if bookmark.len() > MAX_BOOKMARK {
            return Err(StoreError::TooLarge);
        }
        if self
            .index
            .slot(slot)
            .is_some_and(|s| s.persisted == bookmark)
        {
            // Persisted acks repeat about once a second (§10.2); nothing to record.
            return Ok(());
        }
        self.write(T_PERSISTED, slot, bookmark)?;
        self.index.set_persisted(slot, bookmark);
        self.maybe_prune();
        Ok(())
    }

    fn most_recent<'o>(&mut self, sub_id: &str, out: &'o mut [u8]) -> Result<&'o str, StoreError> {
        let Some(slot) = self.index.find_sub(sub_id) else {
            return Ok("");
        };
        let best = self.index.most_recent(slot);
        let dst = out.get_mut(..best.len()).ok_or(StoreError::TooLarge)?;
        dst.copy_from_slice(best);
        std::str::from_utf8(dst).map_err(|_| StoreError::Corrupt)
    }

    fn remove(&mut self, sub_id: &str) {
        let Some(slot) = self.index.find_sub(sub_id) else {
            return;
        };
        if self.write(T_REMOVED, slot, "").is_err() {
            // The trait cannot report this. Memory must follow the call, so the log can no
            // longer describe memory: stop writing to it (every later change reports `Io`;
            // the log stays the consistent state from before the removal).
            self.log.disable();
        }
        self.index.remove_sub(slot);
        self.maybe_prune();
    }
}

impl std::fmt::Debug for FileBookmarkStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBookmarkStore")
            .field("path", &self.path)
            .field("client_name", &self.client_name)
            .field("log_bytes", &self.log.len())
            .finish_non_exhaustive()
    }
}
