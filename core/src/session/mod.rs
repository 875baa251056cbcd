//! The sans-IO session: one [`Session`] drives a client connection's whole life, across reconnects.
//!
//! # Call order
//!
//! ```text
//! new(config, parts)
//! loop {
//!     poll_connect(now)              -> Some(req): open a transport to the server the adapter's
//!                                       ServerChooser names; then handle_connected(now, logon)
//!                                       or handle_connect_failed(now)
//!     handle_bytes(now, &input)      -> consumed (less than offered: drain poll_event first)
//!       or: read into receive_buffer(), then received(now, n)   (no copy; empty buffer:
//!                                       drain poll_event first)
//!     handle_closed(now, cause)      when the transport closes
//!     handle_timeout(now)            when poll_timeout() is reached (spurious calls are no-ops)
//!     execute / publish / ack / ...  user commands (queue work, return handles, no I/O)
//!     while let Some(e) = poll_event()            { act on e }   // always before poll_transmit
//!     while let Some(n) = poll_transmit(now, buf) { write buf[..n] }
//!     sleep until poll_timeout(), socket readiness or a user command
//! }
//! ```
//!
//! # Contracts
//!
//! - `now` never goes backwards; a spurious `handle_timeout` is a no-op.
//! - `handle_bytes` accepts any chunking (one byte at a time gives the same events as one big
//!   chunk) and returns how much it took; less than offered means "drain `poll_event`, then offer
//!   the rest" (backpressure, never loss). Frames are decoded lazily by `poll_event`, so replies
//!   (heartbeat beats, queue acks) are queued while events are drained: drain `poll_event`
//!   before `poll_transmit`.
//! - `poll_transmit` works with any buffer of at least one byte, remembers its place inside a
//!   frame, and never returns `Some(0)`.
//! - Inputs only queue replies; nothing in a `handle_*` writes.
//! - Every call does bounded work (at most one frame per `poll_event`, tables of configured
//!   size).
//! - Input that ends the connection is reported once ([`Event::CloseTransport`], then
//!   [`ConnectionState::Disconnected`]) and further input is ignored until the next
//!   `handle_connected`.
//! - Events borrow the receive buffer until the next `&mut` call (zero-copy message views).
//! - Memory is bounded by [`Limits`] and the [`Storage`] types; a full table or store is a typed
//!   error or a documented policy, never a panic or silent growth.

mod acks;
mod commands;
mod config;
mod error;
mod event;
mod inbound;
mod io;
mod lifecycle;
mod storage;
mod tables;

pub use config::{Config, HeartbeatConfig, Limits, Logon, MAX_LOGON_OPTIONS};
pub use error::{
    CommandError, ConfigError, FailureKind, InputError, PublishError, ReasonText, SessionError,
    StoreError,
};
pub use event::{ConnectionState, Delivery, Event, State};
pub use storage::{Buf, Buffers, FixedStorage, Parts, Storage, Table};
#[cfg(feature = "alloc")]
pub use storage::{HeapStorage, heap_bookmark_store, heap_publish_store};
pub use tables::{CommandId, CommandIdHasher, Pending, Route};

use crate::codec::{AckStats, Detached};
use crate::ha::ReconnectPolicy;
use crate::rng::Rng;
use crate::time::{Duration, Instant};
use crate::util::FixedStr;
use io::{RxBuf, TxBuf};

/// How a command is tracked (see [`Session::execute_with`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Exec {
    /// Re-enter this subscription after a reconnect (an async subscription with a handler; the
    /// Python client's SubscriptionManager does not re-enter streams).
    pub resubscribe: bool,
}

/// Why the transport closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportClosed {
    /// The peer closed the connection.
    PeerClosed,
    /// A read or write failed.
    Error,
}

/// What `poll_connect` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// 1 for the first attempt of an outage, then 2, 3, ...
    pub attempt: u32,
}

/// What a queue acknowledgement does (docs/protocol.md §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckHow {
    /// Processed: remove the message from the queue (batched).
    Ack,
    /// Return it to the queue for redelivery.
    Cancel,
    /// Expire it now.
    Expire,
}

/// The state of a command (see [`Session::command_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandStatus {
    /// Waiting for acks.
    Pending,
    /// Not pending: completed, failed, or unknown (its outcome was reported as an event).
    NotPending,
}

