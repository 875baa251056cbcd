//! `sync()` and `prune()` reach the file stores through the core's store traits, so adapters
//! holding `Box<dyn PublishStore>` / `Box<dyn BookmarkStore>` can call them.

use amps_core::store::{BookmarkStore, PublishStore};
use amps_fs::{BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions};

#[test]
fn sync_and_prune_through_boxed_traits() {
    let dir = tempfile::tempdir().unwrap();
    let mut p: Box<dyn PublishStore + Send> = Box::new(
        FilePublishStore::open(dir.path().join("pub"), "c", FileStoreOptions::default()).unwrap(),
    );
    p.store(1, b"frame").unwrap();
    p.sync().unwrap();
    let path = dir.path().join("bm.log");
    let mut b: Box<dyn BookmarkStore + Send> =
        Box::new(FileBookmarkStore::open(&path, "c", BookmarkStoreOptions::default()).unwrap());
    for i in 1..=50 {
        b.log("s", &format!("1|{i}|")).unwrap();
        b.discard("s", &format!("1|{i}|")).unwrap();
    }
    b.sync().unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    b.prune().unwrap();
    let after = std::fs::metadata(&path).unwrap().len();
    assert!(
        after < before,
        "prune rewrote the log smaller: {before} -> {after}"
    );
    let mut out = [0u8; 64];
    assert_eq!(b.most_recent("s", &mut out).unwrap(), "1|50|");
}
