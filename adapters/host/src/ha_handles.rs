//! An HA client's server chooser and delay strategy, shared by the client and the application
//! (the Python client's `get_server_chooser()` and `get_reconnect_delay_strategy()`).
//!
//! The builder puts what it is given behind a lock and hands the driver a proxy that locks it
//! for each call, so the application reaches, through [`ServerChooserHandle`] and
//! [`DelayStrategyHandle`], the very object the client uses: a change applies from the next
//! connection attempt. The driver asks a chooser for its connection string through the handle
//! as well, since a proxy cannot lend out a string held behind the lock.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use amps_core::ha::{Authenticator, ServerChooser};

use crate::delay::DelayStrategy;

/// A trait object behind a lock, with typed access to the concrete value.
struct Shared<D: ?Sized> {
    value: Arc<Mutex<D>>,
    /// The same allocation, as a `Mutex<concrete type>`.
    any: Arc<dyn Any + Send + Sync>,
    kind: &'static str,
}

impl<D: ?Sized> Clone for Shared<D> {
    fn clone(&self) -> Self {
        Shared {
            value: self.value.clone(),
            any: self.any.clone(),
            kind: self.kind,
        }
    }
}

impl<D: ?Sized> Shared<D> {
    /// `value` behind a lock; `as_dyn` makes the trait object (an unsizing coercion).
    fn new<T: Send + 'static>(
        value: T,
        as_dyn: impl FnOnce(Arc<Mutex<T>>) -> Arc<Mutex<D>>,
    ) -> Self {
        let value = Arc::new(Mutex::new(value));
        Shared {
            kind: std::any::type_name::<T>(),
            any: value.clone(),
            value: as_dyn(value),
        }
    }

    fn lock(&self) -> MutexGuard<'_, D> {
        self.value.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn with_as<T: 'static, R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let m = self.any.downcast_ref::<Mutex<T>>()?;
        let mut guard = m.lock().unwrap_or_else(PoisonError::into_inner);
        Some(f(&mut guard))
    }
}

/// The reconnect delay strategy of an HA client, shared by the client and the application:
/// the client asks this very strategy for the wait before each reconnect attempt, so a change
/// made through the handle applies from the next attempt. Cheap to clone.
///
/// ```
/// use std::time::Duration;
/// use amps_host::{DelayStrategyHandle, FixedDelay};
///
/// let handle = DelayStrategyHandle::new(FixedDelay::new(Duration::from_millis(200)));
/// // The concrete strategy, when it is the type asked for:
/// handle.with_as(|d: &mut FixedDelay| d.delay = Duration::from_secs(1));
/// assert_eq!(handle.with_as(|d: &mut FixedDelay| d.delay), Some(Duration::from_secs(1)));
/// // Any strategy, through the trait:
/// assert_eq!(handle.with(|s| s.next_delay(Duration::ZERO)), Some(Duration::from_secs(1)));
/// ```
#[derive(Clone)]
pub struct DelayStrategyHandle(Shared<dyn DelayStrategy>);

impl DelayStrategyHandle {
    /// A shared handle to `strategy` (the builder makes one of the strategy it is given).
    pub fn new<S: DelayStrategy + 'static>(strategy: S) -> Self {
        DelayStrategyHandle(Shared::new(strategy, |v| {
            v as Arc<Mutex<dyn DelayStrategy>>
        }))
    }

    /// The Rust type of the strategy (e.g. `amps_host::delay::ExponentialDelay`), for
    /// diagnostics: not a stable identifier.
    pub fn kind(&self) -> &'static str {
        self.0.kind
    }

    /// Run `f` on the strategy. It is locked meanwhile, and the client's connection loop
    /// waits for it when it needs the strategy: keep `f` short, and call neither the client
    /// nor this handle from it.
    pub fn with<R>(&self, f: impl FnOnce(&mut dyn DelayStrategy) -> R) -> R {
        f(&mut *self.0.lock())
    }

    /// Run `f` on the strategy if it is an `S` (e.g. [`crate::FixedDelay`],
    /// [`crate::ExponentialDelay`] or a strategy of the application's own), with the rules of
    /// [`DelayStrategyHandle::with`]; `None` when it is another type.
    pub fn with_as<S: DelayStrategy + 'static, R>(&self, f: impl FnOnce(&mut S) -> R) -> Option<R> {
        self.0.with_as(f)
    }

    /// The strategy the driver asks: every call goes to the shared one.
    pub(crate) fn proxy(&self) -> Box<dyn DelayStrategy> {
        Box::new(DelayProxy(self.clone()))
    }
}

