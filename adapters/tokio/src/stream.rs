//! [`MessageStream`] and [`EventStream`]: the host client's queues as `futures::Stream`s.

use std::pin::Pin;
use std::task::{Context, Poll};

use amps_host::{ClientEvent, Error, EventReceiver, Message, StreamCore};
use futures_core::Stream;

/// The messages of a command, in order, as a `futures::Stream`.
///
/// Items are `Ok(message)`; after a disconnect (for streams that are not re-entered) the
/// messages already received are still yielded, then one `Err` with kind `Disconnected`, then
/// the stream ends. A query ends after its last record; a subscription runs until it is
/// unsubscribed. Dropping the stream (or [`MessageStream::close`]) unsubscribes. Bounded in
/// messages and bytes, with the overflow policy of its stream options.
///
/// `next()` is cancel-safe: a message is removed from the stream only when it is returned.
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
    /// are dropped. Idempotent; the stream then ends.
    pub fn close(&mut self) {
        self.0.close();
    }

    /// The next message: `None` once the stream ended (the same as `StreamExt::next`).
    /// Cancel-safe.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        std::future::poll_fn(|cx| self.0.poll_next(cx)).await
    }

    /// The next message, waiting at most `timeout`: `Ok(Some(m))` a message, `Ok(None)` the
    /// stream ended, `Err` with kind `TimedOut` nothing arrived in time, any other `Err` the
    /// stream ended with that error. Cancel-safe.
    pub async fn recv_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<Option<Message>, Error> {
        match tokio::time::timeout(timeout, self.recv()).await {
            Ok(item) => item.transpose(),
            Err(_) => Err(Error::new(
                amps_host::ErrorKind::TimedOut,
                "no message in time",
            )),
        }
    }

    /// Run `handler` on each message until the stream ends, acknowledging each queue message
    /// when the handler succeeds and returning it to the queue (`cancel`) when it fails; the
    /// failure is reported as a [`ClientEvent::Error`].
    ///
    /// Cancel-safety: dropping the future drops the stream (unsubscribing); a message whose
    /// handler was interrupted is neither acknowledged nor cancelled, so its lease expires and
    /// the queue delivers it again.
    pub async fn process<F, Fut, E>(mut self, mut handler: F) -> Result<(), Error>
    where
        F: FnMut(&Message) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        while let Some(item) = std::future::poll_fn(|cx| self.0.poll_next(cx)).await {
            let msg = item?;
            let outcome = handler(&msg).await;
            self.0.processed(&msg, outcome)?;
        }
        Ok(())
    }
}

impl Stream for MessageStream {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.poll_next(cx)
    }
}

/// The client's events (see [`ClientEvent`]) as a `futures::Stream`; it ends once the client
/// is closed and its events are taken. Each stream sees every event sent after it was
/// created; one that falls behind loses the oldest and is told with `ClientEvent::Lagged`.
#[derive(Debug)]
pub struct EventStream(pub(crate) EventReceiver);

impl Stream for EventStream {
    type Item = ClientEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        self.get_mut().0.poll_next(cx)
    }
}
