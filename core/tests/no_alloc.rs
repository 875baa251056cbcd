//! Zero heap allocations per frame on the codec's hot paths, shown by a counting allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use amps_core::codec::{AckType, Command, FrameDecoder, Message, Scratch};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Only the measuring thread counts: the test harness allocates on its own threads. A const
    // initialiser makes the access itself allocation-free.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
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

#[test]
fn encode_and_decode_allocate_nothing() {
    let mut wire = vec![0u8; 1 << 20];
    let mut rx = vec![0u8; 1 << 16];
    let mut scratch = vec![0u8; 4096];
    let before = ALLOCS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));

    let mut len = 0;
    for i in 0..1000u64 {
        let cmd = Command::publish("orders", br#"{"id":"A1","qty":100}"#)
            .seq(i + 1)
            .correlation_id("c\"1")
            .ack(AckType::Persisted);
        len += cmd.encode(&mut wire[len..]).unwrap();
    }
    let mut d = FrameDecoder::new(&mut rx[..], 1 << 15);
    let mut frames = 0;
    let mut rest = &wire[..len];
    while !rest.is_empty() {
        let n = d.push(&rest[..rest.len().min(1500)]);
        rest = &rest[n..];
        while let Some(f) = d.next_frame().unwrap() {
            let m = Message::parse(f, &mut Scratch::new(&mut scratch)).unwrap();
            assert_eq!(m.correlation_id(), Some("c\"1"));
            frames += 1;
        }
    }

    assert_eq!(frames, 1000);
    assert_eq!(
        ALLOCS.load(Ordering::Relaxed) - before,
        0,
        "the codec allocated"
    );
}
