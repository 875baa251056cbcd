//! State of the World (docs/protocol.md §6.6–§6.8, §7.2, §7.3, §12.1): keyed records, queries with
//! batching, ordering and paging, `sow_delete`, expiration.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use amps_core::codec::{AckType, Message, OofReason};
use amps_core::{Duration, Instant};
use serde_json::Value;

use super::acks::Stats;
use super::page::Removed;
use super::publish::Seq;
use super::route::{Prev, Update};
use super::subscribe::{SubOpts, TopicSel};
use super::{ConnId, Engine};
use crate::config::{MessageType, SowTopic};
use crate::filter::{Filter, JsonPath};
use crate::payload::{self, Order};
use crate::wire::{format_ts, put_object, sow_key};

/// The topic and filter a subscription had before a replace (§6.7).
pub(super) type OldSub = (TopicSel, Option<Arc<Filter>>);

/// Largest batch size a query may ask for (§6.6).
const MAX_BATCH: u64 = 10_000;

/// One SOW record.
#[derive(Clone, Debug)]
pub(crate) struct Record {
    pub(crate) k: Arc<str>,
    pub(crate) data: Arc<[u8]>,
    pub(crate) doc: Option<Value>,
    pub(crate) x: Option<Arc<str>>,
    pub(crate) ts: u64,
    pub(crate) expires: Option<Instant>,
    order: u64,
}

/// The records of one SOW topic, in key insertion order (§6.6: our broker's default order).
pub(crate) struct SowStore {
    pub(crate) cfg: SowTopic,
    key: Vec<JsonPath>,
    pub(super) records: BTreeMap<Arc<str>, Record>,
    order: BTreeMap<u64, Arc<str>>,
    next: u64,
}

impl SowStore {
    pub(crate) fn new(cfg: SowTopic) -> SowStore {
        SowStore {
            key: payload::key_paths(&cfg.key),
            cfg,
            records: BTreeMap::new(),
            order: BTreeMap::new(),
            next: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(super) fn in_order(&self) -> impl Iterator<Item = &Record> {
        self.order.values().filter_map(|k| self.records.get(k))
    }

    /// Insert or replace; an update keeps the record's place. Returns the previous record.
    fn upsert(&mut self, mut rec: Record) -> Option<Record> {
        match self.records.get(&rec.k) {
            Some(old) => rec.order = old.order,
            None => {
                rec.order = self.next;
                self.next += 1;
                self.order.insert(rec.order, rec.k.clone());
            }
        }
        self.records.insert(rec.k.clone(), rec)
    }

    fn remove(&mut self, k: &str) -> Option<Record> {
        let rec = self.records.remove(k)?;
        self.order.remove(&rec.order);
        Some(rec)
    }

    /// The key of a payload (§18 convention); the command's `k` on publisher-keyed topics, or
    /// when the payload lacks the key fields.
    fn key_of(&self, doc: Option<&Value>, explicit: Option<&str>) -> Option<Arc<str>> {
        let explicit = || explicit.filter(|k| !k.is_empty()).map(Into::into);
        if self.cfg.key.is_empty() {
            return explicit();
        }
        // §12.1: the payload carries the key fields, or the command carries `k`.
        match doc.and_then(|d| payload::key_values(d, &self.key)) {
            Some(values) => Some(sow_key(&self.cfg.topic, &values).into()),
            None => explicit(),
        }
    }
}

pub(super) fn filter_ok(f: Option<&Filter>, doc: Option<&Value>) -> bool {
    f.is_none_or(|f| doc.is_some_and(|d| f.matches(d)))
}

impl Engine {
    /// Store a publish or delta publish in the SOW, log it, deliver it (§6.2, §6.3, §12.1).
    pub(super) fn sow_publish(
        &mut self,
        _conn: ConnId,
        msg: &Message<'_>,
        topic: &str,
        delta: bool,
        seq: u64,
        pub_id: u64,
    ) -> Result<(), &'static str> {
        let now = self.now;
        let store = self.sows.get(topic).ok_or("invalid topic")?;
        let mt = store.cfg.message_type;
        let doc = payload::parse(mt, msg.data());
        let k = store
            .key_of(doc.as_ref(), msg.sow_key())
            .ok_or("invalid sow key")?;
        let prev = store.records.get(&k);
        let (data, doc, x): (Arc<[u8]>, Option<Value>, Option<Arc<str>>) = match prev {
            Some(p) if delta => {
                let merged = match (mt, &p.doc, &doc) {
                    (MessageType::Json, Some(base), Some(d)) => {
                        let mut m = base.clone();
                        payload::merge_json(&mut m, d);
                        serde_json::to_vec(&m).ok().map(|b| (b, Some(m)))
                    }
                    _ => payload::merge(mt, &p.data, msg.data()).map(|b| {
                        let d = payload::parse(mt, &b);
                        (b, d)
                    }),
                };
                let (bytes, doc) = merged.unwrap_or_else(|| (msg.data().to_vec(), doc));
                let x = msg.correlation_id().map(Into::into).or(p.x.clone());
                (bytes.into(), doc, x)
            }
            _ => (msg.data().into(), doc, msg.correlation_id().map(Into::into)),
        };
        let lifetime = match msg.expiration() {
            Some(e) => Duration::from_secs(e),
            None => store.cfg.expiration.0,
        };
        let expires = (!lifetime.is_zero()).then(|| now + lifetime);
        let key_fields = store.key.clone();
        let rec = Record {
            k: k.clone(),
            data: data.clone(),
            doc: doc.clone(),
            x: x.clone(),
            ts: now.as_micros(),
            expires,
            order: 0,
        };
        let prev = self.sows.get_mut(topic).and_then(|s| s.upsert(rec));
        if let Some(at) = expires {
            self.expiries.insert((at, topic.to_owned(), k.clone()));
        }
        let logged = self.log_append(topic, &data, Some(&k), x.as_deref(), seq, pub_id, false);
        self.deliver(&Update {
            topic,
            data: &data,
            doc: doc.as_ref(),
            prev: prev.as_ref().map(|p| Prev {
                doc: p.doc.as_ref(),
            }),
            k: Some(&k),
            bm: logged.as_ref().map(|(bm, _)| &**bm),
            log_index: logged.as_ref().map(|(_, i)| *i),
            x: x.as_deref(),
            ts: now.as_micros(),
            mt,
            key: &key_fields,
            sow: true,
        });
        self.refresh_pages(topic, &k, logged.as_ref().map(|(bm, _)| &**bm), None);
        Ok(())
    }

    /// Validate the query headers (§6.6): batch size, ordering, paging.
    pub(super) fn check_query(
        &self,
        msg: &Message<'_>,
        opts: &SubOpts,
    ) -> Result<(), &'static str> {
        if msg.batch_size().is_some_and(|bs| bs > MAX_BATCH) {
            return Err("invalid options");
        }
        if let Some(o) = msg.order_by()
            && Order::parse(o).is_none()
        {
            return Err("invalid options");
        }
        if opts.skip_n.is_some() && msg.top_n().or(opts.top_n).is_none() {
            return Err("invalid options");
        }
        Ok(())
    }

