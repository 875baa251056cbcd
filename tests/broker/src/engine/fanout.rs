//! The routes of a topic as the delivery path uses them: the matching subscriptions grouped per
//! connection, and for each connection whose subscriptions all take a published message as it
//! is, the start of its delivery header encoded once (fields in the order `route::Head` writes
//! them), so such a delivery costs a copy instead of the lookups and the encoding of the
//! general path.

use std::collections::BTreeMap;
use std::ops::Range;

use super::conn::Conn;
use super::route::{Route, Update};
use super::subscribe::Sub;
use super::{ConnId, Engine};
use crate::wire::put_frame;

/// The live subscriptions matching one topic (see [`Engine::routes_for`]).
pub(crate) struct Routes {
    /// Every matching subscription, ordered by connection then `sub_id`.
    pub(crate) all: Vec<Route>,
    /// One per connection, in the order of `all`.
    pub(crate) groups: Vec<Group>,
    /// A subscription filters, diffs or asks for `oof`: the payload must be parsed.
    pub(crate) need_doc: bool,
}

/// The subscriptions of one connection that match a topic.
pub(crate) struct Group {
    pub(crate) conn: ConnId,
    /// Their place in [`Routes::all`].
    pub(crate) range: Range<usize>,
    /// When every one of them takes a published message as it is: the delivery header up to
    /// its `sub_id` or `sids`, `{"c":"p","t":…,"sub_id":…` (no closing brace).
    pub(crate) plain: Option<Box<[u8]>>,
}

impl Sub {
    /// Takes a published message unchanged and without per-message state: no filter, delta,
    /// `oof`, pause, paging, bookmark cursor or range, conflation or timestamp. Each of these is
    /// fixed for the life of the subscription except `paused`, whose changes clear the routes.
    fn takes_as_is(&self) -> bool {
        self.filter.is_none()
            && !self.delta
            && !self.oof
            && !self.paused
            && self.page.is_none()
            && self.cursor.is_none()
            && self.range_end_ts.is_none()
            && self.conflation.is_none()
            && !self.timestamp
    }
}

impl Routes {
    pub(crate) fn build(topic: &str, conns: &BTreeMap<ConnId, Conn>) -> Routes {
        let mut all = Vec::new();
        let mut groups = Vec::new();
        let mut need_doc = false;
        for (id, c) in conns {
            let start = all.len();
            let mut plain = true;
            for (sid, sub) in &c.subs {
                if sub.queue.is_none() && sub.topic.matches(topic) {
                    all.push((*id, sid.clone()));
                    need_doc |= sub.filter.is_some() || sub.delta || sub.oof;
                    plain &= sub.takes_as_is();
                }
            }
            if all.len() > start {
                let range = start..all.len();
                let plain = if plain {
                    all.get(range.clone()).and_then(|ids| header_start(topic, ids))
                } else {
                    None
                };
                groups.push(Group {
                    conn: *id,
                    range,
                    plain,
                });
            }
        }
        Routes {
            all,
            groups,
            need_doc,
        }
    }
}

/// `{"c":"p","t":…,"sub_id":…` or `…,"sids":"a,b"`, written by the frame writer (so escaped as
/// every other header).
fn header_start(topic: &str, ids: &[Route]) -> Option<Box<[u8]>> {
    let sids = match ids {
        [_] => String::new(),
        _ => ids.iter().map(|(_, s)| &**s).collect::<Vec<_>>().join(","),
    };
    let mut f = Vec::new();
    put_frame(&mut f, &[], |w| {
        w.str("c", "p").str("t", topic);
        match ids {
            [(_, one)] => w.str("sub_id", one),
            _ => w.str("sids", &sids),
        };
    });
    // Drop the length prefix and the closing brace.
    let end = f.len().checked_sub(1)?;
    f.get(4..end).map(Into::into)
}

/// JSON string characters the frame writer escapes.
fn needs_escape(s: &str) -> bool {
    s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20)
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or(&[]));
}