impl fmt::Debug for DelayStrategyHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayStrategyHandle")
            .field("kind", &self.0.kind)
            .finish_non_exhaustive()
    }
}

/// The driver's side of a [`DelayStrategyHandle`].
struct DelayProxy(DelayStrategyHandle);

impl DelayStrategy for DelayProxy {
    fn next_delay(&mut self, elapsed: Duration) -> Option<Duration> {
        self.0.with(|s| s.next_delay(elapsed))
    }
    fn reset(&mut self) {
        self.0.with(|s| s.reset());
    }
}

/// The server chooser of an HA client, shared by the client and the application: the client
/// asks this very chooser where to connect at each attempt, so servers added or removed
/// through the handle count from the next attempt. Cheap to clone. Its `Debug` output shows
/// only the chooser's type.
///
/// ```
/// use amps_host::{DefaultServerChooser, ServerChooserHandle};
///
/// let handle = ServerChooserHandle::new(DefaultServerChooser::new(vec![
///     "tcp://user:secret@primary:9007/amps/json".to_owned(),
/// ]));
/// // `ClientBuilder::uris` makes a `DefaultServerChooser<Vec<String>>`:
/// handle.with_as(|c: &mut DefaultServerChooser<Vec<String>>| {
///     c.uris_mut().push("tcp://user:secret@backup:9007/amps/json".to_owned())
/// });
/// assert_eq!(handle.with_as(|c: &mut DefaultServerChooser<Vec<String>>| c.uris().len()), Some(2));
/// // The server the next attempt goes to, shown with its password masked:
/// let next = handle.current_uri().unwrap();
/// assert!(next.contains("primary") && !next.contains("secret"));
/// ```
#[derive(Clone)]
pub struct ServerChooserHandle(Shared<dyn ServerChooser + Send>);

impl ServerChooserHandle {
    /// A shared handle to `chooser` (the builder makes one of the chooser it is given).
    pub fn new<C: ServerChooser + Send + 'static>(chooser: C) -> Self {
        ServerChooserHandle(Shared::new(chooser, |v| {
            v as Arc<Mutex<dyn ServerChooser + Send>>
        }))
    }

    /// The Rust type of the chooser (e.g. `amps_core::ha::DefaultServerChooser<…>`), for
    /// diagnostics: not a stable identifier.
    pub fn kind(&self) -> &'static str {
        self.0.kind
    }

    /// The connection string the chooser names now (where the next attempt goes), with its
    /// password masked; `None` when it names none.
    pub fn current_uri(&self) -> Option<String> {
        self.with(|c| c.current_uri().map(masked_uri))
    }

    /// Run `f` on the chooser. It is locked meanwhile, and the client's connection loop waits
    /// for it when it needs the chooser: keep `f` short, and call neither the client nor this
    /// handle from it. What `f` gets may hold passwords: it is the application's own data.
    pub fn with<R>(&self, f: impl FnOnce(&mut (dyn ServerChooser + Send)) -> R) -> R {
        f(&mut *self.0.lock())
    }

    /// Run `f` on the chooser if it is a `C` (e.g.
    /// `DefaultServerChooser<Vec<String>>`, what `ClientBuilder::uris` makes), with the rules
    /// of [`ServerChooserHandle::with`]; `None` when it is another type.
    pub fn with_as<C: ServerChooser + 'static, R>(&self, f: impl FnOnce(&mut C) -> R) -> Option<R> {
        self.0.with_as(f)
    }

    /// The chooser the driver reports to: every call goes to the shared one.
    pub(crate) fn proxy(&self) -> Box<dyn ServerChooser + Send> {
        Box::new(ChooserProxy {
            handle: self.clone(),
            auth: AuthProxy(self.clone()),
            current: None,
            error: String::new(),
        })
    }
}

