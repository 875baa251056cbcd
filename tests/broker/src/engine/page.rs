//! Paginated subscriptions (docs/protocol.md §6.7): a `sow_and_subscribe` with `top_n` and `skip_n`
//! keeps a window of the ordered query result; records entering it are delivered, records
//! leaving it get an `oof` (`match` when pushed out or no longer matching, `deleted` /
//! `expired` when removed).

use std::sync::Arc;

use amps_core::codec::OofReason;

use super::route::Head;
use super::sow::{Record, filter_ok};
use super::{ConnId, Engine};
use crate::payload::Order;

/// The window of a paginated subscription.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    pub(crate) order: Option<Order>,
    pub(crate) skip: usize,
    pub(crate) top: usize,
    /// Keys currently in the window, in window order.
    pub(crate) keys: Vec<Arc<str>>,
}

/// A record that left the SOW, for the `oof` of a window that held it.
pub(crate) struct Removed<'a> {
    pub(crate) reason: OofReason,
    pub(crate) rec: &'a Record,
}

impl Engine {
    /// The window of `page` over `topic`'s SOW as it is now.
    fn window(&self, topic: &str, conn: ConnId, sid: &str) -> Option<Vec<Arc<str>>> {
        let store = self.sows.get(topic)?;
        let sub = self.conns.get(&conn)?.subs.get(sid)?;
        let page = sub.page.as_ref()?;
        let mut recs: Vec<&Record> = store
            .in_order()
            .filter(|r| filter_ok(sub.filter.as_deref(), r.doc.as_ref()))
            .collect();
        if let Some(o) = &page.order {
            recs.sort_by(|a, b| o.compare(a.doc.as_ref(), b.doc.as_ref()));
        }
        Some(
            recs.into_iter()
                .skip(page.skip)
                .take(page.top)
                .map(|r| r.k.clone())
                .collect(),
        )
    }

    /// Re-evaluate every paginated subscription on `topic` after record `k` changed (or was
    /// removed) and send what entered and left the windows.
    pub(crate) fn refresh_pages(
        &mut self,
        topic: &str,
        k: &str,
        bm: Option<&str>,
        removed: Option<Removed<'_>>,
    ) {
        let subs: Vec<(ConnId, Arc<str>)> = self
            .conns
            .iter()
            .flat_map(|(id, c)| {
                c.subs
                    .iter()
                    .filter(|(_, s)| s.page.is_some() && !s.paused && s.topic.matches(topic))
                    .map(move |(sid, _)| (*id, sid.clone()))
            })
            .collect();
        for (conn, sid) in subs {
            let Some(new) = self.window(topic, conn, &sid) else {
                continue;
            };
            let Some(sub) = self.sub_mut(conn, &sid) else {
                continue;
            };
            let (oof, no_sowkey) = (sub.oof, sub.no_sowkey);
            let Some(page) = sub.page.as_mut() else {
                continue;
            };
            let old = std::mem::replace(&mut page.keys, new.clone());
            let ids = [sid.clone()];
            for key in &new {
                let entered = !old.contains(key);
                let updated = &**key == k && removed.is_none();
                if !(entered || updated) {
                    continue;
                }
                let Some(rec) = self
                    .sows
                    .get(topic)
                    .and_then(|s| s.records.get(key))
                    .cloned()
                else {
                    continue;
                };
                let head = Head {
                    topic,
                    ids: &ids,
                    k: (!no_sowkey).then_some(&*rec.k),
                    bm: if &**key == k { bm } else { None },
                    x: rec.x.as_deref(),
                    ts: None,
                    lp: None,
                };
                self.write_delivery(conn, &head, None, &rec.data);
            }
            if !oof {
                continue;
            }
            for key in old.iter().filter(|key| !new.contains(key)) {
                let (reason, rec) = match &removed {
                    Some(r) if &**key == k => (r.reason, r.rec.clone()),
                    _ => {
                        let Some(rec) = self
                            .sows
                            .get(topic)
                            .and_then(|s| s.records.get(key))
                            .cloned()
                        else {
                            continue;
                        };
                        (OofReason::Match, rec)
                    }
                };
                let head = Head {
                    topic,
                    ids: &ids,
                    k: (!no_sowkey).then_some(&*rec.k),
                    bm: None,
                    x: rec.x.as_deref(),
                    ts: None,
                    lp: None,
                };
                self.write_delivery(conn, &head, Some(reason), &rec.data);
            }
        }
    }
}
