//! What the driver's I/O buffer size (`Driver`'s `CHUNK`) costs in speed: the same client and
//! session as the Embassy firmware image (1 KiB frames, 512-byte transmit buffer, 4 KiB /
//! 32-message publish store), over an in-memory `embedded_io_async` link whose far end is
//! amps-broker's engine, run in the transport's `write` (no sockets, no threads: the figure
//! is the driver's and the session's work plus the broker engine's).
//!
//! One round: publish `ROUND` messages to a topic the client subscribes to, then
//! `publish_flush`, until every message is delivered back and persisted. So both directions
//! go through the `CHUNK`-byte buffer: publishes out, deliveries and acks in. The connection
//! and the subscription are set up once per configuration, outside the measurement.
//!
//! After each configuration the bench prints the driver's `read` and `write` calls per message
//! (counted, so the same on a busy machine as on a quiet one).
//!
//! `cargo bench -p amps-embassy --bench chunk`

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use amps_broker::config::ConfDuration;
use amps_broker::{Config as BrokerConfig, ConnId, Engine, EngineEvent};
use amps_core::session::{
    CommandError, CommandId, Config, ConnectRequest, ConnectionState, Event, FixedStorage, Limits,
};
use amps_embassy::{Buffers, Client, Clock, Driver, Options};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embedded_io_async::{ErrorType, Read, Write};
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio::task::LocalSet;

const TOPIC: &str = "bench";
/// Publishes per round.
const ROUND: u32 = 200;

/// The session clock on tokio's (the engine reads the same one).
#[derive(Clone, Copy)]
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    fn now(&self) -> amps_core::Instant {
        amps_core::Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }

    fn sleep_until(&self, at: amps_core::Instant) -> impl Future<Output = ()> {
        tokio::time::sleep_until(self.0 + StdDuration::from_micros(at.as_micros()))
    }
}

/// The broker end of the link: the engine, and what it has sent the client.
struct Far {
    engine: Engine,
    conn: ConnId,
    clock: TokioClock,
    to_client: VecDeque<u8>,
    scratch: Vec<u8>,
    reader: Option<Waker>,
}

thread_local! {
    /// `read` and `write` calls the driver made (to print calls per message, which do not
    /// depend on how busy the machine is).
    static CALLS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn count(read: bool) {
    CALLS.with(|c| {
        let (r, w) = c.get();
        c.set(if read { (r + 1, w) } else { (r, w + 1) });
    });
}

impl Far {
    /// Move what the engine has to send into the client's inbound bytes.
    fn pump(&mut self) {
        while let Some(ev) = self.engine.poll_event() {
            let (EngineEvent::Transmit(c) | EngineEvent::Close { conn: c, .. }) = ev;
            self.scratch.clear();
            self.engine.drain_output(c, &mut self.scratch);
            if c == self.conn {
                self.to_client.extend(&self.scratch);
            }
        }
        if !self.to_client.is_empty()
            && let Some(w) = self.reader.take()
        {
            w.wake();
        }
    }
}

/// The client end of the link.
struct Near(Rc<RefCell<Far>>);

impl ErrorType for Near {
    type Error = core::convert::Infallible;
}

impl Read for Near {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        poll_fn(|cx| {
            let mut far = self.0.borrow_mut();
            if far.to_client.is_empty() {
                far.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            count(true);
            let n = buf.len().min(far.to_client.len());
            for (d, s) in buf.iter_mut().zip(far.to_client.drain(..n)) {
                *d = s;
            }
            Poll::Ready(Ok(n))
        })
        .await
    }
}

impl Write for Near {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        count(false);
        let mut far = self.0.borrow_mut();
        let (now, conn) = (far.clock.now(), far.conn);
        far.engine.handle_bytes(now, conn, buf);
        far.pump();
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn buf(n: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; n].into_boxed_slice())
}

/// A new connection to a fresh engine.
fn connect_engine(
    broker: BrokerConfig,
    clock: TokioClock,
) -> Result<Near, core::convert::Infallible> {
    let mut engine = Engine::new(broker);
    let conn = engine.open(clock.now());
    let mut far = Far {
        engine,
        conn,
        clock,
        to_client: VecDeque::new(),
        scratch: Vec::new(),
        reader: None,
    };
    far.pump();
    Ok(Near(Rc::new(RefCell::new(far))))
}

type BenchClient = Client<NoopRawMutex, FixedStorage<8, 2>, TokioClock>;

/// What the event handler counts for the measuring side.
#[derive(Default)]
struct Seen {
    logons: Cell<u32>,
    deliveries: Cell<u64>,
    completed: RefCell<Vec<CommandId>>,
    changed: Notify,
}

