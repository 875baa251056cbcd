//! A minimal blocking drive loop for an `amps_core::session::Session` over a `TcpStream`, for
//! the crash tests (the child process, and the tests' own clients). It follows the session's
//! documented call order, including reconnects when the session asks for one; the real host
//! adapters are amps-std and amps-tokio.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use amps_core::Instant;
use amps_core::session::{
    CommandId, ConnectionState, Event, Logon, Session, Storage, TransportClosed,
};

/// An owned copy of the events the crash tests look at.
#[derive(Debug)]
pub(crate) enum Ev {
    /// A message of a subscription.
    Delivery {
        /// The subscription's handle.
        id: CommandId,
        /// `bm`.
        bookmark: String,
        /// The payload.
        data: Vec<u8>,
    },
    /// A connection state.
    State(ConnectionState),
    /// A command failed, or the session reported an error.
    Failed(String),
    /// Anything else.
    Other,
}

/// A session and its socket (none while disconnected).
pub(crate) struct Conn<S: Storage> {
    /// The session, for commands.
    pub(crate) session: Session<S>,
    addr: SocketAddr,
    stream: Option<TcpStream>,
    epoch: StdInstant,
    rbuf: Vec<u8>,
    tbuf: Vec<u8>,
    blocking: bool,
}

fn other(e: impl std::fmt::Debug) -> io::Error {
    io::Error::other(format!("{e:?}"))
}

impl<S: Storage> Conn<S> {
    /// Connect to `addr` and send the logon.
    pub(crate) fn connect(addr: SocketAddr, mut session: Session<S>) -> io::Result<Conn<S>> {
        session.start(Instant::from_micros(0));
        let mut conn = Conn {
            session,
            addr,
            stream: None,
            epoch: StdInstant::now(),
            rbuf: vec![0; 64 * 1024],
            tbuf: vec![0; 64 * 1024],
            blocking: true,
        };
        conn.open_if_asked()?;
        if conn.stream.is_none() {
            return Err(io::Error::other("session did not ask for a connection"));
        }
        Ok(conn)
    }

    /// The session's clock: microseconds since `connect`.
    pub(crate) fn now(&self) -> Instant {
        Instant::from_micros(u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    /// Whether a transport is open.
    pub(crate) fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    fn open_if_asked(&mut self) -> io::Result<()> {
        let now = self.now();
        if self.stream.is_some() || self.session.poll_connect(now).is_none() {
            return Ok(());
        }
        match TcpStream::connect(self.addr) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                self.blocking = true;
                self.stream = Some(stream);
                let logon = Logon {
                    message_type: Some("json"),
                    ..Logon::default()
                };
                self.session.handle_connected(now, &logon).map_err(other)?;
            }
            Err(_) => self.session.handle_connect_failed(now),
        }
        Ok(())
    }

    /// Open a transport if the session asks for one, drain events, send what is queued, wait
    /// up to `wait` for input (less if a session timer is due sooner), feed it, fire due
    /// timers. Returns the events seen.
    pub(crate) fn pump(&mut self, wait: StdDuration) -> io::Result<Vec<Ev>> {
        let mut out = Vec::new();
        self.open_if_asked()?;
        self.drain(&mut out);
        self.flush()?;
        let now = self.now();
        let mut wait = wait;
        if let Some(t) = self.session.poll_timeout() {
            let until = t.saturating_duration_since(now).as_micros();
            wait = wait.min(StdDuration::from_micros(until));
        }
        match self.read(wait)? {
            Some(0) => {
                self.stream = None;
                self.session
                    .handle_closed(self.now(), TransportClosed::PeerClosed);
            }
            Some(n) => self.feed(n, &mut out)?,
            // Disconnected: the session's next timer (a reconnect) is the only thing to wait for.
            None if self.stream.is_none() => std::thread::sleep(wait),
            None => {}
        }
        let now = self.now();
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
        self.drain(&mut out);
        self.flush()?;
        Ok(out)
    }

    fn feed(&mut self, n: usize, out: &mut Vec<Ev>) -> io::Result<()> {
        let mut off = 0;
        let mut stuck = 0;
        while off < n {
            let now = self.now();
            let input = self.rbuf.get(off..n).unwrap_or(&[]);
            let k = self.session.handle_bytes(now, input).map_err(other)?;
            off += k;
            self.drain(out);
            stuck = if k == 0 { stuck + 1 } else { 0 };
            if stuck > 2 {
                return Err(io::Error::other("session took no input"));
            }
        }
        Ok(())
    }

    fn read(&mut self, wait: StdDuration) -> io::Result<Option<usize>> {
        let Some(stream) = &mut self.stream else {
            return Ok(None);
        };
        // A zero wait polls without blocking.
        let blocking = !wait.is_zero();
        if blocking != self.blocking {
            stream.set_nonblocking(!blocking)?;
            self.blocking = blocking;
        }
        if blocking {
            stream.set_read_timeout(Some(wait))?;
        }
        match stream.read(&mut self.rbuf) {
            Ok(n) => Ok(Some(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(None)
            }
            Err(_) => Ok(Some(0)),
        }
    }

    fn drain(&mut self, out: &mut Vec<Ev>) {
        while let Some(e) = self.session.poll_event() {
            out.push(match e {
                Event::Delivery(d) => Ev::Delivery {
                    id: d.id,
                    bookmark: d.bookmark().unwrap_or("").to_string(),
                    data: d.data().to_vec(),
                },
                Event::State(s) => Ev::State(s),
                Event::Failed { error, .. } => Ev::Failed(format!("{error:?}")),
                Event::Error(e) => Ev::Failed(format!("{e:?}")),
                Event::CloseTransport => {
                    // The session ended the connection (e.g. `disconnect`).
                    self.stream = None;
                    Ev::Other
                }
                _ => Ev::Other,
            });
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let now = self.now();
        let Some(stream) = &mut self.stream else {
            return Ok(());
        };
        if !self.blocking {
            stream.set_nonblocking(false)?;
            self.blocking = true;
        }
        while let Some(n) = self.session.poll_transmit(now, &mut self.tbuf) {
            if stream.write_all(self.tbuf.get(..n).unwrap_or(&[])).is_err() {
                // The read side reports the close.
                break;
            }
        }
        Ok(())
    }
}
