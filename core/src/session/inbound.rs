//! Turning received frames into events (docs/protocol.md §5, §7): ack routing by `cid`, persisted
//! acks for the publish store, deliveries by `sub_id`/`sids`, `sow` records one per event,
//! group begin/end, `oof`, heartbeats, and everything unroutable to the last-chance event.
//!
//! Each frame's header is parsed once, in place, into the session's `slot`. Side effects happen
//! first (with the view and the core's tables borrowed side by side); the event handed out then
//! borrows the slot, the buffer and the scratch (a view rebuilt in O(1), no copy of the field
//! positions), because an event borrowing the buffer can only be returned unconditionally.
//! A `sow` record's header is parsed into `record` the same way before its event is built.

use crate::codec::{
    AckType, Command, CommandKind, Detached, Field, Message, MessageRef, PREFIX_LEN, Scratch,
    SowRecord, Status,
};
use crate::store::{BookmarkStore, PublishStore};

use super::tables::{BOOKMARKS, QUERY_ONLY, QUEUE, rs, text};
use super::{
    CommandError, Core, Delivery, Dispatch, Emit, Event, FailureKind, Queued, ReasonText, Session,
    SessionError, Storage, Table,
};

/// Where the `sow` record being handed out sits: its header's positions and, relative to the
/// payload, its header text and data (`outer`: a batch without record headers, §7.2).
#[derive(Clone, Copy)]
pub(super) struct RecordSlot {
    fields: Detached,
    raw: (usize, usize),
    esc: usize,
    data: (usize, usize),
    outer: bool,
}

enum Step {
    Queued(Queued),
    /// Hand out (a part of) this frame.
    Frame(Dispatch),
    Again,
    Idle,
}

impl Queued {
    fn into_event<'a>(self) -> Event<'a> {
        match self {
            Queued::State(s) => Event::State(s),
            Queued::CloseTransport => Event::CloseTransport,
            Queued::Completed(id, stats) => Event::Completed { id, stats },
            Queued::Failed(id, error) => Event::Failed { id, error },
            Queued::Persisted(up_to) => Event::Persisted { up_to },
            Queued::Error(e) => Event::Error(e),
            Queued::ReconnectDelay(elapsed) => Event::ReconnectDelay { elapsed },
        }
    }
}

fn failure(msg: &MessageRef<'_>) -> CommandError {
    let reason = msg.reason().unwrap_or("");
    CommandError::Failed {
        kind: FailureKind::classify(reason, msg.status() == Some(Status::Retry)),
        reason: ReasonText::new(reason),
    }
}

