//! How long another client's logon takes (connect, logon, ack) while one client abuses the
//! broker, next to the same logon on an idle broker. Criterion reports the mean; the bench also
//! prints the median, the 99th percentile and the maximum of every logon it timed.
//!
//! `cargo bench -p amps-broker --bench abuse`
//!
//! Abuses (each runs in background threads for the whole measurement):
//! - `compile_flood`: four connections send subscriptions with distinct regex topics of the
//!   kind that needs megabytes of program (`\w{1,N}z` and `\w{K}`), so the compile workers are
//!   always busy;
//! - `partial_frames`: 100 connections, half logged on holding 1 MiB of a 2 MiB frame, half
//!   silent;
//! - `slow_consumers`: three subscribers that never read while a publisher floods their topic
//!   (new slow subscribers replace the ones the broker closes).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use amps_broker::{Config, ServerHandle};
use amps_core::codec::{AckType, Command};
use criterion::{Criterion, criterion_group, criterion_main};

fn try_read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body)?;
    Ok(body)
}

fn read_frame(s: &mut TcpStream) -> Vec<u8> {
    try_read_frame(s).unwrap()
}

fn logon(addr: SocketAddr, name: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&Command::logon(name).command_id("1").to_vec().unwrap())
        .unwrap();
    let ack = read_frame(&mut s);
    assert!(ack.windows(7).any(|w| w == b"success"), "logon refused");
    s
}

/// Every logon time of one scenario.
#[derive(Default)]
struct Times(Mutex<Vec<Duration>>);

impl Times {
    fn report(&self, name: &str) {
        let mut v = self.0.lock().unwrap();
        if v.is_empty() {
            return;
        }
        v.sort();
        let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
        println!(
            "abuse/{name}: {} logons, median {:?}, p99 {:?}, max {:?}",
            v.len(),
            at(0.5),
            at(0.99),
            v[v.len() - 1]
        );
    }
}

/// A background abuse that stops when dropped.
struct Abuse {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Drop for Abuse {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn spawn(
    stop: &Arc<AtomicBool>,
    f: impl FnOnce(Arc<AtomicBool>) + Send + 'static,
) -> thread::JoinHandle<()> {
    let stop = stop.clone();
    thread::spawn(move || f(stop))
}

fn compile_flood(addr: SocketAddr) -> Abuse {
    let stop = Arc::new(AtomicBool::new(false));
    let threads = (0..4)
        .map(|t| {
            spawn(&stop, move |stop| {
                let mut s = logon(addr, &format!("attacker-{t}"));
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Distinct texts, so nothing comes from the cache.
                    let pattern = match n % 2 {
                        0 => format!(r"\w{{1,{}}}z{t}x{n}", 20 + n % 80),
                        _ => format!(r"\w{{{}}}{t}x{n}", 8 + n % 30),
                    };
                    let id = n.to_string();
                    let cmd = Command::subscribe(&pattern)
                        .sub_id(&id)
                        .command_id(&id)
                        .ack(AckType::Processed);
                    if s.write_all(&cmd.to_vec().unwrap()).is_err() {
                        return;
                    }
                    n += 1;
                    // One compilation in flight per connection: wait for its ack. The broker
                    // may close an attacker (e.g. at the end of the scenario): it stops then.
                    if try_read_frame(&mut s).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    Abuse { stop, threads }
}

fn partial_frames(addr: SocketAddr) -> (Abuse, Vec<TcpStream>) {
    let mut held = Vec::new();
    for i in 0..50 {
        let mut s = logon(addr, &format!("holder-{i}"));
        let mut part = (2u32 << 20).to_be_bytes().to_vec();
        part.extend(vec![b' '; 1 << 20]);
        s.write_all(&part).unwrap();
        held.push(s);
        held.push(TcpStream::connect(addr).unwrap());
    }
    let stop = Arc::new(AtomicBool::new(false));
    (
        Abuse {
            stop,
            threads: Vec::new(),
        },
        held,
    )
}

fn slow_consumers(addr: SocketAddr, broker: Arc<ServerHandle>) -> Abuse {
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = spawn(&stop, move |stop| {
        let mut p = logon(addr, "flooder");
        let frame = Command::publish("flood", &[b'x'; 4096]).to_vec().unwrap();
        let batch = frame.repeat(64);
        let mut slow: Vec<TcpStream> = Vec::new();
        let mut made = 0u64;
        let mut closed_seen = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let closed = broker.stats().map_or(0, |s| s.closed_slow_consumer);
            // Replace the slow subscribers the broker closed; keep three.
            let lost = (closed - closed_seen) as usize;
            closed_seen = closed;
            slow.drain(..lost.min(slow.len()));
            while slow.len() < 3 {
                let mut s = logon(addr, &format!("slow-{made}"));
                made += 1;
                s.write_all(&Command::subscribe("flood").sub_id("f").to_vec().unwrap())
                    .unwrap();
                slow.push(s);
            }
            if p.write_all(&batch).is_err() {
                return;
            }
        }
    });
    Abuse {
        stop,
        threads: vec![publisher],
    }
}

/// A running scenario: the broker, the abuse, and what to print about it afterwards.
struct Scenario {
    broker: Arc<ServerHandle>,
    _abuse: Option<Abuse>,
    _held: Vec<TcpStream>,
}

fn measure(c: &mut Criterion, name: &str, setup: fn(Arc<ServerHandle>) -> Scenario) {
    let times = Times::default();
    let mut g = c.benchmark_group("abuse");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    let mut n = 0u64;
    let mut scenario: Option<Scenario> = None;
    g.bench_function(format!("logon_{name}"), |b| {
        let addr = scenario
            .get_or_insert_with(|| setup(broker()))
            .broker
            .local_addr();
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let start = Instant::now();
                let s = logon(addr, &format!("{name}-{n}"));
                let took = start.elapsed();
                drop(s);
                total += took;
                times.0.lock().unwrap().push(took);
            }
            total
        })
    });
    g.finish();
    if let Some(sc) = scenario {
        times.report(name);
        let s = sc.broker.stats().unwrap();
        println!(
            "abuse/{name}: compilations {} ({} on the engine task), pattern bytes peak {}, \
             input bytes peak {}, output bytes peak {}, slow consumers closed {}",
            s.compiles,
            s.inline_compiles,
            s.pattern_bytes_peak,
            s.input_bytes_peak,
            s.output_bytes_peak,
            s.closed_slow_consumer
        );
    }
}

fn broker() -> Arc<ServerHandle> {
    Arc::new(
        ServerHandle::start_blocking(Config::default(), "127.0.0.1:0".parse().unwrap()).unwrap(),
    )
}

fn benches(c: &mut Criterion) {
    measure(c, "idle_broker", |broker| Scenario {
        broker,
        _abuse: None,
        _held: Vec::new(),
    });
    measure(c, "compile_flood", |broker| Scenario {
        _abuse: Some(compile_flood(broker.local_addr())),
        broker,
        _held: Vec::new(),
    });
    measure(c, "partial_frames", |broker| {
        let (abuse, held) = partial_frames(broker.local_addr());
        Scenario {
            broker,
            _abuse: Some(abuse),
            _held: held,
        }
    });
    measure(c, "slow_consumers", |broker| Scenario {
        _abuse: Some(slow_consumers(broker.local_addr(), broker.clone())),
        broker,
        _held: Vec::new(),
    });
}

criterion_group!(abuse, benches);
criterion_main!(abuse);
