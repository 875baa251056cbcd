//! Commands and publishes from the application, run in the order they were sent. The head of
//! the queue may wait (publish window full, reconnecting, transmit buffer full); commands that
//! are not ordered (control, acks) still run meanwhile.

use std::collections::VecDeque;

use amps_core::Instant;
use amps_core::codec::{AckType, Command, CommandKind};
use amps_core::session::{CommandError, CommandId, Exec, PublishError, State as SState};

use super::routes::{Out, Route, RouteTarget, Wait, WaitReply};
use super::{Blocked, Driver, heartbeat_config};
use crate::command::OwnedCommand;
use crate::control::Control;
use crate::dispatch::Item as DItem;
use crate::error::Error;
use crate::inbox::{Item, PubChunk, PubKind};
use crate::op::{FlushKind, Op, Target};
use crate::shared::stream_parts;
use crate::stream::StreamCore;
use crate::sync::Reply;

/// What running a command did.
pub(super) enum Ran {
    Done,
    /// It must wait; it goes back to the head of the queue.
    Wait(Op, Blocked),
}

impl Driver {
    /// Run queued publishes and commands until the queue is empty or its head must wait.
    pub(super) fn process_user(&mut self, now: Instant) {
        // A head that waited for the socket is retried once per round.
        if self.st.blocked == Some(Blocked::Transmit) {
            self.st.blocked = None;
        }
        loop {
            if self.st.blocked.is_some() {
                return self.run_unordered(now);
            }
            let Some(item) = self.st.user_q.pop_front() else {
                return;
            };
            match item {
                Item::Publishes(mut chunk) => match self.publish_chunk(now, &mut chunk) {
                    None => self.st.shared.inbox.recycle_chunk(chunk.buf),
                    Some(b) => {
                        self.st.blocked = Some(b);
                        self.st.user_q.push_front(Item::Publishes(chunk));
                    }
                },
                Item::Op(op) => {
                    if let Ran::Wait(op, b) = self.run_op(now, op) {
                        self.st.blocked = Some(b);
                        self.st.user_q.push_front(Item::Op(op));
                    }
                }
            }
        }
    }

    /// While the head waits, run the commands that need not keep their place.
    fn run_unordered(&mut self, now: Instant) {
        if !self
            .st
            .user_q
            .iter()
            .any(|i| matches!(i, Item::Op(op) if !op.is_ordered()))
        {
            return;
        }
        let mut rest = VecDeque::with_capacity(self.st.user_q.len());
        while let Some(item) = self.st.user_q.pop_front() {
            match item {
                Item::Op(op) if !op.is_ordered() => {
                    if let Ran::Wait(op, _) = self.run_op(now, op) {
                        rest.push_back(Item::Op(op));
                    }
                }
                other => rest.push_back(other),
            }
        }
        rest.append(&mut self.st.user_q);
        self.st.user_q = rest;
    }

    /// Whether a command that finds the session offline waits for the reconnect (HA with
    /// retry-on-disconnect) instead of failing.
    fn parks(&self) -> bool {
        self.st.shared.ha
            && self.st.shared.retry_on_disconnect()
            && !self.st.user_disconnect
            && self.session.state() != SState::Shutdown
    }

    /// Publish the records of `chunk` from its read position. `Some` when one must wait.
    fn publish_chunk(&mut self, now: Instant, chunk: &mut PubChunk) -> Option<Blocked> {
        while let Some(rec) = chunk.peek() {
            let o = &rec.options;
            let r = if rec.kind == PubKind::Publish
                && o.expiration.is_none()
                && o.correlation_id.is_none()
                && o.sow_key.is_none()
            {
                self.session.publish(now, rec.topic, rec.data)
            } else {
                let mut cmd = match rec.kind {
                    PubKind::Publish => Command::publish(rec.topic, rec.data),
                    PubKind::DeltaPublish => Command::delta_publish(rec.topic, rec.data),
                };
                if let Some(e) = o.expiration {
                    cmd = cmd.expiration(e);
                }
                if let Some(x) = o.correlation_id {
                    cmd = cmd.correlation_id(x);
                }
                if let Some(k) = o.sow_key {
                    cmd = cmd.sow_key(k);
                }
                self.session.publish_command(now, &cmd)
            };
            let len = rec.len;
            if let Some(b) = self.publish_outcome(r) {
                return Some(b);
            }
            chunk.pos += len;
            self.st.done_pub += len;
            self.st.done_pub_records += 1;
        }
        None
    }

