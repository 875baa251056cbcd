//! The fast header scanner: compact JSON only, positions found from a map of the quotes.
//!
//! Servers and this crate write headers as compact JSON: `{"key":value,...}`, no whitespace,
//! string values without escapes, unsigned integers. In such a header every `"` opens or closes
//! a string, so the scanner finds the quotes eight bytes at a time (one word, no per-byte
//! loop) and walks them four per field: key open, key close, value open,
//! value close. Everything between them is checked at fixed places (`:` after a key, `,` or
//! `}` after a value), keys are looked up in one probe ([`super::field`]), and finding the
//! quotes of one word does not wait for the previous field, so the processor overlaps it.
//!
//! On anything else (whitespace, an escape, a literal, a nested value, a byte that is not
//! ASCII, a number that is not a plain unsigned integer of at most 19 digits, any error) it
//! gives up and the general scanner parses the header from the start: both accept exactly the
//! same headers, and errors always come from the general one.

use super::field::{Field, Packed, Slot, StrIdx, lookup_packed, lookup_short};
use super::header::{Detached, Sp};

/// The first eight bytes of a publish's header when `c` comes first.
const PUBLISH: u64 = u64::from_le_bytes(*br#"{"c":"p""#);

const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const ONES: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// High bit set in exactly the bytes of `w` equal to `c`.
#[inline(always)]
const fn eq_exact(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * c as u64);
    // A byte of `x` is zero exactly when neither its low seven bits nor its high bit are set.
    !(((x & LO7) + LO7) | x | LO7)
}

/// High bit set in the bytes of `w` equal to `c`, and possibly in bytes above the first such
/// byte (the lowest flagged byte is always a true match).
#[inline(always)]
const fn eq_first(w: u64, c: u8) -> u64 {
    let x = w ^ (ONES * c as u64);
    x.wrapping_sub(ONES) & !x & HI
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

/// The quotes of a header, found eight bytes at a time, and the bytes the fast scanner cannot
/// take (a backslash or a byte that is not ASCII) among the words loaded.
struct Quotes<'b> {
    b: &'b [u8],
    /// Position of the word `mask` covers.
    base: usize,
    /// The quotes not yet taken in the word at `base`: the high bit of each such byte.
    mask: u64,
    /// Backslashes and non-ASCII bytes in the word at `base` (the high bit of each; bytes
    /// above the first one may be flagged too).
    bad: u64,
    /// The same, of every word before it, OR-ed.
    bad_before: u64,
}

impl<'b> Quotes<'b> {
    #[inline(always)]
    fn new(b: &'b [u8]) -> Quotes<'b> {
        let mut q = Quotes {
            b,
            base: 0,
            mask: 0,
            bad: 0,
            bad_before: 0,
        };
        q.load();
        q
    }

    #[inline(always)]
    fn load(&mut self) {
        let w = word(self.b, self.base);
        self.mask = eq_exact(w, b'"');
        self.bad_before |= self.bad;
        self.bad = (eq_first(w, b'\\') | w) & HI;
    }

    /// The next quote.
    #[inline(always)]
    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.base += 8;
            if self.base >= self.b.len() {
                return None;
            }
            self.load();
        }
        let at = self.base + (self.mask.trailing_zeros() / 8) as usize;
        self.mask &= self.mask - 1;
        Some(at)
    }

    /// Whether every byte before `end` that was loaded is one the fast scanner takes
    /// (`end` is past the last quote taken).
    #[inline(always)]
    fn clean_before(&self, end: usize) -> bool {
        let n = end.saturating_sub(self.base);
        self.bad_before == 0 && self.bad & keep(!0, n) == 0
    }
}

