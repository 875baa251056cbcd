//! Composite messages (docs/protocol.md §16; Python client: `CompositeMessageBuilder`,
//! `CompositeMessageParser`). The byte layout of parts is not documented: our convention, kept in
//! this one place, is that each part is a u32 big-endian length followed by that many bytes. The
//! parser exposes the parts it finds; the builder writes parts in order.

use core::fmt;

/// A composite message that cannot be built or parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompositeError {
    /// The output buffer is full.
    BufferFull,
    /// A part is longer than `u32::MAX` bytes.
    PartTooLarge,
    /// A part's length runs past the end of the message.
    Truncated {
        /// Offset of the part's length prefix.
        offset: usize,
    },
}

impl fmt::Display for CompositeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompositeError::BufferFull => f.write_str("output buffer full"),
            CompositeError::PartTooLarge => f.write_str("part longer than 4 GiB"),
            CompositeError::Truncated { offset } => {
                write!(f, "part at byte {offset} runs past the end")
            }
        }
    }
}

impl core::error::Error for CompositeError {}

/// Builds a composite message into a caller buffer.
///
/// ```
/// use amps_core::msgtypes::{CompositeBuilder, CompositeParser};
/// let mut buf = [0u8; 64];
/// let mut b = CompositeBuilder::new(&mut buf);
/// b.append(br#"{"id":1}"#).unwrap().append(&[1, 2, 3]).unwrap();
/// let parts: Vec<_> = CompositeParser::new(b.as_bytes()).collect::<Result<_, _>>().unwrap();
/// assert_eq!(parts, [&br#"{"id":1}"#[..], &[1, 2, 3][..]]);
/// ```
pub struct CompositeBuilder<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> CompositeBuilder<'b> {
    /// A builder writing into `buf`.
    pub fn new(buf: &'b mut [u8]) -> Self {
        CompositeBuilder { buf, len: 0 }
    }

    /// Append one part.
    pub fn append(&mut self, part: &[u8]) -> Result<&mut Self, CompositeError> {
        let n = u32::try_from(part.len()).map_err(|_| CompositeError::PartTooLarge)?;
        let end = self.len + 4 + part.len();
        let dst = self
            .buf
            .get_mut(self.len..end)
            .ok_or(CompositeError::BufferFull)?;
        let (prefix, body) = dst.split_at_mut(4);
        prefix.copy_from_slice(&n.to_be_bytes());
        body.copy_from_slice(part);
        self.len = end;
        Ok(self)
    }

    /// The message built so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

/// Iterates the parts of a composite message.
#[derive(Clone, Debug)]
pub struct CompositeParser<'a> {
    msg: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> CompositeParser<'a> {
    /// Parts of `msg`.
    pub fn new(msg: &'a [u8]) -> Self {
        CompositeParser {
            msg,
            pos: 0,
            failed: false,
        }
    }

    /// Parse the first `declared` parts; the rest of the message is the unparsed payload
    /// (composite-local/global messages always carry it, possibly empty, §16).
    pub fn split(
        msg: &'a [u8],
        declared: usize,
    ) -> Result<(CompositeParts<'a>, &'a [u8]), CompositeError> {
        let mut p = CompositeParser::new(msg);
        for _ in 0..declared {
            match p.next() {
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Err(CompositeError::Truncated { offset: p.pos }),
            }
        }
        let head = msg.get(..p.pos).unwrap_or(&[]);
        Ok((
            CompositeParts(CompositeParser::new(head)),
            msg.get(p.pos..).unwrap_or(&[]),
        ))
    }
}

impl<'a> Iterator for CompositeParser<'a> {
    type Item = Result<&'a [u8], CompositeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.msg.len() {
            return None;
        }
        let offset = self.pos;
        let part = self
            .msg
            .get(offset..)
            .and_then(|r| r.first_chunk::<4>())
            .map(|p| u32::from_be_bytes(*p) as usize)
            .and_then(|n| self.msg.get(offset + 4..offset + 4 + n));
        match part {
            Some(p) => {
                self.pos = offset + 4 + p.len();
                Some(Ok(p))
            }
            None => {
                self.failed = true;
                Some(Err(CompositeError::Truncated { offset }))
            }
        }
    }
}

/// The declared parts of a composite message (see [`CompositeParser::split`]).
#[derive(Clone, Debug)]
pub struct CompositeParts<'a>(CompositeParser<'a>);

impl<'a> Iterator for CompositeParts<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        self.0.next().and_then(Result::ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_parts_and_the_unparsed_payload() {
        let mut buf = [0u8; 64];
        let mut b = CompositeBuilder::new(&mut buf);
        b.append(b"a").unwrap().append(b"").unwrap();
        let mut msg = b.as_bytes().to_vec();
        msg.extend_from_slice(b"trailing bytes");
        let (parts, rest) = CompositeParser::split(&msg, 2).unwrap();
        assert_eq!(parts.collect::<Vec<_>>(), [&b"a"[..], b""]);
        assert_eq!(rest, b"trailing bytes");
    }

    #[test]
    fn truncated_parts_are_errors() {
        let msg = [0, 0, 0, 9, b'x'];
        let r: Vec<_> = CompositeParser::new(&msg).collect();
        assert_eq!(r, [Err(CompositeError::Truncated { offset: 0 })]);
        assert_eq!(
            CompositeParser::split(&msg, 1).err(),
            Some(CompositeError::Truncated { offset: 0 })
        );
        let mut buf = [0u8; 3];
        assert!(matches!(
            CompositeBuilder::new(&mut buf).append(b"x"),
            Err(CompositeError::BufferFull)
        ));
    }
}
