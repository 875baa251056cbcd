//! Acting on session events: replies to waiting callers, messages into streams (with the
//! `Block` stall), connection states, and the reports the application listens to.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amps_core::Instant;
use amps_core::codec::{AckType, Field};
use amps_core::error_kind::ErrorKind;
use amps_core::owned::OwnedMessage;
use amps_core::session::{CommandError, CommandId, ConnectionState, Event};

use super::Driver;
use crate::error::Error;
use crate::events::ClientEvent;
use crate::message::{AckHandle, Message};
use crate::stream::Push;

impl Driver {
    /// Drain the session's events (always before transmitting, per the session contract),
    /// stopping early only when a `Block` stream is full.
    pub(crate) fn drain_events(&mut self, now: Instant) {
        self.drain_events_inner(now);
        // Consumers are woken once per drained batch.
        for s in self.to_wake.drain(..) {
            s.wake();
        }
    }

    fn drain_events_inner(&mut self, now: Instant) {
        while self.stalled.is_none() {
            let Some(ev) = self.session.poll_event() else {
                break;
            };
            match ev {
                Event::Delivery(d) => {
                    let id = d.id;
                    // Read on the borrowed view: the copy's accessors rebuild its header.
                    let ackable = d.msg.header().has(Field::LeasePeriod) || d.has(Field::Bookmark);
                    let owned = self.writer.delivery(&d);
                    self.deliver(now, id, owned, ackable);
                }
                Event::Ack { id, msg } => {
                    let ack = msg.ack_type();
                    // A failure ack is followed by `Failed`, which answers the caller.
                    let ok = msg.is_success();
                    let owned = OwnedMessage::from_message(&msg);
                    self.on_ack(now, id, ack, ok, owned);
                }
                Event::State(s) => self.on_state(now, s),
                Event::CloseTransport => self.close_io(),
                Event::Completed { id, .. } => self.on_completed(id),
                Event::Failed { id, error } => self.on_failed(now, id, error),
                Event::Persisted { .. } => {
                    self.shared
                        .unpersisted
                        .store(self.session.unpersisted_count(), Ordering::Release);
                }
                Event::FailedWrite {
                    seq,
                    kind,
                    reason,
                    stored,
                } => {
                    let e = ClientEvent::FailedWrite {
                        seq,
                        kind,
                        reason: reason.to_owned(),
                        stored: stored.map(<[u8]>::to_vec),
                    };
                    self.shared.report(e);
                    self.shared
                        .unpersisted
                        .store(self.session.unpersisted_count(), Ordering::Release);
                }
                Event::LastChance(msg) => {
                    let m = Message::new(OwnedMessage::from_message(&msg), None);
                    self.shared.report(ClientEvent::LastChance(m));
                }
                Event::LogonRetry { user_id, token } => {
                    let (user, token) = (user_id.to_owned(), token.to_owned());
                    let mut pw = String::new();
                    let r = self.authenticator.retry(&user, &token, &mut pw);
                    let sent = r
                        .ok()
                        .and_then(|()| self.session.handle_logon_retry(now, Some(&user), &pw).ok());
                    // The retry is a new logon command: its ack answers the waiter.
                    if let (Some(new_id), Some((id, _))) = (sent, self.logon.as_mut()) {
                        *id = new_id;
                    }
                    if sent.is_none() {
                        self.shared.report(ClientEvent::Error(Error::new(
                            ErrorKind::Authentication,
                            "the authenticator could not answer the logon challenge",
                        )));
                    }
                }
                Event::Error(e) => self.shared.report(ClientEvent::Error(e.into())),
                _ => {}
            }
        }
    }

    /// A message for the stream of command `id`; `ackable`: it has a lease or a bookmark.
    fn deliver(&mut self, now: Instant, id: CommandId, owned: OwnedMessage, ackable: bool) {
        let Some(entry) = self.entries.get(&id) else {
            let m = Message::new(owned, None);
            self.shared.report(ClientEvent::LastChance(m));
            return;
        };
        let ack = (entry.ackable && ackable).then(|| AckHandle {
            shared: self.shared.clone(),
            route: id,
            done: Arc::new(AtomicBool::new(false)),
        });
        let msg = Message::new(owned, ack);
        match entry.stream.push(msg) {
            Push::Done => {
                if !self.to_wake.iter().any(|s| Arc::ptr_eq(s, &entry.stream)) {
                    self.to_wake.push(entry.stream.clone());
                }
            }
            Push::Full(_) if self.ending => {}
            Push::Full(m) => self.stalled = Some((id, entry.stream.clone(), m)),
            Push::SlowConsumer | Push::Closed => {
                // The consumer must see the end (slow consumer) even if it is waiting.
                entry.stream.wake();
                self.entries.remove(&id);
                let _ = self.session.unsubscribe(now, id);
            }
        }
    }

    /// Retry the message a full `Block` stream could not take.
    pub(crate) fn try_unstall(&mut self, now: Instant) {
        // The stream is held here, not looked up: a disconnect may have ended its entry, and
        // the message arrived before the disconnect, so it is still delivered first.
        if !self
            .stalled
            .as_ref()
            .is_some_and(|(_, s, _)| s.has_room_or_closed())
        {
            return;
        }
        let Some((id, stream, msg)) = self.stalled.take() else {
            return;
        };
        match stream.push(msg) {
            Push::Done => stream.wake(),
            Push::Full(m) => self.stalled = Some((id, stream, m)),
            Push::SlowConsumer | Push::Closed => {
                self.entries.remove(&id);
                let _ = self.session.unsubscribe(now, id);
            }
        }
        if self.stalled.is_none() {
            self.drain_events(now);
            // Bytes that waited while stalled.
            self.handle_input(now);
        }
    }

