//! Owned messages for host adapters (feature `alloc`): a delivery copied out of the session's
//! buffers, with every header accessor of the zero-copy view and no re-parsing (the detached
//! header is re-attached to the copied text).

use alloc::string::String;
use alloc::vec::Vec;

use crate::codec::{CommandKind, Detached, Header, Message, Scratch};
use crate::conflate::Keyed;
use crate::session::{CommandId, Delivery};

#[derive(Clone)]
struct OwnedHeader {
    raw: String,
    esc: String,
    fields: Detached,
}

impl OwnedHeader {
    fn of(h: &Header<'_>, scratch_text: &str) -> Self {
        OwnedHeader {
            raw: String::from(h.raw()),
            esc: String::from(scratch_text),
            fields: h.detach(),
        }
    }
    fn view(&self) -> Header<'_> {
        self.fields.attach(&self.raw, &self.esc)
    }
}

/// A message copied out of a session event: a publish delivery, a `sow` record, an `oof`, a
/// group marker, an ack or a last-chance message.
#[derive(Clone)]
pub struct OwnedMessage {
    header: OwnedHeader,
    record: Option<OwnedHeader>,
    kind: CommandKind,
    data: Vec<u8>,
    route: Option<CommandId>,
    sub_id: String,
}

impl OwnedMessage {
    /// Copy a delivery.
    pub fn from_delivery(d: &Delivery<'_>) -> Self {
        let mut m = OwnedMessage::from_message(&d.msg);
        m.route = Some(d.id);
        m.sub_id = String::from(d.sub_id);
        if let Some(r) = &d.record {
            m.record = Some(owned_header(&r.header));
            m.data = r.data.to_vec();
        }
        m
    }

    /// Copy any message (an ack, a last-chance message).
    pub fn from_message(msg: &Message<'_>) -> Self {
        OwnedMessage {
            header: owned_header(msg.header()),
            record: None,
            kind: msg.kind(),
            data: msg.data().to_vec(),
            route: None,
            sub_id: String::new(),
        }
    }

    /// The frame's header (for a `sow` record, the batch's outer header).
    pub fn frame_header(&self) -> Header<'_> {
        self.header.view()
    }

    /// The record header of a `sow` record, else the frame header.
    pub fn header(&self) -> Header<'_> {
        self.record.as_ref().unwrap_or(&self.header).view()
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
        &self.sub_id
    }

    /// `t`.
    pub fn topic(&self) -> Option<&str> {
        self.frame_header().topic()
    }
    /// `k` of the record, else of the frame.
    pub fn sow_key(&self) -> Option<&str> {
        self.record
            .as_ref()
            .and_then(|r| r.view().sow_key())
            .or_else(|| self.frame_header().sow_key())
    }
    /// `bm` of the record, else of the frame.
    pub fn bookmark(&self) -> Option<&str> {
        self.record
            .as_ref()
            .and_then(|r| r.view().bookmark())
            .or_else(|| self.frame_header().bookmark())
    }
    /// `x` of the record, else of the frame.
    pub fn correlation_id(&self) -> Option<&str> {
        self.record
            .as_ref()
            .and_then(|r| r.view().correlation_id())
            .or_else(|| self.frame_header().correlation_id())
    }
    /// `ts` of the record, else of the frame.
    pub fn timestamp(&self) -> Option<&str> {
        self.record
            .as_ref()
            .and_then(|r| r.view().timestamp())
            .or_else(|| self.frame_header().timestamp())
    }
    /// `lp`: the lease of a queue message.
    pub fn lease_period(&self) -> Option<&str> {
        self.frame_header().lease_period()
    }
}

fn owned_header(h: &Header<'_>) -> OwnedHeader {
    if h.escaped_len() == 0 {
        return OwnedHeader::of(h, "");
    }
    // The decoded strings live in the session's scratch, which this copy cannot borrow: parse
    // the header text again into a scratch of our own (only for headers with escapes).
    let mut scratch = alloc::vec![0u8; h.raw().len()];
    let raw = String::from(h.raw());
    let (fields, esc) = match Header::parse(raw.as_bytes(), &mut Scratch::new(&mut scratch)) {
        Ok((p, _)) => (p.detach(), p.escaped_len()),
        Err(_) => (h.detach(), 0),
    };
    scratch.truncate(esc);
    OwnedHeader {
        raw,
        esc: String::from_utf8(scratch).unwrap_or_default(),
        fields,
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
}
