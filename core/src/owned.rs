//! Owned messages for host adapters (feature `alloc`): a delivery copied out of the session's
//! buffers, with every header accessor of the zero-copy view and no re-parsing (the parsed
//! fields are kept in compact form next to the copied text).
//!
//! A reader that copies every delivery for another thread pays for an allocation per message
//! (and, with most allocators, for the lock the consumer's `free` takes on the reader's
//! arena). [`BlockWriter`] avoids that: it copies messages back to back into shared,
//! reference-counted blocks ([`bytes::Bytes`]), one allocation per block.

use core::borrow::Borrow;

use bytes::{Bytes, BytesMut};

use crate::codec::{CommandKind, Detached, Header, Message};
use crate::conflate::Keyed;
use crate::session::{CommandId, Delivery};

/// Where the parts of an owned message's buffer end; each starts where the one before ends:
/// the frame header, the record header (empty if none), the route key, then the payload. A
/// header is three parts: its text, the strings decoded from its escapes, and its fields in
/// compact form ([`Detached::compact`]).
#[derive(Clone, Copy, Default)]
struct Ends {
    frame: [usize; 3],
    record: [usize; 3],
    sub_id: usize,
}

/// A message copied out of a session event: a publish delivery, a `sow` record, an `oof`, a
/// group marker, an ack or a last-chance message.
///
/// Everything lives in one buffer: the frame header's text, the strings decoded from its
/// escapes, its parsed fields in compact form, the same for a `sow` record's own header, the
/// route key and the payload. The value itself is small (about 100 bytes), so queues move it
/// cheaply, and cloning it only counts a reference. Header accessors rebuild the parsed
/// header from the compact fields: no parsing, a few tens of nanoseconds.
///
/// Built by a [`BlockWriter`], the buffer is a slice of a block shared with the messages
/// copied next to it, and the block lives as long as any of them: a program that keeps a
/// few messages out of many for a long time (a last-value cache) should keep
/// [`OwnedMessage::detach`]ed copies instead.
#[derive(Clone)]
pub struct OwnedMessage {
    buf: Bytes,
    ends: Ends,
    has_record: bool,
    kind: CommandKind,
    route: Option<CommandId>,
}

/// Bytes a header takes in the buffer.
fn header_len<D: Borrow<Detached>>(h: &Header<'_, D>) -> usize {
    h.raw_bytes().len() + h.escaped().len() + h.fields().compact_len()
}

/// Copy a header into `buf`; where its three parts end.
fn put_header<D: Borrow<Detached>>(buf: &mut BytesMut, h: &Header<'_, D>) -> [usize; 3] {
    buf.extend_from_slice(h.raw_bytes());
    let raw_end = buf.len();
    buf.extend_from_slice(h.escaped().as_bytes());
    let esc_end = buf.len();
    h.fields().compact(|b| buf.extend_from_slice(b));
    [raw_end, esc_end, buf.len()]
}

/// Copies messages into shared blocks of memory: one allocation per block (and a small one for
/// its reference count) instead of one per message. Each message is a slice of the current
/// block; a message larger than a block gets a block of its own size.
///
/// Memory: a block is freed when the last message in it is dropped, so at most one block per
/// live message is kept, and a reader that drops what it took keeps about two blocks.
#[derive(Debug)]
pub struct BlockWriter {
    block: BytesMut,
    block_size: usize,
}

impl BlockWriter {
    /// The block size the adapters use: small enough that a message kept alone does not keep
    /// much, large enough for tens of typical deliveries per allocation.
    pub const DEFAULT_BLOCK: usize = 8 * 1024;

    /// A writer of `block_size`-byte blocks (0: one exact-size allocation per message).
    pub fn new(block_size: usize) -> BlockWriter {
        BlockWriter {
            block: BytesMut::new(),
            block_size,
        }
    }

    /// Copy a delivery (a publish, a `sow` record, an `oof`, a group marker).
    pub fn delivery(&mut self, d: &Delivery<'_>) -> OwnedMessage {
        let record = d.record.as_ref().map(|r| &r.header);
        let mut m = self.build(d.msg.header(), record, d.sub_id, d.msg.kind(), d.data());
        m.route = Some(d.id);
        m
    }

