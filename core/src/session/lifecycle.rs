//! Connecting, logon, recovery (publish replay, resubscription), heartbeats, timers and
//! disconnects (docs/protocol.md §8, §9; Python client: HAClient reconnect steps, connection
//! states).

use crate::codec::{AckStats, AckType, Command, CommandKind, MessageRef, options};
use crate::ha::DelayStrategy;
use crate::store::{BookmarkStore, PublishStore};
use crate::time::Instant;

use super::tables::{BOOKMARKS, Pending, RESUBSCRIBE, Route, rs};
use super::{
    CommandError, ConnectRequest, ConnectionState, Core, FailureKind, Logon, Queued, ReasonText,
    Recovery, SessionError, State, Storage, Table,
};

impl<S: Storage> Core<S> {
    /// Ask `poll_connect` for a connection now (the HA client's `connect_and_logon`). Clears a
    /// halt after a failed logon or `disconnect`.
    pub(super) fn start(&mut self, now: Instant) {
        if self.state == State::Shutdown {
            return;
        }
        self.halted = false;
        if self.state == State::Disconnected {
            self.next_attempt = Some(now);
        }
    }

    /// Whether the adapter should open a transport now. Returns a request at most once per
    /// attempt; answer it with [`Session::handle_connected`] or
    /// [`Session::handle_connect_failed`].
    pub(super) fn poll_connect(&mut self, now: Instant) -> Option<ConnectRequest> {
        if self.state != State::Disconnected || self.halted {
            return None;
        }
        let at = self.next_attempt?;
        if now < at {
            return None;
        }
        self.next_attempt = None;
        self.state = State::Connecting;
        self.attempt += 1;
        Some(ConnectRequest {
            attempt: self.attempt,
        })
    }

    /// Opening the transport failed: schedule the next attempt (or give up).
    pub(super) fn handle_connect_failed(&mut self, now: Instant) {
        if matches!(self.state, State::Connecting | State::Disconnected) {
            self.state = State::Disconnected;
            self.schedule_reconnect(now);
        }
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        if self.halted || !self.reconnect.reconnects() {
            return;
        }
        let since = *self.outage_start.get_or_insert(now);
        if self.reconnect == crate::ha::ReconnectPolicy::External {
            self.queue.push(Queued::ReconnectDelay(now - since));
            return;
        }
        match self.reconnect.next_delay(now - since, self.rng.next_u64()) {
            Some(d) => self.next_attempt = Some(now + d),
            None => {
                crate::log::warning!("amps: gave up reconnecting after {} attempts", self.attempt);
                self.queue.push(Queued::Error(SessionError::GaveUp));
                self.shutdown_now();
            }
        }
    }

    /// The adapter's answer to [`super::Event::ReconnectDelay`]: try again after `delay`, or
    /// give up (`None`: the session shuts down with [`SessionError::GaveUp`]).
    pub(super) fn handle_reconnect_delay(
        &mut self,
        now: Instant,
        delay: Option<crate::time::Duration>,
    ) {
        if self.state != State::Disconnected || self.halted {
            return;
        }
        match delay {
            Some(d) => self.next_attempt = Some(now + d),
            None => {
                crate::log::warning!("amps: gave up reconnecting after {} attempts", self.attempt);
                self.queue.push(Queued::Error(SessionError::GaveUp));
                self.shutdown_now();
            }
        }
    }

    /// The transport is open: send the logon (docs/protocol.md §6.1). Returns the logon command's
    /// id; its outcome arrives as [`super::Event::Completed`] or [`super::Event::Failed`].
    pub(super) fn handle_connected(
        &mut self,
        now: Instant,
        logon: &Logon<'_>,
    ) -> Result<CommandId, CommandError> {
        match self.state {
            State::Shutdown => return Err(CommandError::Shutdown),
            State::Disconnected | State::Connecting => {}
            _ => {
                return Err(CommandError::Failed {
                    kind: FailureKind::Other,
                    reason: ReasonText::new("already connected"),
                });
            }
        }
        self.generation = self.generation.wrapping_add(1);
        self.rx_reset = true;
        self.tx.clear();
        self.closing = false;
        self.acks.clear();
        self.ack_flush_at = None;
        self.state = State::LoggingOn;
        self.hb_deadline = None;
        self.hb_send = None;
        self.queue.push(Queued::State(ConnectionState::Connected));
        // Kept for a logon sent again; values too long for the table are sent the first time
        // only (the server refuses them anyway).
        self.logon_mt =
            crate::util::FixedStr::new(logon.message_type.unwrap_or("")).unwrap_or_default();
        self.logon_extra =
            crate::util::FixedStr::new(logon.options.unwrap_or("")).unwrap_or_default();
        self.logon_user =
            crate::util::FixedStr::new(logon.user_id.unwrap_or("")).unwrap_or_default();
        self.logon_sends = 0;
        self.tx_hold = None;
        // The limit covers every logon of this connection, challenges answered included.
        self.logon_deadline = Some(now + self.logon_timeout);
        self.send_logon(logon.user_id, logon.password)
    }

