//! Scanning a header into a [`Detached`] (docs/protocol.md, sections 1.2, 1.3 and 2).
//!
//! Two scanners fill the same positions. The fast one handles the form servers and this crate
//! write, compact JSON: `{"key":value,...}` with no whitespace, string values without escapes,
//! unsigned integers; it reads keys eight bytes at a time and finds their field with one hash
//! probe ([`super::field`]). On anything else (whitespace, an escape, a literal, a nested value,
//! a non-ASCII string, any error) it gives up and the general scanner parses the header again
//! from the start, so both accept exactly the same headers and report the same errors. The
//! fast scanner is built on 64-bit targets only, where its words are registers: on a 32-bit
//! microcontroller it would add about 3 KB of code (thumbv7em, opt-level "s"), so the general
//! one serves alone there.

use super::error::{DecodeError, Malformed};
use super::field::{Field, Slot, lookup};
use super::header::{Detached, Sp};
use super::json::{Cursor, KeyPos, Scratch, Span, unescape};
use super::types::CommandKind;

impl Detached {
    /// Parse the header at the start of `frame` into `self`, in place (no copy of the
    /// positions); returns the header text (bytes the scan proved to be UTF-8), the decoded
    /// escapes and the header length. See [`Header::parse`]. On error `self` holds no fields.
    #[inline]
    pub(crate) fn parse_into<'a>(
        &mut self,
        frame: &'a [u8],
        scratch: &mut Scratch<'a>,
    ) -> Result<(&'a [u8], &'a str, usize), DecodeError> {
        // Accessors consult the presence masks first, so stale positions need no clearing.
        self.clear();
        #[cfg(target_pointer_width = "64")]
        {
            if let Some(end) = self.scan_fast(frame) {
                let raw = frame.get(..end).unwrap_or(&[]);
                if self.command.is_none() {
                    self.command = self.command_of(raw);
                }
                return Ok((raw, "", end));
            }
            // Anything the fast path does not handle: the general scanner, from the start.
            self.clear();
        }
        self.parse_general(frame, scratch)
    }

    #[inline(always)]
    fn clear(&mut self) {
        self.command = None;
        self.str_set = 0;
        self.str_esc = 0;
        self.int_set = 0;
        self.bools = 0;
        self.bool_set = 0;
    }

    /// The command named by `c` in `raw` (a header without escapes in `c`).
    #[cfg(target_pointer_width = "64")]
    #[inline(always)]
    fn command_of(&self, raw: &[u8]) -> Option<CommandKind> {
        use super::field::StrIdx;
        let bit = 1u32 << StrIdx::Command as u32;
        if self.str_set & bit == 0 || self.str_esc & bit != 0 {
            return None;
        }
        let Sp { start, len } = *self.strs.get(StrIdx::Command as usize)?;
        let (start, len) = (start as usize, len as usize);
        match raw.get(start..start + len)? {
            b"p" => Some(CommandKind::Publish), // nearly every message a subscriber gets
            c => CommandKind::from_wire(c),
        }
    }

    /// The general scanner: any whitespace, escapes, literals, nested values.
    #[inline(never)]
    fn parse_general<'a>(
        &mut self,
        frame: &'a [u8],
        scratch: &mut Scratch<'a>,
    ) -> Result<(&'a [u8], &'a str, usize), DecodeError> {
        let mut un = Unescaped {
            scratch,
            buf: None,
            used: 0,
        };
        let r = self.scan(frame, &mut un);
        // Give the scratch back whatever happened; keep only what a successful parse used.
        let esc = match un.buf {
            Some(buf) => {
                let keep = if r.is_ok() { un.used } else { 0 };
                let (used, tail) = buf.split_at_mut(keep);
                un.scratch.give_back(tail);
                Some(used)
            }
            None => None,
        };
        let texts = r.and_then(|end| {
            let esc = match esc {
                Some(used) => core::str::from_utf8(used).map_err(|e| DecodeError::InvalidUtf8 {
                    offset: e.valid_up_to(),
                })?,
                None => "",
            };
            // The scan validated the text (see `Text`): no second pass over it.
            Ok((frame.get(..end).unwrap_or(&[]), esc, end))
        });
        let (raw, esc, end) = match texts {
            Ok(t) => t,
            Err(e) => {
                self.str_set = 0;
                self.int_set = 0;
                self.bool_set = 0;
                return Err(e);
            }
        };
        let command = self
            .view(raw, esc)
            .command_bytes()
            .and_then(CommandKind::from_wire);
        self.command = command;
        Ok((raw, esc, end))
    }

    /// Scan the object, storing known fields; returns the header length.
    #[inline]
    fn scan<'a>(
        &mut self,
        frame: &'a [u8],
        un: &mut Unescaped<'_, 'a>,
    ) -> Result<usize, DecodeError> {
        if frame.len() > u32::MAX as usize {
            return Err(DecodeError::FrameTooLarge {
                len: u32::MAX,
                max: u32::MAX,
            });
        }
        let mut cur = Cursor::new(frame, 0);
        cur.expect(b'{', Malformed::NotAnObject)?;
        let mut pos = KeyPos::First;
        while let Some((key, _)) = cur.next_key(pos)? {
            pos = KeyPos::AfterValue;
            let field = lookup(frame.get(key).unwrap_or(&[]));
            let at = cur.pos();
            let v = cur.value()?;
            if let Some(field) = field {
                self.store(field, v, at, frame, un)?;
            }
        }
        Ok(cur.pos())
    }

    #[inline]
    fn store<'a>(
        &mut self,
        field: Field,
        v: Span,
        at: usize,
        frame: &'a [u8],
        un: &mut Unescaped<'_, 'a>,
    ) -> Result<(), DecodeError> {
        let bytes = |r: core::ops::Range<usize>| frame.get(r).unwrap_or(&[]);
        let sp = |r: core::ops::Range<usize>| Sp {
            start: r.start as u32,
            len: (r.end - r.start) as u32,
        };
        match field.slot() {
            Slot::Str(i) => {
                let bit = 1u32 << i;
                if self.str_set & bit != 0 {
                    return Ok(()); // first occurrence wins (docs/protocol.md, section 1.2)
                }
                let place = match v {
                    Span::Str(r, false) | Span::Num(r) => sp(r),
                    Span::Str(r, true) => {
                        let scratch = &mut *un.scratch;
                        let buf = un.buf.get_or_insert_with(|| scratch.take_all());
                        let start = un.used;
                        unescape(bytes(r.clone()), r.start, buf, &mut un.used)?;
                        self.str_esc |= bit;
                        Sp {
                            start: start as u32,
                            len: (un.used - start) as u32,
                        }
                    }
                    Span::Bool(b) => sp(at..at + if b { 4 } else { 5 }),
                    Span::Null => return Ok(()),
                    Span::Nested(_) => return Err(DecodeError::WrongType { field }),
                };
                // Indices come from `Field::slot`, always below the table sizes.
                if let Some(slot) = self.strs.get_mut(usize::from(i)) {
                    *slot = place;
                    self.str_set |= bit;
                }
            }
            Slot::Int(i) => {
                let bit = 1u16 << i;
                if self.int_set & bit != 0 {
                    return Ok(());
                }
                let n = match v {
                    Span::Num(r) => parse_u64(bytes(r), field)?,
                    Span::Str(r, false) => parse_u64(trim_ascii(bytes(r)), field)?,
                    Span::Null => return Ok(()),
                    _ => return Err(DecodeError::WrongType { field }),
                };
                if let Some(slot) = self.ints.get_mut(usize::from(i)) {
                    *slot = n;
                    self.int_set |= bit;
                }
            }
            Slot::Bool(i) => {
                let bit = 1u8 << i;
                if self.bool_set & bit != 0 {
                    return Ok(());
                }
                let b = match v {
                    Span::Bool(b) => b,
                    Span::Str(r, false) if bytes(r.clone()).eq_ignore_ascii_case(b"true") => true,
                    Span::Str(r, false) if bytes(r.clone()).eq_ignore_ascii_case(b"false") => false,
                    Span::Num(r) if bytes(r.clone()) == b"1" => true,
                    Span::Num(r) if bytes(r.clone()) == b"0" => false,
                    Span::Null => return Ok(()),
                    _ => return Err(DecodeError::WrongType { field }),
                };
                if b {
                    self.bools |= bit;
                }
                self.bool_set |= bit;
            }
        }
        Ok(())
    }
}

