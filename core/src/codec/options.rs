//! The options string `o` (docs/protocol.md §4): parse it bracket-aware, build it without
//! allocation.

use core::fmt;

use crate::time::Duration;

/// `oof`: send out-of-focus notices (§7.4). Constants end in a comma so they concatenate.
pub const OOF: &str = "oof,";
/// `replace`: replace filter/options of a live subscription (§6.4).
pub const REPLACE: &str = "replace,";
/// `live`: deliver before persistence (§10.2).
pub const LIVE: &str = "live,";
/// `pause` a bookmark subscription (§6.4).
pub const PAUSE: &str = "pause,";
/// `resume` paused subscriptions (§6.4).
pub const RESUME: &str = "resume,";
/// `no_empties` on delta subscriptions (§12.2).
pub const NO_EMPTIES: &str = "no_empties,";
/// `send_keys` on delta subscriptions (§12.2).
pub const SEND_KEYS: &str = "send_keys,";
/// `no_sowkey`: omit `k` (§7.1).
pub const NO_SOWKEY: &str = "no_sowkey,";
/// `timestamp`: add `ts` to deliveries (§7.1).
pub const TIMESTAMP: &str = "timestamp,";
/// `bookmark`: add `bm` to live deliveries (§7.1).
pub const BOOKMARK: &str = "bookmark,";
/// `fully_durable` (§10.2).
pub const FULLY_DURABLE: &str = "fully_durable,";
/// `non_regex_topic`: match the topic literally (§14).
pub const NON_REGEX_TOPIC: &str = "non_regex_topic,";
/// `cancel`: return queue messages (§11).
pub const CANCEL: &str = "cancel,";
/// `expire`: expire queue messages (§11).
pub const EXPIRE: &str = "expire,";
/// `pretty` (logon, §6.1).
pub const PRETTY: &str = "pretty,";

/// One option item: a flag (`value` is `None`) or `key=value`. Both trimmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opt<'a> {
    /// The flag or key.
    pub key: &'a str,
    /// The value after `=`, brackets included for list values (`[/a,/b]`).
    pub value: Option<&'a str>,
}

/// Iterator over the items of an options string: split on commas outside `[...]`, trimmed,
/// empty items skipped (§4).
#[derive(Clone, Debug)]
pub struct OptionsIter<'a>(&'a str);

impl<'a> OptionsIter<'a> {
    /// Iterate `o`.
    pub fn new(o: &'a str) -> Self {
        OptionsIter(o)
    }
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = Opt<'a>;

    fn next(&mut self) -> Option<Opt<'a>> {
        loop {
            if self.0.is_empty() {
                return None;
            }
            let mut depth = 0i32;
            let mut cut = self.0.len();
            for (i, c) in self.0.bytes().enumerate() {
                match c {
                    b'[' => depth += 1,
                    b']' => depth -= 1,
                    b',' if depth <= 0 => {
                        cut = i;
                        break;
                    }
                    _ => {}
                }
            }
            let item = self.0.get(..cut).unwrap_or("");
            self.0 = self.0.get(cut + 1..).unwrap_or("");
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            return Some(match item.split_once('=') {
                Some((k, v)) => Opt {
                    key: k.trim(),
                    value: Some(v.trim()),
                },
                None => Opt {
                    key: item,
                    value: None,
                },
            });
        }
    }
}

/// Find option `key` in `o`: `Some(None)` for a flag, `Some(Some(v))` for `key=v`.
pub fn find<'a>(o: &'a str, key: &str) -> Option<Option<&'a str>> {
    OptionsIter::new(o)
        .find(|opt| opt.key == key)
        .map(|opt| opt.value)
}

/// Parse a time value of §4: `100ms`, `1s`, `1m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    Some(match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "us" => Duration::from_micros(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => return None,
    })
}

/// The options buffer is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionsFull;

impl fmt::Display for OptionsFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("options buffer full")
    }
}

impl core::error::Error for OptionsFull {}

