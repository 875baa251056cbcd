//! Session events to their destinations: messages to streams and handlers, acks and
//! completions to the callers waiting for them, connection states to listeners, everything
//! unroutable to the last-chance handler (docs/host.md, "Routing").

use amps_core::Instant;
use amps_core::codec::{AckType, Field, FrameWriter, HeaderFields, Message as CoreMessage};
use amps_core::session::{CommandError, CommandId, ConnectionState, Delivery, Event, SessionError};

use super::routes::{Out, Overflow, Wait, WaitReply};
use super::{Blocked, Driver, EVENT_BATCH, State};
use crate::dispatch::Item as DItem;
use crate::error::{Error, ErrorKind};
use crate::events::ClientEvent;
use crate::inbox::Item;
use crate::message::{FailedWrite, Message};
use crate::op::Op;
use crate::owned::OwnedMessage;
use crate::shared::Status;

/// Work an event needs from the session, done once the event (which borrows it) is dropped.
pub(super) enum After {
    /// Answer a logon challenge.
    LogonRetry { user: String, password: String },
    /// The connection ended: end what the session did not keep for a reconnect.
    Disconnected,
    /// End a subscription (its stream overflowed, or nobody took it).
    Unsubscribe(CommandId),
    /// HA: start connecting again after a logon that timed out.
    Restart,
    /// HA: the session needs the wait before its next attempt.
    ReconnectDelay(std::time::Duration),
}

impl Driver {
    /// Handle every event the session has, delivering outputs as it goes; stops while outputs
    /// wait for room. Returns how many events were handled.
    pub(super) fn drain_events(&mut self, now: Instant) -> usize {
        let mut total = 0;
        let mut after = Vec::new();
        let mut overflow = Vec::new();
        loop {
            let flushed = self.st.flush_out(&mut overflow);
            after.extend(
                overflow
                    .drain(..)
                    .map(|Overflow::Unsubscribe(id)| After::Unsubscribe(id)),
            );
            if !flushed {
                break;
            }
            let mut n = 0;
            while n < EVENT_BATCH {
                let Some(ev) = self.session.poll_event() else {
                    break;
                };
                n += 1;
                let store_changed =
                    matches!(ev, Event::Persisted { .. } | Event::FailedWrite { .. });
                let logged_on = matches!(ev, Event::State(ConnectionState::LoggedOn));
                if let Some(a) = self.st.on_event(ev) {
                    after.push(a);
                }
                if store_changed {
                    // Before any later event answers a caller (a publish_flush), so the count
                    // it reads next is current.
                    self.mirror_store();
                }
                if logged_on {
                    // Before the logon's caller is answered.
                    self.st
                        .shared
                        .set_server_version(self.session.server_version());
                }
            }
            for a in after.drain(..) {
                self.after(now, a);
            }
            total += n;
            if n == 0 {
                break;
            }
        }
        for a in after.drain(..) {
            self.after(now, a);
        }
        total
    }

    fn after(&mut self, now: Instant, a: After) {
        match a {
            After::LogonRetry { user, password } => {
                let user = (!user.is_empty()).then_some(user.as_str());
                match self.session.handle_logon_retry(now, user, &password) {
                    // The answer is a new logon command: its ack completes the logon.
                    Ok(id) => {
                        if let Some(l) = self.st.logon.as_mut() {
                            l.id = id;
                        }
                    }
                    Err(e) => self.st.report(e.into()),
                }
            }
            After::Disconnected => {
                // The session keeps the subscriptions it re-enters after a reconnect.
                let gone: Vec<CommandId> = self
                    .st
                    .routes
                    .keys()
                    .copied()
                    .filter(|&id| self.session.route_key(id).is_none())
                    .collect();
                for id in gone {
                    self.st
                        .end_route(id, Some(Error::disconnected("the connection was lost")));
                }
            }
            After::Unsubscribe(id) => {
                self.st.end_route(id, None);
                let _ = self.session.unsubscribe(now, id);
            }
            After::Restart => self.session.start(now),
            After::ReconnectDelay(elapsed) => {
                let delay = self
                    .st
                    .ha
                    .as_mut()
                    .and_then(|h| h.delay.next_delay(elapsed));
                self.session
                    .handle_reconnect_delay(now, delay.map(Into::into));
            }
        }
    }
}

