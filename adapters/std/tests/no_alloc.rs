//! The publish hot path allocates nothing per message. A counting global allocator watches a burst
//! of publishes to a minimal server (a thread that answers the logon, then reads and discards
//! without allocating), after a warm-up that fills the client's buffer pools.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts calls (on every thread: the client's
// I/O thread does the work being measured).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Answer the logon, then swallow everything; `flush` commands get their ack, so the client
/// can wait for the server to have read everything before them.
fn sink() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        let logon_ack = frame(br#"{"c":"ack","cid":"1","a":"processed","status":"success","s":0}"#);
        let mut pending = Vec::with_capacity(1 << 21);
        let mut logged_on = false;
        loop {
            let n = match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            let mut at = 0;
            while pending.len() >= at + 4 {
                let len = u32::from_be_bytes(pending[at..at + 4].try_into().unwrap()) as usize;
                if pending.len() < at + 4 + len {
                    break;
                }
                let body = &pending[at + 4..at + 4 + len];
                if !logged_on {
                    logged_on = true;
                    s.write_all(&logon_ack).unwrap();
                } else if body.starts_with(br#"{"c":"flush","cid":""#) {
                    // Echo the cid: `{"c":"flush","cid":"N",...`
                    let cid_end = body[20..].iter().position(|&b| b == b'"').unwrap() + 20;
                    let mut ack = Vec::with_capacity(128);
                    ack.extend_from_slice(br#"{"c":"ack","cid":""#);
                    ack.extend_from_slice(&body[20..cid_end]);
                    ack.extend_from_slice(br#"","a":"completed","status":"success"}"#);
                    s.write_all(&frame(&ack)).unwrap();
                }
                at += 4 + len;
            }
            pending.drain(..at);
        }
    });
    addr
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

#[test]
fn publishing_allocates_nothing_per_message() {
    let addr = sink();
    let c = amps_std::Client::new("no-alloc").unwrap();
    c.connect(&format!("tcp://{addr}/amps/json")).unwrap();
    c.logon().unwrap();
    let payload = [b'x'; 100];
    for _ in 0..20_000 {
        c.publish("topic", payload).unwrap();
    }
    c.flush().unwrap();
    const N: u64 = 200_000;
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..N {
        c.publish("topic", payload).unwrap();
    }
    c.flush().unwrap();
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    // A few buffers (a chunk more in flight than during the warm-up, the flush's reply)
    // allocate; messages don't: observed 30-50 for 200,000 publishes.
    assert!(allocs < N / 1000, "{allocs} allocations for {N} publishes");
    c.close().unwrap();
}
