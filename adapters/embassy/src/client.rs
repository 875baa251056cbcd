//! The application's side: a [`Client`] shared by reference between the application's tasks
//! and the one task that runs its [`Driver`](crate::Driver).
//!
//! Commands only queue work in the session (the sans-IO core writes nothing itself) and wake
//! the driver, which does all the I/O. The session sits behind an async mutex of the
//! application's choice of [`RawMutex`]: `NoopRawMutex` when every task runs on one executor,
//! `CriticalSectionRawMutex` when tasks of several executors or priorities share the client.
//! The lock is never held across an `.await`.

use amps_core::codec::Command;
use amps_core::session::{
    CommandError, CommandId, ConfigError, Exec, HeartbeatConfig, PublishError, Session, State,
    Storage,
};
use amps_core::{Duration, Instant};
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::mutex::{Mutex, MutexGuard};
use embassy_sync::signal::Signal;

use crate::clock::Clock;
use crate::disconnect::Disconnect;

/// Where the transport is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Link {
    /// No connection (waiting for the session to ask for one, or backing off).
    Idle,
    /// The connect function is running.
    Connecting,
    /// Open: the session talks over it.
    Open,
}

/// Counters about the transport (for diagnostics and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Connect attempts started.
    pub connects: u32,
    /// Attempts that failed or timed out.
    pub connect_failures: u32,
    /// Open connections that ended (peer close, error, heartbeat silence, user close).
    pub disconnects: u32,
    /// Bytes handed to the session.
    pub bytes_in: u64,
    /// Bytes written to the transport.
    pub bytes_out: u64,
    /// Why the last open connection ended (`None` before the first one ended).
    pub last_disconnect: Option<Disconnect>,
}

/// What the driver and the commands share under the mutex.
pub(crate) struct Inner<S: Storage> {
    pub(crate) session: Session<S>,
    /// The next close the session asks for was requested by the application (FIN, not reset).
    pub(crate) graceful: bool,
    pub(crate) link: Link,
    pub(crate) stats: Stats,
}

/// An AMPS client whose I/O runs in a [`Driver`](crate::Driver) task.
///
/// Put it where every task can borrow it for as long as they run (a `StaticCell` in firmware),
/// hand `&client` to [`Driver::new`](crate::Driver::new) in one task and call commands from any
/// other. Every method takes `&self`.
pub struct Client<M: RawMutex, S: Storage, K: Clock> {
    pub(crate) inner: Mutex<M, Inner<S>>,
    /// Commands were queued: the driver has something to send.
    pub(crate) wake: Signal<M, ()>,
    /// The driver made progress (acks, transmitted bytes, a logon): publishers waiting for
    /// room try again.
    pub(crate) progress: Signal<M, ()>,
    pub(crate) clock: K,
}

impl<M: RawMutex, S: Storage, K: Clock> Client<M, S, K> {
    /// A client for `session`, reading time from `clock`. Nothing happens until
    /// [`Client::connect`] and a running driver.
    pub fn new(session: Session<S>, clock: K) -> Self {
        Client {
            inner: Mutex::new(Inner {
                session,
                graceful: false,
                link: Link::Idle,
                stats: Stats::default(),
            }),
            wake: Signal::new(),
            progress: Signal::new(),
            clock,
        }
    }

    /// The clock.
    pub fn clock(&self) -> &K {
        &self.clock
    }

    async fn locked(&self) -> (MutexGuard<'_, M, Inner<S>>, Instant) {
        let g = self.inner.lock().await;
        (g, self.clock.now())
    }

    /// Run `f` on the session (queries such as `unpersisted_count`, or commands this type does
    /// not wrap: `execute_with`, `ack`, `discard`, ...). Commands queued this way are sent once
    /// the driver is woken: this method wakes it.
    pub async fn with_session<R>(&self, f: impl FnOnce(&mut Session<S>, Instant) -> R) -> R {
        let (mut g, now) = self.locked().await;
        let r = f(&mut g.session, now);
        drop(g);
        self.wake.signal(());
        r
    }

    /// Where the session is.
    pub async fn state(&self) -> State {
        self.inner.lock().await.session.state()
    }

    /// Whether the session is logged on and recovered.
    pub async fn is_ready(&self) -> bool {
        self.state().await == State::Ready
    }

