//! The dispatch thread: runs message handlers and listeners apart from the connection's loop, so
//! a handler may call back into the same client (commands whose acks the loop processes
//! meanwhile) and a slow handler does not stop heartbeats. Handler errors and panics are
//! caught and reported to the exception listener and as [`ClientEvent::Error`]. Events also
//! reach every [`crate::EventReceiver`] from here, in order with the listeners.
//!
//! The queue to it is bounded (items, and the bytes of messages in the client's receive
//! budget); when it is full the driver holds back further input from the connection until the
//! handlers catch up.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use amps_core::session::CommandId;

use crate::control::{Control, ControlSink, Handled};
use crate::error::{Error, ErrorKind};
use crate::events::ClientEvent;
use crate::handler::Handler;
use crate::message::Message;
use crate::queue::Entry;
use crate::shared::Shared;
use crate::sync::{Signal, lock};

fn get<T: Clone>(m: &Mutex<T>) -> T {
    lock(m).clone()
}

/// Work for the dispatch thread.
pub(crate) enum Item {
    /// A subscription's handler, before any of its messages.
    Register(CommandId, Handler),
    /// The subscription ended; later messages for it go to the last-chance handler.
    Unregister(CommandId),
    /// A message for the handler of `route`.
    Message(CommandId, Message),
    /// A report for the listeners and event receivers.
    Event(ClientEvent),
    /// The connection was lost (not by `disconnect()`/`close()`): call the disconnect handler.
    Disconnected,
}

impl Item {
    /// Bytes of a message the item holds (counted in the receive budget).
    fn size(&self) -> usize {
        match self {
            Item::Message(_, m) => m.size(),
            _ => 0,
        }
    }
}

struct State {
    items: VecDeque<Item>,
    stopped: bool,
    /// Closing: items still queued at this time are dropped, not run.
    stop_by: Option<Instant>,
    /// The driver waits for room.
    blocked: bool,
    /// The dispatch thread waits for items (only then is it signalled).
    waiting: bool,
}

/// The bounded queue to the dispatch thread.
pub(crate) struct DispatchQueue {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
    /// Raised when the thread ends.
    done: Signal,
}

