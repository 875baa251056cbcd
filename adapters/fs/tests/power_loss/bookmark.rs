//! The bookmark store under power loss: automatic and explicit prunes, removed and re-added
//! subscriptions, reopen, every fsync policy.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use amps_core::store::{BookmarkStore, MemoryBookmarkStore};
use amps_fs::vfs::Vfs;
use amps_fs::{BookmarkStoreOptions, FileBookmarkStore, FsyncPolicy, OpenMode};

use super::simfs::{Image, SimFs};
use super::{Tally, budget, count_distinct, hash, seed};

const NAME: &str = "power-bm";
const SUBS: usize = 4;
const WINDOW: usize = 4000;
const SUB_IDS: [&str; 3] = ["a", "b", "c"];

fn path() -> PathBuf {
    PathBuf::from("/sim/bookmarks.log")
}

fn opts(fsync: FsyncPolicy, auto_prune: Option<u64>) -> BookmarkStoreOptions {
    BookmarkStoreOptions {
        fsync,
        max_subscriptions: SUBS,
        max_window_bytes: WINDOW,
        auto_prune_bytes: auto_prune,
    }
}

#[derive(Clone, Debug)]
enum Call {
    Log(usize, String),
    Discard(usize, String),
    Persisted(usize, String),
    Remove(usize),
    Prune,
    Sync,
    Reopen,
}

/// A bookmark of the usual shape (publisher id and sequence number, about 30 bytes).
fn bm(publisher: u64, n: u64) -> String {
    format!("{}|{n:08}|", 3_084_015_820_777_091_000 + publisher)
}

/// Two subscriptions receiving interleaved messages, discarding mostly in order (sometimes
/// out of order), persisted acks, a removed and re-added subscription, explicit prunes,
/// syncs and a reopen; the small automatic-prune threshold prunes every few dozen records.
fn workload() -> Vec<Call> {
    let mut calls = Vec::new();
    for n in 1..=30u64 {
        calls.push(Call::Log(0, bm(7, n)));
        if n % 3 != 0 {
            calls.push(Call::Log(1, bm(9, n)));
        }
        if n >= 2 {
            // Out of order now and then: discard n before n - 1.
            if n % 5 == 0 {
                calls.push(Call::Discard(0, bm(7, n)));
                calls.push(Call::Discard(0, bm(7, n - 1)));
            } else if n % 5 != 4 {
                calls.push(Call::Discard(0, bm(7, n - 1)));
            }
        }
        if n % 3 == 1 && n > 1 {
            calls.push(Call::Discard(1, bm(9, n - 1)));
        }
        if n % 6 == 0 {
            calls.push(Call::Persisted(0, bm(7, n - 2)));
        }
        match n {
            8 => calls.push(Call::Sync),
            11 => calls.push(Call::Prune),
            14 => calls.push(Call::Remove(1)),
            15 => calls.push(Call::Log(2, bm(5, 1))),
            17 => calls.push(Call::Reopen),
            20 => calls.push(Call::Sync),
            26 => calls.push(Call::Prune),
            _ => {}
        }
    }
    calls
}

type Mem = MemoryBookmarkStore<Vec<u8>, SUBS>;

/// The probe both stores answer, which shows the window: persisted bookmarks (given) and
/// resume points; then every bookmark of the workload discarded in turn, with the resume points
/// after each (an entry in the window moves them, an absent one does not); then whether each
/// is new; then the resume points.
fn probe(s: &mut dyn BookmarkStore, persisted: &[Option<String>], calls: &[Call]) -> Vec<String> {
    let mut out: Vec<String> = persisted.iter().map(|p| format!("{p:?}")).collect();
    let recent = |s: &mut dyn BookmarkStore, out: &mut Vec<String>| {
        for sub in SUB_IDS {
            let mut b = [0u8; 256];
            out.push(format!(
                "{:?}",
                s.most_recent(sub, &mut b).map(str::to_string)
            ));
        }
    };
    recent(s, &mut out);
    let bms: Vec<(usize, &String)> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Log(sub, b) => Some((*sub, b)),
            _ => None,
        })
        .collect();
    for (sub, b) in &bms {
        out.push(format!("{:?}", s.discard(SUB_IDS[*sub], b)));
        recent(s, &mut out);
    }
    for (sub, b) in &bms {
        out.push(format!("{:?}", s.log(SUB_IDS[*sub], b)));
    }
    recent(s, &mut out);
    out
}

