//! # amps-embassy
//!
//! An AMPS client for async microcontroller firmware: it drives an [`amps_core`]
//! [`Session`](amps_core::session::Session) over any transport implementing
//! [`embedded_io_async::Read`] and [`embedded_io_async::Write`] (embassy-net's `TcpSocket` on
//! STM32, nRF, RP2040 or ESP32 alike, a TLS stream over one, tokio sockets in tests).
//! `#![no_std]`, no allocator: the application provides every buffer.
//!
//! What it does: connect and log on, publish through a bounded in-memory publish store that
//! survives reconnects (numbered publishes, released by the server's `persisted` acks),
//! subscribe, heartbeats, and reconnect with the session's backoff policy after a lost link
//! through the application's connect function, replaying unpersisted publishes and re-entering
//! subscriptions.
//!
//! # Shape
//!
//! - [`Client`]: shared by `&` between tasks; commands (`publish`, `subscribe`, `close`, ...)
//!   queue work in the session and wake the driver.
//! - [`Driver`]: owned by one task; [`Driver::run`] opens connections through a [`Connect`]or
//!   when the session asks for one, moves bytes, fires timers and hands every event to a
//!   handler.
//! - [`Clock`]: where time comes from. A two-method trait rather than a hard `embassy-time`
//!   dependency, so the crate links into images whose time driver the application picks and
//!   runs on tokio's clock in the host tests; `EmbassyClock` (feature `embassy-time`) is the
//!   one an Embassy firmware uses.
//!
//! ```no_run
//! use amps_core::ha::{ExponentialDelayStrategy, ReconnectPolicy};
//! use amps_core::session::{Config, ConnectRequest, Event, FixedStorage, HeartbeatConfig};
//! use amps_embassy::{Buffers, Client, Clock, Driver, Options};
//! use embassy_sync::blocking_mutex::raw::NoopRawMutex;
//! # fn buf(n: usize) -> &'static mut [u8] { Box::leak(vec![0; n].into_boxed_slice()) }
//! # struct MyClock;
//! # impl Clock for MyClock {
//! #     fn now(&self) -> amps_core::Instant { amps_core::Instant::ZERO }
//! #     async fn sleep_until(&self, _: amps_core::Instant) {}
//! # }
//! # struct Socket;
//! # impl embedded_io_async::ErrorType for Socket { type Error = core::convert::Infallible; }
//! # impl embedded_io_async::Read for Socket {
//! #     async fn read(&mut self, _: &mut [u8]) -> Result<usize, Self::Error> { Ok(0) }
//! # }
//! # impl embedded_io_async::Write for Socket {
//! #     async fn write(&mut self, b: &[u8]) -> Result<usize, Self::Error> { Ok(b.len()) }
//! #     async fn flush(&mut self) -> Result<(), Self::Error> { Ok(()) }
//! # }
//! # async fn open_socket() -> Result<Socket, ()> { Ok(Socket) }
//! # async fn app() {
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
//! let client: Client<NoopRawMutex, FixedStorage<8, 2>, MyClock> = Client::new(session, MyClock);
//!
//! // The connect function: called for every attempt, spaced by the reconnect policy.
//! let connect = |_req: ConnectRequest| open_socket();
//! let mut driver: Driver<'_, _, _, _, _> = Driver::new(&client, connect, Options::new());
//!
//! let io = driver.run(|event| match event {
//!     Event::Persisted { up_to } => { /* the server has everything up to `up_to` */ }
//!     Event::Delivery(d) => { /* d.data(): a message of a subscription */ }
//!     _ => {}
//! });
//! let app = async {
//!     client.connect().await;
//!     // Waits while the publish window is full or before the first logon.
//!     client.publish_wait("telemetry", br#"{"t":21.5}"#).await.unwrap();
//! };
//! // In firmware the two run in separate tasks; here, side by side in one.
//! embassy_futures::join::join(io, app).await;
//! # }
//! ```
//!
//! On embassy-net, see [`embassy_net_wiring`]: a connector over a `TcpSocket`, the tasks, and
//! the buffers to put in `static`s.
//!
//! Without an executor, [`blocking::BlockingClient`] drives the same session over
//! `embedded_io::{Read, Write, ReadReady}` from the application's own loop.
//!
//! # Features
//!
//! - `embassy-time`: `EmbassyClock`.
//! - `defmt`: log connection changes with defmt (and turn on amps-core's defmt logging).
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

pub mod blocking;
mod client;
mod clock;
mod connect;
mod disconnect;
mod driver;
mod log;

pub use amps_core::session::Buffers;
pub use client::{Client, Link, Stats};
pub use clock::Clock;
#[cfg(feature = "embassy-time")]
pub use clock::EmbassyClock;
pub use connect::Connect;
pub use disconnect::Disconnect;
pub use driver::{Driver, Options};

/// # Wiring on embassy-net
///
/// The example below is `targets/embassy-firmware/examples/embassy_net/main.rs`, which CI builds
/// for `thumbv7em-none-eabihf` (`targets/run-checks.sh`); the crate carries a copy of it
/// (`doc/embassy_net.rs`, kept identical by a test) so that its documentation builds from the
/// published package too. It is a whole firmware: on a board,
/// the network device and the time driver come from the HAL (embassy-stm32's Ethernet,
/// cyw43 on a Pico W, esp-wifi, ...); there the firmware crate's loopback device and
/// virtual time driver stand in, so the example links without a board.
///
/// The pieces:
///
/// 1. **Static memory.** The session's buffers, the socket buffers and the [`Client`] live
///    in `StaticCell`s: nothing is allocated, the image's `.bss` is the whole budget.
/// 2. **The stack.** `embassy_net::new` with the device, a static IP (or DHCP), and a task
///    running the stack's `Runner`.
/// 3. **The connector.** A struct owning one `TcpSocket<'static>` implements [`Connect`]:
///    each attempt aborts what the socket still holds, sets its timeouts and connects to the
///    server; the connection it returns is `&mut TcpSocket` (embassy-net's socket reads and
///    writes are cancel-safe, as the driver requires). Its `close` ends with FIN when the
///    application asked, with a reset otherwise.
/// 4. **The driver task.** `Driver::new(client, connector, options).run(handler)`; the
///    handler copies what other tasks need into an `embassy_sync` channel.
/// 5. **The application task.** `client.connect()`, `client.subscribe(...)`, then
///    `client.publish_wait(...)` on a `Ticker`.
///
#[doc = "```rust,ignore"]
#[doc = include_str!("../doc/embassy_net.rs")]
#[doc = "```"]
pub mod embassy_net_wiring {}

/// The examples of the crate's README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