/// Internal events queued before the next frame is processed. At most a handful are queued per
/// step (a reconnect's state sequence is the longest), and the queue drains before any new frame.
const QUEUE_CAP: usize = 16;

#[derive(Clone, Copy, Debug)]
enum Queued {
    State(ConnectionState),
    CloseTransport,
    Completed(CommandId, AckStats),
    Failed(CommandId, CommandError),
    Persisted(u64),
    Error(SessionError),
    ReconnectDelay(Duration),
}

/// Events without borrows, emitted in order before any new frame is processed.
struct EventQueue {
    items: [Option<Queued>; QUEUE_CAP],
    head: usize,
    len: usize,
    dropped: u64,
}

impl EventQueue {
    const fn new() -> Self {
        EventQueue {
            items: [None; QUEUE_CAP],
            head: 0,
            len: 0,
            dropped: 0,
        }
    }
    fn push(&mut self, q: Queued) {
        if self.len == QUEUE_CAP {
            // Cannot happen by construction (at most a few events are queued per step and the
            // queue drains before new frames); counted rather than panicking.
            self.dropped += 1;
            return;
        }
        if let Some(slot) = self.items.get_mut((self.head + self.len) % QUEUE_CAP) {
            *slot = Some(q);
            self.len += 1;
        }
    }
    fn pop(&mut self) -> Option<Queued> {
        if self.len == 0 {
            return None;
        }
        let q = self.items.get_mut(self.head).and_then(Option::take);
        self.head = (self.head + 1) % QUEUE_CAP;
        self.len -= 1;
        q
    }
}

/// What the frame at the front of the receive buffer is being turned into.
#[derive(Clone, Copy)]
struct Dispatch {
    /// Where the frame starts in the receive buffer.
    start: usize,
    len: usize,
    header_len: usize,
    esc_len: usize,
    emit: Emit,
}

impl Dispatch {
    /// Whether the frame is handed out in a single event (not a `sow` batch's records, not a
    /// delivery with more subscription ids to look at).
    fn one_part(&self) -> bool {
        !matches!(
            self.emit,
            Emit::Records { .. }
                | Emit::Delivery {
                    next_sid: Some(_),
                    ..
                }
        )
    }
}

#[derive(Clone, Copy)]
enum Emit {
    /// An ack for command `id`.
    Ack(CommandId),
    /// A delivery to route `route` (index); `next_sid` is where to continue in `sids`.
    Delivery {
        route: usize,
        next_sid: Option<usize>,
    },
    /// The records of a `sow` batch for route `route`, the next one starting at `next`.
    Records { route: usize, next: usize },
    /// Nobody handles it.
    LastChance,
    /// A refused sequenced command.
    FailedWrite { seq: u64, kind: FailureKind },
    /// A logon challenge.
    LogonRetry,
}

/// Recovery after a logon: replay, then resubscribe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recovery {
    Idle,
    Replay,
    Resubscribe { next: usize },
}

/// The client connection state machine. See the module docs for the call order and contracts.
///
/// The receive buffer, the unescape scratch and the dispatch cursor live here; everything else
/// is in the core, so a message view borrowing the buffer and the core's tables can be used at
/// the same time.
pub struct Session<S: Storage> {
    rx: RxBuf<S::Bytes>,
    scratch: S::Bytes,
    dispatch: Option<Dispatch>,
    /// The `sow` record being handed out (events borrow its header positions).
    record: Option<inbound::RecordSlot>,
    /// Field positions of the frame being dispatched: headers are parsed into it in place and
    /// events borrow it, so a header's positions are never copied.
    slot: Detached,
    core: Core<S>,
}

pub(crate) struct Core<S: Storage> {
    // Settings (copied from Config).
    client_name: FixedStr<128>,
    version: FixedStr<64>,
    logon_options: FixedStr<MAX_LOGON_OPTIONS>,
    /// The message type and options of the connection's first logon, so that a logon sent
    /// again (a challenge's answer) is the same command.
    logon_mt: FixedStr<16>,
    logon_extra: FixedStr<32>,
    logon_user: FixedStr<128>,
    /// Logons sent on this connection; from the second answer on, each waits longer.
    logon_sends: u32,
    /// The transmit buffer holds a logon that is not sent before this time (backoff).
    tx_hold: Option<Instant>,
    heartbeat: Option<HeartbeatConfig>,
    logon_timeout: Duration,
    command_timeout: Option<Duration>,
    resubscribe: bool,
    ack_batch_size: u32,
    ack_timeout: Duration,
    limits: Limits,
    reconnect: ReconnectPolicy,
    rng: Rng,

