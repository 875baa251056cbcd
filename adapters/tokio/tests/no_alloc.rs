//! The publish hot path allocates nothing per message: after a warm-up that grows the buffers, 50
//! 000 publishes into a byte sink cost a bounded number of allocations in the whole process (client
//! task, driver task, runtime), not one per message.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A sink: answers the logon, then counts bytes (its buffer is allocated before measuring).
fn sink() -> (u16, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bytes = Arc::new(AtomicU64::new(0));
    let count = bytes.clone();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let n = conn.read(&mut buf).unwrap();
        let ack = br#"{"c":"ack","cid":"1","a":"processed","status":"success","s":0}"#;
        let mut out = (ack.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(ack);
        conn.write_all(&out).unwrap();
        let logon_len = 4 + u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
        count.fetch_add((n - logon_len) as u64, Ordering::Release);
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                return;
            }
            count.fetch_add(n as u64, Ordering::Release);
        }
    });
    (port, bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_allocates_nothing_per_message() {
    let (port, bytes) = sink();
    let c = amps_tokio::Client::new("no-alloc").unwrap();
    c.connect(&format!("tcp://127.0.0.1:{port}/amps/json"))
        .await
        .unwrap();
    c.logon().await.unwrap();
    let payload = [b'x'; 100];
    let frame = amps_core::codec::Command::publish("t", &payload)
        .encoded_len()
        .unwrap() as u64;
    let wait_for = |n: u64| {
        let bytes = bytes.clone();
        async move {
            let guard = std::time::Instant::now();
            while bytes.load(Ordering::Acquire) < n {
                assert!(
                    guard.elapsed().as_secs() < 10,
                    "sink stalled (failure guard)"
                );
                tokio::task::yield_now().await;
            }
        }
    };
    for _ in 0..20_000 {
        c.publish("t", payload).await.unwrap();
    }
    wait_for(20_000 * frame).await;
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..50_000 {
        c.publish("t", payload).await.unwrap();
    }
    wait_for(70_000 * frame).await;
    let used = ALLOCS.load(Ordering::Relaxed) - before;
    eprintln!("{used} allocations for 50 000 publishes");
    assert!(used < 500, "{used} allocations for 50 000 publishes");
}
