//! The publish store under power loss: rotation, reclaim, reopen, every fsync policy, and a
//! second power loss while `open` repairs the first one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amps_core::store::{MemoryPublishStore, PublishStore};
use amps_fs::{FilePublishStore, FileStoreOptions, FsyncPolicy, OpenMode};

use super::simfs::{Image, SimFs};
use super::{Tally, budget, count_distinct, hash, seed};

const NAME: &str = "power-pub";

fn dir() -> PathBuf {
    PathBuf::from("/sim/publish")
}

fn opts(fsync: FsyncPolicy) -> FileStoreOptions {
    FileStoreOptions {
        fsync,
        max_messages: 64,
        max_bytes: 1 << 20,
        // A few messages per segment: rotation and reclaim all the time.
        segment_bytes: 900,
    }
}

#[derive(Clone, Debug)]
enum Call {
    Store(u64, Vec<u8>),
    DiscardUpTo(u64),
    Discard(u64),
    Sync,
    Reopen,
}

/// Mostly short frames, every fifth spanning sectors; or, `large`, every frame over several
/// sectors (sequence numbers above 2000).
fn frame(seq: u64) -> Vec<u8> {
    let len = if seq > 2000 {
        1100 + (seq * 331 % 1500) as usize
    } else if seq % 5 == 2 {
        520 + (seq * 13 % 300) as usize
    } else {
        20 + (seq * 37 % 50) as usize
    };
    (0..len).map(|i| (seq as usize * 7 + i) as u8 | 1).collect()
}

/// Messages `first..=last` stored in order, the server persisting them with a lag, now and
/// then a single discard, a `sync()`, a reopen.
fn workload(first: u64, last: u64, reopen_at: Option<u64>) -> Vec<Call> {
    let mut calls = Vec::new();
    let mut persisted = first - 1;
    for seq in first..=last {
        calls.push(Call::Store(seq, frame(seq)));
        if seq % 4 == 0 && seq > first + 2 {
            persisted = seq - 3 + seq % 3;
            calls.push(Call::DiscardUpTo(persisted));
        }
        if seq % 9 == 0 {
            calls.push(Call::Discard(persisted + 1));
        }
        if seq % 7 == 3 {
            calls.push(Call::Sync);
        }
        if Some(seq) == reopen_at {
            calls.push(Call::Reopen);
        }
    }
    calls
}

/// What the calls mean for the invariants, per prefix. The store may start from a state a
/// first power loss left (`initial`): all of it is on stable storage then.
struct Model {
    initial: BTreeSet<u64>,
    initial_last_seq: u64,
    /// The index of the call that stored each message.
    stored_by: BTreeMap<u64, usize>,
    frames: BTreeMap<u64, Vec<u8>>,
    /// Unpersisted messages after the first `k` calls (the core's memory store).
    entries_after: Vec<Vec<u64>>,
    /// Messages stored by the first `durable_upto[r]` calls are durable once `r` calls
    /// returned.
    durable_upto: Vec<usize>,
}

impl Model {
    fn new(start: Option<&Recovered>, calls: &[Call], fsync: FsyncPolicy) -> Model {
        let mut mem = MemoryPublishStore::new(vec![0u8; 1 << 16], 64);
        let mut m = Model {
            initial: BTreeSet::new(),
            initial_last_seq: 0,
            stored_by: BTreeMap::new(),
            frames: BTreeMap::new(),
            entries_after: Vec::new(),
            durable_upto: vec![0],
        };
        if let Some(r) = start {
            for (seq, f) in &r.entries {
                mem.store(*seq, f).unwrap();
                m.initial.insert(*seq);
                m.frames.insert(*seq, f.clone());
            }
            mem.set_last_seq(r.last_seq);
            m.initial_last_seq = r.last_seq;
        }
        m.entries_after.push(seqs(&mut mem));
        let mut durable = 0;
        for (k, call) in calls.iter().enumerate() {
            match call {
                Call::Store(seq, f) => {
                    mem.store(*seq, f).unwrap();
                    m.stored_by.insert(*seq, k);
                    m.frames.insert(*seq, f.clone());
                }
                Call::DiscardUpTo(seq) => mem.discard_up_to(*seq),
                Call::Discard(seq) => mem.discard(*seq),
                Call::Sync if fsync != FsyncPolicy::Never => durable = k + 1,
                Call::Sync | Call::Reopen => {}
            }
            if fsync == FsyncPolicy::Always {
                durable = k + 1;
            }
            m.entries_after.push(seqs(&mut mem));
            m.durable_upto.push(durable);
        }
        m
    }

