//! Zero heap allocations per message on the session's hot paths: deliveries through
//! `handle_bytes` + `poll_event`, publishes through `poll_transmit`, with and without the
//! publish store. A counting allocator counts only on the measuring thread. (Owned copies of
//! deliveries are the host layer's, tested in amps-host.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use amps_core::Instant;
use amps_core::codec::Command;
use amps_core::session::{
    Config, Event, HeapStorage, Limits, Logon, Parts, Session, heap_publish_store,
};
use amps_core::store::{NoBookmarkStore, NoPublishStore, PublishStore};

struct Counting;
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    // Per thread, so tests running in parallel do not count each other's allocations.
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

fn counted<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    let r = f();
    COUNTING.with(|c| c.set(false));
    (r, ALLOCS.with(Cell::get) - before)
}

fn frame(text: &str) -> Vec<u8> {
    let mut w = (text.len() as u32).to_be_bytes().to_vec();
    w.extend(text.as_bytes());
    w
}

fn ready<P: PublishStore>(store: P) -> Session<HeapStorage<P, NoBookmarkStore>> {
    let mut cfg = Config::new("c");
    cfg.limits = Limits {
        rx_bytes: 1 << 16,
        tx_bytes: 1 << 20,
        max_frame: 1 << 15,
        ..Limits::small()
    };
    cfg.limits.publish_window_messages = 10_000;
    let mut s = Session::new(&cfg, Parts::heap(&cfg.limits, store, NoBookmarkStore)).unwrap();
    s.handle_connected(Instant::ZERO, &Logon::default())
        .unwrap();
    while s.poll_event().is_some() {}
    let mut out = [0u8; 4096];
    while s.poll_transmit(Instant::ZERO, &mut out).is_some() {}
    s.handle_bytes(
        Instant::ZERO,
        &frame(r#"{"c":"ack","cid":"1","a":"processed","status":"success","s":0}"#),
    )
    .unwrap();
    while s.poll_event().is_some() {}
    s
}

/// A subscribed session and the bytes of `n` deliveries to it.
fn subscribed(
    n: usize,
) -> (
    Session<HeapStorage<NoPublishStore, NoBookmarkStore>>,
    Vec<u8>,
) {
    let now = Instant::ZERO;
    let mut s = ready(NoPublishStore);
    let sub = s.execute(now, &Command::subscribe("orders")).unwrap();
    let mut out = [0u8; 4096];
    while s.poll_transmit(now, &mut out).is_some() {}
    let mut wire = Vec::new();
    for i in 0..n {
        wire.extend(frame(&format!(
            r#"{{"c":"p","t":"orders","sub_id":"{}","bm":"1|{i}|","x":"q\"x"}}{{"i":{i}}}"#,
            sub.wire()
        )));
    }
    (s, wire)
}

/// Feed `wire` to `s`, calling `each` per delivery.
fn feed<S: amps_core::session::Storage>(
    s: &mut Session<S>,
    wire: &[u8],
    mut each: impl FnMut(&amps_core::session::Delivery<'_>),
) {
    let mut rest = wire;
    while !rest.is_empty() {
        let took = s.handle_bytes(Instant::ZERO, rest).unwrap();
        rest = &rest[took..];
        while let Some(e) = s.poll_event() {
            if let Event::Delivery(d) = e {
                each(&d);
            }
        }
    }
}

#[test]
fn deliveries_allocate_nothing() {
    let (mut s, wire) = subscribed(1000);
    let (n, allocs) = counted(|| {
        let mut n = 0;
        feed(&mut s, &wire, |d| {
            assert_eq!(d.correlation_id(), Some("q\"x"));
            n += 1;
        });
        n
    });
    assert_eq!(n, 1000);
    assert_eq!(allocs, 0, "deliveries allocated");
}

#[test]
fn publishes_allocate_nothing_with_or_without_a_store() {
    let now = Instant::ZERO;
    let payload = [b'x'; 100];
    let mut out = vec![0u8; 1 << 16];
    let mut plain = ready(NoPublishStore);
    let ((), allocs) = counted(|| {
        for _ in 0..1000 {
            plain.publish(now, "telemetry", &payload).unwrap();
            while plain.poll_transmit(now, &mut out).is_some() {}
        }
    });
    assert_eq!(allocs, 0, "plain publish allocated");

    let lim = Limits {
        publish_window_messages: 2000,
        publish_window_bytes: 1 << 20,
        ..Limits::small()
    };
    let mut stored = ready(heap_publish_store(&lim));
    let ack = frame(r#"{"c":"ack","a":"persisted","status":"success","s":1000}"#);
    let ((), allocs) = counted(|| {
        for _ in 0..1000 {
            stored.publish(now, "telemetry", &payload).unwrap();
            while stored.poll_transmit(now, &mut out).is_some() {}
        }
        stored.handle_bytes(now, &ack).unwrap();
        while stored.poll_event().is_some() {}
    });
    assert_eq!(stored.unpersisted_count(), 0);
    assert_eq!(allocs, 0, "publish through the store allocated");
}
