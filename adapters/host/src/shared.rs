//! What the application's handles, the driver and the dispatch thread of one client share. None
//! of it is the session: the session lives in the driver alone, and handles reach it through
//! the inbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use amps_core::session::ConnectionState;

use crate::config::{DEFAULT_COMMAND_QUEUE, HaSettings, Settings, StreamOptions, Timeouts};
use crate::control::{Control, ControlSink, Sink};
use crate::error::{Error, ErrorKind, Result};
use crate::events::EventHub;
use crate::ha_handles::{DelayStrategyHandle, ServerChooserHandle};
use crate::inbox::{Inbox, Refused};
use crate::listeners::Listeners;
use crate::op::Op;
use crate::queue::Budget;
use crate::sync::{Signal, lock};

/// Where the connection is, as the application sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Status {
    /// Never connected.
    New = 0,
    /// Transport open, not logged on.
    Connected = 1,
    /// Logged on (recovering or ready).
    LoggedOn = 2,
    /// The connection was lost or closed; the client may connect again.
    Disconnected = 3,
    /// Closed for good.
    Closed = 4,
}

pub(crate) struct Shared {
    pub(crate) name: String,
    /// Wakes the driver.
    pub(crate) signal: Arc<Signal>,
    pub(crate) inbox: Inbox,
    pub(crate) listeners: Listeners,
    pub(crate) events: EventHub,
    /// Bytes of received messages held for the application, across every queue.
    pub(crate) budget: Arc<Budget>,
    /// An HA client (reconnects by itself).
    pub(crate) ha: bool,
    auto_ack: AtomicBool,
    retry: AtomicBool,
    status: AtomicU8,
    last_state: std::sync::Mutex<ConnectionState>,
    /// A publish store is configured.
    pub(crate) has_store: bool,
    /// The client logged on once (the publish store's numbering is known).
    seq_known: AtomicBool,
    pub(crate) next_listener: AtomicU64,
    pub(crate) stream_defaults: StreamOptions,
    pub(crate) timeouts: Timeouts,
    /// The options sent with every logon, as last set.
    pub(crate) logon_options: std::sync::Mutex<Option<String>>,
    /// The stores, described.
    pub(crate) stores: StoreKinds,
    /// HA: the shared chooser and delay strategy.
    pub(crate) ha_parts: Option<HaParts>,
    /// Queue-ack batching as last set: size and longest wait.
    ack_batching: std::sync::Mutex<(u32, Duration)>,
    /// The server's version from the last logon.
    server_version: std::sync::Mutex<Option<crate::version::ServerVersion>>,
    /// The connection string of the open (or last) connection, password masked.
    uri: std::sync::Mutex<Option<String>>,
}

impl Shared {
    /// The shared state of a client built from `s`.
    pub(crate) fn new(s: &Settings) -> Shared {
        let signal = Arc::new(Signal::new());
        Shared {
            name: s.name.clone(),
            budget: Arc::new(Budget::with_wake(s.receive_bytes, signal.clone())),
            signal,
            inbox: Inbox::new(s.publish_queue_bytes, DEFAULT_COMMAND_QUEUE),
            listeners: Listeners::default(),
            events: EventHub::default(),
            ha: s.ha.is_some(),
            auto_ack: AtomicBool::new(s.auto_ack),
            retry: AtomicBool::new(s.ha.as_ref().is_none_or(|h| h.retry_on_disconnect)),
            status: AtomicU8::new(Status::New as u8),
            last_state: std::sync::Mutex::new(ConnectionState::Disconnected),
            has_store: s.publish_store.is_enabled(),
            seq_known: AtomicBool::new(false),
            next_listener: AtomicU64::new(1),
            stream_defaults: s.stream,
            timeouts: s.timeouts,
            logon_options: std::sync::Mutex::new(s.logon_options.clone()),
            stores: StoreKinds::new(s),
            ha_parts: s.ha.as_ref().map(HaParts::new),
            ack_batching: std::sync::Mutex::new((s.ack_batch_size, s.ack_timeout)),
            server_version: std::sync::Mutex::new(None),
            uri: std::sync::Mutex::new(None),
        }
    }

