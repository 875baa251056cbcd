//! # amps
//!
//! A client for [AMPS](https://www.crankuptheamps.com/), 60East's Advanced Message Processing
//! System: publish and subscribe with content filters, State of the World queries, queues,
//! delta messaging, transaction-log replay by bookmark, and high availability.
//!
//! One dependency, two clients with the same API:
//!
//! - [`tokio`] (feature `tokio`, on by default): `async` methods, streams are
//!   `futures::Stream`s;
//! - [`blocking`] (feature `blocking`): the same methods blocking the calling thread, streams
//!   are `Iterator`s; it pulls in no async runtime.
//!
//! Everything both share (messages, errors, commands, options, stores, strategies) is at the
//! root of this crate. Other features: `tls` (on by default: `tcps` connections with rustls)
//! and `fs` (durable file-backed stores, [`fs`]).
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn demo() -> amps::Result<()> {
//! let client = amps::tokio::Client::new("my-app")?;
//! client.connect("tcp://127.0.0.1:9007/amps/json").await?;
//! client.logon().await?;
//! let mut orders = client.subscribe("orders", Some("/qty > 100")).await?;
//! client.publish("orders", r#"{"id":1,"qty":500}"#).await?;
//! while let Some(msg) = orders.recv().await {
//!     println!("{}", msg?.data_str().unwrap_or(""));
//! }
//! # Ok(()) }
//! ```
//!
//! The same with the blocking client:
//!
//! ```no_run
//! # #[cfg(feature = "blocking")]
//! # fn demo() -> amps::Result<()> {
//! let client = amps::blocking::Client::new("my-app")?;
//! client.connect("tcp://127.0.0.1:9007/amps/json")?;
//! client.logon()?;
//! for msg in client.subscribe("orders", Some("/qty > 100"))? {
//!     println!("{}", msg?.data_str().unwrap_or(""));
//! }
//! # Ok(()) }
//! ```
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
