//! The engine's own cost per message, without sockets or tasks: a logged-on publisher's frames
//! fed through [`Engine::handle_bytes`] in reads of 64 KiB, the deliveries to one (or ten)
//! subscribers drained as the TCP server drains them. On a shared machine this isolates the
//! broker's CPU per message from the loopback and scheduling noise of the `throughput` bench;
//! under `valgrind --tool=callgrind` it gives instruction counts per message.
//!
//! `cargo bench -p amps-broker --bench engine`

use std::hint::black_box;

use amps_broker::{Config, ConnId, Engine, EngineEvent};
use amps_core::Instant;
use amps_core::codec::{Command, split_frame};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Messages per measured iteration.
const N: usize = 20_000;
/// Bytes per `handle_bytes` call (the TCP server's largest read).
const READ: usize = 64 * 1024;
const PAYLOAD: &[u8] = br#"{"id":17,"px":100.25,"sym":"IBM"}"#;

struct Rig {
    engine: Engine,
    publisher: ConnId,
    input: Vec<u8>,
    out: Vec<u8>,
    now: Instant,
}

impl Rig {
    /// A publisher and `subs` subscribers to topic `bench`, each logged on.
    fn new(subs: usize) -> Rig {
        let now = Instant::from_secs(1_800_000_000);
        let mut engine = Engine::new(Config::default());
        // As the TCP server runs it.
        engine.set_offload_compiles(true);
        engine.set_track_writes(true);
        let logon = |engine: &mut Engine, name: &str| {
            let c = engine.open(now);
            let f = Command::logon(name).command_id("1").to_vec().unwrap();
            engine.handle_bytes(now, c, &f);
            c
        };
        let publisher = logon(&mut engine, "bench-pub");
        for i in 0..subs {
            let s = logon(&mut engine, &format!("bench-sub-{i}"));
            let f = Command::subscribe("bench")
                .sub_id("s")
                .command_id("2")
                .to_vec()
                .unwrap();
            engine.handle_bytes(now, s, &f);
        }
        let frame = Command::publish("bench", PAYLOAD).to_vec().unwrap();
        let mut rig = Rig {
            engine,
            publisher,
            input: frame.repeat(N),
            out: Vec::new(),
            now,
        };
        rig.drain();
        rig
    }

    /// What the server does after each batch of reads: hand every connection's output over.
    fn drain(&mut self) -> usize {
        let mut frames = 0;
        while let Some(ev) = self.engine.poll_event() {
            if let EngineEvent::Transmit(c) = ev {
                self.out.clear();
                self.engine.drain_output(c, &mut self.out);
                self.engine.handle_written(c, self.out.len());
                let mut pos = 0;
                while let Ok(Some((_, used))) = split_frame(&self.out[pos..], u32::MAX) {
                    pos += used;
                    frames += 1;
                }
            }
        }
        frames
    }

    /// Publish `N` messages; returns the deliveries.
    fn run(&mut self) -> usize {
        let mut delivered = 0;
        let input = std::mem::take(&mut self.input);
        for chunk in input.chunks(READ) {
            self.engine
                .handle_bytes(self.now, self.publisher, black_box(chunk));
            delivered += self.drain();
        }
        self.input = input;
        delivered
    }
}

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(N as u64));
    for subs in [1usize, 10] {
        // Set up inside the routine, so a filtered run (a profiler's) does only this one.
        g.bench_function(format!("publish_to_{subs}_subscriber"), |b| {
            let mut rig = Rig::new(subs);
            assert_eq!(rig.run(), N * subs, "every publish delivered");
            b.iter(|| rig.run())
        });
    }
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
