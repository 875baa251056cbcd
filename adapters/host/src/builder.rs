//! [`ClientBuilder`]: shared by the blocking and the async client, and by their HA variants.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use amps_core::ha::{Authenticator, DefaultServerChooser, ServerChooser};
use amps_core::session::{Limits, heap_bookmark_store, heap_publish_store};
use amps_core::store::{BookmarkStore, PublishStore};

use crate::client::{Adapter, HaAdapter, Handle};
use crate::config::{HaSettings, Settings, StreamOptions};
use crate::delay::DelayStrategy;
use crate::error::Result;
use crate::ha_handles::{DelayStrategyHandle, ServerChooserHandle};
use crate::net::{Direction, TlsConfig};

/// Bytes of the memory bookmark store of a memory-backed HA client.
const MEMORY_BOOKMARK_BYTES: usize = 1 << 20;

/// Builds a client: `Client::builder(name)` or `HaClient::builder(name)` in either adapter
/// (the same options for the blocking and the async client).
///
/// ```ignore
/// let client = Client::builder("my-app")
///     .heartbeat(Duration::from_secs(5), Duration::from_secs(10))
///     .ack_batch_size(10)
///     .build()?;
/// ```
pub struct ClientBuilder<C> {
    pub(crate) settings: Settings,
    _client: PhantomData<fn() -> C>,
}

impl<C: Adapter> ClientBuilder<C> {
    /// A builder for a client named `name` (unique per server and stable across restarts of
    /// a publisher: with a transaction log the name identifies the publisher).
    pub fn new(name: impl Into<String>) -> Self {
        ClientBuilder {
            settings: Settings::new(name.into(), C::HA),
            _client: PhantomData,
        }
    }

    /// Build the client (no connection yet). Errors: `Usage` for an invalid name or limits.
    pub fn build(self) -> Result<C> {
        Handle::new(self.settings, C::spawn).map(C::from_handle)
    }

