//! Reading a store file back on open: header checks, every record in order, and the torn-tail
//! rule (protocol-notes "File stores": the first bad record and everything after it is the
//! damaged tail; it is cut off with a warning where a crash can have torn it, refused elsewhere).

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::error::{OpenError, TailCut};
use crate::record::{Kind, Next, Reader};

/// Longest client name a store records (the session's own limit, protocol.md §8.3).
const MAX_CLIENT_NAME: usize = 128;

/// Refuse a client name no session can have.
pub(crate) fn check_client_name(name: &str) -> Result<(), OpenError> {
    if name.is_empty() || name.len() > MAX_CLIENT_NAME {
        return Err(OpenError::InvalidOptions(
            "client name must be 1 to 128 bytes",
        ));
    }
    Ok(())
}

/// What the file holds, in order.
pub(crate) enum Item<'a> {
    /// The header's kind-specific bytes (first).
    Header(&'a [u8]),
    /// A record: its offset in the file and its payload (type byte first).
    Record(u64, &'a [u8]),
}

/// A store file read back.
pub(crate) struct Recovered {
    /// The file, opened for reading and appending.
    pub(crate) file: File,
    /// Its valid length (after a cut, if any).
    pub(crate) len: u64,
    /// The damaged tail cut off.
    pub(crate) cut: Option<TailCut>,
    /// Valid records read.
    pub(crate) records: u64,
}

/// Open the store file at `path`, check its preamble and client name, and hand its header and
/// then each record to `apply`, which may refuse one that makes no sense (its reason becomes
/// [`OpenError::Corrupt`]). A damaged tail is cut off when `may_cut`, refused otherwise.
pub(crate) fn read_store_file(
    path: &Path,
    kind: Kind,
    client_name: &str,
    may_cut: bool,
    mut apply: impl FnMut(Item<'_>) -> Result<(), &'static str>,
) -> Result<Recovered, OpenError> {
    let corrupt = |offset, what| OpenError::Corrupt {
        path: path.to_path_buf(),
        offset,
        what,
    };
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)
        .map_err(|e| OpenError::io(path, "open", e))?;
    let len = file
        .metadata()
        .map_err(|e| OpenError::io(path, "stat", e))?
        .len();
    let reading = file
        .try_clone()
        .map_err(|e| OpenError::io(path, "open", e))?;
    let mut r = Reader::new(reading, len);
    let extra = r
        .header(kind, client_name)
        .map_err(|e| e.into_open_error(path, client_name))?;
    apply(Item::Header(&extra)).map_err(|what| corrupt(0, what))?;
    let mut records = 0;
    let damage = loop {
        match r.next().map_err(|e| OpenError::io(path, "read", e))? {
            Next::End => break None,
            Next::Damaged(at, why) => break Some((at, why)),
            Next::Record(at, payload) => {
                apply(Item::Record(at, payload)).map_err(|what| corrupt(at, what))?;
                records += 1;
            }
        }
    };
    let Some((at, damage)) = damage else {
        return Ok(Recovered {
            file,
            len,
            cut: None,
            records,
        });
    };
    if !may_cut {
        return Err(corrupt(at, "damaged record before the end of the store"));
    }
    log::warn!(
        "amps-fs: {}: cutting {} damaged bytes at offset {at} ({damage})",
        path.display(),
        len - at
    );
    file.set_len(at)
        .map_err(|e| OpenError::io(path, "truncate damaged tail", e))?;
    Ok(Recovered {
        file,
        len: at,
        cut: Some(TailCut {
            path: path.to_path_buf(),
            offset: at,
            bytes: len - at,
            damage,
        }),
        records,
    })
}