    fn send_logon(
        &mut self,
        user_id: Option<&str>,
        password: Option<&str>,
    ) -> Result<CommandId, CommandError> {
        let id = self.new_id();
        let mut cid = itoa::Buffer::new();
        let mut opts = crate::util::FixedStr::<256>::EMPTY;
        for o in [self.logon_options.as_str(), self.logon_extra.as_str()] {
            if !o.is_empty() {
                // Both fit: each is at most 128 bytes (a comma between).
                let _ = (opts.is_empty() || opts.push_str(",")) && opts.push_str(o);
            }
        }
        let mut cmd = Command::logon(self.client_name.as_str())
            .command_id(cid.format(id.cid))
            .version(self.version.as_str());
        if let Some(u) = user_id {
            cmd = cmd.user_id(u);
        }
        if let Some(p) = password {
            cmd = cmd.password(p);
        }
        if !self.logon_mt.is_empty() {
            cmd = cmd.message_type(self.logon_mt.as_str());
        }
        if !opts.is_empty() {
            cmd = cmd.options(opts.as_str());
        }
        self.tx.push_cmd(&cmd)?;
        // A retry replaces the previous logon entry.
        if let Some(old) = self.logon_id.take() {
            self.remove_pending(old);
        }
        let pushed = self.pending.try_push(Pending {
            id,
            report: id,
            kind: CommandKind::Logon,
            waiting: AckType::Processed.into(),
            forward: crate::codec::AckTypes::NONE,
            deadline: None,
            route: None,
            internal: true,
            flush_store: false,
            processed: false,
        });
        // The slot `execute_with` keeps free guarantees room; never send an untracked logon.
        if pushed.is_err() {
            return Err(CommandError::TooManyCommands);
        }
        self.logon_id = Some(id);
        self.logon_sends += 1;
        Ok(id)
    }

    /// Answer a [`super::Event::LogonRetry`] challenge with the authenticator's credential.
    pub(super) fn handle_logon_retry(
        &mut self,
        now: Instant,
        user_id: Option<&str>,
        password: &str,
    ) -> Result<CommandId, CommandError> {
        if self.state != State::LoggingOn {
            return Err(CommandError::NotConnected);
        }
        // A server that answers every logon with `retry` is answered ever more slowly (50 ms,
        // doubling to 1 s) and the logon fails at its deadline: the first answer (a genuine
        // challenge) goes at once.
        if self.logon_sends >= 2 {
            let exp = (self.logon_sends - 2).min(5);
            let wait = crate::time::Duration::from_millis(50u64 << exp)
                .min(crate::time::Duration::from_secs(1));
            self.tx_hold = Some(now + wait);
        }
        // The same user as the first logon unless the challenge names another.
        let user = self.logon_user;
        let user_id = user_id.or((!user.is_empty()).then_some(user.as_str()));
        self.send_logon(user_id, Some(password))
    }

