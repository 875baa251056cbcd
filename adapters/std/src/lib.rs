//! # amps-std
//!
//! A blocking AMPS client on std threads: [`Client`], [`HaClient`], [`MessageStream`] (an
//! `Iterator`), message handlers, listeners, publish and bookmark stores, `tcp` / `tcps` /
//! `unix` transports. It has the same API as `amps-tokio`, with blocking calls instead of
//! `async` ones: both are thin loops around the shared host layer (`amps-host`), which owns
//! every behaviour; this crate owns only its threads, its sockets and how it waits. It does
//! not depend on an async runtime.
//!
//! ```
//! use amps_std::{Client, Command};
//! # let broker = amps_broker::ServerHandle::start_blocking(
//! #     amps_broker::Config::default(), "127.0.0.1:0".parse().unwrap())?;
//! # let uri = format!("tcp://{}/amps/json", broker.local_addr());
//!
//! let client = Client::new("example-app")?;
//! client.connect(&uri)?; // e.g. "tcp://127.0.0.1:9007/amps/json"
//! client.logon()?;
//!
//! // Publish (returns once queued; the I/O thread batches the writes).
//! client.publish("orders", r#"{"id":"A1","qty":100}"#)?;
//! client.flush()?;
//!
//! // Synchronous: iterate a stream on this thread.
//! for msg in client.sow("orders", Some("/qty > 50"))? {
//!     println!("sow: {}", msg?.data_str().unwrap_or(""));
//! }
//!
//! // Asynchronous: a handler on the dispatch thread; it may use the client.
//! let c2 = client.clone();
//! let sub = client.execute_async(&Command::subscribe("orders"), move |m| {
//!     c2.publish("audit", m.data())
//! })?;
//! client.unsubscribe(&sub)?;
//! client.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Threads
//!
//! Each client runs an **I/O thread** that owns the connection's driver: it runs commands,
//! feeds received bytes to the session, processes acks, answers heartbeats and writes. A
//! **dispatch thread** runs message handlers and listeners, so a handler can call back into
//! its client without deadlock and a slow handler does not stop heartbeats. Each connection
//! has a **reader thread** that only moves bytes from the socket to the I/O thread.
//! Application threads talk to the I/O thread through a bounded inbox; no lock is held
//! around the session.
//!
//! ## Errors
//!
//! One [`Error`] type; match on [`Error::kind`], one [`ErrorKind`] per exception type of the
//! AMPS client libraries (`BadFilter`, `Disconnected`, `ConnectionRefused`, `TimedOut`, ...).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod conn;
mod io;
mod stream;

pub use client::{Client, HaClient};
pub use stream::{Events, MessageStream};

pub use amps_host::api::*;

/// The examples of the crate's README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
