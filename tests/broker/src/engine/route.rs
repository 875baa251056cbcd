//! Routing a message to subscriptions and writing deliveries and `oof` notices (docs/protocol.md
//! §7.1, §7.4, §12.2).

use std::sync::Arc;

use amps_core::codec::{AckType, FrameWriter, OofReason};
use serde_json::Value;

use super::fanout::Routes;
use super::{ConnId, Engine};
use crate::config::MessageType;
use crate::payload;
use crate::wire::format_ts;

/// A subscription a topic's messages go to: connection and `sub_id`.
pub(crate) type Route = (ConnId, Arc<str>);

/// The previous SOW record of an update.
#[derive(Clone, Copy)]
pub(crate) struct Prev<'a> {
    pub(crate) doc: Option<&'a Value>,
}

/// One message on its way to subscribers.
pub(crate) struct Update<'a> {
    pub(crate) topic: &'a str,
    pub(crate) data: &'a [u8],
    pub(crate) doc: Option<&'a Value>,
    pub(crate) prev: Option<Prev<'a>>,
    pub(crate) k: Option<&'a str>,
    pub(crate) bm: Option<&'a str>,
    pub(crate) log_index: Option<u64>,
    pub(crate) x: Option<&'a str>,
    pub(crate) ts: u64,
    pub(crate) mt: MessageType,
    pub(crate) key: &'a [crate::filter::JsonPath],
    pub(crate) sow: bool,
}

/// The delivery header fields shared by `p` and `oof` frames.
pub(crate) struct Head<'a> {
    pub(crate) topic: &'a str,
    pub(crate) ids: &'a [Arc<str>],
    pub(crate) k: Option<&'a str>,
    pub(crate) bm: Option<&'a str>,
    pub(crate) x: Option<&'a str>,
    pub(crate) ts: Option<&'a str>,
    pub(crate) lp: Option<&'a str>,
}

impl Head<'_> {
    /// `{"c":"p","t":…,"sub_id"|"sids":…,"k","bm","x","ts","lp","l"}` (§7.1 order), or an `oof`
    /// with its reason after `k` (§7.4, V9).
    fn write(&self, w: &mut FrameWriter<'_>, sids: &str, oof: Option<&str>, len: usize) {
        w.str("c", if oof.is_some() { "oof" } else { "p" });
        w.str("t", self.topic);
        match self.ids {
            [one] => w.str("sub_id", one),
            _ => w.str("sids", sids),
        };
        if let Some(k) = self.k {
            w.str("k", k);
        }
        if let Some(r) = oof {
            w.str("reason", r);
        }
        if let Some(bm) = self.bm {
            w.str("bm", bm);
        }
        if let Some(x) = self.x {
            w.str("x", x);
        }
        if let Some(ts) = self.ts {
            w.str("ts", ts);
        }
        if let Some(lp) = self.lp {
            w.str("lp", lp);
        }
        w.int("l", len as u64);
    }
}

fn join(ids: &[Arc<str>]) -> String {
    if ids.len() < 2 {
        return String::new();
    }
    ids.iter().map(|s| &**s).collect::<Vec<_>>().join(",")
}

/// What one connection gets for an update.
#[derive(Default)]
struct Picks {
    full: Vec<Arc<str>>,
    delta: Vec<Arc<str>>,
    delta_empties: Vec<Arc<str>>,
    oof: Vec<Arc<str>>,
    ended: Vec<(Arc<str>, Option<String>)>,
    k: bool,
    ts: bool,
}

impl Engine {
    /// The live subscriptions whose topic matches `topic` (queue consumers excluded), ordered
    /// by connection then `sub_id`, grouped per connection. Cached until subscriptions change.
    pub(crate) fn routes_for(&mut self, topic: &str) -> Arc<Routes> {
        if let Some(r) = self.routes.get(topic) {
            return r.clone();
        }
        let r = Arc::new(Routes::build(topic, &self.conns));
        if self.routes.len() >= 65_536 {
            self.routes.clear(); // bounded cache
        }
        self.routes.insert(topic.to_owned(), r.clone());
        r
    }

