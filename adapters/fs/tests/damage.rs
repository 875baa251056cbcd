//! Damage no crash causes is refused, never cut (on the real file system): a flipped bit in
//! the middle of a segment, a synced file cut short; what a crash leaves (a zeroed tail past
//! the durable mark) is still cut. Stores of the previous format version are read and
//! rewritten.

use std::fs;
use std::path::{Path, PathBuf};

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

/// One flipped bit in record 10 of 100 in the active segment: no crash does that, so `open`
/// refuses, naming the file, the record and the messages at stake, and changes nothing; a
/// repair keeps the 99 others and reports message 10 as lost.
#[test]
fn publish_bit_flip_mid_segment_is_refused_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileStoreOptions {
        fsync: FsyncPolicy::Always,
        ..FileStoreOptions::default()
    };
    let mut offsets = Vec::new();
    {
        let mut s = FilePublishStore::open(dir.path(), "p", opts).unwrap();
        for seq in 1..=100u64 {
            offsets.push(s.disk_bytes());
            s.store(seq, format!("frame {seq:03}").as_bytes()).unwrap();
        }
    }
    let seg = segments(dir.path()).remove(0);
    let mut bytes = fs::read(&seg).unwrap();
    let len = bytes.len();
    let tenth = offsets[9] as usize;
    bytes[tenth + 20] ^= 0x10;
    fs::write(&seg, &bytes).unwrap();
    match FilePublishStore::open(dir.path(), "p", opts) {
        Err(OpenError::Damaged(d)) => {
            assert_eq!((d.path.as_path(), d.offset), (seg.as_path(), tenth as u64));
            assert_eq!(d.cause, TailDamage::BadChecksum);
            assert_eq!(
                d.at_stake,
                AtStake::Messages {
                    after: 9,
                    before: Some(11)
                }
            );
            let text = OpenError::Damaged(d).to_string();
            assert!(text.contains("above 9 and below 11"), "{text}");
        }
        other => panic!("expected Damaged, got {other:?}"),
    }
    assert_eq!(fs::metadata(&seg).unwrap().len(), len as u64, "nothing cut");

    let mut s =
        FilePublishStore::open_with(dir.path(), "p", opts, OpenMode::new().repair()).unwrap();
    let lost = &s.recovery().lost;
    assert_eq!(lost.len(), 1);
    assert_eq!((lost[0].offset, lost[0].bytes), (tenth as u64, 26));
    let kept = entries(&mut s);
    assert_eq!(kept.len(), 99);
    assert!(!kept.contains(&10));
    assert_eq!(s.last_seq(), 100);
    drop(s);
    // The repaired store is clean.
    let mut s = FilePublishStore::open(dir.path(), "p", opts).unwrap();
    assert!(s.recovery().lost.is_empty() && s.recovery().cut.is_none());
    assert_eq!(entries(&mut s), kept);
}

/// A zero-filled tail, what a power cut leaves when the file's new length reached the disk
/// but its data did not (a 512-byte sector holds all of its new content or none), is a torn
/// tail: cut.
#[test]
fn publish_zeroed_tail_past_the_durable_mark_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = FilePublishStore::open(dir.path(), "p", popts()).unwrap();
        s.store(1, b"one").unwrap();
        s.store(2, b"two").unwrap();
    }
    let seg = segments(dir.path()).remove(0);
    let mut bytes = fs::read(&seg).unwrap();
    let n = bytes.len();
    // The last record (20 bytes) lies in the file's first sector, after the previous one.
    bytes[n - 20..].fill(0);
    fs::write(&seg, &bytes).unwrap();
    let mut s = FilePublishStore::open(dir.path(), "p", popts()).unwrap();
    assert_eq!(
        s.recovery().cut.as_ref().unwrap().damage,
        TailDamage::BadLength
    );
    assert_eq!(entries(&mut s), [1]);
    drop(s);
    // Zeros from the middle of a record are no torn sector: refused.
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[12, 0, 0, 0, 1, 2, 3, 4, 2]);
    bytes.extend_from_slice(&[0; 11]);
    fs::write(&seg, &bytes).unwrap();
    assert!(matches!(
        FilePublishStore::open(dir.path(), "p", popts()),
        Err(OpenError::Damaged(_))
    ));
}

