//! The file stores' recovery (`amps-fs`) reading arbitrary file contents, through the public
//! API only: the input becomes a publish-store segment or a bookmark log in a scratch
//! directory, and the store is opened.
//!
//! Opening either fails with a typed `OpenError` or gives a store that is consistent
//! (publish: sequence numbers strictly increasing, the count agrees, `last_seq` covers them
//! all) and stable: after a write, opening it again gives the same contents plus what was
//! written, with nothing more cut off.
//!
//! First byte: bit 0 chooses the bookmark store (else the publish store); bit 1 builds the file
//! from records (`len | payload`, the driver writes each record's length and CRC-32, so the
//! fuzzer gets past the checksums), with a valid preamble and header; otherwise the input is
//! the file as is. In record mode a length byte of `0xff` appends the rest of the input raw,
//! as a torn or corrupt tail.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use amps_core::store::{BookmarkStore, PublishStore};
use amps_fs::{
    BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions, FsyncPolicy,
};
use amps_fuzz::fs_file;
use libfuzzer_sys::fuzz_target;

const NAME: &str = "fuzz";

fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // A memory file system when there is one: the target writes a file per input.
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("amps-fuzz-fs-{}", std::process::id()))
    })
}

fn publish_opts() -> FileStoreOptions {
    FileStoreOptions {
        fsync: FsyncPolicy::Never,
        max_messages: 1024,
        max_bytes: 1 << 20,
        segment_bytes: 1 << 20,
    }
}

fn bookmark_opts() -> BookmarkStoreOptions {
    BookmarkStoreOptions {
        fsync: FsyncPolicy::Never,
        max_subscriptions: 16,
        max_window_bytes: 1 << 16,
        auto_prune_bytes: None,
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

fn publish(dir: &Path) {
    let Ok(mut s) = FilePublishStore::open(dir, NAME, publish_opts()) else {
        return;
    };
    let (last, mut all) = contents(&mut s);
    // A message written after the recovery (after a cut tail, too) is read back with
    // everything recovered, and nothing more is cut off.
    let seq = last.saturating_add(1);
    let frame = b"\0\0\0\x0e{\"c\":\"p\",\"t\":\"x\"}";
    let wrote = seq < u64::MAX && s.store(seq, frame).is_ok();
    drop(s);
    let mut s = FilePublishStore::open(dir, NAME, publish_opts()).expect("reopen after recovery");
    assert!(s.recovery().cut.is_none(), "a second open cut more off");
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

fn bookmarks(path: &Path) {
    let Ok(mut s) = FileBookmarkStore::open(path, NAME, bookmark_opts()) else {
        return;
    };
    // Bookmarks written after the recovery survive with everything recovered, and nothing
    // more is cut off.
    let bm = "7|9999|";
    let _ = s.log("s1", bm).and_then(|_| s.discard("s1", bm));
    let first = resume_points(&mut s);
    drop(s);
    let mut s =
        FileBookmarkStore::open(path, NAME, bookmark_opts()).expect("reopen after recovery");
    assert!(s.recovery().cut.is_none(), "a second open cut more off");
    assert_eq!(
        resume_points(&mut s),
        first,
        "reopening changed the resume points"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bookmark = mode & 1 != 0;
    let file = if mode & 2 != 0 {
        fs_file::from_records(bookmark, NAME, rest)
    } else {
        rest.to_vec()
    };
    let dir = scratch_dir();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the scratch directory");
    if bookmark {
        let path = dir.join("bookmarks.log");
        std::fs::write(&path, &file).expect("write the log");
        bookmarks(&path);
    } else {
        let seg = dir.join("publish");
        std::fs::create_dir_all(&seg).expect("create the store directory");
        std::fs::write(seg.join("0000000000000001.seg"), &file).expect("write the segment");
        publish(&seg);
    }
});
