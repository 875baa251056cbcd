//! Appending to a log file durably: the store's lock, directory syncs, the fsync policy (with
//! its background thread for timed syncs), and rollback of a failed append.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::OpenError;
use crate::options::FsyncPolicy;

/// Take the store's exclusive lock (an advisory `flock`-style lock on a file of its own that
/// is never replaced, so `prune()` renaming the log cannot drop it). Released when the returned
/// file is closed, including when the process dies.
pub(crate) fn lock(path: &Path) -> Result<File, OpenError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| OpenError::io(path, "open lock file", e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::Locked {
            path: path.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(OpenError::io(path, "lock", e)),
    }
}

/// Make a rename, creation or deletion in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        // Directories cannot be opened as files here; renames are as durable as the platform
        // makes them.
        let _ = dir;
        Ok(())
    }
}

/// The directory a file lives in (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write `bytes` as a new file at `path`, durably unless `sync` is false: write to
/// `path.tmp`, fsync, rename over `path`, fsync the directory. Returns the new file opened for
/// appending.
pub(crate) fn replace_file(path: &Path, bytes: &[u8], sync: bool) -> io::Result<File> {
    let tmp = tmp_path(path);
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .open(&tmp)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| if sync { file.sync_all() } else { Ok(()) });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if sync {
        sync_dir(&parent_dir(path))?;
    }
    Ok(file)
}

/// Where [`replace_file`] stages a file.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// State shared with the timed-sync thread of [`FsyncPolicy::Every`].
struct Shared {
    /// The file to sync (replaced when a store moves to a new file).
    file: Mutex<Arc<File>>,
    wake: Condvar,
    /// Writes since the thread's last sync started.
    pending: AtomicU64,
    stop: AtomicBool,
    /// A timed sync failed: the kernel may have dropped the data, so the store must stop.
    failed: AtomicBool,
}

impl Shared {
    fn file(&self) -> MutexGuard<'_, Arc<File>> {
        // The lock guards a plain handle; a panic elsewhere cannot leave it inconsistent.
        self.file.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Applies an [`FsyncPolicy`] to one log file.
pub(crate) struct Syncer {
    policy: FsyncPolicy,
    /// Writes since the last inline sync (for `Every { writes }`).
    unsynced: u32,
    shared: Option<Arc<Shared>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    /// A syncer for `file`; `Every` starts the timed-sync thread.
    pub(crate) fn new(policy: FsyncPolicy, file: Arc<File>) -> io::Result<Syncer> {
        let mut s = Syncer {
            policy,
            unsynced: 0,
            shared: None,
            thread: None,
        };
        if let FsyncPolicy::Every { interval, .. } = policy {
            let shared = Arc::new(Shared {
                file: Mutex::new(file),
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
    pub(crate) fn syncs(&self) -> bool {
        self.policy != FsyncPolicy::Never
    }

    /// A write to `file` just completed: sync as the policy says.
    pub(crate) fn wrote(&mut self, file: &File) -> io::Result<()> {
        match self.policy {
            FsyncPolicy::Never => Ok(()),
            FsyncPolicy::Always => file.sync_data(),
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
                    return file.sync_data();
                }
                if shared.pending.fetch_add(1, Ordering::AcqRel) == 0 {
                    // First unsynced write since the thread's last sync: start its timer. Taking
                    // the lock orders this with the thread's check-then-wait (no lost wakeup).
                    let _g = shared.file();
                    shared.wake.notify_one();
                }
                Ok(())
            }
        }
    }

    /// Sync `file` now if anything may be unsynced.
    pub(crate) fn sync_now(&mut self, file: &File) -> io::Result<()> {
        if !self.syncs() {
            return Ok(());
        }
        self.unsynced = 0;
        if let Some(shared) = &self.shared {
            shared.pending.store(0, Ordering::Release);
        }
        file.sync_data()
    }

    /// The store moved to another file (a new segment, a pruned log). The caller synced the
    /// old one as far as its policy requires.
    pub(crate) fn set_file(&mut self, file: Arc<File>) {
        self.unsynced = 0;
        if let Some(shared) = &self.shared {
            *shared.file() = file;
            shared.pending.store(0, Ordering::Release);
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.stop.store(true, Ordering::Release);
            let _g = shared.file();
            shared.wake.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The timed-sync thread: after the first unsynced write, wait `interval`, then sync. A write
/// that lands during the sync makes `pending` non-zero again and starts the next round, so no
/// write stays unsynced longer than `interval` plus one sync.
fn timed_syncs(shared: &Shared, interval: Duration) {
    loop {
        {
            let mut g = shared.file();
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
            let file = Arc::clone(&shared.file());
            if let Err(e) = file.sync_data() {
                log::warn!("amps-fs: background fsync failed: {e}");
                shared.failed.store(true, Ordering::Release);
            }
        }
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
    }
}

/// An append-only log file: every append reaches the kernel before it returns, the policy's
/// syncs follow, and a failed append is rolled back so no partial record is left in the middle
/// of the log.
pub(crate) struct Log {
    file: Arc<File>,
    len: u64,
    syncer: Syncer,
    /// A failed append could not be rolled back (or a sync failed): the file's tail is unknown,
    /// so nothing more may be appended.
    broken: bool,
}

impl Log {
    /// A log over `file` (opened for appending) whose valid length is `len`.
    pub(crate) fn new(file: File, len: u64, policy: FsyncPolicy) -> io::Result<Log> {
        let file = Arc::new(file);
        Ok(Log {
            syncer: Syncer::new(policy, Arc::clone(&file))?,
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
        let res = (&*self.file)
            .write_all(bytes)
            .and_then(|()| self.syncer.wrote(&self.file));
        if let Err(e) = res {
            // Cut what may have been written. Only a full disk, cut back cleanly, leaves the log
            // usable; after any other failure (the cut failed, or a failed sync may have made
            // the kernel drop earlier data) stop appending: the next open cuts the tail.
            if self.file.set_len(at).is_err() || e.kind() != io::ErrorKind::StorageFull {
                self.broken = true;
            }
            return Err(e);
        }
        self.len = at + bytes.len() as u64;
        Ok(at)
    }

    /// Sync now if the policy ever syncs.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        self.syncer.sync_now(&self.file)
    }

    /// Continue in another, complete file whose valid length is `len` (the caller synced
    /// the old one if it still matters).
    pub(crate) fn switch(&mut self, file: File, len: u64) {
        let file = Arc::new(file);
        self.syncer.set_file(Arc::clone(&file));
        self.file = file;
        self.len = len;
        self.broken = false;
    }

    /// Refuse further appends (the file no longer describes the store's state).
    pub(crate) fn disable(&mut self) {
        self.broken = true;
    }
}
