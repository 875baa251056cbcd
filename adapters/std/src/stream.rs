//! [`MessageStream`]: the synchronous way to receive (seeds: "Synchronous message processing").
//!
//! The I/O thread copies each message into the stream's bounded queue; the application
//! iterates on its own thread, so a slow consumer never holds up the thread that reads the
//! socket and answers heartbeats. The queue is bounded with a named overflow policy
//! (design.md §3): by default [`OverflowPolicy::Block`] with room for
//! [`DEFAULT_STREAM_CAPACITY`] messages, which holds back further input from the connection
//! (TCP backpressure) until the consumer catches up, so nothing is lost; `DropOldest`,
//! `SlowConsumer` (end the stream with an error and unsubscribe) and `Unbounded` (the seeds'
//! own behaviour) are available through `Client::set_stream_limits`.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub use amps_core::conflate::OverflowPolicy;
use amps_core::conflate::{ConflatingQueue, Pushed};
use amps_core::session::CommandId;

use crate::client::Shared;
use crate::driver::{Handled, Op};
use crate::error::{Error, ErrorKind, Result};
use crate::message::Message;

/// Messages a stream holds by default before its overflow policy applies.
pub const DEFAULT_STREAM_CAPACITY: usize = 10_000;

/// Messages the consumer takes from the shared queue at once (without conflation), so it locks
/// once per batch rather than once per message.
const TAKE_BATCH: usize = 256;

enum End {
    Open,
    /// Ended normally (a query completed, or the stream was closed).
    Finished,
    /// Ends with this error once drained (disconnect, failure, overflow).
    Failed(Error),
}

pub(crate) struct StreamState {
    queue: ConflatingQueue<Message>,
    end: End,
    /// The application closed or dropped the stream: messages are discarded.
    gone: bool,
    /// The I/O thread holds a message that did not fit and waits for room.
    blocked: bool,
    /// The consumer waits for a message (only then is it signalled).
    waiting: bool,
}

/// The queue between the I/O thread and a [`MessageStream`].
pub(crate) struct StreamShared {
    state: Mutex<StreamState>,
    ready: Condvar,
}

/// What a push did.
pub(crate) enum Push {
    /// Queued (or conflated, or the oldest was dropped by policy).
    Queued,
    /// The queue is full under [`OverflowPolicy::Block`]: the message is returned; the stream
    /// wakes the I/O thread when it makes room.
    Blocked(Message),
    /// The consumer is gone: the message was dropped.
    Gone,
    /// The queue overflowed under [`OverflowPolicy::SlowConsumer`]: the stream now ends with
    /// an error; the subscription should be ended.
    Overflowed,
}

/// The I/O thread's side of a stream, locked for a run of pushes.
pub(crate) struct Producer<'a> {
    st: MutexGuard<'a, StreamState>,
    ready: &'a Condvar,
    pushed: bool,
}

impl Producer<'_> {
    pub(crate) fn push(&mut self, m: Message) -> Push {
        if self.st.gone || !matches!(self.st.end, End::Open) {
            return Push::Gone;
        }
        match self.st.queue.push(m) {
            Pushed::Queued | Pushed::Replaced | Pushed::DroppedOldest(_) => {
                self.pushed = true;
                Push::Queued
            }
            Pushed::Full(m) if self.st.queue.policy() == OverflowPolicy::SlowConsumer => {
                drop(m);
                self.st.end = End::Failed(Error::new(
                    ErrorKind::Busy,
                    "message stream overflow: the consumer is too slow (policy SlowConsumer)",
                ));
                self.pushed = true;
                Push::Overflowed
            }
            Pushed::Full(m) => {
                self.st.blocked = true;
                Push::Blocked(m)
            }
        }
    }
}

impl Drop for Producer<'_> {
    fn drop(&mut self) {
        if self.pushed && self.st.waiting {
            self.ready.notify_all();
        }
    }
}

