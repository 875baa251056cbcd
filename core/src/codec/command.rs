//! The [`Command`] builder: every command a client sends (docs/protocol.md §6), every header field
//! of §2 and every ack type of §5, written into a caller buffer with no allocation.

use super::error::EncodeError;
use super::field::Field;
use super::types::{AckType, AckTypes, CommandKind};
use super::writer::FrameWriter;
use crate::time::Duration;

/// A command to send, borrowing its strings and payload.
///
/// Build it with a constructor per command and chained setters; it is `Copy`, so a session can
/// keep the original and encode variants (with its own `cid`, `sub_id`, sequence number).
///
/// ```
/// use amps_core::codec::{AckType, Command};
/// let cmd = Command::subscribe("orders")
///     .filter("/qty > 50")
///     .sub_id("2")
///     .command_id("2")
///     .ack(AckType::Processed);
/// let mut buf = [0u8; 128];
/// let n = cmd.encode(&mut buf).unwrap();
/// assert_eq!(
///     &buf[4..n],
///     br#"{"c":"subscribe","cid":"2","sub_id":"2","t":"orders","f":"/qty > 50","a":"processed"}"#
/// );
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub struct Command<'a> {
    /// The command (`c`).
    pub kind: CommandKind,
    /// `cid`.
    pub command_id: Option<&'a str>,
    /// `client_name`.
    pub client_name: Option<&'a str>,
    /// `user_id`.
    pub user_id: Option<&'a str>,
    /// `pw` (redacted in `Debug`).
    pub password: Option<&'a str>,
    /// `sub_id`.
    pub sub_id: Option<&'a str>,
    /// `query_id`.
    pub query_id: Option<&'a str>,
    /// `t`.
    pub topic: Option<&'a str>,
    /// `f`.
    pub filter: Option<&'a str>,
    /// `bm`.
    pub bookmark: Option<&'a str>,
    /// `o`.
    pub options: Option<&'a str>,
    /// `s`.
    pub seq: Option<u64>,
    /// `k`.
    pub sow_key: Option<&'a str>,
    /// `x`.
    pub correlation_id: Option<&'a str>,
    /// `e`.
    pub expiration: Option<u64>,
    /// `bs`.
    pub batch_size: Option<u64>,
    /// `top_n`.
    pub top_n: Option<u64>,
    /// `orderby`.
    pub order_by: Option<&'a str>,
    /// `sow_keys`.
    pub sow_keys: Option<&'a str>,
    /// Requested acks (`a`).
    pub ack: AckTypes,
    /// `mt`.
    pub message_type: Option<&'a str>,
    /// `version`.
    pub version: Option<&'a str>,
    /// Interval of a `start,N` heartbeat (written as `o`; when set, it is the `o` written and
    /// [`Command::options`] is ignored).
    pub heartbeat_start: Option<u64>,
    /// Payload.
    pub data: &'a [u8],
    /// Client-side limit for the `processed` ack; not on the wire.
    pub timeout: Option<Duration>,
}

