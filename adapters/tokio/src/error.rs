//! The one error type of this crate, built on [`amps_core::error_kind::ErrorKind`] so every
//! adapter exposes the same matchable kinds (one per exception type in the seeds' table).

use core::fmt;

use amps_core::error_kind::ErrorKind;
use amps_core::session::{CommandError, ConfigError, PublishError, SessionError, StoreError};
use amps_core::uri::UriError;

/// What went wrong: a matchable [`ErrorKind`] plus the detail (server reason, I/O error, ...).
///
/// ```
/// use amps_tokio::{Error, ErrorKind};
/// let e = Error::new(ErrorKind::BadFilter, "bad filter");
/// assert_eq!(e.kind(), ErrorKind::BadFilter);
/// assert!(e.to_string().contains("bad filter"));
/// ```
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    detail: Detail,
}

#[derive(Debug)]
enum Detail {
    Text(String),
    Io(std::io::Error),
    Command(CommandError),
    Publish(PublishError),
    Session(SessionError),
    Config(ConfigError),
    Uri(UriError),
    Store(StoreError),
}

impl Error {
    /// An error of `kind` with a text detail.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Error {
        Error {
            kind,
            detail: Detail::Text(detail.into()),
        }
    }

    /// The kind, for matching.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The command error from the session, when this error is one.
    pub fn command_error(&self) -> Option<&CommandError> {
        match &self.detail {
            Detail::Command(e) => Some(e),
            _ => None,
        }
    }

    /// The server's failure reason, when the server refused a command (protocol.md §15).
    pub fn reason(&self) -> Option<&str> {
        match &self.detail {
            Detail::Command(CommandError::Failed { reason, .. }) => Some(reason.as_str()),
            Detail::Session(SessionError::Protocol { reason, .. }) => Some(reason.as_str()),
            _ => None,
        }
    }

    pub(crate) fn disconnected() -> Error {
        Error::new(ErrorKind::Disconnected, "not connected")
    }

    pub(crate) fn shutdown() -> Error {
        Error::new(ErrorKind::Disconnected, "the client is closed")
    }

    pub(crate) fn usage(detail: impl Into<String>) -> Error {
        Error::new(ErrorKind::Usage, detail)
    }

    /// An I/O error while connecting: refused connections get their own kind.
    pub(crate) fn connect_io(e: std::io::Error) -> Error {
        let kind = match e.kind() {
            std::io::ErrorKind::ConnectionRefused => ErrorKind::ConnectionRefused,
            _ => ErrorKind::Disconnected,
        };
        Error {
            kind,
            detail: Detail::Io(e),
        }
    }

    /// A copy that keeps the kind and the text of the detail (events are broadcast to many
    /// receivers, and `std::io::Error` is not `Clone`).
    pub(crate) fn duplicate(&self) -> Error {
        let detail = match &self.detail {
            Detail::Text(s) => Detail::Text(s.clone()),
            Detail::Io(e) => Detail::Io(std::io::Error::new(e.kind(), e.to_string())),
            Detail::Command(e) => Detail::Command(*e),
            Detail::Publish(e) => Detail::Publish(*e),
            Detail::Session(e) => Detail::Session(*e),
            Detail::Config(e) => Detail::Config(*e),
            Detail::Uri(e) => Detail::Uri(*e),
            Detail::Store(e) => Detail::Store(*e),
        };
        Error {
            kind: self.kind,
            detail,
        }
    }
}

impl Clone for Error {
    fn clone(&self) -> Self {
        self.duplicate()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.kind)?;
        match &self.detail {
            Detail::Text(s) => f.write_str(s),
            Detail::Io(e) => write!(f, "{e}"),
            Detail::Command(e) => write!(f, "{e}"),
            Detail::Publish(e) => write!(f, "{e}"),
            Detail::Session(e) => write!(f, "{e}"),
            Detail::Config(e) => write!(f, "{e}"),
            Detail::Uri(e) => write!(f, "{e}"),
            Detail::Store(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.detail {
            Detail::Io(e) => Some(e),
            Detail::Command(e) => Some(e),
            Detail::Publish(e) => Some(e),
            Detail::Session(e) => Some(e),
            Detail::Config(e) => Some(e),
            Detail::Uri(e) => Some(e),
            Detail::Store(e) => Some(e),
            Detail::Text(_) => None,
        }
    }
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Self {
        Error {
            kind: ErrorKind::from(&e),
            detail: Detail::Command(e),
        }
    }
}

impl From<PublishError> for Error {
    fn from(e: PublishError) -> Self {
        Error {
            kind: ErrorKind::from(&e),
            detail: Detail::Publish(e),
        }
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Self {
        Error {
            kind: ErrorKind::from(&e),
            detail: Detail::Session(e),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error {
            kind: ErrorKind::Usage,
            detail: Detail::Config(e),
        }
    }
}

impl From<UriError> for Error {
    fn from(e: UriError) -> Self {
        Error {
            kind: ErrorKind::from(&e),
            detail: Detail::Uri(e),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error {
            kind: ErrorKind::Store,
            detail: Detail::Store(e),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use amps_core::session::{FailureKind, ReasonText};

    #[test]
    fn kinds_follow_the_core_mapping() {
        let e: Error = CommandError::Failed {
            kind: FailureKind::BadFilter,
            reason: ReasonText::new("bad filter"),
        }
        .into();
        assert_eq!(e.kind(), ErrorKind::BadFilter);
        assert_eq!(e.reason(), Some("bad filter"));
        let e = Error::connect_io(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
        assert_eq!(e.clone().kind(), ErrorKind::ConnectionRefused);
        let e: Error = PublishError::WindowFull.into();
        assert_eq!(e.kind(), ErrorKind::Busy);
    }
}