/// A record as the stores frame it: length, CRC-32 of length and payload, payload.
fn framed(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    let mut out = len.to_vec();
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A version 1 file (no durable mark): magic, version, header record with `extra`.
fn version_1(magic: &[u8; 8], name: &str, extra: &[u8]) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut header = vec![0x01];
    header.extend_from_slice(&(name.len() as u16).to_le_bytes());
    header.extend_from_slice(name.as_bytes());
    header.extend_from_slice(extra);
    out.extend(framed(&header));
    out
}

#[test]
fn stores_of_format_version_1_are_read_and_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    // A publish segment: id 1, last_seq 0 before it, messages 1 and 2, 1 persisted.
    let pdir = dir.path().join("p");
    fs::create_dir(&pdir).unwrap();
    let mut extra = 1u64.to_le_bytes().to_vec();
    extra.extend_from_slice(&0u64.to_le_bytes());
    let mut seg = version_1(b"AMPSFSPS", "old", &extra);
    for (seq, frame) in [(1u64, &b"one"[..]), (2, b"two")] {
        let mut p = vec![0x02];
        p.extend_from_slice(&seq.to_le_bytes());
        p.extend_from_slice(frame);
        seg.extend(framed(&p));
    }
    let mut p = vec![0x03];
    p.extend_from_slice(&1u64.to_le_bytes());
    seg.extend(framed(&p));
    fs::write(pdir.join("0000000000000001.seg"), &seg).unwrap();
    let mut s = FilePublishStore::open(&pdir, "old", popts()).unwrap();
    assert_eq!(s.get(2), Some(&b"two"[..]));
    assert_eq!((entries(&mut s), s.last_seq()), (vec![2], 2));
    s.store(3, b"three").unwrap();
    drop(s);
    // The store went on in a new segment of the current format.
    let segs = segments(&pdir);
    assert_eq!(fs::read(segs.last().unwrap()).unwrap()[8], 2);
    let mut s = FilePublishStore::open(&pdir, "old", popts()).unwrap();
    assert_eq!(entries(&mut s), [2, 3]);

    // A bookmark log: subscription s1 received 1|1| and 1|2| and discarded 1|1|.
    let path = dir.path().join("b");
    let mut log = version_1(b"AMPSFSBM", "old", &[]);
    for (kind, text) in [(0x10, "s1"), (0x11, "1|1|"), (0x11, "1|2|"), (0x12, "1|1|")] {
        let mut p = vec![kind, 0, 0];
        p.extend_from_slice(text.as_bytes());
        log.extend(framed(&p));
    }
    fs::write(&path, &log).unwrap();
    let mut s = FileBookmarkStore::open(&path, "old", bopts()).unwrap();
    let mut out = [0u8; 64];
    assert_eq!(s.most_recent("s1", &mut out).unwrap(), "1|1|");
    assert!(
        s.log("s1", "1|2|").unwrap(),
        "1|2| is in the window, not discarded"
    );
    drop(s);
    assert_eq!(
        fs::read(&path).unwrap()[8],
        2,
        "rewritten in the current format"
    );
    let mut s = FileBookmarkStore::open(&path, "old", bopts()).unwrap();
    assert_eq!(s.most_recent("s1", &mut out).unwrap(), "1|1|");
}

/// Bytes that were on stable storage do not vanish in a crash: a synced file cut short, even
/// at a record boundary, is damage.
#[test]
fn a_synced_file_cut_short_is_damage() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileStoreOptions {
        fsync: FsyncPolicy::Always,
        ..FileStoreOptions::default()
    };
    {
        let mut s = FilePublishStore::open(dir.path(), "p", opts).unwrap();
        for seq in 1..=3 {
            s.store(seq, b"twelve bytes").unwrap();
        }
    }
    let seg = segments(dir.path()).remove(0);
    let full = fs::read(&seg).unwrap();
    let record = 8 + 1 + 8 + 12;
    for (cut, offset) in [(5, full.len() - record), (record, full.len() - record)] {
        fs::write(&seg, &full[..full.len() - cut]).unwrap();
        match FilePublishStore::open(dir.path(), "p", opts) {
            Err(OpenError::Damaged(d)) => {
                assert_eq!(d.offset, offset as u64, "cut {cut}");
                assert_eq!(
                    d.at_stake,
                    AtStake::Messages {
                        after: 2,
                        before: None
                    }
                );
            }
            other => panic!("cut {cut}: expected Damaged, got {other:?}"),
        }
    }
}

