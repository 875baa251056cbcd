//! [`HaClient`]: a [`Client`] that keeps itself connected (seeds: "High availability"). It
//! connects through a [`ServerChooser`], waits between attempts as its delay strategy says,
//! replays unpersisted publishes from its publish store, and re-enters handler-based
//! subscriptions (bookmark subscriptions from MOST_RECENT, from its bookmark store), with the
//! connection states reported in the seeds' order.

use std::ops::Deref;
use std::path::Path;

use amps_core::ha::{
    Authenticator, ExponentialDelayStrategy, FixedDelayStrategy, ReconnectPolicy, ServerChooser,
};
use amps_core::session::{heap_bookmark_store, heap_publish_store};

use amps_fs::{BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions};

use crate::client::Client;
use crate::error::{Error, ErrorKind, Result};
use crate::settings::{Changed, Settings};

/// Bytes of the memory bookmark store of [`HaClient::memory_backed`].
const MEMORY_BOOKMARK_BYTES: usize = 1024 * 1024;

/// A delay strategy for reconnects (seeds: `ReconnectDelayStrategy`).
pub trait ReconnectDelay {
    /// As the session's policy.
    fn into_policy(self) -> ReconnectPolicy;
}

impl ReconnectDelay for FixedDelayStrategy {
    fn into_policy(self) -> ReconnectPolicy {
        ReconnectPolicy::Fixed(self)
    }
}

impl ReconnectDelay for ExponentialDelayStrategy {
    fn into_policy(self) -> ReconnectPolicy {
        ReconnectPolicy::Exponential(self)
    }
}

impl ReconnectDelay for ReconnectPolicy {
    fn into_policy(self) -> ReconnectPolicy {
        self
    }
}

/// A client that reconnects and fails over by itself (seeds: `HAClient`). It offers every
/// method of [`Client`] (it dereferences to one) and adds [`HaClient::connect_and_logon`].
///
/// ```no_run
/// use amps_std::{DefaultServerChooser, HaClient};
/// let client = HaClient::memory_backed("reliable-publisher");
/// client.set_server_chooser(DefaultServerChooser::new(vec![
///     "tcp://primary:9007/amps/json".to_string(),
///     "tcp://secondary:9007/amps/json".to_string(),
/// ]))?;
/// client.connect_and_logon()?;
/// client.publish("events", r#"{"n":1}"#)?;
/// client.publish_flush(std::time::Duration::from_secs(5))?;
/// # Ok::<(), amps_std::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct HaClient {
    client: Client,
}

impl HaClient {
    /// An HA client named `name`, without stores: it reconnects (exponential backoff by
    /// default) and re-enters handler subscriptions, but does not replay publishes.
    pub fn new(name: &str) -> HaClient {
        HaClient::with_settings(name, Settings::default())
    }

    fn with_settings(name: &str, mut settings: Settings) -> HaClient {
        settings.reconnect = ReconnectPolicy::Exponential(ExponentialDelayStrategy::default());
        settings.resubscribe = true;
        HaClient {
            client: Client::with_settings(name, settings, true),
        }
    }

    /// An HA client with a memory publish store and a memory bookmark store (seeds:
    /// `create_memory_backed`): publishes survive disconnects (not a restart of the process),
    /// bookmark subscriptions resume where the application discarded.
    pub fn memory_backed(name: &str) -> HaClient {
        let mut s = Settings::default();
        s.publish_store = Some(Box::new(heap_publish_store(&s.limits)));
        s.bookmark_store = Some(Box::new(heap_bookmark_store(MEMORY_BOOKMARK_BYTES)));
        HaClient::with_settings(name, s)
    }

    /// An HA client with file-backed stores (seeds: `create_file_backed`): the publish store
    /// in directory `publish_path`, the bookmark store in file `bookmark_path` (both created
    /// if missing). After a crash or restart under the same client name, unpersisted
    /// publishes are replayed and bookmark subscriptions resume where the application
    /// discarded. Stores of `amps-fs` with their default options (fsync at most 100 ms after a
    /// write); build them yourself and use [`Client::set_publish_store`] /
    /// [`Client::set_bookmark_store`] for other options. Errors: kind `Store` (a store is
    /// locked by another instance, belongs to another client name, or is damaged).
    pub fn file_backed(
        name: &str,
        publish_path: impl AsRef<Path>,
        bookmark_path: impl AsRef<Path>,
    ) -> Result<HaClient> {
        let store_err = |what: &str, e: amps_fs::OpenError| {
            Error::with_source(ErrorKind::Store, format!("cannot open the {what}: {e}"), e)
        };
        let publish = FilePublishStore::open(publish_path, name, FileStoreOptions::default())
            .map_err(|e| store_err("publish store", e))?;
        let bookmarks =
            FileBookmarkStore::open(bookmark_path, name, BookmarkStoreOptions::default())
                .map_err(|e| store_err("bookmark store", e))?;
        let s = Settings {
            publish_store: Some(Box::new(publish)),
            bookmark_store: Some(Box::new(bookmarks)),
            ..Settings::default()
        };
        Ok(HaClient::with_settings(name, s))
    }

    /// The underlying client handle.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Which servers to connect to (seeds: `ServerChooser`), e.g. a
    /// [`crate::DefaultServerChooser`] over a list of connection strings.
    pub fn set_server_chooser(&self, chooser: impl ServerChooser + Send + 'static) -> Result<()> {
        let chooser: Box<dyn ServerChooser + Send> = Box::new(chooser);
        self.client.configure(move |s| {
            s.chooser = Some(chooser);
            Changed::default()
        })
    }

    /// How long to wait between attempts, and when to give up (seeds:
    /// `set_reconnect_delay_strategy`): a [`FixedDelayStrategy`] or an
    /// [`ExponentialDelayStrategy`].
    pub fn set_reconnect_delay_strategy(&self, strategy: impl ReconnectDelay) -> Result<()> {
        let policy = strategy.into_policy();
        self.client.configure(move |s| {
            s.reconnect = policy;
            Changed {
                reconnect: true,
                ..Changed::default()
            }
        })
    }

    /// The authenticator used for every connection.
    pub fn set_authenticator(&self, a: impl Authenticator + Send + 'static) -> Result<()> {
        let a: Box<dyn Authenticator + Send> = Box::new(a);
        self.client.configure(move |s| {
            s.authenticator = a;
            Changed::default()
        })
    }

    /// Seeds: `retry_on_disconnect` (default true): a command sent while the client is
    /// reconnecting waits for the new connection. When false it fails at once with
    /// `Disconnected` (publishes with a publish store are still stored and replayed).
    pub fn set_retry_on_disconnect(&self, on: bool) {
        self.client.shared().set_retry_on_disconnect(on);
    }

    /// Connect and log on (seeds: `connect_and_logon()`): tries the chooser's servers, waiting
    /// as the delay strategy says, until one accepts. Errors: the logon was refused
    /// (`Authentication`, ...; not retried with the same credentials), or the strategy or the
    /// chooser gave up (`Disconnected`; the client is then shut down).
    pub fn connect_and_logon(&self) -> Result<()> {
        self.client.connect_and_logon_op()
    }
}

impl Deref for HaClient {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}
