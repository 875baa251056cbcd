//! Recovery on the real file system: torn tails are cut off, damage no crash causes is refused
//! (or repaired on request), never a panic, never garbage accepted; files of another client,
//! version or kind are refused, a second open is locked out, `prune` is atomic, and numbering
//! survives. Every fsync policy is exercised.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use amps_core::session::StoreError;
use amps_core::store::{BookmarkStore, PublishStore};
use amps_fs::{
    AtStake, BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions,
    FsyncPolicy, OpenError, OpenMode, TailDamage,
};

fn popts() -> FileStoreOptions {
    FileStoreOptions {
        fsync: FsyncPolicy::Never,
        ..FileStoreOptions::default()
    }
}

fn bopts() -> BookmarkStoreOptions {
    BookmarkStoreOptions {
        fsync: FsyncPolicy::Never,
        ..BookmarkStoreOptions::default()
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

fn entries(s: &mut FilePublishStore) -> Vec<u64> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((seq, _)) = s.next_after(at) {
        out.push(seq);
        at = seq;
    }
    out
}

#[test]
fn stores_are_send() {
    fn is_send<T: Send>() {}
    is_send::<FilePublishStore>();
    is_send::<FileBookmarkStore>();
}

#[test]
fn publish_torn_tail_at_every_offset_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    {
        let mut s = FilePublishStore::open(&src, "p", popts()).unwrap();
        s.store(1, b"first frame").unwrap();
        s.store(2, b"second frame").unwrap();
    }
    let seg = segments(&src).remove(0);
    let full = fs::read(&seg).unwrap();
    let last_len = 8 + 1 + 8 + b"second frame".len();
    let last_start = full.len() - last_len;
    for cut in last_start..full.len() {
        let d = dir.path().join(format!("cut{cut}"));
        fs::create_dir(&d).unwrap();
        fs::write(d.join(seg.file_name().unwrap()), &full[..cut]).unwrap();
        let mut s = FilePublishStore::open(&d, "p", popts()).unwrap();
        let report = s.recovery().clone();
        if cut == last_start {
            assert!(report.cut.is_none(), "a clean end is not damage");
        } else {
            let c = report.cut.expect("torn tail reported");
            assert_eq!(
                (c.offset, c.bytes),
                (last_start as u64, (cut - last_start) as u64)
            );
            assert_eq!(c.damage, TailDamage::Partial);
        }
        assert_eq!(entries(&mut s), [1]);
        assert_eq!(s.last_seq(), 1);
        // The store continues cleanly after the cut.
        s.store(2, b"again").unwrap();
        drop(s);
        let mut s = FilePublishStore::open(&d, "p", popts()).unwrap();
        assert!(s.recovery().cut.is_none());
        assert_eq!(s.get(2), Some(&b"again"[..]));
    }
}

#[test]
fn publish_damage_in_an_older_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileStoreOptions {
        segment_bytes: 64,
        ..popts()
    };
    {
        let mut s = FilePublishStore::open(dir.path(), "p", opts).unwrap();
        for i in 1..=4 {
            s.store(i, &[i as u8; 40]).unwrap();
        }
    }
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    let mut bytes = fs::read(&segs[0]).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 1;
    fs::write(&segs[0], &bytes).unwrap();
    match FilePublishStore::open(dir.path(), "p", opts) {
        Err(OpenError::Damaged(d)) => assert_eq!(d.path, segs[0]),
        other => panic!("expected Damaged, got {other:?}"),
    }
}

#[test]
fn publish_numbering_survives_deleted_segments() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileStoreOptions {
        segment_bytes: 64,
        ..popts()
    };
    {
        let mut s = FilePublishStore::open(dir.path(), "p", opts).unwrap();
        for i in 1..=10 {
            s.store(i, &[7; 50]).unwrap();
            s.discard_up_to(i);
        }
        assert_eq!(s.unpersisted_count(), 0);
        assert!(
            segments(dir.path()).len() <= 1,
            "persisted segments are deleted"
        );
    }
    let mut s = FilePublishStore::open(dir.path(), "p", opts).unwrap();
    assert_eq!(s.unpersisted_count(), 0);
    assert_eq!(s.last_seq(), 10);
    assert_eq!(s.next_after(0), None);
}

