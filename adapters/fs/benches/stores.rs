//! Publishes and bookmark-subscriber messages per second through a `Session` whose store is
//! the core's memory store or a file store under each fsync policy, and the stores alone. The
//! session is logged on through a scripted ack and its output goes nowhere, so the figures are
//! the session's and the store's work per message, without a network or a server: what a
//! file-backed HA client adds over a memory-backed one.
//!
//! Run: `cargo bench -p amps-fs --bench stores`. Files go under Cargo's target tmp directory
//! (a real disk; `/tmp` may be memory-backed, where fsync costs nothing).

use std::hint::black_box;
use std::time::Duration;

use amps_core::Instant;
use amps_core::codec::Command;
use amps_core::codec::bookmark::EPOCH;
use amps_core::session::{
    Config, Event, HeapStorage, Limits, Logon, Parts, Session, heap_bookmark_store,
    heap_publish_store,
};
use amps_core::store::{BookmarkStore, NoBookmarkStore, NoPublishStore, PublishStore};
use amps_fs::{
    BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions, FsyncPolicy,
};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

type Pub = Box<dyn PublishStore + Send>;
type Bm = Box<dyn BookmarkStore + Send>;
/// What host adapters use: stores chosen at run time.
type S = HeapStorage<Pub, Bm>;

fn limits() -> Limits {
    Limits {
        rx_bytes: 1 << 20,
        tx_bytes: 1 << 20,
        max_frame: 1 << 16,
        publish_window_messages: 100_000,
        publish_window_bytes: 64 << 20,
        ..Limits::small()
    }
}

fn frame(text: &str) -> Vec<u8> {
    let mut w = (text.len() as u32).to_be_bytes().to_vec();
    w.extend(text.as_bytes());
    w
}

fn logged_on(publish: Pub, bookmarks: Bm) -> Session<S> {
    let mut cfg = Config::new("bench");
    cfg.limits = limits();
    let mut s = Session::new(&cfg, Parts::heap(&cfg.limits, publish, bookmarks)).unwrap();
    let now = Instant::ZERO;
    s.handle_connected(now, &Logon::default()).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    while s.poll_event().is_some() {}
    while s.poll_transmit(now, &mut buf).is_some() {}
    let ack = frame(r#"{"c":"ack","cid":"1","a":"processed","status":"success","s":0}"#);
    s.handle_bytes(now, &ack).unwrap();
    while s.poll_event().is_some() {}
    s
}

/// The stores compared: name, fsync policy (`None`: the memory store), messages per iteration
/// (fewer for `Always`, which waits for the device every message).
fn variants() -> [(&'static str, Option<FsyncPolicy>, u64); 4] {
    [
        ("memory", None, 1000),
        ("file_never", Some(FsyncPolicy::Never), 1000),
        (
            "file_every_1000_or_100ms",
            Some(FsyncPolicy::default()),
            1000,
        ),
        ("file_always", Some(FsyncPolicy::Always), 10),
    ]
}

fn configure(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
}

/// The device's own cost, measured in the same run before and after the stores (fsync latency
/// on a shared disk moves a lot): appending a 120-byte record to a file with `write`, with and
/// without `fdatasync` (the floors of `Never` and `Always`).
fn raw_appends_before(c: &mut Criterion) {
    raw_appends(c, "raw_append_120B_before");
}

fn raw_appends_after(c: &mut Criterion) {
    raw_appends(c, "raw_append_120B_after");
}

fn raw_appends(c: &mut Criterion, group: &str) {
    use std::io::Write;
    let mut g = c.benchmark_group(group);
    configure(&mut g);
    let record = [b'r'; 120];
    for (name, sync, n) in [("write", false, 1000u64), ("write_fdatasync", true, 10)] {
        let dir = tmpdir();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("raw"))
            .unwrap();
        g.throughput(Throughput::Elements(n));
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..n {
                    f.write_all(black_box(&record)).unwrap();
                    if sync {
                        f.sync_data().unwrap();
                    }
                }
            })
        });
    }
    g.finish();
}

fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn publishes(c: &mut Criterion) {
    let mut g = c.benchmark_group("session_publish_100B");
    configure(&mut g);
    let payload = [b'x'; 100];
    let now = Instant::ZERO;
    let mut out = vec![0u8; 1 << 16];
    for (name, fsync, n) in variants() {
        let dir = tmpdir();
        let store: Pub = match fsync {
            None => Box::new(heap_publish_store(&limits())),
            Some(fsync) => {
                let opts = FileStoreOptions {
                    fsync,
                    ..FileStoreOptions::default()
                };
                Box::new(FilePublishStore::open(dir.path().join("p"), "bench", opts).unwrap())
            }
        };
        let mut s = logged_on(store, Box::new(NoBookmarkStore));
        g.throughput(Throughput::Elements(n));
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..n {
                    s.publish(now, "telemetry", black_box(&payload)).unwrap();
                }
                while let Some(k) = s.poll_transmit(now, &mut out) {
                    black_box(k);
                }
                // The server persists the batch (one conflated ack, docs/protocol.md §8.4).
                let last = s.next_seq() - 1;
                let ack = format!(r#"{{"c":"ack","a":"persisted","status":"success","s":{last}}}"#);
                s.handle_bytes(now, &frame(&ack)).unwrap();
                while s.poll_event().is_some() {}
            })
        });
    }
    g.finish();
}

