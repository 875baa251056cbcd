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
    /// Another process, or another open store in this process, holds the store's lock (seeds:
    /// "A store file should only be used by one instance of a client at a time"). The lock is
    /// released when its holder closes the store or dies; a process forked while a store is
    /// open shares the lock until it execs or exits.
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The store belongs to another client name; a store must only be replayed under the name
    /// whose sequence numbers it holds (protocol.md §8.3, §8.4).
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
    /// Damage that is not a torn tail: a record with a valid checksum that makes no sense, or
    /// a bad record in a publish segment that is not the newest. Refused rather than guessed at;
    /// move the file away to start empty.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What is wrong.
        what: &'static str,
    },
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

/// How the end of a log was damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailDamage {
    /// Fewer bytes than a record header, or than the length it announces: a write cut short.
    Partial,
    /// A length of zero or beyond any record this store writes.
    BadLength,
    /// The checksum does not match the bytes.
    BadChecksum,
}

impl fmt::Display for TailDamage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TailDamage::Partial => "partial record",
            TailDamage::BadLength => "impossible record length",
            TailDamage::BadChecksum => "checksum mismatch",
        })
    }
}

/// A damaged tail that recovery cut off.
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
    /// The torn or corrupt tail cut off, if there was one (also logged as a warning).
    pub cut: Option<TailCut>,
    /// True when the store did not exist (or was an empty file) and was created.
    pub created: bool,
}
