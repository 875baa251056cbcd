//! Runtime-neutral waiting: every wait in the host layer is one of these, and each can be waited
//! on by a blocked thread (with a deadline) or polled by an async task (with a waker). The
//! blocking client waits on them with a `Condvar`; the async client awaits them; neither
//! brings its own queue or channel types.
//!
//! - [`Signal`]: wakes the one loop that owns a connection (the driver) when there is work.
//! - [`Notify`]: wakes every waiter of a condition (room in the publish queue).
//! - [`Pending`] / [`Reply`]: a one-shot answer from the driver to one caller.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use atomic_waker::AtomicWaker;

use crate::error::{Error, Result};

/// Lock a mutex, recovering from poisoning: every state behind these locks is plain data that
/// stays consistent between statements (a panic elsewhere cannot leave it half-written).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Wait on `cv` until `deadline` (or forever). Returns the guard.
fn wait_until<'a, T>(
    cv: &Condvar,
    g: MutexGuard<'a, T>,
    deadline: Option<Instant>,
) -> MutexGuard<'a, T> {
    match deadline {
        None => cv.wait(g).unwrap_or_else(|p| p.into_inner()),
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            cv.wait_timeout(g, left)
                .unwrap_or_else(|p| p.into_inner())
                .0
        }
    }
}

/// Wakes the driver: a flag, a waker for an async driver and a condition variable for a
/// blocking one. Waking is lock-free unless a thread sleeps on it.
#[derive(Debug, Default)]
pub struct Signal {
    flag: AtomicBool,
    waker: AtomicWaker,
    sleeping: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Signal {
    /// A signal, not raised.
    pub fn new() -> Self {
        Signal::default()
    }

    /// Raise it: the driver runs its loop once more.
    pub fn wake(&self) {
        if self.flag.swap(true, Ordering::SeqCst) {
            return;
        }
        self.waker.wake();
        if self.sleeping.load(Ordering::SeqCst) {
            // The sleeper holds the lock from its check of the flag until it waits, so taking
            // it here orders this notification after that check.
            drop(lock(&self.lock));
            self.cv.notify_one();
        }
    }

    /// Block until raised or `deadline`; lowers it. True if it was raised.
    pub fn wait_blocking(&self, deadline: Option<Instant>) -> bool {
        let mut g = lock(&self.lock);
        loop {
            self.sleeping.store(true, Ordering::SeqCst);
            if self.flag.swap(false, Ordering::SeqCst) {
                self.sleeping.store(false, Ordering::SeqCst);
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.sleeping.store(false, Ordering::SeqCst);
                return false;
            }
            g = wait_until(&self.cv, g, deadline);
        }
    }

    /// Poll from an async driver: ready (and lowered) if raised, else the waker is kept.
    pub fn poll_raised(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.flag.swap(false, Ordering::SeqCst) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.flag.swap(false, Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// Wakes every waiter of a condition. A waiter takes a [`Ticket`] *before* checking the
/// condition, then waits on the ticket: a notification between the check and the wait is not
/// lost (the generation moved on).
#[derive(Debug, Default)]
pub struct Notify {
    generation: AtomicU64,
    waiters: AtomicUsize,
    wakers: Mutex<Vec<Waker>>,
    cv: Condvar,
}

/// One waiter's place in a [`Notify`] (see there).
#[derive(Debug)]
pub struct Ticket<'a> {
    notify: &'a Notify,
    seen: u64,
    registered: bool,
}

impl Notify {
    /// A condition nobody waits for yet.
    pub fn new() -> Self {
        Notify::default()
    }

    /// Wake every waiter.
    pub fn notify_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let wakers = std::mem::take(&mut *lock(&self.wakers));
            for w in wakers {
                w.wake();
            }
            self.cv.notify_all();
        }
    }

    /// Take a ticket: call before checking the condition.
    pub fn ticket(&self) -> Ticket<'_> {
        Ticket {
            notify: self,
            seen: self.generation.load(Ordering::SeqCst),
            registered: false,
        }
    }
}