    now: Instant,
    state: State,
    generation: u32,
    next_cid: u64,

    tx: TxBuf<S::Bytes>,
    arena: S::Bytes,
    arena_end: usize,
    pending: S::Commands,
    routes: S::Routes,
    pstore: S::PublishStore,
    bstore: S::BookmarkStore,

    next_seq: u64,
    sent_seq: u64,
    seq_known: bool,
    recovery: Recovery,
    logon_id: Option<CommandId>,

    hb_send: Option<Instant>,
    hb_deadline: Option<Instant>,
    /// When the last `beat` went out.
    last_beat: Option<Instant>,
    logon_deadline: Option<Instant>,
    ack_flush_at: Option<Instant>,
    next_attempt: Option<Instant>,
    outage_start: Option<Instant>,
    attempt: u32,
    halted: bool,

    queue: EventQueue,
    /// Fail pending commands of connections up to this generation with this error, one per
    /// `poll_event` (commands of a newer connection are left alone).
    failing: Option<(CommandError, u32)>,
    timeouts_due: Option<Instant>,
    closing: bool,
    /// The receive buffer must be emptied (new or ended connection).
    rx_reset: bool,
    deferred_discard: Option<u64>,
    acks: acks::AckBatch<S::Bytes>,
    /// The last routing attempt only found bookmark duplicates.
    dup_only: bool,
    /// Serial of the delivery being routed (see `Route::delivered`).
    msg_serial: u32,
    /// The highest publish sequence number known persisted by a server (publish store on).
    persisted_seq: u64,
    error_on_publish_gap: bool,
    /// `version` of the last logon ack.
    server_version: FixedStr<32>,
}

impl<S: Storage> Session<S> {
    /// A session named by `config`, storing its state in `parts`. It starts disconnected; with a
    /// reconnect policy call [`Session::start`] to have `poll_connect` ask for a connection.
    pub fn new(config: &Config<'_>, parts: Parts<S>) -> Result<Self, ConfigError> {
        let client_name = FixedStr::new(config.client_name)
            .filter(|n| !n.is_empty())
            .ok_or(ConfigError::ClientName)?;
        if config.heartbeat.is_some_and(|h| h.interval_secs == 0) {
            return Err(ConfigError::Heartbeat);
        }
        let lim = config.limits;
        let rx_len = parts.rx.as_ref().len();
        if rx_len < 64 {
            return Err(ConfigError::BufferTooSmall { which: "rx" });
        }
        if parts.tx.as_ref().len() < 256 {
            return Err(ConfigError::BufferTooSmall { which: "tx" });
        }
        // The effective maximum frame is what the receive buffer can hold, and the table limits
        // what the tables can hold: a fixed table must never refuse an entry the session
        // counted on (the logon, a re-entry).
        let max_frame = lim
            .max_frame
            .min(u32::try_from(rx_len - 4).unwrap_or(u32::MAX));
        let max_commands = lim.max_commands.min(parts.commands.capacity());
        let max_routes = lim.max_routes.min(parts.routes.capacity());
        if max_commands < 2 || max_routes < 1 {
            return Err(ConfigError::BufferTooSmall {
                which: "commands/routes table",
            });
        }
        let core = Core {
            client_name,
            version: FixedStr::new(config.version).unwrap_or_default(),
            logon_options: FixedStr::new(config.logon_options.unwrap_or(""))
                .ok_or(ConfigError::LogonOptions)?,
            logon_mt: FixedStr::EMPTY,
            logon_extra: FixedStr::EMPTY,
            logon_user: FixedStr::EMPTY,
            logon_sends: 0,
            tx_hold: None,
            heartbeat: config.heartbeat,
            logon_timeout: config.logon_timeout,
            command_timeout: config.command_timeout,
            resubscribe: config.resubscribe,
            ack_batch_size: config.ack_batch_size.max(1),
            ack_timeout: config.ack_timeout,
            limits: Limits {
                max_frame,
                max_commands,
                max_routes,
                ..lim
            },
            reconnect: config.reconnect,
            rng: Rng::new(config.seed),
            now: Instant::ZERO,
            state: State::Disconnected,
            generation: 0,
            next_cid: 1,
            tx: TxBuf::new(parts.tx),
            arena: parts.arena,
            arena_end: 0,
            pending: parts.commands,
            routes: parts.routes,
            pstore: parts.publish_store,
            bstore: parts.bookmark_store,
            next_seq: 1,
            sent_seq: 0,
            seq_known: false,
            recovery: Recovery::Idle,
            logon_id: None,
            hb_send: None,
            hb_deadline: None,
            last_beat: None,
            logon_deadline: None,
            ack_flush_at: None,
            next_attempt: None,
            outage_start: None,
            attempt: 0,
            halted: false,
            queue: EventQueue::new(),
            failing: None,
            timeouts_due: None,
            closing: false,
            rx_reset: false,
            deferred_discard: None,
            acks: acks::AckBatch::new(parts.ack_batch),
            dup_only: false,
            msg_serial: 0,
            persisted_seq: 0,
            error_on_publish_gap: config.error_on_publish_gap,
            server_version: FixedStr::EMPTY,
        };
        Ok(Session {
            record: None,
            slot: Detached::EMPTY,
            rx: RxBuf::new(parts.rx),
            scratch: parts.scratch,
            dispatch: None,
            core,
        })
    }

