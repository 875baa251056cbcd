//! What a built client can tell about its own configuration (the Python client's `get_…`
//! methods): the listeners it calls, its stores, its HA server chooser and delay strategy, and
//! the logon options, which can also be changed after the client is built.
//!
//! The stores and the server chooser belong to the connection's loop (the driver owns the
//! session that uses them), so the client describes them ([`PublishStoreInfo`],
//! [`BookmarkStoreInfo`], [`ServerChooserInfo`]) rather than lending them out; their
//! operations are client methods (`unpersisted_count`, `publish_flush`, `most_recent`,
//! `prune`, `sync_stores`, `Message::discard`). The delay strategy is shared: a
//! [`DelayStrategyHandle`] reaches the very strategy the client asks before each reconnect.

use std::any::Any;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::client::Handle;
use crate::config::{HaSettings, Settings};
use crate::delay::DelayStrategy;
use crate::error::{Error, Result};
use crate::lock::lock;
use crate::op::Op;

/// An exception listener as the client keeps it (see `set_exception_listener`): calling it
/// runs the application's listener.
pub type ExceptionListener = Arc<dyn Fn(&Error) + Send + Sync>;

/// A disconnect handler as the client keeps it (see `set_disconnect_handler`): calling it
/// runs the application's handler with the client it was set on (nothing once that client is
/// dropped).
pub type DisconnectHandler = Arc<dyn Fn() + Send + Sync>;

/// Longest logon options a session accepts, in bytes.
const LOGON_OPTIONS_MAX: usize = 128;

/// A client's publish store, as [`Handle::publish_store`] describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishStoreInfo {
    /// The Rust type of the store given to the builder (e.g. `amps_fs::FilePublishStore`),
    /// for diagnostics: not a stable identifier.
    pub kind: &'static str,
    /// Publishes not yet acknowledged as persisted, the ones still queued in the client
    /// included (the same figure as `unpersisted_count()`), when asked.
    pub unpersisted_count: usize,
    /// Whether a server missing publishes the store cannot replay fails the logon
    /// (`ClientBuilder::error_on_publish_gap`).
    pub error_on_publish_gap: bool,
}

/// A client's bookmark store, as [`Handle::bookmark_store`] describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BookmarkStoreInfo {
    /// The Rust type of the store given to the builder (e.g. `amps_fs::FileBookmarkStore`,
    /// or a `RecoveryPointStore` around one), for diagnostics: not a stable identifier.
    pub kind: &'static str,
}

/// An HA client's server chooser, as [`Handle::server_chooser`] describes it. Connection
/// strings are shown with their passwords masked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerChooserInfo {
    /// The Rust type of the chooser (`amps_core::ha::DefaultServerChooser` for
    /// `ClientBuilder::uris`), for diagnostics: not a stable identifier.
    pub kind: &'static str,
    /// The connection strings given to `ClientBuilder::uris`, in order; empty for a chooser
    /// given to `ClientBuilder::server_chooser`, whose list the client cannot see.
    pub uris: Vec<String>,
    /// The connection string the chooser named for the latest connection attempt (`None`
    /// before the first one).
    pub current_uri: Option<String>,
}

/// The connection string `uri` with its password masked; a string that does not parse is
/// not shown at all (it might hold a password the parser did not find).
pub(crate) fn masked_uri(uri: &str) -> String {
    amps_core::uri::Uri::parse(uri).map_or_else(
        |_| String::from("<invalid connection string>"),
        |u| u.to_string(),
    )
}

/// The reconnect delay strategy of an HA client, shared by the client and the application
/// (the Python client's `get_reconnect_delay_strategy()`): the client asks this very strategy
/// for the wait before each reconnect attempt, so a change made through the handle applies
/// from the next attempt. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use amps_host::{DelayStrategyHandle, FixedDelay};
///
/// let handle = DelayStrategyHandle::new(FixedDelay::new(Duration::from_millis(200)));
/// // The concrete strategy, when it is the type asked for:
/// handle.with_as(|d: &mut FixedDelay| d.delay = Duration::from_secs(1));
/// assert_eq!(handle.with_as(|d: &mut FixedDelay| d.delay), Some(Duration::from_secs(1)));
/// // Any strategy, through the trait:
/// assert_eq!(handle.with(|s| s.next_delay(Duration::ZERO)), Some(Duration::from_secs(1)));
/// ```
#[derive(Clone)]
pub struct DelayStrategyHandle {
    strategy: Arc<Mutex<dyn DelayStrategy>>,
    /// The same allocation, for typed access.
    any: Arc<dyn Any + Send + Sync>,
    kind: &'static str,
}

