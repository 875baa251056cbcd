//! Errors of the session (one enum per operation, `Copy + Eq`, hand-written `Display`) and the
//! mapping of server failure reasons to error kinds (docs/protocol.md §15).

use core::fmt;

use crate::codec::{DecodeError, EncodeError};
use crate::strlist;

/// A copy of a server's `reason` text, truncated to 96 bytes at a char boundary, so errors stay
/// `Copy` and allocation-free.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReasonText {
    buf: [u8; 96],
    len: u8,
}

impl ReasonText {
    /// No text.
    pub const EMPTY: ReasonText = ReasonText {
        buf: [0; 96],
        len: 0,
    };

    /// Copy (a prefix of) `s`.
    pub fn new(s: &str) -> ReasonText {
        let mut end = s.len().min(96);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut r = ReasonText::EMPTY;
        if let (Some(dst), Some(src)) = (r.buf.get_mut(..end), s.as_bytes().get(..end)) {
            dst.copy_from_slice(src);
            r.len = end as u8;
        }
        r
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..usize::from(self.len)).unwrap_or(&[])).unwrap_or("")
    }
}

impl fmt::Debug for ReasonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for ReasonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

strlist::packed_debug_enum! {
/// What a server failure means (docs/protocol.md §15), so adapters can expose matchable variants
/// (the Python client's exception types).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// Bad credentials or logon required (AuthenticationException).
    Authentication,
    /// The client name is used by another user (NameInUseException).
    NameInUse,
    /// No permission (NotEntitledException).
    NotEntitled,
    /// Malformed filter (BadFilterException).
    BadFilter,
    /// Malformed topic regex (BadRegexTopicException).
    BadRegexTopic,
    /// Topic not configured for the operation (InvalidTopicException).
    InvalidTopic,
    /// The sub_id is already active (SubscriptionAlreadyExistsException).
    SubscriptionAlreadyExists,
    /// Bookmark not found with `bookmark_not_found=fail`.
    InvalidBookmark,
    /// Bad option, batch size or order by.
    InvalidOptions,
    /// Unknown message type at logon (MessageTypeException).
    MessageTypeNotFound,
    /// Duplicate sequence number; a publish store treats it as already persisted.
    Duplicate,
    /// The server could not parse a command (StreamException).
    Protocol,
    /// Status `retry` (RetryOperationException).
    Retry,
    /// The server has not persisted publishes this client already saw persisted (with
    /// `error_on_publish_gap`; PublishStoreGapException). Raised by the client, not the server.
    PublishGap,
    /// Any other failure (CommandException).
    Other,
}
}

/// Reason substrings and what they mean, tried in order: "name in use" before "in use",
/// "logon required" before "auth", field-type and missing-field errors before "filter" and
/// "topic" (the reason names the field: `bad field type: t`).
const REASONS: [(&str, FailureKind); 17] = [
    ("name in use", FailureKind::NameInUse),
    ("logon required", FailureKind::Authentication),
    ("auth", FailureKind::Authentication),
    ("entitle", FailureKind::NotEntitled),
    ("bad field type", FailureKind::Protocol),
    ("missing field", FailureKind::Protocol),
    ("message too large", FailureKind::Protocol),
    ("filter", FailureKind::BadFilter),
    ("regex", FailureKind::BadRegexTopic),
    ("message type", FailureKind::MessageTypeNotFound),
    ("topic", FailureKind::InvalidTopic),
    ("already exists", FailureKind::SubscriptionAlreadyExists),
    ("in use", FailureKind::SubscriptionAlreadyExists),
    ("bookmark", FailureKind::InvalidBookmark),
    ("option", FailureKind::InvalidOptions),
    ("duplicate", FailureKind::Duplicate),
    ("unknown command", FailureKind::Protocol),
];

