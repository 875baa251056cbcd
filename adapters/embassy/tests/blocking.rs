//! The blocking variant against amps-broker on loopback: std sockets behind
//! `embedded_io::{Read, Write, ReadReady}`, the poll loop on the test thread, a broker restart.

use std::cell::Cell;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use amps_broker::ServerHandle;
use amps_core::codec::{Command, CommandKind};
use amps_core::ha::{ExponentialDelayStrategy, ReconnectPolicy};
use amps_core::session::{
    CommandId, Config, ConnectRequest, ConnectionState as CS, Event, FixedStorage, HeartbeatConfig,
    Limits, Logon,
};
use amps_embassy::blocking::BlockingClient;
use amps_embassy::{Buffers, Disconnect};

/// Failure guard for every wait (not a clock the test depends on).
const GUARD: StdDuration = StdDuration::from_secs(20);

/// How a lying socket breaks the `embedded_io` contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lie {
    /// `write` returns `Ok(0)` for a non-empty buffer, writing nothing.
    WriteZero,
    /// `write` writes what it was given and claims one byte more.
    WriteOverrun,
    /// `read` reads nothing and claims one byte more than the buffer holds.
    ReadOverrun,
    /// `read` returns `Ok(0)` (end of stream) although the socket is open.
    Eof,
}

/// What the test and its sockets share: which connection lies, how many lies were told, how
/// many connections were opened.
#[derive(Default)]
struct Lies {
    /// From now on connection number `.0` (counting from 1) lies this way.
    lie: Cell<Option<(u32, Lie)>>,
    told: Cell<u32>,
    opened: Cell<u32>,
}

/// A std socket in the blocking embedded-io traits; `read_ready` peeks without blocking. It
/// lies when `lies` says so.
struct StdSocket {
    stream: TcpStream,
    lies: Rc<Lies>,
    /// This connection's number, from 1.
    conn: u32,
}

impl StdSocket {
    /// The lie this connection tells now, if any.
    fn lie(&self, on_write: bool) -> Option<Lie> {
        let lie = match self.lies.lie.get() {
            Some((conn, lie)) if conn == self.conn => lie,
            _ => return None,
        };
        (on_write == matches!(lie, Lie::WriteZero | Lie::WriteOverrun)).then_some(lie)
    }

    fn told(&self) {
        self.lies.told.set(self.lies.told.get() + 1);
    }
}

impl embedded_io::ErrorType for StdSocket {
    type Error = std::io::Error;
}

impl embedded_io::Read for StdSocket {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, std::io::Error> {
        match self.lie(false) {
            Some(lie) => {
                self.told();
                Ok(if lie == Lie::Eof { 0 } else { buf.len() + 1 })
            }
            None => self.stream.read(buf),
        }
    }
}

