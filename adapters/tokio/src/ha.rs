//! [`HaClient`]: a [`Client`] that stays connected (seeds: "HAClient"): a server chooser, a
//! reconnect delay strategy, publish and bookmark stores, resubscription, and bookmark
//! subscriptions resumed from MOST_RECENT.

use amps_core::ha::{
    Authenticator, DefaultServerChooser, ExponentialDelayStrategy, FixedDelayStrategy,
    ReconnectPolicy, ServerChooser,
};
use amps_core::session::{Limits, heap_bookmark_store, heap_publish_store};

use crate::client::Client;
use crate::config::{BoxBookmarkStore, BoxPublishStore, ClientBuilder, HaConfig};
use crate::error::Result;
use crate::stream::StreamOptions;
use crate::tls::TlsConfig;

/// Bytes of the in-memory bookmark store of [`HaClient::memory_backed`].
const BOOKMARK_STORE_BYTES: usize = 256 * 1024;

/// A highly available client (seeds: `HAClient`). Derefs to [`Client`] for every command;
/// `connect`/`logon` are replaced by [`HaClient::connect_and_logon`].
///
/// After a disconnect it reconnects by itself: the chooser names the server, the delay
/// strategy the wait; on logon it replays the publish store, then re-enters subscriptions
/// (streams stay open across the failover; bookmark subscriptions resume from MOST_RECENT).
///
/// ```no_run
/// # async fn demo() -> amps_tokio::Result<()> {
/// let client = amps_tokio::HaClient::memory_backed(
///     "pub-1",
///     ["tcp://primary:9007/amps/json", "tcp://secondary:9007/amps/json"],
/// )?;
/// client.connect_and_logon().await?;
/// client.publish("orders", br#"{"id":1}"#).await?;
/// client.publish_flush(amps_core::Duration::from_secs(5)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct HaClient {
    client: Client,
}

impl core::ops::Deref for HaClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl HaClient {
    /// A builder: give it a chooser (or URIs) and stores.
    pub fn builder(name: impl Into<String>) -> HaClientBuilder {
        HaClientBuilder {
            inner: ClientBuilder::new(name),
            chooser: None,
            reconnect: ReconnectPolicy::Exponential(ExponentialDelayStrategy::default()),
            retry_on_disconnect: true,
        }
    }

    /// An HA client with in-memory publish and bookmark stores rotating through `uris`
    /// (seeds: `HAClient.create_memory_backed`).
    pub fn memory_backed<I, S>(name: impl Into<String>, uris: I) -> Result<HaClient>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        HaClient::builder(name).uris(uris).memory_stores().build()
    }

    /// An HA client with durable file-backed stores (seeds: `HAClient.create_file_backed`):
    /// unpersisted publishes in directory `publish_path` and bookmark-subscription state in
    /// file `bookmark_path` survive a restart of the application; after the next logon the
    /// client replays what the server has not persisted and resumes bookmark subscriptions
    /// from MOST_RECENT. Use the same `name` across restarts (protocol.md §8.3).
    ///
    /// Errors with kind `Store` when a store cannot be opened (held by another instance,
    /// written for another client name, damaged beyond a torn tail, I/O).
    pub fn file_backed<I, S>(
        name: impl Into<String>,
        uris: I,
        publish_path: impl AsRef<std::path::Path>,
        bookmark_path: impl AsRef<std::path::Path>,
    ) -> Result<HaClient>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let name = name.into();
        HaClient::builder(name.clone())
            .uris(uris)
            .file_stores(&name, publish_path, bookmark_path)?
            .build()
    }

    /// Connect to the server the chooser names and log on, failing over and retrying as the
    /// delay strategy allows (seeds: `connect_and_logon()`). Returns once logged on; errors
    /// when the strategy gives up or the logon is refused.
    ///
    /// Cancel-safety: dropping the future stops only the waiting; the client keeps
    /// connecting (use `disconnect` to stop it).
    pub async fn connect_and_logon(&self) -> Result<()> {
        self.client
            .ctl(|reply| crate::driver::Ctl::ConnectAndLogon { reply })
            .await
    }

    /// The plain client handle (shares the connection).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// Builds an [`HaClient`].
pub struct HaClientBuilder {
    inner: ClientBuilder,
    chooser: Option<Box<dyn ServerChooser + Send>>,
    reconnect: ReconnectPolicy,
    retry_on_disconnect: bool,
}

impl HaClientBuilder {
    /// Rotate through these connection strings ([`DefaultServerChooser`]).
    pub fn uris<I, S>(mut self, uris: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list: Vec<String> = uris.into_iter().map(Into::into).collect();
        self.chooser = Some(Box::new(DefaultServerChooser::new(list)));
        self
    }

