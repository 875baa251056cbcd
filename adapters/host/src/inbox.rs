//! The driver's inbox: one bounded, batched, multi-producer queue for everything that reaches
//! the loop that owns the session, so every thread's commands keep their order with its
//! publishes (a `flush` after publishes is processed after them).
//!
//! - Publishes are appended as compact records into shared chunks: no allocation per message,
//!   one short lock per publish, and the driver is woken once per batch.
//! - Other commands are queued as [`Op`]s behind the publishes sent before them.
//!
//! Bounds: unprocessed publish bytes (the publish queue, default 4 MiB) and queued commands
//! (count and bytes). A publisher that would pass the publish bound waits until the driver
//! catches up (backpressure, never loss); one record larger than the bound is still accepted
//! when nothing else is pending, so no message size deadlocks. A command beyond the command
//! bound is refused with `Busy`.

use std::collections::VecDeque;

use crate::config::PublishOptions;
use crate::op::Op;
use crate::sync::{Notify, lock};

/// Kinds of publish records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PubKind {
    Publish = 0,
    DeltaPublish = 1,
}

/// kind, flags, then topic, data, correlation id and SOW key lengths (u32 LE), expiration (u64
/// LE).
const REC_HDR: usize = 2 + 4 * 4 + 8;
/// A chunk takes records until it holds this many bytes.
const CHUNK_BYTES: usize = 64 * 1024;

/// Publish records, in order.
pub(crate) struct PubChunk {
    pub(crate) buf: Vec<u8>,
    /// Read position of the driver.
    pub(crate) pos: usize,
}

/// One publish record borrowed from a chunk.
pub(crate) struct PubRecord<'a> {
    pub(crate) kind: PubKind,
    pub(crate) topic: &'a str,
    pub(crate) data: &'a [u8],
    pub(crate) options: PublishOptions<'a>,
    /// Bytes the record occupies in the chunk.
    pub(crate) len: usize,
}

/// Bytes a record takes.
pub(crate) fn record_len(topic: &str, data: &[u8], o: &PublishOptions<'_>) -> usize {
    REC_HDR
        + topic.len()
        + data.len()
        + o.correlation_id.map_or(0, str::len)
        + o.sow_key.map_or(0, str::len)
}

fn put_u32(buf: &mut Vec<u8>, n: usize) {
    // Every length is bounded by the frame size limit, far below 4 GiB.
    buf.extend_from_slice(&(n as u32).to_le_bytes());
}

impl PubChunk {
    fn push(&mut self, kind: PubKind, topic: &str, data: &[u8], o: &PublishOptions<'_>) {
        let flags = u8::from(o.expiration.is_some())
            | u8::from(o.correlation_id.is_some()) << 1
            | u8::from(o.sow_key.is_some()) << 2;
        self.buf.push(kind as u8);
        self.buf.push(flags);
        put_u32(&mut self.buf, topic.len());
        put_u32(&mut self.buf, data.len());
        put_u32(&mut self.buf, o.correlation_id.map_or(0, str::len));
        put_u32(&mut self.buf, o.sow_key.map_or(0, str::len));
        self.buf
            .extend_from_slice(&o.expiration.unwrap_or(0).to_le_bytes());
        self.buf.extend_from_slice(topic.as_bytes());
        self.buf.extend_from_slice(data);
        self.buf
            .extend_from_slice(o.correlation_id.unwrap_or("").as_bytes());
        self.buf
            .extend_from_slice(o.sow_key.unwrap_or("").as_bytes());
    }

    /// The record at the read position, if any. Records are written by `push` from `&str`s;
    /// a malformed one (a bug) reads as `None`.
    pub(crate) fn peek(&self) -> Option<PubRecord<'_>> {
        let rest = self.buf.get(self.pos..)?;
        let hdr = rest.get(..REC_HDR)?;
        let kind = match hdr.first()? {
            1 => PubKind::DeltaPublish,
            _ => PubKind::Publish,
        };
        let flags = *hdr.get(1)?;
        let word = |i: usize| -> Option<usize> {
            let b: [u8; 4] = hdr.get(2 + 4 * i..6 + 4 * i)?.try_into().ok()?;
            Some(u32::from_le_bytes(b) as usize)
        };
        let (tl, dl, xl, kl) = (word(0)?, word(1)?, word(2)?, word(3)?);
        let e = u64::from_le_bytes(hdr.get(18..26)?.try_into().ok()?);
        let mut p = REC_HDR;
        let mut take = |n: usize| {
            let s = rest.get(p..p + n);
            p += n;
            s
        };
        let topic = std::str::from_utf8(take(tl)?).ok()?;
        let data = take(dl)?;
        let x = std::str::from_utf8(take(xl)?).ok()?;
        let k = std::str::from_utf8(take(kl)?).ok()?;
        Some(PubRecord {
            kind,
            topic,
            data,
            options: PublishOptions {
                expiration: (flags & 1 != 0).then_some(e),
                correlation_id: (flags & 2 != 0).then_some(x),
                sow_key: (flags & 4 != 0).then_some(k),
            },
            len: p,
        })
    }
}

