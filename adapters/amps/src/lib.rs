//! # amps
//!
//! A client for [AMPS](https://www.crankuptheamps.com/), 60East's Advanced Message Processing
//! System: publish and subscribe with content filters, State of the World (SOW) queries,
//! queues, delta messaging, transaction-log replay by bookmark, and high availability.
//!
//! One dependency, two clients with the same API:
//!
//! - `amps::tokio` (feature `tokio`, on by default): `async` methods; streams are
//!   `futures::Stream`s;
//! - `amps::blocking` (feature `blocking`): the same methods blocking the calling thread;
//!   streams are `Iterator`s; it pulls in no async runtime.
//!
//! Everything both share (messages, errors, commands, options, stores, server choosers, delay
//! strategies) is at the root of this crate. Other features: `tls` (on by default: `tcps`
//! connections with rustls) and `fs` (durable file-backed stores, `amps::fs`).
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let broker = amps_broker::ServerHandle::start_blocking(
//! #     amps_broker::Config::default(), "127.0.0.1:0".parse()?)?;
//! # let uri = format!("tcp://{}/amps/json", broker.local_addr());
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let client = amps::tokio::Client::new("my-app")?;
//! client.connect(&uri).await?; // e.g. "tcp://127.0.0.1:9007/amps/json"
//! client.logon().await?;
//!
//! // A content-filtered subscription, then a publish it matches.
//! let mut orders = client.subscribe("orders", Some("/qty > 100")).await?;
//! client.publish("orders", r#"{"id":1,"qty":500}"#).await?;
//! let msg = orders.recv().await.expect("a message")?;
//! assert_eq!(msg.data_str(), Some(r#"{"id":1,"qty":500}"#));
//!
//! // A SOW query: the stream ends after the last record.
//! let mut sow = client.sow("orders", None).await?;
//! while let Some(record) = sow.recv().await {
//!     println!("{}", record?.data_str().unwrap_or(""));
//! }
//! client.close().await?;
//! # Ok::<(), amps::Error>(())
//! # })?;
//! # Ok(()) }
//! # #[cfg(not(feature = "tokio"))]
//! # fn main() {}
//! ```
//!
//! The same with the blocking client (feature `blocking`):
//!
//! ```
//! # #[cfg(feature = "blocking")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let broker = amps_broker::ServerHandle::start_blocking(
//! #     amps_broker::Config::default(), "127.0.0.1:0".parse()?)?;
//! # let uri = format!("tcp://{}/amps/json", broker.local_addr());
//! let client = amps::blocking::Client::new("my-app")?;
//! client.connect(&uri)?;
//! client.logon()?;
//! let mut orders = client.subscribe("orders", Some("/qty > 100"))?;
//! client.publish("orders", r#"{"id":1,"qty":500}"#)?;
//! let msg = orders.next().expect("a message")?;
//! assert_eq!(msg.data_str(), Some(r#"{"id":1,"qty":500}"#));
//! client.close()?;
//! # Ok(()) }
//! # #[cfg(not(feature = "blocking"))]
//! # fn main() {}
//! ```
//!
//! An `HaClient` (`HaClient::builder(name).uris([...]).memory_backed().build()`) reconnects
//! and fails over by itself, replays unpersisted publishes and re-enters subscriptions. How
//! the clients work (threads, bounded queues, cancel-safety) is described in the project's
//! `docs/host.md`; `docs/python.md` maps the AMPS Python client's API to this one.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use amps_host::api::*;

/// The async client for tokio.
#[cfg(feature = "tokio")]
pub mod tokio {
    pub use amps_tokio::{Client, ClientBuilder, EventStream, HaClient, MessageStream};
}

/// The blocking client on std threads.
#[cfg(feature = "blocking")]
pub mod blocking {
    pub use amps_std::{Client, ClientBuilder, Events, HaClient, MessageStream};
}

/// Durable file-backed stores (see the crate docs of `amps-fs`).
#[cfg(feature = "fs")]
pub mod fs {
    pub use amps_fs::*;
}

/// The `no_std` protocol core, for what the clients do not cover (custom adapters,
/// message-type helpers, the wire codec).
pub use amps_core as core;

/// The examples of the crate's README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