    /// A custom server chooser (seeds: `ServerChooser`).
    pub fn chooser(mut self, chooser: impl ServerChooser + Send + 'static) -> Self {
        self.chooser = Some(Box::new(chooser));
        self
    }

    /// The same delay before every attempt (seeds: `FixedDelayStrategy`).
    pub fn fixed_delay(mut self, s: FixedDelayStrategy) -> Self {
        self.reconnect = ReconnectPolicy::Fixed(s);
        self
    }

    /// Exponential backoff with jitter and a maximum retry time (seeds:
    /// `ExponentialDelayStrategy`; the default).
    pub fn exponential_delay(mut self, s: ExponentialDelayStrategy) -> Self {
        self.reconnect = ReconnectPolicy::Exponential(s);
        self
    }

    /// Commands issued while reconnecting wait for the connection (`true`, the default) or
    /// fail at once with `Disconnected` (seeds: `retry_on_disconnect`). Publishes always wait
    /// (the publish store keeps them).
    pub fn retry_on_disconnect(mut self, on: bool) -> Self {
        self.retry_on_disconnect = on;
        self
    }

    /// In-memory publish and bookmark stores sized from the limits' publish window.
    pub fn memory_stores(mut self) -> Self {
        let limits: Limits = self.inner.config.limits;
        self.inner = self
            .inner
            .publish_store(Box::new(heap_publish_store(&limits)))
            .bookmark_store(Box::new(heap_bookmark_store(BOOKMARK_STORE_BYTES)));
        self
    }

    /// Durable stores from amps-fs: a [`amps_fs::FilePublishStore`] in directory
    /// `publish_path` and a [`amps_fs::FileBookmarkStore`] in file `bookmark_path`, both for
    /// client `name` (the name the client is built with), with default options.
    pub fn file_stores(
        self,
        name: &str,
        publish_path: impl AsRef<std::path::Path>,
        bookmark_path: impl AsRef<std::path::Path>,
    ) -> Result<Self> {
        let store = |e: amps_fs::OpenError| {
            crate::Error::new(amps_core::error_kind::ErrorKind::Store, e.to_string())
        };
        let publish = amps_fs::FilePublishStore::open(
            publish_path,
            name,
            amps_fs::FileStoreOptions::default(),
        )
        .map_err(store)?;
        let bookmarks = amps_fs::FileBookmarkStore::open(
            bookmark_path,
            name,
            amps_fs::BookmarkStoreOptions::default(),
        )
        .map_err(store)?;
        Ok(self
            .publish_store(Box::new(publish))
            .bookmark_store(Box::new(bookmarks)))
    }

    /// A publish store (memory or file backed).
    pub fn publish_store(mut self, store: BoxPublishStore) -> Self {
        self.inner = self.inner.publish_store(store);
        self
    }

    /// A bookmark store (memory or file backed).
    pub fn bookmark_store(mut self, store: BoxBookmarkStore) -> Self {
        self.inner = self.inner.bookmark_store(store);
        self
    }

    /// The authenticator for every connection.
    pub fn authenticator(mut self, a: impl Authenticator + Send + 'static) -> Self {
        self.inner = self.inner.authenticator(a);
        self
    }

    /// Any setting of the plain client (heartbeat, limits, TLS, streams, acks, ...).
    pub fn configure(mut self, f: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Self {
        self.inner = f(self.inner);
        self
    }

    /// Heartbeats (seeds: for an HA client, set before connecting).
    pub fn heartbeat(self, interval_secs: u32) -> Self {
        self.configure(|b| b.heartbeat(interval_secs))
    }

    /// TLS settings for `tcps` servers.
    pub fn tls(self, tls: TlsConfig) -> Self {
        self.configure(|b| b.tls(tls))
    }

    /// Stream defaults (streams of an HA client are re-entered after a failover by default).
    pub fn stream_options(self, opts: StreamOptions) -> Self {
        self.configure(|b| b.stream_options(opts))
    }

    /// Build the client (no connection yet).
    pub fn build(self) -> Result<HaClient> {
        let mut b = self.inner;
        b.config.ha = Some(HaConfig {
            chooser: self
                .chooser
                .unwrap_or_else(|| Box::new(DefaultServerChooser::new(Vec::<String>::new()))),
            reconnect: self.reconnect,
            retry_on_disconnect: self.retry_on_disconnect,
        });
        Ok(HaClient {
            client: Client::from_builder(b)?,
        })
    }
}
