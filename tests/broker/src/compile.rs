//! Compiled regex topics and content filters: compiled once per distinct text, shared by every
//! subscription that uses it, accounted against `limits.max_pattern_bytes`, and compilable off
//! the engine's thread.
//!
//! The engine looks patterns up in its pattern cache. By default a miss is compiled on the
//! spot, under the size limits (so the simulator and engine-only users need nothing else). A
//! driver that calls [`crate::Engine::set_offload_compiles`] instead gets each miss as a
//! [`CompileJob`] from [`crate::Engine::poll_compile`]; the command that needs it, and every
//! later frame of that connection, waits while other connections go on; the driver runs
//! [`CompileJob::run`] on another thread and hands the [`CompileDone`] to
//! [`crate::Engine::handle_compiled`]. The TCP server does this on tokio's blocking pool.
//!
//! Accounted size: a regex costs [`RegexLimits::cost`] of the program limit it fitted; a filter
//! costs [`FILTER_BYTES_PER_CHAR`] per byte of its text plus its LIKE patterns. Entries no
//! subscription uses any more are dropped when room is needed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use regex::Regex;

use crate::filter::{Filter, FilterErrorKind, FilterLimits};
use crate::pattern::{self, RegexLimits, RegexRefusal};

/// Accounted bytes of a filter's expression tree per byte of its text (an estimate: a token
/// of a few bytes becomes a node of a few dozen).
pub const FILTER_BYTES_PER_CHAR: usize = 32;

/// Failed compilations remembered, so a rejected text sent again is not compiled again.
const REFUSALS_KEPT: usize = 1024;

/// What is compiled: a subscribe/sow topic regex or a content filter, by its text.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternKey {
    /// A subscribe/sow topic that is a regular expression.
    Regex(Box<str>),
    /// A content filter, trimmed.
    Filter(Box<str>),
}

impl PatternKey {
    /// The text.
    pub fn text(&self) -> &str {
        match self {
            PatternKey::Regex(t) | PatternKey::Filter(t) => t,
        }
    }
}

/// A compiled pattern, shared.
#[derive(Clone, Debug)]
pub(crate) enum Artifact {
    Regex(Arc<Regex>),
    Filter(Arc<Filter>),
}

/// A compilation for the driver to run off the engine's thread.
#[derive(Clone, Debug)]
pub struct CompileJob {
    key: PatternKey,
    regex: RegexLimits,
    filter: FilterLimits,
}

/// The result of a [`CompileJob`], for [`crate::Engine::handle_compiled`].
#[derive(Debug)]
pub struct CompileDone {
    key: PatternKey,
    result: Result<(Artifact, usize), String>,
}

impl CompileJob {
    /// What is compiled.
    pub fn key(&self) -> &PatternKey {
        &self.key
    }

    /// Compile (CPU-bound, bounded by the size limits; call it off the engine's thread).
    pub fn run(self) -> CompileDone {
        let result = build(&self.key, &self.regex, &self.filter);
        CompileDone {
            key: self.key,
            result,
        }
    }
}

impl CompileDone {
    /// A compilation that could not run (for a driver whose worker failed): the waiting
    /// commands fail with `reason`.
    pub fn refused(key: PatternKey, reason: impl Into<String>) -> CompileDone {
        CompileDone {
            key,
            result: Err(reason.into()),
        }
    }

    /// What was compiled.
    pub fn key(&self) -> &PatternKey {
        &self.key
    }

    /// The failure reason, if the pattern was refused.
    pub fn refusal(&self) -> Option<&str> {
        self.result.as_ref().err().map(String::as_str)
    }
}

/// Compile one pattern: the artifact and its accounted size, or the failure reason.
fn build(
    key: &PatternKey,
    regex: &RegexLimits,
    filter: &FilterLimits,
) -> Result<(Artifact, usize), String> {
    match key {
        PatternKey::Regex(t) => match pattern::compile(t, regex) {
            Ok(c) => Ok((Artifact::Regex(Arc::new(c.regex)), c.cost)),
            Err(RegexRefusal::Syntax(_)) => Err("bad regex topic".into()),
            Err(e @ RegexRefusal::TooLarge { .. }) => Err(format!("bad regex topic: {e}")),
        },
        PatternKey::Filter(t) => match Filter::parse_with(t, filter) {
            Ok(f) => {
                let cost = t
                    .len()
                    .saturating_mul(FILTER_BYTES_PER_CHAR)
                    .saturating_add(f.pattern_cost());
                Ok((Artifact::Filter(Arc::new(f)), cost))
            }
            Err(e) if e.kind == FilterErrorKind::Syntax => Err("bad filter".into()),
            Err(e) => Err(format!("bad filter: {}", e.message)),
        },
    }
}