/// Parse an unsigned decimal exactly (docs/protocol.md, section 1.3: never through a double).
#[inline]
fn parse_u64(b: &[u8], field: Field) -> Result<u64, DecodeError> {
    if b.is_empty() || b.len() > 20 {
        return Err(if b.len() > 20 && b.iter().all(u8::is_ascii_digit) {
            DecodeError::NumberOutOfRange { field }
        } else {
            DecodeError::WrongType { field }
        });
    }
    let mut v: u64 = 0;
    for &d in b {
        if !d.is_ascii_digit() {
            return Err(DecodeError::WrongType { field });
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or(DecodeError::NumberOutOfRange { field })?;
    }
    Ok(v)
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Where escaped strings are decoded: the scratch is taken whole on the first escape and its
/// unused tail given back after the parse.
struct Unescaped<'s, 'a> {
    scratch: &'s mut Scratch<'a>,
    buf: Option<&'a mut [u8]>,
    used: usize,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn compact(d: &Detached) -> alloc::vec::Vec<u8> {
        let mut v = alloc::vec::Vec::new();
        d.compact(|b| v.extend_from_slice(b));
        v
    }

    /// A byte after a backslash is skipped by the string scan, but a non-ASCII one still makes
    /// the header be checked as UTF-8, even in a value the parse ignores (a second `t`): found by
    /// the header fuzzer, whose check that an accepted header is text this broke.
    #[test]
    fn an_escaped_non_ascii_byte_is_still_checked_as_utf8() {
        for frame in [
            &b"{\"c\":\"p\",\"t\":\"a\",\"t\":\"\\\xe5x\"}"[..],
            &b"{\"c\":\"p\",\"zz\":\"\\\xff\"}"[..],
        ] {
            let mut d = Detached::EMPTY;
            let r = d.parse_into(frame, &mut Scratch::empty());
            assert!(
                matches!(r, Err(DecodeError::InvalidUtf8 { .. })),
                "{r:?}: {frame:?}"
            );
        }
        // A valid character after a backslash is not a UTF-8 error (the escape is only
        // checked when the value is decoded).
        let mut d = Detached::EMPTY;
        let ok = "{\"c\":\"p\",\"zz\":\"\\é\"}";
        assert!(d.parse_into(ok.as_bytes(), &mut Scratch::empty()).is_ok());
    }

    /// Whatever the fast scanner accepts, the general one accepts with the same length, fields
    /// and command.
    fn agree(frame: &[u8]) {
        let mut fast = Detached::EMPTY;
        let Some(end) = fast.scan_fast(frame) else {
            return;
        };
        let mut general = Detached::EMPTY;
        let (raw, esc, gend) = general
            .parse_general(frame, &mut Scratch::empty())
            .unwrap_or_else(|e| panic!("fast accepted, general refused ({e:?}): {frame:?}"));
        assert_eq!(end, gend, "{frame:?}");
        assert_eq!(raw.len(), end);
        assert_eq!(esc, "");
        assert_eq!(compact(&fast), compact(&general), "{frame:?}");
        let command = fast.command.or_else(|| fast.command_of(raw));
        assert_eq!(command, general.command, "{frame:?}");
    }

    #[test]
    fn fast_and_general_agree_on_known_shapes() {
        for f in [
            &br#"{"c":"p","t":"orders","sub_id":"sub-1"}{"id":1}"#[..],
            br#"{"c":"p","t":"orders","sub_id":"2","k":"16666569833721932681","bm":"3084015820777091662|1|","l":21}{"id":"A1","qty":100}"#,
            br#"{"sub_id":"2","bm":"3084015820777091662|1|","t":"orders","c":"p","l":21,"k":"16666569833721932681"}"#,
            br#"{"c":"p","t":"a","t":"b","l":"7","l":8,"x":12}"#,
            br#"{"c":"p"}"#,
            br#"{"c":"p","s":99999999999999999999}"#,
            br#"{"c":"p","s":9999999999999999999}"#,
            br#"{"records_returned":5,"topic_matches":"6"}"#,
            br#"{"c":"ack","status":"success","a":"processed"}"#,
            // One-byte keys that are not plain: a quote, a backslash, a byte that is not ASCII.
            br#"{""":1}"#,
            br#"{"\":1}"#,
            br#"{"\"":1}"#,
            "{\"é\":1}".as_bytes(),
            b"{\"\xff\":1}",
            br#"{"":1,"t":"x"}"#,
        ] {
            agree(f);
        }
        // The shapes servers send are taken by the fast scanner (not left to the general one).
        for f in [
            &br#"{"c":"p","t":"orders","sub_id":"sub-1"}{"id":1}"#[..],
            br#"{"c":"p","t":"orders","sub_id":"2","k":"16666569833721932681","bm":"3084015820777091662|1|","l":21}{"id":"A1","qty":100}"#,
            br#"{"c":"p","cid":"cmd-1","t":"orders","sub_id":"sub-1","query_id":"qry-1","o":"replace","f":"/id > 10","lp":"2026-01-01T00:00:00.000000Z"}{"id":1}"#,
            br#"{"sub_id":"2","bm":"3084015820777091662|1|","t":"orders","c":"p","l":21,"k":"16666569833721932681"}{"id":"A1","qty":100}"#,
            br#"{"c":"ack","cid":"7","a":"processed","status":"success","records_returned":0}"#,
        ] {
            let hl = f.iter().position(|&c| c == b'}').unwrap() + 1;
            let mut d = Detached::EMPTY;
            assert_eq!(d.scan_fast(f), Some(hl), "{f:?}");
        }
        let mut fast = Detached::EMPTY;
        assert!(fast.scan_fast(br#"{"c":"p","t":"\u0041"}"#).is_none());
        assert!(fast.scan_fast(br#"{"c":"p", "t":"a"}"#).is_none());
        assert!(
            fast.scan_fast("{\"c\":\"p\",\"t\":\"é\"}".as_bytes())
                .is_none()
        );
        assert_eq!(fast.scan_fast(br#"{"c":"p","t":"x"}\"#), Some(17));
    }

    /// Pieces headers are built from: compact and not, plain and escaped, in range and not.
    fn piece() -> impl Strategy<Value = alloc::string::String> {
        let key = prop_oneof![
            prop::sample::select(alloc::vec![
                "c",
                "t",
                "sub_id",
                "k",
                "bm",
                "l",
                "s",
                "cid",
                "query_id",
                "o",
                "f",
                "lp",
                "records_returned",
                "send_keys",
                "status",
                "a",
                "command",
                "zz",
                "",
            ])
            .prop_map(alloc::string::String::from),
            "[a-z_\"\\\\é]{0,18}",
        ];
        let value = prop_oneof![
            "\"[ -~é]{0,24}\"",
            "\"[0-9 ]{0,22}\"",
            "-?[0-9]{1,22}(\\.[0-9])?",
            prop::sample::select(alloc::vec!["true", "false", "null", "{}", "[1]", "\"p\""])
                .prop_map(alloc::string::String::from),
        ];
        (
            key,
            value,
            prop::sample::select(alloc::vec!["", "", "", " "]),
        )
            .prop_map(|(k, v, ws)| alloc::format!("\"{k}\":{ws}{v}"))
    }

    proptest! {
        #[test]
        fn fast_and_general_agree(
            pieces in prop::collection::vec(piece(), 0..9),
            tail in "[ -~]{0,20}",
            cut in 0usize..200,
        ) {
            let text = alloc::format!("{{{}}}{tail}", pieces.join(","));
            agree(text.as_bytes());
            // Any prefix: the fast scanner never reads past the end nor panics.
            let cut = cut.min(text.len());
            agree(text.as_bytes().get(..cut).unwrap_or(&[]));
        }

        #[test]
        fn fast_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
            agree(&bytes);
        }
    }
}
