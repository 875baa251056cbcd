//! Owned copies of received messages: a delivery copied out of the session's buffers, with
//! every header accessor of the zero-copy view and no re-parsing (each header is kept as an
//! image, see `Header::write_image`).
//!
//! A reader that copies every delivery for another thread pays for an allocation per message
//! (and, with most allocators, for the lock the consumer's `free` takes on the reader's
//! arena). [`BlockWriter`] avoids that: it copies messages back to back into shared,
//! reference-counted blocks ([`bytes::Bytes`]), one allocation per block.

use bytes::{Bytes, BytesMut};

use amps_core::codec::{CommandKind, Header, HeaderFields, Message};
use amps_core::session::{CommandId, Delivery};

/// Where the parts of an owned message's buffer end; each starts where the one before ends:
/// the frame header's image, the record header's image (empty if none), the route key, then
/// the payload.
#[derive(Clone, Copy, Default)]
struct Ends {
    frame: usize,
    record: usize,
    sub_id: usize,
}

/// A message copied out of a session event: a publish delivery, a `sow` record, an `oof`, a
/// group marker, an ack or a last-chance message.
///
/// Everything lives in one buffer: the image of the frame header, the image of a `sow`
/// record's own header, the route key and the payload. The value itself is small, so queues
/// move it cheaply, and cloning it only counts a reference. Header accessors view the image
/// again: no parsing, a few tens of nanoseconds.
///
/// Built by a [`BlockWriter`], the buffer is a slice of a block shared with the messages
/// copied next to it, and the block lives as long as any of them: a program that keeps a
/// few messages out of many for a long time (a last-value cache) should keep
/// [`OwnedMessage::detach`]ed copies instead.
#[derive(Clone)]
pub(crate) struct OwnedMessage {
    buf: Bytes,
    ends: Ends,
    kind: CommandKind,
    route: Option<CommandId>,
}

/// Copies messages into shared blocks of memory: one allocation per block (and a small one for
/// its reference count) instead of one per message. Each message is a slice of the current
/// block; a message larger than a block gets a block of its own size.
///
/// Memory: a block is freed when the last message in it is dropped, so at most one block per
/// live message is kept, and a reader that drops what it took keeps about two blocks.
#[derive(Debug)]
pub(crate) struct BlockWriter {
    block: BytesMut,
    block_size: usize,
}

impl BlockWriter {
    /// The block size the clients use: small enough that a message kept alone does not keep
    /// much, large enough for tens of typical deliveries per allocation.
    pub(crate) const DEFAULT_BLOCK: usize = 8 * 1024;

    /// A writer of `block_size`-byte blocks (0: one exact-size allocation per message).
    pub(crate) fn new(block_size: usize) -> BlockWriter {
        BlockWriter {
            block: BytesMut::new(),
            block_size,
        }
    }

    /// Copy a delivery (a publish, a `sow` record, an `oof`, a group marker).
    pub(crate) fn delivery(&mut self, d: &Delivery<'_>) -> OwnedMessage {
        let record = d.record.as_ref().map(|r| &r.header);
        let mut m = self.build(d.msg.header(), record, d.sub_id, d.msg.kind(), d.data());
        m.route = Some(d.id);
        m
    }

    /// Copy any message (an ack, a last-chance message).
    pub(crate) fn message<D: HeaderFields>(&mut self, msg: &Message<'_, D>) -> OwnedMessage {
        let none: Option<&Header<'_>> = None;
        self.build(msg.header(), none, "", msg.kind(), msg.data())
    }

