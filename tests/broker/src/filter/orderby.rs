//! Result ordering of SOW queries: `orderby` (docs/protocol.md §6.6).

use core::cmp::Ordering;
use std::borrow::Cow;

use serde_json::Value;

use super::FilterError;
use super::msgtype::scalar_text;
use super::path::JsonPath;
use super::value::{Num, Val, cmp_num};

/// A compiled `orderby`: `<path> [ASC|DESC] [TEXT]`, comma-separated (§6.6).
///
/// Type-aware order (our reading of §6.6), as a total order so that any sort is stable and
/// panic-free: NULL (missing, `null`, `""`, `[]`) < numbers (booleans as 1 and 0, compared
/// exactly across integers and floats) < strings (byte-wise) < objects. Arrays sort by their
/// first element. Unlike filter comparisons (§13.2), strings are never converted to numbers
/// here, because that rule is not transitive. `TEXT` compares every value as its text
/// ([`scalar_text`]) byte-wise, NULL first. `DESC` reverses a key's order, NULLs included.
/// Later keys break ties of earlier ones.
///
/// ```
/// use amps_broker::filter::OrderBy;
/// use serde_json::json;
/// let o = OrderBy::parse("/px DESC, /id").unwrap();
/// let mut rows = vec![json!({"id": 2, "px": 5}), json!({"id": 1, "px": 5}), json!({"id": 3, "px": 9})];
/// rows.sort_by(|a, b| o.compare(a, b));
/// assert_eq!(rows[0]["id"], 3);
/// assert_eq!(rows[1]["id"], 1);
/// ```
#[derive(Debug, Clone)]
pub struct OrderBy {
    keys: Vec<SortKey>,
}

#[derive(Debug, Clone)]
struct SortKey {
    path: JsonPath,
    descending: bool,
    text: bool,
}

impl OrderBy {
    /// Parse an `orderby` value. Keywords are case-insensitive and may come in either order;
    /// bracketed names may contain spaces and commas (`[/a, b] DESC`).
    pub fn parse(s: &str) -> Result<OrderBy, FilterError> {
        let mut keys = Vec::new();
        let mut pos = 0;
        for item in split_items(s) {
            keys.push(parse_item(pos, item)?);
            pos += item.len() + 1;
        }
        Ok(OrderBy { keys })
    }

    /// Order of two records under this `orderby`.
    pub fn compare(&self, a: &Value, b: &Value) -> Ordering {
        for key in &self.keys {
            let (x, y) = (key.path.get(a), key.path.get(b));
            let o = if key.text {
                cmp_text(x, y)
            } else {
                cmp_typed(x, y)
            };
            let o = if key.descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }

    /// The paths sorted on, in order.
    pub fn paths(&self) -> impl Iterator<Item = &JsonPath> {
        self.keys.iter().map(|k| &k.path)
    }
}

/// Split on commas outside `[…]` (bracketed names may contain commas).
fn split_items(s: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, b) in s.bytes().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                items.push(s.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(s.get(start..).unwrap_or(""));
    items
}

/// One `<path> [ASC|DESC] [TEXT]`; `base` is its offset in the whole string.
fn parse_item(base: usize, item: &str) -> Result<SortKey, FilterError> {
    let lead = item.len()
        - item
            .trim_start_matches(|c: char| c.is_ascii_whitespace())
            .len();
    if lead == item.len() {
        return Err(FilterError::new(base, "empty orderby item"));
    }
    let (path, end) = JsonPath::parse_prefix(item, lead)
        .map_err(|e| FilterError::new(base + e.offset, e.message))?;
    let mut key = SortKey {
        path,
        descending: false,
        text: false,
    };
    let (mut seen_dir, mut seen_text) = (false, false);
    let rest = item.get(end..).unwrap_or("");
    if !rest.is_empty() && !rest.starts_with(|c: char| c.is_ascii_whitespace()) {
        return Err(FilterError::new(
            base + end,
            "unexpected character after orderby path",
        ));
    }
    let mut offset = base + end;
    for word in rest.split(|c: char| c.is_ascii_whitespace()) {
        if word.is_empty() {
            offset += 1;
            continue;
        }
        let dir = if word.eq_ignore_ascii_case("ASC") {
            Some(false)
        } else if word.eq_ignore_ascii_case("DESC") {
            Some(true)
        } else {
            None
        };
        match dir {
            Some(d) if !seen_dir => {
                key.descending = d;
                seen_dir = true;
            }
            None if word.eq_ignore_ascii_case("TEXT") && !seen_text => {
                key.text = true;
                seen_text = true;
            }
            _ => {
                return Err(FilterError::new(
                    offset,
                    format!("unexpected `{word}` in orderby"),
                ));
            }
        }
        offset += word.len() + 1;
    }
    Ok(key)
}

/// Rank of a value's kind in the type-aware order, and its number if it is one.
fn rank(v: &Val<'_>) -> (u8, Option<Num>) {
    match v {
        Val::Null => (0, None),
        Val::Bool(b) => (1, Some(Num::I(i128::from(*b)))),
        Val::Int(i) => (1, Some(Num::I(*i))),
        Val::Float(f) => (1, Some(Num::F(*f))),
        Val::Str(_) => (2, None),
        Val::Object(_) | Val::Array(_) => (3, None),
    }
}

fn typed(v: Option<&Value>) -> Val<'_> {
    v.map_or(Val::Null, |v| Val::from_json(v).scalar())
}

