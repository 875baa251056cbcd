//! Tokens of the filter language (docs/protocol.md §13.1).

use super::FilterError;
use super::path::JsonPath;

/// What a token is.
#[derive(Debug, Clone)]
pub(crate) enum Tok {
    /// An identifier (`/a/b`, `[/x y]`).
    Path(JsonPath),
    /// Integer literal (signed 64-bit, larger ones unsigned; §13.1).
    Int(i128),
    /// Float literal (with `.` or an exponent).
    Float(f64),
    /// String literal after escape processing (or raw).
    Str(String),
    /// A bare word: keyword or function name (checked by the parser).
    Word,
    LParen,
    RParen,
    Comma,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    /// End of input.
    End,
}

/// A token with its place in the source.
#[derive(Debug, Clone)]
pub(crate) struct Token<'s> {
    pub(crate) tok: Tok,
    /// Byte offset of the first byte.
    pub(crate) offset: usize,
    /// The source text of the token (empty for `End`).
    pub(crate) text: &'s str,
}

impl Token<'_> {
    /// True for a word equal to `kw`, ignoring ASCII case (keywords are case-insensitive).
    pub(crate) fn is_kw(&self, kw: &str) -> bool {
        matches!(self.tok, Tok::Word) && self.text.eq_ignore_ascii_case(kw)
    }

    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self.tok {
            Tok::End => "end of filter".to_string(),
            _ => format!("`{}`", self.text),
        }
    }
}

/// Split `src` into tokens, ending with `Tok::End`.
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token<'_>>, FilterError> {
    let bytes = src.as_bytes();
    let mut out: Vec<Token<'_>> = Vec::new();
    let mut pos = 0;
    loop {
        while bytes.get(pos).is_some_and(u8::is_ascii_whitespace) {
            pos += 1;
        }
        let start = pos;
        let Some(&b) = bytes.get(pos) else {
            out.push(Token {
                tok: Tok::End,
                offset: src.len(),
                text: "",
            });
            return Ok(out);
        };
        // After an operand a `/` can only be division, which lets `10/2` work; elsewhere a `/`
        // followed by a name starts a path, so division needs spaces (§13.1).
        let after_operand = out.last().is_some_and(|t| {
            matches!(
                t.tok,
                Tok::Path(_) | Tok::Int(_) | Tok::Float(_) | Tok::Str(_) | Tok::RParen
            )
        });
        let next = bytes.get(pos + 1).copied();
        let (tok, end) = match b {
            b'/' if !after_operand && next.is_some_and(starts_segment) => path(src, pos)?,
            b'[' => path(src, pos)?,
            b'\'' | b'"' => string(src, pos)?,
            b'r' | b'R' if matches!(next, Some(b'\'' | b'"')) => raw_string(src, pos + 1)?,
            b'0'..=b'9' => number(src, pos)?,
            b'.' if next.is_some_and(|n| n.is_ascii_digit()) => number(src, pos)?,
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let mut end = pos;
                while bytes
                    .get(end)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    end += 1;
                }
                (Tok::Word, end)
            }
            b'(' => (Tok::LParen, pos + 1),
            b')' => (Tok::RParen, pos + 1),
            b',' => (Tok::Comma, pos + 1),
            b'+' => (Tok::Plus, pos + 1),
            b'-' => (Tok::Minus, pos + 1),
            b'*' => (Tok::Star, pos + 1),
            b'/' => (Tok::Slash, pos + 1),
            b'%' => (Tok::Percent, pos + 1),
            b'=' if next == Some(b'=') => (Tok::Eq, pos + 2),
            b'=' => (Tok::Eq, pos + 1),
            b'!' if next == Some(b'=') => (Tok::Ne, pos + 2),
            b'<' if next == Some(b'>') => (Tok::Ne, pos + 2),
            b'<' if next == Some(b'=') => (Tok::Le, pos + 2),
            b'<' => (Tok::Lt, pos + 1),
            b'>' if next == Some(b'=') => (Tok::Ge, pos + 2),
            b'>' => (Tok::Gt, pos + 1),
            _ => {
                let shown = src.get(pos..).and_then(|r| r.chars().next()).unwrap_or('?');
                return Err(FilterError::new(
                    pos,
                    format!("unexpected character {shown:?}"),
                ));
            }
        };
        out.push(Token {
            tok,
            offset: start,
            text: src.get(start..end).unwrap_or(""),
        });
        pos = end;
    }
}

