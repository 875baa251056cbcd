//! The fast header scanner: compact JSON only, each string crossed eight bytes at a time.
//!
//! Servers and this crate write headers as compact JSON: `{"key":value,...}`, no whitespace,
//! string values without escapes, unsigned integers. The scanner walks such a header field by
//! field. A one-byte key (`"t":`, most of a delivery's) is recognised with one compare of the
//! word at the field and one table; any other key, and every string value, is crossed eight
//! bytes at a time up to its first quote, backslash or non-ASCII byte (one word, no per-byte
//! loop), which must be the closing quote. Everything between the strings is checked at fixed
//! places (`:` after a key, `,` or `}` after a value), other keys are looked up with one probe
//! ([`super::field`]), and `{"c":"p",` is read with one compare. Every byte of an accepted
//! header has been looked at, so it is ASCII.
//!
//! On anything else (whitespace, an escape, a literal, a nested value, a byte that is not
//! ASCII, a number that is not a plain unsigned integer of at most 19 digits, any error) it
//! gives up and the general scanner parses the header from the start: both accept exactly the
//! same headers, and errors always come from the general one.

use super::field::{Field, Packed, Slot, StrIdx, lookup_packed};
use super::header::{Detached, Sp};
use super::types::CommandKind;

/// The first eight bytes of a publish's header when `c` comes first.
const PUBLISH: u64 = u64::from_le_bytes(*br#"{"c":"p""#);

/// `"k":` with any `k`: the bytes [`ONE_BYTE_KEY_MASK`] keeps of a word starting with a
/// one-byte key.
const ONE_BYTE_KEY: u64 = u64::from_le_bytes(*b"\"\0\":\0\0\0\0");
const ONE_BYTE_KEY_MASK: u64 = 0xff_ff_00_ff;

const ONES: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Where the scanner puts a field, in one byte: a string's index (below [`INT`]), an
/// integer's index plus [`INT`], [`BOOL`] for a boolean (left to the general scanner) or
/// [`SKIP`] for a key the table does not know.
type Code = u8;
const INT: Code = 32;
const BOOL: Code = 0xfe;
const SKIP: Code = 0xff;

const fn code_of(f: Field) -> Code {
    match f.slot() {
        Slot::Str(i) => i,
        Slot::Int(i) => INT + i,
        Slot::Bool(_) => BOOL,
    }
}

/// The code of every field, by its discriminant.
static CODES: [Code; Field::ALL.len()] = build_codes();

/// The code of the field named by a one-byte key, by that byte ([`SKIP`] if none).
static SHORT_CODES: [Code; 256] = build_short_codes();

// Indices are below the tables' lengths: positions in `Field::ALL` (as long as the table)
// and bytes (< 256).
#[allow(clippy::indexing_slicing)]
const fn build_codes() -> [Code; Field::ALL.len()] {
    let mut t = [SKIP; Field::ALL.len()];
    let mut i = 0;
    while i < t.len() {
        // `Field::ALL` lists the fields in discriminant order (checked by a test).
        t[i] = code_of(Field::ALL[i]);
        i += 1;
    }
    t
}

#[allow(clippy::indexing_slicing)]
const fn build_short_codes() -> [Code; 256] {
    let mut t = [SKIP; 256];
    let mut i = 0;
    while i < Field::ALL.len() {
        let f = Field::ALL[i];
        let aliases = f.aliases();
        let mut j = 0;
        while j <= aliases.len() {
            let key = if j == 0 { f.wire_key() } else { aliases[j - 1] };
            if key.len() == 1 {
                t[key.as_bytes()[0] as usize] = code_of(f);
            }
            j += 1;
        }
        i += 1;
    }
    t
}

/// The code of the one-byte key `k`.
#[inline(always)]
fn short_code(k: u8) -> Code {
    SHORT_CODES.get(usize::from(k)).copied().unwrap_or(SKIP)
}

/// The code of `f` (or [`SKIP`]).
#[inline(always)]
fn code(f: Option<Field>) -> Code {
    match f {
        Some(f) => CODES.get(f as usize).copied().unwrap_or(SKIP),
        None => SKIP,
    }
}

/// Eight bytes at `i`, little-endian; zero-padded past the end of `b`.
#[inline(always)]
fn word(b: &[u8], i: usize) -> u64 {
    match b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        Some(w) => u64::from_le_bytes(*w),
        None => word_at_end(b, i),
    }
}

