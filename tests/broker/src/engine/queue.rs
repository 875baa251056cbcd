//! Queues (docs/protocol.md §11): one consumer per message, backlog per subscription, leases and
//! redelivery, acknowledgement / cancel / expire through `sow_delete` with bookmarks.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use amps_core::codec::Message;
use amps_core::codec::options::OptionsIter;
use amps_core::{Duration, Instant};
use serde_json::Value;

use super::acks::Stats;
use super::route::Head;
use super::subscribe::Sub;
use super::{ConnId, Engine};
use crate::config::QueueTopic;
use crate::payload;
use crate::wire::{bookmark, format_ts};

/// A queue consumer's state: its backlog and the messages it holds (by bookmark).
#[derive(Debug, Clone)]
pub(crate) struct QueueSub {
    pub(crate) backlog: u64,
    pub(crate) outstanding: BTreeSet<Arc<str>>,
}

#[derive(Debug)]
struct QMsg {
    bm: Arc<str>,
    data: Arc<[u8]>,
    doc: Option<Value>,
    x: Option<Arc<str>>,
    lease: Option<(ConnId, Arc<str>, Instant)>,
    deliveries: u32,
    cancels: u32,
}

pub(crate) struct Queue {
    pub(crate) cfg: QueueTopic,
    /// Oldest first; a returned message keeps its place (§11, our convention).
    msgs: BTreeMap<u64, QMsg>,
    by_bm: HashMap<Arc<str>, u64>,
    leases: BTreeSet<(Instant, u64)>,
    expiry: BTreeSet<(Instant, u64)>,
    consumers: Vec<(ConnId, Arc<str>)>,
    rr: usize,
    next: u64,
}

