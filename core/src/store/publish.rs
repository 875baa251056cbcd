//! The publish store: every sequenced command (publish, delta_publish, sow_delete) is kept as
//! its encoded frame until the server acknowledges it as persisted, and replayed in sequence
//! order after a reconnect (docs/protocol.md §8.4; AMPS Python client guide: "PublishStore").

use crate::session::StoreError;

/// Where a session keeps unpersisted frames.
///
/// Sequence numbers are strictly increasing. Implementations must be bounded and report
/// [`StoreError::Full`] rather than grow without limit.
pub trait PublishStore {
    /// False for [`NoPublishStore`]: the session then sends publishes without sequence numbers
    /// or persisted acks, and skips publish replay.
    fn is_enabled(&self) -> bool {
        true
    }
    /// Keep `frame` (a whole encoded frame, prefix included) under `seq`.
    fn store(&mut self, seq: u64, frame: &[u8]) -> Result<(), StoreError>;
    /// Forget every entry with a sequence number `<= seq` (persisted).
    fn discard_up_to(&mut self, seq: u64);
    /// Forget the one entry `seq` (it failed and will not be replayed).
    fn discard(&mut self, seq: u64);
    /// The first entry whose sequence number is `> seq`, for replay in order.
    fn next_after(&mut self, seq: u64) -> Option<(u64, &[u8])>;
    /// The frame stored under `seq`, if it is still there.
    fn get(&mut self, seq: u64) -> Option<&[u8]>;
    /// Entries not yet persisted (the Python client's `unpersisted_count`).
    fn unpersisted_count(&self) -> usize;
    /// Bytes of entries not yet persisted.
    fn unpersisted_bytes(&self) -> usize;
    /// The highest sequence number ever stored (survives discards; file stores recover it).
    fn last_seq(&self) -> u64;
    /// Would an entry of `len` bytes be accepted now (capacity in messages and bytes)?
    fn has_room(&self, len: usize) -> bool;
    /// Make everything stored durable now, whatever the store's sync policy (file stores:
    /// fsync). A no-op for memory stores.
    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// No publish store: the plain client's default.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPublishStore;

impl PublishStore for NoPublishStore {
    fn is_enabled(&self) -> bool {
        false
    }
    fn store(&mut self, _: u64, _: &[u8]) -> Result<(), StoreError> {
        Err(StoreError::Full)
    }
    fn discard_up_to(&mut self, _: u64) {}
    fn discard(&mut self, _: u64) {}
    fn next_after(&mut self, _: u64) -> Option<(u64, &[u8])> {
        None
    }
    fn get(&mut self, _: u64) -> Option<&[u8]> {
        None
    }
    fn unpersisted_count(&self) -> usize {
        0
    }
    fn unpersisted_bytes(&self) -> usize {
        0
    }
    fn last_seq(&self) -> u64 {
        0
    }
    fn has_room(&self, _: usize) -> bool {
        false
    }
}

#[cfg(feature = "alloc")]
impl<P: PublishStore + ?Sized> PublishStore for alloc::boxed::Box<P> {
    fn is_enabled(&self) -> bool {
        (**self).is_enabled()
    }
    fn store(&mut self, seq: u64, frame: &[u8]) -> Result<(), StoreError> {
        (**self).store(seq, frame)
    }
    fn discard_up_to(&mut self, seq: u64) {
        (**self).discard_up_to(seq)
    }
    fn discard(&mut self, seq: u64) {
        (**self).discard(seq)
    }
    fn next_after(&mut self, seq: u64) -> Option<(u64, &[u8])> {
        (**self).next_after(seq)
    }
    fn get(&mut self, seq: u64) -> Option<&[u8]> {
        (**self).get(seq)
    }
    fn unpersisted_count(&self) -> usize {
        (**self).unpersisted_count()
    }
    fn unpersisted_bytes(&self) -> usize {
        (**self).unpersisted_bytes()
    }
    fn last_seq(&self) -> u64 {
        (**self).last_seq()
    }
    fn has_room(&self, len: usize) -> bool {
        (**self).has_room(len)
    }
    fn sync(&mut self) -> Result<(), StoreError> {
        (**self).sync()
    }
}

const REC_HDR: usize = 12; // seq: u64 LE, len: u32 LE

/// A bounded in-memory publish store over any byte buffer (no `alloc` needed).
///
/// Records `[seq u64][len u32][frame]` live in a ring that never splits a record: when one does
/// not fit before the end of the buffer, writing wraps to the front. Capacity is the smaller of
/// `max_messages` and the buffer (minus per-record overhead); a full store is
/// [`StoreError::Full`], which the session reports as backpressure.
#[derive(Debug)]
pub struct MemoryPublishStore<B> {
    buf: B,
    max_messages: usize,
    head: usize,
    tail: usize,
    /// Where the last record before a wrap ends (reading reaches it and jumps to 0).
    wrap_at: Option<usize>,
    count: usize,
    bytes: usize,
    last_seq: u64,
    /// Sequence number of the newest entry held (valid while `count > 0`).
    newest: u64,
    /// (seq, offset) of the entry `next_after` returned last, to replay in O(1) per entry.
    hint: Option<(u64, usize)>,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> MemoryPublishStore<B> {
    /// A store in `buf` holding at most `max_messages` entries.
    pub fn new(buf: B, max_messages: usize) -> Self {
        MemoryPublishStore {
            buf,
            max_messages,
            head: 0,
            tail: 0,
            wrap_at: None,
            count: 0,
            bytes: 0,
            last_seq: 0,
            newest: 0,
            hint: None,
        }
    }

    /// Continue numbering after `seq` (e.g. a store rebuilt after a restart).
    pub fn set_last_seq(&mut self, seq: u64) {
        self.last_seq = self.last_seq.max(seq);
    }

    fn cap(&self) -> usize {
        self.buf.as_ref().len()
    }

    fn read(&self, off: usize) -> Option<(u64, usize)> {
        let b = self.buf.as_ref();
        let seq = u64::from_le_bytes(*b.get(off..off + 8)?.first_chunk::<8>()?);
        let len = u32::from_le_bytes(*b.get(off + 8..off + 12)?.first_chunk::<4>()?) as usize;
        Some((seq, len))
    }

    /// Offset of the record after the one at `off` (following a wrap).
    fn next_off(&self, off: usize, len: usize) -> usize {
        let n = off + REC_HDR + len;
        if Some(n) == self.wrap_at { 0 } else { n }
    }

    fn iter_offsets(&self) -> impl Iterator<Item = (usize, u64, usize)> + '_ {
        let mut off = self.head;
        let mut left = self.count;
        core::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            if Some(off) == self.wrap_at {
                off = 0;
            }
            let (seq, len) = self.read(off)?;
            let here = off;
            off = self.next_off(off, len);
            left -= 1;
            Some((here, seq, len))
        })
    }

    fn frame_at(&self, off: usize, len: usize) -> Option<&[u8]> {
        self.buf.as_ref().get(off + REC_HDR..off + REC_HDR + len)
    }

    fn pop_front(&mut self) {
        if self.count == 0 {
            return;
        }
        if Some(self.head) == self.wrap_at {
            self.head = 0;
            self.wrap_at = None;
        }
        if let Some((_, len)) = self.read(self.head) {
            self.head = self.next_off(self.head, len);
            if self.head == 0 {
                self.wrap_at = None;
            }
            self.bytes -= len;
        }
        self.count -= 1;
        if self.count == 0 {
            self.head = 0;
            self.tail = 0;
            self.wrap_at = None;
        }
    }

    /// Where a record of `need` bytes (header included) would be written, if anywhere.
    fn place(&self, need: usize) -> Option<usize> {
        let cap = self.cap();
        if self.count == 0 {
            return (need <= cap).then_some(0);
        }
        if self.wrap_at.is_some() || self.tail < self.head {
            // Wrapped: free space is [tail, head).
            return (self.tail + need <= self.head).then_some(self.tail);
        }
        if self.tail + need <= cap {
            Some(self.tail)
        } else if need <= self.head {
            Some(0)
        } else {
            None
        }
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> PublishStore for MemoryPublishStore<B> {
    fn store(&mut self, seq: u64, frame: &[u8]) -> Result<(), StoreError> {
        if seq <= self.last_seq && self.count > 0 {
            return Err(StoreError::OutOfOrder);
        }
        let need = REC_HDR + frame.len();
        if need > self.cap() || frame.len() > u32::MAX as usize {
            return Err(StoreError::TooLarge);
        }
        if self.count >= self.max_messages {
            return Err(StoreError::Full);
        }
        let at = self.place(need).ok_or(StoreError::Full)?;
        if at == 0 && self.count > 0 && self.tail != 0 {
            self.wrap_at = Some(self.tail);
        }
        let dst = self
            .buf
            .as_mut()
            .get_mut(at..at + need)
            .ok_or(StoreError::Full)?;
        let (hdr, body) = dst
            .split_first_chunk_mut::<REC_HDR>()
            .ok_or(StoreError::Full)?;
        let (s, l) = hdr.split_at_mut(8);
        s.copy_from_slice(&seq.to_le_bytes());
        l.copy_from_slice(&(frame.len() as u32).to_le_bytes());
        body.copy_from_slice(frame);
        self.tail = at + need;
        self.count += 1;
        self.bytes += frame.len();
        self.last_seq = seq;
        self.newest = seq;
        Ok(())
    }

    fn discard_up_to(&mut self, seq: u64) {
        loop {
            let front = self.iter_offsets().next().map(|(_, s, _)| s);
            match front {
                Some(s) if s <= seq => self.pop_front(),
                _ => break,
            }
        }
        self.hint = None;
    }

    fn discard(&mut self, seq: u64) {
        // Only the oldest entry can be removed from the ring. That is the case that occurs: the
        // server splits persisted runs at a failure (docs/protocol.md §8.4), so by the time the
        // failure ack for `seq` arrives, everything before it has been discarded. An entry that
        // is not the oldest stays and is replayed; the server drops it as a duplicate.
        let front = self.iter_offsets().next().map(|(_, s, _)| s);
        if front == Some(seq) {
            self.pop_front();
            self.hint = None;
        }
    }

    fn next_after(&mut self, seq: u64) -> Option<(u64, &[u8])> {
        if self.count == 0 || seq >= self.newest {
            return None;
        }
        // Continue from the entry returned last when possible (replay is sequential); its
        // successor exists because `seq < newest`.
        let from_hint = match self.hint {
            Some((s, off)) if s == seq => self.read(off).map(|(_, len)| {
                let next = self.next_off(off, len);
                if Some(next) == self.wrap_at { 0 } else { next }
            }),
            _ => None,
        };
        let found = match from_hint.and_then(|off| self.read(off).map(|(s, len)| (off, s, len))) {
            Some(hit) if hit.1 > seq => Some(hit),
            _ => self.iter_offsets().find(|&(_, s, _)| s > seq),
        };
        let (off, s, len) = found?;
        self.hint = Some((s, off));
        self.frame_at(off, len).map(|f| (s, f))
    }

    fn get(&mut self, seq: u64) -> Option<&[u8]> {
        let (off, _, len) = self.iter_offsets().find(|&(_, s, _)| s == seq)?;
        self.frame_at(off, len)
    }

    fn unpersisted_count(&self) -> usize {
        self.count
    }
    fn unpersisted_bytes(&self) -> usize {
        self.bytes
    }
    fn last_seq(&self) -> u64 {
        self.last_seq
    }
    fn has_room(&self, len: usize) -> bool {
        self.count < self.max_messages && self.place(REC_HDR + len).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::replay_all as entries;

    #[test]
    fn stores_discards_and_replays_in_order() {
        let mut s = MemoryPublishStore::new(vec![0u8; 100], 10);
        for i in 1..=4u64 {
            s.store(i, &[i as u8; 10]).unwrap();
        }
        assert_eq!(s.unpersisted_count(), 4);
        s.discard_up_to(2);
        assert_eq!(entries(&mut s), vec![(3, vec![3; 10]), (4, vec![4; 10])]);
        assert_eq!(s.get(4), Some(&[4u8; 10][..]));
        assert_eq!(s.store(4, b"x"), Err(StoreError::OutOfOrder));
    }

    #[test]
    fn wraps_without_splitting_and_refuses_when_full() {
        let mut s = MemoryPublishStore::new(vec![0u8; 64], 100);
        // 3 records of 12+8 = 20 bytes fill 60 of 64.
        for i in 1..=3u64 {
            s.store(i, &[i as u8; 8]).unwrap();
        }
        assert_eq!(s.store(4, &[4; 8]), Err(StoreError::Full));
        s.discard_up_to(1);
        s.store(4, &[4; 8]).unwrap(); // wraps to the front
        assert_eq!(s.store(5, &[5; 8]), Err(StoreError::Full));
        assert_eq!(
            entries(&mut s).iter().map(|e| e.0).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        s.discard_up_to(3);
        assert_eq!(entries(&mut s), vec![(4, vec![4; 8])]);
        s.store(5, &[5; 8]).unwrap();
        s.discard_up_to(5);
        assert_eq!(s.unpersisted_count(), 0);
        assert_eq!(s.last_seq(), 5);
        assert_eq!(s.store(6, &[0; 60]), Err(StoreError::TooLarge));
    }

    #[test]
    fn message_bound() {
        let mut s = MemoryPublishStore::new(vec![0u8; 1000], 2);
        s.store(1, b"a").unwrap();
        s.store(2, b"b").unwrap();
        assert!(!s.has_room(1));
        assert_eq!(s.store(3, b"c"), Err(StoreError::Full));
    }

    #[test]
    fn random_operations_match_a_model() {
        // A tiny deterministic LCG so the test needs no extra crates.
        let mut x = 12345u64;
        let mut rnd = |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        let mut s = MemoryPublishStore::new(vec![0u8; 300], 16);
        let mut model: alloc::collections::VecDeque<(u64, Vec<u8>)> = Default::default();
        let mut seq = 0;
        for _ in 0..5000 {
            if rnd(3) > 0 {
                let len = rnd(40) as usize;
                let f = vec![(seq % 251) as u8; len];
                let ok = s.has_room(len);
                let r = s.store(seq + 1, &f);
                assert_eq!(r.is_ok(), ok);
                if r.is_ok() {
                    seq += 1;
                    model.push_back((seq, f));
                }
            } else if let Some(&(first, _)) = model.front() {
                let upto = first + rnd(4);
                s.discard_up_to(upto);
                model.retain(|(q, _)| *q > upto);
            }
            assert_eq!(s.unpersisted_count(), model.len());
            assert_eq!(entries(&mut s), model.iter().cloned().collect::<Vec<_>>());
        }
    }
}
