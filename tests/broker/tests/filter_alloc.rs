//! `Filter::matches` allocates nothing per message for the common operators (hot paths allocate
//! nothing; proven with a counting allocator).

// A global allocator needs `unsafe impl`; it only counts and forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use amps_broker::filter::{Filter, parse_json};

struct Counting;

thread_local! {
    // Const-initialised and without a destructor, so touching it never allocates.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so the
// `GlobalAlloc` contract is the system allocator's.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn matches_does_not_allocate() {
    let doc = parse_json(
        br#"{"id":"A1","sym":"IBM","qty":"150","px":90.25,"side":1,"tags":["x","urgent"],
            "data":[1,2,3,"zebra",5],"order":{"client":{"country":"us"}},"flag":true,"empty":""}"#,
    )
    .unwrap();
    // The counter works.
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 16]))) > 0);
    let filters = [
        "/qty > 100",
        "/qty > '100'",
        "/px BETWEEN 90.0 AND 90.5 AND /side = 1",
        "/sym IN ('IBM', 'MSFT') OR /sym = 'AAPL'",
        "/sym NOT IN ('X', 'Y')",
        "/order/client/country LIKE '(?i)^US$'",
        "/px LIKE '^90\\.2'",
        "/data LIKE 'z'",
        "/tags = 'urgent' AND NOT /tags = 'none'",
        "/data = /tags OR /data[3] = 'zebra'",
        "/id BEGINS WITH ('A', 'B') AND /id NOT ENDS WITH ('9')",
        "/qty * 2 + /px > 300 AND /side % 2 = 1",
        "/missing IS NULL AND /empty IS NULL AND /sym IS NOT NULL AND /px IS NOT NAN",
        "/flag = 1 AND /flag = 'true'",
        "COALESCE(/missing, /qty) > 100",
        "IF(/side = 1, /px, 0) > 90",
        "INSTR(/sym, 'B') = 2 AND STREQUAL_I(/sym, 'ibm') = 1",
        "-/qty < 0",
    ];
    for expr in filters {
        let f = Filter::parse(expr).unwrap();
        // Warm up: the regex engine allocates its per-thread cache on first use.
        assert!(f.matches(&doc), "{expr}");
        let n = allocations(|| {
            for _ in 0..10 {
                assert!(f.matches(&doc));
            }
        });
        assert_eq!(n, 0, "{expr} allocated {n} times in 10 evaluations");
    }
}
