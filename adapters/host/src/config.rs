//! What a client is built from: the settings a [`crate::ClientBuilder`] collects,
//! [`StreamOptions`] and [`PublishOptions`], with every default in one place.

use std::sync::Arc;
use std::time::Duration;

use amps_core::ha::{Authenticator, DefaultAuthenticator, ServerChooser};
use amps_core::session::Limits;
use amps_core::store::{BookmarkStore, NoBookmarkStore, NoPublishStore, PublishStore};

use crate::delay::{DelayStrategy, ExponentialDelay};
use crate::ha_handles::{DelayStrategyHandle, ServerChooserHandle};
use crate::net::{TlsConfig, TransportFilter};
use crate::queue::OverflowPolicy;

/// Messages a stream holds by default before its overflow policy applies.
pub const DEFAULT_STREAM_CAPACITY: usize = 10_000;
/// Bytes of publishes queued in the client (not yet handed to the connection) before
/// `publish` waits.
pub const DEFAULT_PUBLISH_QUEUE_BYTES: usize = 4 << 20;
/// Bytes of received messages a client holds for the application at most, across all its
/// streams, handlers and event queues, before their overflow policies apply. With the publish
/// queue, a client's queues hold at most 64 MiB by default.
pub const DEFAULT_RECEIVE_BYTES: usize = 60 << 20;
/// Items the handler queue holds by default.
pub const DEFAULT_DISPATCH_CAPACITY: usize = 16_384;
/// Commands queued for the connection at once before further ones are refused (`Busy`).
pub const DEFAULT_COMMAND_QUEUE: usize = 65_536;

/// How a stream buffers messages the application has not taken yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    /// Messages held before the overflow policy applies (default 10 000). The bytes held are
    /// bounded too, by the client's receive budget.
    pub capacity: usize,
    /// What a full stream does (default [`OverflowPolicy::Block`]: the client stops reading
    /// from the server until the application takes a message, so nothing is lost; the server
    /// sees TCP backpressure and the client's other streams wait too).
    pub policy: OverflowPolicy,
    /// Conflate by SOW key from the start: a message replaces an unconsumed one with the same
    /// key.
    pub conflate: bool,
    /// Acknowledge each queue message when the next one is taken or the stream ends, unless
    /// the application acknowledged it. Default: the client's auto-ack setting.
    pub auto_ack: Option<bool>,
    /// Re-enter the subscription after a reconnect and keep the stream open. Default: on for
    /// HA clients, off for plain clients, whose streams end with an error after a disconnect.
    pub resubscribe: Option<bool>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            capacity: DEFAULT_STREAM_CAPACITY,
            policy: OverflowPolicy::Block,
            conflate: false,
            auto_ack: None,
            resubscribe: None,
        }
    }
}

/// Optional headers of a publish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PublishOptions<'a> {
    /// `e`: SOW lifetime in seconds.
    pub expiration: Option<u64>,
    /// `x`: correlation id passed to subscribers.
    pub correlation_id: Option<&'a str>,
    /// `k`: explicit SOW key (topics keyed by the publisher).
    pub sow_key: Option<&'a str>,
}

/// Time limit for opening a transport, TLS handshake included.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time limit for a logon, challenges and `retry` answers included.
pub const DEFAULT_LOGON_TIMEOUT: Duration = Duration::from_secs(10);
/// Time limit for every other call that waits for the server (a command's acks, `flush`,
/// `unsubscribe`), and for `publish` while the publish queue is full. A command's own
/// [`Command::timeout`](amps_core::codec::Command::timeout) takes precedence.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// Time limit for `close()`: handlers still queued when it passes are not run.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time limit for an HA client's `connect_and_logon`: when no server accepted a logon by
/// then, the call fails `TimedOut` and the client stops trying.
pub const DEFAULT_CONNECT_AND_LOGON_TIMEOUT: Duration = Duration::from_secs(60);
/// A caller waits this much longer than the limit the connection's loop enforces, so that the
/// loop's own, more precise error normally arrives first.
pub(crate) const ANSWER_GRACE: Duration = Duration::from_secs(1);

