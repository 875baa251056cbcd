//! High-availability policy, sans-IO (seeds: "HAClient", "ServerChooser", "DelayStrategy",
//! "Authenticator"): how long to wait before reconnecting, which server to try, and what
//! password to send. The session applies the delay strategy; adapters own the chooser and the
//! authenticator and consult them when the session asks for a connection.

use core::fmt;

use crate::time::Duration;

/// How long to wait before each reconnect attempt, and when to give up.
pub trait DelayStrategy {
    /// The wait before the next attempt. `elapsed` is the time since the outage began (the first
    /// failed or lost connection); `random` is 64 fresh random bits for jitter (the session
    /// draws them from its seeded generator, so runs with one seed are reproducible). `None`
    /// means give up (maximum retry time exceeded).
    fn next_delay(&mut self, elapsed: Duration, random: u64) -> Option<Duration>;
    /// A connection succeeded: start over.
    fn reset(&mut self);
}

/// The same delay before every attempt (seeds: `FixedDelayStrategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedDelayStrategy {
    /// Wait before each attempt (default 200 ms).
    pub delay: Duration,
    /// Give up once the outage lasts longer than this (`None`: never).
    pub max_retry_time: Option<Duration>,
}

impl Default for FixedDelayStrategy {
    fn default() -> Self {
        FixedDelayStrategy {
            delay: Duration::from_millis(200),
            max_retry_time: None,
        }
    }
}

impl DelayStrategy for FixedDelayStrategy {
    fn next_delay(&mut self, elapsed: Duration, _random: u64) -> Option<Duration> {
        match self.max_retry_time {
            Some(max) if elapsed.saturating_add(self.delay) > max => None,
            _ => Some(self.delay),
        }
    }
    fn reset(&mut self) {}
}

/// Exponential backoff with jitter (seeds: `ExponentialDelayStrategy`): `initial`, then
/// `initial * multiplier^n`, capped at `max_delay`, plus a uniform random `0..=jitter`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExponentialDelayStrategy {
    /// First delay (default 200 ms).
    pub initial: Duration,
    /// Growth factor per attempt (default 2.0; values below 1.0 are treated as 1.0).
    pub multiplier: f32,
    /// Cap on the delay before jitter (default 20 s).
    pub max_delay: Duration,
    /// Give up once the outage lasts longer than this (`None`: never).
    pub max_retry_time: Option<Duration>,
    /// Random extra delay, uniform in `0..=jitter` (default 0).
    pub jitter: Duration,
    attempt: u32,
}

impl ExponentialDelayStrategy {
    /// A strategy with the given shape.
    pub const fn new(initial: Duration, multiplier: f32, max_delay: Duration) -> Self {
        ExponentialDelayStrategy {
            initial,
            multiplier,
            max_delay,
            max_retry_time: None,
            jitter: Duration::ZERO,
            attempt: 0,
        }
    }
    /// With a maximum retry time.
    pub const fn with_max_retry_time(mut self, t: Duration) -> Self {
        self.max_retry_time = Some(t);
        self
    }
    /// With jitter.
    pub const fn with_jitter(mut self, j: Duration) -> Self {
        self.jitter = j;
        self
    }
}

impl Default for ExponentialDelayStrategy {
    fn default() -> Self {
        ExponentialDelayStrategy::new(Duration::from_millis(200), 2.0, Duration::from_secs(20))
    }
}