    /// The logon ack arrived with status `success` (called from inbound processing).
    pub(super) fn logon_succeeded(&mut self, now: Instant, msg: &MessageRef<'_>) {
        crate::log::debug!(
            "amps: logged on, generation {}, server seq {}",
            self.generation,
            msg.seq().unwrap_or(0)
        );
        let server_seq = msg.seq().unwrap_or(0);
        if let Some(known) = self.publish_gap(server_seq) {
            // The kind says "publish gap"; the text gives the two sequence numbers.
            let mut why = crate::util::FixedStr::<96>::EMPTY;
            let (mut a, mut b) = (itoa::Buffer::new(), itoa::Buffer::new());
            // 70 bytes at most: it fits.
            for part in [
                "server persisted ",
                a.format(server_seq),
                ", client saw ",
                b.format(known),
            ] {
                why.push_str(part);
            }
            self.logon_failed(
                now,
                CommandError::Failed {
                    kind: FailureKind::PublishGap,
                    reason: super::ReasonText::new(why.as_str()),
                },
            );
            return;
        }
        self.logon_deadline = None;
        self.server_version =
            crate::util::FixedStr::new(msg.version().unwrap_or("")).unwrap_or_default();
        self.state = State::Recovering;
        self.attempt = 0;
        self.outage_start = None;
        self.reconnect.reset();
        // Publish store reconciliation (docs/protocol.md §8.4): drop what the server has, replay
        // the rest, continue numbering after the larger of the two.
        if self.pstore.is_enabled() {
            self.persisted_seq = self.persisted_seq.max(server_seq);
            let stored = self.pstore.unpersisted_count();
            self.pstore.discard_up_to(server_seq);
            if self.pstore.unpersisted_count() < stored {
                // The server has publishes the store still held: they are persisted, and
                // whoever counts `Persisted` events must hear it, as from an ack.
                self.queue.push(Queued::Persisted(server_seq));
            }
            self.next_seq = server_seq
                .max(self.pstore.last_seq())
                .max(self.next_seq.saturating_sub(1))
                + 1;
        } else {
            self.next_seq = server_seq + 1;
        }
        self.seq_known = true;
        self.sent_seq = server_seq;
        self.queue.push(Queued::State(ConnectionState::LoggedOn));
        if let Some(id) = self.logon_id.take() {
            self.remove_pending(id);
            self.queue.push(Queued::Completed(id, AckStats::default()));
        }
        if let Some(hb) = self.heartbeat {
            let cmd = Command::heartbeat_start(u64::from(hb.interval_secs));
            let _ = self.tx.push_cmd(&cmd);
            let every = crate::time::Duration::from_secs(u64::from(hb.interval_secs));
            self.hb_send = Some(now + every);
            self.hb_deadline = Some(now + hb.timeout);
            self.queue
                .push(Queued::State(ConnectionState::HeartbeatInitiated));
        }
        self.recovery = Recovery::Replay;
        self.pump(now);
    }

    /// With `error_on_publish_gap`: the highest sequence number this client knows persisted,
    /// when the server (which persisted up to `server_seq`) has not got that far. Known
    /// persisted: what acks and earlier logons said, and what the store no longer holds
    /// (everything below its first message; all it ever stored when it is empty).
    fn publish_gap(&mut self, server_seq: u64) -> Option<u64> {
        if !self.error_on_publish_gap || !self.pstore.is_enabled() {
            return None;
        }
        let from_store = match self.pstore.next_after(0) {
            Some((first, _)) => first.saturating_sub(1),
            None => self.pstore.last_seq(),
        };
        let known = self.persisted_seq.max(from_store);
        (server_seq < known).then_some(known)
    }

    /// The logon failed: report it and end the connection. A refusal of the credentials
    /// (authentication, name in use, not entitled) stops reconnecting: retrying with the same
    /// credentials cannot help (docs/protocol.md §8.2). Anything else (a timeout, another reason)
    /// is an ordinary lost connection and the reconnect policy applies.
    pub(super) fn logon_failed(&mut self, now: Instant, error: CommandError) {
        crate::log::warning!("amps: logon failed, generation {}", self.generation);
        if let Some(id) = self.logon_id.take() {
            self.remove_pending(id);
            self.queue.push(Queued::Failed(id, error));
        }
        let refused = matches!(
            error,
            CommandError::Failed {
                kind: FailureKind::Authentication
                    | FailureKind::NameInUse
                    | FailureKind::NotEntitled,
                ..
            }
        );
        if refused {
            self.halted = true;
        }
        self.end_connection(now, true);
    }

