//! Listeners, handlers and settings of [`Client`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use amps_core::session::{ConnectionState, HeartbeatConfig, Limits};
use amps_core::store::{BookmarkStore, PublishStore};
use rustls::ClientConfig;

use super::{Client, ListenerId, lock};
use crate::error::{Error, Result};
use crate::message::{FailedWrite, Message};
use crate::settings::Changed;
use crate::stream::OverflowPolicy;
use crate::transport::{Direction, TransportFilter};

impl Client {
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
