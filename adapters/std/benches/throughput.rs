//! Publish and subscribe throughput of `amps-std` against an in-process amps-broker, next to a
//! raw-socket program moving the same bytes with no protocol work, in one run (the ratio of the
//! two, measured together, is the figure that matters on a shared machine).
//!
//! - `publish/amps-std`: `Client::publish` of 100-byte messages (no ack wait), then one
//!   `flush()` so every message reached the broker and was processed.
//! - `publish/raw-socket`: the same frames, pre-encoded, written to a logged-on socket in
//!   64 KiB writes, then a `flush` command and a read until its ack.
//! - `subscribe/amps-std`: a `MessageStream` yields the messages a raw publisher sends.
//! - `subscribe/raw-socket`: a logged-on, subscribed socket reads the same deliveries, counting
//!   frames by their length prefixes only.
//!
//! Run: `cargo bench -p amps-std --bench throughput`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use amps_broker::{Config, ServerHandle};
use amps_core::codec::{AckType, Command};
use amps_std::Client;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const PAYLOAD: [u8; 100] = [b'x'; 100];

/// A logged-on raw connection.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn logon(addr: std::net::SocketAddr, name: &str) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        let mut r = Raw { s, buf: Vec::new() };
        r.send(&Command::logon(name).command_id("1").message_type("json"));
        r.frame();
        r
    }

    fn send(&mut self, c: &Command<'_>) {
        self.s.write_all(&c.to_vec().unwrap()).unwrap();
    }

    /// Read one whole frame (its body).
    fn frame(&mut self) -> Vec<u8> {
        let mut len = [0u8; 4];
        self.s.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
        self.s.read_exact(&mut body).unwrap();
        body
    }

    /// Read until `n` frames arrived, looking only at length prefixes (no protocol work).
    fn count_frames(&mut self, n: u64) {
        let mut seen = 0;
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            // Frames already read (possibly in an earlier call), up to `n`.
            let mut at = 0;
            while seen < n
                && let Some(p) = self.buf.get(at..at + 4)
            {
                let len = u32::from_be_bytes(p.try_into().unwrap()) as usize;
                if self.buf.len() < at + 4 + len {
                    break;
                }
                at += 4 + len;
                seen += 1;
            }
            self.buf.drain(..at);
            if seen == n {
                return;
            }
            let k = self.s.read(&mut chunk).unwrap();
            assert!(k > 0, "broker closed the connection");
            self.buf.extend_from_slice(&chunk[..k]);
        }
    }

    /// `flush` and wait for its ack: the broker processed everything sent before.
    fn flush(&mut self) {
        self.send(&Command::flush().command_id("f").ack(AckType::Completed));
        while !String::from_utf8_lossy(&self.frame()).contains(r#""cid":"f""#) {}
    }
}

/// 64 KiB of pre-encoded publish frames for `topic`, and how many frames it holds.
fn frames(topic: &str) -> (Vec<u8>, u64) {
    let one = Command::publish(topic, &PAYLOAD).to_vec().unwrap();
    let n = 64 * 1024 / one.len();
    (one.repeat(n), n as u64)
}

/// Messages in flight in the subscribe benchmarks: the publisher stays at most two windows
/// ahead of the subscriber, so the broker never buffers more than ~13 MB for it (its
/// slow-consumer limit is 64 MiB) and both subscribers see the same pacing.
const WINDOW: u64 = 50_000;

/// Publish `iters` messages with `publish` while `consume` takes them, two windows in flight.
fn pipelined(iters: u64, mut publish: impl FnMut(u64), mut consume: impl FnMut(u64)) {
    let windows: Vec<u64> = (0..iters.div_ceil(WINDOW))
        .map(|i| WINDOW.min(iters - i * WINDOW))
        .collect();
    for (i, &w) in windows.iter().enumerate() {
        publish(w);
        if i > 0 {
            consume(windows[i - 1]);
        }
    }
    if let Some(&last) = windows.last() {
        consume(last);
    }
}

/// Write `count` pre-encoded frames (whole blocks, then single frames).
fn raw_publish(r: &mut Raw, block: &(Vec<u8>, u64), one: &[u8], count: u64) {
    let mut left = count;
    while left >= block.1 {
        r.s.write_all(&block.0).unwrap();
        left -= block.1;
    }
    for _ in 0..left {
        r.s.write_all(one).unwrap();
    }
}

fn bench(c: &mut Criterion) {
    let broker =
        ServerHandle::start_blocking(Config::bare(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = broker.local_addr();
    let uri = format!("tcp://{addr}/amps/json");

    let mut g = c.benchmark_group("publish");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let client = Client::new("bench-pub").unwrap();
    client.connect(&uri).unwrap();
    client.logon().unwrap();
    g.bench_function("amps-std", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                client.publish("bench", PAYLOAD).unwrap();
            }
            client.flush().unwrap();
            t0.elapsed()
        })
    });
    let mut raw = Raw::logon(addr, "bench-raw-pub");
    let block = frames("bench");
    let one = Command::publish("bench", &PAYLOAD).to_vec().unwrap();
    g.bench_function("raw-socket", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            raw_publish(&mut raw, &block, &one, iters);
            raw.flush();
            t0.elapsed()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("subscribe");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let mut publisher = Raw::logon(addr, "bench-feed");
    let block = frames("sbench");
    let one = Command::publish("sbench", &PAYLOAD).to_vec().unwrap();
    let sub = Client::new("bench-sub").unwrap();
    sub.connect(&uri).unwrap();
    sub.logon().unwrap();
    let mut stream = sub.subscribe("sbench", None).unwrap();
    g.bench_function("amps-std", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            pipelined(
                iters,
                |n| raw_publish(&mut publisher, &block, &one, n),
                |n| {
                    for _ in 0..n {
                        stream.next().unwrap().unwrap();
                    }
                },
            );
            t0.elapsed()
        })
    });
    drop(stream);
    sub.close().unwrap();
    let mut raw_sub = Raw::logon(addr, "bench-raw-sub");
    raw_sub.send(
        &Command::subscribe("sbench")
            .command_id("s")
            .sub_id("s")
            .ack(AckType::Processed),
    );
    raw_sub.frame();
    g.bench_function("raw-socket", |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            pipelined(
                iters,
                |n| raw_publish(&mut publisher, &block, &one, n),
                |n| raw_sub.count_frames(n),
            );
            t0.elapsed()
        })
    });
    g.finish();
    client.close().unwrap();
}

criterion_group!(benches, bench);
criterion_main!(benches);
