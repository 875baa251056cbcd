//! Where a session keeps its state, chosen by one type parameter: without `alloc`, capacities are
//! const generics hidden behind that parameter, or caller-provided slices.
//!
//! [`Storage`] names the buffer and table types; [`Parts`] carries the instances into
//! [`crate::session::Session::new`]. With `alloc`, [`HeapStorage`] sizes everything from the
//! [`crate::session::Limits`]; without it, [`FixedStorage`] uses `heapless` tables and
//! caller-provided `&'static mut [u8]` buffers (e.g. from a `static` cell in firmware).

use crate::store::{BookmarkStore, MemoryBookmarkStore, MemoryPublishStore, PublishStore};

use super::tables::{Pending, Route};

/// A byte buffer: `[u8; N]`, `&'static mut [u8]`, `Vec<u8>`.
pub trait Buf: AsRef<[u8]> + AsMut<[u8]> {}
impl<T: AsRef<[u8]> + AsMut<[u8]> + ?Sized> Buf for T {}

/// A bounded table of `T`. The session also enforces its configured limit, so a growable
/// `Vec` never grows past it.
pub trait Table<T> {
    /// The entries.
    fn items(&self) -> &[T];
    /// The entries, mutable.
    fn items_mut(&mut self) -> &mut [T];
    /// Add an entry; gives it back when the table is full.
    fn try_push(&mut self, t: T) -> Result<(), T>;
    /// Remove entry `i` (order is not kept).
    fn swap_remove_at(&mut self, i: usize) -> Option<T>;
    /// Remove everything.
    fn clear_all(&mut self);
    /// The most entries the table can ever hold (`usize::MAX` for a growable `Vec`; the
    /// session caps its configured limits to this).
    fn capacity(&self) -> usize;
}

impl<T, const N: usize> Table<T> for heapless::Vec<T, N> {
    fn items(&self) -> &[T] {
        self.as_slice()
    }
    fn items_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
    fn try_push(&mut self, t: T) -> Result<(), T> {
        self.push(t)
    }
    fn swap_remove_at(&mut self, i: usize) -> Option<T> {
        (i < self.len()).then(|| self.swap_remove(i))
    }
    fn clear_all(&mut self) {
        self.clear();
    }
    fn capacity(&self) -> usize {
        N
    }
}

#[cfg(feature = "alloc")]
impl<T> Table<T> for alloc::vec::Vec<T> {
    fn items(&self) -> &[T] {
        self.as_slice()
    }
    fn items_mut(&mut self) -> &mut [T] {
        self.as_mut_slice()
    }
    fn try_push(&mut self, t: T) -> Result<(), T> {
        self.push(t);
        Ok(())
    }
    fn swap_remove_at(&mut self, i: usize) -> Option<T> {
        (i < self.len()).then(|| self.swap_remove(i))
    }
    fn clear_all(&mut self) {
        self.clear();
    }
    fn capacity(&self) -> usize {
        usize::MAX
    }
}

/// The types a session stores its state in.
pub trait Storage {
    /// Receive, transmit, scratch and route-arena buffers.
    type Bytes: Buf;
    /// The pending-command table.
    type Commands: Table<Pending>;
    /// The route table (subscriptions and running queries).
    type Routes: Table<Route>;
    /// The publish store ([`crate::store::NoPublishStore`] for none).
    type PublishStore: PublishStore;
    /// The bookmark store ([`crate::store::NoBookmarkStore`] for none).
    type BookmarkStore: BookmarkStore;
}

/// The instances a session is built from.
pub struct Parts<S: Storage> {
    /// Receive buffer: must hold the largest frame plus its prefix.
    pub rx: S::Bytes,
    /// Transmit buffer: must hold the largest command.
    pub tx: S::Bytes,
    /// Unescape scratch: as long as the largest header (a header rarely has escapes).
    pub scratch: S::Bytes,
    /// Route arena: the strings of every subscription and running query (for routing,
    /// replace, resubscription).
    pub arena: S::Bytes,
    /// Queue-ack batch: a topic and the bookmarks acknowledged on it, sent together as one
    /// `sow_delete`. A batch flushes early when it is full; a bookmark that does not fit an
    /// empty batch goes out on its own, so a zero-length buffer sends every ack at once.
    pub ack_batch: S::Bytes,
    /// Pending-command table.
    pub commands: S::Commands,
    /// Route table.
    pub routes: S::Routes,
    /// Publish store.
    pub publish_store: S::PublishStore,
    /// Bookmark store.
    pub bookmark_store: S::BookmarkStore,
}

/// Heap-backed storage (feature `alloc`), with the stores as type parameters; adapters
/// typically use boxed trait objects so stores can be chosen at run time.
#[cfg(feature = "alloc")]
pub struct HeapStorage<P = crate::store::NoPublishStore, B = crate::store::NoBookmarkStore>(
    core::marker::PhantomData<(P, B)>,
);

#[cfg(feature = "alloc")]
impl<P: PublishStore, B: BookmarkStore> Storage for HeapStorage<P, B> {
    type Bytes = alloc::vec::Vec<u8>;
    type Commands = alloc::vec::Vec<Pending>;
    type Routes = alloc::vec::Vec<Route>;
    type PublishStore = P;
    type BookmarkStore = B;
}

