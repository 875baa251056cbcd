//! What a client reports besides command results, as [`ClientEvent`]s: connection states,
//! refused publishes, messages nothing else handles, errors with no caller to return to. The
//! same reports reach the listeners (on the dispatch thread) and every [`EventReceiver`] taken
//! with `events()`.
//!
//! Each receiver holds at most [`EVENT_CAPACITY`] events; one that falls behind loses the
//! oldest and is told how many with [`ClientEvent::Lagged`].

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use amps_core::session::ConnectionState;

use crate::error::Error;
use crate::message::{FailedWrite, Message};
use crate::sync::lock;

/// Events a receiver holds before the oldest are dropped for it.
pub const EVENT_CAPACITY: usize = 1024;
/// Bytes of messages (last-chance messages, failed writes) a receiver holds before the oldest
/// events are dropped for it.
pub const EVENT_BYTES: usize = 4 << 20;

/// Bytes an event holds (the messages it carries; a small constant for the rest).
fn event_size(ev: &ClientEvent) -> usize {
    use crate::queue::Entry;
    64 + match ev {
        ClientEvent::LastChance(m) => m.size(),
        ClientEvent::FailedWrite(f) => {
            f.message().map_or(0, Entry::size) + f.ack().map_or(0, Entry::size)
        }
        _ => 0,
    }
}

/// One report from the client.
// Events are rare (states, failures); boxing the variants would cost every receiver a pointer
// chase for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The connection state changed, in this order: Connected, LoggedOn, HeartbeatInitiated,
    /// PublishReplayed, Resubscribed; Disconnected; Shutdown.
    State(ConnectionState),
    /// The server refused a sequenced command (a publish).
    FailedWrite(FailedWrite),
    /// A message nothing else handles, e.g. a delivery for a subscription that was just
    /// unsubscribed or a failure ack nobody waits for.
    LastChance(Message),
    /// A problem that is not a command's failure: a handler's error or panic, a connection
    /// failure of the HA client, publishes dropped while disconnected, ...
    Error(Error),
    /// This receiver fell behind and missed this many events.
    Lagged(u64),
}

struct QueueState {
    events: VecDeque<ClientEvent>,
    bytes: usize,
    lagged: u64,
    closed: bool,
    waiting: bool,
    waker: Option<Waker>,
}

struct EventQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

/// The receivers of one client.
#[derive(Default)]
pub(crate) struct EventHub {
    queues: Mutex<Vec<Weak<EventQueue>>>,
}

impl EventHub {
    /// A new receiver of every event from now on.
    pub(crate) fn subscribe(&self) -> EventReceiver {
        let q = Arc::new(EventQueue {
            state: Mutex::new(QueueState {
                events: VecDeque::new(),
                bytes: 0,
                lagged: 0,
                closed: false,
                waiting: false,
                waker: None,
            }),
            ready: Condvar::new(),
        });
        let mut queues = lock(&self.queues);
        queues.retain(|w| w.strong_count() > 0);
        queues.push(Arc::downgrade(&q));
        EventReceiver { queue: q }
    }

    /// Give `ev` to every receiver.
    pub(crate) fn publish(&self, ev: &ClientEvent) {
        let queues: Vec<Arc<EventQueue>> = lock(&self.queues)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for q in queues {
            let mut st = lock(&q.state);
            if st.closed {
                continue;
            }
            let size = event_size(ev);
            while !st.events.is_empty()
                && (st.events.len() >= EVENT_CAPACITY || st.bytes + size > EVENT_BYTES)
            {
                if let Some(old) = st.events.pop_front() {
                    st.bytes -= event_size(&old);
                }
                st.lagged += 1;
            }
            st.bytes += size;
            st.events.push_back(ev.clone());
            q.wake(&mut st);
        }
    }

    /// The client is gone: receivers end once drained.
    pub(crate) fn close(&self) {
        for q in lock(&self.queues).iter().filter_map(Weak::upgrade) {
            let mut st = lock(&q.state);
            st.closed = true;
            q.wake(&mut st);
        }
    }
}

impl EventQueue {
    fn wake(&self, st: &mut QueueState) {
        if st.waiting {
            self.ready.notify_all();
        }
        if let Some(w) = st.waker.take() {
            w.wake();
        }
    }
}

/// A receiver of a client's events: the blocking client iterates it, the async client polls
/// it as a stream. It ends (`None`) once the client is closed and its events are taken.
pub struct EventReceiver {
    queue: Arc<EventQueue>,
}

impl EventReceiver {
    fn take(st: &mut QueueState) -> Option<Option<ClientEvent>> {
        if st.lagged > 0 {
            return Some(Some(ClientEvent::Lagged(std::mem::take(&mut st.lagged))));
        }
        if let Some(ev) = st.events.pop_front() {
            st.bytes -= event_size(&ev);
            return Some(Some(ev));
        }
        st.closed.then_some(None)
    }

    /// The next event if one is waiting (`Some(None)`: the receiver ended).
    pub fn try_next(&mut self) -> Option<Option<ClientEvent>> {
        Self::take(&mut lock(&self.queue.state))
    }

    /// The next event, blocking until one arrives, the client is closed (`None`) or `deadline`
    /// passes (also `None`; see [`EventReceiver::is_ended`]).
    pub fn next_blocking(&mut self, deadline: Option<Instant>) -> Option<ClientEvent> {
        let mut st = lock(&self.queue.state);
        loop {
            if let Some(item) = Self::take(&mut st) {
                return item;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            st.waiting = true;
            st = match deadline {
                None => self.queue.ready.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    self.queue
                        .ready
                        .wait_timeout(st, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
            st.waiting = false;
        }
    }

    /// The next event for an async consumer.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        let mut st = lock(&self.queue.state);
        match Self::take(&mut st) {
            Some(item) => Poll::Ready(item),
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// True once the client was closed and every event was taken.
    pub fn is_ended(&self) -> bool {
        let st = lock(&self.queue.state);
        st.closed && st.events.is_empty() && st.lagged == 0
    }
}

impl std::fmt::Debug for EventReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventReceiver")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_receiver_sees_every_event_and_a_slow_one_is_told_it_lagged() {
        let hub = EventHub::default();
        let mut a = hub.subscribe();
        let mut b = hub.subscribe();
        for _ in 0..EVENT_CAPACITY + 5 {
            hub.publish(&ClientEvent::State(ConnectionState::Connected));
        }
        assert!(matches!(a.try_next(), Some(Some(ClientEvent::Lagged(5)))));
        let mut n = 0;
        while let Some(Some(ClientEvent::State(_))) = a.try_next() {
            n += 1;
        }
        assert_eq!(n, EVENT_CAPACITY);
        hub.close();
        assert!(matches!(
            b.next_blocking(None),
            Some(ClientEvent::Lagged(5))
        ));
        let mut rest = 0;
        while b.next_blocking(None).is_some() {
            rest += 1;
        }
        assert_eq!(rest, EVENT_CAPACITY);
        assert!(b.is_ended());
    }
}
