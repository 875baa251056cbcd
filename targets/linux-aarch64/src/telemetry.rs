//! Telemetry samples, serialized with serde-json-core into a fixed buffer (no allocation per
//! message). Readings come from Linux's /proc when it is readable (load average, available
//! memory, uptime); missing values are reported as absent rather than invented.

use serde::Serialize;

/// Largest encoded sample.
pub const MAX_SAMPLE: usize = 256;

/// One sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Sample {
    /// Sample number from 1.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: u64,
    /// 1-minute load average, in thousandths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_milli: Option<u64>,
    /// Available memory in KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_avail_kib: Option<u64>,
    /// Seconds since boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
}

/// Why a sample could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeError;

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("telemetry sample does not fit its buffer")
    }
}

impl std::error::Error for EncodeError {}

impl Sample {
    /// Serialize into `buf`; returns the bytes written.
    pub fn encode<'b>(&self, buf: &'b mut [u8; MAX_SAMPLE]) -> Result<&'b [u8], EncodeError> {
        let n = serde_json_core::to_slice(self, buf).map_err(|_| EncodeError)?;
        buf.get(..n).ok_or(EncodeError)
    }
}

/// `1.25` → `1250` (thousandths, from a decimal string; `None` if malformed).
fn milli(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut frac3 = String::with_capacity(3);
    frac3.extend(frac.chars().chain(std::iter::repeat('0')).take(3));
    Some(int.parse::<u64>().ok()? * 1000 + frac3.parse::<u64>().ok()?)
}

/// The first field of /proc/loadavg, in thousandths.
pub fn parse_loadavg(text: &str) -> Option<u64> {
    milli(text.split_whitespace().next()?)
}

/// `MemAvailable` of /proc/meminfo, in KiB.
pub fn parse_meminfo(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The first field of /proc/uptime, whole seconds.
pub fn parse_uptime(text: &str) -> Option<u64> {
    text.split_whitespace()
        .next()?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Sample number `seq`, read now.
pub fn read(seq: u64) -> Sample {
    let file = |p: &str| std::fs::read_to_string(p).ok();
    let ts_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    Sample {
        seq,
        ts_ms,
        load_milli: file("/proc/loadavg").as_deref().and_then(parse_loadavg),
        mem_avail_kib: file("/proc/meminfo").as_deref().and_then(parse_meminfo),
        uptime_s: file("/proc/uptime").as_deref().and_then(parse_uptime),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_compact_json_without_missing_fields() {
        let mut buf = [0u8; MAX_SAMPLE];
        let s = Sample {
            seq: 3,
            ts_ms: 1_800_000_000_123,
            load_milli: Some(1250),
            mem_avail_kib: None,
            uptime_s: Some(42),
        };
        assert_eq!(
            s.encode(&mut buf).unwrap(),
            br#"{"seq":3,"ts_ms":1800000000123,"load_milli":1250,"uptime_s":42}"#
        );
        let full = Sample {
            seq: u64::MAX,
            ts_ms: u64::MAX,
            load_milli: Some(u64::MAX),
            mem_avail_kib: Some(u64::MAX),
            uptime_s: Some(u64::MAX),
        };
        assert!(full.encode(&mut buf).unwrap().len() < MAX_SAMPLE);
    }

    #[test]
    fn parses_proc_files_and_rejects_garbage() {
        assert_eq!(parse_loadavg("0.52 0.58 0.59 1/467 12345\n"), Some(520));
        assert_eq!(parse_loadavg("3 1 1"), Some(3000));
        assert_eq!(parse_loadavg("x"), None);
        assert_eq!(
            parse_meminfo("MemTotal: 100 kB\nMemAvailable:   2048 kB\n"),
            Some(2048)
        );
        assert_eq!(parse_meminfo("MemTotal: 100 kB\n"), None);
        assert_eq!(parse_uptime("12345.67 999.0\n"), Some(12345));
        assert_eq!(parse_uptime(""), None);
    }
}
