//! Message streams: the bounded queue between the driver and the application, and
//! [`StreamCore`], the consumer's side that the blocking client wraps as an `Iterator` and the
//! async client as a `futures::Stream`.
//!
//! The queue is bounded in messages (its capacity) and in bytes (the client's receive budget),
//! with a named overflow policy (docs/host.md, "Bounded queues"): `Block` (the default: the
//! driver stops taking input from the connection, TCP pushes back, nothing is lost),
//! `DropOldest`, `SlowConsumer` (the stream ends with an error and is unsubscribed) and
//! `Unbounded` (only when asked for).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use amps_core::session::CommandId;

use crate::config::StreamOptions;
use crate::control::{Control, Handled, Sink};
use crate::error::{Error, ErrorKind};
use crate::message::Message;
use crate::queue::{Budget, ConflatingQueue, Entry, OverflowPolicy, Pushed};
use crate::sync::{Signal, lock};

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

struct StreamState {
    queue: ConflatingQueue<Message>,
    end: End,
    /// The application closed or dropped the stream: messages are discarded.
    gone: bool,
    /// The driver holds a message that did not fit and waits for room.
    blocked: bool,
    /// A blocked thread waits for a message (only then is the condvar signalled).
    waiting: bool,
    /// An async consumer waits for a message.
    waker: Option<Waker>,
    /// Messages dropped by the `DropOldest` policy.
    dropped: u64,
}

/// The queue between the driver and one stream.
pub(crate) struct StreamShared {
    state: Mutex<StreamState>,
    ready: Condvar,
}

/// What a push did.
// Returned by value and consumed at once.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Push {
    /// Queued (or conflated, or the oldest were dropped by policy).
    Queued,
    /// The queue is full under [`OverflowPolicy::Block`]: the message is returned; the stream
    /// wakes the driver when it makes room.
    Blocked(Message),
    /// The stream already ended (a query completed, a disconnect): the message was dropped.
    Ended,
    /// The application closed or dropped the stream: the message is returned (for the
    /// last-chance handler).
    Gone(Message),
    /// The queue overflowed under [`OverflowPolicy::SlowConsumer`]: the stream now ends with
    /// an error; the subscription should be ended.
    Overflowed,
}

/// The driver's side of a stream, locked for a run of pushes; the consumer is woken once when
/// it is dropped, not once per message.
pub(crate) struct Producer<'a> {
    st: MutexGuard<'a, StreamState>,
    shared: &'a StreamShared,
    pushed: bool,
}

impl Producer<'_> {
    pub(crate) fn push(&mut self, m: Message) -> Push {
        if self.st.gone {
            return Push::Gone(m);
        }
        // A stream ended by a disconnect takes nothing more; what it holds is drained before
        // the consumer sees the end.
        if !matches!(self.st.end, End::Open) {
            return Push::Ended;
        }
        let policy = self.st.queue.policy();
        match self.st.queue.push(m) {
            Pushed::Queued | Pushed::Replaced => {}
            Pushed::DroppedOldest(n) => self.st.dropped += n as u64,
            Pushed::Dropped => {
                self.st.dropped += 1;
                return Push::Queued;
            }
            Pushed::Full(m) if policy == OverflowPolicy::SlowConsumer => {
                drop(m);
                self.st.end = End::Failed(Error::new(
                    ErrorKind::Busy,
                    "message stream overflow: the consumer is too slow (policy SlowConsumer)",
                ));
                self.pushed = true;
                return Push::Overflowed;
            }
            Pushed::Full(m) => {
                self.st.blocked = true;
                return Push::Blocked(m);
            }
        }
        self.pushed = true;
        Push::Queued
    }
}

impl Drop for Producer<'_> {
    fn drop(&mut self) {
        if self.pushed {
            self.shared.wake_consumer(&mut self.st);
        }
    }
}