/// What the driver receives.
pub(crate) enum Item {
    /// Publish records from application threads.
    Publishes(PubChunk),
    /// Another command from an application thread (or the dispatch thread).
    Op(Op),
}

/// Why an item was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The client is shut down.
    Closed,
    /// The publish queue is full: wait for [`Inbox::space`] and try again.
    Full,
    /// Too many commands are queued.
    Busy,
}

struct State {
    items: VecDeque<Item>,
    /// Publish record bytes queued and not yet processed by the driver.
    pub_bytes: usize,
    /// Publish records queued and not yet processed.
    pub_records: usize,
    /// Publishes in the publish store not yet acknowledged as persisted, as the driver last
    /// reported them: kept under the same lock as `pub_records`, so a reader never counts a
    /// publish in both places (the driver moves it from one to the other in one step).
    stored: usize,
    /// Commands queued and not yet taken.
    ops: usize,
    closed: bool,
    spare_chunks: Vec<Vec<u8>>,
}

/// See the module docs.
pub(crate) struct Inbox {
    state: std::sync::Mutex<State>,
    /// Notified when publish bytes were processed or the inbox closed.
    pub(crate) space: Notify,
    pub_limit: usize,
    op_limit: usize,
    /// Chunk buffers kept for reuse: as many as the publish bound can hold, so a steady
    /// stream of publishes allocates nothing.
    spare_chunks: usize,
}

impl Inbox {
    /// An inbox holding at most `pub_limit` bytes of publishes and `op_limit` commands.
    pub(crate) fn new(pub_limit: usize, op_limit: usize) -> Self {
        Inbox {
            state: std::sync::Mutex::new(State {
                items: VecDeque::new(),
                pub_bytes: 0,
                pub_records: 0,
                stored: 0,
                ops: 0,
                closed: false,
                spare_chunks: Vec::new(),
            }),
            space: Notify::new(),
            pub_limit: pub_limit.max(1),
            op_limit: op_limit.max(1),
            spare_chunks: pub_limit / CHUNK_BYTES + 2,
        }
    }

    /// Queue a publish if it fits. `Ok(true)` if it is the first item the driver has not
    /// been told about (wake it).
    pub(crate) fn try_push_publish(
        &self,
        kind: PubKind,
        topic: &str,
        data: &[u8],
        o: &PublishOptions<'_>,
    ) -> Result<bool, Refused> {
        let len = record_len(topic, data, o);
        let mut st = lock(&self.state);
        if st.closed {
            return Err(Refused::Closed);
        }
        if st.pub_bytes > 0 && st.pub_bytes + len > self.pub_limit {
            return Err(Refused::Full);
        }
        st.pub_bytes += len;
        st.pub_records += 1;
        let first = st.items.is_empty();
        match st.items.back_mut() {
            Some(Item::Publishes(c)) if c.buf.len() + len <= CHUNK_BYTES || c.buf.is_empty() => {
                c.push(kind, topic, data, o)
            }
            _ => {
                let mut buf = st.spare_chunks.pop().unwrap_or_default();
                buf.clear();
                buf.reserve(len.max(CHUNK_BYTES));
                let mut c = PubChunk { buf, pos: 0 };
                c.push(kind, topic, data, o);
                st.items.push_back(Item::Publishes(c));
            }
        }
        Ok(first)
    }

    /// Queue a command. Gives it back if the inbox is closed or too many are queued.
    pub(crate) fn push_op(&self, op: Op) -> Result<(), (Op, Refused)> {
        let mut st = lock(&self.state);
        if st.closed {
            return Err((op, Refused::Closed));
        }
        if st.ops >= self.op_limit && op.is_bounded() {
            return Err((op, Refused::Busy));
        }
        st.ops += 1;
        st.items.push_back(Item::Op(op));
        Ok(())
    }

    /// Move every queued item to the back of `out`.
    pub(crate) fn take(&self, out: &mut VecDeque<Item>) {
        let mut st = lock(&self.state);
        st.ops = 0;
        if out.is_empty() {
            std::mem::swap(out, &mut st.items);
        } else {
            out.append(&mut st.items);
        }
    }