    /// Queue a command for the driver and wake it.
    pub(crate) fn send_op(&self, op: Op) -> Result<()> {
        match self.inbox.push_op(op) {
            Ok(()) => {
                self.signal.wake();
                Ok(())
            }
            Err((op, why)) => {
                op.fail(&Error::closed());
                Err(match why {
                    Refused::Busy => Error::new(
                        ErrorKind::Busy,
                        "too many commands queued for the connection",
                    ),
                    _ => Error::closed(),
                })
            }
        }
    }

    pub(crate) fn auto_ack(&self) -> bool {
        self.auto_ack.load(Ordering::Relaxed)
    }
    pub(crate) fn set_auto_ack(&self, on: bool) {
        self.auto_ack.store(on, Ordering::Relaxed);
    }
    pub(crate) fn retry_on_disconnect(&self) -> bool {
        self.retry.load(Ordering::Relaxed)
    }
    pub(crate) fn set_retry_on_disconnect(&self, on: bool) {
        self.retry.store(on, Ordering::Relaxed);
    }
    /// Queue-ack batch size and longest wait, as last set.
    pub(crate) fn ack_batching(&self) -> (u32, Duration) {
        *lock(&self.ack_batching)
    }
    pub(crate) fn set_ack_batching(&self, size: Option<u32>, timeout: Option<Duration>) {
        let mut b = lock(&self.ack_batching);
        b.0 = size.unwrap_or(b.0);
        b.1 = timeout.unwrap_or(b.1);
    }
    pub(crate) fn set_status(&self, s: Status) {
        self.status.store(s as u8, Ordering::Release);
    }
    pub(crate) fn status(&self) -> Status {
        match self.status.load(Ordering::Acquire) {
            0 => Status::New,
            1 => Status::Connected,
            2 => Status::LoggedOn,
            3 => Status::Disconnected,
            _ => Status::Closed,
        }
    }
    pub(crate) fn set_state(&self, s: ConnectionState) {
        *lock(&self.last_state) = s;
    }
    pub(crate) fn state(&self) -> ConnectionState {
        *lock(&self.last_state)
    }
    pub(crate) fn set_seq_known(&self) {
        self.seq_known.store(true, Ordering::Relaxed);
    }
    pub(crate) fn seq_known(&self) -> bool {
        self.seq_known.load(Ordering::Relaxed)
    }
    pub(crate) fn set_server_version(&self, text: &str) {
        *lock(&self.server_version) = crate::version::ServerVersion::new(text);
    }
    pub(crate) fn server_version(&self) -> Option<crate::version::ServerVersion> {
        lock(&self.server_version).clone()
    }
    /// Remember the connection string of the connection just opened (masked).
    pub(crate) fn set_uri(&self, uri: &str) {
        let shown = amps_core::uri::Uri::parse(uri).map(|u| u.to_string()).ok();
        *lock(&self.uri) = shown;
    }
    pub(crate) fn uri(&self) -> Option<String> {
        lock(&self.uri).clone()
    }
}

impl ControlSink for Shared {
    fn control(&self, c: Control) -> Result<()> {
        self.send_op(Op::Control(c))
    }
}

/// What a client's streams are made with: the way to the driver, the receive budget and the
/// driver's wake-up.
pub(crate) fn stream_parts(shared: &Arc<Shared>) -> (Sink, Arc<Budget>, Arc<Signal>) {
    (shared.clone(), shared.budget.clone(), shared.signal.clone())
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

/// An HA client's chooser and delay strategy, shared with the driver (in `Shared`).
pub(crate) struct HaParts {
    pub(crate) chooser: Option<ServerChooserHandle>,
    pub(crate) delay: DelayStrategyHandle,
}

impl HaParts {
    pub(crate) fn new(h: &HaSettings) -> Self {
        HaParts {
            chooser: h.chooser_handle.clone(),
            delay: h.delay_handle.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