impl StreamShared {
    pub(crate) fn new(opts: &StreamOptions, budget: Arc<Budget>) -> Arc<Self> {
        let mut queue = ConflatingQueue::new(opts.capacity, opts.policy, budget);
        queue.set_conflate(opts.conflate);
        Arc::new(StreamShared {
            state: Mutex::new(StreamState {
                queue,
                end: End::Open,
                gone: false,
                blocked: false,
                waiting: false,
                waker: None,
                dropped: 0,
            }),
            ready: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, StreamState> {
        lock(&self.state)
    }

    fn wake_consumer(&self, st: &mut StreamState) {
        if st.waiting {
            self.ready.notify_all();
        }
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }

    /// Lock for pushing.
    pub(crate) fn producer(&self) -> Producer<'_> {
        Producer {
            st: self.lock(),
            shared: self,
            pushed: false,
        }
    }

    /// Identifies this stream's queue (for `Control::StreamClosed`).
    pub(crate) fn id(self: &Arc<Self>) -> usize {
        Arc::as_ptr(self) as usize
    }

    /// End the stream: normally (`None`) or with an error the consumer sees once drained.
    pub(crate) fn finish(&self, error: Option<Error>) {
        let mut st = self.lock();
        if matches!(st.end, End::Open) {
            st.end = error.map_or(End::Finished, End::Failed);
        }
        self.wake_consumer(&mut st);
    }
}

/// The consumer's side of a stream: the blocking client's `MessageStream` iterates it, the
/// async client's polls it. Dropping it (or [`StreamCore::close`]) ends the subscription.
///
/// Under auto-ack, asking for the next message acknowledges the previous queue message
/// (unless the application did), and so does closing the stream.
pub struct StreamCore {
    shared: Arc<StreamShared>,
    /// The way to the driver, the client's receive budget, and the driver's wake-up.
    sink: Sink,
    budget: Arc<Budget>,
    driver: Arc<Signal>,
    handle: CommandId,
    sub_id: String,
    closed: bool,
    auto_ack: bool,
    /// The last queue message returned, acknowledged when the next one is asked for.
    unacked: Option<Message>,
    /// Messages taken from the shared queue, not yet returned (still counted in the budget).
    taken: VecDeque<Message>,
}

impl StreamCore {
    pub(crate) fn new(
        shared: Arc<StreamShared>,
        (sink, budget, driver): (Sink, Arc<Budget>, Arc<Signal>),
        handle: CommandId,
        sub_id: String,
        auto_ack: bool,
    ) -> Self {
        StreamCore {
            shared,
            sink,
            budget,
            driver,
            handle,
            sub_id,
            closed: false,
            auto_ack,
            unacked: None,
            taken: VecDeque::new(),
        }
    }

    /// The subscription id (or query id) of the command.
    pub fn sub_id(&self) -> &str {
        &self.sub_id
    }

    /// Keep only the newest unconsumed message per SOW key from now on. Messages without a
    /// SOW key are never conflated.
    pub fn conflate(&mut self) {
        self.shared.lock().queue.set_conflate(true);
    }

    /// Messages waiting to be consumed.
    pub fn len(&self) -> usize {
        self.shared.lock().queue.len() + self.taken.len()
    }

    /// True when no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages dropped by the `DropOldest` policy so far.
    pub fn dropped_count(&self) -> u64 {
        self.shared.lock().dropped
    }

    /// Stop receiving: the subscription (or running query) is ended on the server and
    /// messages not yet consumed are dropped. Idempotent; the stream then yields nothing.
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
            st.queue.clear();
            if st.blocked {
                st.blocked = false;
                self.driver.wake();
            }
        }
        self.give_back_taken();
        // Best effort: after a shutdown there is nothing to unsubscribe from.
        let _ = self.sink.control(Control::StreamClosed {
            handle: self.handle,
            stream: self.shared.id(),
        });
    }

    fn give_back_taken(&mut self) {
        for m in self.taken.drain(..) {
            self.budget.give(m.size());
        }
    }

    fn ack_previous(&mut self) {
        if let Some(m) = self.unacked.take()
            && let Some((route, topic, bookmark)) = m.take_auto_ack()
        {
            let _ = self.sink.control(Control::Handled(vec![Handled {
                route,
                topic,
                bookmark,
                ok: true,
            }]));
        }
    }

