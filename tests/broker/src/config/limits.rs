//! What one client may cost the broker: connection count, logon and idle timeouts, input and
//! output buffers, compiled patterns. The `[limits]` table of the TOML file; every key is also a
//! command-line flag of the binary (`--logon-timeout 5s`, `--max-output-bytes 64MiB`).
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `max_connections` | 1024 | connections beyond it are accepted and closed at once (FIN, nothing sent) |
//! | `logon_timeout` | `10s` | a connection not logged on by then is closed (0: never) |
//! | `idle_timeout` | `300s` | a connection that sends no complete frame for this long is closed (0: never); clients that stay silent longer enable heartbeats |
//! | `max_frame_before_logon` | 64 KiB | largest frame (so largest partial frame) a connection may send before its logon succeeded; `max_frame` applies after |
//! | `max_input_bytes` | 256 MiB | partial frames held across all connections; beyond it the largest holder is closed |
//! | `max_output_bytes` | 256 MiB | unsent output across all connections; beyond it the connections with the largest backlog are closed first |
//! | `input_queue_bytes` | 1 MiB | bytes read from sockets and not yet processed (TCP server); readers wait beyond it, so a logon waits behind at most this much of another client's flood |
//! | `regex_size_limit` | 4 MiB | compiled program of one regex topic or LIKE pattern (`regex` `size_limit`) |
//! | `regex_dfa_size_limit` | 256 KiB | lazy-DFA cache of one pattern (`regex` `dfa_size_limit`) |
//! | `max_filter_len` | 256 KiB | longest content filter |
//! | `max_filter_nesting` | 64 | deepest filter nesting (at most 64) |
//! | `max_pattern_bytes` | 256 MiB | accounted size of all compiled regex topics and filters |
//! | `compile_threads` | 1 | patterns compiled at once, off the engine task (TCP server); one leaves the engine a core on a two-core machine |
//!
//! Sizes are bytes, written as a number or with a unit (`64KiB`, `16MiB`, `1GiB`, `4096B`);
//! durations as `100ms`, `10s`, `5m`, `1h` or a number of seconds.

use amps_core::Duration;
use serde::{Deserialize, Deserializer};

use super::ConfDuration;
use crate::filter::{FilterLimits, MAX_NESTING};
use crate::pattern::RegexLimits;

/// Resource limits (see the module docs for the table of defaults).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open connections; beyond it a new connection is closed at once.
    pub max_connections: usize,
    /// A connection must log on within this time (zero: no limit).
    pub logon_timeout: ConfDuration,
    /// A connection must send a complete frame at least this often (zero: no limit).
    pub idle_timeout: ConfDuration,
    /// Largest frame before logon, bytes (the per-connection partial-frame cap until then).
    #[serde(deserialize_with = "bytes_u32")]
    pub max_frame_before_logon: u32,
    /// Partial frames across all connections, bytes.
    #[serde(deserialize_with = "bytes")]
    pub max_input_bytes: usize,
    /// Unsent output across all connections, bytes.
    #[serde(deserialize_with = "bytes")]
    pub max_output_bytes: usize,
    /// Bytes read and not yet processed (TCP server), bytes; at least 64 KiB.
    #[serde(deserialize_with = "bytes")]
    pub input_queue_bytes: usize,
    /// Compiled program of one pattern, bytes.
    #[serde(deserialize_with = "bytes")]
    pub regex_size_limit: usize,
    /// Lazy-DFA cache of one pattern, bytes.
    #[serde(deserialize_with = "bytes")]
    pub regex_dfa_size_limit: usize,
    /// Longest content filter, bytes.
    #[serde(deserialize_with = "bytes")]
    pub max_filter_len: usize,
    /// Deepest filter nesting (1 to 64).
    pub max_filter_nesting: usize,
    /// Accounted size of all compiled patterns, bytes.
    #[serde(deserialize_with = "bytes")]
    pub max_pattern_bytes: usize,
    /// Compilations run at once off the engine task (TCP server); at least 1.
    pub compile_threads: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            logon_timeout: ConfDuration(Duration::from_secs(10)),
            idle_timeout: ConfDuration(Duration::from_secs(300)),
            max_frame_before_logon: 64 << 10,
            max_input_bytes: 256 << 20,
            max_output_bytes: 256 << 20,
            input_queue_bytes: 1 << 20,
            regex_size_limit: RegexLimits::default().size_limit,
            regex_dfa_size_limit: RegexLimits::default().dfa_size_limit,
            max_filter_len: FilterLimits::default().max_len,
            max_filter_nesting: MAX_NESTING,
            max_pattern_bytes: 256 << 20,
            compile_threads: 1,
        }
    }
}

