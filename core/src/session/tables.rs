//! Command ids, the pending-command table and the route table (subscriptions and running
//! queries), with the route strings kept in a bounded arena.

use core::fmt;

use crate::codec::{AckTypes, CommandKind};
use crate::time::{Duration, Instant};

/// Handle of a command sent by a session.
///
/// The wire `cid` is a counter that never repeats for the life of the session; the generation
/// is the connection the command was sent on (it grows at every `handle_connected`), so a
/// handle from an earlier connection never aliases a command of the current one.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId {
    pub(crate) generation: u32,
    pub(crate) cid: u64,
}

impl CommandId {
    /// The connection generation the command was sent on.
    pub const fn generation(&self) -> u32 {
        self.generation
    }
    /// The `cid` sent on the wire.
    pub const fn wire(&self) -> u64 {
        self.cid
    }
}

impl fmt::Debug for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cmd#{}.{}", self.generation, self.cid)
    }
}

/// A hasher for maps keyed by [`CommandId`] (two integers the session hands out, never chosen
/// by the network): one multiply per word instead of SipHash, for adapters that look a route
/// up per delivered message. Use it as `BuildHasherDefault<CommandIdHasher>`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CommandIdHasher(u64);

impl core::hash::Hasher for CommandIdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cid)
    }
}

/// A command waiting for acks. Opaque: the element type of [`crate::session::Storage::Commands`].
#[derive(Clone, Copy, Debug)]
pub struct Pending {
    pub(crate) id: CommandId,
    /// The id events report: the route's stable handle for subscriptions, else `id`.
    pub(crate) report: CommandId,
    pub(crate) kind: CommandKind,
    /// Acks still expected before the command is complete.
    pub(crate) waiting: AckTypes,
    /// Acks the application asked for; forwarded as events.
    pub(crate) forward: AckTypes,
    /// Time limit for the `processed` ack (cleared when it arrives).
    pub(crate) deadline: Option<Instant>,
    /// The route this command created or replaced, by its command id.
    pub(crate) route: Option<CommandId>,
    /// A command of the session's own (logon, resubscription): no events except completion.
    pub(crate) internal: bool,
    /// `publish_flush`: complete only once the publish store is empty too.
    pub(crate) flush_store: bool,
    /// The `processed` ack arrived.
    pub(crate) processed: bool,
}

/// Route flag: re-enter on reconnect (an async subscription, Python client: SubscriptionManager).
pub(crate) const RESUBSCRIBE: u8 = 1;
/// Route flag: track bookmarks in the bookmark store, resume from MOST_RECENT.
pub(crate) const BOOKMARKS: u8 = 2;
/// Route flag: a queue subscription (acks with `sow_delete`, backlog known).
pub(crate) const QUEUE: u8 = 4;
/// Route flag: a plain query; the route ends when the query completes.
pub(crate) const QUERY_ONLY: u8 = 8;

/// Number of strings a route keeps.
pub(crate) const N_ROUTE_STRS: usize = 8;
/// Index of each route string.
pub(crate) mod rs {
    pub(crate) const SUB_ID: usize = 0;
    pub(crate) const QUERY_ID: usize = 1;
    pub(crate) const TOPIC: usize = 2;
    pub(crate) const FILTER: usize = 3;
    pub(crate) const OPTIONS: usize = 4;
    pub(crate) const BOOKMARK: usize = 5;
    pub(crate) const ORDER_BY: usize = 6;
    pub(crate) const SOW_KEYS: usize = 7;
}

/// A subscription or running query: how deliveries are routed and how it is re-entered.
/// Opaque: the element type of [`crate::session::Storage::Routes`].
#[derive(Clone, Copy, Debug)]
pub struct Route {
    /// The command currently carrying the route (changes when it is re-entered).
    pub(crate) id: CommandId,
    /// The id the application holds (the first command's id; stable across re-entries).
    pub(crate) handle: CommandId,
    pub(crate) kind: CommandKind,
    pub(crate) off: u32,
    /// Lengths of the strings, in `rs` order, stored back to back at `off` in the arena;
    /// `u16::MAX` marks an absent string.
    pub(crate) lens: [u16; N_ROUTE_STRS],
    pub(crate) batch_size: Option<u64>,
    pub(crate) top_n: Option<u64>,
    pub(crate) acks: AckTypes,
    pub(crate) timeout: Option<Duration>,
    pub(crate) flags: u8,
    /// Effective queue backlog from the subscribe ack (docs/protocol.md §11); 0 when unknown.
    pub(crate) backlog: u32,
    /// The serial of the last delivery routed here: a delivery naming the route twice in its
    /// `sids` is delivered once.
    pub(crate) delivered: u32,
}

