//! [`Message`]: a view of any frame, above all what the server sends (docs/protocol.md §7):
//! acks with their stats, publish deliveries, `sow` batches with their records, group
//! begin/end, `oof` and heartbeats.

use core::ops::Deref;

use super::error::DecodeError;
use super::header::{Detached, Header, HeaderFields};
use super::json::Scratch;
use super::options::OptionsIter;
use super::types::{AckType, CommandKind, OofReason, Status};

/// One decoded frame: its header and payload, borrowed from the receive buffer (and scratch).
///
/// Dereferences to [`Header`], so every field accessor is available directly
/// (`msg.topic()`, `msg.bookmark()`, ...).
#[derive(Clone, Copy)]
pub struct Message<'a, D: HeaderFields = Detached> {
    header: Header<'a, D>,
    kind: CommandKind,
    payload: &'a [u8],
}

/// A message whose header positions are borrowed (what a session's events carry).
pub(crate) type MessageRef<'a> = Message<'a, &'a Detached>;

impl<'a> Message<'a> {
    /// Decode a frame body (header + payload, prefix already stripped).
    ///
    /// A missing or unknown `c` is [`DecodeError::UnknownCommand`] (docs/protocol.md §1.4). The
    /// payload is everything after the header: the frame length is authoritative and an `l`
    /// that disagrees is ignored (§7.1, §17.2).
    #[inline(always)]
    pub fn parse(frame: &'a [u8], scratch: &mut Scratch<'a>) -> Result<Message<'a>, DecodeError> {
        // Built in place: the positions are a few hundred bytes, not worth moving.
        let mut m = Message {
            header: Header::blank(frame),
            kind: CommandKind::Heartbeat,
            payload: &[],
        };
        let len = m.header.parse_in(frame, scratch)?;
        m.kind = m.header.command().ok_or(DecodeError::UnknownCommand)?;
        m.payload = frame.get(len..).unwrap_or(&[]);
        Ok(m)
    }
}

impl<'a, D: HeaderFields> Message<'a, D> {
    /// A message from an already parsed header (for example one viewed again with
    /// [`Header::from_image`]) and the payload that follows it.
    pub fn from_header(
        header: Header<'a, D>,
        payload: &'a [u8],
    ) -> Result<Message<'a, D>, DecodeError> {
        let kind = header.command().ok_or(DecodeError::UnknownCommand)?;
        Ok(Message {
            header,
            kind,
            payload,
        })
    }

    /// The frame kind.
    pub fn kind(&self) -> CommandKind {
        self.kind
    }
    /// The header view.
    pub fn header(&self) -> &Header<'a, D> {
        &self.header
    }
    /// Payload bytes (the Python client's `data_raw`).
    pub fn data(&self) -> &'a [u8] {
        self.payload
    }
    /// Payload as text, when it is UTF-8 (the Python client's `data`).
    pub fn data_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.payload).ok()
    }

    /// For an ack: its single type (`a`).
    pub fn ack_type(&self) -> Option<AckType> {
        self.header.ack_type_str().and_then(AckType::from_wire)
    }
    /// True for an ack with status `success` (or no status at all).
    pub fn is_success(&self) -> bool {
        matches!(self.header.status(), None | Some(Status::Success))
    }
    /// Counters of a `stats` ack, or of a `completed`/`processed` ack that carries them (§17.4).
    pub fn stats(&self) -> AckStats {
        let h = &self.header;
        AckStats {
            matches: h.matches(),
            topic_matches: h.topic_matches(),
            records_returned: h.records_returned(),
            records_inserted: h.records_inserted(),
            records_updated: h.records_updated(),
            records_deleted: h.records_deleted(),
        }
    }
    /// The effective queue backlog a subscribe ack reports as `o` = `max_backlog=N` (§11).
    pub fn max_backlog(&self) -> Option<u64> {
        let o = self.header.options()?;
        OptionsIter::new(o)
            .find(|opt| opt.key == "max_backlog")
            .and_then(|opt| opt.value?.parse().ok())
    }
    /// For an `oof`: why (§7.4).
    pub fn oof_reason(&self) -> Option<OofReason> {
        if self.kind != CommandKind::Oof {
            return None;
        }
        Some(
            self.header
                .reason()
                .map_or(OofReason::Other, OofReason::from_wire),
        )
    }

    /// The raw subscription id list: `sids` if present, else `sub_id` (§7.1).
    pub fn sub_ids_raw(&self) -> Option<&'a str> {
        self.header.sub_ids().or(self.header.sub_id())
    }

    /// The subscriptions a delivery or `oof` is for: `sids` if present, else `sub_id` (§7.1).
    pub fn sub_ids(&self) -> SubIds<'a> {
        SubIds(self.header.sub_ids().or(self.header.sub_id()).unwrap_or(""))
    }

    /// The record of a `sow` batch starting at payload offset `offset`, and the offset after
    /// it; `Ok(None)` at the end of the payload. At offset 0 a payload without record headers is
    /// one record keyed by the outer header (§7.2 robustness rule).
    pub fn sow_record_at(
        &self,
        offset: usize,
        scratch: &mut Scratch<'a>,
    ) -> Result<Option<(SowRecord<'a>, usize)>, DecodeError> {
        let payload = self.payload;
        if offset >= payload.len() {
            return Ok(None);
        }
        let rest = payload.get(offset..).unwrap_or(&[]);
        let parsed = Header::parse(rest, scratch);
        let (h, hl) = match parsed {
            Ok((h, hl)) if h.msg_len().is_some() => (h, hl),
            Ok(_) | Err(_) if offset == 0 => {
                return Ok(Some((
                    SowRecord {
                        header: self.header.to_owned_fields(),
                        data: payload,
                    },
                    payload.len(),
                )));
            }
            Ok(_) => return Err(DecodeError::RecordOverrun { offset }),
            Err(DecodeError::MalformedHeader { offset: o, what }) => {
                return Err(DecodeError::MalformedHeader {
                    offset: offset + o,
                    what,
                });
            }
            Err(e) => return Err(e),
        };
        let start = offset + hl;
        let end = h
            .msg_len()
            .and_then(|l| usize::try_from(l).ok())
            .and_then(|l| start.checked_add(l));
        match end {
            Some(end) if end <= payload.len() => Ok(Some((
                SowRecord {
                    header: h,
                    data: payload.get(start..end).unwrap_or(&[]),
                },
                end,
            ))),
            _ => Err(DecodeError::RecordOverrun { offset }),
        }
    }

    /// The records of a `sow` batch (§7.2), each with its own header. Record headers that
    /// contain escapes are decoded into `scratch`.
    pub fn sow_records(&self, scratch: Scratch<'a>) -> SowRecords<'a> {
        SowRecords::new(self.header.to_owned_fields(), self.payload, scratch)
    }
}