/// First byte of an unbracketed path segment (see `path.rs`).
fn starts_segment(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'.' | b'$' | b':') || b >= 0x80
}

fn path(src: &str, pos: usize) -> Result<(Tok, usize), FilterError> {
    let (p, end) = JsonPath::parse_prefix(src, pos)?;
    Ok((Tok::Path(p), end))
}

/// Integer or float literal at `start`.
fn number(src: &str, start: usize) -> Result<(Tok, usize), FilterError> {
    let bytes = src.as_bytes();
    let digits = |mut i: usize| {
        while bytes.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut end = digits(start);
    let mut is_float = false;
    if bytes.get(end) == Some(&b'.') {
        is_float = true;
        end = digits(end + 1);
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        is_float = true;
        let mut exp = end + 1;
        if matches!(bytes.get(exp), Some(b'+' | b'-')) {
            exp += 1;
        }
        let exp_end = digits(exp);
        if exp_end == exp {
            return Err(FilterError::new(end, "exponent without digits in number"));
        }
        end = exp_end;
    }
    if bytes
        .get(end)
        .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.')
    {
        return Err(FilterError::new(end, "unexpected character after number"));
    }
    let text = src.get(start..end).unwrap_or("");
    if is_float {
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok((Tok::Float(f), end)),
            _ => Err(FilterError::new(start, "float literal out of range")),
        }
    } else {
        // §13.1: signed 64-bit, larger values unsigned; beyond u64 is an error.
        match text.parse::<u64>() {
            Ok(u) => Ok((Tok::Int(i128::from(u)), end)),
            Err(_) => Err(FilterError::new(start, "integer literal out of range")),
        }
    }
}

/// `r'…'` / `R"…"`: no escapes; ends at the first matching quote. `quote_pos` is the quote.
fn raw_string(src: &str, quote_pos: usize) -> Result<(Tok, usize), FilterError> {
    let bytes = src.as_bytes();
    let quote = bytes.get(quote_pos).copied().unwrap_or(b'\'');
    let body = quote_pos + 1;
    let len = bytes
        .get(body..)
        .and_then(|rest| rest.iter().position(|b| *b == quote))
        .ok_or_else(|| FilterError::new(quote_pos - 1, "unterminated raw string"))?;
    let text = src.get(body..body + len).unwrap_or("").to_string();
    Ok((Tok::Str(text), body + len + 1))
}