    /// Record `now` (never backwards) and apply buffer resets the core asked for.
    fn enter(&mut self, now: Instant) {
        self.core.now = self.core.now.max(now);
    }

    /// A connection is open and the session has not ended it: input is taken.
    fn takes_input(&self) -> bool {
        self.core.is_connected() && !self.core.closing
    }

    fn leave(&mut self) {
        if self.core.rx_reset {
            self.core.rx_reset = false;
            self.rx.clear();
            self.dispatch = None;
        }
    }

    // ----------------------------------------------------------------------------- queries

    /// Where the session is.
    pub fn state(&self) -> State {
        self.core.state
    }

    /// Whether command `id` still waits for acks.
    pub fn command_status(&self, id: CommandId) -> CommandStatus {
        if self
            .core
            .pending
            .items()
            .iter()
            .any(|p| p.id == id || p.report == id)
        {
            CommandStatus::Pending
        } else {
            CommandStatus::NotPending
        }
    }

    /// The client name.
    pub fn client_name(&self) -> &str {
        self.core.client_name.as_str()
    }

    /// Commands waiting for acks.
    pub fn pending_commands(&self) -> usize {
        self.core.pending.items().len()
    }

    /// Active subscriptions and running queries.
    pub fn routes(&self) -> usize {
        self.core.routes.items().len()
    }

    /// Unpersisted entries in the publish store (the Python client's `unpersisted_count`).
    pub fn unpersisted_count(&self) -> usize {
        crate::store::PublishStore::unpersisted_count(&self.core.pstore)
    }

    /// The server's version as its last logon ack gave it (e.g. `5.3.5.0`); empty before
    /// the first logon or when the server did not say.
    pub fn server_version(&self) -> &str {
        self.core.server_version.as_str()
    }

    /// The publish store.
    pub fn publish_store(&self) -> &S::PublishStore {
        &self.core.pstore
    }

    /// The publish store, mutable (e.g. to sync a file store).
    pub fn publish_store_mut(&mut self) -> &mut S::PublishStore {
        &mut self.core.pstore
    }

    /// The bookmark store.
    pub fn bookmark_store(&self) -> &S::BookmarkStore {
        &self.core.bstore
    }

    /// The bookmark store, mutable.
    pub fn bookmark_store_mut(&mut self) -> &mut S::BookmarkStore {
        &mut self.core.bstore
    }

    /// Bytes waiting in the transmit buffer.
    pub fn pending_transmit(&self) -> usize {
        self.core.tx.pending()
    }

    /// The effective limits (the maximum frame is capped by the receive buffer).
    pub fn limits(&self) -> &Limits {
        &self.core.limits
    }

    /// The next sequence number a publish would get (0 before the first logon).
    pub fn next_seq(&self) -> u64 {
        if self.core.seq_known {
            self.core.next_seq
        } else {
            0
        }
    }

    /// Events that could not be queued (always 0 unless there is a bug; exposed for tests).
    pub fn dropped_events(&self) -> u64 {
        self.core.queue.dropped
    }