fn subscriber(c: &mut Criterion) {
    let mut g = c.benchmark_group("session_bookmark_subscriber");
    configure(&mut g);
    let now = Instant::ZERO;
    let mut out = vec![0u8; 1 << 16];
    for (name, fsync, n) in variants() {
        let dir = tmpdir();
        let store: Bm = match fsync {
            None => Box::new(heap_bookmark_store(1 << 20)),
            Some(fsync) => {
                let opts = BookmarkStoreOptions {
                    fsync,
                    ..BookmarkStoreOptions::default()
                };
                Box::new(FileBookmarkStore::open(dir.path().join("b"), "bench", opts).unwrap())
            }
        };
        let mut s = logged_on(Box::new(NoPublishStore), store);
        let sub = Command::subscribe("events").sub_id("s1").bookmark(EPOCH);
        let id = s.execute(now, &sub).unwrap();
        while s.poll_transmit(now, &mut out).is_some() {}
        let mut next = 0u64;
        g.throughput(Throughput::Elements(n));
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    // Fresh bookmarks every batch: a repeated one is a duplicate, not delivered.
                    let mut wire = Vec::new();
                    for _ in 0..n {
                        next += 1;
                        wire.extend(frame(&format!(
                            r#"{{"c":"p","t":"events","sub_id":"s1","bm":"3084015820777091662|{next}|"}}{{"i":{next}}}"#
                        )));
                    }
                    wire
                },
                |wire| {
                    let mut rest = &wire[..];
                    let mut bms = Vec::with_capacity(n as usize);
                    while !rest.is_empty() {
                        let took = s.handle_bytes(now, rest).unwrap();
                        rest = &rest[took..];
                        while let Some(e) = s.poll_event() {
                            if let Event::Delivery(d) = e {
                                bms.push(d.bookmark().unwrap_or("").to_string());
                            }
                        }
                        // The application processed them: discard (Python client: `discard()`).
                        for bm in bms.drain(..) {
                            s.discard(id, &bm).unwrap();
                        }
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

/// The stores alone, without a session: `store` of a 100-byte frame (the batch then
/// persisted with one `discard_up_to`), and a bookmark `log` followed by its `discard`.
fn stores_alone(c: &mut Criterion) {
    let mut g = c.benchmark_group("store_alone");
    configure(&mut g);
    let frame = [b'x'; 100];
    for (name, fsync, n) in variants() {
        let dir = tmpdir();
        let mut store: Pub = match fsync {
            None => Box::new(heap_publish_store(&limits())),
            Some(fsync) => {
                let opts = FileStoreOptions {
                    fsync,
                    ..FileStoreOptions::default()
                };
                Box::new(FilePublishStore::open(dir.path().join("p"), "bench", opts).unwrap())
            }
        };
        let mut seq = 0u64;
        g.throughput(Throughput::Elements(n));
        g.bench_function(format!("publish_100B/{name}"), |b| {
            b.iter(|| {
                for _ in 0..n {
                    seq += 1;
                    store.store(seq, black_box(&frame)).unwrap();
                }
                store.discard_up_to(seq);
            })
        });
    }
    for (name, fsync, n) in variants() {
        let dir = tmpdir();
        let mut store: Bm = match fsync {
            None => Box::new(heap_bookmark_store(1 << 20)),
            Some(fsync) => {
                let opts = BookmarkStoreOptions {
                    fsync,
                    ..BookmarkStoreOptions::default()
                };
                Box::new(FileBookmarkStore::open(dir.path().join("b"), "bench", opts).unwrap())
            }
        };
        let mut next = 0u64;
        g.throughput(Throughput::Elements(n));
        g.bench_function(format!("bookmark_log_discard/{name}"), |b| {
            b.iter_batched(
                || {
                    (0..n)
                        .map(|_| {
                            next += 1;
                            format!("3084015820777091662|{next}|")
                        })
                        .collect::<Vec<_>>()
                },
                |bms| {
                    for bm in &bms {
                        store.log("s1", bm).unwrap();
                        store.discard("s1", bm).unwrap();
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    raw_appends_before,
    publishes,
    subscriber,
    stores_alone,
    raw_appends_after
);
criterion_main!(benches);
