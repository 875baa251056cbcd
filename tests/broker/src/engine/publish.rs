//! `publish` and `delta_publish` (docs/protocol.md §6.2, §6.3): publisher sequence dedupe (§8.4),
//! fault injection, routing to plain, SOW and queue topics, transaction logging (§10.3), acks.

use std::sync::Arc;

use amps_core::codec::{AckType, Message};

use super::route::Update;
use super::txlog::LogEntry;
use super::{ConnId, Engine};
use crate::wire::bookmark;

/// The outcome of a sequenced command's sequence check (§8.4).
pub(crate) enum Seq {
    /// New: its sequence (given or assigned) and the client's highest before it.
    New { seq: u64, prev: u64 },
    /// A duplicate of something already processed: discarded silently.
    Duplicate,
}

impl Engine {
    /// Check and record the `s` of a sequenced command from `conn` (§8.4); also returns the
    /// connection's publisher id. With a transaction log, `s` not above the highest seen for the
    /// client name is a duplicate. A command without `s` takes the next value of the client's
    /// counter (§10.3). `None` before logon.
    pub(crate) fn sequence(&mut self, conn: ConnId, s: Option<u64>) -> Option<(Seq, u64)> {
        let dedupe = self.cfg.has_txlog();
        let session = self.conns.get(&conn)?.session.as_ref()?;
        let pub_id = session.pub_id;
        let last = self.client_seqs.get_mut(session.seq_slot)?;
        let prev = *last;
        let seq = match s {
            Some(s) if dedupe && s <= prev => Seq::Duplicate,
            Some(s) => {
                *last = prev.max(s);
                Seq::New { seq: s, prev }
            }
            None => {
                *last = prev + 1;
                Seq::New {
                    seq: prev + 1,
                    prev,
                }
            }
        };
        Some((seq, pub_id))
    }

    /// A duplicate is dropped silently: requested acks report success (§8.4, §15) and its
    /// `persisted` ack is covered by the conflated ack.
    pub(crate) fn duplicate(&mut self, conn: ConnId, msg: &Message<'_>) {
        let s = msg.seq().unwrap_or(0);
        self.success(conn, msg, AckType::Processed);
        self.success(conn, msg, AckType::Completed);
        self.persisted_ok(conn, msg, s);
    }

    pub(super) fn on_publish(&mut self, conn: ConnId, msg: &Message<'_>, delta: bool) {
        let (seq, prev, pub_id) = match self.sequence(conn, msg.seq()) {
            Some((Seq::New { seq, prev }, pub_id)) => (seq, prev, pub_id),
            Some((Seq::Duplicate, _)) => return self.duplicate(conn, msg),
            None => return,
        };
        // Each header accessor checks its field's UTF-8 again: read the topic once.
        let topic = msg.topic();
        let result = if let Some(reason) = self.faults.fail_next_publish.take() {
            Err(reason)
        } else {
            match topic {
                None => Err("missing field: t".to_owned()),
                Some(t) if t.is_empty() || t.starts_with("/AMPS/") => {
                    Err("invalid topic".to_owned())
                }
                Some(t) if self.queues.contains_key(t) => self
                    .queue_publish(conn, msg, t, seq, pub_id)
                    .map_err(str::to_owned),
                Some(t) if self.sows.contains_key(t) => self
                    .sow_publish(conn, msg, t, delta, seq, pub_id)
                    .map_err(str::to_owned),
                Some(t) => {
                    self.plain_publish(conn, msg, t, seq, pub_id);
                    Ok(())
                }
            }
        };
        // Most high-rate publishes ask for no ack at all.
        if !self.wants_any(msg) {
            return;
        }
        match result {
            Ok(()) => {
                self.success(conn, msg, AckType::Processed);
                self.success(conn, msg, AckType::Completed);
                self.persisted_ok(conn, msg, seq);
            }
            Err(reason) => {
                self.fail(conn, msg, &reason);
                self.persisted_failed(conn, msg, seq, &reason, prev);
            }
        }
    }

    /// Append to the transaction log when `topic` is logged; returns the bookmark and index.
    #[allow(clippy::too_many_arguments)] // one call per kind of logged command; all plain data
    pub(crate) fn log_append(
        &mut self,
        topic: &str,
        data: &[u8],
        k: Option<&Arc<str>>,
        x: Option<&str>,
        seq: u64,
        pub_id: u64,
        is_delete: bool,
    ) -> Option<(Arc<str>, u64)> {
        if !self.cfg.is_logged(topic) {
            return None;
        }
        let bm: Arc<str> = bookmark(pub_id, seq).into();
        let mt = self.topic_type(topic, None);
        let idx = self.log.append(LogEntry {
            topic: topic.into(),
            bm: bm.clone(),
            ts: self.now.as_micros(),
            data: data.into(),
            k: k.cloned(),
            x: x.map(Into::into),
            mt,
            is_delete,
        });
        Some((bm, idx))
    }

    /// The message type of a topic: configured, else the publishing connection's.
    pub(crate) fn topic_type(
        &self,
        topic: &str,
        conn: Option<ConnId>,
    ) -> crate::config::MessageType {
        if let Some(s) = self.sows.get(topic) {
            return s.cfg.message_type;
        }
        if let Some(q) = self.queues.get(topic) {
            return q.cfg.message_type;
        }
        conn.and_then(|c| self.conns.get(&c))
            .map_or(crate::config::MessageType::Json, |c| c.mt)
    }

    fn plain_publish(
        &mut self,
        conn: ConnId,
        msg: &Message<'_>,
        topic: &str,
        seq: u64,
        pub_id: u64,
    ) {
        let data = msg.data();
        let x = msg.correlation_id();
        let logged = self.log_append(topic, data, None, x, seq, pub_id, false);
        let (bm, idx) = match &logged {
            Some((bm, idx)) => (Some(&**bm), Some(*idx)),
            None => (None, None),
        };
        // Not a SOW or queue topic (the caller checked): the publisher's message type.
        let mt = self
            .conns
            .get(&conn)
            .map_or(crate::config::MessageType::Json, |c| c.mt);
        self.deliver(&Update {
            topic,
            data,
            doc: None,
            prev: None,
            k: None,
            bm,
            log_index: idx,
            x,
            ts: self.now.as_micros(),
            mt,
            key: &[],
            sow: false,
        });
    }
}