impl fmt::Debug for ServerChooserHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerChooserHandle")
            .field("kind", &self.0.kind)
            .finish_non_exhaustive()
    }
}

/// The driver's side of a [`ServerChooserHandle`]. The two methods that lend out strings
/// answer from what the chooser said at the last report: the driver asks the handle instead
/// (see `Driver::ha_connect`).
struct ChooserProxy {
    handle: ServerChooserHandle,
    auth: AuthProxy,
    current: Option<String>,
    error: String,
}

impl ChooserProxy {
    fn refresh(&mut self, c: &(dyn ServerChooser + Send)) {
        self.current = c.current_uri().map(str::to_owned);
        c.error().clone_into(&mut self.error);
    }
}

impl ServerChooser for ChooserProxy {
    fn current_uri(&self) -> Option<&str> {
        self.current.as_deref()
    }
    fn report_success(&mut self, uri: &str) {
        let handle = self.handle.clone();
        handle.with(|c| {
            c.report_success(uri);
            self.refresh(c);
        });
    }
    fn report_failure(&mut self, uri: &str, reason: &dyn fmt::Display) {
        let handle = self.handle.clone();
        handle.with(|c| {
            c.report_failure(uri, reason);
            self.refresh(c);
        });
    }
    fn error(&self) -> &str {
        &self.error
    }
    fn current_authenticator(&mut self) -> Option<&mut dyn Authenticator> {
        let has = self.handle.with(|c| c.current_authenticator().is_some());
        has.then_some(&mut self.auth as &mut dyn Authenticator)
    }
}

/// The chooser's authenticator for the current server, reached through the lock at each call.
/// Should the chooser stop naming one between the driver's check and its call, the call fails
/// (the logon then fails as with a failing authenticator).
struct AuthProxy(ServerChooserHandle);

impl Authenticator for AuthProxy {
    fn authenticate(
        &mut self,
        user: &str,
        uri_password: &str,
        out: &mut dyn fmt::Write,
    ) -> fmt::Result {
        self.0.with(|c| match c.current_authenticator() {
            Some(a) => a.authenticate(user, uri_password, out),
            None => Err(fmt::Error),
        })
    }
    fn retry(&mut self, user: &str, token: &str, out: &mut dyn fmt::Write) -> fmt::Result {
        self.0.with(|c| match c.current_authenticator() {
            Some(a) => a.retry(user, token, out),
            None => Err(fmt::Error),
        })
    }
    fn completed(&mut self, user: &str, reason: &str) {
        self.0.with(|c| {
            if let Some(a) = c.current_authenticator() {
                a.completed(user, reason);
            }
        });
    }
}

