//! Identifiers: paths into a message (docs/protocol.md §13.1).
//!
//! Forms accepted:
//!
//! * `/a/b/c`: nested fields; each segment is a run of identifier characters (ASCII letters,
//!   digits, `_ @ . $ :` and any non-ASCII character). `-` is not an identifier character
//!   because it is the minus operator; such names need the bracketed form.
//! * `/data[0]`: 0-based array subscript, repeatable (`/m[1][0]`), also mid-path (`/a[0]/b`).
//! * `[/Not Xpath Name]`: bracketed name, any bytes but `/` and `]` inside a segment.
//! * `/0/name`: composite-local part prefix (§16). A name segment made of digits indexes an
//!   array when the current value is an array, and is a key otherwise (FIX tags `/55`).
//!
//! Parts may be chained without whitespace: `[/a b]/c`, `/a[/b c]`.

use core::fmt;

use serde_json::Value;

use super::FilterError;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Object key; `index` is set when the name is all digits, so that it can also address an
    /// array element (composite-local part prefix `/0/name`, §16).
    Name {
        /// The key as written.
        name: String,
        /// The key read as an array index, if it is one.
        index: Option<usize>,
    },
    /// Array subscript `[n]` (0-based, §13.1).
    Index(usize),
}

/// A compiled path into a JSON document: `/a/b`, `/data[0]`, `[/Not Xpath Name]`, `/0/name`
/// (docs/protocol.md §13.1).
///
/// ```
/// use amps_broker::filter::JsonPath;
/// let p = JsonPath::parse("/order/items[1]").unwrap();
/// let doc = serde_json::json!({"order": {"items": ["a", "b"]}});
/// assert_eq!(p.get(&doc), Some(&serde_json::json!("b")));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct JsonPath {
    text: String,
    segments: Vec<Segment>,
}

impl JsonPath {
    /// Parse a whole path. Surrounding ASCII whitespace is ignored; anything else that is not
    /// part of the path is an error.
    pub fn parse(s: &str) -> Result<JsonPath, FilterError> {
        let start = s.len()
            - s.trim_start_matches(|c: char| c.is_ascii_whitespace())
                .len();
        let end = s.trim_end_matches(|c: char| c.is_ascii_whitespace()).len();
        let (path, stop) = JsonPath::parse_prefix(s, start)?;
        if stop < end {
            return Err(FilterError::new(stop, "unexpected character in path"));
        }
        Ok(path)
    }

    /// Parse the longest path starting at byte `start` of `src`; returns it and the byte offset
    /// just after it. Used by the filter lexer, which finds paths inside expressions.
    pub(crate) fn parse_prefix(src: &str, start: usize) -> Result<(JsonPath, usize), FilterError> {
        let bytes = src.as_bytes();
        let mut pos = start;
        let mut segments = Vec::new();
        loop {
            match bytes.get(pos) {
                Some(b'/') => {
                    let seg_start = pos + 1;
                    let seg_end = scan_identifier(src, seg_start);
                    if seg_end == seg_start {
                        if segments.is_empty() {
                            return Err(FilterError::new(pos, "expected a field name after `/`"));
                        }
                        // `/a/ 2`: the path ends; the `/` is division (§13.1 "write spaces").
                        break;
                    }
                    segments.push(name_segment(src.get(seg_start..seg_end).unwrap_or("")));
                    pos = seg_end;
                }
                Some(b'[')
                    if !segments.is_empty()
                        && bytes.get(pos + 1).is_some_and(u8::is_ascii_digit) =>
                {
                    let (index, next) = parse_subscript(src, pos)?;
                    segments.push(Segment::Index(index));
                    pos = next;
                }
                Some(b'[') => {
                    pos = parse_bracketed(src, pos, &mut segments)?;
                }
                _ => {
                    if segments.is_empty() {
                        return Err(FilterError::new(
                            pos,
                            "expected a path starting with `/` or `[/`",
                        ));
                    }
                    break;
                }
            }
        }
        let text = src.get(start..pos).unwrap_or("").to_string();
        Ok((JsonPath { text, segments }, pos))
    }

