//! What a built client can tell about its own configuration (the Python client's `get_…`
//! methods): the listeners it calls, its stores, its HA server chooser and delay strategy, and
//! the logon options, which can also be changed after the client is built.
//!
//! The stores belong to the session in the connection's loop, so the client describes them
//! ([`PublishStoreInfo`], [`BookmarkStoreInfo`]) rather than lending them out; their
//! operations are client methods (`unpersisted_count`, `publish_flush`, `most_recent`,
//! `prune`, `sync_stores`, `Message::discard`). The server chooser and the delay strategy are
//! shared (see `ha_handles`): the handles reach the very objects the client uses.

use std::sync::Arc;

use crate::client::Handle;
use crate::error::{Error, Result};
use crate::ha_handles::{DelayStrategyHandle, ServerChooserHandle};
use crate::lock::lock;
use crate::op::Op;

/// An exception listener as the client keeps it (see `set_exception_listener`): calling it
/// runs the application's listener.
pub type ExceptionListener = Arc<dyn Fn(&Error) + Send + Sync>;

/// A disconnect handler as the client keeps it (see `set_disconnect_handler`): calling it
/// runs the application's handler with the client it was set on (nothing once that client is
/// dropped).
pub type DisconnectHandler = Arc<dyn Fn() + Send + Sync>;

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

    /// HA: the server chooser, shared (the Python client's `get_server_chooser()`; see
    /// [`ServerChooserHandle`]); `None` for a plain client or an HA client built without one.
    pub fn server_chooser(&self) -> Option<ServerChooserHandle> {
        self.shared().ha_parts.as_ref()?.chooser.clone()
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
        if options.len() > amps_core::session::MAX_LOGON_OPTIONS {
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
