//! # amps-tokio
//!
//! The async AMPS client for tokio: [`Client`], [`HaClient`], [`MessageStream`] (a
//! `futures::Stream`), message handlers, listeners and [`EventStream`], publish and bookmark
//! stores, `tcp` / `tcps` / `unix` transports. It has the same API as `amps-std`, with
//! `async` calls instead of blocking ones: both are thin loops around the shared host layer
//! (`amps-host`), which owns every behaviour; this crate owns only its task, its socket and
//! how it waits.
//!
//! ```no_run
//! use futures::StreamExt;
//!
//! # async fn demo() -> amps_tokio::Result<()> {
//! let client = amps_tokio::Client::new("quickstart")?;
//! client.connect("tcp://127.0.0.1:9007/amps/json").await?;
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
//! # }
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

mod client;
mod driver;
mod stream;

pub use client::{Client, HaClient};
pub use stream::{EventStream, MessageStream};

pub use amps_host::api::*;
