//! What a session reports: connection states, acks, deliveries, persisted progress, failed
//! writes, unroutable messages and errors.

use crate::codec::{AckStats, CommandKind, Detached, Field, HeaderRef, MessageRef, SowRecord};
use crate::time::Duration;

use super::error::{CommandError, FailureKind, SessionError};
use super::tables::CommandId;

/// The states the Python client's connection-state listener sees, in this order during a
/// (re)connect: Connected, LoggedOn, HeartbeatInitiated (if heartbeats are set), PublishReplayed
/// (if a publish store is set), Resubscribed (if resubscription is on). Disconnected on loss;
/// Shutdown when the session will not reconnect again.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionState {
    /// The transport is open.
    Connected,
    /// The logon succeeded.
    LoggedOn,
    /// Heartbeats started.
    HeartbeatInitiated,
    /// The publish store was replayed.
    PublishReplayed,
    /// Subscriptions were re-entered; recovery is complete.
    Resubscribed,
    /// The connection is gone.
    Disconnected,
    /// The session is closed or gave up reconnecting.
    Shutdown,
}

/// Where a session is (see [`crate::session::Session::state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// No connection. With a reconnect policy, `poll_connect` will ask for one.
    Disconnected,
    /// `poll_connect` asked for a connection; waiting for `handle_connected`.
    Connecting,
    /// Logon sent, waiting for its ack.
    LoggingOn,
    /// Logged on; replaying the publish store and re-entering subscriptions. Commands are
    /// accepted and sent after the recovery traffic.
    Recovering,
    /// Logged on and recovered.
    Ready,
    /// Closed for good.
    Shutdown,
}

/// A message for a subscription or query: a publish delivery, one record of a `sow` batch, an
/// `oof`, or `group_begin`/`group_end` (docs/protocol.md §7). Borrows the session's buffers.
#[derive(Clone, Copy, Debug)]
pub struct Delivery<'a> {
    /// The application's handle of the subscription or query (stable across re-entries).
    pub id: CommandId,
    /// The route key: the `sub_id` or, for query results, the `query_id`.
    pub sub_id: &'a str,
    /// The frame as received.
    pub msg: MessageRef<'a>,
    /// For a `sow` batch: the record this delivery is (its header has `k`, `l`, `x`, ...).
    pub record: Option<SowRecord<'a, &'a Detached>>,
}

impl<'a> Delivery<'a> {
    /// `p`, `sow`, `oof`, `group_begin` or `group_end`.
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub fn kind(&self) -> CommandKind {
        self.msg.kind()
    }
    /// The payload (the record's bytes for a `sow` record).
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub fn data(&self) -> &'a [u8] {
        self.record.map_or(self.msg.data(), |r| r.data)
    }
    /// The record header of a `sow` record, else the frame header.
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub fn header(&self) -> &HeaderRef<'a> {
        match &self.record {
            Some(r) => &r.header,
            None => self.msg.header(),
        }
    }
    /// `t`: the concrete topic.
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub fn topic(&self) -> Option<&'a str> {
        self.msg.topic()
    }
    /// `k` of the record, else of the frame.
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub fn sow_key(&self) -> Option<&'a str> {
        self.record
            .and_then(|r| r.header.sow_key())
            .or(self.msg.sow_key())
    }
    /// Whether the record's header or the frame's has `field` (as [`Delivery::bookmark`] and
    /// the other record-then-frame accessors look), without converting its value.
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub fn has(&self, field: Field) -> bool {
        self.record.is_some_and(|r| r.header.has(field)) || self.msg.header().has(field)
    }
    /// `bm` of the record, else of the frame.
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub fn bookmark(&self) -> Option<&'a str> {
        self.record
            .and_then(|r| r.header.bookmark())
            .or(self.msg.bookmark())
    }
    /// `x` of the record, else of the frame.
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub fn correlation_id(&self) -> Option<&'a str> {
        self.record
            .and_then(|r| r.header.correlation_id())
            .or(self.msg.correlation_id())
    }
    /// `ts` of the record, else of the frame.
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub fn timestamp(&self) -> Option<&'a str> {
        self.record
            .and_then(|r| r.header.timestamp())
            .or(self.msg.timestamp())
    }
}

/// Something the adapter must act on. Drain with `poll_event` after every input or command.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The connection state changed (listeners see these in the documented order).
    State(ConnectionState),
    /// The adapter must close the transport now: the session ended the connection (heartbeat
    /// silence, logon failure or timeout, undecodable input, `disconnect`). Followed by
    /// [`ConnectionState::Disconnected`]; `handle_closed` for this connection is not needed.
    CloseTransport,
    /// An ack the application asked for, for command `id`.
    Ack {
        /// The command.
        id: CommandId,
        /// The ack frame (type, status, reason, counts, `bm`, ...).
        msg: MessageRef<'a>,
    },
    /// Every requested ack of `id` arrived (and, for `publish_flush`, the store is empty).
    Completed {
        /// The command.
        id: CommandId,
        /// Counters from the acks, if any arrived.
        stats: AckStats,
    },
    /// Command `id` failed and will not complete.
    Failed {
        /// The command.
        id: CommandId,
        /// Why.
        error: CommandError,
    },
    /// A message for a subscription or query.
    Delivery(Delivery<'a>),
    /// The server persisted every sequenced command up to `up_to`; the publish store dropped
    /// them (Python client: `unpersisted_count` went down).
    Persisted {
        /// Highest sequence number persisted.
        up_to: u64,
    },
    /// The server refused a sequenced command (Python client: `failed_write_handler`).
    FailedWrite {
        /// Its sequence number.
        seq: u64,
        /// Classified reason.
        kind: FailureKind,
        /// The server's reason text.
        reason: &'a str,
        /// The command as stored, when a publish store holds it.
        stored: Option<&'a [u8]>,
    },
    /// A message nothing else handles (Python client: `last_chance_message_handler`).
    LastChance(MessageRef<'a>),
    /// The server challenged the logon (status `retry`, docs/protocol.md §8.2): answer with
    /// `handle_logon_retry` and the authenticator's `retry` credential.
    LogonRetry {
        /// `user_id` from the ack.
        user_id: &'a str,
        /// The challenge token (`pw` of the ack).
        token: &'a str,
    },
    /// A problem that is not a command's failure (Python client: exception listener).
    Error(SessionError),
    /// With [`crate::ha::ReconnectPolicy::External`]: the session needs the wait before its
    /// next connection attempt. Answer with `Session::handle_reconnect_delay`.
    ReconnectDelay {
        /// Time since the outage began (the first failed or lost connection).
        elapsed: Duration,
    },
}
