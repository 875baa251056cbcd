//! Regex topics and content filters through the engine's [`crate::compile::PatternCache`], and
//! the offloaded mode: a connection whose command needs a pattern that is not compiled yet is
//! parked (its input waits, in order) while the driver compiles the pattern on another thread;
//! every other connection goes on meanwhile.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use amps_core::Instant;
use amps_core::codec::Message;

use super::subscribe::{TopicSel, pattern_keys, regex_key};
use super::{ConnId, Engine};
use crate::compile::{Artifact, CompileDone, CompileJob, Lookup, PatternKey};
use crate::filter::Filter;

/// A connection's input waits for these patterns.
#[derive(Debug)]
pub(crate) struct Parked {
    waiting: BTreeSet<PatternKey>,
    /// Patterns of the waiting command that are compiled, held so they stay cached.
    pins: Vec<Artifact>,
}

impl Engine {
    /// Compile patterns off the engine's thread: a miss becomes a [`CompileJob`] for
    /// [`Engine::poll_compile`] instead of being compiled inside the engine call (the default).
    pub fn set_offload_compiles(&mut self, on: bool) {
        self.offload = on;
    }

    /// The next pattern to compile, for a driver that offloads compilation. Run it
    /// ([`CompileJob::run`]) anywhere and give the result to [`Engine::handle_compiled`].
    /// Nothing while the `hold_compiles` fault is set.
    pub fn poll_compile(&mut self) -> Option<CompileJob> {
        if self.faults.hold_compiles {
            return None;
        }
        self.jobs.pop_front()
    }

    /// A compilation finished: cache it (or its refusal) and resume the connections that
    /// waited for it, in connection order.
    pub fn handle_compiled(&mut self, now: Instant, done: CompileDone) {
        self.advance(now);
        let key = done.key().clone();
        self.in_flight.remove(&key);
        // A refusal for lack of room is not cached, but the waiters see it.
        let compiled = self.patterns.insert(done).ok();
        let waiting = self.waiters.remove(&key).unwrap_or_default();
        for conn in waiting {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            let ready = c.parked.as_mut().is_some_and(|p| {
                p.waiting.remove(&key);
                // Still waiting for another pattern: hold this one so that making room for the
                // other cannot drop it (and send the connection round again).
                if let Some(a) = compiled.as_ref().filter(|_| !p.waiting.is_empty()) {
                    p.pins.push(a.clone());
                }
                p.waiting.is_empty()
            });
            if ready {
                let parked = c.parked.take();
                self.resume_input(conn);
                drop(parked);
            }
        }
        self.patterns.clear_transient();
        self.finish();
    }

    /// In offloaded mode, park `conn` if `msg` needs a pattern that is not compiled yet.
    pub(super) fn park_for_patterns(&mut self, conn: ConnId, msg: &Message<'_>) -> bool {
        if !self.offload {
            return false;
        }
        let keys = pattern_keys(msg);
        if keys.is_empty() {
            return false; // publishes and most other commands
        }
        let mut waiting = BTreeSet::new();
        let mut pins = Vec::new();
        for key in keys {
            match self.patterns.peek(&key) {
                Lookup::Hit(a) => pins.push(a),
                Lookup::Refused(_) => {}
                Lookup::Miss => {
                    waiting.insert(key);
                }
            }
        }
        if waiting.is_empty() {
            return false;
        }
        for key in &waiting {
            if self.in_flight.insert(key.clone()) {
                self.jobs.push_back(self.patterns.job(key.clone()));
            }
            self.waiters.entry(key.clone()).or_default().insert(conn);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.parked = Some(Parked { waiting, pins });
        }
        true
    }

    /// A removed connection no longer waits.
    pub(super) fn unwait(&mut self, conn: ConnId, parked: &Parked) {
        for key in &parked.waiting {
            if let Some(set) = self.waiters.get_mut(key) {
                set.remove(&conn);
                if set.is_empty() {
                    self.waiters.remove(key);
                }
            }
        }
    }

    /// The topic of a subscribe or sow command: literal, or a regex from the cache.
    pub(crate) fn topic_sel(
        &mut self,
        topic: Option<&str>,
        non_regex: bool,
    ) -> Result<TopicSel, Cow<'static, str>> {
        let Some(t) = topic else {
            return Err("missing field: t".into());
        };
        if t.is_empty() {
            return Err("invalid topic".into());
        }
        let Some(key) = regex_key(t, non_regex) else {
            return Ok(TopicSel::Literal(t.to_owned()));
        };
        match self.patterns.get_or_compile(&key) {
            Ok(Artifact::Regex(r)) => Ok(TopicSel::Regex(r)),
            Ok(Artifact::Filter(_)) => Err("bad regex topic".into()),
            Err(reason) => Err(reason.into()),
        }
    }

    /// A command's content filter: `None` when absent or empty.
    pub(crate) fn filter_of(
        &mut self,
        text: Option<&str>,
    ) -> Result<Option<Arc<Filter>>, Cow<'static, str>> {
        let Some(key) = filter_key(text) else {
            return Ok(None);
        };
        match self.patterns.get_or_compile(&key) {
            Ok(Artifact::Filter(f)) => Ok(Some(f)),
            Ok(Artifact::Regex(_)) => Err("bad filter".into()),
            Err(reason) => Err(reason.into()),
        }
    }
}

/// The cache key of a filter text (`None`: no filter).
pub(crate) fn filter_key(text: Option<&str>) -> Option<PatternKey> {
    let t = text?.trim();
    (!t.is_empty()).then(|| PatternKey::Filter(t.into()))
}
