//! Parser of the filter language (docs/protocol.md §13.1) into an expression tree.
//!
//! Grammar, loosest binding first (§13.1 precedence):
//!
//! ```text
//! or        := and ( OR and )*
//! and       := not ( AND not )*
//! not       := NOT not | predicate
//! predicate := additive [ cmp additive
//!                       | [NOT] BETWEEN additive AND additive
//!                       | [NOT] IN '(' additive, … ')'
//!                       | [NOT] LIKE string-literal
//!                       | [NOT] (BEGINS | ENDS) WITH '(' additive, … ')'
//!                       | IS [NOT] NULL | IS [NOT] NAN ]
//! additive  := mult ( ('+' | '-') mult )*
//! mult      := unary ( ('*' | '/' | '%' | MOD) unary )*
//! unary     := ('-' | '+') unary | primary
//! primary   := number | string | NULL | path | name '(' or, … ')' | '(' or ')'
//! ```
//!
//! `AND`/`OR` and operator chains are stored flat (n-ary), so a long chain does not deepen the
//! tree. Nesting (parentheses, function calls, `NOT`, unary signs) is limited to
//! [`MAX_NESTING`] levels: filters arrive from the network and both parsing and evaluation
//! recurse.

use regex::Regex;

use super::eval::Func;
use super::lexer::{Tok, Token, tokenize};
use super::path::JsonPath;
use super::value::{ArithOp, CmpOp, Val, int};
use super::{FilterError, FilterErrorKind, FilterLimits};

/// Deepest nesting of parentheses, function calls, `NOT` and unary signs accepted.
pub const MAX_NESTING: usize = 64;

/// A node of the expression tree.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    /// `NULL`, and the literal `''` (the empty string is NULL, §13.1).
    Null,
    /// Integer literal (within i64/u64).
    Int(i128),
    /// Float literal.
    Float(f64),
    /// Non-empty string literal.
    Str(Box<str>),
    /// Identifier.
    Path(JsonPath),
    /// `a OR b OR …`, at least two items.
    Or(Vec<Expr>),
    /// `a AND b AND …`, at least two items.
    And(Vec<Expr>),
    /// `NOT x`.
    Not(Box<Expr>),
    /// `l op r`.
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `x [NOT] BETWEEN lo AND hi`.
    Between {
        negated: bool,
        x: Box<Expr>,
        lo: Box<Expr>,
        hi: Box<Expr>,
    },
    /// `x [NOT] IN (list)`.
    In {
        negated: bool,
        x: Box<Expr>,
        list: Vec<Expr>,
    },
    /// `x [NOT] LIKE 'pattern'`; `None` for the empty (NULL) pattern, which matches nothing.
    Like {
        negated: bool,
        x: Box<Expr>,
        re: Option<Box<Regex>>,
    },
    /// `x [NOT] BEGINS WITH (list)` / `ENDS WITH`.
    Affix {
        negated: bool,
        ends: bool,
        x: Box<Expr>,
        list: Vec<Expr>,
    },
    /// `x IS [NOT] NULL`.
    IsNull { negated: bool, x: Box<Expr> },
    /// `x IS [NOT] NAN`.
    IsNan { negated: bool, x: Box<Expr> },
    /// `first op e op e …`, evaluated left to right; one precedence level per node.
    Arith(Box<Expr>, Vec<(ArithOp, Expr)>),
    /// Unary minus.
    Neg(Box<Expr>),
    /// Function call, arity already checked.
    Call(Func, Vec<Expr>),
}

/// A compiled expression and the accounted size of its LIKE patterns.
pub(crate) struct Parsed {
    pub(crate) root: Expr,
    pub(crate) pattern_cost: usize,
}

/// Compile a filter expression under `limits` (its length is checked by the caller).
pub(crate) fn parse(src: &str, limits: &FilterLimits) -> Result<Parsed, FilterError> {
    let mut tokens = tokenize(src)?;
    tokens.reverse();
    let mut p = Parser {
        tokens,
        depth: 0,
        max_depth: limits.max_nesting.min(MAX_NESTING),
        limits,
        pattern_cost: 0,
        end_token: Token {
            tok: Tok::End,
            offset: src.len(),
            text: "",
        },
    };
    if matches!(p.peek_tok(), Tok::End) {
        return Err(FilterError::new(0, "empty filter"));
    }
    let expr = p.or()?;
    let t = p.peek();
    if !matches!(t.tok, Tok::End) {
        return Err(FilterError::new(
            t.offset,
            format!(
                "unexpected {} after the end of the expression",
                t.describe()
            ),
        ));
    }
    Ok(Parsed {
        root: expr,
        pattern_cost: p.pattern_cost,
    })
}

