//! What messages and streams send back to their client's driver (acks, discards, closed
//! streams, reports), and the narrow [`ControlSink`] they send it through, so that they
//! depend on neither the driver nor the client.

use std::sync::Arc;

use amps_core::session::{AckHow, CommandId};

use crate::error::{Error, Result};

/// A queue message the application finished with under auto-ack.
#[derive(Debug)]
pub(crate) struct Handled {
    pub(crate) route: CommandId,
    pub(crate) topic: String,
    pub(crate) bookmark: String,
    /// The handler succeeded (ack) or failed (cancel).
    pub(crate) ok: bool,
}

/// A fire-and-forget request for the driver.
#[derive(Debug)]
pub(crate) enum Control {
    /// `message.ack()` (with the message's subscription), or `client.ack(topic, bookmark)`
    /// (without).
    Ack {
        route: Option<CommandId>,
        topic: String,
        bookmark: String,
        how: AckHow,
    },
    /// Auto-acks of handled queue messages.
    Handled(Vec<Handled>),
    /// `message.discard()`.
    Discard { route: CommandId, bookmark: String },
    /// A stream was closed or dropped: end its route unless it moved to another stream since
    /// (a `replace`). `stream` identifies the stream's queue.
    StreamClosed { handle: CommandId, stream: usize },
    /// A problem found outside the driver, for the exception listener and event receivers.
    Report(Error),
}

/// Where controls go: the client's inbox.
pub(crate) trait ControlSink: Send + Sync {
    /// Queue `c` for the driver. Errors: the client is closed (or too busy).
    fn control(&self, c: Control) -> Result<()>;
}

/// A shared sink.
pub(crate) type Sink = Arc<dyn ControlSink>;
