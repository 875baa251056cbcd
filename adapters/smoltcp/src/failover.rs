//! Failing over between servers, each with its own logon: the rotation of the host clients'
//! default server chooser (`amps_core::ha::DefaultServerChooser`), without allocation.
//!
//! The servers are numbered: 0 is [`Options::server`](crate::Options::server) with
//! [`Options::logon`](crate::Options::logon), 1.. are the entries of
//! [`Options::failover`](crate::Options::failover). The client stays on a server while it
//! works and moves to the next one (wrapping) when
//!
//! - a connection attempt fails (refused, unaddressable, timed out), or
//! - a connection ends before its logon succeeded (the logon refused, timed out, or the
//!   connection reset during it).
//!
//! A connection lost after a successful logon is retried on the same server first; only a
//! failure of that retry moves on. Attempts are spaced by the session's reconnect policy, with
//! one exception: a refused logon moves on at once (the next server is another server, with
//! its own credentials), as long as fewer logons than there are servers were refused in a
//! row. When every server in turn has refused its logon the client stops, as the core does
//! for a single server (retrying credentials that were refused cannot help), until the
//! application calls [`Client::connect`](crate::Client::connect) again.

use amps_core::session::{CommandError, CommandId, ConnectionState, Event, FailureKind};

/// What the rotation needs to know of a session event. Generic over the command id so the
/// rules can be tested without a session (`CommandId` has no public constructor).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Seen<I> {
    /// `State(LoggedOn)`.
    LoggedOn,
    /// `State(Disconnected)`.
    Disconnected,
    /// `Failed` of a command.
    Failed(I, CommandError),
    /// Anything else.
    Other,
}

impl Seen<CommandId> {
    pub(crate) fn of(ev: &Event<'_>) -> Self {
        match ev {
            Event::State(ConnectionState::LoggedOn) => Seen::LoggedOn,
            Event::State(ConnectionState::Disconnected) => Seen::Disconnected,
            Event::Failed { id, error } => Seen::Failed(*id, *error),
            _ => Seen::Other,
        }
    }
}

/// Where the current connection is, as far as failover is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No connection.
    Down,
    /// Connected, the logon not answered yet.
    LoggingOn,
    /// Logged on.
    Up,
}

/// The rotation's state: which server, and what the current connection has achieved.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rotation<I = CommandId> {
    current: usize,
    phase: Phase,
    /// The logon whose failure event is still to come (it can follow the `Disconnected`).
    logon: Option<I>,
    /// Logons refused in a row (any other outcome resets it).
    refusals: usize,
    /// A refused logon asks for an immediate attempt on the next server.
    restart: bool,
}

impl<I: Copy + PartialEq> Rotation<I> {
    pub(crate) const fn new() -> Self {
        Rotation {
            current: 0,
            phase: Phase::Down,
            logon: None,
            refusals: 0,
            restart: false,
        }
    }

    /// The server to connect to, of `count`.
    pub(crate) fn current(&self, count: usize) -> usize {
        self.current % count.max(1)
    }

    /// A connection attempt failed. Returns whether the client moved to another server.
    pub(crate) fn connect_failed(&mut self, count: usize) -> bool {
        self.refusals = 0;
        self.phase = Phase::Down;
        self.advance(count)
    }

    /// The connection is open and the logon `id` was sent.
    pub(crate) fn logging_on(&mut self, id: I) {
        self.phase = Phase::LoggingOn;
        self.logon = Some(id);
    }

    /// Follow the session's event `ev` (before the application sees it). `user_closing`: the
    /// application asked for the disconnect, which is no failure of the server. Returns
    /// whether the client moved to another server.
    pub(crate) fn observe(&mut self, ev: Seen<I>, count: usize, user_closing: bool) -> bool {
        match ev {
            Seen::LoggedOn => {
                self.phase = Phase::Up;
                self.logon = None;
                self.refusals = 0;
                false
            }
            Seen::Disconnected => self.ended(count, user_closing),
            Seen::Failed(id, error) if self.logon == Some(id) => {
                self.logon = None;
                if is_refusal(&error) {
                    self.refusals = self.refusals.saturating_add(1);
                    self.restart = !user_closing && self.refusals < count;
                } else {
                    self.refusals = 0;
                }
                self.ended(count, user_closing)
            }
            _ => false,
        }
    }

    /// The connection ended (or its logon failed): before the logon succeeded it counts
    /// against the server.
    fn ended(&mut self, count: usize, user_closing: bool) -> bool {
        let before_logon = self.phase == Phase::LoggingOn;
        self.phase = Phase::Down;
        before_logon && !user_closing && self.advance(count)
    }

