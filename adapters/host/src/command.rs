//! An owned copy of a core [`Command`], so a command built on an application thread (borrowing
//! its strings) can travel to the I/O thread.

use amps_core::Duration;
use amps_core::codec::{AckTypes, Command, CommandKind};

/// Every field of a [`Command`] the client sends on the application's behalf (the logon-only
/// fields are the session's business and are not carried).
#[derive(Clone, Debug)]
pub(crate) struct OwnedCommand {
    kind: CommandKind,
    strs: [Option<Box<str>>; 12],
    seq: Option<u64>,
    expiration: Option<u64>,
    batch_size: Option<u64>,
    top_n: Option<u64>,
    ack: AckTypes,
    data: Vec<u8>,
    timeout: Option<Duration>,
}

const CID: usize = 0;
const SUB_ID: usize = 1;
const QUERY_ID: usize = 2;
const TOPIC: usize = 3;
const FILTER: usize = 4;
const BOOKMARK: usize = 5;
const OPTIONS: usize = 6;
const SOW_KEY: usize = 7;
const CORRELATION: usize = 8;
const ORDER_BY: usize = 9;
const SOW_KEYS: usize = 10;
const MESSAGE_TYPE: usize = 11;

impl OwnedCommand {
    /// Copy `c`.
    pub(crate) fn new(c: &Command<'_>) -> Self {
        let own = |s: Option<&str>| s.map(Box::from);
        OwnedCommand {
            kind: c.kind,
            strs: [
                own(c.command_id),
                own(c.sub_id),
                own(c.query_id),
                own(c.topic),
                own(c.filter),
                own(c.bookmark),
                own(c.options),
                own(c.sow_key),
                own(c.correlation_id),
                own(c.order_by),
                own(c.sow_keys),
                own(c.message_type),
            ],
            seq: c.seq,
            expiration: c.expiration,
            batch_size: c.batch_size,
            top_n: c.top_n,
            ack: c.ack,
            data: c.data.to_vec(),
            timeout: c.timeout,
        }
    }

    /// The command kind.
    pub(crate) fn kind(&self) -> CommandKind {
        self.kind
    }

    /// The `sub_id` the application chose, if any.
    pub(crate) fn sub_id(&self) -> Option<&str> {
        self.strs[SUB_ID].as_deref()
    }

    /// Borrow it back as a core command.
    pub(crate) fn as_command(&self) -> Command<'_> {
        let mut c = Command::new(self.kind).acks(self.ack).data(&self.data);
        let s = |i: usize| self.strs[i].as_deref();
        macro_rules! set {
            ($($i:expr => $m:ident),*) => {$(
                if let Some(v) = s($i) {
                    c = c.$m(v);
                }
            )*};
        }
        set!(CID => command_id, SUB_ID => sub_id, QUERY_ID => query_id, TOPIC => topic,
            FILTER => filter, BOOKMARK => bookmark, OPTIONS => options, SOW_KEY => sow_key,
            CORRELATION => correlation_id, ORDER_BY => order_by, SOW_KEYS => sow_keys,
            MESSAGE_TYPE => message_type);
        macro_rules! set_n {
            ($($f:ident),*) => {$(
                if let Some(v) = self.$f {
                    c = c.$f(v);
                }
            )*};
        }
        set_n!(seq, expiration, batch_size, top_n, timeout);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amps_core::codec::AckType;

    #[test]
    fn round_trip_keeps_every_field() {
        let c = Command::sow_and_subscribe("orders")
            .command_id("7")
            .sub_id("s")
            .query_id("q")
            .filter("/a > 1")
            .bookmark("0")
            .options("oof,")
            .sow_key("k")
            .correlation_id("x")
            .order_by("/a DESC")
            .sow_keys("1,2")
            .message_type("json")
            .seq(3)
            .expiration(4)
            .batch_size(5)
            .top_n(6)
            .timeout(Duration::from_millis(7))
            .ack(AckType::Stats)
            .data(b"payload");
        let owned = OwnedCommand::new(&c);
        assert_eq!(owned.as_command(), c);
        assert_eq!(owned.sub_id(), Some("s"));
        assert_eq!(owned.kind(), CommandKind::SowAndSubscribe);
    }
}
