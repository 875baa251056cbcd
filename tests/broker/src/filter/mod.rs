//! Content filters (protocol.md §13), JSON paths, and the JSON operations of delta messaging
//! (§12). Placeholder API: being implemented; see `Filter::parse` and `Filter::matches`.

use core::fmt;

use serde_json::Value;

/// A compiled content filter.
#[derive(Debug, Clone)]
pub struct Filter {
    _expr: String,
}

/// A filter that does not compile (`bad filter`, protocol.md §15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Human-readable reason.
    pub message: String,
    /// Byte offset in the expression.
    pub offset: usize,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad filter at byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for FilterError {}

impl Filter {
    /// Compile a filter expression.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        Ok(Filter {
            _expr: expr.to_string(),
        })
    }

    /// True when the filter evaluates to TRUE for `doc` (three-valued logic, §13.2).
    pub fn matches(&self, _doc: &Value) -> bool {
        true
    }
}
