//! Configuration of the file stores: when to fsync, how much they may hold, and how they are
//! opened.

use std::sync::Arc;
use std::time::Duration;

use crate::vfs::{RealFs, Vfs};

/// When a store forces its writes to stable storage (`fdatasync`).
///
/// Every accepted change is written to the file (reaches the operating system) before the store
/// call returns, under every policy. So **a crash of the client process loses nothing** under
/// any policy: `SIGKILL`, a panic or an abort leaves every accepted record in the kernel's page
/// cache, and the next [`open`](crate::FilePublishStore::open) finds it. The policy decides what
/// an **operating-system crash or power loss** can take:
///
/// | policy | lost on OS crash / power loss | cost per write |
/// |---|---|---|
/// | [`Always`](FsyncPolicy::Always) | nothing the store accepted | one `fdatasync` (device latency: µs on NVMe with power-loss protection, ms on many disks) |
/// | [`Every`](FsyncPolicy::Every) | at most the last `writes - 1` writes, and at most what was written during the last `interval` (plus one `fdatasync`'s duration) | one `fdatasync` per `writes` writes; a background thread syncs the rest after `interval` |
/// | [`Never`](FsyncPolicy::Never) | anything the kernel had not written back yet (typically up to ~30 s on Linux) | none |
///
/// What a lost record means: for the publish store, a message the application was told was
/// stored is neither replayed nor, if it was never sent, published (with `Never` or `Every`);
/// a lost *discard* only makes the store replay messages the server already has, which the
/// server drops by sequence number. For the bookmark store, a lost record moves the resume
/// point back: messages already processed are delivered again (duplicates, never gaps,
/// because a discard is only ever lost together with everything after it).
///
/// Whatever the policy, a new file (a publish segment, a bookmark log, the log a `prune()`
/// writes) is synced, with its directory, before it appears under its name, and what `open`
/// cuts off or rewrites is synced before the store accepts anything new: these happen once per
/// segment or prune, not per message. The crate documentation ("Durability") gives the order
/// of every fsync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Sync after every write.
    Always,
    /// Sync after `writes` writes, and no later than `interval` after an unsynced write (a
    /// background thread per store does the timed syncs).
    Every {
        /// Writes between synced points (at least 1; 1 behaves like `Always`).
        writes: u32,
        /// Longest time a write stays unsynced.
        interval: Duration,
    },
    /// Never sync; rely on the operating system to write back.
    Never,
}

impl Default for FsyncPolicy {
    /// `Every { writes: 1000, interval: 100 ms }`: group commit that costs little throughput
    /// (see BENCHMARKS.md, "amps-fs") and bounds an OS crash's loss to a tenth of a second.
    fn default() -> Self {
        FsyncPolicy::Every {
            writes: 1000,
            interval: Duration::from_millis(100),
        }
    }
}

/// Options of a [`FilePublishStore`](crate::FilePublishStore).
///
/// ```
/// use amps_fs::{FileStoreOptions, FsyncPolicy};
/// let opts = FileStoreOptions {
///     fsync: FsyncPolicy::Always,
///     max_messages: 10_000,
///     ..FileStoreOptions::default()
/// };
/// # let _ = opts;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStoreOptions {
    /// When to fsync (default: [`FsyncPolicy::default`]).
    pub fsync: FsyncPolicy,
    /// Unpersisted messages the store holds before `store` reports
    /// [`StoreError::Full`](amps_core::session::StoreError::Full), which the session turns into
    /// publish backpressure (default 100,000, the session's default publish window).
    pub max_messages: usize,
    /// Unpersisted payload bytes (whole encoded frames) held before `Full` (default 64 MiB).
    /// A single frame larger than this is `TooLarge`.
    pub max_bytes: usize,
    /// Size at which the store starts a new segment file (default 8 MiB). Segments whose
    /// messages are all persisted are deleted, so the disk holds about the unpersisted bytes
    /// plus one segment.
    pub segment_bytes: u64,
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        FileStoreOptions {
            fsync: FsyncPolicy::default(),
            max_messages: 100_000,
            max_bytes: 64 * 1024 * 1024,
            segment_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Options of a [`FileBookmarkStore`](crate::FileBookmarkStore).
///
/// Capacity is counted the way [`amps_core::store::MemoryBookmarkStore`] counts it, so both
/// stores refuse (`Full`) at the same point: each message received and not yet part of a
/// subscription's discarded prefix costs its bookmark's length plus 3 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookmarkStoreOptions {
    /// When to fsync (default: [`FsyncPolicy::default`]).
    pub fsync: FsyncPolicy,
    /// Bookmark subscriptions tracked at once (default 64).
    pub max_subscriptions: usize,
    /// Bytes of the window of messages not yet discarded, counted as above (default 1 MiB,
    /// about 23,000 messages with 40-byte bookmarks).
    pub max_window_bytes: usize,
    /// Prune the log by itself once it grows past this many bytes (default 16 MiB); the next
    /// automatic prune waits until the log has grown to twice what the last prune left.
    /// `None`: only [`FileBookmarkStore::prune`](crate::FileBookmarkStore::prune) shrinks it
    /// (the log keeps every entry until the application calls `prune()`).
    pub auto_prune_bytes: Option<u64>,
}

impl Default for BookmarkStoreOptions {
    fn default() -> Self {
        BookmarkStoreOptions {
            fsync: FsyncPolicy::default(),
            max_subscriptions: 64,
            max_window_bytes: 1024 * 1024,
            auto_prune_bytes: Some(16 * 1024 * 1024),
        }
    }
}

/// How a store is opened: through which file layer, and whether damage is repaired.
///
/// The default is the operating system's file system and a strict open, which cuts off a torn
/// tail (what a crash leaves) but refuses damage no crash causes with
/// [`OpenError::Damaged`](crate::OpenError::Damaged).
///
/// ```
/// use amps_fs::{FilePublishStore, FileStoreOptions, OpenMode};
/// let dir = tempfile::tempdir()?;
/// // After an `OpenError::Damaged`, keep what is still readable:
/// let store = FilePublishStore::open_with(dir.path(), "pub-1", FileStoreOptions::default(),
///     OpenMode::new().repair())?;
/// for lost in &store.recovery().lost {
///     eprintln!("lost: {lost}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct OpenMode {
    pub(crate) fs: Arc<dyn Vfs>,
    pub(crate) repair: bool,
}

impl Default for OpenMode {
    fn default() -> Self {
        OpenMode {
            fs: Arc::new(RealFs),
            repair: false,
        }
    }
}

impl OpenMode {
    /// The operating system's file system, strict.
    pub fn new() -> OpenMode {
        OpenMode::default()
    }

    /// Repair damage instead of refusing it: every valid record past a damaged stretch is
    /// still read, what the stretch may have held is listed in
    /// [`RecoveryReport::lost`](crate::RecoveryReport::lost), and the store is rewritten
    /// without the damage (durably, before `open` returns), so the next open is clean.
    pub fn repair(mut self) -> OpenMode {
        self.repair = true;
        self
    }

    /// Do all file I/O through `fs` instead of the operating system's file system.
    pub fn fs(mut self, fs: Arc<dyn Vfs>) -> OpenMode {
        self.fs = fs;
        self
    }
}
