//! The driver: the one owner of a client's [`Session`] and of everything that happens on its
//! connection besides moving bytes. It is runtime-neutral: the blocking client runs it on a
//! thread, the async client in a task, and each only supplies the socket and the waiting.
//!
//! The loop an adapter runs around it (docs/host.md, "The driver loop"):
//!
//! ```text
//! loop {
//!     driver.step()                       commands and publishes from the inbox, timers,
//!                                         session events to streams / handlers / callers
//!     match driver.poll_io()              the transport the driver wants:
//!         Open(req)  -> open it (socket, TLS), then driver.handle_opened(result)
//!         Close      -> drop the socket
//!     bytes read     -> driver.handle_input(&bytes)   (less taken: try again after step)
//!       or read into driver.input_buffer(), then driver.input_received(n)   (no copy)
//!     driver.output() -> write it, then driver.handle_written(n)
//!     closed / failed -> driver.handle_closed(error)
//!     if driver.is_finished() { break }
//!     sleep until the socket, driver.signal() or driver.deadline()
//! }
//! ```
//!
//! Application code never runs here except the transport filter: handlers and listeners run
//! on the dispatch thread, streams are consumed by the application. When a stream or the
//! dispatch queue is full the driver stops taking input from the session (the connection's
//! input waits, TCP pushes back) but keeps sending heartbeats and running commands.

mod connect;
mod events;
mod io;
mod ops;
mod routes;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use amps_core::ha::{Authenticator, ServerChooser};
use amps_core::session::{CommandId, Config, HeapStorage, Parts};
use amps_core::store::{BookmarkStore, PublishStore};

use crate::config::Settings;
use crate::dispatch::{self, DispatchQueue};
use crate::error::{Error, Result};
use crate::inbox::Item;
use crate::net::{TlsConfig, TransportFilter};
use crate::owned::BlockWriter;
use crate::shared::Shared;
use crate::sync::{Reply, Signal};

use routes::{IdMap, Out, Route, Wait};

type Store = HeapStorage<Box<dyn PublishStore + Send>, Box<dyn BookmarkStore + Send>>;
type Session = amps_core::session::Session<Store>;

/// Events handled between deliveries to streams and the dispatch queue.
const EVENT_BATCH: usize = 512;

/// Why the head of the user queue waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Blocked {
    /// The publish store's window is full: until a persisted ack frees room.
    Window,
    /// Not logged on (HA with retry-on-disconnect): until logged on again.
    Offline,
    /// The transmit buffer is full: until the socket takes bytes.
    Transmit,
}

/// What the driver wants done with the transport.
#[derive(Debug)]
pub enum IoRequest {
    /// Open a transport to this server, then report with [`Driver::handle_opened`].
    Open(OpenRequest),
    /// Close the transport (the session already knows); bytes still read from it are moot.
    Close,
}

/// A transport to open.
pub struct OpenRequest {
    /// The connection string (`tcp://`, `tcps://`, `unix://`); may hold credentials, so it is
    /// never shown by `Debug`.
    pub uri: String,
    /// Limit for the whole open, TLS handshake included.
    pub timeout: Duration,
    /// The `tcps` configuration.
    pub tls: TlsConfig,
}

impl std::fmt::Debug for OpenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = amps_core::uri::Uri::parse(&self.uri).map_or_else(
            |_| "<invalid connection string>".to_owned(),
            |u| u.to_string(),
        );
        f.debug_struct("OpenRequest")
            .field("uri", &shown)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The HA client's parts.
struct Ha {
    chooser: Option<Box<dyn ServerChooser + Send>>,
    delay: Box<dyn crate::delay::DelayStrategy>,
    /// A connection up this long resets the delay strategy.
    stability: Duration,
    /// When the current connection logged on.
    up_since: Option<amps_core::Instant>,
    /// `connect_and_logon` callers waiting for a logon.
    waiters: Vec<Reply<()>>,
    /// When the waiters are told `TimedOut` and the client stops trying.
    wait_deadline: Option<amps_core::Instant>,
}

/// The logon in flight.
struct LogonWait {
    id: CommandId,
    reply: Option<Reply<()>>,
    /// The connection string it is for (reported to the server chooser).
    uri: String,
}

/// A plain client's `connect` in progress.
struct Connecting {
    uri: String,
    reply: Reply<()>,
}

