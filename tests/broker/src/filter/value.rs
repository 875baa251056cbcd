//! Values seen by the filter evaluator, and the comparison and arithmetic rules of
//! docs/protocol.md §13.2.
//!
//! Document values are borrowed (`Val::Str` holds a `Cow`), so a filter over strings and
//! numbers runs without allocating.

use core::cmp::Ordering;
use core::fmt::{self, Write as _};
use std::borrow::Cow;

use serde_json::{Map, Number, Value};

/// A value during evaluation. Empty strings and empty arrays never appear: they are `Null`
/// (§13.1).
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    /// Missing field, JSON `null`, `""`, `[]`, or the result of a NULL operation.
    Null,
    /// JSON `true`/`false`, `TRUE_VALUE()`, or a logical result; numerically 1 and 0 (§13.1).
    Bool(bool),
    /// Any integer; always within `i64::MIN..=u64::MAX` (larger results become floats).
    Int(i128),
    /// A float (may be NaN after converting an unconvertible string, §13.2).
    Float(f64),
    /// A non-empty string.
    Str(Cow<'a, str>),
    /// A non-empty JSON array from the document (comparisons are ANY, §13.2).
    Array(&'a [Value]),
    /// A JSON object: present (not NULL) but comparable with nothing.
    Object(&'a Map<String, Value>),
}

/// A number for arithmetic and numeric comparison: integers exactly, floats as `f64`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num {
    /// Integer (i128 holds every i64 and u64 exactly).
    I(i128),
    /// Float.
    F(f64),
}

/// Three-valued logic (§13.2): the result of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Truth {
    /// The condition holds; only this makes a filter match.
    True,
    /// The condition does not hold.
    False,
    /// Unknown (NULL operand of a logical operator, or a non-boolean value).
    Null,
}

impl From<bool> for Truth {
    fn from(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }
}

/// Comparison operators of §13.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Arithmetic operators of §13.2 (`MOD` is `Mod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// Outcome of comparing two scalars.
enum Cmp {
    /// A NULL (or object) operand: every comparison is FALSE, `!=` included (§13.2).
    Null,
    /// A NaN operand: IEEE rules, only `!=` holds.
    Unordered,
    /// Ordered.
    Ord(Ordering),
}

impl<'a> Val<'a> {
    /// Read a document value (§13.1: `null`, `""`, `[]` are NULL).
    pub(crate) fn from_json(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Number(n) => number(n),
            Value::String(s) if s.is_empty() => Val::Null,
            Value::String(s) => Val::Str(Cow::Borrowed(s)),
            Value::Array(items) if items.is_empty() => Val::Null,
            Value::Array(items) => Val::Array(items),
            Value::Object(map) => Val::Object(map),
        }
    }

    /// A string result; the empty string is NULL (§13.1).
    pub(crate) fn string(s: Cow<'a, str>) -> Val<'a> {
        if s.is_empty() { Val::Null } else { Val::Str(s) }
    }

    /// The value arithmetic and functions see: arrays by their first element (§13.2).
    pub(crate) fn scalar(self) -> Val<'a> {
        let mut cur = self;
        // Iterative: nested arrays are followed by first element without recursion.
        while let Val::Array(items) = cur {
            cur = items.first().map_or(Val::Null, Val::from_json);
        }
        cur
    }

    /// True for NULL.
    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Val::Null)
    }
}

/// Integer result, or a float when it does not fit i64/u64.
pub(crate) fn int(i: i128) -> Val<'static> {
    if i >= i128::from(i64::MIN) && i <= i128::from(u64::MAX) {
        Val::Int(i)
    } else {
        Val::Float(i as f64)
    }
}

fn number(n: &Number) -> Val<'static> {
    if let Some(i) = n.as_i64() {
        Val::Int(i.into())
    } else if let Some(u) = n.as_u64() {
        Val::Int(u.into())
    } else {
        Val::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Convert a string to a number if all of it is one (§13.2): optional sign, digits with an
/// optional fraction, optional exponent; surrounding ASCII whitespace allowed. `inf`/`nan`
/// spellings are not numbers.
pub(crate) fn parse_number(s: &str) -> Option<Num> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let b = t.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    let mut is_float = false;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        is_float = true;
        i += 1;
        frac_digits = digits(&mut i);
    }
    if int_digits + frac_digits == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        is_float = true;
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    if !is_float && let Ok(v) = t.parse::<i128>() {
        return Some(Num::I(v));
    }
    t.parse::<f64>().ok().map(Num::F)
}

