//! # amps-smoltcp
//!
//! An AMPS client for devices without an operating system: it drives an [`amps_core`]
//! [`Session`](amps_core::session::Session) over a [smoltcp] TCP socket from the
//! application's own poll loop. `#![no_std]`, no allocator: the application
//! provides every buffer (the socket's, the session's, the publish store's) and the clock.
//!
//! What it does: connect and log on (docs/protocol.md §6.1), publish through a bounded in-memory
//! publish store that survives reconnects (§8.4), subscribe (§6.4), heartbeats (§9), and
//! reconnect with the session's backoff policy after a lost link, replaying unpersisted
//! publishes and re-entering subscriptions, failing over between servers that each take their
//! own logon.
//!
//! # The drive loop
//!
//! ```no_run
//! use amps_core::ha::{ExponentialDelayStrategy, ReconnectPolicy};
//! use amps_core::session::{Config, Event, HeartbeatConfig};
//! use amps_smoltcp::{Buffers, Client, Options};
//! use smoltcp::iface::{Interface, SocketSet, SocketStorage};
//! use smoltcp::socket::tcp;
//! use smoltcp::time::Instant;
//! use smoltcp::wire::IpAddress;
//! # fn buf(n: usize) -> &'static mut [u8] { Box::leak(vec![0; n].into_boxed_slice()) }
//! # fn clock() -> Instant { Instant::from_millis(0) }
//! # fn sleep(_: Option<smoltcp::time::Duration>) {}
//! # fn run(mut iface: Interface, mut device: impl smoltcp::phy::Device) {
//!
//! // Buffers: static cells in firmware (`&'static mut [u8]`), anything 'static in tests.
//! let mut storage = [SocketStorage::EMPTY; 2];
//! let mut sockets = SocketSet::new(&mut storage[..]);
//! let socket = sockets.add(tcp::Socket::new(
//!     tcp::SocketBuffer::new(buf(2048)),
//!     tcp::SocketBuffer::new(buf(2048)),
//! ));
//!
//! let mut config = Config::new("sensor-17");
//! config.heartbeat = Some(HeartbeatConfig::new(5));
//! config.reconnect = ReconnectPolicy::Exponential(ExponentialDelayStrategy::default());
//! config.resubscribe = true;
//! let buffers = Buffers {
//!     rx: buf(1100), tx: buf(1024), scratch: buf(256), arena: buf(256), ack_batch: buf(512),
//!     publish_store: buf(4096), publish_window: 32, bookmark_store: buf(64),
//! };
//! // At most 8 commands awaiting acks and 2 subscriptions.
//! let session = buffers.session::<8, 2>(&config).unwrap();
//! let mut client = Client::new(session, socket, Options::new((IpAddress::v4(192, 0, 2, 7), 9007)));
//!
//! client.connect(clock());
//! loop {
//!     let now = clock();
//!     iface.poll(now, &mut device, &mut sockets);
//!     client.poll(now, &mut iface, &mut sockets, |event| match event {
//!         Event::Persisted { up_to } => { /* the server has everything up to `up_to` */ }
//!         Event::Delivery(d) => { /* d.data(): a message of a subscription */ }
//!         _ => {}
//!     });
//!     if client.is_ready() {
//!         // Backpressure (window full, transmit buffer full) is an error to retry later.
//!         let _ = client.publish(now, "telemetry", br#"{"t":21.5}"#);
//!     }
//!     // Sleep until a packet arrives or the earlier of the interface's and the session's
//!     // timers (heartbeats, reconnect backoff, command timeouts).
//!     sleep(client.poll_delay(now, &mut iface, &sockets));
//! }
//! # }
//! ```
//!
//! Events borrow the session's receive buffer (zero-copy), so the handler cannot call back
//! into the client; copy what you need and act after `poll` returns.
//!
//! # Failover
//!
//! [`Options::failover`] lists servers to fall back on, each a [`Server`] with its own
//! address and logon (credentials, message type); [`Options::server`] with
//! [`Options::logon`] is server 0, the list's entries are servers 1, 2, ... The client
//! rotates through them as the host clients' default server chooser does:
//!
//! - it stays on a server while it works;
//! - a failed connection attempt (refused, unaddressable, timed out) moves to the next server,
//!   wrapping after the last;
//! - so does a connection that ends before its logon succeeded: a refused logon, a logon
//!   timeout, a reset during the logon;
//! - a connection lost after a successful logon is retried on the same server first; only a
//!   failure of that retry moves on.
//!
//! Every logon sent is the logon of the server it goes to (a server's challenge,
//! `Event::LogonRetry`, is answered with [`Client::answer_logon_retry`]). Attempts are spaced by
//! the session's reconnect policy, except after a refused logon, which moves to the next server at
//! once. When every server in turn has refused its logon, the client stops (retrying refused
//! credentials cannot help, and the core does the same for a single server) until
//! [`Client::connect`] is called again. [`Client::current_server`] tells which server the
//! client is on or will try next, and [`Stats::failovers`] counts the moves. Nothing is
//! allocated: the list is the application's (a `static` in firmware), and [`Options`] stays
//! `Copy`.
//!
//! ```
//! use amps_core::session::Logon;
//! use amps_smoltcp::{Options, Server};
//! use smoltcp::wire::{IpAddress, IpEndpoint};
//!
//! static BACKUP: [Server<'static>; 1] = [Server {
//!     endpoint: IpEndpoint { addr: IpAddress::v4(192, 0, 2, 8), port: 9007 },
//!     logon: Logon {
//!         user_id: Some("sensor-17"),
//!         password: Some("backup-site-secret"),
//!         message_type: Some("json"),
//!         options: None,
//!     },
//! }];
//!
//! let mut opts = Options::new((IpAddress::v4(192, 0, 2, 7), 9007));
//! opts.failover = &BACKUP;
//! ```
//!
//! # Time
//!
//! The adapter takes smoltcp's [`Instant`](smoltcp::time::Instant) everywhere and converts to
//! the core's unsigned microseconds ([`time`]); both count from the application's origin.
//!
//! # Features
//!
//! - `defmt`: log connection changes with defmt (and turn on amps-core's and smoltcp's defmt
//!   logging).
//!
//! [`loopback::Loopback`] is an allocation-free loopback device for self-tests (targets/
//! bare-metal runs a client and a responder over it).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic
    )
)]

mod client;
mod drive;
mod failover;
mod log;
pub mod loopback;
mod options;
pub mod time;

pub use amps_core::session::Buffers;
pub use client::{Client, Link, Stats};
pub use options::{Options, Server, UriUnsupported};

/// The examples of the crate's README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
