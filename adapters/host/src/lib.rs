//! # amps-host
//!
//! The runtime-neutral host layer of the AMPS client: everything a client on an operating system
//! does that is not "how to wait". `amps-std` (blocking, on threads) and `amps-tokio` (async)
//! are thin loops around it, with the same API and the same behaviour; applications use them,
//! usually through the `amps` crate. This crate is for writing a client for another runtime.
//!
//! What lives here, once:
//!
//! - [`Message`], [`Error`] / [`ErrorKind`], [`ClientEvent`] and [`FailedWrite`]: what the
//!   application sees;
//! - [`Handle`]: every client operation (argument checks, defaults, routing to the driver),
//!   answering with a [`Pending`] the blocking client waits for and the async client awaits;
//! - [`Driver`]: the owner of the `amps-core` session: command routing and the table of
//!   waiting callers, streams and handlers, publish staging and backpressure, listeners,
//!   logon with credentials and authenticators, the HA server chooser and reconnects, stores;
//! - bounded queues ([`StreamCore`], the handler queue, event receivers, the publish queue),
//!   bounded in messages and in bytes (docs/host.md, "Bounded queues");
//! - [`ClientBuilder`] with every setting and its default, [`DelayStrategy`] with
//!   [`FixedDelay`] and [`ExponentialDelay`];
//! - connection set-up ([`net`]): socket options from the connection string, address order,
//!   TLS configuration.
//!
//! ## Writing an adapter
//!
//! An adapter provides a client type implementing [`Adapter`] (how to start the driver's loop)
//! and runs the loop described on [`Driver`] (and in docs/host.md, "The driver loop"). A
//! complete, if naive, blocking client, talking to a broker:
//!
//! ```
//! use std::io::{ErrorKind, Read, Write};
//! use std::net::TcpStream;
//! use std::time::{Duration, Instant};
//!
//! use amps_host::{Adapter, ClientBuilder, Driver, Error, Handle, IoRequest, PublishOptions};
//!
//! /// A minimal blocking client: one thread runs the driver loop over a `TcpStream`.
//! struct MiniClient(Handle);
//!
//! impl Adapter for MiniClient {
//!     const HA: bool = false;
//!     fn from_handle(handle: Handle) -> Self {
//!         MiniClient(handle)
//!     }
//!     fn spawn(driver: Driver) -> amps_host::Result<()> {
//!         std::thread::spawn(move || run(driver));
//!         Ok(())
//!     }
//! }
//!
//! /// The driver loop (see `Driver`), polling the socket every few milliseconds.
//! fn run(mut driver: Driver) {
//!     let mut socket: Option<TcpStream> = None;
//!     let mut buf = vec![0u8; 64 * 1024];
//!     let (mut start, mut end) = (0, 0);
//!     while !driver.is_finished() {
//!         driver.step();
//!         while let Some(request) = driver.poll_io() {
//!             (socket, start, end) = (None, 0, 0);
//!             if let IoRequest::Open(open) = request {
//!                 let opened = amps_core::uri::Uri::parse(&open.uri)
//!                     .map_err(Error::from)
//!                     .and_then(|uri| {
//!                         amps_host::net::connect_tcp(&uri, open.timeout)
//!                             .map_err(|e| Error::connect(&uri, e))
//!                     });
//!                 let result = opened.map(|s| socket = Some(s));
//!                 driver.handle_opened(result);
//!             }
//!         }
//!         let Some(s) = socket.as_mut() else {
//!             // No connection: sleep until a command arrives or a timer is due.
//!             driver.signal().wait_blocking(driver.deadline());
//!             continue;
//!         };
//!         while !driver.output().is_empty() {
//!             match s.write(driver.output()) {
//!                 Ok(n) => driver.handle_written(n),
//!                 Err(e) => {
//!                     driver.handle_closed(Some(e));
//!                     break;
//!                 }
//!             }
//!         }
//!         if start == end {
//!             let _ = s.set_read_timeout(Some(Duration::from_millis(5)));
//!             match s.read(&mut buf) {
//!                 Ok(0) => driver.handle_closed(None),
//!                 Ok(n) => (start, end) = (0, n),
//!                 Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
//!                 Err(e) => driver.handle_closed(Some(e)),
//!             }
//!         }
//!         if start < end {
//!             let taken = driver.handle_input(&buf[start..end]);
//!             start += taken;
//!             if taken == 0 {
//!                 // The client's queues are full: wait for the application to make room.
//!                 let soon = Instant::now() + Duration::from_millis(5);
//!                 driver.signal().wait_blocking(Some(soon));
//!             }
//!         }
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let broker = amps_broker::ServerHandle::start_blocking(
//! #     amps_broker::Config::default(), "127.0.0.1:0".parse()?)?;
//! # let uri = format!("tcp://{}/amps/json", broker.local_addr());
//! let client: MiniClient = ClientBuilder::new("mini-1").build()?;
//! let c = &client.0;
//! c.connect(&uri).wait()?;
//! c.logon().wait()?;
//! let mut orders = c.subscribe("orders", None).wait()?;
//! c.publish_blocking(false, "orders", br#"{"id":"A1"}"#, &PublishOptions::default())?;
//! let msg = orders.next_blocking(None).expect("a message")?;
//! assert_eq!(msg.data(), br#"{"id":"A1"}"#);
//! c.close().wait()?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod builder;
mod client;
mod command;
mod config;
mod control;
mod delay;
mod dispatch;
mod driver;
mod error;
mod error_kind;
mod events;
mod getters;
mod ha_handles;
mod handler;
mod inbox;
mod listeners;
mod lock;
mod message;
pub mod msgtypes;
pub mod net;
mod op;
mod owned;
mod params;
mod queue;
pub mod recovery;
mod shared;
#[cfg(feature = "fs")]
mod stores;
mod stream;
mod sync;
mod timer;
mod version;

pub use builder::ClientBuilder;
pub use client::{Adapter, HaAdapter, Handle, WeakHandle};
pub use config::{
    DEFAULT_CLOSE_TIMEOUT, DEFAULT_COMMAND_QUEUE, DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_AND_LOGON_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DISPATCH_CAPACITY,
    DEFAULT_LOGON_TIMEOUT, DEFAULT_PUBLISH_QUEUE_BYTES, DEFAULT_RECEIVE_BYTES,
    DEFAULT_STABILITY_WINDOW, DEFAULT_STREAM_CAPACITY, PublishOptions, StreamOptions,
};
pub use delay::{DelayStrategy, ExponentialDelay, FixedDelay};
pub use driver::{Driver, IoRequest, OpenRequest};
pub use error::{Error, ErrorKind, Result};
pub use events::{ClientEvent, EVENT_BYTES, EVENT_CAPACITY, EventReceiver};
pub use getters::{BookmarkStoreInfo, DisconnectHandler, ExceptionListener, PublishStoreInfo};
pub use ha_handles::{DelayStrategyHandle, ServerChooserHandle};
pub use handler::HandlerResult;
pub use listeners::ListenerId;
pub use message::{AckHow, FailedWrite, Message};
pub use net::{Direction, TlsConfig, TransportFilter};
pub use params::Params;
pub use queue::{Budget, OverflowPolicy};
pub use recovery::{
    RECOVERY_TOPIC, RecoveryPointAdapter, RecoveryPointStore, SowRecoveryPointAdapter,
};
pub use stream::StreamCore;
pub use sync::{Deadline, Notify, Pending, Reply, Signal, Ticket, reply_pair, with_deadline};
pub use version::ServerVersion;

pub use amps_core::codec::{AckType, Command, CommandKind, OofReason, Status, bookmark, options};
pub use amps_core::ha::{Authenticator, DefaultAuthenticator, DefaultServerChooser, ServerChooser};
pub use amps_core::session::{ConnectionState, Limits};
pub use amps_core::store::{
    BookmarkStore, HybridPublishStore, MemoryBookmarkStore, MemoryPublishStore, NoBookmarkStore,
    NoPublishStore, PublishStore,
};
#[cfg(feature = "tls")]
pub use rustls;

/// What the application sees of the host layer, the same in every client: the adapters
/// (`amps-std`, `amps-tokio`) and the `amps` facade re-export this whole module at their root,
/// so a type has one name whichever client is used.
pub mod api {
    pub use crate::msgtypes;
    pub use crate::recovery::{
        RECOVERY_TOPIC, RecoveryPointAdapter, RecoveryPointStore, SowRecoveryPointAdapter,
    };
    pub use crate::{
        AckHow, AckType, Authenticator, BookmarkStore, BookmarkStoreInfo, ClientBuilder,
        ClientEvent, Command, CommandKind, ConnectionState, DEFAULT_CLOSE_TIMEOUT,
        DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_AND_LOGON_TIMEOUT, DEFAULT_CONNECT_TIMEOUT,
        DEFAULT_LOGON_TIMEOUT, DEFAULT_PUBLISH_QUEUE_BYTES, DEFAULT_RECEIVE_BYTES,
        DEFAULT_STREAM_CAPACITY, DefaultAuthenticator, DefaultServerChooser, DelayStrategy,
        DelayStrategyHandle, Direction, DisconnectHandler, Error, ErrorKind, ExceptionListener,
        ExponentialDelay, FailedWrite, FixedDelay, HandlerResult, HybridPublishStore, Limits,
        ListenerId, MemoryBookmarkStore, MemoryPublishStore, Message, NoBookmarkStore,
        NoPublishStore, OofReason, OverflowPolicy, Params, PublishOptions, PublishStore,
        PublishStoreInfo, Result, ServerChooser, ServerChooserHandle, ServerVersion, Status,
        StreamOptions, TlsConfig, bookmark, options,
    };
}

/// The examples of the crate's README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
