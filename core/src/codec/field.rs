//! The header fields (docs/protocol.md, section 2): the [`Field`] enum, where a parsed header keeps
//! each one, and the lookup of a key (wire key or alias) in one multiply and two loads.

use crate::strlist;

macro_rules! fields {
    (
        str { $($s:ident = $sk:literal $(| $sa:literal)* => $sdoc:literal,)* }
        int { $($i:ident = $ik:literal $(| $ia:literal)* => $idoc:literal,)* }
        bool { $($b:ident = $bk:literal => $bdoc:literal,)* }
    ) => {
        /// A known header field (docs/protocol.md, section 2). The discriminant orders strings,
        /// then integers, then booleans.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Field {
            $(#[doc = $sdoc] $s,)*
            $(#[doc = $idoc] $i,)*
            $(#[doc = $bdoc] $b,)*
        }

        /// Index of each string field in a header's string table.
        #[allow(non_camel_case_types, dead_code, clippy::upper_case_acronyms)]
        pub(crate) enum StrIdx { $($s,)* N }
        /// Index of each integer field in a header's integer table.
        #[allow(non_camel_case_types, dead_code, clippy::upper_case_acronyms)]
        pub(crate) enum IntIdx { $($i,)* N }
        /// Bit of each boolean field in a header's boolean masks.
        #[allow(non_camel_case_types, dead_code, clippy::upper_case_acronyms)]
        pub(crate) enum BoolIdx { $($b,)* N }

        pub(crate) const N_STR: usize = StrIdx::N as usize;
        pub(crate) const N_INT: usize = IntIdx::N as usize;

        /// Every key decoders accept (wire keys and aliases), with its field.
        const KEYS: &[(&str, Field)] = &[
            $(($sk, Field::$s), $(($sa, Field::$s),)*)*
            $(($ik, Field::$i), $(($ia, Field::$i),)*)*
            $(($bk, Field::$b),)*
        ];

        impl Field {
            /// Every field.
            pub const ALL: &'static [Field] = &[$(Field::$s,)* $(Field::$i,)* $(Field::$b,)*];

            /// The key encoders send (docs/protocol.md, section 2: the abbreviation where one
            /// exists).
            pub const fn wire_key(self) -> &'static str {
                match self {
                    $(Field::$s => $sk,)*
                    $(Field::$i => $ik,)*
                    $(Field::$b => $bk,)*
                }
            }

            /// `,"key":` (integers, booleans) or `,"key":"` (strings): the piece an encoder writes
            /// before a value that is not the first field.
            pub(crate) const fn prefix(self) -> &'static str {
                match self {
                    $(Field::$s => concat!(",\"", $sk, "\":\""),)*
                    $(Field::$i => concat!(",\"", $ik, "\":"),)*
                    $(Field::$b => concat!(",\"", $bk, "\":"),)*
                }
            }

            /// The full names decoders also accept.
            pub const fn aliases(self) -> &'static [&'static str] {
                match self {
                    $(Field::$s => &[$($sa),*],)*
                    $(Field::$i => &[$($ia),*],)*
                    $(Field::$b => &[],)*
                }
            }

            /// Where a header keeps this field.
            pub(crate) const fn slot(self) -> Slot {
                match self {
                    $(Field::$s => Slot::Str(StrIdx::$s as u8),)*
                    $(Field::$i => Slot::Int(IntIdx::$i as u8),)*
                    $(Field::$b => Slot::Bool(BoolIdx::$b as u8),)*
                }
            }

            /// Look a key up by its wire key or any alias.
            pub fn from_key(key: &[u8]) -> Option<Field> {
                lookup(key)
            }
        }
    };
}

