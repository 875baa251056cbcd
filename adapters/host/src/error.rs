//! The one error type of the host clients: a matchable [`ErrorKind`] (one per exception type
//! of the AMPS client libraries), a description, the server's reason text when the server
//! refused something, and the underlying cause as [`std::error::Error::source`].

use std::fmt;

use amps_core::session::{CommandError, ConfigError, PublishError, SessionError, StoreError};
use amps_core::uri::UriError;

pub use crate::error_kind::ErrorKind;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a client call or on the client's background work.
///
/// Match on [`Error::kind`] (`ErrorKind::BadFilter`, `ErrorKind::Disconnected`,
/// `ErrorKind::TimedOut`, ...). Server failures keep the server's text in [`Error::reason`];
/// transport failures keep the `io::Error` as the source.
///
/// ```
/// use amps_host::{Error, ErrorKind};
/// let e = Error::new(ErrorKind::Disconnected, "not connected");
/// assert_eq!(e.kind(), ErrorKind::Disconnected);
/// assert_eq!(e.to_string(), "Disconnected: not connected");
/// ```
pub struct Error {
    kind: ErrorKind,
    message: String,
    reason: Option<String>,
    source: Option<Source>,
    /// Boxed: rare, and keeps the error (and every event carrying one) small.
    unpersisted: Option<Box<(u64, u64)>>,
}

/// `Result` with the host clients' [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a description.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            reason: None,
            source: None,
            unpersisted: None,
        }
    }

    /// An error of `kind` caused by `source`.
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<Source>,
    ) -> Self {
        Error {
            source: Some(source.into()),
            ..Error::new(kind, message)
        }
    }

    /// The kind, for matching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The server's failure reason (`reason` of a failure ack), if the server reported this
    /// error.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The description, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For a `publish_flush` that timed out: the sequence numbers of the publishes still
    /// unpersisted in the publish store, first to last (some in between may be persisted).
    pub fn unpersisted_range(&self) -> Option<std::ops::RangeInclusive<u64>> {
        self.unpersisted.as_deref().map(|&(a, b)| a..=b)
    }

    /// The same error naming the publishes still unpersisted.
    pub(crate) fn with_unpersisted(mut self, count: usize, first: u64, last: u64) -> Self {
        self.message = format!(
            "{}: {count} publish(es) still unpersisted, sequence numbers {first} to {last}",
            self.message
        );
        self.unpersisted = Some(Box::new((first, last)));
        self
    }

    /// The same error with the server's reason text.
    pub(crate) fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// No connection, or the connection was lost.
    pub(crate) fn disconnected(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Disconnected, message)
    }

    /// The client was closed.
    pub(crate) fn closed() -> Self {
        Error::new(ErrorKind::Disconnected, "the client is closed")
    }

    /// Invalid use of the API.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Usage, message)
    }

    /// A wait that reached its deadline.
    pub(crate) fn timed_out(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::TimedOut, message)
    }

    /// A transport failure while connecting: refused connections and timeouts get their own
    /// kinds, anything else is `ConnectionRefused` with the cause attached.
    pub fn connect(what: impl fmt::Display, e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => ErrorKind::TimedOut,
            _ => ErrorKind::ConnectionRefused,
        };
        Error::with_source(kind, format!("cannot connect to {what}: {e}"), e)
    }
}

/// A clone keeps the kind, the text and the reason; the source is not clonable in general and
/// is kept as its text.
impl Clone for Error {
    fn clone(&self) -> Self {
        Error {
            kind: self.kind,
            message: self.message.clone(),
            reason: self.reason.clone(),
            unpersisted: self.unpersisted.clone(),
            source: self
                .source
                .as_ref()
                .map(|s| Box::<dyn std::error::Error + Send + Sync>::from(s.to_string())),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(r) = &self.reason {
            d.field("reason", r);
        }
        if let Some(s) = &self.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        let reason = match e {
            CommandError::Failed { reason, .. } => Some(reason.as_str().to_owned()),
            _ => None,
        };
        let mut err = Error::with_source(ErrorKind::from(&e), e.to_string(), e);
        err.reason = reason;
        err
    }
}

impl From<PublishError> for Error {
    fn from(e: PublishError) -> Self {
        Error::with_source(ErrorKind::from(&e), e.to_string(), e)
    }
}

impl From<UriError> for Error {
    fn from(e: UriError) -> Self {
        Error::with_source(ErrorKind::from(&e), e.to_string(), e)
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Self {
        let reason = match e {
            SessionError::Protocol { reason, .. } => Some(reason.as_str().to_owned()),
            _ => None,
        };
        let mut err = Error::with_source(ErrorKind::from(&e), e.to_string(), e);
        err.reason = reason;
        err
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::with_source(ErrorKind::Usage, format!("invalid client settings: {e}"), e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::with_source(ErrorKind::Store, format!("store: {e}"), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amps_core::session::{FailureKind, ReasonText};
    use std::error::Error as _;

    #[test]
    fn server_failures_keep_kind_reason_and_source() {
        let e = Error::from(CommandError::Failed {
            kind: FailureKind::BadFilter,
            reason: ReasonText::new("bad filter"),
        });
        assert_eq!(e.kind(), ErrorKind::BadFilter);
        assert_eq!(e.reason(), Some("bad filter"));
        assert!(e.source().is_some());
        let c = e.clone();
        assert_eq!(
            (c.kind(), c.reason()),
            (ErrorKind::BadFilter, Some("bad filter"))
        );
        assert!(c.source().is_some(), "a clone keeps the cause as text");
        assert_eq!(
            Error::from(CommandError::TimedOut).kind(),
            ErrorKind::TimedOut
        );
        assert_eq!(
            Error::from(CommandError::Disconnected).kind(),
            ErrorKind::Disconnected
        );
    }

    #[test]
    fn uri_and_io_errors_map_to_their_kinds() {
        let e = Error::from(amps_core::uri::Uri::parse("http://x:1").unwrap_err());
        assert_eq!(e.kind(), ErrorKind::TransportType);
        let e = Error::from(
            amps_core::uri::Uri::parse("tcp://x:1/amps?tcp_nodelay=maybe").unwrap_err(),
        );
        assert_eq!(e.kind(), ErrorKind::InvalidTransportOptions);
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let e = Error::connect("tcp://127.0.0.1:1", io);
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        assert!(e.source().is_some());
        let io = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(Error::connect("x", io).kind(), ErrorKind::TimedOut);
    }
}
