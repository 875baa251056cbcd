//! [`Client`]: the seeds' client API in Rust form (connect, logon, publish, subscribe, SOW,
//! queues, listeners). A `Client` is a cheap handle (clone it freely, share it across threads);
//! the first `connect` starts its I/O thread and its dispatch thread.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use amps_core::codec::Command;
use amps_core::ha::Authenticator;
use amps_core::session::{ConnectionState, HeartbeatConfig, Limits};
use amps_core::store::{BookmarkStore, PublishStore};
use rustls::ClientConfig;

use crate::dispatch::{self, DispatchQueue, Dispatcher, HandlerResult, Listeners};
use crate::driver::{self, Driver, Executed, Op, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::inbox::{Inbox, PubKind};
use crate::message::{FailedWrite, Message};
use crate::settings::{Changed, Settings};
use crate::stream::{DEFAULT_STREAM_CAPACITY, MessageStream, OverflowPolicy, StreamShared};
use crate::transport::{Direction, TransportFilter};

/// Where the connection is, as application threads see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Status {
    New = 0,
    Connected = 1,
    LoggedOn = 2,
    Disconnected = 3,
    Closed = 4,
}

/// What application threads, the I/O thread and the dispatch thread share.
pub(crate) struct Shared {
    pub(crate) name: String,
    pub(crate) inbox: Inbox,
    pub(crate) listeners: Listeners,
    /// An HA client (reconnects by itself).
    pub(crate) ha: bool,
    auto_ack: AtomicBool,
    retry: AtomicBool,
    status: AtomicU8,
    has_store: AtomicBool,
    seq_known: AtomicBool,
    unpersisted: AtomicUsize,
    next_listener: AtomicU64,
    /// Bound and overflow policy of new message streams.
    stream_limits: Mutex<(usize, OverflowPolicy)>,
}

impl Shared {
    /// Queue a command for the I/O thread.
    pub(crate) fn send(&self, op: Op) -> Result<()> {
        self.inbox
            .push_op(op)
            .map_err(|_| Error::disconnected("the client is closed"))
    }

    pub(crate) fn auto_ack(&self) -> bool {
        self.auto_ack.load(Ordering::Relaxed)
    }
    pub(crate) fn retry_on_disconnect(&self) -> bool {
        self.retry.load(Ordering::Relaxed)
    }
    pub(crate) fn set_retry_on_disconnect(&self, on: bool) {
        self.retry.store(on, Ordering::Relaxed);
    }
    pub(crate) fn set_status(&self, s: Status) {
        self.status.store(s as u8, Ordering::Release);
    }
    pub(crate) fn status(&self) -> Status {
        match self.status.load(Ordering::Acquire) {
            0 => Status::New,
            1 => Status::Connected,
            2 => Status::LoggedOn,
            3 => Status::Disconnected,
            _ => Status::Closed,
        }
    }
    pub(crate) fn set_has_store(&self, on: bool) {
        self.has_store.store(on, Ordering::Relaxed);
    }
    pub(crate) fn set_seq_known(&self) {
        self.seq_known.store(true, Ordering::Relaxed);
    }
    pub(crate) fn set_unpersisted(&self, n: usize) {
        self.unpersisted.store(n, Ordering::Relaxed);
    }
}

enum Start {
    /// Not connected yet: settings can still change.
    Pending(Box<Settings>),
    Running {
        driver: Option<JoinHandle<()>>,
        dispatch: Option<JoinHandle<()>>,
        dispatch_thread: ThreadId,
    },
    Closed,
}

/// The state behind [`Client`] handles; dropping the last handle closes the client.
pub(crate) struct ClientInner {
    pub(crate) shared: Arc<Shared>,
    start: Mutex<Start>,
}

/// A connection to an AMPS server (seeds: `Client`).
///
/// ```no_run
/// use amps_std::Client;
/// let client = Client::new("my-app-1");
/// client.connect("tcp://127.0.0.1:9007/amps/json")?;
/// client.logon()?;
/// client.publish("orders", r#"{"id":"A1","qty":100}"#)?;
/// for msg in client.sow("orders", Some("/qty > 50"))? {
///     println!("{}", msg?.data());
/// }
/// client.close();
/// # Ok::<(), amps_std::Error>(())
/// ```
///
/// Threads: the first `connect` starts an I/O thread (it owns the connection, processes acks,
/// answers heartbeats) and a dispatch thread (it runs message handlers and listeners), plus a
/// reader thread per connection. Handlers may call back into the client.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