    /// The value at this path, or `None` if some step is missing. Missing, `null`, `""` and
    /// `[]` all read as NULL in filters (§13.1); `get` still returns the latter three so that
    /// callers can tell them apart.
    pub fn get<'v>(&self, doc: &'v Value) -> Option<&'v Value> {
        let mut cur = doc;
        for seg in &self.segments {
            cur = match (seg, cur) {
                (Segment::Name { name, .. }, Value::Object(map)) => map.get(name.as_str())?,
                (Segment::Name { index: Some(i), .. }, Value::Array(items)) => items.get(*i)?,
                (Segment::Index(i), Value::Array(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// The path text as written (without surrounding whitespace).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The steps of the path, for the delta diff (§12.2).
    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

impl fmt::Debug for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonPath({:?})", self.text)
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// True for bytes that may appear in an unbracketed segment. Non-ASCII bytes (UTF-8 lead and
/// continuation bytes) are accepted so that a scan never stops inside a character.
fn is_identifier_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'@' | b'.' | b'$' | b':') || b >= 0x80
}

/// End of the identifier that starts at `start`.
fn scan_identifier(src: &str, start: usize) -> usize {
    let bytes = src.as_bytes();
    let mut end = start;
    while bytes.get(end).is_some_and(|b| is_identifier_byte(*b)) {
        end += 1;
    }
    end
}

fn name_segment(name: &str) -> Segment {
    let index = if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
        name.parse::<usize>().ok()
    } else {
        None
    };
    Segment::Name {
        name: name.to_string(),
        index,
    }
}

/// `[digits]` at `open`; returns the index and the offset after `]`.
fn parse_subscript(src: &str, open: usize) -> Result<(usize, usize), FilterError> {
    let bytes = src.as_bytes();
    let mut end = open + 1;
    while bytes.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    if bytes.get(end) != Some(&b']') {
        return Err(FilterError::new(
            end,
            "expected `]` after the array subscript",
        ));
    }
    let index = src
        .get(open + 1..end)
        .and_then(|d| d.parse::<usize>().ok())
        .ok_or_else(|| FilterError::new(open + 1, "array subscript out of range"))?;
    Ok((index, end + 1))
}

/// `[/seg/seg]` at `open`: appends the segments, returns the offset after `]`.
fn parse_bracketed(
    src: &str,
    open: usize,
    segments: &mut Vec<Segment>,
) -> Result<usize, FilterError> {
    let bytes = src.as_bytes();
    if bytes.get(open + 1) != Some(&b'/') {
        return Err(FilterError::new(
            open,
            "a bracketed name must start with `[/`",
        ));
    }
    let close = src
        .get(open..)
        .and_then(|rest| rest.find(']'))
        .map(|i| open + i)
        .ok_or_else(|| FilterError::new(open, "unterminated bracketed name (missing `]`)"))?;
    let inner = src.get(open + 2..close).unwrap_or("");
    let mut offset = open + 2;
    for name in inner.split('/') {
        if name.is_empty() {
            return Err(FilterError::new(
                offset,
                "empty field name in bracketed path",
            ));
        }
        segments.push(name_segment(name));
        offset += name.len() + 1;
    }
    Ok(close + 1)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn forms_of_13_1() {
        let doc = json!({"a": {"b": 1}, "data": [10, 20], "Not Xpath Name": "x",
                         "@Qty": 5, "55": "IBM", "m": [[1, 2], [3]]});
        let get = |p: &str| JsonPath::parse(p).unwrap().get(&doc).cloned();
        assert_eq!(get("/a/b"), Some(json!(1)));
        assert_eq!(get("/data[1]"), Some(json!(20)));
        assert_eq!(get("/data/1"), Some(json!(20)));
        assert_eq!(get("[/Not Xpath Name]"), Some(json!("x")));
        assert_eq!(get("/@Qty"), Some(json!(5)));
        assert_eq!(get("/55"), Some(json!("IBM")));
        assert_eq!(get("/m[1][0]"), Some(json!(3)));
        assert_eq!(get("/data[2]"), None);
        assert_eq!(get("/a/b/c"), None);
        assert_eq!(get("/a[0]"), None);
    }

    #[test]
    fn composite_part_prefix() {
        let doc = json!([{"id": 1}, {"name": "n"}]);
        let p = JsonPath::parse("/1/name").unwrap();
        assert_eq!(p.get(&doc), Some(&json!("n")));
    }

    #[test]
    fn prefix_stops_before_operators() {
        let (p, end) = JsonPath::parse_prefix("/14*5", 0).unwrap();
        assert_eq!((p.as_str(), end), ("/14", 3));
        let (p, end) = JsonPath::parse_prefix("/a/ 2", 0).unwrap();
        assert_eq!((p.as_str(), end), ("/a", 2));
        let (p, end) = JsonPath::parse_prefix("[/a b]/c[0] = 1", 0).unwrap();
        assert_eq!((p.as_str(), end), ("[/a b]/c[0]", 11));
    }

    #[test]
    fn bad_paths() {
        for bad in [
            "",
            "a",
            "/",
            "//a",
            "[/a",
            "[a]",
            "[/a//b]",
            "/a[x]",
            "/a[1",
            "/a b",
            "/a[99999999999999999999999]",
        ] {
            assert!(JsonPath::parse(bad).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(JsonPath::parse("  /a ").unwrap().as_str(), "/a");
    }
}
