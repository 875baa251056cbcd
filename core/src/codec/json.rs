//! A minimal JSON scanner for AMPS headers (docs/protocol.md §1.2).
//!
//! Headers are one flat JSON object; values are strings, numbers, booleans or (for unknown keys
//! only) nested values, which are skipped with a depth limit. The scanner works on bytes and
//! reports byte ranges. It validates UTF-8 as it goes: everything outside strings must be ASCII
//! by the grammar, and a string is validated only if a byte with the high bit set was seen
//! while searching for its end (almost never in AMPS headers), so a header it accepts is valid
//! UTF-8 without a second pass over it (the payload after it may be binary). It never
//! allocates: escaped strings are decoded into a caller-provided [`Scratch`] only when they
//! contain escapes.

use core::ops::Range;

use super::error::{DecodeError, Malformed};

/// Maximum nesting of unknown header values before the header is rejected.
pub const MAX_DEPTH: u32 = 32;

/// Caller-provided space for unescaped string values.
///
/// Every parse takes what it needs from the front and leaves the rest, so one scratch buffer can
/// serve many headers (for example all the record headers of one `sow` batch) whose views must
/// live at the same time. A header whose strings contain no escapes needs no scratch at all, so
/// [`Scratch::empty`] is enough for the common case; an escape that does not fit is
/// [`DecodeError::ScratchFull`]. A scratch as long as the header text always suffices.
#[derive(Debug, Default)]
pub struct Scratch<'a>(&'a mut [u8]);

impl<'a> Scratch<'a> {
    /// Wrap a buffer.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Scratch(buf)
    }
    /// No space: headers with escaped strings fail with [`DecodeError::ScratchFull`].
    pub fn empty() -> Self {
        Scratch(&mut [])
    }
    /// Bytes still available.
    pub fn remaining(&self) -> usize {
        self.0.len()
    }
    /// Take all remaining space (give back the unused tail with [`Scratch::give_back`]).
    pub(crate) fn take_all(&mut self) -> &'a mut [u8] {
        core::mem::take(&mut self.0)
    }
    /// Return the unused tail of a [`Scratch::take_all`].
    pub(crate) fn give_back(&mut self, tail: &'a mut [u8]) {
        self.0 = tail;
    }
}

/// A scanned JSON value as byte ranges of the scanned text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Span {
    /// String content between the quotes, and whether it holds a `\` escape.
    Str(Range<usize>, bool),
    /// A number as written.
    Num(Range<usize>),
    /// `true`/`false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An object or array as written.
    Nested(Range<usize>),
}

