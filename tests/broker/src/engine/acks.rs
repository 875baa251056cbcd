//! Acknowledgements (docs/protocol.md §5, §7.5, §8.4): the ack writer every command uses, the ack
//! fault hooks, conflated `persisted` acks, and `flush` (§6.10).

use amps_core::codec::{AckType, FrameWriter, Message};

use super::{ConnId, Engine};
use crate::wire::{bookmark, put_frame};

/// Counters of a `stats` ack (§7.5).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Stats {
    pub(crate) matches: u64,
    pub(crate) topic_matches: u64,
    pub(crate) returned: Option<u64>,
    pub(crate) deleted: Option<u64>,
}

impl Stats {
    pub(crate) fn write(&self, w: &mut FrameWriter<'_>) {
        w.int("matches", self.matches)
            .int("topic_matches", self.topic_matches);
        if let Some(n) = self.returned {
            w.int("records_returned", n);
        }
        if let Some(n) = self.deleted {
            w.int("records_deleted", n);
        }
    }
}

impl Engine {
    /// Write an ack for `msg` (its `cid`), `reason` making it a failure. `extra` writes the
    /// command-specific keys in the order of §18's vectors.
    pub(crate) fn ack(
        &mut self,
        conn: ConnId,
        msg: &Message<'_>,
        a: AckType,
        reason: Option<&str>,
        extra: impl Fn(&mut FrameWriter<'_>),
    ) {
        self.ack_raw(conn, msg.command_id(), a, reason, extra);
    }

    /// Write an ack: `{"c":"ack","cid":…,"a":…,"status":…[,"reason":…]<extra>}`. Every ack goes
    /// through here so the ack faults (withhold, delay) apply to all of them.
    pub(crate) fn ack_raw(
        &mut self,
        conn: ConnId,
        cid: Option<&str>,
        a: AckType,
        reason: Option<&str>,
        extra: impl Fn(&mut FrameWriter<'_>),
    ) {
        if self.faults.withhold_acks {
            return;
        }
        let header = |w: &mut FrameWriter<'_>| {
            w.str("c", "ack");
            if let Some(cid) = cid {
                w.str("cid", cid);
            }
            w.str("a", a.wire_name());
            w.str(
                "status",
                if reason.is_some() {
                    "failure"
                } else {
                    "success"
                },
            );
            if let Some(r) = reason {
                w.str("reason", r);
            }
            extra(w);
        };
        match self.faults.delay_acks {
            Some(d) => {
                let mut frame = Vec::new();
                put_frame(&mut frame, &[], header);
                self.delayed.push_back((self.now + d, conn, frame));
            }
            None => self.emit(conn, &[], header),
        }
    }

    /// A success ack without extras, if requested.
    pub(crate) fn success(&mut self, conn: ConnId, msg: &Message<'_>, a: AckType) {
        if self.wants(msg, a) {
            self.ack(conn, msg, a, None, |_| {});
        }
    }

    /// A failed command: `processed` failure with `reason` (§15), if requested.
    pub(crate) fn fail(&mut self, conn: ConnId, msg: &Message<'_>, reason: &str) {
        if self.wants(msg, AckType::Processed) {
            self.ack(conn, msg, AckType::Processed, Some(reason), |_| {});
        }
    }

    pub(super) fn release_delayed_acks(&mut self) {
        while let Some((at, conn, frame)) = self.delayed.pop_front() {
            if at > self.now {
                self.delayed.push_front((at, conn, frame));
                break;
            }
            self.emit_bytes(conn, &frame);
        }
    }

    /// The client name and publisher id of a logged-on connection.
    pub(crate) fn identity(&self, conn: ConnId) -> Option<(String, u64)> {
        let s = self.conns.get(&conn)?.session.as_ref()?;
        Some((s.client_name.clone(), s.pub_id))
    }

    /// A sequenced command (`publish`, `delta_publish`, `sow_delete`) of `conn` is persisted
    /// (§8.4). With a transaction log the ack is conflated: one ack per interval, no `cid`, `s` =
    /// the client's highest sequence. Without one: one ack per command with `cid` and `s`.
    pub(crate) fn persisted_ok(&mut self, conn: ConnId, msg: &Message<'_>, seq: u64) {
        if !self.wants(msg, AckType::Persisted) {
            return;
        }
        if !self.cfg.has_txlog() {
            self.ack(conn, msg, AckType::Persisted, None, |w| {
                w.int("s", seq);
            });
            return;
        }
        let now = self.now;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.persist.pending = true;
        let interval = c.ack_conflation;
        if interval.is_zero() {
            self.flush_persisted(conn);
        } else if c.persist.due.is_none() {
            c.persist.due = Some(now + interval);
        }
    }

    /// A sequenced command failed: the owed success ack goes first, then this failure, which
    /// splits the run (§8.4: 1–5 with 3 rejected → success 2, failure 3, success 5).
    pub(crate) fn persisted_failed(
        &mut self,
        conn: ConnId,
        msg: &Message<'_>,
        seq: u64,
        reason: &str,
        prev_seq: u64,
    ) {
        if !self.wants(msg, AckType::Persisted) {
            return;
        }
        if self.cfg.has_txlog() {
            self.flush_persisted_at(conn, Some(prev_seq));
            self.ack_raw(conn, None, AckType::Persisted, Some(reason), |w| {
                w.int("s", seq);
            });
        } else {
            self.ack(conn, msg, AckType::Persisted, Some(reason), |w| {
                w.int("s", seq);
            });
        }
    }

    /// Send the owed conflated ack now (flush, failure, timer).
    pub(crate) fn flush_persisted(&mut self, conn: ConnId) {
        self.flush_persisted_at(conn, None);
    }

    fn flush_persisted_at(&mut self, conn: ConnId, upto: Option<u64>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let pending = std::mem::take(&mut c.persist.pending);
        let subs_pending = std::mem::take(&mut c.persist.subs_pending);
        c.persist.due = None;
        if pending && let Some((name, pub_id)) = self.identity(conn) {
            let s = upto.unwrap_or_else(|| self.client_seq(&name));
            let bm = bookmark(pub_id, s);
            self.ack_raw(conn, None, AckType::Persisted, None, |w| {
                w.int("s", s).str("bm", &bm);
            });
        }
        if subs_pending {
            self.bookmark_sub_persisted_acks(conn);
        }
    }

    pub(super) fn run_persist_timers(&mut self) {
        let due: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.persist.due.is_some_and(|d| d <= self.now))
            .map(|(id, _)| *id)
            .collect();
        for conn in due {
            self.flush_persisted(conn);
        }
    }

    /// `flush` (§6.10): everything earlier is processed and persisted, since the engine works
    /// synchronously; the owed conflated ack is sent first so a publish store can discard.
    pub(super) fn on_flush(&mut self, conn: ConnId, msg: &Message<'_>) {
        self.flush_persisted(conn);
        self.success(conn, msg, AckType::Processed);
        self.success(conn, msg, AckType::Completed);
        self.success(conn, msg, AckType::Persisted);
    }
}
