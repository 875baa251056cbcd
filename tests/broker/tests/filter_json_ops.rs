//! JSON operations used by the engine: payload parsing (docs/protocol.md §16), paths (§13.1),
//! delta merge and diff (§12), orderby (§6.6), FIX/NVFIX payloads (§16).

use std::cmp::Ordering;

use amps_broker::filter::{
    DeltaDiff, Filter, JsonPath, MergeMode, OrderBy, delta_diff, fix_to_value, merge_delta,
    parse_json, scalar_text,
};
use serde_json::{Value, json};

fn path(p: &str) -> JsonPath {
    match JsonPath::parse(p) {
        Ok(p) => p,
        Err(e) => panic!("{p:?}: {e}"),
    }
}

fn merged(stored: Value, delta: Value) -> Value {
    let mut stored = stored;
    merge_delta(&mut stored, &delta, MergeMode::default());
    stored
}

#[test]
fn parse_json_first_duplicate_wins() {
    let v = parse_json(br#" {"id":1,"px":2.5,"id":2,"n":{"a":1,"a":2}} "#).unwrap();
    assert_eq!(v, json!({"id": 1, "px": 2.5, "n": {"a": 1}}));
    assert!(Filter::parse("/id = 1").unwrap().matches(&v));
    assert!(parse_json(b"{\"a\":1} {").is_err());
    assert!(parse_json(b"").is_err());
}

#[test]
fn scalar_texts() {
    let cases = [
        (json!("A1"), Some("A1")),
        (json!(""), Some("")),
        (json!(42), Some("42")),
        (json!(-1), Some("-1")),
        (json!(1.0), Some("1.0")),
        (json!(0.25), Some("0.25")),
        (json!(true), Some("true")),
        (json!(false), Some("false")),
        (json!(null), None),
    ];
    for (v, want) in cases {
        assert_eq!(scalar_text(&v).as_deref(), want, "{v}");
    }
}

#[test]
fn json_path_api() {
    let doc = json!({"a": {"b": [10, {"c": "x"}]}, "x y": 1});
    assert_eq!(path("/a/b[1]/c").get(&doc), Some(&json!("x")));
    assert_eq!(path("/a/b/0").get(&doc), Some(&json!(10)));
    assert_eq!(path("[/x y]").get(&doc), Some(&json!(1)));
    assert_eq!(path("/a/zz").get(&doc), None);
    assert_eq!(path(" /a/b[1] ").as_str(), "/a/b[1]");
    assert_eq!(path("[/x y]").to_string(), "[/x y]");
    let e = JsonPath::parse("/a b").unwrap_err();
    assert_eq!(e.offset, 2);
}

/// §12.1 items 2–4 and the documented examples.
#[test]
fn merge_rules_of_12_1() {
    // Item 3: arrays (anonymous elements) replace as a whole.
    assert_eq!(
        merged(
            json!({"id":42,"contents":{"packages":[{"box":"chocolates"},{"bowl":"noodles"}]}}),
            json!({"id":42,"contents":{"packages":[{"basket":"eggs"}]}})
        ),
        json!({"id":42,"contents":{"packages":[{"basket":"eggs"}]}})
    );
    // Item 3, our convention: nested objects merge recursively.
    assert_eq!(
        merged(
            json!({"id":1,"n":{"p":1,"q":2}}),
            json!({"id":1,"n":{"q":3}})
        ),
        json!({"id":1,"n":{"p":1,"q":3}})
    );
    // Item 4: absent fields are unchanged; null replaces.
    assert_eq!(
        merged(json!({"id":42,"flowers":"roses"}), json!({"id":42})),
        json!({"id":42,"flowers":"roses"})
    );
    assert_eq!(
        merged(
            json!({"id":42,"flowers":"roses"}),
            json!({"id":42,"flowers":null})
        ),
        json!({"id":42,"flowers":null})
    );
    // Item 2: new fields are added at the end, existing ones keep their place.
    let m = merged(json!({"id":1,"a":1,"b":2}), json!({"c":3,"a":9}));
    assert_eq!(m.to_string(), r#"{"id":1,"a":9,"b":2,"c":3}"#);
    // A scalar replacing an object and the other way round.
    assert_eq!(merged(json!({"n":{"p":1}}), json!({"n":5})), json!({"n":5}));
    assert_eq!(
        merged(json!({"n":5}), json!({"n":{"p":1}})),
        json!({"n":{"p":1}})
    );
    // Non-object records: the delta replaces.
    assert_eq!(merged(json!([1]), json!({"a":1})), json!({"a":1}));
    // The other reading, behind the switch.
    let mut stored = json!({"id":1,"n":{"p":1,"q":2}});
    merge_delta(
        &mut stored,
        &json!({"id":1,"n":{"q":3}}),
        MergeMode::ReplaceObjects,
    );
    assert_eq!(stored, json!({"id":1,"n":{"q":3}}));
}

/// §16: a FIX delta merges by tag once both payloads are read as objects.
#[test]
fn fix_delta_merge() {
    let mut stored = fix_to_value(b"1=FOO\x015=TEST1", 1, false);
    merge_delta(
        &mut stored,
        &fix_to_value(b"5=TEST1\x012=BAR", 1, false),
        MergeMode::default(),
    );
    assert_eq!(stored.to_string(), r#"{"1":"FOO","5":"TEST1","2":"BAR"}"#);
}

/// §12.2: the documented example and `no_empties`.
#[test]
fn delta_diff_of_12_2() {
    let keys = [path("/order")];
    let prev = json!({"order":3,"customer":"Patrick","status":"open","qty":1000,"ticker":"MSFT"});
    let new = merged(prev.clone(), json!({"order":3,"status":"pending"}));
    let d = delta_diff(&prev, &new, &keys);
    assert_eq!(
        d,
        DeltaDiff {
            value: json!({"order":3,"status":"pending"}),
            changed: true
        }
    );

    // No change detection on publish (§12.1 item 5), but nothing to send but keys.
    let same = delta_diff(&new, &new, &keys);
    assert_eq!(
        same,
        DeltaDiff {
            value: json!({"order":3}),
            changed: false
        }
    );

    // New fields, changed arrays, nested changes, multiple keys.
    let prev = json!({"id":1,"region":"eu","tags":["a"],"n":{"p":1,"q":2}});
    let new = json!({"id":1,"region":"eu","tags":["a","b"],"n":{"p":1,"q":3},"extra":true});
    let d = delta_diff(&prev, &new, &[path("/id"), path("/region")]);
    assert_eq!(
        d.value.to_string(),
        r#"{"id":1,"region":"eu","tags":["a","b"],"n":{"q":3},"extra":true}"#
    );
    assert!(d.changed);
    // The diff merged into the previous record gives the new one.
    assert_eq!(merged(prev, d.value), new);

    // A key missing from the new record is simply absent; removed fields are not signalled.
    let d = delta_diff(&json!({"a":1,"b":2}), &json!({"a":1}), &[path("/id")]);
    assert_eq!(
        d,
        DeltaDiff {
            value: json!({}),
            changed: false
        }
    );

    // Non-object records: the whole new record when it differs.
    let d = delta_diff(&json!([1]), &json!([2]), &keys);
    assert_eq!(
        d,
        DeltaDiff {
            value: json!([2]),
            changed: true
        }
    );
}

#[test]
fn orderby() {
    let rows = [
        json!({"id":"c","px":5,"name":"b"}),
        json!({"id":"a","px":10,"name":"B"}),
        json!({"id":"b","px":5.5}),
        json!({"id":"d","px":"n/a","name":"a"}),
        json!({"id":"e"}),
    ];
    let ids = |spec: &str| {
        let o = OrderBy::parse(spec).unwrap();
        let mut r = rows.to_vec();
        r.sort_by(|a, b| o.compare(a, b));
        r.iter()
            .map(|x| x["id"].as_str().unwrap_or("?").to_string())
            .collect::<Vec<_>>()
            .join("")
    };
    assert_eq!(ids("/px"), "ecbad");
    assert_eq!(ids("/px asc"), "ecbad");
    assert_eq!(ids("/px DESC"), "dabce");
    assert_eq!(ids("/px TEXT"), "eacbd"); // "10" < "5" < "5.5" < "n/a"
    assert_eq!(ids("/name, /px DESC"), "beadc");
    assert_eq!(ids("/name DESC, /id"), "cdabe");
    let o = OrderBy::parse("/px").unwrap();
    assert_eq!(
        o.compare(&json!({"px": 2}), &json!({"px": 2.0})),
        Ordering::Equal
    );
    for bad in ["", "/px SIDEWAYS", "/px,", "px", "/px DESC DESC"] {
        assert!(OrderBy::parse(bad).is_err(), "{bad:?}");
    }
}

/// §16 NVFIX typing and FIX strings, and filters over them.
#[test]
fn fix_payloads() {
    let nv = fix_to_value(b"a=\x01b=24\x01c=24.0\x01d=hello\x01", 1, true);
    assert_eq!(nv, json!({"a": null, "b": 24, "c": 24.0, "d": "hello"}));
    let f = Filter::parse("/a IS NULL AND /b = 24 AND /c > 23.5 AND /d LIKE '^h'").unwrap();
    assert!(f.matches(&nv));

    let fix = fix_to_value(b"35=D\x0155=IBM\x0138=100", 1, false);
    assert_eq!(fix, json!({"35": "D", "55": "IBM", "38": "100"}));
    assert!(
        Filter::parse("/55 = 'IBM' AND /38 > 50")
            .unwrap()
            .matches(&fix)
    );

    // Custom separators.
    assert_eq!(
        fix_to_value(b"55=IBM|38=7|", b'|', true),
        json!({"55": "IBM", "38": 7})
    );
    assert_eq!(fix_to_value(b"", 1, false), json!({}));
}
