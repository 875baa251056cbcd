//! [`Handle`]: everything a client does for the application, once, for the blocking and the
//! async client alike. Each operation checks its arguments, queues work for the driver and
//! returns at once, with a [`Pending`] answer where there is one: the blocking client waits
//! for it ([`Pending::wait`]), the async client awaits it. So the adapters' `Client` methods
//! are one line each, and behave the same.

use std::sync::{Arc, Mutex, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use amps_core::codec::{Command, CommandKind};
use amps_core::ha::Authenticator;
use amps_core::session::ConnectionState;

use crate::command::OwnedCommand;
use crate::config::{ANSWER_GRACE, PublishOptions, Settings, StreamOptions, Timeouts};
use crate::dispatch::{DispatchQueue, Dispatcher};
use crate::driver::Driver;
use crate::error::{Error, Result};
use crate::events::EventReceiver;
use crate::handler::{self, HandlerResult};
use crate::inbox::{PubKind, Refused};
use crate::listeners::ListenerId;
use crate::message::{FailedWrite, Message};
use crate::net::Direction;
use crate::op::{FlushKind, Op, Target};
use crate::params::Params;
use crate::shared::{Shared, Status};
use crate::stream::{StreamCore, StreamShared};
use crate::sync::{Pending, Ticket, lock, reply_pair};

/// What an adapter's client type provides to be built by a [`crate::ClientBuilder`].
pub trait Adapter: Sized {
    /// Whether this is an HA client (reconnects by itself).
    const HA: bool;
    /// Wrap the handle.
    fn from_handle(handle: Handle) -> Self;
    /// Start the driver's loop: a thread, a task. Called once, on first use.
    fn spawn(driver: Driver) -> Result<()>;
}

/// Marks an HA client type: its builder offers the HA options.
pub trait HaAdapter: Adapter {}

enum Start {
    /// Built, not running yet.
    Ready(Box<Driver>, Arc<DispatchQueue>),
    Running {
        dispatch: Option<JoinHandle<()>>,
        dispatch_thread: ThreadId,
        queue: Arc<DispatchQueue>,
        /// Set by `close()`: when closing gives up waiting for handlers.
        close_by: Option<Instant>,
    },
    Closed,
}

struct Inner {
    shared: Arc<Shared>,
    start: Mutex<Start>,
    spawn: fn(Driver) -> Result<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: the driver sends what is queued and closes.
        if matches!(*lock(&self.start), Start::Running { .. }) {
            let (reply, _) = reply_pair(None, "close");
            let _ = self.shared.send_op(Op::Close { reply });
        }
    }
}

/// A client's handle, shared by its clones: see the module docs. Dropping the last one closes
/// the client.
#[derive(Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

/// A handle that does not keep the client alive (for handlers that need the client).
#[derive(Clone)]
pub struct WeakHandle {
    inner: Weak<Inner>,
}

impl WeakHandle {
    /// The client, if it still exists.
    pub fn upgrade(&self) -> Option<Handle> {
        self.inner.upgrade().map(|inner| Handle { inner })
    }
}