/// The number a value stands for in arithmetic (§13.2): NULL and objects have none; strings
/// are converted, unconvertible ones are NaN; booleans are 1 and 0; arrays by first element.
pub(crate) fn to_num(v: &Val<'_>) -> Option<Num> {
    match v {
        Val::Null | Val::Object(_) => None,
        Val::Bool(b) => Some(Num::I(i128::from(*b))),
        Val::Int(i) => Some(Num::I(*i)),
        Val::Float(f) => Some(Num::F(*f)),
        Val::Str(s) => Some(parse_number(s).unwrap_or(Num::F(f64::NAN))),
        Val::Array(_) => to_num(&v.clone().scalar()),
    }
}

/// Exact numeric ordering; `None` when a NaN is involved.
pub(crate) fn cmp_num(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::I(x), Num::I(y)) => Some(x.cmp(&y)),
        (Num::F(x), Num::F(y)) => x.partial_cmp(&y),
        (Num::I(x), Num::F(y)) => cmp_int_float(x, y),
        (Num::F(x), Num::I(y)) => cmp_int_float(y, x).map(Ordering::reverse),
    }
}

/// Compare an integer with a float without rounding the integer (so that the order stays
/// transitive for integers above 2^53).
fn cmp_int_float(i: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    const TWO_POW_127: f64 = 170_141_183_460_469_231_731_687_303_715_884_105_728.0;
    if f >= TWO_POW_127 {
        return Some(Ordering::Less);
    }
    if f < -TWO_POW_127 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    // Exact: `t` is integral and within i128.
    let ti = t as i128;
    Some(i.cmp(&ti).then(if f > t {
        Ordering::Less
    } else if f < t {
        Ordering::Greater
    } else {
        Ordering::Equal
    }))
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// §13.2 comparison of two non-array values.
fn cmp_scalars(l: &Val<'_>, r: &Val<'_>) -> Cmp {
    let ordered = |o: Option<Ordering>| o.map_or(Cmp::Unordered, Cmp::Ord);
    match (l, r) {
        (Val::Null | Val::Object(_) | Val::Array(_), _)
        | (_, Val::Null | Val::Object(_) | Val::Array(_)) => Cmp::Null,
        (Val::Str(a), Val::Str(b)) => Cmp::Ord(a.as_bytes().cmp(b.as_bytes())),
        // Our reading: a JSON boolean compared with a string compares as its text.
        (Val::Str(s), Val::Bool(b)) => Cmp::Ord(s.as_bytes().cmp(bool_text(*b).as_bytes())),
        (Val::Bool(b), Val::Str(s)) => Cmp::Ord(bool_text(*b).as_bytes().cmp(s.as_bytes())),
        (Val::Str(s), n) => match (parse_number(s), to_num(n)) {
            (Some(x), Some(y)) => ordered(cmp_num(x, y)),
            // Unconvertible string: greater than every number (§13.2).
            _ => Cmp::Ord(Ordering::Greater),
        },
        (n, Val::Str(s)) => match (to_num(n), parse_number(s)) {
            (Some(x), Some(y)) => ordered(cmp_num(x, y)),
            _ => Cmp::Ord(Ordering::Less),
        },
        (a, b) => match (to_num(a), to_num(b)) {
            (Some(x), Some(y)) => ordered(cmp_num(x, y)),
            _ => Cmp::Null,
        },
    }
}

impl CmpOp {
    fn holds(self, c: Cmp) -> bool {
        match c {
            Cmp::Null => false,
            Cmp::Unordered => self == CmpOp::Ne,
            Cmp::Ord(o) => match self {
                CmpOp::Eq => o == Ordering::Equal,
                CmpOp::Ne => o != Ordering::Equal,
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Le => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::Ge => o != Ordering::Less,
            },
        }
    }
}

/// `l op r` with the array rule of §13.2: true if ANY element (any pair for two arrays)
/// satisfies it. Elements that are arrays count by their first element.
pub(crate) fn compare(l: &Val<'_>, op: CmpOp, r: &Val<'_>) -> bool {
    match (l, r) {
        (Val::Array(a), Val::Array(b)) => a.iter().any(|x| {
            let x = element(x);
            b.iter().any(|y| op.holds(cmp_scalars(&x, &element(y))))
        }),
        (Val::Array(a), _) => a.iter().any(|x| op.holds(cmp_scalars(&element(x), r))),
        (_, Val::Array(b)) => b.iter().any(|y| op.holds(cmp_scalars(l, &element(y)))),
        _ => op.holds(cmp_scalars(l, r)),
    }
}

/// An array element as an operand: nested arrays count by their first element.
fn element(v: &Value) -> Val<'_> {
    Val::from_json(v).scalar()
}