    /// The sub_id (or query_id) of a subscription or query.
    pub fn route_key(&self, handle: CommandId) -> Option<&str> {
        self.core.route_key(handle)
    }

    /// The effective queue backlog of a subscription, once its subscribe ack reported it.
    pub fn backlog(&self, handle: CommandId) -> Option<u32> {
        self.core
            .routes
            .items()
            .iter()
            .find(|r| r.handle == handle)
            .map(|r| r.backlog)
            .filter(|&b| b > 0)
    }

    // ----------------------------------------------------------------------------- settings

    /// Start, change or stop heartbeats (Python client: `set_heartbeat(interval, timeout)`). When
    /// logged on, the new `start,N` is sent at once.
    pub fn set_heartbeat(
        &mut self,
        now: Instant,
        hb: Option<HeartbeatConfig>,
    ) -> Result<(), ConfigError> {
        self.enter(now);
        if hb.is_some_and(|h| h.interval_secs == 0) {
            return Err(ConfigError::Heartbeat);
        }
        if self.core.heartbeat.is_none() {
            // Frames that completed while nobody watched are not news.
            self.rx.frames_completed();
        }
        let core = &mut self.core;
        core.heartbeat = hb;
        core.hb_send = None;
        core.hb_deadline = None;
        if core.is_logged_on() {
            let cmd = match hb {
                Some(h) => crate::codec::Command::heartbeat_start(u64::from(h.interval_secs)),
                None => crate::codec::Command::heartbeat_stop(),
            };
            let _ = core.tx.push_cmd(&cmd);
            if let Some(h) = hb {
                core.hb_send = Some(now + Duration::from_secs(u64::from(h.interval_secs)));
                core.hb_deadline = Some(now + h.timeout);
                core.queue
                    .push(Queued::State(ConnectionState::HeartbeatInitiated));
            }
        }
        Ok(())
    }

    /// Queue acks batched before sending (Python client: `set_ack_batch_size`).
    pub fn set_ack_batch_size(&mut self, n: u32) {
        self.core.ack_batch_size = n.max(1);
    }

    /// Longest time a queue ack waits in a batch (Python client: `set_ack_timeout`).
    pub fn set_ack_timeout(&mut self, t: Duration) {
        self.core.ack_timeout = t;
    }

    /// Replace the logon options ([`Config::logon_options`]; empty: none) from the next logon
    /// on (Python client: `set_logon_options`). Errors: [`ConfigError::LogonOptions`] when
    /// longer than [`MAX_LOGON_OPTIONS`] bytes; the options in force are then unchanged.
    pub fn set_logon_options(&mut self, options: &str) -> Result<(), ConfigError> {
        self.core.logon_options = FixedStr::new(options).ok_or(ConfigError::LogonOptions)?;
        Ok(())
    }

    /// The reconnect policy (Python client: `set_reconnect_delay_strategy`).
    pub fn set_reconnect(&mut self, policy: ReconnectPolicy) {
        self.core.reconnect = policy;
    }

    /// The reconnect policy in force (an adapter that clears a halt by itself, e.g. to fail
    /// over after a refused logon, does so only when the session reconnects by itself).
    pub fn reconnect_policy(&self) -> &ReconnectPolicy {
        &self.core.reconnect
    }

    /// Re-enter async subscriptions after a reconnect (the HA client's subscription manager).
    pub fn set_resubscribe(&mut self, on: bool) {
        self.core.resubscribe = on;
    }

    // ----------------------------------------------------------------------------- inputs

    /// Ask `poll_connect` for a connection now (the HA client's `connect_and_logon`). Clears a
    /// halt after a failed logon or `disconnect`.
    pub fn start(&mut self, now: Instant) {
        self.enter(now);
        self.core.start(now);
    }

    /// Whether the adapter should open a transport now. Returns a request at most once per
    /// attempt; answer it with [`Session::handle_connected`] or
    /// [`Session::handle_connect_failed`].
    pub fn poll_connect(&mut self, now: Instant) -> Option<ConnectRequest> {
        self.enter(now);
        self.core.poll_connect(now)
    }

    /// Opening the transport failed: schedule the next attempt (or give up).
    pub fn handle_connect_failed(&mut self, now: Instant) {
        self.enter(now);
        self.core.handle_connect_failed(now);
    }