#[test]
fn publish_refuses_other_clients_versions_and_kinds() {
    let dir = tempfile::tempdir().unwrap();
    drop(FilePublishStore::open(dir.path(), "alice", popts()).unwrap());
    match FilePublishStore::open(dir.path(), "bob", popts()) {
        Err(OpenError::ClientName {
            expected, found, ..
        }) => {
            assert_eq!((expected.as_str(), found.as_str()), ("bob", "alice"));
        }
        other => panic!("expected ClientName, got {other:?}"),
    }
    let seg = segments(dir.path()).remove(0);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[8..12].copy_from_slice(&9u32.to_le_bytes());
    fs::write(&seg, &bytes).unwrap();
    assert!(matches!(
        FilePublishStore::open(dir.path(), "alice", popts()),
        Err(OpenError::Version {
            found: 9,
            supported: 2,
            ..
        })
    ));
    // A bookmark log where a segment should be.
    let other = tempfile::tempdir().unwrap();
    drop(FileBookmarkStore::open(other.path().join("b"), "alice", bopts()).unwrap());
    fs::copy(other.path().join("b"), &seg).unwrap();
    assert!(matches!(
        FilePublishStore::open(dir.path(), "alice", popts()),
        Err(OpenError::NotAStore { .. })
    ));
}

#[test]
fn second_open_in_the_same_process_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let p = FilePublishStore::open(dir.path().join("p"), "c", popts()).unwrap();
    assert!(matches!(
        FilePublishStore::open(dir.path().join("p"), "c", popts()),
        Err(OpenError::Locked { .. })
    ));
    drop(p);
    FilePublishStore::open(dir.path().join("p"), "c", popts()).unwrap();

    let b = FileBookmarkStore::open(dir.path().join("b"), "c", bopts()).unwrap();
    let err = FileBookmarkStore::open(dir.path().join("b"), "c", bopts()).unwrap_err();
    assert!(matches!(err, OpenError::Locked { .. }));
    assert!(err.to_string().contains("in use"), "{err}");
    drop(b);
    FileBookmarkStore::open(dir.path().join("b"), "c", bopts()).unwrap();
}

#[test]
fn empty_files_are_initialised() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b");
    fs::write(&path, b"").unwrap();
    let s = FileBookmarkStore::open(&path, "c", bopts()).unwrap();
    assert!(s.recovery().created);
    drop(s);
    // An empty newest segment (possible after an OS crash under `Never`) is dropped.
    let pdir = dir.path().join("p");
    drop(FilePublishStore::open(&pdir, "c", popts()).unwrap());
    let seg = segments(&pdir).remove(0);
    fs::write(&seg, b"").unwrap();
    let s = FilePublishStore::open(&pdir, "c", popts()).unwrap();
    assert!(s.recovery().cut.is_some());
}

fn bookmark_log(path: &Path) -> Vec<u8> {
    let mut s = FileBookmarkStore::open(path, "c", bopts()).unwrap();
    s.log("s1", "1|1|").unwrap();
    s.log("s1", "1|2|").unwrap();
    s.discard("s1", "1|1|").unwrap();
    s.discard("s1", "1|2|").unwrap();
    drop(s);
    fs::read(path).unwrap()
}

#[test]
fn bookmark_torn_tail_at_every_offset_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let full = bookmark_log(&dir.path().join("src"));
    // The last record is the discard of 1|2|: 8 + 1 + 2 + 4 bytes.
    let last_start = full.len() - 15;
    for cut in last_start..full.len() {
        let path = dir.path().join(format!("cut{cut}"));
        fs::write(&path, &full[..cut]).unwrap();
        let mut s = FileBookmarkStore::open(&path, "c", bopts()).unwrap();
        assert_eq!(s.recovery().cut.is_some(), cut > last_start);
        let mut out = [0u8; 64];
        // The discard of 1|2| is lost with the tail: resume after 1|1|, and 1|2| is new.
        assert_eq!(s.most_recent("s1", &mut out).unwrap(), "1|1|");
        assert!(s.log("s1", "1|2|").unwrap());
        assert!(!s.log("s1", "1|1|").unwrap());
    }
}

