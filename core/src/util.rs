//! Small fixed-capacity helpers shared by the session and stores.

#[cfg(feature = "sim")]
pub use crate::rng::Rng;

use core::fmt;

/// A string of at most `N` bytes stored inline (no allocation).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedStr<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> FixedStr<N> {
    /// The empty string.
    pub const EMPTY: Self = FixedStr {
        buf: [0; N],
        len: 0,
    };

    /// Copy `s`, or `None` if it is longer than `N` bytes.
    pub fn new(s: &str) -> Option<Self> {
        let mut f = Self::EMPTY;
        f.buf.get_mut(..s.len())?.copy_from_slice(s.as_bytes());
        f.len = s.len();
        Some(f)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append `s`; `false` (and nothing appended) when it does not fit. Cheaper on a device
    /// than `write!`, which brings in `core::fmt`'s machinery for each `FixedStr` size.
    pub fn push_str(&mut self, s: &str) -> bool {
        let Some(dst) = self.buf.get_mut(self.len..self.len + s.len()) else {
            return false;
        };
        dst.copy_from_slice(s.as_bytes());
        self.len += s.len();
        true
    }
}

impl<const N: usize> Default for FixedStr<N> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<const N: usize> fmt::Debug for FixedStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Write for FixedStr<N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.push_str(s) {
            Ok(())
        } else {
            Err(fmt::Error)
        }
    }
}
