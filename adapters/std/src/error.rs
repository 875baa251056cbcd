//! The one error type of the crate: a matchable [`ErrorKind`] per exception type of the seeds'
//! "Exception types" table, the server's reason text when there is one, and the underlying
//! cause (an `io::Error`, a core error, a handler's error) as [`std::error::Error::source`].

use std::fmt;

pub use amps_core::error_kind::ErrorKind;
use amps_core::session::{CommandError, PublishError, SessionError};
use amps_core::uri::UriError;

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a client call or on the client's background threads.
///
/// Match on [`Error::kind`] (one kind per seeds exception: `ErrorKind::BadFilter`,
/// `ErrorKind::Disconnected`, `ErrorKind::ConnectionRefused`, ...). Server failures keep the
/// server's text in [`Error::reason`]; transport failures keep the `io::Error` as the source.
///
/// ```
/// use amps_std::{Error, ErrorKind};
/// let e = Error::new(ErrorKind::Disconnected, "not connected");
/// assert_eq!(e.kind(), ErrorKind::Disconnected);
/// assert_eq!(e.to_string(), "Disconnected: not connected");
/// ```
pub struct Error {
    kind: ErrorKind,
    message: String,
    reason: Option<String>,
    source: Option<Source>,
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a description.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            reason: None,
            source: None,
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

    /// The server's failure reason (`reason` of a failure ack, protocol.md §15), if the server
    /// reported this error.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The description, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn set_reason(&mut self, reason: Option<String>) {
        self.reason = reason;
    }

    pub(crate) fn disconnected(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Disconnected, message)
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Usage, message)
    }

    /// A transport failure while connecting (seeds: ConnectionRefusedException).
    pub(crate) fn connect(what: impl fmt::Display, e: std::io::Error) -> Self {
        Error::with_source(
            ErrorKind::ConnectionRefused,
            format!("cannot connect to {what}: {e}"),
            e,
        )
    }

    /// A command's failure as reported by the session.
    pub(crate) fn command(e: CommandError) -> Self {
        let mut err = Error::with_source(ErrorKind::from(&e), e.to_string(), e);
        if let CommandError::Failed { reason, .. } = e {
            err.reason = Some(reason.as_str().to_owned());
        }
        err
    }
}

/// A clone keeps the kind, the text and the reason; the source is not clonable in general and
/// is left out.
impl Clone for Error {
    fn clone(&self) -> Self {
        Error {
            kind: self.kind,
            message: self.message.clone(),
            reason: self.reason.clone(),
            source: None,
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
        Error::command(e)
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
        let mut err = Error::with_source(ErrorKind::from(&e), e.to_string(), e);
        if let SessionError::Protocol { reason, .. } = e {
            err.reason = Some(reason.as_str().to_owned());
        }
        err
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
    fn uri_and_io_errors_map_to_the_seeds_kinds() {
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
    }
}
