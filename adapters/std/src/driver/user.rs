//! Commands and publishes from application threads, run in the order they were sent. The head
//! of the queue may wait (publish window full, reconnecting, socket full); commands that are not
//! ordered (control, acks, queries) still run meanwhile.

use std::collections::VecDeque;

use amps_core::Instant;
use amps_core::codec::{AckType, Command, CommandKind};
use amps_core::session::{CommandError, CommandId, Exec, PublishError, State as SessionState};

use super::{
    Blocked, Driver, Executed, Op, Out, Route, RouteTarget, Target, Wait, WaitReply, answer,
};
use crate::clock;
use crate::command::OwnedCommand;
use crate::dispatch::Item as DItem;
use crate::error::Error;
use crate::inbox::{Item, PubChunk, PubKind};

/// What running a command did.
enum Ran {
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
                other => self.intake(other),
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
    /// retry-on-disconnect, seeds) instead of failing.
    fn parks(&self) -> bool {
        self.st.shared.ha
            && self.st.shared.retry_on_disconnect()
            && !self.st.user_disconnect
            && self.session.state() != SessionState::Shutdown
    }

    /// Publish the records of `chunk` from its read position. `Some` when one must wait.
    fn publish_chunk(&mut self, now: Instant, chunk: &mut PubChunk) -> Option<Blocked> {
        while let Some(rec) = chunk.peek() {
            let r = match rec.kind {
                PubKind::Publish => self.session.publish(now, rec.topic, rec.data),
                PubKind::DeltaPublish => self
                    .session
                    .publish_command(now, &Command::delta_publish(rec.topic, rec.data)),
            };
            let len = rec.len;
            if let Some(b) = self.publish_outcome(now, r) {
                if b == Blocked::Transmit && self.transmit(now) {
                    // The socket took the backlog: retry the same record.
                    continue;
                }
                return Some(b);
            }
            chunk.pos += len;
            self.st.done_pub += len;
        }
        None
    }

    /// Classify a publish result: `None` when the record is done (sent, stored or dropped).
    fn publish_outcome(
        &mut self,
        _now: Instant,
        r: Result<Option<u64>, PublishError>,
    ) -> Option<Blocked> {
        match r {
            Ok(_) => None,
            Err(PublishError::WouldBlock) => Some(Blocked::Transmit),
            Err(PublishError::WindowFull) => Some(Blocked::Window),
            Err(PublishError::NotConnected) if self.parks() => Some(Blocked::Offline),
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
            Op::Connect { uri, reply } => self.connect_plain(uri, reply),
            Op::Logon { auth, reply } => self.logon_plain(now, auth, reply),
            Op::ConnectAndLogon { reply } => self.ha_start(now, reply),
            Op::Disconnect { reply } => {
                self.st.user_disconnect = true;
                self.session.disconnect(now);
                self.drain_events(now);
                answer(reply, Ok(()));
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
                reply,
            } => return self.execute(now, cmd, target, resubscribe, reply),
            Op::PublishCommand(cmd) => {
                let r = self.session.publish_command(now, &cmd.as_command());
                if let Some(b) = self.publish_outcome(now, r) {
                    return Ran::Wait(Op::PublishCommand(cmd), b);
                }
            }
            Op::Unsubscribe { sub_id, reply } => return self.unsubscribe(now, sub_id, reply),
            Op::StreamClosed { handle } => {
                if self.st.routes.contains_key(&handle) {
                    self.st.end_route(handle, None);
                    if self.session.route_key(handle).is_some() {
                        // Best effort: a failure here means the route is gone anyway.
                        let _ = self.session.unsubscribe(now, handle);
                    }
                }
            }
            Op::Flush { store, reply } => {
                let r = match store {
                    None => self.session.flush(now),
                    Some(t) => self.session.publish_flush(now, clock::core_duration(t)),
                };
                match r {
                    Ok(id) => self.wait(id, WaitReply::Flush(reply, store), false),
                    Err(e) => {
                        if let Some(b) = self.command_blocked(now, e) {
                            return Ran::Wait(Op::Flush { store, reply }, b);
                        }
                        answer(reply, Err(e.into()));
                    }
                }
            }
            Op::Ack {
                route,
                topic,
                bookmark,
                how,
            } => {
                if let Err(e) = self.session.ack(now, route, &topic, &bookmark, how) {
                    self.st.report(e.into());
                }
            }
            Op::Handled(list) => {
                for h in list {
                    if let Err(e) = self
                        .session
                        .handled(now, h.route, &h.topic, &h.bookmark, h.ok)
                    {
                        self.st.report(e.into());
                    }
                }
            }
            Op::Discard { route, bookmark } => {
                if let Err(e) = self.session.discard(route, &bookmark) {
                    self.st.report(Error::with_source(
                        crate::ErrorKind::Store,
                        format!("bookmark store: {e}"),
                        e,
                    ));
                }
            }
            Op::Update(f) => {
                let changed = f(&mut self.st.cfg);
                if changed.heartbeat
                    && let Err(e) = self.session.set_heartbeat(now, self.st.cfg.heartbeat)
                {
                    self.st.report(Error::with_source(
                        crate::ErrorKind::Usage,
                        format!("heartbeat: {e}"),
                        e,
                    ));
                }
                let cfg = &self.st.cfg;
                if changed.acks {
                    self.session.set_ack_batch_size(cfg.ack_batch_size);
                    self.session
                        .set_ack_timeout(clock::core_duration(cfg.ack_timeout));
                }
                if changed.reconnect {
                    self.session.set_reconnect(cfg.reconnect);
                    self.session.set_resubscribe(cfg.resubscribe);
                }
            }
            Op::UnpersistedCount(reply) => answer(reply, Ok(self.session.unpersisted_count())),
        }
        Ran::Done
    }