impl<'a, D: HeaderFields> Deref for Message<'a, D> {
    type Target = Header<'a, D>;
    fn deref(&self) -> &Header<'a, D> {
        &self.header
    }
}

impl<D: HeaderFields> core::fmt::Debug for Message<'_, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Message")
            .field("kind", &self.kind)
            .field("header", &self.header)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

impl<D: HeaderFields> core::fmt::Debug for SowRecord<'_, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SowRecord")
            .field("header", &self.header)
            .field("data_len", &self.data.len())
            .finish()
    }
}

/// Counters from acks (docs/protocol.md §7.5). Absent counters are `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckStats {
    /// `matches`.
    pub matches: Option<u64>,
    /// `topic_matches`.
    pub topic_matches: Option<u64>,
    /// `records_returned`.
    pub records_returned: Option<u64>,
    /// `records_inserted`.
    pub records_inserted: Option<u64>,
    /// `records_updated`.
    pub records_updated: Option<u64>,
    /// `records_deleted`.
    pub records_deleted: Option<u64>,
}

/// Iterator over the subscription ids of a delivery (comma list, empty items skipped).
#[derive(Clone, Debug)]
pub struct SubIds<'a>(&'a str);

impl<'a> Iterator for SubIds<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        loop {
            if self.0.is_empty() {
                return None;
            }
            let (item, rest) = self.0.split_once(',').unwrap_or((self.0, ""));
            self.0 = rest;
            let item = item.trim();
            if !item.is_empty() {
                return Some(item);
            }
        }
    }
}

/// One record of a `sow` batch: its header (`k`, `l`, `x`, `ts`, ...) and its bytes.
#[derive(Clone, Copy)]
pub struct SowRecord<'a, D: HeaderFields = Detached> {
    /// The record header; for a batch without record headers, the outer header (§7.2).
    pub header: Header<'a, D>,
    /// The record bytes.
    pub data: &'a [u8],
}

impl<'a, D: HeaderFields> SowRecord<'a, D> {
    /// The record's SOW key.
    pub fn sow_key(&self) -> Option<&'a str> {
        self.header.sow_key()
    }
}