#[test]
fn bookmark_garbage_after_the_log_is_refused_and_bad_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b");
    let full = bookmark_log(&path);
    // Zeros past the end: a torn tail, cut.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&[0; 100]).unwrap();
    drop(f);
    let s = FileBookmarkStore::open(&path, "c", bopts()).unwrap();
    let cut = s.recovery().cut.clone().unwrap();
    assert_eq!((cut.offset, cut.bytes), (full.len() as u64, 100));
    drop(s);
    assert_eq!(fs::read(&path).unwrap(), full, "cut back to the valid log");

    // Other bytes past the end: no write leaves them, refused until repaired.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&[0xAB; 100]).unwrap();
    drop(f);
    match FileBookmarkStore::open(&path, "c", bopts()) {
        Err(OpenError::Damaged(d)) => {
            assert_eq!((d.offset, d.bytes), (full.len() as u64, 100));
            assert_eq!(d.at_stake, AtStake::Records { intact: 5 });
        }
        other => panic!("expected Damaged, got {other:?}"),
    }
    let mut s =
        FileBookmarkStore::open_with(&path, "c", bopts(), OpenMode::new().repair()).unwrap();
    assert_eq!(s.recovery().lost.len(), 1);
    let mut out = [0u8; 64];
    assert_eq!(s.most_recent("s1", &mut out).unwrap(), "1|2|");
    drop(s);
    FileBookmarkStore::open(&path, "c", bopts()).unwrap();
    fs::write(&path, &full).unwrap();

    // A well-formed record the store cannot have written: a discard of a message never
    // received. Its checksum is valid, so it is corruption, not a torn write: refused.
    let mut rec = vec![0u8; 8];
    rec.push(0x12);
    rec.extend_from_slice(&0u16.to_le_bytes());
    rec.extend_from_slice(b"9|9|");
    let len = ((rec.len() - 8) as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(&rec[8..]);
    rec[..4].copy_from_slice(&len);
    rec[4..8].copy_from_slice(&h.finalize().to_le_bytes());
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&rec).unwrap();
    drop(f);
    let err = FileBookmarkStore::open(&path, "c", bopts()).unwrap_err();
    match &err {
        OpenError::Corrupt { offset, .. } => assert_eq!(*offset, full.len() as u64),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err.to_string().contains("corrupt"), "{err}");
}

#[test]
fn bookmark_refuses_other_clients_versions_and_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b");
    drop(FileBookmarkStore::open(&path, "alice", bopts()).unwrap());
    assert!(matches!(
        FileBookmarkStore::open(&path, "bob", bopts()),
        Err(OpenError::ClientName { .. })
    ));
    let mut bytes = fs::read(&path).unwrap();
    bytes[8] = 3;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        FileBookmarkStore::open(&path, "alice", bopts()),
        Err(OpenError::Version { found: 3, .. })
    ));
    fs::write(&path, b"not a store at all, just some text").unwrap();
    assert!(matches!(
        FileBookmarkStore::open(&path, "alice", bopts()),
        Err(OpenError::NotAStore { .. })
    ));
}

