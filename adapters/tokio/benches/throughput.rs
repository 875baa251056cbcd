//! amps-tokio throughput and latency, each next to a raw tokio socket doing the same I/O with
//! no protocol work, in one run (the ratio of the two, measured together, is the figure that
//! matters on a shared machine):
//!
//! - `publish/*/broker`: 100-byte publishes into amps-broker, ended by a `flush` round trip;
//!   the raw side writes the identical frames (pre-encoded) after a hand-made logon.
//! - `publish/*/sink`: the same, into a sink that answers the logon and then only counts
//!   bytes, so the broker's own speed does not cap the figure.
//! - `deliver/*`: a raw publisher feeds the broker; the subscriber is an amps-tokio stream or a
//!   raw socket that only walks the length prefixes.
//! - `latency`: publish → delivery round trips through the broker (p50 / p99 printed).
//!
//! `cargo bench -p amps-tokio --bench throughput`

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amps_broker::{Config, ServerHandle};
use amps_core::codec::{Command, split_frame};
use amps_tokio::Client;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::Notify;

const TOPIC: &str = "bench";
const PAYLOAD: [u8; 100] = [b'x'; 100];
/// Frames per raw write.
const BATCH: usize = 2000;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn broker() -> ServerHandle {
    ServerHandle::start_blocking(Config::default(), "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn uri(addr: SocketAddr) -> String {
    format!("tcp://127.0.0.1:{}/amps/json?tcp_nodelay=true", addr.port())
}

fn publish_frame() -> Vec<u8> {
    Command::publish(TOPIC, &PAYLOAD).to_vec().unwrap()
}

/// A raw connection: a logon written by hand, its ack read and ignored.
async fn raw_logon(addr: SocketAddr, name: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let logon = Command::logon(name).command_id("1").to_vec().unwrap();
    s.write_all(&logon).await.unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.unwrap();
    s
}

/// Write `n` copies of `frame`, batched.
async fn raw_publish(s: &mut TcpStream, frame: &[u8], n: u64) {
    let batch: Vec<u8> = frame.repeat(BATCH);
    let mut left = n as usize;
    while left > 0 {
        let k = left.min(BATCH);
        s.write_all(&batch[..k * frame.len()]).await.unwrap();
        left -= k;
    }
}

/// A raw flush round trip: everything before it was processed by the broker.
async fn raw_flush(s: &mut TcpStream, cid: u64) {
    let flush = Command::flush()
        .command_id(&cid.to_string())
        .to_vec()
        .unwrap();
    s.write_all(&flush).await.unwrap();
    let mut len = [0u8; 4];
    loop {
        s.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        s.read_exact(&mut body).await.unwrap();
        if body.windows(9).any(|w| w == b"completed") {
            return;
        }
    }
}

/// Bytes a sink has read, and a wake-up when a target is reached.
struct Sink {
    addr: SocketAddr,
    bytes: Arc<AtomicU64>,
    target: Arc<AtomicU64>,
    reached: Arc<Notify>,
}

/// A sink on its own thread: answers the first frame (the logon) with a success ack, then
/// reads and counts bytes, nothing else.
fn sink() -> Sink {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bytes = Arc::new(AtomicU64::new(0));
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let reached = Arc::new(Notify::new());
    let (b, t, r) = (bytes.clone(), target.clone(), reached.clone());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let (b, t, r) = (b.clone(), t.clone(), r.clone());
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                let mut held = 0;
                // The logon frame: answer it, count the rest.
                let after = loop {
                    let n = match conn.read(&mut buf[held..]) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    held += n;
                    if let Ok(Some((_, used))) = split_frame(&buf[..held], u32::MAX) {
                        break held - used;
                    }
                };
                let ack = br#"{"c":"ack","cid":"1","a":"processed","status":"success","s":0}"#;
                let mut out = (ack.len() as u32).to_be_bytes().to_vec();
                out.extend_from_slice(ack);
                conn.write_all(&out).unwrap();
                let add = |n: u64| {
                    let now = b.fetch_add(n, Ordering::AcqRel) + n;
                    if now >= t.load(Ordering::Acquire) {
                        r.notify_one();
                    }
                };
                add(after as u64);
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => add(n as u64),
                    }
                }
            });
        }
    });
    Sink {
        addr,
        bytes,
        target,
        reached,
    }
}

impl Sink {
    /// Expect `n` more bytes from now on.
    fn expect(&self, n: u64) {
        let t = self.bytes.load(Ordering::Acquire) + n;
        self.target.store(t, Ordering::Release);
    }
    async fn wait(&self) {
        while self.bytes.load(Ordering::Acquire) < self.target.load(Ordering::Acquire) {
            self.reached.notified().await;
        }
    }
}

async fn client(addr: SocketAddr, name: &str) -> Client {
    let c = Client::new(name).unwrap();
    c.connect(&uri(addr)).await.unwrap();
    c.logon().await.unwrap();
    c
}