impl<S: Storage> Session<S> {
    /// The next event, or `None` when there is nothing to report. Drain after every input or
    /// command, before `poll_transmit`. At most one frame is decoded per call.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        loop {
            match self.step() {
                Step::Queued(q) => return Some(q.into_event()),
                Step::Frame(d) => return self.emit_frame(d),
                Step::Again => continue,
                Step::Idle => return None,
            }
        }
    }

    fn step(&mut self) -> Step {
        self.leave();
        let core = &mut self.core;
        if let Some(seq) = core.deferred_discard.take() {
            core.pstore.discard(seq);
        }
        if let Some(q) = core.queue.pop() {
            return Step::Queued(q);
        }
        if self.dispatch.is_some() {
            return self.advance_dispatch();
        }
        if let Some((err, upto)) = core.failing {
            return core.fail_next(err, upto);
        }
        if let Some(t) = core.timeouts_due {
            return core.expire_next(t);
        }
        if !core.is_connected() {
            return Step::Idle;
        }
        let now = core.now;
        match self.rx.front_frame(core.limits.max_frame) {
            Err(e) => {
                // The framing itself is broken: nothing after this can be trusted.
                core.queue.push(Queued::Error(SessionError::Decode(e)));
                core.end_connection(now, true);
                Step::Again
            }
            Ok(None) if core.closing => {
                core.end_connection(now, false);
                Step::Again
            }
            Ok(None) => Step::Idle,
            Ok(Some(len)) => self.process_frame(len),
        }
    }

    /// Apply a frame's side effects and decide what it becomes.
    fn process_frame(&mut self, len: usize) -> Step {
        let Session {
            rx,
            scratch,
            dispatch,
            core,
            slot,
            ..
        } = self;
        let start = rx.front();
        let body = rx.body_at(start, len);
        // Parsed in place into the slot events borrow: the positions are never copied.
        let parsed = slot.parse_into(body, &mut Scratch::new(scratch.as_mut()));
        let slot: &Detached = slot;
        let view = parsed.and_then(|(raw, esc, header_len)| {
            let payload = body.get(header_len..).unwrap_or(&[]);
            Message::from_header(slot.view(raw, esc), payload).map(|m| (m, header_len, esc.len()))
        });
        let (msg, header_len, esc_len) = match view {
            Ok(v) => v,
            Err(e) => {
                // A well-framed frame with a bad header: skip it, the stream is intact.
                rx.release(len);
                core.queue.push(Queued::Error(SessionError::Decode(e)));
                return Step::Again;
            }
        };
        let emit = match msg.kind() {
            CommandKind::Ack => core.on_ack(&msg),
            CommandKind::Publish | CommandKind::Oof => match core.next_route(&msg, 0) {
                Some((route, next_sid)) => Some(Emit::Delivery { route, next_sid }),
                // Every matching subscription had it already (replayed duplicates): drop it.
                None if core.dup_only => None,
                // Unknown subscription (e.g. just unsubscribed): the last-chance handler.
                None => Some(Emit::LastChance),
            },
            CommandKind::Sow => match core.query_route(&msg) {
                // A batch without records: nothing to hand out (and no event that would end
                // the caller's drain while frames wait behind it).
                Some(_) if msg.data().is_empty() => None,
                Some(route) => Some(Emit::Records { route, next: 0 }),
                None => Some(Emit::LastChance),
            },
            CommandKind::GroupBegin | CommandKind::GroupEnd => Some(core.query_route(&msg).map_or(
                Emit::LastChance,
                |route| Emit::Delivery {
                    route,
                    next_sid: None,
                },
            )),
            CommandKind::Heartbeat => {
                core.answer_heartbeat();
                None
            }
            _ => Some(Emit::LastChance),
        };
        let Some(emit) = emit else {
            rx.release(len);
            return Step::Again;
        };
        let d = Dispatch {
            start,
            len,
            header_len,
            esc_len,
            emit,
        };
        if d.one_part() {
            // Handed out in one event (nearly every frame): released now, so the next call
            // goes straight to the next frame. Its bytes stay where they are until the next
            // input, which the event's borrow of the session rules out while it lives.
            rx.release(len);
        } else {
            *dispatch = Some(d);
        }
        Step::Frame(d)
    }

    /// The previous part of the current frame was handed out: find the next part or finish.
    fn advance_dispatch(&mut self) -> Step {
        let Session {
            rx,
            scratch,
            dispatch,
            core,
            slot,
            ..
        } = self;
        let Some(d) = dispatch.as_mut() else {
            return Step::Again;
        };
        let more = match d.emit {
            Emit::Delivery {
                next_sid: Some(from),
                ..
            } => {
                let body = rx.body_at(d.start, d.len);
                let (esc, _) = scratch
                    .as_ref()
                    .split_at(d.esc_len.min(scratch.as_ref().len()));
                let raw = body.get(..d.header_len);
                let esc = text(esc);
                let next = match (raw, esc) {
                    (Some(raw), Some(esc)) => {
                        let h = slot.view(raw, esc);
                        match Message::from_header(h, body.get(d.header_len..).unwrap_or(&[])) {
                            Ok(msg) => core.next_route(&msg, from),
                            Err(_) => None,
                        }
                    }
                    _ => None,
                };
                match next {
                    Some((route, next_sid)) => {
                        d.emit = Emit::Delivery { route, next_sid };
                        true
                    }
                    None => false,
                }
            }
            Emit::Records { next, .. } => next < d.len - PREFIX_LEN - d.header_len,
            _ => false,
        };
        if more {
            return Step::Frame(*d);
        }
        let len = d.len;
        *dispatch = None;
        rx.release(len);
        Step::Again
    }

    /// Build the event for the current part of the current frame (no side effects except the
    /// record cursor).
    fn emit_frame(&mut self, d: Dispatch) -> Option<Event<'_>> {
        let Session {
            rx,
            scratch,
            dispatch,
            core,
            record,
            slot,
        } = self;
        let cut = d.esc_len.min(scratch.as_ref().len());
        // Phase 1, the one mutation: a `sow` batch hands out its next record. Its header's
        // positions are parked in `record` so the event can borrow them.
        if let Some(d) = dispatch.as_mut()
            && let Emit::Records { route, next } = d.emit
        {
            let body = rx.body_at(d.start, d.len);
            let raw = body.get(..d.header_len)?;
            let (esc, rest) = scratch.as_mut().split_at_mut(cut);
            let esc = text(esc)?;
            let msg = Message::from_header(slot.view(raw, esc), body.get(d.header_len..)?).ok()?;
            let parsed = msg
                .sow_record_at(next, &mut Scratch::new(rest))
                .map(|found| {
                    found.map(|(rec, after)| {
                        let outer = next == 0
                            && rec.data.len() == msg.data().len()
                            && rec.header.raw_bytes() == raw;
                        let slot = RecordSlot {
                            fields: rec.header.detach(),
                            raw: (next, next + rec.header.raw_bytes().len()),
                            esc: rec.header.escaped_len(),
                            data: (after - rec.data.len(), after),
                            outer,
                        };
                        (slot, after)
                    })
                });
            match parsed {
                Ok(Some((slot, after))) => {
                    *record = Some(slot);
                    d.emit = Emit::Records { route, next: after };
                }
                Ok(None) => {
                    d.emit = Emit::Records {
                        route,
                        next: usize::MAX,
                    };
                    return None;
                }
                Err(e) => {
                    d.emit = Emit::Records {
                        route,
                        next: usize::MAX,
                    };
                    return Some(Event::Error(SessionError::Decode(e)));
                }
            }
        }
        // Phase 2: views that borrow the buffer, the scratch and the parked positions.
        let body = rx.body_at(d.start, d.len);
        let raw = body.get(..d.header_len)?;
        let (esc, rest) = (*scratch).as_ref().split_at(cut);
        let esc = text(esc)?;
        let payload = body.get(d.header_len..)?;
        let (routes, arena) = (core.routes.items(), core.arena.as_ref());
        if let Emit::Delivery { route, .. } = d.emit {
            // Nearly every event: built straight into the result.
            let (id, sub_id) = route_key(routes, arena, route)?;
            return Some(Event::Delivery(Delivery {
                id,
                sub_id,
                msg: Message::from_header(slot.view(raw, esc), payload).ok()?,
                record: None,
            }));
        }
        let msg = Message::from_header(slot.view(raw, esc), payload).ok()?;
        Some(match d.emit {
            Emit::Ack(id) => Event::Ack { id, msg },
            Emit::LastChance => Event::LastChance(msg),
            Emit::LogonRetry => Event::LogonRetry {
                // A challenge that does not name the user is for the one logging on.
                user_id: msg.user_id().unwrap_or(core.logon_user.as_str()),
                token: msg.password().unwrap_or(""),
            },
            Emit::FailedWrite { seq, kind } => Event::FailedWrite {
                seq,
                kind,
                reason: msg.reason().unwrap_or(""),
                stored: core.pstore.get(seq),
            },
            // Built above.
            Emit::Delivery { .. } => return None,
            Emit::Records { route, .. } => {
                let (id, sub_id) = route_key(routes, arena, route)?;
                let slot = record.as_ref()?;
                let header = if slot.outer {
                    *msg.header()
                } else {
                    let rraw = payload.get(slot.raw.0..slot.raw.1)?;
                    let resc = text(rest.get(..slot.esc)?)?;
                    slot.fields.view(rraw, resc)
                };
                let data = payload.get(slot.data.0..slot.data.1)?;
                Event::Delivery(Delivery {
                    id,
                    sub_id,
                    msg,
                    record: Some(SowRecord { header, data }),
                })
            }
        })
    }
}