    /// Copy any message (an ack, a last-chance message).
    pub fn message<D: Borrow<Detached>>(&mut self, msg: &Message<'_, D>) -> OwnedMessage {
        let none: Option<&Header<'_>> = None;
        self.build(msg.header(), none, "", msg.kind(), msg.data())
    }

    fn build<D: Borrow<Detached>, R: Borrow<Detached>>(
        &mut self,
        h: &Header<'_, D>,
        record: Option<&Header<'_, R>>,
        sub_id: &str,
        kind: CommandKind,
        data: &[u8],
    ) -> OwnedMessage {
        let len = header_len(h) + record.map_or(0, header_len) + sub_id.len() + data.len();
        // After each message the block is empty; its capacity is what is left of it.
        if self.block.capacity() < len {
            self.block = BytesMut::with_capacity(len.max(self.block_size));
        }
        let buf = &mut self.block;
        let frame = put_header(buf, h);
        let record_ends = match record {
            Some(r) => put_header(buf, r),
            None => [buf.len(); 3],
        };
        buf.extend_from_slice(sub_id.as_bytes());
        let ends = Ends {
            frame,
            record: record_ends,
            sub_id: buf.len(),
        };
        buf.extend_from_slice(data);
        let buf = if self.block.len() == self.block.capacity() {
            // Nothing left to share (an exact-size or oversized message): the whole buffer,
            // without the shared reference count a split would allocate.
            core::mem::take(&mut self.block).freeze()
        } else {
            // The message's bytes leave the block; the block keeps the rest of its capacity.
            self.block.split().freeze()
        };
        OwnedMessage {
            buf,
            ends,
            has_record: record.is_some(),
            kind,
            route: None,
        }
    }
}

impl OwnedMessage {
    /// Copy a delivery into a buffer of its own (see [`BlockWriter`] for many).
    pub fn from_delivery(d: &Delivery<'_>) -> Self {
        BlockWriter::new(0).delivery(d)
    }

    /// Copy any message (an ack, a last-chance message) into a buffer of its own.
    pub fn from_message<D: Borrow<Detached>>(msg: &Message<'_, D>) -> Self {
        BlockWriter::new(0).message(msg)
    }

    /// The same message in a buffer of its own, sharing no block with other messages.
    pub fn detach(&self) -> OwnedMessage {
        // Field by field: cloning `self` would clone (and possibly promote) the shared buffer.
        OwnedMessage {
            buf: Bytes::copy_from_slice(&self.buf),
            ends: self.ends,
            has_record: self.has_record,
            kind: self.kind,
            route: self.route,
        }
    }

    /// Bytes of the copy: header texts, parsed fields, route key and payload (what it takes of
    /// its block).
    pub fn copied_len(&self) -> usize {
        self.buf.len()
    }

    fn bytes(&self, start: usize, end: usize) -> &[u8] {
        self.buf.get(start..end).unwrap_or(&[])
    }

    /// Text copied from a `str` (the fallback is unreachable).
    fn text(&self, start: usize, end: usize) -> &str {
        core::str::from_utf8(self.bytes(start, end)).unwrap_or("")
    }