/// Builds an options string in a fixed buffer of `N` bytes, no allocation.
///
/// ```
/// use amps_core::codec::options::{Options, OOF};
/// let mut o = Options::<64>::new();
/// o.flag(OOF).unwrap().max_backlog(10).unwrap().conflation_key(&["/a", "/b"]).unwrap();
/// assert_eq!(o.as_str(), "oof,max_backlog=10,conflation_key=[/a,/b]");
/// ```
#[derive(Clone)]
pub struct Options<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Default for Options<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Options<N> {
    /// Empty.
    pub const fn new() -> Self {
        Options {
            buf: [0; N],
            len: 0,
        }
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), OptionsFull> {
        let end = self.len + bytes.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(OptionsFull)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Append one item made of `parts`; on overflow nothing is added.
    fn push(&mut self, parts: &[&str]) -> Result<&mut Self, OptionsFull> {
        let start = self.len;
        let r = (|| {
            if start > 0 {
                self.put(b",")?;
            }
            parts.iter().try_for_each(|p| self.put(p.as_bytes()))
        })();
        if r.is_err() {
            self.len = start;
        }
        r.map(|()| self)
    }

    /// Add a flag; a trailing comma (as in the constants) is dropped.
    pub fn flag(&mut self, flag: &str) -> Result<&mut Self, OptionsFull> {
        let f = flag.trim().trim_end_matches(',');
        if f.is_empty() {
            Ok(self)
        } else {
            self.push(&[f])
        }
    }
    /// Add `key=value`.
    pub fn kv(&mut self, key: &str, value: &str) -> Result<&mut Self, OptionsFull> {
        self.push(&[key, "=", value])
    }
    /// Add `key=<n>`.
    pub fn kv_u64(&mut self, key: &str, n: u64) -> Result<&mut Self, OptionsFull> {
        let mut b = itoa::Buffer::new();
        let s = b.format(n);
        self.push(&[key, "=", s])
    }
    /// Add `key=[a,b,...]`; on overflow nothing is added.
    pub fn kv_list(&mut self, key: &str, items: &[&str]) -> Result<&mut Self, OptionsFull> {
        let start = self.len;
        let r = (|| {
            self.push(&[key, "=["])?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    self.put(b",")?;
                }
                self.put(item.as_bytes())?;
            }
            self.put(b"]")
        })();
        if r.is_err() {
            self.len = start;
        }
        r.map(|()| self)
    }
    /// `max_backlog=N` (queues, §11).
    pub fn max_backlog(&mut self, n: u64) -> Result<&mut Self, OptionsFull> {
        self.kv_u64("max_backlog", n)
    }
    /// `top_n=N` (sow).
    pub fn top_n(&mut self, n: u64) -> Result<&mut Self, OptionsFull> {
        self.kv_u64("top_n", n)
    }
    /// `skip_n=N` (sow, needs `top_n`).
    pub fn skip_n(&mut self, n: u64) -> Result<&mut Self, OptionsFull> {
        self.kv_u64("skip_n", n)
    }
    /// `rate=N` (bookmark replay).
    pub fn rate(&mut self, n: u64) -> Result<&mut Self, OptionsFull> {
        self.kv_u64("rate", n)
    }
    /// `conflation=<time>` in milliseconds.
    pub fn conflation(&mut self, d: Duration) -> Result<&mut Self, OptionsFull> {
        let mut b = itoa::Buffer::new();
        let s = b.format(d.as_millis());
        self.push(&["conflation=", s, "ms"])
    }
    /// `conflation_key=[...]`.
    pub fn conflation_key(&mut self, paths: &[&str]) -> Result<&mut Self, OptionsFull> {
        self.kv_list("conflation_key", paths)
    }
    /// `select=[...]`.
    pub fn select(&mut self, fields: &[&str]) -> Result<&mut Self, OptionsFull> {
        self.kv_list("select", fields)
    }
    /// `bookmark_not_found=epoch|now|fail` (§10.2).
    pub fn bookmark_not_found(&mut self, what: &str) -> Result<&mut Self, OptionsFull> {
        self.kv("bookmark_not_found", what)
    }
    /// The options text.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s were copied in, so this cannot fail.
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<const N: usize> fmt::Debug for Options<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_brackets_and_trims() {
        let items: Vec<_> =
            OptionsIter::new("conflation=1m, conflation_key= [/id, /b],,max_backlog= 7,oof,")
                .collect();
        assert_eq!(
            items,
            [
                Opt {
                    key: "conflation",
                    value: Some("1m")
                },
                Opt {
                    key: "conflation_key",
                    value: Some("[/id, /b]")
                },
                Opt {
                    key: "max_backlog",
                    value: Some("7")
                },
                Opt {
                    key: "oof",
                    value: None
                },
            ]
        );
        assert_eq!(find("select=[-/,+/id,+/ticker],live", "live"), Some(None));
        assert_eq!(
            find("select=[-/,+/id,+/ticker],live", "select"),
            Some(Some("[-/,+/id,+/ticker]"))
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("5"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("5 weeks"), None);
        assert_eq!(parse_duration("ms"), None);
    }

    #[test]
    fn builder_reports_full_and_rolls_back_lists() {
        let mut o = Options::<24>::new();
        o.flag(REPLACE).unwrap().flag(OOF).unwrap();
        assert_eq!(o.as_str(), "replace,oof");
        assert_eq!(
            o.select(&["/aaaaaaaa", "/bbbbbbbb"]).err(),
            Some(OptionsFull)
        );
        assert_eq!(o.as_str(), "replace,oof");
        o.top_n(5).unwrap();
        assert_eq!(o.as_str(), "replace,oof,top_n=5");
        let mut c = Options::<32>::new();
        c.conflation(Duration::from_secs(1)).unwrap();
        assert_eq!(c.as_str(), "conflation=1000ms");
    }
}
