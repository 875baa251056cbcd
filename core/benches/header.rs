//! Header parsing against a yardstick timed in the same binary.
//!
//! Absolute times move with the machine (a shared VM's neighbours, its clock), so every shape
//! is also reported in units of a yardstick: FNV-1a (64-bit, one byte at a time) over the 120
//! bytes of a typical publish delivery (`V6` below). Each shape is
//! `Message::parse` of the exact bytes, then reading the topic, the sub id and the payload.
//!
//! After criterion's own figures, the bench times every shape and the yardstick again,
//! interleaved round by round, and prints the medians and the ratios (the median of each
//! round's ratio, so a slow moment of the machine hits both sides of a ratio alike). Rounds
//! are short (a few milliseconds per block) so that on a shared machine a preemption spoils
//! few of them; the ratio of the fastest blocks (each side's minimum, what the code takes when
//! nothing else runs) is printed beside the median.
//!
//! Run: `cargo bench -p amps-core --bench header`

use std::hint::black_box;
use std::time::Instant;

use amps_core::codec::{Message, Scratch};
use criterion::Criterion;

/// A typical publish delivery ("V6"): 6 fields, 99-byte header, 21-byte payload.
const V6: &[u8] = br#"{"c":"p","t":"orders","sub_id":"2","k":"16666569833721932681","bm":"3084015820777091662|1|","l":21}{"id":"A1","qty":100}"#;
const SHORT: &[u8] = br#"{"c":"p","t":"orders","sub_id":"sub-1"}{"id":1}"#;
const WIDE: &[u8] = br#"{"c":"p","cid":"cmd-1","t":"orders","sub_id":"sub-1","query_id":"qry-1","o":"replace","f":"/id > 10","lp":"2026-01-01T00:00:00.000000Z"}{"id":1}"#;
/// V6's fields in the order `sub_id, bm, t, c, l, k`.
const REORDERED: &[u8] = br#"{"sub_id":"2","bm":"3084015820777091662|1|","t":"orders","c":"p","l":21,"k":"16666569833721932681"}{"id":"A1","qty":100}"#;

const SHAPES: [(&str, &[u8]); 4] = [
    ("short", SHORT),
    ("v6", V6),
    ("wide", WIDE),
    ("reordered", REORDERED),
];

/// What the goal asks of each shape, in yardstick units (at least 1.75× faster than the
/// independent parser's figures measured the same way).
const GOALS: [f64; 4] = [0.23, 0.95, 1.07, 0.77];

/// FNV-1a, 64-bit, one byte at a time: the yardstick.
#[inline(never)]
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Parse and read what a subscriber reads.
#[inline(always)]
fn parse(frame: &[u8]) {
    let m = Message::parse(black_box(frame), &mut Scratch::empty()).unwrap();
    black_box((m.topic(), m.sub_id(), m.data()));
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("header");
    g.bench_function("yardstick_fnv1a_v6", |b| {
        b.iter(|| black_box(fnv1a(black_box(V6))))
    });
    for (name, bytes) in SHAPES {
        g.bench_function(format!("parse_{name}"), |b| b.iter(|| parse(bytes)));
    }
    g.finish();
}

/// Nanoseconds per call of `f`, over `n` calls.
fn time(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The interleaved run: rounds of (yardstick, every shape), medians and ratios printed.
fn ratios() {
    const ROUNDS: usize = 301;
    const N: u32 = 20_000;
    let mut yard = Vec::with_capacity(ROUNDS);
    let mut shapes: Vec<Vec<(f64, f64)>> = vec![Vec::with_capacity(ROUNDS); SHAPES.len()];
    // Warm up.
    time(N, || {
        black_box(fnv1a(black_box(V6)));
    });
    for _ in 0..ROUNDS {
        let y = time(N, || {
            black_box(fnv1a(black_box(V6)));
        });
        yard.push(y);
        for (i, (_, bytes)) in SHAPES.iter().enumerate() {
            let t = time(N, || parse(bytes));
            shapes[i].push((t, t / y));
        }
    }
    println!();
    println!(
        "header parse in yardstick units (FNV-1a over V6's {} bytes), {ROUNDS} interleaved rounds of {N}",
        V6.len()
    );
    let yard_min = yard.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "  yardstick: {:.1} ns (median), {yard_min:.1} ns (fastest round)",
        median(&mut yard)
    );
    for (i, (name, _)) in SHAPES.iter().enumerate() {
        let mut t: Vec<f64> = shapes[i].iter().map(|p| p.0).collect();
        let mut r: Vec<f64> = shapes[i].iter().map(|p| p.1).collect();
        let fastest = t.iter().copied().fold(f64::INFINITY, f64::min);
        let (t, r) = (median(&mut t), median(&mut r));
        let r_min = fastest / yard_min;
        let goal = GOALS[i];
        let met = |r: f64| if r <= goal { "met" } else { "NOT met" };
        println!(
            "  {name:<10} median {t:7.1} ns {r:.3} units ({}), fastest {fastest:7.1} ns {r_min:.3} units ({}); goal <= {goal}",
            met(r),
            met(r_min)
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
    // Not when cargo only lists, smoke-tests or profiles the benches.
    if !args
        .iter()
        .any(|a| a == "--list" || a == "--test" || a == "--profile-time")
    {
        ratios();
    }
}
