//! # amps-fuzz-checks
//!
//! The bodies of the libFuzzer targets in `fuzz/fuzz_targets/`, as plain functions over one
//! input: each target is a one-line call to its function here, and `tests/corpus.rs` replays
//! every checked-in corpus file (`fuzz/corpus/<target>/`, reproducers of past findings
//! included) through the same function on the stable toolchain, as part of
//! `cargo test --workspace`. RELIABILITY.md at the repository root describes both.
//!
//! Each function accepts any bytes. It returns normally for an input that breaks no invariant
//! (including inputs the code under test rightly refuses with an error) and panics, with a
//! message naming the invariant, only when one is broken. The invariants are listed in each
//! function's documentation.
//!
//! Most targets read their input as `control | stream`: the first [`CTRL`] bytes steer the
//! driver (feature flags, chunk sizes, when timers fire, buffer sizes; see [`Steer`]) and the
//! rest is the byte stream under test. [`seed`] builds such an input; the `make_corpus`
//! example writes the starting corpora.
//!
//! Not a stable API: it follows the crates it checks.

mod broker;
mod command_roundtrip;
mod frame_decoder;
mod fs_store;
mod header_parser;
mod input;
pub mod memfs;
mod session;
mod uri;

pub mod fs_file;

pub use broker::broker;
pub use command_roundtrip::command_roundtrip;
pub use frame_decoder::frame_decoder;
pub use fs_store::fs_store;
pub use header_parser::header_parser;
pub use input::{CTRL, Steer, assert_whole_frames, frame, seed, vectors};
pub use session::session;
pub use uri::uri;

/// A target's check: returns for an input that breaks no invariant, panics otherwise.
pub type Check = fn(&[u8]);

/// Every target by name (the name of its cargo-fuzz binary and of its corpus directory), with
/// its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("frame_decoder", frame_decoder),
    ("header_parser", header_parser),
    ("command_roundtrip", command_roundtrip),
    ("uri", uri),
    ("session", session),
    ("broker", broker),
    ("fs_store", fs_store),
];

/// Flag bits (of [`Steer::flags`]) of the [`session`] target.
pub mod session_flags {
    /// The fuzz input answers the logon (else the driver acknowledges it).
    pub const MANUAL_LOGON: u8 = 0;
    /// Heartbeats every second.
    pub const HEARTBEAT: u8 = 1;
    /// Reconnect (fixed delay) and re-enter subscriptions.
    pub const RECONNECT: u8 = 2;
    /// A two-second limit on `processed` acks.
    pub const COMMAND_TIMEOUT: u8 = 3;
    /// Queue acks batched by three.
    pub const ACK_BATCH: u8 = 4;
    /// Enter no subscriptions or publishes before the stream.
    pub const NO_COMMANDS: u8 = 5;
}

/// Flag bits (of [`Steer::flags`]) of the [`broker`] target.
pub mod broker_flags {
    /// Users with passwords, one answered by a challenge.
    pub const AUTH: u8 = 0;
    /// A 2 KiB frame limit and a 16 KiB slow-consumer limit.
    pub const SMALL_LIMITS: u8 = 1;
    /// Every connection logs on before the stream.
    pub const AUTO_LOGON: u8 = 2;
    /// One connection instead of three.
    pub const ONE_CONN: u8 = 3;
    /// A FIX SOW topic with expiring records and a queue with short leases.
    pub const EXTRA_TOPICS: u8 = 4;
}

/// Mode bits of the [`fs_store`] target: the first byte of an input that is not a store file.
pub mod fs_store_mode {
    /// A bookmark log (else a publish segment).
    pub const BOOKMARK: u8 = 1 << 0;
    /// The rest describes the file as records ([`crate::fs_file`]); else it is the file.
    pub const RECORDS: u8 = 1 << 1;
    /// With [`RECORDS`]: format version 1 (else 2).
    pub const VERSION_1: u8 = 1 << 2;
}