fields! {
    str {
        Command = "c" | "command" | "cmd" => "`c`: the command (§3).",
        CommandId = "cid" | "cmd_id" => "`cid`: client-chosen command id echoed on acks.",
        AckType = "a" | "ack_type" => "`a`: requested acks (comma list) or, on an ack, its type.",
        Topic = "t" | "topic" => "`t`: topic, or regex for subscribe/sow (§14).",
        Filter = "f" | "filter" => "`f`: content filter (§13).",
        Options = "o" | "opts" => "`o`: comma list of options (§4).",
        Bookmark = "bm" | "bookmark" => "`bm`: transaction-log position or queue message id (§10, §11).",
        SowKey = "k" | "sow_key" => "`k`: record identity in a SOW.",
        SowKeys = "sow_keys" => "`sow_keys`: comma list of SOW keys.",
        CorrelationId = "x" | "correlation_id" => "`x`: opaque publisher token.",
        OrderBy = "orderby" | "order_by" => "`orderby`: result ordering (§6.6).",
        QueryId = "query_id" => "`query_id`: query handle.",
        SubId = "sub_id" => "`sub_id`: subscription handle.",
        SubIds = "sids" => "`sids`: comma list of matching subscription ids.",
        ClientName = "client_name" => "`client_name`: session identity (§8).",
        UserId = "user_id" => "`user_id`: authenticated user.",
        Password = "pw" | "password" => "`pw`: credential or retry token.",
        MessageType = "mt" | "message_type" => "`mt`: payload type of the connection.",
        Version = "version" | "v" => "`version`: client or server version.",
        Status = "status" => "`status`: `success`, `failure` or `retry`.",
        Reason = "reason" => "`reason`: failure text (§15) or OOF reason (§7.4).",
        Timestamp = "ts" | "timestamp" => "`ts`: processing time (§7.1).",
        LeasePeriod = "lp" | "leaseperiod" | "lease_period" => "`lp`: queue lease expiry (§11).",
    }
    int {
        Seq = "s" | "seq" => "`s`: publisher sequence number (§8.4).",
        MsgLen = "l" | "msg_len" => "`l`: payload length (§7).",
        Expiration = "e" | "expiration" => "`e`: SOW lifetime in seconds.",
        BatchSize = "bs" | "batch_size" => "`bs`: records per `sow` message.",
        TopN = "top_n" => "`top_n`: maximum records / replayed messages.",
        GroupSeq = "gseq" => "`gseq`: sequence of a batch within a result.",
        Matches = "matches" => "`matches`: records matching (stats).",
        TopicMatches = "topic_matches" => "`topic_matches`: records examined (stats).",
        RecordsReturned = "records_returned" => "`records_returned` (stats).",
        RecordsInserted = "records_inserted" => "`records_inserted` (stats).",
        RecordsUpdated = "records_updated" => "`records_updated` (stats).",
        RecordsDeleted = "records_deleted" => "`records_deleted` (stats).",
        MaxMsgs = "max_msgs" => "`max_msgs`: legacy name of the replay limit.",
    }
    bool {
        SendEmpty = "send_empty" => "`send_empty` (legacy).",
        SendKeys = "send_keys" => "`send_keys` (legacy).",
        SendOof = "send_oof" => "`send_oof` (legacy).",
        DataOnly = "data_only" => "`data_only` (legacy).",
    }
}

/// A field prints as its wire key (`sub_id`, `t`): the key list is in the image anyway, where a
/// list of variant names would be one more table in every firmware that prints an error naming
/// a field.
impl core::fmt::Debug for Field {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // `KEY_LIST` starts with the wire keys in discriminant order.
        f.write_str(strlist::nth_str(&list::KEY_LIST, *self as usize))
    }
}

/// Where a header keeps a field: its index in the string or integer table, or its bit in the
/// boolean masks.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    Str(u8),
    Int(u8),
    Bool(u8),
}

/// The longest key decoders know.
#[cfg(target_pointer_width = "64")]
const MAX_KEY: usize = 16;

/// A key of at most 16 bytes as two little-endian words (zero-padded) and its length.
#[cfg(target_pointer_width = "64")]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packed {
    pub(crate) w0: u64,
    pub(crate) w1: u64,
    pub(crate) len: usize,
}

// `i < k.len()` guards the index; `const fn` cannot use `get`.
#[cfg(target_pointer_width = "64")]
#[allow(clippy::indexing_slicing)]
const fn pack(k: &[u8]) -> Packed {
    let (mut w0, mut w1) = (0u64, 0u64);
    let mut i = 0;
    while i < k.len() && i < 16 {
        if i < 8 {
            w0 |= (k[i] as u64) << (8 * i);
        } else {
            w1 |= (k[i] as u64) << (8 * (i - 8));
        }
        i += 1;
    }
    Packed {
        w0,
        w1,
        len: k.len(),
    }
}

/// The multiplier of the key hash: found offline so that every key of [`KEYS`] lands in its own
/// slot of a 256-entry table (checked when the table is built, at compile time).
#[cfg(target_pointer_width = "64")]
const MUL: u64 = 0xc8bf_c6d1_991c_86b5;

