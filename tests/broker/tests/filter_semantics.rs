//! Filter semantics beyond the documented vectors (docs/protocol.md §13): comparison and
//! arithmetic rules, paths, arrays, functions, predicates, errors and limits.

use amps_broker::filter::{Filter, FilterValue, MAX_NESTING, Truth, parse_json};
use serde_json::{Value, json};

fn filter(expr: &str) -> Filter {
    match Filter::parse(expr) {
        Ok(f) => f,
        Err(e) => panic!("{expr:?} does not parse: {e}"),
    }
}

fn eval(expr: &str, doc: &Value) -> FilterValue {
    filter(expr).eval_value(doc)
}

fn check(doc: &Value, cases: &[(&str, bool)]) {
    for (expr, want) in cases {
        assert_eq!(filter(expr).matches(doc), *want, "{expr} on {doc}");
    }
}

fn bad(expr: &str) -> String {
    match Filter::parse(expr) {
        Ok(_) => panic!("{expr:?} parsed"),
        Err(e) => e.message,
    }
}

#[test]
fn numeric_and_string_comparisons() {
    let doc = json!({"i": 10, "f": 2.5, "s": "10", "t": "abc", "big": 18446744073709551615u64,
                     "neg": -3, "b": true, "sp": " 7 "});
    check(
        &doc,
        &[
            ("/i = 10.0", true),
            ("/i > /f", true),
            ("/s = 10", true),
            ("/s = /i", true),
            ("/s > 9", true),
            ("/s > '9'", false), // string vs string: byte-wise
            ("/t > 1000000", true),
            ("/t < 0", false),
            ("/t = 0", false),
            ("/t != 0", true),
            ("/t > 'abb'", true),
            ("/big > 9223372036854775807", true),
            ("/big = 18446744073709551615", true),
            ("/big > 1.8e19", true),
            ("/neg < -2.5", true),
            ("/neg >= -3", true),
            ("/b = 1", true),
            ("/b = 'true'", true),
            ("/b = TRUE_VALUE()", true),
            ("/b = 0", false),
            ("/sp = 7", true),
            ("9007199254740993 > 9007199254740992.0", true),
            ("'a' < 'b'", true),
            ("'B' < 'a'", true),
            ("'é' > 'z'", true),
            ("/i == 10 AND /i <> 11 AND /i >= 10 AND /i <= 10", true),
        ],
    );
}

#[test]
fn arithmetic() {
    let doc = json!({"a": 7, "b": 2, "s": "3", "x": "abc", "f": 1.5, "arr": [4, 5]});
    let cases = [
        ("/a + /b", FilterValue::Int(9)),
        ("/a - /b * 3", FilterValue::Int(1)),
        ("(/a - /b) * 3", FilterValue::Int(15)),
        ("/a / /b", FilterValue::Int(3)),
        ("-7 / 2", FilterValue::Int(-3)),
        ("/a % /b", FilterValue::Int(1)),
        ("/a MOD 4", FilterValue::Int(3)),
        ("/a mod 4", FilterValue::Int(3)),
        ("-/a % 4", FilterValue::Int(-3)),
        ("5.5 % 2", FilterValue::Float(1.5)),
        ("-5.5 % 2", FilterValue::Float(-1.5)),
        ("/a * /f", FilterValue::Float(10.5)),
        ("/s + 1", FilterValue::Int(4)),
        ("/s * 1.5", FilterValue::Float(4.5)),
        ("/arr + 1", FilterValue::Int(5)),
        ("10/2", FilterValue::Int(5)),
        ("/missing + 1", FilterValue::Null),
        ("1 + NULL", FilterValue::Null),
        ("'' * 2", FilterValue::Null),
        ("/a / 0", FilterValue::Null),
        ("/a % 0", FilterValue::Null),
        ("/f / 0.0", FilterValue::Null),
        (
            "9223372036854775807 + 1",
            FilterValue::UInt(9223372036854775808),
        ),
        ("-9223372036854775808", FilterValue::Int(i64::MIN)),
        (
            "18446744073709551615 + 1",
            FilterValue::Float(18446744073709551616.0),
        ),
        ("- - 3", FilterValue::Int(3)),
        ("+3", FilterValue::Int(3)),
        ("2.5e1", FilterValue::Float(25.0)),
        ("31.4e-1 > 3.1 AND 31.4e-1 < 3.2", FilterValue::Bool(true)),
        ("TRUE_VALUE() + TRUE_VALUE()", FilterValue::Int(2)),
    ];
    for (expr, want) in cases {
        assert_eq!(eval(expr, &doc), want, "{expr}");
    }
    // Integers read from strings may exceed i64/u64; results that do not fit become floats.
    let huge =
        json!({"min": "-170141183460469231731687303715884105728", "big": "99999999999999999999"});
    for expr in [
        "-/min",
        "/min - 1",
        "/min * -1",
        "/min / -1",
        "/min % -1",
        "/big * /big",
    ] {
        assert!(matches!(eval(expr, &huge), FilterValue::Float(_)), "{expr}");
    }
    assert_eq!(
        eval("/big > 18446744073709551615", &huge),
        FilterValue::Bool(true)
    );
    // Unconvertible strings are NaN: every comparison but `!=` is false.
    assert!(matches!(eval("/x + 1", &doc), FilterValue::Float(f) if f.is_nan()));
    check(
        &doc,
        &[
            ("/x + 1 = 1", false),
            ("/x + 1 != 1", true),
            ("/x + 1 > 1", false),
            ("/x + 1 < 1", false),
        ],
    );
}