/// Iterator over the records of a `sow` message (docs/protocol.md §7.2), zero-copy.
///
/// Loops "parse a record header, take `l` bytes" until the payload is exhausted. If the payload
/// does not begin with a record header carrying `l`, the whole payload is one record keyed by
/// the outer header. An `l` that overruns is [`DecodeError::RecordOverrun`]; after an error the
/// iterator ends.
pub struct SowRecords<'a> {
    msg: Message<'a>,
    pos: usize,
    scratch: Scratch<'a>,
    done: bool,
}

impl<'a> SowRecords<'a> {
    fn new(outer: Header<'a>, payload: &'a [u8], scratch: Scratch<'a>) -> Self {
        let kind = outer.command().unwrap_or(CommandKind::Sow);
        SowRecords {
            msg: Message {
                header: outer,
                kind,
                payload,
            },
            pos: 0,
            scratch,
            done: false,
        }
    }
}

impl<'a> Iterator for SowRecords<'a> {
    type Item = Result<SowRecord<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.msg.sow_record_at(self.pos, &mut self.scratch) {
            Ok(Some((rec, next))) => {
                self.pos = next;
                Some(Ok(rec))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(s: &[u8]) -> Message<'_> {
        Message::parse(s, &mut Scratch::empty()).unwrap()
    }

    #[test]
    fn sow_batch_records_are_zero_copy() {
        let f = br#"{"c":"sow","t":"orders","query_id":"3","bs":2}{"k":"1","l":21}{"id":"A1","qty":100}{"k":"2","l":19}{"id":"A2","qty":5}"#;
        let m = msg(f);
        let recs: Vec<_> = m
            .sow_records(Scratch::empty())
            .map(Result::unwrap)
            .collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            (recs[0].sow_key(), recs[0].data),
            (Some("1"), &br#"{"id":"A1","qty":100}"#[..])
        );
        assert_eq!(
            (recs[1].sow_key(), recs[1].data),
            (Some("2"), &br#"{"id":"A2","qty":5}"#[..])
        );
    }

    #[test]
    fn sow_without_record_headers_is_one_record() {
        let m = msg(br#"{"c":"sow","t":"orders","k":"9"}{"id":"A1"}"#);
        let recs: Vec<_> = m
            .sow_records(Scratch::empty())
            .map(Result::unwrap)
            .collect();
        assert_eq!(recs.len(), 1);
        assert_eq!(
            (recs[0].sow_key(), recs[0].data),
            (Some("9"), &br#"{"id":"A1"}"#[..])
        );
    }

    #[test]
    fn overrunning_record_is_an_error() {
        let m = msg(br#"{"c":"sow"}{"k":"1","l":99}{"id":1}"#);
        let r: Vec<_> = m.sow_records(Scratch::empty()).collect();
        assert_eq!(r.len(), 1);
        assert!(matches!(
            r[0],
            Err(DecodeError::RecordOverrun { offset: 0 })
        ));
        let m = msg(br#"{"c":"sow"}{"k":"1","l":2}{}garbage"#);
        let r: Vec<_> = m.sow_records(Scratch::empty()).collect();
        assert!(r[0].is_ok() && r[1].is_err() && r.len() == 2);
    }

    #[test]
    fn sids_win_over_sub_id() {
        let m = msg(br#"{"c":"p","sub_id":"9","sids":"1,,2 ,3"}x"#);
        assert_eq!(m.sub_ids().collect::<Vec<_>>(), ["1", "2", "3"]);
        let m = msg(br#"{"c":"p","sub_id":"9"}x"#);
        assert_eq!(m.sub_ids().collect::<Vec<_>>(), ["9"]);
    }

    #[test]
    fn unknown_command_is_typed() {
        assert_eq!(
            Message::parse(br#"{"c":"nope"}"#, &mut Scratch::empty()).err(),
            Some(DecodeError::UnknownCommand)
        );
        assert_eq!(
            Message::parse(br#"{"t":"x"}"#, &mut Scratch::empty()).err(),
            Some(DecodeError::UnknownCommand)
        );
    }

    #[test]
    fn ack_accessors() {
        let m =
            msg(br#"{"c":"ack","cid":"6","a":"processed","status":"success","o":"max_backlog=2"}"#);
        assert_eq!(m.ack_type(), Some(AckType::Processed));
        assert_eq!(m.max_backlog(), Some(2));
        assert!(m.is_success());
        let m = msg(br#"{"c":"oof","reason":"delete"}"#);
        assert_eq!(m.oof_reason(), Some(OofReason::Deleted));
    }
}
