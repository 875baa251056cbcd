//! `subscribe`, `delta_subscribe`, `sow_and_subscribe`, `sow_and_delta_subscribe`,
//! `unsubscribe` (docs/protocol.md §6.4, §6.5, §6.7, §6.9): options, topics (§14), replace, pause
//! and resume, bookmark replay (§10.2).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use amps_core::codec::options::{self, OptionsIter};
use amps_core::codec::{AckType, CommandKind, Message};
use regex::Regex;

use super::patterns::filter_key;
use super::queue::QueueSub;
use super::route::Head;
use super::txlog::Resolved;
use super::{ConnId, Engine};
use crate::compile::PatternKey;
use crate::filter::Filter;
use crate::payload;
use crate::wire::format_ts;

/// Characters that make a subscribe topic a regular expression (§14, our convention).
const REGEX_CHARS: &[char] = &[
    '.', '*', '+', '?', '^', '$', '[', ']', '(', ')', '{', '}', '|', '\\',
];

/// The cache key of a subscribe/sow topic when it is a regex, `None` when literal.
pub(crate) fn regex_key(topic: &str, non_regex: bool) -> Option<PatternKey> {
    (!non_regex && topic.contains(REGEX_CHARS)).then(|| PatternKey::Regex(topic.into()))
}

/// The patterns `msg` will compile when it is processed: its topic regex and its filter.
pub(crate) fn pattern_keys(msg: &Message<'_>) -> Vec<PatternKey> {
    let mut keys = Vec::new();
    let kind = msg.kind();
    let query = matches!(
        kind,
        CommandKind::Subscribe
            | CommandKind::DeltaSubscribe
            | CommandKind::Sow
            | CommandKind::SowAndSubscribe
            | CommandKind::SowAndDeltaSubscribe
    );
    if query && let Some(t) = msg.topic() {
        let non_regex = OptionsIter::new(msg.options().unwrap_or(""))
            .any(|o| o.key == "non_regex_topic" && o.value.is_none());
        keys.extend(regex_key(t, non_regex));
    }
    if query || kind == CommandKind::SowDelete {
        keys.extend(filter_key(msg.filter()));
    }
    keys
}

/// A subscription's topic: literal or a regex matched anywhere in the name (§14). A regex is
/// shared with every subscription of the same pattern (one compiled program, one cache).
#[derive(Clone, Debug)]
pub(crate) enum TopicSel {
    Literal(String),
    Regex(Arc<Regex>),
}

impl TopicSel {
    pub(crate) fn matches(&self, topic: &str) -> bool {
        match self {
            TopicSel::Literal(t) => t == topic,
            TopicSel::Regex(r) => r.is_match(topic),
        }
    }

    pub(crate) fn literal(&self) -> Option<&str> {
        match self {
            TopicSel::Literal(t) => Some(t),
            TopicSel::Regex(_) => None,
        }
    }
}

/// What `bookmark_not_found` says (§10.2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum NotFound {
    #[default]
    Now,
    Epoch,
    Fail,
}

/// Parsed options of the subscribe and query commands (§4).
#[derive(Debug, Default)]
pub(crate) struct SubOpts {
    pub(crate) oof: bool,
    pub(crate) replace: bool,
    pub(crate) pause: bool,
    pub(crate) resume: bool,
    pub(crate) no_empties: bool,
    pub(crate) no_sowkey: bool,
    pub(crate) timestamp: bool,
    pub(crate) non_regex: bool,
    pub(crate) max_backlog: Option<u64>,
    pub(crate) conflation: Option<amps_core::Duration>,
    pub(crate) top_n: Option<u64>,
    pub(crate) skip_n: Option<u64>,
    pub(crate) not_found: NotFound,
}