impl StreamShared {
    pub(crate) fn new(capacity: usize, policy: OverflowPolicy) -> Arc<Self> {
        Arc::new(StreamShared {
            state: Mutex::new(StreamState {
                queue: ConflatingQueue::new(capacity, policy),
                end: End::Open,
                gone: false,
                blocked: false,
                waiting: false,
            }),
            ready: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, StreamState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lock for pushing.
    pub(crate) fn producer(&self) -> Producer<'_> {
        Producer {
            st: self.lock(),
            ready: &self.ready,
            pushed: false,
        }
    }

    /// End the stream: normally (`None`) or with an error the consumer sees once drained.
    pub(crate) fn finish(&self, error: Option<Error>) {
        let mut st = self.lock();
        if matches!(st.end, End::Open) {
            st.end = error.map_or(End::Finished, End::Failed);
        }
        self.ready.notify_all();
    }
}

/// An iterator over the messages of a command (seeds: `MessageStream`).
///
/// - Blocks in `next()` until a message arrives. Yields `Ok(message)`; after a disconnect it
///   yields the messages already received, then one `Err` (kind `Disconnected`), then `None`.
///   A query (`sow`) ends with `None` after its last record.
/// - Dropping it (or [`MessageStream::close`]) unsubscribes.
/// - [`MessageStream::conflate`] keeps only the newest unconsumed message per SOW key.
/// - Bounded; see the module docs for the overflow policies.
/// - Under auto-ack, asking for the next message acknowledges the previous queue message.
pub struct MessageStream {
    shared: Arc<StreamShared>,
    client: Arc<Shared>,
    handle: CommandId,
    sub_id: String,
    closed: bool,
    /// Queue message to acknowledge under auto-ack when the next one is requested.
    unacked: Option<(CommandId, String, String)>,
    /// Messages taken from the shared queue, not yet returned.
    taken: VecDeque<Message>,
}

impl MessageStream {
    pub(crate) fn new(
        shared: Arc<StreamShared>,
        client: Arc<Shared>,
        handle: CommandId,
        sub_id: String,
    ) -> Self {
        MessageStream {
            shared,
            client,
            handle,
            sub_id,
            closed: false,
            unacked: None,
            taken: VecDeque::new(),
        }
    }

    /// The subscription id (or query id) of the command.
    pub fn sub_id(&self) -> &str {
        &self.sub_id
    }

    /// Keep only the newest unconsumed message per SOW key (seeds: client-side conflation).
    /// Messages without a SOW key are never conflated. Returns the stream for chaining.
    pub fn conflate(self) -> Self {
        self.shared.lock().queue.set_conflate(true);
        self
    }

    /// Messages waiting to be consumed.
    pub fn len(&self) -> usize {
        self.shared.lock().queue.len() + self.taken.len()
    }

    /// True when no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stop receiving: the subscription (or running query) is ended on the server and
    /// messages not yet consumed are dropped. Idempotent; `next()` then returns `None`.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.ack_previous();
        {
            let mut st = self.shared.lock();
            st.gone = true;
            st.end = End::Finished;
            while st.queue.pop().is_some() {}
        }
        self.taken.clear();
        // Best effort: after a shutdown there is nothing to unsubscribe from.
        let _ = self.client.send(Op::StreamClosed {
            handle: self.handle,
        });
    }

    /// The next message, waiting at most `timeout`. `Ok(Some(m))`: a message; `Ok(None)`: the
    /// stream ended; `Err` with kind `TimedOut`: nothing arrived in time; any other `Err`: the
    /// stream ended with that error.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Message>> {
        match self.next_inner(Some(timeout)) {
            Some(Ok(Some(m))) => Ok(Some(m)),
            Some(Ok(None)) => Err(Error::new(
                ErrorKind::TimedOut,
                format!("no message within {timeout:?}"),
            )),
            Some(Err(e)) => Err(e),
            None => Ok(None),
        }
    }

    fn ack_previous(&mut self) {
        if let Some((route, topic, bookmark)) = self.unacked.take() {
            let _ = self.client.send(Op::Handled(vec![Handled {
                route,
                topic,
                bookmark,
                ok: true,
            }]));
        }
    }

    /// `Some(Ok(Some))` message, `Some(Ok(None))` timed out, `Some(Err)` error, `None` end.
    fn next_inner(&mut self, timeout: Option<Duration>) -> Option<Result<Option<Message>>> {
        if self.closed {
            return None;
        }
        self.ack_previous();
        if let Some(m) = self.taken.pop_front() {
            return Some(Ok(Some(self.returned(m))));
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut st = self.shared.lock();
        loop {
            // Conflation needs unconsumed messages in the queue, where a newer one can replace
            // them; otherwise take a batch.
            let take = if st.queue.is_conflating() {
                1
            } else {
                TAKE_BATCH
            };
            while self.taken.len() < take
                && let Some(m) = st.queue.pop()
            {
                self.taken.push_back(m);
            }
            if let Some(m) = self.taken.pop_front() {
                if st.blocked {
                    st.blocked = false;
                    self.client.inbox.wake();
                }
                drop(st);
                return Some(Ok(Some(self.returned(m))));
            }
            match std::mem::replace(&mut st.end, End::Finished) {
                End::Open => st.end = End::Open,
                End::Finished => {
                    self.closed = true;
                    return None;
                }
                End::Failed(e) => return Some(Err(e)),
            }
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                return Some(Ok(None));
            }
            st.waiting = true;
            st = match left {
                None => self
                    .shared
                    .ready
                    .wait(st)
                    .unwrap_or_else(|p| p.into_inner()),
                Some(left) => {
                    self.shared
                        .ready
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
            st.waiting = false;
        }
    }

    /// A message handed to the application (remembered for auto-ack).
    fn returned(&mut self, m: Message) -> Message {
        if self.client.auto_ack() {
            self.unacked = m.auto_ack_key();
        }
        m
    }
}

impl Iterator for MessageStream {
    type Item = Result<Message>;

    fn next(&mut self) -> Option<Result<Message>> {
        match self.next_inner(None)? {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

impl Drop for MessageStream {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for MessageStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStream")
            .field("sub_id", &self.sub_id)
            .field("queued", &self.len())
            .finish()
    }
}