macro_rules! setters {
    ($($(#[$m:meta])* $name:ident : $ty:ty),* $(,)?) => {
        $(
            $(#[$m])*
            pub const fn $name(mut self, v: $ty) -> Self {
                self.$name = Some(v);
                self
            }
        )*
    };
}

impl<'a> Command<'a> {
    /// An empty command of `kind`. Prefer the named constructors.
    pub const fn new(kind: CommandKind) -> Self {
        Command {
            kind,
            command_id: None,
            client_name: None,
            user_id: None,
            password: None,
            sub_id: None,
            query_id: None,
            topic: None,
            filter: None,
            bookmark: None,
            options: None,
            seq: None,
            sow_key: None,
            correlation_id: None,
            expiration: None,
            batch_size: None,
            top_n: None,
            order_by: None,
            sow_keys: None,
            ack: AckTypes::NONE,
            message_type: None,
            version: None,
            heartbeat_start: None,
            data: &[],
            timeout: None,
        }
    }

    /// `logon` (§6.1), requesting `processed` as §8.1 recommends.
    pub const fn logon(client_name: &'a str) -> Self {
        Command::new(CommandKind::Logon)
            .client_name(client_name)
            .ack(AckType::Processed)
    }
    /// `publish` of `data` to `topic` (§6.2).
    pub const fn publish(topic: &'a str, data: &'a [u8]) -> Self {
        Command::new(CommandKind::Publish).topic(topic).data(data)
    }
    /// `delta_publish` (§6.3).
    pub const fn delta_publish(topic: &'a str, data: &'a [u8]) -> Self {
        Command::new(CommandKind::DeltaPublish)
            .topic(topic)
            .data(data)
    }
    /// `subscribe` (§6.4).
    pub const fn subscribe(topic: &'a str) -> Self {
        Command::new(CommandKind::Subscribe).topic(topic)
    }
    /// `delta_subscribe` (§6.5).
    pub const fn delta_subscribe(topic: &'a str) -> Self {
        Command::new(CommandKind::DeltaSubscribe).topic(topic)
    }
    /// `sow` query (§6.6).
    pub const fn sow(topic: &'a str) -> Self {
        Command::new(CommandKind::Sow).topic(topic)
    }
    /// `sow_and_subscribe` (§6.7).
    pub const fn sow_and_subscribe(topic: &'a str) -> Self {
        Command::new(CommandKind::SowAndSubscribe).topic(topic)
    }
    /// `sow_and_delta_subscribe` (§6.7).
    pub const fn sow_and_delta_subscribe(topic: &'a str) -> Self {
        Command::new(CommandKind::SowAndDeltaSubscribe).topic(topic)
    }
    /// `sow_delete` of every record matching `filter` (§6.8; `1=1` deletes everything).
    pub const fn sow_delete(topic: &'a str, filter: &'a str) -> Self {
        Command::new(CommandKind::SowDelete)
            .topic(topic)
            .filter(filter)
    }
    /// `sow_delete` of the records with these SOW keys (comma list, §6.8).
    pub const fn sow_delete_by_keys(topic: &'a str, keys: &'a str) -> Self {
        Command::new(CommandKind::SowDelete)
            .topic(topic)
            .sow_keys(keys)
    }
    /// `sow_delete` of the record `data` would update if published (§6.8).
    pub const fn sow_delete_by_data(topic: &'a str, data: &'a [u8]) -> Self {
        Command::new(CommandKind::SowDelete).topic(topic).data(data)
    }
    /// `sow_delete` by bookmarks: acknowledges queue messages (§6.8, §11). Add option
    /// `cancel` or `expire` with [`Command::options`] to return or expire them instead.
    pub const fn sow_delete_by_bookmarks(topic: &'a str, bookmarks: &'a str) -> Self {
        Command::new(CommandKind::SowDelete)
            .topic(topic)
            .bookmark(bookmarks)
    }
    /// `unsubscribe` of one id, a comma list, or `all` (§6.9).
    pub const fn unsubscribe(sub_id: &'a str) -> Self {
        Command::new(CommandKind::Unsubscribe).sub_id(sub_id)
    }
    /// `unsubscribe` of every subscription (§6.9).
    pub const fn unsubscribe_all() -> Self {
        Command::unsubscribe("all")
    }
    /// `flush` (§6.10), requesting `completed`.
    pub const fn flush() -> Self {
        Command::new(CommandKind::Flush).ack(AckType::Completed)
    }
    /// `heartbeat` with `o` = `start,N` (§9): start or restart the server timer. Other
    /// options given with [`Command::options`] are not written: `start,N` is the whole `o`.
    pub const fn heartbeat_start(interval_secs: u64) -> Self {
        let mut c = Command::new(CommandKind::Heartbeat);
        c.heartbeat_start = Some(interval_secs);
        c
    }
    /// `heartbeat` with `o` = `beat` (§9).
    pub const fn heartbeat_beat() -> Self {
        Command::new(CommandKind::Heartbeat).options("beat")
    }
    /// `heartbeat` with `o` = `stop` (§9, legacy).
    pub const fn heartbeat_stop() -> Self {
        Command::new(CommandKind::Heartbeat).options("stop")
    }

    setters! {
        /// `cid`: command id echoed on acks. Sessions assign their own.
        command_id: &'a str,
        /// `client_name` (logon).
        client_name: &'a str,
        /// `user_id` (logon).
        user_id: &'a str,
        /// `pw` (logon).
        password: &'a str,
        /// `sub_id`: subscription id (subscribe, unsubscribe, replace, pause/resume).
        sub_id: &'a str,
        /// `query_id` (sow, sow_and_subscribe, unsubscribe of a query).
        query_id: &'a str,
        /// `t`: topic or topic regex.
        topic: &'a str,
        /// `f`: content filter (§13).
        filter: &'a str,
        /// `bm`: bookmark (§10) or queue message ids (§11).
        bookmark: &'a str,
        /// `o`: options (§4); see [`crate::codec::options`].
        options: &'a str,
        /// `s`: publisher sequence number (§8.4).
        seq: u64,
        /// `k`: explicit SOW key (topics keyed by the publisher).
        sow_key: &'a str,
        /// `x`: correlation id.
        correlation_id: &'a str,
        /// `e`: expiration in seconds.
        expiration: u64,
        /// `bs`: records per `sow` message (clients send 10 by default, §6.6).
        batch_size: u64,
        /// `top_n`: maximum records or replayed messages.
        top_n: u64,
        /// `orderby` (§6.6).
        order_by: &'a str,
        /// `sow_keys`: comma list of SOW keys.
        sow_keys: &'a str,
        /// `mt`: message type (logon).
        message_type: &'a str,
        /// `version`: client version (logon).
        version: &'a str,
    }

    /// Client-side time limit for the `processed` ack; not sent on the wire. Takes the core's
    /// `Duration` or a `core::time::Duration` (`std::time::Duration`).
    pub fn timeout(mut self, t: impl Into<Duration>) -> Self {
        self.timeout = Some(t.into());
        self
    }

    /// Payload bytes.
    pub const fn data(mut self, data: &'a [u8]) -> Self {
        self.data = data;
        self
    }
    /// Request one more ack type.
    pub const fn ack(mut self, a: AckType) -> Self {
        self.ack = self.ack.with(a);
        self
    }
    /// Replace the requested ack types.
    pub const fn acks(mut self, a: AckTypes) -> Self {
        self.ack = a;
        self
    }
    /// Remove the options.
    pub const fn clear_options(mut self) -> Self {
        self.options = None;
        self
    }
    /// Remove the bookmark.
    pub const fn clear_bookmark(mut self) -> Self {
        self.bookmark = None;
        self
    }
    /// Remove the command id.
    pub const fn clear_command_id(mut self) -> Self {
        self.command_id = None;
        self
    }
    /// Remove the sequence number.
    pub const fn clear_seq(mut self) -> Self {
        self.seq = None;
        self
    }

    /// Check the fields a command needs (docs/protocol.md §6: R columns).
    pub fn validate(&self) -> Result<(), EncodeError> {
        let missing = |field| Err(EncodeError::MissingField { field });
        match self.kind {
            CommandKind::Logon if self.client_name.is_none() => missing(Field::ClientName),
            CommandKind::Publish
            | CommandKind::DeltaPublish
            | CommandKind::Subscribe
            | CommandKind::DeltaSubscribe
            | CommandKind::Sow
            | CommandKind::SowAndSubscribe
            | CommandKind::SowAndDeltaSubscribe
            | CommandKind::SowDelete
                if self.topic.is_none() =>
            {
                missing(Field::Topic)
            }
            CommandKind::Unsubscribe if self.sub_id.is_none() && self.query_id.is_none() => {
                missing(Field::SubId)
            }
            _ => Ok(()),
        }
    }

    /// Write the whole frame (prefix, header, payload) into `out`; returns its length.
    ///
    /// Keys are abbreviated (§2) and `c` comes first; the remaining order is our convention and
    /// reproduces docs/protocol.md §18's vectors byte for byte.
    pub fn encode(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        self.validate()?;
        let mut w = FrameWriter::with_command(out, self.kind.wire_name());
        #[inline(always)]
        fn s(w: &mut FrameWriter<'_>, f: Field, v: Option<&str>) {
            if let Some(v) = v {
                w.str_prefixed(f.prefix(), v);
            }
        }
        #[inline(always)]
        fn n(w: &mut FrameWriter<'_>, f: Field, v: Option<u64>) {
            if let Some(v) = v {
                w.int_prefixed(f.prefix(), v);
            }
        }
        s(&mut w, Field::CommandId, self.command_id);
        s(&mut w, Field::ClientName, self.client_name);
        s(&mut w, Field::UserId, self.user_id);
        s(&mut w, Field::Password, self.password);
        s(&mut w, Field::SubId, self.sub_id);
        s(&mut w, Field::QueryId, self.query_id);
        s(&mut w, Field::Topic, self.topic);
        s(&mut w, Field::Filter, self.filter);
        s(&mut w, Field::Bookmark, self.bookmark);
        if let Some(hb) = self.heartbeat_start {
            w.put_raw(Field::Options.prefix().as_bytes());
            w.put_raw(b"start,");
            w.put_raw(itoa::Buffer::new().format(hb).as_bytes());
            w.put_raw(b"\"");
        } else {
            s(&mut w, Field::Options, self.options);
        }
        n(&mut w, Field::Seq, self.seq);
        s(&mut w, Field::SowKey, self.sow_key);
        s(&mut w, Field::CorrelationId, self.correlation_id);
        n(&mut w, Field::Expiration, self.expiration);
        n(&mut w, Field::BatchSize, self.batch_size);
        n(&mut w, Field::TopN, self.top_n);
        s(&mut w, Field::OrderBy, self.order_by);
        s(&mut w, Field::SowKeys, self.sow_keys);
        if !self.ack.is_empty() {
            // Names are plain ASCII: written straight into the frame, no escaping needed.
            w.put_raw(Field::AckType.prefix().as_bytes());
            for (i, t) in self.ack.iter().enumerate() {
                if i > 0 {
                    w.put_raw(b",");
                }
                w.put_raw(t.wire_name().as_bytes());
            }
            w.put_raw(b"\"");
        }
        s(&mut w, Field::MessageType, self.message_type);
        s(&mut w, Field::Version, self.version);
        w.finish(self.data)
    }

    /// The frame length [`Command::encode`] would produce.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        match self.encode(&mut []) {
            Err(EncodeError::BufferTooSmall { needed }) => Ok(needed),
            other => other,
        }
    }

    /// Encode into a new `Vec` (alloc convenience).
    #[cfg(feature = "alloc")]
    pub fn to_vec(&self) -> Result<alloc::vec::Vec<u8>, EncodeError> {
        let mut v = alloc::vec![0u8; self.encoded_len()?];
        let n = self.encode(&mut v)?;
        v.truncate(n);
        Ok(v)
    }
}

impl core::fmt::Debug for Command<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("Command");
        d.field("kind", &self.kind);
        let strs = [
            ("command_id", self.command_id),
            ("client_name", self.client_name),
            ("user_id", self.user_id),
            ("sub_id", self.sub_id),
            ("query_id", self.query_id),
            ("topic", self.topic),
            ("filter", self.filter),
            ("bookmark", self.bookmark),
            ("options", self.options),
            ("sow_key", self.sow_key),
            ("correlation_id", self.correlation_id),
            ("order_by", self.order_by),
            ("sow_keys", self.sow_keys),
            ("message_type", self.message_type),
            ("version", self.version),
        ];
        for (name, v) in strs {
            if let Some(v) = v {
                d.field(name, &v);
            }
        }
        if self.password.is_some() {
            d.field("password", &"<redacted>");
        }
        let ints = [
            ("seq", self.seq),
            ("expiration", self.expiration),
            ("batch_size", self.batch_size),
            ("top_n", self.top_n),
            ("heartbeat_start", self.heartbeat_start),
        ];
        for (name, v) in ints {
            if let Some(v) = v {
                d.field(name, &v);
            }
        }
        if !self.ack.is_empty() {
            d.field("ack", &self.ack);
        }
        if let Some(t) = self.timeout {
            d.field("timeout", &t);
        }
        d.field("data_len", &self.data.len()).finish()
    }
}