impl<S: Storage> Core<S> {
    /// An ack: route it by `cid` to its command; persisted acks also drive the publish store.
    fn on_ack(&mut self, msg: &MessageRef<'_>) -> Option<Emit> {
        let now = self.now;
        let ack = msg.ack_type();
        let status = msg.status();
        let failed = matches!(status, Some(Status::Failure | Status::Retry));
        let cid = msg.command_id().and_then(|c| c.trim().parse::<u64>().ok());
        let idx = cid.and_then(|c| self.pending.items().iter().position(|p| p.id.cid == c));

        // Logon (docs/protocol.md §8).
        if let (Some(i), Some(logon)) = (idx, self.logon_id)
            && self.pending.items().get(i).is_some_and(|p| p.id == logon)
        {
            match status {
                Some(Status::Retry) => return Some(Emit::LogonRetry),
                Some(Status::Failure) => self.logon_failed(now, failure(msg)),
                _ => self.logon_succeeded(now, msg),
            }
            return None;
        }

        // The publish store (docs/protocol.md §8.4): persisted acks are matched by `s`, not `cid`.
        if ack == Some(AckType::Persisted)
            && self.pstore.is_enabled()
            && let Some(seq) = msg.seq()
        {
            if failed {
                let kind = FailureKind::classify(
                    msg.reason().unwrap_or(""),
                    status == Some(Status::Retry),
                );
                self.deferred_discard = Some(seq);
                if kind == FailureKind::Duplicate {
                    // The server already has it: as good as persisted.
                    return None;
                }
                if idx.is_none() {
                    return Some(Emit::FailedWrite { seq, kind });
                }
            } else {
                self.pstore.discard_up_to(seq);
                self.persisted_seq = self.persisted_seq.max(seq);
                self.queue.push(Queued::Persisted(seq));
                self.complete_flushes();
                self.pump(now);
                idx?;
            }
        }

        let Some(i) = idx else {
            if failed && cid.is_none() {
                // A command the server could not read (docs/protocol.md §1.4).
                let reason = msg.reason().unwrap_or("");
                self.queue.push(Queued::Error(SessionError::Protocol {
                    kind: FailureKind::classify(reason, status == Some(Status::Retry)),
                    reason: ReasonText::new(reason),
                }));
                return None;
            }
            return Some(Emit::LastChance);
        };
        let mut p = *self.pending.items().get(i)?;
        let forward = !p.internal && ack.is_some_and(|a| p.forward.contains(a));

        if failed {
            self.pending.swap_remove_at(i);
            if let Some(h) = p.route {
                self.remove_route(h);
            }
            self.queue.push(Queued::Failed(p.report, failure(msg)));
            return forward.then_some(Emit::Ack(p.report));
        }

        if let Some(a) = ack {
            p.waiting = p.waiting.without(a);
            if a == AckType::Processed {
                p.processed = true;
                if p.route.is_some() {
                    // A subscription or query returns to its caller here; its results flow.
                    p.deadline = None;
                }
                if p.flush_store {
                    // Everything before the flush is processed: from here only the store's
                    // count decides (some servers send no persisted ack for a flush).
                    p.waiting = crate::codec::AckTypes::NONE;
                }
                if let Some(h) = p.route
                    && let Some(backlog) = msg.max_backlog()
                    && let Some(r) = self.routes.items_mut().iter_mut().find(|r| r.handle == h)
                {
                    // A queue subscription: its effective backlog caps ack batches (§11).
                    r.flags |= QUEUE;
                    r.backlog = u32::try_from(backlog).unwrap_or(u32::MAX);
                }
            }
            if a == AckType::Persisted
                && let (Some(h), Some(bm)) = (p.route, msg.bookmark())
                && let Some(r) = self
                    .routes
                    .items()
                    .iter()
                    .find(|r| r.handle == h && r.has(BOOKMARKS))
                && let Some(sub) = r.str(self.arena.as_ref(), rs::SUB_ID)
                && let Err(e) = self.bstore.persisted(sub, bm)
            {
                self.queue
                    .push(Queued::Error(SessionError::BookmarkStore(e)));
            }
            if a == AckType::Completed
                && let Some(h) = p.route
                && self
                    .routes
                    .items()
                    .iter()
                    .any(|r| r.handle == h && r.has(QUERY_ONLY))
            {
                // Every result of a query precedes its `completed` ack (§5.4).
                self.remove_route(h);
            }
        }
        let store_busy = p.flush_store && self.pstore.unpersisted_count() > 0;
        if p.waiting.is_empty() && !store_busy {
            self.pending.swap_remove_at(i);
            self.queue.push(Queued::Completed(p.report, msg.stats()));
        } else if let Some(slot) = self.pending.items_mut().get_mut(i) {
            *slot = p;
        }
        forward.then_some(Emit::Ack(p.report))
    }

