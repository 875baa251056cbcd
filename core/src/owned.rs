//! Owned messages for host adapters (feature `alloc`): a delivery copied out of the session's
//! buffers, with every header accessor of the zero-copy view and no re-parsing (the detached
//! header is re-attached to the copied text).

use alloc::string::String;
use alloc::vec::Vec;

use core::borrow::Borrow;

use crate::codec::{CommandKind, Detached, Header, HeaderRef, Message, Scratch};
use crate::conflate::Keyed;
use crate::session::{CommandId, Delivery};

/// Where a header's parts live in [`OwnedMessage`]'s text.
#[derive(Clone, Copy)]
struct HeaderAt {
    raw: (u32, u32),
    esc: (u32, u32),
    fields: Detached,
}

/// A message copied out of a session event: a publish delivery, a `sow` record, an `oof`, a
/// group marker, an ack or a last-chance message.
///
/// Two allocations: every piece of text (the frame header, a record header, strings decoded
/// from escapes, the route key) in one `String`, and the payload in one `Vec`. Header accessors
/// re-attach the detached fields to that text: O(1), no parsing.
#[derive(Clone)]
pub struct OwnedMessage {
    text: String,
    header: HeaderAt,
    record: Option<HeaderAt>,
    sub_id: (u32, u32),
    kind: CommandKind,
    data: Vec<u8>,
    route: Option<CommandId>,
}

/// Append `s` to `text`; its place.
fn put(text: &mut String, s: &str) -> (u32, u32) {
    let start = text.len();
    text.push_str(s);
    (start as u32, text.len() as u32)
}

/// Copy a header's text (and, if it has escapes, the decoded strings) into `text`.
fn put_header<D: Borrow<Detached>>(text: &mut String, h: &Header<'_, D>) -> HeaderAt {
    let raw = put(text, h.raw());
    if h.escaped_len() == 0 {
        return HeaderAt {
            raw,
            esc: (raw.1, raw.1),
            fields: h.detach(),
        };
    }
    // The decoded strings live in the session's scratch, which the copy cannot borrow: parse
    // the header text again into a scratch of our own (only for headers with escapes).
    let mut scratch = alloc::vec![0u8; h.raw().len()];
    let parsed = Header::parse(h.raw().as_bytes(), &mut Scratch::new(&mut scratch))
        .map(|(p, _)| (p.detach(), p.escaped_len()));
    match parsed {
        Ok((fields, n)) => {
            let decoded = core::str::from_utf8(scratch.get(..n).unwrap_or(&[])).unwrap_or("");
            let esc = put(text, decoded);
            HeaderAt { raw, esc, fields }
        }
        Err(_) => HeaderAt {
            raw,
            esc: (raw.1, raw.1),
            fields: h.detach(),
        },
    }
}

impl OwnedMessage {
    fn build<D: Borrow<Detached>, R: Borrow<Detached>>(
        h: &Header<'_, D>,
        record: Option<&Header<'_, R>>,
        sub_id: &str,
        kind: CommandKind,
        data: &[u8],
    ) -> Self {
        let mut text = String::with_capacity(
            h.raw().len() + record.map_or(0, |r| r.raw().len()) + sub_id.len(),
        );
        let header = put_header(&mut text, h);
        let record = record.map(|r| put_header(&mut text, r));
        let sub_id = put(&mut text, sub_id);
        OwnedMessage {
            text,
            header,
            record,
            sub_id,
            kind,
            data: data.to_vec(),
            route: None,
        }
    }

    /// Copy a delivery.
    pub fn from_delivery(d: &Delivery<'_>) -> Self {
        let record = d.record.as_ref().map(|r| &r.header);
        let mut m = OwnedMessage::build(d.msg.header(), record, d.sub_id, d.msg.kind(), d.data());
        m.route = Some(d.id);
        m
    }

    /// Copy any message (an ack, a last-chance message).
    pub fn from_message<D: Borrow<Detached>>(msg: &Message<'_, D>) -> Self {
        OwnedMessage::build(
            msg.header(),
            None::<&Header<'_>>,
            "",
            msg.kind(),
            msg.data(),
        )
    }

    fn view<'s>(&'s self, at: &'s HeaderAt) -> HeaderRef<'s> {
        let slice = |(a, b): (u32, u32)| self.text.get(a as usize..b as usize).unwrap_or("");
        at.fields.view(slice(at.raw), slice(at.esc))
    }