/// Identifies a connection state listener for removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

impl Client {
    /// A client named `name` (seeds: the client name identifies the session and, with a
    /// transaction log, the publisher: keep it unique and stable across restarts).
    pub fn new(name: &str) -> Client {
        Client::with_settings(name, Settings::default(), false)
    }

    pub(crate) fn with_settings(name: &str, settings: Settings, ha: bool) -> Client {
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            inbox: Inbox::new(settings.publish_queue_bytes, settings.inbound_queue_bytes),
            listeners: Listeners::default(),
            ha,
            auto_ack: AtomicBool::new(false),
            retry: AtomicBool::new(true),
            status: AtomicU8::new(Status::New as u8),
            has_store: AtomicBool::new(settings.publish_store.is_some()),
            seq_known: AtomicBool::new(false),
            unpersisted: AtomicUsize::new(0),
            next_listener: AtomicU64::new(1),
            stream_limits: Mutex::new((DEFAULT_STREAM_CAPACITY, OverflowPolicy::Block)),
        });
        Client {
            inner: Arc::new(ClientInner {
                shared,
                start: Mutex::new(Start::Pending(Box::new(settings))),
            }),
        }
    }

    pub(crate) fn from_inner(inner: Arc<ClientInner>) -> Client {
        Client { inner }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// The client name.
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    fn start_lock(&self) -> MutexGuard<'_, Start> {
        self.inner.start.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Change a setting: directly before the first connect, through the I/O thread after.
    pub(crate) fn configure(
        &self,
        f: impl FnOnce(&mut Settings) -> Changed + Send + 'static,
    ) -> Result<()> {
        let mut st = self.start_lock();
        match &mut *st {
            Start::Pending(s) => {
                f(s);
                Ok(())
            }
            Start::Running { .. } => self.inner.shared.send(Op::Update(Box::new(f))),
            Start::Closed => Err(Error::disconnected("the client is closed")),
        }
    }

    /// Change a setting that only applies before the first connect (seeds: UsageException
    /// for properties that cannot change while connected).
    pub(crate) fn configure_before_start(
        &self,
        what: &str,
        f: impl FnOnce(&mut Settings),
    ) -> Result<()> {
        match &mut *self.start_lock() {
            Start::Pending(s) => {
                f(s);
                Ok(())
            }
            _ => Err(Error::usage(format!(
                "{what} can only be set before the client first connects"
            ))),
        }
    }

    /// Start the I/O and dispatch threads if they are not running.
    fn ensure_started(&self) -> Result<()> {
        let mut st = self.start_lock();
        let settings = match std::mem::replace(&mut *st, Start::Closed) {
            Start::Pending(s) => s,
            running @ Start::Running { .. } => {
                *st = running;
                return Ok(());
            }
            Start::Closed => return Err(Error::disconnected("the client is closed")),
        };
        let shared = self.inner.shared.clone();
        let queue = DispatchQueue::new(settings.dispatch_capacity);
        let driver = match Driver::new(*settings, shared.clone(), queue.clone()) {
            Ok(d) => d,
            Err(e) => {
                *st = Start::Closed;
                return Err(e);
            }
        };
        let dispatcher = Dispatcher::new(queue, shared.clone(), Arc::downgrade(&self.inner));
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name)
                .spawn(f)
                .map_err(|e| Error::with_source(ErrorKind::Unknown, "cannot start a thread", e))
        };
        let dispatch = spawn(
            format!("amps-dispatch-{}", shared.name),
            Box::new(move || dispatcher.run()),
        )?;
        let dispatch_thread = dispatch.thread().id();
        let driver = spawn(
            format!("amps-io-{}", shared.name),
            Box::new(move || driver.run()),
        )?;
        *st = Start::Running {
            driver: Some(driver),
            dispatch: Some(dispatch),
            dispatch_thread,
        };
        Ok(())
    }

    /// Send `op` (built around a reply channel) and wait for the answer.
    fn call<T>(&self, op: impl FnOnce(driver::Reply<T>) -> Op) -> Result<T> {
        if !matches!(*self.start_lock(), Start::Running { .. }) {
            // Nothing would ever answer: the client never connected, or it is closed.
            return Err(match self.inner.shared.status() {
                Status::Closed => Error::disconnected("the client is closed"),
                _ => Error::disconnected("not connected: connect first"),
            });
        }
        let (tx, rx) = driver::reply();
        self.inner.shared.send(op(tx))?;
        rx.recv()
            .unwrap_or_else(|_| Err(Error::disconnected("the client is closed")))
    }

    /// Fail fast when nothing can be sent: never connected, or closed.
    fn check_started(&self) -> Result<()> {
        match self.inner.shared.status() {
            Status::New if !self.inner.shared.ha => Err(Error::disconnected(
                "not connected: call connect() and logon() first",
            )),
            Status::Closed => Err(Error::disconnected("the client is closed")),
            _ => Ok(()),
        }
    }

    // ------------------------------------------------------------------ connecting

    /// Open the connection `uri` names (seeds: `connect()`): `tcp://`, `tcps://` or `unix://`,
    /// with credentials, message type and transport options, e.g.
    /// `tcp://user:pw@host:9007/amps/json?tcp_nodelay=true`. Errors: `AlreadyConnected`,
    /// `ConnectionRefused`, `InvalidUri`, `TransportType`, `InvalidTransportOptions`.
    pub fn connect(&self, uri: &str) -> Result<()> {
        // Validate here so a bad URI fails before any thread starts.
        amps_core::uri::Uri::parse(uri)?;
        self.ensure_started()?;
        let uri = uri.to_owned();
        self.call(|reply| Op::Connect { uri, reply })
    }

    /// Log on with the URI's credentials (seeds: `logon()`, `DefaultAuthenticator`).
    pub fn logon(&self) -> Result<()> {
        self.call(|reply| Op::Logon { auth: None, reply })
    }

    /// Log on with `authenticator` supplying the password and answering challenges.
    pub fn logon_with(&self, authenticator: impl Authenticator + Send + 'static) -> Result<()> {
        self.call(|reply| Op::Logon {
            auth: Some(Box::new(authenticator)),
            reply,
        })
    }

    pub(crate) fn connect_and_logon_op(&self) -> Result<()> {
        self.ensure_started()?;
        self.call(|reply| Op::ConnectAndLogon { reply })
    }

    /// Close the connection (seeds: `disconnect()`); the client can connect again. No
    /// disconnect handler runs and an HA client does not reconnect.
    pub fn disconnect(&self) -> Result<()> {
        if matches!(*self.start_lock(), Start::Pending(_)) {
            return Ok(());
        }
        self.call(|reply| Op::Disconnect { reply })
    }

    /// Shut the client down for good (seeds: `close()`): the connection closes, streams end,
    /// pending commands fail, the background threads stop (listeners see `Shutdown`).
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether the client is logged on now.
    pub fn is_connected(&self) -> bool {
        self.inner.shared.status() == Status::LoggedOn
    }

    // ------------------------------------------------------------------ publishing

    /// Publish `data` to `topic` (seeds: `publish()`). Returns once the message is queued for
    /// the I/O thread, without waiting for the server; failures are reported to the failed
    /// write handler (with a publish store) or the exception listener. Blocks while the
    /// client's publish queue is full (backpressure). With a publish store the message is
    /// numbered, kept until persisted and replayed after a reconnect.
    pub fn publish(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<()> {
        self.publish_kind(PubKind::Publish, topic, data.as_ref())
    }

    /// Merge `data` into the SOW record it keys (seeds: `delta_publish()`, protocol.md §12).
    pub fn delta_publish(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<()> {
        self.publish_kind(PubKind::DeltaPublish, topic, data.as_ref())
    }

    fn publish_kind(&self, kind: PubKind, topic: &str, data: &[u8]) -> Result<()> {
        self.check_publish()?;
        self.inner
            .shared
            .inbox
            .push_publish(kind, topic, data)
            .map_err(|_| Error::disconnected("the client is closed"))
    }

    /// Publish a built command (publish or delta_publish with expiration, correlation id, an
    /// explicit SOW key, ...), like [`Client::publish`].
    pub fn publish_command(&self, command: &Command<'_>) -> Result<()> {
        if !command.kind.is_sequenced() {
            return Err(Error::usage(format!(
                "`{}` is not a publish; use execute",
                command.kind
            )));
        }
        self.check_publish()?;
        self.inner.shared.send(Op::PublishCommand(Box::new(
            crate::command::OwnedCommand::new(command),
        )))
    }

    fn check_publish(&self) -> Result<()> {
        let s = &self.inner.shared;
        match s.status() {
            Status::LoggedOn => Ok(()),
            Status::Closed => Err(Error::disconnected("the client is closed")),
            // A publish store keeps it for the next connection (numbering is known once the
            // client logged on once, protocol.md §8.4).
            _ if s.has_store.load(Ordering::Relaxed) && s.seq_known.load(Ordering::Relaxed) => {
                Ok(())
            }
            // HA: queued until the reconnect (seeds: retry_on_disconnect).
            Status::Connected | Status::Disconnected if s.ha && s.retry_on_disconnect() => Ok(()),
            _ => Err(Error::disconnected("not connected")),
        }
    }

    /// Delete the SOW records of `topic` matching `filter` (`1=1` for all). Returns the
    /// acknowledgement, whose `records_deleted()` and `matches()` give the counts.
    pub fn sow_delete(&self, topic: &str, filter: &str) -> Result<Message> {
        self.collect(&Command::sow_delete(topic, filter))
    }

    /// Delete the SOW records with these keys (comma-separated SOW keys).
    pub fn sow_delete_by_keys(&self, topic: &str, keys: &str) -> Result<Message> {
        self.collect(&Command::sow_delete_by_keys(topic, keys))
    }

    /// Delete the SOW record `data` would update if published.
    pub fn sow_delete_by_data(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<Message> {
        self.collect(&Command::sow_delete_by_data(topic, data.as_ref()))
    }

    fn collect(&self, cmd: &Command<'_>) -> Result<Message> {
        let e = self.run(cmd, Target::Collect, false)?;
        e.ack
            .ok_or_else(|| Error::new(ErrorKind::Unknown, "the server sent no acknowledgement"))
    }

    /// Wait until the server processed every command sent before (seeds: `flush()`).
    pub fn flush(&self) -> Result<()> {
        self.check_started()?;
        self.call(|reply| Op::Flush { store: None, reply })
    }

    /// Flush, then wait until the publish store is empty, at most `timeout` (seeds:
    /// `publish_flush()`); error kind `TimedOut` if messages are still unpersisted.
    pub fn publish_flush(&self, timeout: Duration) -> Result<()> {
        self.check_started()?;
        self.call(|reply| Op::Flush {
            store: Some(timeout),
            reply,
        })
    }

    /// Messages in the publish store not yet acknowledged as persisted (seeds:
    /// `unpersisted_count()`); 0 without a store. Counts every publish sent before the call.
    pub fn unpersisted_count(&self) -> usize {
        match &*self.start_lock() {
            // Not started: the store itself (a file store recovered its contents at open).
            Start::Pending(s) => {
                return s
                    .publish_store
                    .as_ref()
                    .map_or(0, |p| p.unpersisted_count());
            }
            Start::Closed => return self.inner.shared.unpersisted.load(Ordering::Relaxed),
            Start::Running { .. } => {}
        }
        self.call(Op::UnpersistedCount)
            .unwrap_or_else(|_| self.inner.shared.unpersisted.load(Ordering::Relaxed))
    }

    // ------------------------------------------------------------------ receiving

    fn run(&self, cmd: &Command<'_>, target: Target, resubscribe: bool) -> Result<Executed> {
        self.check_started()?;
        if matches!(
            cmd.kind,
            amps_core::codec::CommandKind::Logon | amps_core::codec::CommandKind::Heartbeat
        ) {
            return Err(Error::usage(
                "logon and heartbeats are the client's own commands",
            ));
        }
        let cmd = Box::new(crate::command::OwnedCommand::new(cmd));
        self.call(|reply| Op::Execute {
            cmd,
            target,
            resubscribe,
            reply,
        })
    }

    /// Send `command` and return a stream of what it produces (seeds: `execute()`): records and
    /// deliveries, and the acks the command asks for. Returns once the server processed it
    /// (subscriptions and queries) or the command completed; a failure is the error (e.g.
    /// `BadFilter`, `InvalidTopic`). `sow` queries get a batch size of 10 unless set.
    pub fn execute(&self, command: &Command<'_>) -> Result<MessageStream> {
        let (cap, policy) = self.stream_limits();
        let shared = StreamShared::new(cap, policy);
        let e = self.run(command, Target::Stream(shared.clone()), false)?;
        Ok(MessageStream::new(
            shared,
            self.inner.shared.clone(),
            e.handle,
            e.sub_id,
        ))
    }

    /// Send `command` with `handler` receiving its messages on the dispatch thread (seeds:
    /// `execute_async()`). Returns the subscription id once the server processed the command.
    /// An HA client re-enters such subscriptions after a reconnect. The handler may return `()`
    /// or a `Result`; errors and panics go to the exception listener.
    pub fn execute_async<F, R>(&self, command: &Command<'_>, handler: F) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        let resubscribe = self.inner.shared.ha;
        let e = self.run(
            command,
            Target::Handler(dispatch::handler(handler)),
            resubscribe,
        )?;
        Ok(e.sub_id)
    }

    fn stream_limits(&self) -> (usize, OverflowPolicy) {
        *lock(&self.inner.shared.stream_limits)
    }

    /// Subscribe to `topic` (a topic name or a regular expression) with an optional content
    /// filter (seeds: `subscribe()`).
    pub fn subscribe(&self, topic: &str, filter: Option<&str>) -> Result<MessageStream> {
        self.execute(&with_filter(Command::subscribe(topic), filter))
    }

    /// Subscribe receiving only changed fields (seeds: `delta_subscribe()`, protocol.md §12.2).
    pub fn delta_subscribe(&self, topic: &str, filter: Option<&str>) -> Result<MessageStream> {
        self.execute(&with_filter(Command::delta_subscribe(topic), filter))
    }

    /// Query the State of the World of `topic` (seeds: `sow()`); the stream ends after the
    /// last record (after `group_end`).
    pub fn sow(&self, topic: &str, filter: Option<&str>) -> Result<MessageStream> {
        self.execute(&with_filter(Command::sow(topic), filter))
    }

    /// Query and subscribe atomically (seeds: `sow_and_subscribe()`).
    pub fn sow_and_subscribe(&self, topic: &str, filter: Option<&str>) -> Result<MessageStream> {
        self.execute(&with_filter(Command::sow_and_subscribe(topic), filter))
    }

    /// Query and delta-subscribe atomically (seeds: `sow_and_delta_subscribe()`).
    pub fn sow_and_delta_subscribe(
        &self,
        topic: &str,
        filter: Option<&str>,
    ) -> Result<MessageStream> {
        self.execute(&with_filter(
            Command::sow_and_delta_subscribe(topic),
            filter,
        ))
    }

    /// Subscribe from a point in the transaction log (seeds: `bookmark_subscribe()`):
    /// `bookmark` is a bookmark, `EPOCH` (`"0"`), `NOW` (`"0|1|"`) or `MOST_RECENT`
    /// (`"recent"`, resolved from the bookmark store). Give a stable `sub_id` to resume the
    /// same subscription after a restart. Call `discard()` on each message once processed.
    /// Returns the subscription id.
    pub fn bookmark_subscribe<F, R>(
        &self,
        topic: &str,
        bookmark: &str,
        filter: Option<&str>,
        sub_id: Option<&str>,
        handler: F,
    ) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        let mut cmd = with_filter(Command::subscribe(topic).bookmark(bookmark), filter);
        if let Some(s) = sub_id {
            cmd = cmd.sub_id(s);
        }
        self.execute_async(&cmd, handler)
    }

    /// End a subscription by its id (seeds: `unsubscribe()`); `"all"` ends every one.
    pub fn unsubscribe(&self, sub_id: &str) -> Result<()> {
        self.check_started()?;
        let sub_id = sub_id.to_owned();
        self.call(|reply| Op::Unsubscribe { sub_id, reply })
    }

    // ------------------------------------------------------------------ queues

    /// Acknowledge queue messages automatically (seeds: `set_auto_ack()`): when a handler
    /// returns (a failing handler returns the message to the queue), or when a stream is asked
    /// for its next message.
    pub fn set_auto_ack(&self, on: bool) {
        self.inner.shared.auto_ack.store(on, Ordering::Relaxed);
    }

    /// Whether auto-ack is on.
    pub fn auto_ack(&self) -> bool {
        self.inner.shared.auto_ack()
    }

    /// Acks sent together in one `sow_delete` (seeds: `set_ack_batch_size()`); capped by the
    /// subscription's backlog.
    pub fn set_ack_batch_size(&self, n: u32) -> Result<()> {
        self.configure(move |s| {
            s.ack_batch_size = n.max(1);
            Changed {
                acks: true,
                ..Changed::default()
            }
        })
    }

    /// Longest time an ack waits in a batch (seeds: `set_ack_timeout()`).
    pub fn set_ack_timeout(&self, t: Duration) -> Result<()> {
        self.configure(move |s| {
            s.ack_timeout = t;
            Changed {
                acks: true,
                ..Changed::default()
            }
        })
    }

    // ------------------------------------------------------------------ listeners

    /// Receive errors that have no caller to return to (seeds: `set_exception_listener()`):
    /// message handler errors and panics, failures of re-entered subscriptions, dropped
    /// publishes. Runs on the dispatch thread.
    pub fn set_exception_listener(&self, f: impl Fn(&Error) + Send + Sync + 'static) {
        *lock(&self.inner.shared.listeners.exception) = Some(Arc::new(f));
    }

    /// Receive messages nothing else handles (seeds: `set_last_chance_message_handler()`).
    pub fn set_last_chance_message_handler(&self, f: impl Fn(&Message) + Send + Sync + 'static) {
        *lock(&self.inner.shared.listeners.last_chance) = Some(Arc::new(f));
    }

    /// Receive sequenced commands the server refused, with the stored message when a publish
    /// store is set (seeds: `set_failed_write_handler()`). Without it the failure ack goes to
    /// the last-chance handler.
    pub fn set_failed_write_handler(&self, f: impl Fn(&FailedWrite) + Send + Sync + 'static) {
        *lock(&self.inner.shared.listeners.failed_write) = Some(Arc::new(f));
    }

    /// Be told of connection state changes (seeds: `add_connection_state_listener()`), in the
    /// seeds' order: Connected, LoggedOn, HeartbeatInitiated, PublishReplayed, Resubscribed;
    /// Disconnected; Shutdown. Runs on the dispatch thread, so it may call the client.
    pub fn add_connection_state_listener(
        &self,
        f: impl Fn(ConnectionState) + Send + Sync + 'static,
    ) -> ListenerId {
        let id = self
            .inner
            .shared
            .next_listener
            .fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.shared.listeners.state).push((id, Arc::new(f)));
        ListenerId(id)
    }

    /// Remove a connection state listener.
    pub fn remove_connection_state_listener(&self, id: ListenerId) {
        lock(&self.inner.shared.listeners.state).retain(|(i, _)| *i != id.0);
    }

    /// Run `f` when the connection is lost (seeds: `set_disconnect_handler()`), on the dispatch
    /// thread, with the client (to reconnect, for example). Not called after `disconnect()` or
    /// `close()`. On an HA client it replaces the automatic reconnect.
    pub fn set_disconnect_handler(
        &self,
        f: impl Fn(&Client) + Send + Sync + 'static,
    ) -> Result<()> {
        *lock(&self.inner.shared.listeners.disconnect) = Some(Arc::new(f));
        if self.inner.shared.ha {
            // Seeds: a disconnect handler completely replaces the HA reconnect behaviour.
            self.configure(|s| {
                s.reconnect = amps_core::ha::ReconnectPolicy::None;
                Changed {
                    reconnect: true,
                    ..Changed::default()
                }
            })?;
        }
        Ok(())
    }

    /// Heartbeats (seeds: `set_heartbeat(interval, timeout)`, protocol.md §9): the server sends
    /// traffic at least every `interval_secs` seconds and the client declares the connection
    /// dead after `timeout` without any (twice the interval is the server's own rule).
    /// `interval_secs` of 0 stops heartbeats.
    pub fn set_heartbeat(&self, interval_secs: u32, timeout: Duration) -> Result<()> {
        let hb = (interval_secs > 0).then(|| HeartbeatConfig {
            interval_secs,
            timeout: crate::clock::core_duration(timeout),
        });
        self.configure(move |s| {
            s.heartbeat = hb;
            Changed {
                heartbeat: true,
                ..Changed::default()
            }
        })
    }

    /// See the raw bytes of the connection both ways (seeds: `set_transport_filter()`). Runs on
    /// the I/O thread: it must be quick and must not call the client.
    pub fn set_transport_filter(
        &self,
        f: impl Fn(Direction, &[u8]) + Send + Sync + 'static,
    ) -> Result<()> {
        let f: Arc<TransportFilter> = Arc::new(f);
        self.configure(move |s| {
            s.transport_filter = Some(f);
            Changed::default()
        })
    }

    // ------------------------------------------------------------------ settings

    /// The TLS configuration for `tcps` (default: webpki roots, verification on).
    pub fn set_tls_config(&self, config: Arc<ClientConfig>) -> Result<()> {
        self.configure(move |s| {
            s.tls = Some(config);
            Changed::default()
        })
    }

    /// Time limit for opening a connection (default 10 s).
    pub fn set_connect_timeout(&self, t: Duration) -> Result<()> {
        self.configure(move |s| {
            s.connect_timeout = t;
            Changed::default()
        })
    }

    /// Default time limit for `processed` acks of commands that set none (seeds: command
    /// timeout; on timeout a subscription is unsubscribed and the call fails `TimedOut`).
    /// Before the first connect only.
    pub fn set_command_timeout(&self, t: Duration) -> Result<()> {
        self.configure_before_start("the command timeout", |s| s.command_timeout = Some(t))
    }

    /// Time limit for the logon ack (default 10 s). Before the first connect only.
    pub fn set_logon_timeout(&self, t: Duration) -> Result<()> {
        self.configure_before_start("the logon timeout", |s| s.logon_timeout = t)
    }

    /// Buffer and table bounds of the session (default `Limits::default()`: 16 MiB frames).
    /// Before the first connect only.
    pub fn set_limits(&self, limits: Limits) -> Result<()> {
        self.configure_before_start("the limits", |s| s.limits = limits)
    }

    /// A publish store (seeds: `PublishStore`): publishes are numbered, kept until persisted
    /// and replayed after reconnects. Before the first connect only.
    pub fn set_publish_store(&self, store: impl PublishStore + Send + 'static) -> Result<()> {
        let store: Box<dyn PublishStore + Send> = Box::new(store);
        self.configure_before_start("the publish store", |s| s.publish_store = Some(store))?;
        self.inner.shared.set_has_store(true);
        Ok(())
    }

    /// A bookmark store (seeds: `BookmarkStore`) for bookmark subscriptions. Before the first
    /// connect only.
    pub fn set_bookmark_store(&self, store: impl BookmarkStore + Send + 'static) -> Result<()> {
        let store: Box<dyn BookmarkStore + Send> = Box::new(store);
        self.configure_before_start("the bookmark store", |s| s.bookmark_store = Some(store))
    }

    /// Bound and overflow policy of message streams created from now on (default 10 000
    /// messages, [`OverflowPolicy::Block`]).
    pub fn set_stream_limits(&self, capacity: usize, policy: OverflowPolicy) {
        *lock(&self.inner.shared.stream_limits) = (capacity.max(1), policy);
    }
}

fn with_filter<'a>(c: Command<'a>, filter: Option<&'a str>) -> Command<'a> {
    match filter {
        Some(f) => c.filter(f),
        None => c,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ClientInner {
    fn close(&self) {
        let mut st = self.start.lock().unwrap_or_else(|p| p.into_inner());
        let (driver, dispatch, dispatch_thread) = match &mut *st {
            Start::Running {
                driver,
                dispatch,
                dispatch_thread,
            } => (driver.take(), dispatch.take(), *dispatch_thread),
            _ => {
                *st = Start::Closed;
                self.shared.set_status(Status::Closed);
                return;
            }
        };
        *st = Start::Closed;
        drop(st);
        let (tx, rx) = driver::reply();
        if self.shared.send(Op::Close { reply: tx }).is_ok() {
            let _ = rx.recv();
        }
        if let Some(d) = driver {
            let _ = d.join();
        }
        // A handler may close its own client: the dispatch thread cannot wait for itself.
        if std::thread::current().id() != dispatch_thread
            && let Some(d) = dispatch
        {
            let _ = d.join();
        }
    }
}

impl Drop for ClientInner {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.name())
            .field("status", &self.inner.shared.status())
            .finish()
    }
}