/// `'…'` / `"…"` with the escapes of §13.1: `\a \b \t \n \f \r \xHH \OOO` and `\<char>` for the
/// character itself (so `\\`, `\'`, `\.`).
fn string(src: &str, start: usize) -> Result<(Tok, usize), FilterError> {
    let bytes = src.as_bytes();
    let quote = bytes.get(start).copied().unwrap_or(b'\'');
    let mut out: Vec<u8> = Vec::new();
    let mut pos = start + 1;
    loop {
        let Some(&b) = bytes.get(pos) else {
            return Err(FilterError::new(start, "unterminated string"));
        };
        if b == quote {
            pos += 1;
            break;
        }
        if b != b'\\' {
            out.push(b);
            pos += 1;
            continue;
        }
        let esc = pos;
        let Some(&e) = bytes.get(pos + 1) else {
            return Err(FilterError::new(start, "unterminated string"));
        };
        pos += 2;
        match e {
            b'a' => out.push(0x07),
            b'b' => out.push(0x08),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'f' => out.push(0x0c),
            b'r' => out.push(b'\r'),
            b'x' => {
                // One or two hex digits.
                let mut value: u8 = 0;
                let mut n = 0;
                while n < 2 {
                    let Some(d) = bytes.get(pos).and_then(|c| (*c as char).to_digit(16)) else {
                        break;
                    };
                    value = value * 16 + d as u8;
                    pos += 1;
                    n += 1;
                }
                if n == 0 {
                    return Err(FilterError::new(esc, "`\\x` escape without hex digits"));
                }
                out.push(value);
            }
            b'0'..=b'7' => {
                // One to three octal digits, as long as the value fits a byte.
                let mut value = u32::from(e - b'0');
                let mut n = 1;
                while n < 3 {
                    let Some(d) = bytes.get(pos).filter(|c| (b'0'..=b'7').contains(c)) else {
                        break;
                    };
                    let next = value * 8 + u32::from(d - b'0');
                    if next > 0xff {
                        break;
                    }
                    value = next;
                    pos += 1;
                    n += 1;
                }
                out.push(value as u8);
            }
            _ => {
                // `\<char>`: the character itself (may be multi-byte UTF-8: copy the rest of it).
                out.push(e);
                while bytes.get(pos).is_some_and(|c| (0x80..0xc0).contains(c)) {
                    out.push(bytes.get(pos).copied().unwrap_or(0));
                    pos += 1;
                }
            }
        }
    }
    String::from_utf8(out)
        .map(|s| (Tok::Str(s), pos))
        .map_err(|_| FilterError::new(start, "string literal is not valid UTF-8 after escapes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(src: &str) -> String {
        match tokenize(src).unwrap().into_iter().next().map(|t| t.tok) {
            Some(Tok::Str(s)) => s,
            other => panic!("not a string: {other:?}"),
        }
    }

    #[test]
    fn escapes_of_13_1() {
        assert_eq!(lit(r"'\a\b\t\n\f\r'"), "\x07\x08\t\n\x0c\r");
        assert_eq!(lit(r"'\x41\x4a\x7'"), "AJ\x07");
        assert_eq!(lit(r"'\101\0\7'"), "A\0\x07");
        assert_eq!(lit(r#"'\'\"\\\.\+'"#), "'\"\\.+");
        assert_eq!(lit(r#""it's""#), "it's");
        assert_eq!(lit(r"'\é'"), "é");
        assert_eq!(lit(r"r'C\+\+'"), r"C\+\+");
        assert_eq!(lit(r#"R"a'b""#), "a'b");
    }

    #[test]
    fn numbers() {
        let first = |s: &str| tokenize(s).unwrap().into_iter().next().map(|t| t.tok);
        assert!(matches!(first("42"), Some(Tok::Int(42))));
        assert!(
            matches!(first("18446744073709551615"), Some(Tok::Int(v)) if v == i128::from(u64::MAX))
        );
        assert!(matches!(first("31.4e-1"), Some(Tok::Float(_))));
        assert!(matches!(first("2.5e1"), Some(Tok::Float(f)) if f == 25.0));
        assert!(matches!(first("6.022E23"), Some(Tok::Float(_))));
        assert!(matches!(first(".5"), Some(Tok::Float(f)) if f == 0.5));
        for bad in ["18446744073709551616", "1e", "1e400", "5abc", "1.2.3"] {
            assert!(tokenize(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn slash_after_operand_is_division() {
        let kinds: Vec<_> = tokenize("10/2 + /a/b / /c")
            .unwrap()
            .into_iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(kinds, ["10", "/", "2", "+", "/a/b", "/", "/c", ""]);
    }

    #[test]
    fn bad_input() {
        for bad in ["'abc", "\"abc\\", "r'abc", "#", "!x", r"'\xZZ'", "'\\xff'"] {
            assert!(tokenize(bad).is_err(), "{bad}");
        }
    }
}
