//! [`MessageStream`]: the messages of one command as a `futures::Stream` (seeds:
//! "MessageStream"), bounded with a named overflow policy, with client-side conflation, auto-ack
//! of queue messages, unsubscribe on drop, and an error item after a disconnect once the
//! messages already received are drained.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use amps_core::conflate::{ConflatingQueue, OverflowPolicy, Pushed};
use amps_core::session::{AckHow, CommandId};
use futures::Stream;

use crate::error::Error;
use crate::events::ClientEvent;
use crate::message::Message;
use crate::shared::{Control, Shared};

/// How a stream buffers messages the application has not taken yet (design.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    /// Messages held before the overflow policy applies (default 10 000).
    pub capacity: usize,
    /// What a full stream does (default [`OverflowPolicy::Block`]: the client stops reading
    /// from the server until the application takes a message, so nothing is lost; the server
    /// sees TCP backpressure and other streams of the client wait too).
    pub policy: OverflowPolicy,
    /// Conflate by SOW key from the start (see [`MessageStream::conflate`]).
    pub conflate: bool,
    /// Acknowledge each queue message when the next one is taken or the stream ends, unless
    /// the application acknowledged it (seeds: `set_auto_ack`). Default: the client's setting.
    pub auto_ack: Option<bool>,
    /// Re-enter the subscription after a reconnect and keep the stream open (the HA client's
    /// subscription manager; default: on for [`crate::HaClient`], off for [`crate::Client`],
    /// whose streams end with an error after a disconnect, as the seeds' streams do).
    pub resubscribe: Option<bool>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            capacity: 10_000,
            policy: OverflowPolicy::Block,
            conflate: false,
            auto_ack: None,
            resubscribe: None,
        }
    }
}

enum End {
    Open,
    Done,
    Failed(Error),
}

struct State {
    queue: ConflatingQueue<Message>,
    waker: Option<Waker>,
    end: End,
    /// The driver holds a message for this full stream (policy `Block`) and waits for room.
    driver_waiting: bool,
    dropped: u64,
}

/// The part of a stream the driver task writes into.
pub(crate) struct StreamShared {
    state: Mutex<State>,
    closed: AtomicBool,
    policy: OverflowPolicy,
}

/// What a push did.
// Returned by value and consumed at once; the message is moved, not copied, in practice.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Push {
    /// Queued (or conflated, or queued after dropping the oldest).
    Done,
    /// Full under `Block`: the driver keeps the message and waits for [`Shared::kick`].
    Full(Message),
    /// Full under `SlowConsumer`: the stream was ended with an error; unsubscribe it.
    SlowConsumer,
    /// The application dropped the stream.
    Closed,
}

