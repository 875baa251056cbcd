//! Regular expressions from the network (regex topics, LIKE patterns) compiled under size
//! limits, with the memory each one is accounted for.
//!
//! A pattern is first compiled with a small program limit ([`SMALL_PROGRAM`]); only if it does
//! not fit is it compiled again under the configured [`RegexLimits::size_limit`]. Most topic
//! patterns (`^orders\.[a-z]+$`, `trade.info`) fit the small step, so they are accounted at a
//! fraction of the limit; a pattern that fits neither is refused ([`RegexRefusal::TooLarge`])
//! after a compilation whose cost the limit itself bounds.
//!
//! The accounted size of a compiled pattern is an upper bound derived from the limits it was
//! built under, not a measurement: twice the program limit (the forward and the reverse
//! programs) plus twice the lazy-DFA cache capacity (one cache per direction), which is what
//! the `regex` crate's `size_limit` and `dfa_size_limit` bound.

use core::fmt;

use regex::{Regex, RegexBuilder};

/// The first program limit tried (bytes).
pub const SMALL_PROGRAM: usize = 64 * 1024;

/// Size limits of one compiled pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegexLimits {
    /// Largest compiled program (the `regex` crate's `size_limit`), bytes.
    pub size_limit: usize,
    /// Lazy-DFA cache capacity (the `regex` crate's `dfa_size_limit`), bytes.
    pub dfa_size_limit: usize,
}

impl Default for RegexLimits {
    /// 4 MiB programs (room for `\w{30}`; `\w{1,100}z` needs about 10 MiB and is refused),
    /// 256 KiB lazy-DFA caches.
    fn default() -> Self {
        RegexLimits {
            size_limit: 4 << 20,
            dfa_size_limit: 256 << 10,
        }
    }
}

impl RegexLimits {
    /// The accounted size of a pattern compiled under a program limit of `program` bytes.
    pub fn cost(&self, program: usize) -> usize {
        program
            .saturating_mul(2)
            .saturating_add(self.dfa_size_limit.saturating_mul(2))
    }

    /// The smallest accounted size of any compiled pattern.
    pub fn min_cost(&self) -> usize {
        self.cost(SMALL_PROGRAM.min(self.size_limit))
    }

    /// The largest accounted size of any compiled pattern.
    pub fn max_cost(&self) -> usize {
        self.cost(self.size_limit)
    }
}

/// Why a pattern was not compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegexRefusal {
    /// Not a valid pattern for this engine (syntax, backreferences, look-around).
    Syntax(String),
    /// The compiled program would exceed [`RegexLimits::size_limit`] bytes.
    TooLarge {
        /// The limit it exceeded.
        limit: usize,
    },
}

impl fmt::Display for RegexRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegexRefusal::Syntax(s) => f.write_str(s),
            RegexRefusal::TooLarge { limit } => {
                write!(f, "pattern too large (compiled size limit {limit} bytes)")
            }
        }
    }
}

/// A compiled pattern and its accounted size.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The pattern.
    pub regex: Regex,
    /// Accounted bytes ([`RegexLimits::cost`] of the program limit it fitted).
    pub cost: usize,
}

/// Compile `pattern` under `limits` (see the module docs).
pub fn compile(pattern: &str, limits: &RegexLimits) -> Result<Compiled, RegexRefusal> {
    let small = SMALL_PROGRAM.min(limits.size_limit);
    let both = [small, limits.size_limit];
    let steps = if limits.size_limit > small {
        &both[..]
    } else {
        &both[..1]
    };
    for &program in steps {
        match RegexBuilder::new(pattern)
            .size_limit(program)
            .dfa_size_limit(limits.dfa_size_limit)
            .build()
        {
            Ok(regex) => {
                return Ok(Compiled {
                    regex,
                    cost: limits.cost(program),
                });
            }
            Err(regex::Error::CompiledTooBig(_)) => continue,
            Err(e) => {
                let detail = e.to_string().split_whitespace().collect::<Vec<_>>().join(" ");
                return Err(RegexRefusal::Syntax(detail));
            }
        }
    }
    Err(RegexRefusal::TooLarge {
        limit: limits.size_limit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_patterns_take_the_small_step() {
        let l = RegexLimits::default();
        let c = compile(r"^orders\.[a-z]+$", &l).unwrap();
        assert_eq!(c.cost, l.min_cost());
        assert!(c.regex.is_match("orders.abc"));
        // `\w` (Unicode) needs more than the small step but fits the limit.
        let c = compile(r"\w{5}", &l).unwrap();
        assert_eq!(c.cost, l.max_cost());
    }

    #[test]
    fn oversized_and_invalid_patterns_are_refused() {
        let l = RegexLimits::default();
        assert_eq!(
            compile(r"\w{1,100}z", &l).unwrap_err(),
            RegexRefusal::TooLarge { limit: 4 << 20 }
        );
        assert!(matches!(compile("(", &l), Err(RegexRefusal::Syntax(_))));
        let tiny = RegexLimits {
            size_limit: 1024,
            dfa_size_limit: 1024,
        };
        assert!(matches!(
            compile(r"\w", &tiny),
            Err(RegexRefusal::TooLarge { limit: 1024 })
        ));
        assert_eq!(tiny.min_cost(), tiny.max_cost());
    }
}