/// Everything the driver owns besides the session (split so that events borrowing the
/// session can be handled with the rest mutable).
struct State {
    shared: Arc<Shared>,
    /// The way back to this driver, for the messages it hands out.
    sink: crate::control::Sink,
    dispatch: Arc<DispatchQueue>,
    origin: std::time::Instant,
    tls: TlsConfig,
    timeouts: crate::config::Timeouts,
    transport_filter: Option<Arc<TransportFilter>>,
    authenticator: Box<dyn Authenticator + Send>,
    ha: Option<Ha>,
    /// The heartbeat as set (interval, timeout), for `set_heartbeat` changes.
    heartbeat: Option<(Duration, Duration)>,
    /// A transport is open.
    open: bool,
    /// Connection string of the open (or last) connection.
    uri: Option<String>,
    /// What the adapter must do next with the transport.
    io: Option<IoRequest>,
    /// The transport the adapter is opening, and for whom.
    opening: Option<connect::Opening>,
    user_q: VecDeque<Item>,
    blocked: Option<Blocked>,
    out: VecDeque<Out>,
    /// Copies deliveries into shared blocks (one allocation per block, not per message).
    writer: BlockWriter,
    routes: IdMap<Route>,
    waits: IdMap<Wait>,
    logon: Option<LogonWait>,
    close_waiters: Vec<Reply<()>>,
    /// A plain client reported `Connected` when its transport opened: the session's own
    /// `Connected` event is not reported again.
    skip_connected: bool,
    /// The application asked for the disconnect: no disconnect handler, no reconnect.
    user_disconnect: bool,
    /// `close()` is under way: outputs no longer wait for full streams.
    closing: bool,
    /// Bytes at the front of the session's pending output already shown to the transport
    /// filter (the transport may take them in several writes).
    filtered: usize,
    /// Publish bytes and records processed since the last report to the inbox.
    done_pub: usize,
    done_pub_records: usize,
    /// Publishes refused while not connected, not yet reported.
    dropped_publishes: u64,
    /// The publish store's count and first and last sequence numbers, when not empty.
    unpersisted_range: Option<(usize, u64, u64)>,
    /// The publish store's count as last given to the inbox.
    reported_stored: usize,
    finished: bool,
    shut_down: bool,
}

/// The driver of one client: see the module docs. Built by the client; run by its adapter.
pub struct Driver {
    session: Session,
    st: State,
}

impl Driver {
    /// Build the session from the settings.
    pub(crate) fn new(
        s: Settings,
        shared: Arc<Shared>,
        dispatch: Arc<DispatchQueue>,
    ) -> Result<Driver> {
        let mut c = Config::new(&s.name);
        c.heartbeat = match s.heartbeat {
            Some((interval, timeout)) => Some(heartbeat_config(interval, timeout)?),
            None => None,
        };
        c.logon_timeout = s.timeouts.logon.into();
        c.command_timeout = Some(s.timeouts.command.into());
        if s.ha.is_some() {
            // The driver asks its own delay strategy for each wait.
            c.reconnect = amps_core::ha::ReconnectPolicy::External;
            c.resubscribe = true;
        }
        c.ack_batch_size = s.ack_batch_size;
        c.error_on_publish_gap = s.error_on_publish_gap;
        c.ack_timeout = s.ack_timeout.into();
        c.logon_options = s.logon_options.as_deref();
        c.limits = s.limits;
        c.seed = seed();
        let session = Session::new(
            &c,
            Parts::heap(&c.limits, s.publish_store, s.bookmark_store),
        )?;
        shared.inbox.release(0, 0, session.unpersisted_count());
        Ok(Driver {
            session,
            st: State {
                sink: shared.clone(),
                shared,
                dispatch,
                origin: std::time::Instant::now(),
                tls: s.tls,
                timeouts: s.timeouts,
                transport_filter: s.transport_filter,
                authenticator: s.authenticator,
                ha: s.ha.map(|h| Ha {
                    chooser: h.chooser,
                    delay: h.delay,
                    stability: h.stability,
                    up_since: None,
                    waiters: Vec::new(),
                    wait_deadline: None,
                }),
                heartbeat: s.heartbeat,
                open: false,
                uri: None,
                io: None,
                opening: None,
                user_q: VecDeque::new(),
                blocked: None,
                out: VecDeque::new(),
                writer: BlockWriter::new(BlockWriter::DEFAULT_BLOCK),
                routes: IdMap::default(),
                waits: IdMap::default(),
                logon: None,
                close_waiters: Vec::new(),
                skip_connected: false,
                user_disconnect: false,
                closing: false,
                filtered: 0,
                done_pub: 0,
                done_pub_records: 0,
                dropped_publishes: 0,
                unpersisted_range: None,
                reported_stored: 0,
                finished: false,
                shut_down: false,
            },
        })
    }

