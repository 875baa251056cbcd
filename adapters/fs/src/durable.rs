//! Appending to a log file durably: the store's lock, new files made durable before they
//! appear, the fsync policy (with its background thread for timed syncs), the durable mark
//! written after each sync, and rollback of a failed append.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::OpenError;
use crate::options::FsyncPolicy;
use crate::record;
use crate::vfs::{Vfs, VfsFile, VfsLock};

/// Take the store's exclusive lock (an advisory lock on a file of its own that is never
/// replaced, so `prune()` renaming the log cannot drop it). Released when the returned value is
/// dropped, including when the process dies.
pub(crate) fn lock(fs: &dyn Vfs, path: &Path) -> Result<VfsLock, OpenError> {
    fs.lock(path).map_err(|e| {
        if e.kind() == io::ErrorKind::WouldBlock {
            OpenError::Locked {
                path: path.to_path_buf(),
            }
        } else {
            OpenError::io(path, "lock", e)
        }
    })
}

/// The directory a file lives in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Where a new file is staged before it is renamed into place.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// A new file being written under a staging name (`<path>.tmp`). [`Staged::commit`] makes it
/// durable and then gives it its name, so the name only ever shows a complete file: fsync the
/// file, rename it over `path`, fsync the directory.
pub(crate) struct Staged<'a> {
    fs: &'a dyn Vfs,
    path: &'a Path,
    tmp: PathBuf,
    file: Arc<dyn VfsFile>,
    len: u64,
}

impl<'a> Staged<'a> {
    /// Start the file (an earlier staging file is removed).
    pub(crate) fn new(fs: &'a dyn Vfs, path: &'a Path) -> io::Result<Staged<'a>> {
        let tmp = tmp_path(path);
        match fs.remove(&tmp) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let file = fs.create_new(&tmp)?;
        Ok(Staged {
            fs,
            path,
            tmp,
            file,
            len: 0,
        })
    }

    /// Append `bytes`.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_at(bytes, self.len)?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Write `bytes` at `at` (within what was appended).
    pub(crate) fn write_at(&mut self, bytes: &[u8], at: u64) -> io::Result<()> {
        self.file.write_at(bytes, at)
    }

    /// Bytes appended.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Sync, rename into place, sync the directory; returns the file and its length.
    pub(crate) fn commit(self) -> io::Result<(Arc<dyn VfsFile>, u64)> {
        let done = self
            .file
            .sync_data()
            .and_then(|()| self.fs.rename(&self.tmp, self.path));
        if let Err(e) = done {
            let _ = self.fs.remove(&self.tmp);
            return Err(e);
        }
        self.fs.sync_dir(&parent_dir(self.path))?;
        Ok((self.file, self.len))
    }
}

/// Write `bytes` (a whole file image, whose durable mark claims all of it) as the file at
/// `path`, durably (see [`Staged`]).
pub(crate) fn replace_file(
    fs: &dyn Vfs,
    path: &Path,
    bytes: &[u8],
) -> io::Result<(Arc<dyn VfsFile>, u64)> {
    let mut f = Staged::new(fs, path)?;
    f.append(bytes)?;
    f.commit()
}

/// Record that the first `len` bytes of `file` are on stable storage (a version 2 file).
fn write_mark(file: &dyn VfsFile, len: u64) {
    if let Err(e) = file.write_at(&record::mark(len), record::MARK_AT) {
        // Harmless: the mark is a lower bound; an older one stays.
        log::warn!("amps-fs: cannot write the durable mark: {e}");
    }
}

/// The file a syncer works on.
struct Current {
    file: Arc<dyn VfsFile>,
    /// Bytes written to it so far.
    written: u64,
    /// Whether it has a durable mark (version 2).
    marks: bool,
}

impl Current {
    fn sync(&self) -> io::Result<()> {
        sync_and_mark(&*self.file, self.written, self.marks)
    }
}

/// Sync `file`, then record that its first `len` bytes are durable.
fn sync_and_mark(file: &dyn VfsFile, len: u64, marks: bool) -> io::Result<()> {
    file.sync_data()?;
    if marks {
        write_mark(file, len);
    }
    Ok(())
}