impl State {
    pub(super) fn on_event(&mut self, ev: Event<'_>) -> Option<After> {
        match ev {
            Event::State(s) => return self.on_state(s),
            Event::CloseTransport => self.close_conn(),
            Event::Ack { id, msg } => self.on_ack(id, &msg),
            Event::Completed { id, .. } => self.on_completed(id),
            Event::Failed { id, error } => return self.on_failed(id, error),
            Event::Delivery(d) => self.on_delivery(&d),
            Event::Persisted { .. } if self.blocked == Some(Blocked::Window) => {
                self.blocked = None;
            }
            Event::FailedWrite {
                seq,
                kind,
                reason,
                stored,
            } => {
                let error = Error::new(
                    ErrorKind::from(kind),
                    format!("the server refused sequence {seq}: {reason}"),
                )
                .with_reason(reason);
                let fw = FailedWrite {
                    seq,
                    error,
                    message: stored.and_then(Message::from_frame),
                    ack: failure_ack(seq, reason),
                };
                self.event(ClientEvent::FailedWrite(fw));
            }
            Event::LastChance(m) => {
                self.last_chance(Message::unlinked(OwnedMessage::from_message(&m)));
            }
            Event::LogonRetry { user_id, token } => {
                let mut password = String::new();
                let r = self.authenticator().retry(user_id, token, &mut password);
                if r.is_ok() {
                    return Some(After::LogonRetry {
                        user: user_id.to_owned(),
                        password,
                    });
                }
                self.report(Error::new(
                    ErrorKind::Authentication,
                    "the authenticator could not answer the server's challenge",
                ));
            }
            Event::ReconnectDelay { elapsed } => {
                return Some(After::ReconnectDelay(elapsed.into()));
            }
            Event::Error(e) => {
                if e == SessionError::GaveUp
                    && let Some(ha) = self.ha.as_mut()
                {
                    for r in ha.waiters.drain(..) {
                        let _ = r.send(Err(Error::disconnected("gave up reconnecting")));
                    }
                }
                self.report(e.into());
            }
            _ => {}
        }
        None
    }

    /// The application sees `Disconnected` for a connection the session never knew of (a
    /// plain client's transport closed before its logon).
    pub(super) fn disconnected_event(&mut self) {
        self.shared.set_state(ConnectionState::Disconnected);
        self.event(ClientEvent::State(ConnectionState::Disconnected));
    }

    /// A report for the listeners and event receivers, in order with the messages.
    fn event(&mut self, ev: ClientEvent) {
        self.out
            .push_back(super::routes::Out::Dispatch(DItem::Event(ev)));
    }

    fn on_state(&mut self, s: ConnectionState) -> Option<After> {
        let mut after = None;
        match s {
            ConnectionState::Connected => {
                self.shared.set_status(Status::Connected);
                if std::mem::take(&mut self.skip_connected) {
                    return None;
                }
            }
            ConnectionState::LoggedOn => {
                self.shared.set_status(Status::LoggedOn);
                self.shared.set_seq_known();
                // Retry the head: the logon ack may have discarded stored messages the
                // server already persisted, without a persisted ack (a full window is free).
                if matches!(self.blocked, Some(Blocked::Offline | Blocked::Window)) {
                    self.blocked = None;
                }
                let now = self.now();
                if let Some(ha) = self.ha.as_mut() {
                    ha.up_since = Some(now);
                    for r in ha.waiters.drain(..) {
                        let _ = r.send(Ok(()));
                    }
                }
            }
            ConnectionState::Disconnected => {
                let now = self.now();
                if let Some(ha) = self.ha.as_mut()
                    && let Some(up) = ha.up_since.take()
                    && now.saturating_duration_since(up) >= ha.stability.into()
                {
                    // The connection was stable: the next outage starts over.
                    ha.delay.reset();
                }
                self.shared.set_status(Status::Disconnected);
                self.close_conn();
                after = Some(After::Disconnected);
            }
            ConnectionState::Shutdown => {
                self.shared.set_status(Status::Closed);
                self.finished = true;
                self.blocked = None;
            }
            _ => {}
        }
        self.shared.set_state(s);
        self.event(ClientEvent::State(s));
        if s == ConnectionState::Disconnected && !self.user_disconnect {
            self.out
                .push_back(super::routes::Out::Dispatch(DItem::Disconnected));
        }
        after
    }

    fn on_ack<D: HeaderFields>(&mut self, id: CommandId, msg: &CoreMessage<'_, D>) {
        let ack = msg.ack_type();
        if let Some(w) = self.waits.get_mut(&id) {
            // A failure ack is followed by the session's `Failed` event, which answers.
            if w.on_processed && ack == Some(AckType::Processed) && msg.is_success() {
                if let Some(w) = self.waits.remove(&id) {
                    self.out.push_back(Out::Answer {
                        id,
                        reply: w.reply,
                        ack: None,
                    });
                }
            } else if !w.on_processed
                && (ack == Some(AckType::Stats) || w.ack.is_none() || msg.matches().is_some())
            {
                w.ack = Some(Message::unlinked(OwnedMessage::from_message(msg)));
            }
        }
        let Some(r) = self.routes.get_mut(&id) else {
            return;
        };
        if ack == Some(AckType::Processed) && msg.max_backlog().is_some() {
            r.queue = true;
        }
        if ack.is_some_and(|a| r.user_acks.contains(a)) {
            let m = Message::unlinked(OwnedMessage::from_message(msg));
            self.deliver(id, m);
        }
    }