    /// `publish_flush` commands whose acks arrived complete once the store is empty.
    fn complete_flushes(&mut self) {
        if self.pstore.unpersisted_count() > 0 {
            return;
        }
        while let Some(i) = self
            .pending
            .items()
            .iter()
            .position(|p| p.flush_store && p.waiting.is_empty())
        {
            if let Some(p) = self.pending.swap_remove_at(i) {
                self.queue
                    .push(Queued::Completed(p.report, Default::default()));
            }
        }
    }

    fn remove_route(&mut self, handle: super::CommandId) {
        if let Some(i) = self.routes.items().iter().position(|r| r.handle == handle)
            && let Some(r) = self.routes.swap_remove_at(i)
        {
            self.free_route_block(&r);
        }
    }

    /// The next route named in the delivery's subscription ids at or after byte `from`,
    /// skipping bookmark duplicates. Returns the route index and where to continue (`None`
    /// when the list is exhausted, so a delivery for one subscription is not looked at again).
    #[cfg_attr(target_pointer_width = "64", inline)]
    fn next_route(&mut self, msg: &MessageRef<'_>, from: usize) -> Option<(usize, Option<usize>)> {
        // Compared as bytes: the header's UTF-8 was checked by the parse, the routes' when
        // they were added.
        let ids = msg
            .str_bytes(Field::SubIds)
            .or_else(|| msg.str_bytes(Field::SubId))
            .unwrap_or(&[]);
        self.dup_only = false;
        if from == 0 {
            self.msg_serial = self.msg_serial.wrapping_add(1);
        }
        let serial = self.msg_serial;
        let mut rest = ids.get(from..).unwrap_or(&[]);
        while !rest.is_empty() {
            let item = match rest.iter().position(|&c| c == b',') {
                Some(c) => {
                    let (item, tail) = rest.split_at(c);
                    rest = tail.get(1..).unwrap_or(&[]);
                    item
                }
                None => core::mem::take(&mut rest),
            };
            let item = trim(item);
            if item.is_empty() {
                continue;
            }
            let arena = self.arena.as_ref();
            let Some((ri, r)) = self
                .routes
                .items_mut()
                .iter_mut()
                .enumerate()
                .find(|(_, r)| r.has_sub_id(arena, item))
            else {
                continue;
            };
            if r.delivered == serial {
                // Named twice in one delivery: delivered once.
                continue;
            }
            r.delivered = serial;
            if !r.has(QUEUE) && msg.has(Field::LeasePeriod) {
                // Queue messages carry a lease (§11), even before the subscribe ack (§17.10).
                r.flags |= QUEUE;
            }
            if r.has(BOOKMARKS)
                && msg.kind() == CommandKind::Publish
                && let Some(bm) = msg.bookmark()
                && let Ok(item) = core::str::from_utf8(item)
            {
                match self.bstore.log(item, bm) {
                    Ok(true) => {}
                    Ok(false) => {
                        // Already discarded: a duplicate after a resume (§10.2).
                        self.dup_only = true;
                        continue;
                    }
                    Err(e) => self
                        .queue
                        .push(Queued::Error(SessionError::BookmarkStore(e))),
                }
            }
            return Some((ri, (!rest.is_empty()).then(|| ids.len() - rest.len())));
        }
        None
    }