#[test]
fn nested_paths_and_subscripts() {
    let doc = parse_json(
        br#"{"order":{"id":"A1","lines":[{"sku":"x","qty":2},{"sku":"y","qty":5}],"tags":["a","b"]},
            "Not Xpath Name":1,"@attr":"v","m":[[1,2],[3]],"55":"IBM","a.b":3}"#,
    )
    .unwrap();
    check(
        &doc,
        &[
            ("/order/id = 'A1'", true),
            ("/order/lines[1]/qty = 5", true),
            ("/order/lines/1/sku = 'y'", true),
            ("/order/lines[2]/qty IS NULL", true),
            ("/order/tags = 'b'", true),
            ("/order/tags[0] = 'b'", false),
            ("[/Not Xpath Name] = 1", true),
            ("/@attr = 'v'", true),
            ("/m[1][0] = 3", true),
            ("/m = 2", false), // nested arrays count by their first element
            ("/m = 3", true),
            ("/m = 1", true),
            ("/55 = 'IBM'", true),
            ("/a.b = 3", true),
            ("/order IS NOT NULL", true),
            ("/order = 1", false), // objects compare with nothing
            ("/order/id/deeper IS NULL", true),
        ],
    );
}

#[test]
fn arrays() {
    let doc = json!({"a": [1, 5, 9], "s": ["x", "yz"], "e": [], "n": [null], "mix": ["3", 4]});
    check(
        &doc,
        &[
            ("/a BETWEEN 4 AND 6", true),
            ("/a BETWEEN 6 AND 8", false),
            ("/a NOT BETWEEN 4 AND 6", false),
            ("/a > 8", true),
            ("/a < 1", false),
            ("/a IN (9, 10)", true),
            ("/a NOT IN (9, 10)", false),
            ("/s LIKE '^y'", true),
            ("/s BEGINS WITH ('y')", true),
            ("/s ENDS WITH ('q')", false),
            ("/e IS NULL", true),
            ("/e = /e", false),
            ("/n IS NULL", false), // non-empty array
            ("/n = 1", false),
            ("/mix = 3", true),
            ("/a = /mix", false),
            ("/mix = 4", true),
            ("UPPER(/s) = 'X'", true),
            ("/a * 2 = 2", true), // arithmetic uses the first element
        ],
    );
}