struct Parser<'s, 'l> {
    /// Remaining tokens, reversed (next token last).
    tokens: Vec<Token<'s>>,
    /// Nesting level (see [`MAX_NESTING`]).
    depth: usize,
    /// Deepest nesting accepted (at most [`MAX_NESTING`]).
    max_depth: usize,
    limits: &'l FilterLimits,
    /// Accounted bytes of the LIKE patterns compiled so far.
    pattern_cost: usize,
    /// Returned by `peek`/`bump` once the tokens are used up.
    end_token: Token<'s>,
}

impl<'s> Parser<'s, '_> {
    /// The next token (the final `End` token stays in place once reached).
    fn peek(&self) -> &Token<'s> {
        self.tokens.last().unwrap_or(&self.end_token)
    }

    fn peek_tok(&self) -> &Tok {
        self.tokens.last().map_or(&Tok::End, |t| &t.tok)
    }

    fn peek_kw(&self, kw: &str) -> bool {
        self.tokens.last().is_some_and(|t| t.is_kw(kw))
    }

    /// The token after the next one.
    fn peek2(&self) -> Option<&Token<'s>> {
        self.tokens.iter().rev().nth(1)
    }

    fn bump(&mut self) -> Token<'s> {
        self.tokens.pop().unwrap_or_else(|| self.end_token.clone())
    }

    /// An error at the next token.
    fn error_here(&self, what: &str) -> FilterError {
        let t = self.peek();
        FilterError::new(t.offset, format!("expected {what}, found {}", t.describe()))
    }

    fn expect(&mut self, want: fn(&Tok) -> bool, what: &str) -> Result<Token<'s>, FilterError> {
        if want(self.peek_tok()) {
            Ok(self.bump())
        } else {
            Err(self.error_here(what))
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), FilterError> {
        if self.peek_kw(kw) {
            self.bump();
            Ok(())
        } else {
            Err(self.error_here(kw))
        }
    }

    fn enter(&mut self, offset: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(FilterError::new(
                offset,
                format!("expression nested deeper than {} levels", self.max_depth),
            )
            .with_kind(FilterErrorKind::TooDeep));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let first = self.and()?;
        if !self.peek_kw("OR") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek_kw("OR") {
            self.bump();
            items.push(self.and()?);
        }
        Ok(Expr::Or(items))
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let first = self.not()?;
        if !self.peek_kw("AND") {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.peek_kw("AND") {
            self.bump();
            items.push(self.not()?);
        }
        Ok(Expr::And(items))
    }

    fn not(&mut self) -> Result<Expr, FilterError> {
        if !self.peek_kw("NOT") {
            return self.predicate();
        }
        let t = self.bump();
        self.enter(t.offset)?;
        let inner = self.not()?;
        self.leave();
        Ok(Expr::Not(Box::new(inner)))
    }

    fn predicate(&mut self) -> Result<Expr, FilterError> {
        let x = self.additive()?;
        let op = match self.peek_tok() {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            let r = self.additive()?;
            return Ok(Expr::Cmp(op, Box::new(x), Box::new(r)));
        }
        if self.peek_kw("IS") {
            self.bump();
            let negated = self.peek_kw("NOT");
            if negated {
                self.bump();
            }
            let x = Box::new(x);
            if self.peek_kw("NULL") {
                self.bump();
                return Ok(Expr::IsNull { negated, x });
            }
            if self.peek_kw("NAN") {
                self.bump();
                return Ok(Expr::IsNan { negated, x });
            }
            return Err(self.error_here("NULL or NAN"));
        }
        const PREDICATES: [&str; 5] = ["BETWEEN", "IN", "LIKE", "BEGINS", "ENDS"];
        let negated = self.peek_kw("NOT")
            && self
                .peek2()
                .is_some_and(|t| PREDICATES.iter().any(|k| t.is_kw(k)));
        if negated {
            self.bump();
        }
        let x = Box::new(x);
        let t = self.peek();
        let (between, in_list, like) = (t.is_kw("BETWEEN"), t.is_kw("IN"), t.is_kw("LIKE"));
        let (begins, ends) = (t.is_kw("BEGINS"), t.is_kw("ENDS"));
        if between {
            self.bump();
            let lo = Box::new(self.additive()?);
            self.expect_kw("AND")?;
            let hi = Box::new(self.additive()?);
            Ok(Expr::Between { negated, x, lo, hi })
        } else if in_list {
            self.bump();
            let list = self.list()?;
            Ok(Expr::In { negated, x, list })
        } else if like {
            self.bump();
            let re = self.pattern()?;
            Ok(Expr::Like { negated, x, re })
        } else if begins || ends {
            self.bump();
            self.expect_kw("WITH")?;
            let list = self.list()?;
            Ok(Expr::Affix {
                negated,
                ends,
                x,
                list,
            })
        } else {
            Ok(*x)
        }
    }

    /// `'(' additive, … ')'` of IN and BEGINS/ENDS WITH; at least one item.
    fn list(&mut self) -> Result<Vec<Expr>, FilterError> {
        let open = self.expect(|t| matches!(t, Tok::LParen), "`(`")?;
        self.enter(open.offset)?;
        let mut items = vec![self.additive()?];
        while matches!(self.peek_tok(), Tok::Comma) {
            self.bump();
            items.push(self.additive()?);
        }
        self.expect(|t| matches!(t, Tok::RParen), "`,` or `)`")?;
        self.leave();
        Ok(items)
    }

    /// The right side of LIKE: a string literal, compiled once here (§13.2).
    fn pattern(&mut self) -> Result<Option<Box<Regex>>, FilterError> {
        let t = self.expect(|t| matches!(t, Tok::Str(_)), "a string literal after LIKE")?;
        let Tok::Str(pattern) = t.tok else {
            return Err(FilterError::new(
                t.offset,
                "expected a string literal after LIKE",
            ));
        };
        if pattern.is_empty() {
            return Ok(None);
        }
        match crate::pattern::compile(&pattern, &self.limits.regex) {
            Ok(c) => {
                self.pattern_cost = self.pattern_cost.saturating_add(c.cost);
                Ok(Some(Box::new(c.regex)))
            }
            Err(crate::pattern::RegexRefusal::TooLarge { limit }) => Err(FilterError::new(
                t.offset,
                format!("LIKE pattern too large (compiled size limit {limit} bytes)"),
            )
            .with_kind(FilterErrorKind::PatternTooLarge)),
            Err(crate::pattern::RegexRefusal::Syntax(detail)) => Err(FilterError::new(
                t.offset,
                format!(
                    "LIKE pattern is not supported by this broker's regex engine \
                     (no backreferences or look-around): {detail}"
                ),
            )),
        }
    }

    fn additive(&mut self) -> Result<Expr, FilterError> {
        let first = self.multiplicative()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek_tok() {
                Tok::Plus => ArithOp::Add,
                Tok::Minus => ArithOp::Sub,
                _ => break,
            };
            self.bump();
            rest.push((op, self.multiplicative()?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Expr::Arith(Box::new(first), rest)
        })
    }

    fn multiplicative(&mut self) -> Result<Expr, FilterError> {
        let first = self.unary()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek_tok() {
                Tok::Star => ArithOp::Mul,
                Tok::Slash => ArithOp::Div,
                Tok::Percent => ArithOp::Mod,
                _ if self.peek_kw("MOD") => ArithOp::Mod,
                _ => break,
            };
            self.bump();
            rest.push((op, self.unary()?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Expr::Arith(Box::new(first), rest)
        })
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        let minus = match self.peek_tok() {
            Tok::Minus => true,
            Tok::Plus => false,
            _ => return self.primary(),
        };
        let t = self.bump();
        self.enter(t.offset)?;
        let inner = self.unary()?;
        self.leave();
        Ok(match (minus, inner) {
            // Fold signed literals so `-5` is a constant (and -9223372036854775808 fits i64).
            (true, Expr::Int(i)) => match int(-i) {
                Val::Int(v) => Expr::Int(v),
                _ => Expr::Float(-(i as f64)),
            },
            (true, Expr::Float(f)) => Expr::Float(-f),
            (true, e) => Expr::Neg(Box::new(e)),
            (false, e) => e,
        })
    }

    fn primary(&mut self) -> Result<Expr, FilterError> {
        let t = self.bump();
        match t.tok {
            Tok::Int(i) => Ok(Expr::Int(i)),
            Tok::Float(f) => Ok(Expr::Float(f)),
            Tok::Str(s) if s.is_empty() => Ok(Expr::Null),
            Tok::Str(s) => Ok(Expr::Str(s.into_boxed_str())),
            Tok::Path(p) => Ok(Expr::Path(p)),
            Tok::LParen => {
                self.enter(t.offset)?;
                let e = self.or()?;
                self.expect(|t| matches!(t, Tok::RParen), "`)`")?;
                self.leave();
                Ok(e)
            }
            Tok::Word if t.is_kw("NULL") => Ok(Expr::Null),
            Tok::Word if matches!(self.peek_tok(), Tok::LParen) && !is_keyword(t.text) => {
                self.call(&t)
            }
            Tok::Word if is_keyword(t.text) => Err(FilterError::new(
                t.offset,
                format!(
                    "expected an operand, found keyword {}",
                    t.text.to_ascii_uppercase()
                ),
            )),
            Tok::Word => Err(FilterError::new(
                t.offset,
                format!("unexpected name `{}` (identifiers start with `/`)", t.text),
            )),
            _ => Err(FilterError::new(
                t.offset,
                format!("expected an operand, found {}", t.describe()),
            )),
        }
    }

    /// `name(args)`; the name token is consumed, `(` is next.
    fn call(&mut self, name: &Token<'s>) -> Result<Expr, FilterError> {
        let func = Func::lookup(name.text).ok_or_else(|| {
            FilterError::new(name.offset, format!("unknown function `{}`", name.text))
        })?;
        let open = self.bump();
        self.enter(open.offset)?;
        let mut args = Vec::new();
        if matches!(self.peek_tok(), Tok::RParen) {
            self.bump();
        } else {
            args.push(self.or()?);
            while matches!(self.peek_tok(), Tok::Comma) {
                self.bump();
                args.push(self.or()?);
            }
            self.expect(|t| matches!(t, Tok::RParen), "`,` or `)`")?;
        }
        self.leave();
        let (min, max) = func.arity();
        if args.len() < min || max.is_some_and(|m| args.len() > m) {
            let want = match max {
                Some(m) if m == min => format!("{min}"),
                Some(m) => format!("{min} to {m}"),
                None => format!("at least {min}"),
            };
            return Err(FilterError::new(
                name.offset,
                format!(
                    "{} takes {want} argument(s), got {}",
                    func.name(),
                    args.len()
                ),
            ));
        }
        Ok(Expr::Call(func, args))
    }
}

