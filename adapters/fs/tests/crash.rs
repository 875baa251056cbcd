//! Crash tests: a child process (`amps-fs-crash-child`) publishes through a `FilePublishStore`, or
//! consumes a bookmark subscription through a `FileBookmarkStore`, against amps-broker, and is
//! killed with SIGKILL at random points. After every kill:
//!
//! - publisher: every message the store accepted is either persisted in the broker exactly once
//!   (sequence dedupe, docs/protocol.md §8.4) or still in the store, whose frames are intact; at
//!   the end the broker's transaction log holds every sequence number exactly once.
//! - subscriber: the next run resumes right after the last message it discarded (no gap, no
//!   duplicate of a discarded message, §10.2).
//!
//! The broker's side is read through a verifying client's bookmark subscription from EPOCH on
//! the transaction-logged topic `events`.
//!
//! Kills per test: `AMPS_FS_CRASH_KILLS` (default 25, for CI). The full run, 100 kills per test:
//! `AMPS_FS_CRASH_KILLS=100 cargo test -p amps-fs --test crash`. `AMPS_FS_CRASH_SEED` repeats a
//! run's kill points (the seed is printed).

#[path = "../src/bin/amps-fs-crash-child/driver.rs"]
#[allow(dead_code)]
mod driver;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use amps_broker::config::ConfDuration;
use amps_broker::{Config, ServerHandle};
use amps_core::codec::Command;
use amps_core::codec::bookmark::EPOCH;
use amps_core::session::{Config as SessionConfig, ConnectionState, HeapStorage, Parts, Session};
use amps_core::store::{NoBookmarkStore, NoPublishStore, PublishStore};
use amps_fs::{FileBookmarkStore, FilePublishStore, FileStoreOptions, OpenError};
use driver::{Conn, Ev};

const CHILD: &str = env!("CARGO_BIN_EXE_amps-fs-crash-child");
/// Failure guard only: a healthy child prints a line every few milliseconds.
const GUARD: Duration = Duration::from_secs(60);
const POLICIES: [&str; 3] = ["never", "every", "always"];

/// The tests of this file run one at a time: a test holding a store open while another test's
/// thread forks a child would lend that child its lock until the child execs, and the lock test
/// needs to see exactly its own child's lock.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn kills() -> usize {
    std::env::var("AMPS_FS_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25)
}

/// xorshift64*, seeded from the environment or the clock (printed, to repeat a failure).
struct Rng(u64);

