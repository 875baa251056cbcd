//! The documented vectors of docs/protocol.md §13.2 and §13.3, embedded here because CI runs from
//! a fresh clone without the shared documents.

use amps_broker::filter::{Filter, FilterValue, Truth};
use serde_json::{Value, json};

fn filter(expr: &str) -> Filter {
    match Filter::parse(expr) {
        Ok(f) => f,
        Err(e) => panic!("{expr:?} does not parse: {e}"),
    }
}

/// Expressions without a message are evaluated against an empty object.
fn value(expr: &str) -> FilterValue {
    filter(expr).eval_value(&json!({}))
}

fn truth(expr: &str, doc: &Value) -> Truth {
    filter(expr).truth(doc)
}

/// §13.3, first table: expressions without a message.
#[test]
fn truth_table_without_message() {
    let cases: [(&str, FilterValue); 14] = [
        ("1 < 2", FilterValue::Bool(true)),
        ("10 < '2'", FilterValue::Bool(false)),
        ("'2.000' <> '2.0'", FilterValue::Bool(true)),
        ("2 = 2.0", FilterValue::Bool(true)),
        ("10 < 'Crank It Up'", FilterValue::Bool(true)),
        ("10 < ''", FilterValue::Bool(false)),
        ("10 > ''", FilterValue::Bool(false)),
        ("'' = ''", FilterValue::Bool(false)),
        ("'' IS NULL", FilterValue::Bool(true)),
        ("1 / 5", FilterValue::Int(0)),
        ("1.0 / 5", FilterValue::Float(0.2)),
        ("-5 % 3", FilterValue::Int(-2)),
        ("5 % -3", FilterValue::Int(2)),
        (
            "REVERSE(SUBSTR('fandango',5)) == 'ogna'",
            FilterValue::Bool(true),
        ),
    ];
    for (expr, want) in cases {
        assert_eq!(value(expr), want, "{expr}");
    }
}

/// §13.3, second table: arrays.
#[test]
fn truth_table_arrays() {
    let doc = json!({"data": [1, 2, 3, "zebra", 5], "other": [14, 34, 23, 5]});
    let cases = [
        ("/data = 1", true),
        ("/data = 'zebra'", true),
        ("/data != 'zebra'", true),
        ("/data = 42", false),
        ("/data LIKE 'z'", true),
        ("/other > 30", true),
        ("/other > 50", false),
        ("/data[0] = 1", true),
        ("/data[3] = \"zebra\"", true),
        ("/data[1] != 1", true),
        ("/other[1] LIKE '4'", true),
        ("/data = /other", true),
        ("/data != /other", true),
        ("3 IN (/data)", true),
        ("/data IN (1, 2, 3)", true),
        ("/data IN (\"zebra\", \"antelope\", \"lion\")", true),
        ("NOT /data IN (\"zebra\", \"antelope\", \"lion\")", false),
        ("/data NOT IN (\"zebra\", \"antelope\", \"lion\")", false),
    ];
    for (expr, want) in cases {
        assert_eq!(filter(expr).matches(&doc), want, "{expr}");
    }
}

/// §13.3: `/name = 'Gyro'` against `{"name":"Gyro", "job":"kitten"}`.
#[test]
fn gyro() {
    let doc = json!({"name": "Gyro", "job": "kitten"});
    assert!(filter("/name = 'Gyro'").matches(&doc));
    assert!(!filter("/job = 'Gyro'").matches(&doc));
}

