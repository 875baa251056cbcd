//! User commands: execute, publish (with the publish store and its window), flush and
//! publish_flush, queue acks with batching, bookmark discards.

use crate::codec::{AckType, AckTypes, Command, CommandKind, EncodeError, options};
use crate::store::{BookmarkStore, PublishStore};
use crate::time::Instant;

use super::tables::{
    BOOKMARKS, N_ROUTE_STRS, Pending, QUERY_ONLY, QUEUE, RESUBSCRIBE, Route, arena_alloc, rs,
};
use super::{AckHow, CommandError, CommandId, Core, Exec, PublishError, State, Storage, Table};

/// Encode `cmd` into the transmit buffer: `WouldBlock` if it would fit an empty buffer.
/// Transmit-buffer bytes a `sow_delete` of a batch needs beyond its topic and bookmarks (frame
/// prefix, command name, field names, a command id).
const SOW_DELETE_OVERHEAD: usize = 96;

fn encode_into(
    tx: &mut super::io::TxBuf<impl AsRef<[u8]> + AsMut<[u8]>>,
    cmd: &Command<'_>,
) -> Result<usize, CommandError> {
    let cap = tx.capacity();
    match tx.stage(cmd) {
        Ok(n) => Ok(n),
        Err(EncodeError::BufferTooSmall { needed }) if needed <= cap => {
            Err(CommandError::WouldBlock)
        }
        Err(e) => Err(e.into()),
    }
}

impl<S: Storage> Core<S> {
    /// Send a command. Subscriptions and queries get a route (deliveries come as
    /// [`super::Event::Delivery`] with the returned id); the session adds the `processed` ack
    /// (and `completed` for queries) it needs to see failures and the end of results, and
    /// fills in `cid`, and `sub_id`/`query_id` when absent. Not re-entered after a reconnect
    /// (a stream); see [`Session::execute_with`].
    pub(super) fn execute(
        &mut self,
        now: Instant,
        cmd: &Command<'_>,
    ) -> Result<CommandId, CommandError> {
        self.execute_with(now, cmd, Exec::default())
    }