/// The field named by the key `b[s..e]` (no quote or backslash in it), if any.
#[inline(always)]
fn key_field(b: &[u8], s: usize, e: usize) -> Option<Field> {
    let len = e.checked_sub(s)?;
    match len {
        1 => lookup_short(*b.get(s)?),
        2..=8 => lookup_packed(Packed {
            w0: keep(word(b, s), len),
            w1: 0,
            len,
        }),
        9..=16 => lookup_packed(Packed {
            w0: word(b, s),
            w1: keep(word(b, s + 8), len - 8),
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
        let mut q = Quotes::new(b);
        let mut p = 1;
        // How a delivery starts, `{"c":"p",`: one compare instead of a field.
        if word(b, 0) == PUBLISH && b.get(8) == Some(&b',') {
            let c = StrIdx::Command as usize;
            *self.strs.get_mut(c)? = Sp { start: 6, len: 1 };
            self.str_set |= 1 << c;
            q.mask = 0; // its four quotes, all in the first word
            p = 9;
        }
        loop {
            // `"key":`, the key's opening quote right where the previous value ended.
            if q.next()? != p {
                return None;
            }
            let ke = q.next()?;
            if b.get(ke + 1) != Some(&b':') {
                return None;
            }
            let field = key_field(b, p + 1, ke);
            let v = ke + 2;
            let end = match *b.get(v)? {
                b'"' => {
                    if q.next()? != v {
                        return None;
                    }
                    let e = q.next()?;
                    if let Some(f) = field {
                        self.fast_str(f, b, v + 1, e)?;
                    }
                    e + 1
                }
                b'0'..=b'9' => {
                    let (n, e) = digits(b, v)?;
                    if let Some(f) = field {
                        self.fast_num(f, n, v, e)?;
                    }
                    e
                }
                _ => return None,
            };
            match b.get(end) {
                Some(b',') => p = end + 1,
                Some(b'}') => {
                    // Bytes past the last loaded piece were all checked one by one above.
                    let end = end + 1;
                    return q.clean_before(end).then_some(end);
                }
                _ => return None,
            }
        }
    }

    /// A string value `b[s..e]` (no escapes) for `f`.
    #[inline(always)]
    fn fast_str(&mut self, f: Field, b: &[u8], s: usize, e: usize) -> Option<()> {
        match f.slot() {
            Slot::Str(i) => {
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
            Slot::Int(i) => {
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
            }
            Slot::Bool(_) => None,
        }
    }

    /// A number `n`, written as `b[s..e]`, for `f`.
    #[inline(always)]
    fn fast_num(&mut self, f: Field, n: u64, s: usize, e: usize) -> Option<()> {
        match f.slot() {
            Slot::Str(i) => {
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
            Slot::Int(i) => {
                let bit = 1u16 << i;
                if self.int_set & bit == 0 {
                    *self.ints.get_mut(usize::from(i))? = n;
                    self.int_set |= bit;
                }
                Some(())
            }
            Slot::Bool(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_found_exactly() {
        let b = br#"{"a":"x","bb":12,"c":"yyyyyyyyyyyyyyyyyyyy"}"#;
        let mut q = Quotes::new(b);
        let mut got = [0usize; 10];
        for g in &mut got {
            *g = q.next().unwrap();
        }
        let want: [usize; 10] = core::array::from_fn(|k| {
            b.iter()
                .enumerate()
                .filter(|(_, c)| **c == b'"')
                .nth(k)
                .unwrap()
                .0
        });
        assert_eq!(got, want);
        assert_eq!(q.next(), None);
        assert!(q.clean_before(b.len()));
    }

    #[test]
    fn words_past_the_end_are_zero_padded() {
        let b = b"0123456789";
        assert_eq!(word(b, 4), u64::from_le_bytes(*b"456789\0\0"));
        assert_eq!(word(b, 9), u64::from(b'9'));
        assert_eq!(word(b, 10), 0);
        assert_eq!(word(b"abc", 1), u64::from_le_bytes(*b"bc\0\0\0\0\0\0"));
    }

    #[test]
    fn backslashes_and_high_bytes_before_the_end_are_seen() {
        // `quote` is the last quote taken; `end` lies past it, as in the scanner.
        let check = |quote: usize, bad: usize, high: bool| {
            let mut b = [b'a'; 40];
            b[quote] = b'"';
            b[bad] = if high { 0xc3 } else { b'\\' };
            let mut q = Quotes::new(&b);
            assert_eq!(q.next(), Some(quote));
            for end in quote + 1..b.len() {
                assert_eq!(
                    q.clean_before(end),
                    end <= bad,
                    "{quote} {bad} {high} {end}"
                );
            }
        };
        for (quote, bad) in [(20, 21), (20, 23), (28, 30), (20, 3), (5, 39), (0, 1)] {
            if bad > quote {
                check(quote, bad, false);
                check(quote, bad, true);
            } else {
                let mut b = [b'a'; 40];
                b[quote] = b'"';
                b[bad] = b'\\';
                let mut q = Quotes::new(&b);
                assert_eq!(q.next(), Some(quote));
                assert!(!q.clean_before(quote + 1));
            }
        }
    }
}
