//! Bookmark values (docs/protocol.md §10.1): EPOCH, NOW, MOST_RECENT, single message ids,
//! timestamps, lists and ranges.

use core::fmt;

/// Replay from the start of the transaction log.
pub const EPOCH: &str = "0";
/// No replay: only messages written after the subscription (§10.1; `0|1` is accepted too).
pub const NOW: &str = "0|1|";
/// Resume from the bookmark store (client-side only; never sent on the wire, §10.1).
pub const MOST_RECENT: &str = "recent";

/// A bookmark that names one message: `<publisher>|<sequence>|` in the documented two-field form,
/// or any other shape, kept opaque (§10.1, §17.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BookmarkId<'a> {
    raw: &'a str,
    parts: Option<(u64, u64)>,
}

impl<'a> BookmarkId<'a> {
    /// Wrap a bookmark string.
    pub fn new(raw: &'a str) -> Self {
        let parts = raw.strip_suffix('|').and_then(|s| {
            let (p, q) = s.split_once('|')?;
            if q.contains('|') {
                return None;
            }
            Some((p.parse().ok()?, q.parse().ok()?))
        });
        BookmarkId { raw, parts }
    }
    /// The text as received.
    pub fn as_str(&self) -> &'a str {
        self.raw
    }
    /// Publisher id of the two-field form.
    pub fn publisher(&self) -> Option<u64> {
        self.parts.map(|p| p.0)
    }
    /// Sequence of the two-field form.
    pub fn seq(&self) -> Option<u64> {
        self.parts.map(|p| p.1)
    }
    /// Order two bookmarks of the same publisher in the two-field form; `None` otherwise
    /// (clients must not order bookmarks themselves in any other case, §10.1).
    pub fn cmp_same_publisher(&self, other: &BookmarkId<'_>) -> Option<core::cmp::Ordering> {
        match (self.parts, other.parts) {
            (Some((a, x)), Some((b, y))) if a == b => Some(x.cmp(&y)),
            _ => None,
        }
    }
}

/// A parsed bookmark value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bookmark<'a> {
    /// `0`.
    Epoch,
    /// `0|1|` or `0|1`.
    Now,
    /// `recent` (client-side).
    MostRecent,
    /// One message.
    Id(BookmarkId<'a>),
    /// `YYYYMMDDTHHMMSS[.ffffff][Z]`, UTC.
    Timestamp(&'a str),
    /// `b1,b2,...`: start at the earliest (§10.1). Iterate with [`Bookmark::list_items`].
    List(&'a str),
    /// `[begin:end]` with `[`/`]` inclusive and `(`/`)` exclusive ends.
    Range {
        /// Begin endpoint (a bookmark, list or timestamp).
        begin: &'a str,
        /// `[` rather than `(`.
        begin_inclusive: bool,
        /// End endpoint.
        end: &'a str,
        /// `]` rather than `)`.
        end_inclusive: bool,
    },
}

/// A bookmark that cannot be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BookmarkError {
    /// Empty text.
    Empty,
    /// A range without `:` or with empty or nested endpoints.
    BadRange,
    /// A list with an empty or malformed item.
    BadList,
    /// Text that looks like a timestamp but is not a valid one.
    BadTimestamp,
}

impl fmt::Display for BookmarkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BookmarkError::Empty => "empty bookmark",
            BookmarkError::BadRange => "malformed bookmark range",
            BookmarkError::BadList => "malformed bookmark list",
            BookmarkError::BadTimestamp => "malformed bookmark timestamp",
        })
    }
}

impl core::error::Error for BookmarkError {}

fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.get(..8).is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        && b.get(8) == Some(&b'T')
        && b.len() >= 9
}

/// Validate `YYYYMMDDTHHMMSS`, optional `.digits`, optional `Z`.
fn valid_timestamp(s: &str) -> bool {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (main, frac) = s.split_once('.').unwrap_or((s, "0"));
    let b = main.as_bytes();
    if b.len() != 15
        || b.get(8) != Some(&b'T')
        || !frac.bytes().all(|c| c.is_ascii_digit())
        || frac.is_empty()
    {
        return false;
    }
    let digits = b
        .iter()
        .enumerate()
        .all(|(i, c)| i == 8 || c.is_ascii_digit());
    if !digits {
        return false;
    }
    let num = |r: core::ops::Range<usize>| {
        main.get(r)
            .and_then(|x| x.parse::<u32>().ok())
            .unwrap_or(99)
    };
    (1..=12).contains(&num(4..6))
        && (1..=31).contains(&num(6..8))
        && num(9..11) < 24
        && num(11..13) < 60
        && num(13..15) < 61
}