fn publish(c: &mut Criterion) {
    let rt = runtime();
    let b = broker();
    let s = sink();
    let frame = publish_frame();
    let mut g = c.benchmark_group("publish");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));

    let amps = rt.block_on(client(b.local_addr(), "bench-pub"));
    g.bench_function("amps-tokio/broker", |bench| {
        bench.iter_custom(|n| {
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..n {
                    amps.publish(TOPIC, &PAYLOAD).await.unwrap();
                }
                amps.flush().await.unwrap();
                t.elapsed()
            })
        })
    });
    let mut raw = rt.block_on(raw_logon(b.local_addr(), "bench-raw"));
    let mut cid = 100;
    g.bench_function("raw-socket/broker", |bench| {
        bench.iter_custom(|n| {
            cid += 1;
            rt.block_on(async {
                let t = Instant::now();
                raw_publish(&mut raw, &frame, n).await;
                raw_flush(&mut raw, cid).await;
                t.elapsed()
            })
        })
    });

    let amps_sink = rt.block_on(client(s.addr, "bench-sink"));
    g.bench_function("amps-tokio/sink", |bench| {
        bench.iter_custom(|n| {
            s.expect(n * frame.len() as u64);
            rt.block_on(async {
                let t = Instant::now();
                for _ in 0..n {
                    amps_sink.publish(TOPIC, &PAYLOAD).await.unwrap();
                }
                s.wait().await;
                t.elapsed()
            })
        })
    });
    let mut raw_sink = rt.block_on(raw_logon(s.addr, "bench-raw-sink"));
    g.bench_function("raw-socket/sink", |bench| {
        bench.iter_custom(|n| {
            s.expect(n * frame.len() as u64);
            rt.block_on(async {
                let t = Instant::now();
                raw_publish(&mut raw_sink, &frame, n).await;
                s.wait().await;
                t.elapsed()
            })
        })
    });
    g.finish();
}

/// A raw subscriber: logon, subscribe, then count frames by their length prefixes.
async fn raw_subscriber(addr: SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut s = raw_logon(addr, "bench-raw-sub").await;
    let sub = Command::subscribe(TOPIC)
        .command_id("2")
        .sub_id("2")
        .ack(amps_core::codec::AckType::Processed)
        .to_vec()
        .unwrap();
    s.write_all(&sub).await.unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).await.unwrap();
    (s, Vec::with_capacity(1 << 20))
}

async fn raw_count(s: &mut TcpStream, held: &mut Vec<u8>, n: u64) {
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 18];
    while got < n {
        let k = s.read(&mut buf).await.unwrap();
        held.extend_from_slice(&buf[..k]);
        let mut pos = 0;
        while let Ok(Some((_, used))) = split_frame(&held[pos..], u32::MAX) {
            pos += used;
            got += 1;
        }
        held.drain(..pos);
    }
}

/// Deliveries are fed in chunks, each taken before the next is sent: a feeder that runs
/// ahead by millions of messages would have the broker disconnect the subscriber as a slow
/// consumer (its output limit), for either subscriber.
fn chunks(n: u64) -> impl Iterator<Item = u64> {
    const CHUNK: u64 = 20_000;
    (0..n.div_ceil(CHUNK)).map(move |i| CHUNK.min(n - i * CHUNK))
}

fn deliver(c: &mut Criterion) {
    let rt = runtime();
    let b = broker();
    let frame = publish_frame();
    let mut g = c.benchmark_group("deliver");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(4));
    let mut feeder = rt.block_on(raw_logon(b.local_addr(), "bench-feeder"));

    let sub = rt.block_on(client(b.local_addr(), "bench-sub"));
    let mut stream = rt.block_on(sub.subscribe(TOPIC, None)).unwrap();
    g.bench_function("amps-tokio", |bench| {
        bench.iter_custom(|n| {
            rt.block_on(async {
                let t = Instant::now();
                for k in chunks(n) {
                    let feed = raw_publish(&mut feeder, &frame, k);
                    let take = async {
                        for _ in 0..k {
                            stream.recv().await.unwrap().unwrap();
                        }
                    };
                    tokio::join!(feed, take);
                }
                t.elapsed()
            })
        })
    });
    drop(stream);
    rt.block_on(sub.close()).unwrap();

    let (mut raw, mut held) = rt.block_on(raw_subscriber(b.local_addr()));
    g.bench_function("raw-socket", |bench| {
        bench.iter_custom(|n| {
            rt.block_on(async {
                let t = Instant::now();
                for k in chunks(n) {
                    let feed = raw_publish(&mut feeder, &frame, k);
                    let take = raw_count(&mut raw, &mut held, k);
                    tokio::join!(feed, take);
                }
                t.elapsed()
            })
        })
    });
    g.finish();
}

fn latency(c: &mut Criterion) {
    let rt = runtime();
    let b = broker();
    let publ = rt.block_on(client(b.local_addr(), "lat-pub"));
    let sub = rt.block_on(client(b.local_addr(), "lat-sub"));
    let mut stream = rt.block_on(sub.subscribe(TOPIC, None)).unwrap();
    let mut one = || {
        rt.block_on(async {
            let t = Instant::now();
            publ.publish(TOPIC, &PAYLOAD).await.unwrap();
            stream.recv().await.unwrap().unwrap();
            t.elapsed()
        })
    };
    // Percentiles are not a criterion statistic: measure them directly, then let criterion
    // report the mean of the same round trip.
    for _ in 0..500 {
        one();
    }
    let mut samples: Vec<Duration> = (0..5000).map(|_| one()).collect();
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "latency/publish-to-delivery: p50 {:?}  p99 {:?}  (n = {})",
        pct(0.50),
        pct(0.99),
        samples.len()
    );
    let mut g = c.benchmark_group("latency");
    g.sample_size(20);
    g.bench_function("publish-to-delivery", |bench| bench.iter(&mut one));
    g.finish();
}

criterion_group!(benches, publish, deliver, latency);
criterion_main!(benches);