    /// [`Session::execute`] with tracking options.
    pub(super) fn execute_with(
        &mut self,
        now: Instant,
        cmd: &Command<'_>,
        exec: Exec,
    ) -> Result<CommandId, CommandError> {
        match self.state {
            State::Shutdown => return Err(CommandError::Shutdown),
            State::Recovering | State::Ready => {}
            _ => return Err(CommandError::NotConnected),
        }
        if cmd.kind == CommandKind::Logon {
            return Err(CommandError::Failed {
                kind: super::FailureKind::Other,
                reason: super::ReasonText::new("the session sends the logon itself"),
            });
        }
        // One slot stays free for the logon of the next connection: commands of an ended
        // connection linger until `poll_event` reports their failures.
        if self.pending.items().len() + 1 >= self.limits.max_commands {
            return Err(CommandError::TooManyCommands);
        }
        let kind = cmd.kind;
        let id = CommandId {
            generation: self.generation,
            cid: self.next_cid,
        };
        let mut cid_buf = itoa::Buffer::new();
        let cid = cid_buf.format(id.cid);
        let mut out = *cmd;
        out = out.command_id(cid);

        // Acks the session needs on top of the application's (docs/protocol.md §5.1).
        let mut waiting = cmd.ack;
        if kind.is_subscribe() || kind.is_sow_query() || kind == CommandKind::Unsubscribe {
            waiting = waiting.with(AckType::Processed);
        }
        if kind.is_sow_query() {
            waiting = waiting.with(AckType::Completed);
        }
        if kind == CommandKind::Flush && waiting.is_empty() {
            waiting = AckTypes::of(AckType::Completed);
        }
        // A command with no acks at all completes when it is sent.
        waiting = waiting.intersect(kind.supported_acks());
        out = out.acks(waiting);

        let opts = cmd.options.unwrap_or("");
        let is_replace = options::find(opts, "replace").is_some();
        let makes_route = kind.is_subscribe() || kind.is_sow_query();
        if kind.is_subscribe() && cmd.sub_id.is_none() {
            out = out.sub_id(cid);
        }
        if kind.is_sow_query() && cmd.query_id.is_none() {
            out = out.query_id(cid);
        }
        // A replace updates an existing route (docs/protocol.md §6.4); otherwise ids must be new.
        let existing = out.sub_id.and_then(|s| self.route_by_key(rs::SUB_ID, s));
        if makes_route && existing.is_some() && !is_replace {
            return Err(CommandError::DuplicateId);
        }
        if makes_route && existing.is_none() && self.routes.items().len() >= self.limits.max_routes
        {
            return Err(CommandError::TooManyCommands);
        }

        // MOST_RECENT never goes on the wire (docs/protocol.md §10.1): resolve it from the bookmark
        // store, or EPOCH without state. The route keeps `recent` so re-entries resolve again.
        let mut recent_buf = [0u8; crate::store::MAX_RESUME_POINT];
        let route_bookmark = out.bookmark;
        if kind.is_subscribe()
            && out.bookmark == Some(crate::codec::bookmark::MOST_RECENT)
            && let Some(sub) = out.sub_id
        {
            let recent = self
                .bstore
                .most_recent(sub, &mut recent_buf)
                .map_err(|_| CommandError::TooLarge)?;
            out = out.bookmark(if recent.is_empty() {
                crate::codec::bookmark::EPOCH
            } else {
                recent
            });
        }

        let n = encode_into(&mut self.tx, &out)?;

        // Register the route before committing, so a full arena sends nothing.
        let mut route_handle = None;
        if makes_route {
            let handle = existing
                .and_then(|i| self.routes.items().get(i).map(|r| r.handle))
                .unwrap_or(id);
            let strs: [Option<&str>; N_ROUTE_STRS] = [
                out.sub_id,
                if kind.is_sow_query() {
                    out.query_id
                } else {
                    None
                },
                out.topic,
                out.filter,
                out.options,
                route_bookmark,
                out.order_by,
                out.sow_keys,
            ];
            if let Some(i) = existing
                && let Some(old) = self.routes.swap_remove_at(i)
            {
                self.free_route_block(&old);
            }
            let (off, lens) = arena_alloc(self.arena.as_mut(), &mut self.arena_end, &strs)
                .ok_or(CommandError::TooLarge)?;
            let mut flags = 0;
            if exec.resubscribe && kind.is_subscribe() {
                flags |= RESUBSCRIBE;
            }
            if kind == CommandKind::Sow {
                flags |= QUERY_ONLY;
            }
            if out.bookmark.is_some() && kind.is_subscribe() && self.bstore.is_enabled() {
                flags |= BOOKMARKS;
            }
            let route = Route {
                delivered: 0,
                id,
                handle,
                kind,
                off,
                lens,
                batch_size: out.batch_size,
                top_n: out.top_n,
                acks: cmd.ack,
                timeout: cmd.timeout,
                flags,
                backlog: 0,
            };
            if self.routes.try_push(route).is_err() {
                self.free_route_block(&route);
                return Err(CommandError::TooManyCommands);
            }
            route_handle = Some(handle);
        }
        if kind == CommandKind::Unsubscribe {
            self.drop_routes(out.sub_id.unwrap_or(""), out.query_id.unwrap_or(""));
        }
        self.tx.commit(n);
        self.next_cid += 1;
        if !waiting.is_empty() {
            // The limit covers the whole wait: to the `processed` ack for subscriptions and
            // queries (their results then flow), to completion for every other command.
            let deadline = cmd.timeout.or(self.command_timeout).map(|t| now + t);
            let pushed = self.pending.try_push(Pending {
                id,
                report: route_handle.unwrap_or(id),
                kind,
                waiting,
                forward: cmd.ack,
                deadline,
                route: route_handle,
                internal: false,
                flush_store: false,
                processed: false,
            });
            if pushed.is_err() {
                // Cannot happen (capacity is checked first); never lose track of a command.
                self.queue.push(super::Queued::Failed(
                    route_handle.unwrap_or(id),
                    CommandError::TooManyCommands,
                ));
            }
        } else {
            self.queue
                .push(super::Queued::Completed(id, Default::default()));
        }
        Ok(route_handle.unwrap_or(id))
    }

