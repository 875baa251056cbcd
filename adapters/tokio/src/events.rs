//! What the client reports besides command results (seeds: connection state listener,
//! exception listener, failed-write handler, last-chance message handler), as a
//! `futures::Stream` of [`ClientEvent`]s; the current state is also a `watch` channel.

use std::pin::Pin;
use std::task::{Context, Poll};

use amps_core::session::{ConnectionState, FailureKind};
use futures::Stream;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use crate::error::Error;
use crate::message::Message;

/// One report from the client.
// Events are rare (states, failures); boxing the message variant would cost every receiver a
// pointer chase for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The connection state changed, in the seeds' order: Connected, LoggedOn,
    /// HeartbeatInitiated, PublishReplayed, Resubscribed; Disconnected; Shutdown.
    State(ConnectionState),
    /// The server refused a sequenced command (seeds: `failed_write_handler`).
    FailedWrite {
        /// Its sequence number.
        seq: u64,
        /// Classified reason (protocol.md §15).
        kind: FailureKind,
        /// The server's reason text.
        reason: String,
        /// The frame as the publish store kept it (prefix, header, payload), if it had it.
        stored: Option<Vec<u8>>,
    },
    /// A message nothing else handles (seeds: `last_chance_message_handler`), e.g. a delivery
    /// for a subscription that was just unsubscribed or a failure ack nobody waits for.
    LastChance(Message),
    /// A problem that is not a command's failure (seeds: exception listener): stream errors,
    /// connection failures of the HA client, publishes dropped while disconnected, ...
    Error(Error),
    /// A handler run by [`crate::MessageStream::process`] returned an error.
    HandlerError(String),
    /// This receiver fell behind and missed this many events (the event buffer is bounded
    /// and drops the oldest events for receivers that do not keep up).
    Lagged(u64),
}

/// The client's events as a `futures::Stream` (see [`crate::Client::events`]). Each stream sees
/// every event sent after it was created. It ends when the client is gone.
pub struct EventStream {
    inner: BoxStream<'static, ClientEvent>,
}

impl EventStream {
    pub(crate) fn new(rx: broadcast::Receiver<ClientEvent>) -> EventStream {
        let inner = futures::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(ev) => Some((ev, rx)),
                Err(broadcast::error::RecvError::Lagged(n)) => Some((ClientEvent::Lagged(n), rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        EventStream {
            inner: Box::pin(inner),
        }
    }

    /// Only the connection states.
    pub fn states(self) -> impl Stream<Item = ConnectionState> + Send + Unpin {
        use futures::StreamExt;
        self.filter_map(|e| async move {
            match e {
                ClientEvent::State(s) => Some(s),
                _ => None,
            }
        })
        .boxed()
    }
}

impl Stream for EventStream {
    type Item = ClientEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl core::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EventStream")
    }
}
