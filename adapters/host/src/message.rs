//! [`Message`]: a message the client received (a delivery, a SOW record, an `oof`, a group
//! marker, an ack), owned, with an accessor for every header field and the queue and bookmark
//! conveniences [`Message::ack`] and [`Message::discard`]. [`FailedWrite`]: a publish the
//! server refused.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amps_core::codec::{AckType, CommandKind, Header, OofReason, PREFIX_LEN, Scratch, Status};
pub use amps_core::session::AckHow;
use amps_core::session::CommandId;

use crate::control::{Control, Sink};
use crate::error::{Error, Result};
use crate::owned::OwnedMessage;
use crate::queue::Entry;

/// A message from the server, copied out of the connection's buffers.
///
/// Header fields have one accessor each, named after the field (`topic()`, `sow_key()`,
/// `bookmark()`, `correlation_id()`, `timestamp()`, `lease_period()`, `query_id()`, counts
/// such as `records_deleted()`, ...); every other field is reachable through
/// [`Message::header`]. For a record of a `sow` batch the record's own header (`k`, `l`, `x`,
/// `ts`) is read first, then the batch header (`t`, `query_id`). The payload is
/// [`Message::data`] (bytes) or [`Message::data_str`] (text, when it is UTF-8).
///
/// Memory: messages received together share blocks of a few kilobytes (one allocation per
/// block instead of per message); cloning a message only counts a reference. A block is freed
/// with the last message in it, so a program that keeps a few messages out of many for a long
/// time (a last-value cache) should keep [`Message::detach`]ed copies, which own exactly
/// their bytes.
#[derive(Clone)]
pub struct Message {
    inner: OwnedMessage,
    link: Option<Link>,
}

/// What `ack()` and `discard()` need: the way back to the client and whether the message came
/// from a queue subscription.
#[derive(Clone)]
struct Link {
    sink: Sink,
    queue: bool,
    /// Set once a queue message was acknowledged (by the application or by auto-ack), so it
    /// is never acknowledged twice. Only queue messages have one.
    acked: Option<Arc<AtomicBool>>,
}

