//! The AMPS wire codec (docs/protocol.md §1–§7): framing, header view and writer, commands,
//! server messages, options and bookmarks. No allocation, no panics on input.

pub mod bookmark;
mod command;
mod error;
// The fast scanner works on 64-bit words: built where they are registers. Elsewhere (32-bit
// microcontrollers) the general scanner alone keeps the image small.
#[cfg(target_pointer_width = "64")]
mod fast;
mod field;
mod frame;
mod header;
mod json;
mod message;
pub mod options;
mod scan;
mod types;
mod writer;

pub use bookmark::{Bookmark, BookmarkError, BookmarkId};
pub use command::Command;
pub use error::{DecodeError, EncodeError, Malformed};
pub use field::Field;
pub use frame::{DEFAULT_MAX_FRAME, FrameDecoder, PREFIX_LEN, split_frame};
#[cfg(target_pointer_width = "64")]
pub(crate) use header::ASCII;
pub(crate) use header::{Detached, HeaderRef};
pub use header::{Header, HeaderFields};
pub use json::{MAX_DEPTH, ObjectIter, RawValue, Scratch};
pub(crate) use message::MessageRef;
pub use message::{AckStats, Message, SowRecord, SowRecords, SubIds};
pub use types::{AckType, AckTypes, CommandKind, OofReason, Status};
pub use writer::FrameWriter;