fn single(s: &str) -> Result<Bookmark<'_>, BookmarkError> {
    let s = s.trim();
    match s {
        "" => Err(BookmarkError::Empty),
        EPOCH => Ok(Bookmark::Epoch),
        "0|1|" | "0|1" => Ok(Bookmark::Now),
        MOST_RECENT => Ok(Bookmark::MostRecent),
        _ if looks_like_timestamp(s) => {
            if valid_timestamp(s) {
                Ok(Bookmark::Timestamp(s))
            } else {
                Err(BookmarkError::BadTimestamp)
            }
        }
        _ => Ok(Bookmark::Id(BookmarkId::new(s))),
    }
}

impl<'a> Bookmark<'a> {
    /// Parse any bookmark value. Unknown shapes are [`Bookmark::Id`] (opaque, §17.8).
    pub fn parse(s: &'a str) -> Result<Bookmark<'a>, BookmarkError> {
        let t = s.trim();
        if let Some(first @ (b'[' | b'(')) = t.bytes().next() {
            let last = t.bytes().last();
            let end_inclusive = match last {
                Some(b']') => true,
                Some(b')') => false,
                _ => return Err(BookmarkError::BadRange),
            };
            let inner = t.get(1..t.len() - 1).ok_or(BookmarkError::BadRange)?;
            let (begin, end) = inner.split_once(':').ok_or(BookmarkError::BadRange)?;
            let (begin, end) = (begin.trim(), end.trim());
            for e in [begin, end] {
                if e.is_empty() || e.contains(['[', ']', '(', ')', ':']) {
                    return Err(BookmarkError::BadRange);
                }
                for item in e.split(',') {
                    single(item).map_err(|_| BookmarkError::BadRange)?;
                }
            }
            return Ok(Bookmark::Range {
                begin,
                begin_inclusive: first == b'[',
                end,
                end_inclusive,
            });
        }
        if t.contains(',') {
            for item in t.split(',') {
                match single(item) {
                    Ok(Bookmark::MostRecent) | Err(_) => return Err(BookmarkError::BadList),
                    Ok(_) => {}
                }
            }
            return Ok(Bookmark::List(t));
        }
        single(t)
    }

    /// The items of a list (or the single item of anything else), trimmed.
    pub fn list_items(s: &'a str) -> impl Iterator<Item = &'a str> {
        s.split(',').map(str::trim).filter(|x| !x.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_forms() {
        assert_eq!(Bookmark::parse("0"), Ok(Bookmark::Epoch));
        assert_eq!(Bookmark::parse("0|1|"), Ok(Bookmark::Now));
        assert_eq!(Bookmark::parse("0|1"), Ok(Bookmark::Now));
        assert_eq!(Bookmark::parse("recent"), Ok(Bookmark::MostRecent));
        let Ok(Bookmark::Id(id)) = Bookmark::parse("10357694053628526720|1490901822670001000|")
        else {
            panic!("id")
        };
        assert_eq!(
            (id.publisher(), id.seq()),
            (Some(10357694053628526720), Some(1490901822670001000))
        );
        let Ok(Bookmark::Id(odd)) = Bookmark::parse("1795284056170234|1|44|") else {
            panic!("opaque")
        };
        assert_eq!(odd.publisher(), None);
        assert_eq!(
            Bookmark::parse("20261121T175830Z"),
            Ok(Bookmark::Timestamp("20261121T175830Z"))
        );
        assert_eq!(
            Bookmark::parse("20261121T175830"),
            Ok(Bookmark::Timestamp("20261121T175830"))
        );
        assert_eq!(
            Bookmark::parse("20261341T175830"),
            Err(BookmarkError::BadTimestamp)
        );
        assert_eq!(
            Bookmark::parse("1|2|,1|3|"),
            Ok(Bookmark::List("1|2|,1|3|"))
        );
        assert_eq!(
            Bookmark::parse("[1|2|:20261121T000000Z)"),
            Ok(Bookmark::Range {
                begin: "1|2|",
                begin_inclusive: true,
                end: "20261121T000000Z",
                end_inclusive: false
            })
        );
        assert_eq!(Bookmark::parse("[1|2|]"), Err(BookmarkError::BadRange));
        assert_eq!(Bookmark::parse("(:1|2|)"), Err(BookmarkError::BadRange));
        assert_eq!(Bookmark::parse(" "), Err(BookmarkError::Empty));
        assert_eq!(Bookmark::parse("1|2|,,"), Err(BookmarkError::BadList));
    }

    #[test]
    fn same_publisher_order_only() {
        let a = BookmarkId::new("7|1|");
        let b = BookmarkId::new("7|2|");
        let c = BookmarkId::new("8|3|");
        assert_eq!(a.cmp_same_publisher(&b), Some(core::cmp::Ordering::Less));
        assert_eq!(a.cmp_same_publisher(&c), None);
    }
}
