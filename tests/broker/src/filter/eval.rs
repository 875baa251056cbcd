//! Evaluation of a compiled filter against a document (docs/protocol.md §13.2).
//!
//! Two entry points per node: `truth` (three-valued, used by logical operators and by
//! [`Filter::matches`](super::Filter::matches)) and `value` (used by operands). Logical nodes
//! read as values give `TRUE`/`FALSE` booleans (1 and 0) or NULL; value nodes read as
//! conditions go through [`truth`].

use std::borrow::Cow;

use serde_json::Value;

use super::parser::Expr;
use super::value::{CmpOp, Num, Text, Truth, Val, arith, compare, negate, text, to_num, truth};

/// Functions of the documented subset (§13.2). Names are case-insensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Upper,
    Lower,
    Instr,
    InstrI,
    StrequalI,
    Substr,
    Reverse,
    Concat,
    Coalesce,
    If,
    TrueValue,
    FalseValue,
}

const FUNCS: [(&str, Func, usize, Option<usize>); 12] = [
    ("UPPER", Func::Upper, 1, Some(1)),
    ("LOWER", Func::Lower, 1, Some(1)),
    ("INSTR", Func::Instr, 2, Some(2)),
    ("INSTR_I", Func::InstrI, 2, Some(2)),
    ("STREQUAL_I", Func::StrequalI, 2, Some(2)),
    ("SUBSTR", Func::Substr, 2, Some(3)),
    ("REVERSE", Func::Reverse, 1, Some(1)),
    ("CONCAT", Func::Concat, 1, None),
    ("COALESCE", Func::Coalesce, 1, None),
    ("IF", Func::If, 3, Some(3)),
    ("TRUE_VALUE", Func::TrueValue, 0, Some(0)),
    ("FALSE_VALUE", Func::FalseValue, 0, Some(0)),
];

impl Func {
    /// The function called `name` (any case).
    pub(crate) fn lookup(name: &str) -> Option<Func> {
        FUNCS
            .iter()
            .find(|(n, ..)| n.eq_ignore_ascii_case(name))
            .map(|(_, f, ..)| *f)
    }

    /// Canonical (upper-case) name.
    pub(crate) fn name(self) -> &'static str {
        FUNCS
            .iter()
            .find(|(_, f, ..)| *f == self)
            .map_or("?", |(n, ..)| n)
    }

    /// Minimum and maximum (`None`: unbounded) argument count.
    pub(crate) fn arity(self) -> (usize, Option<usize>) {
        FUNCS
            .iter()
            .find(|(_, f, ..)| *f == self)
            .map_or((0, None), |(_, _, min, max)| (*min, *max))
    }
}