impl Seen {
    async fn until(&self, mut pred: impl FnMut(&Seen) -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if pred(self) {
                return;
            }
            changed.await;
        }
    }
}

/// A logged-on client whose driver (with a `CHUNK`-byte buffer) runs in `local`, subscribed
/// to [`TOPIC`].
fn setup<const CHUNK: usize>(
    rt: &Runtime,
    local: &LocalSet,
) -> (&'static BenchClient, &'static Seen) {
    let clock = rt.block_on(async { TokioClock(tokio::time::Instant::now()) });
    let mut config = Config::new("bench-chunk");
    config.limits = Limits {
        max_frame: 1024,
        ..Limits::small()
    };
    let buffers = Buffers {
        rx: buf(1028),
        tx: buf(512),
        scratch: buf(128),
        arena: buf(128),
        ack_batch: buf(0),
        publish_store: buf(4096),
        publish_window: 32,
        bookmark_store: buf(64),
    };
    let session = buffers.session::<8, 2>(&config).unwrap();
    let client: &'static BenchClient = Box::leak(Box::new(Client::new(session, clock)));
    let seen: &'static Seen = Box::leak(Box::default());
    let broker = BrokerConfig {
        // Persisted acks at once: no broker timer to drive.
        ack_conflation: ConfDuration(amps_core::Duration::from_millis(0)),
        ..BrokerConfig::default()
    };
    let connect = move |_req: ConnectRequest| {
        let broker = broker.clone();
        async move { connect_engine(broker, clock) }
    };
    local.spawn_local(async move {
        let mut driver: Driver<'_, _, _, _, _, CHUNK> =
            Driver::new(client, connect, Options::new());
        driver
            .run(|e| {
                match e {
                    Event::Delivery(_) => seen.deliveries.set(seen.deliveries.get() + 1),
                    Event::Completed { id, .. } => seen.completed.borrow_mut().push(id),
                    Event::State(ConnectionState::LoggedOn) => {
                        seen.logons.set(seen.logons.get() + 1)
                    }
                    _ => return,
                }
                seen.changed.notify_waiters();
            })
            .await
    });
    rt.block_on(local.run_until(async {
        client.connect().await;
        seen.until(|s| s.logons.get() == 1).await;
        let sub = client.subscribe(TOPIC, None).await.unwrap();
        seen.until(|s| s.completed.borrow().contains(&sub)).await;
    }));
    (client, seen)
}

/// `iters` rounds; the time they took.
async fn rounds(client: &BenchClient, seen: &Seen, payload: &[u8], iters: u64) -> StdDuration {
    let start = StdInstant::now();
    for _ in 0..iters {
        let want = seen.deliveries.get() + u64::from(ROUND);
        for _ in 0..ROUND {
            client.publish_wait(TOPIC, payload).await.unwrap();
        }
        // A full transmit buffer refuses the flush command for now: let the driver run.
        let flush = loop {
            match client
                .publish_flush(amps_core::Duration::from_secs(10))
                .await
            {
                Err(CommandError::WouldBlock) => tokio::task::yield_now().await,
                r => break r.unwrap(),
            }
        };
        seen.until(|s| s.deliveries.get() >= want && s.completed.borrow().contains(&flush))
            .await;
    }
    start.elapsed()
}

fn bench_chunk<const CHUNK: usize>(c: &mut Criterion, payload_len: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let local = LocalSet::new();
    let (client, seen) = setup::<CHUNK>(&rt, &local);
    let payload = vec![b'x'; payload_len];
    let mut g = c.benchmark_group(format!("publish_deliver/{payload_len}B"));
    g.throughput(Throughput::Elements(u64::from(ROUND)));
    g.bench_function(BenchmarkId::new("chunk", CHUNK), |b| {
        b.iter_custom(|iters| rt.block_on(local.run_until(rounds(client, seen, &payload, iters))))
    });
    g.finish();
    CALLS.with(|c| c.set((0, 0)));
    rt.block_on(local.run_until(rounds(client, seen, &payload, 10)));
    let (r, w) = CALLS.with(Cell::get);
    let per = f64::from(ROUND * 10);
    println!(
        "publish_deliver/{payload_len}B/chunk/{CHUNK}: {:.2} reads and {:.2} writes per message",
        r as f64 / per,
        w as f64 / per
    );
    rt.block_on(local.run_until(client.close()));
}

fn chunk_sizes(c: &mut Criterion) {
    for payload in [64, 400] {
        bench_chunk::<256>(c, payload);
        bench_chunk::<128>(c, payload);
    }
}

criterion_group!(benches, chunk_sizes);
criterion_main!(benches);
