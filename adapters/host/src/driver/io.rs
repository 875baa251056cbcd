//! The transport side of the driver: bytes in (copied, or read straight into the session's
//! receive buffer), bytes out from the session's transmit buffer, and the end of a connection.

use std::collections::VecDeque;
use std::sync::Arc;

use amps_core::session::TransportClosed;

use super::{Blocked, Driver, Out};
use crate::dispatch;
use crate::error::{Error, ErrorKind};
use crate::net::{Direction, TransportFilter};

impl Driver {
    /// Whether input may be offered now (a transport is open). While outputs wait for a full
    /// stream or handler queue the session still takes bytes into its receive buffer (so the
    /// connection's liveness is seen) but no events are taken; once the buffer is full,
    /// [`Driver::handle_input`] takes nothing (and [`Driver::input_buffer`] is empty) until
    /// room is made.
    pub fn wants_input(&self) -> bool {
        self.st.open
    }

    /// Give bytes read from the transport to the session; returns how many it took (fewer
    /// while outputs wait for room: offer the rest later, nothing is lost).
    pub fn handle_input(&mut self, bytes: &[u8]) -> usize {
        if !self.st.open {
            // From a connection that is already closed.
            return bytes.len();
        }
        let now = self.now();
        let mut taken = 0;
        while taken < bytes.len() {
            let Some(rest) = bytes.get(taken..) else {
                break;
            };
            let stalled = !self.st.out.is_empty();
            match self.session.handle_bytes(now, rest) {
                Ok(0) if stalled => break,
                Ok(0) => {
                    if !self.drain_for_room(now) {
                        return bytes.len();
                    }
                }
                Ok(n) => {
                    if let Some(f) = &self.st.transport_filter {
                        let seen = bytes.get(taken..taken + n).unwrap_or(&[]);
                        filter(f, Direction::Incoming, seen, &mut self.st.out);
                    }
                    taken += n;
                    if !stalled {
                        self.drain_events(now);
                    }
                }
                // The session ended the connection: the rest is moot.
                Err(_) => return bytes.len(),
            }
        }
        self.report_progress();
        taken
    }

    /// Where to read the transport's next bytes: the free end of the session's own receive
    /// buffer, so that bytes go from the socket to the session with no copy in between (the
    /// alternative to reading into a buffer of one's own and calling [`Driver::handle_input`]).
    /// After reading, report the count with [`Driver::input_received`] before any other call
    /// except [`Driver::handle_written`] and this one (which lends the same buffer again until
    /// then).
    ///
    /// Empty when no transport is open, or while the receive buffer is full because outputs
    /// wait for room in a stream or handler queue: do not read then (a read into an empty
    /// buffer looks like the end of the stream); run [`Driver::step`] when the signal is
    /// raised. A full buffer whose events do not drain (the session can make no progress on
    /// its input) ends the connection with an error instead of spinning.
    pub fn input_buffer(&mut self) -> &mut [u8] {
        if !self.st.open {
            return &mut [];
        }
        while self.session.receive_buffer().is_empty() && self.st.out.is_empty() {
            let now = self.now();
            if !self.drain_for_room(now) {
                self.report_progress();
                return &mut [];
            }
            if !self.st.open {
                return &mut [];
            }
        }
        self.session.receive_buffer()
    }

    /// The session's receive buffer is full and no output waits: drain its events to make
    /// room. False when nothing drained: an input the session cannot make progress on, so the
    /// connection ends with an error instead of spinning.
    fn drain_for_room(&mut self, now: amps_core::Instant) -> bool {
        if self.drain_events(now) > 0 {
            return true;
        }
        self.st.report(Error::new(
            ErrorKind::Stream,
            "the session accepts no more input",
        ));
        self.close_transport(now, TransportClosed::Error);
        false
    }

    /// The transport wrote `n` bytes at the start of [`Driver::input_buffer`]: the transport
    /// filter sees them, then the session takes them and, unless outputs wait for room, its
    /// events are handled at once. Bytes from a connection that is already closed are dropped.
    pub fn input_received(&mut self, n: usize) {
        if !self.st.open || n == 0 {
            return;
        }
        let now = self.now();
        let stalled = !self.st.out.is_empty();
        if let Some(f) = &self.st.transport_filter {
            // The same buffer as lent (lending it again moves nothing before `received`).
            let seen = self.session.receive_buffer().get(..n).unwrap_or(&[]);
            filter(f, Direction::Incoming, seen, &mut self.st.out);
        }
        // An error: the session already ended the connection, the bytes are moot.
        if self.session.received(now, n).is_ok() && !stalled {
            self.drain_events(now);
        }
        self.report_progress();
    }

    /// Bytes to write to the transport now (empty when there is nothing to send), straight
    /// from the session's transmit buffer: no copy. Call [`Driver::handle_written`] with how
    /// many the transport took.
    pub fn output(&mut self) -> &[u8] {
        if !self.st.open {
            return &[];
        }
        let now = self.now();
        let out = self.session.transmit_buffer(now);
        if self.st.filtered > out.len() {
            // Fewer bytes pending than were shown: the session started its buffer afresh (a
            // new connection), so everything in it is new to the filter.
            self.st.filtered = 0;
        }
        if let Some(f) = &self.st.transport_filter
            && let Some(new) = out.get(self.st.filtered..).filter(|b| !b.is_empty())
        {
            filter(f, Direction::Outgoing, new, &mut self.st.out);
            self.st.filtered = out.len();
        }
        out
    }

    /// The transport took `n` bytes of [`Driver::output`].
    pub fn handle_written(&mut self, n: usize) {
        self.session.transmitted(n);
        self.st.filtered = self.st.filtered.saturating_sub(n);
        if self.st.blocked == Some(Blocked::Transmit) {
            self.st.blocked = None;
        }
    }

    /// The transport closed (`None`: by the peer) or failed.
    pub fn handle_closed(&mut self, error: Option<std::io::Error>) {
        if !self.st.open {
            return;
        }
        let now = self.now();
        let cause = if error.is_some() {
            TransportClosed::Error
        } else {
            TransportClosed::PeerClosed
        };
        // A disconnect handler set before this close was seen replaces the automatic
        // reconnect, even when its `StopReconnecting` is still queued behind the close (the
        // handler's slot is filled before that op is sent).
        if self.st.shared.ha && crate::sync::lock(&self.st.shared.listeners.disconnect).is_some() {
            self.session
                .set_reconnect(amps_core::ha::ReconnectPolicy::None);
        }
        self.close_transport(now, cause);
        self.drain_events(now);
    }

    pub(super) fn close_transport(&mut self, now: amps_core::Instant, cause: TransportClosed) {
        self.session.handle_closed(now, cause);
        self.st.close_conn();
    }
}

/// Run the application's transport filter; a panic in it is reported (in order with the
/// outputs), not propagated.
fn filter(f: &Arc<TransportFilter>, dir: Direction, bytes: &[u8], out: &mut VecDeque<Out>) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(dir, bytes)));
    if r.is_err() {
        let e = Error::new(ErrorKind::Unknown, "the transport filter panicked");
        out.push_back(Out::Dispatch(dispatch::Item::Event(
            crate::events::ClientEvent::Error(e),
        )));
    }
}