/// [`word`] near the end: the last eight bytes, shifted down (or a padded copy when `b` is
/// shorter than a word).
#[inline(always)]
fn word_at_end(b: &[u8], i: usize) -> u64 {
    if i >= b.len() {
        return 0;
    }
    match b.last_chunk::<8>() {
        // `b.len() - 8 < i < b.len()`: the shift is 8 to 56 bits.
        Some(w) => u64::from_le_bytes(*w) >> (8 * (i + 8 - b.len())),
        None => short_word(b, i),
    }
}

#[cold]
fn short_word(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    for (d, s) in w.iter_mut().zip(b.get(i..).unwrap_or(&[])) {
        *d = *s;
    }
    u64::from_le_bytes(w)
}

/// `w` cut to its low `n` bytes (`n` ≤ 8).
#[inline(always)]
const fn keep(w: u64, n: usize) -> u64 {
    if n >= 8 {
        w
    } else {
        w & ((1u64 << (8 * n)) - 1)
    }
}

/// High bit set in the first byte of `w` that is a quote, a backslash or not ASCII, and
/// possibly in bytes above it; zero if there is none.
///
/// `(x - 1) & !x` has its high bit set in a byte that is zero, and can set it in the bytes
/// above one (the borrow), never below: the lowest flagged byte is always a true one.
#[inline(always)]
const fn specials(w: u64) -> u64 {
    let q = w ^ (ONES * b'"' as u64);
    let s = w ^ (ONES * b'\\' as u64);
    ((q.wrapping_sub(ONES) & !q) | (s.wrapping_sub(ONES) & !s) | w) & HI
}

/// The place in `w` of the lowest byte `m` flags (`m` ≠ 0) and that byte. A word's padding
/// past the end of the text is zero, which is never flagged: the byte is one of the text.
#[inline(always)]
const fn first(w: u64, m: u64) -> (usize, u8) {
    let bit = m.trailing_zeros() & !7;
    ((bit / 8) as usize, (w >> bit) as u8)
}

/// Where the string whose text starts at `i` ends: the position of its closing quote, if it
/// comes before any backslash, any byte that is not ASCII and the end of `b`.
#[inline(always)]
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    // Whole words first (no bounds check per word), then the last bytes, zero-padded.
    let (words, _) = b.get(i..)?.as_chunks::<8>();
    let mut at = i;
    for w in words {
        let w = u64::from_le_bytes(*w);
        let m = specials(w);
        if m != 0 {
            let (k, c) = first(w, m);
            return (c == b'"').then_some(at + k);
        }
        at += 8;
    }
    let w = word(b, at);
    let m = specials(w);
    if m != 0 {
        let (k, c) = first(w, m);
        return (c == b'"').then_some(at + k);
    }
    None
}

/// The key whose opening quote is at `p` (`w` is the word there): the field it names (if
/// any) and the position of its closing quote. `None` if the key is not a plain ASCII string.
#[inline(always)]
fn key_at(b: &[u8], p: usize, w: u64) -> Option<(Code, usize)> {
    // The key's first seven bytes, from the word already loaded (the top byte is zero).
    let k = w >> 8;
    let m = specials(k);
    if m == 0 {
        // Seven bytes or more.
        let ke = string_end(b, p + 8)?;
        return Some((code(key_field(b, p + 1, ke)), ke));
    }
    let (len, c) = first(k, m);
    let ke = p + 1 + len;
    if c != b'"' {
        return None;
    }
    let code = match len {
        0 => SKIP,
        1 => short_code(k as u8),
        _ => code(lookup_packed(Packed {
            w0: keep(k, len),
            w1: 0,
            len,
        })),
    };
    Some((code, ke))
}

/// The field named by the key `b[s..e]` (seven bytes or more, no quote, backslash or
/// non-ASCII byte in it), if any.
#[inline(always)]
fn key_field(b: &[u8], s: usize, e: usize) -> Option<Field> {
    let len = e.checked_sub(s)?;
    match len {
        1..=16 => lookup_packed(Packed {
            w0: keep(word(b, s), len),
            w1: if len > 8 {
                keep(word(b, s + 8), len - 8)
            } else {
                0
            },
            len,
        }),
        _ => None,
    }
}

