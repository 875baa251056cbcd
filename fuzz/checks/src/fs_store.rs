//! The `fs_store` target.

use std::path::Path;
use std::sync::Arc;

use amps_core::store::{BookmarkStore, PublishStore};
use amps_fs::fuzz::{CLIENT, Summary, read_bookmark_log, read_publish_segment};
use amps_fs::{
    BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions, FsyncPolicy,
    OpenError, OpenMode, RecoveryReport,
};

use crate::fs_file;
use crate::fs_store_mode as mode;
use crate::memfs::MemFs;

const STORE_DIR: &str = "/fuzz/publish";
const LOG: &str = "/fuzz/bookmarks.log";
/// How the entry points and the stores name the file in their errors.
const SEGMENT_NAMES: (&str, &str) = ("fuzz.seg", "/fuzz/publish/0000000000000001.seg");
const LOG_NAMES: (&str, &str) = ("fuzz.log", LOG);

fn publish_opts() -> FileStoreOptions {
    FileStoreOptions {
        fsync: FsyncPolicy::Never,
        max_messages: 1024,
        max_bytes: 1 << 20,
        segment_bytes: 1 << 20,
    }
}

/// What `amps_fs::fuzz::read_bookmark_log` reads with: 64 subscriptions, a 1 MiB window.
fn bookmark_opts() -> BookmarkStoreOptions {
    BookmarkStoreOptions {
        fsync: FsyncPolicy::Never,
        max_subscriptions: 64,
        max_window_bytes: 1 << 20,
        auto_prune_bytes: None,
    }
}

fn open_mode(fs: &MemFs, repair: bool) -> OpenMode {
    let m = OpenMode::new().fs(Arc::new(fs.clone()));
    if repair { m.repair() } else { m }
}

/// The file-store recovery of `amps-fs` reading arbitrary file contents.
///
/// An input that starts like a store file (`AMPSFSPS`, `AMPSFSBM`) is that file; otherwise its
/// first byte is a mode ([`crate::fs_store_mode`]): bit 0 chooses the bookmark log (else a
/// publish segment), bit 1 builds the file from records ([`fs_file::from_records`]: valid
/// preamble and header of client `fuzz`, each record's length and CRC-32 written by the
/// driver, so the fuzzer gets past the checksums), bit 2 in that case writes format version 1;
/// without bit 1 the rest of the input is the file as is.
///
/// The whole input and the file are read by both entry points `amps_fs::fuzz` offers
/// (`read_publish_segment`, `read_bookmark_log`), strict and in repair mode. Then the file is
/// opened through the public API, as segment 1 of a publish store or as a bookmark log, strict
/// and in repair mode, over an in-memory file layer ([`MemFs`]). Checked:
///
/// - opening agrees with the entry point on the same bytes: both succeed, or both fail with the
///   same error (kind, offset, reason); the records read, where a tail was cut and how many
///   damaged stretches were skipped agree, and so does the number of unpersisted messages
///   (publish);
/// - publish: sequence numbers strictly increasing, the count and `get` agree with iteration,
///   `last_seq` covers every stored message;
/// - stability: after a write, opening again (strict) cuts nothing, finds no damage (a repair
///   rewrote the store) and gives the recovered contents plus what was written; for the
///   bookmark log the same holds again after a `prune()`.
pub fn fs_store(data: &[u8]) {
    let (bookmark, file) = match fs_file::kind_of(data) {
        Some(bookmark) => (bookmark, data.to_vec()),
        None => {
            let Some((&m, rest)) = data.split_first() else {
                return;
            };
            let bookmark = m & mode::BOOKMARK != 0;
            let file = if m & mode::RECORDS != 0 {
                fs_file::from_records(bookmark, m & mode::VERSION_1 != 0, CLIENT, rest)
            } else {
                rest.to_vec()
            };
            (bookmark, file)
        }
    };
    for repair in [false, true] {
        for bytes in [data, &file[..]] {
            let _ = read_publish_segment(bytes, repair);
            let _ = read_bookmark_log(bytes, repair);
        }
        if bookmark {
            bookmark_log(&file, repair);
        } else {
            publish_segment(&file, repair);
        }
    }
}