impl Expr {
    /// Three-valued result of this node as a condition (§13.2).
    pub(crate) fn truth<'a>(&'a self, doc: &'a Value) -> Truth {
        match self {
            // Left to right with short-circuit, exactly as the §13.2 table: a NULL on the left
            // ends the evaluation (`NULL AND FALSE` and `NULL OR TRUE` are NULL).
            Expr::Or(items) => {
                for item in items {
                    match item.truth(doc) {
                        Truth::False => {}
                        decided => return decided,
                    }
                }
                Truth::False
            }
            Expr::And(items) => {
                for item in items {
                    match item.truth(doc) {
                        Truth::True => {}
                        decided => return decided,
                    }
                }
                Truth::True
            }
            Expr::Not(inner) => match inner.truth(doc) {
                Truth::True => Truth::False,
                Truth::False => Truth::True,
                Truth::Null => Truth::Null,
            },
            Expr::Cmp(op, l, r) => Truth::from(compare(&l.value(doc), *op, &r.value(doc))),
            Expr::Between { negated, x, lo, hi } => {
                let (lo, hi) = (lo.value(doc).scalar(), hi.value(doc).scalar());
                let x = x.value(doc);
                let inside = any_element(&x, |e| {
                    compare(e, CmpOp::Ge, &lo) && compare(e, CmpOp::Le, &hi)
                });
                Truth::from(inside != *negated)
            }
            Expr::In { negated, x, list } => {
                let x = x.value(doc);
                let found = list
                    .iter()
                    .any(|item| compare(&x, CmpOp::Eq, &item.value(doc)));
                Truth::from(found != *negated)
            }
            Expr::Like { negated, x, re } => {
                let matched = match re {
                    Some(re) => any_element(&x.value(doc), |e| {
                        text(e).is_some_and(|t| re.is_match(t.as_str()))
                    }),
                    None => false,
                };
                Truth::from(matched != *negated)
            }
            Expr::Affix {
                negated,
                ends,
                x,
                list,
            } => {
                let x = x.value(doc);
                let found = list.iter().any(|item| {
                    let item = item.value(doc).scalar();
                    let Some(affix) = text(&item) else {
                        return false;
                    };
                    let affix = affix.as_str();
                    any_element(&x, |e| {
                        text(e).is_some_and(|t| {
                            if *ends {
                                t.as_str().ends_with(affix)
                            } else {
                                t.as_str().starts_with(affix)
                            }
                        })
                    })
                });
                Truth::from(found != *negated)
            }
            Expr::IsNull { negated, x } => Truth::from(x.value(doc).is_null() != *negated),
            Expr::IsNan { negated, x } => {
                // Our reading: the operand is taken as a number, so an unconvertible string
                // is NaN (§13.2); NULL is not NaN.
                let nan = matches!(to_num(&x.value(doc)), Some(Num::F(f)) if f.is_nan());
                Truth::from(nan != *negated)
            }
            _ => truth(&self.value(doc)),
        }
    }

    /// The value of this node as an operand.
    pub(crate) fn value<'a>(&'a self, doc: &'a Value) -> Val<'a> {
        match self {
            Expr::Null => Val::Null,
            Expr::Int(i) => Val::Int(*i),
            Expr::Float(f) => Val::Float(*f),
            Expr::Str(s) => Val::Str(Cow::Borrowed(s)),
            Expr::Path(p) => p.get(doc).map_or(Val::Null, Val::from_json),
            Expr::Arith(first, rest) => {
                let mut acc = first.value(doc);
                for (op, e) in rest {
                    acc = arith(&acc, *op, &e.value(doc));
                }
                acc
            }
            Expr::Neg(inner) => negate(&inner.value(doc)),
            Expr::Call(func, args) => call(*func, args, doc),
            _ => match self.truth(doc) {
                Truth::True => Val::Bool(true),
                Truth::False => Val::Bool(false),
                Truth::Null => Val::Null,
            },
        }
    }
}

/// True if `pred` holds for `v` or, for an array, for ANY element (§13.2). NULL never holds.
fn any_element(v: &Val<'_>, mut pred: impl FnMut(&Val<'_>) -> bool) -> bool {
    match v {
        Val::Array(items) => items.iter().any(|e| pred(&Val::from_json(e).scalar())),
        Val::Null => false,
        other => pred(other),
    }
}

/// Evaluate argument `i` as a scalar (functions use an array's first element, §13.2).
fn arg<'a>(args: &'a [Expr], i: usize, doc: &'a Value) -> Val<'a> {
    args.get(i).map_or(Val::Null, |e| e.value(doc).scalar())
}

/// Text of a scalar as an owned-or-borrowed string (`None` for NULL).
fn arg_text<'a>(v: &'a Val<'_>) -> Option<Text<'a>> {
    text(v)
}

fn owned(s: String) -> Val<'static> {
    Val::string(Cow::Owned(s))
}

/// 1-based character position of `needle` in `hay` (0 if absent), optionally ignoring ASCII
/// case. Positions count characters, not bytes (our reading).
fn instr(hay: &str, needle: &str, ignore_case: bool) -> i128 {
    let found = if ignore_case {
        let (h, n) = (hay.as_bytes(), needle.as_bytes());
        (0..=h.len().saturating_sub(n.len()))
            .find(|&i| {
                h.get(i..i + n.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(n))
            })
            .filter(|_| n.len() <= h.len())
    } else {
        hay.find(needle)
    };
    match found {
        Some(i) => hay.get(..i).map_or(0, |p| p.chars().count() as i128) + 1,
        None => 0,
    }
}

/// `SUBSTR(s, start[, len])`: 1-based character positions; `start` 0 counts as 1, a negative
/// `start` counts from the end (-1 = last character); `len` < 1 gives NULL (empty).
fn substr(s: &str, start: i128, len: Option<i128>) -> String {
    let count = s.chars().count() as i128;
    let first = match start {
        0 => 0,
        n if n > 0 => n - 1,
        n => (count + n).max(0),
    };
    let take = len.unwrap_or(count).clamp(0, count);
    s.chars()
        .skip(usize::try_from(first).unwrap_or(usize::MAX))
        .take(usize::try_from(take).unwrap_or(0))
        .collect()
}

