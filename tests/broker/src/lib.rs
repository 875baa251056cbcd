//! # amps-broker
//!
//! An in-memory broker that speaks the AMPS protocol as `docs/protocol.md` documents it, so every
//! client feature can be proven end to end without an AMPS server.
//!
//! - [`Engine`]: the sans-IO engine (connections, frames in, frames out, `now` passed in);
//!   deterministic, so the simulator can run it.
//! - [`Server`] / [`ServerHandle`]: the tokio TCP front end, in-process or as the `amps-broker`
//!   binary.
//! - [`Config`]: topics (SOW with key fields, queues, transaction-logged), users, limits; TOML.
//! - [`Faults`]: fault hooks for tests, from Rust or from the control port.
//! - [`filter`]: the content-filter language (docs/protocol.md §13), JSON paths, delta merge and
//!   delta-subscribe diffs (§12).
//!
//! ## In-process
//!
//! ```no_run
//! use amps_broker::{Config, ServerHandle};
//! let broker = ServerHandle::start_blocking(Config::default(), "127.0.0.1:0".parse().unwrap())?;
//! let addr = broker.local_addr(); // connect a client to tcp://{addr}/amps/json
//! broker.faults(|f| f.delay_acks = Some(amps_core::Duration::from_millis(50)));
//! broker.kill_connections();     // every client sees a disconnect
//! broker.restart();              // drop connections, keep SOW, transaction log, queues
//! broker.shutdown();
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! From async code: `let broker = Server::start(config, addr).await?;`.
//!
//! ## The engine's drive loop
//!
//! See [`engine`]: feed `open` / `handle_bytes` / `handle_closed` / `handle_timeout`, then drain
//! `poll_event` (write what `drain_output` returns on `Transmit`; close after draining on
//! `Close`) and sleep until `poll_timeout`.
//!
//! ## Binary and control port
//!
//! `cargo run -p amps-broker -- --listen 127.0.0.1:9007 [--config broker.toml]
//! [--control 127.0.0.1:9008]` prints `amps-broker listening on <addr>` (and
//! `amps-broker control on <addr>`) once bound. The control port takes one command per line and
//! answers `ok` or `error: <why>`:
//!
//! | line | effect |
//! |---|---|
//! | `close-all` | close every connection now |
//! | `close-client NAME` | close the connections logged on as `NAME` |
//! | `close-after N` | close the connection that sends the N-th frame from now |
//! | `fail-next-publish [reason]` | the next publish fails with `reason` (default `not entitled`) |
//! | `refuse-logons on [reason]` / `refuse-logons off` | refuse logons (default `authentication failed`) |
//! | `heartbeats on` / `heartbeats off` | stop sending and answering heartbeats |
//! | `delay-acks <ms>` | hold acks that long (0 = off) |
//! | `withhold-acks on` / `withhold-acks off` | drop every ack |
//! | `hold-compiles on` / `hold-compiles off` | compile no regex topic or filter (their commands wait) |
//! | `restart` | drop every connection, keep SOW, transaction log, queues, sequences |
//! | `clear` | clear every fault |
//!
//! Conventions where the protocol is silent are listed in `docs/protocol.md` §23 ("Test broker
//! choices": §23.1 engine, §23.2 failure reasons and limits).
//!
//! ## Limits
//!
//! One client cannot take the broker down or hold other clients up. The `[limits]` table of
//! the configuration ([`config::Limits`], every key also a flag of the binary, `--help` prints
//! the defaults) bounds what a client may cost:
//!
//! | limit | default |
//! |---|---|
//! | open connections (more are closed at once, with a FIN) | 1024 |
//! | logon within / a complete frame at least every | 10 s / 300 s |
//! | frame before logon / after (`max_frame`) | 64 KiB / 16 MiB |
//! | partial frames of all connections (largest holder closed) | 256 MiB |
//! | unsent output of one connection (`slow_consumer_bytes`) / of all (largest backlog closed first) | 64 MiB / 256 MiB |
//! | bytes read and not yet processed (TCP server; readers wait) | 1 MiB |
//! | compiled program / lazy-DFA cache of one regex topic or LIKE pattern | 4 MiB / 256 KiB |
//! | filter length / nesting | 256 KiB / 64 |
//! | accounted size of all compiled patterns | 256 MiB |
//!
//! Regex topics and filters are compiled once per distinct text and shared
//! ([`compile`]); the TCP server compiles them on tokio's blocking pool while the engine task
//! serves every other connection. [`Engine::stats`] and [`ServerHandle::stats`] report the
//! accounted figures ([`Stats`]); [`ServerHandle::start_blocking_manual_clock`] and
//! [`ServerHandle::advance_clock`] let tests run the timeouts without waiting.

// Nothing derived from network input may panic: the broker's own modules deny the panicking
// shortcuts outside tests (the filter module keeps its own rules).
macro_rules! no_panic_mods {
    ($($(#[$m:meta])* $vis:vis mod $name:ident;)*) => {$(
        $(#[$m])*
        #[cfg_attr(not(test), deny(
            clippy::indexing_slicing,
            clippy::unwrap_used,
            clippy::expect_used,
            clippy::panic,
            clippy::unreachable
        ))]
        $vis mod $name;
    )*};
}

no_panic_mods! {
    pub mod compile;
    pub mod config;
    pub mod engine;
    pub mod faults;
    mod payload;
    pub mod pattern;
    pub mod server;
    mod wire;
}
pub mod filter;

pub use config::{Config, MessageType};
pub use engine::{CloseReason, ConnId, Engine, EngineEvent, Stats};
pub use faults::Faults;
pub use server::{Server, ServerHandle};
pub use wire::{format_ts, parse_ts, publisher_id, sow_key};
