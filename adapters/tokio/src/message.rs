//! Messages handed to the application: an owned copy of a delivery, a `sow` record, an `oof`,
//! a group marker or an ack, with every header accessor (seeds: "Message") and the queue and
//! bookmark conveniences `ack()`, `ack_with()` and `discard()`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amps_core::codec::{AckType, CommandKind, Header, OofReason, Status};
use amps_core::conflate::Keyed;
use amps_core::owned::OwnedMessage;
use amps_core::session::{AckHow, CommandId};

use crate::shared::{Control, Shared};

/// A message from the server, owned by the application.
///
/// Header fields have one accessor each (`topic()`, `sow_key()`, `bookmark()`, ...); every
/// other field is reachable through [`Message::header`]. The payload is [`Message::data`]
/// (bytes, the seeds' `data_raw`) or [`Message::data_str`] (text, the seeds' `data`).
///
/// Memory: messages received together share blocks of a few kilobytes (one allocation per
/// block instead of per message, see [`amps_core::owned::BlockWriter`]); cloning a message
/// only counts a reference. A block is freed with the last message in it, so a program that
/// keeps a few messages out of many for a long time (a last-value cache) should keep
/// [`Message::detach`]ed copies, which own exactly their bytes.
#[derive(Clone)]
pub struct Message {
    inner: OwnedMessage,
    ack: Option<AckHandle>,
}

/// What `ack()` and `discard()` need: the route, and the way to the driver.
#[derive(Clone)]
pub(crate) struct AckHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) route: CommandId,
    /// Set once the message was acknowledged (by the application or by auto-ack), so a queue
    /// message is never acknowledged twice.
    pub(crate) done: Arc<AtomicBool>,
}

impl Message {
    pub(crate) fn new(inner: OwnedMessage, ack: Option<AckHandle>) -> Message {
        Message { inner, ack }
    }

    /// The owned copy from the core (zero-cost view of the same data).
    pub fn as_owned(&self) -> &OwnedMessage {
        &self.inner
    }

    /// The same message in memory of its own, sharing no block with other messages (for
    /// messages kept long; see the type's documentation).
    pub fn detach(&self) -> Message {
        Message {
            inner: self.inner.detach(),
            ack: self.ack.clone(),
        }
    }

    /// What the message is: `p` (publish), `sow`, `oof`, `group_begin`, `group_end`, `ack`.
    pub fn kind(&self) -> CommandKind {
        self.inner.kind()
    }
    /// The header: every field of protocol.md §2 (for a `sow` record, the record's header).
    pub fn header(&self) -> Header<'_> {
        self.inner.header()
    }
    /// The payload bytes (the seeds' `data_raw`).
    pub fn data(&self) -> &[u8] {
        self.inner.data()
    }
    /// The payload as text, if it is UTF-8 (the seeds' `data`).
    pub fn data_str(&self) -> Option<&str> {
        self.inner.data_str()
    }
    /// `t`: the concrete topic (also for regex subscriptions).
    pub fn topic(&self) -> Option<&str> {
        self.inner.topic()
    }
    /// The subscription id (or query id for query results) this was delivered for.
    pub fn sub_id(&self) -> &str {
        self.inner.sub_id()
    }
    /// `k`: the SOW key.
    pub fn sow_key(&self) -> Option<&str> {
        self.inner.sow_key()
    }
    /// `bm`: the bookmark (transaction-log position or queue message id).
    pub fn bookmark(&self) -> Option<&str> {
        self.inner.bookmark()
    }
    /// `x`: the correlation id.
    pub fn correlation_id(&self) -> Option<&str> {
        self.inner.correlation_id()
    }
    /// `ts`: the timestamp (option `timestamp`).
    pub fn timestamp(&self) -> Option<&str> {
        self.inner.timestamp()
    }
    /// `lp`: the lease of a queue message.
    pub fn lease_period(&self) -> Option<&str> {
        self.inner.lease_period()
    }
    /// `cid`: the command id, on acks.
    pub fn command_id(&self) -> Option<&str> {
        self.inner.frame_header().command_id()
    }
    /// `query_id`.
    pub fn query_id(&self) -> Option<&str> {
        self.inner.frame_header().query_id()
    }
    /// `a` on an ack: its type.
    pub fn ack_type(&self) -> Option<AckType> {
        self.inner
            .frame_header()
            .ack_type_str()
            .and_then(AckType::from_wire)
    }
    /// `status` on an ack.
    pub fn status(&self) -> Option<Status> {
        self.inner.frame_header().status()
    }
    /// `reason` on a failure ack or an `oof`.
    pub fn reason(&self) -> Option<&str> {
        self.inner.frame_header().reason()
    }
    /// Why an `oof` was sent (protocol.md §7.4).
    pub fn oof_reason(&self) -> Option<OofReason> {
        if self.kind() != CommandKind::Oof {
            return None;
        }
        Some(self.reason().map_or(OofReason::Other, OofReason::from_wire))
    }
    /// `s`: the sequence number (publishes and persisted acks).
    pub fn seq(&self) -> Option<u64> {
        self.inner.frame_header().seq()
    }
    /// `matches` on a stats ack.
    pub fn matches(&self) -> Option<u64> {
        self.inner.frame_header().matches()
    }
    /// `topic_matches` on a stats ack.
    pub fn topic_matches(&self) -> Option<u64> {
        self.inner.frame_header().topic_matches()
    }
    /// `records_returned` on a query's stats ack.
    pub fn records_returned(&self) -> Option<u64> {
        self.inner.frame_header().records_returned()
    }
    /// `records_deleted` on a `sow_delete`'s stats ack.
    pub fn records_deleted(&self) -> Option<u64> {
        self.inner.frame_header().records_deleted()
    }

    /// True for a queue message (it carries a lease, protocol.md §11).
    pub fn is_queue_message(&self) -> bool {
        self.lease_period().is_some()
    }

    /// Acknowledge this queue message (seeds: `message.ack()`): batched by the client (see
    /// `set_ack_batch_size`); no effect for messages that are not from a queue, and at most
    /// once per message (later calls, and auto-ack, do nothing).
    pub fn ack(&self) {
        self.ack_with(AckHow::Ack);
    }

    /// Acknowledge with `cancel` (return the message to the queue) or `expire` (remove it as
    /// expired), sent at once (seeds: `ack(options)`).
    pub fn ack_with(&self, how: AckHow) {
        let (Some(h), Some(bm), Some(topic)) = (&self.ack, self.bookmark(), self.topic()) else {
            return;
        };
        if !self.is_queue_message() || h.done.swap(true, Ordering::AcqRel) {
            return;
        }
        h.shared.push_control(Control::Ack {
            route: h.route,
            topic: topic.to_owned(),
            bookmark: bm.to_owned(),
            how,
        });
    }

    /// Mark this message of a bookmark subscription as processed (seeds: `discard()`), so a
    /// resubscription resumes after it. No effect without a bookmark store.
    pub fn discard(&self) {
        if let (Some(h), Some(bm)) = (&self.ack, self.bookmark()) {
            h.shared.push_control(Control::Discard {
                route: h.route,
                bookmark: bm.to_owned(),
            });
        }
    }

    /// Whether `ack` (or auto-ack) already acknowledged it.
    pub(crate) fn is_acked(&self) -> bool {
        self.ack
            .as_ref()
            .is_some_and(|h| h.done.load(Ordering::Acquire))
    }
}

impl Keyed for Message {
    fn sow_key(&self) -> Option<&str> {
        self.inner.sow_key()
    }
}

impl core::fmt::Debug for Message {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&self.inner, f)
    }
}
