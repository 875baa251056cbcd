//! Publish and bookmark stores (AMPS Python client guide: "Publish stores", "Bookmark stores";
//! docs/protocol.md §8.4, §10). The traits are what the session needs; the memory stores here are
//! bounded and work without `alloc`; `amps-fs` implements the same traits on disk.

mod bookmark;
mod hybrid;
mod publish;

pub use bookmark::{
    BookmarkStore, HIGH_WATER_PUBLISHERS, MAX_BOOKMARK, MAX_SUB_ID, MemoryBookmarkStore,
    NoBookmarkStore,
};
pub use hybrid::HybridPublishStore;

/// Longest resume point (a bookmark list) the session asks a bookmark store for when it
/// re-enters or starts a `MOST_RECENT` subscription; longer ones fail as too large.
pub const MAX_RESUME_POINT: usize = 256;

/// Every entry of a publish store, in replay order (for tests of stores).
#[cfg(test)]
pub(crate) fn replay_all<P: PublishStore + ?Sized>(
    s: &mut P,
) -> alloc::vec::Vec<(u64, alloc::vec::Vec<u8>)> {
    let mut out = alloc::vec::Vec::new();
    let mut at = 0;
    while let Some((seq, f)) = s.next_after(at) {
        out.push((seq, f.to_vec()));
        at = seq;
    }
    out
}
pub use publish::{MemoryPublishStore, NoPublishStore, PublishStore};