/// A lookup's outcome.
pub(crate) enum Lookup {
    Hit(Artifact),
    Refused(String),
    Miss,
}

struct Entry {
    artifact: Artifact,
    cost: usize,
}

impl Entry {
    fn in_use(&self) -> bool {
        match &self.artifact {
            Artifact::Regex(r) => Arc::strong_count(r) > 1,
            Artifact::Filter(f) => Arc::strong_count(f) > 1,
        }
    }
}

/// Counters of the cache (part of [`crate::engine::Stats`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CacheCounters {
    pub(crate) compiles: u64,
    pub(crate) inline_compiles: u64,
    pub(crate) hits: u64,
    pub(crate) peak_bytes: usize,
}

/// The engine's compiled patterns (see the module docs).
pub(crate) struct PatternCache {
    regex: RegexLimits,
    filter: FilterLimits,
    max_bytes: usize,
    entries: BTreeMap<PatternKey, Entry>,
    bytes: usize,
    refused: BTreeMap<PatternKey, String>,
    refused_order: VecDeque<PatternKey>,
    /// Refusals for lack of room, seen until [`PatternCache::clear_transient`].
    transient: BTreeMap<PatternKey, String>,
    pub(crate) counters: CacheCounters,
}

impl PatternCache {
    pub(crate) fn new(regex: RegexLimits, filter: FilterLimits, max_bytes: usize) -> PatternCache {
        PatternCache {
            regex,
            filter,
            max_bytes,
            entries: BTreeMap::new(),
            bytes: 0,
            refused: BTreeMap::new(),
            refused_order: VecDeque::new(),
            transient: BTreeMap::new(),
            counters: CacheCounters::default(),
        }
    }

    /// Accounted bytes of the cached patterns.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Distinct cached patterns.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Look up without counting a hit.
    pub(crate) fn peek(&self, key: &PatternKey) -> Lookup {
        if let Some(e) = self.entries.get(key) {
            return Lookup::Hit(e.artifact.clone());
        }
        match self.refused.get(key).or_else(|| self.transient.get(key)) {
            Some(r) => Lookup::Refused(r.clone()),
            None => Lookup::Miss,
        }
    }

    pub(crate) fn lookup(&mut self, key: &PatternKey) -> Lookup {
        let l = self.peek(key);
        if matches!(l, Lookup::Hit(_)) {
            self.counters.hits += 1;
        }
        l
    }

    /// Forget the refusals for lack of room (room may come back).
    pub(crate) fn clear_transient(&mut self) {
        self.transient.clear();
    }

    /// A job for `key` under this cache's limits.
    pub(crate) fn job(&self, key: PatternKey) -> CompileJob {
        CompileJob {
            key,
            regex: self.regex,
            filter: self.filter,
        }
    }

    /// Look up, compiling on a miss (on the caller's thread).
    pub(crate) fn get_or_compile(&mut self, key: &PatternKey) -> Result<Artifact, String> {
        match self.lookup(key) {
            Lookup::Hit(a) => return Ok(a),
            Lookup::Refused(r) => return Err(r),
            Lookup::Miss => {}
        }
        // Refuse before compiling when not even the cheapest pattern would fit.
        if !self.make_room(self.floor(key)) {
            return Err(self.full_reason(key));
        }
        self.counters.inline_compiles += 1;
        let done = self.job(key.clone()).run();
        self.insert(done)
    }

    /// The smallest accounted size `key` can have.
    fn floor(&self, key: &PatternKey) -> usize {
        match key {
            PatternKey::Filter(t) => t.len().saturating_mul(FILTER_BYTES_PER_CHAR),
            PatternKey::Regex(_) => self.regex.min_cost(),
        }
    }

