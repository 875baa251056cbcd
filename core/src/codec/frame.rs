//! Length-prefixed framing (docs/protocol.md §1.1): a 4-byte big-endian length, then that many
//! bytes of header JSON and payload.

use super::error::DecodeError;

/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 4;

/// The documented server limit per message (docs/protocol.md §1.4: 200 MB).
pub const DEFAULT_MAX_FRAME: u32 = 200 * 1024 * 1024;

/// Split the first frame off `buf`.
///
/// Returns `Ok(None)` while the frame is incomplete, `Ok(Some((body, consumed)))` with the
/// frame body (header + payload, prefix stripped) and the bytes it used, including the prefix.
/// The size limit is checked as soon as the prefix is complete, before the body arrives.
#[inline]
pub fn split_frame(buf: &[u8], max_frame: u32) -> Result<Option<(&[u8], usize)>, DecodeError> {
    let Some(prefix) = buf.first_chunk::<PREFIX_LEN>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix);
    if len == 0 {
        return Err(DecodeError::EmptyFrame);
    }
    if len > max_frame {
        return Err(DecodeError::FrameTooLarge {
            len,
            max: max_frame,
        });
    }
    let total = PREFIX_LEN + len as usize;
    match buf.get(PREFIX_LEN..total) {
        Some(body) => Ok(Some((body, total))),
        None => Ok(None),
    }
}

/// Reassembles frames from arbitrarily chunked input into a bounded buffer.
///
/// Storage is anything byte-sliceable (`[u8; N]`, `&mut [u8]`, a `Vec<u8>`), so the decoder works
/// without `alloc`. The effective maximum frame is the smaller of the configured maximum and the
/// buffer length minus the prefix; a larger frame is [`DecodeError::FrameTooLarge`] the moment its
/// prefix arrives. After an error the decoder holds its state; call [`FrameDecoder::clear`] before
/// feeding a new connection.
///
/// ```
/// use amps_core::codec::FrameDecoder;
/// let mut d = FrameDecoder::new([0u8; 256], 1024);
/// let wire = b"\x00\x00\x00\x11{\"c\":\"heartbeat\"}";
/// for chunk in wire.chunks(3) {
///     assert_eq!(d.push(chunk), chunk.len());
/// }
/// assert_eq!(d.next_frame().unwrap(), Some(&b"{\"c\":\"heartbeat\"}"[..]));
/// assert_eq!(d.next_frame().unwrap(), None);
/// ```
#[derive(Debug)]
pub struct FrameDecoder<B> {
    buf: B,
    start: usize,
    end: usize,
    max_frame: u32,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> FrameDecoder<B> {
    /// A decoder over `buf` that rejects frames above `max_frame` bytes (header + payload).
    pub fn new(buf: B, max_frame: u32) -> Self {
        let cap = buf.as_ref().len().saturating_sub(PREFIX_LEN);
        let max_frame = max_frame.min(u32::try_from(cap).unwrap_or(u32::MAX));
        FrameDecoder {
            buf,
            start: 0,
            end: 0,
            max_frame,
        }
    }

    /// The effective maximum frame length.
    pub fn max_frame(&self) -> u32 {
        self.max_frame
    }

    /// Bytes held and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Bytes [`FrameDecoder::push`] can accept right now (after compaction).
    pub fn free(&self) -> usize {
        self.buf.as_ref().len() - self.buffered()
    }

    /// Copy as much of `input` as fits; returns how much was taken. Less than offered means the
    /// buffer is full of complete frames: drain [`FrameDecoder::next_frame`] and offer the rest.
    pub fn push(&mut self, input: &[u8]) -> usize {
        let cap = self.buf.as_ref().len();
        if self.start > 0 && cap - self.end < input.len() {
            self.buf.as_mut().copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = input.len().min(cap - self.end);
        if let (Some(dst), Some(src)) = (
            self.buf.as_mut().get_mut(self.end..self.end + n),
            input.get(..n),
        ) {
            dst.copy_from_slice(src);
            self.end += n;
            n
        } else {
            0
        }
    }

    /// The next complete frame body (header + payload), borrowed until the next `&mut` call.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        let held = self.buf.as_ref().get(self.start..self.end).unwrap_or(&[]);
        match split_frame(held, self.max_frame)? {
            Some((_, used)) => {
                let body = self.start + PREFIX_LEN..self.start + used;
                self.start += used;
                if self.start == self.end {
                    // Empty: the next push starts at the front without a copy. The returned
                    // slice stays valid, since nothing writes before the next `&mut` call.
                    self.start = 0;
                    self.end = 0;
                }
                Ok(self.buf.as_ref().get(body))
            }
            None => Ok(None),
        }
    }

    /// Drop everything buffered (a new connection starts clean).
    pub fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_reports_incomplete_then_complete() {
        let f = b"\x00\x00\x00\x02{}rest";
        assert_eq!(split_frame(&f[..3], 10), Ok(None));
        assert_eq!(split_frame(&f[..5], 10), Ok(None));
        assert_eq!(split_frame(f, 10), Ok(Some((&b"{}"[..], 6))));
    }

    #[test]
    fn limits_are_checked_on_the_prefix_alone() {
        assert_eq!(
            split_frame(b"\x00\x00\x01\x00", 255),
            Err(DecodeError::FrameTooLarge { len: 256, max: 255 })
        );
        assert_eq!(
            split_frame(b"\x00\x00\x00\x00", 255),
            Err(DecodeError::EmptyFrame)
        );
        let mut d = FrameDecoder::new([0u8; 16], 1000);
        assert_eq!(d.max_frame(), 12);
        d.push(b"\x00\x00\x00\x0d");
        assert_eq!(
            d.next_frame(),
            Err(DecodeError::FrameTooLarge { len: 13, max: 12 })
        );
    }

    #[test]
    fn backpressure_then_compaction() {
        let mut d = FrameDecoder::new([0u8; 12], 100);
        let wire = b"\x00\x00\x00\x02{}\x00\x00\x00\x02[]\x00\x00\x00\x02()";
        let took = d.push(wire);
        assert_eq!(took, 12);
        assert_eq!(d.next_frame().unwrap(), Some(&b"{}"[..]));
        assert_eq!(d.push(&wire[took..]), 6);
        assert_eq!(d.next_frame().unwrap(), Some(&b"[]"[..]));
        assert_eq!(d.next_frame().unwrap(), Some(&b"()"[..]));
        assert_eq!(d.next_frame().unwrap(), None);
        assert_eq!(d.buffered(), 0);
    }
}