/// §13.2: the documented three-valued table, left to right with short-circuit. NULL is
/// written both as the literal and as a missing field.
#[test]
fn three_valued_table() {
    let doc = json!({"t": 1, "f": 0});
    let cases = [
        ("TRUE_VALUE() AND NULL", Truth::Null),
        ("FALSE_VALUE() AND NULL", Truth::False),
        ("NULL AND FALSE_VALUE()", Truth::Null),
        ("TRUE_VALUE() OR NULL", Truth::True),
        ("FALSE_VALUE() OR NULL", Truth::Null),
        ("NULL OR TRUE_VALUE()", Truth::Null),
        ("NOT NULL", Truth::Null),
        ("/t = 1 AND /missing", Truth::Null),
        ("/t = 0 AND /missing", Truth::False),
        ("/missing AND /t = 0", Truth::Null),
        ("/t = 1 OR /missing", Truth::True),
        ("/t = 0 OR /missing", Truth::Null),
        ("/missing OR /t = 1", Truth::Null),
        ("NOT /missing", Truth::Null),
        // The remaining combinations, which follow from the same rules.
        ("TRUE_VALUE() AND TRUE_VALUE()", Truth::True),
        ("TRUE_VALUE() AND FALSE_VALUE()", Truth::False),
        ("NULL AND TRUE_VALUE()", Truth::Null),
        ("NULL AND NULL", Truth::Null),
        ("FALSE_VALUE() OR FALSE_VALUE()", Truth::False),
        ("NULL OR FALSE_VALUE()", Truth::Null),
        ("NOT TRUE_VALUE()", Truth::False),
        ("NOT FALSE_VALUE()", Truth::True),
        // Bare values as conditions: numbers are true when non-zero.
        ("/t", Truth::True),
        ("/f", Truth::False),
        ("/t AND /f", Truth::False),
    ];
    for (expr, want) in cases {
        assert_eq!(truth(expr, &doc), want, "{expr}");
    }
    // Only TRUE matches.
    assert!(!filter("TRUE_VALUE() AND NULL").matches(&doc));
    assert!(!filter("NOT NULL").matches(&doc));
}

/// §13.2: a comparison with NULL is FALSE (`!=` too), so NOT of it is TRUE.
#[test]
fn comparisons_with_null_are_false() {
    let doc = json!({"n": null, "e": "", "a": [], "x": 1});
    for lhs in ["/missing", "/n", "/e", "/a", "NULL", "''"] {
        for op in ["=", "!=", "<>", "<", "<=", ">", ">="] {
            let expr = format!("{lhs} {op} 1");
            assert_eq!(truth(&expr, &doc), Truth::False, "{expr}");
            let expr = format!("1 {op} {lhs}");
            assert_eq!(truth(&expr, &doc), Truth::False, "{expr}");
            let expr = format!("NOT {lhs} {op} /x");
            assert_eq!(truth(&expr, &doc), Truth::True, "{expr}");
        }
        assert_eq!(truth(&format!("{lhs} IS NULL"), &doc), Truth::True, "{lhs}");
        assert_eq!(
            truth(&format!("{lhs} IS NOT NULL"), &doc),
            Truth::False,
            "{lhs}"
        );
    }
}

/// §13.3: documented examples that must parse.
#[test]
fn documented_expressions_parse() {
    let exprs = [
        "/FIXML/Order/OrdQty/@Qty BETWEEN 0 AND 10000",
        "/FIXML/Order/@Px NOT BETWEEN 90.0 AND 90.5",
        "(/price * /qty) BETWEEN 0 AND 100000",
        "/Trade/OwnerID NOT IN ('JMB', 'BLH', 'CJB')",
        "/21964 IN (/14*5, /6*/14, 1000, 2000)",
        r#"(/FIXML/Order/Instrmt/@Sym LIKE "^IB.?$") AND (/FIXML/Order/@Px LIKE "^90\..*" AND /FIXML/Order/@Px < 91.0)"#,
        r#"(/client/country LIKE "(?i)^us$")"#,
        "/FIXML/Language LIKE r'C++'",
        r"/FIXML/Language LIKE 'C\+\+'",
        "/Department BEGINS WITH ('Engineering', 'Research', 'Technical')",
        "/path NOT BEGINS WITH ('/public/dropbox')",
        "/filename ENDS WITH ('gif', 'png', 'jpg')",
        r#"INSTR(/eventLevels, "critical") != 0"#,
        "STREQUAL_I(/couponCode, 'QED') == 1",
        "COALESCE(/userCategory, /employeeCategory, /vendorCategory, 'restricted') != 'restricted'",
        "( /counter % 3 ) == 0",
        "/Order/@Qty * /Order/@Prc >= 1000000",
        "(/orderType = 'rush' AND /customerType IN ('silver', 'gold') ) OR /customerType = 'platinum'",
        "/optionalField IS NOT NULL",
        "NOT /optionalField IS NULL",
        "1=1",
    ];
    for expr in exprs {
        filter(expr);
    }
}

