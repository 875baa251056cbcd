//! Damage no crash causes, one flipped bit at a time: every bit of small store files (the
//! newest and the oldest segment of a publish store, a bookmark log) flipped in turn. Each
//! outcome is one of two: `open` refuses with a typed error naming the file, the damaged bytes
//! (covering the flipped one) and what they may have held; or, asked to repair, it keeps every
//! message outside that range and reports the range as lost, and the repaired store opens
//! cleanly. Never a silent cut. (The one flip a strict open accepts is in the durable mark,
//! which only helps tell torn tails from damage: everything is still there.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use amps_core::store::{BookmarkStore, PublishStore};
use amps_fs::vfs::Vfs;
use amps_fs::{
    AtStake, BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions,
    FsyncPolicy, OpenError, OpenMode,
};

use super::simfs::{Image, SimFs};

const MARK: std::ops::Range<usize> = 12..24;

fn popts() -> FileStoreOptions {
    FileStoreOptions {
        fsync: FsyncPolicy::Always,
        segment_bytes: 400,
        ..FileStoreOptions::default()
    }
}

fn contents(s: &mut FilePublishStore) -> Vec<(u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((seq, f)) = s.next_after(at) {
        out.push((seq, f.to_vec()));
        at = seq;
    }
    out
}

fn flipped(image: &Image, file: &Path, bit: usize) -> Image {
    let mut img = image.clone();
    if let Some(b) = img.get_mut(file) {
        b[bit / 8] ^= 1 << (bit % 8);
    }
    img
}

/// Check a typed refusal of the file with `byte` flipped.
fn refused(e: &OpenError, file: &Path, byte: usize) -> Result<(), String> {
    match e {
        OpenError::Damaged(d) => {
            if d.path != file {
                return Err(format!("damage reported in {:?}", d.path));
            }
            let (from, to) = (d.offset as usize, (d.offset + d.bytes) as usize);
            if !(from <= byte && byte < to) {
                return Err(format!("damage reported at {from}..{to}"));
            }
            Ok(())
        }
        OpenError::NotAStore { path } if byte < 8 && path == file => Ok(()),
        OpenError::Version { path, .. } if (8..12).contains(&byte) && path == file => Ok(()),
        other => Err(format!("unexpected error {other}")),
    }
}

#[test]
fn every_bit_flip_of_publish_segments_is_refused_or_repaired() {
    let fs = Arc::new(SimFs::new());
    let dir = PathBuf::from("/sim/publish");
    let mode = || OpenMode::new().fs(fs.clone());
    let mut s = FilePublishStore::open_with(&dir, "flips", popts(), mode()).unwrap();
    let frame = |seq: u64| -> Vec<u8> {
        (0..20 + seq as usize * 3)
            .map(|i| (seq as u8) ^ i as u8)
            .collect()
    };
    let stored: Vec<(u64, Vec<u8>)> = (1..=16u64).map(|seq| (seq, frame(seq))).collect();
    for (seq, f) in &stored {
        s.store(*seq, f).unwrap();
    }
    s.discard_up_to(2);
    s.discard(3);
    let expected = contents(&mut s);
    drop(s);
    let image = fs.image();
    let segs: Vec<&PathBuf> = image.keys().filter(|p| p.ends_with_seg()).collect();
    assert!(segs.len() >= 3, "{segs:?}");
    let mut outcomes = [0usize; 3];
    for file in [segs[segs.len() - 1], segs[0]] {
        let len = image[file].len();
        for bit in 0..len * 8 {
            let byte = bit / 8;
            let img = flipped(&image, file, bit);
            let why = check_publish(&img, &dir, file, byte, &expected, &stored, &mut outcomes);
            if let Err(why) = why {
                panic!(
                    "{}: flip of bit {} of byte {byte}: {why}",
                    file.display(),
                    bit % 8
                );
            }
        }
    }
    println!(
        "publish segments: {} flips refused and repaired, {} refused (not a store), {} in the \
         durable mark",
        outcomes[0], outcomes[1], outcomes[2]
    );
}

