//! The bookmark store's state in memory, with exactly the semantics of
//! [`amps_core::store::MemoryBookmarkStore`] (the file store must answer every call as it
//! does), and without its linear scans or its per-message allocations.
//!
//! As in the memory store, every received message is an entry of one global window in arrival
//! order; the discarded prefix of the window is dropped as it forms, each dropped entry
//! becoming its subscription's resume point and raising its publisher's high-water mark (the
//! highest sequence of a two-field bookmark dropped so far, for up to
//! [`HIGH_WATER_PUBLISHERS`] publishers), so that messages replayed from an older resume point
//! are still recognised as discarded. Subscriptions occupy numbered slots; a slot is
//! reused only once no entry of its previous subscription is left in the window. A hash of
//! (slot, bookmark) finds entries in O(1); two keys with the same 64-bit hash (practically
//! never) fall back to a scan, so results never depend on the hash.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use amps_core::codec::BookmarkId;
use amps_core::session::StoreError;
use amps_core::store::{HIGH_WATER_PUBLISHERS, MAX_BOOKMARK};

/// The memory store's cost of a window entry besides its bookmark (its entry header).
pub(super) const ENTRY_COST: usize = 3;

#[derive(Clone, Debug, Default)]
pub(super) struct Slot {
    pub(super) used: bool,
    pub(super) name: String,
    /// Bookmark of the last entry dropped as part of the discarded prefix.
    pub(super) resume: String,
    pub(super) persisted: String,
    /// (publisher, highest sequence) of the dropped discarded prefix; `(_, 0)` is free.
    pub(super) high_water: HighWater,
    /// Entries of this slot in the window.
    entries: usize,
}

/// MemoryBookmarkStore's per-subscription high-water marks.
pub(super) type HighWater = [(u64, u64); HIGH_WATER_PUBLISHERS];

impl Slot {
    /// A discarded bookmark left the window (MemoryBookmarkStore's `note_discarded`).
    fn note_discarded(&mut self, bm: &str) {
        let id = BookmarkId::new(bm);
        let (Some(p), Some(seq)) = (id.publisher(), id.seq()) else {
            return;
        };
        if let Some(slot) = self.high_water.iter_mut().find(|(pp, _)| *pp == p) {
            slot.1 = slot.1.max(seq);
        } else if let Some(slot) = self.high_water.iter_mut().find(|(_, s)| *s == 0) {
            *slot = (p, seq);
        }
    }

    /// Whether `bm` is at or below its publisher's high-water mark.
    fn is_below_high_water(&self, bm: &str) -> bool {
        let id = BookmarkId::new(bm);
        match (id.publisher(), id.seq()) {
            (Some(p), Some(seq)) => self
                .high_water
                .iter()
                .any(|&(pp, s)| pp == p && s > 0 && seq <= s),
            _ => false,
        }
    }

    /// Whether `log` must call `bm` a duplicate although it is not in the window: it is the
    /// resume point, or below a high-water mark.
    pub(super) fn is_discarded(&self, bm: &str) -> bool {
        self.resume == bm || self.is_below_high_water(bm)
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Entry {
    pub(super) slot: u16,
    pub(super) discarded: bool,
    /// Found through `lookup` (false only after a hash collision).
    indexed: bool,
    len: u8,
    /// Absolute offset of the bookmark in `arena`.
    at: u64,
}

/// Passes a precomputed 64-bit hash through.
#[derive(Default)]
pub(super) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) struct Index {
    pub(super) max_subs: usize,
    pub(super) max_window_bytes: usize,
    pub(super) slots: Vec<Slot>,
    by_name: HashMap<Box<str>, u16>,
    window: VecDeque<Entry>,
    /// Absolute index of `window[0]`.
    window_base: u64,
    /// Σ (ENTRY_COST + bookmark length) over the window: the memory store's byte accounting.
    window_bytes: usize,
    /// Bookmark bytes of the window's entries, in window order.
    arena: Vec<u8>,
    /// Bytes of `arena` before this belong to dropped entries.
    arena_head: usize,
    /// Absolute offset of `arena[0]`.
    arena_base: u64,
    lookup: HashMap<u64, u64, BuildHasherDefault<PassThrough>>,
    /// Entries not in `lookup` because another key had their hash.
    unindexed: usize,
    hasher: RandomState,
}

impl Index {
    pub(crate) fn new(max_subs: usize, max_window_bytes: usize) -> Index {
        Index {
            max_subs,
            max_window_bytes,
            slots: Vec::new(),
            by_name: HashMap::new(),
            window: VecDeque::new(),
            window_base: 0,
            window_bytes: 0,
            arena: Vec::new(),
            arena_head: 0,
            arena_base: 0,
            lookup: HashMap::default(),
            unindexed: 0,
            hasher: RandomState::new(),
        }
    }

