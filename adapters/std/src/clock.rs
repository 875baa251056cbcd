//! The adapter's clock: the core takes `now` as microseconds since an origin the adapter picks
//! (design.md §2); here the origin is the first use in this process.

use std::sync::OnceLock;

use amps_core::{Duration, Instant};

fn origin() -> std::time::Instant {
    static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

/// Now, on the core's clock.
pub(crate) fn now() -> Instant {
    let us = origin().elapsed().as_micros();
    Instant::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
}

/// How long from `now` until `deadline` (zero if it passed).
pub(crate) fn until(now: Instant, deadline: Instant) -> std::time::Duration {
    std::time::Duration::from(Duration::from_micros(
        deadline.as_micros().saturating_sub(now.as_micros()),
    ))
}

/// A std duration on the core's clock.
pub(crate) fn core_duration(d: std::time::Duration) -> Duration {
    Duration::from(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_until_saturates() {
        let a = now();
        let b = now();
        assert!(b >= a);
        assert_eq!(until(b, a), std::time::Duration::ZERO);
        let later = Instant::from_micros(a.as_micros() + 1_500);
        assert_eq!(until(a, later), std::time::Duration::from_micros(1_500));
    }
}
