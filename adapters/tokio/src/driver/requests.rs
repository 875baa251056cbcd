//! Requests from the user handles: lifecycle (`Ctl`, never waits behind publishes), ordered
//! commands (`Cmd`, after every publish staged before them), staged publishes, and the
//! control inbox (queue acks, discards, dropped streams).

use std::sync::Arc;

use amps_core::codec::{AckType, Command, CommandKind};
use amps_core::error_kind::ErrorKind;
use amps_core::ha::Authenticator;
use amps_core::session::{CommandError, Exec, HeartbeatConfig, Logon, PublishError, State};
use amps_core::uri::Uri;
use amps_core::{Duration, Instant};
use tokio::sync::oneshot;

use super::{CMDS_PER_TURN, Driver, Entry};
use crate::command::OwnedCommand;
use crate::error::{Error, Result};
use crate::events::ClientEvent;
use crate::shared::{Control, REC_DELTA, read_record};
use crate::stream::StreamShared;

/// Lifecycle and settings requests: handled at once, even while publishes wait.
pub(crate) enum Ctl {
    Connect {
        uri: String,
        reply: oneshot::Sender<Result<()>>,
    },
    Logon {
        auth: Option<Box<dyn Authenticator + Send>>,
        reply: oneshot::Sender<Result<()>>,
    },
    ConnectAndLogon {
        reply: oneshot::Sender<Result<()>>,
    },
    Disconnect {
        reply: oneshot::Sender<Result<()>>,
    },
    Close {
        reply: oneshot::Sender<Result<()>>,
    },
    Heartbeat {
        hb: Option<HeartbeatConfig>,
        reply: oneshot::Sender<Result<()>>,
    },
    AckBatch(u32),
    AckTimeout(Duration),
    /// Make the stores durable now, and prune the bookmark store when asked.
    Stores {
        prune: bool,
        reply: oneshot::Sender<Result<()>>,
    },
}

/// Commands, in order with the publishes staged before them.
pub(crate) enum Cmd {
    Execute {
        cmd: Box<OwnedCommand>,
        stream: Arc<StreamShared>,
        resubscribe: bool,
        /// Answered with the handle and the sub_id / query_id.
        reply: oneshot::Sender<Result<(amps_core::session::CommandId, String)>>,
        /// Answered when the command is acknowledged (`processed`) or sent.
        ready: oneshot::Sender<Result<()>>,
    },
    Flush {
        publish_flush: Option<Duration>,
        reply: oneshot::Sender<Result<()>>,
    },
}

