//! # amps-core
//!
//! The `no_std`, sans-IO core of an AMPS client: the wire codec, connection strings, the
//! [`session::Session`] state machine (logon, command ids and acks, heartbeats, subscriptions
//! and SOW batches, queue acks, reconnect policy), publish and bookmark stores, and the
//! message-type helpers. It never reads a socket, a clock, a file or an OS random source:
//! the caller passes `now`, bytes in and buffers out, so the same code runs in a host client,
//! on a microcontroller and in a deterministic simulator. The host clients (`amps-std`,
//! `amps-tokio`, through `amps-host`) and the device adapters are loops around it.
//!
//! ## The drive loop
//!
//! One [`session::Session`] lives as long as the client, across reconnects. An adapter calls
//! it in this order (see the [`session`] module for every contract):
//!
//! ```
//! use amps_core::Instant;
//! use amps_core::codec::Command;
//! use amps_core::session::{Config, Event, Logon, Parts, Session};
//!
//! let config = Config::new("sensor-7");
//! let mut session = Session::new(&config, Parts::heap(&config.limits, amps_core::store::NoPublishStore,
//!     amps_core::store::NoBookmarkStore)).unwrap();
//! let mut now = Instant::ZERO;
//!
//! // 1. The transport is open: the session queues the logon.
//! let logon = session.handle_connected(now, &Logon::default()).unwrap();
//! // 2. Drain events, then what to send (always in this order).
//! while let Some(event) = session.poll_event() { let _ = event; }
//! let mut out = [0u8; 4096];
//! while let Some(n) = session.poll_transmit(now, &mut out) { /* socket.write_all(&out[..n]) */ let _ = n; }
//! // 3. Bytes from the socket go in (here: the server's logon ack); events come out.
//! let ack = br#"{"c":"ack","cid":"1","a":"processed","status":"success"}"#;
//! let mut frame = (ack.len() as u32).to_be_bytes().to_vec();
//! frame.extend_from_slice(ack);
//! session.handle_bytes(now, &frame).unwrap();
//! while let Some(event) = session.poll_event() {
//!     if let Event::Completed { id, .. } = event { assert_eq!(id, logon); }
//! }
//! // 4. Commands only queue work; the next poll_transmit sends them.
//! session.publish(now, "telemetry", br#"{"t":21.5}"#).unwrap();
//! while let Some(n) = session.poll_transmit(now, &mut out) { let _ = n; }
//! // 5. Sleep until the socket, a command or session.poll_timeout(); on the timeout:
//! now = session.poll_timeout().unwrap_or(now);
//! session.handle_timeout(now);
//! ```
//!
//! The codec is usable on its own:
//!
//! ```
//! use amps_core::codec::{AckType, Command, FrameDecoder, Message, Scratch};
//!
//! // Encode a publish into a caller buffer, no allocation.
//! let mut wire = [0u8; 128];
//! let n = Command::publish("orders", br#"{"id":"A1","qty":100}"#)
//!     .seq(1)
//!     .ack(AckType::Persisted)
//!     .encode(&mut wire)
//!     .unwrap();
//!
//! // Decode it again from arbitrarily chunked input.
//! let mut decoder = FrameDecoder::new([0u8; 256], 1024);
//! for chunk in wire[..n].chunks(7) {
//!     decoder.push(chunk);
//! }
//! let frame = decoder.next_frame().unwrap().unwrap();
//! let msg = Message::parse(frame, &mut Scratch::empty()).unwrap();
//! assert_eq!(msg.topic(), Some("orders"));
//! assert_eq!(msg.seq(), Some(1));
//! assert_eq!(msg.data(), br#"{"id":"A1","qty":100}"#);
//! ```
//!
//! Features: `alloc` (default; heap-backed stores and buffers), `std` (`std::error` glue),
//! `defmt`, `log`, `sim` (the simulator's seeded random source; not for applications).
//! Features add API and never change behaviour.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(
    clippy::std_instead_of_core,
    clippy::alloc_instead_of_core,
    clippy::std_instead_of_alloc
)]
// Nothing derived from input may panic: indexing, unwrap and friends are denied in the library; the
// few sites indexing fixed tables by enum discriminants carry a justified allow.
#![cfg_attr(
    not(test),
    warn(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable
    )
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(all(feature = "std", not(test)))]
extern crate std;

pub mod codec;
pub mod ha;
mod log;
pub mod msgtypes;
mod rng;
pub mod session;
pub mod store;
mod strlist;
pub mod time;
pub mod uri;
pub mod util;

pub use time::{Duration, Instant};

/// The examples of the crate's README, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