    fn written(&self, seq: u64, issued: usize) -> bool {
        self.initial.contains(&seq) || self.stored_by.get(&seq).is_some_and(|&k| k < issued)
    }

    fn durable(&self, seq: u64, returned: usize) -> bool {
        self.initial.contains(&seq)
            || self
                .stored_by
                .get(&seq)
                .is_some_and(|&k| k < self.durable_upto[returned])
    }

    /// The highest sequence number stored by the first `k` calls (or before them).
    fn max_stored(&self, k: usize) -> u64 {
        let stored = self.stored_by.iter().filter(|&(_, &c)| c < k);
        stored
            .map(|(&s, _)| s)
            .max()
            .unwrap_or(0)
            .max(self.initial_last_seq)
    }
}

fn seqs(s: &mut dyn PublishStore) -> Vec<u64> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((seq, _)) = s.next_after(at) {
        out.push(seq);
        at = seq;
    }
    out
}

fn contents(s: &mut FilePublishStore) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((seq, f)) = s.next_after(at) {
        out.push((seq, f.to_vec()));
        at = seq;
    }
    out
}

/// A crash state reopened.
#[derive(Clone, Debug)]
struct Recovered {
    entries: Vec<(u64, Vec<u8>)>,
    last_seq: u64,
    /// Recovery cut a torn tail.
    cut: bool,
    /// ... in a segment that is not the newest.
    torn_older: bool,
}

/// Open `image` (strict), read it back, then store one more message and check a second reopen
/// recovers it after the rest.
fn reopen(image: &Image) -> Result<Recovered, String> {
    let fs = Arc::new(SimFs::from_image(image));
    let mode = || OpenMode::new().fs(fs.clone());
    let o = opts(FsyncPolicy::Never);
    let mut s = FilePublishStore::open_with(dir(), NAME, o, mode())
        .map_err(|e| format!("open refused: {e}"))?;
    let newest = image
        .keys()
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .max();
    let cut = s.recovery().cut.clone().filter(|c| c.bytes > 0);
    let r = Recovered {
        entries: contents(&mut s),
        last_seq: s.last_seq(),
        cut: cut.is_some(),
        torn_older: cut.is_some_and(|c| Some(&c.path) != newest),
    };
    let next = r.last_seq + 1;
    s.store(next, b"after the crash")
        .map_err(|e| format!("store after recovery: {e:?}"))?;
    drop(s);
    let mut s = FilePublishStore::open_with(dir(), NAME, o, mode())
        .map_err(|e| format!("second open refused: {e}"))?;
    let mut want = r.entries.clone();
    want.push((next, b"after the crash".to_vec()));
    if contents(&mut s) != want || s.last_seq() != next {
        return Err("the store does not continue cleanly after recovery".into());
    }
    Ok(r)
}

struct Explorer {
    fsync: FsyncPolicy,
    model: Model,
    memo: HashMap<u64, Result<Recovered, String>>,
    /// States whose recovery cut a torn tail (every one, for a second power loss).
    torn: Vec<(Image, Recovered)>,
    tally: Tally,
}

impl Explorer {
    /// Check one crash state, `issued` calls started and `returned` of them returned.
    fn check(&mut self, issued: usize, returned: usize, image: Image) {
        self.tally.states += 1;
        let h = hash(&image);
        if !self.memo.contains_key(&h) {
            self.tally.distinct += 1;
            count_distinct(h);
            let r = reopen(&image);
            if let Ok(r) = &r
                && r.cut
            {
                self.torn.push((image.clone(), r.clone()));
            }
            self.memo.insert(h, r);
        }
        let fail = |why: String| format!("after {issued} calls ({returned} returned): {why}");
        let r = match &self.memo[&h] {
            Ok(r) => r,
            Err(e) => {
                let files: Vec<_> = image.iter().map(|(p, b)| (p.clone(), b.len())).collect();
                super::dump(&image);
                self.tally
                    .failures
                    .push(fail(format!("{e} (files {files:?})")));
                return;
            }
        };
        let m = &self.model;
        let mut problems = Vec::new();
        if r.entries.windows(2).any(|w| w[0].0 >= w[1].0) {
            problems.push("messages out of order or repeated".to_string());
        }
        for (seq, f) in &r.entries {
            if !m.written(*seq, issued) || m.frames.get(seq) != Some(f) {
                problems.push(format!("message {seq} was never stored as recovered"));
            }
        }
        for &seq in &m.entries_after[issued] {
            if m.durable(seq, returned) && !r.entries.iter().any(|(s, _)| *s == seq) {
                problems.push(format!("acknowledged message {seq} lost"));
            }
        }
        let acked_max = m
            .initial_last_seq
            .max(m.max_stored(m.durable_upto[returned]));
        let issued_max = m.max_stored(issued);
        if r.last_seq < acked_max || r.last_seq > issued_max {
            problems.push(format!(
                "last_seq {} outside {acked_max}..={issued_max}",
                r.last_seq
            ));
        }
        if r.torn_older && self.fsync != FsyncPolicy::Never {
            problems.push("a segment older than the newest was torn".into());
        }
        if !problems.is_empty() {
            super::dump(&image);
            self.tally.failures.push(fail(problems.join("; ")));
        }
    }
}