    /// The session's clock: microseconds since the driver was built (monotonic).
    fn now(&self) -> amps_core::Instant {
        self.st.now()
    }

    /// What wakes the loop: commands, publishes, room in a full stream or handler queue.
    /// The blocking client sleeps on it, the async client polls it.
    pub fn signal(&self) -> Arc<Signal> {
        self.st.shared.signal.clone()
    }

    /// Run everything that can run now: commands and publishes from the inbox, the session's
    /// timers, and its events to their destinations.
    pub fn step(&mut self) {
        let now = self.now();
        let mut items = VecDeque::new();
        self.st.shared.inbox.take(&mut items);
        self.st.user_q.append(&mut items);
        self.drain_events(now);
        self.process_user(now);
        self.st.report_dropped();
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
        self.ha_deadline(now);
        self.ha_connect(now);
        self.drain_events(now);
        self.report_progress();
        if self.st.finished {
            self.shutdown();
        }
    }

    /// What the driver wants done with the transport, if anything.
    pub fn poll_io(&mut self) -> Option<IoRequest> {
        self.st.io.take()
    }

    /// When the driver must run again at the latest (a session timer), if ever.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        let t = match (self.session.poll_timeout(), self.ha_wait_deadline()) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(self.st.origin + Duration::from_micros(t.as_micros()))
    }

    /// Whether the driver has work it can do without waiting (run [`Driver::step`] again).
    pub fn has_work(&self) -> bool {
        let st = &self.st;
        let user_ready =
            !st.user_q.is_empty() && matches!(st.blocked, None | Some(Blocked::Transmit));
        user_ready || st.io.is_some() || st.shared.inbox.has_items() || st.finished
    }

    /// The client is closed and the driver's work is done: end the loop.
    pub fn is_finished(&self) -> bool {
        self.st.shut_down
    }

    /// Mirror the publish store's count for the handles, and what it holds for a
    /// `publish_flush` timeout.
    fn mirror_store(&mut self) {
        self.report_store(0, 0);
    }

    /// Tell the inbox that `records` publishes of `bytes` bytes left it, and what the publish
    /// store now holds, in one step; remember the store's range for a `publish_flush` timeout.
    fn report_store(&mut self, bytes: usize, records: usize) {
        let n = self.session.unpersisted_count();
        if bytes == 0 && records == 0 && n == self.st.reported_stored {
            // Nothing moved (most input batches of a subscriber): no lock, no store walk.
            return;
        }
        self.st.reported_stored = n;
        self.st.shared.inbox.release(bytes, records, n);
        self.st.unpersisted_range = if n == 0 {
            None
        } else {
            let last = amps_core::store::PublishStore::last_seq(self.session.publish_store());
            amps_core::store::PublishStore::next_after(self.session.publish_store_mut(), 0)
                .map(|(first, _)| (n, first, last))
        };
    }

    /// Tell the inbox and the handles how far the driver got.
    fn report_progress(&mut self) {
        let st = &mut self.st;
        let (bytes, records) = (
            std::mem::take(&mut st.done_pub),
            std::mem::take(&mut st.done_pub_records),
        );
        self.report_store(bytes, records);
    }

    /// After `close()` (or when dropped): answer every caller still waiting and stop the
    /// dispatch thread.
    fn shutdown(&mut self) {
        if self.st.shut_down {
            return;
        }
        self.st.shut_down = true;
        let now = self.now();
        if self.session.state() != amps_core::session::State::Shutdown {
            self.session.close(now);
            self.drain_events(now);
        }
        // What the stores hold must survive the process (file stores: fsync now); then they
        // are closed (a file store's lock released) before `close()` returns.
        if let Err(e) = self.sync_stores(false) {
            self.st.report(e);
        }
        *self.session.publish_store_mut() = Box::new(amps_core::store::NoPublishStore);
        *self.session.bookmark_store_mut() = Box::new(amps_core::store::NoBookmarkStore);
        let err = Error::closed();
        for item in self.st.shared.inbox.close() {
            if let Item::Op(op) = item {
                op.fail(&err);
            }
        }
        for item in self.st.user_q.drain(..) {
            if let Item::Op(op) = item {
                op.fail(&err);
            }
        }
        self.st.shutdown_outputs();
        if let Some(connect::Opening::Plain(c)) = self.st.opening.take() {
            let _ = c.reply.send(Err(err.clone()));
        }
        if let Some(l) = self.st.logon.take()
            && let Some(r) = l.reply
        {
            let _ = r.send(Err(err.clone()));
        }
        if let Some(ha) = self.st.ha.as_mut() {
            for r in ha.waiters.drain(..) {
                let _ = r.send(Err(err.clone()));
            }
        }
        self.st.shared.set_status(crate::shared::Status::Closed);
        self.st.close_conn();
        self.st
            .dispatch
            .stop(std::time::Instant::now() + self.st.timeouts.close);
        for r in self.st.close_waiters.drain(..) {
            let _ = r.send(Ok(()));
        }
    }

    /// The bookmark store's resume point for `sub_id` (empty: none).
    fn most_recent(&mut self, sub_id: &str) -> Result<String> {
        let mut buf = [0u8; amps_core::store::MAX_RESUME_POINT];
        let recent = self
            .session
            .bookmark_store_mut()
            .most_recent(sub_id, &mut buf)?;
        Ok(recent.to_owned())
    }

    /// Sync both stores (file stores: fsync) and optionally prune the bookmark store.
    fn sync_stores(&mut self, prune: bool) -> Result<()> {
        self.session.publish_store_mut().sync()?;
        let bookmarks = self.session.bookmark_store_mut();
        bookmarks.sync()?;
        if prune {
            bookmarks.prune()?;
        }
        Ok(())
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("client", &self.st.shared.name)
            .field("state", &self.session.state())
            .finish_non_exhaustive()
    }
}