    /// Whether a refused logon asked for an immediate attempt on the next server (once).
    pub(crate) fn take_restart(&mut self) -> bool {
        core::mem::take(&mut self.restart)
    }

    /// The application starts over ([`crate::Client::connect`]): every server may be tried
    /// again, refused or not.
    pub(crate) fn reset_refusals(&mut self) {
        self.refusals = 0;
        self.restart = false;
    }

    fn advance(&mut self, count: usize) -> bool {
        if count < 2 {
            return false;
        }
        self.current = (self.current(count) + 1) % count;
        true
    }
}

/// A refusal of the credentials (docs/protocol.md, section 8.2): the core stops reconnecting
/// after one.
fn is_refusal(e: &CommandError) -> bool {
    matches!(
        e,
        CommandError::Failed {
            kind: FailureKind::Authentication | FailureKind::NameInUse | FailureKind::NotEntitled,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use amps_core::session::ReasonText;

    fn refused(id: u32) -> Seen<u32> {
        Seen::Failed(
            id,
            CommandError::Failed {
                kind: FailureKind::Authentication,
                reason: ReasonText::new("authentication failed"),
            },
        )
    }

    #[test]
    fn connect_failures_rotate_and_wrap() {
        let mut r = Rotation::<u32>::new();
        assert_eq!(r.current(3), 0);
        assert!(r.connect_failed(3));
        assert!(r.connect_failed(3));
        assert_eq!(r.current(3), 2);
        assert!(r.connect_failed(3));
        assert_eq!(r.current(3), 0, "wraps to the first server");
        // One server: nowhere to move.
        assert!(!r.connect_failed(1));
        assert_eq!(r.current(1), 0);
    }

    #[test]
    fn a_loss_after_logon_stays_a_loss_before_it_moves() {
        let mut r = Rotation::<u32>::new();
        r.logging_on(1);
        assert!(!r.observe(Seen::LoggedOn, 2, false));
        assert!(!r.observe(Seen::Disconnected, 2, false));
        assert_eq!(r.current(2), 0, "retried on the same server");

        r.logging_on(2);
        assert!(r.observe(Seen::Disconnected, 2, false));
        assert_eq!(r.current(2), 1);
        // The logon's own failure after the `Disconnected` does not move it twice.
        assert!(!r.observe(Seen::Failed(2, CommandError::Disconnected), 2, false));
        assert_eq!(r.current(2), 1);
        assert!(!r.take_restart(), "only a refusal moves on at once");
        // Other commands' failures are not the logon's.
        r.logging_on(3);
        assert!(!r.observe(Seen::Failed(7, CommandError::TimedOut), 2, false));
        assert!(!r.observe(Seen::Other, 2, false));
        assert_eq!(r.current(2), 1);
    }

    #[test]
    fn refusals_move_on_at_once_until_every_server_refused() {
        let mut r = Rotation::<u32>::new();
        r.logging_on(1);
        assert!(r.observe(refused(1), 2, false));
        assert!(!r.observe(Seen::Disconnected, 2, false));
        assert_eq!(r.current(2), 1);
        assert!(r.take_restart());
        assert!(!r.take_restart(), "once");

        r.logging_on(2);
        assert!(r.observe(refused(2), 2, false));
        assert_eq!(r.current(2), 0);
        assert!(!r.take_restart(), "both servers refused in a row: stop");

        // Starting over clears the count.
        r.reset_refusals();
        r.logging_on(3);
        assert!(r.observe(refused(3), 2, false));
        assert!(r.take_restart());
    }

    #[test]
    fn other_outcomes_reset_the_refusal_count() {
        let mut r = Rotation::<u32>::new();
        r.logging_on(1);
        r.observe(refused(1), 2, false);
        assert!(r.take_restart());
        // The second server is unreachable: the first may be tried (and refuse) once more.
        r.connect_failed(2);
        r.logging_on(2);
        r.observe(refused(2), 2, false);
        assert!(r.take_restart());
        // A success clears the count too.
        r.logging_on(3);
        r.observe(Seen::LoggedOn, 2, false);
        r.observe(Seen::Disconnected, 2, false);
        r.logging_on(4);
        r.observe(refused(4), 2, false);
        assert!(r.take_restart());
    }

    #[test]
    fn the_application_closing_is_no_failure_of_the_server() {
        let mut r = Rotation::<u32>::new();
        r.logging_on(1);
        assert!(!r.observe(Seen::Disconnected, 2, true));
        assert_eq!(r.current(2), 0);
        r.logging_on(2);
        assert!(!r.observe(refused(2), 2, true));
        assert!(!r.take_restart());
        assert_eq!(r.current(2), 0);
    }
}