impl embedded_io::ReadReady for StdSocket {
    fn read_ready(&mut self) -> Result<bool, std::io::Error> {
        if self.lie(false).is_some() {
            return Ok(true);
        }
        self.stream.set_nonblocking(true)?;
        let r = self.stream.peek(&mut [0u8; 1]);
        self.stream.set_nonblocking(false)?;
        match r {
            // Data, or end of stream (the next read returns 0 at once).
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl embedded_io::Write for StdSocket {
    fn write(&mut self, buf: &[u8]) -> Result<usize, std::io::Error> {
        match self.lie(true) {
            Some(Lie::WriteOverrun) => {
                self.told();
                Ok(self.stream.write(buf)? + 1)
            }
            Some(_) => {
                self.told();
                Ok(0)
            }
            None => self.stream.write(buf),
        }
    }

    fn flush(&mut self) -> Result<(), std::io::Error> {
        self.stream.flush()
    }
}

type Connector = Box<dyn FnMut(ConnectRequest) -> std::io::Result<StdSocket>>;
type Client = BlockingClient<'static, FixedStorage<16, 4>, Connector>;

fn buf(n: usize) -> &'static mut [u8] {
    Box::leak(vec![0u8; n].into_boxed_slice())
}

/// A client with its own record of events, polled from the test thread.
struct Peer {
    client: Client,
    lies: Rc<Lies>,
    origin: StdInstant,
    states: Vec<CS>,
    persisted: u64,
    deliveries: Vec<(CommandId, String)>,
    completed: Vec<CommandId>,
}

impl Peer {
    fn new(addr: SocketAddr, name: &'static str) -> Peer {
        let mut config = Config::new(name);
        config.heartbeat = Some(HeartbeatConfig::new(1));
        config.reconnect = ReconnectPolicy::Exponential(ExponentialDelayStrategy::new(
            amps_core::Duration::from_millis(50),
            2.0,
            amps_core::Duration::from_millis(400),
        ));
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
        let lies = Rc::new(Lies::default());
        let shared = lies.clone();
        let connect: Connector = Box::new(move |_req| {
            let s = TcpStream::connect(addr)?;
            s.set_nodelay(true)?;
            shared.opened.set(shared.opened.get() + 1);
            Ok(StdSocket {
                stream: s,
                lies: shared.clone(),
                conn: shared.opened.get(),
            })
        });
        let logon = Logon {
            message_type: Some("json"),
            ..Logon::default()
        };
        Peer {
            client: BlockingClient::new(session, connect, logon),
            lies,
            origin: StdInstant::now(),
            states: Vec::new(),
            persisted: 0,
            deliveries: Vec::new(),
            completed: Vec::new(),
        }
    }

    fn now(&self) -> amps_core::Instant {
        amps_core::Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }

    /// One poll; returns whether anything happened.
    fn poll(&mut self) -> bool {
        let now = self.now();
        let Peer {
            client,
            states,
            persisted,
            deliveries,
            completed,
            ..
        } = self;
        client.poll(now, |e| match e {
            Event::State(s) => states.push(s),
            Event::Persisted { up_to } => *persisted = up_to,
            Event::Delivery(d) if d.kind() == CommandKind::Publish => {
                deliveries.push((d.id, String::from_utf8_lossy(d.data()).into_owned()))
            }
            Event::Completed { id, .. } => completed.push(id),
            _ => {}
        })
    }

    fn recoveries(&self) -> usize {
        self.states
            .iter()
            .filter(|s| **s == CS::Resubscribed)
            .count()
    }

    fn numbers(&self, id: CommandId) -> Vec<u32> {
        self.deliveries
            .iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, d)| {
                d.trim_start_matches(r#"{"n":"#)
                    .trim_end_matches('}')
                    .parse()
                    .unwrap()
            })
            .collect()
    }
}

/// Poll every peer until `done` holds. When a round moved nothing, wait 1 ms before the next:
/// a blocking client's loop has to wait for input somehow, and this test's sockets offer no
/// blocking wait that also covers the session's timers.
fn run_until(peers: &mut [&mut Peer], what: &str, mut done: impl FnMut(&[&mut Peer]) -> bool) {
    let end = StdInstant::now() + GUARD;
    loop {
        let mut progress = false;
        for p in peers.iter_mut() {
            progress |= p.poll();
        }
        if done(peers) {
            return;
        }
        assert!(StdInstant::now() < end, "timed out waiting for {what}");
        if !progress {
            std::thread::sleep(StdDuration::from_millis(1));
        }
    }
}

fn publish(p: &mut Peer, range: std::ops::RangeInclusive<u32>) {
    for n in range {
        let now = p.now();
        let seq = p
            .client
            .publish(now, "events", format!(r#"{{"n":{n}}}"#).as_bytes())
            .unwrap_or_else(|e| panic!("publish {n}: {e}"));
        assert!(seq.is_some());
    }
}

fn broker() -> ServerHandle {
    let config = amps_broker::Config {
        ack_conflation: amps_broker::config::ConfDuration(amps_core::Duration::from_millis(10)),
        ..amps_broker::Config::default()
    };
    ServerHandle::start_blocking(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

#[test]
fn blocking_client_survives_a_broker_restart_exactly_once() {
    let b = broker();
    let addr = b.local_addr();
    let mut p = Peer::new(addr, "blocking-pub");
    let now = p.now();
    p.client.connect(now);
    run_until(&mut [&mut p], "logon", |p| p[0].recoveries() == 1);
    let now = p.now();
    let sub = p.client.subscribe(now, "events", None).unwrap();
    run_until(&mut [&mut p], "subscribe", |p| {
        p[0].completed.contains(&sub)
    });

    publish(&mut p, 1..=10);
    run_until(&mut [&mut p], "1..=10", |p| {
        p[0].persisted == 10 && p[0].numbers(sub).len() == 10
    });

    b.restart();
    publish(&mut p, 11..=20);
    run_until(&mut [&mut p], "recovery", |p| {
        p[0].recoveries() == 2 && p[0].persisted == 20
    });
    assert_eq!(p.client.session().unpersisted_count(), 0);
    let stats = p.client.stats();
    assert_eq!(stats.disconnects, 1, "{stats:?}");
    assert_eq!(stats.connects, 2, "{stats:?}");

    // The re-entered subscription is live again.
    publish(&mut p, 21..=25);
    run_until(&mut [&mut p], "21..=25", |p| {
        p[0].numbers(sub).contains(&25)
    });

    // The transaction log has every message exactly once, in order.
    assert_eq!(audit(addr, 25), (1..=25).collect::<Vec<_>>());

    // Close for good: the connection ends and nothing reconnects.
    let now = p.now();
    p.client.close(now);
    run_until(&mut [&mut p], "close", |p| {
        p[0].states.last() == Some(&CS::Shutdown)
    });
    assert_eq!(p.client.link(), amps_embassy::Link::Idle);
    assert_eq!(p.client.stats().connects, 2);
}

/// The numbers the broker's transaction log holds on `events`, replayed by a new client until
/// at least `expected` arrived and a flush round trip ended.
fn audit(addr: std::net::SocketAddr, expected: usize) -> Vec<u32> {
    let mut a = Peer::new(addr, "blocking-audit");
    let now = a.now();
    a.client.connect(now);
    run_until(&mut [&mut a], "auditor logon", |p| p[0].recoveries() == 1);
    let now = a.now();
    let replay = a
        .client
        .execute(now, &Command::subscribe("events").bookmark("0"))
        .unwrap();
    run_until(&mut [&mut a], "replay", |p| {
        p[0].numbers(replay).len() >= expected
    });
    let now = a.now();
    let flush = a.client.session_mut().flush(now).unwrap();
    run_until(&mut [&mut a], "flush", |p| p[0].completed.contains(&flush));
    a.numbers(replay)
}

/// Publish 1..=10 on an honest connection, make it lie, publish 11..=20: the lying connection
/// ends with `expected`, the next one is honest, and the log has 1..=20 exactly once.
fn lie_then_recover(name: &'static str, lie: Lie, expected: Disconnect) {
    let b = broker();
    let addr = b.local_addr();
    let mut p = Peer::new(addr, name);
    let now = p.now();
    p.client.connect(now);
    run_until(&mut [&mut p], "logon", |p| p[0].recoveries() == 1);
    publish(&mut p, 1..=10);
    run_until(&mut [&mut p], "1..=10", |p| p[0].persisted == 10);
    assert_eq!(p.client.stats().last_disconnect, None);

    // From now on the first connection lies (the next one is honest).
    p.lies.lie.set(Some((1, lie)));
    publish(&mut p, 11..=20);
    run_until(&mut [&mut p], "recovery", |p| p[0].recoveries() == 2);
    // The store drains: a flush waits for every replayed publish to be persisted.
    let now = p.now();
    let flush = p
        .client
        .publish_flush(now, amps_core::Duration::from_secs(10))
        .unwrap();
    run_until(&mut [&mut p], "the store drained", |p| {
        p[0].completed.contains(&flush)
    });
    assert_eq!(p.client.session().unpersisted_count(), 0);
    assert_eq!(p.lies.told.get(), 1, "{lie:?} was retried or never told");
    assert_eq!(p.lies.opened.get(), 2);
    let stats = p.client.stats();
    assert_eq!(stats.last_disconnect, Some(expected), "{stats:?}");
    assert_eq!(stats.disconnects, 1, "{stats:?}");

    // Nothing published was lost or doubled.
    assert_eq!(audit(addr, 20), (1..=20).collect::<Vec<_>>());

    let now = p.now();
    p.client.close(now);
    run_until(&mut [&mut p], "close", |p| {
        p[0].states.last() == Some(&CS::Shutdown)
    });
    assert_eq!(p.client.stats().last_disconnect, Some(Disconnect::Session));
}

#[test]
fn blocking_write_of_zero_bytes_ends_the_connection() {
    lie_then_recover("blocking-write-zero", Lie::WriteZero, Disconnect::WriteZero);
}

#[test]
fn blocking_write_claiming_more_than_it_was_given_ends_the_connection() {
    lie_then_recover(
        "blocking-write-overrun",
        Lie::WriteOverrun,
        Disconnect::WriteOverrun,
    );
}

#[test]
fn blocking_read_claiming_more_than_the_buffer_ends_the_connection() {
    lie_then_recover(
        "blocking-read-overrun",
        Lie::ReadOverrun,
        Disconnect::ReadOverrun,
    );
}

#[test]
fn blocking_end_of_stream_is_a_disconnect_then_a_reconnect() {
    lie_then_recover("blocking-eof", Lie::Eof, Disconnect::PeerClosed);
}

#[test]
fn options_debug_leaves_the_password_out() {
    let mut o = amps_embassy::Options::new();
    o.logon = Logon {
        user_id: Some("alice"),
        password: Some("s3cr3t"),
        ..o.logon
    };
    let shown = format!("{o:?} {o:#?}");
    assert!(!shown.contains("s3cr3t"), "{shown}");
    assert!(shown.contains("alice"), "{shown}");
}