#[cfg(target_pointer_width = "64")]
#[inline(always)]
const fn hash(k: Packed) -> usize {
    let x = k.w0 ^ k.w1.rotate_left(23) ^ ((k.len as u64) << 59);
    (x.wrapping_mul(MUL) >> 56) as usize
}

/// One slot of the key table: the key (to verify a hit) and its field.
#[cfg(target_pointer_width = "64")]
#[derive(Clone, Copy)]
struct Entry {
    key: Packed,
    field: Option<Field>,
}

// Indices are `hash` values (< 256) and positions below `KEYS.len()`.
#[cfg(target_pointer_width = "64")]
#[allow(clippy::indexing_slicing)]
const fn build_table() -> [Entry; 256] {
    let empty = Entry {
        key: Packed {
            w0: 0,
            w1: 0,
            len: usize::MAX,
        },
        field: None,
    };
    let mut t = [empty; 256];
    let slots = build_slots();
    let mut h = 0;
    while h < 256 {
        if slots[h] != 0 {
            let (k, f) = KEYS[slots[h] as usize - 1];
            t[h] = Entry {
                key: pack(k.as_bytes()),
                field: Some(f),
            };
        }
        h += 1;
    }
    t
}

/// The key table of 64-bit targets: a hit is verified by comparing two words (8 KB; the fast
/// scanner looks keys up with it).
#[cfg(target_pointer_width = "64")]
static TABLE: [Entry; 256] = build_table();

/// The field a packed key names, if any.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
pub(crate) fn lookup_packed(k: Packed) -> Option<Field> {
    let e = TABLE.get(hash(k))?;
    if e.key == k { e.field } else { None }
}

/// For each hash value, 1 + the position in [`KEYS`] of the key with that hash, or 0.
// Indices are `hash` values (< 256) and positions below `KEYS.len()` (< 255).
#[cfg(target_pointer_width = "64")]
#[allow(clippy::indexing_slicing)]
const fn build_slots() -> [u8; 256] {
    assert!(KEYS.len() < 255, "too many keys for a byte index");
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < KEYS.len() {
        let (k, _) = KEYS[i];
        assert!(k.len() <= MAX_KEY, "a key longer than the table's keys");
        let h = hash(pack(k.as_bytes()));
        assert!(t[h] == 0, "two keys share a slot: choose another MUL");
        t[h] = i as u8 + 1;
        i += 1;
    }
    t
}

/// The key table of other targets (microcontrollers), where flash is what counts: every key
/// once, packed ([`strlist`]), searched in order: about 500 bytes, where a hash table and its
/// entries take 1.2 KB. Every target uses it for `Debug`.
mod list {
    use super::{Field, KEYS, strlist};

