//! # amps-e2e
//!
//! One end-to-end suite for both host clients. Every behaviour the blocking client
//! (`amps-std`) and the async client (`amps-tokio`) share is written once, as a function
//! generic over [`Api`], and [`suite!`] runs it against each: `std_client::name` and
//! `tokio_client::name`. [`Api`] is the clients' public API with blocking calls: the async
//! client's implementation awaits each call on a shared runtime.
//!
//! Helpers: an in-process `amps-broker` per test on loopback, unique client names, and waits
//! bounded by [`GUARD`] (a failure guard, never a clock: a passing test does not wait it).
#![allow(missing_docs)]

pub mod script;
mod std_api;
mod tokio_api;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use amps_broker::{Config, ServerHandle};
use amps_host::{
    Adapter, Authenticator, ClientBuilder, ClientEvent, Command, CommandKind, ConnectionState,
    Error, FailedWrite, HaAdapter, HandlerResult, Message, Params, PublishOptions, Result,
    StreamOptions,
};

pub use std_api::StdApi;
pub use tokio_api::TokioApi;

/// Generous bound on any single wait: a failing test fails, a passing one never waits this.
pub const GUARD: Duration = Duration::from_secs(20);

/// Instantiate each generic test function for both clients:
/// `suite!(name_a, name_b)` makes `std_client::name_a`, `tokio_client::name_a`, ...
#[macro_export]
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod std_client {
            $( #[test] fn $name() { super::$name::<$crate::StdApi>() } )*
        }
        mod tokio_client {
            $( #[test] fn $name() { super::$name::<$crate::TokioApi>() } )*
        }
    };
}