/// Every wait's limit (see the `DEFAULT_*_TIMEOUT` constants).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timeouts {
    pub(crate) connect: Duration,
    pub(crate) logon: Duration,
    pub(crate) command: Duration,
    pub(crate) close: Duration,
    pub(crate) connect_and_logon: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: DEFAULT_CONNECT_TIMEOUT,
            logon: DEFAULT_LOGON_TIMEOUT,
            command: DEFAULT_COMMAND_TIMEOUT,
            close: DEFAULT_CLOSE_TIMEOUT,
            connect_and_logon: DEFAULT_CONNECT_AND_LOGON_TIMEOUT,
        }
    }
}

/// How long a connection must stay up before the delay strategy starts over.
pub const DEFAULT_STABILITY_WINDOW: Duration = Duration::from_secs(10);

/// The HA parts of the settings.
pub(crate) struct HaSettings {
    pub(crate) chooser: Option<Box<dyn ServerChooser + Send>>,
    /// What `chooser` (a proxy) reports to.
    pub(crate) chooser_handle: Option<ServerChooserHandle>,
    /// What the driver asks: a proxy of `delay_handle`.
    pub(crate) delay: Box<dyn DelayStrategy>,
    pub(crate) delay_handle: DelayStrategyHandle,
    pub(crate) stability: Duration,
    pub(crate) retry_on_disconnect: bool,
}

impl HaSettings {
    pub(crate) fn new() -> Self {
        let delay_handle = DelayStrategyHandle::new(ExponentialDelay::default());
        HaSettings {
            chooser: None,
            chooser_handle: None,
            delay: delay_handle.proxy(),
            delay_handle,
            stability: DEFAULT_STABILITY_WINDOW,
            retry_on_disconnect: true,
        }
    }
}

/// Everything a client is built from.
pub(crate) struct Settings {
    pub(crate) name: String,
    pub(crate) limits: Limits,
    /// Interval and silence timeout.
    pub(crate) heartbeat: Option<(Duration, Duration)>,
    pub(crate) timeouts: Timeouts,
    pub(crate) publish_store: Box<dyn PublishStore + Send>,
    pub(crate) bookmark_store: Box<dyn BookmarkStore + Send>,
    /// The stores' Rust types, for `publish_store()` / `bookmark_store()`.
    pub(crate) publish_store_kind: &'static str,
    pub(crate) bookmark_store_kind: &'static str,
    pub(crate) ha: Option<HaSettings>,
    pub(crate) tls: TlsConfig,
    pub(crate) transport_filter: Option<Arc<TransportFilter>>,
    pub(crate) authenticator: Box<dyn Authenticator + Send>,
    pub(crate) stream: StreamOptions,
    pub(crate) auto_ack: bool,
    pub(crate) ack_batch_size: u32,
    pub(crate) error_on_publish_gap: bool,
    pub(crate) ack_timeout: Duration,
    pub(crate) logon_options: Option<String>,
    pub(crate) publish_queue_bytes: usize,
    pub(crate) receive_bytes: usize,
    pub(crate) dispatch_capacity: usize,
}

impl Settings {
    pub(crate) fn new(name: String, ha: bool) -> Settings {
        Settings {
            name,
            limits: Limits::default(),
            heartbeat: None,
            timeouts: Timeouts::default(),
            publish_store: Box::new(NoPublishStore),
            bookmark_store: Box::new(NoBookmarkStore),
            publish_store_kind: std::any::type_name::<NoPublishStore>(),
            bookmark_store_kind: std::any::type_name::<NoBookmarkStore>(),
            ha: ha.then(HaSettings::new),
            tls: TlsConfig::default(),
            transport_filter: None,
            authenticator: Box::new(DefaultAuthenticator),
            stream: StreamOptions::default(),
            auto_ack: false,
            ack_batch_size: 1,
            error_on_publish_gap: false,
            ack_timeout: Duration::from_secs(1),
            logon_options: None,
            publish_queue_bytes: DEFAULT_PUBLISH_QUEUE_BYTES,
            receive_bytes: DEFAULT_RECEIVE_BYTES,
            dispatch_capacity: DEFAULT_DISPATCH_CAPACITY,
        }
    }
}