    /// Classify a publish result: `None` when the record is done (sent, stored or dropped).
    fn publish_outcome(&mut self, r: Result<Option<u64>, PublishError>) -> Option<Blocked> {
        match r {
            Ok(_) => None,
            Err(PublishError::WouldBlock) => Some(Blocked::Transmit),
            Err(PublishError::WindowFull) => Some(Blocked::Window),
            Err(PublishError::NotConnected) if self.parks() || self.st.shared.has_store => {
                Some(Blocked::Offline)
            }
            Err(PublishError::NotConnected | PublishError::Shutdown) => {
                self.st.dropped_publishes += 1;
                None
            }
            Err(e) => {
                self.st.report(e.into());
                None
            }
        }
    }

    fn run_op(&mut self, now: Instant, op: Op) -> Ran {
        match op {
            Op::Connect { uri, reply } => return self.connect_plain(uri, reply),
            Op::Logon { auth, reply } => return self.logon_plain(now, auth, reply),
            Op::ConnectAndLogon { reply } => return self.ha_start(now, reply),
            Op::Disconnect { reply } => {
                self.st.user_disconnect = true;
                if self.session.state() == SState::Disconnected && self.st.open {
                    // Connected but never logged on: the session has no connection to end.
                    self.st.close_conn();
                    self.st.skip_connected = false;
                    self.st
                        .shared
                        .set_status(crate::shared::Status::Disconnected);
                    self.st.disconnected_event();
                }
                self.session.disconnect(now);
                self.drain_events(now);
                let _ = reply.send(Ok(()));
            }
            Op::Close { reply } => {
                self.st.user_disconnect = true;
                self.st.closing = true;
                self.st.close_waiters.push(reply);
                self.session.close(now);
                self.drain_events(now);
            }
            Op::Execute {
                cmd,
                target,
                resubscribe,
            } => return self.execute(now, cmd, target, resubscribe),
            Op::PublishCommand(cmd) => {
                let r = self.session.publish_command(now, &cmd.as_command());
                if let Some(b) = self.publish_outcome(r) {
                    return Ran::Wait(Op::PublishCommand(cmd), b);
                }
            }
            Op::Unsubscribe { sub_id, reply } => return self.unsubscribe(now, sub_id, reply),
            Op::Control(c) => return self.run_control(now, c),
            Op::Flush { kind, reply } => {
                let r = match kind {
                    FlushKind::Server(None) => self.session.flush(now),
                    FlushKind::Server(Some(t)) => {
                        self.session.execute(now, &Command::flush().timeout(t))
                    }
                    FlushKind::Store(t) => self.session.publish_flush(now, t.into()),
                };
                match r {
                    Ok(id) => self.st.wait(id, WaitReply::Flush(reply, kind), false),
                    Err(e) => {
                        if let Some(b) = self.command_blocked(e) {
                            return Ran::Wait(Op::Flush { kind, reply }, b);
                        }
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Op::Heartbeat { hb, reply } => {
                let r = match hb {
                    None => Ok(None),
                    Some((i, t)) => heartbeat_config(i, t).map(Some),
                }
                .and_then(|cfg| {
                    self.session
                        .set_heartbeat(now, cfg)
                        .map_err(|e| Error::usage(format!("heartbeat: {e}")))
                });
                if r.is_ok() {
                    self.st.heartbeat = hb;
                }
                let _ = reply.send(r);
            }
            Op::AckBatch { size, timeout } => {
                if let Some(n) = size {
                    self.session.set_ack_batch_size(n.max(1));
                }
                if let Some(t) = timeout {
                    self.session.set_ack_timeout(t.into());
                }
            }
            Op::Stores { prune, reply } => {
                let _ = reply.send(self.sync_stores(prune));
            }
            Op::MostRecent { sub_id, reply } => {
                let _ = reply.send(self.most_recent(&sub_id));
            }
            Op::StopReconnecting => self
                .session
                .set_reconnect(amps_core::ha::ReconnectPolicy::None),
            // From the next byte on; bytes already shown to the old filter are not shown again.
            Op::TransportFilter(f) => self.st.transport_filter = f,
            Op::LogonOptions(o) => {
                if let Err(e) = self.session.set_logon_options(o.as_deref().unwrap_or("")) {
                    self.st.report(e.into());
                }
            }
        }
        Ran::Done
    }

    /// Acks, discards, closed streams and reports from messages and streams.
    fn run_control(&mut self, now: Instant, c: Control) -> Ran {
        match c {
            Control::StreamClosed { handle, stream } => {
                let same = self.st.routes.get(&handle).is_some_and(
                    |r| matches!(&r.target, RouteTarget::Stream(s) if s.id() == stream),
                );
                if same {
                    self.st.end_route(handle, None);
                    self.st.waits.remove(&handle);
                    if self.session.route_key(handle).is_some() {
                        // Best effort: a failure here means the route is gone anyway.
                        let _ = self.session.unsubscribe(now, handle);
                    }
                }
            }
            Control::Ack {
                route,
                topic,
                bookmark,
                how,
            } => {
                let r = match route {
                    Some(route) => self.session.ack(now, route, &topic, &bookmark, how),
                    None => self.session.ack_by_topic(now, &topic, &bookmark, how),
                };
                if let Err(e) = r {
                    if e == CommandError::WouldBlock {
                        let op = Op::Control(Control::Ack {
                            route,
                            topic,
                            bookmark,
                            how,
                        });
                        return Ran::Wait(op, Blocked::Transmit);
                    }
                    self.st.report(e.into());
                }
            }
            Control::Handled(list) => {
                for h in list {
                    if let Err(e) = self
                        .session
                        .handled(now, h.route, &h.topic, &h.bookmark, h.ok)
                    {
                        self.st.report(e.into());
                    }
                }
            }
            Control::Discard { route, bookmark } => {
                if let Err(e) = self.session.discard(route, &bookmark) {
                    self.st.report(e.into());
                }
            }
            Control::Report(e) => self.st.report(e),
        }
        Ran::Done
    }

    /// A command the session refused: `Some` if it should wait and be retried.
    fn command_blocked(&mut self, e: CommandError) -> Option<Blocked> {
        match e {
            // The transmit buffer is full: the adapter writes it out, then this is retried.
            CommandError::WouldBlock => Some(Blocked::Transmit),
            CommandError::NotConnected if self.parks() => Some(Blocked::Offline),
            _ => None,
        }
    }

    fn execute(
        &mut self,
        now: Instant,
        cmd: Box<OwnedCommand>,
        target: Target,
        resubscribe: bool,
    ) -> Ran {
        self.sweep_abandoned(now);
        let kind = cmd.kind();
        let is_route = kind.is_subscribe() || kind.is_sow_query();
        let base = cmd.as_command();
        let user_acks = base.ack;
        let mut c = base;
        if is_route {
            // Forwarded as an event, so the caller returns at the processed ack.
            c = c.ack(AckType::Processed);
        }
        if kind.is_sow_query() && c.batch_size.is_none() {
            // The AMPS clients set a batch size of 10 by default.
            c = c.batch_size(10);
        }
        if matches!(target, Target::Collect(_)) {
            // sow_delete returns its stats ack.
            c = c.ack(AckType::Processed).ack(AckType::Stats);
        }
        let exec = Exec {
            resubscribe: resubscribe && kind.is_subscribe(),
        };
        let id = match self.session.execute_with(now, &c, exec) {
            Ok(id) => id,
            Err(e) => {
                if let Some(b) = self.command_blocked(e) {
                    let op = Op::Execute {
                        cmd,
                        target,
                        resubscribe,
                    };
                    return Ran::Wait(op, b);
                }
                target.fail(&e.into());
                return Ran::Done;
            }
        };
        let sub_id = self
            .session
            .route_key(id)
            .map(str::to_owned)
            .or_else(|| cmd.sub_id().map(str::to_owned))
            .unwrap_or_else(|| id.to_string());
        let (route_target, reply) = match target {
            Target::Stream {
                stream,
                auto_ack,
                reply,
            } => {
                let core = StreamCore::new(
                    stream.clone(),
                    stream_parts(&self.st.shared),
                    id,
                    sub_id.clone(),
                    auto_ack,
                );
                let r = if is_route {
                    WaitReply::Stream(reply, Box::new(core))
                } else {
                    // Nothing to wait for before the caller gets the stream; it ends when
                    // the command completes.
                    if let Err(Ok(core)) = reply.send(Ok(core)) {
                        drop(core);
                    }
                    WaitReply::None
                };
                (Some(RouteTarget::Stream(stream)), r)
            }
            Target::Handler { handler, reply } => {
                // Ahead of anything queued: the handler must be there before its messages.
                self.st
                    .dispatch
                    .push_urgent(DItem::Register(id, handler), &self.st.shared);
                (
                    Some(RouteTarget::Handler),
                    WaitReply::Handler(reply, sub_id.clone()),
                )
            }
            Target::Collect(reply) => (None, WaitReply::Collect(reply)),
        };
        if let Some(target) = route_target {
            if let Some(old) = self.st.routes.remove(&id)
                && let RouteTarget::Stream(s) = old.target
            {
                // A `replace` on a stream's subscription: the old stream ends here.
                self.st.out.push_back(Out::Finish(s, None));
            }
            self.st.routes.insert(
                id,
                Route {
                    kind,
                    target,
                    user_acks,
                    queue: false,
                    sub_id,
                },
            );
        }
        if !matches!(reply, WaitReply::None) {
            self.st.wait(id, reply, is_route);
        }
        Ran::Done
    }

    /// End subscriptions whose callers stopped waiting before the server acknowledged them
    /// (their ids are free again for the command that follows).
    fn sweep_abandoned(&mut self, now: Instant) {
        let gone: Vec<CommandId> = self
            .st
            .waits
            .iter()
            .filter(|(_, w)| w.on_processed && w.reply.is_abandoned())
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.st.waits.remove(&id);
            self.st.end_route(id, None);
            let _ = self.session.unsubscribe(now, id);
        }
    }

    fn unsubscribe(&mut self, now: Instant, sub_id: String, reply: Reply<()>) -> Ran {
        let handle = self
            .st
            .routes
            .iter()
            .find(|(_, r)| r.sub_id == sub_id && r.kind != CommandKind::Sow)
            .map(|(id, _)| *id);
        let r = match handle {
            Some(h) if self.session.route_key(h).is_some() => self.session.unsubscribe(now, h),
            _ => {
                if sub_id == "all" {
                    let subs: Vec<CommandId> = self
                        .st
                        .routes
                        .iter()
                        .filter(|(_, r)| r.kind.is_subscribe())
                        .map(|(id, _)| *id)
                        .collect();
                    for id in subs {
                        self.st.end_route(id, None);
                    }
                }
                // Not known here (e.g. from an earlier run): the server ignores unknown ids.
                self.session.execute(now, &Command::unsubscribe(&sub_id))
            }
        };
        match r {
            Ok(id) => {
                if let Some(h) = handle {
                    self.st.end_route(h, None);
                }
                self.st.wait(id, WaitReply::Unit(reply), false);
            }
            Err(e) => {
                if let Some(b) = self.command_blocked(e) {
                    return Ran::Wait(Op::Unsubscribe { sub_id, reply }, b);
                }
                let _ = reply.send(Err(e.into()));
            }
        }
        Ran::Done
    }
}

impl super::State {
    pub(super) fn wait(&mut self, id: CommandId, reply: WaitReply, on_processed: bool) {
        self.waits.insert(
            id,
            Wait {
                reply,
                on_processed,
                ack: None,
            },
        );
    }
}
