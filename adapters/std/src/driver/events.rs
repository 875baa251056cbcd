//! Session events to their destinations: messages to streams and handlers, acks and
//! completions to the callers waiting for them, connection states to listeners, everything
//! unroutable to the last-chance handler (protocol.md §5, §7; seeds: "Unexpected messages",
//! "Detecting write failures", "Monitoring connection state").

use std::collections::VecDeque;
use std::sync::Arc;

use amps_core::Instant;
use amps_core::codec::{AckType, Field, FrameWriter};
use amps_core::owned::OwnedMessage;
use amps_core::session::{CommandError, CommandId, ConnectionState, Delivery, Event, SessionError};

use super::{Blocked, Driver, EVENT_BATCH, Executed, Out, RouteTarget, State, WaitReply, answer};
use crate::client::Status;
use crate::dispatch::Item as DItem;
use crate::error::Error;
use crate::message::{FailedWrite, Message, parse_frame};
use crate::stream::Push;

/// Work an event needs from the session, done once the event (which borrows it) is dropped.
pub(super) enum After {
    /// Answer a logon challenge (protocol.md §8.2).
    LogonRetry { user: String, password: String },
    /// The connection ended: end what the session did not keep for a reconnect.
    Disconnected,
    /// A stream overflowed under the slow-consumer policy: end its subscription.
    Unsubscribe(CommandId),
    /// HA: start connecting again after a logon that timed out.
    Restart,
}