    fn build<D: HeaderFields, R: HeaderFields>(
        &mut self,
        h: &Header<'_, D>,
        record: Option<&Header<'_, R>>,
        sub_id: &str,
        kind: CommandKind,
        data: &[u8],
    ) -> OwnedMessage {
        let len = h.image_len() + record.map_or(0, |r| r.image_len()) + sub_id.len() + data.len();
        // After each message the block is empty; its capacity is what is left of it.
        if self.block.capacity() < len {
            self.block = BytesMut::with_capacity(len.max(self.block_size));
        }
        let buf = &mut self.block;
        h.write_image(|b| buf.extend_from_slice(b));
        let frame = buf.len();
        if let Some(r) = record {
            r.write_image(|b| buf.extend_from_slice(b));
        }
        let record_end = buf.len();
        buf.extend_from_slice(sub_id.as_bytes());
        let ends = Ends {
            frame,
            record: record_end,
            sub_id: buf.len(),
        };
        buf.extend_from_slice(data);
        let buf = if self.block.len() == self.block.capacity() {
            // Nothing left to share (an exact-size or oversized message): the whole buffer,
            // without the shared reference count a split would allocate.
            std::mem::take(&mut self.block).freeze()
        } else {
            // The message's bytes leave the block; the block keeps the rest of its capacity.
            self.block.split().freeze()
        };
        OwnedMessage {
            buf,
            ends,
            kind,
            route: None,
        }
    }
}

impl OwnedMessage {
    /// Copy any message (an ack, a last-chance message) into a buffer of its own.
    pub(crate) fn from_message<D: HeaderFields>(msg: &Message<'_, D>) -> Self {
        BlockWriter::new(0).message(msg)
    }

    /// The same message in a buffer of its own, sharing no block with other messages.
    pub(crate) fn detach(&self) -> OwnedMessage {
        // Field by field: cloning `self` would clone (and possibly promote) the shared buffer.
        OwnedMessage {
            buf: Bytes::copy_from_slice(&self.buf),
            ends: self.ends,
            kind: self.kind,
            route: self.route,
        }
    }

    /// Bytes of the copy: header images, route key and payload (what it takes of its block).
    pub(crate) fn copied_len(&self) -> usize {
        self.buf.len()
    }

    fn bytes(&self, start: usize, end: usize) -> &[u8] {
        self.buf.get(start..end).unwrap_or(&[])
    }