    /// Buffer and table bounds of the session (default: 16 MiB frames, 1 MiB transmit
    /// buffer, a publish window of 100 000 messages / 64 MiB).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.settings.limits = limits;
        self
    }

    /// Heartbeats: the server sends traffic at least every `interval` (whole seconds on the
    /// wire), and the client declares the connection dead after `timeout` without a complete
    /// frame (twice the interval is the server's own rule).
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        self.settings.heartbeat = Some((interval, timeout));
        self
    }

    /// Time limit for a logon, challenges and `retry` answers included (default 10 s).
    pub fn logon_timeout(mut self, t: Duration) -> Self {
        self.settings.timeouts.logon = t;
        self
    }

    /// Time limit for every call that waits for the server and sets none itself (default
    /// 30 s): a command's `processed` ack (a subscription or query) or its completion (other
    /// commands), `flush`, `unsubscribe`, and `publish` while the publish queue is full. A
    /// command's own [`Command::timeout`](amps_core::codec::Command::timeout) takes
    /// precedence. On timeout the call fails `TimedOut` and a subscription is unsubscribed.
    pub fn command_timeout(mut self, t: Duration) -> Self {
        self.settings.timeouts.command = t;
        self
    }

    /// Time limit for opening a transport, TLS handshake included (default 10 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.settings.timeouts.connect = t;
        self
    }

    /// Time limit for `close()` (default 10 s): message handlers still queued when it passes
    /// are not run, and `close()` returns even if a handler is still running.
    pub fn close_timeout(mut self, t: Duration) -> Self {
        self.settings.timeouts.close = t;
        self
    }

    /// Refuse a server that has not persisted publishes this client already saw persisted by
    /// another server or before a restart (the Python client's `set_error_on_publish_gap`):
    /// its logon fails with `PublishStoreGap` and an HA client moves on to the next server.
    /// Off by default; needs a publish store.
    pub fn error_on_publish_gap(mut self, on: bool) -> Self {
        self.settings.error_on_publish_gap = on;
        self
    }

    /// A publish store: publishes are numbered, kept until persisted and replayed after a
    /// reconnect.
    pub fn publish_store(mut self, store: impl PublishStore + Send + 'static) -> Self {
        self.settings.publish_store_kind = std::any::type_name_of_val(&store);
        self.settings.publish_store = Box::new(store);
        self
    }

    /// A bookmark store: bookmark subscriptions resume after the last discarded message.
    pub fn bookmark_store(mut self, store: impl BookmarkStore + Send + 'static) -> Self {
        self.settings.bookmark_store_kind = std::any::type_name_of_val(&store);
        self.settings.bookmark_store = Box::new(store);
        self
    }

    /// How `tcps` connections verify the server (default: webpki roots, verification on).
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.settings.tls = tls;
        self
    }

    /// See the raw bytes of the connection both ways. It runs on the connection's loop: it
    /// must be quick and must not call the client; a panic in it is reported, not propagated.
    pub fn transport_filter(
        mut self,
        f: impl Fn(Direction, &[u8]) + Send + Sync + 'static,
    ) -> Self {
        self.settings.transport_filter = Some(Arc::new(f));
        self
    }

    /// The authenticator used at every logon (default: the password of the connection
    /// string).
    pub fn authenticator(mut self, a: impl Authenticator + Send + 'static) -> Self {
        self.settings.authenticator = Box::new(a);
        self
    }

    /// Defaults for every stream this client returns.
    pub fn stream_options(mut self, opts: StreamOptions) -> Self {
        self.settings.stream = opts;
        self
    }

    /// Acknowledge queue messages automatically: when a handler returns (a failing handler
    /// returns the message to the queue), or when a stream is asked for its next message.
    pub fn auto_ack(mut self, on: bool) -> Self {
        self.settings.auto_ack = on;
        self
    }

    /// Queue acks sent together in one `sow_delete` (default 1); capped by the
    /// subscription's backlog.
    pub fn ack_batch_size(mut self, n: u32) -> Self {
        self.settings.ack_batch_size = n.max(1);
        self
    }

    /// Longest time a queue ack waits in a batch (default 1 s).
    pub fn ack_timeout(mut self, t: Duration) -> Self {
        self.settings.ack_timeout = t;
        self
    }

    /// Options sent with every logon (`o`), e.g. `ack_conflation=100ms` or `pretty`
    /// (docs/protocol.md §6.1), at most 128 bytes (`build` fails with `Usage` otherwise).
    /// `pretty` in the connection string is added to them.
    pub fn logon_options(mut self, options: impl Into<String>) -> Self {
        self.settings.logon_options = Some(options.into()).filter(|o| !o.is_empty());
        self
    }

    /// Bytes of publishes the client queues before `publish` waits (default 4 MiB), on top
    /// of the publish store's window.
    pub fn publish_queue_bytes(mut self, n: usize) -> Self {
        self.settings.publish_queue_bytes = n;
        self
    }

    /// Bytes of received messages the client holds for the application at most, across all
    /// streams, handlers and event queues (default 60 MiB); past it the overflow policy of the
    /// stream receiving applies.
    pub fn receive_bytes(mut self, n: usize) -> Self {
        self.settings.receive_bytes = n;
        self
    }

    /// Items queued for message handlers and listeners before the client stops reading from
    /// the server (default 16 384).
    pub fn dispatch_capacity(mut self, n: usize) -> Self {
        self.settings.dispatch_capacity = n.max(1);
        self
    }
}

impl<C: HaAdapter> ClientBuilder<C> {
    fn ha(&mut self) -> &mut HaSettings {
        self.settings.ha.get_or_insert_with(HaSettings::new)
    }

    /// Which servers to connect to.
    pub fn server_chooser(mut self, chooser: impl ServerChooser + Send + 'static) -> Self {
        let handle = ServerChooserHandle::new(chooser);
        let ha = self.ha();
        ha.chooser = Some(handle.proxy());
        ha.chooser_handle = Some(handle);
        self
    }

