//! The error kinds of the AMPS client libraries' exception table, one per exception type, so
//! every host client exposes the same matchable kinds.

use core::fmt;

use amps_core::session::{CommandError, FailureKind, PublishError, SessionError};
use amps_core::uri::UriError;

/// What went wrong, one kind per documented exception type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `connect()` on a client that is already connected (AlreadyConnectedException).
    AlreadyConnected,
    /// Authentication failed (AuthenticationException).
    Authentication,
    /// Syntax error in a filter (BadFilterException).
    BadFilter,
    /// Malformed topic regex (BadRegexTopicException).
    BadRegexTopic,
    /// Any other command failure (CommandException).
    Command,
    /// The connection was refused (ConnectionRefusedException).
    ConnectionRefused,
    /// No connection (DisconnectedException).
    Disconnected,
    /// Topic not configured for the operation (InvalidTopicException).
    InvalidTopic,
    /// Invalid URI option (InvalidTransportOptionsException).
    InvalidTransportOptions,
    /// Malformed URI (InvalidUriException).
    InvalidUri,
    /// Unknown message type (MessageTypeException).
    MessageType,
    /// Client name in use (NameInUseException).
    NameInUse,
    /// No permission (an AuthenticationException subtype in the seeds' servers).
    NotEntitled,
    /// Retry the operation (RetryOperationException).
    RetryOperation,
    /// Corrupt data on the connection (StreamException).
    Stream,
    /// The subscription id is in use (SubscriptionAlreadyExistsException).
    SubscriptionAlreadyExists,
    /// No ack in time (TimedOutException).
    TimedOut,
    /// Unknown transport in the URI (TransportTypeException).
    TransportType,
    /// Internal error (UnknownException).
    Unknown,
    /// Invalid use of the API (UsageException).
    Usage,
    /// Bookmark not found with `bookmark_not_found=fail`.
    InvalidBookmark,
    /// Bad options, batch size or order by.
    InvalidOptions,
    /// A bound was reached (tables, windows, buffers): back off and retry.
    Busy,
    /// A local store failed (publish or bookmark store I/O).
    Store,
    /// The server has not persisted publishes this client already saw persisted
    /// (`error_on_publish_gap`; PublishStoreGapException).
    PublishStoreGap,
}

impl From<FailureKind> for ErrorKind {
    fn from(k: FailureKind) -> Self {
        match k {
            FailureKind::Authentication => ErrorKind::Authentication,
            FailureKind::NameInUse => ErrorKind::NameInUse,
            FailureKind::NotEntitled => ErrorKind::NotEntitled,
            FailureKind::BadFilter => ErrorKind::BadFilter,
            FailureKind::BadRegexTopic => ErrorKind::BadRegexTopic,
            FailureKind::InvalidTopic => ErrorKind::InvalidTopic,
            FailureKind::SubscriptionAlreadyExists => ErrorKind::SubscriptionAlreadyExists,
            FailureKind::InvalidBookmark => ErrorKind::InvalidBookmark,
            FailureKind::InvalidOptions => ErrorKind::InvalidOptions,
            FailureKind::MessageTypeNotFound => ErrorKind::MessageType,
            FailureKind::Duplicate => ErrorKind::Command,
            FailureKind::Protocol => ErrorKind::Stream,
            FailureKind::Retry => ErrorKind::RetryOperation,
            FailureKind::PublishGap => ErrorKind::PublishStoreGap,
            _ => ErrorKind::Command,
        }
    }
}

impl From<&CommandError> for ErrorKind {
    fn from(e: &CommandError) -> Self {
        match e {
            CommandError::Failed { kind, .. } => (*kind).into(),
            CommandError::TimedOut => ErrorKind::TimedOut,
            CommandError::Disconnected | CommandError::NotConnected | CommandError::Shutdown => {
                ErrorKind::Disconnected
            }
            CommandError::TooManyCommands | CommandError::WouldBlock => ErrorKind::Busy,
            CommandError::DuplicateId => ErrorKind::SubscriptionAlreadyExists,
            CommandError::Encode(_) | CommandError::TooLarge => ErrorKind::Usage,
            _ => ErrorKind::Unknown,
        }
    }
}

impl From<&PublishError> for ErrorKind {
    fn from(e: &PublishError) -> Self {
        match e {
            PublishError::WindowFull | PublishError::WouldBlock => ErrorKind::Busy,
            PublishError::NotConnected | PublishError::Shutdown => ErrorKind::Disconnected,
            PublishError::TooLarge => ErrorKind::Usage,
            PublishError::Store(_) => ErrorKind::Store,
            _ => ErrorKind::Unknown,
        }
    }
}

impl From<&SessionError> for ErrorKind {
    fn from(e: &SessionError) -> Self {
        match e {
            SessionError::Decode(_) => ErrorKind::Stream,
            SessionError::Protocol { kind, .. } => (*kind).into(),
            SessionError::BookmarkStore(_) => ErrorKind::Store,
            SessionError::AckBatchFull => ErrorKind::Busy,
            SessionError::GaveUp => ErrorKind::Disconnected,
            SessionError::Silent => ErrorKind::TimedOut,
            _ => ErrorKind::Unknown,
        }
    }
}

impl From<&UriError> for ErrorKind {
    fn from(e: &UriError) -> Self {
        match e {
            UriError::InvalidUri { .. } => ErrorKind::InvalidUri,
            UriError::UnknownTransport => ErrorKind::TransportType,
            UriError::InvalidTransportOption { .. } => ErrorKind::InvalidTransportOptions,
            _ => ErrorKind::InvalidUri,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}