    /// The frame's header (for a `sow` record, the batch's outer header).
    pub(crate) fn frame_header(&self) -> Header<'_> {
        // Written by `BlockWriter`, so this never falls back (to an empty header).
        Header::from_image(self.bytes(0, self.ends.frame)).unwrap_or(Header::EMPTY)
    }

    fn record_header(&self) -> Option<Header<'_>> {
        (self.ends.record > self.ends.frame)
            .then(|| Header::from_image(self.bytes(self.ends.frame, self.ends.record)))
            .flatten()
    }

    /// The record header of a `sow` record, else the frame header.
    pub(crate) fn header(&self) -> Header<'_> {
        self.record_header().unwrap_or_else(|| self.frame_header())
    }

    /// What the message is.
    pub(crate) fn kind(&self) -> CommandKind {
        self.kind
    }

    /// The payload.
    pub(crate) fn data(&self) -> &[u8] {
        self.buf.get(self.ends.sub_id..).unwrap_or(&[])
    }

    /// The subscription or query this was delivered for.
    pub(crate) fn route(&self) -> Option<CommandId> {
        self.route
    }

    /// The route key (`sub_id`, or `query_id` for query results), empty if none.
    pub(crate) fn sub_id(&self) -> &str {
        std::str::from_utf8(self.bytes(self.ends.record, self.ends.sub_id)).unwrap_or("")
    }

    /// A field of the record header, else of the frame header.
    pub(crate) fn record_or_frame<'s>(
        &'s self,
        f: impl Fn(&Header<'s>) -> Option<&'s str>,
    ) -> Option<&'s str> {
        let rec = self.record_header();
        match rec.as_ref().and_then(&f) {
            Some(v) => Some(v),
            None => f(&self.frame_header()),
        }
    }

    /// `k` of the record, else of the frame.
    pub(crate) fn sow_key(&self) -> Option<&str> {
        self.record_or_frame(|h| h.sow_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amps_core::codec::Scratch;

    #[test]
    fn owned_copy_keeps_every_field_including_escaped_ones() {
        let frame = br#"{"c":"p","t":"orders","sub_id":"1","k":"7","x":"q\"x","bm":"1|2|"}{"a":1}"#;
        let mut sc = [0u8; 128];
        let msg = Message::parse(frame, &mut Scratch::new(&mut sc)).unwrap();
        let owned = OwnedMessage::from_message(&msg);
        sc.fill(0); // the copy must not depend on the session's scratch
        let h = owned.header();
        assert_eq!(h.topic(), Some("orders"));
        assert_eq!(owned.sow_key(), Some("7"));
        assert_eq!(h.correlation_id(), Some("q\"x"));
        assert_eq!(h.bookmark(), Some("1|2|"));
        assert_eq!(owned.data(), br#"{"a":1}"#);
        assert_eq!(owned.kind(), CommandKind::Publish);
        assert_eq!(owned.sub_id(), "", "only deliveries carry a route key");
    }

    #[test]
    fn a_sow_record_keeps_record_and_frame_fields_and_its_route() {
        use amps_core::Instant;
        use amps_core::session::{Config, Event, Logon, Parts, Session};
        use amps_core::store::{NoBookmarkStore, NoPublishStore};
        let frame = |text: &str| {
            let mut w = (text.len() as u32).to_be_bytes().to_vec();
            w.extend(text.as_bytes());
            w
        };
        let now = Instant::ZERO;
        let cfg = Config::new("c");
        let mut s = Session::new(
            &cfg,
            Parts::heap(&cfg.limits, NoPublishStore, NoBookmarkStore),
        )
        .unwrap();
        s.handle_connected(now, &Logon::default()).unwrap();
        let mut out = [0u8; 4096];
        while s.poll_transmit(now, &mut out).is_some() {}
        s.handle_bytes(
            now,
            &frame(r#"{"c":"ack","cid":"1","a":"processed","status":"success"}"#),
        )
        .unwrap();
        while s.poll_event().is_some() {}
        let q = s
            .execute(now, &amps_core::codec::Command::sow("orders").query_id("q"))
            .unwrap();
        while s.poll_transmit(now, &mut out).is_some() {}
        let batch = r#"{"c":"sow","t":"orders","query_id":"q"}{"k":"1","l":3}abc{"k":"2","x":"a\"b","l":2}de"#;
        s.handle_bytes(now, &frame(batch)).unwrap();
        let mut w = BlockWriter::new(BlockWriter::DEFAULT_BLOCK);
        let mut got = Vec::new();
        while let Some(e) = s.poll_event() {
            if let Event::Delivery(d) = e {
                got.push(w.delivery(&d));
            }
        }
        assert_eq!(got.len(), 2);
        let owned = &got[1];
        assert_eq!(owned.sow_key(), Some("2"));
        assert_eq!(owned.header().correlation_id(), Some("a\"b"));
        assert_eq!(owned.frame_header().topic(), Some("orders"));
        assert_eq!(owned.frame_header().query_id(), Some("q"));
        assert_eq!((owned.sub_id(), owned.data()), ("q", &b"de"[..]));
        assert_eq!(owned.route(), Some(q));
        assert_eq!(got[0].data(), b"abc");
    }

    fn publish(n: usize, payload_len: usize) -> Vec<u8> {
        let mut f =
            format!(r#"{{"c":"p","t":"t{n}","sub_id":"s","s":{n},"x":"a\"{n}"}}"#).into_bytes();
        f.extend(std::iter::repeat_n(b'a' + (n % 26) as u8, payload_len));
        f
    }

    #[test]
    fn messages_written_into_blocks_stay_intact_and_independent() {
        let mut w = BlockWriter::new(1024);
        let mut kept = Vec::new();
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
            let topic = format!("t{n}");
            let x = format!("a\"{n}");
            assert_eq!(m.header().topic(), Some(topic.as_str()));
            assert_eq!(m.header().correlation_id(), Some(x.as_str()));
            assert_eq!(m.header().seq(), Some(*n as u64));
            assert_eq!(m.data().len(), *len);
            assert!(m.data().iter().all(|&b| b == b'a' + (n % 26) as u8));
            let d = m.detach();
            assert_eq!(
                (d.header().topic(), d.data()),
                (m.header().topic(), m.data())
            );
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