impl Handle {
    pub(crate) fn new(settings: Settings, spawn: fn(Driver) -> Result<()>) -> Result<Handle> {
        let shared = Arc::new(Shared::new(&settings));
        let dispatch = DispatchQueue::new(settings.dispatch_capacity);
        let driver = Driver::new(settings, shared.clone(), dispatch.clone())?;
        Ok(Handle {
            inner: Arc::new(Inner {
                shared,
                start: Mutex::new(Start::Ready(Box::new(driver), dispatch)),
                spawn,
            }),
        })
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    fn timeouts(&self) -> Timeouts {
        self.shared().timeouts
    }

    /// A command's own time limit, or the client's.
    fn command_limit(&self, command: &Command<'_>) -> Duration {
        command.timeout.map_or(self.timeouts().command, |t| {
            Duration::from_micros(t.as_micros())
        })
    }

    /// A handle that does not keep the client alive.
    pub fn downgrade(&self) -> WeakHandle {
        WeakHandle {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// The client name.
    pub fn name(&self) -> &str {
        &self.shared().name
    }

    /// Start the driver and the dispatch thread if they are not running.
    fn ensure_started(&self) -> Result<()> {
        let mut st = lock(&self.inner.start);
        let (driver, queue) = match std::mem::replace(&mut *st, Start::Closed) {
            Start::Ready(d, q) => (d, q),
            running @ Start::Running { .. } => {
                *st = running;
                return Ok(());
            }
            Start::Closed => return Err(Error::closed()),
        };
        let dispatcher = Dispatcher::new(queue.clone(), self.shared().clone());
        let dispatch = std::thread::Builder::new()
            .name(format!("amps-dispatch-{}", self.name()))
            .spawn(move || dispatcher.run())
            .map_err(|e| {
                Error::with_source(crate::ErrorKind::Unknown, "cannot start a thread", e)
            })?;
        let dispatch_thread = dispatch.thread().id();
        (self.inner.spawn)(*driver)?;
        *st = Start::Running {
            dispatch: Some(dispatch),
            dispatch_thread,
            queue,
            close_by: None,
        };
        Ok(())
    }

    /// Queue `op` (built around a reply) for a running driver and return the pending answer.
    /// Before the first connect nothing would ever answer: it fails at once.
    fn call<T>(
        &self,
        what: &'static str,
        limit: Duration,
        op: impl FnOnce(crate::sync::Reply<T>) -> Op,
    ) -> Pending<T> {
        match &*lock(&self.inner.start) {
            Start::Running { .. } => {}
            Start::Ready(..) => {
                let how = if self.shared().ha {
                    "not connected: call connect_and_logon() first"
                } else {
                    "not connected: call connect() and logon() first"
                };
                return Pending::ready(Err(Error::disconnected(how)));
            }
            Start::Closed => return Pending::ready(Err(Error::closed())),
        }
        self.send(what, limit, op)
    }

    /// Start the driver if needed, then queue `op`.
    fn start_and_call<T>(
        &self,
        what: &'static str,
        limit: Duration,
        op: impl FnOnce(crate::sync::Reply<T>) -> Op,
    ) -> Pending<T> {
        if let Err(e) = self.ensure_started() {
            return Pending::ready(Err(e));
        }
        self.send(what, limit, op)
    }

    /// Queue `op`; its caller waits at most `limit` (the limit the driver enforces) and a
    /// little more, so that the driver's own error normally comes first.
    fn send<T>(
        &self,
        what: &'static str,
        limit: Duration,
        op: impl FnOnce(crate::sync::Reply<T>) -> Op,
    ) -> Pending<T> {
        let deadline = Instant::now().checked_add(limit.saturating_add(ANSWER_GRACE));
        let (reply, pending) = reply_pair(deadline, what);
        match self.shared().send_op(op(reply)) {
            // A refused op answered its reply already (see `Shared::send_op`).
            Ok(()) | Err(_) => pending,
        }
    }

    /// Queue a change of setting: applied when the driver gets to it, also before the first
    /// connect (the driver takes it when it starts).
    fn setting<T>(
        &self,
        what: &'static str,
        op: impl FnOnce(crate::sync::Reply<T>) -> Op,
    ) -> Pending<T>
    where
        T: Default,
    {
        match &*lock(&self.inner.start) {
            Start::Ready(..) => {
                let (reply, _) = reply_pair(None, what);
                Pending::ready(self.shared().send_op(op(reply)).map(|()| T::default()))
            }
            Start::Running { .. } => self.send(what, self.timeouts().command, op),
            Start::Closed => Pending::ready(Err(Error::closed())),
        }
    }

    /// Fail fast when nothing can be sent: closed.
    fn check_open(&self) -> Result<()> {
        match self.shared().status() {
            Status::Closed => Err(Error::closed()),
            _ => Ok(()),
        }
    }

    // ------------------------------------------------------------------ connecting

    /// Open the connection `uri` names (`tcp://`, `tcps://` or `unix://`, with credentials,
    /// message type and transport options). Errors: `AlreadyConnected`, `ConnectionRefused`,
    /// `TimedOut`, `InvalidUri`, `TransportType`, `InvalidTransportOptions`.
    pub fn connect(&self, uri: &str) -> Pending<()> {
        // Validate here so a bad URI fails before anything starts.
        if let Err(e) = amps_core::uri::Uri::parse(uri) {
            return Pending::ready(Err(e.into()));
        }
        let uri = uri.to_owned();
        self.start_and_call("connect", self.timeouts().connect, |reply| Op::Connect {
            uri,
            reply,
        })
    }

    /// Log on with the connection string's credentials (and the builder's authenticator).
    pub fn logon(&self) -> Pending<()> {
        self.call("logon", self.timeouts().logon, |reply| Op::Logon {
            auth: None,
            reply,
        })
    }

    /// Log on with `authenticator` supplying the password and answering challenges.
    pub fn logon_with(&self, authenticator: impl Authenticator + Send + 'static) -> Pending<()> {
        let auth: Box<dyn Authenticator + Send> = Box::new(authenticator);
        self.call("logon", self.timeouts().logon, |reply| Op::Logon {
            auth: Some(auth),
            reply,
        })
    }

    /// HA: connect to the server the chooser names and log on, failing over and retrying as
    /// the delay strategy allows.
    pub fn connect_and_logon(&self) -> Pending<()> {
        let limit = self.timeouts().connect_and_logon;
        self.start_and_call("connect_and_logon", limit, |reply| Op::ConnectAndLogon {
            reply,
        })
    }

    /// Close the connection; the client can connect again. No disconnect handler runs and an
    /// HA client stops reconnecting until `connect_and_logon`.
    pub fn disconnect(&self) -> Pending<()> {
        if matches!(*lock(&self.inner.start), Start::Ready(..)) {
            return Pending::ready(Ok(()));
        }
        self.call("disconnect", self.timeouts().command, |reply| {
            Op::Disconnect { reply }
        })
    }

    /// Shut the client down for good: queued publishes are sent, the connection closes,
    /// streams end, pending commands fail, the background work stops. Answered within the
    /// close timeout (default 10 s); then [`Handle::join`] waits for the handlers still
    /// queued, until the same deadline.
    pub fn close(&self) -> Pending<()> {
        let mut st = lock(&self.inner.start);
        if let Start::Ready(..) = &*st {
            // Never started: dropping the driver shuts it down.
            *st = Start::Closed;
            drop(st);
            self.shared().set_status(Status::Closed);
            return Pending::ready(Ok(()));
        }
        if let Start::Running { close_by, .. } = &mut *st {
            let limit = self.shared().timeouts.close;
            close_by.get_or_insert_with(|| Instant::now() + limit);
        }
        if let Start::Closed = &*st {
            return Pending::ready(Ok(()));
        }
        drop(st);
        self.call("close", self.timeouts().close, |reply| Op::Close { reply })
    }

    /// After [`Handle::close`] answered: wait for the dispatch thread to finish the handlers
    /// and listeners still queued (not when called from a handler, which runs on it), until
    /// the close deadline. A handler still running then is left to finish on its own.
    pub fn join(&self) {
        let mut st = lock(&self.inner.start);
        if let Start::Running {
            dispatch,
            dispatch_thread,
            queue,
            close_by,
        } = &mut *st
            && std::thread::current().id() != *dispatch_thread
            && let Some(d) = dispatch.take()
        {
            let queue = queue.clone();
            let deadline = close_by.unwrap_or_else(|| Instant::now() + self.timeouts().close);
            drop(st);
            if queue.wait_done(deadline) {
                let _ = d.join();
            }
        }
    }

    /// The connection state now.
    pub fn state(&self) -> ConnectionState {
        self.shared().state()
    }

    /// The version of the server, as its last logon ack gave it (`None` before the first
    /// logon, or when the server did not say).
    pub fn server_version(&self) -> Option<crate::version::ServerVersion> {
        self.shared().server_version()
    }

    /// The connection string of the open (or last) connection, with its password masked
    /// (the Python client's `get_uri()`).
    pub fn uri(&self) -> Option<String> {
        self.shared().uri()
    }

    /// Acknowledge a queue message by its topic and bookmark, without the message (the Python
    /// client's `ack(topic, bookmark)`): batched with the other acks. Errors: the client is
    /// closed.
    pub fn ack(&self, topic: &str, bookmark: &str) -> Result<()> {
        crate::control::ControlSink::control(
            &**self.shared(),
            crate::control::Control::Ack {
                route: None,
                topic: topic.to_owned(),
                bookmark: bookmark.to_owned(),
                how: amps_core::session::AckHow::Ack,
            },
        )
    }

    /// Whether the client is logged on now.
    pub fn is_logged_on(&self) -> bool {
        self.shared().status() == Status::LoggedOn
    }

    // ------------------------------------------------------------------ publishing

    /// Whether a publish may be queued now.
    fn check_publish(&self) -> Result<()> {
        let s = self.shared();
        match s.status() {
            Status::LoggedOn => Ok(()),
            Status::Closed => Err(Error::closed()),
            // A publish store keeps it for the next connection (numbering is known once the
            // client logged on once).
            _ if s.has_store && s.seq_known() => Ok(()),
            // HA: queued until the reconnect (retry on disconnect).
            _ if s.ha && s.retry_on_disconnect() => Ok(()),
            _ => Err(Error::disconnected("not connected")),
        }
    }

    /// Queue a publish if there is room: `Ok(false)` when the publish queue is full (wait for
    /// [`Handle::publish_space`] and try again).
    pub fn try_publish(
        &self,
        delta: bool,
        topic: &str,
        data: &[u8],
        options: &PublishOptions<'_>,
    ) -> Result<bool> {
        self.check_publish()?;
        let kind = if delta {
            PubKind::DeltaPublish
        } else {
            PubKind::Publish
        };
        match self
            .shared()
            .inbox
            .try_push_publish(kind, topic, data, options)
        {
            Ok(first) => {
                if first {
                    // The driver takes whole batches: only the first record needs a wake-up.
                    self.shared().signal.wake();
                }
                Ok(true)
            }
            Err(Refused::Full) => Ok(false),
            Err(_) => Err(Error::closed()),
        }
    }

    /// A ticket for room in the publish queue: take it before [`Handle::try_publish`], wait
    /// on it (blocking or `.await`) when that returned `false`.
    pub fn publish_space(&self) -> Ticket<'_> {
        self.shared().inbox.space.ticket()
    }

    /// Publish, blocking while the publish queue is full (backpressure), at most the command
    /// timeout: then `TimedOut`, and the message is not queued.
    pub fn publish_blocking(
        &self,
        delta: bool,
        topic: &str,
        data: &[u8],
        options: &PublishOptions<'_>,
    ) -> Result<()> {
        let mut deadline = None;
        loop {
            let space = self.publish_space();
            if self.try_publish(delta, topic, data, options)? {
                return Ok(());
            }
            let d = *deadline.get_or_insert_with(|| Instant::now() + self.timeouts().command);
            if !space.wait_blocking(Some(d)) && Instant::now() >= d {
                return Err(self.publish_timed_out());
            }
        }
    }

    fn publish_timed_out(&self) -> Error {
        Error::timed_out(format!(
            "the publish queue stayed full for {:?}: the connection is not taking publishes \
             (the message was not queued)",
            self.timeouts().command
        ))
    }

    /// Publish, waiting (async) while the publish queue is full, at most the command timeout
    /// (then `TimedOut`, the message not queued). Cancel-safe: the message is
    /// queued exactly once when the future completes, and not at all if it is dropped before.
    pub async fn publish_async(
        &self,
        delta: bool,
        topic: &str,
        data: &[u8],
        options: &PublishOptions<'_>,
    ) -> Result<()> {
        let mut deadline = None;
        loop {
            let space = self.publish_space();
            if self.try_publish(delta, topic, data, options)? {
                return Ok(());
            }
            let d = *deadline.get_or_insert_with(|| Instant::now() + self.timeouts().command);
            if crate::sync::with_deadline(space, d, "publish")
                .await
                .is_err()
            {
                return Err(self.publish_timed_out());
            }
        }
    }

    /// Publish a built command (a publish or delta publish with any headers), in order with
    /// the other publishes.
    pub fn publish_command(&self, command: &Command<'_>) -> Result<()> {
        if !command.kind.is_sequenced() {
            return Err(Error::usage(format!(
                "`{}` is not a publish; use execute",
                command.kind
            )));
        }
        self.check_publish()?;
        self.shared()
            .send_op(Op::PublishCommand(Box::new(OwnedCommand::new(command))))
    }

    /// Wait until the server processed every command sent before, at most `timeout` (`None`:
    /// the client's command timeout).
    pub fn flush(&self, timeout: Option<Duration>) -> Pending<()> {
        if let Err(e) = self.check_open() {
            return Pending::ready(Err(e));
        }
        let limit = timeout.unwrap_or(self.timeouts().command);
        self.call("flush", limit, |reply| Op::Flush {
            kind: FlushKind::Server(timeout),
            reply,
        })
    }

    /// Flush, then wait until the publish store is empty, at most `timeout` (`TimedOut`).
    pub fn publish_flush(&self, timeout: Duration) -> Pending<()> {
        if let Err(e) = self.check_open() {
            return Pending::ready(Err(e));
        }
        self.call("publish_flush", timeout, |reply| Op::Flush {
            kind: FlushKind::Store(timeout),
            reply,
        })
    }

    /// Messages in the publish store not yet acknowledged as persisted, plus publishes still
    /// queued in the client (0 without a publish store).
    pub fn unpersisted_count(&self) -> usize {
        let s = self.shared();
        if !s.has_store {
            return 0;
        }
        s.inbox.unpersisted()
    }

    // ------------------------------------------------------------------ receiving

    fn check_command(&self, cmd: &Command<'_>) -> Result<()> {
        self.check_open()?;
        if matches!(cmd.kind, CommandKind::Logon | CommandKind::Heartbeat) {
            return Err(Error::usage(
                "logon and heartbeats are the client's own commands",
            ));
        }
        Ok(())
    }

    /// Send `command` and get a stream of what it produces: records and deliveries, and the
    /// acks the command asks for. Answered once the server processed a subscription or query
    /// (a failure is the error), at once for other commands. `sow` queries get a batch size
    /// of 10 unless set. `options` default to the client's stream options.
    pub fn execute(
        &self,
        command: &Command<'_>,
        options: Option<StreamOptions>,
    ) -> Pending<StreamCore> {
        if let Err(e) = self.check_command(command) {
            return Pending::ready(Err(e));
        }
        let s = self.shared();
        let opts = options.unwrap_or(s.stream_defaults);
        let stream = StreamShared::new(&opts, s.budget.clone());
        let resubscribe = opts.resubscribe.unwrap_or(s.ha);
        let auto_ack = opts.auto_ack.unwrap_or_else(|| s.auto_ack());
        let limit = self.command_limit(command);
        let cmd = Box::new(OwnedCommand::new(command));
        self.call("the command", limit, |reply| Op::Execute {
            cmd,
            target: Target::Stream {
                stream,
                auto_ack,
                reply,
            },
            resubscribe,
        })
    }

    /// Send `command` with `handler` receiving its messages on the dispatch thread. Answered
    /// with the subscription id once the server processed the command. An HA client re-enters
    /// such subscriptions after a reconnect. The handler may return `()` or a `Result`;
    /// errors and panics are reported to the exception listener.
    pub fn execute_async<F, R>(&self, command: &Command<'_>, handler: F) -> Pending<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        if let Err(e) = self.check_command(command) {
            return Pending::ready(Err(e));
        }
        let resubscribe = self.shared().ha;
        let limit = self.command_limit(command);
        let cmd = Box::new(OwnedCommand::new(command));
        let handler = handler::handler(handler);
        self.call("the command", limit, |reply| Op::Execute {
            cmd,
            target: Target::Handler { handler, reply },
            resubscribe,
        })
    }

    /// Send a command and answer with its last ack carrying counts (a `sow_delete`'s stats).
    fn collect(&self, command: &Command<'_>) -> Pending<Message> {
        if let Err(e) = self.check_command(command) {
            return Pending::ready(Err(e));
        }
        let limit = self.command_limit(command);
        let cmd = Box::new(OwnedCommand::new(command));
        self.call("the command", limit, |reply| Op::Execute {
            cmd,
            target: Target::Collect(reply),
            resubscribe: false,
        })
    }

    /// Subscribe to `topic` (a name or a regular expression). `params`: a filter (`&str`,
    /// `Option<&str>`) or [`Params`] with a sub id, options, bookmark, timeout.
    pub fn subscribe<'a>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
    ) -> Pending<StreamCore> {
        self.execute(&params.into().apply(Command::subscribe(topic)), None)
    }