    /// Remove routes named by an unsubscribe (`all`, or comma lists of sub/query ids).
    fn drop_routes(&mut self, sub_ids: &str, query_ids: &str) {
        let all = sub_ids.trim() == "all";
        let mut i = 0;
        while i < self.routes.items().len() {
            let arena = self.arena.as_ref();
            let hit = self.routes.items().get(i).is_some_and(|r| {
                let sid = r.str(arena, rs::SUB_ID);
                let qid = r.str(arena, rs::QUERY_ID);
                all || sid.is_some_and(|s| sub_ids.split(',').any(|x| x.trim() == s))
                    || qid.is_some_and(|q| query_ids.split(',').any(|x| x.trim() == q))
            });
            if hit {
                if let Some(r) = self.routes.swap_remove_at(i) {
                    if r.has(BOOKMARKS) {
                        // The application ended the subscription: its resume state stays in the
                        // store (a later bookmark subscription with the same sub_id resumes).
                    }
                    self.free_route_block(&r);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Unsubscribe the subscription or query `handle` (Python client: `unsubscribe(sub_id)`).
    pub(super) fn unsubscribe(
        &mut self,
        now: Instant,
        handle: CommandId,
    ) -> Result<CommandId, CommandError> {
        let Some(i) = self.routes.items().iter().position(|r| r.handle == handle) else {
            return Err(CommandError::Failed {
                kind: super::FailureKind::Other,
                reason: super::ReasonText::new("no such subscription"),
            });
        };
        let mut key = crate::util::FixedStr::<256>::EMPTY;
        let mut is_query = false;
        if let Some(r) = self.routes.items().get(i) {
            let arena = self.arena.as_ref();
            let s = r.str(arena, rs::SUB_ID).or_else(|| {
                is_query = true;
                r.str(arena, rs::QUERY_ID)
            });
            key = crate::util::FixedStr::new(s.unwrap_or("")).unwrap_or_default();
        }
        let cmd = if is_query {
            Command::new(CommandKind::Unsubscribe).query_id(key.as_str())
        } else {
            Command::unsubscribe(key.as_str())
        };
        self.execute(now, &cmd)
    }

    /// The sub_id (or query_id) of a route, for the application.
    pub(super) fn route_key(&self, handle: CommandId) -> Option<&str> {
        let r = self.routes.items().iter().find(|r| r.handle == handle)?;
        r.str(self.arena.as_ref(), rs::SUB_ID)
            .or_else(|| r.str(self.arena.as_ref(), rs::QUERY_ID))
    }

    pub(super) fn route_by_key(&self, which: usize, key: &str) -> Option<usize> {
        let arena = self.arena.as_ref();
        self.routes
            .items()
            .iter()
            .position(|r| r.str(arena, which) == Some(key))
    }

    /// Send a sequenced command (publish, delta_publish, sow_delete) through the publish store
    /// when there is one; see [`Session::publish`]. Application acks other than `persisted`
    /// need a command id: use [`Session::execute`] for those.
    pub(super) fn publish_command(
        &mut self,
        now: Instant,
        cmd: &Command<'_>,
    ) -> Result<Option<u64>, PublishError> {
        let _ = now;
        if self.state == State::Shutdown {
            return Err(PublishError::Shutdown);
        }
        if !self.pstore.is_enabled() {
            if !self.is_logged_on() {
                return Err(PublishError::NotConnected);
            }
            let cmd = cmd.clear_seq();
            return match encode_into(&mut self.tx, &cmd) {
                Ok(n) => {
                    self.tx.commit(n);
                    Ok(None)
                }
                Err(CommandError::WouldBlock) => Err(PublishError::WouldBlock),
                Err(_) => Err(PublishError::TooLarge),
            };
        }
        if !self.seq_known {
            return Err(PublishError::NotConnected);
        }
        let seq = self.next_seq;
        let cmd = cmd
            .seq(seq)
            .acks(cmd.ack.with(AckType::Persisted))
            .clear_command_id();
        // Encode into the transmit buffer's free space; it is committed only if it can go out
        // now, otherwise the store keeps it and `pump` sends it in order.
        let n = match encode_into(&mut self.tx, &cmd) {
            Ok(n) => n,
            Err(CommandError::WouldBlock) => return Err(PublishError::WouldBlock),
            Err(_) => return Err(PublishError::TooLarge),
        };
        if !self.pstore.has_room(n) {
            return Err(PublishError::WindowFull);
        }
        let frame = self.tx.staged(n);
        match self.pstore.store(seq, frame) {
            Ok(()) => {}
            Err(super::StoreError::Full) => return Err(PublishError::WindowFull),
            Err(super::StoreError::TooLarge) => return Err(PublishError::TooLarge),
            Err(e) => return Err(PublishError::Store(e)),
        }
        self.next_seq += 1;
        if self.is_logged_on() && self.recovery == super::Recovery::Idle && self.sent_seq + 1 == seq
        {
            self.tx.commit(n);
            self.sent_seq = seq;
        }
        Ok(Some(seq))
    }

    /// Flush and wait for the publish store to drain (Python client: `publish_flush(timeout)`):
    /// [`super::Event::Completed`] once the flush is acked and nothing is unpersisted, or
    /// [`super::Event::Failed`] with `TimedOut` after `timeout`.
    pub(super) fn publish_flush(
        &mut self,
        now: Instant,
        timeout: crate::time::Duration,
    ) -> Result<CommandId, CommandError> {
        if self.pstore.is_enabled() && self.pstore.unpersisted_count() == 0 {
            // Nothing to wait for: complete at once (also while disconnected).
            let id = self.new_id();
            self.queue
                .push(super::Queued::Completed(id, Default::default()));
            return Ok(id);
        }
        // `processed` reports a refused flush; it is requested on the wire like every ack the
        // command waits for, since a server sends only requested acks (docs/protocol.md §5.1).
        let acks = if self.pstore.is_enabled() {
            AckTypes::of(AckType::Persisted)
        } else {
            AckTypes::of(AckType::Completed)
        }
        .with(AckType::Processed);
        let id = self.execute(now, &Command::flush().acks(acks).timeout(timeout))?;
        if let Some(p) = self.pending.items_mut().iter_mut().find(|p| p.id == id) {
            p.flush_store = true;
            p.forward = AckTypes::NONE;
            // The limit covers the whole wait, not only the first ack.
            p.deadline = Some(now + timeout);
        }
        Ok(id)
    }

    /// Acknowledge a queue message (docs/protocol.md §11; Python client: `message.ack()`): `Ack` is
    /// batched up to the configured batch size, capped by the subscription's backlog, and flushed
    /// by size or after the ack timeout; `Cancel` and `Expire` go out at once. No effect for
    /// messages that are not from a queue subscription.
    pub(super) fn ack(
        &mut self,
        now: Instant,
        route: CommandId,
        topic: &str,
        bookmark: &str,
        how: AckHow,
    ) -> Result<(), CommandError> {
        let Some(r) = self
            .routes
            .items()
            .iter()
            .find(|r| r.handle == route)
            .copied()
        else {
            return Ok(());
        };
        if !r.has(QUEUE) {
            return Ok(());
        }
        self.ack_queue_message(now, r.backlog, topic, bookmark, how)
    }

    /// Acknowledge a queue message by topic and bookmark, without its subscription (the
    /// Python client's `Client.ack(topic, bookmark)`): batched like [`Core::ack`], capped by
    /// the backlog of a queue subscription to `topic` if there is one.
    pub(super) fn ack_by_topic(
        &mut self,
        now: Instant,
        topic: &str,
        bookmark: &str,
        how: AckHow,
    ) -> Result<(), CommandError> {
        let arena = self.arena.as_ref();
        let backlog = self
            .routes
            .items()
            .iter()
            .find(|r| r.has(QUEUE) && r.str(arena, rs::TOPIC) == Some(topic))
            .map_or(0, |r| r.backlog);
        self.ack_queue_message(now, backlog, topic, bookmark, how)
    }

    fn ack_queue_message(
        &mut self,
        now: Instant,
        backlog: u32,
        topic: &str,
        bookmark: &str,
        how: AckHow,
    ) -> Result<(), CommandError> {
        if bookmark.is_empty() {
            return Ok(());
        }
        if how != AckHow::Ack {
            let opt = if how == AckHow::Cancel {
                "cancel"
            } else {
                "expire"
            };
            let cmd = Command::sow_delete_by_bookmarks(topic, bookmark).options(opt);
            let n = encode_into(&mut self.tx, &cmd)?;
            self.tx.commit(n);
            return Ok(());
        }
        // A `sow_delete` must fit the transmit buffer whole; beyond that a batch could never go.
        let max = self.tx.capacity().saturating_sub(SOW_DELETE_OVERHEAD);
        if !self.acks.push(topic, bookmark, max) {
            // Another topic's batch, or no room: send what is batched first.
            self.flush_acks(now);
            if self.acks.count > 0 {
                if self.is_logged_on() {
                    return Err(CommandError::WouldBlock);
                }
                // Not sent on this connection, and moot on the next (the server delivers the
                // messages again).
                self.acks.clear();
            }
            if !self.acks.push(topic, bookmark, max) {
                // Longer than the whole batch buffer: on its own.
                let cmd = Command::sow_delete_by_bookmarks(topic, bookmark);
                let n = encode_into(&mut self.tx, &cmd)?;
                self.tx.commit(n);
                return Ok(());
            }
        }
        self.acks.target = match backlog {
            0 => self.ack_batch_size,
            b => self.ack_batch_size.min(b),
        };
        if self.acks.count >= self.acks.target {
            self.flush_acks(now);
        } else if self.ack_flush_at.is_none() {
            self.ack_flush_at = Some(now + self.ack_timeout);
        }
        Ok(())
    }

    /// Send the batched queue acks now.
    pub(super) fn flush_acks(&mut self, now: Instant) {
        if self.acks.count == 0 {
            self.ack_flush_at = None;
            return;
        }
        if !self.is_logged_on() {
            return;
        }
        let cmd = Command::sow_delete_by_bookmarks(self.acks.topic(), self.acks.bookmarks());
        match encode_into(&mut self.tx, &cmd) {
            Ok(n) => {
                self.tx.commit(n);
                self.acks.clear();
                self.ack_flush_at = None;
            }
            // Retried when the transmit buffer drains (poll_transmit pumps) or at the timeout.
            Err(_) => self.ack_flush_at = Some(now),
        }
    }

    /// The application processed a message of a bookmark subscription (Python client: `discard()`):
    /// the resume point may advance past it.
    pub(super) fn discard(
        &mut self,
        route: CommandId,
        bookmark: &str,
    ) -> Result<(), super::StoreError> {
        let Some(r) = self.routes.items().iter().find(|r| r.handle == route) else {
            return Ok(());
        };
        let Some(sub) = r.str(self.arena.as_ref(), rs::SUB_ID) else {
            return Ok(());
        };
        self.bstore.discard(sub, bookmark)
    }
}