/// The connection string `uri` with its password masked; a string that does not parse is
/// not shown at all (it might hold a password the parser did not find).
pub(crate) fn masked_uri(uri: &str) -> String {
    amps_core::uri::Uri::parse(uri).map_or_else(
        |_| String::from("<invalid connection string>"),
        |u| u.to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_are_shown_without_their_passwords() {
        let shown = masked_uri("tcp://alice:s3cr3t@127.0.0.1:9007/amps/json");
        assert!(
            shown.contains("alice") && !shown.contains("s3cr3t"),
            "{shown}"
        );
        let bad = masked_uri("nonsense://alice:s3cr3t@");
        assert!(!bad.contains("s3cr3t"), "{bad}");
    }
    use crate::delay::{ExponentialDelay, FixedDelay};
    use amps_core::ha::DefaultServerChooser;

    #[test]
    fn the_driver_side_of_a_delay_handle_is_the_shared_strategy() {
        let handle = DelayStrategyHandle::new(FixedDelay::new(Duration::from_millis(5)));
        let mut driver_side = handle.proxy();
        assert_eq!(
            driver_side.next_delay(Duration::ZERO),
            Some(Duration::from_millis(5))
        );
        handle.with_as(|d: &mut FixedDelay| d.max_retry_time = Some(Duration::from_secs(1)));
        assert_eq!(driver_side.next_delay(Duration::from_secs(2)), None);
        assert_eq!(handle.with_as(|_: &mut ExponentialDelay| ()), None);
        assert!(handle.kind().ends_with("FixedDelay"), "{}", handle.kind());
        assert!(format!("{handle:?}").contains("FixedDelay"));
    }

    /// Names one server, with its own authenticator.
    struct WithAuth(Option<Token>);
    struct Token(u32);
    impl Authenticator for Token {
        fn authenticate(&mut self, _: &str, _: &str, out: &mut dyn fmt::Write) -> fmt::Result {
            self.0 += 1;
            write!(out, "token-{}", self.0)
        }
        fn retry(&mut self, _: &str, t: &str, out: &mut dyn fmt::Write) -> fmt::Result {
            out.write_str(t)
        }
    }
    impl ServerChooser for WithAuth {
        fn current_uri(&self) -> Option<&str> {
            Some("tcp://h:1/amps/json")
        }
        fn report_success(&mut self, _: &str) {}
        fn report_failure(&mut self, _: &str, _: &dyn fmt::Display) {}
        fn current_authenticator(&mut self) -> Option<&mut dyn Authenticator> {
            self.0.as_mut().map(|a| a as &mut dyn Authenticator)
        }
    }

    #[test]
    fn the_driver_side_of_a_chooser_handle_reports_to_the_shared_chooser() {
        let uris = vec![
            "tcp://a:1/amps/json".to_owned(),
            "tcp://b:2/amps/json".to_owned(),
        ];
        let handle = ServerChooserHandle::new(DefaultServerChooser::new(uris));
        let mut driver_side = handle.proxy();
        assert_eq!(handle.current_uri().as_deref(), Some("tcp://a:1/amps/json"));
        driver_side.report_failure("tcp://a:1/amps/json", &"refused");
        assert_eq!(handle.current_uri().as_deref(), Some("tcp://b:2/amps/json"));
        assert_eq!(driver_side.current_uri(), Some("tcp://b:2/amps/json"));
        assert!(driver_side.current_authenticator().is_none());
        let grown = handle.with_as(|c: &mut DefaultServerChooser<Vec<String>>| {
            c.uris_mut().push("tcp://c:3/amps/json".to_owned());
            c.uris().len()
        });
        assert_eq!(grown, Some(3));
        assert!(format!("{handle:?}").contains("DefaultServerChooser"));
    }

    #[test]
    fn a_choosers_authenticator_is_reached_through_the_lock() {
        let handle = ServerChooserHandle::new(WithAuth(Some(Token(0))));
        let mut driver_side = handle.proxy();
        let mut out = String::new();
        let a = driver_side.current_authenticator().expect("one is named");
        a.authenticate("u", "", &mut out).unwrap();
        assert_eq!(out, "token-1");
        // The shared chooser's own authenticator counted the call.
        assert_eq!(
            handle.with_as(|c: &mut WithAuth| c.0.as_ref().unwrap().0),
            Some(1)
        );
        // No longer named: the driver falls back to the client's.
        handle.with_as(|c: &mut WithAuth| c.0 = None);
        assert!(driver_side.current_authenticator().is_none());
    }
}