// Indices are below `REASONS.len()`.
#[allow(clippy::indexing_slicing)]
const fn reason_parts() -> ([&'static str; 17], [FailureKind; 17]) {
    let mut out = ([""; 17], [FailureKind::Other; 17]);
    let mut i = 0;
    while i < REASONS.len() {
        (out.0[i], out.1[i]) = REASONS[i];
        i += 1;
    }
    out
}

const REASON_PARTS: ([&str; 17], [FailureKind; 17]) = reason_parts();

/// [`REASONS`]' substrings packed, with their kinds apart: on a microcontroller a third of the
/// flash a table of `(&str, FailureKind)` takes.
static REASON_LIST: [u8; strlist::packed_len(&REASON_PARTS.0)] = strlist::pack(&REASON_PARTS.0);
static REASON_KINDS: [FailureKind; 17] = REASON_PARTS.1;

impl FailureKind {
    /// Map a failure ack (docs/protocol.md §15): status `retry` is [`FailureKind::Retry`];
    /// otherwise the reason is matched case-insensitively by substring, in the table's order.
    pub fn classify(reason: &str, is_retry: bool) -> FailureKind {
        if is_retry {
            return FailureKind::Retry;
        }
        let r = reason.as_bytes();
        // (No reason is empty; the test keeps `windows` from a zero size and its panic.)
        let has = |n: &[u8]| {
            let size = core::num::NonZeroUsize::new(n.len());
            size.is_some_and(|s| r.windows(s.get()).any(|w| w.eq_ignore_ascii_case(n)))
        };
        // One loop over a list rather than a chain of tests keeps the code small on devices.
        let found = strlist::items(&REASON_LIST).position(has);
        found
            .and_then(|i| REASON_KINDS.get(i).copied())
            .unwrap_or(FailureKind::Other)
    }
}

/// Why a command did not succeed. Each variant says whether the connection survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CommandError {
    /// The server answered with a failure (or `retry`) ack. The connection survives, except
    /// for logon failures, after which the server closes it (docs/protocol.md §8.2).
    Failed {
        /// Classified reason.
        kind: FailureKind,
        /// The server's reason text.
        reason: ReasonText,
    },
    /// No `processed` ack within the command's timeout. A subscription was unsubscribed. The
    /// connection survives.
    TimedOut,
    /// The connection was lost before the command completed. It will not complete.
    Disconnected,
    /// Not logged on: the command was not sent.
    NotConnected,
    /// The pending-command or route table is full (its configured bound). Nothing was sent.
    TooManyCommands,
    /// The transmit buffer is full: drain `poll_transmit` and retry. Nothing was sent.
    WouldBlock,
    /// A route with this sub_id or query_id is already active in this session.
    DuplicateId,
    /// The command cannot be encoded (missing field, frame too large for the buffers).
    Encode(EncodeError),
    /// A string of the command does not fit the session's route storage.
    TooLarge,
    /// The session is shut down.
    Shutdown,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Failed { kind, reason } => {
                write!(f, "server failure ({kind:?}): {reason}")
            }
            CommandError::TimedOut => f.write_str("timed out waiting for the processed ack"),
            CommandError::Disconnected => f.write_str("disconnected before the command completed"),
            CommandError::NotConnected => f.write_str("not connected"),
            CommandError::TooManyCommands => f.write_str("too many pending commands"),
            CommandError::WouldBlock => f.write_str("transmit buffer full"),
            CommandError::DuplicateId => f.write_str("sub_id or query_id already in use"),
            CommandError::Encode(e) => write!(f, "cannot encode command: {e}"),
            CommandError::TooLarge => f.write_str("command strings exceed the route storage"),
            CommandError::Shutdown => f.write_str("session is shut down"),
        }
    }
}

impl core::error::Error for CommandError {}

impl From<EncodeError> for CommandError {
    fn from(e: EncodeError) -> Self {
        CommandError::Encode(e)
    }
}

/// Why a publish was refused. Nothing was stored or sent in any case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PublishError {
    /// The publish window (unpersisted messages or bytes) is full: wait for persisted acks
    /// ([`crate::session::Event::Persisted`]) and retry. Backpressure, not loss.
    WindowFull,
    /// The transmit buffer is full (no publish store): drain `poll_transmit` and retry.
    WouldBlock,
    /// Not logged on and no publish store to keep the message, or never logged on yet (the
    /// server's sequence number is unknown, docs/protocol.md §8.4).
    NotConnected,
    /// The message does not fit the buffers or the store at all.
    TooLarge,
    /// The publish store failed (I/O, corruption).
    Store(StoreError),
    /// The session is shut down.
    Shutdown,
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::WindowFull => f.write_str("publish window full (unpersisted messages)"),
            PublishError::WouldBlock => f.write_str("transmit buffer full"),
            PublishError::NotConnected => f.write_str("not connected"),
            PublishError::TooLarge => f.write_str("message too large for the session buffers"),
            PublishError::Store(e) => write!(f, "publish store: {e}"),
            PublishError::Shutdown => f.write_str("session is shut down"),
        }
    }
}

impl core::error::Error for PublishError {}

