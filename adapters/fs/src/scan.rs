//! Reading a store file back on open: the header checks, every record in order, and the rule
//! that tells a torn tail from damage no crash can cause.
//!
//! A power cut can only lose or tear what was written after the file's last fsync: every
//! 512-byte sector written since then holds its new content, or what it held before (zeros
//! past the file's old end), and the file may end anywhere up to where the writes reached. So
//! the first bad record of a file is a **torn tail**, cut off with a warning, when
//!
//! - it starts at or after the file's durable mark (bytes known to be on stable storage), and
//! - it is shaped like a torn write: the file ends inside it, or one of its sectors is zero
//!   from the record (or the sector's start) on, and
//! - it is not a complete record whose length field alone is wrong (a flipped bit).
//!
//! Anything else is **damage**: [`OpenError::Damaged`], naming the file, the offset, the bytes
//! up to the next valid record and what they may have held; or, in repair mode, skipped and
//! listed in the report while every valid record after it is still read.

use std::io;
use std::path::Path;

use crate::error::{AtStake, Damage, OpenError, TailCut, TailDamage};
use crate::record::{self, Header, HeaderError, Kind, Parsed, REC_HDR, SECTOR, Source};

/// Longest client name a store records (the session's own limit).
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

/// What to read and how.
pub(crate) struct ScanOptions<'a> {
    /// The file (for errors and reports).
    pub(crate) path: &'a Path,
    pub(crate) kind: Kind,
    pub(crate) client_name: &'a str,
    /// Skip damage and report it, instead of refusing the file.
    pub(crate) repair: bool,
    /// The sequence number of a publish store record, for reporting what is at stake.
    pub(crate) seq_of: fn(&[u8]) -> Option<u64>,
    /// The last sequence number stored before this file.
    pub(crate) seq_before: u64,
}