#[cfg(feature = "alloc")]
impl<P: PublishStore, B: BookmarkStore> Parts<HeapStorage<P, B>> {
    /// Buffers sized from `limits`, with the given stores.
    pub fn heap(limits: &super::Limits, publish_store: P, bookmark_store: B) -> Self {
        use alloc::vec;
        Parts {
            rx: vec![0; limits.rx_bytes],
            tx: vec![0; limits.tx_bytes],
            scratch: vec![0; limits.scratch_bytes],
            arena: vec![0; limits.arena_bytes],
            ack_batch: vec![0; limits.ack_batch_bytes],
            commands: alloc::vec::Vec::with_capacity(limits.max_commands.min(1024)),
            routes: alloc::vec::Vec::with_capacity(limits.max_routes.min(1024)),
            publish_store,
            bookmark_store,
        }
    }
}

/// A bounded in-memory publish store on the heap, sized from `limits`' publish window.
#[cfg(feature = "alloc")]
pub fn heap_publish_store(limits: &super::Limits) -> MemoryPublishStore<alloc::vec::Vec<u8>> {
    // 12 bytes of record overhead per message on top of the byte window.
    let bytes = limits
        .publish_window_bytes
        .saturating_add(12 * limits.publish_window_messages);
    MemoryPublishStore::new(alloc::vec![0; bytes], limits.publish_window_messages)
}

/// A bounded in-memory bookmark store on the heap.
#[cfg(feature = "alloc")]
pub fn heap_bookmark_store(bytes: usize) -> MemoryBookmarkStore<alloc::vec::Vec<u8>> {
    MemoryBookmarkStore::new(alloc::vec![0; bytes])
}

/// Storage without `alloc`: `heapless` tables of `CMDS` pending commands and `ROUTES` routes,
/// caller-provided `'static` buffers, in-memory stores over `'static` buffers.
pub struct FixedStorage<const CMDS: usize, const ROUTES: usize>;

impl<const CMDS: usize, const ROUTES: usize> Storage for FixedStorage<CMDS, ROUTES> {
    type Bytes = &'static mut [u8];
    type Commands = heapless::Vec<Pending, CMDS>;
    type Routes = heapless::Vec<Route, ROUTES>;
    type PublishStore = MemoryPublishStore<&'static mut [u8]>;
    type BookmarkStore = MemoryBookmarkStore<&'static mut [u8], 4>;
}

/// The buffers of a session without `alloc`, all provided by the application (typically
/// `static` cells in firmware). Sizes bound everything the session keeps:
///
/// - `rx`: the largest frame accepted from the server plus 4 (its prefix);
/// - `tx`: the largest command (a publish with its payload, about 80 bytes of header);
/// - `scratch`: the largest header with JSON escapes (rare; 256 bytes is plenty);
/// - `arena`: the strings of subscriptions (topic, filter, ids) for routing and re-entry;
/// - `ack_batch`: queue acks batched into one `sow_delete` (a topic and its bookmarks; empty
///   when the application consumes no queue: each ack then goes out at once);
/// - `publish_store` / `publish_window`: the unpersisted-publish window in bytes (each entry
///   costs its encoded frame plus 12 bytes) and in messages (docs/protocol.md §8.4);
/// - `bookmark_store`: bookmarks of bookmark subscriptions (may be tiny if none are used).
#[derive(Debug)]
pub struct Buffers {
    /// Receive buffer.
    pub rx: &'static mut [u8],
    /// Transmit buffer.
    pub tx: &'static mut [u8],
    /// Header unescape scratch.
    pub scratch: &'static mut [u8],
    /// Route arena.
    pub arena: &'static mut [u8],
    /// Queue-ack batch.
    pub ack_batch: &'static mut [u8],
    /// Publish store bytes.
    pub publish_store: &'static mut [u8],
    /// Publish store capacity in messages.
    pub publish_window: usize,
    /// Bookmark store bytes.
    pub bookmark_store: &'static mut [u8],
}

impl Buffers {
    /// The [`Parts`] of a session with `CMDS` pending commands and `ROUTES` subscriptions at
    /// most, over these buffers.
    pub fn into_parts<const CMDS: usize, const ROUTES: usize>(
        self,
    ) -> Parts<FixedStorage<CMDS, ROUTES>> {
        Parts {
            rx: self.rx,
            tx: self.tx,
            scratch: self.scratch,
            arena: self.arena,
            ack_batch: self.ack_batch,
            commands: heapless::Vec::new(),
            routes: heapless::Vec::new(),
            publish_store: MemoryPublishStore::new(self.publish_store, self.publish_window),
            bookmark_store: MemoryBookmarkStore::new(self.bookmark_store),
        }
    }

    /// A session over these buffers with `CMDS` pending commands and `ROUTES` subscriptions
    /// at most. The configured limits are capped to the table sizes, so a full table is the
    /// session's typed error (`TooManyCommands`) and never a silently dropped entry.
    pub fn session<const CMDS: usize, const ROUTES: usize>(
        self,
        config: &super::Config<'_>,
    ) -> Result<super::Session<FixedStorage<CMDS, ROUTES>>, super::ConfigError> {
        let mut config = *config;
        config.limits.max_commands = config.limits.max_commands.min(CMDS);
        config.limits.max_routes = config.limits.max_routes.min(ROUTES);
        super::Session::new(&config, self.into_parts())
    }
}