    /// The header starting at `start` whose parts end at `ends`.
    fn view(&self, start: usize, [raw_end, esc_end, end]: [usize; 3]) -> Header<'_> {
        // The header text is not re-validated here: fields are, one by one, when read.
        let (raw, esc) = (self.bytes(start, raw_end), self.text(raw_end, esc_end));
        // Written by `put_header`, so this never falls back (to an empty header).
        Header::from_compact(self.bytes(esc_end, end), raw, esc)
            .unwrap_or_else(|| Detached::EMPTY.attach(raw, esc))
    }

    /// The frame's header (for a `sow` record, the batch's outer header).
    pub fn frame_header(&self) -> Header<'_> {
        self.view(0, self.ends.frame)
    }

    fn record_header(&self) -> Option<Header<'_>> {
        let [.., frame_end] = self.ends.frame;
        self.has_record
            .then(|| self.view(frame_end, self.ends.record))
    }

    /// The record header of a `sow` record, else the frame header.
    pub fn header(&self) -> Header<'_> {
        self.record_header().unwrap_or_else(|| self.frame_header())
    }

    /// What the message is.
    pub fn kind(&self) -> CommandKind {
        self.kind
    }

    /// The payload (the seeds' `data_raw`).
    pub fn data(&self) -> &[u8] {
        self.buf.get(self.ends.sub_id..).unwrap_or(&[])
    }

    /// The payload as text, if UTF-8 (the seeds' `data`).
    pub fn data_str(&self) -> Option<&str> {
        core::str::from_utf8(self.data()).ok()
    }

    /// The subscription or query this was delivered for.
    pub fn route(&self) -> Option<CommandId> {
        self.route
    }

    /// The route key (`sub_id`, or `query_id` for query results).
    pub fn sub_id(&self) -> &str {
        let [.., record_end] = self.ends.record;
        self.text(record_end, self.ends.sub_id)
    }

    fn record_or_frame<'s>(
        &'s self,
        f: impl Fn(&Header<'s>) -> Option<&'s str>,
    ) -> Option<&'s str> {
        let rec = self.record_header();
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
            .field("data", &alloc::string::String::from_utf8_lossy(self.data()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Scratch, SowRecord};
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
    fn a_sow_record_with_escapes_keeps_record_and_frame_fields() {
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

    fn publish(n: usize, payload_len: usize) -> alloc::vec::Vec<u8> {
        let mut f = alloc::format!(r#"{{"c":"p","t":"t{n}","sub_id":"s","s":{n},"x":"a\"{n}"}}"#)
            .into_bytes();
        f.extend(core::iter::repeat_n(b'a' + (n % 26) as u8, payload_len));
        f
    }

    #[test]
    fn messages_written_into_blocks_stay_intact_and_independent() {
        let mut w = BlockWriter::new(1024);
        let mut kept = alloc::vec::Vec::new();
        // Small ones share blocks; every fifth is larger than a block and gets its own.
        for n in 0..200 {
            let len = if n % 5 == 0 { 3000 } else { 40 };
            let frame = publish(n, len);
            let mut sc = [0u8; 64];
            let msg = Message::parse(&frame, &mut Scratch::new(&mut sc)).unwrap();
            kept.push((n, len, w.message(&msg)));
        }
        // Drop every other one: the rest must not notice.
        kept.retain(|(n, ..)| n % 2 == 1);
        for (n, len, m) in &kept {
            let topic = alloc::format!("t{n}");
            let x = alloc::format!("a\"{n}");
            assert_eq!(m.topic(), Some(topic.as_str()));
            assert_eq!(m.correlation_id(), Some(x.as_str()));
            assert_eq!(m.header().seq(), Some(*n as u64));
            assert_eq!(m.data().len(), *len);
            assert!(m.data().iter().all(|&b| b == b'a' + (n % 26) as u8));
            let d = m.detach();
            assert_eq!((d.topic(), d.data()), (m.topic(), m.data()));
        }
    }

    #[test]
    fn a_writer_shares_allocations_and_detach_does_not() {
        let frame = publish(1, 10);
        let mut sc = [0u8; 64];
        let msg = Message::parse(&frame, &mut Scratch::new(&mut sc)).unwrap();
        let mut w = BlockWriter::new(BlockWriter::DEFAULT_BLOCK);
        let (a, b) = (w.message(&msg), w.message(&msg));
        let next = |m: &OwnedMessage| m.buf.as_ptr() as usize + m.buf.len();
        // Back to back in one block.
        assert_eq!(next(&a), b.buf.as_ptr() as usize);
        let own = a.detach();
        assert_ne!(own.buf.as_ptr(), a.buf.as_ptr());
        let (c, d) = (
            OwnedMessage::from_message(&msg),
            OwnedMessage::from_message(&msg),
        );
        assert_ne!(next(&c), d.buf.as_ptr() as usize);
        assert_eq!(c.buf.len(), a.buf.len());
    }
}