    /// Send what recovery and the publish store have queued, as far as the transmit buffer
    /// allows: replay first (docs/protocol.md §8.4), then resubscriptions (Python client: HAClient
    /// steps).
    pub(super) fn pump(&mut self, now: Instant) {
        if !self.is_logged_on() {
            return;
        }
        if self.pstore.is_enabled() {
            while let Some((seq, frame)) = self.pstore.next_after(self.sent_seq) {
                if !self.tx.append(frame) {
                    return;
                }
                self.sent_seq = seq;
            }
        }
        if self.recovery == Recovery::Replay {
            if self.pstore.is_enabled() {
                self.queue
                    .push(Queued::State(ConnectionState::PublishReplayed));
            }
            self.recovery = Recovery::Resubscribe { next: 0 };
        }
        if let Recovery::Resubscribe { mut next } = self.recovery {
            while next < self.routes.items().len() {
                match self.resubscribe_route(now, next) {
                    Ok(()) => next += 1,
                    Err(CommandError::WouldBlock) => {
                        self.recovery = Recovery::Resubscribe { next };
                        return;
                    }
                    Err(e) => {
                        // The route cannot be re-entered (e.g. tables full): end it, say why.
                        if let Some(r) = self.routes.swap_remove_at(next) {
                            self.free_route_block(&r);
                            self.queue.push(Queued::Failed(r.handle, e));
                        }
                    }
                }
            }
            if self.resubscribe {
                self.queue
                    .push(Queued::State(ConnectionState::Resubscribed));
            }
            self.recovery = Recovery::Idle;
            self.state = State::Ready;
        }
        if self.acks.count > 0 && self.ack_flush_at.is_some_and(|t| t <= now) {
            self.flush_acks(now);
        }
    }

    /// Re-enter route `i` with a new command id (bookmark subscriptions from MOST_RECENT).
    fn resubscribe_route(&mut self, now: Instant, i: usize) -> Result<(), CommandError> {
        let Some(route) = self.routes.items().get(i).copied() else {
            return Ok(());
        };
        if self.pending.items().len() >= self.limits.max_commands {
            return Err(CommandError::TooManyCommands);
        }
        let id = CommandId {
            generation: self.generation,
            cid: self.next_cid,
        };
        let mut cid = itoa::Buffer::new();
        let mut bm_buf = [0u8; crate::store::MAX_RESUME_POINT];
        let arena = self.arena.as_ref();
        let get = |k| route.str(arena, k);
        let mut opts = options::Options::<512>::new();
        for o in options::OptionsIter::new(get(rs::OPTIONS).unwrap_or("")) {
            if o.key == "replace" {
                continue;
            }
            let r = match o.value {
                Some(v) => opts.kv(o.key, v),
                None => opts.flag(o.key),
            };
            r.map_err(|_| CommandError::TooLarge)?;
        }
        let mut bookmark = get(rs::BOOKMARK);
        if route.has(BOOKMARKS)
            && let Some(sub) = get(rs::SUB_ID)
        {
            let recent = self
                .bstore
                .most_recent(sub, &mut bm_buf)
                .map_err(|_| CommandError::TooLarge)?;
            bookmark = Some(if recent.is_empty() {
                match bookmark {
                    Some(crate::codec::bookmark::MOST_RECENT) | None => {
                        crate::codec::bookmark::EPOCH
                    }
                    Some(b) => b,
                }
            } else {
                recent
            });
        }
        let mut cmd = Command::new(route.kind)
            .command_id(cid.format(id.cid))
            .acks(route.acks.with(AckType::Processed));
        macro_rules! opt {
            ($k:expr, $m:ident) => {
                if let Some(v) = get($k) {
                    cmd = cmd.$m(v);
                }
            };
        }
        opt!(rs::SUB_ID, sub_id);
        opt!(rs::QUERY_ID, query_id);
        opt!(rs::TOPIC, topic);
        opt!(rs::FILTER, filter);
        opt!(rs::ORDER_BY, order_by);
        opt!(rs::SOW_KEYS, sow_keys);
        if let Some(b) = bookmark {
            cmd = cmd.bookmark(b);
        }
        if !opts.is_empty() {
            cmd = cmd.options(opts.as_str());
        }
        if let Some(bs) = route.batch_size {
            cmd = cmd.batch_size(bs);
        }
        if let Some(n) = route.top_n {
            cmd = cmd.top_n(n);
        }
        let n = match self.tx.stage(&cmd) {
            Ok(n) => n,
            Err(crate::codec::EncodeError::BufferTooSmall { needed })
                if needed <= self.tx.capacity() =>
            {
                return Err(CommandError::WouldBlock);
            }
            Err(e) => return Err(e.into()),
        };
        self.tx.commit(n);
        self.next_cid += 1;
        let deadline = route.timeout.or(self.command_timeout).map(|t| now + t);
        // Reported under the route's handle: an application still waiting for the first
        // subscription's `processed` ack gets it from the re-entry.
        let pushed = self.pending.try_push(Pending {
            id,
            report: route.handle,
            kind: route.kind,
            waiting: AckType::Processed.into(),
            forward: crate::codec::AckTypes::NONE,
            deadline,
            route: Some(route.handle),
            internal: false,
            flush_store: false,
            processed: false,
        });
        if pushed.is_err() {
            return Err(CommandError::TooManyCommands);
        }
        if let Some(r) = self.routes.items_mut().get_mut(i) {
            r.id = id;
        }
        Ok(())
    }

