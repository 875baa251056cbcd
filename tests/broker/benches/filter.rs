//! Cost of the broker's per-message filter work (docs/protocol.md §13, §12, §16), each next to a
//! hand-written baseline doing the same check on the same `serde_json::Value`, so the ratio
//! is meaningful on a noisy machine.
//!
//! Needs `[[bench]] name = "filter" harness = false` in tests/broker/Cargo.toml; then
//! `cargo bench -p amps-broker --bench filter`.

use std::hint::black_box;

use amps_broker::filter::{Filter, JsonPath, OrderBy, delta_diff, merge_delta, parse_json};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;

const ORDER: &[u8] =
    br#"{"id":"A1","sym":"IBM","qty":150,"px":90.25,"side":"buy","account":"ACC-17",
"tags":["urgent","block"],"client":{"country":"us","tier":"gold"},"note":"rebalance"}"#;

fn filters(c: &mut Criterion) {
    let doc = parse_json(ORDER).unwrap_or(Value::Null);
    let mut g = c.benchmark_group("filter");

    let f = Filter::parse("/qty > 100").ok();
    g.bench_function("cmp/filter", |b| {
        b.iter(|| f.as_ref().map(|f| f.matches(black_box(&doc))))
    });
    g.bench_function("cmp/baseline", |b| {
        b.iter(|| {
            black_box(&doc)
                .get("qty")
                .and_then(Value::as_i64)
                .is_some_and(|q| q > 100)
        })
    });

    let expr = "/sym IN ('IBM','MSFT','AAPL') AND /px BETWEEN 90 AND 91 AND /client/country = 'us'";
    let f = Filter::parse(expr).ok();
    g.bench_function("and3/filter", |b| {
        b.iter(|| f.as_ref().map(|f| f.matches(black_box(&doc))))
    });
    g.bench_function("and3/baseline", |b| {
        b.iter(|| {
            let d = black_box(&doc);
            d.get("sym")
                .and_then(Value::as_str)
                .is_some_and(|s| ["IBM", "MSFT", "AAPL"].contains(&s))
                && d.get("px")
                    .and_then(Value::as_f64)
                    .is_some_and(|p| (90.0..=91.0).contains(&p))
                && d.pointer("/client/country").and_then(Value::as_str) == Some("us")
        })
    });

    let f = Filter::parse("/account LIKE '^ACC-1[0-9]$'").ok();
    let re = regex::Regex::new("^ACC-1[0-9]$").ok();
    g.bench_function("like/filter", |b| {
        b.iter(|| f.as_ref().map(|f| f.matches(black_box(&doc))))
    });
    g.bench_function("like/baseline", |b| {
        b.iter(|| {
            let s = black_box(&doc).get("account").and_then(Value::as_str);
            s.zip(re.as_ref()).is_some_and(|(s, re)| re.is_match(s))
        })
    });

    g.bench_function("parse/filter", |b| {
        b.iter(|| Filter::parse(black_box(expr)).is_ok())
    });
    g.finish();
}

fn json_ops(c: &mut Criterion) {
    let mut g = c.benchmark_group("json");
    g.bench_function("parse_json/first_wins", |b| {
        b.iter(|| parse_json(black_box(ORDER)).is_ok())
    });
    g.bench_function("parse_json/baseline", |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(ORDER)).is_ok())
    });

    let prev = parse_json(ORDER).unwrap_or(Value::Null);
    let delta =
        parse_json(br#"{"id":"A1","qty":175,"client":{"tier":"platinum"}}"#).unwrap_or(Value::Null);
    let keys: Vec<JsonPath> = JsonPath::parse("/id").into_iter().collect();
    g.bench_function("merge_delta", |b| {
        b.iter(|| {
            let mut stored = prev.clone();
            merge_delta(&mut stored, black_box(&delta), Default::default());
            stored
        })
    });
    g.bench_function("merge_delta/baseline_clone", |b| {
        b.iter(|| black_box(&prev).clone())
    });
    let mut new = prev.clone();
    merge_delta(&mut new, &delta, Default::default());
    g.bench_function("delta_diff", |b| {
        b.iter(|| delta_diff(black_box(&prev), black_box(&new), &keys))
    });

    let rows: Vec<Value> = (0..1000)
        .map(|i| serde_json::json!({"id": i, "px": (i * 7919) % 1000, "sym": format!("S{}", i % 37)}))
        .collect();
    if let Ok(o) = OrderBy::parse("/sym, /px DESC") {
        g.bench_function("orderby/sort_1000", |b| {
            b.iter(|| {
                let mut r: Vec<&Value> = rows.iter().collect();
                r.sort_by(|x, y| o.compare(x, y));
                r.len()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, filters, json_ops);
criterion_main!(benches);
