//! # amps-fs
//!
//! Durable, file-backed stores for AMPS clients (design.md §3; seeds: "File-backed stores"):
//!
//! - [`FilePublishStore`]: keeps every published message until the server acknowledges it as
//!   persisted, across crashes of the client, and hands it back for replay in sequence order
//!   after a restart (protocol.md §8.4).
//! - [`FileBookmarkStore`]: the logged bookmark store; records received, discarded and
//!   persisted bookmarks so a bookmark subscription resumes from MOST_RECENT after a restart
//!   with no gap and no duplicate of a discarded message (protocol.md §10).
//!
//! Both implement the core's store traits ([`amps_core::store::PublishStore`],
//! [`amps_core::store::BookmarkStore`]) and answer every call exactly as the core's in-memory
//! stores do, so a session cannot tell them apart except that state survives a restart. Both
//! are `Send`, bounded ([`FileStoreOptions`], [`BookmarkStoreOptions`]; a full store is
//! [`StoreError::Full`](amps_core::session::StoreError::Full), the core's backpressure), and
//! hold a lock so a second instance gets [`OpenError::Locked`].
//!
//! ## Durability
//!
//! Each store is an append-only log of records, each with a length and a CRC-32. Every change
//! reaches the operating system before the call returns, so a crash of the process loses
//! nothing; the [`FsyncPolicy`] decides what an OS crash or power loss can lose. On open, a
//! torn or corrupt tail (a partial record, a bad checksum) is cut off with a warning and
//! reported in [`RecoveryReport`]; a store of another client name, of another format version,
//! or with damage that is not at the tail is refused with an [`OpenError`].
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

mod bookmark;
mod durable;
mod error;
mod options;
mod publish;
mod record;
mod recover;

pub use bookmark::FileBookmarkStore;
pub use error::{OpenError, RecoveryReport, TailCut, TailDamage};
pub use options::{BookmarkStoreOptions, FileStoreOptions, FsyncPolicy};
pub use publish::FilePublishStore;