    // ----------------------------------------------------------------- queries

    /// The slot of subscription `name`.
    pub(super) fn find_sub(&self, name: &str) -> Option<u16> {
        self.by_name.get(name).copied()
    }

    /// A slot a new subscription may take: unused, with no entries left behind.
    pub(super) fn free_slot(&self) -> Result<u16, StoreError> {
        let free = (0..self.max_subs.min(usize::from(u16::MAX)))
            .find(|&i| self.slots.get(i).is_none_or(|s| !s.used && s.entries == 0));
        free.map(|i| i as u16).ok_or(StoreError::Full)
    }

    pub(super) fn slot(&self, slot: u16) -> Option<&Slot> {
        self.slots.get(usize::from(slot))
    }

    fn bookmark(&self, e: &Entry) -> &[u8] {
        let from = (e.at - self.arena_base) as usize;
        self.arena
            .get(from..from + usize::from(e.len))
            .unwrap_or(&[])
    }

    fn key(&self, slot: u16, bm: &[u8]) -> u64 {
        self.hasher.hash_one((slot, bm))
    }

    /// The window entry of `slot` with bookmark `bm` (unique by construction: `log` appends
    /// only what it does not find).
    pub(super) fn find(&self, slot: u16, bm: &str) -> Option<(u64, Entry)> {
        let bm = bm.as_bytes();
        let is = |e: &Entry| e.slot == slot && self.bookmark(e) == bm;
        if let Some(&abs) = self.lookup.get(&self.key(slot, bm))
            && let Some(e) = self.entry(abs)
            && is(&e)
        {
            return Some((abs, e));
        }
        if self.unindexed > 0 {
            let i = self.window.iter().position(is)?;
            return Some((self.window_base + i as u64, *self.window.get(i)?));
        }
        None
    }

    fn entry(&self, abs: u64) -> Option<Entry> {
        let i = usize::try_from(abs.checked_sub(self.window_base)?).ok()?;
        self.window.get(i).copied()
    }

    /// Whether an entry with a bookmark of `len` bytes fits (the memory store's checks).
    pub(super) fn check_room(&self, len: usize) -> Result<(), StoreError> {
        if len > MAX_BOOKMARK || ENTRY_COST + len > self.max_window_bytes {
            return Err(StoreError::TooLarge);
        }
        if self.window_bytes + ENTRY_COST + len > self.max_window_bytes {
            return Err(StoreError::Full);
        }
        Ok(())
    }

    /// The resume point of `slot`: the last bookmark of its discarded prefix.
    pub(super) fn most_recent(&self, slot: u16) -> &[u8] {
        let mut best = self.slot(slot).map_or(&[][..], |s| s.resume.as_bytes());
        if self.slot(slot).is_some_and(|s| s.entries > 0) {
            for e in self.window.iter().filter(|e| e.slot == slot) {
                if !e.discarded {
                    break;
                }
                best = self.bookmark(e);
            }
        }
        best
    }

    /// The window, oldest first: (slot, discarded, bookmark).
    pub(crate) fn window(&self) -> impl Iterator<Item = (u16, bool, &str)> + '_ {
        self.window.iter().map(|e| {
            let bm = std::str::from_utf8(self.bookmark(e)).unwrap_or("");
            (e.slot, e.discarded, bm)
        })
    }

    // ----------------------------------------------------------------- changes
    //
    // Each is one journal record (bookmark/journal.rs); replaying the journal calls them in
    // the same order. They check only what keeps memory safe: the callers decide what is
    // allowed (live calls) or consistent (replay).