    /// [`KEYS`] with the wire keys first (what servers send), then the aliases.
    // Indices are below `KEYS.len()`.
    #[allow(clippy::indexing_slicing)]
    const fn wire_keys_first() -> [(&'static str, Field); KEYS.len()] {
        let mut out = [("", Field::Command); KEYS.len()];
        let (mut at, mut pass) = (0, 0);
        while pass < 2 {
            let mut i = 0;
            while i < KEYS.len() {
                let (k, f) = KEYS[i];
                if is_wire_key(k, f) == (pass == 0) {
                    out[at] = (k, f);
                    at += 1;
                }
                i += 1;
            }
            pass += 1;
        }
        out
    }

    /// Whether `k` is `f`'s wire key (`const` string equality).
    // `i < a.len() == b.len()` guards the indices.
    #[allow(clippy::indexing_slicing)]
    const fn is_wire_key(k: &str, f: Field) -> bool {
        let (a, b) = (k.as_bytes(), f.wire_key().as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The keys in search order, with their fields apart.
    const ORDERED: [(&str, Field); KEYS.len()] = wire_keys_first();

    // Indices are below `KEYS.len()`.
    #[allow(clippy::indexing_slicing)]
    const fn ordered_keys() -> [&'static str; KEYS.len()] {
        let mut out = [""; KEYS.len()];
        let mut i = 0;
        while i < KEYS.len() {
            out[i] = ORDERED[i].0;
            i += 1;
        }
        out
    }

    // Indices are below `KEYS.len()`.
    #[allow(clippy::indexing_slicing)]
    #[cfg(any(test, not(target_pointer_width = "64")))]
    const fn ordered_fields() -> [Field; KEYS.len()] {
        let mut out = [Field::Command; KEYS.len()];
        let mut i = 0;
        while i < KEYS.len() {
            out[i] = ORDERED[i].1;
            i += 1;
        }
        out
    }

    const KEY_STRS: [&str; KEYS.len()] = ordered_keys();

    /// The keys, packed in search order.
    pub(super) static KEY_LIST: [u8; strlist::packed_len(&KEY_STRS)] = strlist::pack(&KEY_STRS);
    /// Each key's field, in the same order.
    #[cfg(any(test, not(target_pointer_width = "64")))]
    static KEY_FIELDS: [Field; KEYS.len()] = ordered_fields();

    /// The field `key` names, searched in [`KEY_LIST`].
    #[cfg(any(test, not(target_pointer_width = "64")))]
    pub(super) fn lookup_list(key: &[u8]) -> Option<Field> {
        let i = strlist::items(&KEY_LIST).position(|k| k == key)?;
        KEY_FIELDS.get(i).copied()
    }
}
#[cfg(any(test, not(target_pointer_width = "64")))]
use list::lookup_list;

/// The field `key` (2 to 16 bytes) names, if any.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
fn lookup_long(key: &[u8]) -> Option<Field> {
    lookup_packed(pack(key))
}

// Indices are bytes (< 256).
#[cfg(target_pointer_width = "64")]
#[allow(clippy::indexing_slicing)]
const fn build_short() -> [Option<Field>; 256] {
    let mut t = [None; 256];
    let mut i = 0;
    while i < KEYS.len() {
        let (k, f) = KEYS[i];
        if k.len() == 1 {
            t[k.as_bytes()[0] as usize] = Some(f);
        }
        i += 1;
    }
    t
}

/// The fields of the one-byte keys, by that byte.
#[cfg(target_pointer_width = "64")]
static SHORT: [Option<Field>; 256] = build_short();

/// The field the one-byte key `k` names, if any.
#[cfg(target_pointer_width = "64")]
#[inline(always)]
pub(crate) fn lookup_short(k: u8) -> Option<Field> {
    SHORT.get(usize::from(k)).copied().flatten()
}

/// The field `key` names (wire key or alias), if any.
#[cfg(target_pointer_width = "64")]
#[inline]
pub(crate) fn lookup(key: &[u8]) -> Option<Field> {
    match key {
        [k] => lookup_short(*k),
        _ if key.len() > MAX_KEY => None,
        _ => lookup_long(key),
    }
}

/// The field `key` names (wire key or alias), if any.
#[cfg(not(target_pointer_width = "64"))]
#[inline]
pub(crate) fn lookup(key: &[u8]) -> Option<Field> {
    lookup_list(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Near misses of real keys.
    const NOT_KEYS: [&str; 9] = [
        "",
        "C",
        "cc",
        "c\0",
        "sub_id\0",
        "records_returnedx",
        "records_",
        "zz",
        "\u{ff}",
    ];

    #[test]
    fn every_key_and_only_keys_are_found() {
        for &(k, f) in KEYS {
            assert_eq!(lookup(k.as_bytes()), Some(f), "{k}");
        }
        for k in NOT_KEYS {
            assert_eq!(lookup(k.as_bytes()), None, "{k:?}");
        }
    }

    #[test]
    fn debug_prints_every_wire_key() {
        assert_eq!(alloc::format!("{:?}", Field::Command), "c");
        assert_eq!(alloc::format!("{:?}", Field::SubId), "sub_id");
        assert_eq!(alloc::format!("{:?}", Field::DataOnly), "data_only");
        for f in Field::ALL {
            assert_eq!(alloc::format!("{f:?}"), f.wire_key(), "{}", *f as usize);
        }
    }

    /// The key list of 32-bit targets finds what the hash tables find.
    #[test]
    fn both_key_tables_agree() {
        let others = NOT_KEYS.into_iter().chain(["ab", "records_returned"]);
        for k in KEYS.iter().map(|&(k, _)| k).chain(others) {
            assert_eq!(lookup_list(k.as_bytes()), lookup(k.as_bytes()), "{k:?}");
        }
        assert_eq!(lookup_list(b"sub_id"), Some(Field::SubId));
        assert_eq!(lookup_list(b"lease_period"), Some(Field::LeasePeriod));
    }
}
