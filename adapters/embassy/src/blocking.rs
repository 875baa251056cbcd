//! The blocking variant: the same session over `embedded_io::{Read, Write, ReadReady}`, driven
//! from the application's own loop (no executor), for RTOS sockets and bare-metal stacks with
//! blocking APIs.
//!
//! [`BlockingClient::poll`] never waits for input: it reads only what
//! [`ReadReady`] says is there. It does wait while a connect or a write is under way (the
//! transport's own timeouts bound them). Between polls the application sleeps until
//! [`BlockingClient::poll_at`] or until the transport has input, whichever its platform can
//! wait for.
//!
//! ```no_run
//! use amps_core::session::{Config, ConnectRequest, Event, Logon};
//! use amps_embassy::Buffers;
//! use amps_embassy::blocking::BlockingClient;
//! # fn buf(n: usize) -> &'static mut [u8] { Box::leak(vec![0; n].into_boxed_slice()) }
//! # struct Socket;
//! # impl embedded_io::ErrorType for Socket { type Error = core::convert::Infallible; }
//! # impl embedded_io::Read for Socket {
//! #     fn read(&mut self, _: &mut [u8]) -> Result<usize, Self::Error> { Ok(0) }
//! # }
//! # impl embedded_io::ReadReady for Socket {
//! #     fn read_ready(&mut self) -> Result<bool, Self::Error> { Ok(false) }
//! # }
//! # impl embedded_io::Write for Socket {
//! #     fn write(&mut self, b: &[u8]) -> Result<usize, Self::Error> { Ok(b.len()) }
//! #     fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
//! # }
//! # fn open_socket() -> Result<Socket, ()> { Ok(Socket) }
//! # fn clock() -> amps_core::Instant { amps_core::Instant::ZERO }
//! # fn sleep_until(_: Option<amps_core::Instant>) {}
//! let buffers = Buffers {
//!     rx: buf(1100), tx: buf(1024), scratch: buf(256), arena: buf(256), ack_batch: buf(512),
//!     publish_store: buf(4096), publish_window: 32, bookmark_store: buf(64),
//! };
//! let session = buffers.session::<8, 2>(&Config::new("sensor-17")).unwrap();
//! let logon = Logon { message_type: Some("json"), ..Logon::default() };
//! let mut client: BlockingClient<'_, _, _> =
//!     BlockingClient::new(session, |_req: ConnectRequest| open_socket(), logon);
//! client.connect(clock());
//! loop {
//!     client.poll(clock(), |event| {
//!         if let Event::Persisted { up_to } = event { /* ... */ }
//!     });
//!     if client.is_ready() {
//!         let _ = client.publish(clock(), "telemetry", br#"{"t":21.5}"#);
//!     }
//!     sleep_until(client.poll_at());
//! }
//! ```

use amps_core::codec::Command;
use amps_core::session::{
    CommandError, CommandId, ConnectRequest, Event, Exec, Logon, PublishError, Session, State,
    Storage,
};
use amps_core::{Duration, Instant};
use embedded_io::{Read, ReadReady, Write};

use crate::client::{Link, Stats};
use crate::disconnect::{Disconnect, check_read, check_write};
use crate::log;

/// Opens blocking connections to the server (closures
/// `FnMut(ConnectRequest) -> Result<T, E>` are connectors).
pub trait Connect {
    /// One open connection.
    type Conn: Read + Write + ReadReady;
    /// Why an attempt failed (only counted and logged).
    type Error: core::fmt::Debug;

    /// Open a connection (`req.attempt` counts the attempts of this outage, from 1).
    fn connect(&mut self, req: ConnectRequest) -> Result<Self::Conn, Self::Error>;

    /// End a connection before it is dropped (`graceful` when the application asked). The
    /// default just drops it.
    fn close(conn: &mut Self::Conn, graceful: bool) {
        let _ = (conn, graceful);
    }
}

impl<F, T, E> Connect for F
where
    F: FnMut(ConnectRequest) -> Result<T, E>,
    T: Read + Write + ReadReady,
    E: core::fmt::Debug,
{
    type Conn = T;
    type Error = E;

    fn connect(&mut self, req: ConnectRequest) -> Result<T, E> {
        self(req)
    }
}

/// Reads per poll at most (each moves up to `CHUNK` bytes), so one poll's work is bounded.
const MAX_READS: usize = 16;

/// An AMPS client over blocking `embedded_io` transports, driven by [`BlockingClient::poll`].
pub struct BlockingClient<'a, S: Storage, C: Connect, const CHUNK: usize = 256> {
    session: Session<S>,
    connector: C,
    conn: Option<C::Conn>,
    logon: Logon<'a>,
    graceful: bool,
    stats: Stats,
    buf: [u8; CHUNK],
}

