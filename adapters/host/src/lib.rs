//! # amps-host
//!
//! The runtime-neutral host layer of the AMPS client: everything a host client does that is
//! not "how to wait". `amps-std` (blocking, on threads) and `amps-tokio` (async) are thin
//! loops around it, with the same API; applications use them, usually through the `amps`
//! crate, not this one.
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
//! - connection set-up ([`net`]): socket options from the connection string, address order,
//!   TLS configuration.
//!
//! An adapter provides a client type implementing [`Adapter`] (how to start the driver's
//! loop) and runs the loop described on [`Driver`].
#![forbid(unsafe_code)]

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
mod handler;
mod inbox;
mod listeners;
mod message;
pub mod msgtypes;
pub mod net;
mod op;
mod owned;
mod queue;
mod shared;
#[cfg(feature = "fs")]
mod stores;
mod stream;
mod sync;
mod timer;

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
pub use handler::HandlerResult;
pub use listeners::ListenerId;
pub use message::{AckHow, FailedWrite, Message};
pub use net::{Direction, TlsConfig, TransportFilter};
pub use queue::{Budget, OverflowPolicy};
pub use stream::StreamCore;
pub use sync::{Deadline, Notify, Pending, Reply, Signal, Ticket, reply_pair, with_deadline};

pub use amps_core::codec::{AckType, Command, CommandKind, OofReason, Status, bookmark, options};
pub use amps_core::ha::{Authenticator, DefaultAuthenticator, DefaultServerChooser, ServerChooser};
pub use amps_core::session::{ConnectionState, Limits};
pub use amps_core::store::{
    BookmarkStore, MemoryBookmarkStore, MemoryPublishStore, NoBookmarkStore, NoPublishStore,
    PublishStore,
};
#[cfg(feature = "tls")]
pub use rustls;

/// What the application sees of the host layer, the same in every client: the adapters
/// (`amps-std`, `amps-tokio`) and the `amps` facade re-export this whole module at their root,
/// so a type has one name whichever client is used.
pub mod api {
    pub use crate::msgtypes;
    pub use crate::{
        AckHow, AckType, Authenticator, BookmarkStore, ClientBuilder, ClientEvent, Command,
        CommandKind, ConnectionState, DEFAULT_CLOSE_TIMEOUT, DEFAULT_COMMAND_TIMEOUT,
        DEFAULT_CONNECT_AND_LOGON_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_LOGON_TIMEOUT,
        DEFAULT_PUBLISH_QUEUE_BYTES, DEFAULT_RECEIVE_BYTES, DEFAULT_STREAM_CAPACITY,
        DefaultAuthenticator, DefaultServerChooser, DelayStrategy, Direction, Error, ErrorKind,
        ExponentialDelay, FailedWrite, FixedDelay, HandlerResult, Limits, ListenerId,
        MemoryBookmarkStore, MemoryPublishStore, Message, NoBookmarkStore, NoPublishStore,
        OofReason, OverflowPolicy, PublishOptions, PublishStore, Result, ServerChooser, Status,
        StreamOptions, TlsConfig, bookmark, options,
    };
}