    /// With [`crate::ha::ReconnectPolicy::External`], the answer to
    /// [`Event::ReconnectDelay`]: the next attempt after `delay`, or give up (`None`).
    pub fn handle_reconnect_delay(&mut self, now: Instant, delay: Option<Duration>) {
        self.core.handle_reconnect_delay(now, delay);
    }

    /// The adapter's chooser has no server: stop reconnecting and shut down.
    pub fn handle_give_up(&mut self, now: Instant) {
        self.enter(now);
        self.core.handle_give_up(now);
        self.leave();
    }

    /// The transport is open: send the logon (docs/protocol.md §6.1). Returns the logon command's
    /// id; its outcome arrives as [`Event::Completed`] or [`Event::Failed`].
    pub fn handle_connected(
        &mut self,
        now: Instant,
        logon: &Logon<'_>,
    ) -> Result<CommandId, CommandError> {
        self.enter(now);
        let r = self.core.handle_connected(now, logon);
        self.leave();
        r
    }

    /// Answer an [`Event::LogonRetry`] challenge with the authenticator's credential.
    pub fn handle_logon_retry(
        &mut self,
        now: Instant,
        user_id: Option<&str>,
        password: &str,
    ) -> Result<CommandId, CommandError> {
        self.enter(now);
        self.core.handle_logon_retry(now, user_id, password)
    }

    /// Bytes from the transport, copied into the receive buffer. Returns how many were taken;
    /// fewer than offered means the receive buffer is full: drain [`Session::poll_event`] and
    /// offer the rest. The same as writing them into [`Session::receive_buffer`] and calling
    /// [`Session::received`]; an adapter that can read straight into the session's buffer
    /// uses those two and saves the copy.
    pub fn handle_bytes(&mut self, now: Instant, input: &[u8]) -> Result<usize, InputError> {
        // Nothing is copied (or moved) for input `received` will refuse.
        let room = if self.takes_input() {
            self.receive_buffer()
        } else {
            &mut []
        };
        let n = input.len().min(room.len());
        if let (Some(dst), Some(src)) = (room.get_mut(..n), input.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.received(now, n)
    }

    /// The free space at the end of the receive buffer, for the transport to read into
    /// directly (one copy fewer than [`Session::handle_bytes`]). Then say how many bytes were
    /// written with [`Session::received`], before any other call (another call may move or
    /// clear what the buffer holds; what was written and not reported is ignored). Calling
    /// `receive_buffer` again before `received` lends the same buffer, what was written in it
    /// included (an adapter may look at the bytes, e.g. to show them to a filter).
    ///
    /// Bytes already taken are first moved to the front when that is worth it (no more of them
    /// are held than were consumed before them, or there is no room at all), so each byte is
    /// moved at most once on average. Empty when the buffer is full: drain
    /// [`Session::poll_event`] first (if that yields nothing, the input can make no progress).
    ///
    /// ```text
    /// let buf = session.receive_buffer();   // no other call until `received`
    /// let n = socket.read(buf)?;            // 0: the peer closed -> handle_closed
    /// session.received(now, n)?;
    /// while let Some(e) = session.poll_event() { ... }
    /// ```
    pub fn receive_buffer(&mut self) -> &mut [u8] {
        let moved = self.rx.make_room();
        if let Some(d) = self.dispatch.as_mut() {
            // The frame handed out in several events is at the front: it moved with the rest.
            d.start = d.start.saturating_sub(moved);
        }
        self.rx.spare()
    }

    /// The transport wrote `n` bytes at the start of [`Session::receive_buffer`]. Returns how
    /// many were taken (at most that buffer's length), with the effects of
    /// [`Session::handle_bytes`]: frames are decoded by [`Session::poll_event`], and a
    /// completed frame proves the server alive. [`InputError::NotConnected`] (the bytes are
    /// ignored) when no connection is open or the session already ended it.
    pub fn received(&mut self, now: Instant, n: usize) -> Result<usize, InputError> {
        self.enter(now);
        if !self.takes_input() {
            return Err(InputError::NotConnected);
        }
        let n = self.rx.filled(n);
        // A complete frame of any kind proves the server alive (docs/protocol.md §9); bytes that
        // never complete a frame do not. Without heartbeats nobody asks: the frames are not
        // walked (`set_heartbeat` catches up).
        if n > 0
            && let Some(hb) = self.core.heartbeat
            && self.rx.frames_completed()
            && self.core.is_logged_on()
        {
            self.core.hb_deadline = Some(now + hb.timeout);
        }
        Ok(n)
    }

    /// The transport closed. Frames already received are still delivered by `poll_event`.
    pub fn handle_closed(&mut self, now: Instant, cause: TransportClosed) {
        let _ = cause;
        self.enter(now);
        let more = self.dispatch.is_some()
            || matches!(self.rx.front_frame(self.core.limits.max_frame), Ok(Some(_)));
        self.core.handle_closed(now, more);
        self.leave();
    }

    /// Timers that are due fire: heartbeats, the heartbeat deadline, the logon timeout, command
    /// timeouts, the queue-ack batch. Spurious calls are no-ops.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.enter(now);
        self.core.handle_timeout(now);
        self.leave();
    }

