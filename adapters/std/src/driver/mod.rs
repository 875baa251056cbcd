//! The I/O thread (design.md §3): the one owner of the [`Session`] and of the connection. It
//! runs the adapter loop of the core (module docs of `amps_core::session`):
//!
//! ```text
//! loop {
//!     take from the inbox           publishes and commands (in order), bytes the reader read
//!     run commands and publishes    session.execute / publish / ack / ...
//!     feed bytes                    session.handle_bytes, draining poll_event as it goes
//!     timers                        session.handle_timeout (heartbeats, command timeouts)
//!     reconnect (HA)                session.poll_connect -> open, handle_connected
//!     events                        poll_event -> streams, the dispatch thread, replies
//!     transmit                      poll_transmit -> the socket
//!     wait                          until the inbox has work or poll_timeout is due
//! }
//! ```
//!
//! It never runs application code except the transport filter: handlers and listeners run on
//! the dispatch thread, streams are consumed on application threads. When a stream or the
//! dispatch queue is full the loop stops taking events from the session (the connection's
//! input waits, TCP pushes back) but keeps sending heartbeats and running commands.

mod conn;
mod events;
mod user;

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use amps_core::codec::{AckTypes, CommandKind};
use amps_core::ha::Authenticator;
use amps_core::owned::BlockWriter;
use amps_core::session::{AckHow, CommandId, CommandIdHasher, Config, HeapStorage, Parts};
use amps_core::store::{BookmarkStore, NoBookmarkStore, NoPublishStore, PublishStore};

use crate::client::Shared;
use crate::clock;
use crate::command::OwnedCommand;
use crate::dispatch::{self, DispatchQueue, Handler};
use crate::error::{Error, Result};
use crate::inbox::Item;
use crate::message::Message;
use crate::settings::{Settings, Update};
use crate::stream::StreamShared;
use crate::transport::Conn;

pub(crate) type Store = HeapStorage<Box<dyn PublishStore + Send>, Box<dyn BookmarkStore + Send>>;
pub(crate) type Session = amps_core::session::Session<Store>;

/// Where a blocking call gets its answer.
pub(crate) type Reply<T> = SyncSender<Result<T>>;

/// A reply channel and its receiving end.
pub(crate) fn reply<T>() -> (Reply<T>, Receiver<Result<T>>) {
    sync_channel(1)
}

/// Answer a blocking call; the caller may have given up (then nobody listens).
fn answer<T>(r: Reply<T>, v: Result<T>) {
    let _ = r.try_send(v);
}

/// What an executed command returns to the caller.
pub(crate) struct Executed {
    /// The session's handle (the route handle for subscriptions and queries).
    pub(crate) handle: CommandId,
    /// The subscription (or query) id on the wire.
    pub(crate) sub_id: String,
    /// The ack with the counts (for `sow_delete`).
    pub(crate) ack: Option<Message>,
}

/// A queue message the application finished with under auto-ack.
pub(crate) struct Handled {
    pub(crate) route: CommandId,
    pub(crate) topic: String,
    pub(crate) bookmark: String,
    /// The handler succeeded (ack) or failed (cancel, seeds).
    pub(crate) ok: bool,
}

/// Where a command's messages go.
pub(crate) enum Target {
    /// A [`crate::MessageStream`].
    Stream(Arc<StreamShared>),
    /// A message handler on the dispatch thread.
    Handler(Handler),
    /// Nowhere; the acks are kept for the reply (`sow_delete` returns its stats ack).
    Collect,
}

