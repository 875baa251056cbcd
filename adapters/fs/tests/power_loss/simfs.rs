//! An in-memory file system under the stores (`amps_fs::vfs::Vfs`) that keeps, for every
//! file, what it held at its last fsync apart from what was written since, and for every
//! directory the names made durable by its last fsync apart from the creations, renames and
//! removals since. From that it enumerates the states a power loss can leave at any moment:
//!
//! - a file's length is its durable length, or any length it had since, or a sector boundary
//!   inside a write since (a write torn part way);
//! - each 512-byte sector written since the last fsync holds its content at the fsync or
//!   after any later write (sectors are written whole, in any order), so a sector never
//!   written back reads as zeros past the file's old end;
//! - each directory operation since the directory's last fsync is kept or lost, in any
//!   combination, as long as each kept one still applies (a rename moves the file it moved).
//!
//! With a recorder set, every write, length change, fsync, creation, rename, removal and
//! directory fsync is a crash point: the states possible right after it are handed to the
//! recorder (all of them up to a budget, a seeded sample beyond it).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use amps_fs::vfs::{Vfs, VfsFile, VfsLock};

pub(crate) const SECTOR: usize = 512;

/// What a power loss left: every file by path.
pub(crate) type Image = BTreeMap<PathBuf, Vec<u8>>;

/// Called at every crash point with the states possible there.
pub(crate) type OnCrash = Box<dyn FnMut(Vec<Image>) + Send>;

#[derive(Clone, Debug, Default)]
pub(crate) struct SimFs {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    inodes: Vec<Inode>,
    names: BTreeMap<PathBuf, usize>,
    durable_names: BTreeMap<PathBuf, usize>,
    /// Directory operations not yet made durable, oldest first.
    pending: Vec<DirOp>,
    dirs: BTreeSet<PathBuf>,
    locks: BTreeSet<PathBuf>,
    recorder: Option<Recorder>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimFs").field("names", &self.names).finish()
    }
}

#[derive(Clone, Default)]
struct Inode {
    durable: Vec<u8>,
    cur: Vec<u8>,
    /// Changes since the last fsync: the content after each, and the extent it wrote.
    hist: Vec<Change>,
}

#[derive(Clone)]
struct Change {
    content: Vec<u8>,
    /// For a write: where it wrote, and the length before it.
    write: Option<(usize, usize, usize)>,
}

#[derive(Clone, Debug)]
enum DirOp {
    Link {
        name: PathBuf,
        ino: usize,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
        ino: usize,
    },
    Unlink {
        name: PathBuf,
        ino: usize,
    },
}

impl DirOp {
    fn dir(&self) -> PathBuf {
        let p = match self {
            DirOp::Link { name, .. } | DirOp::Unlink { name, .. } => name,
            DirOp::Rename { to, .. } => to,
        };
        parent(p)
    }

    /// Apply to `names` if it still applies.
    fn apply(&self, names: &mut BTreeMap<PathBuf, usize>) {
        match self {
            DirOp::Link { name, ino } => {
                names.entry(name.clone()).or_insert(*ino);
            }
            DirOp::Rename { from, to, ino } => {
                if names.get(from) == Some(ino) {
                    names.remove(from);
                    names.insert(to.clone(), *ino);
                }
            }
            DirOp::Unlink { name, ino } => {
                if names.get(name) == Some(ino) {
                    names.remove(name);
                }
            }
        }
    }
}