impl Driver {
    /// Handle every event the session has, delivering outputs as it goes; stops while outputs
    /// wait for room. Returns how many events were handled.
    pub(super) fn drain_events(&mut self, now: Instant) -> usize {
        let mut total = 0;
        let mut after = Vec::new();
        loop {
            if !self.st.flush_out(&mut after) {
                break;
            }
            let mut n = 0;
            while n < EVENT_BATCH {
                let Some(ev) = self.session.poll_event() else {
                    break;
                };
                n += 1;
                if let Some(a) = self.st.on_event(ev) {
                    after.push(a);
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
        }
    }
}

impl State {
    /// Deliver outputs in order while their destinations have room. False when some wait.
    pub(super) fn flush_out(&mut self, after: &mut Vec<After>) -> bool {
        let mut batch = std::collections::VecDeque::new();
        while let Some(front) = self.out.front() {
            match front {
                Out::Stream { .. } => {
                    let Some(Out::Stream {
                        stream,
                        id,
                        mut msgs,
                    }) = self.out.pop_front()
                    else {
                        break;
                    };
                    let mut p = stream.producer();
                    while let Some(m) = msgs.pop_front() {
                        match p.push(m) {
                            Push::Queued => {}
                            Push::Gone => break,
                            Push::Overflowed => {
                                after.push(After::Unsubscribe(id));
                                break;
                            }
                            // Closing: nobody waits for what a full stream cannot take.
                            Push::Blocked(_) if self.closing => break,
                            Push::Blocked(m) => {
                                msgs.push_front(m);
                                drop(p);
                                self.out.push_front(Out::Stream { stream, id, msgs });
                                return false;
                            }
                        }
                    }
                }
                Out::Finish(..) => {
                    if let Some(Out::Finish(s, e)) = self.out.pop_front() {
                        s.finish(e);
                    }
                }
                Out::Dispatch(_) => {
                    while let Some(Out::Dispatch(_)) = self.out.front() {
                        if let Some(Out::Dispatch(item)) = self.out.pop_front() {
                            batch.push_back(item);
                        }
                    }
                    if self.closing {
                        for item in batch.drain(..) {
                            self.dispatch.push_urgent(item);
                        }
                    } else if !self.dispatch.push_from(&mut batch) {
                        for item in batch.drain(..).rev() {
                            self.out.push_front(Out::Dispatch(item));
                        }
                        return false;
                    }
                }
            }
        }
        true
    }

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
                let mut error = Error::new(
                    kind.into(),
                    format!("the server refused sequence {seq}: {reason}"),
                );
                error.set_reason(Some(reason.to_owned()));
                let fw = FailedWrite {
                    seq,
                    error,
                    message: stored.and_then(parse_frame),
                    ack: failure_ack(seq, reason),
                };
                self.out.push_back(Out::Dispatch(DItem::FailedWrite(fw)));
            }
            Event::LastChance(m) => {
                let m = Message::new(OwnedMessage::from_message(&m), None, false);
                self.out.push_back(Out::Dispatch(DItem::LastChance(m)));
            }
            Event::LogonRetry { user_id, token } => {
                let mut password = String::new();
                let r = self.cfg.authenticator.retry(user_id, token, &mut password);
                if r.is_ok() {
                    return Some(After::LogonRetry {
                        user: user_id.to_owned(),
                        password,
                    });
                }
                self.report(Error::new(
                    crate::ErrorKind::Authentication,
                    "the authenticator could not answer the server's challenge",
                ));
            }
            Event::Error(e) => {
                if e == SessionError::GaveUp {
                    for r in self.ha_waiters.drain(..) {
                        answer(r, Err(Error::disconnected("gave up reconnecting")));
                    }
                }
                self.report(e.into());
            }
            _ => {}
        }
        None
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
                if self.blocked == Some(Blocked::Offline) {
                    self.blocked = None;
                }
            }
            ConnectionState::Disconnected => {
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
        self.out.push_back(Out::Dispatch(DItem::State(s)));
        if s == ConnectionState::Disconnected && !self.user_disconnect {
            self.out.push_back(Out::Dispatch(DItem::Disconnected));
        }
        after
    }

    fn on_ack(&mut self, id: CommandId, msg: &amps_core::codec::MessageRef<'_>) {
        let ack = msg.ack_type();
        if let Some(w) = self.waits.get_mut(&id) {
            // A failure ack is followed by the session's `Failed` event, which answers.
            if w.on_processed && ack == Some(AckType::Processed) && msg.is_success() {
                if let Some(w) = self.waits.remove(&id)
                    && let WaitReply::Exec(r, sub_id) = w.reply
                {
                    answer(
                        r,
                        Ok(Executed {
                            handle: id,
                            sub_id,
                            ack: None,
                        }),
                    );
                }
            } else if !w.on_processed
                && (ack == Some(AckType::Stats) || w.ack.is_none() || msg.matches().is_some())
            {
                w.ack = Some(Message::new(OwnedMessage::from_message(msg), None, false));
            }
        }
        let Some(r) = self.routes.get_mut(&id) else {
            return;
        };
        if ack == Some(AckType::Processed) && msg.max_backlog().is_some() {
            r.queue = true;
        }
        if ack.is_some_and(|a| r.user_acks.contains(a)) {
            let m = Message::new(OwnedMessage::from_message(msg), Some(&self.shared), false);
            self.deliver(id, m);
        }
    }

    fn on_completed(&mut self, id: CommandId) {
        if self.logon.as_ref().is_some_and(|l| l.id == id)
            && let Some(l) = self.logon.take()
        {
            if let Some(c) = self.cfg.chooser.as_mut() {
                c.report_success(&l.uri);
            }
            self.cfg.authenticator.completed("", "");
            self.shared.set_seq_known();
            if let Some(r) = l.reply {
                answer(r, Ok(()));
            }
            for r in self.ha_waiters.drain(..) {
                answer(r, Ok(()));
            }
        }
        if let Some(w) = self.waits.remove(&id) {
            match w.reply {
                WaitReply::Exec(r, sub_id) => answer(
                    r,
                    Ok(Executed {
                        handle: id,
                        sub_id,
                        ack: w.ack,
                    }),
                ),
                WaitReply::Unit(r) | WaitReply::Flush(r, _) => answer(r, Ok(())),
            }
        }
        if self.routes.get(&id).is_some_and(|r| !r.kind.is_subscribe()) {
            // A query or another command: its results are all in (protocol.md §5.4).
            self.end_route(id, None);
        }
    }

    fn on_failed(&mut self, id: CommandId, error: CommandError) -> Option<After> {
        let e = Error::from(error);
        let mut after = None;
        if self.logon.as_ref().is_some_and(|l| l.id == id)
            && let Some(l) = self.logon.take()
        {
            if let Some(c) = self.cfg.chooser.as_mut() {
                c.report_failure(&l.uri, &e);
            }
            self.cfg
                .authenticator
                .completed("", e.reason().unwrap_or(""));
            if let Some(r) = l.reply {
                answer(r, Err(e.clone()));
            }
            match error {
                // HA: the connection dropped during the logon; the session reconnects by
                // itself (its delay strategy applies) and connect_and_logon keeps waiting.
                CommandError::Disconnected if self.shared.ha => {}
                // HA: no answer in time (a server that accepted the connection but is not
                // serving): the session stopped; try again (the chooser moved on).
                CommandError::TimedOut if self.shared.ha => after = Some(After::Restart),
                // A refused logon is not retried with the same credentials (§8.2).
                _ => {
                    for r in self.ha_waiters.drain(..) {
                        answer(r, Err(e.clone()));
                    }
                }
            }
        }
        if let Some(w) = self.waits.remove(&id) {
            match w.reply {
                // The connection dropped under a flush: it means "everything before me is
                // processed", so it is asked again on the next connection (after the publish
                // store's replay) rather than failed, when the client reconnects by itself.
                WaitReply::Flush(reply, store)
                    if error == CommandError::Disconnected
                        && self.shared.ha
                        && self.shared.retry_on_disconnect()
                        && !self.user_disconnect =>
                {
                    let op = crate::driver::Op::Flush { store, reply };
                    self.user_q.push_front(crate::inbox::Item::Op(op));
                }
                _ => w.fail(&e),
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
            let m = Message::new(OwnedMessage::from_message(&d.msg), None, false);
            self.out.push_back(Out::Dispatch(DItem::LastChance(m)));
            return;
        };
        // Only a message with a bookmark can be acknowledged or discarded: only it needs the
        // way back to the client.
        let link = d.has(Field::Bookmark).then_some(&self.shared);
        let queue = r.queue || d.msg.header().has(Field::LeasePeriod);
        let m = Message::new(self.writer.delivery(d), link, queue);
        push_to(&mut self.out, &r.target, d.id, m);
    }

    fn deliver(&mut self, id: CommandId, m: Message) {
        if let Some(r) = self.routes.get(&id) {
            push_to(&mut self.out, &r.target, id, m);
        }
    }

    /// Forget a route and end its destination (normally, or with `error`).
    pub(super) fn end_route(&mut self, id: CommandId, error: Option<Error>) {
        let Some(r) = self.routes.remove(&id) else {
            return;
        };
        match r.target {
            RouteTarget::Stream(s) => self.out.push_back(Out::Finish(s, error)),
            RouteTarget::Handler => self.out.push_back(Out::Dispatch(DItem::Unregister(id))),
        }
    }
}

/// Queue `m` for `target`, joining the batch of the stream's previous message when it is last.
fn push_to(out: &mut VecDeque<Out>, target: &RouteTarget, id: CommandId, m: Message) {
    match target {
        RouteTarget::Stream(s) => match out.back_mut() {
            Some(Out::Stream { stream, msgs, .. }) if Arc::ptr_eq(stream, s) => msgs.push_back(m),
            _ => out.push_back(Out::Stream {
                stream: s.clone(),
                id,
                msgs: VecDeque::from([m]),
            }),
        },
        RouteTarget::Handler => out.push_back(Out::Dispatch(DItem::Message(id, m))),
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
    parse_frame(buf.get(..n)?)
}
