//! Entry points for fuzzing the store reader: the whole of what `open` does with a file's
//! bytes (preamble and header checks, record framing and checksums, the torn-tail rule, the
//! search for the next valid record after damage, and applying each record to the store's
//! state), over a byte slice, without any file I/O. Not a stable API.
//!
//! A cargo-fuzz target:
//!
//! ```text
//! libfuzzer_sys::fuzz_target!(|data: &[u8]| {
//!     for repair in [false, true] {
//!         let _ = amps_fs::fuzz::read_publish_segment(data, repair);
//!         let _ = amps_fs::fuzz::read_bookmark_log(data, repair);
//!     }
//! });
//! ```
//!
//! The files must belong to client [`CLIENT`]; a publish segment must be segment 1. Stores
//! opened with that client name make a seed corpus (`0000000000000001.seg` of a publish
//! store's directory, a bookmark log).

use std::path::Path;

use crate::bookmark::{Index, read_log};
use crate::error::OpenError;
use crate::publish::{Replay, read_segment};
use crate::record::Kind;
use crate::scan::{ScanOptions, Scanned};

/// The client name the entry points expect in a file's header.
pub const CLIENT: &str = "fuzz";

/// What reading a file found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Valid records applied.
    pub records: u64,
    /// Where the valid content ends.
    pub end: u64,
    /// Whether a torn tail was found.
    pub torn: bool,
    /// Damaged stretches skipped (repair mode).
    pub lost: usize,
    /// Unpersisted messages (publish) or window entries (bookmark) recovered.
    pub entries: usize,
}

fn summary(s: &Scanned, entries: usize) -> Summary {
    Summary {
        records: s.records,
        end: s.end,
        torn: s.cut.is_some(),
        lost: s.lost.len(),
        entries,
    }
}

/// Read `bytes` as segment 1 of a publish store of client [`CLIENT`].
pub fn read_publish_segment(bytes: &[u8], repair: bool) -> Result<Summary, OpenError> {
    let mut replay = Replay::default();
    let o = ScanOptions {
        path: Path::new("fuzz.seg"),
        kind: Kind::Publish,
        client_name: CLIENT,
        repair,
        seq_of: crate::publish::store_seq,
        seq_before: 0,
    };
    let mut src = bytes;
    let s = read_segment(&mut src, &o, 1, |op| replay.apply(1, op))?;
    Ok(summary(&s, replay.len()))
}

/// Read `bytes` as the log of a bookmark store of client [`CLIENT`] (64 subscriptions, a
/// 1 MiB window).
pub fn read_bookmark_log(bytes: &[u8], repair: bool) -> Result<Summary, OpenError> {
    let mut index = Index::new(64, 1 << 20);
    let mut src = bytes;
    let s = read_log(&mut src, Path::new("fuzz.log"), CLIENT, repair, &mut index)?;
    Ok(summary(&s, index.window().count()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut extra = [0u8; 17];
        extra[0] = 1;
        let good = crate::record::header(Kind::Publish, CLIENT, &extra);
        assert_eq!(read_publish_segment(&good, false).unwrap().records, 0);
        for _ in 0..2000 {
            let mut b = good.clone();
            let n = (next() % 200) as usize;
            b.extend((0..n).map(|_| next() as u8));
            for _ in 0..(next() % 4) {
                let i = (next() as usize) % b.len();
                b[i] ^= 1 << (next() % 8);
            }
            for repair in [false, true] {
                let _ = read_publish_segment(&b, repair);
                let _ = read_bookmark_log(&b, repair);
            }
        }
    }
}
