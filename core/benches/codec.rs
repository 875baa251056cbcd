//! Codec benchmarks (goals: parse ≤ 20 ns, serialize ≤ 40 ns, decode ≥ 1 GB/s).
//!
//! Run: `cargo bench -p amps-core --bench codec`

use std::hint::black_box;

use amps_core::codec::{AckType, Command, FrameDecoder, Message, Scratch};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A typical publish delivery (docs/protocol.md §18 V6).
const DELIVERY: &[u8] = br#"{"c":"p","t":"orders","sub_id":"2","k":"16666569833721932681","bm":"3084015820777091662|1|","l":21}{"id":"A1","qty":100}"#;

fn mixed_stream() -> Vec<u8> {
    let payload = br#"{"id":"A1","qty":100,"price":101.25,"side":"buy","trader":"alice"}"#;
    let mut out = vec![0u8; 1 << 20];
    let mut len = 0;
    for i in 0..1000u64 {
        let n = match i % 5 {
            0 | 1 => {
                let f = format!(
                    r#"{{"c":"p","t":"orders","sub_id":"2","k":"{}","bm":"3084015820777091662|{}|","l":{}}}"#,
                    16666569833721932681u64.wrapping_add(i),
                    i,
                    payload.len()
                );
                let body = [f.as_bytes(), payload].concat();
                out[len..len + 4].copy_from_slice(&(body.len() as u32).to_be_bytes());
                out[len + 4..len + 4 + body.len()].copy_from_slice(&body);
                4 + body.len()
            }
            2 => Command::new(amps_core::codec::CommandKind::Ack)
                .command_id("17")
                .ack(AckType::Processed)
                .encode(&mut out[len..])
                .unwrap(),
            3 => Command::publish("telemetry/device-42", payload)
                .seq(i)
                .ack(AckType::Persisted)
                .encode(&mut out[len..])
                .unwrap(),
            _ => Command::heartbeat_beat().encode(&mut out[len..]).unwrap(),
        };
        len += n;
    }
    out.truncate(len);
    out
}

fn bench(c: &mut Criterion) {
    let body = &DELIVERY;
    c.bench_function("parse_delivery_header", |b| {
        b.iter(|| {
            let m = Message::parse(black_box(body), &mut Scratch::empty()).unwrap();
            black_box((m.topic(), m.sub_id(), m.sow_key(), m.bookmark(), m.data()));
        })
    });

    let payload = [b'x'; 100];
    let mut out = [0u8; 256];
    let mut seq = 0u64;
    c.bench_function("serialize_publish_header", |b| {
        b.iter(|| {
            seq += 1;
            let n = Command::publish(black_box("orders"), black_box(&payload))
                .seq(seq)
                .ack(AckType::Persisted)
                .encode(&mut out)
                .unwrap();
            black_box(n);
        })
    });

    let stream = mixed_stream();
    let mut g = c.benchmark_group("decode_stream");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    let mut rx = vec![0u8; 1 << 16];
    g.bench_function("1000_mixed_frames", |b| {
        b.iter(|| {
            let mut d = FrameDecoder::new(&mut rx[..], 1 << 15);
            let mut rest = &stream[..];
            let mut frames = 0u32;
            while !rest.is_empty() {
                let n = d.push(rest);
                rest = &rest[n..];
                while let Some(f) = d.next_frame().unwrap() {
                    let m = Message::parse(f, &mut Scratch::empty()).unwrap();
                    black_box(m.kind());
                    frames += 1;
                }
            }
            assert_eq!(frames, 1000);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
