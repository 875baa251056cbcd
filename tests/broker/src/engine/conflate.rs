//! Server-side conflation (docs/protocol.md §4 option `conflation=<time>`): a subscription with an
//! interval receives, once per interval, only the latest update of each SOW record that changed
//! (keyed by SOW key; `conflation_key` is accepted and not applied). Non-SOW messages and `oof`
//! notices are not conflated.

use std::sync::Arc;

use amps_core::{Duration, Instant};

use super::route::{Head, Update};
use super::{ConnId, Engine};
use crate::wire::format_ts;

/// One held update.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    topic: Arc<str>,
    k: Arc<str>,
    data: Arc<[u8]>,
    bm: Option<Arc<str>>,
    x: Option<Arc<str>>,
    ts: u64,
}

/// A conflating subscription's state.
#[derive(Debug, Clone)]
pub(crate) struct Conflation {
    pub(crate) interval: Duration,
    /// Held updates in first-arrival order; a newer update of a key replaces it in place.
    held: Vec<Held>,
    pub(crate) due: Option<Instant>,
}

impl Conflation {
    pub(crate) fn new(interval: Duration) -> Conflation {
        Conflation {
            interval,
            held: Vec::new(),
            due: None,
        }
    }

    /// Hold `u` (a SOW update with key `k`) until the interval ends.
    pub(crate) fn hold(&mut self, now: Instant, u: &Update<'_>, k: &str) {
        let h = Held {
            topic: u.topic.into(),
            k: k.into(),
            data: u.data.into(),
            bm: u.bm.map(Into::into),
            x: u.x.map(Into::into),
            ts: u.ts,
        };
        match self
            .held
            .iter_mut()
            .find(|o| *o.k == *k && *o.topic == *u.topic)
        {
            Some(slot) => *slot = h,
            None => self.held.push(h),
        }
        self.due.get_or_insert(now + self.interval);
    }

    /// Forget a held update of a record that left focus (its `oof` is sent at once).
    pub(crate) fn forget(&mut self, topic: &str, k: &str) {
        self.held.retain(|h| !(*h.k == *k && *h.topic == *topic));
    }
}

impl Engine {
    /// Deliver what conflating subscriptions held when their interval is over.
    pub(super) fn run_conflation(&mut self) {
        let now = self.now;
        let mut due = Vec::new();
        for (id, c) in self.conns.iter_mut() {
            for (sid, sub) in c.subs.iter_mut() {
                if let Some(cf) = sub.conflation.as_mut()
                    && cf.due.is_some_and(|d| d <= now)
                {
                    cf.due = None;
                    let held = std::mem::take(&mut cf.held);
                    due.push((*id, sid.clone(), sub.no_sowkey, sub.timestamp, held));
                }
            }
        }
        for (conn, sid, no_sowkey, timestamp, held) in due {
            let ids = [sid];
            for h in held {
                let ts = timestamp.then(|| format_ts(h.ts));
                let head = Head {
                    topic: &h.topic,
                    ids: &ids,
                    k: (!no_sowkey).then_some(&*h.k),
                    bm: h.bm.as_deref(),
                    x: h.x.as_deref(),
                    ts: ts.as_deref(),
                    lp: None,
                };
                self.write_delivery(conn, &head, None, &h.data);
            }
        }
    }

    /// The earliest conflation deadline of a connection.
    pub(crate) fn conflation_timer(&self, conn: ConnId) -> Option<Instant> {
        self.conns
            .get(&conn)?
            .subs
            .values()
            .filter_map(|s| s.conflation.as_ref()?.due)
            .min()
    }
}