    /// Write a delivery (or an `oof`) for the subscriptions `ids` of `conn`.
    pub(crate) fn write_delivery(
        &mut self,
        conn: ConnId,
        head: &Head<'_>,
        oof: Option<OofReason>,
        data: &[u8],
    ) {
        let sids = join(head.ids);
        let reason = oof.map(OofReason::wire_name);
        self.emit(conn, data, |w| head.write(w, &sids, reason, data.len()));
    }

    /// Deliver `u` to every matching subscription: one frame per connection (`sids` when several
    /// of its subscriptions match, §7.1), deltas for delta subscribers (§12.2), `oof` `match`
    /// for subscribers that asked and for which the record left focus (§7.4).
    pub(crate) fn deliver(&mut self, u: &Update<'_>) {
        let routes = self.routes_for(u.topic);
        if routes.all.is_empty() {
            return;
        }
        // A message as published (not a SOW update) goes as it is to a connection whose
        // matching subscriptions all take it as it is: a copied header start, no lookups.
        let as_is = !u.sow && u.k.is_none() && u.prev.is_none();
        let owned = if u.doc.is_none() && routes.need_doc {
            payload::parse(u.mt, u.data)
        } else {
            None
        };
        let doc = u.doc.or(owned.as_ref());
        // `ts` is formatted once, and only if a subscription asked for it.
        let mut ts = None;
        for g in &routes.groups {
            if as_is
                && let Some(head) = &g.plain
                && self.emit_plain(g.conn, head, u)
            {
                continue;
            }
            let group = routes.all.get(g.range.clone()).unwrap_or(&[]);
            let picks = self.pick(g.conn, group, u, doc);
            self.write_picks(g.conn, u, doc, &mut ts, picks);
        }
    }

