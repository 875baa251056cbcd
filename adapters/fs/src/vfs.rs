//! The file layer under the stores: every read, write, fsync, rename and directory sync they
//! do goes through [`Vfs`] and [`VfsFile`].
//!
//! Production uses [`RealFs`], the operating system's file system. Tests put a recording,
//! in-memory implementation underneath (see `tests/power_loss/` in this crate), which keeps
//! what each file held at its last fsync apart from what was written since, and so can
//! enumerate every state a power loss can leave (see the crate documentation, "Durability").
//!
//! The stores only rely on what POSIX file systems promise:
//!
//! - a write is in the file for every later read by anyone once it returns, and on stable
//!   storage only once a later [`VfsFile::sync_data`] of that file returned;
//! - creating, renaming and removing a file is durable only once a later [`Vfs::sync_dir`] of
//!   its directory returned;
//! - a renamed file keeps its content and its open handles.

use std::any::Any;
use std::ffi::OsString;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A lock held on a store (see [`Vfs::lock`]); dropping it releases the lock.
pub type VfsLock = Box<dyn Any + Send + Sync>;

/// A file system, as the stores use it.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Create `dir` and its missing parents.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// Take an exclusive advisory lock on `path` (creating the file if needed), held until the
    /// returned value is dropped. An error of kind [`io::ErrorKind::WouldBlock`] means someone
    /// else holds it.
    fn lock(&self, path: &Path) -> io::Result<VfsLock>;

    /// The names of the entries of directory `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>>;

    /// The length of the file at `path`, `None` if there is no such file.
    fn file_len(&self, path: &Path) -> io::Result<Option<u64>>;

    /// Open the existing file at `path` for reading and writing.
    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>>;

    /// Create a new, empty file at `path` for reading and writing; fails if it exists.
    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>>;

    /// Remove the file at `path`.
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Rename `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Make the creations, renames and removals done so far in directory `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// An open file, as the stores use it. Positioned reads and writes, so one handle can be
/// shared by the store and its background sync thread.
pub trait VfsFile: Send + Sync + fmt::Debug {
    /// The file's current length in bytes.
    fn size(&self) -> io::Result<u64>;

    /// Fill `buf` from offset `at` (an error if the file ends first).
    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()>;

    /// Write all of `bytes` at offset `at`, extending the file if needed.
    fn write_at(&self, bytes: &[u8], at: u64) -> io::Result<()>;

    /// Cut or extend (with zeros) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Force the file's content and length to stable storage (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
}

/// The operating system's file system (`std::fs`); what [`OpenMode::default`] uses.
///
/// [`OpenMode::default`]: crate::OpenMode
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

impl Vfs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn lock(&self, path: &Path) -> io::Result<VfsLock> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Box::new(file)),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::ErrorKind::WouldBlock.into()),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }

    fn file_len(&self, path: &Path) -> io::Result<Option<u64>> {
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Arc::new(RealFile::new(file)))
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Arc::new(RealFile::new(file)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        #[cfg(unix)]
        {
            File::open(dir)?.sync_all()
        }
        #[cfg(not(unix))]
        {
            // Directories cannot be opened as files here; renames are as durable as the
            // platform makes them.
            let _ = dir;
            Ok(())
        }
    }
}

/// A file of [`RealFs`].
#[derive(Debug)]
struct RealFile {
    file: File,
    /// Serialises seek-then-transfer where the platform has no positioned I/O.
    #[cfg(not(any(unix, windows)))]
    seek: std::sync::Mutex<()>,
}

impl RealFile {
    fn new(file: File) -> RealFile {
        RealFile {
            file,
            #[cfg(not(any(unix, windows)))]
            seek: std::sync::Mutex::new(()),
        }
    }
}

impl VfsFile for RealFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    #[cfg(unix)]
    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, at)
    }

    #[cfg(unix)]
    fn write_at(&self, bytes: &[u8], at: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::write_all_at(&self.file, bytes, at)
    }

    #[cfg(windows)]
    fn read_at(&self, mut buf: &mut [u8], mut at: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.file.seek_read(buf, at)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut std::mem::take(&mut buf)[n..];
                    at += n as u64;
                }
            }
        }
        Ok(())
    }

    #[cfg(windows)]
    fn write_at(&self, mut bytes: &[u8], mut at: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !bytes.is_empty() {
            match self.file.seek_write(bytes, at)? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => {
                    bytes = &bytes[n..];
                    at += n as u64;
                }
            }
        }
        Ok(())
    }

    #[cfg(not(any(unix, windows)))]
    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let _g = self
            .seek
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut f = &self.file;
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(buf)
    }

    #[cfg(not(any(unix, windows)))]
    fn write_at(&self, bytes: &[u8], at: u64) -> io::Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        let _g = self
            .seek
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut f = &self.file;
        f.seek(SeekFrom::Start(at))?;
        f.write_all(bytes)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}
