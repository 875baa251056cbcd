//! `FileBookmarkStore` answers every call as `MemoryBookmarkStore` does (MOST_RECENT = end of
//! the discarded prefix, duplicates after a resume reported by `log` as `Ok(false)` including
//! the per-publisher high-water marks, discard, remove, capacity and size errors), across random
//! operation sequences with reopen and prune in between, and with automatic prunes after nearly
//! every write.

use amps_core::store::{BookmarkStore, MemoryBookmarkStore};
use amps_fs::{BookmarkStoreOptions, FileBookmarkStore, FsyncPolicy};
use proptest::prelude::*;

const SUBS: usize = 3;
/// Small enough that the window fills up (about ten 7-byte bookmarks).
const WINDOW: usize = 100;

#[derive(Clone, Debug)]
enum Op {
    Log(usize, usize),
    Discard(usize, usize),
    Persisted(usize, usize),
    MostRecent(usize, usize),
    Remove(usize),
    Reopen,
    Prune,
}

fn sub(i: usize) -> String {
    match i {
        0 => "a".into(),
        1 => "b".into(),
        2 => "c".into(),
        3 => "d".into(),
        4 => String::new(),
        _ => "x".repeat(65), // above MAX_SUB_ID
    }
}

fn bm(i: usize) -> String {
    match i {
        0..=13 => format!("7|{i}|"),
        14 => String::new(),
        15 => format!("7|{}|", "9".repeat(130)), // above MAX_BOOKMARK
        // More publishers than the memory store keeps high-water marks for.
        16..=25 => format!("{}|{}|", 100 + i % 10, i / 3),
        // Opaque forms (docs/protocol.md §10.1, §17).
        26 => "1|2|3|".into(),
        _ => "20261121T120000Z".into(),
    }
}

fn op() -> impl Strategy<Value = Op> {
    let s = prop_oneof![12 => 0..4usize, 1 => 4..6usize];
    let b = prop_oneof![20 => 0..14usize, 8 => 16..26usize, 2 => 14..16usize, 1 => 26..28usize];
    prop_oneof![
        10 => (s.clone(), b.clone()).prop_map(|(s, b)| Op::Log(s, b)),
        8 => (s.clone(), b.clone()).prop_map(|(s, b)| Op::Discard(s, b)),
        2 => (s.clone(), b).prop_map(|(s, b)| Op::Persisted(s, b)),
        2 => (s.clone(), prop_oneof![4 => Just(256usize), 1 => 0..8usize])
            .prop_map(|(s, n)| Op::MostRecent(s, n)),
        1 => s.prop_map(Op::Remove),
        1 => Just(Op::Reopen),
        1 => Just(Op::Prune),
    ]
}

fn opts(auto_prune: Option<u64>) -> BookmarkStoreOptions {
    BookmarkStoreOptions {
        fsync: FsyncPolicy::Never,
        max_subscriptions: SUBS,
        max_window_bytes: WINDOW,
        auto_prune_bytes: auto_prune,
    }
}

type Mem = MemoryBookmarkStore<Vec<u8>, SUBS>;

fn recent(s: &mut dyn BookmarkStore, sub: &str) -> String {
    let mut out = [0u8; 256];
    s.most_recent(sub, &mut out).unwrap().to_string()
}

fn run(ops: &[Op], auto_prune: Option<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bm.log");
    let mut mem = Mem::new(vec![0u8; WINDOW]);
    let mut file = Some(FileBookmarkStore::open(&path, "diff", opts(auto_prune)).unwrap());
    for (step, op) in ops.iter().enumerate() {
        let f = file.as_mut().unwrap();
        match *op {
            Op::Log(s, b) => {
                assert_eq!(
                    f.log(&sub(s), &bm(b)),
                    mem.log(&sub(s), &bm(b)),
                    "step {step}: {op:?}"
                );
            }
            Op::Discard(s, b) => {
                assert_eq!(
                    f.discard(&sub(s), &bm(b)),
                    mem.discard(&sub(s), &bm(b)),
                    "step {step}: {op:?}"
                );
            }
            Op::Persisted(s, b) => {
                assert_eq!(
                    f.persisted(&sub(s), &bm(b)),
                    mem.persisted(&sub(s), &bm(b)),
                    "step {step}: {op:?}"
                );
            }
            Op::MostRecent(s, n) => {
                let (mut x, mut y) = (vec![0u8; n], vec![0u8; n]);
                assert_eq!(
                    f.most_recent(&sub(s), &mut x).map(str::to_string),
                    mem.most_recent(&sub(s), &mut y).map(str::to_string),
                    "step {step}: {op:?}"
                );
            }
            Op::Remove(s) => {
                f.remove(&sub(s));
                mem.remove(&sub(s));
            }
            Op::Reopen => {
                drop(file.take());
                let f = FileBookmarkStore::open(&path, "diff", opts(auto_prune)).unwrap();
                assert!(f.recovery().cut.is_none());
                file = Some(f);
            }
            Op::Prune => f.prune().unwrap(),
        }
        let f = file.as_mut().unwrap();
        for s in 0..6 {
            let name = sub(s);
            assert_eq!(
                recent(f, &name),
                recent(&mut mem, &name),
                "step {step}: sub {s}"
            );
            assert_eq!(
                f.persisted_bookmark(&name),
                mem.persisted_bookmark(&name),
                "step {step}: sub {s}"
            );
        }
    }
    // A last reopen, then every bookmark of every subscription is classified the same way
    // (duplicate or new), which also compares the windows.
    drop(file);
    let mut f = FileBookmarkStore::open(&path, "diff", opts(auto_prune)).unwrap();
    for s in 0..4 {
        for b in 0..28 {
            assert_eq!(
                f.log(&sub(s), &bm(b)),
                mem.log(&sub(s), &bm(b)),
                "final {s} {b}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn file_store_matches_memory_store(ops in proptest::collection::vec(op(), 1..300)) {
        run(&ops, None);
    }

    #[test]
    fn file_store_matches_memory_store_with_automatic_prunes(
        ops in proptest::collection::vec(op(), 1..200),
        at in 1u64..400,
    ) {
        run(&ops, Some(at));
    }
}
