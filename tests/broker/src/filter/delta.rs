//! JSON operations of delta messaging: the delta_publish merge (docs/protocol.md §12.1) and the
//! delta_subscribe diff (§12.2).

use serde_json::{Map, Value};

use super::path::{JsonPath, Segment};

/// How nested objects of a delta are merged (§12.1 item 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MergeMode {
    /// Nested objects merge field by field, recursively; arrays and scalars replace. Our
    /// convention (§12.1 item 3, as observed on the wire): `{"id":1,"n":{"p":1,"q":2}}` +
    /// `{"id":1,"n":{"q":3}}` → `{"id":1,"n":{"p":1,"q":3}}`.
    #[default]
    RecursiveObjects,
    /// The other reading of §12.1 item 3: a top-level field of the delta replaces the stored
    /// value as a whole, nested objects included.
    ReplaceObjects,
}

/// §12.1: merge `delta` into the stored record in place.
///
/// Fields present in the delta replace stored values or are appended (so the stored field
/// order is kept and new fields come last); absent fields are unchanged; JSON `null` is a value
/// that replaces (our convention, item 4). Arrays always replace as a whole (item 3). If either
/// side is not an object, the delta replaces the record.
///
/// ```
/// use amps_broker::filter::{merge_delta, MergeMode};
/// use serde_json::json;
/// let mut stored = json!({"id": 1, "n": {"p": 1, "q": 2}});
/// merge_delta(&mut stored, &json!({"id": 1, "n": {"q": 3}}), MergeMode::RecursiveObjects);
/// assert_eq!(stored, json!({"id": 1, "n": {"p": 1, "q": 3}}));
/// ```
pub fn merge_delta(stored: &mut Value, delta: &Value, mode: MergeMode) {
    match (stored, delta) {
        (Value::Object(into), Value::Object(from)) => merge_objects(into, from, mode),
        (stored, delta) => *stored = delta.clone(),
    }
}

fn merge_objects(into: &mut Map<String, Value>, from: &Map<String, Value>, mode: MergeMode) {
    for (key, new) in from {
        match (into.get_mut(key), new) {
            (Some(Value::Object(old)), Value::Object(sub))
                if mode == MergeMode::RecursiveObjects =>
            {
                // Depth is bounded by the delta's own depth (parse_json limits it to 128).
                merge_objects(old, sub, mode);
            }
            (Some(old), _) => *old = new.clone(),
            (None, _) => {
                into.insert(key.clone(), new.clone());
            }
        }
    }
}

/// §12.2: what a delta subscriber receives for an update.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaDiff {
    /// The key fields plus the fields whose value changed, in the new record's field order.
    pub value: Value,
    /// False when nothing but the keys would be sent (the engine's `no_empties`, §12.2).
    pub changed: bool,
}

/// §12.2: the message for a delta subscriber when a record goes from `prev` to `new`: the
/// key fields (`keys`, always included when present in `new`) plus every field whose value
/// changed.
///
/// Nested objects are compared field by field, matching the recursive merge of §12.1 (our
/// convention): changing `/n/q` sends `{"n":{"q":…}}`, which merges back to the new record.
/// Arrays and scalars that changed are sent whole. Fields removed between `prev` and `new`
/// cannot be expressed in a delta and are not signalled (a delta_publish never removes fields).
/// When either record is not an object, the whole new record is sent if it differs.
///
/// ```
/// use amps_broker::filter::{delta_diff, JsonPath};
/// use serde_json::json;
/// let prev = json!({"order": 3, "customer": "Patrick", "status": "open", "qty": 1000});
/// let new = json!({"order": 3, "customer": "Patrick", "status": "pending", "qty": 1000});
/// let d = delta_diff(&prev, &new, &[JsonPath::parse("/order").unwrap()]);
/// assert_eq!(d.value, json!({"order": 3, "status": "pending"}));
/// assert!(d.changed);
/// ```
pub fn delta_diff(prev: &Value, new: &Value, keys: &[JsonPath]) -> DeltaDiff {
    match (prev, new) {
        (Value::Object(old), Value::Object(cur)) => {
            let keys: Vec<&[Segment]> = keys.iter().map(JsonPath::segments).collect();
            let mut changed = false;
            let value = diff_objects(old, cur, &keys, &mut changed);
            DeltaDiff {
                value: Value::Object(value),
                changed,
            }
        }
        _ => DeltaDiff {
            value: new.clone(),
            changed: prev != new,
        },
    }
}

/// Key paths relevant at one level: `true` when a key ends at `name` (include it whole), and
/// the remaining paths that continue below `name`.
fn keys_at<'k>(keys: &[&'k [Segment]], name: &str) -> (bool, Vec<&'k [Segment]>) {
    let mut whole = false;
    let mut below = Vec::new();
    for key in keys {
        let Some((Segment::Name { name: first, .. }, rest)) = key.split_first() else {
            continue;
        };
        if first != name {
            continue;
        }
        match rest.first() {
            None => whole = true,
            // A key under an array subscript: the whole field is the smallest unit we can send.
            Some(Segment::Index(_)) => whole = true,
            Some(Segment::Name { .. }) => below.push(rest),
        }
    }
    (whole, below)
}

fn diff_objects(
    old: &Map<String, Value>,
    cur: &Map<String, Value>,
    keys: &[&[Segment]],
    changed: &mut bool,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in cur {
        let (is_key, keys_below) = keys_at(keys, name);
        let before = old.get(name);
        let differs = before != Some(value);
        if differs {
            *changed = true;
        }
        match (before, value) {
            // A changed sub-document: send only what changed in it (plus nested keys).
            (Some(Value::Object(o)), Value::Object(c)) if differs && !is_key => {
                out.insert(
                    name.clone(),
                    Value::Object(diff_objects(o, c, &keys_below, changed)),
                );
            }
            _ if differs || is_key => {
                out.insert(name.clone(), value.clone());
            }
            // Unchanged, but a key lives below: carry just the key fields.
            (_, Value::Object(c)) if !keys_below.is_empty() => {
                let mut ignored = false;
                let keys_only = diff_objects(c, c, &keys_below, &mut ignored);
                if !keys_only.is_empty() {
                    out.insert(name.clone(), Value::Object(keys_only));
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(p: &[&str]) -> Vec<JsonPath> {
        p.iter().map(|s| JsonPath::parse(s).unwrap()).collect()
    }

    #[test]
    fn nested_keys_travel_with_changes() {
        let prev = json!({"k": {"id": 7, "region": "eu"}, "px": 1, "meta": {"a": 1, "b": 2}});
        let new = json!({"k": {"id": 7, "region": "eu"}, "px": 1, "meta": {"a": 1, "b": 3}});
        let d = delta_diff(&prev, &new, &paths(&["/k/id"]));
        assert_eq!(d.value, json!({"k": {"id": 7}, "meta": {"b": 3}}));
        assert!(d.changed);
        let same = delta_diff(&new, &new, &paths(&["/k/id"]));
        assert_eq!(same.value, json!({"k": {"id": 7}}));
        assert!(!same.changed);
    }

    #[test]
    fn replace_mode_replaces_sub_documents() {
        let mut stored = json!({"id": 1, "n": {"p": 1, "q": 2}});
        merge_delta(
            &mut stored,
            &json!({"id": 1, "n": {"q": 3}}),
            MergeMode::ReplaceObjects,
        );
        assert_eq!(stored, json!({"id": 1, "n": {"q": 3}}));
    }
}
