//! FIX and NVFIX payloads as JSON objects, so that filters, SOW keys and orderby work on them
//! unchanged (protocol.md §16).

use serde_json::{Map, Number, Value};

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