    /// True when items wait.
    pub(crate) fn has_items(&self) -> bool {
        !lock(&self.state).items.is_empty()
    }

    /// The driver processed `records` publishes of `bytes` bytes (publishers waiting for room
    /// may go on), and its publish store holds `stored` unpersisted publishes.
    pub(crate) fn release(&self, bytes: usize, records: usize, stored: usize) {
        {
            let mut st = lock(&self.state);
            st.pub_bytes = st.pub_bytes.saturating_sub(bytes);
            st.pub_records = st.pub_records.saturating_sub(records);
            st.stored = stored;
        }
        if bytes != 0 || records != 0 {
            self.space.notify_all();
        }
    }

    /// Publishes not yet acknowledged as persisted: queued here or in the publish store, one
    /// consistent reading of both.
    pub(crate) fn unpersisted(&self) -> usize {
        let st = lock(&self.state);
        st.stored + st.pub_records
    }

    /// Give a publish chunk's buffer back for reuse.
    pub(crate) fn recycle_chunk(&self, buf: Vec<u8>) {
        if buf.capacity() > 4 * CHUNK_BYTES {
            return;
        }
        let mut st = lock(&self.state);
        if st.spare_chunks.len() < self.spare_chunks {
            st.spare_chunks.push(buf);
        }
    }

    /// Close for good: waiting publishers see `Closed`, new items are refused. Returns what
    /// was still queued.
    pub(crate) fn close(&self) -> VecDeque<Item> {
        let items = {
            let mut st = lock(&self.state);
            st.closed = true;
            std::mem::take(&mut st.items)
        };
        self.space.notify_all();
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(items: &mut VecDeque<Item>) -> Vec<(PubKind, String, Vec<u8>, Option<u64>)> {
        let mut out = Vec::new();
        for item in items.drain(..) {
            if let Item::Publishes(mut c) = item {
                while let Some(r) = c.peek() {
                    out.push((
                        r.kind,
                        r.topic.to_owned(),
                        r.data.to_vec(),
                        r.options.expiration,
                    ));
                    c.pos += r.len;
                }
                assert_eq!(c.pos, c.buf.len());
            }
        }
        out
    }

    #[test]
    fn publishes_round_trip_in_order_across_chunks_with_their_options() {
        let inbox = Inbox::new(1 << 30, 10);
        let big = vec![7u8; CHUNK_BYTES / 3];
        for i in 0..10u8 {
            let kind = if i % 2 == 0 {
                PubKind::Publish
            } else {
                PubKind::DeltaPublish
            };
            let o = PublishOptions {
                expiration: (i == 3).then_some(60),
                correlation_id: Some("c"),
                sow_key: None,
            };
            inbox
                .try_push_publish(
                    kind,
                    &format!("t{i}"),
                    &big[..big.len() - usize::from(i)],
                    &o,
                )
                .unwrap();
        }
        let mut items = VecDeque::new();
        inbox.take(&mut items);
        assert!(items.len() > 1, "records spread over several chunks");
        let got = records(&mut items);
        assert_eq!(got.len(), 10);
        for (i, (kind, topic, data, e)) in got.iter().enumerate() {
            assert_eq!(topic, &format!("t{i}"));
            assert_eq!(data.len(), big.len() - i);
            assert_eq!(*kind == PubKind::DeltaPublish, i % 2 == 1);
            assert_eq!(*e, (i == 3).then_some(60));
        }
    }

    #[test]
    fn the_publish_bound_refuses_until_released_and_one_big_record_passes() {
        let inbox = Inbox::new(100, 10);
        let none = PublishOptions::default();
        inbox
            .try_push_publish(PubKind::Publish, "t", &[0; 70], &none)
            .unwrap();
        assert_eq!(
            inbox.try_push_publish(PubKind::Publish, "t", &[0; 70], &none),
            Err(Refused::Full)
        );
        let ticket = inbox.space.ticket();
        inbox.release(REC_HDR + 71, 1, 0);
        assert!(ticket.wait_blocking(Some(std::time::Instant::now())));
        inbox
            .try_push_publish(PubKind::Publish, "t", &[0; 70], &none)
            .unwrap();
        let empty = Inbox::new(10, 10);
        assert!(
            empty
                .try_push_publish(PubKind::Publish, "t", &[1; 100], &none)
                .is_ok(),
            "nothing pending: a record larger than the bound passes"
        );
        empty.close();
        assert_eq!(
            empty.try_push_publish(PubKind::Publish, "t", b"x", &none),
            Err(Refused::Closed)
        );
    }
}