/// The client API, with blocking calls (see the crate docs).
pub trait Api:
    Clone + std::fmt::Debug + AsRef<amps_host::Handle> + Send + Sync + Sized + 'static
{
    /// The plain client type.
    type C: Adapter + Clone + Send + Sync + 'static;
    /// The HA client type.
    type H: HaAdapter + Clone + Send + Sync + 'static;
    /// Its message stream.
    type S: Strm;
    /// Its event stream.
    type E: Evts;

    fn plain(c: Self::C) -> Self;
    fn ha(h: Self::H) -> Self;

    fn name(&self) -> String;
    fn connect(&self, uri: &str) -> Result<()>;
    fn logon(&self) -> Result<()>;
    fn logon_with(&self, a: impl Authenticator + Send + 'static) -> Result<()>;
    /// HA clients only.
    fn connect_and_logon(&self) -> Result<()>;
    fn disconnect(&self) -> Result<()>;
    fn close(&self) -> Result<()>;
    fn state(&self) -> ConnectionState;
    fn is_logged_on(&self) -> bool;

    fn publish(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<()>;
    fn publish_with(&self, topic: &str, data: &[u8], o: PublishOptions<'_>) -> Result<()>;
    fn delta_publish(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<()>;
    fn try_publish(&self, topic: &str, data: &[u8]) -> Result<()>;
    fn publish_command(&self, c: &Command<'_>) -> Result<()>;
    fn flush(&self) -> Result<()>;
    fn flush_timeout(&self, t: Duration) -> Result<()>;
    fn server_version(&self) -> Option<amps_host::ServerVersion>;
    fn uri(&self) -> Option<String>;
    fn ack(&self, topic: &str, bookmark: &str) -> Result<()>;
    fn publish_flush(&self, t: Duration) -> Result<()>;
    fn unpersisted_count(&self) -> usize;

    fn execute(&self, c: &Command<'_>) -> Result<Self::S>;
    fn execute_with(&self, c: &Command<'_>, o: StreamOptions) -> Result<Self::S>;
    fn execute_async<F, R>(&self, c: &Command<'_>, f: F) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult;
    fn subscribe(&self, topic: &str, filter: Option<&str>) -> Result<Self::S>;
    fn delta_subscribe(&self, topic: &str, filter: Option<&str>) -> Result<Self::S>;
    fn sow(&self, topic: &str, filter: Option<&str>) -> Result<Self::S>;
    fn sow_and_subscribe(&self, topic: &str, filter: Option<&str>) -> Result<Self::S>;
    fn sow_and_delta_subscribe(&self, topic: &str, filter: Option<&str>) -> Result<Self::S>;
    fn bookmark_subscribe(
        &self,
        topic: &str,
        bookmark: &str,
        filter: Option<&str>,
        sub_id: Option<&str>,
    ) -> Result<Self::S>;
    fn sow_delete(&self, topic: &str, filter: &str) -> Result<Message>;
    /// The named method for `kind` (subscribe, delta_subscribe, sow, sow_and_subscribe,
    /// sow_and_delta_subscribe) with parameters.
    fn named(&self, kind: CommandKind, topic: &str, p: Params<'_>) -> Result<Self::S>;
    /// Its `_with_handler` form.
    fn named_with_handler<F, R>(
        &self,
        kind: CommandKind,
        topic: &str,
        p: Params<'_>,
        f: F,
    ) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult;
    fn sow_delete_params(&self, topic: &str, p: Params<'_>) -> Result<Message>;
    fn sow_delete_by_keys(&self, topic: &str, keys: &str) -> Result<Message>;
    fn sow_delete_by_data(&self, topic: &str, data: &[u8]) -> Result<Message>;
    fn unsubscribe(&self, sub_id: &str) -> Result<()>;

    fn set_auto_ack(&self, on: bool);
    fn set_transport_filter(
        &self,
        f: impl Fn(amps_host::Direction, &[u8]) + Send + Sync + 'static,
    ) -> Result<()>;
    fn clear_transport_filter(&self) -> Result<()>;
    fn set_ack_batch_size(&self, n: u32) -> Result<()>;
    fn set_ack_timeout(&self, t: Duration) -> Result<()>;
    fn set_heartbeat(&self, interval: Duration, timeout: Duration) -> Result<()>;
    fn ack_batch_size(&self) -> u32;
    fn ack_timeout(&self) -> Duration;
    fn logon_options(&self) -> Option<String>;
    fn set_logon_options(&self, o: &str) -> Result<()>;
    fn publish_store(&self) -> Option<amps_host::PublishStoreInfo>;
    fn bookmark_store(&self) -> Option<amps_host::BookmarkStoreInfo>;
    /// HA clients only.
    fn server_chooser(&self) -> Option<amps_host::ServerChooserHandle>;
    /// HA clients only.
    fn delay_strategy(&self) -> amps_host::DelayStrategyHandle;
    /// HA clients only.
    fn set_retry_on_disconnect(&self, on: bool);
    /// HA clients only.
    fn retry_on_disconnect(&self) -> bool;
    fn sync_stores(&self) -> Result<()>;
    fn most_recent(&self, sub_id: &str) -> Result<String>;
    fn prune(&self) -> Result<()>;

    fn set_exception_listener(&self, f: impl Fn(&Error) + Send + Sync + 'static);
    fn exception_listener(&self) -> Option<amps_host::ExceptionListener>;
    fn disconnect_handler(&self) -> Option<amps_host::DisconnectHandler>;
    fn set_last_chance_message_handler(&self, f: impl Fn(&Message) + Send + Sync + 'static);
    fn set_failed_write_handler(&self, f: impl Fn(&FailedWrite) + Send + Sync + 'static);
    fn add_connection_state_listener(&self, f: impl Fn(ConnectionState) + Send + Sync + 'static);
    fn set_disconnect_handler(&self, f: impl Fn(&Self) + Send + Sync + 'static) -> Result<()>;
    fn events(&self) -> Self::E;
    fn received_bytes(&self) -> (usize, usize);

    /// A plain client built from `b`.
    fn build(b: ClientBuilder<Self::C>) -> Self {
        Self::plain(b.build().expect("build the client"))
    }
    /// An HA client built from `b`.
    fn build_ha(b: ClientBuilder<Self::H>) -> Self {
        Self::ha(b.build().expect("build the HA client"))
    }
    /// A builder for a plain client named after `prefix`.
    fn builder(prefix: &str) -> ClientBuilder<Self::C> {
        ClientBuilder::new(name(prefix))
    }
    /// A builder for an HA client named after `prefix`.
    fn ha_builder(prefix: &str) -> ClientBuilder<Self::H> {
        ClientBuilder::new(name(prefix))
    }
}

/// A message stream with blocking calls.
pub trait Strm: Send + Sized + std::fmt::Debug + 'static {
    /// The next item, within the guard (a timeout fails the test).
    fn next_item(&mut self) -> Option<Result<Message>>;
    /// The next item within `d`: `Err` with kind `TimedOut` when none came.
    fn recv_timeout(&mut self, d: Duration) -> Result<Option<Message>>;
    fn close(&mut self);
    fn conflate(self) -> Self;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn sub_id(&self) -> String;
    fn dropped_count(&self) -> u64;
    fn process<F, E>(self, f: F) -> Result<()>
    where
        F: FnMut(&Message) -> std::result::Result<(), E> + Send,
        E: std::fmt::Display + Send;

    /// The next message, within the guard (an end or an error fails the test).
    fn next_msg(&mut self) -> Message {
        match self.next_item() {
            Some(Ok(m)) => m,
            Some(Err(e)) => panic!("stream error: {e}"),
            None => panic!("stream ended"),
        }
    }
    /// Everything until the stream ends.
    fn collect_all(&mut self) -> Vec<Message> {
        std::iter::from_fn(|| self.next_item())
            .map(|m| m.expect("stream error"))
            .collect()
    }
}

/// An event stream with blocking calls.
pub trait Evts: Send + 'static {
    /// The next event within `d`.
    fn recv_timeout(&mut self, d: Duration) -> Option<ClientEvent>;
    /// The first event matching `pred`, within the guard.
    fn wait_for(&mut self, mut pred: impl FnMut(&ClientEvent) -> bool) -> ClientEvent {
        let t0 = std::time::Instant::now();
        loop {
            let left = GUARD.saturating_sub(t0.elapsed());
            match self.recv_timeout(left) {
                Some(e) if pred(&e) => return e,
                Some(_) => {}
                None => panic!("no matching event within the guard"),
            }
        }
    }
}

/// A broker with the default topics (SOW `orders` keyed by `/id`, tx-logged `events`, queue
/// `jobs`) and fast conflated persisted acks.
pub fn broker() -> ServerHandle {
    broker_with(config())
}

/// The default broker configuration, with persisted acks conflated over 10 ms.
pub fn config() -> Config {
    Config {
        ack_conflation: amps_broker::config::ConfDuration(amps_core::Duration::from_millis(10)),
        ..Config::default()
    }
}

pub fn broker_with(config: Config) -> ServerHandle {
    ServerHandle::start_blocking(config, "127.0.0.1:0".parse().expect("an address"))
        .expect("broker starts")
}

pub fn uri(b: &ServerHandle) -> String {
    format!("tcp://{}/amps/json", b.local_addr())
}

/// A client name no other test uses.
pub fn name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A plain client, connected and logged on.
pub fn client<A: Api>(b: &ServerHandle, prefix: &str) -> A {
    let c = A::build(A::builder(prefix));
    c.connect(&uri(b)).expect("connect");
    c.logon().expect("logon");
    c
}

/// Receive within the guard, or fail the test saying what was awaited.
pub fn recv<T>(rx: &Receiver<T>, what: &str) -> T {
    match rx.recv_timeout(GUARD) {
        Ok(v) => v,
        Err(RecvTimeoutError::Timeout) => panic!("timed out waiting for {what}"),
        Err(RecvTimeoutError::Disconnected) => panic!("channel closed waiting for {what}"),
    }
}

/// Assert nothing arrives for `d` (used only to check that something does NOT happen).
pub fn quiet<T: std::fmt::Debug>(rx: &Receiver<T>, d: Duration, what: &str) {
    if let Ok(v) = rx.recv_timeout(d) {
        panic!("unexpected {what}: {v:?}");
    }
}

/// The payload as text.
pub fn text(m: &Message) -> String {
    String::from_utf8_lossy(m.data()).into_owned()
}

/// The payloads of `msgs` as text.
pub fn texts(msgs: &[Message]) -> Vec<String> {
    msgs.iter().map(text).collect()
}

/// The records of a SOW query (group markers left out).
pub fn sow_records<A: Api>(c: &A, topic: &str, filter: Option<&str>) -> Vec<Message> {
    c.sow(topic, filter)
        .expect("sow")
        .collect_all()
        .into_iter()
        .filter(|m| m.command() == amps_host::CommandKind::Sow)
        .collect()
}

/// Stream options with a capacity and a policy.
pub fn opts(capacity: usize, policy: amps_host::OverflowPolicy) -> StreamOptions {
    StreamOptions {
        capacity,
        policy,
        ..StreamOptions::default()
    }
}

/// Connection states as a channel.
pub fn states<A: Api>(c: &A) -> Receiver<ConnectionState> {
    let (tx, rx) = std::sync::mpsc::channel();
    c.add_connection_state_listener(move |s| {
        let _ = tx.send(s);
    });
    rx
}

/// Skip states until `want`.
pub fn until(st: &Receiver<ConnectionState>, want: ConnectionState) {
    while recv(st, "state") != want {}
}