/// An unsigned decimal of at most 19 digits (which cannot overflow) at `b[i..]`: the value and
/// where the digits end. `None` if there is no digit or more than 19.
#[inline(always)]
pub(super) fn digits(b: &[u8], mut i: usize) -> Option<(u64, usize)> {
    let start = i;
    let mut v = 0u64;
    while let Some(&c) = b.get(i) {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        if i - start == 19 {
            return None; // a 20th digit: the general scanner checks the range
        }
        v = v * 10 + u64::from(d);
        i += 1;
    }
    (i > start).then_some((v, i))
}

impl Detached {
    /// The fast scanner (see the module docs): the header length, or `None` to use the general
    /// scanner. Stores what it finds as it goes; the caller clears it before falling back.
    #[inline(always)]
    pub(super) fn scan_fast(&mut self, b: &[u8]) -> Option<usize> {
        if b.first() != Some(&b'{') || b.len() > u32::MAX as usize {
            return None;
        }
        let mut p = 1;
        // How a delivery starts, `{"c":"p",`: one compare instead of a field.
        if word(b, 0) == PUBLISH && b.get(8) == Some(&b',') {
            let c = StrIdx::Command as usize;
            *self.strs.get_mut(c)? = Sp { start: 6, len: 1 };
            self.str_set |= 1 << c;
            self.command = Some(CommandKind::Publish);
            p = 9;
        }
        loop {
            // `"key":`, the key's opening quote right where the previous value ended.
            let w = word(b, p);
            // `"k":` with a known one-byte key (most of a delivery's): one compare, one table.
            let short = if w & ONE_BYTE_KEY_MASK == ONE_BYTE_KEY {
                short_code((w >> 8) as u8)
            } else {
                SKIP
            };
            let (code, v) = if short != SKIP {
                (short, p + 4)
            } else {
                if w as u8 != b'"' {
                    return None;
                }
                let (code, ke) = key_at(b, p, w)?;
                if b.get(ke + 1) != Some(&b':') {
                    return None;
                }
                (code, ke + 2)
            };
            let end = match *b.get(v)? {
                b'"' => {
                    let e = string_end(b, v + 1)?;
                    self.fast_str(code, b, v + 1, e)?;
                    e + 1
                }
                b'0'..=b'9' => {
                    let (n, e) = digits(b, v)?;
                    self.fast_num(code, n, v, e)?;
                    e
                }
                _ => return None,
            };
            match b.get(end) {
                Some(b',') => p = end + 1,
                // Every byte up to here was checked: the header is ASCII.
                Some(b'}') => return Some(end + 1),
                _ => return None,
            }
        }
    }

    /// A string value `b[s..e]` (no escapes) for the field of `code`.
    #[inline(always)]
    fn fast_str(&mut self, code: Code, b: &[u8], s: usize, e: usize) -> Option<()> {
        if code < INT {
            self.fast_put(code, s, e)
        } else if code == SKIP {
            Some(())
        } else if code < BOOL {
            let i = code - INT;
            let bit = 1u16 << i;
            if self.int_set & bit == 0 {
                // Digits only (the general scanner handles spaces and errors).
                let (n, end) = digits(b, s)?;
                if end != e {
                    return None;
                }
                *self.ints.get_mut(usize::from(i))? = n;
                self.int_set |= bit;
            }
            Some(())
        } else {
            None
        }
    }

    /// A number `n`, written as `b[s..e]`, for the field of `code`.
    #[inline(always)]
    fn fast_num(&mut self, code: Code, n: u64, s: usize, e: usize) -> Option<()> {
        if code < INT {
            self.fast_put(code, s, e)
        } else if code == SKIP {
            Some(())
        } else if code < BOOL {
            let i = code - INT;
            let bit = 1u16 << i;
            if self.int_set & bit == 0 {
                *self.ints.get_mut(usize::from(i))? = n;
                self.int_set |= bit;
            }
            Some(())
        } else {
            None
        }
    }

