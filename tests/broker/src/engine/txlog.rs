//! The transaction log (docs/protocol.md §10): an ordered, bounded list of logged messages with
//! bookmarks `<publisher id>|<seq>|` (§10.3), and the resolution of every bookmark form (§10.1).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use amps_core::Instant;
use amps_core::codec::Bookmark;

use super::subscribe::NotFound;
use crate::config::MessageType;
use crate::wire::parse_ts;

/// One logged message.
#[derive(Clone, Debug)]
pub(crate) struct LogEntry {
    pub(crate) topic: Arc<str>,
    pub(crate) bm: Arc<str>,
    pub(crate) ts: u64,
    pub(crate) data: Arc<[u8]>,
    pub(crate) k: Option<Arc<str>>,
    pub(crate) x: Option<Arc<str>>,
    pub(crate) mt: MessageType,
    /// A logged `sow_delete`: holds a bookmark, never replayed.
    pub(crate) is_delete: bool,
}

/// Where a bookmark subscription starts and ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub(crate) start: u64,
    pub(crate) end: Option<u64>,
    pub(crate) end_ts: Option<u64>,
}

pub(crate) struct TxLog {
    entries: VecDeque<LogEntry>,
    /// Absolute index of `entries[0]` (older entries were dropped to stay within the cap).
    base: u64,
    index: HashMap<Arc<str>, u64, super::FnvBuild>,
    cap: usize,
}