/// A scanned JSON value, borrowed from the header text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawValue<'a> {
    /// A string: its raw content between the quotes and whether it holds any `\` escape.
    Str {
        /// Raw content, escapes not decoded.
        raw: &'a str,
        /// True if `raw` contains at least one backslash escape.
        escaped: bool,
    },
    /// A number, as written.
    Num(&'a str),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A nested object or array, as written (only for keys the header table does not know).
    Nested(&'a str),
}

impl<'a> RawValue<'a> {
    fn from_span(text: &'a str, s: Span) -> RawValue<'a> {
        let get = |r: Range<usize>| text.get(r).unwrap_or("");
        match s {
            Span::Str(r, escaped) => RawValue::Str {
                raw: get(r),
                escaped,
            },
            Span::Num(r) => RawValue::Num(get(r)),
            Span::Bool(b) => RawValue::Bool(b),
            Span::Null => RawValue::Null,
            Span::Nested(r) => RawValue::Nested(get(r)),
        }
    }

    /// The value as text when it is a string without escapes, a number or a boolean.
    pub fn as_plain_str(&self) -> Option<&'a str> {
        match *self {
            RawValue::Str {
                raw,
                escaped: false,
            } => Some(raw),
            RawValue::Num(n) => Some(n),
            RawValue::Bool(true) => Some("true"),
            RawValue::Bool(false) => Some("false"),
            _ => None,
        }
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Position of the first `"` or `\` at or after `i`: eight bytes at a time (SWAR), since header
/// strings are short and a call into a vectorised search costs more than it saves.
#[inline(always)]
fn find_quote_or_backslash(b: &[u8], i: usize) -> Option<usize> {
    find_quote_or_backslash_hi(b, i, &mut 0)
}

/// [`find_quote_or_backslash`], also OR-ing every byte it looks at into `hi` (the bytes of
/// each eight-byte step, so possibly a few past the match): `hi & HI == 0` afterwards proves
/// that every byte from `i` to the match is ASCII. Free next to the search itself, and it lets
/// the scanner skip UTF-8 validation of ASCII strings.
#[inline(always)]
fn find_quote_or_backslash_hi(b: &[u8], mut i: usize, hi: &mut u64) -> Option<usize> {
    const Q: u64 = LO * b'"' as u64;
    const BS: u64 = LO * b'\\' as u64;
    while let Some(chunk) = b.get(i..).and_then(|s| s.first_chunk::<8>()) {
        let w = u64::from_le_bytes(*chunk);
        *hi |= w;
        let (x, y) = (w ^ Q, w ^ BS);
        // A zero byte in x or y marks a match; the lowest flagged byte is always a true match.
        let m = ((x.wrapping_sub(LO) & !x) | (y.wrapping_sub(LO) & !y)) & HI;
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        *hi |= u64::from(c);
        if c == b'"' || c == b'\\' {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// Validate a string that showed a byte with the high bit set (rare in headers: out of line,
/// so the scanning loop stays small); `offset` is where `s` starts in the frame.
#[cold]
#[inline(never)]
fn validate_utf8(s: &[u8], offset: usize) -> Result<(), DecodeError> {
    core::str::from_utf8(s)
        .map(|_| ())
        .map_err(|e| DecodeError::InvalidUtf8 {
            offset: offset + e.valid_up_to(),
        })
}

/// Where [`Cursor::next_key`] is inside an object.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyPos {
    /// Right after `{`: a key or `}`.
    First,
    /// After a value: `,` then a key, or `}`.
    AfterValue,
}

/// Cursor over header bytes.
pub(crate) struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    /// Offset of `b` within the frame, for error positions.
    base: usize,
}

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

impl<'a> Cursor<'a> {
    #[inline]
    pub(crate) fn new(b: &'a [u8], base: usize) -> Self {
        Cursor { b, pos: 0, base }
    }

    #[inline]
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    #[cold]
    pub(crate) fn err(&self, what: Malformed) -> DecodeError {
        let what = if self.pos >= self.b.len() && what != Malformed::UnterminatedString {
            Malformed::Truncated
        } else {
            what
        };
        DecodeError::MalformedHeader {
            offset: self.base + self.pos,
            what,
        }
    }

    #[inline]
    pub(crate) fn skip_ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if !is_ws(c) {
                break;
            }
            self.pos += 1;
        }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Consume `c` (after optional whitespace) or fail with `what`.
    #[inline]
    pub(crate) fn expect(&mut self, c: u8, what: Malformed) -> Result<(), DecodeError> {
        if self.peek() != Some(c) {
            self.skip_ws();
            if self.peek() != Some(c) {
                return Err(self.err(what));
            }
        }
        self.pos += 1;
        Ok(())
    }

    /// Scan a string whose opening quote is at the cursor; returns the content range.
    #[inline]
    pub(crate) fn string(&mut self) -> Result<(Range<usize>, bool), DecodeError> {
        let start = self.pos + 1;
        let mut i = start;
        let mut escaped = false;
        let mut hi = 0u64;
        loop {
            match find_quote_or_backslash_hi(self.b, i, &mut hi) {
                None => {
                    self.pos = self.b.len();
                    return Err(self.err(Malformed::UnterminatedString));
                }
                Some(at) if self.b.get(at) == Some(&b'"') => {
                    // Everything outside strings is ASCII by the grammar, so validating the
                    // strings that are not plainly ASCII validates the whole header.
                    if hi & HI != 0 {
                        validate_utf8(self.b.get(start..at).unwrap_or(&[]), self.base + start)?;
                    }
                    self.pos = at + 1;
                    return Ok((start..at, escaped));
                }
                Some(at) => {
                    // Skip the backslash and the escaped byte; `unescape` validates the escape
                    // of a value it decodes. The skipped byte is not scanned, so a non-ASCII one
                    // must still send the string to the UTF-8 check (a value the parse ignores
                    // is never unescaped).
                    escaped = true;
                    if self.b.get(at + 1).is_some_and(|c| !c.is_ascii()) {
                        hi |= HI;
                    }
                    i = at + 2;
                }
            }
        }
    }

    fn number(&mut self) -> Result<Range<usize>, DecodeError> {
        let b = self.b;
        let start = self.pos;
        let mut i = start;
        let digits = |i: &mut usize| {
            let s = *i;
            while b.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > s
        };
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let mut ok = digits(&mut i);
        if ok && b.get(i) == Some(&b'.') {
            i += 1;
            ok = digits(&mut i);
        }
        if ok && matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            ok = digits(&mut i);
        }
        self.pos = i;
        if ok {
            Ok(start..i)
        } else {
            Err(self.err(Malformed::BadNumber))
        }
    }

    fn literal(&mut self, word: &[u8], v: Span) -> Result<Span, DecodeError> {
        if self.b.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(self.err(Malformed::UnexpectedByte))
        }
    }

    /// Scan any value at the cursor (whitespace already skipped).
    #[inline]
    pub(crate) fn value(&mut self) -> Result<Span, DecodeError> {
        match self.peek() {
            Some(b'"') => {
                let (r, e) = self.string()?;
                Ok(Span::Str(r, e))
            }
            Some(b'-' | b'0'..=b'9') => Ok(Span::Num(self.number()?)),
            Some(b't') => self.literal(b"true", Span::Bool(true)),
            Some(b'f') => self.literal(b"false", Span::Bool(false)),
            Some(b'n') => self.literal(b"null", Span::Null),
            Some(b'{' | b'[') => {
                let start = self.pos;
                self.skip_nested(0)?;
                Ok(Span::Nested(start..self.pos))
            }
            _ => Err(self.err(Malformed::UnexpectedByte)),
        }
    }

    /// Skip an object or array, recursion bounded by [`MAX_DEPTH`].
    fn skip_nested(&mut self, depth: u32) -> Result<(), DecodeError> {
        if depth >= MAX_DEPTH {
            return Err(DecodeError::NestingTooDeep {
                offset: self.base + self.pos,
            });
        }
        let close = if self.peek() == Some(b'{') {
            b'}'
        } else {
            b']'
        };
        let is_obj = close == b'}';
        self.pos += 1;
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            if is_obj {
                if self.peek() != Some(b'"') {
                    return Err(self.err(Malformed::ExpectedKey));
                }
                self.string()?;
                self.expect(b':', Malformed::ExpectedColon)?;
                self.skip_ws();
            }
            match self.peek() {
                Some(b'{' | b'[') => self.skip_nested(depth + 1)?,
                _ => {
                    self.value()?;
                }
            }
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err(Malformed::ExpectedCommaOrEnd)),
            }
        }
    }

    /// The next key of an object, or `None` at its `}`.
    #[inline]
    pub(crate) fn next_key(
        &mut self,
        at: KeyPos,
    ) -> Result<Option<(Range<usize>, bool)>, DecodeError> {
        self.skip_ws();
        match (self.peek(), at) {
            (Some(b'}'), KeyPos::First | KeyPos::AfterValue) => {
                self.pos += 1;
                return Ok(None);
            }
            (Some(b','), KeyPos::AfterValue) => {
                self.pos += 1;
                self.skip_ws();
            }
            (_, KeyPos::AfterValue) => return Err(self.err(Malformed::ExpectedCommaOrEnd)),
            _ => {}
        }
        if self.peek() != Some(b'"') {
            return Err(self.err(Malformed::ExpectedKey));
        }
        let key = self.string()?;
        self.expect(b':', Malformed::ExpectedColon)?;
        self.skip_ws();
        Ok(Some(key))
    }
}

/// Iterator over the `(key, value)` pairs of a header's JSON object, keys raw (escapes
/// undecoded). Yields an error once and then stops.
pub struct ObjectIter<'a> {
    text: &'a str,
    cur: Cursor<'a>,
    first: bool,
    done: bool,
}

impl<'a> ObjectIter<'a> {
    /// Start at the `{` that opens `text` (leading whitespace allowed).
    pub(crate) fn new(text: &'a str) -> Result<Self, DecodeError> {
        let mut cur = Cursor::new(text.as_bytes(), 0);
        cur.expect(b'{', Malformed::NotAnObject)?;
        Ok(ObjectIter {
            text,
            cur,
            first: true,
            done: false,
        })
    }

    /// An iterator that yields nothing.
    pub(crate) fn empty() -> ObjectIter<'static> {
        ObjectIter {
            text: "",
            cur: Cursor::new(&[], 0),
            first: true,
            done: true,
        }
    }

    fn step(&mut self) -> Result<Option<(&'a str, bool, RawValue<'a>)>, DecodeError> {
        let at = if self.first {
            KeyPos::First
        } else {
            KeyPos::AfterValue
        };
        let Some((k, escaped)) = self.cur.next_key(at)? else {
            return Ok(None);
        };
        self.first = false;
        let v = self.cur.value()?;
        Ok(Some((
            self.text.get(k).unwrap_or(""),
            escaped,
            RawValue::from_span(self.text, v),
        )))
    }
}

impl<'a> Iterator for ObjectIter<'a> {
    /// `(raw key, key has escapes, value)`.
    type Item = Result<(&'a str, bool, RawValue<'a>), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.step();
        self.done = !matches!(r, Ok(Some(_)));
        r.transpose()
    }
}

fn hex4(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b.get(..4)? {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// Decode the JSON escapes of `raw` into `out` at `*o`, advancing `*o`.
///
/// `offset` is the frame offset of `raw`, for errors. Never panics: bad escapes and lone
/// surrogates are [`Malformed::BadEscape`]; running out of `out` is [`DecodeError::ScratchFull`].
pub(crate) fn unescape(
    raw: &[u8],
    offset: usize,
    out: &mut [u8],
    o: &mut usize,
) -> Result<(), DecodeError> {
    let bad = |at: usize| DecodeError::MalformedHeader {
        offset: offset + at,
        what: Malformed::BadEscape,
    };
    let mut put = |bytes: &[u8], o: &mut usize| -> Result<(), DecodeError> {
        let dst = out
            .get_mut(*o..*o + bytes.len())
            .ok_or(DecodeError::ScratchFull)?;
        dst.copy_from_slice(bytes);
        *o += bytes.len();
        Ok(())
    };
    let mut i = 0;
    while i < raw.len() {
        let Some(at) = find_quote_or_backslash(raw, i).filter(|&at| raw.get(at) == Some(&b'\\'))
        else {
            put(raw.get(i..).unwrap_or(&[]), o)?;
            break;
        };
        put(raw.get(i..at).unwrap_or(&[]), o)?;
        i = at;
        let e = *raw.get(i + 1).ok_or_else(|| bad(i))?;
        let simple = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => 0,
            _ => return Err(bad(i)),
        };
        if e != b'u' {
            put(&[simple], o)?;
            i += 2;
            continue;
        }
        let hi = hex4(raw.get(i + 2..).unwrap_or(&[])).ok_or_else(|| bad(i))?;
        let mut used = 6;
        let cp = if (0xD800..0xDC00).contains(&hi) {
            // High surrogate: a low surrogate escape must follow.
            if raw.get(i + 6..i + 8) != Some(b"\\u") {
                return Err(bad(i));
            }
            let lo = hex4(raw.get(i + 8..).unwrap_or(&[])).ok_or_else(|| bad(i))?;
            if !(0xDC00..0xE000).contains(&lo) {
                return Err(bad(i));
            }
            used = 12;
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        let ch = char::from_u32(cp).ok_or_else(|| bad(i))?;
        let mut enc = [0u8; 4];
        put(ch.encode_utf8(&mut enc).as_bytes(), o)?;
        i += used;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn un(raw: &str) -> Result<String, DecodeError> {
        let mut buf = [0u8; 64];
        let mut o = 0;
        unescape(raw.as_bytes(), 0, &mut buf, &mut o)?;
        Ok(String::from_utf8(buf[..o].to_vec()).unwrap())
    }

    #[test]
    fn unescapes_every_documented_escape() {
        assert_eq!(
            un(r#"a\"b\\c\/d\be\ff\ng\rh\ti"#).unwrap(),
            "a\"b\\c/d\u{8}e\u{c}f\ng\rh\ti"
        );
        assert_eq!(un(r"\u00e9\u20AC").unwrap(), "é€");
        assert_eq!(un(r"\ud83d\ude00").unwrap(), "😀");
        assert_eq!(
            un("plain, long enough for two words").unwrap(),
            "plain, long enough for two words"
        );
    }

    #[test]
    fn bad_escapes_are_errors() {
        for raw in [r"\x", r"\u12", r"\ud83d", r"\ud83dx", r"\ud83d\u0041", "\\"] {
            assert!(
                matches!(
                    un(raw),
                    Err(DecodeError::MalformedHeader {
                        what: Malformed::BadEscape,
                        ..
                    })
                ),
                "{raw}"
            );
        }
    }

    #[test]
    fn swar_search_finds_the_first_match_anywhere() {
        for len in 0..40 {
            for at in 0..len {
                for c in [b'"', b'\\'] {
                    let mut v = vec![b'a'; len];
                    v[at] = c;
                    if at + 1 < len {
                        v[at + 1] = b'"';
                    }
                    assert_eq!(
                        find_quote_or_backslash(&v, 0),
                        Some(at),
                        "len {len} at {at}"
                    );
                }
            }
            assert_eq!(find_quote_or_backslash(&vec![0xffu8; len], 0), None);
        }
    }

    #[test]
    fn object_iter_skips_nested_values_and_bounds_depth() {
        let t = r#" { "a" : [1, {"b": [true, null]}], "c":"d" } "#;
        let kv: Vec<_> = ObjectIter::new(t).unwrap().map(|r| r.unwrap().0).collect();
        assert_eq!(kv, ["a", "c"]);
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        let r: Result<Vec<_>, _> = ObjectIter::new(&deep).unwrap().collect();
        assert!(matches!(r, Err(DecodeError::NestingTooDeep { .. })));
    }
}
