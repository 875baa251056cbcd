//! Writing server frames into growable buffers with amps-core's [`FrameWriter`], the identity
//! conventions of docs/protocol.md §18 (FNV-1a publisher ids and SOW keys) and the `ts` time
//! format.

use amps_core::codec::{EncodeError, FrameWriter};

/// Append one frame to `out`: `header` writes the header fields (it may run twice when the first
/// size estimate is short), then `payload`.
pub(crate) fn put_frame(out: &mut Vec<u8>, payload: &[u8], header: impl Fn(&mut FrameWriter<'_>)) {
    let start = out.len();
    let mut cap = 192 + payload.len();
    loop {
        out.resize(start + cap, 0);
        let Some(buf) = out.get_mut(start..) else {
            return;
        };
        let mut w = FrameWriter::new(buf);
        header(&mut w);
        match w.finish(payload) {
            Ok(n) => {
                out.truncate(start + n);
                return;
            }
            Err(EncodeError::BufferTooSmall { needed }) if needed > cap => cap = needed,
            Err(_) => {
                out.truncate(start);
                return;
            }
        }
    }
}

/// Append a bare JSON object (a `sow` record header, docs/protocol.md §7.2) to `out`.
pub(crate) fn put_object(out: &mut Vec<u8>, fields: impl Fn(&mut FrameWriter<'_>)) {
    let start = out.len();
    put_frame(out, &[], fields);
    // Drop the 4-byte prefix the writer put in front.
    if out.len() >= start + 4 {
        out.drain(start..start + 4);
    }
}

/// FNV-1a 64 offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a 64 prime.
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// Publisher id of a client name (docs/protocol.md §8.3, our convention: FNV-1a 64 of the UTF-8
/// name).
///
/// ```
/// assert_eq!(amps_broker::publisher_id("pub-1"), 3084015820777091662);
/// ```
pub fn publisher_id(client_name: &str) -> u64 {
    fnv1a(FNV_OFFSET, client_name.as_bytes())
}

/// SOW key of a record (docs/protocol.md §18 convention): FNV-1a 64 over the topic, then for each
/// key field a 0x01 byte and the field's value text; decimal.
///
/// ```
/// assert_eq!(amps_broker::sow_key("orders", &["A1"]), "16666569833721932681");
/// ```
pub fn sow_key<S: AsRef<str>>(topic: &str, values: &[S]) -> String {
    let mut h = fnv1a(FNV_OFFSET, topic.as_bytes());
    for v in values {
        h = fnv1a(h, &[1]);
        h = fnv1a(h, v.as_ref().as_bytes());
    }
    h.to_string()
}

/// A bookmark `<publisher id>|<seq>|` (docs/protocol.md §10.3).
pub(crate) fn bookmark(publisher: u64, seq: u64) -> String {
    format!("{publisher}|{seq}|")
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Format microseconds since the Unix epoch as `YYYYMMDDTHHMMSS.ffffffZ` (docs/protocol.md §7.1).
///
/// ```
/// assert_eq!(amps_broker::format_ts(1_757_438_359_976_304), "20250909T171919.976304Z");
/// ```
pub fn format_ts(micros: u64) -> String {
    let secs = (micros / 1_000_000) as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}{mo:02}{d:02}T{:02}{:02}{:02}.{:06}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        micros % 1_000_000
    )
}

/// Parse a bookmark timestamp `YYYYMMDDTHHMMSS[.ffffff][Z]` into microseconds since the epoch.
pub fn parse_ts(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (main, frac) = s.split_once('.').unwrap_or((s, ""));
    if main.len() != 15 || main.as_bytes().get(8) != Some(&b'T') {
        return None;
    }
    let n = |r: core::ops::Range<usize>| main.get(r).and_then(|x| x.parse::<u32>().ok());
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, se) = (n(9..11)?, n(11..13)?, n(13..15)?);
    let mut us = 0u64;
    for (i, c) in frac.bytes().take(6).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        us += u64::from(c - b'0') * 10u64.pow(5 - i as u32);
    }
    let days = days_from_civil(i64::from(y), mo, d);
    let secs = days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se);
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_of_protocol_18() {
        assert_eq!(publisher_id("pub-1"), 3084015820777091662);
        assert_eq!(sow_key("orders", &["A1"]), "16666569833721932681");
        assert_eq!(sow_key("orders", &["A2"]), "16666566535187048048");
        assert_eq!(sow_key("orders", &["A3"]), "16666567634698676259");
    }

    #[test]
    fn timestamps_round_trip() {
        for us in [
            0u64,
            1_757_438_359_976_304,
            1_795_284_330_250_000,
            951_782_400_000_000,
        ] {
            assert_eq!(parse_ts(&format_ts(us)), Some(us), "{us}");
        }
        assert_eq!(parse_ts("20261121T180530Z"), Some(1_795_284_330_000_000));
        assert_eq!(parse_ts("2026112T180530Z"), None);
    }

    #[test]
    fn frames_grow_as_needed() {
        let mut out = vec![9u8];
        let big = "x".repeat(1000);
        put_frame(&mut out, b"pay", |w| {
            w.str("c", "p").str("t", &big);
        });
        assert_eq!(out[0], 9);
        let len = u32::from_be_bytes(out[1..5].try_into().unwrap()) as usize;
        assert_eq!(len, out.len() - 5);
        assert!(out.ends_with(b"}pay"));
        let mut o = Vec::new();
        put_object(&mut o, |w| {
            w.str("k", "1").int("l", 2);
        });
        assert_eq!(o, br#"{"k":"1","l":2}"#);
    }
}