impl DispatchQueue {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(DispatchQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                stopped: false,
                stop_by: None,
                blocked: false,
                waiting: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            done: Signal::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Move items from the front of `items` while there is room (items and bytes, from
    /// `shared`'s budget). Returns false (and remembers to wake the driver) if some had to
    /// stay.
    pub(crate) fn push_from(&self, items: &mut VecDeque<Item>, shared: &Shared) -> bool {
        let mut st = self.lock();
        let mut moved = 0;
        while st.items.len() < self.capacity {
            let Some(item) = items.front() else { break };
            let size = item.size();
            if size > 0 && !shared.budget.try_take(size) {
                break;
            }
            if let Some(item) = items.pop_front() {
                st.items.push_back(item);
                moved += 1;
            }
        }
        let all = items.is_empty();
        st.blocked = !all;
        if moved > 0 && st.waiting {
            self.ready.notify_one();
        }
        all
    }

    /// Push one item regardless of the bounds (control items, and everything while closing).
    pub(crate) fn push_urgent(&self, item: Item, shared: &Shared) {
        shared.budget.force(item.size());
        self.lock().items.push_back(item);
        self.ready.notify_one();
    }

    /// Stop the thread once the queued items are done; items still queued at `by` are
    /// dropped without running.
    pub(crate) fn stop(&self, by: Instant) {
        let mut st = self.lock();
        st.stopped = true;
        st.stop_by = Some(by);
        drop(st);
        self.ready.notify_one();
    }

    /// Wait until the thread ended, at most until `deadline`. True if it did.
    pub(crate) fn wait_done(&self, deadline: Instant) -> bool {
        self.done.wait_blocking(Some(deadline))
    }
}

/// The dispatch thread's state.
pub(crate) struct Dispatcher {
    queue: Arc<DispatchQueue>,
    shared: Arc<Shared>,
    handlers: HashMap<CommandId, Handler>,
    handled: Vec<Handled>,
}

impl Dispatcher {
    pub(crate) fn new(queue: Arc<DispatchQueue>, shared: Arc<Shared>) -> Self {
        Dispatcher {
            queue,
            shared,
            handlers: HashMap::new(),
            handled: Vec::new(),
        }
    }

    /// The thread's body: until stopped and drained.
    pub(crate) fn run(mut self) {
        /// Raises `done` however the thread ends.
        struct Done(Arc<DispatchQueue>);
        impl Drop for Done {
            fn drop(&mut self) {
                self.0.done.wake();
            }
        }
        let _done = Done(self.queue.clone());
        let mut batch = VecDeque::new();
        loop {
            let stop_by;
            {
                let mut st = self.queue.lock();
                while st.items.is_empty() && !st.stopped {
                    st.waiting = true;
                    st = self.queue.ready.wait(st).unwrap_or_else(|p| p.into_inner());
                    st.waiting = false;
                }
                if st.items.is_empty() && st.stopped {
                    // Everything was reported: event receivers end once they took it.
                    self.shared.events.close();
                    return;
                }
                std::mem::swap(&mut batch, &mut st.items);
                stop_by = st.stop_by;
                if st.blocked {
                    st.blocked = false;
                    self.shared.signal.wake();
                }
            }
            for item in batch.drain(..) {
                let size = item.size();
                // Past the close deadline nothing more runs: the items are dropped.
                if stop_by.is_none_or(|t| Instant::now() < t) {
                    self.run_item(item);
                }
                self.shared.budget.give(size);
            }
            if !self.handled.is_empty() {
                let acks = std::mem::take(&mut self.handled);
                let _ = self.shared.control(Control::Handled(acks));
            }
        }
    }

    fn run_item(&mut self, item: Item) {
        match item {
            Item::Register(id, h) => {
                self.handlers.insert(id, h);
            }
            Item::Unregister(id) => {
                self.handlers.remove(&id);
            }
            Item::Message(id, m) => self.on_message(id, m),
            Item::Event(ev) => self.on_event(ev),
            Item::Disconnected => {
                if let Some(h) = get(&self.shared.listeners.disconnect) {
                    self.guard("disconnect handler", || h());
                }
            }
        }
    }

    fn on_event(&mut self, ev: ClientEvent) {
        let listeners = &self.shared.listeners;
        match &ev {
            ClientEvent::State(s) => {
                for (_, l) in get(&listeners.state) {
                    self.guard("connection state listener", || l(*s));
                }
            }
            ClientEvent::Error(e) => self.report_to_listener(e),
            ClientEvent::LastChance(m) => {
                if let Some(h) = get(&listeners.last_chance) {
                    self.guard("last-chance message handler", || h(m));
                }
            }
            ClientEvent::FailedWrite(fw) => {
                if let Some(h) = get(&listeners.failed_write) {
                    self.guard("failed write handler", || h(fw));
                } else if let (Some(h), Some(m)) = (get(&listeners.last_chance), fw.ack()) {
                    // Without a failed-write handler the failure ack is an unexpected
                    // message, with no information from the publish store.
                    self.guard("last-chance message handler", || h(m));
                }
            }
            ClientEvent::Lagged(_) => {}
        }
        self.shared.events.publish(&ev);
    }

    fn on_message(&mut self, id: CommandId, m: Message) {
        let Some(h) = self.handlers.get_mut(&id) else {
            // The subscription ended while this was in flight.
            self.on_event(ClientEvent::LastChance(m));
            return;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| h(&m)));
        let ok = match outcome {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                self.report(Error::with_source(
                    ErrorKind::Unknown,
                    format!("message handler failed: {e}"),
                    e,
                ));
                false
            }
            Err(panic) => {
                self.report(Error::new(
                    ErrorKind::Unknown,
                    format!("message handler panicked: {}", panic_text(&*panic)),
                ));
                false
            }
        };
        // Under auto-ack a handler that returns acknowledges its queue message; one that
        // fails returns it to the queue.
        if self.shared.auto_ack()
            && let Some((route, topic, bookmark)) = m.take_auto_ack()
        {
            self.handled.push(Handled {
                route,
                topic,
                bookmark,
                ok,
            });
        }
    }

    /// Run a listener, reporting a panic.
    fn guard(&mut self, what: &str, f: impl FnOnce()) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
            self.report(Error::new(
                ErrorKind::Unknown,
                format!("{what} panicked: {}", panic_text(&*panic)),
            ));
        }
    }

    fn report(&mut self, e: Error) {
        self.report_to_listener(&e);
        self.shared.events.publish(&ClientEvent::Error(e));
    }

    fn report_to_listener(&self, e: &Error) {
        if let Some(l) = get(&self.shared.listeners.exception) {
            // The listener must not fail; a panic in it is contained and dropped.
            let _ = catch_unwind(AssertUnwindSafe(|| l(e)));
        }
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
