//! Message types other than JSON, with owned buffers: build a FIX, NVFIX or composite payload
//! into a growing `Vec<u8>` and publish it; take a received one apart with the shredders and
//! parsers (which borrow the message). The wire formats and their checks are the core's
//! ([`amps_core::msgtypes`]); these types only own the memory.
//!
//! ```
//! use amps_host::msgtypes::{CompositeMessage, CompositeParser, FixMessage, FixShredder};
//!
//! let mut order = FixMessage::new();
//! order.append(55, "MSFT")?.append(54, "1")?;
//! assert_eq!(order.as_bytes(), b"55=MSFT\x0154=1\x01");
//! let fields: Vec<_> = FixShredder::new(order.as_bytes()).collect();
//! assert_eq!(fields[0], (&b"55"[..], &b"MSFT"[..]));
//!
//! let mut c = CompositeMessage::new();
//! c.append(br#"{"id":1}"#)?.append(order.as_bytes())?;
//! let parts: Vec<&[u8]> = CompositeParser::new(c.as_bytes()).collect::<Result<_, _>>()?;
//! assert_eq!(parts[1], order.as_bytes());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use amps_core::msgtypes::{CompositeBuilder, FixBuilder};

pub use amps_core::msgtypes::{CompositeError, CompositeParser, FixError, FixShredder, SOH};

/// A FIX or NVFIX payload being built (the Python client's `FIXBuilder` and `NVFIXBuilder`):
/// `tag=value` fields, each followed by the separator (SOH unless set).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FixMessage {
    buf: Vec<u8>,
    sep: Option<u8>,
}

impl FixMessage {
    /// An empty payload with the SOH separator.
    pub fn new() -> Self {
        FixMessage::default()
    }

    /// An empty payload with another field separator (as the server's message type is
    /// configured).
    pub fn with_separator(sep: u8) -> Self {
        FixMessage {
            buf: Vec::new(),
            sep: Some(sep),
        }
    }

    /// Append one field through the core's builder: room for it is made first, the field
    /// checked and written, and nothing is kept if it is refused.
    fn field(
        &mut self,
        room: usize,
        write: impl FnOnce(&mut FixBuilder<'_>) -> Result<(), FixError>,
    ) -> Result<&mut Self, FixError> {
        let start = self.buf.len();
        self.buf.resize(start + room, 0);
        let tail = &mut self.buf[start..];
        let mut b = match self.sep {
            Some(sep) => FixBuilder::with_separator(tail, sep),
            None => FixBuilder::new(tail),
        };
        let r = write(&mut b);
        let written = if r.is_ok() { b.len() } else { 0 };
        self.buf.truncate(start + written);
        r.map(|()| self)
    }

    /// Append a FIX field with a numeric tag.
    pub fn append(&mut self, tag: u32, value: &str) -> Result<&mut Self, FixError> {
        self.field(12 + value.len(), |b| b.append(tag, value).map(drop))
    }

    /// Append an NVFIX field (any tag without `=` or the separator).
    pub fn append_str(&mut self, tag: &str, value: &str) -> Result<&mut Self, FixError> {
        self.field(tag.len() + value.len() + 2, |b| {
            b.append_str(tag, value).map(drop)
        })
    }

    /// Append a field whose value is raw bytes (without the separator).
    pub fn append_bytes(&mut self, tag: &str, value: &[u8]) -> Result<&mut Self, FixError> {
        self.field(tag.len() + value.len() + 2, |b| {
            b.append_bytes(tag, value).map(drop)
        })
    }

    /// The payload so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The payload, taken.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Start again, keeping the memory.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The fields of the payload so far.
    pub fn fields(&self) -> FixShredder<'_> {
        match self.sep {
            Some(sep) => FixShredder::with_separator(&self.buf, sep),
            None => FixShredder::new(&self.buf),
        }
    }
}

impl AsRef<[u8]> for FixMessage {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

/// A composite message being built (the Python client's `CompositeMessageBuilder`): parts,
/// each prefixed by its length.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompositeMessage {
    buf: Vec<u8>,
}

impl CompositeMessage {
    /// An empty message.
    pub fn new() -> Self {
        CompositeMessage::default()
    }

    /// Append one part (a JSON document, a binary blob, another payload).
    pub fn append(&mut self, part: &[u8]) -> Result<&mut Self, CompositeError> {
        let start = self.buf.len();
        self.buf.resize(start + 4 + part.len(), 0);
        let r = CompositeBuilder::new(&mut self.buf[start..])
            .append(part)
            .map(drop);
        if r.is_err() {
            self.buf.truncate(start);
        }
        r.map(|()| self)
    }

    /// The message so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The message, taken.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Start again, keeping the memory.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The parts of the message so far.
    pub fn parts(&self) -> CompositeParser<'_> {
        CompositeParser::new(&self.buf)
    }
}

impl AsRef<[u8]> for CompositeMessage {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_fields_grow_the_buffer_and_refused_fields_leave_nothing() {
        let mut m = FixMessage::new();
        let long = "x".repeat(10_000);
        m.append(u32::MAX, &long).unwrap();
        assert_eq!(m.as_bytes().len(), "4294967295=".len() + long.len() + 1);
        let before = m.as_bytes().to_vec();
        assert_eq!(m.append_str("a=b", "v"), Err(FixError::BadTag));
        assert_eq!(m.append_str("t", "v\x01"), Err(FixError::BadValue));
        assert_eq!(m.as_bytes(), &before[..]);
        let mut nv = FixMessage::with_separator(b'|');
        nv.append_str("side", "buy")
            .unwrap()
            .append_bytes("qty", b"10")
            .unwrap();
        assert_eq!(nv.as_bytes(), b"side=buy|qty=10|");
        let f: Vec<_> = nv.fields().collect();
        assert_eq!(f, [(&b"side"[..], &b"buy"[..]), (b"qty", b"10")]);
    }

    #[test]
    fn composite_parts_round_trip() {
        let mut c = CompositeMessage::new();
        c.append(b"").unwrap().append(&[0; 70_000]).unwrap();
        let parts: Vec<_> = c.parts().collect::<Result<_, _>>().unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].len(), 70_000);
        c.clear();
        assert!(c.as_bytes().is_empty());
    }
}
