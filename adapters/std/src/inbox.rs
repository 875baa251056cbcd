//! The I/O thread's inbox: one bounded, batched, multi-producer queue for everything that
//! reaches the thread that owns the session (design.md §3: user handles talk to it through
//! channels, no lock around the session).
//!
//! - Publishes are appended as compact records into shared chunks (no allocation per message,
//!   one uncontended lock per publish, one wake-up per batch), so `publish()` costs a copy of
//!   the message.
//! - Other commands are queued as [`Op`]s behind the publishes sent before them, so every
//!   thread's commands keep their order.
//! - The connection's reader thread queues the bytes it read.
//!
//! Bounds: unprocessed publish bytes and unprocessed inbound bytes each have a limit. A
//! publisher (or the reader) that would pass it waits until the I/O thread catches up
//! (backpressure, never loss); one record larger than the limit is still accepted when nothing
//! else is pending, so no message size deadlocks.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant as StdInstant;

use crate::driver::Op;

/// Kinds of publish records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PubKind {
    Publish = 0,
    DeltaPublish = 1,
}

const REC_HDR: usize = 9; // kind u8, topic len u32 LE, data len u32 LE
/// A chunk takes records until it holds this many bytes.
const CHUNK_BYTES: usize = 64 * 1024;
/// Size of the reader's buffers.
pub(crate) const READ_BYTES: usize = 64 * 1024;
const SPARE_READS: usize = 32;

/// Publish records, in order.
pub(crate) struct PubChunk {
    pub(crate) buf: Vec<u8>,
    /// Read position of the I/O thread.
    pub(crate) pos: usize,
}

/// One publish record borrowed from a chunk.
pub(crate) struct PubRecord<'a> {
    pub(crate) kind: PubKind,
    pub(crate) topic: &'a str,
    pub(crate) data: &'a [u8],
    /// Bytes the record occupies in the chunk.
    pub(crate) len: usize,
}

impl PubChunk {
    fn push(&mut self, kind: PubKind, topic: &str, data: &[u8]) {
        self.buf.push(kind as u8);
        self.buf
            .extend_from_slice(&(topic.len() as u32).to_le_bytes());
        self.buf
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(topic.as_bytes());
        self.buf.extend_from_slice(data);
    }

    /// The record at the read position, if any.
    pub(crate) fn peek(&self) -> Option<PubRecord<'_>> {
        let rest = self.buf.get(self.pos..)?;
        let hdr = rest.get(..REC_HDR)?;
        let kind = match hdr.first()? {
            1 => PubKind::DeltaPublish,
            _ => PubKind::Publish,
        };
        let word = |i: usize| -> Option<usize> {
            let b: [u8; 4] = hdr.get(i..i + 4)?.try_into().ok()?;
            Some(u32::from_le_bytes(b) as usize)
        };
        let (tl, dl) = (word(1)?, word(5)?);
        let topic = rest.get(REC_HDR..REC_HDR + tl)?;
        let data = rest.get(REC_HDR + tl..REC_HDR + tl + dl)?;
        // Written from a `&str` by `push`; the check is cheap next to the copy.
        let topic = std::str::from_utf8(topic).ok()?;
        Some(PubRecord {
            kind,
            topic,
            data,
            len: REC_HDR + tl + dl,
        })
    }

    #[cfg(test)]
    fn is_done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// What the I/O thread receives.
pub(crate) enum Item {
    /// Publish records from application threads.
    Publishes(PubChunk),
    /// Another command from an application thread (or the dispatch thread).
    Op(Op),
    /// Bytes the reader of connection `conn_id` read: `buf[..len]`.
    Bytes {
        conn_id: u64,
        buf: Vec<u8>,
        len: usize,
    },
    /// The reader of connection `conn_id` saw the connection end (`None`: orderly close).
    Closed {
        conn_id: u64,
        error: Option<std::io::Error>,
    },
}

/// The inbox was closed: the client is shut down.
#[derive(Debug)]
pub(crate) struct Closed;

struct State {
    items: VecDeque<Item>,
    /// Publish record bytes queued and not yet processed by the I/O thread.
    pub_bytes: usize,
    /// Inbound bytes queued and not yet given to the session.
    in_bytes: usize,
    /// The I/O thread waits for items.
    sleeping: bool,
    /// Something other than an item needs the I/O thread (e.g. a stream has room again).
    woken: bool,
    closed: bool,
    space_waiters: usize,
    spare_chunks: Vec<Vec<u8>>,
    spare_reads: Vec<Vec<u8>>,
}

/// See the module docs.
pub(crate) struct Inbox {
    state: Mutex<State>,
    /// The I/O thread waits here.
    work: Condvar,
    /// Publishers and readers wait here for room.
    space: Condvar,
    pub_limit: usize,
    in_limit: usize,
    /// Chunk buffers kept for reuse: as many as the publish bound can hold, so a steady
    /// stream of publishes allocates nothing.
    spare_chunks: usize,
}