/// The probe's answers of the memory store after each prefix of the calls.
fn references(calls: &[Call]) -> Vec<Vec<String>> {
    (0..=calls.len())
        .map(|k| {
            let mut mem = Mem::new(vec![0u8; WINDOW]);
            for c in &calls[..k] {
                apply_mem(&mut mem, c);
            }
            let persisted: Vec<Option<String>> = SUB_IDS
                .iter()
                .map(|sub| mem.persisted_bookmark(sub).map(str::to_string))
                .collect();
            probe(&mut mem, &persisted, calls)
        })
        .collect()
}

fn apply_mem(mem: &mut Mem, c: &Call) {
    match c {
        Call::Log(sub, b) => {
            let _ = mem.log(SUB_IDS[*sub], b);
        }
        Call::Discard(sub, b) => {
            let _ = mem.discard(SUB_IDS[*sub], b);
        }
        Call::Persisted(sub, b) => {
            let _ = mem.persisted(SUB_IDS[*sub], b);
        }
        Call::Remove(sub) => mem.remove(SUB_IDS[*sub]),
        Call::Prune | Call::Sync | Call::Reopen => {}
    }
}

/// Open `image` (strict), probe it, and check it reopens to the same state. Also says whether
/// recovery cut a torn tail.
fn reopen(image: &Image, calls: &[Call]) -> Result<(Vec<String>, bool), String> {
    let fs = Arc::new(SimFs::from_image(image));
    fs.create_dir_all(Path::new("/sim")).unwrap();
    let mode = || OpenMode::new().fs(fs.clone());
    let o = opts(FsyncPolicy::Never, None);
    let mut s = FileBookmarkStore::open_with(path(), NAME, o, mode())
        .map_err(|e| format!("open refused: {e}"))?;
    let cut = s.recovery().cut.as_ref().is_some_and(|c| c.bytes > 0);
    let persisted: Vec<Option<String>> = SUB_IDS
        .iter()
        .map(|sub| s.persisted_bookmark(sub).map(str::to_string))
        .collect();
    let answers = probe(&mut s, &persisted, calls);
    let mut after = Vec::new();
    for sub in SUB_IDS {
        let mut b = [0u8; 256];
        after.push(s.most_recent(sub, &mut b).map(str::to_string));
    }
    drop(s);
    let mut s = FileBookmarkStore::open_with(path(), NAME, o, mode())
        .map_err(|e| format!("second open refused: {e}"))?;
    for (sub, want) in SUB_IDS.iter().zip(after) {
        let mut b = [0u8; 256];
        if s.most_recent(sub, &mut b).map(str::to_string) != want {
            return Err("the store does not continue cleanly after recovery".into());
        }
    }
    Ok((answers, cut))
}

struct Explorer {
    calls: Vec<Call>,
    refs: Vec<Vec<String>>,
    /// Calls durable once the first `r` calls returned.
    durable_upto: Vec<usize>,
    memo: HashMap<u64, Result<(Vec<String>, bool), String>>,
    /// States whose recovery cut a torn tail, with the prefix of the calls they hold.
    torn: Vec<(Image, usize)>,
    tally: Tally,
}

impl Explorer {
    fn check(&mut self, issued: usize, returned: usize, image: Image) {
        self.tally.states += 1;
        let h = hash(&image);
        let durable = self.durable_upto[returned];
        if !self.memo.contains_key(&h) {
            self.tally.distinct += 1;
            count_distinct(h);
            let r = reopen(&image, &self.calls);
            if let Ok((answers, true)) = &r
                && let Some(j) = (durable..=issued).rev().find(|&j| self.refs[j] == *answers)
            {
                self.torn.push((image.clone(), j));
            }
            self.memo.insert(h, r);
        }
        let why = match &self.memo[&h] {
            Err(e) => e.clone(),
            Ok((answers, _)) if (durable..=issued).any(|j| self.refs[j] == *answers) => return,
            Ok((answers, _)) => {
                let r = &self.refs[issued];
                let d = answers.iter().zip(r).position(|(a, b)| a != b);
                format!(
                    "the state is no prefix of the calls from {durable} on (first difference \
                     with {issued} calls: {d:?}: {:?} vs {:?}; calls {:?})",
                    d.map(|d| &answers[d]),
                    d.map(|d| &r[d]),
                    &self.calls[..issued]
                )
            }
        };
        let files: Vec<_> = image.iter().map(|(p, b)| (p.clone(), b.len())).collect();
        super::dump(&image);
        self.tally.failures.push(format!(
            "after {issued} calls ({returned} returned): {why} (files {files:?})"
        ));
    }
}

