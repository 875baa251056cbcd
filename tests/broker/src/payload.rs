//! Payloads by message type (docs/protocol.md §16): what a filter sees, SOW key values, delta merge
//! (§12.1) and delta-subscribe output (§12.2). JSON operations go through [`crate::filter`];
//! FIX/NVFIX merges are done here on the raw fields.

use core::cmp::Ordering;

use serde_json::Value;

use crate::config::MessageType;
use crate::filter::{self, JsonPath, MergeMode, OrderBy};

/// FIX field separator (SOH).
const SOH: u8 = 0x01;

/// The document a filter or key path is evaluated against; `None` when the payload has no
/// structure this broker understands (binary, XML) or does not parse (never matches a filter).
pub(crate) fn parse(mt: MessageType, data: &[u8]) -> Option<Value> {
    match mt {
        MessageType::Json => filter::parse_json(data).ok(),
        MessageType::Fix => Some(filter::fix_to_value(data, SOH, false)),
        MessageType::Nvfix => Some(filter::fix_to_value(data, SOH, true)),
        MessageType::Xml | MessageType::Binary => None,
    }
}

/// The key-field values of a record, as text (docs/protocol.md §18 key convention). `None` when a
/// key field is missing or not a scalar.
pub(crate) fn key_values(doc: &Value, key: &[JsonPath]) -> Option<Vec<String>> {
    key.iter()
        .map(|path| {
            path.get(doc)
                .and_then(filter::scalar_text)
                .map(|t| t.into_owned())
        })
        .collect()
}

/// Compile the key fields of a SOW topic (validated with the configuration).
pub(crate) fn key_paths(key: &[String]) -> Vec<JsonPath> {
    key.iter().filter_map(|k| JsonPath::parse(k).ok()).collect()
}

/// Merge a delta into a stored record (docs/protocol.md §12.1; FIX: §16). `None` if either side
/// does not parse: the delta is then stored as a plain publish.
pub(crate) fn merge(mt: MessageType, stored: &[u8], delta: &[u8]) -> Option<Vec<u8>> {
    match mt {
        MessageType::Json => {
            let mut base = filter::parse_json(stored).ok()?;
            let d = filter::parse_json(delta).ok()?;
            merge_json(&mut base, &d);
            serde_json::to_vec(&base).ok()
        }
        MessageType::Fix | MessageType::Nvfix => Some(merge_fix(stored, delta)),
        MessageType::Xml | MessageType::Binary => None,
    }
}

/// JSON delta merge on parsed documents (§12.1).
pub(crate) fn merge_json(base: &mut Value, delta: &Value) {
    filter::merge_delta(base, delta, MergeMode::RecursiveObjects);
}

/// Fields of a FIX message in order; a trailing separator is implied (§16).
fn fix_fields(data: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    data.split(|&b| b == SOH)
        .filter(|f| !f.is_empty())
        .map(|f| match f.iter().position(|&b| b == b'=') {
            Some(i) => (f.get(..i).unwrap_or(&[]), f.get(i + 1..).unwrap_or(&[])),
            None => (f, &[][..]),
        })
}

/// FIX delta merge: fields of the delta replace stored ones in place, new ones are appended;
/// every field ends with SOH (docs/protocol.md §16 example).
fn merge_fix(stored: &[u8], delta: &[u8]) -> Vec<u8> {
    let mut fields: Vec<(Vec<u8>, Vec<u8>)> = fix_fields(stored)
        .map(|(t, v)| (t.to_vec(), v.to_vec()))
        .collect();
    for (t, v) in fix_fields(delta) {
        match fields.iter_mut().find(|(ft, _)| ft.as_slice() == t) {
            Some(f) => f.1 = v.to_vec(),
            None => fields.push((t.to_vec(), v.to_vec())),
        }
    }
    let mut out = Vec::with_capacity(stored.len() + delta.len() + 2);
    for (t, v) in fields {
        out.extend_from_slice(&t);
        out.push(b'=');
        out.extend_from_slice(&v);
        out.push(SOH);
    }
    out
}

