//! # amps-broker
//!
//! An in-memory broker that speaks the AMPS protocol as `protocol.md` documents it, so every
//! client feature can be proven end to end without an AMPS server (design.md §4).
//!
//! - [`filter`]: the content-filter language (protocol.md §13), JSON paths, delta merge and
//!   delta-subscribe diffs (§12).
//! - the sans-IO engine, the tokio TCP server, configuration and fault hooks: see the modules
//!   below.

pub mod filter;
