//! Publishing, receiving and queue acknowledgement: the commands of [`Client`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use amps_core::codec::Command;

use super::{Client, Start, Status, lock};
use crate::dispatch::{self, HandlerResult};
use crate::driver::{Executed, Op, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::inbox::PubKind;
use crate::message::Message;
use crate::settings::Changed;
use crate::stream::{MessageStream, OverflowPolicy, StreamShared};

impl Client {
    // ------------------------------------------------------------------ publishing

    /// Publish `data` to `topic` (seeds: `publish()`). Returns once the message is queued for
    /// the I/O thread, without waiting for the server; failures are reported to the failed
    /// write handler (with a publish store) or the exception listener. Blocks while the
    /// client's publish queue is full (backpressure). With a publish store the message is
    /// numbered, kept until persisted and replayed after a reconnect.
    pub fn publish(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<()> {
        self.publish_kind(PubKind::Publish, topic, data.as_ref())
    }

    /// Merge `data` into the SOW record it keys (seeds: `delta_publish()`, protocol.md §12).
    pub fn delta_publish(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<()> {
        self.publish_kind(PubKind::DeltaPublish, topic, data.as_ref())
    }

    fn publish_kind(&self, kind: PubKind, topic: &str, data: &[u8]) -> Result<()> {
        self.check_publish()?;
        self.inner
            .shared
            .inbox
            .push_publish(kind, topic, data)
            .map_err(|_| Error::disconnected("the client is closed"))
    }

    /// Publish a built command (publish or delta_publish with expiration, correlation id, an
    /// explicit SOW key, ...), like [`Client::publish`].
    pub fn publish_command(&self, command: &Command<'_>) -> Result<()> {
        if !command.kind.is_sequenced() {
            return Err(Error::usage(format!(
                "`{}` is not a publish; use execute",
                command.kind
            )));
        }
        self.check_publish()?;
        self.inner.shared.send(Op::PublishCommand(Box::new(
            crate::command::OwnedCommand::new(command),
        )))
    }

    fn check_publish(&self) -> Result<()> {
        let s = &self.inner.shared;
        match s.status() {
            Status::LoggedOn => Ok(()),
            Status::Closed => Err(Error::disconnected("the client is closed")),
            // A publish store keeps it for the next connection (numbering is known once the
            // client logged on once, protocol.md §8.4).
            _ if s.has_store.load(Ordering::Relaxed) && s.seq_known.load(Ordering::Relaxed) => {
                Ok(())
            }
            // HA: queued until the reconnect (seeds: retry_on_disconnect).
            Status::Connected | Status::Disconnected if s.ha && s.retry_on_disconnect() => Ok(()),
            _ => Err(Error::disconnected("not connected")),
        }
    }

    /// Delete the SOW records of `topic` matching `filter` (`1=1` for all). Returns the
    /// acknowledgement, whose `records_deleted()` and `matches()` give the counts.
    pub fn sow_delete(&self, topic: &str, filter: &str) -> Result<Message> {
        self.collect(&Command::sow_delete(topic, filter))
    }

    /// Delete the SOW records with these keys (comma-separated SOW keys).
    pub fn sow_delete_by_keys(&self, topic: &str, keys: &str) -> Result<Message> {
        self.collect(&Command::sow_delete_by_keys(topic, keys))
    }

    /// Delete the SOW record `data` would update if published.
    pub fn sow_delete_by_data(&self, topic: &str, data: impl AsRef<[u8]>) -> Result<Message> {
        self.collect(&Command::sow_delete_by_data(topic, data.as_ref()))
    }

    fn collect(&self, cmd: &Command<'_>) -> Result<Message> {
        let e = self.run(cmd, Target::Collect, false)?;
        e.ack
            .ok_or_else(|| Error::new(ErrorKind::Unknown, "the server sent no acknowledgement"))
    }

    /// Wait until the server processed every command sent before (seeds: `flush()`).
    pub fn flush(&self) -> Result<()> {
        self.check_started()?;
        self.call(|reply| Op::Flush { store: None, reply })
    }

    /// Flush, then wait until the publish store is empty, at most `timeout` (seeds:
    /// `publish_flush()`); error kind `TimedOut` if messages are still unpersisted.
    pub fn publish_flush(&self, timeout: Duration) -> Result<()> {
        self.check_started()?;
        self.call(|reply| Op::Flush {
            store: Some(timeout),
            reply,
        })
    }

    /// Messages in the publish store not yet acknowledged as persisted (seeds:
    /// `unpersisted_count()`); 0 without a store. Counts every publish sent before the call.
    pub fn unpersisted_count(&self) -> usize {
        match &*self.start_lock() {
            // Not started: the store itself (a file store recovered its contents at open).
            Start::Pending(s) => {
                return s
                    .publish_store
                    .as_ref()
                    .map_or(0, |p| p.unpersisted_count());
            }
            Start::Closed => return self.inner.shared.unpersisted.load(Ordering::Relaxed),
            Start::Running { .. } => {}
        }
        self.call(Op::UnpersistedCount)
            .unwrap_or_else(|_| self.inner.shared.unpersisted.load(Ordering::Relaxed))
    }

    // ------------------------------------------------------------------ receiving

    fn run(&self, cmd: &Command<'_>, target: Target, resubscribe: bool) -> Result<Executed> {
        self.check_started()?;
        if matches!(
            cmd.kind,
            amps_core::codec::CommandKind::Logon | amps_core::codec::CommandKind::Heartbeat
        ) {
            return Err(Error::usage(
                "logon and heartbeats are the client's own commands",
            ));
        }
        let cmd = Box::new(crate::command::OwnedCommand::new(cmd));
        self.call(|reply| Op::Execute {
            cmd,
            target,
            resubscribe,
            reply,
        })
    }

    /// Send `command` and return a stream of what it produces (seeds: `execute()`): records and
    /// deliveries, and the acks the command asks for. Returns once the server processed it
    /// (subscriptions and queries) or the command completed; a failure is the error (e.g.
    /// `BadFilter`, `InvalidTopic`). `sow` queries get a batch size of 10 unless set.
    pub fn execute(&self, command: &Command<'_>) -> Result<MessageStream> {
        let (cap, policy) = self.stream_limits();
        let shared = StreamShared::new(cap, policy);
        let e = self.run(command, Target::Stream(shared.clone()), false)?;
        Ok(MessageStream::new(
            shared,
            self.inner.shared.clone(),
            e.handle,
            e.sub_id,
        ))
    }

    /// Send `command` with `handler` receiving its messages on the dispatch thread (seeds:
    /// `execute_async()`). Returns the subscription id once the server processed the command.
    /// An HA client re-enters such subscriptions after a reconnect. The handler may return `()`
    /// or a `Result`; errors and panics go to the exception listener.
    pub fn execute_async<F, R>(&self, command: &Command<'_>, handler: F) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        let resubscribe = self.inner.shared.ha;
        let e = self.run(
            command,
            Target::Handler(dispatch::handler(handler)),
            resubscribe,
        )?;
        Ok(e.sub_id)
    }

    fn stream_limits(&self) -> (usize, OverflowPolicy) {
        *lock(&self.inner.shared.stream_limits)
    }

    /// Subscribe to `topic` (a topic name or a regular expression) with an optional content
    /// filter (seeds: `subscribe()`).
    pub fn subscribe(&self, topic: &str, filter: Option<&str>) -> Result<MessageStream> {
        self.execute(&with_filter(Command::subscribe(topic), filter))
    }

    /// Subscribe receiving only changed fields (seeds: `delta_subscribe()`, protocol.md §12.2).
    pub fn delta_subscribe(&self, topic: &str, filter: Option<&str>) -> Result<MessageStream> {
        self.execute(&with_filter(Command::delta_subscribe(topic), filter))
    }

    /// Query the State of the World of `topic` (seeds: `sow()`); the stream ends after the
    /// last record (after `group_end`).
    pub fn sow(&self, topic: &str, filter: Option<&str>) -> Result<MessageStream> {
        self.execute(&with_filter(Command::sow(topic), filter))
    }

    /// Query and subscribe atomically (seeds: `sow_and_subscribe()`).
    pub fn sow_and_subscribe(&self, topic: &str, filter: Option<&str>) -> Result<MessageStream> {
        self.execute(&with_filter(Command::sow_and_subscribe(topic), filter))
    }

    /// Query and delta-subscribe atomically (seeds: `sow_and_delta_subscribe()`).
    pub fn sow_and_delta_subscribe(
        &self,
        topic: &str,
        filter: Option<&str>,
    ) -> Result<MessageStream> {
        self.execute(&with_filter(
            Command::sow_and_delta_subscribe(topic),
            filter,
        ))
    }

    /// Subscribe from a point in the transaction log (seeds: `bookmark_subscribe()`):
    /// `bookmark` is a bookmark, `EPOCH` (`"0"`), `NOW` (`"0|1|"`) or `MOST_RECENT`
    /// (`"recent"`, resolved from the bookmark store). Give a stable `sub_id` to resume the
    /// same subscription after a restart. Call `discard()` on each message once processed.
    /// Returns the subscription id.
    pub fn bookmark_subscribe<F, R>(
        &self,
        topic: &str,
        bookmark: &str,
        filter: Option<&str>,
        sub_id: Option<&str>,
        handler: F,
    ) -> Result<String>
    where
        F: FnMut(&Message) -> R + Send + 'static,
        R: HandlerResult,
    {
        let mut cmd = with_filter(Command::subscribe(topic).bookmark(bookmark), filter);
        if let Some(s) = sub_id {
            cmd = cmd.sub_id(s);
        }
        self.execute_async(&cmd, handler)
    }

    /// End a subscription by its id (seeds: `unsubscribe()`); `"all"` ends every one.
    pub fn unsubscribe(&self, sub_id: &str) -> Result<()> {
        self.check_started()?;
        let sub_id = sub_id.to_owned();
        self.call(|reply| Op::Unsubscribe { sub_id, reply })
    }

    // ------------------------------------------------------------------ queues

    /// Acknowledge queue messages automatically (seeds: `set_auto_ack()`): when a handler
    /// returns (a failing handler returns the message to the queue), or when a stream is asked
    /// for its next message.
    pub fn set_auto_ack(&self, on: bool) {
        self.inner.shared.auto_ack.store(on, Ordering::Relaxed);
    }

    /// Whether auto-ack is on.
    pub fn auto_ack(&self) -> bool {
        self.inner.shared.auto_ack()
    }

    /// Acks sent together in one `sow_delete` (seeds: `set_ack_batch_size()`); capped by the
    /// subscription's backlog.
    pub fn set_ack_batch_size(&self, n: u32) -> Result<()> {
        self.configure(move |s| {
            s.ack_batch_size = n.max(1);
            Changed {
                acks: true,
                ..Changed::default()
            }
        })
    }

    /// Longest time an ack waits in a batch (seeds: `set_ack_timeout()`).
    pub fn set_ack_timeout(&self, t: Duration) -> Result<()> {
        self.configure(move |s| {
            s.ack_timeout = t;
            Changed {
                acks: true,
                ..Changed::default()
            }
        })
    }
}

fn with_filter<'a>(c: Command<'a>, filter: Option<&'a str>) -> Command<'a> {
    match filter {
        Some(f) => c.filter(f),
        None => c,
    }
}
