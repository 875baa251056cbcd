//! [`Client`]: the seeds' client API in Rust form (connect, logon, publish, subscribe, SOW,
//! queues, listeners). A `Client` is a cheap handle (clone it freely, share it across threads);
//! the first `connect` starts its I/O thread and its dispatch thread. Commands are in
//! `commands.rs`, listeners and settings in `listeners.rs`.

mod commands;
mod listeners;

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};

use amps_core::ha::Authenticator;

use crate::dispatch::{DispatchQueue, Dispatcher, Listeners};
use crate::driver::{self, Driver, Op};
use crate::error::{Error, ErrorKind, Result};
use crate::inbox::Inbox;
use crate::settings::{Changed, Settings};
use crate::stream::{DEFAULT_STREAM_CAPACITY, OverflowPolicy};

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
