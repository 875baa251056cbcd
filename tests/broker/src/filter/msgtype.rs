//! Message types (docs/protocol.md §16) as the filter engine sees them: JSON payloads with AMPS's
//! duplicate-key rule, FIX and NVFIX payloads read as JSON objects (so filters, SOW keys and
//! orderby work on them unchanged), and the text of scalars used in SOW keys and comparisons.

use core::fmt;
use std::borrow::Cow;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parse a JSON payload; for duplicate keys the FIRST occurrence wins (docs/protocol.md §16, the
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

/// §16: a FIX or NVFIX payload as a JSON object of tag → value, so filters work on them
/// (`/55 = 'IBM'`).
///
/// * Fields are separated by `field_sep` (SOH, 0x01, by default); a trailing separator is
///   optional, and empty fields are skipped.
/// * A field is `tag=value`, split at the first `=`; fields without `=` or with an empty tag
///   are skipped (our reading: a broker must not reject a whole message over one bad field).
/// * FIX (`nvfix == false`): values are strings. Tags are kept as written even when not
///   numeric (lenient).
/// * NVFIX typing (§16): `a=` → `null`, `b=24` → integer, `c=24.0` → float, anything else a
///   string. Integers beyond i64/u64 and floats beyond f64 stay strings.
/// * Repeated tags: the first occurrence wins, like JSON duplicate keys (§16).
/// * Bytes that are not UTF-8 are replaced by U+FFFD.
///
/// ```
/// use amps_broker::filter::fix_to_value;
/// let v = fix_to_value(b"a=\x01b=24\x01c=24.0\x01d=x", 0x01, true);
/// assert_eq!(v, serde_json::json!({"a": null, "b": 24, "c": 24.0, "d": "x"}));
/// ```
pub fn fix_to_value(payload: &[u8], field_sep: u8, nvfix: bool) -> Value {
    let mut out = Map::new();
    for field in payload.split(|b| *b == field_sep) {
        let Some(eq) = field.iter().position(|b| *b == b'=') else {
            continue;
        };
        let (tag, value) = (
            field.get(..eq).unwrap_or_default(),
            field.get(eq + 1..).unwrap_or_default(),
        );
        if tag.is_empty() {
            continue;
        }
        let tag = String::from_utf8_lossy(tag).into_owned();
        if out.contains_key(&tag) {
            continue;
        }
        let text = String::from_utf8_lossy(value);
        let value = if nvfix {
            nvfix_value(&text)
        } else {
            Value::String(text.into_owned())
        };
        out.insert(tag, value);
    }
    Value::Object(out)
}

/// NVFIX value typing (§16).
fn nvfix_value(text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    let b = text.as_bytes();
    let unsigned = b.strip_prefix(b"-").unwrap_or(b);
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if digits(unsigned) {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Number(i.into());
        }
        if let Ok(u) = text.parse::<u64>() {
            return Value::Number(u.into());
        }
        return Value::String(text.to_string());
    }
    if is_decimal(unsigned)
        && let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64)
    {
        return Value::Number(n);
    }
    Value::String(text.to_string())
}

/// `digits '.' digits` with an optional exponent, or `digits` with an exponent (no sign; the
/// caller stripped a leading `-`). Spellings like `inf`, `.5` or `5.` stay strings.
fn is_decimal(s: &[u8]) -> bool {
    let int_end = s
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    if int_end == 0 {
        return false;
    }
    let mut rest = s.get(int_end..).unwrap_or_default();
    let mut fraction = false;
    if let Some(after) = rest.strip_prefix(b".") {
        let frac_end = after
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(after.len());
        if frac_end == 0 {
            return false;
        }
        fraction = true;
        rest = after.get(frac_end..).unwrap_or_default();
    }
    if let Some(exp) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exp = exp
            .strip_prefix(b"+")
            .or_else(|| exp.strip_prefix(b"-"))
            .unwrap_or(exp);
        return !exp.is_empty() && exp.iter().all(u8::is_ascii_digit);
    }
    fraction && rest.is_empty()
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

    #[test]
    fn fix_values_are_strings() {
        let v = fix_to_value(
            b"8=FIX.4.2\x0135=D\x0138=100\x01\x0155=IBM\x0155=DUP\x01bad\x01=x\x01",
            1,
            false,
        );
        assert_eq!(
            v,
            json!({"8": "FIX.4.2", "35": "D", "38": "100", "55": "IBM"})
        );
        assert_eq!(
            fix_to_value(b"1=a|2=b=c", b'|', false),
            json!({"1": "a", "2": "b=c"})
        );
    }

    #[test]
    fn nvfix_typing() {
        let v = fix_to_value(b"n=-7\x01big=99999999999999999999\x01u=18446744073709551615\x01f=-1.5e3\x01s=1.2.3\x01t=.5\x01i=inf", 1, true);
        assert_eq!(
            v,
            json!({"n": -7, "big": "99999999999999999999", "u": 18446744073709551615u64,
                   "f": -1500.0, "s": "1.2.3", "t": ".5", "i": "inf"})
        );
    }
}
