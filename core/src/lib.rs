//! # amps-core
//!
//! The `no_std`, sans-IO core of an AMPS client: the wire codec, connection strings, and (in
//! later modules) the session state machine, timers, HA policy and bounded stores. It never
//! reads a socket, a clock, a file or an OS random source: adapters pass `now`, bytes in and
//! buffers out (design.md §2).
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
//! Features: `alloc` (default; owned conveniences), `std` (`std::error` glue), `defmt`, `log`.
//! Features add API and never change behaviour.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![warn(
    clippy::std_instead_of_core,
    clippy::alloc_instead_of_core,
    clippy::std_instead_of_alloc
)]
// Nothing derived from input may panic (design.md §2): indexing, unwrap and friends are denied in
// the library; the few sites indexing fixed tables by enum discriminants carry a justified allow.
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
#[cfg(feature = "alloc")]
pub mod conflate;
pub mod error_kind;
pub mod ha;
mod log;
pub mod msgtypes;
#[cfg(feature = "alloc")]
pub mod owned;
pub mod session;
pub mod store;
pub mod time;
pub mod uri;
pub mod util;

pub use time::{Duration, Instant};