impl SubOpts {
    /// Parse `o`; an unknown option or a bad value is `invalid options` (§4).
    pub(crate) fn parse(o: Option<&str>) -> Result<SubOpts, ()> {
        let mut s = SubOpts::default();
        let num = |v: Option<&str>| v.and_then(|v| v.parse::<u64>().ok()).ok_or(());
        for opt in OptionsIter::new(o.unwrap_or("")) {
            match (opt.key, opt.value) {
                ("oof", None) => s.oof = true,
                ("replace", None) => s.replace = true,
                ("pause", None) => s.pause = true,
                ("resume", None) => s.resume = true,
                ("no_empties", None) => s.no_empties = true,
                ("no_sowkey", None) => s.no_sowkey = true,
                ("timestamp", None) => s.timestamp = true,
                ("non_regex_topic", None) => s.non_regex = true,
                // Accepted; the in-memory broker persists synchronously, so they change nothing.
                ("live" | "fully_durable" | "bookmark" | "send_keys", None) => {}
                ("max_backlog", v) => s.max_backlog = Some(num(v)?),
                ("top_n", v) => s.top_n = Some(num(v)?),
                ("skip_n", v) => s.skip_n = Some(num(v)?),
                ("bookmark_not_found", Some(v)) => {
                    s.not_found = match v.to_ascii_lowercase().as_str() {
                        "now" => NotFound::Now,
                        "epoch" => NotFound::Epoch,
                        "fail" => NotFound::Fail,
                        _ => return Err(()),
                    }
                }
                ("conflation", Some(v)) => match v {
                    "none" => s.conflation = None,
                    // The server's choice: one second.
                    "auto" => s.conflation = Some(amps_core::Duration::from_secs(1)),
                    _ => {
                        let d = options::parse_duration(v).ok_or(())?;
                        s.conflation = (!d.is_zero()).then_some(d);
                    }
                },
                ("rate_max_gap", Some(v)) => {
                    options::parse_duration(v).ok_or(())?;
                }
                // Documented; accepted and not applied by this broker (docs/protocol.md §23.1,
                // "Options").
                ("rate" | "conflation_key" | "select" | "grouping" | "projection", Some(_)) => {}
                _ => return Err(()),
            }
        }
        Ok(s)
    }
}

/// One subscription of a connection.
#[derive(Debug)]
pub(crate) struct Sub {
    pub(crate) cid: Option<String>,
    pub(crate) topic: TopicSel,
    pub(crate) filter: Option<Arc<Filter>>,
    pub(crate) delta: bool,
    pub(crate) oof: bool,
    pub(crate) no_sowkey: bool,
    pub(crate) timestamp: bool,
    pub(crate) no_empties: bool,
    pub(crate) paused: bool,
    /// Bookmark subscriptions: the log index of the next message to deliver.
    pub(crate) cursor: Option<u64>,
    /// Range replay ends at this log index (exclusive).
    pub(crate) range_end: Option<u64>,
    /// Range replay ends after this time (timestamp end in the future).
    pub(crate) range_end_ts: Option<u64>,
    pub(crate) replay_limit: Option<u64>,
    pub(crate) replay_done: bool,
    pub(crate) want_completed: bool,
    pub(crate) persisted_acks: bool,
    pub(crate) persisted_sent: Option<u64>,
    pub(crate) queue: Option<QueueSub>,
    /// Server-side conflation (`conflation=<time>`).
    pub(crate) conflation: Option<super::conflate::Conflation>,
    /// Paginated `sow_and_subscribe` (top_n + skip_n, §6.7).
    pub(crate) page: Option<super::page::Page>,
}

impl Engine {
    pub(super) fn on_subscribe(&mut self, conn: ConnId, msg: &Message<'_>) {
        let kind = msg.kind();
        let Ok(opts) = SubOpts::parse(msg.options()) else {
            return self.fail(conn, msg, "invalid options");
        };
        if kind == CommandKind::Sow {
            return self.on_sow(conn, msg, &opts);
        }
        let sub_id: Arc<str> = match msg.sub_id().or(msg.command_id()) {
            Some(s) => s.into(),
            None => self.auto_id().into(),
        };
        if opts.resume {
            return self.resume(conn, msg, &sub_id);
        }
        let exists = self
            .conns
            .get(&conn)
            .is_some_and(|c| c.subs.contains_key(&sub_id));
        if exists && opts.pause && !opts.replace {
            let backlog = self.sub_mut(conn, &sub_id).and_then(|sub| {
                sub.paused = true;
                sub.queue.as_ref().map(|q| q.backlog)
            });
            // The routes know which subscriptions take messages as they are.
            self.invalidate_routes();
            if self.wants(msg, AckType::Processed) {
                // A queue subscription's processed ack always reports its backlog.
                self.ack(conn, msg, AckType::Processed, None, |w| {
                    if let Some(n) = backlog {
                        w.str("o", &format!("max_backlog={n}"));
                    }
                });
            }
            return;
        }
        if exists && !opts.replace {
            return self.fail(conn, msg, "subscription already exists");
        }
        match self.build_sub(conn, msg, &opts, &sub_id) {
            Ok(sub) => self.enter_sub(conn, msg, &opts, sub_id, sub),
            Err(reason) => self.fail(conn, msg, &reason),
        }
    }