/// `l op r` for arithmetic (§13.2).
pub(crate) fn arith(l: &Val<'_>, op: ArithOp, r: &Val<'_>) -> Val<'static> {
    let (Some(a), Some(b)) = (to_num(l), to_num(r)) else {
        return Val::Null;
    };
    match (a, b) {
        (Num::I(x), Num::I(y)) => {
            let exact = match op {
                ArithOp::Add => x.checked_add(y),
                ArithOp::Sub => x.checked_sub(y),
                ArithOp::Mul => x.checked_mul(y),
                // Our convention: division or modulo by zero is NULL.
                ArithOp::Div if y == 0 => return Val::Null,
                ArithOp::Mod if y == 0 => return Val::Null,
                // Truncating division: `1 / 5` = 0; `%` keeps the sign of the left operand.
                ArithOp::Div => x.checked_div(y),
                ArithOp::Mod => x.checked_rem(y),
            };
            match exact {
                Some(v) => int(v),
                None => float_arith(x as f64, op, y as f64),
            }
        }
        (x, y) => float_arith(as_f64(x), op, as_f64(y)),
    }
}

fn as_f64(n: Num) -> f64 {
    match n {
        Num::I(i) => i as f64,
        Num::F(f) => f,
    }
}

fn float_arith(x: f64, op: ArithOp, y: f64) -> Val<'static> {
    Val::Float(match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div | ArithOp::Mod if y == 0.0 => return Val::Null,
        ArithOp::Div => x / y,
        ArithOp::Mod => x % y,
    })
}

/// Unary minus: NULL stays NULL, strings are converted.
pub(crate) fn negate(v: &Val<'_>) -> Val<'static> {
    match to_num(v) {
        None => Val::Null,
        // Integers read from strings may be any i128; only i128::MIN has no negation.
        Some(Num::I(i)) => i.checked_neg().map_or(Val::Float(-(i as f64)), int),
        Some(Num::F(f)) => Val::Float(-f),
    }
}

/// The truth of a value used as a condition: booleans as such, numbers non-zero, strings that
/// read as a number or as `true`/`false`; anything else is unknown (NULL).
pub(crate) fn truth(v: &Val<'_>) -> Truth {
    let num_truth = |n: Num| match n {
        Num::I(i) => Truth::from(i != 0),
        Num::F(f) => Truth::from(f != 0.0 && !f.is_nan()),
    };
    match v {
        Val::Null | Val::Object(_) => Truth::Null,
        Val::Bool(b) => Truth::from(*b),
        Val::Int(i) => Truth::from(*i != 0),
        Val::Float(f) => num_truth(Num::F(*f)),
        Val::Str(s) => match parse_number(s) {
            Some(n) => num_truth(n),
            None if s.eq_ignore_ascii_case("true") => Truth::True,
            None if s.eq_ignore_ascii_case("false") => Truth::False,
            None => Truth::Null,
        },
        Val::Array(_) => truth(&v.clone().scalar()),
    }
}

/// Text of a scalar for LIKE, BEGINS/ENDS WITH and string functions: strings as they are,
/// numbers as serde_json writes them, booleans `true`/`false`. Numbers are formatted into an
/// inline buffer, so no allocation.
pub(crate) enum Text<'t> {
    Borrowed(&'t str),
    Inline(InlineText),
}

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Inline(buf) => buf.as_str(),
        }
    }
}