impl StreamShared {
    pub(crate) fn new(opts: &StreamOptions) -> Arc<StreamShared> {
        let mut queue = ConflatingQueue::new(opts.capacity, opts.policy);
        queue.set_conflate(opts.conflate);
        Arc::new(StreamShared {
            state: Mutex::new(State {
                queue,
                waker: None,
                end: End::Open,
                driver_waiting: false,
                dropped: 0,
            }),
            closed: AtomicBool::new(false),
            policy: opts.policy,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add a message (the driver).
    pub(crate) fn push(&self, msg: Message) -> Push {
        if self.closed.load(Ordering::Acquire) {
            return Push::Closed;
        }
        let mut st = self.lock();
        // A stream ended by a disconnect still takes what arrived before it (the consumer
        // drains the queue before it sees the error); a finished query takes nothing.
        if matches!(st.end, End::Done) {
            return Push::Closed;
        }
        let out = match st.queue.push(msg) {
            Pushed::Queued | Pushed::Replaced => Push::Done,
            Pushed::DroppedOldest(_) => {
                st.dropped += 1;
                Push::Done
            }
            Pushed::Full(m) if self.policy == OverflowPolicy::SlowConsumer => {
                drop(m);
                st.end = End::Failed(Error::new(
                    amps_core::error_kind::ErrorKind::Busy,
                    "slow consumer: the stream was full",
                ));
                Push::SlowConsumer
            }
            Pushed::Full(m) => {
                st.driver_waiting = true;
                Push::Full(m)
            }
        };
        // The consumer is woken once per batch of deliveries (see `wake`), not per message:
        // waking it at the first message would have it take that one alone and sleep again.
        out
    }

    /// Wake the consumer after the driver pushed a batch. Returns false when nothing waited.
    pub(crate) fn wake(&self) {
        let w = self.lock().waker.take();
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Whether a stalled driver may push again (room, or the application is gone).
    pub(crate) fn has_room_or_closed(&self) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return true;
        }
        let st = self.lock();
        !st.queue.is_full() || matches!(st.end, End::Done)
    }

    /// End the stream: normally (`None`) or with an error after the queued messages.
    pub(crate) fn finish(&self, error: Option<Error>) {
        let mut st = self.lock();
        if matches!(st.end, End::Open) {
            st.end = error.map_or(End::Done, End::Failed);
        }
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }
}

/// A token to acknowledge the last message taken, for auto-ack.
struct Pending {
    msg: Message,
}

/// The messages of a command, in order (seeds: `MessageStream`).
///
/// Items are `Ok(message)`; after a disconnect (for streams that are not re-entered) the
/// messages already received are still yielded, then one `Err` with kind `Disconnected`, then
/// the stream ends. A query ends (`None`) after its last record; a subscription runs until it
/// is unsubscribed. Dropping the stream (or [`MessageStream::close`]) unsubscribes.
///
/// `next()` is cancel-safe: a message is removed from the stream only when it is returned.
pub struct MessageStream {
    inner: Arc<StreamShared>,
    shared: Arc<Shared>,
    handle: CommandId,
    sub_id: String,
    auto_ack: bool,
    last: Option<Pending>,
    done: bool,
    /// Messages taken from the shared queue in one lock (when not conflating), so the
    /// consumer and the driver do not contend for the lock once per message. With it a
    /// stream holds at most twice its capacity.
    local: std::collections::VecDeque<Message>,
}

impl MessageStream {
    pub(crate) fn new(
        inner: Arc<StreamShared>,
        shared: Arc<Shared>,
        handle: CommandId,
        sub_id: String,
        auto_ack: bool,
    ) -> MessageStream {
        MessageStream {
            inner,
            shared,
            handle,
            sub_id,
            auto_ack,
            last: None,
            done: false,
            local: std::collections::VecDeque::new(),
        }
    }

    /// The subscription id (or query id) of the command.
    pub fn sub_id(&self) -> &str {
        &self.sub_id
    }

    /// The session's handle of the command.
    pub fn handle(&self) -> CommandId {
        self.handle
    }

    /// Conflate from now on (seeds: `conflate()`): a message whose SOW key matches one not yet
    /// taken replaces it in place. Messages without SOW keys are never conflated.
    pub fn conflate(&self) {
        self.inner.lock().queue.set_conflate(true);
    }

    /// Messages waiting in the stream.
    pub fn len(&self) -> usize {
        self.local.len() + self.inner.lock().queue.len()
    }

    /// True when no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages dropped by the `DropOldest` policy.
    pub fn dropped_count(&self) -> u64 {
        self.inner.lock().dropped
    }

    /// The next message: `StreamExt::next` without importing `futures` (seeds: iterating a
    /// `MessageStream`). `None` when the stream ended.
    ///
    /// Cancel-safety: a message leaves the stream only when this returns it.
    pub async fn recv(&mut self) -> Option<Result<Message, Error>> {
        futures::StreamExt::next(self).await
    }

    /// Unsubscribe and drop the stream (same as dropping it; seeds: `close()`).
    pub fn close(self) {}

    /// Run `handler` on each message until the stream ends (seeds: a message handler with
    /// auto-ack): a queue message is acknowledged when the handler returns `Ok` and returned
    /// to the queue (`cancel`) when it returns `Err`; the error is reported to the client's
    /// events as [`ClientEvent::HandlerError`] and processing goes on. Returns the stream's
    /// closing error, if it ended with one.
    ///
    /// Cancel-safety: dropping the future drops the stream (unsubscribing); a message whose
    /// handler was interrupted is neither acknowledged nor cancelled, so its lease expires and
    /// the queue delivers it again.
    pub async fn process<F, Fut, E>(mut self, mut handler: F) -> Result<(), Error>
    where
        F: FnMut(&Message) -> Fut,
        Fut: core::future::Future<Output = Result<(), E>>,
        E: core::fmt::Display,
    {
        use futures::StreamExt;
        self.auto_ack = false;
        while let Some(item) = self.next().await {
            let msg = item?;
            match handler(&msg).await {
                Ok(()) => msg.ack(),
                Err(e) => {
                    msg.ack_with(AckHow::Cancel);
                    let _ = self
                        .shared
                        .events
                        .send(ClientEvent::HandlerError(e.to_string()));
                }
            }
        }
        Ok(())
    }

    fn auto_ack_last(&mut self) {
        if let Some(p) = self.last.take()
            && !p.msg.is_acked()
        {
            p.msg.ack();
        }
    }
}

impl Stream for MessageStream {
    type Item = Result<Message, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let item = if let Some(m) = this.local.pop_front() {
            Some(Ok(m))
        } else {
            std::task::ready!(this.take_from_queue(cx))
        };
        if this.auto_ack {
            this.auto_ack_last();
        }
        match item {
            Some(Ok(m)) => {
                if this.auto_ack && m.is_queue_message() {
                    this.last = Some(Pending { msg: m.clone() });
                }
                Poll::Ready(Some(Ok(m)))
            }
            Some(Err(e)) => Poll::Ready(Some(Err(e))),
            None => {
                this.done = true;
                Poll::Ready(None)
            }
        }
    }
}

impl MessageStream {
    /// The next item from the shared queue (taking the rest of it into `local` when not
    /// conflating), the end, or `Pending` with the waker registered.
    fn take_from_queue(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        let mut st = self.inner.lock();
        let item = if let Some(m) = st.queue.pop() {
            // `local` is empty here: the rest of the queue moves over in O(1).
            if !st.queue.is_conflating() {
                st.queue.drain_into(&mut self.local);
            }
            if st.driver_waiting {
                st.driver_waiting = false;
                self.shared.kick();
            }
            Some(Ok(m))
        } else {
            match std::mem::replace(&mut st.end, End::Done) {
                End::Open => {
                    st.end = End::Open;
                    st.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                End::Done => None,
                End::Failed(e) => Some(Err(e)),
            }
        };
        Poll::Ready(item)
    }
}

impl Drop for MessageStream {
    fn drop(&mut self) {
        if self.auto_ack {
            self.auto_ack_last();
        }
        self.inner.closed.store(true, Ordering::Release);
        self.shared.push_control(Control::StreamClosed(
            self.handle,
            Arc::downgrade(&self.inner),
        ));
    }
}

impl core::fmt::Debug for MessageStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MessageStream")
            .field("sub_id", &self.sub_id)
            .field("handle", &self.handle)
            .finish()
    }
}
