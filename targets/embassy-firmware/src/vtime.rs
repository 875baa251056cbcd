//! A virtual clock for embassy-time and the executor loop that drives it.
//!
//! The image runs embassy-executor's raw executor in its own loop: poll every task that was
//! woken, and when none was, move the clock straight to the earliest timer and wake it. Heartbeat
//! intervals, reconnect backoff and command timeouts therefore take no wall time under QEMU and
//! every run is identical. On a board the HAL's time driver (a hardware timer) and the
//! platform's executor take these places; the application code does not change.

use core::cell::{Cell, RefCell};
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::Waker;

use critical_section::Mutex;
use embassy_executor::raw::Executor;
use embassy_time_queue_utils::Queue;

/// Virtual microseconds since boot.
static NOW: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));
/// Timers waiting to fire.
static TIMERS: Mutex<RefCell<Queue>> = Mutex::new(RefCell::new(Queue::new()));
/// A task was woken since the executor last polled.
static PENDED: AtomicBool = AtomicBool::new(true);

/// The time driver behind `embassy_time::Instant::now` and `Timer`.
struct VirtualTime;

impl embassy_time_driver::Driver for VirtualTime {
    fn now(&self) -> u64 {
        critical_section::with(|cs| NOW.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        // Nothing to program when the earliest deadline changes: the loop asks the queue each
        // time it goes idle (a deadline already due fires then).
        critical_section::with(|cs| {
            let _ = TIMERS.borrow_ref_mut(cs).schedule_wake(at, waker);
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: VirtualTime = VirtualTime);

/// Called by the executor when a task is woken.
#[unsafe(export_name = "__pender")]
fn pender(_context: *mut ()) {
    PENDED.store(true, Ordering::Release);
}

/// Why [`run`] stopped without `done` holding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stall {
    /// Every task waits and no timer is set: nothing can ever happen again.
    Deadlock,
    /// The virtual clock passed `limit_us`.
    TimeLimit,
}

/// The current virtual time in microseconds.
pub fn now_us() -> u64 {
    critical_section::with(|cs| NOW.borrow(cs).get())
}

/// Poll `executor` until `done()` holds, advancing the virtual clock whenever every task
/// waits. Stops with [`Stall`] if nothing can happen any more or the clock passes `limit_us`.
pub fn run(executor: &'static Executor, limit_us: u64, done: impl Fn() -> bool) -> Result<(), Stall> {
    loop {
        PENDED.store(false, Ordering::Release);
        // SAFETY: `poll` must not be called reentrantly or from another thread; this loop is
        // the only caller, on the only core, and no interrupt handler touches the executor.
        unsafe { executor.poll() };
        if done() {
            return Ok(());
        }
        if PENDED.load(Ordering::Acquire) {
            continue;
        }
        // Idle: wake what is due now, else jump to the next timer. `next_expiration` wakes
        // every timer due at the given instant (which pends the executor) and returns the
        // earliest one left.
        critical_section::with(|cs| {
            let now = NOW.borrow(cs).get();
            let mut timers = TIMERS.borrow_ref_mut(cs);
            let next = timers.next_expiration(now);
            if PENDED.load(Ordering::Acquire) {
                return Ok(());
            }
            if next == u64::MAX {
                return Err(Stall::Deadlock);
            }
            if next > limit_us {
                return Err(Stall::TimeLimit);
            }
            NOW.borrow(cs).set(next);
            timers.next_expiration(next);
            Ok(())
        })?;
    }
}