macro_rules! header_str {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {$(
        $(#[$m])*
        pub fn $name(&self) -> Option<&str> {
            self.inner.record_or_frame(|h| h.$name())
        }
    )*};
}

macro_rules! header_int {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {$(
        $(#[$m])*
        pub fn $name(&self) -> Option<u64> {
            self.inner.header().$name().or_else(|| self.inner.frame_header().$name())
        }
    )*};
}

impl Message {
    /// A message with no way back to the client (acks, last-chance messages).
    pub(crate) fn unlinked(inner: OwnedMessage) -> Self {
        Message { inner, link: None }
    }

    /// A delivery of a client: `ack()` and `discard()` reach its driver through `sink`.
    pub(crate) fn linked(inner: OwnedMessage, sink: &Sink, queue: bool) -> Self {
        Message {
            inner,
            link: Some(Link {
                sink: sink.clone(),
                queue,
                acked: queue.then(|| Arc::new(AtomicBool::new(false))),
            }),
        }
    }

    /// Parse a whole frame (prefix included) into a message: the publish store's copy of a
    /// failed write, or a synthesized ack.
    pub(crate) fn from_frame(frame: &[u8]) -> Option<Message> {
        let body = frame.get(PREFIX_LEN..)?;
        let mut scratch = vec![0u8; body.len()];
        let msg = amps_core::codec::Message::parse(body, &mut Scratch::new(&mut scratch)).ok()?;
        Some(Message::unlinked(OwnedMessage::from_message(&msg)))
    }

    /// What the message is (`c`): [`CommandKind::Publish`] for deliveries, `Sow` for query
    /// records, `Oof`, `GroupBegin`, `GroupEnd`, `Ack`.
    pub fn command(&self) -> CommandKind {
        self.inner.kind()
    }

    /// The payload bytes.
    pub fn data(&self) -> &[u8] {
        self.inner.data()
    }

    /// The payload as text, if it is UTF-8.
    pub fn data_str(&self) -> Option<&str> {
        std::str::from_utf8(self.inner.data()).ok()
    }

    /// The subscription this message was delivered for: with several matching subscriptions
    /// (`sids`), the one it is being delivered to; for query results, the query id.
    pub fn sub_id(&self) -> Option<&str> {
        let routed = self.inner.sub_id();
        if routed.is_empty() {
            self.inner.frame_header().sub_id()
        } else {
            Some(routed)
        }
    }

    /// The ack type of an ack (`a`).
    pub fn ack_type(&self) -> Option<AckType> {
        self.inner
            .frame_header()
            .ack_type_str()
            .and_then(AckType::from_wire)
    }

    /// The status of an ack.
    pub fn status(&self) -> Option<Status> {
        self.inner.frame_header().status()
    }

    /// Why an `oof` was sent.
    pub fn oof_reason(&self) -> Option<OofReason> {
        if self.command() != CommandKind::Oof {
            return None;
        }
        Some(self.reason().map_or(OofReason::Other, OofReason::from_wire))
    }

    header_str! {
        /// `cid`: the command id (acks).
        command_id,
        /// `t`: the concrete topic (also for regex subscriptions).
        topic,
        /// `f`: filter.
        filter,
        /// `o`: options (e.g. `max_backlog=N` on a queue subscription's ack).
        options,
        /// `bm`: bookmark (transaction-log position or queue message id).
        bookmark,
        /// `k`: SOW key.
        sow_key,
        /// `sow_keys`.
        sow_keys,
        /// `x`: correlation id.
        correlation_id,
        /// `orderby`.
        order_by,
        /// `query_id`.
        query_id,
        /// `sids`: every matching subscription id.
        sub_ids,
        /// `client_name` (logon acks).
        client_name,
        /// `user_id`.
        user_id,
        /// `mt`: message type.
        message_type,
        /// `version` (logon acks: the server's).
        version,
        /// `reason`: failure text, or an `oof`'s reason.
        reason,
        /// `ts`: timestamp.
        timestamp,
        /// `lp`: lease of a queue message.
        lease_period,
    }

    header_int! {
        /// `s`: sequence number.
        seq,
        /// `l`: payload length as sent.
        msg_len,
        /// `e`: expiration in seconds.
        expiration,
        /// `bs`: records in this `sow` batch.
        batch_size,
        /// `top_n`.
        top_n,
        /// `gseq`: group sequence.
        group_seq,
        /// `matches` (stats acks).
        matches,
        /// `topic_matches` (stats acks).
        topic_matches,
        /// `records_returned` (stats acks).
        records_returned,
        /// `records_inserted`.
        records_inserted,
        /// `records_updated`.
        records_updated,
        /// `records_deleted` (sow_delete acks).
        records_deleted,
        /// `max_msgs` (legacy).
        max_msgs,
    }

    /// The header as parsed: the record header of a `sow` record, else the frame header.
    pub fn header(&self) -> Header<'_> {
        self.inner.header()
    }

    /// The frame header (for a `sow` record, the batch's outer header).
    pub fn frame_header(&self) -> Header<'_> {
        self.inner.frame_header()
    }

    /// The same message in memory of its own, sharing no block with other messages (for
    /// messages kept long; see the type's documentation).
    pub fn detach(&self) -> Message {
        Message {
            inner: self.inner.detach(),
            link: self.link.clone(),
        }
    }

    /// Whether this is a queue message (it has a lease, or came from a subscription the server
    /// reported a backlog for).
    pub fn is_queue_message(&self) -> bool {
        self.link.as_ref().is_some_and(|l| l.queue) || self.lease_period().is_some()
    }

    /// Acknowledge a queue message: it is removed from the queue. Acks are batched (see the
    /// client's ack batch size). At most once per message: later calls, and auto-ack, do
    /// nothing; no effect for messages that are not from a queue. Errors: the client is closed.
    pub fn ack(&self) -> Result<()> {
        self.ack_with(AckHow::Ack)
    }

    /// Acknowledge with an option: [`AckHow::Cancel`] returns the message to the queue,
    /// [`AckHow::Expire`] expires it now (both sent at once).
    pub fn ack_with(&self, how: AckHow) -> Result<()> {
        let Some((route, topic, bookmark)) = self.queue_key() else {
            return Ok(());
        };
        let Some(link) = &self.link else {
            return Ok(());
        };
        if link
            .acked
            .as_ref()
            .is_some_and(|a| a.swap(true, Ordering::AcqRel))
        {
            return Ok(());
        }
        link.sink.control(Control::Ack {
            route: Some(route),
            topic,
            bookmark,
            how,
        })
    }

    /// Mark a message of a bookmark subscription as processed: a resubscription resumes after
    /// it, and a replay of it is dropped. No effect without a bookmark store. Errors: the
    /// client is closed.
    pub fn discard(&self) -> Result<()> {
        let (Some(link), Some(route), Some(bm)) = (&self.link, self.inner.route(), self.bookmark())
        else {
            return Ok(());
        };
        link.sink.control(Control::Discard {
            route,
            bookmark: bm.into(),
        })
    }

    /// For auto-ack: mark the message acknowledged and return its key, unless the application
    /// acknowledged it already (or it is not a queue message of this client).
    pub(crate) fn take_auto_ack(&self) -> Option<(CommandId, String, String)> {
        let key = self.queue_key()?;
        let acked = self.link.as_ref()?.acked.as_ref()?;
        (!acked.swap(true, Ordering::AcqRel)).then_some(key)
    }

    /// (route, topic, bookmark) of a queue message this client received.
    fn queue_key(&self) -> Option<(CommandId, String, String)> {
        if !self.is_queue_message() {
            return None;
        }
        Some((
            self.inner.route()?,
            self.topic()?.to_owned(),
            self.bookmark()?.to_owned(),
        ))
    }
}