    /// Subscribe receiving only changed fields.
    pub fn delta_subscribe<'a>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
    ) -> Pending<StreamCore> {
        self.execute(&params.into().apply(Command::delta_subscribe(topic)), None)
    }

    /// Query the State of the World of `topic`; the stream ends after the last record.
    /// `params` may add `top_n`, `order_by`, `batch_size`, a bookmark (historical query).
    pub fn sow<'a>(&self, topic: &'a str, params: impl Into<Params<'a>>) -> Pending<StreamCore> {
        self.execute(&params.into().apply(Command::sow(topic)), None)
    }

    /// Query and subscribe atomically.
    pub fn sow_and_subscribe<'a>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
    ) -> Pending<StreamCore> {
        self.execute(
            &params.into().apply(Command::sow_and_subscribe(topic)),
            None,
        )
    }

    /// Query and delta-subscribe atomically.
    pub fn sow_and_delta_subscribe<'a>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
    ) -> Pending<StreamCore> {
        let cmd = params.into().apply(Command::sow_and_delta_subscribe(topic));
        self.execute(&cmd, None)
    }

    /// Subscribe from a point in the transaction log: `bookmark` is a bookmark, `EPOCH`,
    /// `NOW` or `MOST_RECENT` (resolved from the bookmark store). A stable `sub_id` resumes the
    /// same subscription after a restart.
    pub fn bookmark_subscribe(
        &self,
        topic: &str,
        bookmark: &str,
        filter: Option<&str>,
        sub_id: Option<&str>,
    ) -> Pending<StreamCore> {
        let mut p = Params::from(filter).bookmark(bookmark);
        if let Some(s) = sub_id {
            p = p.sub_id(s);
        }
        self.execute(&p.apply(Command::subscribe(topic)), None)
    }

    /// A named command with `handler` receiving its messages on the dispatch thread instead
    /// of a stream (the Python client's `subscribe(on_message, …)` forms): `kind` is the
    /// command (`Subscribe`, `DeltaSubscribe`, `Sow`, `SowAndSubscribe`,
    /// `SowAndDeltaSubscribe`). Answered with the subscription (or query) id.
    pub fn named_with_handler<'a, F, R>(
        &self,
        kind: CommandKind,
        topic: &'a str,
        params: impl Into<Params<'a>>,
        handler: F,
    ) -> Pending<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        let cmd = match kind {
            CommandKind::Subscribe => Command::subscribe(topic),
            CommandKind::DeltaSubscribe => Command::delta_subscribe(topic),
            CommandKind::Sow => Command::sow(topic),
            CommandKind::SowAndSubscribe => Command::sow_and_subscribe(topic),
            CommandKind::SowAndDeltaSubscribe => Command::sow_and_delta_subscribe(topic),
            other => {
                return Pending::ready(Err(Error::usage(format!(
                    "`{other}` has no handler form; use execute_async"
                ))));
            }
        };
        self.execute_async(&params.into().apply(cmd), handler)
    }

    /// Delete the SOW records of `topic` matching the filter; answered with the stats ack
    /// (`records_deleted()`, `matches()`). `params`: the filter (`&str`) or [`Params`] with a
    /// filter and options or a timeout.
    pub fn sow_delete<'a>(
        &self,
        topic: &'a str,
        params: impl Into<Params<'a>>,
    ) -> Pending<Message> {
        let params = params.into();
        if !params.has_filter() {
            return Pending::ready(Err(Error::usage(
                "sow_delete needs a filter (\"1=1\" deletes every record)",
            )));
        }
        self.collect(&params.apply(Command::new(CommandKind::SowDelete).topic(topic)))
    }

    /// Delete the SOW records with these keys (comma-separated).
    pub fn sow_delete_by_keys(&self, topic: &str, keys: &str) -> Pending<Message> {
        self.collect(&Command::sow_delete_by_keys(topic, keys))
    }

    /// Delete the SOW record `data` would update if published.
    pub fn sow_delete_by_data(&self, topic: &str, data: &[u8]) -> Pending<Message> {
        self.collect(&Command::sow_delete_by_data(topic, data))
    }

    /// End a subscription by its id; `"all"` ends every one. Its stream ends.
    pub fn unsubscribe(&self, sub_id: &str) -> Pending<()> {
        if let Err(e) = self.check_open() {
            return Pending::ready(Err(e));
        }
        let sub_id = sub_id.to_owned();
        self.call("unsubscribe", self.timeouts().command, |reply| {
            Op::Unsubscribe { sub_id, reply }
        })
    }

    // ------------------------------------------------------------------ settings

    /// Acknowledge queue messages automatically from now on (handlers, and streams created
    /// from now on).
    pub fn set_auto_ack(&self, on: bool) {
        self.shared().set_auto_ack(on);
    }

    /// Whether auto-ack is on.
    pub fn auto_ack(&self) -> bool {
        self.shared().auto_ack()
    }

    /// Queue acks sent together in one `sow_delete`.
    pub fn set_ack_batch_size(&self, n: u32) -> Result<()> {
        self.set_ack_batching(Some(n.max(1)), None)
    }

    /// Queue acks sent together in one `sow_delete`, as last set (default 1).
    pub fn ack_batch_size(&self) -> u32 {
        self.shared().ack_batching().0
    }

    /// Longest time a queue ack waits in a batch.
    pub fn set_ack_timeout(&self, t: Duration) -> Result<()> {
        self.set_ack_batching(None, Some(t))
    }

    /// Longest time a queue ack waits in a batch, as last set (default 1 s).
    pub fn ack_timeout(&self) -> Duration {
        self.shared().ack_batching().1
    }

    fn set_ack_batching(&self, size: Option<u32>, timeout: Option<Duration>) -> Result<()> {
        self.shared().send_op(Op::AckBatch { size, timeout })?;
        self.shared().set_ack_batching(size, timeout);
        Ok(())
    }

    /// Heartbeats: the server sends traffic at least every `interval` (whole seconds, at
    /// least 1) and the client declares the connection dead after `timeout` without a
    /// complete frame. An `interval` of zero stops heartbeats.
    pub fn set_heartbeat(&self, interval: Duration, timeout: Duration) -> Pending<()> {
        let hb = (!interval.is_zero()).then_some((interval, timeout));
        if let Some((i, t)) = hb
            && let Err(e) = crate::driver::heartbeat_config(i, t)
        {
            return Pending::ready(Err(e));
        }
        self.setting("set_heartbeat", |reply| Op::Heartbeat { hb, reply })
    }

    /// HA: commands issued while reconnecting wait for the connection (`true`) or fail at
    /// once with `Disconnected`.
    pub fn set_retry_on_disconnect(&self, on: bool) {
        self.shared().set_retry_on_disconnect(on);
    }

    /// HA: whether commands issued while reconnecting wait for the connection.
    pub fn retry_on_disconnect(&self) -> bool {
        self.shared().retry_on_disconnect()
    }

    /// Make the publish and bookmark stores durable now (file stores: fsync), and prune the
    /// bookmark store when asked. `close()` syncs too.
    pub fn sync_stores(&self, prune: bool) -> Pending<()> {
        self.call("sync_stores", self.timeouts().command, |reply| Op::Stores {
            prune,
            reply,
        })
    }

    /// The bookmark store's resume point for subscription `sub_id`: where a subscription
    /// with bookmark `MOST_RECENT` resumes (empty: the store knows none, so it starts at
    /// `EPOCH`). Needs a connection since the client was built, like `sync_stores`.
    pub fn most_recent(&self, sub_id: &str) -> Pending<String> {
        let sub_id = sub_id.to_owned();
        self.call("most_recent", self.timeouts().command, |reply| {
            Op::MostRecent { sub_id, reply }
        })
    }

    /// Replace the transport filter (`ClientBuilder::transport_filter`, with the same rules)
    /// from the next byte the connection reads or writes.
    pub fn set_transport_filter(
        &self,
        f: impl Fn(Direction, &[u8]) + Send + Sync + 'static,
    ) -> Result<()> {
        self.shared()
            .send_op(Op::TransportFilter(Some(Arc::new(f))))
    }

    /// Remove the transport filter, from the next byte the connection reads or writes.
    pub fn clear_transport_filter(&self) -> Result<()> {
        self.shared().send_op(Op::TransportFilter(None))
    }

    // ------------------------------------------------------------------ listeners

    /// Receive errors that have no caller to return to: handler errors and panics, failures
    /// of re-entered subscriptions, dropped publishes. Runs on the dispatch thread.
    pub fn set_exception_listener(&self, f: impl Fn(&Error) + Send + Sync + 'static) {
        *lock(&self.shared().listeners.exception) = Some(Arc::new(f));
    }

    /// Receive messages nothing else handles.
    pub fn set_last_chance_message_handler(&self, f: impl Fn(&Message) + Send + Sync + 'static) {
        *lock(&self.shared().listeners.last_chance) = Some(Arc::new(f));
    }

    /// Receive publishes the server refused, with the stored message when a publish store is
    /// set. Without it the failure ack goes to the last-chance handler.
    pub fn set_failed_write_handler(&self, f: impl Fn(&FailedWrite) + Send + Sync + 'static) {
        *lock(&self.shared().listeners.failed_write) = Some(Arc::new(f));
    }

    /// Be told of connection state changes, in order: Connected, LoggedOn,
    /// HeartbeatInitiated, PublishReplayed, Resubscribed; Disconnected; Shutdown. Runs on the
    /// dispatch thread, so it may call the client.
    pub fn add_connection_state_listener(
        &self,
        f: impl Fn(ConnectionState) + Send + Sync + 'static,
    ) -> ListenerId {
        let s = self.shared();
        let id = s
            .next_listener
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&s.listeners.state).push((id, Arc::new(f)));
        ListenerId(id)
    }

    /// Remove a connection state listener.
    pub fn remove_connection_state_listener(&self, id: ListenerId) {
        lock(&self.shared().listeners.state).retain(|(i, _)| *i != id.0);
    }

    /// Run `f` when the connection is lost (not after `disconnect()` or `close()`), on the
    /// dispatch thread. On an HA client it replaces the automatic reconnect.
    pub fn set_disconnect_handler(&self, f: impl Fn() + Send + Sync + 'static) -> Result<()> {
        *lock(&self.shared().listeners.disconnect) = Some(Arc::new(f));
        if self.shared().ha {
            self.shared().send_op(Op::StopReconnecting)?;
        }
        Ok(())
    }

    /// A receiver of the client's events from now on (see [`crate::ClientEvent`]).
    pub fn events(&self) -> EventReceiver {
        self.shared().events.subscribe()
    }

    /// Bytes of received messages the client holds for the application now, and its limit.
    pub fn received_bytes(&self) -> (usize, usize) {
        let b = &self.shared().budget;
        (b.used(), b.limit())
    }
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.name())
            .field("state", &self.state())
            .finish()
    }
}
