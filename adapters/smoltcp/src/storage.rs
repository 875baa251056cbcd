//! Building a session's storage from caller buffers, without `alloc` (bounded
//! memory, caller-provided slices).

use amps_core::session::{Config, ConfigError, FixedStorage, Parts, Session};
use amps_core::store::{MemoryBookmarkStore, MemoryPublishStore};

/// The buffers of one session, all provided by the application (typically `static` cells in
/// firmware). Sizes bound everything the session keeps:
///
/// - `rx`: the largest frame accepted from the server plus 4 (its prefix);
/// - `tx`: the largest command (a publish with its payload, about 80 bytes of header);
/// - `scratch`: the largest header with JSON escapes (rare; 256 bytes is plenty);
/// - `arena`: the strings of subscriptions (topic, filter, ids) for routing and re-entry;
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
        config: &Config<'_>,
    ) -> Result<Session<FixedStorage<CMDS, ROUTES>>, ConfigError> {
        let mut config = *config;
        config.limits.max_commands = config.limits.max_commands.min(CMDS);
        config.limits.max_routes = config.limits.max_routes.min(ROUTES);
        Session::new(&config, self.into_parts())
    }
}
