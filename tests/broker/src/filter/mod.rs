//! Content filters (docs/protocol.md §13), JSON paths, orderby (§6.6), the JSON operations of
//! delta messaging (§12), and the payload helpers the engine needs to run them (§16).
//!
//! ```
//! use amps_broker::filter::{parse_json, Filter};
//! let f = Filter::parse("/qty > 50 AND /sym IN ('IBM', 'MSFT')").unwrap();
//! let doc = parse_json(br#"{"sym":"IBM","qty":100}"#).unwrap();
//! assert!(f.matches(&doc));
//! ```
//!
//! A filter is compiled once ([`Filter::parse`]: literals parsed, LIKE patterns compiled) and
//! evaluated per message ([`Filter::matches`]) without allocating for the common operators:
//! document strings are borrowed and numbers are formatted on the stack. String functions
//! (`UPPER`, `CONCAT`, …) allocate their results.
//!
//! Where the protocol is silent the readings chosen are listed in docs/protocol.md (§12.3 JSON
//! operations, §13.4 filter syntax, §13.5 filter semantics, §13.6 `orderby`) and at the code
//! that implements them.

mod delta;
mod eval;
mod lexer;
mod msgtype;
mod orderby;
mod parser;
mod path;
mod value;

use core::fmt;

use serde_json::Value;

pub use delta::{DeltaDiff, MergeMode, delta_diff, merge_delta};
pub use msgtype::{fix_to_value, parse_json, scalar_text};
pub use orderby::OrderBy;
pub use parser::MAX_NESTING;
pub use path::JsonPath;
pub use value::Truth;

/// A compiled content filter (docs/protocol.md §13).
#[derive(Debug, Clone)]
pub struct Filter {
    text: String,
    root: parser::Expr,
    pattern_cost: usize,
}

/// Limits on a filter that arrives from the network ([`Filter::parse_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterLimits {
    /// Longest expression, bytes.
    pub max_len: usize,
    /// Deepest nesting of parentheses, function calls, `NOT` and unary signs (at most
    /// [`MAX_NESTING`]).
    pub max_nesting: usize,
    /// Size limits of each LIKE pattern.
    pub regex: crate::pattern::RegexLimits,
}

impl Default for FilterLimits {
    /// 256 KiB expressions, [`MAX_NESTING`] levels, [`crate::pattern::RegexLimits::default`].
    fn default() -> Self {
        FilterLimits {
            max_len: 256 << 10,
            max_nesting: MAX_NESTING,
            regex: crate::pattern::RegexLimits::default(),
        }
    }
}

/// Which rule a filter broke ([`FilterError::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FilterErrorKind {
    /// Not a valid expression (the documented `bad filter`).
    Syntax,
    /// Longer than [`FilterLimits::max_len`].
    TooLong,
    /// Nested deeper than [`FilterLimits::max_nesting`].
    TooDeep,
    /// A LIKE pattern's compiled program exceeds the size limit.
    PatternTooLarge,
}

/// A filter, path or orderby that does not compile (`bad filter`, docs/protocol.md §15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Human-readable reason.
    pub message: String,
    /// Byte offset in the expression.
    pub offset: usize,
    /// Which rule was broken.
    pub kind: FilterErrorKind,
}

impl FilterError {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> FilterError {
        FilterError {
            message: message.into(),
            offset,
            kind: FilterErrorKind::Syntax,
        }
    }

    pub(crate) fn with_kind(mut self, kind: FilterErrorKind) -> FilterError {
        self.kind = kind;
        self
    }
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad filter at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for FilterError {}

/// The value of an expression, for tests and diagnostics ([`Filter::eval_value`]).
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    /// NULL: missing field, `null`, `""`, `[]`, or a NULL result (e.g. `NULL + 1`, `1 / 0`).
    Null,
    /// A boolean: JSON `true`/`false`, a condition's result, `TRUE_VALUE()`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    /// A float.
    Float(f64),
    /// A non-empty string.
    Text(String),
    /// A non-empty array or an object from the document.
    Json(Value),
}

impl Filter {
    /// Compile a filter expression of any length, with [`FilterLimits::default`]'s nesting and
    /// pattern limits. Errors carry the byte offset of the problem.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        Filter::parse_with(
            expr,
            &FilterLimits {
                max_len: usize::MAX,
                ..FilterLimits::default()
            },
        )
    }

    /// Compile a filter expression under `limits` (what the broker does with filters from the
    /// network).
    ///
    /// ```
    /// use amps_broker::filter::{Filter, FilterErrorKind, FilterLimits};
    /// let limits = FilterLimits { max_len: 16, max_nesting: 2, ..FilterLimits::default() };
    /// assert!(Filter::parse_with("/a = 1", &limits).is_ok());
    /// let e = Filter::parse_with("/a = 1 OR /b = 22", &limits).unwrap_err();
    /// assert_eq!(e.kind, FilterErrorKind::TooLong);
    /// let e = Filter::parse_with("(((1)))", &limits).unwrap_err();
    /// assert_eq!(e.kind, FilterErrorKind::TooDeep);
    /// ```
    pub fn parse_with(expr: &str, limits: &FilterLimits) -> Result<Filter, FilterError> {
        if expr.len() > limits.max_len {
            return Err(FilterError::new(
                limits.max_len,
                format!("longer than {} bytes", limits.max_len),
            )
            .with_kind(FilterErrorKind::TooLong));
        }
        let parsed = parser::parse(expr, limits)?;
        Ok(Filter {
            text: expr.to_string(),
            root: parsed.root,
            pattern_cost: parsed.pattern_cost,
        })
    }

    /// The accounted size of the compiled LIKE patterns, bytes
    /// ([`crate::pattern::RegexLimits::cost`] of each).
    pub fn pattern_cost(&self) -> usize {
        self.pattern_cost
    }

    /// True when the filter evaluates to TRUE for `doc` (three-valued logic, §13.2): FALSE and
    /// NULL both reject the message.
    pub fn matches(&self, doc: &Value) -> bool {
        self.root.truth(doc) == Truth::True
    }

    /// The three-valued result for `doc` (§13.2).
    pub fn truth(&self, doc: &Value) -> Truth {
        self.root.truth(doc)
    }

    /// The value of the expression for `doc`: `1 / 5` is `Int(0)`, `1 < 2` is `Bool(true)`.
    pub fn eval_value(&self, doc: &Value) -> FilterValue {
        match self.root.value(doc) {
            value::Val::Null => FilterValue::Null,
            value::Val::Bool(b) => FilterValue::Bool(b),
            value::Val::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
                (Ok(v), _) => FilterValue::Int(v),
                (_, Ok(v)) => FilterValue::UInt(v),
                _ => FilterValue::Float(i as f64),
            },
            value::Val::Float(f) => FilterValue::Float(f),
            value::Val::Str(s) => FilterValue::Text(s.into_owned()),
            value::Val::Array(items) => FilterValue::Json(Value::Array(items.to_vec())),
            value::Val::Object(map) => FilterValue::Json(Value::Object(map.clone())),
        }
    }

    /// The expression as given to [`Filter::parse`].
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_is_shareable() {
        fn check<T: Clone + fmt::Debug + Send + Sync>() {}
        check::<Filter>();
        check::<JsonPath>();
        check::<OrderBy>();
    }

    #[test]
    fn error_display() {
        let e = Filter::parse("/x = 'abc").unwrap_err();
        assert_eq!(e.to_string(), "bad filter at byte 5: unterminated string");
    }
}