impl Entry for Message {
    fn sow_key(&self) -> Option<&str> {
        self.inner.sow_key()
    }
    fn size(&self) -> usize {
        self.inner.copied_len()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("command", &self.command())
            .field("header", &self.header())
            .field("data", &String::from_utf8_lossy(self.data()))
            .finish()
    }
}

/// A sequenced command (a publish) the server refused.
#[derive(Clone, Debug)]
pub struct FailedWrite {
    pub(crate) seq: u64,
    pub(crate) error: Error,
    pub(crate) message: Option<Message>,
    pub(crate) ack: Option<Message>,
}

impl FailedWrite {
    /// Its sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// Why (kind and the server's reason).
    pub fn error(&self) -> &Error {
        &self.error
    }
    /// The command as the publish store kept it (topic, data, ...), when a store is set.
    pub fn message(&self) -> Option<&Message> {
        self.message.as_ref()
    }
    /// The failure acknowledgement as the server would show it (`a` = `persisted`, status
    /// `failure`, `s`, `reason`).
    pub fn ack(&self) -> Option<&Message> {
        self.ack.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amps_core::codec::{Command, Message as CoreMessage};

    fn parse(text: &str) -> Message {
        let mut sc = [0u8; 256];
        let m = CoreMessage::parse(text.as_bytes(), &mut Scratch::new(&mut sc)).unwrap();
        Message::unlinked(OwnedMessage::from_message(&m))
    }

    #[test]
    fn every_header_has_an_accessor() {
        let m = parse(
            r#"{"c":"p","t":"orders","sub_id":"2","k":"9","bm":"1|2|","x":"c1","ts":"20261121T175830.001884Z","lp":"30000ms","s":3,"l":7,"e":60,"user_id":"u"}payload"#,
        );
        assert_eq!(m.command(), CommandKind::Publish);
        assert_eq!(m.topic(), Some("orders"));
        assert_eq!(m.sub_id(), Some("2"));
        assert_eq!(m.sow_key(), Some("9"));
        assert_eq!(m.bookmark(), Some("1|2|"));
        assert_eq!(m.correlation_id(), Some("c1"));
        assert_eq!(m.timestamp(), Some("20261121T175830.001884Z"));
        assert_eq!(m.lease_period(), Some("30000ms"));
        assert_eq!(
            (m.seq(), m.msg_len(), m.expiration()),
            (Some(3), Some(7), Some(60))
        );
        assert_eq!(m.user_id(), Some("u"));
        assert_eq!(m.data(), b"payload");
        assert_eq!(m.data_str(), Some("payload"));
        assert!(m.is_queue_message(), "a lease marks a queue message");
        // No link to a client: ack and discard are no-ops, not errors.
        assert!(m.ack().is_ok() && m.discard().is_ok());
    }

    #[test]
    fn ack_counts_and_binary_payloads() {
        let m = parse(
            r#"{"c":"ack","cid":"4","a":"stats","status":"success","matches":1,"topic_matches":3,"records_deleted":1}"#,
        );
        assert_eq!(m.ack_type(), Some(AckType::Stats));
        assert_eq!(m.status(), Some(Status::Success));
        assert_eq!(m.command_id(), Some("4"));
        assert_eq!(
            (m.matches(), m.topic_matches(), m.records_deleted()),
            (Some(1), Some(3), Some(1))
        );
        let frame = Command::publish("t", &[0xff, 0x00, 0x41]).to_vec().unwrap();
        let m = Message::from_frame(&frame).unwrap();
        assert_eq!(m.data(), &[0xff, 0x00, 0x41]);
        assert_eq!(m.data_str(), None);
        assert_eq!(m.topic(), Some("t"));
    }
}
