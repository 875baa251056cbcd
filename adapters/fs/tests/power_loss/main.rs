//! Power loss, not only `kill -9`: the stores run on an in-memory file system (`simfs`) that
//! records every write, fsync, rename and directory sync, and at every one of them enumerates
//! the file states a power cut could leave (unsynced writes lost or torn at 512-byte sector
//! granularity, unsynced directory operations lost in any combination). Each distinct state is
//! reopened, and checked:
//!
//! - `open` never refuses it (a crash alone produced it);
//! - publish store: every message whose `store` returned under a durable policy (`Always`, or
//!   followed by a `sync()` that returned) and that no issued call discarded is recovered;
//!   recovered messages are in order, each once, each exactly as stored by an issued call;
//!   numbering never goes back below an acknowledged message; the store accepts a new message
//!   and recovers it after another reopen;
//! - bookmark store: the recovered store answers a fixed probe (resume points, persisted
//!   bookmarks, which bookmarks are duplicates) exactly as the core's memory store does after
//!   some prefix of the calls: at least every call acknowledged as durable, at most the calls
//!   issued.
//!
//! Workloads cover rotation, reclaim (segment deletion), automatic and explicit prunes,
//! reopens, and every fsync policy. `flips` flips every bit of small
//! store files. The number of distinct crash states checked is printed (`-- --nocapture`).
//!
//! Budget: `AMPS_FS_POWER_STATES` states enumerated per crash point before seeded sampling
//! takes over (default 64), `AMPS_FS_POWER_SEED` the sampling seed (default fixed, so runs are
//! reproducible). A larger run: `AMPS_FS_POWER_STATES=400 cargo test -p amps-fs --release
//! --test power_loss -- --nocapture`.

mod bookmark;
mod flips;
mod publish;
mod simfs;

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use simfs::Image;

/// States enumerated per crash point before sampling.
fn budget() -> usize {
    std::env::var("AMPS_FS_POWER_STATES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// The sampling seed.
fn seed() -> u64 {
    std::env::var("AMPS_FS_POWER_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_0FC0_FFEE)
}

fn hash(image: &Image) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    image.hash(&mut h);
    h.finish()
}

/// Distinct crash states checked, over every scenario of this binary.
static DISTINCT: Mutex<Option<HashSet<u64>>> = Mutex::new(None);

/// Count `image` (by content); returns whether it is new across all scenarios.
fn count_distinct(h: u64) -> bool {
    let mut g = DISTINCT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    g.get_or_insert_with(HashSet::new).insert(h)
}

fn distinct_total() -> usize {
    DISTINCT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
        .map_or(0, HashSet::len)
}

/// With `AMPS_FS_POWER_DUMP=<dir>`, write a failing state's files there (the first one only).
fn dump(image: &Image) {
    let Ok(dir) = std::env::var("AMPS_FS_POWER_DUMP") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    if dir.exists() {
        return;
    }
    for (path, bytes) in image {
        let to = dir.join(path.strip_prefix("/").unwrap_or(path));
        if let Some(p) = to.parent() {
            let _ = std::fs::create_dir_all(p);
        }
        let _ = std::fs::write(to, bytes);
    }
}

/// What a scenario found.
#[derive(Debug, Default)]
struct Tally {
    crash_points: usize,
    states: usize,
    distinct: usize,
    failures: Vec<String>,
}

impl Tally {
    fn report(&self, name: &str) {
        println!(
            "{name}: {} crash points, {} states enumerated, {} distinct states reopened and checked",
            self.crash_points, self.states, self.distinct
        );
        assert!(
            self.failures.is_empty(),
            "{name}: {} failures, the first: {}",
            self.failures.len(),
            self.failures
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

/// All scenarios in one test, so that the total is counted once and printed.
#[test]
fn power_loss_states_are_recovered() {
    // The two stores' scenarios side by side (two cores).
    let bookmarks = std::thread::spawn(|| bookmark::scenarios().collect::<Vec<_>>());
    let mut all: Vec<(String, Tally)> = publish::scenarios().collect();
    all.extend(bookmarks.join().expect("bookmark scenarios"));
    let mut total = 0;
    for (name, tally) in &all {
        tally.report(name);
        total += tally.distinct;
    }
    let across = distinct_total();
    println!(
        "power loss: {across} distinct crash states over all scenarios ({total} per scenario), \
         budget {} per crash point, seed {}",
        budget(),
        seed()
    );
    assert!(
        across >= 10_000,
        "only {across} distinct crash states: raise the workloads"
    );
}