/// The documented examples also do what they say.
#[test]
fn documented_expressions_evaluate() {
    let order = json!({"FIXML": {"Order": {"@Px": 90.25, "OrdQty": {"@Qty": 500},
                       "Instrmt": {"@Sym": "IBM"}}, "Language": "C++"}});
    assert!(filter("/FIXML/Order/OrdQty/@Qty BETWEEN 0 AND 10000").matches(&order));
    assert!(!filter("/FIXML/Order/@Px NOT BETWEEN 90.0 AND 90.5").matches(&order));
    assert!(filter(r#"(/FIXML/Order/Instrmt/@Sym LIKE "^IB.?$") AND (/FIXML/Order/@Px LIKE "^90\..*" AND /FIXML/Order/@Px < 91.0)"#).matches(&order));
    assert!(filter("/FIXML/Language LIKE r'C++'").matches(&order));
    assert!(
        filter(r#"(/client/country LIKE "(?i)^us$")"#)
            .matches(&json!({"client": {"country": "US"}}))
    );
    let fix = json!({"21964": "1000", "14": "10", "6": "7"});
    assert!(filter("/21964 IN (/14*5, /6*/14, 1000, 2000)").matches(&fix));
    assert!(
        filter("/21964 IN (/14*5, /6*/14, 1000, 2000)")
            .matches(&json!({"21964": 70, "14": 10, "6": 7}))
    );
    assert!(
        filter("/Department BEGINS WITH ('Engineering', 'Research')")
            .matches(&json!({"Department": "Research Lab"}))
    );
    assert!(
        filter("/path NOT BEGINS WITH ('/public/dropbox')").matches(&json!({"path": "/private/x"}))
    );
    assert!(
        !filter("/path NOT BEGINS WITH ('/public/dropbox')")
            .matches(&json!({"path": "/public/dropbox/x"}))
    );
    assert!(
        filter("/filename ENDS WITH ('gif', 'png', 'jpg')").matches(&json!({"filename": "a.png"}))
    );
    assert!(
        filter(r#"INSTR(/eventLevels, "critical") != 0"#)
            .matches(&json!({"eventLevels": "warn,critical"}))
    );
    assert!(
        !filter(r#"INSTR(/eventLevels, "critical") != 0"#).matches(&json!({"eventLevels": "warn"}))
    );
    assert!(filter("STREQUAL_I(/couponCode, 'QED') == 1").matches(&json!({"couponCode": "qed"})));
    let coalesce =
        "COALESCE(/userCategory, /employeeCategory, /vendorCategory, 'restricted') != 'restricted'";
    assert!(filter(coalesce).matches(&json!({"vendorCategory": "v"})));
    assert!(!filter(coalesce).matches(&json!({"userCategory": ""})));
    assert!(filter("( /counter % 3 ) == 0").matches(&json!({"counter": 9})));
    assert!(
        filter("/Order/@Qty * /Order/@Prc >= 1000000")
            .matches(&json!({"Order": {"@Qty": 1000, "@Prc": 1000}}))
    );
    let rush = "(/orderType = 'rush' AND /customerType IN ('silver', 'gold') ) OR /customerType = 'platinum'";
    assert!(filter(rush).matches(&json!({"orderType": "rush", "customerType": "gold"})));
    assert!(filter(rush).matches(&json!({"customerType": "platinum"})));
    assert!(!filter(rush).matches(&json!({"orderType": "slow", "customerType": "gold"})));
    assert!(filter("/optionalField IS NOT NULL").matches(&json!({"optionalField": 0})));
    assert!(!filter("NOT /optionalField IS NULL").matches(&json!({})));
    assert!(filter("1=1").matches(&json!({})));
}

/// §13.3: must fail as `bad filter`, with the offset of the problem.
#[test]
fn documented_failures() {
    let cases = [
        ("/v = = ((", 5),
        ("/x = 'abc", 5),
        ("(/x = 1", 7),
        ("/x IN (1,2", 10),
    ];
    for (expr, offset) in cases {
        match Filter::parse(expr) {
            Ok(_) => panic!("{expr:?} parsed"),
            Err(e) => {
                assert_eq!(e.offset, offset, "{expr:?}: {e}");
                assert!(
                    e.to_string()
                        .starts_with(&format!("bad filter at byte {offset}: "))
                );
            }
        }
    }
}
