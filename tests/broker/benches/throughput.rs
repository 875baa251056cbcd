//! Broker throughput: small publishes from one publisher to one subscriber through the TCP server
//! on loopback, next to a raw-socket baseline that moves the same bytes through a plain tokio relay
//! with no protocol work (ratios in one run, because the machines are noisy).
//!
//! `cargo bench -p amps-broker --bench throughput`

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use amps_broker::{Config, ServerHandle};
use amps_core::codec::{Command, split_frame};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Messages per measured iteration.
const N: u64 = 200_000;
/// Publishes per write.
const BATCH: usize = 500;
const PAYLOAD: &[u8] = br#"{"id":17,"px":100.25,"sym":"IBM"}"#;

/// Frames received so far, with a condition variable so the waiting thread sleeps instead of
/// spinning (on two cores a spinning waiter would steal the broker's CPU).
#[derive(Default)]
struct Counter {
    n: Mutex<u64>,
    cv: Condvar,
}

impl Counter {
    fn add(&self, k: u64) {
        let mut n = self.n.lock().unwrap();
        *n += k;
        self.cv.notify_all();
    }
    fn get(&self) -> u64 {
        *self.n.lock().unwrap()
    }
}

/// Counts frames arriving on `stream` (prefix walk only: the client side stays cheap).
fn spawn_counter(mut stream: TcpStream, count: Arc<Counter>) {
    thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut held = 0usize;
        loop {
            let n = match stream.read(&mut buf[held..]) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            held += n;
            let mut pos = 0;
            let mut frames = 0;
            while let Ok(Some((_, used))) = split_frame(&buf[pos..held], u32::MAX) {
                pos += used;
                frames += 1;
            }
            buf.copy_within(pos..held, 0);
            held -= pos;
            count.add(frames);
        }
    });
}

fn logon(addr: SocketAddr, name: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&Command::logon(name).command_id("1").to_vec().unwrap())
        .unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut ack = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut ack).unwrap();
    assert!(ack.windows(7).any(|w| w == b"success"));
    s
}

fn wait_for(count: &Counter, target: u64) {
    let n = count.n.lock().unwrap();
    let (n, timeout) = count
        .cv
        .wait_timeout_while(n, Duration::from_secs(60), |n| *n < target)
        .unwrap();
    assert!(!timeout.timed_out(), "deliveries stalled at {}", *n);
}

fn broker_pubsub(c: &mut Criterion) {
    let broker =
        ServerHandle::start_blocking(Config::default(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = broker.local_addr();
    let mut sub = logon(addr, "bench-sub");
    sub.write_all(
        &Command::subscribe("bench")
            .sub_id("s")
            .command_id("2")
            .to_vec()
            .unwrap(),
    )
    .unwrap();
    let count = Arc::new(Counter::default());
    spawn_counter(sub, count.clone());
    let mut publisher = logon(addr, "bench-pub");
    let frame = Command::publish("bench", PAYLOAD).to_vec().unwrap();
    let batch: Vec<u8> = frame.repeat(BATCH);
    // The subscription is in place once a first message comes through.
    publisher.write_all(&frame).unwrap();
    wait_for(&count, 1);
    let mut g = c.benchmark_group("broker");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("publish_to_one_subscriber", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let target = count.get() + N;
                for _ in 0..N as usize / BATCH {
                    publisher.write_all(&batch).unwrap();
                }
                wait_for(&count, target);
            }
            start.elapsed()
        })
    });
    g.finish();
}

/// The same bytes through a relay that only copies: the I/O floor of this machine.
fn raw_relay(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut a, _) = listener.accept().await.unwrap();
        let (mut b, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match a.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if b.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    let mut publisher = TcpStream::connect(addr).unwrap();
    let sub = TcpStream::connect(addr).unwrap();
    let count = Arc::new(Counter::default());
    spawn_counter(sub, count.clone());
    // A delivery is a little longer than a publish; relay frames of delivery size.
    let delivery = Command::publish("bench", PAYLOAD)
        .sub_id("s")
        .to_vec()
        .unwrap();
    let batch: Vec<u8> = delivery.repeat(BATCH);
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("raw_tcp_relay", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let target = count.get() + N;
                for _ in 0..N as usize / BATCH {
                    publisher.write_all(&batch).unwrap();
                }
                wait_for(&count, target);
            }
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, broker_pubsub, raw_relay);
criterion_main!(benches);
