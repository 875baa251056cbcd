//! Wakes async tasks at their deadlines, whatever runtime polls them: one thread per process,
//! started on first use and asleep while nothing waits. It lets [`crate::Pending`] and
//! [`crate::sync::Deadline`] end an async wait at its deadline exactly as the blocking wait
//! ends, so both clients share one definition of every deadline and the async client needs no
//! runtime timer for them.
//!
//! A wake-up may come for a future that finished meanwhile: wakers tolerate that.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Condvar, Mutex, OnceLock};
use std::task::Waker;
use std::time::Instant;

use crate::sync::lock;

struct Entry {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    /// The thread could not be started: wake at once (the future polls again and sees its
    /// deadline when it comes; busy, but never stuck).
    no_thread: bool,
}

struct Timer {
    state: Mutex<Timers>,
    cv: Condvar,
}

static TIMER: OnceLock<Timer> = OnceLock::new();

fn timer() -> &'static Timer {
    TIMER.get_or_init(|| {
        let t = Timer {
            state: Mutex::new(Timers::default()),
            cv: Condvar::new(),
        };
        let started = std::thread::Builder::new()
            .name("amps-timer".to_owned())
            .spawn(run);
        if started.is_err() {
            lock(&t.state).no_thread = true;
        }
        t
    })
}

/// Wake `waker` at `at` (at once if that has passed).
pub(crate) fn wake_at(at: Instant, waker: Waker) {
    if at <= Instant::now() {
        waker.wake();
        return;
    }
    let t = timer();
    let mut st = lock(&t.state);
    if st.no_thread {
        drop(st);
        waker.wake();
        return;
    }
    st.seq += 1;
    let seq = st.seq;
    let earliest = st.heap.peek().is_none_or(|Reverse(e)| at < e.at);
    st.heap.push(Reverse(Entry { at, seq, waker }));
    drop(st);
    if earliest {
        t.cv.notify_one();
    }
}

/// The thread's body: sleep until the earliest deadline, wake what is due.
fn run() {
    let t = timer();
    let mut st = lock(&t.state);
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        while st.heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(e)) = st.heap.pop() {
                due.push(e.waker);
            }
        }
        if !due.is_empty() {
            drop(st);
            for w in due {
                w.wake();
            }
            st = lock(&t.state);
            continue;
        }
        st = match st.heap.peek().map(|Reverse(e)| e.at) {
            None => t.cv.wait(st).unwrap_or_else(|p| p.into_inner()),
            Some(at) => {
                t.cv.wait_timeout(st, at.saturating_duration_since(now))
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;
    use std::time::Duration;

    struct Count(AtomicUsize, Mutex<()>, Condvar);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
            drop(lock(&self.1));
            self.2.notify_all();
        }
    }

    #[test]
    fn wakers_are_woken_at_their_deadlines_in_order() {
        let c = Arc::new(Count(AtomicUsize::new(0), Mutex::new(()), Condvar::new()));
        let start = Instant::now();
        wake_at(start + Duration::from_millis(60), Waker::from(c.clone()));
        wake_at(start + Duration::from_millis(20), Waker::from(c.clone()));
        let mut g = lock(&c.1);
        while c.0.load(Ordering::SeqCst) < 2 {
            g = c.2.wait(g).unwrap();
        }
        drop(g);
        assert!(start.elapsed() >= Duration::from_millis(60));
        // A passed deadline wakes at once, on the caller's thread.
        wake_at(start, Waker::from(c.clone()));
        assert_eq!(c.0.load(Ordering::SeqCst), 3);
    }
}