/// Run `calls` under `fsync`, on an empty store or on the state a power loss left (`start`),
/// checking every crash state. Returns what was found and the states whose recovery cut a
/// torn tail.
fn run(
    fsync: FsyncPolicy,
    start: Option<(&Image, &Recovered)>,
    calls: &[Call],
) -> (Tally, Vec<(Image, Recovered)>) {
    let explorer = Arc::new(Mutex::new(Explorer {
        fsync,
        model: Model::new(start.map(|s| s.1), calls, fsync),
        memo: HashMap::new(),
        torn: Vec::new(),
        tally: Tally::default(),
    }));
    let issued = Arc::new(AtomicUsize::new(0));
    let returned = Arc::new(AtomicUsize::new(0));
    let fs = Arc::new(start.map_or_else(SimFs::new, |s| SimFs::from_image(s.0)));
    {
        let (explorer, issued, returned) = (explorer.clone(), issued.clone(), returned.clone());
        fs.record(
            budget(),
            seed() ^ calls.len() as u64,
            Box::new(move |images| {
                let (i, r) = (
                    issued.load(Ordering::SeqCst),
                    returned.load(Ordering::SeqCst),
                );
                let mut e = explorer.lock().unwrap();
                e.tally.crash_points += 1;
                for image in images {
                    e.check(i, r, image);
                }
            }),
        );
    }
    let open = || {
        FilePublishStore::open_with(dir(), NAME, opts(fsync), OpenMode::new().fs(fs.clone()))
            .expect("open")
    };
    let mut store = Some(open());
    for (k, call) in calls.iter().enumerate() {
        issued.store(k + 1, Ordering::SeqCst);
        let s = store.as_mut().unwrap();
        match call {
            Call::Store(seq, f) => s.store(*seq, f).expect("store"),
            Call::DiscardUpTo(seq) => s.discard_up_to(*seq),
            Call::Discard(seq) => s.discard(*seq),
            Call::Sync => s.sync().expect("sync"),
            Call::Reopen => {
                drop(store.take());
                store = Some(open());
            }
        }
        returned.store(k + 1, Ordering::SeqCst);
    }
    drop(store);
    fs.stop_recording();
    let mut e = explorer.lock().unwrap();
    assert!(e.tally.distinct > 0, "nothing explored");
    (std::mem::take(&mut e.tally), std::mem::take(&mut e.torn))
}

pub(super) fn scenarios() -> impl Iterator<Item = (String, Tally)> {
    [
        FsyncPolicy::Always,
        FsyncPolicy::Every {
            writes: 3,
            interval: Duration::from_secs(3600),
        },
        FsyncPolicy::Never,
    ]
    .into_iter()
    .flat_map(|p| {
        let (tally, torn) = run(p, None, &workload(1, 36, Some(22)));
        let mut out = vec![(format!("publish {p:?}"), tally)];
        // A second power loss while `open` cuts the first one's torn tail (and, under
        // `Never`, drops segments after a torn older one), then during more work.
        let picks = pick(&torn, 3);
        let second = workload(1001, 1008, None);
        let mut again = Tally::default();
        for (image, r) in picks {
            let (t, _) = run(p, Some((image, r)), &second);
            again.crash_points += t.crash_points;
            again.states += t.states;
            again.distinct += t.distinct;
            again.failures.extend(t.failures);
        }
        out.push((format!("publish {p:?}, power loss during recovery"), again));
        if p != FsyncPolicy::Never {
            // Writes torn into many pieces.
            let (tally, _) = run(p, None, &workload(2001, 2030, Some(2015)));
            out.push((format!("publish {p:?}, frames over several sectors"), tally));
        }
        out
    })
}

/// Up to `n` of `torn`, spread over the run, preferring tears in older segments.
fn pick(torn: &[(Image, Recovered)], n: usize) -> Vec<&(Image, Recovered)> {
    let mut out: Vec<&(Image, Recovered)> =
        torn.iter().filter(|t| t.1.torn_older).take(1).collect();
    let step = (torn.len() / n.max(1)).max(1);
    out.extend(torn.iter().step_by(step).take(n - out.len()));
    out
}
