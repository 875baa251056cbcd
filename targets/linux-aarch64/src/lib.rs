//! # amps-telemetry-gateway
//!
//! A telemetry gateway for an aarch64 Linux edge device: it reads samples (load, memory, uptime
//! from /proc), serializes each with serde-json-core into a fixed buffer, and publishes them
//! through amps-std's [`amps_std::HaClient`] with amps-fs's file-backed publish store, heartbeats
//! on, at a configurable rate and topic. It shuts down with `publish_flush` and succeeds only when
//! every message is persisted.
//!
//! ```text
//! amps-telemetry-gateway tcp://127.0.0.1:9007/amps/json --count 50 --rate 20 --topic telemetry
//! ```
//!
//! The binary is cross-built for aarch64-unknown-linux-gnu and run under qemu-aarch64 by
//! `targets/run-checks.sh` (with the toolchain `targets/cross.sh` installs).

pub mod args;
pub mod gateway;
pub mod telemetry;

pub use args::{Args, ArgsError, USAGE};
pub use gateway::{GatewayError, Summary, run};
