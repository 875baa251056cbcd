//! The session's clock: a small trait instead of a hard dependency on `embassy-time`.
//!
//! Why a trait: `embassy-time` needs exactly one time driver linked into the image (a HAL's,
//! or the application's), which a library should not force, and the host tests run the same
//! driver on tokio's clock. `EmbassyClock` (feature `embassy-time`) is the implementation
//! an Embassy firmware uses; any other executor or RTOS implements the two methods.

use core::future::Future;

use amps_core::Instant;

/// Where "now" comes from and how the driver waits for a deadline.
///
/// `now` must never go backwards. Instants count microseconds from any origin the clock
/// chooses (boot, typically); the session only compares and adds them.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Instant;

    /// A future that completes at `at` or later (at once if `at` has passed). The driver
    /// drops it when something else happens first, so it must be cancel-safe (timers are).
    fn sleep_until(&self, at: Instant) -> impl Future<Output = ()>;
}

impl<K: Clock + ?Sized> Clock for &K {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn sleep_until(&self, at: Instant) -> impl Future<Output = ()> {
        (**self).sleep_until(at)
    }
}

/// The clock of `embassy-time`: [`embassy_time::Instant::now`] and [`embassy_time::Timer`],
/// at whatever tick rate the application's time driver runs (conversions go through
/// microseconds).
#[cfg(feature = "embassy-time")]
#[derive(Clone, Copy, Debug, Default)]
pub struct EmbassyClock;

#[cfg(feature = "embassy-time")]
impl Clock for EmbassyClock {
    fn now(&self) -> Instant {
        Instant::from_micros(embassy_time::Instant::now().as_micros())
    }

    fn sleep_until(&self, at: Instant) -> impl Future<Output = ()> {
        embassy_time::Timer::at(embassy_time::Instant::from_micros(at.as_micros()))
    }
}
