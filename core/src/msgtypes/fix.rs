//! FIX and NVFIX payloads (docs/protocol.md §16): `tag=value` fields separated by a byte (SOH,
//! 0x01, by default). FIX tags are numbers; NVFIX tags are any bytes except `=` and the separator.
//! The Python client's FIXBuilder/NVFIXBuilder and FIXShredder/NVFIXShredder in one pair of types.

use core::fmt;

/// The default field separator.
pub const SOH: u8 = 0x01;

/// A field that cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FixError {
    /// The output buffer is full.
    BufferFull,
    /// The tag is empty or contains `=` or the separator.
    BadTag,
    /// The value contains the separator.
    BadValue,
}

impl fmt::Display for FixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FixError::BufferFull => "output buffer full",
            FixError::BadTag => "tag empty or containing '=' or the separator",
            FixError::BadValue => "value containing the separator",
        })
    }
}

impl core::error::Error for FixError {}

/// Builds a FIX or NVFIX payload into a caller buffer (Python client: `FIXBuilder`,
/// `NVFIXBuilder`).
///
/// ```
/// use amps_core::msgtypes::FixBuilder;
/// let mut buf = [0u8; 64];
/// let mut b = FixBuilder::new(&mut buf);
/// b.append(55, "MSFT").unwrap().append_str("side", "buy").unwrap();
/// assert_eq!(b.as_bytes(), b"55=MSFT\x01side=buy\x01");
/// ```
pub struct FixBuilder<'b> {
    buf: &'b mut [u8],
    len: usize,
    sep: u8,
}

impl<'b> FixBuilder<'b> {
    /// A builder with the SOH separator.
    pub fn new(buf: &'b mut [u8]) -> Self {
        FixBuilder {
            buf,
            len: 0,
            sep: SOH,
        }
    }

    /// A builder with a custom field separator (per-message-type configuration, §16).
    pub fn with_separator(buf: &'b mut [u8], sep: u8) -> Self {
        FixBuilder { buf, len: 0, sep }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), FixError> {
        let end = self.len + bytes.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(FixError::BufferFull)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    fn field(&mut self, tag: &[u8], value: &[u8]) -> Result<&mut Self, FixError> {
        if tag.is_empty() || tag.iter().any(|&b| b == b'=' || b == self.sep) {
            return Err(FixError::BadTag);
        }
        if value.contains(&self.sep) {
            return Err(FixError::BadValue);
        }
        let start = self.len;
        let r = self
            .put(tag)
            .and_then(|()| self.put(b"="))
            .and_then(|()| self.put(value));
        let r = r.and_then(|()| self.put(&[self.sep]));
        if r.is_err() {
            self.len = start;
        }
        r.map(|()| self)
    }

    /// Append a FIX field with a numeric tag.
    pub fn append(&mut self, tag: u32, value: &str) -> Result<&mut Self, FixError> {
        let mut t = itoa::Buffer::new();
        let tag = t.format(tag);
        self.field(tag.as_bytes(), value.as_bytes())
    }

    /// Append an NVFIX field (any tag).
    pub fn append_str(&mut self, tag: &str, value: &str) -> Result<&mut Self, FixError> {
        self.field(tag.as_bytes(), value.as_bytes())
    }

    /// Append a field with raw bytes as the value.
    pub fn append_bytes(&mut self, tag: &str, value: &[u8]) -> Result<&mut Self, FixError> {
        self.field(tag.as_bytes(), value)
    }

    /// The payload built so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// Bytes written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Iterates the `(tag, value)` fields of a FIX or NVFIX payload (Python client: `FIXShredder`,
/// `NVFIXShredder`). A trailing separator is optional (§16); fields without `=` are skipped.
///
/// ```
/// use amps_core::msgtypes::FixShredder;
/// let fields: Vec<_> = FixShredder::new(b"1=FOO\x015=TEST1\x012=BAR").collect();
/// assert_eq!(fields, [(&b"1"[..], &b"FOO"[..]), (b"5", b"TEST1"), (b"2", b"BAR")]);
/// ```
#[derive(Clone, Debug)]
pub struct FixShredder<'a> {
    rest: &'a [u8],
    sep: u8,
}

impl<'a> FixShredder<'a> {
    /// Fields of `payload`, separated by SOH.
    pub fn new(payload: &'a [u8]) -> Self {
        FixShredder {
            rest: payload,
            sep: SOH,
        }
    }

    /// Fields of `payload` separated by `sep`.
    pub fn with_separator(payload: &'a [u8], sep: u8) -> Self {
        FixShredder { rest: payload, sep }
    }

    /// The value of the first field named `tag`.
    pub fn get(self, tag: &[u8]) -> Option<&'a [u8]> {
        self.into_iter().find(|(t, _)| *t == tag).map(|(_, v)| v)
    }

    /// All fields as a map (the Python client's `to_map`); the first of a repeated tag wins.
    #[cfg(feature = "alloc")]
    pub fn to_map(self) -> alloc::collections::BTreeMap<&'a [u8], &'a [u8]> {
        let mut m = alloc::collections::BTreeMap::new();
        for (t, v) in self {
            m.entry(t).or_insert(v);
        }
        m
    }
}

impl<'a> Iterator for FixShredder<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let end = self
                .rest
                .iter()
                .position(|&b| b == self.sep)
                .unwrap_or(self.rest.len());
            let (field, rest) = self.rest.split_at(end);
            self.rest = rest.get(1..).unwrap_or(&[]);
            if let Some(eq) = field.iter().position(|&b| b == b'=') {
                let (t, v) = field.split_at(eq);
                return Some((t, v.get(1..).unwrap_or(&[])));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_and_shred_round_trip_with_custom_separator() {
        let mut buf = [0u8; 64];
        let mut b = FixBuilder::with_separator(&mut buf, b'|');
        b.append(35, "D").unwrap().append_str("px", "10.5").unwrap();
        assert_eq!(b.as_bytes(), b"35=D|px=10.5|");
        let m = FixShredder::with_separator(b.as_bytes(), b'|').to_map();
        assert_eq!(m.get(&b"px"[..]), Some(&&b"10.5"[..]));
        assert_eq!(
            FixShredder::with_separator(b.as_bytes(), b'|').get(b"35"),
            Some(&b"D"[..])
        );
    }

    #[test]
    fn errors_leave_the_builder_unchanged() {
        let mut buf = [0u8; 8];
        let mut b = FixBuilder::new(&mut buf);
        b.append(1, "ab").unwrap();
        assert!(matches!(b.append(2, "toolong"), Err(FixError::BufferFull)));
        assert_eq!(b.as_bytes(), b"1=ab\x01");
        assert!(matches!(b.append_str("a=b", "x"), Err(FixError::BadTag)));
        assert!(matches!(b.append_str("", "x"), Err(FixError::BadTag)));
        assert!(matches!(
            b.append_bytes("t", b"a\x01b"),
            Err(FixError::BadValue)
        ));
    }

    #[test]
    fn shredder_skips_junk_and_handles_a_missing_trailing_separator() {
        let f: Vec<_> = FixShredder::new(b"\x01junk\x011=a\x01\x012=").collect();
        assert_eq!(f, [(&b"1"[..], &b"a"[..]), (b"2", b"")]);
    }
}