    fn on_ack(
        &mut self,
        now: Instant,
        id: CommandId,
        ack: Option<AckType>,
        ok: bool,
        owned: OwnedMessage,
    ) {
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if ack == Some(AckType::Processed)
            && ok
            && let Some(r) = entry.reply.take()
            && r.send(Ok(())).is_err()
        {
            // The caller dropped the future before the subscription was acknowledged.
            self.entries.remove(&id);
            let _ = self.session.unsubscribe(now, id);
            return;
        }
        if ack != Some(AckType::Processed) || entry.user_processed {
            let _ = entry.stream.push(Message::new(owned, None));
            entry.stream.wake();
        }
    }

    fn on_completed(&mut self, id: CommandId) {
        if let Some((logon, _)) = &self.logon
            && *logon == id
        {
            if let Some((_, Some(r))) = self.logon.take() {
                let _ = r.send(Ok(()));
            }
            if let (Some(ha), Some(uri)) = (self.ha.as_mut(), self.uri.as_deref()) {
                ha.chooser.report_success(uri);
            }
            return;
        }
        let Some(entry) = self.entries.get_mut(&id) else {
            return;
        };
        if let Some(r) = entry.reply.take() {
            let _ = r.send(Ok(()));
        }
        if entry.ends_on_complete {
            entry.stream.finish(None);
            self.entries.remove(&id);
        }
    }

    fn on_failed(&mut self, now: Instant, id: CommandId, error: CommandError) {
        if let Some((logon, _)) = &self.logon
            && *logon == id
        {
            self.logon_failed(now, error);
            return;
        }
        let Some(mut entry) = self.entries.remove(&id) else {
            return;
        };
        match entry.reply.take() {
            Some(r) => {
                let _ = r.send(Err(error.into()));
                entry.stream.finish(Some(error.into()));
            }
            None => entry.stream.finish(Some(error.into())),
        }
    }

    fn logon_failed(&mut self, now: Instant, error: CommandError) {
        let waiter = self.logon.take().and_then(|(_, r)| r);
        let err = Error::from(error);
        let kind = err.kind();
        if let Some(r) = waiter {
            let _ = r.send(Err(err.duplicate()));
        }
        let Some(ha) = self.ha.as_mut() else {
            return;
        };
        if let Some(uri) = self.uri.as_deref() {
            ha.chooser.report_failure(uri, &err);
        }
        self.shared.report(ClientEvent::Error(err.duplicate()));
        match kind {
            // The session stops after a refused logon (protocol.md §8.2: no retry with the
            // same credentials): the callers learn why.
            ErrorKind::Authentication | ErrorKind::NameInUse | ErrorKind::NotEntitled => {
                for w in ha.waiters.drain(..) {
                    let _ = w.send(Err(err.duplicate()));
                }
            }
            // A logon that timed out halts the session too, but another attempt may work.
            ErrorKind::TimedOut => self.session.start(now),
            _ => {}
        }
    }

    fn on_state(&mut self, now: Instant, s: ConnectionState) {
        if s == ConnectionState::Connected && self.ha.is_none() && self.connected_reported {
            // A plain client reported Connected when `connect` opened the transport.
        } else {
            self.shared.set_state(s);
        }
        match s {
            ConnectionState::LoggedOn => {
                if let Some(ha) = self.ha.as_mut() {
                    for w in ha.waiters.drain(..) {
                        let _ = w.send(Ok(()));
                    }
                }
            }
            ConnectionState::Resubscribed => {
                // Recovery is complete: flushes cut by the outage go out again.
                for (publish_flush, reply) in std::mem::take(&mut self.retry_flushes) {
                    let cmd = crate::driver::Cmd::Flush {
                        publish_flush,
                        reply,
                    };
                    self.run_cmd(now, cmd);
                }
            }
            ConnectionState::Disconnected => {
                self.close_io();
                self.connected_reported = false;
                self.end_streams_on_disconnect();
            }
            ConnectionState::Shutdown => {
                self.close_io();
                for (_, e) in self.entries.drain() {
                    e.stream.finish(Some(Error::shutdown()));
                    if let Some(r) = e.reply {
                        let _ = r.send(Err(Error::shutdown()));
                    }
                }
                if let Some(ha) = self.ha.as_mut() {
                    for w in ha.waiters.drain(..) {
                        let _ = w.send(Err(Error::new(
                            ErrorKind::Disconnected,
                            "the client gave up reconnecting",
                        )));
                    }
                }
            }
            _ => {}
        }
        let _ = now;
    }

    /// Streams that are not re-entered end with `Disconnected` once their messages are taken
    /// (seeds: "MessageStream ... then throw an exception").
    fn end_streams_on_disconnect(&mut self) {
        let retry = self.ha.as_ref().is_some_and(|h| h.retry_on_disconnect);
        let retry_flushes = &mut self.retry_flushes;
        self.entries.retain(|_, e| {
            if e.resubscribe {
                return true;
            }
            if retry && let (Some(f), Some(r)) = (e.flush, e.reply.take()) {
                retry_flushes.push((f, r));
                return false;
            }
            let err = Error::new(ErrorKind::Disconnected, "connection lost");
            if let Some(r) = e.reply.take() {
                let _ = r.send(Err(err.duplicate()));
            }
            e.stream.finish(Some(err));
            false
        });
    }
}
