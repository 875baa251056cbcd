//! # amps-std
//!
//! A blocking AMPS client on std threads, with the API of the AMPS Python client guide (the
//! seeds) in Rust form: [`Client`], [`HaClient`], [`MessageStream`] (an `Iterator`), message
//! handlers, listeners, publish and bookmark stores, `tcp` / `tcps` / `unix` transports. It
//! drives the sans-IO session of `amps-core` (design.md §3).
//!
//! ```no_run
//! use amps_std::{Client, Command};
//!
//! let client = Client::new("example-app");
//! client.connect("tcp://127.0.0.1:9007/amps/json")?;
//! client.logon()?;
//!
//! // Publish (returns once queued; the I/O thread batches the writes).
//! client.publish("orders", r#"{"id":"A1","qty":100}"#)?;
//!
//! // Synchronous: iterate a stream on this thread.
//! for msg in client.sow("orders", Some("/qty > 50"))? {
//!     println!("sow: {}", msg?.data());
//! }
//!
//! // Asynchronous: a handler on the dispatch thread; it may use the client.
//! let c2 = client.clone();
//! let sub = client.execute_async(&Command::subscribe("orders"), move |m| {
//!     c2.publish("audit", m.data_raw())
//! })?;
//! client.unsubscribe(&sub)?;
//! client.close();
//! # Ok::<(), amps_std::Error>(())
//! ```
//!
//! ## Threads
//!
//! Each client runs an **I/O thread** that owns the session and the socket: it runs commands,
//! feeds received bytes to the session, processes acks, answers heartbeats and writes (publishes
//! are batched into large writes). A **dispatch thread** runs message handlers and listeners, so
//! a handler can call back into its client without deadlock and a slow handler does not stop
//! heartbeats. Each connection has a **reader thread** that only moves bytes from the socket to
//! the I/O thread. Application threads talk to the I/O thread through a bounded, batched inbox;
//! no lock is held around the session.
//!
//! ## Errors
//!
//! One [`Error`] type; match on [`Error::kind`], one [`ErrorKind`] per exception type of the
//! seeds (`BadFilter`, `Disconnected`, `ConnectionRefused`, `TimedOut`, ...).
#![forbid(unsafe_code)]

mod client;
mod clock;
mod command;
mod dispatch;
mod driver;
mod error;
mod ha;
mod inbox;
mod message;
mod settings;
mod stream;
mod transport;

/// TLS (`tcps`) configuration helpers.
pub mod tls {
    pub use crate::transport::tls::{client_config_with_roots, default_client_config};
    pub use rustls::ClientConfig;
    pub use rustls::pki_types::CertificateDer;
}

pub use client::{Client, ListenerId};
pub use dispatch::{DEFAULT_DISPATCH_CAPACITY, HandlerResult};
pub use error::{Error, ErrorKind, Result};
pub use ha::{HaClient, ReconnectDelay};
pub use message::{AckHow, FailedWrite, Message};
pub use stream::{DEFAULT_STREAM_CAPACITY, MessageStream, OverflowPolicy};
pub use transport::{Direction, TransportFilter};

pub use amps_core::codec::{AckType, Command, CommandKind, Status, bookmark, options};
pub use amps_core::ha::{
    Authenticator, DefaultAuthenticator, DefaultServerChooser, ExponentialDelayStrategy,
    FixedDelayStrategy, ReconnectPolicy, ServerChooser,
};
pub use amps_core::session::{ConnectionState, Limits};
pub use amps_core::store::{
    BookmarkStore, MemoryBookmarkStore, MemoryPublishStore, NoBookmarkStore, NoPublishStore,
    PublishStore,
};
pub use amps_core::{Duration as CoreDuration, Instant as CoreInstant};
pub use rustls;