impl DelayStrategyHandle {
    /// A shared handle to `strategy` (the builder makes one of the strategy it is given).
    pub fn new<S: DelayStrategy + 'static>(strategy: S) -> Self {
        let shared = Arc::new(Mutex::new(strategy));
        DelayStrategyHandle {
            strategy: shared.clone(),
            any: shared,
            kind: std::any::type_name::<S>(),
        }
    }

    /// The Rust type of the strategy (e.g. `amps_host::delay::ExponentialDelay`), for
    /// diagnostics: not a stable identifier.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Run `f` on the strategy. The strategy is locked meanwhile and the client's connection
    /// loop waits for it when it needs the strategy: keep `f` short, and call neither the
    /// client nor this handle from it.
    pub fn with<R>(&self, f: impl FnOnce(&mut dyn DelayStrategy) -> R) -> R {
        let mut guard = self
            .strategy
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut *guard)
    }

    /// Run `f` on the strategy if it is an `S` (e.g. [`crate::FixedDelay`],
    /// [`crate::ExponentialDelay`] or a strategy of the application's own), with the same
    /// rules as [`DelayStrategyHandle::with`]; `None` when it is another type.
    pub fn with_as<S: DelayStrategy + 'static, R>(&self, f: impl FnOnce(&mut S) -> R) -> Option<R> {
        let m = self.any.downcast_ref::<Mutex<S>>()?;
        Some(f(&mut lock(m)))
    }

    /// The strategy the driver asks: every call goes to the shared one.
    pub(crate) fn proxy(&self) -> Box<dyn DelayStrategy> {
        Box::new(SharedDelay(self.clone()))
    }
}

impl std::fmt::Debug for DelayStrategyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DelayStrategyHandle")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The driver's side of a [`DelayStrategyHandle`].
struct SharedDelay(DelayStrategyHandle);

impl DelayStrategy for SharedDelay {
    fn next_delay(&mut self, elapsed: Duration) -> Option<Duration> {
        self.0.with(|s| s.next_delay(elapsed))
    }
    fn reset(&mut self) {
        self.0.with(|s| s.reset());
    }
}

impl Handle {
    /// The exception listener set with [`Handle::set_exception_listener`], if any (the Python
    /// client's `get_exception_listener()`): a clone of the client's own, so a new listener
    /// can call the one it replaces.
    pub fn exception_listener(&self) -> Option<ExceptionListener> {
        lock(&self.shared().listeners.exception).clone()
    }

    /// The disconnect handler set with [`Handle::set_disconnect_handler`], if any (the Python
    /// client's `get_disconnect_handler()`). `None` is the default behaviour: an HA client
    /// reconnects, a plain client does nothing.
    pub fn disconnect_handler(&self) -> Option<DisconnectHandler> {
        lock(&self.shared().listeners.disconnect).clone()
    }

    /// The publish store, described (the Python client's `get_publish_store()`; see
    /// [`PublishStoreInfo`]); `None` without one.
    pub fn publish_store(&self) -> Option<PublishStoreInfo> {
        let s = self.shared();
        let kind = s.stores.publish?;
        Some(PublishStoreInfo {
            kind,
            unpersisted_count: self.unpersisted_count(),
            error_on_publish_gap: s.stores.error_on_publish_gap,
        })
    }

    /// The bookmark store, described (the Python client's `get_bookmark_store()`; see
    /// [`BookmarkStoreInfo`]); `None` without one.
    pub fn bookmark_store(&self) -> Option<BookmarkStoreInfo> {
        let kind = self.shared().stores.bookmark?;
        Some(BookmarkStoreInfo { kind })
    }

    /// HA: the server chooser, described (the Python client's `get_server_chooser()`; see
    /// [`ServerChooserInfo`]); `None` for a plain client or an HA client built without one.
    /// The chooser itself cannot be changed once the client is built.
    pub fn server_chooser(&self) -> Option<ServerChooserInfo> {
        let ha = self.shared().ha_parts.as_ref()?;
        let kind = ha.chooser_kind?;
        Some(ServerChooserInfo {
            kind,
            uris: ha.uris.clone(),
            current_uri: lock(&ha.chooser_uri).clone(),
        })
    }

