//! How long an HA client waits between connection attempts: the [`DelayStrategy`] trait, with
//! [`FixedDelay`] and [`ExponentialDelay`] as the two strategies the AMPS clients ship, and any
//! strategy of the application's own. The driver asks the strategy for each wait, and resets
//! it only after a connection stayed up for the stability window, so a server that accepts
//! and then drops the client is not retried at the fastest rate forever.

use std::time::Duration;

/// Decides the wait before each reconnect attempt, and when to give up.
///
/// ```
/// use std::time::Duration;
/// use amps_host::DelayStrategy;
///
/// /// One second, then two, then give up.
/// struct TwoTries(u32);
/// impl DelayStrategy for TwoTries {
///     fn next_delay(&mut self, _elapsed: Duration) -> Option<Duration> {
///         self.0 += 1;
///         (self.0 <= 2).then(|| Duration::from_secs(u64::from(self.0)))
///     }
///     fn reset(&mut self) {
///         self.0 = 0;
///     }
/// }
/// let mut s = TwoTries(0);
/// assert_eq!(s.next_delay(Duration::ZERO), Some(Duration::from_secs(1)));
/// ```
pub trait DelayStrategy: Send {
    /// The wait before the next attempt; `elapsed` is the time since the outage began (the
    /// first failed or lost connection). `None` gives up: the client shuts down.
    fn next_delay(&mut self, elapsed: Duration) -> Option<Duration>;

    /// A connection stayed up for the stability window: start over.
    fn reset(&mut self);
}

/// The same wait before every attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedDelay {
    /// Wait before each attempt (default 200 ms).
    pub delay: Duration,
    /// Give up once the outage lasts longer than this (`None`: never).
    pub max_retry_time: Option<Duration>,
}

impl FixedDelay {
    /// `delay` before every attempt, never giving up.
    pub const fn new(delay: Duration) -> Self {
        FixedDelay {
            delay,
            max_retry_time: None,
        }
    }

    /// Give up once the outage lasts longer than `t`.
    pub const fn max_retry_time(mut self, t: Duration) -> Self {
        self.max_retry_time = Some(t);
        self
    }
}

impl Default for FixedDelay {
    fn default() -> Self {
        FixedDelay::new(Duration::from_millis(200))
    }
}

impl DelayStrategy for FixedDelay {
    fn next_delay(&mut self, elapsed: Duration) -> Option<Duration> {
        match self.max_retry_time {
            Some(max) if elapsed.saturating_add(self.delay) > max => None,
            _ => Some(self.delay),
        }
    }
    fn reset(&mut self) {}
}

/// Exponential backoff: `initial`, then `initial * multiplier^n`, capped at `max_delay`, plus
/// a uniform random `0..=jitter` (so many clients cut off together do not come back in step).
#[derive(Clone, Debug, PartialEq)]
pub struct ExponentialDelay {
    /// First delay (default 200 ms).
    pub initial: Duration,
    /// Growth factor per attempt (default 2.0; values below 1.0 count as 1.0).
    pub multiplier: f64,
    /// Cap on the delay before jitter (default 20 s).
    pub max_delay: Duration,
    /// Give up once the outage lasts longer than this (`None`: never).
    pub max_retry_time: Option<Duration>,
    /// Random extra delay, uniform in `0..=jitter` (default 0).
    pub jitter: Duration,
    attempt: u32,
    random: u64,
}

impl ExponentialDelay {
    /// `initial`, growing by `multiplier` up to `max_delay`, never giving up, no jitter.
    pub fn new(initial: Duration, multiplier: f64, max_delay: Duration) -> Self {
        ExponentialDelay {
            initial,
            multiplier,
            max_delay,
            max_retry_time: None,
            jitter: Duration::ZERO,
            attempt: 0,
            random: seed(),
        }
    }

    /// Give up once the outage lasts longer than `t`.
    pub fn max_retry_time(mut self, t: Duration) -> Self {
        self.max_retry_time = Some(t);
        self
    }

    /// Add a random `0..=j` to each delay.
    pub fn jitter(mut self, j: Duration) -> Self {
        self.jitter = j;
        self
    }

    /// SplitMix64: enough randomness for spreading reconnects.
    fn next_random(&mut self) -> u64 {
        self.random = self.random.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.random;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Default for ExponentialDelay {
    fn default() -> Self {
        ExponentialDelay::new(Duration::from_millis(200), 2.0, Duration::from_secs(20))
    }
}

impl DelayStrategy for ExponentialDelay {
    fn next_delay(&mut self, elapsed: Duration) -> Option<Duration> {
        let exp = i32::try_from(self.attempt.min(64)).unwrap_or(64);
        let grown = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exp);
        let base = Duration::try_from_secs_f64(grown)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let span = u64::try_from(self.jitter.as_micros())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let jitter = Duration::from_micros(self.next_random() % span);
        let delay = base.saturating_add(jitter);
        if let Some(max) = self.max_retry_time
            && elapsed.saturating_add(delay) > max
        {
            return None;
        }
        self.attempt = self.attempt.saturating_add(1);
        Some(delay)
    }
    fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl<S: DelayStrategy + ?Sized> DelayStrategy for Box<S> {
    fn next_delay(&mut self, elapsed: Duration) -> Option<Duration> {
        (**self).next_delay(elapsed)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
}

/// A seed different per strategy and per process.
fn seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn exponential_grows_caps_gives_up_and_resets() {
        let mut s = ExponentialDelay::new(ms(100), 2.0, ms(500)).max_retry_time(ms(2_000));
        let ds: Vec<_> = (0..5)
            .map(|_| s.next_delay(Duration::ZERO).unwrap().as_millis())
            .collect();
        assert_eq!(ds, [100, 200, 400, 500, 500]);
        assert_eq!(s.next_delay(ms(1_600)), None);
        s.reset();
        assert_eq!(s.next_delay(Duration::ZERO), Some(ms(100)));
    }

    #[test]
    fn jitter_stays_in_range() {
        let mut s = ExponentialDelay::new(ms(100), 1.0, Duration::from_secs(1)).jitter(ms(50));
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let d = s.next_delay(Duration::ZERO).unwrap();
            assert!((ms(100)..=ms(150)).contains(&d), "{d:?}");
            seen.insert(d);
        }
        assert!(seen.len() > 10, "jitter varies the delay");
    }

    #[test]
    fn fixed_waits_the_same_and_gives_up() {
        let mut f = FixedDelay::new(Duration::from_secs(1)).max_retry_time(Duration::from_secs(3));
        assert_eq!(
            f.next_delay(Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(f.next_delay(Duration::from_secs(3)), None);
    }
}