impl Ticket<'_> {
    fn moved(&self) -> bool {
        self.notify.generation.load(Ordering::SeqCst) != self.seen
    }

    fn register(&mut self) {
        if !self.registered {
            self.registered = true;
            self.notify.waiters.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Block until notified or `deadline`. True if notified.
    pub fn wait_blocking(mut self, deadline: Option<Instant>) -> bool {
        self.register();
        let mut g = lock(&self.notify.wakers);
        loop {
            if self.moved() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
            g = wait_until(&self.notify.cv, g, deadline);
        }
    }
}

impl Future for Ticket<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.moved() {
            return Poll::Ready(());
        }
        this.register();
        let mut wakers = lock(&this.notify.wakers);
        if this.moved() {
            return Poll::Ready(());
        }
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        if self.registered {
            self.notify.waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

struct SlotState<T> {
    value: Option<Result<T>>,
    waker: Option<Waker>,
    /// The [`Reply`] was dropped without answering.
    abandoned: bool,
    /// The [`Pending`] was dropped: nobody waits any more.
    gone: bool,
}

struct Slot<T> {
    state: Mutex<SlotState<T>>,
    cv: Condvar,
}

/// The driver's end of a one-shot answer. Dropping it unanswered answers
/// `Disconnected` ("the client is closed").
pub struct Reply<T> {
    slot: Option<Arc<Slot<T>>>,
}

/// A caller's end of a one-shot answer from the driver: [`Pending::wait`] blocks for it (with
/// the deadline the request was given), or `.await` it. Dropping it tells the driver nobody
/// waits (a subscription nobody took is then ended).
pub struct Pending<T> {
    slot: Arc<Slot<T>>,
    deadline: Option<Instant>,
    what: &'static str,
    /// The process timer wakes the awaiting task at the deadline (see [`crate::timer`]).
    armed: bool,
}

/// A reply and the pending answer it fills. `deadline` bounds [`Pending::wait`]; `what` names
/// the request in a timeout error.
pub fn reply_pair<T>(deadline: Option<Instant>, what: &'static str) -> (Reply<T>, Pending<T>) {
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState {
            value: None,
            waker: None,
            abandoned: false,
            gone: false,
        }),
        cv: Condvar::new(),
    });
    (
        Reply {
            slot: Some(slot.clone()),
        },
        Pending {
            slot,
            deadline,
            what,
            armed: false,
        },
    )
}

impl<T> Reply<T> {
    /// Answer. Gives the value back if nobody waits any more.
    pub fn send(mut self, value: Result<T>) -> std::result::Result<(), Result<T>> {
        let Some(slot) = self.slot.take() else {
            return Err(value);
        };
        let mut st = lock(&slot.state);
        if st.gone {
            return Err(value);
        }
        st.value = Some(value);
        let waker = st.waker.take();
        drop(st);
        slot.cv.notify_all();
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// True once the caller stopped waiting (dropped its [`Pending`]).
    pub fn is_closed(&self) -> bool {
        self.slot.as_ref().is_none_or(|s| lock(&s.state).gone)
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            let mut st = lock(&slot.state);
            st.abandoned = true;
            let waker = st.waker.take();
            drop(st);
            slot.cv.notify_all();
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

impl<T> Pending<T> {
    /// An answer that is already known.
    pub fn ready(value: Result<T>) -> Pending<T> {
        let (reply, pending) = reply_pair(None, "");
        // The pending end is alive, so this cannot fail.
        let _ = reply.send(value);
        pending
    }

    /// The deadline [`Pending::wait`] applies.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn take(st: &mut SlotState<T>) -> Option<Result<T>> {
        if let Some(v) = st.value.take() {
            return Some(v);
        }
        st.abandoned.then(|| Err(Error::closed()))
    }

    /// Block until answered, or until the deadline (error kind `TimedOut`).
    pub fn wait(self) -> Result<T> {
        let mut st = lock(&self.slot.state);
        loop {
            if let Some(v) = Self::take(&mut st) {
                return v;
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(self.timed_out());
            }
            st = wait_until(&self.slot.cv, st, self.deadline);
        }
    }

    fn timed_out(&self) -> Error {
        Error::timed_out(format!("no answer to {} in time", self.what))
    }

    /// The answer if there is one now.
    pub fn try_take(&mut self) -> Option<Result<T>> {
        Self::take(&mut lock(&self.slot.state))
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let this = self.get_mut();
        let mut st = lock(&this.slot.state);
        if let Some(v) = Self::take(&mut st) {
            return Poll::Ready(v);
        }
        if this.deadline.is_some_and(|d| Instant::now() >= d) {
            drop(st);
            return Poll::Ready(Err(this.timed_out()));
        }
        let new_waker = !st.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if new_waker {
            st.waker = Some(cx.waker().clone());
        }
        drop(st);
        if let Some(d) = this.deadline
            && (new_waker || !this.armed)
        {
            this.armed = true;
            crate::timer::wake_at(d, cx.waker().clone());
        }
        Poll::Pending
    }
}

impl<T> Drop for Pending<T> {
    fn drop(&mut self) {
        lock(&self.slot.state).gone = true;
    }
}

impl<T> std::fmt::Debug for Pending<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("what", &self.what).finish()
    }
}