    fn pick(
        &mut self,
        conn: ConnId,
        group: &[Route],
        u: &Update<'_>,
        doc: Option<&Value>,
    ) -> Picks {
        let mut p = Picks::default();
        let now = self.now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return p;
        };
        if c.closing {
            return p;
        }
        let prev_doc = u.prev.and_then(|p| p.doc);
        let mut persist = false;
        for (_, sid) in group {
            let Some(sub) = c.subs.get_mut(sid) else {
                continue;
            };
            if sub.paused || sub.page.is_some() {
                continue; // paginated subscriptions: see page.rs
            }
            if let (Some(idx), Some(cursor)) = (u.log_index, sub.cursor.as_mut()) {
                if idx < *cursor {
                    continue;
                }
                *cursor = idx + 1;
                persist |= sub.persisted_acks;
            }
            if sub.range_end_ts.is_some_and(|end| u.ts > end) {
                p.ended.push((sid.clone(), sub.cid.clone()));
                continue;
            }
            let matches = |d: Option<&Value>| match &sub.filter {
                None => true,
                Some(f) => d.is_some_and(|d| f.matches(d)),
            };
            let prev_match = u.prev.is_some() && matches(prev_doc);
            let now_match = matches(doc);
            if let (Some(cf), true, Some(k)) = (sub.conflation.as_mut(), u.sow, u.k) {
                if now_match {
                    cf.hold(now, u, k);
                    continue;
                }
                cf.forget(u.topic, k);
            }
            if now_match {
                if sub.delta && u.sow && prev_match && prev_doc.is_some() && doc.is_some() {
                    if sub.no_empties {
                        p.delta.push(sid.clone());
                    } else {
                        p.delta_empties.push(sid.clone());
                    }
                } else {
                    p.full.push(sid.clone());
                }
                p.k |= !sub.no_sowkey;
                p.ts |= sub.timestamp;
            } else if sub.oof && u.sow && prev_match {
                p.oof.push(sid.clone());
                p.k |= !sub.no_sowkey;
            }
        }
        if persist {
            c.persist.subs_pending = true;
            if c.persist.due.is_none() {
                c.persist.due = Some(now + c.ack_conflation);
            }
        }
        p
    }

    fn write_picks(
        &mut self,
        conn: ConnId,
        u: &Update<'_>,
        doc: Option<&Value>,
        ts: &mut Option<String>,
        mut p: Picks,
    ) {
        fn mk<'a>(
            u: &'a Update<'_>,
            ids: &'a [Arc<str>],
            k: bool,
            ts: Option<&'a str>,
        ) -> Head<'a> {
            Head {
                topic: u.topic,
                ids,
                k: if k { u.k } else { None },
                bm: u.bm,
                x: u.x,
                ts,
                lp: None,
            }
        }
        let with_k = p.k;
        let ts = if p.ts {
            Some(ts.get_or_insert_with(|| format_ts(u.ts)).as_str())
        } else {
            None
        };
        if !p.delta.is_empty() || !p.delta_empties.is_empty() {
            let prev = u.prev.and_then(|p| p.doc);
            let out = match (prev, doc) {
                (Some(prev), Some(doc)) => payload::delta_output(u.mt, prev, doc, u.key),
                _ => None,
            };
            match out {
                Some((bytes, changed)) => {
                    let mut ids = std::mem::take(&mut p.delta_empties);
                    if changed {
                        ids.append(&mut p.delta);
                        ids.sort();
                    }
                    if !ids.is_empty() {
                        self.write_delivery(conn, &mk(u, &ids, with_k, ts), None, &bytes);
                    }
                }
                None => {
                    p.full.append(&mut p.delta);
                    p.full.append(&mut p.delta_empties);
                    p.full.sort();
                }
            }
        }
        if !p.full.is_empty() {
            self.write_delivery(conn, &mk(u, &p.full, with_k, ts), None, u.data);
        }
        if !p.oof.is_empty() {
            // An oof is not a logged message: no bookmark (§7.4, V9).
            let mut head = mk(u, &p.oof, with_k, None);
            head.bm = None;
            self.write_delivery(conn, &head, Some(OofReason::Match), u.data);
        }
        for (sid, cid) in p.ended {
            // A range replay ran past its end (§10.1): completed, then the subscription ends.
            if let Some(c) = self.conns.get_mut(&conn) {
                let sub = c.subs.remove(&sid);
                self.invalidate_routes();
                if let Some(sub) = sub
                    && sub.want_completed
                {
                    let bm = u.bm.unwrap_or("0").to_owned();
                    self.ack_raw(conn, cid.as_deref(), AckType::Completed, None, |w| {
                        w.str("sub_id", &sid).str("bm", &bm);
                    });
                }
            }
        }
    }

    /// `oof` with `reason` for a record that left the SOW (deleted, expired, §7.4): to every
    /// subscription with option `oof` whose filter matched the record.
    pub(crate) fn deliver_oof(
        &mut self,
        topic: &str,
        k: &str,
        data: &[u8],
        doc: Option<&Value>,
        x: Option<&str>,
        reason: OofReason,
    ) {
        let routes = self.routes_for(topic);
        for group in routes.all.chunk_by(|a, b| a.0 == b.0) {
            let Some((conn, _)) = group.first() else {
                continue;
            };
            let Some(c) = self.conns.get(conn) else {
                continue;
            };
            let mut ids = Vec::new();
            let mut with_k = false;
            for (_, sid) in group {
                let Some(sub) = c.subs.get(sid) else {
                    continue;
                };
                let matched = match &sub.filter {
                    None => true,
                    Some(f) => doc.is_some_and(|d| f.matches(d)),
                };
                if sub.oof && !sub.paused && sub.page.is_none() && matched {
                    ids.push(sid.clone());
                    with_k |= !sub.no_sowkey;
                }
            }
            if ids.is_empty() {
                continue;
            }
            let head = Head {
                topic,
                ids: &ids,
                k: with_k.then_some(k),
                bm: None,
                x,
                ts: None,
                lp: None,
            };
            self.write_delivery(*conn, &head, Some(reason), data);
        }
    }
}