    /// Rotate through these connection strings (a [`DefaultServerChooser`]; the built
    /// client's `server_chooser()` reaches it as a `DefaultServerChooser<Vec<String>>`).
    pub fn uris<I, S>(self, uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list: Vec<String> = uris.into_iter().map(Into::into).collect();
        self.server_chooser(DefaultServerChooser::new(list))
    }

    /// How long to wait between reconnect attempts, and when to give up: a
    /// [`crate::FixedDelay`], an [`crate::ExponentialDelay`] (the default: 200 ms doubling up to
    /// 20 s, never giving up) or a strategy of the application's own.
    ///
    /// The client keeps it shared: `delay_strategy()` on the built client reaches it.
    pub fn delay_strategy(mut self, s: impl DelayStrategy + 'static) -> Self {
        let handle = DelayStrategyHandle::new(s);
        let ha = self.ha();
        ha.delay = handle.proxy();
        ha.delay_handle = handle;
        self
    }

    /// How long a connection must stay up before the delay strategy starts over (default
    /// 10 s): a server that accepts the client and drops it at once is retried at the
    /// strategy's growing delays, not at its first one forever.
    pub fn stability_window(mut self, t: Duration) -> Self {
        self.ha().stability = t;
        self
    }

    /// Time limit for `connect_and_logon` (default 60 s): when no server accepted a logon by
    /// then, the call fails `TimedOut` and the client stops trying until the next
    /// `connect_and_logon`. Reconnects after a logon are not limited by it (the delay
    /// strategy decides when to give up).
    pub fn connect_and_logon_timeout(mut self, t: Duration) -> Self {
        self.settings.timeouts.connect_and_logon = t;
        self
    }

    /// Commands issued while reconnecting wait for the connection (`true`, the default) or
    /// fail at once with `Disconnected`. Publishes with a publish store always wait.
    pub fn retry_on_disconnect(mut self, on: bool) -> Self {
        self.ha().retry_on_disconnect = on;
        self
    }

    /// Memory publish and bookmark stores: publishes survive disconnects (not a restart of
    /// the process), bookmark subscriptions resume where the application discarded.
    pub fn memory_backed(mut self) -> Self {
        let publish = heap_publish_store(&self.settings.limits);
        let bookmarks = heap_bookmark_store(MEMORY_BOOKMARK_BYTES);
        self.settings.publish_store_kind = std::any::type_name_of_val(&publish);
        self.settings.bookmark_store_kind = std::any::type_name_of_val(&bookmarks);
        self.settings.publish_store = Box::new(publish);
        self.settings.bookmark_store = Box::new(bookmarks);
        self
    }

    /// Durable stores (feature `fs`): unpersisted publishes in directory `publish_dir` and
    /// bookmark-subscription state in file `bookmark_file` survive a restart; after the next
    /// logon the client replays what the server has not persisted and resumes bookmark
    /// subscriptions. Use the same client name across restarts.
    ///
    /// Errors with kind `Store` when a store cannot be opened (held by another instance,
    /// written for another client name, damaged, I/O).
    #[cfg(feature = "fs")]
    pub fn file_backed(
        mut self,
        publish_dir: impl AsRef<std::path::Path>,
        bookmark_file: impl AsRef<std::path::Path>,
    ) -> Result<Self> {
        let (p, b) = crate::stores::open_files(&self.settings.name, publish_dir, bookmark_file)?;
        self.settings.publish_store_kind = std::any::type_name_of_val(&p);
        self.settings.bookmark_store_kind = std::any::type_name_of_val(&b);
        self.settings.publish_store = Box::new(p);
        self.settings.bookmark_store = Box::new(b);
        Ok(self)
    }
}

impl<C> std::fmt::Debug for ClientBuilder<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("name", &self.settings.name)
            .field("ha", &self.settings.ha.is_some())
            .finish_non_exhaustive()
    }
}