    /// Close the connection and stop reconnecting (Python client: `disconnect()`); `start` resumes.
    pub fn disconnect(&mut self, now: Instant) {
        self.enter(now);
        self.core.disconnect(now);
        self.leave();
    }

    /// Close for good (Python client: `close()`): the connection ends, nothing reconnects, every
    /// command fails, [`ConnectionState::Shutdown`] is reported.
    pub fn close(&mut self, now: Instant) {
        self.enter(now);
        self.core.close(now);
        self.leave();
    }

    // ----------------------------------------------------------------------------- commands

    /// Send a command. Subscriptions and queries get a route (deliveries come as
    /// [`Event::Delivery`] with the returned id); the session adds the `processed` ack (and
    /// `completed` for queries) it needs to see failures and the end of results, and fills in
    /// `cid`, and `sub_id`/`query_id` when absent. Not re-entered after a reconnect (a stream);
    /// see [`Session::execute_with`].
    pub fn execute(
        &mut self,
        now: Instant,
        cmd: &crate::codec::Command<'_>,
    ) -> Result<CommandId, CommandError> {
        self.enter(now);
        self.core.execute_with(now, cmd, Exec::default())
    }

    /// [`Session::execute`] with tracking options.
    pub fn execute_with(
        &mut self,
        now: Instant,
        cmd: &crate::codec::Command<'_>,
        exec: Exec,
    ) -> Result<CommandId, CommandError> {
        self.enter(now);
        self.core.execute_with(now, cmd, exec)
    }

    /// Unsubscribe the subscription or query `handle` (Python client: `unsubscribe(sub_id)`).
    pub fn unsubscribe(
        &mut self,
        now: Instant,
        handle: CommandId,
    ) -> Result<CommandId, CommandError> {
        self.enter(now);
        self.core.unsubscribe(now, handle)
    }

    /// Publish `data` to `topic` (docs/protocol.md §6.2). With a publish store the message is
    /// numbered, kept until persisted, and replayed after reconnects: the result is its sequence
    /// number; this also works while disconnected once the session has logged on once (the
    /// server's last sequence number is then known, §8.4). Without a store it is sent as is.
    pub fn publish(
        &mut self,
        now: Instant,
        topic: &str,
        data: &[u8],
    ) -> Result<Option<u64>, PublishError> {
        self.enter(now);
        self.core
            .publish_command(now, &crate::codec::Command::publish(topic, data))
    }

    /// Send a sequenced command (publish, delta_publish, sow_delete with `e`, `x`, `k`, ...)
    /// through the publish store when there is one; see [`Session::publish`]. Acks other than
    /// `persisted` need a command id: use [`Session::execute`] for those.
    pub fn publish_command(
        &mut self,
        now: Instant,
        cmd: &crate::codec::Command<'_>,
    ) -> Result<Option<u64>, PublishError> {
        self.enter(now);
        self.core.publish_command(now, cmd)
    }

    /// Send a `flush` (docs/protocol.md §6.10): completes when every earlier command was processed.
    pub fn flush(&mut self, now: Instant) -> Result<CommandId, CommandError> {
        self.enter(now);
        self.core
            .execute_with(now, &crate::codec::Command::flush(), Exec::default())
    }