    /// The frame's header (for a `sow` record, the batch's outer header).
    pub fn frame_header(&self) -> HeaderRef<'_> {
        self.view(&self.header)
    }

    /// The record header of a `sow` record, else the frame header.
    pub fn header(&self) -> HeaderRef<'_> {
        self.view(self.record.as_ref().unwrap_or(&self.header))
    }

    /// What the message is.
    pub fn kind(&self) -> CommandKind {
        self.kind
    }

    /// The payload (the seeds' `data_raw`).
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The payload as text, if UTF-8 (the seeds' `data`).
    pub fn data_str(&self) -> Option<&str> {
        core::str::from_utf8(&self.data).ok()
    }

    /// The subscription or query this was delivered for.
    pub fn route(&self) -> Option<CommandId> {
        self.route
    }

    /// The route key (`sub_id`, or `query_id` for query results).
    pub fn sub_id(&self) -> &str {
        self.text
            .get(self.sub_id.0 as usize..self.sub_id.1 as usize)
            .unwrap_or("")
    }

    fn record_or_frame<'s>(
        &'s self,
        f: impl Fn(&HeaderRef<'s>) -> Option<&'s str>,
    ) -> Option<&'s str> {
        let rec = self.record.as_ref().map(|r| self.view(r));
        match rec.as_ref().and_then(&f) {
            Some(v) => Some(v),
            None => f(&self.frame_header()),
        }
    }

    /// `t`.
    pub fn topic(&self) -> Option<&str> {
        self.frame_header().topic()
    }
    /// `k` of the record, else of the frame.
    pub fn sow_key(&self) -> Option<&str> {
        self.record_or_frame(|h| h.sow_key())
    }
    /// `bm` of the record, else of the frame.
    pub fn bookmark(&self) -> Option<&str> {
        self.record_or_frame(|h| h.bookmark())
    }
    /// `x` of the record, else of the frame.
    pub fn correlation_id(&self) -> Option<&str> {
        self.record_or_frame(|h| h.correlation_id())
    }
    /// `ts` of the record, else of the frame.
    pub fn timestamp(&self) -> Option<&str> {
        self.record_or_frame(|h| h.timestamp())
    }
    /// `lp`: the lease of a queue message.
    pub fn lease_period(&self) -> Option<&str> {
        self.frame_header().lease_period()
    }
}

impl Keyed for OwnedMessage {
    fn sow_key(&self) -> Option<&str> {
        OwnedMessage::sow_key(self)
    }
}

impl core::fmt::Debug for OwnedMessage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OwnedMessage")
            .field("kind", &self.kind)
            .field("header", &self.header())
            .field("data", &alloc::string::String::from_utf8_lossy(&self.data))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::SowRecord;
    use crate::session::CommandId;

    #[test]
    fn owned_copy_keeps_every_field_including_escaped_ones() {
        let frame = br#"{"c":"p","t":"orders","sub_id":"1","k":"7","x":"q\"x","bm":"1|2|"}{"a":1}"#;
        let mut sc = [0u8; 128];
        let msg = Message::parse(frame, &mut Scratch::new(&mut sc)).unwrap();
        let owned = OwnedMessage::from_message(&msg);
        sc.fill(0); // the copy must not depend on the session's scratch
        assert_eq!(owned.topic(), Some("orders"));
        assert_eq!(owned.sow_key(), Some("7"));
        assert_eq!(owned.correlation_id(), Some("q\"x"));
        assert_eq!(owned.bookmark(), Some("1|2|"));
        assert_eq!(owned.data(), br#"{"a":1}"#);
        assert_eq!(owned.kind(), CommandKind::Publish);
    }

    #[test]
    fn a_sow_record_with_escapes_copies_into_two_allocations_worth() {
        let frame = br#"{"c":"sow","t":"orders","query_id":"q"}{"k":"1","l":3}abc{"k":"2","x":"a\"b","l":2}de"#;
        let mut sc = [0u8; 128];
        let mut rs = [0u8; 128];
        let msg = Message::parse(frame, &mut Scratch::new(&mut sc)).unwrap();
        let mut rscratch = Scratch::new(&mut rs);
        let (_, next) = msg.sow_record_at(0, &mut rscratch).unwrap().unwrap();
        let (rec, _) = msg.sow_record_at(next, &mut rscratch).unwrap().unwrap();
        let d = Delivery {
            id: CommandId {
                generation: 1,
                cid: 7,
            },
            sub_id: "q",
            msg: msg.as_ref(),
            record: Some(SowRecord {
                header: rec.header.as_ref(),
                data: rec.data,
            }),
        };
        let owned = OwnedMessage::from_delivery(&d);
        rs.fill(0);
        sc.fill(0);
        assert_eq!(
            (owned.sow_key(), owned.correlation_id()),
            (Some("2"), Some("a\"b"))
        );
        assert_eq!(
            (owned.topic(), owned.sub_id(), owned.data()),
            (Some("orders"), "q", &b"de"[..])
        );
        assert_eq!(owned.route().map(|r| r.wire()), Some(7));
        assert_eq!(owned.frame_header().query_id(), Some("q"));
    }
}