/// Small stack buffer for formatted numbers (an f64 or i128 needs at most 40 bytes).
pub(crate) struct InlineText {
    buf: [u8; 48],
    len: usize,
}

impl InlineText {
    fn format(args: fmt::Arguments<'_>) -> InlineText {
        let mut t = InlineText {
            buf: [0; 48],
            len: 0,
        };
        if t.write_fmt(args).is_err() {
            t.len = 0;
        }
        t
    }

    fn as_str(&self) -> &str {
        self.buf
            .get(..self.len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl fmt::Write for InlineText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Text of a non-array value; NULL and objects have none.
pub(crate) fn text<'t>(v: &'t Val<'_>) -> Option<Text<'t>> {
    match v {
        Val::Null | Val::Object(_) | Val::Array(_) => None,
        Val::Str(s) => Some(Text::Borrowed(s)),
        Val::Bool(b) => Some(Text::Borrowed(bool_text(*b))),
        Val::Int(i) => Some(Text::Inline(InlineText::format(format_args!("{i}")))),
        Val::Float(f) => Some(Text::Inline(match Number::from_f64(*f) {
            Some(n) => InlineText::format(format_args!("{n}")),
            None if f.is_nan() => InlineText::format(format_args!("NaN")),
            None if *f > 0.0 => InlineText::format(format_args!("inf")),
            None => InlineText::format(format_args!("-inf")),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_conversion() {
        assert!(matches!(parse_number("42"), Some(Num::I(42))));
        assert!(matches!(parse_number(" -7 "), Some(Num::I(-7))));
        assert!(matches!(parse_number("2.5e1"), Some(Num::F(f)) if f == 25.0));
        assert!(matches!(parse_number(".5"), Some(Num::F(f)) if f == 0.5));
        for bad in [
            "", "abc", "1e", "inf", "NaN", "1.2.3", "--1", ".", "+", "1 2",
        ] {
            assert!(parse_number(bad).is_none(), "{bad:?}");
        }
        assert!(matches!(
            parse_number("99999999999999999999999999999999999999999"),
            Some(Num::F(_))
        ));
    }

    #[test]
    fn exact_int_float_order() {
        let big = 1i128 << 53;
        assert_eq!(
            cmp_num(Num::I(big + 1), Num::F(big as f64)),
            Some(Ordering::Greater)
        );
        assert_eq!(cmp_num(Num::I(2), Num::F(2.0)), Some(Ordering::Equal));
        assert_eq!(cmp_num(Num::I(2), Num::F(2.5)), Some(Ordering::Less));
        assert_eq!(cmp_num(Num::I(-2), Num::F(-2.5)), Some(Ordering::Greater));
        assert_eq!(
            cmp_num(Num::F(1e300), Num::I(i128::MAX)),
            Some(Ordering::Greater)
        );
        assert_eq!(cmp_num(Num::F(f64::NAN), Num::I(1)), None);
    }

    #[test]
    fn text_of_numbers() {
        let t = |v: Val<'_>| text(&v).map(|t| t.as_str().to_string());
        assert_eq!(t(Val::Int(34)).as_deref(), Some("34"));
        assert_eq!(t(Val::Float(1.0)).as_deref(), Some("1.0"));
        assert_eq!(t(Val::Float(f64::NAN)).as_deref(), Some("NaN"));
        assert_eq!(
            t(Val::Int(i128::from(u64::MAX))).as_deref(),
            Some("18446744073709551615")
        );
    }

    #[test]
    fn integer_overflow_becomes_float() {
        let max = Val::Int(i128::from(u64::MAX));
        assert!(matches!(arith(&max, ArithOp::Mul, &max), Val::Float(_)));
        assert!(matches!(
            arith(&Val::Int(i128::from(i64::MIN)), ArithOp::Mod, &Val::Int(-1)),
            Val::Int(0)
        ));
    }
}