    /// Flush and wait for the publish store to drain (Python client: `publish_flush(timeout)`):
    /// [`Event::Completed`] once the flush is acked and nothing is unpersisted, or
    /// [`Event::Failed`] with `TimedOut` after `timeout`.
    pub fn publish_flush(
        &mut self,
        now: Instant,
        timeout: Duration,
    ) -> Result<CommandId, CommandError> {
        self.enter(now);
        self.core.publish_flush(now, timeout)
    }

    /// Acknowledge a queue message (docs/protocol.md §11; Python client: `message.ack()`): `Ack` is
    /// batched up to the configured batch size, capped by the subscription's backlog, and flushed
    /// by size or after the ack timeout; `Cancel` and `Expire` go out at once. No effect for
    /// messages that are not from a queue subscription.
    pub fn ack(
        &mut self,
        now: Instant,
        route: CommandId,
        topic: &str,
        bookmark: &str,
        how: AckHow,
    ) -> Result<(), CommandError> {
        self.enter(now);
        self.core.ack(now, route, topic, bookmark, how)
    }

    /// Acknowledge a queue message by its topic and bookmark, without the subscription that
    /// received it (the Python client's `Client.ack(topic, bookmark)`; e.g. for bookmarks kept
    /// across a restart). Batched like [`Session::ack`].
    pub fn ack_by_topic(
        &mut self,
        now: Instant,
        topic: &str,
        bookmark: &str,
        how: AckHow,
    ) -> Result<(), CommandError> {
        self.enter(now);
        self.core.ack_by_topic(now, topic, bookmark, how)
    }

    /// Under auto-ack, what an adapter calls when the application is done with a queue message
    /// (Python client: handler returned → ack; handler failed → cancel).
    pub fn handled(
        &mut self,
        now: Instant,
        route: CommandId,
        topic: &str,
        bookmark: &str,
        ok: bool,
    ) -> Result<(), CommandError> {
        self.enter(now);
        self.core.ack(
            now,
            route,
            topic,
            bookmark,
            if ok { AckHow::Ack } else { AckHow::Cancel },
        )
    }

    /// Send the batched queue acks now.
    pub fn flush_acks(&mut self, now: Instant) {
        self.enter(now);
        self.core.flush_acks(now);
    }

    /// The application processed a message of a bookmark subscription (Python client: `discard()`):
    /// the resume point may advance past it.
    pub fn discard(&mut self, route: CommandId, bookmark: &str) -> Result<(), StoreError> {
        self.core.discard(route, bookmark)
    }

    /// Discard by sub_id (for example for a subscription resumed after a restart).
    pub fn discard_by_sub_id(&mut self, sub_id: &str, bookmark: &str) -> Result<(), StoreError> {
        crate::store::BookmarkStore::discard(&mut self.core.bstore, sub_id, bookmark)
    }

    // ----------------------------------------------------------------------------- outputs

    /// Copy pending outgoing bytes into `out`. Returns `None` when there is nothing to send;
    /// never `Some(0)`. Remembers its place inside a frame. Transmitting frees space, so this
    /// also sends what waited for it (publish replay, resubscriptions, queue acks).
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        self.enter(now);
        self.core.poll_transmit(now, out)
    }

    /// The pending outgoing bytes, in the session's own transmit buffer (no copy): write them
    /// to the transport straight from here, then say how many it took with
    /// [`Session::transmitted`]. Empty when there is nothing to send. Like
    /// [`Session::poll_transmit`], it first sends what waited for room. Other calls may add
    /// bytes before `transmitted`; the count always refers to the front of what is pending.
    pub fn transmit_buffer(&mut self, now: Instant) -> &[u8] {
        self.enter(now);
        self.core.transmit_buffer(now)
    }

    /// The transport took the first `n` bytes of [`Session::transmit_buffer`].
    pub fn transmitted(&mut self, n: usize) {
        self.core.tx.consume(n);
    }

    /// The earliest time `handle_timeout` (or `poll_connect`) has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.core.poll_timeout()
    }
}

impl<S: Storage> Core<S> {
    fn is_connected(&self) -> bool {
        matches!(
            self.state,
            State::LoggingOn | State::Recovering | State::Ready
        )
    }

    fn is_logged_on(&self) -> bool {
        matches!(self.state, State::Recovering | State::Ready)
    }

    fn new_id(&mut self) -> CommandId {
        let id = CommandId {
            generation: self.generation,
            cid: self.next_cid,
        };
        self.next_cid += 1;
        id
    }
}