/// What a delta subscriber receives for an update (docs/protocol.md §12.2): the key fields plus the
/// changed fields, and whether anything besides the keys changed (for `no_empties`). `None` when
/// no diff can be made (non-JSON): the full message is sent.
pub(crate) fn delta_output(
    mt: MessageType,
    prev: &Value,
    new: &Value,
    key: &[JsonPath],
) -> Option<(Vec<u8>, bool)> {
    if mt != MessageType::Json {
        return None;
    }
    let d = filter::delta_diff(prev, new, key);
    serde_json::to_vec(&d.value).ok().map(|b| (b, d.changed))
}

/// A compiled `orderby` (docs/protocol.md §6.6).
#[derive(Debug, Clone)]
pub(crate) struct Order(OrderBy);

impl Order {
    /// Parse `<path> [ASC|DESC] [TEXT], ...`; `None` is `invalid options`.
    pub(crate) fn parse(text: &str) -> Option<Order> {
        OrderBy::parse(text).ok().map(Order)
    }

    /// Compare two documents (unparsable records sort first).
    pub(crate) fn compare(&self, a: Option<&Value>, b: Option<&Value>) -> Ordering {
        match (a, b) {
            (Some(a), Some(b)) => self.0.compare(a, b),
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn json_merge_follows_12_1() {
        let m = merge(
            MessageType::Json,
            br#"{"id":42,"contents":{"packages":[{"box":"chocolates"},{"bowl":"noodles"}]}}"#,
            br#"{"id":42,"contents":{"packages":[{"basket":"eggs"}]}}"#,
        )
        .unwrap();
        assert_eq!(
            j(std::str::from_utf8(&m).unwrap()),
            j(r#"{"id":42,"contents":{"packages":[{"basket":"eggs"}]}}"#)
        );
        let m = merge(
            MessageType::Json,
            br#"{"id":1,"n":{"p":1,"q":2}}"#,
            br#"{"id":1,"n":{"q":3}}"#,
        )
        .unwrap();
        assert_eq!(m, br#"{"id":1,"n":{"p":1,"q":3}}"#);
    }

    #[test]
    fn fix_merge_follows_16() {
        assert_eq!(
            merge(MessageType::Fix, b"1=FOO\x015=TEST1", b"5=TEST1\x012=BAR").unwrap(),
            b"1=FOO\x015=TEST1\x012=BAR\x01"
        );
        let v = parse(MessageType::Nvfix, b"a=\x01b=24\x01c=24.0\x01d=x").unwrap();
        assert_eq!(v, j(r#"{"a":null,"b":24,"c":24.0,"d":"x"}"#));
    }

    #[test]
    fn delta_output_sends_keys_and_changes() {
        let prev = j(r#"{"order":3,"customer":"Patrick","status":"open","qty":1000}"#);
        let new = j(r#"{"order":3,"customer":"Patrick","status":"pending","qty":1000}"#);
        let keys = key_paths(&["/order".to_string()]);
        let (out, changed) = delta_output(MessageType::Json, &prev, &new, &keys).unwrap();
        assert_eq!(out, br#"{"order":3,"status":"pending"}"#);
        assert!(changed);
        let (out, changed) = delta_output(MessageType::Json, &prev, &prev, &keys).unwrap();
        assert_eq!((out.as_slice(), changed), (&br#"{"order":3}"#[..], false));
    }

    #[test]
    fn keys_and_order() {
        let v = j(r#"{"id":"A1","n":{"x":7},"arr":[1,2]}"#);
        assert_eq!(
            key_values(&v, &key_paths(&["/id".into(), "/n/x".into()])),
            Some(vec!["A1".into(), "7".into()])
        );
        assert_eq!(key_values(&v, &key_paths(&["/missing".into()])), None);
        let o = Order::parse("/n/x DESC, /id").unwrap();
        let w = j(r#"{"id":"A2","n":{"x":9}}"#);
        assert_eq!(o.compare(Some(&v), Some(&w)), Ordering::Greater);
        assert!(Order::parse("/id SIDEWAYS").is_none());
    }
}