    /// The route of a query result (`query_id`, §7.2, §7.3).
    fn query_route(&self, msg: &MessageRef<'_>) -> Option<usize> {
        let arena = self.arena.as_ref();
        let q = msg.query_id()?;
        self.routes
            .items()
            .iter()
            .position(|r| r.str(arena, rs::QUERY_ID) == Some(q))
    }

    /// Fail one pending command after a disconnect or shutdown.
    fn fail_next(&mut self, err: CommandError, upto: u32) -> Step {
        let Some(i) = self
            .pending
            .items()
            .iter()
            .position(|p| p.id.generation <= upto)
        else {
            self.failing = None;
            return Step::Again;
        };
        let Some(p) = self.pending.swap_remove_at(i) else {
            return Step::Again;
        };
        let survives = p
            .route
            .is_some_and(|h| self.routes.items().iter().any(|r| r.handle == h));
        if survives && err == CommandError::Disconnected {
            // Re-entered after the reconnect, which reports under the same handle.
            return Step::Again;
        }
        if p.internal && p.kind != CommandKind::Logon {
            return Step::Again;
        }
        Step::Queued(Queued::Failed(p.report, err))
    }

    /// Time out one command whose deadline passed (Python client: unsubscribe, then TimedOut).
    fn expire_next(&mut self, now: crate::time::Instant) -> Step {
        let Some(i) = self
            .pending
            .items()
            .iter()
            .position(|p| p.deadline.is_some_and(|d| d <= now))
        else {
            self.timeouts_due = None;
            return Step::Again;
        };
        let Some(p) = self.pending.swap_remove_at(i) else {
            return Step::Again;
        };
        if let Some(h) = p.route {
            let key = self
                .routes
                .items()
                .iter()
                .find(|r| r.handle == h)
                .and_then(|r| {
                    let arena = self.arena.as_ref();
                    r.str(arena, rs::SUB_ID)
                        .map(|s| (true, s))
                        .or_else(|| r.str(arena, rs::QUERY_ID).map(|q| (false, q)))
                });
            if let Some((is_sub, key)) = key {
                let cmd = if is_sub {
                    Command::unsubscribe(key)
                } else {
                    Command::new(CommandKind::Unsubscribe).query_id(key)
                };
                let _ = self.tx.push_cmd(&cmd);
            }
            self.remove_route(h);
        }
        Step::Queued(Queued::Failed(p.report, CommandError::TimedOut))
    }
}