impl Driver {
    pub(crate) async fn handle_ctl(&mut self, now: Instant, c: Ctl) {
        match c {
            Ctl::Connect { uri, reply } => {
                let r = self.connect_plain(uri).await;
                let opened = r.is_ok();
                if reply.send(r).is_err() && opened {
                    // The caller gave up (cancel-safety): do not leave a half-open client.
                    self.close_io();
                    self.report_disconnected_plain();
                }
            }
            Ctl::Logon { auth, reply } => {
                if self.ha.is_some() {
                    let _ = reply.send(Err(Error::usage("use connect_and_logon on an HA client")));
                    return;
                }
                if self.shared.is_logged_on() {
                    let _ = reply.send(Err(Error::new(
                        ErrorKind::AlreadyConnected,
                        "already logged on",
                    )));
                    return;
                }
                if self.io.is_none() {
                    let _ = reply.send(Err(Error::disconnected()));
                    return;
                }
                if let Some(a) = auth {
                    self.authenticator = a;
                }
                match self.send_logon(now) {
                    Ok(id) => self.logon = Some((id, Some(reply))),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
                self.drain_events(now);
            }
            Ctl::ConnectAndLogon { reply } => {
                let Some(ha) = self.ha.as_mut() else {
                    let _ = reply.send(Err(Error::usage("connect_and_logon needs an HA client")));
                    return;
                };
                if self.shared.is_logged_on() {
                    let _ = reply.send(Ok(()));
                    return;
                }
                ha.waiters.push(reply);
                self.session.start(now);
            }
            Ctl::Disconnect { reply } => {
                // A message held for a full stream is dropped with the connection: the events
                // of the disconnect must be processed (streams end, states are reported).
                self.stalled = None;
                self.ending = true;
                self.feed_staging(now);
                self.flush_out(std::time::Duration::from_secs(2)).await;
                self.session.disconnect(now);
                self.drain_events(now);
                self.ending = false;
                if self.io.is_some() {
                    // Connected by `connect` but never logged on: the session had no connection.
                    self.close_io();
                    self.report_disconnected_plain();
                }
                let _ = reply.send(Ok(()));
            }
            Ctl::Close { reply } => {
                self.shutdown().await;
                // Answered once the driver is gone, stores included (a file store's lock is
                // free when `close` returns).
                self.close_replies.push(reply);
            }
            Ctl::Heartbeat { hb, reply } => {
                let r = self.session.set_heartbeat(now, hb).map_err(Error::from);
                self.drain_events(now);
                let _ = reply.send(r);
            }
            Ctl::Stores { prune, reply } => {
                let _ = reply.send(self.sync_stores(prune));
            }
            Ctl::AckBatch(n) => self.session.set_ack_batch_size(n),
            Ctl::AckTimeout(t) => self.session.set_ack_timeout(t),
        }
    }

    /// Sync both stores (file stores: fsync) and optionally prune the bookmark store.
    fn sync_stores(&mut self, prune: bool) -> Result<()> {
        use amps_core::store::{BookmarkStore, PublishStore};
        self.session.publish_store_mut().sync()?;
        let bookmarks = self.session.bookmark_store_mut();
        bookmarks.sync()?;
        if prune {
            bookmarks.prune()?;
        }
        Ok(())
    }

    /// Plain client `connect(uri)`: open the transport; the logon comes with `logon()`.
    async fn connect_plain(&mut self, uri: String) -> Result<()> {
        if self.ha.is_some() {
            return Err(Error::usage("use connect_and_logon on an HA client"));
        }
        if self.io.is_some() || self.shared.is_logged_on() {
            return Err(Error::new(ErrorKind::AlreadyConnected, "already connected"));
        }
        if self.session.state() == State::Shutdown {
            return Err(Error::shutdown());
        }
        let stream = self.open(&uri).await?;
        self.io = Some(stream);
        self.uri = Some(uri);
        self.connected_reported = true;
        self.shared
            .set_state(amps_core::session::ConnectionState::Connected);
        Ok(())
    }

    fn report_disconnected_plain(&mut self) {
        self.connected_reported = false;
        self.shared
            .set_state(amps_core::session::ConnectionState::Disconnected);
    }

    /// Parse and open `uri`, within the connect timeout. Borrows nothing of the driver
    /// across the await (the driver holds non-`Sync` stores).
    pub(crate) fn open(
        &self,
        uri: &str,
    ) -> impl core::future::Future<Output = Result<crate::transport::Stream>> + Send + 'static {
        let (tls, limit, uri) = (self.tls.clone(), self.connect_timeout, uri.to_owned());
        async move {
            let parsed = Uri::parse(&uri)?;
            match tokio::time::timeout(limit, crate::transport::connect(&parsed, &tls)).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(ErrorKind::TimedOut, "connect timed out")),
            }
        }
    }

    /// Send the logon for the open transport (credentials from the URI and the authenticator).
    pub(crate) fn send_logon(&mut self, now: Instant) -> Result<amps_core::session::CommandId> {
        let uri_text = self.uri.clone().unwrap_or_default();
        let uri = Uri::parse(&uri_text)?;
        let mut user_buf = vec![0u8; uri.user.map_or(0, str::len)];
        let user = match uri.user {
            Some(u) => Some(amps_core::uri::percent_decode_into(u, &mut user_buf, 0)?),
            None => None,
        };
        let mut pw_buf = vec![0u8; uri.password.map_or(0, |p| p.expose().len())];
        let uri_pw = match uri.password {
            Some(p) => p.decode_into(&mut pw_buf)?,
            None => "",
        };
        let mut password = String::new();
        self.authenticator
            .authenticate(user.unwrap_or(""), uri_pw, &mut password)
            .map_err(|_| Error::new(ErrorKind::Authentication, "authenticator failed"))?;
        let logon = Logon {
            user_id: user,
            password: (!password.is_empty() || uri.password.is_some()).then_some(&password),
            message_type: uri.message_type,
            options: uri.options.pretty.then_some("pretty"),
        };
        Ok(self.session.handle_connected(now, &logon)?)
    }

    /// The HA client: open a connection when the session asks for one (protocol.md §8; seeds:
    /// the HAClient reconnect steps — chooser, delay strategy, connect, logon, report).
    pub(crate) async fn ha_connect(&mut self, now: Instant) {
        if self.ha.is_none() || self.io.is_some() || self.stalled.is_some() {
            return;
        }
        if self.session.poll_connect(now).is_none() {
            return;
        }
        let uri = self
            .ha
            .as_ref()
            .and_then(|h| h.chooser.current_uri().map(str::to_owned));
        let Some(uri) = uri else {
            let why = self
                .ha
                .as_ref()
                .map_or("no server", |h| h.chooser.error())
                .to_owned();
            self.shared
                .report(ClientEvent::Error(Error::new(ErrorKind::Disconnected, why)));
            self.session.handle_give_up(now);
            self.drain_events(now);
            return;
        };
        match self.open(&uri).await {
            Ok(stream) => {
                let now = self.now();
                self.io = Some(stream);
                self.uri = Some(uri);
                match self.send_logon(now) {
                    Ok(id) => self.logon = Some((id, None)),
                    Err(e) => {
                        self.close_io();
                        self.shared.report(ClientEvent::Error(e));
                    }
                }
                self.drain_events(now);
            }
            Err(e) => {
                let now = self.now();
                if let Some(h) = self.ha.as_mut() {
                    h.chooser.report_failure(&uri, &e);
                }
                self.shared.report(ClientEvent::Error(e));
                self.session.handle_connect_failed(now);
                self.drain_events(now);
            }
        }
    }

    /// Close for good: send what is staged, close the session, end every stream.
    pub(crate) async fn shutdown(&mut self) {
        let now = self.now();
        self.stalled = None;
        self.ending = true;
        self.shared.request_shutdown();
        self.feed_staging(now);
        self.drain_events(now);
        self.flush_out(std::time::Duration::from_secs(2)).await;
        let now = self.now();
        self.session.close(now);
        self.drain_events(now);
        self.close_io();
        // What the stores hold must survive the process (file stores: fsync now).
        if let Err(e) = self.sync_stores(false) {
            self.shared.report(ClientEvent::Error(e));
        }
        for (_, e) in self.entries.drain() {
            e.stream.finish(Some(Error::shutdown()));
            if let Some(r) = e.reply {
                let _ = r.send(Err(Error::shutdown()));
            }
        }
        if let Some((_, Some(r))) = self.logon.take() {
            let _ = r.send(Err(Error::shutdown()));
        }
        if let Some(ha) = self.ha.as_mut() {
            for w in ha.waiters.drain(..) {
                let _ = w.send(Err(Error::shutdown()));
            }
        }
        self.finished = true;
    }

    pub(crate) fn handle_cmd(&mut self, now: Instant, c: Cmd) {
        // Publishes staged before this command go first (ordering across the two paths).
        self.feed_staging(now);
        if self.blocked {
            self.pending_cmd = Some(c);
        } else {
            self.run_cmd(now, c);
        }
    }

    /// Hand staged publishes and queued commands to the session, in order, until something
    /// blocks or a turn's budget is spent.
    pub(crate) fn feed(&mut self, now: Instant) {
        self.feed_staging(now);
        if self.blocked {
            return;
        }
        if let Some(c) = self.pending_cmd.take() {
            self.run_cmd(now, c);
        }
        for _ in 0..CMDS_PER_TURN {
            if !self.cmd_gate_open() {
                break;
            }
            let Ok(c) = self.cmd_rx.try_recv() else { break };
            self.handle_cmd(now, c);
            if self.stalled.is_some() {
                break;
            }
        }
    }

    /// Give the staged publishes to the session until one cannot go now.
    pub(crate) fn feed_staging(&mut self, now: Instant) {
        self.blocked = false;
        let mut accepted = 0usize;
        loop {
            if self.batch_pos >= self.batch.len() {
                self.batch_pos = 0;
                if self.shared.take_staged(&mut self.batch) == 0 {
                    break;
                }
            }
            let Some((rec, len)) = read_record(&self.batch, self.batch_pos) else {
                // Only a bug could write a malformed record: drop the rest of the batch.
                self.batch_pos = self.batch.len();
                continue;
            };
            let mut cmd = if rec.kind == REC_DELTA {
                Command::delta_publish(rec.topic, rec.data)
            } else {
                Command::publish(rec.topic, rec.data)
            };
            if let Some(e) = rec.options.expiration {
                cmd = cmd.expiration(e);
            }
            if let Some(x) = rec.options.correlation_id {
                cmd = cmd.correlation_id(x);
            }
            if let Some(k) = rec.options.sow_key {
                cmd = cmd.sow_key(k);
            }
            match self.session.publish_command(now, &cmd) {
                Ok(_) => {}
                Err(PublishError::WouldBlock) => {
                    // The transmit buffer is full: move it to the write buffer and retry.
                    if self.fill_wbuf(now) {
                        continue;
                    }
                    self.blocked = true;
                    break;
                }
                Err(PublishError::WindowFull) => {
                    self.blocked = true;
                    break;
                }
                Err(PublishError::NotConnected) if self.ha.is_some() => {
                    // The HA client keeps publishes until it is logged on again.
                    self.blocked = true;
                    break;
                }
                Err(e) => {
                    self.shared.report(ClientEvent::Error(Error::from(e)));
                }
            }
            self.batch_pos += len;
            accepted += 1;
        }
        if accepted > 0
            && self
                .shared
                .has_store
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            // Count in the store before uncounting from the queue: never under-report.
            self.shared.unpersisted.store(
                self.session.unpersisted_count(),
                std::sync::atomic::Ordering::Release,
            );
            self.shared
                .queued
                .fetch_sub(accepted, std::sync::atomic::Ordering::AcqRel);
        }
    }

    pub(crate) fn run_cmd(&mut self, now: Instant, c: Cmd) {
        match c {
            Cmd::Execute {
                cmd,
                stream,
                resubscribe,
                reply,
                ready,
            } => self.execute(now, cmd, stream, resubscribe, reply, ready),
            Cmd::Flush {
                publish_flush,
                reply,
            } => {
                let r = match publish_flush {
                    Some(t) => self.session.publish_flush(now, t),
                    None => self.session.flush(now),
                };
                match r {
                    Ok(id) => {
                        self.entries.insert(
                            id,
                            Entry {
                                stream: StreamShared::new(&Default::default()),
                                reply: Some(reply),
                                ends_on_complete: true,
                                user_processed: false,
                                resubscribe: false,
                                ackable: false,
                                flush: Some(publish_flush),
                            },
                        );
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
        }
        self.drain_events(now);
    }

    fn execute(
        &mut self,
        now: Instant,
        cmd: Box<OwnedCommand>,
        stream: Arc<StreamShared>,
        resubscribe: bool,
        reply: oneshot::Sender<Result<(amps_core::session::CommandId, String)>>,
        ready: oneshot::Sender<Result<()>>,
    ) {
        // Forget commands whose callers gave up before they were acknowledged.
        self.sweep_cancelled(now);
        let kind = cmd.kind();
        let mut view = cmd.view();
        let user_processed = view.ack.contains(AckType::Processed);
        let routed = kind.is_subscribe() || kind.is_sow_query();
        if routed {
            // The processed ack answers the caller (seeds: subscribe returns once the server
            // acknowledged it), so ask for it to be forwarded.
            view = view.ack(AckType::Processed);
        }
        let r = self.session.execute_with(now, &view, Exec { resubscribe });
        let id = match r {
            Ok(id) => id,
            Err(CommandError::NotConnected) => {
                let _ = reply.send(Err(Error::disconnected()));
                return;
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
                return;
            }
        };
        let key = self
            .session
            .route_key(id)
            .map(str::to_owned)
            .unwrap_or_else(|| id.to_string());
        if reply.send(Ok((id, key))).is_err() {
            // The caller is gone: undo a subscription at once.
            if routed {
                let _ = self.session.unsubscribe(now, id);
            }
            return;
        }
        let queueish = kind.is_subscribe();
        let mut entry = Entry {
            stream,
            reply: Some(ready),
            ends_on_complete: !kind.is_subscribe(),
            user_processed,
            resubscribe: resubscribe && kind.is_subscribe(),
            ackable: queueish,
            flush: None,
        };
        if !routed && let Some(r) = entry.reply.take() {
            // Nothing to wait for before the caller gets the stream.
            let _ = r.send(Ok(()));
        }
        if kind == CommandKind::Unsubscribe {
            self.end_unrouted_streams();
        }
        // A `replace` (protocol.md §6.4) keeps the route and its handle: the subscription
        // moves to the new stream, and the old one ends normally.
        if let Some(old) = self.entries.insert(id, entry) {
            old.stream.finish(None);
        }
    }

    /// Unsubscribe subscriptions whose caller dropped the future before the processed ack.
    fn sweep_cancelled(&mut self, now: Instant) {
        let gone: Vec<_> = self
            .entries
            .iter()
            .filter(|(_, e)| e.reply.as_ref().is_some_and(|r| r.is_closed()) && !e.ends_on_complete)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.entries.remove(&id);
            let _ = self.session.unsubscribe(now, id);
        }
    }

    /// After an unsubscribe command: streams whose route is gone end normally.
    pub(crate) fn end_unrouted_streams(&mut self) {
        let session = &self.session;
        self.entries.retain(|id, e| {
            if !e.ends_on_complete && session.route_key(*id).is_none() {
                e.stream.finish(None);
                false
            } else {
                true
            }
        });
    }

    /// Acks, discards and dropped streams from the application.
    pub(crate) fn handle_controls(&mut self, now: Instant) {
        self.shared.take_control(&mut self.controls);
        if self.controls.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.controls.len() {
            let r = match &self.controls[i] {
                Control::Ack {
                    route,
                    topic,
                    bookmark,
                    how,
                } => self.session.ack(now, *route, topic, bookmark, *how),
                Control::Discard { route, bookmark } => {
                    if let Err(e) = self.session.discard(*route, bookmark) {
                        self.shared.report(ClientEvent::Error(e.into()));
                    }
                    Ok(())
                }
                Control::StreamClosed(id, closed) => {
                    let same = self
                        .entries
                        .get(id)
                        .is_some_and(|e| std::ptr::eq(Arc::as_ptr(&e.stream), closed.as_ptr()));
                    if let Some(e) = same.then(|| self.entries.remove(id)).flatten() {
                        e.stream.finish(None);
                        if !e.ends_on_complete || self.session.route_key(*id).is_some() {
                            let _ = self.session.unsubscribe(now, *id);
                        }
                    }
                    Ok(())
                }
            };
            if r == Err(CommandError::WouldBlock) {
                // The transmit buffer is full: send, then retry this one.
                if !self.fill_wbuf(now) {
                    break;
                }
                continue;
            }
            i += 1;
        }
        self.controls.drain(..i);
        self.drain_events(now);
    }
}
