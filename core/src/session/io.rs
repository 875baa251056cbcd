//! The session's receive and transmit buffers.

use crate::codec::{Command, DecodeError, EncodeError, PREFIX_LEN, split_frame};

/// Receive buffer. Frames are dispatched in place; a frame handed out in several events stays
/// pinned at the front until it is released, so events can borrow it across `poll_event`
/// calls. Released bytes are only overwritten by new input (written into
/// [`RxBuf::spare`]).
pub(crate) struct RxBuf<B> {
    pub(crate) buf: B,
    start: usize,
    end: usize,
    /// Where the complete frames seen so far end (between `start` and `end`): liveness is
    /// counted in complete frames, not bytes, so a server that trickles one frame forever is
    /// not alive.
    framed: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RxBuf<B> {
    pub(crate) fn new(buf: B) -> Self {
        RxBuf {
            buf,
            start: 0,
            end: 0,
            framed: 0,
        }
    }

    /// Move `framed` over the frames that completed; true if at least one did.
    pub(crate) fn frames_completed(&mut self) -> bool {
        let mut any = false;
        self.framed = self.framed.max(self.start);
        loop {
            let Some(prefix) = self.buf.as_ref().get(self.framed..self.framed + PREFIX_LEN) else {
                return any;
            };
            let mut len = [0u8; PREFIX_LEN];
            len.copy_from_slice(prefix);
            let total = (u32::from_be_bytes(len) as usize).saturating_add(PREFIX_LEN);
            if self.framed.saturating_add(total) > self.end {
                return any;
            }
            self.framed += total;
            any = true;
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.as_ref().len()
    }

    /// Make the free space at the end as large as is worth it: the held bytes move to the
    /// front when no more of them are held than were released before them (so each byte is
    /// moved at most once on average, whatever the read sizes), or when there is no free space
    /// at the end at all. Returns how far they moved (0: not moved); positions into the held
    /// bytes shift down by that much.
    pub(crate) fn make_room(&mut self) -> usize {
        let moved = self.start;
        let held = self.end - moved;
        if moved == 0 || (held > moved && self.end < self.capacity()) {
            return 0;
        }
        self.buf.as_mut().copy_within(moved..self.end, 0);
        self.end = held;
        self.framed = self.framed.saturating_sub(moved);
        self.start = 0;
        moved
    }

    /// The free space at the end (see [`RxBuf::make_room`]); empty when the buffer is full.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
        let end = self.end;
        self.buf.as_mut().get_mut(end..).unwrap_or(&mut [])
    }

    /// The first `n` bytes of [`RxBuf::spare`] were written: they are held now. Returns the
    /// count taken (at most the free space).
    pub(crate) fn filled(&mut self, n: usize) -> usize {
        let n = n.min(self.capacity() - self.end);
        self.end += n;
        n
    }

    /// Length of the complete frame at the front (prefix included), if any.
    pub(crate) fn front_frame(&self, max_frame: u32) -> Result<Option<usize>, DecodeError> {
        let held = self.buf.as_ref().get(self.start..self.end).unwrap_or(&[]);
        Ok(split_frame(held, max_frame)?.map(|(_, used)| used))
    }

    /// Where the front frame starts in the buffer.
    pub(crate) fn front(&self) -> usize {
        self.start
    }

    /// The body (header + payload) of the frame of total length `len` at `start` (see
    /// [`RxBuf::front`]). A released frame's bytes stay in place until new input is written
    /// (see [`RxBuf::spare`]) or [`RxBuf::clear`].
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub(crate) fn body_at(&self, start: usize, len: usize) -> &[u8] {
        self.buf
            .as_ref()
            .get(start + PREFIX_LEN..start + len)
            .unwrap_or(&[])
    }

    /// Release the front `len` bytes.
    pub(crate) fn release(&mut self, len: usize) {
        self.start = (self.start + len).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            self.framed = 0;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.framed = 0;
    }
}

/// Transmit buffer: whole frames appended, drained by `poll_transmit` in any chunk size.
pub(crate) struct TxBuf<B> {
    pub(crate) buf: B,
    start: usize,
    end: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> TxBuf<B> {
    pub(crate) fn new(buf: B) -> Self {
        TxBuf {
            buf,
            start: 0,
            end: 0,
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.end - self.start
    }

    pub(crate) fn capacity(&self) -> usize {
        self.buf.as_ref().len()
    }

    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.as_mut().copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    fn tail_space(&mut self) -> &mut [u8] {
        let end = self.end;
        self.buf.as_mut().get_mut(end..).unwrap_or(&mut [])
    }

    /// Whether moving the pending bytes to the front is worth it: only when there are no more
    /// of them than the bytes already sent before them, so that, whatever the transport's
    /// write sizes, compaction copies each byte at most once on average. Otherwise the
    /// caller waits (backpressure) until the transport has taken more.
    fn may_compact(&self) -> bool {
        self.start > 0 && self.pending() <= self.start
    }

    /// Encode `cmd` at the tail without committing it. Pending bytes are moved to the front
    /// only when the frame does not fit behind them (a partial drain must not cost a copy of
    /// everything pending on every encode), see [`TxBuf::may_compact`].
    pub(crate) fn stage(&mut self, cmd: &Command<'_>) -> Result<usize, EncodeError> {
        match cmd.encode(self.tail_space()) {
            Err(EncodeError::BufferTooSmall { needed })
                if self.may_compact() && needed <= self.free() =>
            {
                self.compact();
                cmd.encode(self.tail_space())
            }
            r => r,
        }
    }

    /// The `n` bytes [`TxBuf::stage`] just wrote.
    pub(crate) fn staged(&self, n: usize) -> &[u8] {
        self.buf.as_ref().get(self.end..self.end + n).unwrap_or(&[])
    }

    /// Encode and commit `cmd`.
    pub(crate) fn push_cmd(&mut self, cmd: &Command<'_>) -> Result<usize, EncodeError> {
        let n = self.stage(cmd)?;
        self.commit(n);
        Ok(n)
    }

    /// Free space without compacting.
    pub(crate) fn free(&self) -> usize {
        self.capacity() - self.pending()
    }

    /// `n` bytes were written by [`TxBuf::stage`].
    pub(crate) fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.capacity());
    }

