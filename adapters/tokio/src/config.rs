//! Client settings: buffer bounds, heartbeats, TLS, stream defaults, queue-ack batching, and
//! for the HA client the server chooser, delay strategy, stores and authenticator.

use amps_core::Duration;
use amps_core::ha::{Authenticator, DefaultAuthenticator, ReconnectPolicy, ServerChooser};
use amps_core::session::{HeartbeatConfig, Limits};
use amps_core::store::{BookmarkStore, NoBookmarkStore, NoPublishStore, PublishStore};

use crate::stream::StreamOptions;
use crate::tls::TlsConfig;

/// Which way bytes travel, for a [`TransportFilter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Read from the server.
    Incoming,
    /// Written to the server.
    Outgoing,
}

/// Sees the raw bytes of the connection both ways, as read and as written (seeds:
/// `set_transport_filter`): length prefixes included, not aligned to frames, after TLS
/// decryption and before encryption. It runs on the driver task: keep it short.
pub type TransportFilter = std::sync::Arc<dyn Fn(Direction, &[u8]) + Send + Sync>;

/// Boxed publish store, chosen at run time.
pub type BoxPublishStore = Box<dyn PublishStore + Send>;
/// Boxed bookmark store, chosen at run time.
pub type BoxBookmarkStore = Box<dyn BookmarkStore + Send>;

/// Everything a client is built from (see [`ClientBuilder`]).
pub(crate) struct ClientConfig {
    pub(crate) name: String,
    pub(crate) limits: Limits,
    pub(crate) heartbeat: Option<HeartbeatConfig>,
    pub(crate) tls: TlsConfig,
    pub(crate) stream: StreamOptions,
    pub(crate) auto_ack: bool,
    pub(crate) ack_batch_size: u32,
    pub(crate) ack_timeout: Duration,
    pub(crate) command_timeout: Option<Duration>,
    pub(crate) logon_timeout: Duration,
    pub(crate) connect_timeout: std::time::Duration,
    pub(crate) staging_bytes: usize,
    pub(crate) publish_store: BoxPublishStore,
    pub(crate) bookmark_store: BoxBookmarkStore,
    pub(crate) ha: Option<HaConfig>,
    pub(crate) filter: Option<TransportFilter>,
}

/// The HA client's parts.
pub(crate) struct HaConfig {
    pub(crate) chooser: Box<dyn ServerChooser + Send>,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) retry_on_disconnect: bool,
}

/// Builds a [`crate::Client`] (or, through [`crate::HaClientBuilder`], an HA client).
///
/// ```
/// let client = amps_tokio::Client::builder("my-app")
///     .heartbeat(5)
///     .ack_batch_size(10)
///     .build()?;
/// # Ok::<(), amps_tokio::Error>(())
/// ```
pub struct ClientBuilder {
    pub(crate) config: ClientConfig,
    pub(crate) authenticator: Box<dyn Authenticator + Send>,
}

impl ClientBuilder {
    pub(crate) fn new(name: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            config: ClientConfig {
                name: name.into(),
                limits: Limits::default(),
                heartbeat: None,
                tls: TlsConfig::default(),
                stream: StreamOptions::default(),
                auto_ack: false,
                ack_batch_size: 1,
                ack_timeout: Duration::from_secs(1),
                command_timeout: None,
                logon_timeout: Duration::from_secs(10),
                connect_timeout: std::time::Duration::from_secs(10),
                staging_bytes: 4 * 1024 * 1024,
                publish_store: Box::new(NoPublishStore),
                bookmark_store: Box::new(NoBookmarkStore),
                ha: None,
                filter: None,
            },
            authenticator: Box::new(DefaultAuthenticator),
        }
    }

    /// Buffer and table bounds (default [`Limits::default`]: 16 MiB frames, 1 MiB transmit
    /// buffer, a publish window of 100 000 messages / 64 MiB).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// Heartbeat every `interval_secs` seconds; the connection is dead after twice that
    /// without traffic (seeds: `set_heartbeat(interval)`).
    pub fn heartbeat(mut self, interval_secs: u32) -> Self {
        self.config.heartbeat = Some(HeartbeatConfig::new(interval_secs));
        self
    }

    /// Heartbeat with an explicit silence timeout (seeds: `set_heartbeat(interval, timeout)`).
    pub fn heartbeat_with_timeout(mut self, interval_secs: u32, timeout: Duration) -> Self {
        self.config.heartbeat = Some(HeartbeatConfig {
            interval_secs,
            timeout,
        });
        self
    }

    /// How `tcps` connections verify the server (default: webpki roots).
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.config.tls = tls;
        self
    }

    /// Defaults for every stream this client returns.
    pub fn stream_options(mut self, opts: StreamOptions) -> Self {
        self.config.stream = opts;
        self
    }

    /// Acknowledge queue messages automatically (seeds: `set_auto_ack`).
    pub fn auto_ack(mut self, on: bool) -> Self {
        self.config.auto_ack = on;
        self
    }

    /// Queue acks batched before sending (seeds: `set_ack_batch_size`; default 1).
    pub fn ack_batch_size(mut self, n: u32) -> Self {
        self.config.ack_batch_size = n.max(1);
        self
    }

    /// Longest time a queue ack waits in a batch (seeds: `set_ack_timeout`; default 1 s).
    pub fn ack_timeout(mut self, t: Duration) -> Self {
        self.config.ack_timeout = t;
        self
    }

    /// Default limit for `processed` acks of commands that set none (default: none).
    pub fn command_timeout(mut self, t: Duration) -> Self {
        self.config.command_timeout = Some(t);
        self
    }

    /// Limit for the logon ack (default 10 s).
    pub fn logon_timeout(mut self, t: Duration) -> Self {
        self.config.logon_timeout = t;
        self
    }

    /// Limit for opening a transport (default 10 s).
    pub fn connect_timeout(mut self, t: std::time::Duration) -> Self {
        self.config.connect_timeout = t;
        self
    }

    /// Bytes of publishes the client queues before `publish` waits (default 4 MiB). This is
    /// on top of the publish window of the store.
    pub fn publish_queue_bytes(mut self, n: usize) -> Self {
        self.config.staging_bytes = n;
        self
    }

    /// A publish store: publishes are numbered, kept until persisted and replayed after a
    /// reconnect (seeds: "PublishStore").
    pub fn publish_store(mut self, store: BoxPublishStore) -> Self {
        self.config.publish_store = store;
        self
    }

    /// A bookmark store: bookmark subscriptions resume after the last discarded message.
    pub fn bookmark_store(mut self, store: BoxBookmarkStore) -> Self {
        self.config.bookmark_store = store;
        self
    }

    /// The authenticator used at logon (seeds: `Authenticator`; default: the URI password).
    pub fn authenticator(mut self, a: impl Authenticator + Send + 'static) -> Self {
        self.authenticator = Box::new(a);
        self
    }

    /// Inspect the raw bytes of the connection (seeds: `set_transport_filter`).
    pub fn transport_filter(
        mut self,
        f: impl Fn(Direction, &[u8]) + Send + Sync + 'static,
    ) -> Self {
        self.config.filter = Some(std::sync::Arc::new(f));
        self
    }

    /// Build the client (no connection yet).
    pub fn build(self) -> crate::Result<crate::Client> {
        crate::Client::from_builder(self)
    }
}