impl<T> std::fmt::Debug for Reply<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reply")
    }
}

/// A future that ends with a `TimedOut` error at its deadline (see [`with_deadline`]).
#[derive(Debug)]
pub struct Deadline<F> {
    fut: F,
    deadline: Instant,
    what: &'static str,
    armed: bool,
}

/// `fut`, or a `TimedOut` error naming `what` if it is not done by `deadline`. Runtime-neutral
/// (the process timer wakes the task).
pub fn with_deadline<F: Future + Unpin>(
    fut: F,
    deadline: Instant,
    what: &'static str,
) -> Deadline<F> {
    Deadline {
        fut,
        deadline,
        what,
        armed: false,
    }
}

impl<F: Future + Unpin> Future for Deadline<F> {
    type Output = Result<F::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Poll::Ready(v) = Pin::new(&mut this.fut).poll(cx) {
            return Poll::Ready(Ok(v));
        }
        if Instant::now() >= this.deadline {
            return Poll::Ready(Err(Error::timed_out(format!(
                "{} did not finish in time",
                this.what
            ))));
        }
        if !this.armed {
            this.armed = true;
            crate::timer::wake_at(this.deadline, cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn noop_waker() -> Waker {
        Waker::noop().clone()
    }

    #[test]
    fn a_reply_reaches_a_blocked_waiter_and_a_dropped_reply_closes() {
        let (reply, pending) = reply_pair::<u32>(None, "test");
        let t = std::thread::spawn(move || pending.wait());
        assert!(reply.send(Ok(7)).is_ok());
        assert_eq!(t.join().unwrap().unwrap(), 7);
        let (reply, pending) = reply_pair::<u32>(None, "test");
        drop(reply);
        assert_eq!(
            pending.wait().unwrap_err().kind(),
            crate::ErrorKind::Disconnected
        );
    }

    #[test]
    fn a_deadline_ends_the_wait_and_a_dropped_pending_refuses_the_value() {
        let (reply, pending) =
            reply_pair::<u32>(Some(Instant::now() + Duration::from_millis(5)), "a flush");
        let e = pending.wait().unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::TimedOut);
        assert!(e.to_string().contains("a flush"));
        assert!(reply.is_closed());
        assert_eq!(reply.send(Ok(1)).unwrap_err().unwrap(), 1);
    }

    #[test]
    fn a_pending_polls_ready_once_answered() {
        let (reply, mut pending) = reply_pair::<&str>(None, "test");
        let w = noop_waker();
        let mut cx = Context::from_waker(&w);
        assert!(Pin::new(&mut pending).poll(&mut cx).is_pending());
        reply.send(Ok("done")).unwrap();
        match Pin::new(&mut pending).poll(&mut cx) {
            Poll::Ready(Ok(v)) => assert_eq!(v, "done"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_signal_raised_before_the_wait_is_not_lost() {
        let s = Arc::new(Signal::new());
        s.wake();
        assert!(s.wait_blocking(None));
        assert!(!s.wait_blocking(Some(Instant::now() + Duration::from_millis(2))));
        let s2 = s.clone();
        let t = std::thread::spawn(move || s2.wait_blocking(None));
        s.wake();
        assert!(t.join().unwrap());
        let w = noop_waker();
        let mut cx = Context::from_waker(&w);
        assert!(s.poll_raised(&mut cx).is_pending());
        s.wake();
        assert!(s.poll_raised(&mut cx).is_ready());
    }

    #[test]
    fn a_notification_between_check_and_wait_is_not_lost() {
        let n = Notify::new();
        let ticket = n.ticket();
        n.notify_all(); // after the ticket, before the wait
        assert!(ticket.wait_blocking(Some(Instant::now() + Duration::from_secs(5))));
        let ticket = n.ticket();
        assert!(!ticket.wait_blocking(Some(Instant::now() + Duration::from_millis(2))));
        let mut ticket = n.ticket();
        let w = noop_waker();
        let mut cx = Context::from_waker(&w);
        assert!(Pin::new(&mut ticket).poll(&mut cx).is_pending());
        n.notify_all();
        assert!(Pin::new(&mut ticket).poll(&mut cx).is_ready());
    }
}