impl Queue {
    pub(crate) fn new(cfg: QueueTopic) -> Queue {
        Queue {
            cfg,
            msgs: BTreeMap::new(),
            by_bm: HashMap::new(),
            leases: BTreeSet::new(),
            expiry: BTreeSet::new(),
            consumers: Vec::new(),
            rr: 0,
            next: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.msgs.len()
    }

    pub(crate) fn next_timer(&self) -> Option<Instant> {
        let a = self.leases.first().map(|x| x.0);
        let b = self.expiry.first().map(|x| x.0);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn remove(&mut self, id: u64) -> Option<QMsg> {
        let m = self.msgs.remove(&id)?;
        self.by_bm.remove(&m.bm);
        if let Some((_, _, until)) = &m.lease {
            self.leases.remove(&(*until, id));
        }
        Some(m)
    }

    /// End a lease; the message is available again unless it ran out of deliveries or
    /// cancels, in which case it expires. Returns the lease holder.
    fn unlease(&mut self, id: u64, cancel: bool) -> Option<(ConnId, Arc<str>)> {
        let m = self.msgs.get_mut(&id)?;
        let (conn, sid, until) = m.lease.take()?;
        self.leases.remove(&(until, id));
        if cancel {
            m.cancels += 1;
        }
        let maxd = self.cfg.max_deliveries;
        let maxc = self.cfg.max_cancels;
        if (maxd > 0 && m.deliveries >= maxd) || (cancel && maxc > 0 && m.cancels >= maxc) {
            self.remove(id);
        }
        Some((conn, sid))
    }
}

impl Engine {
    /// A publish to a queue topic: enqueue and dispatch (§11).
    pub(super) fn queue_publish(
        &mut self,
        _conn: ConnId,
        msg: &Message<'_>,
        topic: &str,
        seq: u64,
        pub_id: u64,
    ) -> Result<(), &'static str> {
        let now = self.now;
        let q = self.queues.get_mut(topic).ok_or("invalid topic")?;
        let bm: Arc<str> = bookmark(pub_id, seq).into();
        let id = q.next;
        q.next += 1;
        if let Some(e) = msg.expiration().filter(|e| *e > 0) {
            q.expiry.insert((now + Duration::from_secs(e), id));
        }
        q.by_bm.insert(bm.clone(), id);
        q.msgs.insert(
            id,
            QMsg {
                bm,
                data: msg.data().into(),
                doc: payload::parse(q.cfg.message_type, msg.data()),
                x: msg.correlation_id().map(Into::into),
                lease: None,
                deliveries: 0,
                cancels: 0,
            },
        );
        self.queue_dispatch(topic);
        Ok(())
    }

    pub(super) fn queue_subscribe(&mut self, conn: ConnId, sid: &Arc<str>, topic: &str) {
        if let Some(q) = self.queues.get_mut(topic) {
            q.consumers.push((conn, sid.clone()));
        }
    }

    /// A consumer went away (unsubscribe, replace, disconnect): its leases end (§11).
    pub(super) fn queue_unsubscribe(&mut self, conn: ConnId, sid: &Arc<str>, sub: &Sub) {
        let Some(topic) = sub.topic.literal() else {
            return;
        };
        let Some(q) = self.queues.get_mut(topic) else {
            return;
        };
        q.consumers.retain(|(c, s)| !(*c == conn && s == sid));
        if let Some(qs) = &sub.queue {
            for bm in &qs.outstanding {
                if let Some(id) = q.by_bm.get(bm).copied() {
                    q.unlease(id, false);
                }
            }
        }
        let topic = topic.to_owned();
        self.queue_dispatch(&topic);
    }

    /// Hand available messages, oldest first, to consumers with free backlog whose filter
    /// matches, round robin.
    pub(crate) fn queue_dispatch(&mut self, topic: &str) {
        let now = self.now;
        let Engine { queues, conns, .. } = self;
        let Some(q) = queues.get_mut(topic) else {
            return;
        };
        let n = q.consumers.len();
        let mut out = Vec::new();
        let mut sent_at_most_once = Vec::new();
        for (id, m) in q.msgs.iter_mut() {
            if m.lease.is_some() {
                continue;
            }
            let mut room = false;
            let mut chosen = None;
            for step in 0..n {
                let idx = (q.rr + step) % n;
                let Some((conn, sid)) = q.consumers.get(idx) else {
                    continue;
                };
                let Some(sub) = conns
                    .get(conn)
                    .filter(|c| !c.closing)
                    .and_then(|c| c.subs.get(sid))
                else {
                    continue;
                };
                let Some(qs) = &sub.queue else { continue };
                if sub.paused || qs.outstanding.len() as u64 >= qs.backlog {
                    continue;
                }
                room = true;
                if let Some(f) = &sub.filter
                    && !m.doc.as_ref().is_some_and(|d| f.matches(d))
                {
                    continue;
                }
                chosen = Some((idx, *conn, sid.clone()));
                break;
            }
            if !room {
                break;
            }
            let Some((idx, conn, sid)) = chosen else {
                continue;
            };
            q.rr = idx + 1;
            if let Some(qs) = conns
                .get_mut(&conn)
                .and_then(|c| c.subs.get_mut(&sid))
                .and_then(|s| s.queue.as_mut())
            {
                qs.outstanding.insert(m.bm.clone());
            }
            m.deliveries += 1;
            let lp = if q.cfg.at_most_once {
                sent_at_most_once.push(*id);
                None
            } else {
                let until = now + q.cfg.lease_period.0;
                m.lease = Some((conn, sid.clone(), until));
                q.leases.insert((until, *id));
                Some(format_ts(until.as_micros()))
            };
            out.push((conn, sid, m.bm.clone(), m.data.clone(), m.x.clone(), lp));
        }
        for id in sent_at_most_once {
            q.remove(id);
        }
        for (conn, sid, bm, data, x, lp) in out {
            let ids = [sid];
            let head = Head {
                topic,
                ids: &ids,
                k: None,
                bm: Some(&bm),
                x: x.as_deref(),
                ts: None,
                lp: lp.as_deref(),
            };
            self.write_delivery(conn, &head, None, &data);
        }
    }

    /// `sow_delete` on a queue (§11): bookmarks acknowledge (or `cancel` / `expire`) messages
    /// this connection holds; a filter removes every matching message.
    pub(super) fn queue_sow_delete(
        &mut self,
        conn: ConnId,
        msg: &Message<'_>,
        topic: &str,
    ) -> Result<Stats, Cow<'static, str>> {
        let (mut cancel, mut expire) = (false, false);
        for opt in OptionsIter::new(msg.options().unwrap_or("")) {
            match (opt.key, opt.value) {
                ("cancel", None) => cancel = true,
                ("expire", None) => expire = true,
                _ => return Err("invalid options".into()),
            }
        }
        let filter = self.filter_of(msg.filter())?;
        let Engine { queues, conns, .. } = self;
        let q = queues.get_mut(topic).ok_or("invalid topic")?;
        let mut stats = Stats {
            topic_matches: q.msgs.len() as u64,
            deleted: Some(0),
            ..Stats::default()
        };
        let mut touched = Vec::new();
        if let Some(bms) = msg.bookmark() {
            let Some(c) = conns.get_mut(&conn) else {
                return Err("invalid topic".into());
            };
            for bm in bms.split(',').map(str::trim).filter(|b| !b.is_empty()) {
                // Only the holder may settle a message; unknown bookmarks are ignored.
                let holder = c.subs.values_mut().find_map(|s| {
                    let qs = s.queue.as_mut()?;
                    qs.outstanding.remove(bm).then_some(())
                });
                if holder.is_none() {
                    continue;
                }
                stats.matches += 1;
                stats.deleted = stats.deleted.map(|d| d + 1);
                if let Some(id) = q.by_bm.get(bm).copied() {
                    if cancel && !expire {
                        q.unlease(id, true);
                    } else {
                        q.remove(id);
                    }
                }
            }
        } else if let Some(f) = &filter {
            let ids: Vec<u64> = q
                .msgs
                .iter()
                .filter(|(_, m)| m.doc.as_ref().is_some_and(|d| f.matches(d)))
                .map(|(id, _)| *id)
                .collect();
            for id in ids {
                if let Some(m) = q.remove(id) {
                    stats.matches += 1;
                    stats.deleted = stats.deleted.map(|d| d + 1);
                    if let Some((holder, sid, _)) = m.lease {
                        touched.push((holder, sid, m.bm));
                    }
                }
            }
        }
        for (holder, sid, bm) in touched {
            if let Some(qs) = conns
                .get_mut(&holder)
                .and_then(|c| c.subs.get_mut(&sid))
                .and_then(|s| s.queue.as_mut())
            {
                qs.outstanding.remove(&bm);
            }
        }
        self.delete_processed(conn, msg);
        self.queue_dispatch(topic);
        Ok(stats)
    }

