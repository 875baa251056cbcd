//! The durable stores of `amps-fs`, opened for a client (feature `fs`).

use std::path::Path;

use amps_fs::{BookmarkStoreOptions, FileBookmarkStore, FilePublishStore, FileStoreOptions};

use crate::error::{Error, ErrorKind, Result};

/// Open the publish store in directory `publish_dir` and the bookmark store in file
/// `bookmark_file` for client `name`, with their default options (fsync at most 100 ms after
/// a write). Build them yourself for other options and pass them to the builder.
pub(crate) fn open_files(
    name: &str,
    publish_dir: impl AsRef<Path>,
    bookmark_file: impl AsRef<Path>,
) -> Result<(FilePublishStore, FileBookmarkStore)> {
    let store_err = |what: &str, e: amps_fs::OpenError| {
        Error::with_source(ErrorKind::Store, format!("cannot open the {what}: {e}"), e)
    };
    let publish = FilePublishStore::open(publish_dir, name, FileStoreOptions::default())
        .map_err(|e| store_err("publish store", e))?;
    let bookmarks = FileBookmarkStore::open(bookmark_file, name, BookmarkStoreOptions::default())
        .map_err(|e| store_err("bookmark store", e))?;
    Ok((publish, bookmarks))
}