/// The handle and key of route `i`.
#[cfg_attr(target_pointer_width = "64", inline(always))]
fn route_key<'a>(
    routes: &[super::Route],
    arena: &'a [u8],
    i: usize,
) -> Option<(super::CommandId, &'a str)> {
    let r = routes.get(i)?;
    Some((r.handle, r.key(arena)))
}

/// `item` without the whitespace around it, cut exactly as `str::trim` cuts it.
#[cfg_attr(target_pointer_width = "64", inline)]
fn trim(item: &[u8]) -> &[u8] {
    // The common case, an id with nothing around it: no space, control or non-ASCII byte at
    // either end (what both trims below could cut).
    let plain = |c: &u8| matches!(c, b'!'..=b'~');
    if item.first().is_some_and(plain) && item.last().is_some_and(plain) {
        return item;
    }
    let t = item.trim_ascii();
    // Beyond ASCII's, `str::trim` also cuts the vertical tab and Unicode spaces.
    let odd = |c: &u8| !c.is_ascii() || *c == 0x0b;
    if t.first().is_some_and(odd) || t.last().is_some_and(odd) {
        return core::str::from_utf8(t).map_or(t, |s| s.trim().as_bytes());
    }
    t
}

#[cfg(test)]
mod tests {
    use super::trim;

    #[test]
    fn trim_cuts_what_str_trim_cuts() {
        for s in [
            "",
            " ",
            "a",
            " a ",
            "\ta,\n",
            "\u{b}a\u{b}",
            "\u{a0}a\u{3000}",
            "é",
            " é ",
            "a b",
            "\u{c}\r a",
        ] {
            assert_eq!(trim(s.as_bytes()), s.trim().as_bytes(), "{s:?}");
        }
    }
}
