//! `FilePublishStore` answers every call as `MemoryPublishStore` does (file stores reproduce the
//! in-memory stores exactly), across random operation sequences with the store closed and reopened
//! in between, with segments small enough that rotation and deletion happen all the time. The store
//! runs on the in-memory file layer of the power-loss tests: every new segment is fsynced, and on a
//! shared disk thousands of those would be most of this test's time.

#[path = "power_loss/simfs.rs"]
#[allow(dead_code)]
mod simfs;

use std::path::PathBuf;
use std::sync::Arc;

use amps_core::store::{MemoryPublishStore, PublishStore};
use amps_fs::vfs::Vfs;
use amps_fs::{FilePublishStore, FileStoreOptions, FsyncPolicy, OpenMode};
use proptest::prelude::*;
use simfs::SimFs;

const MAX_MESSAGES: usize = 12;
const MAX_FRAME: usize = 48;

#[derive(Clone, Debug)]
enum Op {
    /// Store at `last_seq + delta` (delta 1 is the session's case; others test the checks).
    Store {
        delta: i8,
        len: usize,
    },
    /// Discard up to `front + delta`.
    DiscardUpTo(i8),
    /// Discard `front + delta` (only the front is ever removed).
    Discard(i8),
    NextAfter(u8),
    Get(u8),
    HasRoom(usize),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (prop_oneof![8 => Just(1i8), 1 => -2i8..=4], 0..=MAX_FRAME)
            .prop_map(|(delta, len)| Op::Store { delta, len }),
        3 => (-1i8..=4).prop_map(Op::DiscardUpTo),
        1 => (-1i8..=2).prop_map(Op::Discard),
        2 => any::<u8>().prop_map(Op::NextAfter),
        1 => any::<u8>().prop_map(Op::Get),
        1 => (0..=MAX_FRAME + 8).prop_map(Op::HasRoom),
        1 => Just(Op::Reopen),
    ]
}

fn opts() -> FileStoreOptions {
    FileStoreOptions {
        fsync: FsyncPolicy::Never,
        max_messages: MAX_MESSAGES,
        // Far above what MAX_MESSAGES frames can reach: the message bound decides, as in the
        // memory store below, whose ring is four times what it can hold (so it never
        // fragments into `Full`).
        max_bytes: 1 << 20,
        segment_bytes: 160,
    }
}

fn all(s: &mut dyn PublishStore) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((seq, f)) = s.next_after(at) {
        out.push((seq, f.to_vec()));
        at = seq;
    }
    out
}

fn frame(seq: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
}

fn run(ops: &[Op]) {
    let fs = Arc::new(SimFs::new());
    let path = PathBuf::from("/diff/p");
    let open =
        || FilePublishStore::open_with(&path, "diff", opts(), OpenMode::new().fs(fs.clone()));
    let mut mem =
        MemoryPublishStore::new(vec![0u8; 4 * MAX_MESSAGES * (12 + MAX_FRAME)], MAX_MESSAGES);
    let mut file = Some(open().unwrap());
    for (step, op) in ops.iter().enumerate() {
        let f = file.as_mut().unwrap();
        let last = mem.last_seq();
        let front = mem.next_after(0).map_or(last, |e| e.0);
        match *op {
            Op::Store { delta, len } => {
                let seq = mem.last_seq().saturating_add_signed(i64::from(delta));
                let data = frame(seq, len);
                assert_eq!(
                    f.store(seq, &data),
                    mem.store(seq, &data),
                    "step {step}: {op:?}"
                );
            }
            Op::DiscardUpTo(d) => {
                let seq = front.saturating_add_signed(i64::from(d));
                f.discard_up_to(seq);
                mem.discard_up_to(seq);
            }
            Op::Discard(d) => {
                let seq = front.saturating_add_signed(i64::from(d));
                f.discard(seq);
                mem.discard(seq);
            }
            Op::NextAfter(x) => {
                let seq = front.saturating_sub(2) + u64::from(x % 16);
                let a = f.next_after(seq).map(|(s, b)| (s, b.to_vec()));
                let b = mem.next_after(seq).map(|(s, b)| (s, b.to_vec()));
                assert_eq!(a, b, "step {step}: {op:?}");
            }
            Op::Get(x) => {
                let seq = front.saturating_sub(2) + u64::from(x % 16);
                assert_eq!(
                    f.get(seq).map(<[u8]>::to_vec),
                    mem.get(seq).map(<[u8]>::to_vec),
                    "step {step}: {op:?}"
                );
            }
            Op::HasRoom(n) => assert_eq!(f.has_room(n), mem.has_room(n), "step {step}"),
            Op::Reopen => {
                drop(file.take());
                let mut f = open().unwrap();
                assert!(f.recovery().cut.is_none());
                assert_eq!(all(&mut f), all(&mut mem), "step {step}: after reopen");
                file = Some(f);
            }
        }
        let f = file.as_mut().unwrap();
        assert_eq!(
            f.unpersisted_count(),
            mem.unpersisted_count(),
            "step {step}"
        );
        assert_eq!(
            f.unpersisted_bytes(),
            mem.unpersisted_bytes(),
            "step {step}"
        );
        assert_eq!(f.last_seq(), mem.last_seq(), "step {step}");
        // Space is reused: every segment but the active one holds an unpersisted message.
        let segments = fs
            .list(&path)
            .unwrap()
            .iter()
            .filter(|n| n.to_string_lossy().ends_with(".seg"))
            .count();
        assert!(
            segments <= f.unpersisted_count() + 1,
            "step {step}: {segments} segments"
        );
    }
    drop(file);
    let mut f = open().unwrap();
    assert_eq!(all(&mut f), all(&mut mem));
    assert_eq!(f.last_seq(), mem.last_seq());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn file_store_matches_memory_store(ops in proptest::collection::vec(op(), 1..250)) {
        run(&ops);
    }
}

#[test]
fn byte_capacity_and_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileStoreOptions {
        max_bytes: 100,
        ..opts()
    };
    let mut s = FilePublishStore::open(dir.path(), "cap", opts).unwrap();
    assert_eq!(
        s.store(1, &[0; 101]),
        Err(amps_core::session::StoreError::TooLarge)
    );
    s.store(1, &[1; 60]).unwrap();
    assert!(s.has_room(40));
    assert!(!s.has_room(41));
    assert_eq!(
        s.store(2, &[2; 41]),
        Err(amps_core::session::StoreError::Full)
    );
    s.store(2, &[2; 40]).unwrap();
    s.discard_up_to(1);
    assert!(s.has_room(60));
    s.store(3, &[3; 60]).unwrap();
    assert_eq!(s.unpersisted_bytes(), 100);
}
