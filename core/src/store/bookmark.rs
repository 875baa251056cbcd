//! The bookmark store: which messages of each bookmark subscription were received and which the
//! application discarded (processed), so a resubscription resumes with no gap and no duplicate
//! (docs/protocol.md §10; AMPS Python client guide: "BookmarkStore", `discard()`, MOST_RECENT).

use crate::codec::BookmarkId;
use crate::session::StoreError;

/// Where a session tracks bookmark subscriptions.
///
/// The resume point (MOST_RECENT) is the last bookmark of the longest prefix of received
/// messages that were all discarded: the server replays what follows it (§10.2), and messages
/// after it that were already discarded are filtered out by [`BookmarkStore::log`] returning
/// `false`. With no state the resume point is EPOCH (§10.1).
pub trait BookmarkStore {
    /// False for [`NoBookmarkStore`].
    fn is_enabled(&self) -> bool {
        true
    }
    /// A message with `bookmark` arrived for `sub_id`. `Ok(true)`: deliver it. `Ok(false)`: it
    /// was already discarded (a duplicate after a resume); drop it.
    fn log(&mut self, sub_id: &str, bookmark: &str) -> Result<bool, StoreError>;
    /// The application finished with the message (the Python client's `discard()`).
    fn discard(&mut self, sub_id: &str, bookmark: &str) -> Result<(), StoreError>;
    /// The server reports `bookmark` persisted for the subscription (persisted ack, §10.2).
    fn persisted(&mut self, sub_id: &str, bookmark: &str) -> Result<(), StoreError>;
    /// Write the resume point of `sub_id` into `out`; `""` means no state (use EPOCH).
    fn most_recent<'o>(&mut self, sub_id: &str, out: &'o mut [u8]) -> Result<&'o str, StoreError>;
    /// Forget a subscription.
    fn remove(&mut self, sub_id: &str);
    /// Make everything recorded durable now (file stores: fsync). A no-op for memory stores.
    fn sync(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Drop what the resume points no longer need (Python client: `prune()`; file stores rewrite
    /// their log). A no-op for memory stores, which prune as they go.
    fn prune(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// No bookmark store.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoBookmarkStore;

impl BookmarkStore for NoBookmarkStore {
    fn is_enabled(&self) -> bool {
        false
    }
    fn log(&mut self, _: &str, _: &str) -> Result<bool, StoreError> {
        Ok(true)
    }
    fn discard(&mut self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn persisted(&mut self, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    fn most_recent<'o>(&mut self, _: &str, _: &'o mut [u8]) -> Result<&'o str, StoreError> {
        Ok("")
    }
    fn remove(&mut self, _: &str) {}
}

#[cfg(feature = "alloc")]
impl<S: BookmarkStore + ?Sized> BookmarkStore for alloc::boxed::Box<S> {
    fn is_enabled(&self) -> bool {
        (**self).is_enabled()
    }
    fn log(&mut self, sub_id: &str, bookmark: &str) -> Result<bool, StoreError> {
        (**self).log(sub_id, bookmark)
    }
    fn discard(&mut self, sub_id: &str, bookmark: &str) -> Result<(), StoreError> {
        (**self).discard(sub_id, bookmark)
    }
    fn persisted(&mut self, sub_id: &str, bookmark: &str) -> Result<(), StoreError> {
        (**self).persisted(sub_id, bookmark)
    }
    fn most_recent<'o>(&mut self, sub_id: &str, out: &'o mut [u8]) -> Result<&'o str, StoreError> {
        (**self).most_recent(sub_id, out)
    }
    fn remove(&mut self, sub_id: &str) {
        (**self).remove(sub_id)
    }
    fn sync(&mut self) -> Result<(), StoreError> {
        (**self).sync()
    }
    fn prune(&mut self) -> Result<(), StoreError> {
        (**self).prune()
    }
}

/// Longest sub_id a [`MemoryBookmarkStore`] keeps.
pub const MAX_SUB_ID: usize = 64;
/// Longest bookmark a [`MemoryBookmarkStore`] keeps (bookmarks of the forms in docs/protocol.md
/// §10.1 are ~40 bytes).
pub const MAX_BOOKMARK: usize = 128;

#[derive(Clone, Copy, Debug)]
struct Text<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Text<N> {
    const EMPTY: Self = Text {
        buf: [0; N],
        len: 0,
    };
    fn set(&mut self, s: &str) -> Result<(), StoreError> {
        let dst = self.buf.get_mut(..s.len()).ok_or(StoreError::TooLarge)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = s.len();
        Ok(())
    }
    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

#[derive(Clone, Copy, Debug)]
struct SubState {
    used: bool,
    name: Text<MAX_SUB_ID>,
    /// Last bookmark removed from the ring as part of the discarded prefix.
    resume: Text<MAX_BOOKMARK>,
    persisted: Text<MAX_BOOKMARK>,
    /// Per publisher, the highest sequence removed as part of the discarded prefix (two-field
    /// bookmarks only). A replay that starts before the current resume point — because the
    /// resubscription went out before the application discarded more — brings those messages
    /// again; they are recognised here although their entries are gone.
    high_water: [(u64, u64); HIGH_WATER_PUBLISHERS],
}

/// Publishers per subscription whose discarded high-water mark is kept; beyond that, only the
/// resume bookmark itself is recognised as a duplicate.
pub const HIGH_WATER_PUBLISHERS: usize = 8;

impl SubState {
    fn note_discarded(&mut self, bookmark: &[u8]) {
        let Some(id) = core::str::from_utf8(bookmark).ok().map(BookmarkId::new) else {
            return;
        };
        let (Some(p), Some(seq)) = (id.publisher(), id.seq()) else {
            return;
        };
        if let Some(slot) = self.high_water.iter_mut().find(|(pp, _)| *pp == p) {
            slot.1 = slot.1.max(seq);
        } else if let Some(slot) = self.high_water.iter_mut().find(|(_, s)| *s == 0) {
            *slot = (p, seq);
        }
    }

    fn is_below_high_water(&self, bookmark: &str) -> bool {
        let id = BookmarkId::new(bookmark);
        match (id.publisher(), id.seq()) {
            (Some(p), Some(seq)) => self
                .high_water
                .iter()
                .any(|&(pp, s)| pp == p && s > 0 && seq <= s),
            _ => false,
        }
    }
}

const ENTRY_HDR: usize = 3; // sub index, discarded flag, bookmark length

/// A bounded in-memory bookmark store over any byte buffer, for up to `SUBS` subscriptions.
///
/// Entries `[sub][discarded][len][bookmark]` are appended in arrival (= log) order; the
/// discarded prefix is dropped as it forms, so memory holds only the window of messages not yet
/// discarded. A full buffer is [`StoreError::Full`] (the session still delivers and reports it).
#[derive(Debug)]
pub struct MemoryBookmarkStore<B, const SUBS: usize = 16> {
    buf: B,
    head: usize,
    tail: usize,
    subs: [SubState; SUBS],
}

impl<B: AsRef<[u8]> + AsMut<[u8]>, const SUBS: usize> MemoryBookmarkStore<B, SUBS> {
    /// A store over `buf`.
    pub fn new(buf: B) -> Self {
        MemoryBookmarkStore {
            buf,
            head: 0,
            tail: 0,
            subs: [SubState {
                used: false,
                name: Text::EMPTY,
                resume: Text::EMPTY,
                persisted: Text::EMPTY,
                high_water: [(0, 0); HIGH_WATER_PUBLISHERS],
            }; SUBS],
        }
    }

    /// The last persisted bookmark the server reported for `sub_id`.
    pub fn persisted_bookmark(&self, sub_id: &str) -> Option<&str> {
        let i = self.find(sub_id)?;
        let t = &self.subs.get(i)?.persisted;
        (t.len > 0)
            .then(|| core::str::from_utf8(t.as_bytes()).ok())
            .flatten()
    }

    fn find(&self, sub_id: &str) -> Option<usize> {
        self.subs
            .iter()
            .position(|s| s.used && s.name.as_bytes() == sub_id.as_bytes())
    }

    fn find_or_add(&mut self, sub_id: &str) -> Result<usize, StoreError> {
        if let Some(i) = self.find(sub_id) {
            return Ok(i);
        }
        if sub_id.len() > MAX_SUB_ID {
            return Err(StoreError::TooLarge);
        }
        // A free slot whose old entries (discarded, stuck behind another subscription's) are
        // all gone, so they cannot be mistaken for the new subscription's.
        let i = (0..SUBS)
            .find(|&i| {
                self.subs.get(i).is_some_and(|s| !s.used) && !self.entries().any(|e| e.1 == i)
            })
            .ok_or(StoreError::Full)?;
        let s = self.subs.get_mut(i).ok_or(StoreError::Full)?;
        s.used = true;
        s.name.set(sub_id)?;
        s.resume.len = 0;
        s.persisted.len = 0;
        s.high_water = [(0, 0); HIGH_WATER_PUBLISHERS];
        Ok(i)
    }

    /// Entries from oldest: (offset, sub, discarded, bookmark).
    fn entries(&self) -> impl Iterator<Item = (usize, usize, bool, &[u8])> + '_ {
        let b = self.buf.as_ref();
        let mut off = self.head;
        core::iter::from_fn(move || {
            if off >= self.tail {
                return None;
            }
            let &[sub, disc, len] = b.get(off..)?.first_chunk::<ENTRY_HDR>()?;
            let (sub, disc, len) = (usize::from(sub), disc != 0, usize::from(len));
            let bm = b.get(off + ENTRY_HDR..off + ENTRY_HDR + len)?;
            let here = off;
            off += ENTRY_HDR + len;
            Some((here, sub, disc, bm))
        })
    }

    /// Drop the discarded prefix, remembering each dropped bookmark as its sub's resume point.
    fn advance(&mut self) {
        loop {
            let front = self.entries().next().map(|(_, sub, disc, bm)| {
                let mut text = Text::<MAX_BOOKMARK>::EMPTY;
                if let Some(dst) = text.buf.get_mut(..bm.len()) {
                    dst.copy_from_slice(bm);
                    text.len = bm.len();
                }
                (sub, disc, bm.len(), text)
            });
            let Some((sub, disc, len, text)) = front else {
                break;
            };
            if !disc {
                break;
            }
            if let Some(s) = self.subs.get_mut(sub).filter(|s| s.used) {
                s.note_discarded(text.as_bytes());
                s.resume = text;
            }
            self.head += ENTRY_HDR + len;
        }
        if self.head == self.tail {
            self.head = 0;
            self.tail = 0;
        }
    }

    fn append(&mut self, sub: usize, bookmark: &str) -> Result<(), StoreError> {
        let need = ENTRY_HDR + bookmark.len();
        if bookmark.len() > MAX_BOOKMARK || need > self.buf.as_ref().len() {
            return Err(StoreError::TooLarge);
        }
        if self.tail + need > self.buf.as_ref().len() && self.head > 0 {
            // Compact: the live window is usually small (only undiscarded messages).
            self.buf.as_mut().copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
        let dst = self
            .buf
            .as_mut()
            .get_mut(self.tail..self.tail + need)
            .ok_or(StoreError::Full)?;
        let (hdr, body) = dst
            .split_first_chunk_mut::<ENTRY_HDR>()
            .ok_or(StoreError::Full)?;
        *hdr = [sub as u8, 0, bookmark.len() as u8];
        body.copy_from_slice(bookmark.as_bytes());
        self.tail += need;
        Ok(())
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>, const SUBS: usize> BookmarkStore
    for MemoryBookmarkStore<B, SUBS>
{
    fn log(&mut self, sub_id: &str, bookmark: &str) -> Result<bool, StoreError> {
        let sub = self.find_or_add(sub_id)?;
        let seen = self
            .entries()
            .find(|&(_, s, _, bm)| s == sub && bm == bookmark.as_bytes());
        if let Some((_, _, discarded, _)) = seen {
            return Ok(!discarded);
        }
        if self.subs.get(sub).is_some_and(|s| {
            s.resume.as_bytes() == bookmark.as_bytes() || s.is_below_high_water(bookmark)
        }) {
            return Ok(false);
        }
        self.append(sub, bookmark)?;
        Ok(true)
    }

    fn discard(&mut self, sub_id: &str, bookmark: &str) -> Result<(), StoreError> {
        let Some(sub) = self.find(sub_id) else {
            return Ok(());
        };
        let at = self
            .entries()
            .find(|&(_, s, d, bm)| s == sub && !d && bm == bookmark.as_bytes());
        if let Some((off, ..)) = at
            && let Some(flag) = self.buf.as_mut().get_mut(off + 1)
        {
            *flag = 1;
        }
        self.advance();
        Ok(())
    }

    fn persisted(&mut self, sub_id: &str, bookmark: &str) -> Result<(), StoreError> {
        let sub = self.find_or_add(sub_id)?;
        match self.subs.get_mut(sub) {
            Some(s) => s.persisted.set(bookmark),
            None => Err(StoreError::Full),
        }
    }

    fn most_recent<'o>(&mut self, sub_id: &str, out: &'o mut [u8]) -> Result<&'o str, StoreError> {
        let Some(sub) = self.find(sub_id) else {
            return Ok("");
        };
        let mut best: &[u8] = self.subs.get(sub).map_or(&[], |s| s.resume.as_bytes());
        for (_, s, discarded, bm) in self.entries() {
            if s != sub {
                continue;
            }
            if !discarded {
                break;
            }
            best = bm;
        }
        let dst = out.get_mut(..best.len()).ok_or(StoreError::TooLarge)?;
        dst.copy_from_slice(best);
        core::str::from_utf8(dst).map_err(|_| StoreError::Corrupt)
    }

    fn remove(&mut self, sub_id: &str) {
        let Some(sub) = self.find(sub_id) else { return };
        // Mark the subscription's entries discarded so the ring can drop them; removal is rare,
        // so re-scanning per entry is fine and needs no scratch space.
        loop {
            let next = self.entries().find(|e| e.1 == sub && !e.2).map(|e| e.0);
            let Some(off) = next else { break };
            if let Some(flag) = self.buf.as_mut().get_mut(off + 1) {
                *flag = 1;
            }
        }
        if let Some(s) = self.subs.get_mut(sub) {
            s.used = false;
        }
        self.advance();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recent(s: &mut MemoryBookmarkStore<Vec<u8>, 4>, sub: &str) -> String {
        let mut out = [0u8; 256];
        s.most_recent(sub, &mut out).unwrap().to_string()
    }

    #[test]
    fn resume_point_is_the_end_of_the_discarded_prefix() {
        let mut s = MemoryBookmarkStore::<_, 4>::new(vec![0u8; 512]);
        assert_eq!(recent(&mut s, "a"), "");
        for bm in ["1|1|", "1|2|", "1|3|", "1|4|"] {
            assert!(s.log("a", bm).unwrap());
        }
        s.discard("a", "1|1|").unwrap();
        s.discard("a", "1|3|").unwrap();
        assert_eq!(recent(&mut s, "a"), "1|1|");
        s.discard("a", "1|2|").unwrap();
        assert_eq!(recent(&mut s, "a"), "1|3|");
        // Replay after resuming from 1|3|: 1|4| was not discarded, so it is delivered again;
        // a discarded one is filtered.
        assert!(s.log("a", "1|4|").unwrap());
        assert!(!s.log("a", "1|3|").unwrap());
    }

    #[test]
    fn messages_discarded_after_a_resubscription_are_still_recognised() {
        let mut s = MemoryBookmarkStore::<_, 4>::new(vec![0u8; 512]);
        for i in 1..=4 {
            s.log("a", &format!("7|{i}|")).unwrap();
        }
        s.discard("a", "7|1|").unwrap();
        // The resubscription goes out from 7|1|; then the application finishes 2 and 3.
        assert_eq!(recent(&mut s, "a"), "7|1|");
        s.discard("a", "7|3|").unwrap();
        s.discard("a", "7|2|").unwrap();
        // The replay brings 2, 3 (discarded: drop) and 4 (not yet: deliver again).
        assert!(!s.log("a", "7|2|").unwrap());
        assert!(!s.log("a", "7|3|").unwrap());
        assert!(s.log("a", "7|4|").unwrap());
        assert_eq!(recent(&mut s, "a"), "7|3|");
    }

    #[test]
    fn subscriptions_are_independent_and_removable() {
        let mut s = MemoryBookmarkStore::<_, 4>::new(vec![0u8; 512]);
        s.log("a", "1|1|").unwrap();
        s.log("b", "2|1|").unwrap();
        s.log("a", "1|2|").unwrap();
        s.discard("a", "1|1|").unwrap();
        s.discard("a", "1|2|").unwrap();
        // b's undiscarded entry holds the ring's front, but a's resume point is still right.
        assert_eq!(recent(&mut s, "a"), "1|2|");
        assert_eq!(recent(&mut s, "b"), "");
        s.remove("b");
        assert_eq!(recent(&mut s, "a"), "1|2|");
        assert_eq!(s.head, 0, "everything discarded or removed: ring empty");
    }

    #[test]
    fn bounded() {
        let mut s = MemoryBookmarkStore::<_, 1>::new(vec![0u8; 32]);
        assert!(s.log("a", "1|1|").unwrap());
        assert_eq!(s.log("b", "1|1|"), Err(StoreError::Full));
        for i in 2..=4 {
            let _ = s.log("a", &format!("1|{i}|"));
        }
        assert_eq!(s.log("a", "1|99|"), Err(StoreError::Full));
        s.discard("a", "1|1|").unwrap();
        assert!(s.log("a", "1|99|").unwrap(), "space reused after discard");
        s.persisted("a", "1|2|").unwrap();
        assert_eq!(s.persisted_bookmark("a"), Some("1|2|"));
    }
}
