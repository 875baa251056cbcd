//! Shared helpers for the end-to-end tests: an in-process broker on loopback, clients logged
//! on to it, and a failure guard for every await (never a sleep as synchronisation).
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration as StdDuration;

use amps_broker::{Config, Server, ServerHandle};
use amps_tokio::{Client, Message, MessageStream};
use futures::StreamExt;

/// Generous limit for anything that should happen promptly: a failure guard, not a clock.
pub const GUARD: StdDuration = StdDuration::from_secs(10);

/// Await `f`, failing the test if it takes longer than [`GUARD`].
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(GUARD, f)
        .await
        .expect("timed out waiting (failure guard)")
}

/// The default broker config with fast conflated persisted acks.
pub fn config() -> Config {
    Config {
        ack_conflation: amps_broker::config::ConfDuration(amps_core::Duration::from_millis(10)),
        ..Config::default()
    }
}

/// A broker on an ephemeral loopback port.
pub async fn broker() -> ServerHandle {
    Server::start(config(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

pub fn uri(b: &ServerHandle) -> String {
    format!("tcp://127.0.0.1:{}/amps/json", b.local_addr().port())
}

/// A plain client connected and logged on to `b`.
pub async fn client(b: &ServerHandle, name: &str) -> Client {
    let c = Client::new(name).unwrap();
    within(c.connect(&uri(b))).await.unwrap();
    within(c.logon()).await.unwrap();
    c
}

/// The next message, with the guard.
pub async fn next(s: &mut MessageStream) -> Message {
    within(s.next())
        .await
        .expect("stream ended")
        .expect("stream error")
}

/// Messages until the stream ends.
pub async fn drain(mut s: MessageStream) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(m) = within(s.next()).await {
        out.push(m.expect("stream error"));
    }
    out
}

/// The payload as text.
pub fn text(m: &Message) -> String {
    m.data_str().unwrap_or("").to_owned()
}