impl State {
    fn now(&self) -> amps_core::Instant {
        let us = self.origin.elapsed().as_micros();
        amps_core::Instant::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
    }

    /// The authenticator for the current server: the HA chooser's own for it, else the
    /// client's.
    fn authenticator(&mut self) -> &mut dyn Authenticator {
        let from_chooser = self
            .ha
            .as_mut()
            .and_then(|h| h.chooser.as_mut())
            .and_then(|c| c.current_authenticator());
        match from_chooser {
            Some(a) => a,
            None => &mut *self.authenticator,
        }
    }

    /// Report a problem to the exception listener and the event receivers (through the
    /// dispatch thread, in order with everything else).
    fn report(&mut self, e: Error) {
        self.out.push_back(Out::Dispatch(dispatch::Item::Event(
            crate::events::ClientEvent::Error(e),
        )));
    }

    /// Report publishes dropped since the last report, once for the lot.
    fn report_dropped(&mut self) {
        if self.dropped_publishes > 0 {
            let n = std::mem::take(&mut self.dropped_publishes);
            self.report(Error::disconnected(format!(
                "{n} publish(es) dropped: not connected and no publish store"
            )));
        }
    }

    /// Forget the transport (the session already knows or decided) and ask the adapter to
    /// close it.
    fn close_conn(&mut self) {
        if self.open {
            self.open = false;
            self.io = Some(IoRequest::Close);
        }
        self.filtered = 0;
        if self.blocked == Some(Blocked::Transmit) {
            self.blocked = None;
        }
    }
}

/// The session's heartbeat settings from an interval and a timeout.
pub(crate) fn heartbeat_config(
    interval: Duration,
    timeout: Duration,
) -> Result<amps_core::session::HeartbeatConfig> {
    let secs = u32::try_from(interval.as_secs())
        .ok()
        .filter(|s| *s > 0)
        .ok_or_else(|| Error::usage("the heartbeat interval is whole seconds, at least 1"))?;
    Ok(amps_core::session::HeartbeatConfig {
        interval_secs: secs,
        timeout: timeout.into(),
    })
}

/// A seed for the session's backoff jitter, different per client.
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