    /// Unpersisted publishes in the store.
    pub async fn unpersisted_count(&self) -> usize {
        self.inner.lock().await.session.unpersisted_count()
    }

    /// Where the transport is.
    pub async fn link(&self) -> Link {
        self.inner.lock().await.link
    }

    /// Transport counters.
    pub async fn stats(&self) -> Stats {
        self.inner.lock().await.stats
    }

    /// Transport counters without waiting; `None` while another task holds the lock.
    pub fn try_stats(&self) -> Option<Stats> {
        self.inner.try_lock().ok().map(|g| g.stats)
    }

    /// Connect and log on, and reconnect after every loss with the session's reconnect policy
    /// (the HA client's `connect_and_logon`). Resumes after [`Client::disconnect`].
    pub async fn connect(&self) {
        let (mut g, now) = self.locked().await;
        g.graceful = false;
        g.session.start(now);
        drop(g);
        self.wake.signal(());
    }

    /// Publish `data` to `topic`. With a publish store in the session the message is numbered
    /// and kept until the server persisted it, across reconnects; the result is its sequence
    /// number. [`PublishError::WindowFull`], [`PublishError::WouldBlock`] and (before the first
    /// logon) [`PublishError::NotConnected`] are backpressure: retry later, or use
    /// [`Client::publish_wait`].
    pub async fn publish(&self, topic: &str, data: &[u8]) -> Result<Option<u64>, PublishError> {
        let (mut g, now) = self.locked().await;
        let r = g.session.publish(now, topic, data);
        drop(g);
        if r.is_ok() {
            self.wake.signal(());
        }
        r
    }

    /// [`Client::publish`], waiting out backpressure: a full publish window or transmit
    /// buffer, or a session that has not logged on yet. Other errors are returned. Meant for
    /// one publishing task; several waiting at once take turns but may wake each other.
    pub async fn publish_wait(
        &self,
        topic: &str,
        data: &[u8],
    ) -> Result<Option<u64>, PublishError> {
        loop {
            // Forget progress reported before this attempt: only progress after a refusal
            // can make room.
            self.progress.reset();
            match self.publish(topic, data).await {
                Err(
                    PublishError::WindowFull
                    | PublishError::WouldBlock
                    | PublishError::NotConnected,
                ) => self.progress.wait().await,
                r => return r,
            }
        }
    }

    /// Subscribe to `topic` with an optional content filter. Deliveries reach the driver's
    /// event handler as `Event::Delivery` with the returned id; with `resubscribe` on in the
    /// session config the subscription is re-entered after every reconnect.
    pub async fn subscribe(
        &self,
        topic: &str,
        filter: Option<&str>,
    ) -> Result<CommandId, CommandError> {
        let mut cmd = Command::subscribe(topic);
        if let Some(f) = filter {
            cmd = cmd.filter(f);
        }
        self.with_session(|s, now| s.execute_with(now, &cmd, Exec { resubscribe: true }))
            .await
    }

    /// Send any command (see [`Session::execute`]).
    pub async fn execute(&self, cmd: &Command<'_>) -> Result<CommandId, CommandError> {
        self.with_session(|s, now| s.execute(now, cmd)).await
    }

    /// Start, change or stop heartbeats.
    pub async fn set_heartbeat(&self, hb: Option<HeartbeatConfig>) -> Result<(), ConfigError> {
        self.with_session(|s, now| s.set_heartbeat(now, hb)).await
    }

    /// Flush and wait for the publish store to drain: the returned command completes
    /// (`Event::Completed`) once every stored publish is persisted, or fails with `TimedOut`.
    pub async fn publish_flush(&self, timeout: Duration) -> Result<CommandId, CommandError> {
        self.with_session(|s, now| s.publish_flush(now, timeout))
            .await
    }

    /// Close the connection and stop reconnecting; [`Client::connect`] resumes. The transport
    /// ends gracefully (see [`Connect::close`](crate::Connect::close)).
    pub async fn disconnect(&self) {
        let (mut g, now) = self.locked().await;
        g.graceful = true;
        g.session.disconnect(now);
        drop(g);
        self.wake.signal(());
    }

    /// Close for good: every pending command fails, nothing reconnects, and the driver's
    /// `run` returns once the transport is closed.
    pub async fn close(&self) {
        let (mut g, now) = self.locked().await;
        g.graceful = true;
        g.session.close(now);
        drop(g);
        self.wake.signal(());
    }
}
