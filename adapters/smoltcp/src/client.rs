//! The client: one amps-core [`Session`] bound to one smoltcp TCP socket.
//!
//! This file holds the type, its construction from [`Options`] (`options.rs`) and the user
//! commands (which only queue work in the session); the I/O half, [`Client::poll`], is in
//! `drive.rs`.

use amps_core::codec::Command;
use amps_core::session::{
    CommandError, CommandId, Exec, HeartbeatConfig, PublishError, Session, State, Storage,
};
use smoltcp::iface::SocketHandle;
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::IpEndpoint;

use crate::failover::Rotation;
use crate::options::{DYNAMIC_PORTS, Options, Server};
use crate::time::{duration_to_core, to_core};

/// Where the TCP connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// No connection (waiting for the session to ask for one).
    Idle,
    /// SYN sent, waiting for the handshake.
    Connecting,
    /// Established: the session talks over it.
    Open,
}

/// Counters about the transport (for diagnostics and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connect attempts started.
    pub connects: u32,
    /// Attempts that did not reach Established (refused, timed out, no route).
    pub connect_failures: u32,
    /// Established connections that ended (peer close, reset, heartbeat silence, user close).
    pub disconnects: u32,
    /// Moves to the next server ([`Options::failover`]): after a failed connection attempt
    /// or a connection that ended before its logon succeeded. Always 0 with one server.
    pub failovers: u32,
    /// Bytes handed to the session.
    pub bytes_in: u64,
    /// Bytes written into the socket.
    pub bytes_out: u64,
}

/// An AMPS client over a smoltcp TCP socket, driven from the application's poll loop.
///
/// The application owns the interface, the socket set and the socket's buffers; the client
/// holds the socket's handle and the session (which holds its own caller-provided buffers, see
/// [`amps_core::session::FixedStorage`]). See the crate docs for the loop.
pub struct Client<'a, S: Storage> {
    pub(crate) session: Session<S>,
    pub(crate) socket: SocketHandle,
    pub(crate) opts: Options<'a>,
    pub(crate) link: Link,
    pub(crate) next_port: u16,
    /// The next close the session asks for was requested by the application: end with FIN
    /// (after what the socket still holds) instead of a reset.
    pub(crate) graceful: bool,
    pub(crate) stats: Stats,
    /// Which server, and how the current connection is doing (failover).
    pub(crate) rotation: Rotation,
}

impl<'a, S: Storage> Client<'a, S> {
    /// A client for `session` over the socket `socket` (a `tcp::Socket` in the application's
    /// socket set, with buffers the application chose). Nothing happens until
    /// [`Client::connect`] and [`Client::poll`].
    pub fn new(session: Session<S>, socket: SocketHandle, opts: Options<'a>) -> Self {
        Client {
            session,
            socket,
            next_port: opts.first_local_port.max(1),
            opts,
            link: Link::Idle,
            graceful: false,
            stats: Stats::default(),
            rotation: Rotation::new(),
        }
    }

    /// The session (state, publish store, counters).
    pub fn session(&self) -> &Session<S> {
        &self.session
    }

    /// The session, for commands this type does not wrap (`execute_with`, `ack`, `discard`,
    /// ...). Drive it only through [`Client::poll`].
    pub fn session_mut(&mut self) -> &mut Session<S> {
        &mut self.session
    }

    /// The socket this client uses.
    pub fn socket(&self) -> SocketHandle {
        self.socket
    }

    /// Where the TCP connection is.
    pub fn link(&self) -> Link {
        self.link
    }

    /// Transport counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The server the client is connected to, or will try next: its index (0 for
    /// [`Options::server`], `i + 1` for `Options::failover[i]`) and its address.
    pub fn current_server(&self) -> (usize, IpEndpoint) {
        let i = self.rotation.current(self.server_count());
        (i, self.server_at(i).endpoint)
    }

    /// How many servers the client rotates through (1 + the failover list).
    pub fn server_count(&self) -> usize {
        self.opts.failover.len().saturating_add(1)
    }