/// Text of a value for `TEXT` ordering: arrays by their first element, NULL-likes have none.
fn sort_text(v: Option<&Value>) -> Option<Cow<'_, str>> {
    let mut v = v?;
    while let Value::Array(items) = v {
        v = items.first()?;
    }
    scalar_text(v).filter(|t| !t.is_empty())
}

fn cmp_typed(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    let (x, y) = (typed(a), typed(b));
    let ((rx, nx), (ry, ny)) = (rank(&x), rank(&y));
    rx.cmp(&ry).then_with(|| match (&x, &y, nx, ny) {
        (Val::Str(s), Val::Str(t), ..) => s.as_bytes().cmp(t.as_bytes()),
        // JSON has no NaN, so numbers are totally ordered; `Equal` is a safe fallback.
        (.., Some(p), Some(q)) => cmp_num(p, q).unwrap_or(Ordering::Equal),
        _ => Ordering::Equal,
    })
}

fn cmp_text(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (sort_text(a), sort_text(b)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.as_bytes().cmp(y.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn parse_forms() {
        for ok in [
            "/a",
            "/a DESC",
            "/a desc text",
            "/a TEXT ASC",
            " /a , /b DESC ",
            "[/x, y] DESC",
        ] {
            assert!(OrderBy::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            " ",
            "/a,",
            ",/a",
            "/a DESC ASC",
            "/a TEXT TEXT",
            "/a UP",
            "a",
            "/a/ DESC",
            "/a-b",
        ] {
            assert!(OrderBy::parse(bad).is_err(), "{bad}");
        }
        let o = OrderBy::parse("[/x, y] DESC").unwrap();
        assert_eq!(
            o.paths().map(JsonPath::as_str).collect::<Vec<_>>(),
            ["[/x, y]"]
        );
    }

    #[test]
    fn type_aware_total_order() {
        let o = OrderBy::parse("/v").unwrap();
        let mut rows: Vec<Value> = ["b", "10", "9"].iter().map(|s| json!({"v": s})).collect();
        rows.extend([
            json!({"v": 10}),
            json!({"v": 9.5}),
            json!({}),
            json!({"v": {"o": 1}}),
            json!({"v": true}),
        ]);
        rows.sort_by(|a, b| o.compare(a, b));
        let got: Vec<Value> = rows
            .iter()
            .map(|r| r.get("v").cloned().unwrap_or(Value::Null))
            .collect();
        assert_eq!(
            got,
            [
                json!(null),
                json!(true),
                json!(9.5),
                json!(10),
                json!("10"),
                json!("9"),
                json!("b"),
                json!({"o": 1})
            ]
        );
        let t = OrderBy::parse("/v TEXT").unwrap();
        assert_eq!(
            t.compare(&json!({"v": 10}), &json!({"v": 9})),
            Ordering::Less
        );
    }
}