/// A store could not do what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreError {
    /// The configured capacity is reached.
    Full,
    /// The record is larger than the store can ever hold.
    TooLarge,
    /// I/O failure (file-backed stores).
    Io,
    /// The stored data is corrupt.
    Corrupt,
    /// The sequence number is not above the last one stored.
    OutOfOrder,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoreError::Full => "store full",
            StoreError::TooLarge => "record too large for the store",
            StoreError::Io => "store I/O error",
            StoreError::Corrupt => "store corrupt",
            StoreError::OutOfOrder => "sequence number out of order",
        })
    }
}

impl core::error::Error for StoreError {}

/// Input the session cannot accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InputError {
    /// Bytes arrived while no connection is open (before `handle_connected` or after the
    /// session ended the connection). They are ignored.
    NotConnected,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no connection is open")
    }
}

impl core::error::Error for InputError {}

/// Problems reported through [`crate::session::Event::Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SessionError {
    /// Input that could not be decoded: a broken frame length closes the connection, a bad
    /// header skips its message (see [`DecodeError`] for each case).
    Decode(DecodeError),
    /// A failure ack without a `cid` (docs/protocol.md §1.4): a command could not be read by the
    /// server. The connection survives (the server may close it).
    Protocol {
        /// Classified reason.
        kind: FailureKind,
        /// The server's reason text.
        reason: ReasonText,
    },
    /// The bookmark store refused an entry; replay after a reconnect may repeat messages.
    BookmarkStore(StoreError),
    /// The queue-ack batch table is full; the ack was sent on its own.
    AckBatchFull,
    /// Reconnecting was given up (delay strategy's maximum retry time, or no server).
    GaveUp,
    /// No complete frame arrived from the server within the heartbeat timeout: the connection
    /// is closed (heartbeats on only).
    Silent,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Decode(e) => write!(f, "stream error: {e}"),
            SessionError::Protocol { kind, reason } => {
                write!(f, "protocol error ({kind:?}): {reason}")
            }
            SessionError::BookmarkStore(e) => write!(f, "bookmark store: {e}"),
            SessionError::AckBatchFull => f.write_str("queue ack batch table full"),
            SessionError::GaveUp => f.write_str("gave up reconnecting"),
            SessionError::Silent => {
                f.write_str("no complete frame from the server within the heartbeat timeout")
            }
        }
    }
}

impl core::error::Error for SessionError {}

/// A configuration that cannot work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigError {
    /// The client name is empty or longer than 128 bytes.
    ClientName,
    /// A buffer is too small to hold the largest frame it must hold.
    BufferTooSmall {
        /// Which buffer.
        which: &'static str,
    },
    /// A heartbeat interval of zero.
    Heartbeat,
    /// Logon options longer than 128 bytes.
    LogonOptions,
}

// The text of `ConfigError::LogonOptions` names the limit.
const _: () = assert!(
    super::MAX_LOGON_OPTIONS == 128,
    "update the text of ConfigError::LogonOptions"
);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ClientName => f.write_str("client name must be 1..=128 bytes"),
            ConfigError::BufferTooSmall { which } => write!(f, "{which} buffer too small"),
            ConfigError::Heartbeat => f.write_str("heartbeat interval must be at least 1 second"),
            ConfigError::LogonOptions => f.write_str("logon options must be at most 128 bytes"),
        }
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_map_in_table_order() {
        use FailureKind::*;
        for (reason, kind) in [
            ("authentication failed", Authentication),
            ("Logon Required", Authentication),
            ("name in use", NameInUse),
            ("not entitled", NotEntitled),
            ("bad filter", BadFilter),
            ("bad regex topic", BadRegexTopic),
            ("invalid topic", InvalidTopic),
            ("subscription already exists", SubscriptionAlreadyExists),
            ("invalid bookmark", InvalidBookmark),
            ("invalid options", InvalidOptions),
            ("invalid message type", MessageTypeNotFound),
            ("duplicate", Duplicate),
            ("unknown command", Protocol),
            ("bad field type: topic_matches", Protocol),
            ("missing field: t", Protocol),
            ("message too large", Protocol),
            ("bad filter: longer than 262144 bytes", BadFilter),
            ("already logged on", Other),
            ("", Other),
        ] {
            assert_eq!(FailureKind::classify(reason, false), kind, "{reason}");
        }
        assert_eq!(FailureKind::classify("bad filter", true), Retry);
    }

    #[test]
    fn reason_text_truncates_at_char_boundary() {
        let long = "é".repeat(60);
        let r = ReasonText::new(&long);
        assert_eq!(r.as_str().len(), 96);
        assert!(long.starts_with(r.as_str()));
    }
}
