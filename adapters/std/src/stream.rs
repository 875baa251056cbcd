//! [`MessageStream`] and [`Events`]: the host client's queues as blocking iterators.

use std::time::{Duration, Instant};

use amps_host::{ClientEvent, Error, EventReceiver, Message, Result, StreamCore};

/// The messages of a command, in order, as an iterator.
///
/// - `next()` blocks until a message arrives and yields `Ok(message)`; after a disconnect it
///   yields the messages already received, then one `Err` (kind `Disconnected`), then `None`.
///   A query (`sow`) ends with `None` after its last record.
/// - Dropping it (or [`MessageStream::close`]) unsubscribes.
/// - Bounded in messages and bytes, with the overflow policy of its stream options.
/// - Under auto-ack, asking for the next message acknowledges the previous queue message.
#[derive(Debug)]
pub struct MessageStream(pub(crate) StreamCore);

impl MessageStream {
    /// The subscription id (or query id) of the command.
    pub fn sub_id(&self) -> &str {
        self.0.sub_id()
    }

    /// Keep only the newest unconsumed message per SOW key from now on. Returns the stream
    /// for chaining.
    pub fn conflate(mut self) -> Self {
        self.0.conflate();
        self
    }

    /// Messages waiting to be consumed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Messages dropped by the `DropOldest` policy so far.
    pub fn dropped_count(&self) -> u64 {
        self.0.dropped_count()
    }

    /// Stop receiving: the subscription is ended on the server and messages not yet consumed
    /// are dropped. Idempotent; `next()` then returns `None`.
    pub fn close(&mut self) {
        self.0.close();
    }

    /// The next message, blocking: `None` once the stream ended (the same as
    /// `Iterator::next`).
    pub fn recv(&mut self) -> Option<Result<Message>> {
        self.0.next_blocking(None)
    }

    /// Run `handler` on each message until the stream ends, acknowledging each queue message
    /// when the handler succeeds and returning it to the queue (`cancel`) when it fails; the
    /// failure is reported as a [`ClientEvent::Error`].
    pub fn process<F, E>(mut self, mut handler: F) -> Result<()>
    where
        F: FnMut(&Message) -> std::result::Result<(), E>,
        E: std::fmt::Display,
    {
        while let Some(item) = self.0.next_blocking(None) {
            let msg = item?;
            let outcome = handler(&msg);
            self.0.processed(&msg, outcome)?;
        }
        Ok(())
    }

    /// The next message, waiting at most `timeout`: `Ok(Some(m))` a message, `Ok(None)` the
    /// stream ended, `Err` with kind `TimedOut` nothing arrived in time, any other `Err` the
    /// stream ended with that error.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Message>> {
        self.0
            .next_blocking(Some(Instant::now() + timeout))
            .transpose()
    }
}

impl Iterator for MessageStream {
    type Item = Result<Message, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_blocking(None)
    }
}

/// The client's events (see [`ClientEvent`]) as an iterator; it ends once the client is
/// closed and its events are taken.
#[derive(Debug)]
pub struct Events(pub(crate) EventReceiver);

impl Events {
    /// The next event, waiting at most `timeout` (`None` if none came or the client closed).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Option<ClientEvent> {
        self.0.next_blocking(Some(Instant::now() + timeout))
    }
}

impl Iterator for Events {
    type Item = ClientEvent;

    fn next(&mut self) -> Option<ClientEvent> {
        self.0.next_blocking(None)
    }
}