impl Route {
    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }

    pub(crate) fn block_len(&self) -> usize {
        self.lens
            .iter()
            .filter(|&&l| l != u16::MAX)
            .map(|&l| usize::from(l))
            .sum()
    }

    /// String `i` of this route in `arena`.
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub(crate) fn str<'a>(&self, arena: &'a [u8], i: usize) -> Option<&'a str> {
        self.bytes(arena, i).and_then(text)
    }

    /// The route key: the `sub_id`, else the `query_id` (empty if neither, which a route
    /// never lacks).
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub(crate) fn key<'a>(&self, arena: &'a [u8]) -> &'a str {
        let sub_id = self.lens.get(rs::SUB_ID).is_some_and(|&l| l != u16::MAX);
        self.str(arena, if sub_id { rs::SUB_ID } else { rs::QUERY_ID })
            .unwrap_or("")
    }

    /// Whether the `sub_id` is `id`: compared in line, byte by byte (ids are short: a call to
    /// the library's comparison costs more than the comparison).
    #[cfg_attr(target_pointer_width = "64", inline)]
    pub(crate) fn has_sub_id(&self, arena: &[u8], id: &[u8]) -> bool {
        self.bytes(arena, rs::SUB_ID)
            .is_some_and(|b| b.len() == id.len() && b.iter().zip(id).all(|(x, y)| x == y))
    }

    /// String `i` of this route in `arena`, as bytes (for comparing without converting).
    #[inline]
    pub(crate) fn bytes<'a>(&self, arena: &'a [u8], i: usize) -> Option<&'a [u8]> {
        let len = *self.lens.get(i)?;
        if len == u16::MAX {
            return None;
        }
        let start = self.off as usize
            + self
                .lens
                .iter()
                .take(i)
                .filter(|&&l| l != u16::MAX)
                .map(|&l| usize::from(l))
                .sum::<usize>();
        arena.get(start..start + usize::from(len))
    }
}

/// `b` as text, if it is UTF-8. Empty and one-byte ASCII texts (no escapes, a sub id such as
/// `2`) are answered without a call to the UTF-8 check, which costs dozens of instructions
/// even for such short texts.
#[cfg_attr(target_pointer_width = "64", inline)]
pub(crate) fn text(b: &[u8]) -> Option<&str> {
    // Microcontrollers skip the short cut: it is code in every caller there.
    #[cfg(target_pointer_width = "64")]
    match *b {
        [] => return Some(""),
        [c] if c.is_ascii() => return crate::codec::ASCII.get(usize::from(c)..usize::from(c) + 1),
        _ => {}
    }
    core::str::from_utf8(b).ok()
}

/// Store `strs` at the end of the arena (`*end` advances); returns the offset and lengths.
pub(crate) fn arena_alloc(
    arena: &mut [u8],
    end: &mut usize,
    strs: &[Option<&str>; N_ROUTE_STRS],
) -> Option<(u32, [u16; N_ROUTE_STRS])> {
    let mut lens = [u16::MAX; N_ROUTE_STRS];
    let start = *end;
    let mut at = start;
    for (i, s) in strs.iter().enumerate() {
        if let Some(s) = s {
            let len = u16::try_from(s.len()).ok().filter(|&l| l != u16::MAX)?;
            arena
                .get_mut(at..at + s.len())?
                .copy_from_slice(s.as_bytes());
            at += s.len();
            *lens.get_mut(i)? = len;
        }
    }
    *end = at;
    Some((u32::try_from(start).ok()?, lens))
}

/// Remove the block `[off, off + len)` from the arena and shift the routes after it.
pub(crate) fn arena_free(
    arena: &mut [u8],
    end: &mut usize,
    routes: &mut [Route],
    off: u32,
    len: usize,
) {
    let off = off as usize;
    if len == 0 || off + len > *end {
        return;
    }
    arena.copy_within(off + len..*end, off);
    *end -= len;
    for r in routes.iter_mut() {
        if r.off as usize > off {
            r.off -= len as u32;
        }
    }
}
