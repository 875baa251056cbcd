//! Why a store could not be opened, and what recovery repaired.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A store could not be opened. Nothing was changed on disk except, for `Io` during recovery,
/// possibly a torn tail already cut off.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// The operating system refused an operation on `path`.
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The error.
        source: io::Error,
    },
    /// Another process, or another open store in this process, holds the store's lock (a store
    /// is used by one client instance at a time). The lock is
    /// released when its holder closes the store or dies; a process forked while a store is
    /// open shares the lock until it execs or exits.
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The store belongs to another client name; a store must only be replayed under the name
    /// whose sequence numbers it holds.
    ClientName {
        /// The store file.
        path: PathBuf,
        /// The name passed to `open`.
        expected: String,
        /// The name recorded in the file.
        found: String,
    },
    /// The file was written by an incompatible version of this crate.
    Version {
        /// The store file.
        path: PathBuf,
        /// The file's format version.
        found: u32,
        /// The format version this build reads and writes.
        supported: u32,
    },
    /// The file is not a store of the expected kind (wrong magic bytes: another file, or a
    /// publish store opened as a bookmark store or the reverse).
    NotAStore {
        /// The file.
        path: PathBuf,
    },
    /// A record with a valid checksum that the store cannot have written (a bug, or a file
    /// edited by hand), or a header that makes no sense. Refused rather than guessed at; move
    /// the file away to start empty.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },
    /// Damage that no crash can cause: a bad record in bytes that were already on stable
    /// storage (the file's durable mark covers them), a record changed rather than cut short (a
    /// flipped bit), or a header torn although new files are synced before they appear. Open
    /// the store with [`OpenMode::repair`](crate::OpenMode::repair) to keep everything that is
    /// still readable; what is lost is then listed in [`RecoveryReport::lost`].
    Damaged(Damage),
    /// The options cannot work (for example a zero capacity).
    InvalidOptions(&'static str),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Io {
                path,
                action,
                source,
            } => write!(f, "{action} {}: {source}", path.display()),
            OpenError::Locked { path } => write!(
                f,
                "store is in use by another client instance (lock {} is held)",
                path.display()
            ),
            OpenError::ClientName {
                path,
                expected,
                found,
            } => write!(
                f,
                "store {} belongs to client `{found}`, not `{expected}`",
                path.display()
            ),
            OpenError::Version {
                path,
                found,
                supported,
            } => write!(
                f,
                "store {} has format version {found}; this build supports version {supported}",
                path.display()
            ),
            OpenError::NotAStore { path } => {
                write!(f, "{} is not an amps-fs store of this kind", path.display())
            }
            OpenError::Corrupt { path, offset, what } => {
                write!(
                    f,
                    "store {} is corrupt at byte {offset}: {what}",
                    path.display()
                )
            }
            OpenError::Damaged(d) => write!(
                f,
                "{d}, which no crash causes; open the store in repair mode to keep the rest"
            ),
            OpenError::InvalidOptions(why) => write!(f, "invalid store options: {why}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl OpenError {
    pub(crate) fn io(path: impl Into<PathBuf>, action: &'static str, source: io::Error) -> Self {
        OpenError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

/// What is wrong with the first bad record of a damaged stretch of a log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailDamage {
    /// Fewer bytes than a record header, or than the length it announces: a write cut short.
    Partial,
    /// A length of zero or beyond any record this store writes.
    BadLength,
    /// The checksum does not match the bytes.
    BadChecksum,
    /// A record with a valid checksum that the store cannot have written there (only reported
    /// in [`RecoveryReport::lost`], by a repair).
    Invalid(&'static str),
}

impl fmt::Display for TailDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TailDamage::Partial => "partial record",
            TailDamage::BadLength => "impossible record length",
            TailDamage::BadChecksum => "checksum mismatch",
            TailDamage::Invalid(what) => return write!(f, "invalid record ({what})"),
        })
    }
}

/// A torn tail that recovery cut off: the end of the newest file, beyond what was on stable
/// storage, in a shape a crash leaves (a record cut short, or sectors never written).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailCut {
    /// The file that was cut.
    pub path: PathBuf,
    /// Where the first bad record started (the file's new length).
    pub offset: u64,
    /// How many bytes were removed.
    pub bytes: u64,
    /// What was wrong with the first bad record.
    pub damage: TailDamage,
}

/// What opening a store found on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Valid records read (headers excluded).
    pub records: u64,
    /// The torn tail cut off, if there was one (also logged as a warning). Only writes that
    /// were not yet on stable storage are ever cut this way.
    pub cut: Option<TailCut>,
    /// True when the store did not exist (or was an empty file) and was created.
    pub created: bool,
    /// With [`OpenMode::repair`](crate::OpenMode::repair): the damaged stretches skipped, in
    /// file order, each with what may have been lost in it. Empty otherwise (damage is then
    /// [`OpenError::Damaged`]).
    pub lost: Vec<Damage>,
}

/// A damaged stretch of a store file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Damage {
    /// The file.
    pub path: PathBuf,
    /// Where the first bad record starts.
    pub offset: u64,
    /// Bytes from there to the next valid record (or to the end of the file). When the file is
    /// shorter than the length it had on stable storage, `offset` is its end and `bytes` the
    /// bytes missing.
    pub bytes: u64,
    /// What is wrong with the first bad record.
    pub cause: TailDamage,
    /// What the damaged bytes may have held.
    pub at_stake: AtStake,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "store {} is damaged at byte {} ({} bytes, {}): {} at stake",
            self.path.display(),
            self.offset,
            self.bytes,
            self.cause,
            self.at_stake
        )
    }
}

/// What a damaged stretch of a store file may have held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AtStake {
    /// A publish store: messages with sequence numbers above `after` and, when a message
    /// follows the damage, below `before` (and the discards recorded in between).
    Messages {
        /// The last sequence number stored before the damage.
        after: u64,
        /// The first sequence number stored after it, if any.
        before: Option<u64>,
    },
    /// A bookmark store: the log's changes after its first `intact` records (subscriptions,
    /// received, discarded and persisted bookmarks).
    Records {
        /// Valid records of the file before the damage (the header excluded).
        intact: u64,
    },
}

impl fmt::Display for AtStake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AtStake::Messages {
                after,
                before: Some(before),
            } => write!(
                f,
                "messages with sequence numbers above {after} and below {before}"
            ),
            AtStake::Messages {
                after,
                before: None,
            } => write!(f, "messages with sequence numbers above {after}"),
            AtStake::Records { intact } => write!(f, "the log's records after the first {intact}"),
        }
    }
}
