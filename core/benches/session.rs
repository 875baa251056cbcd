//! Session hot paths: deliveries through `handle_bytes` + `poll_event`, and
//! publishes through `poll_transmit`, per message.
//!
//! Run: `cargo bench -p amps-core --bench session`

use std::hint::black_box;

use amps_core::Instant;
use amps_core::codec::Command;
use amps_core::session::{
    Config, Event, HeapStorage, Limits, Logon, Parts, Session, heap_publish_store,
};
use amps_core::store::{MemoryPublishStore, NoBookmarkStore, NoPublishStore, PublishStore};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const N: u64 = 1000;

fn limits() -> Limits {
    Limits {
        rx_bytes: 1 << 16,
        tx_bytes: 1 << 20,
        max_frame: 1 << 15,
        ..Limits::small()
    }
}

fn logged_on<P: PublishStore>(store: P) -> Session<HeapStorage<P, NoBookmarkStore>> {
    let mut cfg = Config::new("bench");
    cfg.limits = limits();
    cfg.limits.publish_window_messages = 100_000;
    let mut s = Session::new(&cfg, Parts::heap(&cfg.limits, store, NoBookmarkStore)).unwrap();
    let now = Instant::ZERO;
    s.handle_connected(now, &Logon::default()).unwrap();
    let mut buf = vec![0u8; 1 << 16];
    while s.poll_event().is_some() {}
    while s.poll_transmit(now, &mut buf).is_some() {}
    let ack = br#"{"c":"ack","cid":"1","a":"processed","status":"success","s":0}"#;
    let mut wire = (ack.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(ack);
    s.handle_bytes(now, &wire).unwrap();
    while s.poll_event().is_some() {}
    s
}

/// FNV-1a, 64-bit, one byte at a time.
#[inline(never)]
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Batches of deliveries and of the yardstick, interleaved round by round (a slow moment of
/// the machine then hits both sides of a ratio alike); prints the medians and the median of
/// the rounds' ratios.
fn delivery_ratio(v6: &[u8], deliver: &mut impl FnMut()) {
    const ROUNDS: usize = 31;
    const BATCHES: u32 = 50;
    let per_msg =
        |t: std::time::Instant| t.elapsed().as_nanos() as f64 / f64::from(BATCHES) / N as f64;
    let (mut yard, mut del, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    deliver();
    for _ in 0..ROUNDS {
        let t = std::time::Instant::now();
        for _ in 0..BATCHES * N as u32 {
            black_box(fnv1a(black_box(v6)));
        }
        let y = per_msg(t);
        let t = std::time::Instant::now();
        for _ in 0..BATCHES {
            deliver();
        }
        let d = per_msg(t);
        yard.push(y);
        del.push(d);
        ratio.push(d / y);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (y, d, r) = (median(&mut yard), median(&mut del), median(&mut ratio));
    // Sorted by `median`: the least disturbed round of each side.
    let (y0, d0) = (yard[0], del[0]);
    println!();
    println!("session delivery in yardstick units, {ROUNDS} interleaved rounds of {BATCHES} x {N}");
    println!(
        "  medians: yardstick {y:.1} ns, delivery {d:.1} ns per message; median of the rounds' ratios {r:.3} units"
    );
    println!(
        "  fastest rounds: yardstick {y0:.1} ns, delivery {d0:.1} ns: {:.3} units (goal <= 0.8)",
        d0 / y0
    );
}

fn bench(c: &mut Criterion) {
    // Deliveries: a subscription, then N publish frames (the V6 delivery's shape).
    let mut s = logged_on(NoPublishStore);
    let now = Instant::ZERO;
    let sub = s.execute(now, &Command::subscribe("orders")).unwrap();
    let mut out = vec![0u8; 1 << 16];
    while s.poll_transmit(now, &mut out).is_some() {}
    let mut wire = Vec::new();
    for i in 0..N {
        let f = format!(
            r#"{{"c":"p","t":"orders","sub_id":"{}","k":"1666656983372193{i:04}","bm":"3084015820777091662|{i}|","l":21}}{{"id":"A1","qty":100}}"#,
            sub.wire()
        );
        wire.extend((f.len() as u32).to_be_bytes());
        wire.extend(f.as_bytes());
    }
    let mut g = c.benchmark_group("session");
    // The yardstick the delivery figures are read against, timed in the same run: FNV-1a
    // (64-bit, one byte at a time) over one V6 delivery's 120 bytes, once per message.
    let v6 = br#"{"c":"p","t":"orders","sub_id":"2","k":"16666569833721932681","bm":"3084015820777091662|1|","l":21}{"id":"A1","qty":100}"#;
    g.throughput(Throughput::Elements(N));
    g.bench_function("yardstick_fnv1a_v6", |b| {
        b.iter(|| {
            for _ in 0..N {
                black_box(fnv1a(black_box(v6)));
            }
        })
    });
    let mut deliver = || {
        let mut rest = &wire[..];
        let mut n = 0u64;
        while !rest.is_empty() {
            let took = s.handle_bytes(now, rest).unwrap();
            rest = &rest[took..];
            while let Some(e) = s.poll_event() {
                if let Event::Delivery(d) = e {
                    black_box(d.data());
                    n += 1;
                }
            }
        }
        assert_eq!(n, N);
    };
    g.bench_function("deliveries_handle_bytes_poll_event", |b| {
        b.iter(&mut deliver)
    });
    if !std::env::args().any(|a| a == "--list" || a == "--test" || a == "--profile-time") {
        delivery_ratio(v6, &mut deliver);
    }

    // Publishes without a store: encode into the transmit buffer, drain it.
    let mut p = logged_on(NoPublishStore);
    let payload = [b'x'; 100];
    g.bench_function("publish_poll_transmit", |b| {
        b.iter(|| {
            for _ in 0..N {
                p.publish(now, "telemetry", black_box(&payload)).unwrap();
            }
            while let Some(n) = p.poll_transmit(now, &mut out) {
                black_box(n);
            }
        })
    });

    // Publishes through the memory publish store (numbered, kept until persisted).
    let mut ps = logged_on::<MemoryPublishStore<Vec<u8>>>(heap_publish_store(&Limits {
        publish_window_messages: 100_000,
        publish_window_bytes: 64 << 20,
        ..limits()
    }));
    g.bench_function("publish_with_store_poll_transmit", |b| {
        b.iter(|| {
            for _ in 0..N {
                ps.publish(now, "telemetry", black_box(&payload)).unwrap();
            }
            while let Some(n) = ps.poll_transmit(now, &mut out) {
                black_box(n);
            }
            // The server persists the batch: the store empties (conflated ack, §8.4).
            let last = ps.next_seq() - 1;
            let ack = format!(r#"{{"c":"ack","a":"persisted","status":"success","s":{last}}}"#);
            let mut w = (ack.len() as u32).to_be_bytes().to_vec();
            w.extend(ack.as_bytes());
            ps.handle_bytes(now, &w).unwrap();
            while ps.poll_event().is_some() {}
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