impl<'a, S: Storage, C: Connect, const CHUNK: usize> BlockingClient<'a, S, C, CHUNK> {
    /// A client for `session` that opens connections with `connector` and logs on with
    /// `logon`. Nothing happens until [`BlockingClient::connect`] and a poll.
    pub fn new(session: Session<S>, connector: C, logon: Logon<'a>) -> Self {
        BlockingClient {
            session,
            connector,
            conn: None,
            logon,
            graceful: false,
            stats: Stats::default(),
            buf: [0; CHUNK],
        }
    }

    /// The session.
    pub fn session(&self) -> &Session<S> {
        &self.session
    }

    /// The session, for commands this type does not wrap.
    pub fn session_mut(&mut self) -> &mut Session<S> {
        &mut self.session
    }

    /// Transport counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether a connection is open.
    pub fn link(&self) -> Link {
        if self.conn.is_some() {
            Link::Open
        } else {
            Link::Idle
        }
    }

    /// Whether the session is logged on and recovered.
    pub fn is_ready(&self) -> bool {
        self.session.state() == State::Ready
    }

    /// Connect and log on at the next poll, and reconnect after losses with the session's
    /// reconnect policy.
    pub fn connect(&mut self, now: Instant) {
        self.graceful = false;
        self.session.start(now);
    }

    /// Publish through the publish store (see [`Session::publish`]); backpressure is an error
    /// to retry after a poll.
    pub fn publish(
        &mut self,
        now: Instant,
        topic: &str,
        data: &[u8],
    ) -> Result<Option<u64>, PublishError> {
        self.session.publish(now, topic, data)
    }

    /// Subscribe, re-entered after reconnects when the session config says so.
    pub fn subscribe(
        &mut self,
        now: Instant,
        topic: &str,
        filter: Option<&str>,
    ) -> Result<CommandId, CommandError> {
        let mut cmd = Command::subscribe(topic);
        if let Some(f) = filter {
            cmd = cmd.filter(f);
        }
        self.session
            .execute_with(now, &cmd, Exec { resubscribe: true })
    }

    /// Send any command (see [`Session::execute`]).
    pub fn execute(&mut self, now: Instant, cmd: &Command<'_>) -> Result<CommandId, CommandError> {
        self.session.execute(now, cmd)
    }

    /// Flush and wait for the publish store to drain (completes as an event).
    pub fn publish_flush(
        &mut self,
        now: Instant,
        timeout: Duration,
    ) -> Result<CommandId, CommandError> {
        self.session.publish_flush(now, timeout)
    }

    /// Close the connection and stop reconnecting; [`BlockingClient::connect`] resumes.
    pub fn disconnect(&mut self, now: Instant) {
        self.graceful = true;
        self.session.disconnect(now);
    }

    /// Close for good.
    pub fn close(&mut self, now: Instant) {
        self.graceful = true;
        self.session.close(now);
    }