/// A command from an application thread (or the dispatch thread).
pub(crate) enum Op {
    /// Plain client: open the transport.
    Connect { uri: String, reply: Reply<()> },
    /// Plain client: log on over the open transport.
    Logon {
        auth: Option<Box<dyn Authenticator + Send>>,
        reply: Reply<()>,
    },
    /// HA client: connect (with the server chooser) and log on, retrying per the delay
    /// strategy.
    ConnectAndLogon { reply: Reply<()> },
    /// Close the connection; no reconnect.
    Disconnect { reply: Reply<()> },
    /// Shut the client down.
    Close { reply: Reply<()> },
    /// Send a command.
    Execute {
        cmd: Box<OwnedCommand>,
        target: Target,
        resubscribe: bool,
        reply: Reply<Executed>,
    },
    /// A sequenced command without a reply (publish with extra headers).
    PublishCommand(Box<OwnedCommand>),
    /// Unsubscribe by sub_id (or `all`).
    Unsubscribe { sub_id: String, reply: Reply<()> },
    /// A stream was closed or dropped.
    StreamClosed { handle: CommandId },
    /// `flush`, or `publish_flush(timeout)` when `store` is set.
    Flush {
        store: Option<Duration>,
        reply: Reply<()>,
    },
    /// `message.ack()`.
    Ack {
        route: CommandId,
        topic: String,
        bookmark: String,
        how: AckHow,
    },
    /// Auto-acks of handled queue messages.
    Handled(Vec<Handled>),
    /// `message.discard()`.
    Discard { route: CommandId, bookmark: String },
    /// Change settings.
    Update(Update),
    /// `unpersisted_count()`.
    UnpersistedCount(Reply<usize>),
}

impl Op {
    /// Commands that keep their place behind publishes sent before them; the others (control,
    /// acks, queries) are run even while the queue waits (for a reconnect, for the publish
    /// window), so `close()` or `connect_and_logon()` are never stuck behind it.
    fn is_ordered(&self) -> bool {
        matches!(
            self,
            Op::Execute { .. } | Op::PublishCommand(_) | Op::Unsubscribe { .. } | Op::Flush { .. }
        )
    }

    /// Fail the op's caller (the client is shut down or the op cannot run).
    fn fail(self, e: &Error) {
        match self {
            Op::Connect { reply, .. }
            | Op::Logon { reply, .. }
            | Op::ConnectAndLogon { reply }
            | Op::Disconnect { reply }
            | Op::Unsubscribe { reply, .. }
            | Op::Flush { reply, .. } => answer(reply, Err(e.clone())),
            Op::Close { reply } => answer(reply, Ok(())),
            Op::Execute { reply, .. } => answer(reply, Err(e.clone())),
            Op::UnpersistedCount(reply) => answer(reply, Err(e.clone())),
            Op::PublishCommand(_)
            | Op::StreamClosed { .. }
            | Op::Ack { .. }
            | Op::Handled(_)
            | Op::Discard { .. }
            | Op::Update(_) => {}
        }
    }
}

/// A map keyed by command id.
pub(crate) type IdMap<V> = HashMap<CommandId, V, BuildHasherDefault<CommandIdHasher>>;

/// Why the head of the user queue waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Blocked {
    /// The publish store's window is full: until a persisted ack frees room.
    Window,
    /// Not logged on (HA with retry-on-disconnect): until logged on again.
    Offline,
    /// The socket takes no more bytes right now: until a write makes progress.
    Transmit,
}

/// A subscription, query or other command whose messages go somewhere.
struct Route {
    kind: CommandKind,
    target: RouteTarget,
    /// Acks the application asked for (delivered as messages).
    user_acks: AckTypes,
    /// The server reported a queue backlog for it.
    queue: bool,
    sub_id: String,
}

enum RouteTarget {
    Stream(Arc<StreamShared>),
    Handler,
}

/// A caller blocked until a command is processed or complete.
struct Wait {
    reply: WaitReply,
    /// Answer at the `processed` ack (subscriptions, queries) rather than at completion.
    on_processed: bool,
    /// The last ack with counts (for `sow_delete`).
    ack: Option<Message>,
}

enum WaitReply {
    Exec(Reply<Executed>, String),
    Unit(Reply<()>),
    /// A `flush` (`publish_flush` with `store`), sent again after a reconnect if the
    /// connection drops before it completes (HA with retry-on-disconnect).
    Flush(Reply<()>, Option<Duration>),
}

/// An output of the event loop, delivered in order.
// A handler's message is held inline (about 140 bytes): boxing it would cost an allocation per
// message, which is what the owned messages' shared blocks avoid.
#[allow(clippy::large_enum_variant)]
enum Out {
    /// Consecutive messages for one stream (route `id`), pushed under one lock.
    Stream {
        stream: Arc<StreamShared>,
        id: CommandId,
        msgs: VecDeque<Message>,
    },
    Finish(Arc<StreamShared>, Option<Error>),
    Dispatch(dispatch::Item),
}