/// State shared with the timed-sync thread of [`FsyncPolicy::Every`].
struct Shared {
    cur: Mutex<Current>,
    wake: Condvar,
    /// Writes since the thread's last sync started.
    pending: AtomicU64,
    stop: AtomicBool,
    /// A timed sync failed: the kernel may have dropped the data, so the store must stop.
    failed: AtomicBool,
}

impl Shared {
    fn cur(&self) -> MutexGuard<'_, Current> {
        // The lock guards a plain handle and a length; a panic elsewhere cannot leave them
        // inconsistent.
        self.cur.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies an [`FsyncPolicy`] to one log file.
pub(crate) struct Syncer {
    policy: FsyncPolicy,
    /// Writes since the last inline sync (for `Every { writes }`).
    unsynced: u32,
    marks: bool,
    shared: Option<Arc<Shared>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// A syncer for `file` (`len` bytes, with a durable mark if `marks`); `Every` starts the
    /// timed-sync thread.
    fn new(
        policy: FsyncPolicy,
        file: Arc<dyn VfsFile>,
        len: u64,
        marks: bool,
    ) -> io::Result<Syncer> {
        let mut s = Syncer {
            policy,
            unsynced: 0,
            marks,
            shared: None,
            thread: None,
        };
        if let FsyncPolicy::Every { interval, .. } = policy {
            let shared = Arc::new(Shared {
                cur: Mutex::new(Current {
                    file,
                    written: len,
                    marks,
                }),
                wake: Condvar::new(),
                pending: AtomicU64::new(0),
                stop: AtomicBool::new(false),
                failed: AtomicBool::new(false),
            });
            let bg = Arc::clone(&shared);
            s.thread = Some(
                std::thread::Builder::new()
                    .name("amps-fs-sync".into())
                    .spawn(move || timed_syncs(&bg, interval))?,
            );
            s.shared = Some(shared);
        }
        Ok(s)
    }

    /// Whether this policy ever syncs.
    fn syncs(&self) -> bool {
        self.policy != FsyncPolicy::Never
    }

    /// A write to `file` just completed, leaving it `len` bytes long: sync as the policy says.
    fn wrote(&mut self, file: &dyn VfsFile, len: u64) -> io::Result<()> {
        match self.policy {
            FsyncPolicy::Never => Ok(()),
            FsyncPolicy::Always => sync_and_mark(file, len, self.marks),
            FsyncPolicy::Every { writes, .. } => {
                let Some(shared) = &self.shared else {
                    return Ok(());
                };
                if shared.failed.load(Ordering::Acquire) {
                    return Err(io::Error::other("a background fsync failed"));
                }
                self.unsynced += 1;
                if self.unsynced >= writes.max(1) {
                    self.unsynced = 0;
                    shared.pending.store(0, Ordering::Release);
                    return sync_and_mark(file, len, self.marks);
                }
                // Taking the lock also orders a wakeup with the thread's check-then-wait (no
                // lost wakeup).
                let mut g = shared.cur();
                g.written = len;
                if shared.pending.fetch_add(1, Ordering::AcqRel) == 0 {
                    // First unsynced write since the thread's last sync: start its timer.
                    shared.wake.notify_one();
                }
                Ok(())
            }
        }
    }

    /// Sync `file` (`len` bytes) now if anything may be unsynced.
    fn sync_now(&mut self, file: &dyn VfsFile, len: u64) -> io::Result<()> {
        if !self.syncs() {
            return Ok(());
        }
        self.unsynced = 0;
        if let Some(shared) = &self.shared {
            shared.pending.store(0, Ordering::Release);
        }
        sync_and_mark(file, len, self.marks)
    }