    /// A command the session refused: `Some` if it should wait and be retried.
    fn command_blocked(&mut self, now: Instant, e: CommandError) -> Option<Blocked> {
        match e {
            // The transmit buffer is full: write what it holds; retried next round.
            CommandError::WouldBlock => {
                self.transmit(now);
                Some(Blocked::Transmit)
            }
            CommandError::NotConnected if self.parks() => Some(Blocked::Offline),
            _ => None,
        }
    }

    fn wait(&mut self, id: CommandId, reply: WaitReply, on_processed: bool) {
        self.st.waits.insert(
            id,
            Wait {
                reply,
                on_processed,
                ack: None,
            },
        );
    }

    fn execute(
        &mut self,
        now: Instant,
        cmd: Box<OwnedCommand>,
        target: Target,
        resubscribe: bool,
        reply: super::Reply<Executed>,
    ) -> Ran {
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
            // Seeds: "The 60East clients set a batch size of 10 by default."
            c = c.batch_size(10);
        }
        if matches!(target, Target::Collect) {
            // sow_delete returns its stats ack (protocol.md §6.8, V8).
            c = c.ack(AckType::Processed).ack(AckType::Stats);
        }
        let r = self.session.execute_with(now, &c, Exec { resubscribe });
        let id = match r {
            Ok(id) => id,
            Err(e) => {
                if let Some(b) = self.command_blocked(now, e) {
                    let op = Op::Execute {
                        cmd,
                        target,
                        resubscribe,
                        reply,
                    };
                    return Ran::Wait(op, b);
                }
                answer(reply, Err(e.into()));
                return Ran::Done;
            }
        };
        let sub_id = self
            .session
            .route_key(id)
            .map(str::to_owned)
            .or_else(|| cmd.sub_id().map(str::to_owned))
            .unwrap_or_else(|| id.to_string());
        let target = match target {
            Target::Stream(s) => Some(RouteTarget::Stream(s)),
            Target::Handler(h) => {
                // Ahead of anything queued: the handler must be there before its messages.
                self.st.dispatch.push_urgent(DItem::Register(id, h));
                Some(RouteTarget::Handler)
            }
            Target::Collect => None,
        };
        if let Some(target) = target {
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
                    sub_id: sub_id.clone(),
                },
            );
        }
        self.wait(id, WaitReply::Exec(reply, sub_id), is_route);
        Ran::Done
    }

    fn unsubscribe(&mut self, now: Instant, sub_id: String, reply: super::Reply<()>) -> Ran {
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
                self.wait(id, WaitReply::Unit(reply), false);
            }
            Err(e) => {
                if let Some(b) = self.command_blocked(now, e) {
                    return Ran::Wait(Op::Unsubscribe { sub_id, reply }, b);
                }
                answer(reply, Err(e.into()));
            }
        }
        Ran::Done
    }
}
