//! Property tests: the filter parser and evaluator never panic on hostile input (filters and
//! payloads come from the network), and the JSON operations keep their invariants.

use std::cmp::Ordering;

use amps_broker::filter::{
    Filter, JsonPath, MergeMode, OrderBy, Truth, delta_diff, fix_to_value, merge_delta, parse_json,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Field names the generated filters and documents share, so paths often hit.
const KEYS: [&str; 6] = ["a", "b", "x y", "arr", "0", "n"];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop::sample::select(vec![
            "", "10", "2.5", "abc", "ABC", "1e3", "true", "zebra", "é"
        ])
        .prop_map(Value::from),
        "[a-z0-9 .]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..5).prop_map(
                |kv| {
                    let mut m = Map::new();
                    for (k, v) in kv {
                        m.insert(k.to_string(), v);
                    }
                    Value::Object(m)
                }
            ),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(KEYS.to_vec()), json_value()), 0..6).prop_map(
        |kv| {
            let mut m = Map::new();
            for (k, v) in kv {
                m.insert(k.to_string(), v);
            }
            Value::Object(m)
        },
    )
}

/// Operands: paths, literals, function calls.
fn operand() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        prop::sample::select(vec![
            "/a",
            "/b",
            "/a/b",
            "/arr",
            "/arr[1]",
            "[/x y]",
            "/0/a",
            "/n",
            "/missing",
            "1",
            "0",
            "-3",
            "2.5",
            "18446744073709551615",
            "'abc'",
            "\"10\"",
            "''",
            "NULL",
            "r'a+'",
            "'\\x41\\101'",
            "TRUE_VALUE()",
            "FALSE_VALUE()",
        ])
        .prop_map(str::to_string),
        any::<i32>().prop_map(|i| i.to_string()),
    ];
    atom.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["+", "-", "*", " / ", "%", " MOD "]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            (
                prop::sample::select(vec!["UPPER", "LOWER", "REVERSE", "COALESCE", "CONCAT"]),
                inner.clone()
            )
                .prop_map(|(f, a)| format!("{f}({a})")),
            (
                prop::sample::select(vec!["INSTR", "INSTR_I", "STREQUAL_I", "SUBSTR", "CONCAT"]),
                inner.clone(),
                inner.clone()
            )
                .prop_map(|(f, a, b)| format!("{f}({a}, {b})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c)| format!("SUBSTR({a}, {b}, {c})")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

/// Conditions built from the whole grammar of docs/protocol.md §13.1.
fn condition() -> impl Strategy<Value = String> {
    let pred = prop_oneof![
        (
            operand(),
            prop::sample::select(vec!["=", "==", "!=", "<>", "<", "<=", ">", ">="]),
            operand()
        )
            .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
        (operand(), any::<bool>(), operand(), operand()).prop_map(|(x, n, a, b)| format!(
            "{x} {}BETWEEN {a} AND {b}",
            if n { "NOT " } else { "" }
        )),
        (
            operand(),
            any::<bool>(),
            prop::collection::vec(operand(), 1..4)
        )
            .prop_map(|(x, n, l)| format!(
                "{x} {}IN ({})",
                if n { "NOT " } else { "" },
                l.join(", ")
            )),
        (
            operand(),
            prop::sample::select(vec!["'a'", "'(?i)^B'", "r'\\d+'", "'^$'", "'z|1'", "''"])
        )
            .prop_map(|(x, p)| format!("{x} LIKE {p}")),
        (
            operand(),
            prop::sample::select(vec!["BEGINS", "ENDS", "NOT BEGINS", "NOT ENDS"]),
            operand()
        )
            .prop_map(|(x, k, a)| format!("{x} {k} WITH ({a}, 'a')")),
        (
            operand(),
            prop::sample::select(vec!["IS NULL", "IS NOT NULL", "IS NAN", "IS NOT NAN"])
        )
            .prop_map(|(x, k)| format!("{x} {k}")),
        (operand(), operand(), operand()).prop_map(|(c, a, b)| format!("IF({c}, {a}, {b}) = {a}")),
        operand(),
    ];
    pred.prop_recursive(3, 24, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec!["AND", "OR", "and", "Or"]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a} {op} {b}")),
            inner.clone().prop_map(|a| format!("NOT {a}")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

/// Arbitrary token soup: mostly invalid, exercising every error path.
fn token_soup() -> impl Strategy<Value = String> {
    let tokens = vec![
        "/a", "/", "[/x", "]", "[", "(", ")", ",", "=", "==", "!", "!=", "<", ">", "<>", "+", "-",
        "*", "%", "'", "\"", "r'", "\\", "\\x", "1", "1e", "1.", ".5", "'s'", "AND", "OR", "NOT",
        "IN", "LIKE", "BETWEEN", "IS", "NULL", "NAN", "BEGINS", "ENDS", "WITH", "MOD", "UPPER(",
        "IF(", "X(", "é", "\u{0}", " ", "[/a b]", "[0]",
    ];
    prop::collection::vec(prop::sample::select(tokens), 0..40).prop_map(|t| t.concat())
}

fn evaluate_everything(f: &Filter, doc: &Value) {
    let m = f.matches(doc);
    assert_eq!(m, f.truth(doc) == Truth::True);
    let _ = f.eval_value(doc);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_any_text(s in "\\PC{0,60}") {
        if let Ok(f) = Filter::parse(&s) {
            evaluate_everything(&f, &Value::Null);
        }
        let _ = JsonPath::parse(&s);
        let _ = OrderBy::parse(&s);
    }

    #[test]
    fn parse_never_panics_on_token_soup(s in token_soup(), doc in json_value()) {
        if let Ok(f) = Filter::parse(&s) {
            evaluate_everything(&f, &doc);
        }
    }

    #[test]
    fn grammar_filters_parse_and_never_panic(expr in condition(), doc in json_value()) {
        match Filter::parse(&expr) {
            Ok(f) => {
                evaluate_everything(&f, &doc);
                // NOT follows the §13.2 table.
                let not = Filter::parse(&format!("NOT ({expr})")).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let want = match f.truth(&doc) {
                    Truth::True => Truth::False,
                    Truth::False => Truth::True,
                    Truth::Null => Truth::Null,
                };
                prop_assert_eq!(not.truth(&doc), want);
            }
            // Only regexes the regex crate rejects, or nesting limits, may fail here.
            Err(e) => prop_assert!(e.message.contains("nested") || e.message.contains("LIKE"), "{expr}: {e}"),
        }
    }

    #[test]
    fn integer_comparison_and_arithmetic(a in any::<i64>(), b in any::<i64>()) {
        let doc = Value::Null;
        let lt = Filter::parse(&format!("{a} < {b}")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(lt.matches(&doc), a < b);
        let sum = Filter::parse(&format!("{a} + {b} = {}", i128::from(a) + i128::from(b)));
        if let Ok(sum) = sum {
            prop_assert!(sum.matches(&doc));
        }
        let as_text = Filter::parse(&format!("'{a}' = {a} AND '{a}' >= {b} = ({a} >= {b})"));
        prop_assert!(as_text.is_err()); // comparisons do not chain
    }

    #[test]
    fn parse_json_and_fix_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..80), sep in any::<u8>()) {
        let _ = parse_json(&bytes);
        let _ = fix_to_value(&bytes, sep, true);
        let _ = fix_to_value(&bytes, sep, false);
    }

    #[test]
    fn delta_diff_merges_back(prev in json_object(), delta in json_object()) {
        let mut new = prev.clone();
        merge_delta(&mut new, &delta, MergeMode::RecursiveObjects);
        let keys = [JsonPath::parse("/a").map_err(|e| TestCaseError::fail(e.to_string()))?];
        let d = delta_diff(&prev, &new, &keys);
        prop_assert_eq!(d.changed, prev != new);
        let mut rebuilt = prev.clone();
        merge_delta(&mut rebuilt, &d.value, MergeMode::RecursiveObjects);
        prop_assert_eq!(rebuilt, new.clone());
        if let Some(key) = new.get("a") {
            prop_assert_eq!(d.value.get("a"), Some(key));
        }
    }

    #[test]
    fn orderby_is_a_total_order(rows in prop::collection::vec(json_object(), 3..12),
                                spec in prop::sample::select(vec!["/a", "/b DESC", "/arr TEXT", "/a, /b DESC", "/n/a DESC TEXT"])) {
        let o = OrderBy::parse(spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for x in &rows {
            prop_assert_eq!(o.compare(x, x), Ordering::Equal);
            for y in &rows {
                prop_assert_eq!(o.compare(x, y), o.compare(y, x).reverse());
                for z in &rows {
                    if o.compare(x, y) != Ordering::Greater && o.compare(y, z) != Ordering::Greater {
                        prop_assert_ne!(o.compare(x, z), Ordering::Greater);
                    }
                }
            }
        }
        let mut sorted = rows.clone();
        sorted.sort_by(|x, y| o.compare(x, y));
    }
}