    /// A message handed to the application: its bytes leave the budget, and it is
    /// remembered for auto-ack.
    fn returned(&mut self, m: Message) -> Message {
        self.budget.give(m.size());
        if self.auto_ack && m.is_queue_message() {
            self.unacked = Some(m.clone());
        }
        m
    }

    /// Take the next message or the end from the shared queue, under its lock.
    fn take(&mut self, st: &mut StreamState) -> Option<Option<Result<Message, Error>>> {
        // Conflation needs unconsumed messages in the queue, where a newer one can replace
        // them; otherwise take a batch.
        if st.queue.is_conflating() {
            if let Some(m) = st.queue.pop_counted() {
                self.taken.push_back(m);
            }
        } else {
            while self.taken.len() < TAKE_BATCH
                && let Some(m) = st.queue.pop_counted()
            {
                self.taken.push_back(m);
            }
        }
        if let Some(m) = self.taken.pop_front() {
            if st.blocked {
                st.blocked = false;
                self.driver.wake();
            }
            return Some(Some(Ok(m)));
        }
        match std::mem::replace(&mut st.end, End::Finished) {
            End::Open => {
                st.end = End::Open;
                None
            }
            End::Finished => Some(None),
            End::Failed(e) => Some(Some(Err(e))),
        }
    }

    fn deliver(&mut self, item: Option<Result<Message, Error>>) -> Option<Result<Message, Error>> {
        match item {
            Some(Ok(m)) => Some(Ok(self.returned(m))),
            Some(Err(e)) => Some(Err(e)),
            None => {
                self.closed = true;
                None
            }
        }
    }

    /// The next message, blocking until one arrives, the stream ends (`None`) or `deadline`
    /// passes (`Some(Err)` with kind `TimedOut`). After a disconnect the stream yields the
    /// messages already received, then one error, then `None`.
    pub fn next_blocking(&mut self, deadline: Option<Instant>) -> Option<Result<Message, Error>> {
        if self.closed {
            return None;
        }
        self.ack_previous();
        if let Some(m) = self.taken.pop_front() {
            return Some(Ok(self.returned(m)));
        }
        let shared = self.shared.clone();
        let mut st = shared.lock();
        loop {
            if let Some(item) = self.take(&mut st) {
                drop(st);
                return self.deliver(item);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Some(Err(Error::timed_out("no message in time")));
            }
            st.waiting = true;
            st = match deadline {
                None => shared.ready.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    shared
                        .ready
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
            st.waiting = false;
        }
    }

    /// The next message for an async consumer (cancel-safe: a message leaves the stream only
    /// when it is returned).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Message, Error>>> {
        if self.closed {
            return Poll::Ready(None);
        }
        self.ack_previous();
        if let Some(m) = self.taken.pop_front() {
            return Poll::Ready(Some(Ok(self.returned(m))));
        }
        let shared = self.shared.clone();
        let mut st = shared.lock();
        match self.take(&mut st) {
            Some(item) => {
                drop(st);
                Poll::Ready(self.deliver(item))
            }
            None => {
                if !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    st.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// What a processing loop does after its handler ran on `msg`: acknowledge a queue message
    /// on success; on failure return it to the queue (`cancel`) and report the failure as a
    /// [`crate::ClientEvent::Error`].
    pub fn processed<E: std::fmt::Display>(
        &self,
        msg: &Message,
        outcome: Result<(), E>,
    ) -> Result<(), Error> {
        match outcome {
            Ok(()) => msg.ack(),
            Err(e) => {
                msg.ack_with(crate::AckHow::Cancel)?;
                self.sink.control(Control::Report(Error::new(
                    ErrorKind::Unknown,
                    format!("message handler failed: {e}"),
                )))
            }
        }
    }

    /// Whether the stream ended (and everything was taken).
    pub fn is_terminated(&self) -> bool {
        self.closed
    }
}

impl Drop for StreamCore {
    fn drop(&mut self) {
        self.close();
    }
}

impl std::fmt::Debug for StreamCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStream")
            .field("sub_id", &self.sub_id)
            .field("queued", &self.len())
            .finish()
    }
}