/// A zeroed 512-byte block in the middle of a synced segment (what a lost disk block looks
/// like) is refused; a repair keeps every message after it.
#[test]
fn publish_zeroed_block_mid_segment_is_refused_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let opts = FileStoreOptions {
        fsync: FsyncPolicy::Always,
        ..FileStoreOptions::default()
    };
    {
        let mut s = FilePublishStore::open(dir.path(), "p", opts).unwrap();
        for seq in 1..=60u64 {
            s.store(seq, format!("{seq:>40}").as_bytes()).unwrap();
        }
    }
    let seg = segments(dir.path()).remove(0);
    let mut bytes = fs::read(&seg).unwrap();
    bytes[1024..1536].fill(0);
    fs::write(&seg, &bytes).unwrap();
    let d = match FilePublishStore::open(dir.path(), "p", opts) {
        Err(OpenError::Damaged(d)) => d,
        other => panic!("expected Damaged, got {other:?}"),
    };
    assert!(d.offset <= 1024 && d.offset + d.bytes >= 1536, "{d:?}");
    let AtStake::Messages {
        after,
        before: Some(before),
    } = d.at_stake
    else {
        panic!("{:?}", d.at_stake);
    };
    let mut s =
        FilePublishStore::open_with(dir.path(), "p", opts, OpenMode::new().repair()).unwrap();
    let kept = entries(&mut s);
    let want: Vec<u64> = (1..=after).chain(before..=60).collect();
    assert_eq!(kept, want);
    assert!(
        before - after <= 14,
        "only the block's messages are lost: {after}..{before}"
    );
}

/// The same for the bookmark log.
#[test]
fn bookmark_zeroed_block_mid_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b");
    let opts = BookmarkStoreOptions {
        fsync: FsyncPolicy::Always,
        ..BookmarkStoreOptions::default()
    };
    {
        let mut s = FileBookmarkStore::open(&path, "c", opts).unwrap();
        for n in 1..=80 {
            s.log("s1", &format!("1|{n}|")).unwrap();
        }
        for n in 1..=70 {
            s.discard("s1", &format!("1|{n}|")).unwrap();
        }
    }
    let mut bytes = fs::read(&path).unwrap();
    bytes[512..1024].fill(0);
    fs::write(&path, &bytes).unwrap();
    let d = match FileBookmarkStore::open(&path, "c", opts) {
        Err(OpenError::Damaged(d)) => d,
        other => panic!("expected Damaged, got {other:?}"),
    };
    assert!(d.offset <= 512 && d.offset + d.bytes >= 1024, "{d:?}");
    assert_eq!(fs::read(&path).unwrap(), bytes, "nothing changed");
    let mut s = FileBookmarkStore::open_with(&path, "c", opts, OpenMode::new().repair()).unwrap();
    // The zeroed block held messages received in the middle; their discards, later in the
    // log, no longer apply and are reported too. Every other change is kept: the messages
    // before and after the block were discarded up to 70.
    let lost = &s.recovery().lost;
    assert_eq!(lost[0].offset, d.offset);
    assert!(lost.len() > 1);
    assert!(
        lost[1..]
            .iter()
            .all(|l| matches!(l.cause, TailDamage::Invalid(_)))
    );
    let mut out = [0u8; 64];
    assert_eq!(s.most_recent("s1", &mut out).unwrap(), "1|70|");
    assert!(!s.log("s1", "1|70|").unwrap());
    assert!(s.log("s1", "1|71|").unwrap());
}