/// An integer argument (floats truncate); `None` for NULL or NaN.
fn int_arg(v: &Val<'_>) -> Option<i128> {
    match to_num(v)? {
        Num::I(i) => Some(i),
        Num::F(f) if f.is_nan() => None,
        Num::F(f) => Some(f.trunc().clamp(-1e30, 1e30) as i128),
    }
}

fn call<'a>(func: Func, args: &'a [Expr], doc: &'a Value) -> Val<'a> {
    match func {
        Func::TrueValue => Val::Bool(true),
        Func::FalseValue => Val::Bool(false),
        Func::If => match args.first().map_or(Truth::Null, |c| c.truth(doc)) {
            Truth::True => arg(args, 1, doc),
            Truth::False | Truth::Null => arg(args, 2, doc),
        },
        Func::Coalesce => (0..args.len())
            .map(|i| arg(args, i, doc))
            .find(|v| !v.is_null())
            .unwrap_or(Val::Null),
        Func::Concat => {
            let mut out = String::new();
            for i in 0..args.len() {
                let v = arg(args, i, doc);
                // Our reading: NULL arguments contribute nothing.
                if let Some(t) = arg_text(&v) {
                    out.push_str(t.as_str());
                }
            }
            owned(out)
        }
        Func::Upper | Func::Lower | Func::Reverse => {
            let v = arg(args, 0, doc);
            let Some(t) = arg_text(&v) else {
                return Val::Null;
            };
            let s = t.as_str();
            owned(match func {
                Func::Upper => s.to_ascii_uppercase(),
                Func::Lower => s.to_ascii_lowercase(),
                _ => s.chars().rev().collect(),
            })
        }
        Func::Instr | Func::InstrI | Func::StrequalI => {
            let (a, b) = (arg(args, 0, doc), arg(args, 1, doc));
            let (Some(a), Some(b)) = (arg_text(&a), arg_text(&b)) else {
                return Val::Null;
            };
            match func {
                Func::StrequalI => {
                    Val::Int(i128::from(a.as_str().eq_ignore_ascii_case(b.as_str())))
                }
                _ => Val::Int(instr(a.as_str(), b.as_str(), func == Func::InstrI)),
            }
        }
        Func::Substr => {
            let s = arg(args, 0, doc);
            let Some(s) = arg_text(&s) else {
                return Val::Null;
            };
            let Some(start) = int_arg(&arg(args, 1, doc)) else {
                return Val::Null;
            };
            let len = if args.len() > 2 {
                match int_arg(&arg(args, 2, doc)) {
                    Some(l) => Some(l),
                    None => return Val::Null,
                }
            } else {
                None
            };
            owned(substr(s.as_str(), start, len))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instr_positions() {
        assert_eq!(instr("fandango", "dan", false), 4);
        assert_eq!(instr("fandango", "DAN", false), 0);
        assert_eq!(instr("fandango", "DAN", true), 4);
        assert_eq!(instr("héllo", "llo", false), 3);
        assert_eq!(instr("ab", "abc", true), 0);
    }

    #[test]
    fn substr_positions() {
        assert_eq!(substr("fandango", 5, None), "ango");
        assert_eq!(substr("fandango", 1, Some(3)), "fan");
        assert_eq!(substr("fandango", 0, Some(3)), "fan");
        assert_eq!(substr("fandango", -2, None), "go");
        assert_eq!(substr("fandango", -20, Some(2)), "fa");
        assert_eq!(substr("fandango", 9, None), "");
        assert_eq!(substr("fandango", 2, Some(-1)), "");
        assert_eq!(substr("fandango", i128::MAX, Some(i128::MAX)), "");
    }

    #[test]
    fn arity_table_is_consistent() {
        for (name, f, min, max) in FUNCS {
            assert_eq!(Func::lookup(&name.to_ascii_lowercase()), Some(f));
            assert_eq!(f.name(), name);
            assert_eq!(f.arity(), (min, max));
        }
        assert_eq!(Func::lookup("NOPE"), None);
    }
}
