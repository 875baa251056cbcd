//! # amps-tokio
//!
//! The async AMPS client for tokio: [`Client`], [`HaClient`], [`MessageStream`] (a
//! `futures::Stream`), message handlers, listeners and [`EventStream`], publish and bookmark
//! stores, `tcp` / `tcps` / `unix` transports. It has the same API as `amps-std`, with
//! `async` calls instead of blocking ones: both are thin loops around the shared host layer
//! (`amps-host`), which owns every behaviour; this crate owns only its task, its socket and
//! how it waits.
//!
//! ```
//! use futures::StreamExt;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let broker = amps_broker::ServerHandle::start_blocking(
//! #     amps_broker::Config::default(), "127.0.0.1:0".parse()?)?;
//! # let uri = format!("tcp://{}/amps/json", broker.local_addr());
//! # tokio::runtime::Runtime::new()?.block_on(async {
//! let client = amps_tokio::Client::new("quickstart")?;
//! client.connect(&uri).await?; // e.g. "tcp://127.0.0.1:9007/amps/json"
//! client.logon().await?;
//!
//! // A content-filtered subscription is a `futures::Stream` of messages.
//! let mut big = client.subscribe("orders", Some("/qty > 100")).await?;
//! client.publish("orders", br#"{"id":"A1","qty":500}"#).await?;
//! let msg = big.next().await.expect("a message")?;
//! assert_eq!(msg.topic(), Some("orders"));
//!
//! // A SOW query ends after its last record.
//! let mut sow = client.sow("orders", None).await?;
//! while let Some(m) = sow.next().await {
//!     println!("{:?}", m?.data_str());
//! }
//! client.close().await
//! # })?;
//! # Ok(()) }
//! ```
//!
//! ## How it works
//!
//! One task (the driver) owns the connection: bytes in, events out, transmit, sleep until the
//! socket, a command or the next timer. Handles are cheap clones that talk to it through the
//! host layer's bounded inbox; publishes are appended to shared chunks, so a publish costs a
//! short lock and a copy, and backpressure (a full publish window, a slow socket) makes
//! `publish` wait instead of growing memory. Nothing locks the session. Message handlers and
//! listeners run on a dispatch thread of their own, so a slow handler never stalls the
//! runtime's workers or the heartbeats.
//!
//! Every async method documents its cancel-safety (see [`Client`]).
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod driver;
mod stream;

pub use client::{Client, HaClient};
pub use stream::{EventStream, MessageStream};

pub use amps_host::api::*;

/// The examples of the crate's README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
