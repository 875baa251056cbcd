//! Message-type helpers (AMPS Python client guide: "Utilities"; docs/protocol.md §16): building and
//! shredding FIX and NVFIX payloads, and building and parsing composite messages. Builders write
//! into any [`core::fmt::Write`]-like byte sink without allocating; shredders iterate borrowed
//! fields.

mod composite;
mod fix;

pub use composite::{CompositeBuilder, CompositeError, CompositeParser};
pub use fix::{FixBuilder, FixError, FixShredder, SOH};