/// Run `calls[base..]` under `fsync`, on an empty log (`base` 0) or on the state a power loss
/// left after the first `base` calls, checking every crash state. Returns what was found and
/// the states whose recovery cut a torn tail.
fn run(
    fsync: FsyncPolicy,
    start: Option<&Image>,
    calls: &[Call],
    base: usize,
) -> (Tally, Vec<(Image, usize)>) {
    let mut durable_upto = vec![0];
    let mut durable = 0;
    for (k, c) in calls.iter().enumerate() {
        let syncs = fsync != FsyncPolicy::Never;
        if fsync == FsyncPolicy::Always
            || k < base
            || matches!(c, Call::Prune)
            || (syncs && matches!(c, Call::Sync))
        {
            durable = k + 1;
        }
        durable_upto.push(durable);
    }
    let explorer = Arc::new(Mutex::new(Explorer {
        refs: references(calls),
        calls: calls.to_vec(),
        durable_upto,
        memo: HashMap::new(),
        torn: Vec::new(),
        tally: Tally::default(),
    }));
    let issued = Arc::new(AtomicUsize::new(base));
    let returned = Arc::new(AtomicUsize::new(base));
    let fs = Arc::new(start.map_or_else(SimFs::new, SimFs::from_image));
    fs.create_dir_all(Path::new("/sim")).unwrap();
    {
        let (explorer, issued, returned) = (explorer.clone(), issued.clone(), returned.clone());
        fs.record(
            budget(),
            seed() ^ 0xB00C ^ base as u64,
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
        FileBookmarkStore::open_with(
            path(),
            NAME,
            opts(fsync, Some(2500)),
            OpenMode::new().fs(fs.clone()),
        )
        .expect("open")
    };
    let mut store = Some(open());
    for (k, call) in calls.iter().enumerate().skip(base) {
        issued.store(k + 1, Ordering::SeqCst);
        let s = store.as_mut().unwrap();
        match call {
            Call::Log(sub, b) => {
                s.log(SUB_IDS[*sub], b).expect("log");
            }
            Call::Discard(sub, b) => s.discard(SUB_IDS[*sub], b).expect("discard"),
            Call::Persisted(sub, b) => s.persisted(SUB_IDS[*sub], b).expect("persisted"),
            Call::Remove(sub) => s.remove(SUB_IDS[*sub]),
            Call::Prune => s.prune().expect("prune"),
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

/// More work after a power loss: a third publisher's messages on subscription `a`, a prune.
fn second_workload() -> Vec<Call> {
    let mut calls = Vec::new();
    for n in 1..=8 {
        calls.push(Call::Log(0, bm(11, n)));
        if n > 1 {
            calls.push(Call::Discard(0, bm(11, n - 1)));
        }
        if n == 5 {
            calls.push(Call::Prune);
        }
    }
    calls.push(Call::Persisted(0, bm(11, 6)));
    calls
}

pub(super) fn scenarios() -> impl Iterator<Item = (String, Tally)> {
    [
        FsyncPolicy::Always,
        FsyncPolicy::Every {
            writes: 4,
            interval: Duration::from_secs(3600),
        },
        FsyncPolicy::Never,
    ]
    .into_iter()
    .flat_map(|p| {
        let calls = workload();
        let (tally, torn) = run(p, None, &calls, 0);
        let mut out = vec![(format!("bookmark {p:?}"), tally)];
        // A second power loss while `open` cuts the first one's torn tail, then during more
        // work.
        let mut again = Tally::default();
        let step = (torn.len() / 3).max(1);
        for (image, j) in torn.iter().step_by(step).take(3) {
            let mut combined = calls[..*j].to_vec();
            combined.extend(second_workload());
            let (t, _) = run(p, Some(image), &combined, *j);
            again.crash_points += t.crash_points;
            again.states += t.states;
            again.distinct += t.distinct;
            again.failures.extend(t.failures);
        }
        out.push((format!("bookmark {p:?}, power loss during recovery"), again));
        out
    })
}
