//! Decode and encode errors of the wire codec.

use core::fmt;

use super::field::Field;

/// What was wrong with a header's JSON (see [`DecodeError::MalformedHeader`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Malformed {
    /// The header does not start with `{` (docs/protocol.md §1.4).
    NotAnObject,
    /// The frame ended inside the header.
    Truncated,
    /// A string has no closing quote.
    UnterminatedString,
    /// A key was expected (a `"`).
    ExpectedKey,
    /// A `:` was expected after a key.
    ExpectedColon,
    /// A `,` or the closing `}` was expected.
    ExpectedCommaOrEnd,
    /// A byte that cannot start a JSON value.
    UnexpectedByte,
    /// A number that is not valid JSON.
    BadNumber,
    /// An invalid `\` escape or a lone surrogate.
    BadEscape,
}

impl Malformed {
    fn as_str(self) -> &'static str {
        match self {
            Malformed::NotAnObject => "header is not a JSON object",
            Malformed::Truncated => "header ends early",
            Malformed::UnterminatedString => "unterminated string",
            Malformed::ExpectedKey => "expected a key",
            Malformed::ExpectedColon => "expected ':'",
            Malformed::ExpectedCommaOrEnd => "expected ',' or '}'",
            Malformed::UnexpectedByte => "unexpected byte",
            Malformed::BadNumber => "invalid number",
            Malformed::BadEscape => "invalid escape",
        }
    }
}

/// A frame or header that cannot be decoded.
///
/// The decoder never panics on input. What a session does with each, reporting it as
/// [`SessionError::Decode`](crate::session::SessionError::Decode) every time:
///
/// - a broken frame length ([`DecodeError::FrameTooLarge`], [`DecodeError::EmptyFrame`]) ends
///   the connection: the byte stream can no longer be split into frames;
/// - a well-framed message with a bad header (every other variant but
///   [`DecodeError::RecordOverrun`]) is skipped, and the connection goes on;
/// - [`DecodeError::RecordOverrun`] ends the records of that one `sow` message; the records
///   before it were delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeError {
    /// The length prefix announces more than the configured maximum frame size (docs/protocol.md
    /// §1.4). Ends the connection.
    FrameTooLarge {
        /// Announced length (header + payload).
        len: u32,
        /// Configured maximum.
        max: u32,
    },
    /// The length prefix is zero (docs/protocol.md §1.4: a malformed command). Ends the connection.
    EmptyFrame,
    /// The header is not valid JSON.
    MalformedHeader {
        /// Byte offset in the frame (after the prefix) where the problem was found.
        offset: usize,
        /// What was wrong.
        what: Malformed,
    },
    /// The header is not valid UTF-8.
    InvalidUtf8 {
        /// Offset of the first invalid byte in the frame.
        offset: usize,
    },
    /// Nested values in the header exceed the depth limit.
    NestingTooDeep {
        /// Offset of the value that went too deep.
        offset: usize,
    },
    /// A known header field has a value of the wrong JSON type (e.g. an object for `t`, text
    /// that is not an integer for `s`).
    WrongType {
        /// The field.
        field: Field,
    },
    /// An integer field does not fit in 64 bits.
    NumberOutOfRange {
        /// The field.
        field: Field,
    },
    /// The scratch buffer is too small for the escaped strings of the header.
    ScratchFull,
    /// A `sow` record header announces more bytes (`l`) than remain in the message (§7.2).
    RecordOverrun {
        /// Offset of the record header in the payload.
        offset: usize,
    },
    /// The `c` field is missing or names no known command (docs/protocol.md §1.4, §3).
    UnknownCommand,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::FrameTooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            DecodeError::EmptyFrame => f.write_str("frame of length 0"),
            DecodeError::MalformedHeader { offset, what } => {
                write!(f, "malformed header at byte {offset}: {}", what.as_str())
            }
            DecodeError::InvalidUtf8 { offset } => {
                write!(f, "header is not UTF-8 at byte {offset}")
            }
            DecodeError::NestingTooDeep { offset } => {
                write!(f, "header nesting too deep at byte {offset}")
            }
            DecodeError::WrongType { field } => {
                write!(f, "header field `{}` has the wrong type", field.wire_key())
            }
            DecodeError::NumberOutOfRange { field } => {
                write!(
                    f,
                    "header field `{}` does not fit in 64 bits",
                    field.wire_key()
                )
            }
            DecodeError::ScratchFull => {
                f.write_str("no scratch space left to unescape a header string")
            }
            DecodeError::RecordOverrun { offset } => {
                write!(
                    f,
                    "sow record at payload offset {offset} overruns the message"
                )
            }
            DecodeError::UnknownCommand => f.write_str("missing or unknown command `c`"),
        }
    }
}

impl core::error::Error for DecodeError {}

/// A frame that cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// The output buffer is too small; `needed` bytes would have been required.
    BufferTooSmall {
        /// Bytes the whole frame needs.
        needed: usize,
    },
    /// Header plus payload exceed `u32::MAX` or the configured maximum frame size.
    FrameTooLarge {
        /// Frame length (header + payload).
        len: usize,
    },
    /// A required field for this command is missing (e.g. a topic on `publish`).
    MissingField {
        /// The field.
        field: Field,
    },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small: {needed} bytes needed")
            }
            EncodeError::FrameTooLarge { len } => write!(f, "frame of {len} bytes is too large"),
            EncodeError::MissingField { field } => {
                write!(f, "required header field `{}` is missing", field.wire_key())
            }
        }
    }
}

impl core::error::Error for EncodeError {}
