//! The dispatch thread: runs message handlers and listeners, apart from the I/O thread
//! (design.md §3), so a handler may call back into the same client (subscribe, publish, flush:
//! commands whose acks the I/O thread processes meanwhile) and a slow handler does not stop
//! heartbeats. Handler errors and panics are caught and reported to the exception listener
//! (seeds: "Unhandled exceptions").
//!
//! The queue to it is bounded ([`DEFAULT_DISPATCH_CAPACITY`] items by default); when it is full
//! the I/O thread holds back further input from the connection until the handlers catch up.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use amps_core::session::{CommandId, ConnectionState};

use crate::client::{Client, ClientInner, Shared};
use crate::driver::{Handled, Op};
use crate::error::{Error, ErrorKind};
use crate::message::{FailedWrite, Message};

/// Items the dispatch queue holds by default.
pub const DEFAULT_DISPATCH_CAPACITY: usize = 16_384;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a message handler may return: `()` or a `Result` whose error is reported to the
/// exception listener (and, under auto-ack, returns a queue message to the queue).
pub trait HandlerResult {
    /// The outcome.
    fn into_result(self) -> Result<(), BoxError>;
}

impl HandlerResult for () {
    fn into_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError>> HandlerResult for Result<(), E> {
    fn into_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// A message handler as the dispatch thread keeps it.
pub(crate) type Handler = Box<dyn FnMut(&Message) -> Result<(), BoxError> + Send>;

/// Box a user's handler.
pub(crate) fn handler<F, R>(mut f: F) -> Handler
where
    F: FnMut(&Message) -> R + Send + 'static,
    R: HandlerResult,
{
    Box::new(move |m| f(m).into_result())
}

/// A listener of `T` values.
pub(crate) type Listener<T> = Arc<dyn Fn(T) + Send + Sync>;
/// A listener of `&T` values.
pub(crate) type RefListener<T> = Arc<dyn Fn(&T) + Send + Sync>;

/// The listeners a client has (set from any thread, called on the dispatch thread).
#[derive(Default)]
pub(crate) struct Listeners {
    pub(crate) exception: Mutex<Option<RefListener<Error>>>,
    pub(crate) last_chance: Mutex<Option<RefListener<Message>>>,
    pub(crate) failed_write: Mutex<Option<RefListener<FailedWrite>>>,
    pub(crate) disconnect: Mutex<Option<RefListener<Client>>>,
    pub(crate) state: Mutex<Vec<(u64, Listener<ConnectionState>)>>,
}

fn get<T: Clone>(m: &Mutex<T>) -> T {
    m.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Work for the dispatch thread.
pub(crate) enum Item {
    /// A subscription's handler, before any of its messages.
    Register(CommandId, Handler),
    /// The subscription ended; later messages for it go to the last-chance handler.
    Unregister(CommandId),
    /// A message for the handler of `route`.
    Message(CommandId, Message),
    /// A connection state change.
    State(ConnectionState),
    /// A problem for the exception listener.
    Error(Error),
    /// A message nothing else handles.
    LastChance(Message),
    /// A refused sequenced command.
    FailedWrite(FailedWrite),
    /// The connection was lost (not by `disconnect()`/`close()`): call the disconnect handler.
    Disconnected,
}

struct State {
    items: VecDeque<Item>,
    stopped: bool,
    /// The I/O thread waits for room.
    blocked: bool,
    /// The dispatch thread waits for items (only then is it signalled).
    waiting: bool,
}

/// The bounded queue to the dispatch thread.
pub(crate) struct DispatchQueue {
    state: Mutex<State>,
    ready: Condvar,
    capacity: usize,
}

impl DispatchQueue {
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(DispatchQueue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                stopped: false,
                blocked: false,
                waiting: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Move items from the front of `items` while there is room. Returns false (and remembers
    /// to wake the I/O thread) if some had to stay.
    pub(crate) fn push_from(&self, items: &mut VecDeque<Item>) -> bool {
        let mut st = self.lock();
        let room = self.capacity.saturating_sub(st.items.len());
        let n = room.min(items.len());
        st.items.extend(items.drain(..n));
        let all = items.is_empty();
        st.blocked = !all;
        if n > 0 && st.waiting {
            self.ready.notify_one();
        }
        all
    }

    /// Push one item regardless of the bound (control items: registrations, stop).
    pub(crate) fn push_urgent(&self, item: Item) {
        self.lock().items.push_back(item);
        self.ready.notify_one();
    }

    /// Stop the thread once the queued items are done.
    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.ready.notify_one();
    }
}

/// The dispatch thread's state.
pub(crate) struct Dispatcher {
    queue: Arc<DispatchQueue>,
    shared: Arc<Shared>,
    client: Weak<ClientInner>,
    handlers: HashMap<CommandId, Handler>,
    handled: Vec<Handled>,
}

impl Dispatcher {
    pub(crate) fn new(
        queue: Arc<DispatchQueue>,
        shared: Arc<Shared>,
        client: Weak<ClientInner>,
    ) -> Self {
        Dispatcher {
            queue,
            shared,
            client,
            handlers: HashMap::new(),
            handled: Vec::new(),
        }
    }

    /// The thread's body: until stopped and drained.
    pub(crate) fn run(mut self) {
        let mut batch = VecDeque::new();
        loop {
            {
                let mut st = self.queue.lock();
                while st.items.is_empty() && !st.stopped {
                    st.waiting = true;
                    st = self.queue.ready.wait(st).unwrap_or_else(|p| p.into_inner());
                    st.waiting = false;
                }
                if st.items.is_empty() && st.stopped {
                    return;
                }
                std::mem::swap(&mut batch, &mut st.items);
                if st.blocked {
                    st.blocked = false;
                    self.shared.inbox.wake();
                }
            }
            for item in batch.drain(..) {
                self.run_item(item);
            }
            if !self.handled.is_empty() {
                let acks = std::mem::take(&mut self.handled);
                let _ = self.shared.send(Op::Handled(acks));
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
            Item::State(s) => {
                let listeners = get(&self.shared.listeners.state);
                for (_, l) in listeners {
                    self.guard("connection state listener", || l(s));
                }
            }
            Item::Error(e) => self.report(&e),
            Item::LastChance(m) => {
                if let Some(h) = get(&self.shared.listeners.last_chance) {
                    self.guard("last-chance message handler", || h(&m));
                }
            }
            Item::FailedWrite(fw) => {
                if let Some(h) = get(&self.shared.listeners.failed_write) {
                    self.guard("failed write handler", || h(&fw));
                } else if let (Some(h), Some(m)) =
                    (get(&self.shared.listeners.last_chance), fw.ack.as_ref())
                {
                    // Seeds: without a failed-write handler the failure ack is an unexpected
                    // message, with no information from the publish store.
                    self.guard("last-chance message handler", || h(m));
                }
            }
            Item::Disconnected => {
                let handler = get(&self.shared.listeners.disconnect);
                if let (Some(h), Some(inner)) = (handler, self.client.upgrade()) {
                    let client = Client::from_inner(inner);
                    self.guard("disconnect handler", || h(&client));
                }
            }
        }
    }

    fn on_message(&mut self, id: CommandId, m: Message) {
        let Some(h) = self.handlers.get_mut(&id) else {
            // The subscription ended while this was in flight (seeds: unsubscribe).
            if let Some(h) = get(&self.shared.listeners.last_chance) {
                self.guard("last-chance message handler", || h(&m));
            }
            return;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| h(&m)));
        let ok = match outcome {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                self.report(&Error::with_source(
                    ErrorKind::Unknown,
                    format!("message handler failed: {e}"),
                    e,
                ));
                false
            }
            Err(panic) => {
                self.report(&Error::new(
                    ErrorKind::Unknown,
                    format!("message handler panicked: {}", panic_text(&*panic)),
                ));
                false
            }
        };
        // Seeds: under auto-ack a handler that returns acknowledges its queue message; one
        // that fails returns it to the queue.
        if self.shared.auto_ack()
            && let Some((route, topic, bookmark)) = m.auto_ack_key()
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
    fn guard(&self, what: &str, f: impl FnOnce()) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(f)) {
            self.report(&Error::new(
                ErrorKind::Unknown,
                format!("{what} panicked: {}", panic_text(&*panic)),
            ));
        }
    }

    fn report(&self, e: &Error) {
        if let Some(l) = get(&self.shared.listeners.exception) {
            // The listener must not rethrow (seeds); a panic in it is contained and dropped.
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