    fn on_completed(&mut self, id: CommandId) {
        if self.logon.as_ref().is_some_and(|l| l.id == id)
            && let Some(l) = self.logon.take()
        {
            if let Some(c) = self.ha.as_mut().and_then(|h| h.chooser.as_mut()) {
                c.report_success(&l.uri);
            }
            self.authenticator().completed("", "");
            self.shared.set_seq_known();
            if let Some(r) = l.reply {
                let _ = r.send(Ok(()));
            }
        }
        if let Some(w) = self.waits.remove(&id) {
            let Wait { reply, ack, .. } = w;
            self.out.push_back(Out::Answer { id, reply, ack });
        }
        if self.routes.get(&id).is_some_and(|r| !r.kind.is_subscribe()) {
            // A query or another command: its results are all in.
            self.end_route(id, None);
        }
    }

    fn on_failed(&mut self, id: CommandId, error: CommandError) -> Option<After> {
        let e = Error::from(error);
        let mut after = None;
        if self.logon.as_ref().is_some_and(|l| l.id == id)
            && let Some(l) = self.logon.take()
        {
            // The authenticator of the server that refused, before the chooser moves on.
            self.authenticator().completed("", e.reason().unwrap_or(""));
            if let Some(c) = self.ha.as_mut().and_then(|h| h.chooser.as_mut()) {
                c.report_failure(&l.uri, &e);
            }
            if let Some(r) = l.reply {
                let _ = r.send(Err(e.clone()));
            }
            if let Some(ha) = self.ha.as_mut() {
                match error {
                    // The connection dropped during the logon; the session reconnects by
                    // itself (its delay strategy applies) and connect_and_logon keeps waiting.
                    CommandError::Disconnected => {}
                    // This server lacks publishes another one persisted: the session
                    // reconnects (the chooser moved on) and connect_and_logon keeps waiting.
                    CommandError::Failed {
                        kind: amps_core::session::FailureKind::PublishGap,
                        ..
                    } => {}
                    // No answer in time (a server that accepted the connection but is not
                    // serving): the session stopped; try again (the chooser moved on).
                    CommandError::TimedOut => after = Some(After::Restart),
                    // A refused logon is not retried with the same credentials.
                    _ => {
                        for r in ha.waiters.drain(..) {
                            let _ = r.send(Err(e.clone()));
                        }
                    }
                }
                self.report(e.clone());
            }
        }
        if let Some(w) = self.waits.remove(&id) {
            match w.reply {
                // The connection dropped under a flush: it means "everything before me is
                // processed", so it is asked again on the next connection (after the publish
                // store's replay) rather than failed, when the client reconnects by itself.
                WaitReply::Flush(reply, kind)
                    if error == CommandError::Disconnected
                        && self.shared.ha
                        && self.shared.retry_on_disconnect()
                        && !self.user_disconnect =>
                {
                    self.user_q.push_front(Item::Op(Op::Flush { kind, reply }));
                }
                // A publish_flush that ran out of time says what is still unpersisted.
                other @ WaitReply::Flush(_, crate::op::FlushKind::Store(_))
                    if error == CommandError::TimedOut =>
                {
                    let e = match self.unpersisted_range {
                        Some((n, first, last)) => e.clone().with_unpersisted(n, first, last),
                        None => e.clone(),
                    };
                    self.out.push_back(Out::Fail(other, e));
                }
                other => self.out.push_back(Out::Fail(other, e.clone())),
            }
        } else if self.routes.contains_key(&id)
            && !matches!(error, CommandError::Disconnected | CommandError::Shutdown)
        {
            // The command already returned (a re-entered subscription, a later timeout).
            self.report(e.clone());
        }
        if self.routes.contains_key(&id) {
            self.end_route(id, Some(e));
        }
        after
    }

    fn on_delivery(&mut self, d: &Delivery<'_>) {
        let Some(r) = self.routes.get(&d.id) else {
            self.last_chance(Message::unlinked(OwnedMessage::from_message(&d.msg)));
            return;
        };
        // Only a message with a bookmark can be acknowledged or discarded: only it needs the
        // way back to the client.
        let queue = r.queue || d.msg.header().has(Field::LeasePeriod);
        let owned = self.writer.delivery(d);
        let m = if d.has(Field::Bookmark) {
            Message::linked(owned, &self.sink, queue)
        } else {
            Message::unlinked(owned)
        };
        self.deliver(d.id, m);
    }
}

/// The failure ack of a refused sequenced command, rebuilt for the last-chance handler (the
/// session reports it as a failed write, not as a message).
fn failure_ack(seq: u64, reason: &str) -> Option<Message> {
    let mut buf = vec![0u8; 128 + 6 * reason.len()];
    let mut w = FrameWriter::new(&mut buf);
    w.str("c", "ack")
        .str("a", "persisted")
        .str("status", "failure")
        .int("s", seq)
        .str("reason", reason);
    let n = w.finish(&[]).ok()?;
    Message::from_frame(buf.get(..n)?)
}
