//! The queue-ack batch (docs/protocol.md §11; Python client: ack batching): the bookmarks of
//! queue messages acknowledged on one topic, sent together as one `sow_delete`. It lives in a
//! caller buffer ([`super::Parts::ack_batch`]) so that a device without queue subscriptions
//! does not pay for a batch it never fills.

/// The batch in its buffer: the topic, then the bookmarks separated by commas.
pub(super) struct AckBatch<B> {
    buf: B,
    topic_len: usize,
    len: usize,
    /// Bookmarks in the batch.
    pub(super) count: u32,
    /// Flush when `count` reaches this (the batch size, capped by the queue's backlog).
    pub(super) target: u32,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> AckBatch<B> {
    pub(super) fn new(buf: B) -> Self {
        AckBatch {
            buf,
            topic_len: 0,
            len: 0,
            count: 0,
            target: 1,
        }
    }

    /// Forget the batched bookmarks (sent, or their connection ended).
    pub(super) fn clear(&mut self) {
        self.count = 0;
        self.len = self.topic_len;
    }

    fn text(&self, from: usize, to: usize) -> &str {
        let bytes = self.buf.as_ref().get(from..to).unwrap_or(&[]);
        core::str::from_utf8(bytes).unwrap_or("")
    }

    /// The batch's topic (meaningful while `count > 0`).
    pub(super) fn topic(&self) -> &str {
        self.text(0, self.topic_len)
    }

    /// The batched bookmarks, comma-separated.
    pub(super) fn bookmarks(&self) -> &str {
        self.text(self.topic_len, self.len)
    }

    /// Add `bookmark` of a message from `topic`. False, and nothing changed, when the batch
    /// would pass `max` bytes or its buffer (the caller flushes first, or sends a lone
    /// bookmark on its own) or holds another topic's bookmarks.
    pub(super) fn push(&mut self, topic: &str, bookmark: &str, max: usize) -> bool {
        let start = if self.count == 0 { 0 } else { self.len };
        if self.count > 0 && self.topic() != topic {
            return false;
        }
        let sep: &[u8] = if self.count > 0 { b"," } else { b"" };
        let head: &[u8] = if self.count == 0 {
            topic.as_bytes()
        } else {
            &[]
        };
        let end = start + head.len() + sep.len() + bookmark.len();
        if end > max {
            return false;
        }
        let Some(dst) = self.buf.as_mut().get_mut(start..end) else {
            return false;
        };
        let (h, rest) = dst.split_at_mut(head.len());
        h.copy_from_slice(head);
        let (s, b) = rest.split_at_mut(sep.len());
        s.copy_from_slice(sep);
        b.copy_from_slice(bookmark.as_bytes());
        if self.count == 0 {
            self.topic_len = topic.len();
        }
        self.len = end;
        self.count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::AckBatch;

    #[test]
    fn bookmarks_of_one_topic_are_joined_until_the_buffer_is_full() {
        let mut b = AckBatch::new([0u8; 16]);
        assert!(b.push("q", "1|1|", usize::MAX));
        assert!(b.push("q", "2|1|", usize::MAX));
        assert_eq!((b.topic(), b.bookmarks(), b.count), ("q", "1|1|,2|1|", 2));
        assert!(
            !b.push("other", "3|1|", usize::MAX),
            "another topic never joins the batch"
        );
        assert!(
            !b.push("q", "333|1|", usize::MAX),
            "1 + 9 + 1 + 6 bytes > 16"
        );
        assert_eq!(b.bookmarks(), "1|1|,2|1|", "a refused push changes nothing");
        b.clear();
        assert_eq!((b.count, b.bookmarks()), (0, ""));
        assert!(!b.push("other", "33|1|", 9), "past the caller's bound");
        assert!(b.push("other", "33|1|", 10));
        assert_eq!((b.topic(), b.bookmarks()), ("other", "33|1|"));
    }

    #[test]
    fn an_empty_buffer_batches_nothing() {
        let mut b = AckBatch::new([0u8; 0]);
        assert!(!b.push("q", "1|1|", usize::MAX));
        assert_eq!(b.count, 0);
    }
}
