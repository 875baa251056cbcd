//! amps-embassy against amps-broker on loopback: tokio sockets wrapped in the
//! embedded-io-async traits (embedded-io-adapters), the driver in a local task on a
//! current-thread runtime, and every wait bounded by a failure guard on explicit readiness
//! (events, connect attempts, heartbeat frames), never a sleep.
#![allow(dead_code, unreachable_pub)]

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration as StdDuration;

use amps_broker::{Config as BrokerConfig, Server, ServerHandle};
use amps_core::codec::CommandKind;
use amps_core::ha::{ExponentialDelayStrategy, ReconnectPolicy};
use amps_core::session::{
    CommandError, CommandId, Config, ConnectRequest, ConnectionState, Event, FixedStorage,
    HeartbeatConfig, Limits,
};
use amps_embassy::{Buffers, Client, Clock, Driver, Options, Stats};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embedded_io_adapters::tokio_1::FromTokio;
use embedded_io_async::{ErrorType, Read, Write};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// Generous limit for anything that should happen promptly: a failure guard, not a clock.
pub const GUARD: StdDuration = StdDuration::from_secs(20);

/// Await `f`, failing the test if it takes longer than [`GUARD`].
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(GUARD, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what} (failure guard)"))
}

/// The session clock on tokio's: microseconds since the test began.
#[derive(Clone, Copy)]
pub struct TokioClock(tokio::time::Instant);

impl TokioClock {
    pub fn new() -> Self {
        TokioClock(tokio::time::Instant::now())
    }
}

impl Clock for TokioClock {
    fn now(&self) -> amps_core::Instant {
        amps_core::Instant::from_micros(self.0.elapsed().as_micros() as u64)
    }

    fn sleep_until(&self, at: amps_core::Instant) -> impl Future<Output = ()> {
        tokio::time::sleep_until(self.0 + StdDuration::from_micros(at.as_micros()))
    }
}

pub type Storage = FixedStorage<16, 4>;
pub type TestClient = Client<NoopRawMutex, Storage, TokioClock>;

/// The default broker config with fast conflated persisted acks.
pub fn broker_config() -> BrokerConfig {
    BrokerConfig {
        ack_conflation: amps_broker::config::ConfDuration(amps_core::Duration::from_millis(10)),
        ..BrokerConfig::default()
    }
}