    /// Lease expiries (redelivery) and message expirations (§11).
    pub(super) fn run_queue_timers(&mut self) {
        let now = self.now;
        let names: Vec<String> = self
            .queues
            .iter()
            .filter(|(_, q)| q.next_timer().is_some_and(|t| t <= now))
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            let Engine { queues, conns, .. } = self;
            let Some(q) = queues.get_mut(&name) else {
                continue;
            };
            while let Some(&(at, id)) = q.leases.first() {
                if at > now {
                    break;
                }
                let bm = q.msgs.get(&id).map(|m| m.bm.clone());
                if let (Some((conn, sid)), Some(bm)) = (q.unlease(id, false), bm)
                    && let Some(qs) = conns
                        .get_mut(&conn)
                        .and_then(|c| c.subs.get_mut(&sid))
                        .and_then(|s| s.queue.as_mut())
                {
                    qs.outstanding.remove(&bm);
                }
                q.leases.remove(&(at, id));
            }
            while let Some(&(at, id)) = q.expiry.first() {
                if at > now {
                    break;
                }
                q.expiry.pop_first();
                if let Some(m) = q.remove(id)
                    && let Some((conn, sid, _)) = m.lease
                    && let Some(qs) = conns
                        .get_mut(&conn)
                        .and_then(|c| c.subs.get_mut(&sid))
                        .and_then(|s| s.queue.as_mut())
                {
                    qs.outstanding.remove(&m.bm);
                }
            }
            self.queue_dispatch(&name);
        }
    }
}
