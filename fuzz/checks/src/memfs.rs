//! An in-memory file layer for the file stores ([`amps_fs::vfs::Vfs`]), so that the
//! [`fs_store`](crate::fs_store) check opens stores through their public API without touching
//! the disk: each input gets a fresh, private file system (no scratch directory shared between
//! threads or processes, nothing to clean up, no I/O error the input did not cause).
//!
//! It keeps what POSIX promises and nothing more is needed: an open handle keeps reading the
//! file it opened after a rename or removal of its name; a rename replaces the target; a
//! directory must exist to list it or create a file in it. Every write is immediately "durable"
//! (there is no power loss here), so `sync_data` and `sync_dir` only check that their target
//! exists.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use amps_fs::vfs::{Vfs, VfsFile, VfsLock};

type Content = Arc<Mutex<Vec<u8>>>;

#[derive(Debug, Default)]
struct Inner {
    dirs: BTreeSet<PathBuf>,
    files: BTreeMap<PathBuf, Content>,
    locks: BTreeSet<PathBuf>,
}

/// A file system held in memory. Clones share it.
#[derive(Clone, Debug, Default)]
pub struct MemFs(Arc<Mutex<Inner>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking check may leave a guard poisoned; the data is still consistent (every
    // operation completes under the lock), and the file system dies with the check anyway.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn not_found() -> io::Error {
    io::ErrorKind::NotFound.into()
}

impl MemFs {
    /// An empty file system (the root directory `/` exists).
    pub fn new() -> MemFs {
        let fs = MemFs::default();
        lock(&fs.0).dirs.insert(PathBuf::from("/"));
        fs
    }

    /// Create (or replace) the file at `path` with `bytes`, and its directories.
    pub fn put(&self, path: &Path, bytes: &[u8]) {
        let mut g = lock(&self.0);
        add_dirs(&mut g, &parent(path));
        g.files
            .insert(path.to_path_buf(), Arc::new(Mutex::new(bytes.to_vec())));
    }

    /// The content of the file at `path`, if there is one.
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let g = lock(&self.0);
        g.files.get(path).map(|c| lock(c).clone())
    }

    /// The names of the files directly in `dir`, sorted.
    pub fn files_in(&self, dir: &Path) -> Vec<PathBuf> {
        let g = lock(&self.0);
        g.files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .cloned()
            .collect()
    }
}

fn add_dirs(g: &mut Inner, dir: &Path) {
    let mut d = Some(dir);
    while let Some(p) = d.filter(|p| !p.as_os_str().is_empty()) {
        g.dirs.insert(p.to_path_buf());
        d = p.parent();
    }
}

/// The lock of one path, released when dropped.
struct MemLock {
    fs: MemFs,
    path: PathBuf,
}

impl Drop for MemLock {
    fn drop(&mut self) {
        lock(&self.fs.0).locks.remove(&self.path);
    }
}

#[derive(Debug)]
struct MemFile(Content);

impl VfsFile for MemFile {
    fn size(&self) -> io::Result<u64> {
        Ok(lock(&self.0).len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        let c = lock(&self.0);
        let src = usize::try_from(at)
            .ok()
            .and_then(|at| c.get(at..at.checked_add(buf.len())?))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, bytes: &[u8], at: u64) -> io::Result<()> {
        let mut c = lock(&self.0);
        let at = usize::try_from(at).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let end = at
            .checked_add(bytes.len())
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        if c.len() < end {
            c.resize(end, 0);
        }
        c[at..end].copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        lock(&self.0).resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }
}

impl Vfs for MemFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        add_dirs(&mut lock(&self.0), dir);
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<VfsLock> {
        let mut g = lock(&self.0);
        if !g.dirs.contains(&parent(path)) {
            return Err(not_found());
        }
        if !g.locks.insert(path.to_path_buf()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Box::new(MemLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let g = lock(&self.0);
        if !g.dirs.contains(dir) {
            return Err(not_found());
        }
        Ok(g.files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(OsString::from))
            .collect())
    }

    fn file_len(&self, path: &Path) -> io::Result<Option<u64>> {
        let g = lock(&self.0);
        Ok(g.files.get(path).map(|c| lock(c).len() as u64))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let g = lock(&self.0);
        let c = g.files.get(path).ok_or_else(not_found)?;
        Ok(Arc::new(MemFile(Arc::clone(c))))
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let mut g = lock(&self.0);
        if g.files.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        if !g.dirs.contains(&parent(path)) {
            return Err(not_found());
        }
        let c = Content::default();
        g.files.insert(path.to_path_buf(), Arc::clone(&c));
        Ok(Arc::new(MemFile(c)))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        lock(&self.0)
            .files
            .remove(path)
            .map(drop)
            .ok_or_else(not_found)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut g = lock(&self.0);
        if !g.dirs.contains(&parent(to)) {
            return Err(not_found());
        }
        let c = g.files.remove(from).ok_or_else(not_found)?;
        g.files.insert(to.to_path_buf(), c);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if lock(&self.0).dirs.contains(dir) {
            Ok(())
        } else {
            Err(not_found())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_survive_renames_and_removals_and_locks_are_exclusive() {
        let fs = MemFs::new();
        let dir = Path::new("/d");
        assert!(fs.list(dir).is_err());
        fs.create_dir_all(dir).unwrap();
        let a = fs.create_new(&dir.join("a")).unwrap();
        a.write_at(b"hello", 0).unwrap();
        a.write_at(b"!", 7).unwrap();
        assert_eq!(fs.read(&dir.join("a")).unwrap(), b"hello\0\0!");
        assert!(fs.create_new(&dir.join("a")).is_err());
        fs.put(&dir.join("b"), b"old");
        fs.rename(&dir.join("a"), &dir.join("b")).unwrap();
        assert_eq!(fs.list(dir).unwrap(), vec![OsString::from("b")]);
        assert_eq!(fs.file_len(&dir.join("a")).unwrap(), None);
        a.set_len(5).unwrap();
        fs.remove(&dir.join("b")).unwrap();
        let mut buf = [0u8; 5];
        a.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"hello");
        assert!(a.read_at(&mut buf, 1).is_err());
        assert!(fs.open(&dir.join("b")).is_err());

        let l = fs.lock(&dir.join("LOCK")).unwrap();
        assert_eq!(
            fs.lock(&dir.join("LOCK")).err().map(|e| e.kind()),
            Some(io::ErrorKind::WouldBlock)
        );
        drop(l);
        assert!(fs.lock(&dir.join("LOCK")).is_ok());
        assert!(fs.sync_dir(Path::new("/nowhere")).is_err());
    }
}