    /// The transport closed; `more` says whether complete frames are still to be processed
    /// (then the disconnect is finalised once they are drained).
    pub(super) fn handle_closed(&mut self, now: Instant, more: bool) {
        if self.state == State::Connecting {
            self.state = State::Disconnected;
            self.schedule_reconnect(now);
        } else if self.is_connected() {
            self.closing = true;
            if !more {
                self.end_connection(now, false);
            }
        }
    }

    /// End the connection: the session decided (`tell_adapter`) or the transport closed.
    pub(super) fn end_connection(&mut self, now: Instant, tell_adapter: bool) {
        if !self.is_connected() && self.state != State::Connecting {
            return;
        }
        if tell_adapter {
            self.queue.push(Queued::CloseTransport);
        }
        crate::log::debug!("amps: connection {} ended", self.generation);
        self.state = State::Disconnected;
        self.closing = false;
        self.rx_reset = true;
        self.tx.clear();
        self.hb_send = None;
        self.hb_deadline = None;
        self.logon_deadline = None;
        self.ack_flush_at = None;
        self.acks.clear();
        self.recovery = Recovery::Idle;
        self.logon_id = None;
        self.queue
            .push(Queued::State(ConnectionState::Disconnected));
        // Pending commands will never complete: fail them (one event per poll_event).
        self.failing = Some((CommandError::Disconnected, self.generation));
        // Streams end with the connection; async subscriptions stay to be re-entered.
        let mut i = 0;
        while i < self.routes.items().len() {
            let keep = self.resubscribe
                && self
                    .routes
                    .items()
                    .get(i)
                    .is_some_and(|r| r.has(RESUBSCRIBE));
            if keep {
                i += 1;
            } else if let Some(r) = self.routes.swap_remove_at(i) {
                self.free_route_block(&r);
            }
        }
        self.schedule_reconnect(now);
    }

    /// Close the connection and stop reconnecting (Python client: `disconnect()`); `start` resumes.
    pub(super) fn disconnect(&mut self, now: Instant) {
        self.halted = true;
        self.next_attempt = None;
        self.end_connection(now, true);
    }

    /// Close for good (Python client: `close()`): the connection ends, nothing reconnects, every
    /// command fails, [`ConnectionState::Shutdown`] is reported.
    pub(super) fn close(&mut self, now: Instant) {
        self.halted = true;
        self.end_connection(now, true);
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if self.state == State::Shutdown {
            return;
        }
        if self.is_connected() {
            self.queue.push(Queued::CloseTransport);
            self.queue
                .push(Queued::State(ConnectionState::Disconnected));
        }
        self.state = State::Shutdown;
        self.next_attempt = None;
        self.failing = Some((CommandError::Shutdown, u32::MAX));
        while let Some(r) = self.routes.swap_remove_at(0) {
            self.free_route_block(&r);
        }
        self.queue.push(Queued::State(ConnectionState::Shutdown));
    }

    /// The adapter's chooser has no server: stop reconnecting and shut down.
    pub(super) fn handle_give_up(&mut self, now: Instant) {
        let _ = now;
        self.queue.push(Queued::Error(SessionError::GaveUp));
        self.shutdown_now();
    }