    /// The latest time to poll again if the transport has no input before then.
    pub fn poll_at(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    /// Do what is due at `now`: fire timers, connect when the session asks, read what the
    /// transport has, hand every event to `on_event`, write what the session has to send.
    /// Returns whether anything happened.
    pub fn poll<F: FnMut(Event<'_>)>(&mut self, now: Instant, mut on_event: F) -> bool {
        if self.session.poll_timeout().is_some_and(|d| d <= now) {
            self.session.handle_timeout(now);
        }
        let mut progress = self.drain(&mut on_event);
        if self.conn.is_none()
            && let Some(req) = self.session.poll_connect(now)
        {
            progress = true;
            self.stats.connects += 1;
            match self.connector.connect(req) {
                Ok(conn) => {
                    log::info!("amps-embassy: connected");
                    self.conn = Some(conn);
                    if self.session.handle_connected(now, &self.logon).is_err() {
                        self.end(true);
                    }
                }
                Err(_) => {
                    log::warning!("amps-embassy: connect attempt {} failed", req.attempt);
                    self.stats.connect_failures += 1;
                    self.session.handle_connect_failed(now);
                }
            }
        }
        progress |= self.receive(now, &mut on_event);
        progress |= self.drain(&mut on_event);
        if self.conn.is_some()
            && matches!(
                self.session.state(),
                State::Disconnected | State::Shutdown | State::Connecting
            )
        {
            self.end(self.graceful);
        }
        progress |= self.transmit(now, &mut on_event);
        progress
    }

    /// Hand every queued event to `on_event`; close the transport on `CloseTransport`.
    fn drain<F: FnMut(Event<'_>)>(&mut self, on_event: &mut F) -> bool {
        let mut any = false;
        let mut close = false;
        while let Some(ev) = self.session.poll_event() {
            any = true;
            close |= matches!(ev, Event::CloseTransport);
            on_event(ev);
        }
        if close {
            self.end(self.graceful);
        }
        any
    }

    /// Read what the transport has ready and feed it to the session.
    fn receive<F: FnMut(Event<'_>)>(&mut self, now: Instant, on_event: &mut F) -> bool {
        let mut progress = false;
        for _ in 0..MAX_READS {
            let Some(conn) = self.conn.as_mut() else {
                break;
            };
            let read = match conn.read_ready() {
                Ok(false) => break,
                Ok(true) => conn.read(&mut self.buf),
                Err(e) => Err(e),
            };
            progress = true;
            // A count the transport could not have read ends the connection.
            let read = read.map_or(Err(Disconnect::ReadFailed), |n| check_read(n, CHUNK));
            let n = match read {
                Ok(n) => n,
                Err(why) => {
                    self.lost(now, why, on_event);
                    break;
                }
            };
            if !self.feed(now, n, on_event) {
                break;
            }
        }
        progress
    }

    /// Offer `buf[..n]` to the session, draining events when it pushes back. Returns whether
    /// the connection is still open.
    fn feed<F: FnMut(Event<'_>)>(&mut self, now: Instant, n: usize, on_event: &mut F) -> bool {
        let mut pos = 0;
        let mut idle_rounds = 0;
        while pos < n {
            let rest = self.buf.get(pos..n).unwrap_or(&[]);
            let Ok(taken) = self.session.handle_bytes(now, rest) else {
                // The session ended this connection: the rest is moot.
                break;
            };
            pos += taken;
            self.stats.bytes_in += taken as u64;
            self.drain(on_event);
            if self.conn.is_none() {
                return false;
            }
            idle_rounds = if taken == 0 { idle_rounds + 1 } else { 0 };
            if idle_rounds >= 2 {
                // Input the session neither takes nor refuses: end rather than spin.
                self.lost(now, Disconnect::Stuck, on_event);
                return false;
            }
        }
        self.conn.is_some()
    }

    /// Write everything the session has to send.
    fn transmit<F: FnMut(Event<'_>)>(&mut self, now: Instant, on_event: &mut F) -> bool {
        let mut progress = false;
        while let Some(conn) = self.conn.as_mut() {
            let Some(n) = self.session.poll_transmit(now, &mut self.buf) else {
                break;
            };
            let out = self.buf.get(..n).unwrap_or(&[]);
            let (written, r) = write_all(conn, out);
            self.stats.bytes_out += written as u64;
            progress = true;
            if let Err(why) = r {
                self.lost(now, why, on_event);
                break;
            }
        }
        // Transmitting can finish a recovery step (publish replayed, resubscribed).
        progress | self.drain(on_event)
    }

    /// The transport failed, misbehaved or the peer closed it.
    fn lost<F: FnMut(Event<'_>)>(&mut self, now: Instant, why: Disconnect, on_event: &mut F) {
        log::warning!("amps-embassy: connection lost: {}", why);
        if let Some(mut conn) = self.conn.take() {
            C::close(&mut conn, false);
            self.stats.disconnects += 1;
            self.stats.last_disconnect = Some(why);
        }
        if let Some(cause) = why.transport_closed() {
            self.session.handle_closed(now, cause);
        }
        self.drain(on_event);
    }

    /// Close the open connection (if any): the session ended it.
    fn end(&mut self, graceful: bool) {
        if let Some(mut conn) = self.conn.take() {
            C::close(&mut conn, graceful);
            self.stats.disconnects += 1;
            self.stats.last_disconnect = Some(Disconnect::Session);
        }
    }
}

/// Write all of `out` and flush, checking every count `write` returns (`embedded_io`'s own
/// `write_all` panics on `Ok(0)` and on a count larger than the buffer). Returns the bytes
/// written and how the connection ends, if it does.
fn write_all<W: Write>(conn: &mut W, out: &[u8]) -> (usize, Result<(), Disconnect>) {
    let mut pos = 0;
    while let Some(rest) = out.get(pos..).filter(|r| !r.is_empty()) {
        let n = conn
            .write(rest)
            .map_or(Err(Disconnect::WriteFailed), |n| check_write(n, rest.len()));
        match n {
            Ok(n) => pos += n,
            Err(why) => return (pos, Err(why)),
        }
    }
    let flushed = conn.flush().map_err(|_| Disconnect::WriteFailed);
    (pos, flushed)
}