impl TxLog {
    pub(crate) fn new(cap: usize) -> TxLog {
        TxLog {
            entries: VecDeque::new(),
            base: 0,
            index: HashMap::default(),
            cap: cap.max(1),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Absolute index one past the newest entry.
    pub(crate) fn end(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    pub(crate) fn get(&self, i: u64) -> Option<&LogEntry> {
        let rel = usize::try_from(i.checked_sub(self.base)?).ok()?;
        self.entries.get(rel)
    }

    /// Append; returns the entry's absolute index.
    pub(crate) fn append(&mut self, e: LogEntry) -> u64 {
        if self.entries.len() >= self.cap
            && let Some(old) = self.entries.pop_front()
        {
            self.index.remove(&old.bm);
            self.base += 1;
        }
        let i = self.end();
        self.index.insert(e.bm.clone(), i);
        self.entries.push_back(e);
        i
    }

    /// The bookmark of the entry before absolute index `i` (a log position), or EPOCH (`0`)
    /// when there is none.
    pub(crate) fn bookmark_before(&self, i: u64) -> String {
        i.checked_sub(1)
            .and_then(|j| self.get(j))
            .map_or_else(|| "0".to_owned(), |e| e.bm.to_string())
    }

    /// First index whose time is at or after `ts` (`strict`: after).
    fn at_time(&self, ts: u64, strict: bool) -> u64 {
        let n = self
            .entries
            .partition_point(|e| if strict { e.ts <= ts } else { e.ts < ts });
        self.base + n as u64
    }

    /// Where replay starts for one bookmark item: the entry after it (`inclusive`: the entry
    /// itself). `None` when a message bookmark is not in the log.
    fn start_of(&self, item: &str, inclusive: bool) -> Option<u64> {
        match Bookmark::parse(item).ok()? {
            Bookmark::Epoch => Some(self.base),
            Bookmark::Now => Some(self.end()),
            Bookmark::Timestamp(t) => Some(self.at_time(parse_ts(t)?, false)),
            Bookmark::Id(id) => {
                let i = *self.index.get(id.as_str())?;
                Some(if inclusive { i } else { i + 1 })
            }
            _ => None,
        }
    }

    /// Resolve a subscription bookmark (§10.1): a single value, a list (earliest), a range.
    pub(crate) fn resolve(
        &self,
        text: &str,
        not_found: NotFound,
        now: Instant,
    ) -> Result<Resolved, &'static str> {
        let parsed = Bookmark::parse(text).map_err(|_| "invalid bookmark")?;
        let missing = || match not_found {
            NotFound::Now => Ok(self.end()),
            NotFound::Epoch => Ok(self.base),
            NotFound::Fail => Err("invalid bookmark"),
        };
        let earliest = |items: &str, inclusive: bool| -> Result<u64, &'static str> {
            Bookmark::list_items(items)
                .filter_map(|b| self.start_of(b, inclusive))
                .min()
                .map_or_else(missing, Ok)
        };
        match parsed {
            Bookmark::MostRecent => Err("invalid bookmark"),
            Bookmark::List(items) => Ok(Resolved {
                start: earliest(items, false)?,
                end: None,
                end_ts: None,
            }),
            Bookmark::Range {
                begin,
                begin_inclusive,
                end,
                end_inclusive,
            } => {
                let start = earliest(begin, begin_inclusive)?;
                let (end, end_ts) = self.range_end(end, end_inclusive, now);
                Ok(Resolved { start, end, end_ts })
            }
            _ => Ok(Resolved {
                start: earliest(text, false)?,
                end: None,
                end_ts: None,
            }),
        }
    }

    /// The end of a range: the latest of its items, as an index, or as a time still to come.
    fn range_end(&self, items: &str, inclusive: bool, now: Instant) -> (Option<u64>, Option<u64>) {
        let mut end: Option<u64> = None;
        for item in Bookmark::list_items(items) {
            let idx = match Bookmark::parse(item) {
                Ok(Bookmark::Timestamp(t)) => {
                    let Some(ts) = parse_ts(t) else { continue };
                    if ts > now.as_micros() {
                        // Not yet reached: the replay goes on live until messages pass it.
                        let ts = if inclusive { ts } else { ts.saturating_sub(1) };
                        return (None, Some(ts));
                    }
                    self.at_time(ts, inclusive)
                }
                Ok(Bookmark::Id(id)) => match self.index.get(id.as_str()) {
                    Some(i) => i + u64::from(inclusive),
                    None => self.end(),
                },
                Ok(Bookmark::Epoch) => self.base,
                _ => self.end(),
            };
            end = Some(end.map_or(idx, |e| e.max(idx)));
        }
        (Some(end.unwrap_or_else(|| self.end())), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(bm: &str, ts: u64) -> LogEntry {
        LogEntry {
            topic: "events".into(),
            bm: bm.into(),
            ts,
            data: Arc::from(&b"{}"[..]),
            k: None,
            x: None,
            mt: MessageType::Json,
            is_delete: false,
        }
    }

    fn log() -> TxLog {
        let mut l = TxLog::new(10);
        for i in 1..=4 {
            l.append(entry(&format!("7|{i}|"), i * 1_000_000));
        }
        l
    }

    #[test]
    fn resolves_every_form() {
        let l = log();
        let now = Instant::from_secs(100);
        let r = |t: &str| l.resolve(t, NotFound::Now, now).map(|r| (r.start, r.end));
        assert_eq!(r("0"), Ok((0, None)));
        assert_eq!(r("0|1|"), Ok((4, None)));
        assert_eq!(r("7|2|"), Ok((2, None)));
        assert_eq!(r("7|3|,7|1|"), Ok((1, None)));
        assert_eq!(r("19700101T000002Z"), Ok((1, None)));
        assert_eq!(r("[7|1|:7|3|]"), Ok((0, Some(3))));
        assert_eq!(r("(7|1|:7|3|)"), Ok((1, Some(2))));
        assert_eq!(r("9|9|"), Ok((4, None)));
        assert_eq!(
            l.resolve("9|9|", NotFound::Epoch, now).map(|r| r.start),
            Ok(0)
        );
        assert_eq!(
            l.resolve("9|9|", NotFound::Fail, now),
            Err("invalid bookmark")
        );
        assert_eq!(l.bookmark_before(4), "7|4|");
        assert_eq!(l.bookmark_before(0), "0");
    }

    #[test]
    fn cap_drops_the_oldest() {
        let mut l = TxLog::new(2);
        for i in 1..=3 {
            l.append(entry(&format!("7|{i}|"), i));
        }
        assert_eq!((l.len(), l.end()), (2, 3));
        assert!(l.get(0).is_none());
        assert_eq!(l.get(1).map(|e| &*e.bm), Some("7|2|"));
        assert_eq!(
            l.resolve("7|1|", NotFound::Fail, Instant::ZERO),
            Err("invalid bookmark")
        );
    }
}