/// What the file holds, in order.
pub(crate) enum Item<'a> {
    /// The header's kind-specific bytes (first); `None` when the header record is damaged
    /// (repair mode only).
    Header(Option<&'a [u8]>),
    /// A record: its offset in the file and its payload (type byte first).
    Record(u64, &'a [u8]),
}

/// A store file read back.
#[derive(Debug)]
pub(crate) struct Scanned {
    /// The file's format version.
    pub(crate) version: u32,
    /// Where the valid content ends: the file's length, or where a torn tail or damage that
    /// runs to the end of the file starts.
    pub(crate) end: u64,
    /// Valid records applied.
    pub(crate) records: u64,
    /// The torn tail from `end` on.
    pub(crate) cut: Option<TailCut>,
    /// Damage skipped (repair mode).
    pub(crate) lost: Vec<Damage>,
}

/// Most bytes a search for the next valid record checksums, per byte of file searched, before
/// giving up (the damaged rest then counts as one damaged stretch).
const RESYNC_BUDGET_FACTOR: u64 = 16;
const RESYNC_BUDGET_MIN: u64 = 16 << 20;

/// Read a store file: check its preamble and header, hand the header and then each record to
/// `apply` (which may refuse one that makes no sense: [`OpenError::Corrupt`], or in repair
/// mode a lost record), and classify the first bad record as a torn tail or as damage.
pub(crate) fn scan<S: Source + ?Sized>(
    src: &mut S,
    o: &ScanOptions<'_>,
    mut apply: impl FnMut(Item<'_>) -> Result<(), &'static str>,
) -> Result<Scanned, OpenError> {
    let io_err = |e| OpenError::io(o.path, "read", e);
    let n = src.len();
    let h = record::read_header(src, o.kind, o.client_name)
        .map_err(|e| header_error(e, o.path, o.client_name))?;
    if h.bad_mark {
        log::warn!(
            "amps-fs: {}: the durable mark is damaged; reading without it",
            o.path.display()
        );
    }
    let durable = h.mark.unwrap_or(0);
    let mut st = State {
        lost: Vec::new(),
        records: 0,
        last_seq: o.seq_before,
    };
    let mut pos = match header_item(src, o, &h, &mut st, &mut apply)? {
        Some(pos) => pos,
        None => n,
    };
    let mut cut = None;
    loop {
        match record::parse(src, pos).map_err(io_err)? {
            Parsed::End => break,
            Parsed::Record(len) => {
                let payload = src
                    .get(pos + REC_HDR as u64, len as usize)
                    .map_err(io_err)?;
                let seq = (o.seq_of)(payload);
                match apply(Item::Record(pos, payload)) {
                    Ok(()) => {
                        st.records += 1;
                        st.last_seq = seq.unwrap_or(st.last_seq);
                    }
                    Err(what) if o.repair => {
                        let next = Some(pos + REC_HDR as u64 + u64::from(len));
                        let d = st.damage(src, o, pos, next, TailDamage::Invalid(what));
                        st.lost.push(d.map_err(io_err)?);
                    }
                    Err(what) => {
                        return Err(OpenError::Corrupt {
                            path: o.path.to_path_buf(),
                            offset: pos,
                            what,
                        });
                    }
                }
                pos += REC_HDR as u64 + u64::from(len);
            }
            Parsed::Bad { damage, len } => {
                let torn = pos >= durable && torn_shape(src, pos, damage, len).map_err(io_err)?;
                if torn && !o.repair {
                    cut = Some(TailCut {
                        path: o.path.to_path_buf(),
                        offset: pos,
                        bytes: n - pos,
                        damage,
                    });
                    break;
                }
                let next = resync(src, pos, damage, len).map_err(io_err)?;
                if torn && next.is_none() {
                    cut = Some(TailCut {
                        path: o.path.to_path_buf(),
                        offset: pos,
                        bytes: n - pos,
                        damage,
                    });
                    break;
                }
                let d = st.damage(src, o, pos, next, damage).map_err(io_err)?;
                if !o.repair {
                    return Err(OpenError::Damaged(d));
                }
                st.lost.push(d);
                match next {
                    Some(next) => pos = next,
                    None => break,
                }
            }
        }
    }
    let end = cut.as_ref().map_or(pos, |c| c.offset);
    if durable > n {
        // The file lost bytes that were on stable storage: cut, not torn.
        let d = Damage {
            path: o.path.to_path_buf(),
            offset: n,
            bytes: durable - n,
            cause: TailDamage::Partial,
            at_stake: st.at_stake(src, o, None).map_err(io_err)?,
        };
        if !o.repair {
            return Err(OpenError::Damaged(d));
        }
        st.lost.push(d);
    }
    if let Some(c) = &cut {
        log::warn!(
            "amps-fs: {}: cutting a torn tail of {} bytes at offset {} ({})",
            o.path.display(),
            c.bytes,
            c.offset,
            c.damage
        );
    }
    for d in &st.lost {
        log::warn!("amps-fs: repairing: {d}");
    }
    Ok(Scanned {
        version: h.version,
        end,
        records: st.records,
        cut,
        lost: st.lost,
    })
}

/// Progress of a scan, for reporting damage.
struct State {
    lost: Vec<Damage>,
    records: u64,
    last_seq: u64,
}

impl State {
    /// The damage from `at` to `next` (or the end of the file).
    fn damage<S: Source + ?Sized>(
        &self,
        src: &mut S,
        o: &ScanOptions<'_>,
        at: u64,
        next: Option<u64>,
        cause: TailDamage,
    ) -> io::Result<Damage> {
        Ok(Damage {
            path: o.path.to_path_buf(),
            offset: at,
            bytes: next.unwrap_or(src.len()) - at,
            cause,
            at_stake: self.at_stake(src, o, next)?,
        })
    }

    fn at_stake<S: Source + ?Sized>(
        &self,
        src: &mut S,
        o: &ScanOptions<'_>,
        next: Option<u64>,
    ) -> io::Result<AtStake> {
        Ok(match o.kind {
            Kind::Publish => AtStake::Messages {
                after: self.last_seq,
                before: match next {
                    Some(at) => first_seq(src, at, o.seq_of)?,
                    None => None,
                },
            },
            Kind::Bookmark => AtStake::Records {
                intact: self.records,
            },
        })
    }
}

/// Hand the header to `apply`; returns where the records start (`None`: nowhere, the rest of
/// the file is damaged).
fn header_item<S: Source + ?Sized>(
    src: &mut S,
    o: &ScanOptions<'_>,
    h: &Header,
    st: &mut State,
    apply: &mut impl FnMut(Item<'_>) -> Result<(), &'static str>,
) -> Result<Option<u64>, OpenError> {
    let io_err = |e| OpenError::io(o.path, "read", e);
    let at = h.record_at;
    let (cause, next) = match (h.end, h.damage) {
        (Some(end), None) => match apply(Item::Header(Some(&h.extra))) {
            Ok(()) => return Ok(Some(end)),
            Err(what) if o.repair => (TailDamage::Invalid(what), Some(end)),
            Err(what) => {
                return Err(OpenError::Corrupt {
                    path: o.path.to_path_buf(),
                    offset: at,
                    what,
                });
            }
        },
        // New files are synced before they appear under their name: a crash never tears a
        // header.
        (_, damage) => {
            let damage = damage.unwrap_or(TailDamage::Partial);
            (damage, resync(src, at, damage, None).map_err(io_err)?)
        }
    };
    let d = st.damage(src, o, at, next, cause).map_err(io_err)?;
    if !o.repair {
        return Err(OpenError::Damaged(d));
    }
    st.lost.push(d);
    apply(Item::Header(None)).map_err(|what| OpenError::Corrupt {
        path: o.path.to_path_buf(),
        offset: at,
        what,
    })?;
    Ok(next)
}

fn header_error(e: HeaderError, path: &Path, expected: &str) -> OpenError {
    let path = path.to_path_buf();
    match e {
        HeaderError::Io(e) => OpenError::io(path, "read", e),
        HeaderError::NotAStore => OpenError::NotAStore { path },
        HeaderError::Version(found) => OpenError::Version {
            path,
            found,
            supported: record::VERSION,
        },
        HeaderError::Corrupt(what) => OpenError::Corrupt {
            path,
            offset: 0,
            what,
        },
        HeaderError::ClientName(found) => OpenError::ClientName {
            path,
            expected: expected.to_string(),
            found,
        },
    }
}

/// Whether the bad record at `at` has the shape of a write a power cut tore (see the module
/// documentation).
pub(crate) fn torn_shape<S: Source + ?Sized>(
    src: &mut S,
    at: u64,
    damage: TailDamage,
    len: Option<u32>,
) -> io::Result<bool> {
    let n = src.len();
    // A sector written back before the record reached it reads zero from the record (or from
    // the sector's start) to the sector's end. The record's first sector comes first: when
    // its part of it is zero, the rest of the record (even a length field cut by the sector
    // boundary) may well be intact.
    let first_end = (at - at % SECTOR + SECTOR).min(n);
    if zero(src, at, first_end)? {
        return Ok(true);
    }
    if n - at >= REC_HDR as u64 && record::whole_but_length(src, at, n)? {
        return Ok(false);
    }
    let extent = match (damage, len) {
        (TailDamage::Partial, _) => return Ok(true),
        (_, Some(len)) => at + REC_HDR as u64 + u64::from(len),
        (_, None) => at + REC_HDR as u64,
    };
    let mut s = first_end;
    while s < extent.min(n) {
        if zero(src, s, (s + SECTOR).min(n))? {
            return Ok(true);
        }
        s += SECTOR;
    }
    Ok(false)
}

fn zero<S: Source + ?Sized>(src: &mut S, from: u64, to: u64) -> io::Result<bool> {
    Ok(src.get(from, (to - from) as usize)?.iter().all(|&b| b == 0))
}

/// The next valid record after the bad one at `at`: where its length field points if a valid
/// record is there, else the first offset where one starts (`None`: none does).
pub(crate) fn resync<S: Source + ?Sized>(
    src: &mut S,
    at: u64,
    damage: TailDamage,
    len: Option<u32>,
) -> io::Result<Option<u64>> {
    let n = src.len();
    if let (TailDamage::BadChecksum, Some(len)) = (damage, len) {
        let next = at + REC_HDR as u64 + u64::from(len);
        if matches!(record::parse(src, next)?, Parsed::Record(_) | Parsed::End) {
            return Ok((next < n).then_some(next));
        }
    }
    let mut budget = RESYNC_BUDGET_FACTOR
        .saturating_mul(n - at)
        .max(RESYNC_BUDGET_MIN);
    let mut p = at + 1;
    while p + (REC_HDR as u64) < n {
        let hdr = src.get(p, 4)?;
        let len = u64::from(u32::from_le_bytes(hdr.try_into().unwrap_or([0; 4])));
        if len > 0 && len <= u64::from(record::MAX_PAYLOAD) && p + REC_HDR as u64 + len <= n {
            if budget < len {
                log::warn!("amps-fs: giving up the search for a valid record after offset {at}");
                return Ok(None);
            }
            budget -= len;
            if let Parsed::Record(_) = record::parse(src, p)? {
                return Ok(Some(p));
            }
        }
        p += 1;
    }
    Ok(None)
}

/// The sequence number of the first record from `at` on that has one, reading valid records
/// only.
fn first_seq<S: Source + ?Sized>(
    src: &mut S,
    mut at: u64,
    seq_of: fn(&[u8]) -> Option<u64>,
) -> io::Result<Option<u64>> {
    while let Parsed::Record(len) = record::parse(src, at)? {
        if let Some(seq) = seq_of(src.get(at + REC_HDR as u64, len as usize)?) {
            return Ok(Some(seq));
        }
        at += REC_HDR as u64 + u64::from(len);
    }
    Ok(None)
}