impl Rng {
    fn new(test: &str) -> Rng {
        let seed = std::env::var("AMPS_FS_CRASH_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        println!("{test}: AMPS_FS_CRASH_SEED={seed}");
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// A running child and its output lines.
struct Child {
    proc: std::process::Child,
    lines: mpsc::Receiver<String>,
}

impl Child {
    fn spawn(args: &[&str]) -> Child {
        let mut proc = Process::new(CHILD)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the crash child");
        let out = proc.stdout.take().expect("child stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Child { proc, lines }
    }

    /// The next line; `None` once the child's output ended.
    fn line(&self) -> Option<String> {
        match self.lines.recv_timeout(GUARD) {
            Ok(l) => {
                assert!(!l.starts_with("error"), "child failed: {l}");
                Some(l)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("child silent for {GUARD:?}"),
        }
    }

    /// SIGKILL, then every line it wrote before dying.
    fn kill(mut self) -> Vec<String> {
        self.proc.kill().expect("kill the child");
        self.proc.wait().expect("reap the child");
        std::iter::from_fn(|| self.line()).collect()
    }

    /// Wait for a normal exit, returning the remaining lines.
    fn finish(mut self) -> Vec<String> {
        let lines = std::iter::from_fn(|| self.line()).collect();
        let status = self.proc.wait().expect("reap the child");
        assert!(status.success(), "child exited with {status}");
        lines
    }
}

fn broker() -> ServerHandle {
    // Fast persisted acks, so that stores drain between kills.
    let config = Config {
        ack_conflation: ConfDuration(amps_core::Duration::from_millis(5)),
        ..Config::default()
    };
    ServerHandle::start_blocking(config, "127.0.0.1:0".parse().unwrap()).expect("start broker")
}

type Plain = HeapStorage<NoPublishStore, NoBookmarkStore>;

/// A plain client, logged on.
fn client(addr: SocketAddr, name: &str) -> Conn<Plain> {
    let config = SessionConfig::new(name);
    let parts = Parts::<Plain>::heap(&config.limits, NoPublishStore, NoBookmarkStore);
    let mut conn = Conn::connect(addr, Session::new(&config, parts).unwrap()).unwrap();
    while !conn
        .pump(Duration::from_millis(50))
        .unwrap()
        .iter()
        .any(|e| matches!(e, Ev::State(ConnectionState::LoggedOn)))
    {}
    conn
}

/// What the broker's transaction log holds, from a bookmark subscription from EPOCH.
struct Verifier {
    conn: Conn<Plain>,
    /// The publisher's bookmark prefix (`<publisher id>|`, docs/protocol.md §8.3, §10.3).
    prefix: String,
    /// Sequence number → times seen.
    seen: BTreeMap<u64, u32>,
    markers: u64,
}

impl Verifier {
    fn new(addr: SocketAddr, publisher: &str) -> Verifier {
        let mut conn = client(addr, "verifier");
        let now = conn.now();
        let sub = Command::subscribe("events")
            .sub_id("verify")
            .bookmark(EPOCH);
        conn.session.execute(now, &sub).unwrap();
        Verifier {
            conn,
            prefix: format!("{}|", amps_broker::publisher_id(publisher)),
            seen: BTreeMap::new(),
            markers: 0,
        }
    }

    /// Publish a marker and read until it comes back: everything the broker logged before it
    /// has then been seen.
    fn sync(&mut self) {
        self.markers += 1;
        let marker = format!("{{\"marker\":{}}}", self.markers);
        let now = self.conn.now();
        self.conn
            .session
            .publish(now, "events", marker.as_bytes())
            .unwrap();
        let mut done = false;
        while !done {
            // The whole batch is read even past the marker: messages the killed child had in
            // flight may be logged after it.
            for ev in self.conn.pump(Duration::from_millis(50)).unwrap() {
                let Ev::Delivery { bookmark, data, .. } = ev else {
                    let closed = matches!(ev, Ev::State(ConnectionState::Disconnected));
                    assert!(!closed && !matches!(ev, Ev::Failed(_)), "{ev:?}");
                    continue;
                };
                if data == marker.as_bytes() {
                    done = true;
                    continue;
                }
                let Some(seq) = bookmark.strip_prefix(&self.prefix) else {
                    continue; // an earlier marker
                };
                let seq: u64 = seq.trim_end_matches('|').parse().unwrap();
                assert_eq!(
                    data,
                    format!("{{\"s\":{seq}}}").as_bytes(),
                    "payload of {seq}"
                );
                *self.seen.entry(seq).or_default() += 1;
            }
        }
    }
}

/// The store's sequence numbers, checking each frame is the message published under it.
fn store_contents(dir: &Path, name: &str) -> (BTreeSet<u64>, u64) {
    let mut store = FilePublishStore::open(dir, name, FileStoreOptions::default())
        .expect("the store opens after a crash");
    let mut seqs = BTreeSet::new();
    let mut at = 0;
    while let Some((seq, frame)) = store.next_after(at) {
        let payload = format!("{{\"s\":{seq}}}");
        assert!(frame.ends_with(payload.as_bytes()), "frame of {seq} intact");
        seqs.insert(seq);
        at = seq;
    }
    (seqs, store.last_seq())
}

#[test]
fn publisher_killed_at_random_points_loses_and_duplicates_nothing() {
    let _serial = serial();
    let mut rng = Rng::new("publisher");
    let broker = broker();
    let addr = broker.local_addr();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("publish");
    let name = "crash-publisher";
    let mut verifier = Verifier::new(addr, name);
    let mut accepted = BTreeSet::new();
    let kills = kills();
    let mut unpersisted_at_kill = 0;
    // Messages that only the store held at a kill: the ones it exists for.
    let mut only_in_store = 0;
    for k in 0..kills {
        let addr_s = addr.to_string();
        let seed = rng.below(u64::MAX).to_string();
        let args = [
            "publish",
            &addr_s,
            store.to_str().unwrap(),
            name,
            POLICIES[k % 3],
            &seed,
        ];
        let child = Child::spawn(&args);
        // One kill in ten lands before the child has even opened its store or logged on.
        let target = if rng.below(10) == 0 {
            0
        } else {
            1 + rng.below(150)
        };
        let mut lines = Vec::new();
        while (lines.len() as u64) < target {
            lines.push(child.line().expect("child ended early"));
        }
        lines.extend(child.kill());
        for l in &lines {
            if let Some(seq) = l.strip_prefix("stored ") {
                accepted.insert(seq.parse::<u64>().unwrap());
            }
        }
        let (in_store, _) = store_contents(&store, name);
        unpersisted_at_kill += in_store.len();
        verifier.sync();
        for (seq, n) in &verifier.seen {
            assert_eq!(*n, 1, "kill {k}: sequence {seq} persisted {n} times");
        }
        only_in_store += in_store
            .iter()
            .filter(|s| !verifier.seen.contains_key(s))
            .count();
        for seq in &accepted {
            assert!(
                verifier.seen.contains_key(seq) || in_store.contains(seq),
                "kill {k}: accepted message {seq} is neither persisted nor in the store"
            );
        }
    }
    // A last run replays what is left and waits until the broker persisted it.
    let addr_s = addr.to_string();
    let child = Child::spawn(&[
        "publish",
        &addr_s,
        store.to_str().unwrap(),
        name,
        "never",
        "drain",
    ]);
    assert!(child.finish().iter().any(|l| l == "drained"));
    verifier.sync();
    let (in_store, last) = store_contents(&store, name);
    assert!(in_store.is_empty(), "everything persisted");
    let expected: Vec<u64> = (1..=last).collect();
    assert_eq!(verifier.seen.keys().copied().collect::<Vec<_>>(), expected);
    assert!(verifier.seen.values().all(|&n| n == 1));
    assert!(accepted.iter().all(|s| verifier.seen.contains_key(s)));
    println!(
        "publisher: {kills} kills, {} messages accepted, {unpersisted_at_kill} found unpersisted \
         in the store after kills ({only_in_store} held by the store alone), log holds 1..={last} \
         once each",
        accepted.len()
    );
    assert!(
        only_in_store > 0,
        "no kill found a message only the store had"
    );
    broker.shutdown();
}

/// The subscriber's progress as the test saw it.
#[derive(Default)]
struct Progress {
    /// Last message reported discarded.
    discarded: u64,
    /// Last message reported received (its discard may or may not have happened).
    got: u64,
}

impl Progress {
    /// Check one run's lines: it starts right after the last discarded message (or after the
    /// message whose discard was cut short by the kill) and continues without gaps.
    fn run(&mut self, k: usize, lines: &[String]) {
        let mut first = true;
        for l in lines {
            if let Some(i) = l.strip_prefix("got ") {
                let i: u64 = i.parse().unwrap();
                if first {
                    let d = self.discarded;
                    assert!(
                        i == d + 1 || (self.got == d + 1 && i == d + 2),
                        "run {k}: resumed at {i} after discarding {d} (last received {})",
                        self.got
                    );
                    // Resuming at `i` proves the discard of `i - 1` reached the store even if
                    // the kill came before its line.
                    self.discarded = i - 1;
                    first = false;
                } else {
                    assert_eq!(i, self.got + 1, "run {k}: gap or duplicate");
                }
                self.got = i;
            } else if let Some(i) = l.strip_prefix("discarded ") {
                let i: u64 = i.parse().unwrap();
                assert_eq!(i, self.got, "run {k}: discards follow receipt");
                self.discarded = i;
            }
        }
    }
}

#[test]
fn bookmark_subscriber_killed_at_random_points_resumes_without_gap_or_duplicate() {
    let _serial = serial();
    let mut rng = Rng::new("subscriber");
    let broker = broker();
    let addr = broker.local_addr();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bookmarks.log");
    let name = "crash-subscriber";
    let mut feeder = client(addr, "feeder");
    let mut published = 0u64;
    let mut publish = |feeder: &mut Conn<Plain>, n: u64| {
        for _ in 0..n {
            published += 1;
            let now = feeder.now();
            let data = format!("{{\"i\":{published}}}");
            feeder
                .session
                .publish(now, "events", data.as_bytes())
                .unwrap();
            feeder.pump(Duration::ZERO).unwrap();
        }
        published
    };
    publish(&mut feeder, 200);
    let mut progress = Progress::default();
    let kills = kills();
    for k in 0..kills {
        let total = publish(&mut feeder, 20);
        let addr_s = addr.to_string();
        let args = [
            "subscribe",
            &addr_s,
            log.to_str().unwrap(),
            name,
            POLICIES[k % 3],
        ];
        let child = Child::spawn(&args);
        // Never wait for more lines than the messages left can produce (two per message).
        let left = 2 * (total - progress.discarded);
        let target = if rng.below(10) == 0 {
            0
        } else {
            rng.below(left.min(120))
        };
        let mut lines = Vec::new();
        while (lines.len() as u64) < target {
            lines.push(child.line().expect("child ended early"));
        }
        lines.extend(child.kill());
        progress.run(k, &lines);
        // The log opens cleanly after every kill (torn tails are cut).
        drop(FileBookmarkStore::open(&log, name, Default::default()).expect("log opens"));
    }
    // The last run needs something new to wait for: the killed run may have processed
    // everything before its kill.
    let total = publish(&mut feeder, 5);
    let addr_s = addr.to_string();
    let until = format!("until={total}");
    let child = Child::spawn(&[
        "subscribe",
        &addr_s,
        log.to_str().unwrap(),
        name,
        "never",
        &until,
    ]);
    progress.run(kills, &child.finish());
    assert_eq!(progress.discarded, total, "every message processed");
    println!("subscriber: {kills} kills, {total} messages processed in order");
    broker.shutdown();
}

#[test]
fn a_second_process_is_locked_out_until_the_first_dies() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let child = Child::spawn(&["hold", dir.path().to_str().unwrap(), "locker"]);
    assert_eq!(child.line().as_deref(), Some("open"));
    let p = FilePublishStore::open(
        dir.path().join("publish"),
        "locker",
        FileStoreOptions::default(),
    );
    assert!(matches!(p, Err(OpenError::Locked { .. })), "{p:?}");
    let b = FileBookmarkStore::open(dir.path().join("bookmarks"), "locker", Default::default());
    assert!(matches!(b, Err(OpenError::Locked { .. })), "{b:?}");
    child.kill();
    FilePublishStore::open(
        dir.path().join("publish"),
        "locker",
        FileStoreOptions::default(),
    )
    .expect("the lock dies with its holder");
    FileBookmarkStore::open(dir.path().join("bookmarks"), "locker", Default::default())
        .expect("the lock dies with its holder");
}