/// Opening agrees with the entry point's reading of the same bytes. `names`: the file's name
/// in the entry point's errors, and its path in the store's.
fn agree(
    read: &Result<Summary, OpenError>,
    opened: Result<&RecoveryReport, &OpenError>,
    entries: Option<usize>,
    names: (&str, &str),
) {
    match (read, opened) {
        (Ok(s), Ok(r)) => {
            assert_eq!(s.records, r.records, "records read: {s:?} / {r:?}");
            assert_eq!(
                s.torn.then_some(s.end),
                r.cut.as_ref().map(|c| c.offset),
                "tail cut: {s:?} / {r:?}"
            );
            assert_eq!(s.lost, r.lost.len(), "damage skipped: {s:?} / {r:?}");
            if let Some(n) = entries {
                assert_eq!(s.entries, n, "messages recovered: {s:?}");
            }
        }
        // The same error, at the same place, for the same reason.
        (Err(a), Err(b)) => assert_eq!(
            a.to_string().replace(names.0, names.1),
            b.to_string(),
            "the entry point and open fail differently"
        ),
        (a, b) => panic!("the entry point gives {a:?}, open gives {b:?}"),
    }
}

/// Every stored message, in order; checks the store's own counts.
fn contents(s: &mut FilePublishStore) -> (u64, Vec<(u64, Vec<u8>)>) {
    // Sequence numbers start at 1, but `store(0, ..)` is accepted into an empty store (as by
    // the in-memory store), and `next_after(0)` cannot return it.
    let mut all: Vec<(u64, Vec<u8>)> = s.get(0).map(|f| (0, f.to_vec())).into_iter().collect();
    let mut at = 0;
    while let Some((seq, frame)) = s.next_after(at) {
        assert!(seq > at, "next_after({at}) went back to {seq}");
        at = seq;
        all.push((seq, frame.to_vec()));
    }
    assert_eq!(all.len(), s.unpersisted_count());
    let last = s.last_seq();
    assert!(
        all.iter().all(|(q, _)| *q <= last),
        "last_seq below a stored message"
    );
    for (seq, frame) in &all {
        assert_eq!(s.get(*seq), Some(&frame[..]));
    }
    (last, all)
}

fn publish_segment(file: &[u8], repair: bool) {
    let fs = MemFs::new();
    let dir = Path::new(STORE_DIR);
    fs.put(&dir.join("0000000000000001.seg"), file);
    let read = read_publish_segment(file, repair);
    let opened = FilePublishStore::open_with(dir, CLIENT, publish_opts(), open_mode(&fs, repair));
    let mut s = match opened {
        Ok(s) => {
            let n = s.unpersisted_count();
            // An empty segment is what an older version could leave: removed, not read.
            if !file.is_empty() {
                agree(&read, Ok(s.recovery()), Some(n), SEGMENT_NAMES);
            }
            s
        }
        Err(e) => {
            agree(&read, Err(&e), None, SEGMENT_NAMES);
            return;
        }
    };
    let (last, mut all) = contents(&mut s);
    // A message written after the recovery (after a cut tail, too) is read back with
    // everything recovered, and nothing more is cut off.
    let seq = last.saturating_add(1);
    let frame = b"\0\0\0\x0e{\"c\":\"p\",\"t\":\"x\"}";
    let wrote = seq < u64::MAX && s.store(seq, frame).is_ok();
    drop(s);
    let opened = FilePublishStore::open_with(dir, CLIENT, publish_opts(), open_mode(&fs, false));
    let mut s = opened.unwrap_or_else(|e| panic!("reopening after recovery: {e}"));
    assert!(s.recovery().cut.is_none(), "a second open cut more off");
    assert!(s.recovery().lost.is_empty(), "a second open found damage");
    let again = contents(&mut s);
    if wrote {
        all.push((seq, frame.to_vec()));
        assert_eq!(again, (seq, all), "reopening lost or changed messages");
    } else {
        assert_eq!(again, (last, all), "reopening changed the contents");
    }
}

