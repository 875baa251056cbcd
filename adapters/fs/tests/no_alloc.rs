//! No heap allocation per message once the stores are warm (the project's rule: hot paths
//! allocate nothing per message), shown by a counting allocator: storing, replaying and discarding
//! publishes, and logging and discarding bookmarks, under `Never` and `Every` (the timed-sync
//! thread is not counted; only the measuring thread is).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use amps_core::store::{BookmarkStore, PublishStore};
use amps_fs::{
    BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions, FsyncPolicy,
};

struct Counting;

thread_local! {
    // Only the measuring thread counts, into its own counter: the harness, the other test and
    // the sync thread allocate on their own threads. Const initialisers keep the accesses
    // themselves allocation-free.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|n| n.set(n.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.with(Cell::get) - before
}

const POLICIES: [FsyncPolicy; 2] = [
    FsyncPolicy::Never,
    FsyncPolicy::Every {
        writes: 100,
        interval: std::time::Duration::from_millis(1),
    },
];

fn publish_round(s: &mut FilePublishStore, from: u64, frame: &[u8]) {
    for seq in from..from + 100 {
        s.store(seq, frame).unwrap();
    }
    // Replay, as after a reconnect, then the server persists everything.
    let mut at = from - 1;
    while let Some((seq, f)) = s.next_after(at) {
        assert_eq!(f.len(), frame.len());
        at = seq;
    }
    s.discard_up_to(from + 99);
}

#[test]
fn publish_store_allocates_nothing_per_message() {
    for fsync in POLICIES {
        let dir = tempfile::tempdir().unwrap();
        // Starting a segment (a new file: its name, its header) allocates a little, once per
        // `segment_bytes`; these 4,000 messages stay within the first segment.
        let opts = FileStoreOptions {
            fsync,
            segment_bytes: 1 << 20,
            ..FileStoreOptions::default()
        };
        let mut s = FilePublishStore::open(dir.path(), "p", opts).unwrap();
        let frame = [b'f'; 150];
        // Warm up: buffers and the index reach their steady size.
        for r in 0..20 {
            publish_round(&mut s, 1 + r * 100, &frame);
        }
        let n = allocations(|| {
            for r in 20..40 {
                publish_round(&mut s, 1 + r * 100, &frame);
            }
        });
        assert_eq!(n, 0, "{fsync:?}: allocations for 2,000 messages");
    }
}

#[test]
fn bookmark_store_allocates_nothing_per_message() {
    for fsync in POLICIES {
        let dir = tempfile::tempdir().unwrap();
        let opts = BookmarkStoreOptions {
            fsync,
            auto_prune_bytes: None,
            ..BookmarkStoreOptions::default()
        };
        let mut s = FileBookmarkStore::open(dir.path().join("b"), "c", opts).unwrap();
        let bms: Vec<String> = (0..4000)
            .map(|i| format!("3084015820777091662|{i}|"))
            .collect();
        let mut out = [0u8; 128];
        let mut round = |s: &mut FileBookmarkStore, r: usize| {
            // A batch arrives, then the application finishes it.
            let batch = &bms[r * 100..r * 100 + 100];
            for bm in batch {
                assert!(s.log("sub-1", bm).unwrap());
            }
            for bm in batch {
                s.discard("sub-1", bm).unwrap();
            }
            s.persisted("sub-1", &batch[99]).unwrap();
            s.most_recent("sub-1", &mut out).unwrap();
        };
        for r in 0..20 {
            round(&mut s, r);
        }
        let n = allocations(|| {
            for r in 20..40 {
                round(&mut s, r);
            }
        });
        assert_eq!(n, 0, "{fsync:?}: allocations for 2,000 messages");
    }
}