#[test]
fn prune_shrinks_the_log_and_an_interrupted_prune_leaves_the_old_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b");
    let mut s = FileBookmarkStore::open(&path, "c", bopts()).unwrap();
    for i in 0..1000 {
        let bm = format!("18446744073709551557|{i:020}|");
        assert!(s.log("sub-1", &bm).unwrap());
        if i < 990 {
            s.discard("sub-1", &bm).unwrap();
        }
    }
    s.persisted("sub-1", "18446744073709551557|00000000000000000900|")
        .unwrap();
    let before = s.log_bytes();
    // The AMPS Python client guide: "roughly 70 bytes ... plus the length of the subscription ID"
    // per bookmark record; here a received and a discarded record per message, with 42-byte
    // bookmarks.
    assert!(
        before / 1000 <= 2 * (70 + 5),
        "{} bytes per message",
        before / 1000
    );
    s.prune().unwrap();
    let after = s.log_bytes();
    assert!(after < 1000, "pruned to {after} bytes");
    assert_eq!(fs::metadata(&path).unwrap().len(), after);
    // A crash between writing the new file and renaming it leaves a staging file: ignored.
    fs::write(dir.path().join("b.tmp"), b"half a new log").unwrap();
    drop(s);
    let mut s = FileBookmarkStore::open(&path, "c", bopts()).unwrap();
    assert!(!dir.path().join("b.tmp").exists());
    let mut out = [0u8; 64];
    assert_eq!(
        s.most_recent("sub-1", &mut out).unwrap(),
        "18446744073709551557|00000000000000000989|"
    );
    assert_eq!(
        s.persisted_bookmark("sub-1"),
        Some("18446744073709551557|00000000000000000900|")
    );
    assert!(
        !s.log("sub-1", "18446744073709551557|00000000000000000989|")
            .unwrap()
    );
    assert!(
        s.log("sub-1", "18446744073709551557|00000000000000000995|")
            .unwrap()
    );
}

#[test]
fn every_fsync_policy_round_trips() {
    let policies = [
        FsyncPolicy::Always,
        FsyncPolicy::Every {
            writes: 3,
            interval: Duration::from_millis(1),
        },
        FsyncPolicy::Every {
            writes: 1000,
            interval: Duration::from_secs(3600),
        },
        FsyncPolicy::Never,
    ];
    for fsync in policies {
        let dir = tempfile::tempdir().unwrap();
        let popts = FileStoreOptions {
            fsync,
            segment_bytes: 100,
            ..FileStoreOptions::default()
        };
        let bopts = BookmarkStoreOptions {
            fsync,
            auto_prune_bytes: Some(200),
            ..BookmarkStoreOptions::default()
        };
        {
            let mut p = FilePublishStore::open(dir.path().join("p"), "c", popts).unwrap();
            let mut b = FileBookmarkStore::open(dir.path().join("b"), "c", bopts).unwrap();
            for i in 1..=20u64 {
                p.store(i, format!("frame {i}").as_bytes()).unwrap();
                let bm = format!("5|{i}|");
                b.log("s", &bm).unwrap();
                b.discard("s", &bm).unwrap();
            }
            p.discard_up_to(15);
            p.sync().unwrap();
            b.sync().unwrap();
        }
        let mut p = FilePublishStore::open(dir.path().join("p"), "c", popts).unwrap();
        assert_eq!(entries(&mut p), [16, 17, 18, 19, 20], "{fsync:?}");
        let mut b = FileBookmarkStore::open(dir.path().join("b"), "c", bopts).unwrap();
        let mut out = [0u8; 16];
        assert_eq!(b.most_recent("s", &mut out).unwrap(), "5|20|", "{fsync:?}");
    }
}

#[test]
fn invalid_options_and_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let zero = FileStoreOptions {
        max_messages: 0,
        ..popts()
    };
    assert!(matches!(
        FilePublishStore::open(dir.path(), "c", zero),
        Err(OpenError::InvalidOptions(_))
    ));
    assert!(matches!(
        FilePublishStore::open(dir.path(), "", popts()),
        Err(OpenError::InvalidOptions(_))
    ));
    let none = BookmarkStoreOptions {
        max_subscriptions: 0,
        ..bopts()
    };
    assert!(matches!(
        FileBookmarkStore::open(dir.path().join("b"), "c", none),
        Err(OpenError::InvalidOptions(_))
    ));
    let mut s = FilePublishStore::open(dir.path(), "c", popts()).unwrap();
    assert_eq!(s.store(1, b"x"), Ok(()));
    assert_eq!(s.store(1, b"x"), Err(StoreError::OutOfOrder));
}
