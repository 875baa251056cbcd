//! # amps-fs
//!
//! Durable, file-backed stores for AMPS clients:
//!
//! - [`FilePublishStore`]: keeps every published message until the server acknowledges it as
//!   persisted, across crashes of the client, and hands it back for replay in sequence order
//!   after a restart.
//! - [`FileBookmarkStore`]: the logged bookmark store; records received, discarded and
//!   persisted bookmarks so a bookmark subscription resumes from MOST_RECENT after a restart
//!   with no gap and no duplicate of a discarded message.
//!
//! Both implement the core's store traits ([`amps_core::store::PublishStore`],
//! [`amps_core::store::BookmarkStore`]) and answer every call exactly as the core's in-memory
//! stores do, so a session cannot tell them apart except that state survives a restart. Both
//! are `Send`, bounded ([`FileStoreOptions`], [`BookmarkStoreOptions`]; a full store is
//! [`StoreError::Full`](amps_core::session::StoreError::Full), the core's backpressure), and
//! hold a lock so a second instance gets [`OpenError::Locked`]. All their file I/O goes through
//! a small file layer, [`vfs::Vfs`] ([`OpenMode::fs`]).
//!
//! In a client, `ClientBuilder::file_backed(publish_dir, bookmark_file)` (crate `amps`,
//! feature `fs`) opens both. On their own, a publish that the server never acknowledged is
//! still there after a restart:
//!
//! ```
//! use amps_core::codec::Command;
//! use amps_core::store::PublishStore;
//! use amps_fs::{FilePublishStore, FileStoreOptions};
//!
//! let dir = tempfile::tempdir()?;
//! let frame = Command::publish("orders", br#"{"id":"A1"}"#).seq(1).to_vec()?;
//! {
//!     let mut store = FilePublishStore::open(dir.path(), "pub-1", FileStoreOptions::default())?;
//!     store.store(1, &frame)?;
//! } // the process stops before the server acknowledged sequence 1
//!
//! let mut store = FilePublishStore::open(dir.path(), "pub-1", FileStoreOptions::default())?;
//! assert_eq!(store.unpersisted_count(), 1);
//! assert_eq!(store.get(1), Some(&frame[..]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Durability
//!
//! Each store is an append-only log of records, each with a length and a CRC-32 (the
//! publish store's log is split into segment files). Every change reaches the operating
//! system before the call returns, so a crash of the process loses nothing; the
//! [`FsyncPolicy`] decides what an OS crash or power loss can lose. After each fsync of a log
//! the store records, in the file's first sector, how many of its bytes are now on stable
//! storage (its *durable mark*).
//!
//! What a power loss can do, as this crate assumes it: any write not yet made durable by an
//! fsync of its file may be lost, or torn at 512-byte sector granularity (each sector holds its
//! new content or its previous one, zeros past the file's old end), and the file may end
//! anywhere those writes reached; a creation, rename or removal is durable only once its
//! directory was fsynced. (File systems that can show stale blocks of other files after a
//! crash, such as ext4 with `data=writeback`, are outside this model.)
//!
//! On open, the first bad record of a file is therefore a **torn tail** when it lies past the
//! durable mark and has the shape of a torn write (cut short, or with a sector that was never
//! written); it is cut off with a warning and reported in [`RecoveryReport::cut`]. Anything
//! else (a flipped bit, a zeroed block, damage in bytes that were durable) is damage no crash
//! causes: [`OpenError::Damaged`] names the file, the offset and what the damaged bytes may
//! have held, and nothing is changed; opening with [`OpenMode::repair`] keeps every record
//! still readable past the damage, lists what was lost in [`RecoveryReport::lost`] and
//! rewrites the store without it. A store of another client name, of another format version,
//! or with a record that has a valid checksum but makes no sense is refused with an
//! [`OpenError`]. (Under [`FsyncPolicy::Never`] no byte past a file's header is known to be
//! durable, so a zeroed stretch there reads as writes a power cut lost and is cut; a flipped
//! bit is still refused.)
//!
//! ### The order of writes and fsyncs
//!
//! Under [`FsyncPolicy::Always`] each call writes its record and fsyncs the file before it
//! returns; under [`FsyncPolicy::Every`] the file is fsynced after every `writes` writes and,
//! by a background thread, within `interval`; [`FilePublishStore::sync`] and
//! [`FileBookmarkStore::sync`] fsync at once (except under `Never`). After each of these
//! fsyncs the store rewrites the durable mark in place, and the next fsync makes it durable:
//! an older mark is a lower bound, so losing the newest only makes `open` less sure where the
//! durable bytes end, never wrong. Whatever the policy:
//!
//! 1. **New files** (the first segment, each new segment, a new bookmark log, the log a prune
//!    writes, the segment a repair writes) are written under `<name>.tmp`, fsynced, renamed
//!    into place, and then the directory is fsynced. A name never shows an incomplete file;
//!    a leftover `.tmp` is removed on open.
//! 2. **Rotation** (a publish segment is full): the full segment is fsynced, its durable mark
//!    written and fsynced again (except under `Never`), and only then is the next segment
//!    created as in 1. A power cut can therefore only tear the newest segment; under `Never`
//!    an older segment can still be torn, and then open drops it from the tear on together with
//!    every newer segment (all of it unsynced).
//! 3. **Reclaim** (every message of the oldest segments persisted): the segments are removed,
//!    then the directory is fsynced (except under `Never`). A removal a power cut undoes only
//!    replays messages the server drops as duplicates; every segment records the last
//!    sequence number before it, so numbering never goes back.
//! 4. **Prune** of the bookmark log (by hand or automatic): the current state is written as a
//!    new file as in 1, renamed over the log; the old log needs no sync because the new one
//!    holds everything.
//! 5. **Open**: a torn tail is cut and the file fsynced before anything new is written where it
//!    was; newer segments dropped after a torn older one are removed and the directory fsynced
//!    before that cut; a repair writes the whole store as in 1 (a segment marked as superseding
//!    all older ones, or a pruned log) before removing the damaged files.
//!
//! `tests/power_loss` checks these rules by enumerating the file states a power loss can leave
//! at every step of workloads over both stores (rotation, reclaim, prune, reopen, every
//! policy, and a second power loss during recovery) and reopening each one;
//! `AMPS_FS_POWER_STATES` raises the number of states tried at each step (see that test).
//!
//! ## With a session
//!
//! Host adapters choose stores at run time with boxed trait objects:
//!
//! ```
//! use amps_core::session::{Config, HeapStorage, Parts, Session};
//! use amps_core::store::{BookmarkStore, PublishStore};
//! use amps_fs::{BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions};
//!
//! type Storage =
//!     HeapStorage<Box<dyn PublishStore + Send>, Box<dyn BookmarkStore + Send>>;
//!
//! let dir = tempfile::tempdir()?;
//! let publish = FilePublishStore::open(dir.path().join("publish"), "pub-1",
//!     FileStoreOptions::default())?;
//! let bookmarks = FileBookmarkStore::open(dir.path().join("bookmarks.log"), "pub-1",
//!     BookmarkStoreOptions::default())?;
//! let config = Config::new("pub-1");
//! let parts = Parts::<Storage>::heap(&config.limits, Box::new(publish), Box::new(bookmarks));
//! let session = Session::new(&config, parts)?;
//! // Drive the session as usual (amps_core::session); after its logon it replays what the
//! // publish store kept and numbers new publishes after `last_seq()`.
//! # let _ = session;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bookmark;
mod durable;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod options;
mod publish;
mod record;
mod scan;
pub mod vfs;

pub use bookmark::FileBookmarkStore;
pub use error::{AtStake, Damage, OpenError, RecoveryReport, TailCut, TailDamage};
pub use options::{BookmarkStoreOptions, FileStoreOptions, FsyncPolicy, OpenMode};
pub use publish::FilePublishStore;

/// The examples of the crate's README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
