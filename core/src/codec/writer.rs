//! Writing frames into caller buffers without allocation (docs/protocol.md §1.1, §1.2).

use super::error::EncodeError;
use super::frame::PREFIX_LEN;

/// Writes one frame: prefix, compact JSON header, payload.
///
/// Overflow is sticky: once the buffer is too small the writer keeps counting, so
/// [`FrameWriter::finish`] can report exactly how many bytes were needed.
pub struct FrameWriter<'b> {
    buf: &'b mut [u8],
    pos: usize,
    fields: usize,
    overflow: bool,
}

/// `dst.copy_from_slice(src)` (same lengths), inline for the short pieces a header is made of:
/// keys, command names, numbers and most values are under 17 bytes, and a call into `memcpy`
/// for each cost more than the copy (about a quarter of encoding a publish). Two overlapping
/// fixed-size copies cover every length from 4 to 16.
#[inline(always)]
fn copy(dst: &mut [u8], src: &[u8]) {
    fn two<const N: usize>(dst: &mut [u8], src: &[u8]) {
        if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
            *d = *s;
        }
        if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
            *d = *s;
        }
    }
    match src.len() {
        0..4 => {
            for (d, s) in dst.iter_mut().zip(src) {
                *d = *s;
            }
        }
        4..8 => two::<4>(dst, src),
        8..=16 => two::<8>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

#[inline]
fn needs_escape(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

impl<'b> FrameWriter<'b> {
    /// Start a frame at the front of `buf` (the prefix is filled in by `finish`).
    #[inline]
    pub fn new(buf: &'b mut [u8]) -> Self {
        let mut w = FrameWriter {
            buf,
            pos: 0,
            fields: 0,
            overflow: false,
        };
        w.put(&[0, 0, 0, 0, b'{']);
        w
    }

    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        match self.buf.get_mut(self.pos..end) {
            Some(dst) if !self.overflow => copy(dst, bytes),
            _ => self.overflow = true,
        }
        self.pos = end;
    }

    #[inline]
    fn key(&mut self, key: &str) {
        if self.fields > 0 {
            self.put(b",");
        }
        self.fields += 1;
        self.put(b"\"");
        self.put(key.as_bytes());
        self.put(b"\":");
    }

    /// Write `value` as a JSON string body, escaping `"`, `\` and control characters.
    fn escaped(&mut self, value: &str) {
        let b = value.as_bytes();
        let mut from = 0;
        for (i, &c) in b.iter().enumerate() {
            if !needs_escape(c) {
                continue;
            }
            self.put(b.get(from..i).unwrap_or(&[]));
            let short = match c {
                b'"' => Some(b'"'),
                b'\\' => Some(b'\\'),
                b'\n' => Some(b'n'),
                b'\r' => Some(b'r'),
                b'\t' => Some(b't'),
                0x08 => Some(b'b'),
                0x0c => Some(b'f'),
                _ => None,
            };
            match short {
                Some(s) => self.put(&[b'\\', s]),
                None => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    // `c >> 4` and `c & 15` are below 16: in bounds of the 16-byte table.
                    #[allow(clippy::indexing_slicing)]
                    self.put(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(c >> 4)],
                        HEX[usize::from(c & 15)],
                    ]);
                }
            }
            from = i + 1;
        }
        self.put(b.get(from..).unwrap_or(&[]));
    }

    /// `"key":"value"` with the value escaped.
    #[inline]
    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        self.put(b"\"");
        self.str_body(value);
        self
    }

    #[inline]
    fn str_body(&mut self, value: &str) {
        if value.bytes().any(needs_escape) {
            self.escaped(value);
        } else {
            self.put(value.as_bytes());
        }
        self.put(b"\"");
    }

    /// Fast path for encoders: `prefix` is a field's precomputed `,"key":"` and this is not the
    /// first field.
    #[inline]
    pub(crate) fn str_prefixed(&mut self, prefix: &str, value: &str) {
        self.fields += 1;
        self.put(prefix.as_bytes());
        self.str_body(value);
    }

    /// Fast path for encoders: `prefix` is a field's precomputed `,"key":`.
    #[inline]
    pub(crate) fn int_prefixed(&mut self, prefix: &str, value: u64) {
        self.fields += 1;
        self.put(prefix.as_bytes());
        let mut b = itoa::Buffer::new();
        self.put(b.format(value).as_bytes());
    }

    /// Start a frame whose first member is `"c":"<command>"`.
    #[inline]
    pub(crate) fn with_command(buf: &'b mut [u8], command: &str) -> Self {
        let mut w = FrameWriter {
            buf,
            pos: 0,
            fields: 1,
            overflow: false,
        };
        w.put(b"\0\0\0\0{\"c\":\"");
        w.put(command.as_bytes());
        w.put(b"\"");
        w
    }

    /// Raw bytes inside the header (the caller keeps it valid JSON).
    #[inline]
    pub(crate) fn put_raw(&mut self, bytes: &[u8]) {
        self.put(bytes);
    }

    /// `"key":"<decimal>"`: an integer written as a JSON string (ids, docs/protocol.md §1.3).
    #[inline]
    pub fn str_u64(&mut self, key: &str, value: u64) -> &mut Self {
        let mut b = itoa::Buffer::new();
        self.str(key, b.format(value))
    }

    /// `"key":<decimal>`.
    #[inline]
    pub fn int(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        let mut b = itoa::Buffer::new();
        self.put(b.format(value).as_bytes());
        self
    }

    /// `"key":true|false`.
    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.put(if value { b"true" } else { b"false" });
        self
    }

    /// `"key":` followed by `json` verbatim (the caller guarantees it is valid JSON).
    pub fn raw(&mut self, key: &str, json: &str) -> &mut Self {
        self.key(key);
        self.put(json.as_bytes());
        self
    }

    /// Close the header, append `payload`, fill in the prefix. Returns the frame length
    /// including the prefix.
    pub fn finish(mut self, payload: &[u8]) -> Result<usize, EncodeError> {
        self.put(b"}");
        self.put(payload);
        let body = self.pos - PREFIX_LEN;
        let len = u32::try_from(body).map_err(|_| EncodeError::FrameTooLarge { len: body })?;
        if self.overflow {
            return Err(EncodeError::BufferTooSmall { needed: self.pos });
        }
        if let Some(p) = self.buf.get_mut(..PREFIX_LEN) {
            p.copy_from_slice(&len.to_be_bytes());
        }
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Header, Scratch, split_frame};

    #[test]
    fn writes_compact_json_with_prefix() {
        let mut buf = [0u8; 64];
        let mut w = FrameWriter::new(&mut buf);
        w.str("c", "heartbeat");
        let n = w.finish(b"").unwrap();
        assert_eq!(&buf[..n], b"\x00\x00\x00\x11{\"c\":\"heartbeat\"}");
    }

    #[test]
    fn escapes_round_trip_through_the_parser() {
        let nasty = "q\"b\\s/n\nr\rt\tb\u{8}f\u{c}nul\u{0}us\u{1f}é😀";
        let mut buf = [0u8; 128];
        let mut w = FrameWriter::new(&mut buf);
        w.str("f", nasty).int("s", u64::MAX).bool("send_oof", true);
        let n = w.finish(b"PAYLOAD").unwrap();
        let (body, used) = split_frame(&buf[..n], 1000).unwrap().unwrap();
        assert_eq!(used, n);
        let mut scratch = [0u8; 128];
        let (h, hl) = Header::parse(body, &mut Scratch::new(&mut scratch)).unwrap();
        assert_eq!(h.filter(), Some(nasty));
        assert_eq!(h.seq(), Some(u64::MAX));
        assert_eq!(h.send_oof(), Some(true));
        assert_eq!(&body[hl..], b"PAYLOAD");
    }

    #[test]
    fn overflow_reports_the_needed_size() {
        let mut buf = [0u8; 8];
        let mut w = FrameWriter::new(&mut buf);
        w.str("c", "heartbeat");
        assert_eq!(
            w.finish(b"xy"),
            Err(EncodeError::BufferTooSmall { needed: 23 })
        );
    }
}