fn parent(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

struct Recorder {
    on_crash: OnCrash,
    /// States enumerated per crash point before sampling takes over.
    budget: usize,
    rng: u64,
}

impl Recorder {
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

impl SimFs {
    pub(crate) fn new() -> SimFs {
        SimFs::default()
    }

    /// A file system holding `image`, all of it durable.
    pub(crate) fn from_image(image: &Image) -> SimFs {
        let fs = SimFs::new();
        {
            let mut g = fs.lock_inner();
            for (path, bytes) in image {
                let ino = g.inodes.len();
                g.inodes.push(Inode {
                    durable: bytes.clone(),
                    cur: bytes.clone(),
                    hist: Vec::new(),
                });
                g.names.insert(path.clone(), ino);
                g.durable_names.insert(path.clone(), ino);
                let mut d = parent(path);
                while !d.as_os_str().is_empty() {
                    g.dirs.insert(d.clone());
                    d = parent(&d);
                }
            }
        }
        fs
    }

    fn lock_inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// From now on, hand the states possible after every operation to `on_crash`.
    pub(crate) fn record(&self, budget: usize, seed: u64, on_crash: OnCrash) {
        self.lock_inner().recorder = Some(Recorder {
            on_crash,
            budget,
            rng: seed | 1,
        });
    }

    /// Stop recording.
    pub(crate) fn stop_recording(&self) {
        self.lock_inner().recorder = None;
    }

    /// The files as a process sees them now.
    pub(crate) fn image(&self) -> Image {
        let g = self.lock_inner();
        g.names
            .iter()
            .map(|(p, &ino)| (p.clone(), g.inodes[ino].cur.clone()))
            .collect()
    }
}

impl Inner {
    fn lookup(&self, path: &Path) -> io::Result<usize> {
        self.names
            .get(path)
            .copied()
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    fn dir_op(&mut self, op: DirOp) {
        op.apply(&mut self.names);
        self.pending.push(op);
        self.crash_point();
    }

    fn change(&mut self, ino: usize, write: Option<(usize, usize, usize)>) {
        let node = &mut self.inodes[ino];
        node.hist.push(Change {
            content: node.cur.clone(),
            write,
        });
        self.crash_point();
    }

    /// Hand the states a power loss could leave now to the recorder.
    fn crash_point(&mut self) {
        let Some(mut rec) = self.recorder.take() else {
            return;
        };
        let images = self.crash_images(&mut rec);
        (rec.on_crash)(images);
        self.recorder = Some(rec);
    }

    fn crash_images(&self, rec: &mut Recorder) -> Vec<Image> {
        // Directory states: every combination of the pending operations (sampled past 64).
        let m = self.pending.len();
        let subsets: Vec<u64> = if m <= 6 {
            (0..1u64 << m).collect()
        } else {
            let mut v = vec![0, u64::MAX];
            v.extend((0..62).map(|_| rec.next()));
            v
        };
        let mut dir_states: Vec<BTreeMap<PathBuf, usize>> = Vec::new();
        for mask in subsets {
            let mut names = self.durable_names.clone();
            for (i, op) in self.pending.iter().enumerate() {
                if mask >> (i % 64) & 1 == 1 {
                    op.apply(&mut names);
                }
            }
            if !dir_states.contains(&names) {
                dir_states.push(names);
            }
        }
        // File states, per file reachable from any directory state.
        let mut choices: BTreeMap<usize, Vec<Vec<u8>>> = BTreeMap::new();
        for names in &dir_states {
            for &ino in names.values() {
                choices
                    .entry(ino)
                    .or_insert_with(|| self.inodes[ino].crash_contents(rec));
            }
        }
        let count = |names: &BTreeMap<PathBuf, usize>| -> usize {
            names
                .values()
                .map(|ino| choices[ino].len())
                .try_fold(1usize, |a, n| a.checked_mul(n))
                .unwrap_or(usize::MAX)
        };
        let total = dir_states
            .iter()
            .map(count)
            .try_fold(0usize, |a, n| a.checked_add(n))
            .unwrap_or(usize::MAX);
        let mut images = Vec::new();
        let build = |names: &BTreeMap<PathBuf, usize>, pick: &mut dyn FnMut(usize) -> usize| {
            names
                .iter()
                .map(|(p, ino)| {
                    let c = &choices[ino];
                    (p.clone(), c[pick(c.len())].clone())
                })
                .collect::<Image>()
        };
        if total <= rec.budget {
            for names in &dir_states {
                let inos: Vec<usize> = names.values().copied().collect();
                let n = count(names);
                for mut k in 0..n {
                    let mut digits = BTreeMap::new();
                    for ino in &inos {
                        let len = choices[ino].len();
                        digits.insert(*ino, k % len);
                        k /= len;
                    }
                    let image = names
                        .iter()
                        .map(|(p, ino)| (p.clone(), choices[ino][digits[ino]].clone()))
                        .collect();
                    images.push(image);
                }
            }
        } else {
            // Both extremes, then a seeded sample.
            for names in [dir_states.first(), dir_states.last()]
                .into_iter()
                .flatten()
            {
                images.push(build(names, &mut |_| 0));
                images.push(build(names, &mut |n| n - 1));
            }
            for _ in 0..rec.budget {
                let names = &dir_states[rec.below(dir_states.len())];
                let mut picks: Vec<usize> = Vec::new();
                for _ in 0..names.len() {
                    picks.push(rec.next() as usize);
                }
                let mut it = picks.into_iter();
                images.push(build(names, &mut |n| it.next().unwrap_or(0) % n));
            }
        }
        images
    }
}

impl Inode {
    /// The contents this file can have after a power loss now (the first is the durable one,
    /// the last the current one).
    fn crash_contents(&self, rec: &mut Recorder) -> Vec<Vec<u8>> {
        if self.hist.is_empty() {
            return vec![self.durable.clone()];
        }
        let versions: Vec<&[u8]> = std::iter::once(&self.durable[..])
            .chain(self.hist.iter().map(|c| &c.content[..]))
            .collect();
        let mut lens: Vec<usize> = versions.iter().map(|v| v.len()).collect();
        for c in &self.hist {
            if let Some((at, end, before)) = c.write {
                let from = at.max(before);
                let mut s = (from / SECTOR + 1) * SECTOR;
                while s < end {
                    lens.push(s);
                    s += SECTOR;
                }
            }
        }
        lens.sort_unstable();
        lens.dedup();
        let max = *lens.last().unwrap_or(&0);
        let sectors = max.div_ceil(SECTOR);
        let sector = |v: &[u8], s: usize| -> Vec<u8> {
            let mut b = vec![0u8; SECTOR];
            let from = (s * SECTOR).min(v.len());
            let to = ((s + 1) * SECTOR).min(v.len());
            b[..to - from].copy_from_slice(&v[from..to]);
            b
        };
        let per_sector: Vec<Vec<Vec<u8>>> = (0..sectors)
            .map(|s| {
                let mut vs: Vec<Vec<u8>> = Vec::new();
                for v in &versions {
                    let b = sector(v, s);
                    if !vs.contains(&b) {
                        vs.push(b);
                    }
                }
                vs
            })
            .collect();
        let combos = per_sector
            .iter()
            .map(Vec::len)
            .try_fold(lens.len(), |a, n| a.checked_mul(n))
            .unwrap_or(usize::MAX);
        let assemble = |len: usize, pick: &mut dyn FnMut(usize, usize) -> usize| {
            let mut out = Vec::with_capacity(sectors * SECTOR);
            for (s, vs) in per_sector.iter().enumerate() {
                out.extend_from_slice(&vs[pick(s, vs.len())]);
            }
            out.truncate(len);
            out
        };
        let mut out = Vec::new();
        if combos <= rec.budget {
            for k in 0..combos {
                let mut k2 = k / lens.len();
                let len = lens[k % lens.len()];
                out.push(assemble(len, &mut |_, n| {
                    let d = k2 % n;
                    k2 /= n;
                    d
                }));
            }
        } else {
            out.push(self.durable.clone());
            for _ in 0..rec.budget {
                let len = lens[rec.below(lens.len())];
                let picks: Vec<u64> = (0..sectors).map(|_| rec.next()).collect();
                out.push(assemble(len, &mut |s, n| (picks[s] % n as u64) as usize));
            }
            // Writes kept in order up to a point: the torn-prefix states.
            for v in &versions {
                out.push(v.to_vec());
            }
        }
        out.push(self.cur.clone());
        out.sort();
        out.dedup();
        out
    }
}

impl Vfs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut g = self.lock_inner();
        let mut d = dir.to_path_buf();
        while !d.as_os_str().is_empty() {
            g.dirs.insert(d.clone());
            d = parent(&d);
        }
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<VfsLock> {
        let mut g = self.lock_inner();
        if !g.locks.insert(path.to_path_buf()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Box::new(SimLock {
            fs: self.clone(),
            path: path.to_path_buf(),
        }))
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<OsString>> {
        let g = self.lock_inner();
        if !g.dirs.contains(dir) {
            return Err(io::ErrorKind::NotFound.into());
        }
        Ok(g.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name().map(OsString::from))
            .collect())
    }

    fn file_len(&self, path: &Path) -> io::Result<Option<u64>> {
        let g = self.lock_inner();
        Ok(g.names.get(path).map(|&ino| g.inodes[ino].cur.len() as u64))
    }

    fn open(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let ino = self.lock_inner().lookup(path)?;
        Ok(Arc::new(SimFile {
            fs: self.clone(),
            ino,
        }))
    }

    fn create_new(&self, path: &Path) -> io::Result<Arc<dyn VfsFile>> {
        let mut g = self.lock_inner();
        if g.names.contains_key(path) {
            return Err(io::ErrorKind::AlreadyExists.into());
        }
        if !g.dirs.contains(&parent(path)) {
            return Err(io::ErrorKind::NotFound.into());
        }
        let ino = g.inodes.len();
        g.inodes.push(Inode::default());
        g.dir_op(DirOp::Link {
            name: path.to_path_buf(),
            ino,
        });
        Ok(Arc::new(SimFile {
            fs: self.clone(),
            ino,
        }))
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut g = self.lock_inner();
        let ino = g.lookup(path)?;
        g.dir_op(DirOp::Unlink {
            name: path.to_path_buf(),
            ino,
        });
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut g = self.lock_inner();
        let ino = g.lookup(from)?;
        g.dir_op(DirOp::Rename {
            from: from.to_path_buf(),
            to: to.to_path_buf(),
            ino,
        });
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut g = self.lock_inner();
        let (now, later): (Vec<DirOp>, Vec<DirOp>) = std::mem::take(&mut g.pending)
            .into_iter()
            .partition(|op| op.dir() == dir);
        for op in &now {
            op.apply(&mut g.durable_names);
        }
        g.pending = later;
        g.crash_point();
        Ok(())
    }
}

/// The lock of a store on a [`SimFs`].
struct SimLock {
    fs: SimFs,
    path: PathBuf,
}

impl Drop for SimLock {
    fn drop(&mut self) {
        self.fs.lock_inner().locks.remove(&self.path);
    }
}

#[derive(Debug)]
struct SimFile {
    fs: SimFs,
    ino: usize,
}

impl VfsFile for SimFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.fs.lock_inner().inodes[self.ino].cur.len() as u64)
    }

    fn read_at(&self, buf: &mut [u8], at: u64) -> io::Result<()> {
        let g = self.fs.lock_inner();
        let cur = &g.inodes[self.ino].cur;
        let at = at as usize;
        let src = cur
            .get(at..at + buf.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_at(&self, bytes: &[u8], at: u64) -> io::Result<()> {
        let mut g = self.fs.lock_inner();
        let node = &mut g.inodes[self.ino];
        let (at, end) = (at as usize, at as usize + bytes.len());
        let before = node.cur.len();
        if node.cur.len() < end {
            node.cur.resize(end, 0);
        }
        node.cur[at..end].copy_from_slice(bytes);
        g.change(self.ino, Some((at, end, before)));
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut g = self.fs.lock_inner();
        g.inodes[self.ino].cur.resize(len as usize, 0);
        g.change(self.ino, None);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut g = self.fs.lock_inner();
        let node = &mut g.inodes[self.ino];
        node.durable = node.cur.clone();
        node.hist.clear();
        g.crash_point();
        Ok(())
    }
}