    /// Append `bytes` whole, or nothing.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.free() {
            return false;
        }
        if bytes.len() > self.capacity() - self.end {
            if !self.may_compact() {
                return false;
            }
            self.compact();
        }
        let tail = self.tail_space();
        match tail.get_mut(..bytes.len()) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.commit(bytes.len());
                true
            }
            None => false,
        }
    }

    /// Copy up to `out.len()` pending bytes out.
    pub(crate) fn drain_into(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.pending());
        if let (Some(dst), Some(src)) = (
            out.get_mut(..n),
            self.buf.as_ref().get(self.start..self.start + n),
        ) {
            dst.copy_from_slice(src);
        }
        self.consume(n);
        n
    }

    /// The pending bytes, in order.
    pub(crate) fn pending_bytes(&self) -> &[u8] {
        self.buf.as_ref().get(self.start..self.end).unwrap_or(&[])
    }

    /// The first `n` pending bytes were sent (at most all of them).
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n.min(self.pending());
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::TxBuf;

    #[test]
    fn pending_bytes_move_to_the_front_only_when_no_more_than_were_sent() {
        let mut tx = TxBuf::new([0u8; 10]);
        assert!(tx.append(b"abcdefgh"));
        tx.consume(3);
        // 5 pending behind 3 sent: room for 3 more exists only after moving 5 bytes.
        assert!(!tx.append(b"xyz"), "moving 5 bytes to free 3 is refused");
        assert_eq!(tx.pending_bytes(), b"defgh");
        tx.consume(2);
        assert!(tx.append(b"xyz"), "3 pending behind 5 sent: moved");
        assert_eq!(tx.pending_bytes(), b"fghxyz");
        tx.consume(100);
        assert_eq!((tx.pending(), tx.pending_bytes()), (0, &b""[..]));
        assert!(
            tx.append(b"0123456789"),
            "an emptied buffer starts over at the front"
        );
    }
}
