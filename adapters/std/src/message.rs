//! [`Message`]: a message the client received (a delivery, a SOW record, an `oof`, a group
//! marker, an ack), owned, with an accessor for every header field (seeds: "Understanding
//! Message objects") and the queue/bookmark conveniences `ack()` and `discard()`.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use amps_core::codec::{AckType, CommandKind, Header, Status};
use amps_core::conflate::Keyed;
use amps_core::owned::OwnedMessage;
pub use amps_core::session::AckHow;
use amps_core::session::CommandId;

use crate::client::Shared;
use crate::driver::Op;
use crate::error::{Error, Result};

/// A message from the server, copied out of the connection's buffers.
///
/// Header fields have one accessor each, named after the field (`topic()`, `sow_key()`,
/// `bookmark()`, `correlation_id()`, `timestamp()`, `lease_period()`, `query_id()`, counts
/// such as `records_deleted()`, ...). For a record of a `sow` batch the record's own header
/// (`k`, `l`, `x`, `ts`) is read first, then the batch header (`t`, `query_id`).
///
/// ```no_run
/// # fn f(client: &amps_std::Client) -> amps_std::Result<()> {
/// for msg in client.subscribe("orders", Some("/qty > 50"))? {
///     let msg = msg?;
///     println!("{} {} {}", msg.topic().unwrap_or(""), msg.sow_key().unwrap_or(""), msg.data());
/// }
/// # Ok(()) }
/// ```
///
/// Memory: messages received together share blocks of a few kilobytes (one allocation per
/// block instead of per message, see [`amps_core::owned::BlockWriter`]); cloning a message
/// only counts a reference. A block is freed with the last message in it, so a program that
/// keeps a few messages out of many for a long time (a last-value cache) should keep
/// [`Message::detach`]ed copies, which own exactly their bytes.
#[derive(Clone)]
pub struct Message {
    inner: OwnedMessage,
    link: Option<Link>,
}

/// What `ack()` and `discard()` need: the way back to the client and whether the message came
/// from a queue subscription.
#[derive(Clone)]
struct Link {
    shared: Arc<Shared>,
    queue: bool,
}

macro_rules! header_str {
    ($($(#[$m:meta])* $name:ident),* $(,)?) => {$(
        $(#[$m])*
        pub fn $name(&self) -> Option<&str> {
            self.inner.header().$name().or_else(|| self.inner.frame_header().$name())
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
    pub(crate) fn new(inner: OwnedMessage, shared: Option<&Arc<Shared>>, queue: bool) -> Self {
        Message {
            inner,
            link: shared.map(|s| Link {
                shared: s.clone(),
                queue,
            }),
        }
    }

    /// What the message is (`c`): [`CommandKind::Publish`] for deliveries, `Sow` for query
    /// records, `Oof`, `GroupBegin`, `GroupEnd`, `Ack`.
    pub fn command(&self) -> CommandKind {
        self.inner.kind()
    }

    /// The payload as text (seeds: `get_data()`); bytes that are not UTF-8 are replaced.
    pub fn data(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.inner.data())
    }

    /// The payload as bytes (seeds: `get_data_raw()`).
    pub fn data_raw(&self) -> &[u8] {
        self.inner.data()
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

    /// The copied message from the core.
    pub fn as_owned(&self) -> &OwnedMessage {
        &self.inner
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
        self.link.as_ref().is_some_and(|l| l.queue) || self.inner.lease_period().is_some()
    }

    /// Acknowledge a queue message: it is removed from the queue (seeds: `message.ack()`). Acks
    /// are batched (see `Client::set_ack_batch_size`). No effect for other messages.
    pub fn ack(&self) -> Result<()> {
        self.ack_with(AckHow::Ack)
    }

    /// Acknowledge with an option (seeds: `ack("cancel")`): [`AckHow::Cancel`] returns the
    /// message to the queue, [`AckHow::Expire`] expires it now.
    pub fn ack_with(&self, how: AckHow) -> Result<()> {
        let (Some(link), Some(route), Some(topic), Some(bm)) = (
            &self.link,
            self.inner.route(),
            self.inner.topic(),
            self.inner.bookmark(),
        ) else {
            return Ok(());
        };
        if !self.is_queue_message() {
            return Ok(());
        }
        link.shared.send(Op::Ack {
            route,
            topic: topic.into(),
            bookmark: bm.into(),
            how,
        })
    }

    /// Mark a message of a bookmark subscription as processed (seeds: `discard()`): a
    /// resubscription resumes after it, and a replay of it is dropped.
    pub fn discard(&self) -> Result<()> {
        let (Some(link), Some(route), Some(bm)) =
            (&self.link, self.inner.route(), self.inner.bookmark())
        else {
            return Ok(());
        };
        link.shared.send(Op::Discard {
            route,
            bookmark: bm.into(),
        })
    }

    /// The queue-ack key of this message under auto-ack: (route, topic, bookmark).
    pub(crate) fn auto_ack_key(&self) -> Option<(CommandId, String, String)> {
        if !self.is_queue_message() {
            return None;
        }
        Some((
            self.inner.route()?,
            self.inner.topic()?.to_owned(),
            self.inner.bookmark()?.to_owned(),
        ))
    }
}

impl Keyed for Message {
    fn sow_key(&self) -> Option<&str> {
        self.inner.sow_key()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// A sequenced command the server refused (seeds: `failed_write_handler`).
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

/// Parse a whole frame (prefix included) into a message, for failed writes and synthesized acks.
pub(crate) fn parse_frame(frame: &[u8]) -> Option<Message> {
    let body = frame.get(amps_core::codec::PREFIX_LEN..)?;
    let mut scratch = vec![0u8; body.len()];
    let mut sc = amps_core::codec::Scratch::new(&mut scratch);
    let msg = amps_core::codec::Message::parse(body, &mut sc).ok()?;
    Some(Message::new(OwnedMessage::from_message(&msg), None, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use amps_core::codec::{Command, Message as CoreMessage, Scratch};

    fn parse(text: &str) -> Message {
        let mut sc = [0u8; 256];
        let m = CoreMessage::parse(text.as_bytes(), &mut Scratch::new(&mut sc)).unwrap();
        Message::new(OwnedMessage::from_message(&m), None, false)
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
        assert_eq!(m.data(), "payload");
        assert_eq!(m.data_raw(), b"payload");
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
        let m = parse_frame(&frame).unwrap();
        assert_eq!(m.data_raw(), &[0xff, 0x00, 0x41]);
        assert_eq!(m.data(), "\u{fffd}\u{0}A");
        assert_eq!(m.topic(), Some("t"));
    }
}