    /// Store a finished compilation; the artifact, or why it is refused (also remembered).
    pub(crate) fn insert(&mut self, done: CompileDone) -> Result<Artifact, String> {
        self.counters.compiles += 1;
        let (artifact, cost) = match done.result {
            Ok(x) => x,
            Err(reason) => {
                self.refuse(done.key, reason.clone());
                return Err(reason);
            }
        };
        if !self.make_room(cost) {
            // Remembered only until `clear_transient`: room may come back.
            let reason = self.full_reason(&done.key);
            self.transient.insert(done.key, reason.clone());
            return Err(reason);
        }
        self.bytes += cost;
        self.counters.peak_bytes = self.counters.peak_bytes.max(self.bytes);
        self.entries.insert(
            done.key,
            Entry {
                artifact: artifact.clone(),
                cost,
            },
        );
        Ok(artifact)
    }

    fn refuse(&mut self, key: PatternKey, reason: String) {
        if self.refused.insert(key.clone(), reason).is_none() {
            self.refused_order.push_back(key);
        }
        while self.refused_order.len() > REFUSALS_KEPT {
            if let Some(old) = self.refused_order.pop_front() {
                self.refused.remove(&old);
            }
        }
    }

    fn full_reason(&self, key: &PatternKey) -> String {
        let what = match key {
            PatternKey::Regex(_) => "bad regex topic",
            PatternKey::Filter(_) => "bad filter",
        };
        format!(
            "{what}: compiled patterns too large (broker limit {} bytes)",
            self.max_bytes
        )
    }

    /// Make room for `cost` more bytes, dropping unused entries if needed.
    fn make_room(&mut self, cost: usize) -> bool {
        if self.bytes.saturating_add(cost) <= self.max_bytes {
            return true;
        }
        let mut freed = 0;
        self.entries.retain(|_, e| {
            let keep = e.in_use();
            if !keep {
                freed += e.cost;
            }
            keep
        });
        self.bytes -= freed;
        self.bytes.saturating_add(cost) <= self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(max: usize) -> PatternCache {
        PatternCache::new(RegexLimits::default(), FilterLimits::default(), max)
    }

    fn key(t: &str) -> PatternKey {
        PatternKey::Regex(t.into())
    }

    #[test]
    fn identical_patterns_compile_once() {
        let mut c = cache(64 << 20);
        let a = c.get_or_compile(&key("^a.*")).unwrap();
        let b = c.get_or_compile(&key("^a.*")).unwrap();
        match (a, b) {
            (Artifact::Regex(a), Artifact::Regex(b)) => assert!(Arc::ptr_eq(&a, &b)),
            _ => panic!("regexes expected"),
        }
        assert_eq!(c.counters.compiles, 1);
        assert_eq!(c.counters.hits, 1);
        assert_eq!(c.bytes(), RegexLimits::default().min_cost());
    }

    #[test]
    fn refusals_are_remembered_and_precise() {
        let mut c = cache(64 << 20);
        let k = key(r"\w{1,100}z");
        let r = c.get_or_compile(&k).err().unwrap();
        assert_eq!(
            r,
            "bad regex topic: pattern too large (compiled size limit 4194304 bytes)"
        );
        assert_eq!(c.get_or_compile(&k).err().unwrap(), r);
        assert_eq!(c.counters.compiles, 1, "not compiled twice");
        assert_eq!(c.get_or_compile(&key("(")).err().unwrap(), "bad regex topic");
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert_eq!(
            c.get_or_compile(&PatternKey::Filter(deep.into())).err().unwrap(),
            "bad filter: expression nested deeper than 64 levels"
        );
    }

    #[test]
    fn the_budget_holds_and_unused_entries_make_room() {
        let one = RegexLimits::default().min_cost();
        let mut c = cache(2 * one);
        let a = c.get_or_compile(&key("^a.*")).unwrap();
        let b = c.get_or_compile(&key("^b.*")).unwrap();
        let refused = c.get_or_compile(&key("^c.*")).err().unwrap();
        assert!(refused.contains("compiled patterns too large"), "{refused}");
        assert!(c.bytes() <= 2 * one);
        drop(a);
        assert!(c.get_or_compile(&key("^c.*")).is_ok(), "room made");
        assert_eq!(c.len(), 2);
        assert!(c.counters.peak_bytes <= 2 * one);
        drop(b);
    }
}