    fn build_sub(
        &mut self,
        conn: ConnId,
        msg: &Message<'_>,
        opts: &SubOpts,
        sub_id: &Arc<str>,
    ) -> Result<Sub, Cow<'static, str>> {
        let kind = msg.kind();
        let delta = matches!(
            kind,
            CommandKind::DeltaSubscribe | CommandKind::SowAndDeltaSubscribe
        );
        let topic = self.topic_sel(msg.topic(), opts.non_regex)?;
        let filter = self.filter_of(msg.filter())?;
        let c = self.conns.get(&conn).ok_or("invalid topic")?;
        if !c.subs.contains_key(sub_id) && c.subs.len() >= self.cfg.max_subscriptions {
            return Err("too many subscriptions".into());
        }
        let mut sub = Sub {
            cid: msg.command_id().map(str::to_owned),
            topic,
            filter,
            delta,
            oof: opts.oof || msg.send_oof() == Some(true),
            no_sowkey: opts.no_sowkey,
            timestamp: opts.timestamp,
            no_empties: opts.no_empties,
            paused: opts.pause,
            cursor: None,
            range_end: None,
            range_end_ts: None,
            replay_limit: msg.top_n().or(opts.top_n),
            replay_done: true,
            want_completed: self.wants(msg, AckType::Completed),
            persisted_acks: false,
            persisted_sent: None,
            queue: None,
            conflation: opts.conflation.map(super::conflate::Conflation::new),
            page: None,
        };
        if let Some(q) = sub.topic.literal().and_then(|t| self.queues.get(t)) {
            // §11: effective backlog = min(requested, configured), 1 without the option.
            let backlog = opts
                .max_backlog
                .unwrap_or(1)
                .clamp(1, q.cfg.max_backlog.max(1));
            sub.queue = Some(QueueSub {
                backlog,
                outstanding: BTreeSet::new(),
            });
            return Ok(sub);
        }
        let bm = msg.bookmark().map(str::trim).filter(|b| !b.is_empty());
        if let Some(bm) = bm {
            if kind.is_sow_query() {
                // No topic keeps SOW history here: only NOW is a valid historical point (§6.7).
                if amps_core::codec::Bookmark::parse(bm) != Ok(amps_core::codec::Bookmark::Now) {
                    return Err("invalid bookmark".into());
                }
            } else {
                if delta {
                    return Err("invalid options".into()); // §6.5
                }
                if let Some(t) = sub.topic.literal()
                    && !self.cfg.is_logged(t)
                {
                    return Err("invalid topic".into()); // §6.4
                }
                let r: Resolved = self.log.resolve(bm, opts.not_found, self.now)?;
                sub.cursor = Some(r.start);
                sub.range_end = r.end;
                sub.range_end_ts = r.end_ts;
                sub.replay_done = false;
                sub.persisted_acks = self.wants(msg, AckType::Persisted);
            }
        }
        if kind.is_sow_query() {
            self.check_query(msg, opts).map_err(Cow::from)?;
            if let Some(skip) = opts.skip_n {
                let top = msg.top_n().or(opts.top_n).unwrap_or(u64::MAX);
                sub.page = Some(super::page::Page {
                    order: msg.order_by().and_then(crate::payload::Order::parse),
                    skip: usize::try_from(skip).unwrap_or(usize::MAX),
                    top: usize::try_from(top).unwrap_or(usize::MAX),
                    keys: Vec::new(),
                });
            }
        }
        Ok(sub)
    }

    fn enter_sub(
        &mut self,
        conn: ConnId,
        msg: &Message<'_>,
        opts: &SubOpts,
        sub_id: Arc<str>,
        mut sub: Sub,
    ) {
        let query = msg.kind().is_sow_query();
        let is_queue = sub.queue.is_some();
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let old = c.subs.remove(&sub_id);
        if let Some(old) = &old {
            // Replace keeps the replay position and the queue leases of the old subscription.
            if sub.cursor.is_none() && old.cursor.is_some() {
                sub.cursor = old.cursor;
                sub.replay_done = old.replay_done;
            }
            if let (Some(new_q), Some(old_q)) = (sub.queue.as_mut(), old.queue.as_ref()) {
                new_q.outstanding = old_q.outstanding.clone();
            }
        }
        let backlog = sub.queue.as_ref().map(|q| q.backlog);
        c.subs.insert(sub_id.clone(), sub);
        self.invalidate_routes();
        if let (Some(old), false) = (&old, is_queue)
            && old.queue.is_some()
        {
            self.queue_unsubscribe(conn, &sub_id, old);
        }
        if is_queue && old.as_ref().is_none_or(|o| o.queue.is_none()) {
            self.queue_subscribe(conn, &sub_id, msg.topic().unwrap_or(""));
        }
        if self.wants(msg, AckType::Processed) {
            let qid = query.then(|| {
                msg.query_id()
                    .or(msg.command_id())
                    .or(msg.sub_id())
                    .unwrap_or("")
            });
            self.ack(conn, msg, AckType::Processed, None, |w| {
                if let Some(q) = qid {
                    w.str("query_id", q);
                }
                if let Some(n) = backlog {
                    w.str("o", &format!("max_backlog={n}"));
                }
            });
        }
        if query {
            let old_filter = old.as_ref().map(|o| (o.topic.clone(), o.filter.clone()));
            self.run_query(conn, msg, opts, Some((&sub_id, old_filter)));
        }
        if is_queue {
            if let Some(t) = msg.topic() {
                self.queue_dispatch(t);
            }
            return;
        }
        let replay = self
            .sub_mut(conn, &sub_id)
            .is_some_and(|s| !s.replay_done && !s.paused);
        if replay {
            self.replay(conn, &sub_id);
        }
        if msg.kind() == CommandKind::DeltaSubscribe && self.wants(msg, AckType::Stats) {
            // §5.3 lists `stats` for delta_subscribe without saying what it counts: an ack
            // naming the subscription, after everything else the command produced.
            self.ack(conn, msg, AckType::Stats, None, |w| {
                w.str("sub_id", &sub_id);
            });
        }
    }

    pub(crate) fn sub_mut(&mut self, conn: ConnId, sid: &str) -> Option<&mut Sub> {
        self.conns.get_mut(&conn)?.subs.get_mut(sid)
    }

    /// `resume` (§6.4): the listed paused subscriptions continue, replaying what they missed.
    fn resume(&mut self, conn: ConnId, msg: &Message<'_>, ids: &str) {
        let ids: Vec<String> = ids
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        self.success(conn, msg, AckType::Processed);
        for id in ids {
            let (replay, queue) = match self.sub_mut(conn, &id) {
                Some(s) if s.paused => {
                    s.paused = false;
                    let queue = s
                        .queue
                        .is_some()
                        .then(|| s.topic.literal().map(str::to_owned));
                    (s.cursor.is_some(), queue.flatten())
                }
                _ => continue,
            };
            // The routes know which subscriptions take messages as they are.
            self.invalidate_routes();
            if replay {
                self.replay(conn, &id);
            }
            if let Some(q) = queue {
                self.queue_dispatch(&q);
            }
        }
    }

    /// Replay the transaction log to a bookmark subscription from its cursor (§10.2), then the
    /// `completed` ack with the log position reached.
    fn replay(&mut self, conn: ConnId, sid: &str) {
        let log_end = self.log.end();
        let Some(sub) = self.sub_mut(conn, sid) else {
            return;
        };
        let Some(mut i) = sub.cursor else {
            return;
        };
        let end = sub.range_end.map_or(log_end, |e| e.min(log_end));
        let mut left = if sub.replay_done {
            None
        } else {
            sub.replay_limit
        };
        let ids: [Arc<str>; 1] = [sid.into()];
        while i < end && left != Some(0) {
            let Some(e) = self.log.get(i).cloned() else {
                i += 1;
                continue;
            };
            i += 1;
            let Some(sub) = self.sub_mut(conn, sid) else {
                return;
            };
            if e.is_delete || !sub.topic.matches(&e.topic) {
                continue;
            }
            if let Some(f) = &sub.filter
                && !payload::parse(e.mt, &e.data).is_some_and(|d| f.matches(&d))
            {
                continue;
            }
            let ts = sub.timestamp.then(|| format_ts(e.ts));
            let k = if sub.no_sowkey { None } else { e.k.as_deref() };
            let head = Head {
                topic: &e.topic,
                ids: &ids,
                k,
                bm: Some(&e.bm),
                x: e.x.as_deref(),
                ts: ts.as_deref(),
                lp: None,
            };
            self.write_delivery(conn, &head, None, &e.data);
            left = left.map(|n| n - 1);
        }
        let position = self.log.bookmark_before(end);
        let Some(sub) = self.sub_mut(conn, sid) else {
            return;
        };
        sub.cursor = Some(log_end.max(i));
        let first_time = !std::mem::replace(&mut sub.replay_done, true);
        let ended = sub.range_end.is_some();
        let want = sub.want_completed && first_time && (sub.range_end_ts.is_none() || ended);
        let cid = sub.cid.clone();
        if sub.persisted_acks
            && let Some(c) = self.conns.get_mut(&conn)
        {
            c.persist.subs_pending = true;
            c.persist.due.get_or_insert(self.now + c.ack_conflation);
        }
        if want {
            self.ack_raw(conn, cid.as_deref(), AckType::Completed, None, |w| {
                w.str("sub_id", sid).str("bm", &position);
            });
        }
        if ended && let Some(c) = self.conns.get_mut(&conn) {
            c.subs.remove(sid);
            self.invalidate_routes();
        }
    }

    /// Periodic `persisted` acks of bookmark subscriptions (§10.2): `bm` = the last log position
    /// the subscription has passed.
    pub(crate) fn bookmark_sub_persisted_acks(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let mut owed = Vec::new();
        for (sid, sub) in c.subs.iter_mut() {
            if let (true, Some(cur)) = (sub.persisted_acks, sub.cursor)
                && sub.persisted_sent != Some(cur)
            {
                sub.persisted_sent = Some(cur);
                owed.push((sid.clone(), sub.cid.clone(), cur));
            }
        }
        for (sid, cid, cur) in owed {
            let bm = self.log.bookmark_before(cur);
            self.ack_raw(conn, cid.as_deref(), AckType::Persisted, None, |w| {
                w.str("sub_id", &sid).str("bm", &bm);
            });
        }
    }

    /// `unsubscribe` (§6.9): `sub_id` (list or `all`) and/or `query_id`; unknown ids are fine.
    pub(super) fn on_unsubscribe(&mut self, conn: ConnId, msg: &Message<'_>) {
        let ids = [msg.sub_id(), msg.query_id()];
        if ids.iter().all(Option::is_none) {
            return self.fail(conn, msg, "missing field: sub_id");
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let mut removed = Vec::new();
        for list in ids.into_iter().flatten() {
            if list.trim() == "all" {
                removed.extend(std::mem::take(&mut c.subs));
                continue;
            }
            for id in list.split(',').map(str::trim) {
                if let Some(s) = c.subs.remove_entry(id) {
                    removed.push(s);
                }
            }
        }
        self.invalidate_routes();
        for (sid, sub) in &removed {
            if sub.queue.is_some() {
                self.queue_unsubscribe(conn, sid, sub);
            }
        }
        self.success(conn, msg, AckType::Processed);
    }
}