#[test]
fn between_and_in() {
    let doc = json!({"x": 5, "s": "m"});
    check(
        &doc,
        &[
            ("/x BETWEEN 5 AND 5", true),
            ("/x BETWEEN 6 AND 4", false),
            ("/x BETWEEN 1 + 1 AND 2 * 3", true),
            ("/x NOT BETWEEN 6 AND 9", true),
            ("/s BETWEEN 'a' AND 'z'", true),
            ("/missing BETWEEN 1 AND 9", false),
            ("/missing NOT BETWEEN 1 AND 9", true), // NOT (BETWEEN), like NOT IN (§13.2)
            ("/x IN (5)", true),
            ("/x IN ('5', 6)", true),
            ("/x IN (NULL, 6)", false),
            ("/missing IN (NULL)", false),
            ("/missing NOT IN (1)", true),
            ("/x BETWEEN 1 AND 9 AND /s = 'm'", true),
        ],
    );
}

#[test]
fn like_begins_ends() {
    let doc =
        json!({"s": "Hello World", "n": 1234, "f": 1.0, "b": true, "nl": "a\nb", "sp": "a.b"});
    check(
        &doc,
        &[
            ("/s LIKE 'World'", true), // unanchored
            ("/s LIKE '^World'", false),
            ("/s LIKE 'world'", false),
            ("/s LIKE '(?i)world'", true),
            ("/s NOT LIKE 'xyz'", true),
            ("/s like 'W.rld$'", true),
            ("/n LIKE '^12'", true),
            ("/f LIKE '^1\\\\.0$'", true),
            ("/b LIKE 'ru'", true),
            ("/missing LIKE '.*'", false),
            ("/missing NOT LIKE 'a'", true),
            ("/s LIKE ''", false),
            ("/nl LIKE 'a\\nb'", true),
            ("/sp LIKE r'a\\.b'", true),
            ("/sp LIKE r'^a\\.b$'", true),
            ("/s BEGINS WITH ('Hell', 'x')", true),
            ("/s begins with ('hell')", false),
            ("/s ENDS WITH ('x', 'World')", true),
            ("/s NOT ENDS WITH ('World')", false),
            ("/n BEGINS WITH ('12')", true),
            ("/n ENDS WITH (34)", true),
            ("/s BEGINS WITH (/missing)", false),
            ("/missing NOT BEGINS WITH ('a')", true),
        ],
    );
    // `\.` inside a non-raw string is `.`; a raw string keeps the backslash for the regex.
    check(
        &json!({"sp": "a.b", "sx": "axb"}),
        &[("/sx LIKE r'a\\.b'", false), ("/sx LIKE 'a\\.b'", true)],
    );
    check(
        &json!({"sp": "a.b"}),
        &[
            ("/sp LIKE R\"^a[.]b$\"", true),
            ("/sp LIKE r'^a\\.c$'", false),
        ],
    );
}

#[test]
fn is_null_and_is_nan() {
    let doc = json!({"n": null, "z": 0, "s": "abc", "d": "12", "o": {}});
    check(
        &doc,
        &[
            ("/n IS NULL", true),
            ("/z IS NULL", false),
            ("/z IS NOT NULL", true),
            ("/o IS NULL", false),
            ("/s IS NAN", true),
            ("/s IS NOT NAN", false),
            ("/d IS NAN", false),
            ("/z IS NAN", false),
            ("/n IS NAN", false),
            ("/s * 2 IS NAN", true),
            ("/missing + 1 IS NULL", true),
            ("/z is not null", true),
        ],
    );
}

