//! JSON payload parsing with AMPS's duplicate-key rule, and the text of scalars
//! (protocol.md §16, §13.2).

use core::fmt;
use std::borrow::Cow;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parse a JSON payload; for duplicate keys the FIRST occurrence wins (protocol.md §16, the
/// AMPS default). Trailing non-whitespace is an error. Nesting depth is bounded by serde_json's
/// recursion limit (128), so hostile payloads cannot overflow the stack.
///
/// ```
/// let v = amps_broker::filter::parse_json(br#"{"a":1,"a":2}"#).unwrap();
/// assert_eq!(v, serde_json::json!({"a": 1}));
/// ```
pub fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let FirstWins(value) = FirstWins::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// Text of a scalar used in SOW keys and comparisons: strings unquoted, numbers as written by
/// serde_json (`1.0`, `1e+20`), `true`/`false`; `null` → `None`. Arrays and objects (not
/// scalars) give their compact JSON text so that distinct values stay distinct.
pub fn scalar_text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::Null => None,
        Value::Bool(true) => Some(Cow::Borrowed("true")),
        Value::Bool(false) => Some(Cow::Borrowed("false")),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        Value::String(s) => Some(Cow::Borrowed(s)),
        Value::Array(_) | Value::Object(_) => Some(Cow::Owned(v.to_string())),
    }
}

/// A `Value` whose objects keep the first of duplicate keys.
struct FirstWins(Value);

impl<'de> Deserialize<'de> for FirstWins {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<FirstWins, D::Error> {
        d.deserialize_any(FirstWinsVisitor).map(FirstWins)
    }
}

struct FirstWinsVisitor;

impl<'de> Visitor<'de> for FirstWinsVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        FirstWins::deserialize(d).map(|FirstWins(v)| v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(FirstWins(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // The value must be consumed even when the key is a duplicate.
            let FirstWins(v) = map.next_value()?;
            out.entry(key).or_insert(v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn first_duplicate_wins_at_every_level() {
        let v = parse_json(br#"{"a":1,"b":{"c":1,"c":[2]},"a":{"x":3}}"#).unwrap();
        assert_eq!(v, json!({"a": 1, "b": {"c": 1}}));
        assert_eq!(v.to_string(), r#"{"a":1,"b":{"c":1}}"#);
    }

    #[test]
    fn rejects_bad_json() {
        for bad in [&b""[..], b"{", b"{} x", b"[1,]", b"\xff", b"1e400"] {
            assert!(parse_json(bad).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(10_000);
        assert!(parse_json(deep.as_bytes()).is_err());
    }

    #[test]
    fn numbers_and_scalars() {
        let v =
            parse_json(br#"[1, -1, 18446744073709551615, 1.50, 1e3, "s", true, null]"#).unwrap();
        let texts: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| scalar_text(x).map(Cow::into_owned))
            .collect();
        let want = [
            "1",
            "-1",
            "18446744073709551615",
            "1.5",
            "1000.0",
            "s",
            "true",
        ];
        for (got, want) in texts.iter().zip(want) {
            assert_eq!(got.as_deref(), Some(want));
        }
        assert_eq!(texts.last(), Some(&None));
        assert_eq!(scalar_text(&json!([1, "a"])).as_deref(), Some(r#"[1,"a"]"#));
    }
}