    /// Occupy `slot` with a new subscription.
    pub(super) fn add_sub(&mut self, slot: u16, name: &str) {
        let i = usize::from(slot);
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, Slot::default);
        }
        if let Some(s) = self.slots.get_mut(i) {
            s.used = true;
            s.name = name.to_string();
            s.resume.clear();
            s.persisted.clear();
            s.high_water = HighWater::default();
        }
        self.by_name.insert(name.into(), slot);
    }

    pub(super) fn set_persisted(&mut self, slot: u16, bm: &str) {
        if let Some(s) = self.slots.get_mut(usize::from(slot)) {
            s.persisted.clear();
            s.persisted.push_str(bm);
        }
    }

    pub(super) fn set_resume(&mut self, slot: u16, bm: &str) {
        if let Some(s) = self.slots.get_mut(usize::from(slot)) {
            s.resume.clear();
            s.resume.push_str(bm);
        }
    }

    pub(super) fn set_high_water(&mut self, slot: u16, hw: HighWater) {
        if let Some(s) = self.slots.get_mut(usize::from(slot)) {
            s.high_water = hw;
        }
    }

    /// Append an entry (bookmarks are at most MAX_BOOKMARK bytes: callers check).
    pub(super) fn push(&mut self, slot: u16, bm: &str, discarded: bool) {
        let i = usize::from(slot);
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, Slot::default);
        }
        if let Some(s) = self.slots.get_mut(i) {
            s.entries += 1;
        }
        if self.window.is_empty() {
            self.arena_base += self.arena.len() as u64;
            self.arena.clear();
            self.arena_head = 0;
        }
        let at = self.arena_base + self.arena.len() as u64;
        self.arena.extend_from_slice(bm.as_bytes());
        let abs = self.window_base + self.window.len() as u64;
        let key = self.key(slot, bm.as_bytes());
        let indexed = match self.lookup.entry(key) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(abs);
                true
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.unindexed += 1;
                false
            }
        };
        self.window.push_back(Entry {
            slot,
            discarded,
            indexed,
            len: bm.len() as u8,
            at,
        });
        self.window_bytes += ENTRY_COST + bm.len();
    }

    /// Mark the entry at absolute index `abs` discarded and drop the discarded prefix.
    pub(super) fn discard_at(&mut self, abs: u64) {
        if let Some(e) = usize::try_from(abs.saturating_sub(self.window_base))
            .ok()
            .and_then(|i| self.window.get_mut(i))
        {
            e.discarded = true;
        }
        self.advance();
    }

    /// Forget subscription `slot`: its entries count as discarded, it no longer has a name.
    pub(super) fn remove_sub(&mut self, slot: u16) {
        for e in self.window.iter_mut().filter(|e| e.slot == slot) {
            e.discarded = true;
        }
        if let Some(s) = self.slots.get_mut(usize::from(slot)) {
            s.used = false;
            self.by_name.remove(s.name.as_str());
        }
        self.advance();
    }

    /// Drop the discarded prefix; each dropped entry of a live subscription becomes its resume
    /// point (MemoryBookmarkStore's `advance`).
    fn advance(&mut self) {
        while let Some(&e) = self.window.front().filter(|e| e.discarded) {
            let bm = self.bookmark(&e);
            if e.indexed {
                self.lookup.remove(&self.key(e.slot, bm));
            } else {
                self.unindexed -= 1;
            }
            if let Some(s) = self.slots.get_mut(usize::from(e.slot)) {
                s.entries -= 1;
                if s.used {
                    let from = (e.at - self.arena_base) as usize;
                    let bm = self
                        .arena
                        .get(from..from + usize::from(e.len))
                        .unwrap_or(&[]);
                    let bm = std::str::from_utf8(bm).unwrap_or("");
                    s.note_discarded(bm);
                    s.resume.clear();
                    s.resume.push_str(bm);
                }
            }
            self.window.pop_front();
            self.window_base += 1;
            self.window_bytes -= ENTRY_COST + usize::from(e.len);
            self.arena_head += usize::from(e.len);
        }
        // Reclaim the arena's dead front once it is most of the arena.
        if self.arena_head > 4096 && self.arena_head * 2 > self.arena.len() {
            self.arena.drain(..self.arena_head);
            self.arena_base += self.arena_head as u64;
            self.arena_head = 0;
        }
    }
}