#[test]
fn functions() {
    let doc = json!({"s": "Fandango", "n": 42, "arr": ["first", "second"], "e": ""});
    let cases = [
        ("UPPER(/s)", FilterValue::Text("FANDANGO".into())),
        ("lower(/s)", FilterValue::Text("fandango".into())),
        ("UPPER('straße')", FilterValue::Text("STRAßE".into())), // ASCII only
        ("UPPER(/n)", FilterValue::Text("42".into())),
        ("UPPER(/missing)", FilterValue::Null),
        ("INSTR(/s, 'dan')", FilterValue::Int(4)),
        ("INSTR(/s, 'DAN')", FilterValue::Int(0)),
        ("INSTR_I(/s, 'DAN')", FilterValue::Int(4)),
        ("INSTR(/missing, 'a')", FilterValue::Null),
        ("STREQUAL_I(/s, 'FANDANGO')", FilterValue::Int(1)),
        ("STREQUAL_I(/s, 'FANDANG')", FilterValue::Int(0)),
        ("SUBSTR(/s, 5)", FilterValue::Text("ango".into())),
        ("SUBSTR(/s, 2, 3)", FilterValue::Text("and".into())),
        ("SUBSTR(/s, -3)", FilterValue::Text("ngo".into())),
        ("SUBSTR(/s, 20)", FilterValue::Null),
        ("SUBSTR(/s, '2', 2.9)", FilterValue::Text("an".into())),
        ("REVERSE(/s)", FilterValue::Text("ognadnaF".into())),
        (
            "CONCAT(/s, '-', /n)",
            FilterValue::Text("Fandango-42".into()),
        ),
        ("CONCAT(/missing, /s)", FilterValue::Text("Fandango".into())),
        ("CONCAT(/missing)", FilterValue::Null),
        ("COALESCE(/missing, /e, /n, 'x')", FilterValue::Int(42)),
        ("COALESCE(/missing, /e)", FilterValue::Null),
        ("COALESCE(/arr)", FilterValue::Text("first".into())),
        (
            "IF(/n > 40, 'big', 'small')",
            FilterValue::Text("big".into()),
        ),
        (
            "IF(/n > 50, 'big', 'small')",
            FilterValue::Text("small".into()),
        ),
        ("IF(/missing, 'yes', 'no')", FilterValue::Text("no".into())),
        ("TRUE_VALUE()", FilterValue::Bool(true)),
        ("false_value()", FilterValue::Bool(false)),
        ("UPPER(/arr)", FilterValue::Text("FIRST".into())),
    ];
    for (expr, want) in cases {
        assert_eq!(eval(expr, &doc), want, "{expr}");
    }
    check(
        &doc,
        &[
            ("TRUE_VALUE() = 1", true),
            ("FALSE_VALUE() = 0", true),
            ("TRUE_VALUE()", true),
            ("FALSE_VALUE()", false),
            ("IF(1 = 1, TRUE_VALUE(), FALSE_VALUE())", true),
            ("(1 < 2) = 1", true),
        ],
    );
}

#[test]
fn function_errors() {
    assert!(bad("NOPE(/a)").contains("unknown function"));
    assert!(bad("UPPER(/a, /b)").contains("UPPER takes 1 argument"));
    assert!(bad("SUBSTR(/a)").contains("2 to 3"));
    assert!(bad("TRUE_VALUE(1)").contains("0 argument"));
    assert!(bad("COALESCE()").contains("at least 1"));
    assert!(bad("IF(1, 2)").contains("3 argument"));
    assert!(bad("AND(1)").contains("keyword"));
}

