//! A client's settings: collected on the application thread until the client first connects,
//! then owned by the I/O thread (changes travel to it as ops).

use std::sync::Arc;
use std::time::Duration;

use amps_core::ha::{Authenticator, DefaultAuthenticator, ReconnectPolicy, ServerChooser};
use amps_core::session::{HeartbeatConfig, Limits};
use amps_core::store::{BookmarkStore, PublishStore};
use rustls::ClientConfig;

use crate::dispatch::DEFAULT_DISPATCH_CAPACITY;
use crate::transport::TransportFilter;

/// Settings the session is built from and those the I/O thread applies.
pub(crate) struct Settings {
    pub(crate) heartbeat: Option<HeartbeatConfig>,
    pub(crate) logon_timeout: Duration,
    pub(crate) command_timeout: Option<Duration>,
    pub(crate) limits: Limits,
    pub(crate) publish_store: Option<Box<dyn PublishStore + Send>>,
    pub(crate) bookmark_store: Option<Box<dyn BookmarkStore + Send>>,
    pub(crate) reconnect: ReconnectPolicy,
    pub(crate) resubscribe: bool,
    pub(crate) ack_batch_size: u32,
    pub(crate) ack_timeout: Duration,
    pub(crate) dispatch_capacity: usize,
    pub(crate) tls: Option<Arc<ClientConfig>>,
    pub(crate) connect_timeout: Duration,
    pub(crate) transport_filter: Option<Arc<TransportFilter>>,
    pub(crate) chooser: Option<Box<dyn ServerChooser + Send>>,
    pub(crate) authenticator: Box<dyn Authenticator + Send>,
    /// Bytes of publishes queued for the I/O thread before `publish()` waits.
    pub(crate) publish_queue_bytes: usize,
    /// Bytes read from the socket and not yet processed before the reader waits.
    pub(crate) inbound_queue_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            heartbeat: None,
            logon_timeout: Duration::from_secs(10),
            command_timeout: None,
            limits: Limits::default(),
            publish_store: None,
            bookmark_store: None,
            reconnect: ReconnectPolicy::None,
            resubscribe: false,
            ack_batch_size: 1,
            ack_timeout: Duration::from_secs(1),
            dispatch_capacity: DEFAULT_DISPATCH_CAPACITY,
            tls: None,
            connect_timeout: Duration::from_secs(10),
            transport_filter: None,
            chooser: None,
            authenticator: Box::new(DefaultAuthenticator),
            publish_queue_bytes: 4 * 1024 * 1024,
            inbound_queue_bytes: 8 * 1024 * 1024,
        }
    }
}

/// Which session settings an update changed, so the I/O thread re-applies only those (a
/// heartbeat change sends `start,N` to the server).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Changed {
    pub(crate) heartbeat: bool,
    pub(crate) acks: bool,
    pub(crate) reconnect: bool,
}

/// A change to the settings, run on the thread that owns them.
pub(crate) type Update = Box<dyn FnOnce(&mut Settings) -> Changed + Send>;