/// Reserved words (§13.1); they cannot name functions.
fn is_keyword(word: &str) -> bool {
    const KEYWORDS: [&str; 13] = [
        "AND", "OR", "NOT", "IN", "LIKE", "BETWEEN", "IS", "NULL", "NAN", "BEGINS", "WITH", "ENDS",
        "MOD",
    ];
    KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Expr, FilterError> {
        super::parse(src, &FilterLimits::default()).map(|p| p.root)
    }

    #[test]
    fn chains_stay_flat() {
        match parse("/a = 1 OR /a = 2 OR /a = 3 AND /b = 1") {
            Ok(Expr::Or(items)) => {
                assert_eq!(items.len(), 3);
                assert!(matches!(items.last(), Some(Expr::And(and)) if and.len() == 2));
            }
            other => panic!("{other:?}"),
        }
        match parse("1 + 2 - 3 * 4 / 5") {
            Ok(Expr::Arith(_, rest)) => {
                assert_eq!(rest.len(), 2);
                assert!(
                    matches!(rest.last(), Some((ArithOp::Sub, Expr::Arith(_, m))) if m.len() == 2)
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn signed_literals_fold() {
        assert!(
            matches!(parse("-9223372036854775808"), Ok(Expr::Int(i)) if i == i128::from(i64::MIN))
        );
        assert!(matches!(parse("-18446744073709551615"), Ok(Expr::Float(_))));
        assert!(matches!(parse("--2.5"), Ok(Expr::Float(f)) if f == 2.5));
        assert!(matches!(parse("-/a"), Ok(Expr::Neg(_))));
    }

    #[test]
    fn not_binds_looser_than_predicates() {
        assert!(
            matches!(parse("NOT /a IN (1)"), Ok(Expr::Not(inner)) if matches!(*inner, Expr::In { negated: false, .. }))
        );
        assert!(matches!(
            parse("/a NOT IN (1)"),
            Ok(Expr::In { negated: true, .. })
        ));
        assert!(matches!(
            parse("/a NOT LIKE 'x'"),
            Ok(Expr::Like { negated: true, .. })
        ));
        assert!(matches!(
            parse("/a IS NOT NULL"),
            Ok(Expr::IsNull { negated: true, .. })
        ));
        assert!(matches!(parse("''"), Ok(Expr::Null)));
        assert!(matches!(
            parse("/a LIKE ''"),
            Ok(Expr::Like { re: None, .. })
        ));
    }
}