impl DelayStrategy for ExponentialDelayStrategy {
    fn next_delay(&mut self, elapsed: Duration, random: u64) -> Option<Duration> {
        // Integer arithmetic in thousandths: no soft-float code on targets without an f64 unit
        // (a Cortex-M4 has single precision only).
        let mult_milli = u64::from((self.multiplier.max(1.0) * 1000.0) as u32);
        let cap = self.max_delay.as_micros();
        let mut d = self.initial.as_micros();
        for _ in 0..self.attempt.min(64) {
            d = d.saturating_mul(mult_milli) / 1000;
            if d >= cap {
                break;
            }
        }
        let base = Duration::from_micros(d.min(cap));
        let span = self.jitter.as_micros().saturating_add(1);
        let jitter = Duration::from_micros(random.checked_rem(span).unwrap_or(0));
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

/// Whether and how a session reconnects by itself (the HA client); plain clients use `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub enum ReconnectPolicy {
    /// Do not reconnect: a lost connection is final until the application connects again.
    #[default]
    None,
    /// [`FixedDelayStrategy`].
    Fixed(FixedDelayStrategy),
    /// [`ExponentialDelayStrategy`].
    Exponential(ExponentialDelayStrategy),
    /// The adapter decides each delay: the session reports
    /// [`crate::session::Event::ReconnectDelay`] when it needs one and waits for
    /// `Session::handle_reconnect_delay` (host clients use it for strategies of their own).
    External,
}

impl ReconnectPolicy {
    /// True unless `None`.
    pub fn reconnects(&self) -> bool {
        !matches!(self, ReconnectPolicy::None)
    }
}

impl DelayStrategy for ReconnectPolicy {
    fn next_delay(&mut self, elapsed: Duration, random: u64) -> Option<Duration> {
        match self {
            ReconnectPolicy::None | ReconnectPolicy::External => None,
            ReconnectPolicy::Fixed(s) => s.next_delay(elapsed, random),
            ReconnectPolicy::Exponential(s) => s.next_delay(elapsed, random),
        }
    }
    fn reset(&mut self) {
        match self {
            ReconnectPolicy::None | ReconnectPolicy::External => {}
            ReconnectPolicy::Fixed(s) => s.reset(),
            ReconnectPolicy::Exponential(s) => s.reset(),
        }
    }
}

/// Chooses the server to connect to (seeds: `ServerChooser`). The HA client calls
/// [`ServerChooser::current_uri`] before each attempt and reports the outcome.
pub trait ServerChooser {
    /// The connection string to try now; `None` when no server is available (the session then
    /// gives up, reporting [`ServerChooser::error`]).
    fn current_uri(&self) -> Option<&str>;
    /// The connection to `uri` succeeded (connected and logged on).
    fn report_success(&mut self, uri: &str);
    /// The connection to `uri` failed; `reason` says why.
    fn report_failure(&mut self, uri: &str, reason: &dyn fmt::Display);
    /// Why no server is available (seeds: `get_error`).
    fn error(&self) -> &str {
        "no server available"
    }
    /// The authenticator for the server [`ServerChooser::current_uri`] names, when that server
    /// needs its own (the Python client's `get_current_authenticator`); `None` (the default):
    /// the client's authenticator.
    fn current_authenticator(&mut self) -> Option<&mut dyn Authenticator> {
        None
    }
}

/// A list of connection strings: arrays, slices and vectors of anything string-like.
pub trait UriList {
    /// Number of entries.
    fn count(&self) -> usize;
    /// Entry `i`.
    fn uri(&self, i: usize) -> Option<&str>;
}

impl<T: AsRef<str>> UriList for [T] {
    fn count(&self) -> usize {
        self.len()
    }
    fn uri(&self, i: usize) -> Option<&str> {
        self.get(i).map(AsRef::as_ref)
    }
}

impl<T: AsRef<str>, const N: usize> UriList for [T; N] {
    fn count(&self) -> usize {
        N
    }
    fn uri(&self, i: usize) -> Option<&str> {
        self.get(i).map(AsRef::as_ref)
    }
}

impl<L: UriList + ?Sized> UriList for &L {
    fn count(&self) -> usize {
        (**self).count()
    }
    fn uri(&self, i: usize) -> Option<&str> {
        (**self).uri(i)
    }
}

#[cfg(feature = "alloc")]
impl<T: AsRef<str>> UriList for alloc::vec::Vec<T> {
    fn count(&self) -> usize {
        self.len()
    }
    fn uri(&self, i: usize) -> Option<&str> {
        self.get(i).map(AsRef::as_ref)
    }
}

/// Rotates through a list of connection strings (seeds: `DefaultServerChooser`): stays on a
/// server while it works, moves to the next one after a failure. Works over any [`UriList`]:
/// `[&str; N]`, `&[&str]`, `Vec<String>`. Its `Debug` output shows the connection strings with
/// their passwords masked.
#[derive(Clone)]
pub struct DefaultServerChooser<L> {
    uris: L,
    current: usize,
}

impl<L> DefaultServerChooser<L> {
    /// Rotate through `uris`, starting at the first.
    pub const fn new(uris: L) -> Self {
        DefaultServerChooser { uris, current: 0 }
    }
    /// The list.
    pub fn uris(&self) -> &L {
        &self.uris
    }
    /// The list, to add or remove servers.
    pub fn uris_mut(&mut self) -> &mut L {
        &mut self.uris
    }
}

impl<L: UriList> fmt::Debug for DefaultServerChooser<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// One connection string, shown as [`crate::uri::Uri`] shows it (password masked); an
        /// entry that does not parse is not shown at all (it might hold anything).
        struct Masked<'a>(&'a str);
        impl fmt::Debug for Masked<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match crate::uri::Uri::parse(self.0) {
                    Ok(u) => write!(f, "\"{u}\""),
                    Err(_) => f.write_str("<invalid connection string>"),
                }
            }
        }
        let mut list = f.debug_list();
        for i in 0..self.uris.count() {
            if let Some(u) = self.uris.uri(i) {
                list.entry(&Masked(u));
            }
        }
        list.finish()?;
        write!(f, " (current {})", self.current)
    }
}

