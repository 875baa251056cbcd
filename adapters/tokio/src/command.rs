//! An owned copy of a [`Command`], so a command built on the caller's stack can travel to the
//! driver task.

use amps_core::Duration;
use amps_core::codec::{AckTypes, Command, CommandKind};

const N_STRS: usize = 16;

/// Every field of a [`Command`], owned. Strings are kept in one buffer.
#[derive(Debug)]
pub(crate) struct OwnedCommand {
    kind: CommandKind,
    text: String,
    /// `(start, len)` of each string field in `text`, `None` when absent.
    spans: [Option<(u32, u32)>; N_STRS],
    ints: [Option<u64>; 5],
    ack: AckTypes,
    data: Vec<u8>,
    timeout: Option<Duration>,
}

fn strs<'a>(c: &Command<'a>) -> [Option<&'a str>; N_STRS] {
    [
        c.command_id,
        c.client_name,
        c.user_id,
        c.password,
        c.sub_id,
        c.query_id,
        c.topic,
        c.filter,
        c.bookmark,
        c.options,
        c.sow_key,
        c.correlation_id,
        c.order_by,
        c.sow_keys,
        c.message_type,
        c.version,
    ]
}

impl OwnedCommand {
    pub(crate) fn new(c: &Command<'_>) -> OwnedCommand {
        let mut text = String::new();
        let mut spans = [None; N_STRS];
        for (slot, s) in spans.iter_mut().zip(strs(c)) {
            if let Some(s) = s {
                *slot = Some((text.len() as u32, s.len() as u32));
                text.push_str(s);
            }
        }
        OwnedCommand {
            kind: c.kind,
            text,
            spans,
            ints: [
                c.seq,
                c.expiration,
                c.batch_size,
                c.top_n,
                c.heartbeat_start,
            ],
            ack: c.ack,
            data: c.data.to_vec(),
            timeout: c.timeout,
        }
    }

    fn s(&self, i: usize) -> Option<&str> {
        let (at, len) = self.spans.get(i).copied().flatten()?;
        self.text.get(at as usize..(at + len) as usize)
    }

    /// The command, borrowing this copy.
    pub(crate) fn view(&self) -> Command<'_> {
        let mut c = Command::new(self.kind).acks(self.ack).data(&self.data);
        macro_rules! set {
            ($($i:expr => $m:ident),* $(,)?) => {
                $( if let Some(v) = self.s($i) { c = c.$m(v); } )*
            };
        }
        set! {
            0 => command_id, 1 => client_name, 2 => user_id, 3 => password, 4 => sub_id,
            5 => query_id, 6 => topic, 7 => filter, 8 => bookmark, 9 => options, 10 => sow_key,
            11 => correlation_id, 12 => order_by, 13 => sow_keys, 14 => message_type,
            15 => version,
        }
        let [seq, e, bs, top_n, hb] = self.ints;
        if let Some(v) = seq {
            c = c.seq(v);
        }
        if let Some(v) = e {
            c = c.expiration(v);
        }
        if let Some(v) = bs {
            c = c.batch_size(v);
        }
        if let Some(v) = top_n {
            c = c.top_n(v);
        }
        c.heartbeat_start = hb;
        if let Some(t) = self.timeout {
            c = c.timeout(t);
        }
        c
    }

    pub(crate) fn kind(&self) -> CommandKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amps_core::codec::AckType;

    #[test]
    fn copy_encodes_identically() {
        let c = Command::sow_and_subscribe("orders")
            .filter("/qty > \"5\"")
            .sub_id("s1")
            .options("oof,")
            .batch_size(10)
            .top_n(3)
            .order_by("/id DESC")
            .ack(AckType::Stats)
            .timeout(Duration::from_millis(5));
        let o = OwnedCommand::new(&c);
        assert_eq!(o.view().to_vec().unwrap(), c.to_vec().unwrap());
        assert_eq!(o.view().timeout, c.timeout);
        let p = Command::publish("t", b"payload")
            .correlation_id("x")
            .expiration(9);
        assert_eq!(OwnedCommand::new(&p).view(), p);
    }
}