impl Inbox {
    /// An inbox holding at most `pub_limit` bytes of publishes and `in_limit` inbound bytes.
    pub(crate) fn new(pub_limit: usize, in_limit: usize) -> Self {
        Inbox {
            state: Mutex::new(State {
                items: VecDeque::new(),
                pub_bytes: 0,
                in_bytes: 0,
                sleeping: false,
                woken: false,
                closed: false,
                space_waiters: 0,
                spare_chunks: Vec::new(),
                spare_reads: Vec::new(),
            }),
            work: Condvar::new(),
            space: Condvar::new(),
            pub_limit,
            in_limit,
            spare_chunks: pub_limit / CHUNK_BYTES + 2,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock can only come from an allocation failure; the state
        // is a queue of plain values and stays usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify_work(&self, st: &State) {
        if st.sleeping {
            self.work.notify_one();
        }
    }

    /// Wait until `need` more bytes fit under `limit` of the counter `which` (or the inbox
    /// closes).
    fn wait_room<'a>(
        &self,
        mut st: MutexGuard<'a, State>,
        need: usize,
        limit: usize,
        which: fn(&State) -> usize,
    ) -> Result<MutexGuard<'a, State>, Closed> {
        while !st.closed && which(&st) > 0 && which(&st) + need > limit {
            st.space_waiters += 1;
            st = self.space.wait(st).unwrap_or_else(|p| p.into_inner());
            st.space_waiters -= 1;
        }
        if st.closed { Err(Closed) } else { Ok(st) }
    }

    /// Queue a publish (blocks while the publish bound is reached).
    pub(crate) fn push_publish(
        &self,
        kind: PubKind,
        topic: &str,
        data: &[u8],
    ) -> Result<(), Closed> {
        let len = REC_HDR + topic.len() + data.len();
        let st = self.lock();
        let mut st = self.wait_room(st, len, self.pub_limit, |s| s.pub_bytes)?;
        st.pub_bytes += len;
        match st.items.back_mut() {
            Some(Item::Publishes(c)) if c.buf.len() + len <= CHUNK_BYTES || c.buf.is_empty() => {
                c.push(kind, topic, data)
            }
            _ => {
                let mut buf = st.spare_chunks.pop().unwrap_or_default();
                buf.clear();
                buf.reserve(len.max(CHUNK_BYTES));
                let mut c = PubChunk { buf, pos: 0 };
                c.push(kind, topic, data);
                st.items.push_back(Item::Publishes(c));
            }
        }
        self.notify_work(&st);
        Ok(())
    }

    /// Queue a command. Gives it back if the inbox is closed.
    pub(crate) fn push_op(&self, op: Op) -> Result<(), Op> {
        let mut st = self.lock();
        if st.closed {
            return Err(op);
        }
        st.items.push_back(Item::Op(op));
        self.notify_work(&st);
        Ok(())
    }

    /// Queue bytes read from connection `conn_id` (blocks while the inbound bound is reached).
    /// Gives the buffer back if the inbox is closed.
    pub(crate) fn push_bytes(&self, conn_id: u64, buf: Vec<u8>, len: usize) -> Result<(), Closed> {
        let st = self.lock();
        let mut st = self.wait_room(st, len, self.in_limit, |s| s.in_bytes)?;
        st.in_bytes += len;
        st.items.push_back(Item::Bytes { conn_id, buf, len });
        self.notify_work(&st);
        Ok(())
    }

    /// The reader of connection `conn_id` saw it end.
    pub(crate) fn push_closed(&self, conn_id: u64, error: Option<std::io::Error>) {
        let mut st = self.lock();
        if !st.closed {
            st.items.push_back(Item::Closed { conn_id, error });
            self.notify_work(&st);
        }
    }

    /// Wake the I/O thread without an item (a consumer made room it was waiting for).
    pub(crate) fn wake(&self) {
        let mut st = self.lock();
        st.woken = true;
        self.notify_work(&st);
    }

    /// Move every queued item to `out`. Waits first, until `deadline` (`None`: no limit), if
    /// `wait` and there is nothing to take.
    pub(crate) fn take(&self, out: &mut VecDeque<Item>, wait: bool, deadline: Option<StdInstant>) {
        let mut st = self.lock();
        if wait {
            while st.items.is_empty() && !st.woken && !st.closed {
                st.sleeping = true;
                st = match deadline {
                    None => self.work.wait(st).unwrap_or_else(|p| p.into_inner()),
                    Some(d) => {
                        let left = d.saturating_duration_since(StdInstant::now());
                        if left.is_zero() {
                            break;
                        }
                        self.work
                            .wait_timeout(st, left)
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                };
            }
            st.sleeping = false;
        }
        st.woken = false;
        if out.is_empty() {
            std::mem::swap(out, &mut st.items);
        } else {
            out.append(&mut st.items);
        }
    }

    /// The I/O thread processed `publish` publish bytes and gave `inbound` bytes to the session.
    pub(crate) fn release(&self, publish: usize, inbound: usize) {
        if publish == 0 && inbound == 0 {
            return;
        }
        let mut st = self.lock();
        st.pub_bytes = st.pub_bytes.saturating_sub(publish);
        st.in_bytes = st.in_bytes.saturating_sub(inbound);
        if st.space_waiters > 0 {
            self.space.notify_all();
        }
    }

    /// A reader buffer (recycled when possible), `READ_BYTES` long.
    pub(crate) fn read_buf(&self) -> Vec<u8> {
        let spare = self.lock().spare_reads.pop();
        spare.unwrap_or_else(|| vec![0; READ_BYTES])
    }

    /// Give a reader buffer back for reuse.
    pub(crate) fn recycle_read(&self, buf: Vec<u8>) {
        if buf.len() != READ_BYTES {
            return;
        }
        let mut st = self.lock();
        if st.spare_reads.len() < SPARE_READS {
            st.spare_reads.push(buf);
        }
    }

    /// Give a publish chunk's buffer back for reuse.
    pub(crate) fn recycle_chunk(&self, buf: Vec<u8>) {
        if buf.capacity() > 4 * CHUNK_BYTES {
            return;
        }
        let mut st = self.lock();
        if st.spare_chunks.len() < self.spare_chunks {
            st.spare_chunks.push(buf);
        }
    }

    /// Close for good: waiting publishers and readers return [`Closed`], new items are refused.
    /// Returns what was still queued.
    pub(crate) fn close(&self) -> VecDeque<Item> {
        let mut st = self.lock();
        st.closed = true;
        self.space.notify_all();
        self.work.notify_all();
        std::mem::take(&mut st.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn records(items: &mut VecDeque<Item>) -> Vec<(PubKind, String, Vec<u8>)> {
        let mut out = Vec::new();
        for item in items.drain(..) {
            if let Item::Publishes(mut c) = item {
                while let Some(r) = c.peek() {
                    out.push((r.kind, r.topic.to_owned(), r.data.to_vec()));
                    let len = r.len;
                    c.pos += len;
                }
                assert!(c.is_done());
            }
        }
        out
    }

    #[test]
    fn publishes_round_trip_in_order_across_chunks() {
        let inbox = Inbox::new(1 << 30, 1 << 20);
        let big = vec![7u8; CHUNK_BYTES / 3];
        for i in 0..10u8 {
            let kind = if i % 2 == 0 {
                PubKind::Publish
            } else {
                PubKind::DeltaPublish
            };
            inbox
                .push_publish(kind, &format!("t{i}"), &big[..big.len() - usize::from(i)])
                .unwrap();
        }
        let mut items = VecDeque::new();
        inbox.take(&mut items, false, None);
        assert!(items.len() > 1, "records spread over several chunks");
        let got = records(&mut items);
        assert_eq!(got.len(), 10);
        for (i, (kind, topic, data)) in got.iter().enumerate() {
            assert_eq!(topic, &format!("t{i}"));
            assert_eq!(data.len(), big.len() - i);
            assert_eq!(*kind == PubKind::DeltaPublish, i % 2 == 1);
        }
    }

    /// Wait (with a generous guard) until `n` threads wait for room.
    fn until_waiters(inbox: &Inbox, n: usize) {
        let t0 = StdInstant::now();
        while inbox.lock().space_waiters != n {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(10),
                "no waiter"
            );
            std::thread::yield_now();
        }
    }

    #[test]
    fn publisher_waits_for_room_and_close_releases_it() {
        let inbox = Arc::new(Inbox::new(100, 100));
        inbox.push_publish(PubKind::Publish, "t", &[0; 80]).unwrap();
        let i2 = inbox.clone();
        let t =
            std::thread::spawn(move || i2.push_publish(PubKind::Publish, "t", &[0; 80]).is_ok());
        // The second publish does not fit: it waits until the first is released.
        until_waiters(&inbox, 1);
        inbox.release(89, 0);
        assert!(t.join().unwrap());
        // Full again: close wakes the waiter with an error.
        let i3 = inbox.clone();
        let t =
            std::thread::spawn(move || i3.push_publish(PubKind::Publish, "t", &[0; 80]).is_err());
        until_waiters(&inbox, 1);
        inbox.close();
        assert!(t.join().unwrap());
        assert!(inbox.push_publish(PubKind::Publish, "t", b"x").is_err());
    }

    #[test]
    fn a_record_larger_than_the_bound_passes_when_nothing_is_pending() {
        let inbox = Inbox::new(10, 10);
        inbox
            .push_publish(PubKind::Publish, "t", &[1; 100])
            .unwrap();
        let mut items = VecDeque::new();
        inbox.take(&mut items, false, None);
        assert_eq!(records(&mut items).len(), 1);
    }

    #[test]
    fn take_waits_until_deadline_or_wake() {
        let inbox = Arc::new(Inbox::new(10, 10));
        let mut items = VecDeque::new();
        let t0 = StdInstant::now();
        inbox.take(
            &mut items,
            true,
            Some(t0 + std::time::Duration::from_millis(30)),
        );
        assert!(t0.elapsed() >= std::time::Duration::from_millis(30));
        let i2 = inbox.clone();
        let waker = std::thread::spawn(move || i2.wake());
        // Woken before or while waiting: either way `take` returns without a deadline.
        inbox.take(&mut items, true, None);
        waker.join().unwrap();
        assert!(items.is_empty());
    }
}
