//! # amps-tokio
//!
//! The async AMPS client for host applications (design.md §3): [`Client`] and [`HaClient`]
//! with the features of the AMPS client guide (the seeds), on tokio.
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
//! One task (the driver) owns the sans-IO [`amps_core::session::Session`] and the socket, and
//! runs the session's drive loop: bytes in, events out, transmit, sleep until the socket, a
//! request or the next timer. Handles are cheap clones that talk to the driver over channels;
//! publishes go through a bounded staging buffer the driver takes whole, so a publish costs a
//! short lock and a copy, and backpressure (a full publish window, a slow socket) makes
//! `publish` wait instead of growing memory. Nothing locks the session.
//!
//! Streams are bounded ([`StreamOptions`]: capacity, [`OverflowPolicy`], conflation,
//! auto-ack); dropping one unsubscribes. Connection states, failed writes, last-chance
//! messages and errors arrive as [`ClientEvent`]s from [`Client::events`].
//!
//! Every async method documents its cancel-safety.

mod client;
mod command;
mod config;
mod driver;
mod error;
mod events;
mod ha;
mod message;
mod shared;
mod stream;
mod tls;
mod transport;

pub use amps_core::codec::{AckType, Command, CommandKind, OofReason, bookmark, options};
pub use amps_core::conflate::OverflowPolicy;
pub use amps_core::error_kind::ErrorKind;
pub use amps_core::ha::{
    Authenticator, DefaultAuthenticator, DefaultServerChooser, ExponentialDelayStrategy,
    FixedDelayStrategy, ServerChooser,
};
pub use amps_core::session::{AckHow, ConnectionState, HeartbeatConfig, Limits};
pub use amps_core::{Duration, Instant};
pub use client::Client;
pub use config::{BoxBookmarkStore, BoxPublishStore, ClientBuilder, Direction, TransportFilter};
pub use error::{Error, Result};
pub use events::{ClientEvent, EventStream};
pub use ha::{HaClient, HaClientBuilder};
pub use message::Message;
pub use shared::PublishOptions;
pub use stream::{MessageStream, StreamOptions};
pub use tls::TlsConfig;