    /// Server `i` of the rotation (0: [`Options::server`]); an index past the end names
    /// server 0.
    pub(crate) fn server_at(&self, i: usize) -> Server<'a> {
        match i.checked_sub(1).and_then(|j| self.opts.failover.get(j)) {
            Some(s) => *s,
            None => Server {
                endpoint: self.opts.server,
                logon: self.opts.logon,
            },
        }
    }

    /// The server to connect to now.
    pub(crate) fn current(&self) -> Server<'a> {
        self.server_at(self.rotation.current(self.server_count()))
    }

    /// Whether the session is logged on and recovered.
    pub fn is_ready(&self) -> bool {
        self.session.state() == State::Ready
    }

    /// Connect and log on at the next [`Client::poll`] (Python client: `connect` + `logon`; with a
    /// reconnect policy, the HA client's `connect_and_logon`: losses are recovered by itself).
    /// With [`Options::failover`] the attempt goes to [`Client::current_server`]; servers
    /// that refused their logon may be tried again.
    pub fn connect(&mut self, now: Instant) {
        self.graceful = false;
        self.rotation.reset_refusals();
        self.session.start(to_core(now));
    }

    /// Answer a server's challenge ([`amps_core::session::Event::LogonRetry`], docs/protocol.md,
    /// section 8.2) after [`Client::poll`] returned: log on again on the same connection with
    /// `password` (the token or credential the challenge asks for), as `user_id` or the current
    /// server's user. Use this rather than [`Session::handle_logon_retry`] so that failover
    /// follows the answer's outcome (a refused answer moves to the next server at once).
    pub fn answer_logon_retry(
        &mut self,
        now: Instant,
        user_id: Option<&str>,
        password: &str,
    ) -> Result<CommandId, CommandError> {
        let id = self
            .session
            .handle_logon_retry(to_core(now), user_id, password)?;
        self.rotation.logging_on(id);
        Ok(id)
    }

    /// Publish `data` to `topic` (docs/protocol.md §6.2). With a publish store in the session the
    /// message is numbered and kept until persisted, also across reconnects; the result is its
    /// sequence number. [`PublishError::WindowFull`] and [`PublishError::WouldBlock`] are
    /// backpressure: poll, then retry.
    pub fn publish(
        &mut self,
        now: Instant,
        topic: &str,
        data: &[u8],
    ) -> Result<Option<u64>, PublishError> {
        self.session.publish(to_core(now), topic, data)
    }

    /// Subscribe to `topic` with an optional content filter (docs/protocol.md §6.4). Deliveries
    /// arrive as `Event::Delivery` with the returned id; with `resubscribe` on in the session
    /// config the subscription is re-entered after every reconnect.
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
            .execute_with(to_core(now), &cmd, Exec { resubscribe: true })
    }

    /// Send any command (see [`Session::execute`]).
    pub fn execute(&mut self, now: Instant, cmd: &Command<'_>) -> Result<CommandId, CommandError> {
        self.session.execute(to_core(now), cmd)
    }

    /// Start, change or stop heartbeats (docs/protocol.md §9; Python client: `set_heartbeat`).
    pub fn set_heartbeat(
        &mut self,
        now: Instant,
        hb: Option<HeartbeatConfig>,
    ) -> Result<(), amps_core::session::ConfigError> {
        self.session.set_heartbeat(to_core(now), hb)
    }

    /// Flush and wait for the publish store to drain (Python client: `publish_flush(timeout)`): the
    /// returned command completes (`Event::Completed`) once every stored publish is persisted,
    /// or fails with `TimedOut`.
    pub fn publish_flush(
        &mut self,
        now: Instant,
        timeout: Duration,
    ) -> Result<CommandId, CommandError> {
        self.session
            .publish_flush(to_core(now), duration_to_core(timeout))
    }

    /// Close the connection and stop reconnecting (Python client: `disconnect()`);
    /// [`Client::connect`] resumes. The socket ends with FIN after what it already holds.
    pub fn disconnect(&mut self, now: Instant) {
        self.graceful = true;
        self.session.disconnect(to_core(now));
    }

    /// Close for good (Python client: `close()`): every pending command fails and nothing
    /// reconnects. The socket ends with FIN after what it already holds; keep polling until
    /// [`Client::link`] is [`Link::Idle`] if the FIN must go out.
    pub fn close(&mut self, now: Instant) {
        self.graceful = true;
        self.session.close(to_core(now));
    }

    /// The local port for the next connection (cycling through the dynamic range).
    pub(crate) fn take_port(&mut self) -> u16 {
        let p = self.next_port;
        self.next_port = if p == u16::MAX { DYNAMIC_PORTS } else { p + 1 };
        p
    }
}
