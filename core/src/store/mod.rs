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
pub use publish::{MemoryPublishStore, NoPublishStore, PublishStore};