#[test]
fn syntax() {
    let doc = json!({"a": 1, "b": "x'y", "c": "q\"", "t": "\t"});
    check(
        &doc,
        &[
            ("/a = 1 and /b = \"x'y\" Or /a = 2", true),
            ("/b = 'x\\'y'", true),
            ("/c = \"q\\\"\"", true),
            ("/t = '\\t'", true),
            ("/t = '\\x09'", true),
            ("/t = '\\011'", true),
            ("/t = '\\11'", true),
            ("/a=1", true),
            ("((((/a = 1))))", true),
            ("NOT NOT /a = 1", true),
            ("/a = 1 AND NOT /a = 2", true),
            ("/a = 1 OR /a = 2 AND /a = 3", true), // AND binds tighter than OR
            ("(/a = 1 OR /a = 2) AND /a = 3", false),
            ("NOT /a = 2 AND /a = 1", true), // NOT binds tighter than AND
            ("/a + 1 = 2", true),            // arithmetic binds tighter than comparison
            ("/a = 0.5 * 2", true),
            ("6.022E23 > 1", true),
        ],
    );
    for expr in [
        "",
        "   ",
        "/a =",
        "= 1",
        "/a = 1 AND",
        "/a = 1 /b = 2",
        "/a 1",
        "/a = 1)",
        "()",
        "/a IN ()",
        "/a IN 1",
        "/a LIKE /b",
        "/a LIKE 1",
        "/a BETWEEN 1",
        "/a BETWEEN 1 OR 2",
        "/a IS 1",
        "/a NOT = 1",
        "/a BEGINS ('x')",
        "/a BEGINS WITH 'x'",
        "a = 1",
        "/a = TRUE",
        "/a == == 1",
        "/a = 'x' 'y'",
        "/a = 1 = 1",
        "/a-b = 1 2",
        "/a = 99999999999999999999",
        "/a = 1e999",
        "/a = 'bad \\xff'",
        "/a ~ 1",
        "[/a = 1",
        "//a = 1",
        "/a[x] = 1",
        "/a = r'open",
        "/a LIKE r'(.)\\1'",
        "/a LIKE '(.)\\\\1'",
        "/a LIKE 'a(?=b)'",
        "/a LIKE '['",
        "/a IS NOT",
        "NOT",
        "/a ! 1",
        "/a < > 1",
        "/a = .",
        "/a = 1..2",
        "1 2",
        "(/a = 1",
        "/a = (1",
        "UPPER(/a",
        "UPPER(/a,)",
    ] {
        assert!(Filter::parse(expr).is_err(), "{expr:?} should not parse");
    }
    assert!(bad("/a LIKE r'(.)\\1'").contains("backreferences"));
    // Pattern size is bounded (network input), yet ordinary patterns fit.
    assert!(bad("/a LIKE r'\\w{1000}'").contains("LIKE pattern"));
    filter("/a LIKE r'(?i)^\\w{30}@\\w{1,20}\\.com$'");
    // With the documented escapes `\1` is the octal escape for byte 1, not a backreference,
    // so the documented `/state LIKE '(.)\1'` compiles.
    assert!(filter("/state LIKE '(.)\\1'").matches(&json!({"state": "a\u{1}"})));
}

#[test]
fn error_offsets() {
    let at = |expr: &str| Filter::parse(expr).err().map(|e| e.offset);
    assert_eq!(at(""), Some(0));
    assert_eq!(at("/a = 1 AND"), Some(10));
    assert_eq!(at("/a = 1 $"), Some(7));
    assert_eq!(at("/a = 1 )"), Some(7));
    assert_eq!(at("/a LIKE r'(.)\\1'"), Some(8));
    assert_eq!(at("/a = NOPE(1)"), Some(5));
    assert_eq!(at("/a = 'x' AND /b = 'é"), Some(18));
}

#[test]
fn nesting_is_bounded() {
    let ok = format!(
        "{}1 = 1{}",
        "(".repeat(MAX_NESTING - 1),
        ")".repeat(MAX_NESTING - 1)
    );
    assert!(filter(&ok).matches(&json!({})));
    for deep in [
        format!("{}1 = 1{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("{}1 = 1", "NOT ".repeat(100_000)),
        format!("{}1 = 1", "-".repeat(100_000)),
        format!("{}1{} = 1", "UPPER(".repeat(100_000), ")".repeat(100_000)),
        format!("/a IN {}1{}", "(".repeat(100_000), ")".repeat(100_000)),
    ] {
        let e = Filter::parse(&deep).err().map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("nested deeper")));
    }
    // Long flat chains are not nesting: they stay flat and evaluate without deep recursion.
    let chain = vec!["/a = 1"; 50_000].join(" OR ");
    assert!(filter(&chain).matches(&json!({"a": 1})));
    let sum = format!("1{} = 50001", " + 1".repeat(50_000));
    assert!(filter(&sum).matches(&json!({})));
}

#[test]
fn truth_of_values() {
    let doc =
        json!({"t": "true", "f": "FALSE", "one": "1", "zero": "0.0", "word": "abc", "o": {"a": 1}});
    let cases = [
        ("/t", Truth::True),
        ("/f", Truth::False),
        ("/one", Truth::True),
        ("/zero", Truth::False),
        ("/word", Truth::Null),
        ("/o", Truth::Null),
        ("0.5", Truth::True),
        ("/word + 1", Truth::False), // NaN
    ];
    for (expr, want) in cases {
        assert_eq!(filter(expr).truth(&doc), want, "{expr}");
    }
}
