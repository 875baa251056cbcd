//! Session configuration.

use crate::codec::DEFAULT_MAX_FRAME;
use crate::ha::ReconnectPolicy;
use crate::time::Duration;

/// Longest logon options ([`Config::logon_options`], [`super::Session::set_logon_options`]) a
/// session keeps, in bytes.
pub const MAX_LOGON_OPTIONS: usize = 128;

/// Heartbeats (docs/protocol.md §9; Python client: `set_heartbeat(interval, timeout)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// The interval N sent as `start,N`, in whole seconds (at least 1).
    pub interval_secs: u32,
    /// Silence after which the connection is dead (default 2N, the server's rule).
    pub timeout: Duration,
}

impl HeartbeatConfig {
    /// Interval `secs`, timeout twice that.
    pub const fn new(secs: u32) -> Self {
        HeartbeatConfig {
            interval_secs: secs,
            timeout: Duration::from_secs(2 * secs as u64),
        }
    }
}

/// Bounds on everything a session keeps: every buffer, table and store has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest frame accepted from the server (header + payload).
    pub max_frame: u32,
    /// Receive buffer bytes (at least `max_frame + 4`).
    pub rx_bytes: usize,
    /// Transmit buffer bytes (at least the largest command).
    pub tx_bytes: usize,
    /// Unescape scratch bytes.
    pub scratch_bytes: usize,
    /// Bytes for the strings of routes (subscriptions, queries).
    pub arena_bytes: usize,
    /// Pending commands at once.
    pub max_commands: usize,
    /// Subscriptions and running queries at once.
    pub max_routes: usize,
    /// Publish window: unpersisted messages (sizes the heap publish store).
    pub publish_window_messages: usize,
    /// Publish window: unpersisted bytes (sizes the heap publish store).
    pub publish_window_bytes: usize,
    /// Bytes of the queue-ack batch (its topic and bookmarks; sizes the heap buffer
    /// [`super::Parts::ack_batch`]).
    pub ack_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame: 16 * 1024 * 1024,
            rx_bytes: 16 * 1024 * 1024 + 4,
            tx_bytes: 1024 * 1024,
            scratch_bytes: 64 * 1024,
            arena_bytes: 256 * 1024,
            max_commands: 4096,
            max_routes: 1024,
            publish_window_messages: 100_000,
            publish_window_bytes: 64 * 1024 * 1024,
            ack_batch_bytes: 4096,
        }
    }
}

impl Limits {
    /// Small bounds for constrained devices: 4 KiB frames, 32 commands, 8 routes.
    pub const fn small() -> Self {
        Limits {
            max_frame: 4096,
            rx_bytes: 4100,
            tx_bytes: 4096,
            scratch_bytes: 512,
            arena_bytes: 1024,
            max_commands: 32,
            max_routes: 8,
            publish_window_messages: 64,
            publish_window_bytes: 16 * 1024,
            ack_batch_bytes: 512,
        }
    }

    /// The protocol's own maximum (docs/protocol.md §1.4: 200 MB).
    pub const fn protocol_max_frame() -> u32 {
        DEFAULT_MAX_FRAME
    }
}

/// How a session behaves. Strings are copied at construction.
#[derive(Clone, Copy, Debug)]
pub struct Config<'a> {
    /// The client name (docs/protocol.md §8.3): unique per server, stable across restarts of the
    /// same logical publisher. 1..=128 bytes.
    pub client_name: &'a str,
    /// Sent as `version` at logon.
    pub version: &'a str,
    /// Heartbeats, if any.
    pub heartbeat: Option<HeartbeatConfig>,
    /// Time limit for the logon ack (default 10 s).
    pub logon_timeout: Duration,
    /// Default time limit for `processed` acks of commands that set none (`None`: no limit).
    pub command_timeout: Option<Duration>,
    /// Reconnect by itself after a loss (the HA client) or not.
    pub reconnect: ReconnectPolicy,
    /// Re-enter async subscriptions after a reconnect (the HA client's subscription manager).
    pub resubscribe: bool,
    /// Queue acks batched before sending (Python client: `set_ack_batch_size`; default 1, no
    /// batching).
    pub ack_batch_size: u32,
    /// Longest time a queue ack waits in a batch (Python client: `set_ack_timeout`; default 1 s).
    pub ack_timeout: Duration,
    /// Logon options (`o`), e.g. `pretty` (docs/protocol.md §6.1), at most
    /// [`MAX_LOGON_OPTIONS`] bytes.
    pub logon_options: Option<&'a str>,
    /// Refuse a server that has not persisted publishes this client already saw persisted
    /// (by another server, or before a restart): the logon fails with
    /// [`FailureKind::PublishGap`](super::FailureKind::PublishGap) and the reconnect policy
    /// moves on. Off by default; only with a publish store.
    pub error_on_publish_gap: bool,
    /// Seed of the PRNG for backoff jitter.
    pub seed: u64,
    /// Bounds.
    pub limits: Limits,
}

impl<'a> Config<'a> {
    /// Defaults for a client named `client_name`.
    pub const fn new(client_name: &'a str) -> Self {
        Config {
            client_name,
            version: concat!(env!("CARGO_PKG_VERSION"), ":rust"),
            heartbeat: None,
            logon_timeout: Duration::from_secs(10),
            command_timeout: None,
            reconnect: ReconnectPolicy::None,
            resubscribe: false,
            ack_batch_size: 1,
            ack_timeout: Duration::from_secs(1),
            logon_options: None,
            error_on_publish_gap: false,
            seed: 0x5EED,
            limits: Limits::small(),
        }
    }
}

/// What the adapter knows about the connection it just opened (from the URI and the
/// authenticator), for the logon (docs/protocol.md §6.1). `Debug` leaves the password out.
#[derive(Clone, Copy, Default)]
pub struct Logon<'a> {
    /// `user_id`.
    pub user_id: Option<&'a str>,
    /// The credential from the authenticator (redacted in `Debug` of the frame).
    pub password: Option<&'a str>,
    /// `mt`, from the URI path `/amps/<type>`.
    pub message_type: Option<&'a str>,
    /// Extra logon options (`pretty` from the URI), added to the configured ones.
    pub options: Option<&'a str>,
}

impl core::fmt::Debug for Logon<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Logon")
            .field("user_id", &self.user_id)
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("message_type", &self.message_type)
            .field("options", &self.options)
            .finish()
    }
}