    /// Timers that are due fire: heartbeats, the heartbeat deadline, the logon timeout, command
    /// timeouts, the queue-ack batch. Spurious calls are no-ops.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        if self.logon_deadline.is_some_and(|t| t <= now) && self.state == State::LoggingOn {
            self.logon_deadline = None;
            self.logon_failed(now, CommandError::TimedOut);
            return;
        }
        if self.hb_deadline.is_some_and(|t| t <= now) && self.is_logged_on() {
            // No complete frame for the whole timeout: the connection is dead (docs/protocol.md
            // §9).
            self.queue.push(Queued::Error(SessionError::Silent));
            self.end_connection(now, true);
            return;
        }
        if let (Some(t), Some(hb)) = (self.hb_send, self.heartbeat)
            && t <= now
            && self.is_logged_on()
        {
            self.send_beat();
            self.hb_send =
                Some(now + crate::time::Duration::from_secs(u64::from(hb.interval_secs)));
        }
        if self.ack_flush_at.is_some_and(|t| t <= now) {
            self.flush_acks(now);
        }
        if self
            .pending
            .items()
            .iter()
            .any(|p| p.deadline.is_some_and(|d| d <= now))
        {
            self.timeouts_due = Some(now);
        }
    }

    /// A server heartbeat arrived. docs/protocol.md §9 has the client answer every one, and §17.11
    /// has servers answer every client beat: together they would ping-pong forever. Our
    /// convention: answer unless a beat went out within the last half interval (any traffic
    /// proves liveness to the server anyway).
    pub(super) fn answer_heartbeat(&mut self) {
        let Some(hb) = self.heartbeat else {
            self.send_beat();
            return;
        };
        let half = crate::time::Duration::from_millis(u64::from(hb.interval_secs) * 500);
        if self.last_beat.is_none_or(|t| self.now - t >= half) {
            self.send_beat();
        }
    }

    pub(super) fn send_beat(&mut self) {
        self.last_beat = Some(self.now);
        let _ = self.tx.push_cmd(&Command::heartbeat_beat());
    }

    /// The earliest time `handle_timeout` (or `poll_connect`) has work.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        consider(
            self.logon_deadline
                .filter(|_| self.state == State::LoggingOn),
        );
        if self.is_logged_on() {
            consider(self.hb_deadline);
            consider(self.hb_send);
        }
        consider(self.ack_flush_at);
        consider(
            self.next_attempt
                .filter(|_| self.state == State::Disconnected && !self.halted),
        );
        for p in self.pending.items() {
            consider(p.deadline);
        }
        consider(self.tx_hold);
        t
    }

    /// Copy pending outgoing bytes into `out`. Returns `None` when there is nothing to send;
    /// never `Some(0)`. Remembers its place inside a frame. Transmitting frees space, so this
    /// also sends what was waiting for it (publish replay, resubscriptions, queue acks).
    pub(super) fn poll_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<usize> {
        if !self.ready_to_transmit(now) {
            return None;
        }
        let n = self.tx.drain_into(out);
        if n == 0 { None } else { Some(n) }
    }

    pub(super) fn transmit_buffer(&mut self, now: Instant) -> &[u8] {
        if !self.ready_to_transmit(now) {
            return &[];
        }
        self.tx.pending_bytes()
    }

    /// Whether bytes may go out now; refills an empty transmit buffer first.
    fn ready_to_transmit(&mut self, now: Instant) -> bool {
        if !self.is_connected() {
            return false;
        }
        if let Some(t) = self.tx_hold {
            if now < t {
                return false;
            }
            self.tx_hold = None;
        }
        if self.tx.pending() == 0 {
            self.pump(now);
        }
        true
    }

    pub(super) fn remove_pending(&mut self, id: CommandId) -> Option<Pending> {
        let i = self.pending.items().iter().position(|p| p.id == id)?;
        self.pending.swap_remove_at(i)
    }

    pub(super) fn free_route_block(&mut self, r: &Route) {
        let len = r.block_len();
        super::tables::arena_free(
            self.arena.as_mut(),
            &mut self.arena_end,
            self.routes.items_mut(),
            r.off,
            len,
        );
    }
}

use super::CommandId;
