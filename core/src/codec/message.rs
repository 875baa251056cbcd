//! [`Message`]: a view of any frame, above all what the server sends (protocol.md §7):
//! acks with their stats, publish deliveries, `sow` batches with their records, group
//! begin/end, `oof` and heartbeats.

use core::ops::Deref;

use super::error::DecodeError;
use super::header::Header;
use super::json::Scratch;
use super::options::OptionsIter;
use super::types::{AckType, CommandKind, OofReason, Status};

/// One decoded frame: its header and payload, borrowed from the receive buffer (and scratch).
///
/// Dereferences to [`Header`], so every field accessor is available directly
/// (`msg.topic()`, `msg.bookmark()`, ...).
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    header: Header<'a>,
    kind: CommandKind,
    payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// Decode a frame body (header + payload, prefix already stripped).
    ///
    /// A missing or unknown `c` is [`DecodeError::UnknownCommand`] (protocol.md §1.4). The
    /// payload is everything after the header: the frame length is authoritative and an `l`
    /// that disagrees is ignored (§7.1, §17.2).
    #[inline(always)]
    pub fn parse(frame: &'a [u8], scratch: &mut Scratch<'a>) -> Result<Message<'a>, DecodeError> {
        let (header, len) = Header::parse(frame, scratch)?;
        let kind = header.command().ok_or(DecodeError::UnknownCommand)?;
        Ok(Message {
            header,
            kind,
            payload: frame.get(len..).unwrap_or(&[]),
        })
    }

    /// The frame kind.
    pub fn kind(&self) -> CommandKind {
        self.kind
    }
    /// The header view.
    pub fn header(&self) -> &Header<'a> {
        &self.header
    }
    /// Payload bytes (the seeds' `data_raw`).
    pub fn data(&self) -> &'a [u8] {
        self.payload
    }
    /// Payload as text, when it is UTF-8 (the seeds' `data`).
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

    /// The subscriptions a delivery or `oof` is for: `sids` if present, else `sub_id` (§7.1).
    pub fn sub_ids(&self) -> SubIds<'a> {
        SubIds(self.header.sub_ids().or(self.header.sub_id()).unwrap_or(""))
    }

    /// The records of a `sow` batch (§7.2), each with its own header. Record headers that
    /// contain escapes are decoded into `scratch`.
    pub fn sow_records(&self, scratch: Scratch<'a>) -> SowRecords<'a> {
        SowRecords::new(self.header, self.payload, scratch)
    }
}

impl<'a> Deref for Message<'a> {
    type Target = Header<'a>;
    fn deref(&self) -> &Header<'a> {
        &self.header
    }
}

/// Counters from acks (protocol.md §7.5). Absent counters are `None`.
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
#[derive(Clone, Copy, Debug)]
pub struct SowRecord<'a> {
    /// The record header; for a batch without record headers, the outer header (§7.2).
    pub header: Header<'a>,
    /// The record bytes.
    pub data: &'a [u8],
}

impl<'a> SowRecord<'a> {
    /// The record's SOW key.
    pub fn sow_key(&self) -> Option<&'a str> {
        self.header.sow_key()
    }
}

/// Iterator over the records of a `sow` message (protocol.md §7.2), zero-copy.
///
/// Loops "parse a record header, take `l` bytes" until the payload is exhausted. If the payload
/// does not begin with a record header carrying `l`, the whole payload is one record keyed by
/// the outer header. An `l` that overruns is [`DecodeError::RecordOverrun`]; after an error the
/// iterator ends.
pub struct SowRecords<'a> {
    outer: Header<'a>,
    payload: &'a [u8],
    pos: usize,
    scratch: Scratch<'a>,
    state: RecState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RecState {
    Start,
    Records,
    Done,
}

impl<'a> SowRecords<'a> {
    fn new(outer: Header<'a>, payload: &'a [u8], scratch: Scratch<'a>) -> Self {
        SowRecords {
            outer,
            payload,
            pos: 0,
            scratch,
            state: RecState::Start,
        }
    }

    fn record_at(&mut self, pos: usize) -> Result<Option<(Header<'a>, usize, usize)>, DecodeError> {
        let rest = self.payload.get(pos..).unwrap_or(&[]);
        let (h, hl) = match Header::parse(rest, &mut self.scratch) {
            Ok(v) => v,
            Err(_) if self.state == RecState::Start => return Ok(None),
            Err(DecodeError::MalformedHeader { offset, what }) => {
                return Err(DecodeError::MalformedHeader {
                    offset: pos + offset,
                    what,
                });
            }
            Err(e) => return Err(e),
        };
        let Some(l) = h.msg_len() else {
            if self.state == RecState::Start {
                return Ok(None);
            }
            return Err(DecodeError::RecordOverrun { offset: pos });
        };
        let start = pos + hl;
        let end = usize::try_from(l).ok().and_then(|l| start.checked_add(l));
        match end {
            Some(end) if end <= self.payload.len() => Ok(Some((h, start, end))),
            _ => Err(DecodeError::RecordOverrun { offset: pos }),
        }
    }
}

impl<'a> Iterator for SowRecords<'a> {
    type Item = Result<SowRecord<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.state == RecState::Done || self.pos >= self.payload.len() {
            self.state = RecState::Done;
            return None;
        }
        let pos = self.pos;
        match self.record_at(pos) {
            Ok(Some((header, start, end))) => {
                self.state = RecState::Records;
                self.pos = end;
                Some(Ok(SowRecord {
                    header,
                    data: self.payload.get(start..end).unwrap_or(&[]),
                }))
            }
            Ok(None) => {
                // No record headers: the payload is one record (robustness rule of §7.2).
                self.state = RecState::Done;
                Some(Ok(SowRecord {
                    header: self.outer,
                    data: self.payload,
                }))
            }
            Err(e) => {
                self.state = RecState::Done;
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