const SUBS: [&str; 4] = ["1", "2", "s1", "sub"];

fn resume_points(s: &mut FileBookmarkStore) -> Vec<Option<String>> {
    let mut buf = [0u8; 512];
    SUBS.iter()
        .flat_map(|sub| {
            [
                s.most_recent(sub, &mut buf).ok().map(str::to_string),
                s.persisted_bookmark(sub).map(str::to_string),
            ]
        })
        .collect()
}

fn reopen_clean(fs: &MemFs) -> FileBookmarkStore {
    let opened = FileBookmarkStore::open_with(LOG, CLIENT, bookmark_opts(), open_mode(fs, false));
    let s = opened.unwrap_or_else(|e| panic!("reopening after recovery: {e}"));
    assert!(s.recovery().cut.is_none(), "a second open cut more off");
    assert!(s.recovery().lost.is_empty(), "a second open found damage");
    s
}

fn bookmark_log(file: &[u8], repair: bool) {
    let fs = MemFs::new();
    fs.put(Path::new(LOG), file);
    let read = read_bookmark_log(file, repair);
    let opened = FileBookmarkStore::open_with(LOG, CLIENT, bookmark_opts(), open_mode(&fs, repair));
    let mut s = match opened {
        Ok(s) => {
            // An empty log is a new store: created, not read.
            if !file.is_empty() {
                agree(&read, Ok(s.recovery()), None, LOG_NAMES);
            }
            s
        }
        Err(e) => {
            agree(&read, Err(&e), None, LOG_NAMES);
            return;
        }
    };
    // Bookmarks written after the recovery survive with everything recovered, and nothing
    // more is cut off; a prune keeps the same state.
    let bm = "7|9999|";
    let _ = s.log("s1", bm).and_then(|_| s.discard("s1", bm));
    let first = resume_points(&mut s);
    drop(s);
    let mut s = reopen_clean(&fs);
    assert_eq!(
        resume_points(&mut s),
        first,
        "reopening changed the resume points"
    );
    s.prune()
        .unwrap_or_else(|e| panic!("prune in memory failed: {e}"));
    assert_eq!(
        resume_points(&mut s),
        first,
        "prune changed the resume points"
    );
    drop(s);
    let mut s = reopen_clean(&fs);
    assert_eq!(
        resume_points(&mut s),
        first,
        "reopening after a prune changed the resume points"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_bytes_and_a_new_store_pass() {
        for data in [
            &b""[..],
            b"\x00",
            b"\x01",
            b"\x02",
            b"\x03",
            b"\x06",
            b"\x07",
            b"AMPSFSPS",
            b"AMPSFSBM\x02\0\0\0",
        ] {
            fs_store(data);
        }
    }

    #[test]
    fn a_described_segment_opens_with_its_messages() {
        let store = |seq: u64, frame: &[u8]| {
            let mut r = vec![0x02];
            r.extend_from_slice(&seq.to_le_bytes());
            r.extend_from_slice(frame);
            [&[r.len() as u8][..], &r].concat()
        };
        let mut desc = [&5u64.to_le_bytes()[..], &[0, 0]].concat();
        desc.extend(store(6, b"six"));
        desc.extend(store(7, b"seven"));
        let file = fs_file::from_records(false, false, CLIENT, &desc);
        let s = read_publish_segment(&file, false).unwrap();
        assert_eq!((s.records, s.entries, s.torn), (2, 2, false));
        fs_store(&[&[mode::RECORDS][..], &desc].concat());
        fs_store(&file);
    }
}