/// A broker on an ephemeral loopback port.
pub async fn broker() -> ServerHandle {
    Server::start(broker_config(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

/// An owned copy of the events a test looks at.
#[derive(Clone, Debug, PartialEq)]
pub enum Ev {
    State(ConnectionState),
    Persisted(u64),
    Delivery { id: CommandId, data: String },
    Completed(CommandId),
    Failed(CommandId, CommandError),
    Other,
}

fn owned(e: &Event<'_>) -> Ev {
    match e {
        Event::State(s) => Ev::State(*s),
        Event::Persisted { up_to } => Ev::Persisted(*up_to),
        Event::Delivery(d) if d.kind() == CommandKind::Publish => Ev::Delivery {
            id: d.id,
            data: String::from_utf8_lossy(d.data()).into_owned(),
        },
        Event::Completed { id, .. } => Ev::Completed(*id),
        Event::Failed { id, error } => Ev::Failed(*id, *error),
        _ => Ev::Other,
    }
}

/// What a peer's driver and connector saw; every change wakes the waiters.
#[derive(Default)]
pub struct Recorder {
    pub events: RefCell<Vec<Ev>>,
    /// Connect attempts that failed (refused) and that succeeded.
    pub refused: Cell<u32>,
    pub opened: Cell<u32>,
    /// Heartbeat frames the client wrote.
    pub beats_out: Cell<u32>,
    /// From now on connection number `.0` (counting from 1) lies this way.
    pub lie: Cell<Option<(u32, Lie)>>,
    /// Lies told so far.
    pub lies_told: Cell<u32>,
    changed: Notify,
}

/// How a lying transport breaks the `embedded_io_async` contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lie {
    /// `write` returns `Ok(0)` for a non-empty buffer, writing nothing.
    WriteZero,
    /// `write` writes what it was given and claims one byte more.
    WriteOverrun,
    /// `read` reads nothing and claims one byte more than the buffer holds.
    ReadOverrun,
    /// `read` returns `Ok(0)` (end of stream) although the socket is open.
    Eof,
}

impl Recorder {
    fn touch(&self) {
        self.changed.notify_waiters();
    }

    /// Wait until `pred` holds (checked after every change).
    pub async fn until(&self, what: &str, mut pred: impl FnMut(&Recorder) -> bool) {
        within(what, async {
            loop {
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if pred(self) {
                    return;
                }
                changed.await;
            }
        })
        .await
    }

    pub fn states(&self) -> Vec<ConnectionState> {
        self.events
            .borrow()
            .iter()
            .filter_map(|e| match e {
                Ev::State(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    /// Logged on and recovered this many times (one `Resubscribed` per logon).
    pub fn recoveries(&self) -> usize {
        self.states()
            .iter()
            .filter(|s| **s == ConnectionState::Resubscribed)
            .count()
    }

    pub fn persisted(&self) -> u64 {
        self.events
            .borrow()
            .iter()
            .filter_map(|e| match e {
                Ev::Persisted(n) => Some(*n),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    pub fn deliveries(&self, id: CommandId) -> Vec<String> {
        self.events
            .borrow()
            .iter()
            .filter_map(|e| match e {
                Ev::Delivery { id: i, data } if *i == id => Some(data.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn completed(&self, id: CommandId) -> bool {
        self.events.borrow().contains(&Ev::Completed(id))
    }
}

/// A tokio socket in the embedded-io-async traits, counting the heartbeat frames it writes,
/// and lying when the recorder says so (see [`Recorder::lie`]).
pub struct Counted {
    inner: FromTokio<TcpStream>,
    rec: &'static Recorder,
    /// This connection's number, from 1.
    conn: u32,
}

impl Counted {
    /// The lie this connection tells now, if any. Each lie yields first, so a driver that
    /// retries without end still lets the test's failure guard run.
    async fn lie(&self, on_write: bool) -> Option<Lie> {
        let lie = match self.rec.lie.get() {
            Some((conn, lie)) if conn == self.conn => lie,
            _ => return None,
        };
        if on_write != matches!(lie, Lie::WriteZero | Lie::WriteOverrun) {
            return None;
        }
        tokio::task::yield_now().await;
        self.rec.lies_told.set(self.rec.lies_told.get() + 1);
        self.rec.touch();
        Some(lie)
    }
}

impl ErrorType for Counted {
    type Error = std::io::Error;
}

impl Read for Counted {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        match self.lie(false).await {
            Some(Lie::ReadOverrun) => Ok(buf.len() + 1),
            Some(_) => Ok(0),
            None => self.inner.read(buf).await,
        }
    }
}

impl Write for Counted {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        match self.lie(true).await {
            Some(Lie::WriteOverrun) => return Ok(self.inner.write(buf).await? + 1),
            Some(_) => return Ok(0),
            None => {}
        }
        let n = self.inner.write(buf).await?;
        // The driver writes what the session hands it; a beat is a short frame of its own.
        let written = &buf[..n];
        let beats = written
            .windows(br#""c":"heartbeat""#.len())
            .filter(|w| *w == br#""c":"heartbeat""#)
            .count() as u32;
        if beats > 0 {
            self.rec.beats_out.set(self.rec.beats_out.get() + beats);
            self.rec.touch();
        }
        Ok(n)
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.inner.flush().await
    }
}

/// How a test client is set up.
pub struct Spec {
    pub name: &'static str,
    pub heartbeat: Option<u32>,
    pub reconnect: bool,
}

impl Spec {
    pub fn new(name: &'static str) -> Self {
        Spec {
            name,
            heartbeat: Some(1),
            reconnect: true,
        }
    }
}

/// A client whose driver runs in a local task.
pub struct Peer {
    pub client: &'static TestClient,
    pub rec: &'static Recorder,
    pub driver: JoinHandle<Stats>,
}

fn buf(n: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; n].into_boxed_slice())
}

/// A client of the broker at `addr` (call inside a `LocalSet`), its driver already running.
pub fn peer(addr: SocketAddr, spec: Spec) -> Peer {
    let mut config = Config::new(spec.name);
    config.heartbeat = spec.heartbeat.map(HeartbeatConfig::new);
    if spec.reconnect {
        config.reconnect = ReconnectPolicy::Exponential(ExponentialDelayStrategy::new(
            amps_core::Duration::from_millis(50),
            2.0,
            amps_core::Duration::from_millis(400),
        ));
    }
    config.resubscribe = true;
    config.limits = Limits::small();
    let buffers = Buffers {
        rx: buf(4100),
        tx: buf(4096),
        scratch: buf(512),
        arena: buf(1024),
        ack_batch: buf(2048),
        publish_store: buf(16 * 1024),
        publish_window: 64,
        bookmark_store: buf(512),
    };
    let session = buffers.session(&config).unwrap();
    let client: &'static TestClient = Box::leak(Box::new(Client::new(session, TokioClock::new())));
    let rec: &'static Recorder = Box::leak(Box::default());
    let connect = move |_req: ConnectRequest| async move {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                s.set_nodelay(true)?;
                rec.opened.set(rec.opened.get() + 1);
                rec.touch();
                Ok(Counted {
                    inner: FromTokio::new(s),
                    rec,
                    conn: rec.opened.get(),
                })
            }
            Err(e) => {
                rec.refused.set(rec.refused.get() + 1);
                rec.touch();
                Err(e)
            }
        }
    };
    let mut options = Options::new();
    options.connect_timeout = amps_core::Duration::from_secs(5);
    let driver = tokio::task::spawn_local(async move {
        let mut driver: Driver<'_, _, _, _, _> = Driver::new(client, connect, options);
        driver
            .run(|e| {
                rec.events.borrow_mut().push(owned(&e));
                rec.touch();
            })
            .await
    });
    Peer {
        client,
        rec,
        driver,
    }
}

/// `{"n":N}`.
pub fn payload(n: u32) -> String {
    format!(r#"{{"n":{n}}}"#)
}

/// The numbers in a list of `{"n":N}` payloads.
pub fn numbers(data: &[String]) -> Vec<u32> {
    data.iter()
        .map(|d| {
            d.trim_start_matches(r#"{"n":"#)
                .trim_end_matches('}')
                .parse()
                .unwrap()
        })
        .collect()
}

/// Publish `{"n":N}` for every N in `range` to `topic`, waiting out backpressure.
pub async fn publish_range(p: &Peer, topic: &str, range: std::ops::RangeInclusive<u32>) {
    for n in range {
        let seq = within(
            "publish",
            p.client.publish_wait(topic, payload(n).as_bytes()),
        )
        .await
        .unwrap_or_else(|e| panic!("publish {n}: {e}"));
        assert!(seq.is_some(), "publishes go through the publish store");
    }
}

/// Everything published to `topic` (a transaction-logged one: `events`), in log order, read by a
/// fresh client with a bookmark replay from the start.
pub async fn audit(addr: SocketAddr, topic: &str, expected: usize) -> Vec<u32> {
    let a = peer(
        addr,
        Spec {
            reconnect: false,
            ..Spec::new("auditor")
        },
    );
    a.client.connect().await;
    a.rec.until("auditor logon", |r| r.recoveries() == 1).await;
    let cmd = amps_core::codec::Command::subscribe(topic).bookmark("0");
    let replay = a.client.execute(&cmd).await.unwrap();
    a.rec
        .until("the replay", |r| r.deliveries(replay).len() >= expected)
        .await;
    // Then a flush: every message of the replay arrives before its ack.
    let flush = a.client.with_session(|s, now| s.flush(now)).await.unwrap();
    a.rec.until("the flush", |r| r.completed(flush)).await;
    a.client.close().await;
    within("the auditor's driver", a.driver).await.unwrap();
    numbers(&a.rec.deliveries(replay))
}