/// The smallest `input_queue_bytes` (one socket read).
pub const MIN_INPUT_QUEUE: usize = 64 << 10;

impl Limits {
    /// The limits of one regex topic or LIKE pattern.
    pub fn regex(&self) -> RegexLimits {
        RegexLimits {
            size_limit: self.regex_size_limit,
            dfa_size_limit: self.regex_dfa_size_limit,
        }
    }

    /// The limits of one content filter.
    pub fn filter(&self) -> FilterLimits {
        FilterLimits {
            max_len: self.max_filter_len,
            max_nesting: self.max_filter_nesting,
            regex: self.regex(),
        }
    }

    /// Every key, for `--help` and [`super::Config::set`]: (key, value, meaning).
    pub fn describe(&self) -> Vec<(&'static str, String, &'static str)> {
        let d = |c: ConfDuration| fmt_duration(c.0);
        let b = fmt_bytes;
        vec![
            (
                "max_connections",
                self.max_connections.to_string(),
                "open connections; more are closed at once",
            ),
            (
                "logon_timeout",
                d(self.logon_timeout),
                "close a connection not logged on by then (0: never)",
            ),
            (
                "idle_timeout",
                d(self.idle_timeout),
                "close after this long without a complete frame (0: never)",
            ),
            (
                "max_frame_before_logon",
                b(self.max_frame_before_logon as usize),
                "largest (partial) frame before logon",
            ),
            (
                "max_input_bytes",
                b(self.max_input_bytes),
                "partial frames, all connections; largest holder closed",
            ),
            (
                "max_output_bytes",
                b(self.max_output_bytes),
                "unsent output, all connections; largest backlog closed first",
            ),
            (
                "input_queue_bytes",
                b(self.input_queue_bytes),
                "bytes read, not yet processed; readers wait beyond it",
            ),
            (
                "regex_size_limit",
                b(self.regex_size_limit),
                "compiled program of one regex topic or LIKE pattern",
            ),
            (
                "regex_dfa_size_limit",
                b(self.regex_dfa_size_limit),
                "lazy-DFA cache of one pattern",
            ),
            (
                "max_filter_len",
                b(self.max_filter_len),
                "longest content filter",
            ),
            (
                "max_filter_nesting",
                self.max_filter_nesting.to_string(),
                "deepest filter nesting (1 to 64)",
            ),
            (
                "max_pattern_bytes",
                b(self.max_pattern_bytes),
                "accounted size of all compiled regex topics and filters",
            ),
            (
                "compile_threads",
                self.compile_threads.to_string(),
                "patterns compiled at once, off the engine task",
            ),
        ]
    }