    /// `sow` (§6.6).
    pub(super) fn on_sow(&mut self, conn: ConnId, msg: &Message<'_>, opts: &SubOpts) {
        let checked = self
            .topic_sel(msg.topic(), opts.non_regex)
            .and_then(|sel| match sel.literal() {
                Some(t) if !self.sows.contains_key(t) => Err("invalid topic".into()),
                _ => Ok(()),
            })
            .and_then(|()| self.filter_of(msg.filter()))
            .and_then(|_| self.check_query(msg, opts).map_err(Cow::from));
        if let Err(reason) = checked {
            return self.fail(conn, msg, &reason);
        }
        let qid = msg
            .query_id()
            .or(msg.command_id())
            .or(msg.sub_id())
            .unwrap_or("")
            .to_owned();
        if self.wants(msg, AckType::Processed) {
            self.ack(conn, msg, AckType::Processed, None, |w| {
                w.str("query_id", &qid);
            });
        }
        self.run_query(conn, msg, opts, None);
    }

    /// Run a query and send its result: `group_begin`, `sow` batches, `group_end`, `completed`,
    /// `stats` (§6.6). For a replace (§6.7) `sub` carries the old topic and filter: records the
    /// old subscription already had are not sent again, and (with `oof`) records that matched the
    /// old filter but not the new one get an `oof` `match`.
    pub(super) fn run_query(
        &mut self,
        conn: ConnId,
        msg: &Message<'_>,
        opts: &SubOpts,
        sub: Option<(&Arc<str>, Option<OldSub>)>,
    ) {
        let qid = msg
            .query_id()
            .or(msg.command_id())
            .or(msg.sub_id())
            .unwrap_or("")
            .to_owned();
        let Ok(sel) = self.topic_sel(msg.topic(), opts.non_regex) else {
            return;
        };
        let Ok(filter) = self.filter_of(msg.filter()) else {
            return;
        };
        let keys: Option<Vec<&str>> = msg
            .sow_keys()
            .map(|s| s.split(',').map(str::trim).collect());
        let order = msg.order_by().and_then(Order::parse);
        let old = sub.as_ref().and_then(|(_, o)| o.as_ref());
        let mut stats = Stats::default();
        let mut picked: Vec<(&str, &Record)> = Vec::new();
        let mut left_focus: Vec<(&str, &Record)> = Vec::new();
        for (name, store) in &self.sows {
            if !sel.matches(name) {
                continue;
            }
            for rec in store.in_order() {
                stats.topic_matches += 1;
                if keys.as_ref().is_some_and(|ks| !ks.contains(&&*rec.k)) {
                    continue;
                }
                let had = old.is_some_and(|(t, f)| {
                    t.matches(name) && filter_ok(f.as_deref(), rec.doc.as_ref())
                });
                if !filter_ok(filter.as_deref(), rec.doc.as_ref()) {
                    if had {
                        left_focus.push((name, rec));
                    }
                    continue;
                }
                stats.matches += 1;
                if !had {
                    picked.push((name, rec));
                }
            }
        }
        if let Some(o) = &order {
            picked.sort_by(|a, b| o.compare(a.1.doc.as_ref(), b.1.doc.as_ref()));
        }
        let skip = usize::try_from(opts.skip_n.unwrap_or(0)).unwrap_or(usize::MAX);
        let top = msg
            .top_n()
            .or(opts.top_n)
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        let result: Vec<(String, Record)> = picked
            .into_iter()
            .skip(skip)
            .take(top)
            .map(|(t, r)| (t.to_owned(), r.clone()))
            .collect();
        let oofs: Vec<(String, Record)> = if sub.is_some() && opts.oof {
            left_focus
                .into_iter()
                .map(|(t, r)| (t.to_owned(), r.clone()))
                .collect()
        } else {
            Vec::new()
        };
        stats.returned = Some(result.len() as u64);
        if let Some((sid, _)) = &sub
            && let Some(page) = self.sub_mut(conn, sid).and_then(|s| s.page.as_mut())
        {
            page.keys = result.iter().map(|(_, r)| r.k.clone()).collect();
        }
        let bs = msg.batch_size().unwrap_or(1).max(1);
        self.send_result(conn, &qid, &result, bs, opts);
        let sub_id = sub.map(|(s, _)| s.clone());
        for (topic, rec) in &oofs {
            if let Some(sid) = &sub_id {
                let ids = [sid.clone()];
                let head = super::route::Head {
                    topic,
                    ids: &ids,
                    k: (!opts.no_sowkey).then_some(&*rec.k),
                    bm: None,
                    x: rec.x.as_deref(),
                    ts: None,
                    lp: None,
                };
                self.write_delivery(conn, &head, Some(OofReason::Match), &rec.data);
            }
        }
        let extra = |w: &mut amps_core::codec::FrameWriter<'_>| {
            w.str("query_id", &qid);
            if let Some(s) = &sub_id {
                w.str("sub_id", s);
            }
        };
        if self.wants(msg, AckType::Completed) {
            self.ack(conn, msg, AckType::Completed, None, extra);
        }
        if self.wants(msg, AckType::Stats) {
            self.ack(conn, msg, AckType::Stats, None, |w| {
                extra(w);
                stats.write(w);
            });
        }
    }

    /// `group_begin`, batches of at most `bs` records of one topic (§7.2), `group_end`.
    fn send_result(
        &mut self,
        conn: ConnId,
        qid: &str,
        recs: &[(String, Record)],
        bs: u64,
        opts: &SubOpts,
    ) {
        self.emit(conn, &[], |w| {
            w.str("c", "group_begin").str("query_id", qid);
        });
        let bs = usize::try_from(bs).unwrap_or(usize::MAX);
        let mut start = 0;
        let mut payload = Vec::new();
        while start < recs.len() {
            let topic = recs.get(start).map_or("", |(t, _)| t.as_str());
            let batch: Vec<&Record> = recs
                .get(start..)
                .unwrap_or(&[])
                .iter()
                .take_while(|(t, _)| t == topic)
                .take(bs)
                .map(|(_, r)| r)
                .collect();
            payload.clear();
            for r in &batch {
                let ts = opts.timestamp.then(|| format_ts(r.ts));
                put_object(&mut payload, |w| {
                    if !opts.no_sowkey {
                        w.str("k", &r.k);
                    }
                    w.int("l", r.data.len() as u64);
                    if let Some(x) = &r.x {
                        w.str("x", x);
                    }
                    if let Some(ts) = &ts {
                        w.str("ts", ts);
                    }
                });
                payload.extend_from_slice(&r.data);
            }
            let n = batch.len() as u64;
            let topic = topic.to_owned();
            self.emit(conn, &payload, |w| {
                w.str("c", "sow")
                    .str("t", &topic)
                    .str("query_id", qid)
                    .int("bs", n);
            });
            start += batch.len().max(1);
        }
        self.emit(conn, &[], |w| {
            w.str("c", "group_end").str("query_id", qid);
        });
    }

    /// `sow_delete` (§6.8): by filter, keys or data on SOW topics; queue acks by bookmark (§11).
    pub(super) fn on_sow_delete(&mut self, conn: ConnId, msg: &Message<'_>) {
        let topic = msg.topic().unwrap_or("").to_owned();
        let (seq, prev, pub_id) = match self.sequence(conn, msg.seq()) {
            Some((Seq::New { seq, prev }, pub_id)) => (seq, prev, pub_id),
            Some((Seq::Duplicate, _)) => return self.duplicate(conn, msg),
            None => return,
        };
        let result = if msg.topic().is_none() {
            Err("missing field: t".into())
        } else if self.queues.contains_key(&topic) {
            self.queue_sow_delete(conn, msg, &topic)
        } else if msg.bookmark().is_some() || !self.sows.contains_key(&topic) {
            Err("invalid topic".into())
        } else {
            self.sow_delete_records(conn, msg, &topic, seq, pub_id)
        };
        match result {
            Ok(stats) => {
                if self.wants(msg, AckType::Completed) {
                    self.ack(conn, msg, AckType::Completed, None, |w| {
                        if let Some(q) = msg.query_id() {
                            w.str("query_id", q);
                        }
                    });
                }
                if self.wants(msg, AckType::Stats) {
                    self.ack(conn, msg, AckType::Stats, None, |w| {
                        if let Some(q) = msg.query_id() {
                            w.str("query_id", q);
                        }
                        stats.write(w);
                    });
                }
                self.persisted_ok(conn, msg, seq);
            }
            Err(reason) => {
                self.fail(conn, msg, &reason);
                self.persisted_failed(conn, msg, seq, &reason, prev);
            }
        }
    }

    /// The `processed` ack of a successful sow_delete (before any `oof`, §6.8).
    pub(super) fn delete_processed(&mut self, conn: ConnId, msg: &Message<'_>) {
        if self.wants(msg, AckType::Processed) {
            self.ack(conn, msg, AckType::Processed, None, |w| {
                if let Some(q) = msg.query_id() {
                    w.str("query_id", q);
                }
            });
        }
    }

    fn sow_delete_records(
        &mut self,
        conn: ConnId,
        msg: &Message<'_>,
        topic: &str,
        seq: u64,
        pub_id: u64,
    ) -> Result<Stats, Cow<'static, str>> {
        let filter = self.filter_of(msg.filter())?;
        let store = self.sows.get(topic).ok_or("invalid topic")?;
        let mut stats = Stats {
            topic_matches: store.len() as u64,
            ..Stats::default()
        };
        let victims: Vec<Arc<str>> = if let Some(f) = &filter {
            store
                .in_order()
                .filter(|r| filter_ok(Some(f.as_ref()), r.doc.as_ref()))
                .map(|r| r.k.clone())
                .collect()
        } else if let Some(keys) = msg.sow_keys() {
            keys.split(',')
                .map(str::trim)
                .filter(|k| store.records.contains_key(*k))
                .map(Into::into)
                .collect()
        } else if !msg.data().is_empty() {
            let doc = payload::parse(store.cfg.message_type, msg.data());
            let k = store
                .key_of(doc.as_ref(), msg.sow_key())
                .ok_or("invalid sow key")?;
            if store.records.contains_key(&k) {
                vec![k]
            } else {
                Vec::new()
            }
        } else {
            Vec::new()
        };
        stats.matches = victims.len() as u64;
        self.delete_processed(conn, msg);
        for k in victims {
            if let Some(rec) = self.sows.get_mut(topic).and_then(|s| s.remove(&k)) {
                stats.deleted = Some(stats.deleted.unwrap_or(0) + 1);
                self.deliver_oof(
                    topic,
                    &k,
                    &rec.data,
                    rec.doc.as_ref(),
                    rec.x.as_deref(),
                    OofReason::Deleted,
                );
                let removed = Removed {
                    reason: OofReason::Deleted,
                    rec: &rec,
                };
                self.refresh_pages(topic, &k, None, Some(removed));
            }
        }
        stats.deleted.get_or_insert(0);
        self.log_append(topic, &[], None, None, seq, pub_id, true);
        Ok(stats)
    }

    /// Remove expired SOW records, with `oof` `expired` (§7.4).
    pub(super) fn run_expirations(&mut self) {
        while let Some((at, topic, k)) = self.expiries.first().cloned() {
            if at > self.now {
                break;
            }
            self.expiries.pop_first();
            let Some(store) = self.sows.get_mut(&topic) else {
                continue;
            };
            if store.records.get(&k).is_none_or(|r| r.expires != Some(at)) {
                continue; // updated since: a stale entry
            }
            if let Some(rec) = store.remove(&k) {
                self.deliver_oof(
                    &topic,
                    &k,
                    &rec.data,
                    rec.doc.as_ref(),
                    rec.x.as_deref(),
                    OofReason::Expired,
                );
                let removed = Removed {
                    reason: OofReason::Expired,
                    rec: &rec,
                };
                self.refresh_pages(&topic, &k, None, Some(removed));
            }
        }
    }
}