    /// HA: the reconnect delay strategy, shared (the Python client's
    /// `get_reconnect_delay_strategy()`; see [`DelayStrategyHandle`]); `None` for a plain
    /// client.
    pub fn delay_strategy(&self) -> Option<DelayStrategyHandle> {
        self.shared().ha_parts.as_ref().map(|h| h.delay.clone())
    }

    /// Replace the options sent with every logon (`ClientBuilder::logon_options`; empty:
    /// none) from the next logon on, reconnects of an HA client included; the logon of the
    /// connection already open is not repeated (the Python client's `set_logon_options`).
    /// Errors: `Usage` when longer than 128 bytes (the options in force are then kept), the
    /// client is closed.
    pub fn set_logon_options(&self, options: impl Into<String>) -> Result<()> {
        let options = options.into();
        if options.len() > LOGON_OPTIONS_MAX {
            return Err(amps_core::session::ConfigError::LogonOptions.into());
        }
        let options = Some(options).filter(|o| !o.is_empty());
        let s = self.shared();
        // Under the lock, so the driver gets concurrent changes in the order the getter sees.
        let mut current = lock(&s.logon_options);
        s.send_op(Op::LogonOptions(options.clone()))?;
        *current = options;
        Ok(())
    }

    /// The options sent with every logon: `ClientBuilder::logon_options`, or the latest
    /// [`Handle::set_logon_options`] (the Python client's `get_logon_options()`).
    pub fn logon_options(&self) -> Option<String> {
        lock(&self.shared().logon_options).clone()
    }
}

/// What the client knows of its stores (in `Shared`).
pub(crate) struct StoreKinds {
    /// The publish store's type, when one is set.
    pub(crate) publish: Option<&'static str>,
    /// The bookmark store's type, when one is set.
    pub(crate) bookmark: Option<&'static str>,
    pub(crate) error_on_publish_gap: bool,
}

impl StoreKinds {
    pub(crate) fn new(s: &Settings) -> Self {
        StoreKinds {
            publish: s.publish_store.is_enabled().then_some(s.publish_store_kind),
            bookmark: s
                .bookmark_store
                .is_enabled()
                .then_some(s.bookmark_store_kind),
            error_on_publish_gap: s.error_on_publish_gap,
        }
    }
}

/// What an HA client knows of its chooser and delay strategy (in `Shared`).
pub(crate) struct HaParts {
    pub(crate) chooser_kind: Option<&'static str>,
    /// The builder's `uris`, masked.
    pub(crate) uris: Vec<String>,
    /// The connection string the chooser named last, masked (set by the driver).
    pub(crate) chooser_uri: Mutex<Option<String>>,
    pub(crate) delay: DelayStrategyHandle,
}

impl HaParts {
    pub(crate) fn new(h: &HaSettings) -> Self {
        HaParts {
            chooser_kind: h.chooser_kind,
            uris: h.uris.clone(),
            chooser_uri: Mutex::new(None),
            delay: h.delay_handle.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delay::{ExponentialDelay, FixedDelay};

    #[test]
    fn connection_strings_are_shown_without_their_passwords() {
        let shown = masked_uri("tcp://alice:s3cr3t@127.0.0.1:9007/amps/json");
        assert!(
            shown.contains("alice") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        let bad = masked_uri("nonsense://alice:s3cr3t@");
        assert!(!bad.contains("s3cr3t"), "{bad}");
    }

    #[test]
    fn the_driver_side_of_a_delay_handle_is_the_shared_strategy() {
        let handle = DelayStrategyHandle::new(FixedDelay::new(Duration::from_millis(5)));
        let mut driver_side = handle.proxy();
        assert_eq!(
            driver_side.next_delay(Duration::ZERO),
            Some(Duration::from_millis(5))
        );
        handle.with_as(|d: &mut FixedDelay| d.max_retry_time = Some(Duration::from_secs(1)));
        assert_eq!(driver_side.next_delay(Duration::from_secs(2)), None);
        assert_eq!(handle.with_as(|_: &mut ExponentialDelay| ()), None);
        assert!(handle.kind().ends_with("FixedDelay"), "{}", handle.kind());
        assert!(format!("{handle:?}").contains("FixedDelay"));
    }

    #[test]
    fn disabled_stores_are_not_described() {
        let mut s = Settings::new("n".into(), false);
        assert_eq!(StoreKinds::new(&s).publish, None);
        assert_eq!(StoreKinds::new(&s).bookmark, None);
        s.publish_store = Box::new(amps_core::session::heap_publish_store(&s.limits));
        s.publish_store_kind = "mine";
        assert_eq!(StoreKinds::new(&s).publish, Some("mine"));
    }
}