    /// String field `i` at `s..e`, unless an earlier occurrence was stored.
    #[inline(always)]
    fn fast_put(&mut self, i: Code, s: usize, e: usize) -> Option<()> {
        let bit = 1u32 << i;
        if self.str_set & bit == 0 {
            *self.strs.get_mut(usize::from(i))? = Sp {
                start: s as u32,
                len: (e - s) as u32,
            };
            self.str_set |= bit;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::field::lookup_short;

    /// The reference for [`specials`]: the first quote, backslash or non-ASCII byte.
    fn first_special(b: &[u8]) -> Option<usize> {
        b.iter().position(|&c| c == b'"' || c == b'\\' || c >= 0x80)
    }

    #[test]
    fn the_first_special_byte_is_found_exactly() {
        let bytes = [
            b'a', b'"', b'\\', 0xc3, 0x80, 0xff, 0x7f, 0x00, 0x21, 0x23, 0x5b, 0x5d,
        ];
        // Every word of two chosen bytes over a background, in every pair of places.
        for &x in &bytes {
            for &y in &bytes {
                for i in 0..8 {
                    for j in 0..8 {
                        let mut w = [b'a'; 8];
                        w[i] = x;
                        w[j] = y;
                        let m = specials(u64::from_le_bytes(w));
                        let got = (m != 0).then(|| (m.trailing_zeros() / 8) as usize);
                        assert_eq!(got, first_special(&w), "{w:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn strings_end_at_their_quote_and_only_there() {
        let b = br#"{"a":"x","bbbbbbbbbbb":12,"c":"yyyyyyyyyyyyyyyyyyyy"}"#;
        for s in 0..b.len() {
            let want = first_special(&b[s..])
                .map(|k| s + k)
                .filter(|&k| b[k] == b'"');
            assert_eq!(string_end(b, s), want, "{s}");
        }
        // A backslash, a non-ASCII byte or the end before the quote: not a plain string.
        assert_eq!(string_end(br#"ab\"c""#, 0), None);
        assert_eq!(string_end("abé\"".as_bytes(), 0), None);
        assert_eq!(string_end(b"abcdefghijklmnop", 0), None);
        assert_eq!(string_end(b"", 0), None);
    }

    #[test]
    fn keys_of_every_length_are_found() {
        for (text, field, ke) in [
            (&br#""c":"p""#[..], Some(Field::Command), 2),
            (br#""sub_id":"1""#, Some(Field::SubId), 7),
            (br#""orderby":"1""#, Some(Field::OrderBy), 8),
            (br#""query_id":"1""#, Some(Field::QueryId), 9),
            (br#""records_returned":1"#, Some(Field::RecordsReturned), 17),
            (br#""records_returnedx":1"#, None, 18),
            (br#""":1"#, None, 1),
            (br#""zz":1"#, None, 3),
        ] {
            let (c, e) = key_at(text, 0, word(text, 0)).unwrap();
            assert_eq!((c, e), (code(field), ke), "{text:?}");
        }
        for text in [&br#""a\"":1"#[..], br#""abcdefghi"#, "\"é\":1".as_bytes()] {
            assert!(key_at(text, 0, word(text, 0)).is_none(), "{text:?}");
        }
    }

    #[test]
    fn codes_say_where_each_field_goes() {
        for (i, &f) in Field::ALL.iter().enumerate() {
            assert_eq!(f as usize, i, "{f:?}");
            let want = match f.slot() {
                Slot::Str(i) => i,
                Slot::Int(i) => INT + i,
                Slot::Bool(_) => BOOL,
            };
            assert_eq!(code(Some(f)), want, "{f:?}");
        }
        assert_eq!(code(None), SKIP);
        for k in 0..=255u8 {
            assert_eq!(short_code(k), code(lookup_short(k)), "{k}");
        }
        assert_eq!(short_code(b't'), code(Some(Field::Topic)));
    }

    #[test]
    fn words_past_the_end_are_zero_padded() {
        let b = b"0123456789";
        assert_eq!(word(b, 4), u64::from_le_bytes(*b"456789\0\0"));
        assert_eq!(word(b, 9), u64::from(b'9'));
        assert_eq!(word(b, 10), 0);
        assert_eq!(word(b"abc", 1), u64::from_le_bytes(*b"bc\0\0\0\0\0\0"));
    }
}