fn check_publish(
    img: &Image,
    dir: &Path,
    file: &Path,
    byte: usize,
    expected: &[(u64, Vec<u8>)],
    stored: &[(u64, Vec<u8>)],
    outcomes: &mut [usize; 3],
) -> Result<(), String> {
    let fs = Arc::new(SimFs::from_image(img));
    let mode = || OpenMode::new().fs(fs.clone());
    let err = match FilePublishStore::open_with(dir, "flips", popts(), mode()) {
        Ok(mut s) => {
            let got = contents(&mut s);
            if MARK.contains(&byte) && got == expected {
                outcomes[2] += 1;
                return Ok(());
            }
            return Err(format!("opened with {} messages", got.len()));
        }
        Err(e) => e,
    };
    refused(&err, file, byte)?;
    let OpenError::Damaged(damage) = err else {
        outcomes[1] += 1;
        return Ok(());
    };
    let mut s = FilePublishStore::open_with(dir, "flips", popts(), mode().repair())
        .map_err(|e| format!("repair refused: {e}"))?;
    let lost = s.recovery().lost.clone();
    if lost.first() != Some(&damage) {
        return Err(format!("repair reports {lost:?}, open reported {damage:?}"));
    }
    let got = contents(&mut s);
    for (seq, frame) in expected {
        let at_stake = lost.iter().any(|d| match d.at_stake {
            AtStake::Messages { after, before } => *seq > after && before.is_none_or(|b| *seq < b),
            _ => false,
        });
        match got.iter().find(|(s, _)| s == seq) {
            Some((_, f)) if f != frame => return Err(format!("message {seq} changed")),
            None if !at_stake => return Err(format!("message {seq} lost silently")),
            _ => {}
        }
    }
    // A lost discard brings messages back; nothing else may appear.
    if got.iter().any(|m| !stored.contains(m)) {
        return Err("repair recovered a message never stored".into());
    }
    drop(s);
    let mut s = FilePublishStore::open_with(dir, "flips", popts(), mode())
        .map_err(|e| format!("the repaired store is refused: {e}"))?;
    if contents(&mut s) != got || !s.recovery().lost.is_empty() {
        return Err("the repaired store reads back differently".into());
    }
    outcomes[0] += 1;
    Ok(())
}

trait SegPath {
    fn ends_with_seg(&self) -> bool;
}

impl SegPath for PathBuf {
    fn ends_with_seg(&self) -> bool {
        self.extension().is_some_and(|e| e == "seg")
    }
}

fn bopts() -> BookmarkStoreOptions {
    BookmarkStoreOptions {
        fsync: FsyncPolicy::Always,
        auto_prune_bytes: None,
        ..BookmarkStoreOptions::default()
    }
}

fn state(s: &mut FileBookmarkStore) -> Vec<String> {
    let mut out = Vec::new();
    for sub in ["a", "b"] {
        let mut buf = [0u8; 128];
        out.push(format!(
            "{:?}",
            s.most_recent(sub, &mut buf).map(str::to_string)
        ));
        out.push(format!("{:?}", s.persisted_bookmark(sub)));
    }
    out
}

#[test]
fn every_bit_flip_of_a_bookmark_log_is_refused_or_repaired() {
    let fs = Arc::new(SimFs::new());
    fs.create_dir_all(Path::new("/sim")).unwrap();
    let path = PathBuf::from("/sim/bookmarks.log");
    let mode = || OpenMode::new().fs(fs.clone());
    let mut s = FileBookmarkStore::open_with(&path, "flips", bopts(), mode()).unwrap();
    for n in 1..=6 {
        s.log("a", &format!("7|{n}|")).unwrap();
        s.log("b", &format!("9|{n}|")).unwrap();
        s.discard("a", &format!("7|{n}|")).unwrap();
        if n == 3 {
            s.persisted("a", "7|2|").unwrap();
            s.prune().unwrap();
        }
    }
    s.discard("b", "9|1|").unwrap();
    let expected = state(&mut s);
    drop(s);
    let image = fs.image();
    let len = image[&path].len();
    let mut outcomes = [0usize; 3];
    for bit in 0..len * 8 {
        let byte = bit / 8;
        let img = flipped(&image, &path, bit);
        let fs = Arc::new(SimFs::from_image(&img));
        let mode = || OpenMode::new().fs(fs.clone());
        let fail = |why: String| -> ! { panic!("flip of bit {} of byte {byte}: {why}", bit % 8) };
        let err = match FileBookmarkStore::open_with(&path, "flips", bopts(), mode()) {
            Ok(mut s) => {
                let got = state(&mut s);
                if MARK.contains(&byte) && got == expected {
                    outcomes[2] += 1;
                    continue;
                }
                fail(format!("opened, as {got:?}"))
            }
            Err(e) => e,
        };
        refused(&err, &path, byte).unwrap_or_else(|why| fail(why));
        let OpenError::Damaged(damage) = err else {
            outcomes[1] += 1;
            continue;
        };
        assert!(matches!(damage.at_stake, AtStake::Records { .. }));
        let mut s = FileBookmarkStore::open_with(&path, "flips", bopts(), mode().repair())
            .unwrap_or_else(|e| fail(format!("repair refused: {e}")));
        if s.recovery().lost.first() != Some(&damage) {
            fail(format!("repair reports {:?}", s.recovery().lost));
        }
        let repaired = state(&mut s);
        drop(s);
        let mut s = FileBookmarkStore::open_with(&path, "flips", bopts(), mode())
            .unwrap_or_else(|e| fail(format!("the repaired log is refused: {e}")));
        if state(&mut s) != repaired || !s.recovery().lost.is_empty() {
            fail("the repaired log reads back differently".into());
        }
        outcomes[0] += 1;
    }
    println!(
        "bookmark log: {} flips refused and repaired, {} refused (not a store), {} in the \
         durable mark",
        outcomes[0], outcomes[1], outcomes[2]
    );
}
