//! The I/O half of [`Client`]: one [`Client::poll`] moves bytes between the socket and the
//! session, acts on the session's requests (connect, close) and hands events to the
//! application, in the order the core requires (core/src/session/mod.rs: input, then
//! `poll_event`, then `poll_transmit`).

use amps_core::session::{Event, State, Storage, TransportClosed};
use smoltcp::iface::{Interface, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::{Duration, Instant};

use crate::client::{Client, Link};
use crate::failover::Seen;
use crate::log;
use crate::time::{earliest, to_core, to_net};

/// Rounds of receive (or transmit) per poll. Each round moves one contiguous chunk of the
/// socket buffer, so a handful empties it; the bound keeps every poll's work bounded even if
/// the application's event handler is slow to make room. [`Client::poll_at`] reports leftover
/// input as due now.
const MAX_ROUNDS: usize = 16;

impl<S: Storage> Client<'_, S> {
    /// Do everything that is due at `now`: fire session timers (heartbeats, reconnect
    /// backoff, command timeouts), follow the TCP connection (connect, established, closed),
    /// feed received bytes to the session, hand every event to `on_event`, and write what the
    /// session has to send. Call it after every `Interface::poll` and after queuing commands.
    ///
    /// `on_event` sees every [`Event`]; [`Event::CloseTransport`] has already been acted on
    /// (the socket is closed). Events borrow the session's buffers, so copy what must outlive
    /// the call. Returns whether anything happened (bytes moved, events, link changes).
    pub fn poll<F>(
        &mut self,
        now: Instant,
        iface: &mut Interface,
        sockets: &mut SocketSet<'_>,
        mut on_event: F,
    ) -> bool
    where
        F: FnMut(Event<'_>),
    {
        let t = to_core(now);
        let mut progress = false;
        if self.session.poll_timeout().is_some_and(|d| d <= t) {
            self.session.handle_timeout(t);
        }
        progress |= self.drain(sockets, &mut on_event);
        progress |= self.follow_link(now, sockets, &mut on_event);
        if self.link == Link::Open {
            progress |= self.receive(now, sockets, &mut on_event);
        }
        self.reconcile(sockets);
        // A refused logon moved to the next server, which is tried at once (the session
        // halted after the refusal; only a session that reconnects by itself is restarted).
        if self.rotation.take_restart()
            && !self.graceful
            && self.session.reconnect_policy().reconnects()
            && self.session.state() == State::Disconnected
        {
            self.session.start(t);
        }
        if self.link == Link::Idle
            && let Some(req) = self.session.poll_connect(t)
        {
            let _ = req;
            self.start_connect(now, iface, sockets);
            progress = true;
        }
        if self.link == Link::Open {
            progress |= self.transmit(now, sockets);
            // Transmitting can finish a recovery step (publish replayed, resubscribed).
            progress |= self.drain(sockets, &mut on_event);
        }
        progress
    }

    /// When [`Client::poll`] has work next: now if input is left in the socket or output can
    /// be written, else the session's earliest timer (heartbeat, backoff, timeouts). Combine
    /// it with `Interface::poll_at`, or use [`Client::poll_delay`].
    pub fn poll_at(&self, now: Instant, sockets: &SocketSet<'_>) -> Option<Instant> {
        let sock = sockets.get::<tcp::Socket>(self.socket);
        let busy = match self.link {
            Link::Open => {
                sock.can_recv()
                    || !sock.may_recv()
                    || (self.session.pending_transmit() > 0 && sock.can_send())
            }
            // The handshake's outcome shows in the socket state after `Interface::poll`.
            Link::Connecting => sock.may_send() || !sock.is_open(),
            Link::Idle => false,
        };
        if busy {
            return Some(now);
        }
        self.session.poll_timeout().map(to_net)
    }

    /// How long the application may sleep before polling the interface and this client
    /// again: the earlier of `Interface::poll_delay` and [`Client::poll_at`]. `None` means
    /// until the next packet or command.
    pub fn poll_delay(
        &self,
        now: Instant,
        iface: &mut Interface,
        sockets: &SocketSet<'_>,
    ) -> Option<Duration> {
        earliest(iface.poll_at(now, sockets), self.poll_at(now, sockets))
            .map(|at| if at > now { at - now } else { Duration::ZERO })
    }

    /// Hand every queued event to `on_event`, acting on `CloseTransport` first and following
    /// the logon's outcome for failover.
    fn drain<F: FnMut(Event<'_>)>(
        &mut self,
        sockets: &mut SocketSet<'_>,
        on_event: &mut F,
    ) -> bool {
        let mut any = false;
        let count = self.server_count();
        while let Some(ev) = self.session.poll_event() {
            any = true;
            if self.rotation.observe(Seen::of(&ev), count, self.graceful) {
                self.stats.failovers += 1;
                log::warning!(
                    "amps-smoltcp: no logon on this server, failing over to server {}",
                    self.rotation.current(count)
                );
            }
            let close = matches!(ev, Event::CloseTransport);
            on_event(ev);
            if close {
                self.close_socket(sockets, self.graceful);
            }
        }
        any
    }

    /// Notice the handshake finishing or failing, and the peer closing an open connection.
    fn follow_link<F: FnMut(Event<'_>)>(
        &mut self,
        now: Instant,
        sockets: &mut SocketSet<'_>,
        on_event: &mut F,
    ) -> bool {
        let t = to_core(now);
        let sock = sockets.get_mut::<tcp::Socket>(self.socket);
        match self.link {
            Link::Idle => false,
            Link::Connecting if sock.may_send() => {
                log::info!("amps-smoltcp: connected");
                self.link = Link::Open;
                // The logon of the server this connection goes to.
                let logon = self.current().logon;
                match self.session.handle_connected(t, &logon) {
                    Ok(id) => self.rotation.logging_on(id),
                    Err(_) => {
                        // The session is shut down or already connected: it does not want
                        // this connection.
                        sock.abort();
                        self.link = Link::Idle;
                    }
                }
                self.drain(sockets, on_event);
                true
            }
            Link::Connecting if !sock.is_open() => {
                log::warning!("amps-smoltcp: connect failed");
                self.link = Link::Idle;
                self.stats.connect_failures += 1;
                self.connect_failed();
                self.session.handle_connect_failed(t);
                true
            }
            Link::Connecting => false,
            Link::Open if !sock.may_recv() => {
                // Received data is read before this point (receive runs after the previous
                // poll), so nothing is left: the peer sent FIN, or the connection was reset
                // or timed out (state Closed).
                let cause = if sock.state() == tcp::State::Closed {
                    TransportClosed::Error
                } else {
                    TransportClosed::PeerClosed
                };
                log::warning!("amps-smoltcp: connection lost");
                sock.abort();
                self.link = Link::Idle;
                self.stats.disconnects += 1;
                self.session.handle_closed(t, cause);
                // Frames received before the close are still delivered.
                self.drain(sockets, on_event);
                true
            }
            Link::Open => false,
        }
    }

    /// Feed the socket's received bytes to the session; when it pushes back, drain events to
    /// make room (backpressure, never loss).
    fn receive<F: FnMut(Event<'_>)>(
        &mut self,
        now: Instant,
        sockets: &mut SocketSet<'_>,
        on_event: &mut F,
    ) -> bool {
        let t = to_core(now);
        let mut progress = false;
        for _ in 0..MAX_ROUNDS {
            let sock = sockets.get_mut::<tcp::Socket>(self.socket);
            if !sock.can_recv() {
                break;
            }
            let session = &mut self.session;
            let taken = sock.recv(|buf| match session.handle_bytes(t, buf) {
                Ok(n) => (n, Some(n)),
                Err(_) => (0, None),
            });
            let drained = self.drain(sockets, on_event);
            progress |= drained;
            match taken {
                Ok(Some(n)) if n > 0 => {
                    self.stats.bytes_in += n as u64;
                    progress = true;
                }
                // Full receive buffer: draining made room if it did anything.
                Ok(Some(_)) if drained => {}
                // Not accepting input (the session ended the connection) or no room at all.
                _ => break,
            }
            if self.link != Link::Open {
                break;
            }
        }
        progress
    }

    /// Write what the session has to send into the socket's free space.
    fn transmit(&mut self, now: Instant, sockets: &mut SocketSet<'_>) -> bool {
        let t = to_core(now);
        let mut progress = false;
        for _ in 0..MAX_ROUNDS {
            let sock = sockets.get_mut::<tcp::Socket>(self.socket);
            if !sock.can_send() {
                break;
            }
            let session = &mut self.session;
            let n = sock
                .send(|buf| {
                    let n = session.poll_transmit(t, buf).unwrap_or(0);
                    (n, n)
                })
                .unwrap_or(0);
            if n == 0 {
                break;
            }
            self.stats.bytes_out += n as u64;
            progress = true;
        }
        progress
    }

    /// Open a connection for the session's request.
    fn start_connect(&mut self, now: Instant, iface: &mut Interface, sockets: &mut SocketSet<'_>) {
        let port = self.take_port();
        let sock = sockets.get_mut::<tcp::Socket>(self.socket);
        // A socket still closing gracefully (after `disconnect`) is not needed any more.
        if sock.is_open() {
            sock.abort();
        }
        sock.set_timeout(self.opts.tcp_timeout);
        sock.set_nagle_enabled(self.opts.nagle);
        self.stats.connects += 1;
        let server = self.current().endpoint;
        match sock.connect(iface.context(), server, port) {
            Ok(()) => {
                log::info!("amps-smoltcp: connecting from port {}", port);
                self.link = Link::Connecting;
            }
            Err(_) => {
                // No route or address for the server: the attempt failed; the session's policy
                // decides whether and when to try again.
                log::warning!("amps-smoltcp: cannot connect (unaddressable)");
                self.stats.connect_failures += 1;
                self.connect_failed();
                self.session.handle_connect_failed(to_core(now));
            }
        }
    }

    /// A connection attempt failed: the next one goes to the next server.
    fn connect_failed(&mut self) {
        let count = self.server_count();
        if self.rotation.connect_failed(count) {
            self.stats.failovers += 1;
            log::warning!(
                "amps-smoltcp: failing over to server {}",
                self.rotation.current(count)
            );
        }
    }

    /// End the TCP connection: with FIN after the queued data if the application asked,
    /// with a reset otherwise (the session gave up on it: heartbeat silence, bad input).
    fn close_socket(&mut self, sockets: &mut SocketSet<'_>, graceful: bool) {
        let sock = sockets.get_mut::<tcp::Socket>(self.socket);
        if graceful {
            sock.close();
        } else {
            sock.abort();
        }
        if self.link == Link::Open {
            self.stats.disconnects += 1;
        }
        self.link = Link::Idle;
    }

    /// Keep the socket in line with the session when the session moved on without a
    /// `CloseTransport` (e.g. closed while the handshake was still running).
    fn reconcile(&mut self, sockets: &mut SocketSet<'_>) {
        let st = self.session.state();
        let stale = match self.link {
            Link::Connecting => st != State::Connecting,
            Link::Open => matches!(
                st,
                State::Disconnected | State::Shutdown | State::Connecting
            ),
            Link::Idle => false,
        };
        if stale {
            self.close_socket(sockets, self.graceful);
        }
    }
}