/// Bytes on their way into the session.
enum Rx {
    /// Plaintext of connection `conn_id`, consumed from `pos`.
    Bytes {
        conn_id: u64,
        buf: Vec<u8>,
        len: usize,
        pos: usize,
        /// The reader's buffer (returned to the inbox when consumed) or decrypted plaintext.
        recycle: bool,
        /// Inbound bytes this entry counts for in the inbox bound.
        counted: usize,
    },
    Closed {
        conn_id: u64,
        error: Option<std::io::Error>,
    },
}

/// The logon in flight.
struct LogonWait {
    id: CommandId,
    reply: Option<Reply<()>>,
    /// The connection string it is for (reported to the server chooser).
    uri: String,
}

/// Everything the I/O thread owns besides the session (split so events borrowing the session
/// can be handled with the rest mutable).
pub(crate) struct State {
    shared: Arc<Shared>,
    cfg: Settings,
    dispatch: Arc<DispatchQueue>,
    conn: Option<Conn>,
    conn_id: u64,
    /// Connection string of the plain client's connection.
    uri: Option<String>,
    readers: Vec<JoinHandle<()>>,
    user_q: VecDeque<Item>,
    blocked: Option<Blocked>,
    rx: VecDeque<Rx>,
    out: VecDeque<Out>,
    /// Copies deliveries into shared blocks (one allocation per block, not per message).
    writer: BlockWriter,
    routes: IdMap<Route>,
    waits: IdMap<Wait>,
    logon: Option<LogonWait>,
    ha_waiters: Vec<Reply<()>>,
    close_waiters: Vec<Reply<()>>,
    /// The session's own `Connected` event is not reported again for a plain client, which
    /// reported it when `connect()` opened the transport (seeds: Connected at connect).
    skip_connected: bool,
    /// The application asked for the disconnect: no disconnect handler.
    user_disconnect: bool,
    /// `close()` is under way: outputs no longer wait for full streams.
    closing: bool,
    wbuf: Vec<u8>,
    wpos: usize,
    wlen: usize,
    /// Publish bytes processed since the last report to the inbox.
    done_pub: usize,
    /// Inbound bytes given to the session since the last report to the inbox.
    done_in: usize,
    /// Publishes refused while not connected, not yet reported.
    dropped_publishes: u64,
    finished: bool,
    /// `shutdown` ran.
    shut_down: bool,
}

/// The I/O thread.
pub(crate) struct Driver {
    session: Session,
    st: State,
}

const WBUF: usize = 256 * 1024;
/// Events handled between deliveries to streams and the dispatch queue.
const EVENT_BATCH: usize = 512;

impl Driver {
    /// Build the session from `cfg`.
    pub(crate) fn new(
        mut cfg: Settings,
        shared: Arc<Shared>,
        dispatch: Arc<DispatchQueue>,
    ) -> Result<Driver> {
        let mut c = Config::new(&shared.name);
        c.heartbeat = cfg.heartbeat;
        c.logon_timeout = clock::core_duration(cfg.logon_timeout);
        c.command_timeout = cfg.command_timeout.map(clock::core_duration);
        c.reconnect = cfg.reconnect;
        c.resubscribe = cfg.resubscribe;
        c.ack_batch_size = cfg.ack_batch_size;
        c.ack_timeout = clock::core_duration(cfg.ack_timeout);
        c.limits = cfg.limits;
        c.seed = seed();
        let pstore = cfg
            .publish_store
            .take()
            .unwrap_or_else(|| Box::new(NoPublishStore));
        let bstore = cfg
            .bookmark_store
            .take()
            .unwrap_or_else(|| Box::new(NoBookmarkStore));
        let has_store = pstore.is_enabled();
        let session = Session::new(&c, Parts::heap(&c.limits, pstore, bstore)).map_err(|e| {
            Error::with_source(
                crate::ErrorKind::Usage,
                format!("invalid client settings: {e}"),
                e,
            )
        })?;
        shared.set_has_store(has_store);
        Ok(Driver {
            session,
            st: State {
                shared,
                cfg,
                dispatch,
                conn: None,
                conn_id: 0,
                uri: None,
                readers: Vec::new(),
                user_q: VecDeque::new(),
                blocked: None,
                rx: VecDeque::new(),
                out: VecDeque::new(),
                writer: BlockWriter::new(BlockWriter::DEFAULT_BLOCK),
                routes: IdMap::default(),
                waits: IdMap::default(),
                logon: None,
                ha_waiters: Vec::new(),
                close_waiters: Vec::new(),
                skip_connected: false,
                user_disconnect: false,
                closing: false,
                wbuf: vec![0; WBUF],
                wpos: 0,
                wlen: 0,
                done_pub: 0,
                done_in: 0,
                dropped_publishes: 0,
                finished: false,
                shut_down: false,
            },
        })
    }

