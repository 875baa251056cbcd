//! Publishing 1,000,000 records of 100 bytes from a file into amps-broker on loopback:
//!
//! - `cli/publish_file`: the `amps` binary as a child process, `amps publish -file` (process
//!   start, connect, logon, reading the file, publishing, and the final flush round trip);
//! - `raw/publish_frames`: the broker's own ceiling, the identical publish frames encoded in
//!   advance and written to a logged-on socket in 64 KiB writes, then a flush round trip;
//! - `sink/publish_file`: the binary's own ceiling, `amps publish -file` into a server that
//!   answers the logon and flushes and discards everything else.
//!
//! `cargo bench -p amps-cli --bench publish` starts amps-broker in the bench process;
//! with `AMPS_BENCH_SERVER=host:port` both run against that broker instead (e.g. the
//! `amps-broker` binary in a process of its own).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use amps::core::codec::{Command, split_frame};
use amps_broker::{Config, ServerHandle};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Records per measured iteration.
const N: usize = 1_000_000;
/// Bytes per record.
const SIZE: usize = 100;
const TOPIC: &str = "bench";

/// `{"pad":"000…0"}`: `n` records of [`SIZE`] bytes, one per line.
fn records(n: usize) -> Vec<u8> {
    let rec = format!(r#"{{"pad":"{}"}}"#, "0".repeat(SIZE - 10));
    assert_eq!(rec.len(), SIZE);
    let mut out = Vec::with_capacity(n * (SIZE + 1));
    for _ in 0..n {
        out.extend_from_slice(rec.as_bytes());
        out.push(b'\n');
    }
    out
}

fn logon(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&Command::logon("raw-pub").command_id("1").to_vec().unwrap())
        .unwrap();
    let ack = read_frame(&mut s, &mut Vec::new());
    assert!(ack.windows(7).any(|w| w == b"success"));
    s
}

/// Read one frame (body, without its prefix), keeping any bytes after it in `held`.
fn read_frame(s: &mut TcpStream, held: &mut Vec<u8>) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    loop {
        if let Ok(Some((body, used))) = split_frame(held, u32::MAX) {
            let body = body.to_vec();
            held.drain(..used);
            return body;
        }
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "broker closed the connection");
        held.extend_from_slice(&buf[..n]);
    }
}

/// Send a flush and wait for its ack: the broker has processed everything sent before.
fn flush(s: &mut TcpStream, id: u64) {
    let cid = format!("f{id}");
    s.write_all(&Command::flush().command_id(&cid).to_vec().unwrap())
        .unwrap();
    let needle = format!(r#""cid":"{cid}""#);
    let mut held = Vec::new();
    loop {
        let frame = read_frame(s, &mut held);
        if frame.windows(needle.len()).any(|w| w == needle.as_bytes()) {
            return;
        }
    }
}

fn publish(c: &mut Criterion) {
    let external: Option<SocketAddr> = std::env::var("AMPS_BENCH_SERVER")
        .ok()
        .map(|s| s.parse().expect("AMPS_BENCH_SERVER: host:port"));
    let broker = match external {
        Some(_) => None,
        None => Some(
            ServerHandle::start_blocking(Config::bare(), "127.0.0.1:0".parse().unwrap()).unwrap(),
        ),
    };
    let addr = external.unwrap_or_else(|| broker.as_ref().unwrap().local_addr());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("records.txt");
    let text = records(N);
    std::fs::write(&file, &text).unwrap();

    let mut g = c.benchmark_group("cli");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(15));
    g.bench_function("publish_file", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                run_cli(&addr.to_string(), &file);
            }
            start.elapsed()
        })
    });
    g.finish();

    let sink = sink().to_string();
    let mut g = c.benchmark_group("sink");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("publish_file", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                run_cli(&sink, &file);
            }
            start.elapsed()
        })
    });
    g.finish();

    // The same records as frames, encoded once.
    let mut frames = Vec::with_capacity(N * (SIZE + 40));
    for rec in text.split(|b| *b == b'\n').filter(|r| !r.is_empty()) {
        frames.extend_from_slice(&Command::publish(TOPIC, rec).to_vec().unwrap());
    }
    let mut s = logon(addr);
    let mut flushes = 0u64;
    let mut g = c.benchmark_group("raw");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(15));
    g.bench_function("publish_frames", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for chunk in frames.chunks(64 << 10) {
                    s.write_all(chunk).unwrap();
                }
                flushes += 1;
                flush(&mut s, flushes);
            }
            start.elapsed()
        })
    });
    g.finish();
}

/// A server that answers the logon and `flush` commands and discards the rest, one thread per
/// connection.
fn sink() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            std::thread::spawn(move || swallow(s));
        }
    });
    addr
}

fn swallow(mut s: TcpStream) {
    let frame = |body: &[u8]| {
        let mut f = (body.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut pending: Vec<u8> = Vec::with_capacity(1 << 21);
    let mut logged_on = false;
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut at = 0;
        while let Ok(Some((body, used))) = split_frame(&pending[at..], u32::MAX) {
            let reply = if !logged_on {
                logged_on = true;
                Some((b"processed".as_slice(), cid_of(body)))
            } else if body.starts_with(br#"{"c":"flush""#) {
                Some((b"completed".as_slice(), cid_of(body)))
            } else {
                None
            };
            if let Some((a, cid)) = reply {
                let mut ack = br#"{"c":"ack","cid":""#.to_vec();
                ack.extend_from_slice(cid);
                ack.extend_from_slice(br#"","a":""#);
                ack.extend_from_slice(a);
                ack.extend_from_slice(br#"","status":"success","version":"5.3.5.0"}"#);
                if s.write_all(&frame(&ack)).is_err() {
                    return;
                }
            }
            at += used;
        }
        pending.drain(..at);
    }
}

/// The `cid` value of a command's header.
fn cid_of(body: &[u8]) -> &[u8] {
    let key = br#""cid":""#;
    let Some(i) = body.windows(key.len()).position(|w| w == key) else {
        return b"";
    };
    let rest = &body[i + key.len()..];
    let end = rest.iter().position(|&b| b == b'"').unwrap_or(0);
    &rest[..end]
}

fn run_cli(server: &str, file: &Path) {
    let status = Process::new(env!("CARGO_BIN_EXE_amps"))
        .args(["publish", "-server", server, "-topic", TOPIC, "-q", "-file"])
        .arg(file)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "amps publish failed: {status}");
}

criterion_group!(benches, publish);
criterion_main!(benches);