impl<L: UriList> ServerChooser for DefaultServerChooser<L> {
    fn current_uri(&self) -> Option<&str> {
        self.uris.uri(self.current % self.uris.count().max(1))
    }
    fn report_success(&mut self, _: &str) {}
    fn report_failure(&mut self, _: &str, _: &dyn fmt::Display) {
        self.current = (self.current + 1) % self.uris.count().max(1);
    }
    fn error(&self) -> &str {
        if self.uris.count() == 0 {
            "no servers configured"
        } else {
            "no server available"
        }
    }
}

/// Produces the credential sent at logon and answers challenges (seeds: `Authenticator`).
pub trait Authenticator {
    /// Write the password for the first logon of `user`; `uri_password` is the one from the URI.
    fn authenticate(
        &mut self,
        user: &str,
        uri_password: &str,
        out: &mut dyn fmt::Write,
    ) -> fmt::Result;
    /// The server answered with status `retry` and `token` (protocol.md §8.2): write the
    /// credential for the next logon.
    fn retry(&mut self, user: &str, token: &str, out: &mut dyn fmt::Write) -> fmt::Result;
    /// The logon finished (successfully or not); `reason` is the server's text, if any.
    fn completed(&mut self, _user: &str, _reason: &str) {}
}

/// Sends the password from the URI, and the server's token back on a retry (seeds:
/// `DefaultAuthenticator`).
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultAuthenticator;

impl Authenticator for DefaultAuthenticator {
    fn authenticate(
        &mut self,
        _: &str,
        uri_password: &str,
        out: &mut dyn fmt::Write,
    ) -> fmt::Result {
        out.write_str(uri_password)
    }
    fn retry(&mut self, _: &str, token: &str, out: &mut dyn fmt::Write) -> fmt::Result {
        out.write_str(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn exponential_grows_caps_and_gives_up() {
        let mut s = ExponentialDelayStrategy::new(
            Duration::from_millis(100),
            2.0,
            Duration::from_millis(500),
        )
        .with_max_retry_time(Duration::from_secs(2));
        let mut rng = Rng::new(1);
        let ds: Vec<_> = (0..5)
            .map(|_| {
                s.next_delay(Duration::ZERO, rng.next_u64())
                    .unwrap()
                    .as_millis()
            })
            .collect();
        assert_eq!(ds, [100, 200, 400, 500, 500]);
        assert_eq!(
            s.next_delay(Duration::from_millis(1600), rng.next_u64()),
            None
        );
        s.reset();
        assert_eq!(
            s.next_delay(Duration::ZERO, rng.next_u64()),
            Some(Duration::from_millis(100))
        );
    }

    #[test]
    fn jitter_stays_in_range_and_is_seeded() {
        let mk = || {
            ExponentialDelayStrategy::new(Duration::from_millis(100), 1.0, Duration::from_secs(1))
                .with_jitter(Duration::from_millis(50))
        };
        let (mut a, mut b) = (mk(), mk());
        let (mut ra, mut rb) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            let d = a.next_delay(Duration::ZERO, ra.next_u64()).unwrap();
            assert!((100_000..=150_000).contains(&d.as_micros()));
            assert_eq!(Some(d), b.next_delay(Duration::ZERO, rb.next_u64()));
        }
    }

    #[test]
    fn fixed_and_chooser() {
        let mut f = FixedDelayStrategy {
            delay: Duration::from_secs(1),
            max_retry_time: Some(Duration::from_secs(3)),
        };
        let mut rng = Rng::new(0);
        assert_eq!(
            f.next_delay(Duration::from_secs(1), rng.next_u64()),
            Some(Duration::from_secs(1))
        );
        assert_eq!(f.next_delay(Duration::from_secs(3), rng.next_u64()), None);
        let mut c = DefaultServerChooser::new(["tcp://a:1", "tcp://b:1"]);
        assert_eq!(c.current_uri(), Some("tcp://a:1"));
        c.report_success("tcp://a:1");
        assert_eq!(c.current_uri(), Some("tcp://a:1"));
        c.report_failure("tcp://a:1", &"refused");
        assert_eq!(c.current_uri(), Some("tcp://b:1"));
        c.report_failure("tcp://b:1", &"refused");
        assert_eq!(c.current_uri(), Some("tcp://a:1"));
        let empty: DefaultServerChooser<[&str; 0]> = DefaultServerChooser::new([]);
        assert_eq!(
            (empty.current_uri(), empty.error()),
            (None, "no servers configured")
        );
    }
}