    /// The store moved to another file (a new segment, a pruned log), `len` bytes long and
    /// durable.
    fn set_file(&mut self, file: Arc<dyn VfsFile>, len: u64, marks: bool) {
        self.unsynced = 0;
        self.marks = marks;
        if let Some(shared) = &self.shared {
            *shared.cur() = Current {
                file,
                written: len,
                marks,
            };
            shared.pending.store(0, Ordering::Release);
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.stop.store(true, Ordering::Release);
            let _g = shared.cur();
            shared.wake.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The timed-sync thread: after the first unsynced write, wait `interval`, then sync. A write
/// that lands during the sync makes `pending` non-zero again and starts the next round, so no
/// write stays unsynced longer than `interval` plus one sync. Stopping syncs what is pending.
fn timed_syncs(shared: &Shared, interval: Duration) {
    loop {
        {
            let mut g = shared.cur();
            while shared.pending.load(Ordering::Acquire) == 0 {
                if shared.stop.load(Ordering::Acquire) {
                    return;
                }
                g = shared.wake.wait(g).unwrap_or_else(PoisonError::into_inner);
            }
            // Wait out the interval, waking early only to stop.
            let deadline = std::time::Instant::now() + interval;
            loop {
                if shared.stop.load(Ordering::Acquire) {
                    break;
                }
                let now = std::time::Instant::now();
                if now >= deadline {
                    break;
                }
                g = shared
                    .wake
                    .wait_timeout(g, deadline - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
        if shared.pending.swap(0, Ordering::AcqRel) > 0 {
            // What was written before this point is what the sync covers.
            let cur = {
                let g = shared.cur();
                Current {
                    file: Arc::clone(&g.file),
                    written: g.written,
                    marks: g.marks,
                }
            };
            if let Err(e) = cur.sync() {
                log::warn!("amps-fs: background fsync failed: {e}");
                shared.failed.store(true, Ordering::Release);
            }
        }
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
    }
}

/// An append-only log file: every append reaches the operating system before it returns, the
/// policy's syncs follow (each one then recording the durable length in the file's mark), and
/// a failed append is rolled back so no partial record is left in the middle of the log.
pub(crate) struct Log {
    file: Arc<dyn VfsFile>,
    len: u64,
    syncer: Syncer,
    /// A failed append could not be rolled back (or a sync failed): the file's tail is unknown,
    /// so nothing more may be appended.
    broken: bool,
}

impl Log {
    /// A log over `file` whose valid length is `len`; `marks`: it has a durable mark.
    pub(crate) fn new(
        file: Arc<dyn VfsFile>,
        len: u64,
        marks: bool,
        policy: FsyncPolicy,
    ) -> io::Result<Log> {
        Ok(Log {
            syncer: Syncer::new(policy, Arc::clone(&file), len, marks)?,
            file,
            len,
            broken: false,
        })
    }

    /// Bytes in the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Whether the policy ever syncs.
    pub(crate) fn syncs(&self) -> bool {
        self.syncer.syncs()
    }

    /// Append `bytes` (whole records); returns the offset they start at.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<u64> {
        if self.broken {
            return Err(io::Error::other("store disabled by an earlier I/O failure"));
        }
        let at = self.len;
        let end = at + bytes.len() as u64;
        let res = self
            .file
            .write_at(bytes, at)
            .and_then(|()| self.syncer.wrote(&*self.file, end));
        if let Err(e) = res {
            // Cut what may have been written. Only a full disk, cut back cleanly, leaves the log
            // usable; after any other failure (the cut failed, or a failed sync may have made
            // the kernel drop earlier data) stop appending: the next open reads the tail.
            if self.file.set_len(at).is_err() || e.kind() != io::ErrorKind::StorageFull {
                self.broken = true;
            }
            return Err(e);
        }
        self.len = end;
        Ok(at)
    }

    /// Sync now if the policy ever syncs.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.syncer.sync_now(&*self.file, self.len)
    }

    /// Make the whole file and its durable mark durable before the store moves on to another
    /// file (a no-op under `Never`).
    pub(crate) fn seal(&mut self) -> io::Result<()> {
        if !self.syncs() {
            return Ok(());
        }
        self.sync()?;
        self.file.sync_data()
    }

    /// Continue in another, complete and durable file whose length is `len` (with a durable
    /// mark).
    pub(crate) fn switch(&mut self, file: Arc<dyn VfsFile>, len: u64) {
        self.syncer.set_file(Arc::clone(&file), len, true);
        self.file = file;
        self.len = len;
        self.broken = false;
    }

    /// Refuse further appends (the file no longer describes the store's state).
    pub(crate) fn disable(&mut self) {
        self.broken = true;
    }
}