impl Engine {
    /// Append the delivery of `u` to `conn` after the pre-encoded `head`: `bm` and `x` when
    /// present, `l`, the payload (the same bytes as the general path). `false` (nothing written)
    /// when a value needs escaping or the frame would not fit a length prefix: the caller takes
    /// the general path.
    pub(crate) fn emit_plain(&mut self, conn: ConnId, head: &[u8], u: &Update<'_>) -> bool {
        if u.bm.is_some_and(needs_escape) || u.x.is_some_and(needs_escape) {
            return false;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return true;
        };
        if c.closing {
            return true;
        }
        let field = |v: Option<&str>, key: &str| v.map_or(0, |v| key.len() + v.len() + 1);
        let len_digits = u.data.len().checked_ilog10().map_or(1, |d| d as usize + 1);
        let body = head.len()
            + field(u.bm, ",\"bm\":\"")
            + field(u.x, ",\"x\":\"")
            + ",\"l\":".len()
            + len_digits
            + 1
            + u.data.len();
        let Ok(prefix) = u32::try_from(body) else {
            return false;
        };
        let out = &mut c.out;
        out.reserve(4 + body);
        out.extend_from_slice(&prefix.to_be_bytes());
        out.extend_from_slice(head);
        if let Some(bm) = u.bm {
            out.extend_from_slice(b",\"bm\":\"");
            out.extend_from_slice(bm.as_bytes());
            out.push(b'"');
        }
        if let Some(x) = u.x {
            out.extend_from_slice(b",\"x\":\"");
            out.extend_from_slice(x.as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b",\"l\":");
        push_decimal(out, u.data.len() as u64);
        out.push(b'}');
        out.extend_from_slice(u.data);
        self.acct.output += 4 + body;
        // As `signal`, without looking the connection up again while within the limits.
        if c.backlog() > self.cfg.slow_consumer_bytes
            || self.acct.output > self.cfg.limits.max_output_bytes
        {
            self.signal(conn);
        } else if !c.tx_signalled {
            c.tx_signalled = true;
            self.events.push_back(super::EngineEvent::Transmit(conn));
        }
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use amps_core::codec::Command;

    use super::super::tests::Harness;
    use crate::config::Config;

    const DOC: &[u8] = br#"{"id":17}"#;

    /// A filter that every published message passes: its subscription takes the general path.
    const ALL: &str = "/id = 17";

    fn harness() -> Harness {
        Harness::new(Config {
            transaction_log: vec!["logged".into()],
            ..Config::default()
        })
    }

    #[test]
    fn copied_headers_match_the_general_path() {
        let mut h = harness();
        for topic in ["plain", "logged", "we\"ird"] {
            // `a`: one plain subscription (copied header); `b`: the same `sub_id` through a
            // filter (general path). `c`: two plain ones (`sids`); `d`: two, one filtered.
            let (a, b, c, d) = (h.logon("a"), h.logon("b"), h.logon("c"), h.logon("d"));
            h.send(a, Command::subscribe(topic).sub_id("s"));
            h.send(b, Command::subscribe(topic).sub_id("s").filter(ALL));
            h.send(c, Command::subscribe(topic).sub_id("s1"));
            h.send(c, Command::subscribe(topic).sub_id("s2"));
            h.send(d, Command::subscribe(topic).sub_id("s1"));
            h.send(d, Command::subscribe(topic).sub_id("s2").filter(ALL));
            for conn in [a, b, c, d] {
                h.out(conn);
            }
            let p = h.logon("p");
            for x in [None, Some("corr-1"), Some("quote\"back\\slash\ttab")] {
                let mut cmd = Command::publish(topic, DOC);
                if let Some(x) = x {
                    cmd = cmd.correlation_id(x);
                }
                h.send(p, cmd);
                h.send(p, Command::publish(topic, br#"{"id":17,"n":[1,2,3,4,5,6,7,8,9,10]}"#));
            }
            let (fa, fb, fc, fd) = (h.out(a), h.out(b), h.out(c), h.out(d));
            assert_eq!(fa.len(), 6, "{fa:?}");
            assert_eq!(fa, fb, "{topic}");
            assert_eq!(fc, fd, "{topic}");
            assert!(fc[0].contains(r#""sids":"s1,s2""#), "{fc:?}");
            assert!(fa[2].contains(r#""x":"corr-1""#), "{fa:?}");
            assert_eq!(topic == "logged", fa[0].contains(r#""bm":""#), "{fa:?}");
            for conn in [a, b, c, d, p] {
                h.e.handle_closed(h.now, conn);
            }
        }
    }

    #[test]
    fn pausing_a_subscription_stops_its_copied_deliveries() {
        let mut h = harness();
        let s = h.logon("s");
        h.send(s, Command::subscribe("t").sub_id("1"));
        h.out(s);
        let p = h.logon("p");
        h.send(p, Command::publish("t", b"a"));
        assert_eq!(h.out(s).len(), 1);
        h.send(s, Command::subscribe("t").sub_id("1").options("pause"));
        h.send(p, Command::publish("t", b"b"));
        assert!(h.out(s).is_empty());
        h.send(s, Command::subscribe("t").sub_id("1").options("resume"));
        h.send(p, Command::publish("t", b"c"));
        h.send(p, Command::publish("t", b""));
        let f = h.out(s);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].ends_with("}c"), "{f:?}");
        assert_eq!(f[1], r#"{"c":"p","t":"t","sub_id":"1","l":0}"#);
    }
}