    /// The thread's body. Dropping the driver (normally or while unwinding) shuts down.
    pub(crate) fn run(mut self) {
        let mut items = VecDeque::new();
        while !self.st.finished {
            let now = clock::now();
            let wait = self.is_idle();
            let deadline = if wait {
                self.session
                    .poll_timeout()
                    .map(|t| std::time::Instant::now() + clock::until(now, t))
            } else {
                None
            };
            self.st.shared.inbox.take(&mut items, wait, deadline);
            for item in items.drain(..) {
                self.intake(item);
            }
            self.step(clock::now());
        }
    }

    /// One round of work.
    fn step(&mut self, now: amps_core::Instant) {
        self.drain_events(now);
        self.process_user(now);
        self.st.report_dropped();
        self.feed(now);
        if self.session.poll_timeout().is_some_and(|t| t <= now) {
            self.session.handle_timeout(now);
        }
        self.ha_connect(now);
        self.drain_events(now);
        self.transmit(now);
        self.report_progress();
    }

    /// Nothing can make progress until the inbox delivers or a timer is due.
    fn is_idle(&self) -> bool {
        let st = &self.st;
        let user_ready =
            !st.user_q.is_empty() && matches!(st.blocked, None | Some(Blocked::Transmit));
        let rx_ready = !st.rx.is_empty() && st.out.is_empty();
        let tx_pending = st.wpos < st.wlen && st.conn.is_some();
        !(user_ready || rx_ready || tx_pending || st.finished)
    }

    /// Tell the inbox how much was processed (publishers and the reader may be waiting).
    fn report_progress(&mut self) {
        let st = &mut self.st;
        st.shared.inbox.release(st.done_pub, st.done_in);
        st.done_pub = 0;
        st.done_in = 0;
        st.shared.set_unpersisted(self.session.unpersisted_count());
    }

    /// After `close()` (or if the thread unwinds): stop the other threads and answer the
    /// callers still waiting.
    fn shutdown(&mut self) {
        if self.st.shut_down {
            return;
        }
        self.st.shut_down = true;
        let err = Error::disconnected("the client is closed");
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
        if let Some(c) = self.st.conn.take()
            && let Some(r) = c.close()
        {
            self.st.readers.push(r);
        }
        // Streams nobody consumes may hold outputs back; deliver what the dispatch thread
        // takes and end every stream.
        for out in self.st.out.drain(..) {
            match out {
                Out::Dispatch(item) => self.st.dispatch.push_urgent(item),
                Out::Finish(s, e) => s.finish(e),
                Out::Stream { .. } => {}
            }
        }
        for (_, r) in self.st.routes.drain() {
            if let RouteTarget::Stream(s) = r.target {
                s.finish(None);
            }
        }
        for (_, w) in self.st.waits.drain() {
            w.fail(&err);
        }
        for r in self.st.ha_waiters.drain(..) {
            answer(r, Err(err.clone()));
        }
        self.st.dispatch.stop();
        for r in self.st.readers.drain(..) {
            let _ = r.join();
        }
        for r in self.st.close_waiters.drain(..) {
            answer(r, Ok(()));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Wait {
    fn fail(self, e: &Error) {
        match self.reply {
            WaitReply::Exec(r, _) => answer(r, Err(e.clone())),
            WaitReply::Unit(r) | WaitReply::Flush(r, _) => answer(r, Err(e.clone())),
        }
    }
}

impl State {
    /// Report a problem to the exception listener (through the dispatch thread, in order).
    fn report(&mut self, e: Error) {
        self.out.push_back(Out::Dispatch(dispatch::Item::Error(e)));
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
}

/// A seed for the session's backoff jitter, different per client.
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(clock::now().as_micros());
    h.finish()
}
