//! Helpers for the end-to-end tests: an in-process amps-broker per test, connected clients,
//! unique client names, and channel-based waiting (timeouts are failure guards only).
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use amps_broker::{Config, ServerHandle};
use amps_std::Client;

/// Generous bound on any single wait: a failing test fails, a passing one never waits this.
pub const GUARD: Duration = Duration::from_secs(20);

/// A broker with the default topics (SOW `orders` keyed by `/id`, tx-logged `events`, queue
/// `jobs`).
pub fn broker() -> ServerHandle {
    broker_with(Config::default())
}

pub fn broker_with(config: Config) -> ServerHandle {
    ServerHandle::start_blocking(config, "127.0.0.1:0".parse().unwrap()).expect("broker starts")
}

pub fn uri(b: &ServerHandle) -> String {
    format!("tcp://{}/amps/json", b.local_addr())
}

/// A client name no other test uses (the broker resolves duplicate names, protocol.md §8.3).
pub fn name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A plain client, connected and logged on.
pub fn client(b: &ServerHandle, prefix: &str) -> Client {
    let c = Client::new(&name(prefix));
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

/// The records of a SOW query (group markers left out), with their data as text.
pub fn sow_records(c: &Client, topic: &str, filter: Option<&str>) -> Vec<amps_std::Message> {
    c.sow(topic, filter)
        .expect("sow")
        .map(|m| m.expect("sow message"))
        .filter(|m| m.command() == amps_std::CommandKind::Sow)
        .collect()
}

/// The payloads of `msgs` as text.
pub fn texts(msgs: &[amps_std::Message]) -> Vec<String> {
    msgs.iter().map(|m| m.data().into_owned()).collect()
}