    /// Set one key from text (a flag's value). Unknown key: `Ok(false)`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let size = || parse_bytes(value).ok_or_else(|| format!("`{key}`: bad size `{value}`"));
        let dur = || {
            amps_core::codec::options::parse_duration(value)
                .map(ConfDuration)
                .ok_or_else(|| format!("`{key}`: bad duration `{value}`"))
        };
        let count = || {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| format!("`{key}`: bad number `{value}`"))
        };
        match key {
            "max_connections" => self.max_connections = count()?,
            "logon_timeout" => self.logon_timeout = dur()?,
            "idle_timeout" => self.idle_timeout = dur()?,
            "max_frame_before_logon" => {
                self.max_frame_before_logon =
                    u32::try_from(size()?).map_err(|_| format!("`{key}`: above 4 GiB"))?;
            }
            "max_input_bytes" => self.max_input_bytes = size()?,
            "max_output_bytes" => self.max_output_bytes = size()?,
            "input_queue_bytes" => self.input_queue_bytes = size()?,
            "regex_size_limit" => self.regex_size_limit = size()?,
            "regex_dfa_size_limit" => self.regex_dfa_size_limit = size()?,
            "max_filter_len" => self.max_filter_len = size()?,
            "max_filter_nesting" => self.max_filter_nesting = count()?,
            "max_pattern_bytes" => self.max_pattern_bytes = size()?,
            "compile_threads" => self.compile_threads = count()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Check the limits are usable.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 {
            return Err("limits.max_connections is 0".into());
        }
        if self.max_frame_before_logon < 64 {
            return Err("limits.max_frame_before_logon below 64 bytes".into());
        }
        if self.input_queue_bytes < MIN_INPUT_QUEUE {
            return Err(format!(
                "limits.input_queue_bytes below {MIN_INPUT_QUEUE} bytes"
            ));
        }
        if u32::try_from(self.input_queue_bytes).is_err() {
            return Err("limits.input_queue_bytes above 4 GiB".into());
        }
        if !(1..=MAX_NESTING).contains(&self.max_filter_nesting) {
            return Err(format!("limits.max_filter_nesting outside 1..={MAX_NESTING}"));
        }
        if self.compile_threads == 0 {
            return Err("limits.compile_threads is 0".into());
        }
        if self.max_pattern_bytes < self.regex().min_cost() {
            return Err(format!(
                "limits.max_pattern_bytes below one pattern's accounted size ({} bytes)",
                self.regex().min_cost()
            ));
        }
        Ok(())
    }
}

/// A size as [`parse_bytes`] reads it, in the largest binary unit that divides it.
pub fn fmt_bytes(n: usize) -> String {
    for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if n != 0 && n.is_multiple_of(1usize << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// A duration as the configuration reads it (`10s`, `250ms`).
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Parse a size: a number of bytes, or a number with `B`, `KiB`, `MiB`, `GiB` (also `K`, `M`,
/// `G`, `KB`, `MB`, `GB`, all binary).
///
/// ```
/// use amps_broker::config::parse_bytes;
/// assert_eq!(parse_bytes("4096"), Some(4096));
/// assert_eq!(parse_bytes("64KiB"), Some(65536));
/// assert_eq!(parse_bytes("16 MiB"), Some(16 << 20));
/// assert_eq!(parse_bytes("lots"), None);
/// ```
pub fn parse_bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    n.checked_mul(1usize << shift)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawBytes {
    Num(u64),
    Text(String),
}

fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match RawBytes::deserialize(d)? {
        RawBytes::Num(n) => usize::try_from(n).map_err(serde::de::Error::custom),
        RawBytes::Text(t) => {
            parse_bytes(&t).ok_or_else(|| serde::de::Error::custom(format!("bad size `{t}`")))
        }
    }
}

fn bytes_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = bytes(d)?;
    u32::try_from(n).map_err(|_| serde::de::Error::custom("size above 4 GiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_by_name_and_validate() {
        let mut l = Limits::default();
        assert!(l.validate().is_ok());
        assert_eq!(l.set("logon_timeout", "250ms"), Ok(true));
        assert_eq!(l.logon_timeout.0, Duration::from_millis(250));
        assert_eq!(l.set("max_output_bytes", "1MiB"), Ok(true));
        assert_eq!(l.max_output_bytes, 1 << 20);
        assert_eq!(l.set("bogus", "1"), Ok(false));
        assert!(l.set("max_connections", "many").is_err());
        l.max_filter_nesting = 65;
        assert!(l.validate().is_err());
        l.max_filter_nesting = 8;
        l.input_queue_bytes = 1000;
        assert!(l.validate().is_err());
        for (key, value, _) in Limits::default().describe() {
            let mut l = Limits::default();
            assert_eq!(l.set(key, &value), Ok(true), "{key}");
            assert_eq!(l, Limits::default(), "{key} round-trips");
        }
    }
}
