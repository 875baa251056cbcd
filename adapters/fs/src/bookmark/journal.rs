//! The bookmark log's records: one per change of the [`Index`], replayed in order on open.
//!
//! Every record's payload is `type | slot (u16 LE) | text`:
//!
//! | type | text | change |
//! |---|---|---|
//! | `0x10` subscription | sub_id | a new subscription takes the slot |
//! | `0x11` received | bookmark | a message was logged (appended to the window) |
//! | `0x12` discarded | bookmark | the application discarded it |
//! | `0x13` persisted | bookmark | the server's persisted ack (docs/protocol.md §10.2) |
//! | `0x14` removed | (none) | the subscription was removed |
//! | `0x15` resume | bookmark | (written by prune) the slot's resume point |
//! | `0x16` received, discarded | bookmark | (written by prune) a discarded window entry |
//! | `0x17` high water | 8 × (publisher, sequence), u64 LE each | (written by prune) the slot's high-water marks |
//!
//! A received or discarded record is 11 bytes plus the bookmark: about 50 bytes for the
//! usual 40-byte bookmark, and the sub_id is written once per subscription, not per message
//! (the AMPS Python client guide budgets "roughly 70 bytes ... plus the length of the subscription
//! ID" per entry).

use crate::record;

use super::index::{HighWater, Index};

pub(super) const T_SUB: u8 = 0x10;
pub(super) const T_RECEIVED: u8 = 0x11;
pub(super) const T_DISCARDED: u8 = 0x12;
pub(super) const T_PERSISTED: u8 = 0x13;
pub(super) const T_REMOVED: u8 = 0x14;
pub(super) const T_RESUME: u8 = 0x15;
pub(super) const T_RECEIVED_DISCARDED: u8 = 0x16;
pub(super) const T_HIGH_WATER: u8 = 0x17;

/// Append one record to `buf`.
pub(super) fn put(buf: &mut Vec<u8>, kind: u8, slot: u16, text: &str) {
    put_bytes(buf, kind, slot, text.as_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, kind: u8, slot: u16, bytes: &[u8]) {
    let at = record::begin(buf, kind);
    buf.extend_from_slice(&slot.to_le_bytes());
    buf.extend_from_slice(bytes);
    record::finish(buf, at);
}

fn encode_high_water(hw: &HighWater) -> Vec<u8> {
    hw.iter()
        .flat_map(|&(p, s)| p.to_le_bytes().into_iter().chain(s.to_le_bytes()))
        .collect()
}

fn decode_high_water(bytes: &[u8]) -> Option<HighWater> {
    if bytes.len() != 16 * HighWater::default().len() {
        return None;
    }
    let mut hw = HighWater::default();
    for (pair, chunk) in hw.iter_mut().zip(bytes.chunks_exact(16)) {
        let (p, s) = chunk.split_first_chunk::<8>()?;
        *pair = (
            u64::from_le_bytes(*p),
            u64::from_le_bytes(s.try_into().ok()?),
        );
    }
    Some(hw)
}

/// The records that rebuild `index` exactly (prune's new log, after the header): the live
/// subscriptions with their resume and persisted points, then the window in order, including
/// discarded entries held behind undiscarded ones and entries of removed subscriptions that
/// still keep their slot taken.
pub(super) fn snapshot(index: &Index, buf: &mut Vec<u8>) {
    for (i, s) in index.slots.iter().enumerate() {
        if !s.used {
            continue;
        }
        let slot = i as u16;
        put(buf, T_SUB, slot, &s.name);
        if !s.resume.is_empty() {
            put(buf, T_RESUME, slot, &s.resume);
        }
        if !s.persisted.is_empty() {
            put(buf, T_PERSISTED, slot, &s.persisted);
        }
        if s.high_water != HighWater::default() {
            put_bytes(buf, T_HIGH_WATER, slot, &encode_high_water(&s.high_water));
        }
    }
    for (slot, discarded, bm) in index.window() {
        let kind = if discarded {
            T_RECEIVED_DISCARDED
        } else {
            T_RECEIVED
        };
        put(buf, kind, slot, bm);
    }
}

/// Apply one record read back from the log, refusing what the running store could not have
/// written (those are corruption with a valid checksum, not a torn write).
pub(super) fn replay(index: &mut Index, payload: &[u8]) -> Result<(), &'static str> {
    let kind = *payload.first().ok_or("empty record")?;
    let (slot, text) = record::split_u16(payload).ok_or("short record")?;
    let used = index.slot(slot).is_some_and(|s| s.used);
    if kind == T_HIGH_WATER {
        let hw = decode_high_water(text)
            .filter(|_| used)
            .ok_or("bad high-water record")?;
        index.set_high_water(slot, hw);
        return Ok(());
    }
    let text = std::str::from_utf8(text).map_err(|_| "text is not UTF-8")?;
    let bookmark_ok = text.len() <= amps_core::store::MAX_BOOKMARK;
    match kind {
        T_SUB => {
            if used || index.find_sub(text).is_some() {
                return Err("subscription record for a taken slot or name");
            }
            index.add_sub(slot, text);
        }
        T_RECEIVED | T_RECEIVED_DISCARDED => {
            let discarded = kind == T_RECEIVED_DISCARDED;
            if !bookmark_ok || (!used && !discarded) || index.find(slot, text).is_some() {
                return Err("received record that cannot be in the window");
            }
            index.push(slot, text, discarded);
        }
        T_DISCARDED => {
            let abs = index
                .find(slot, text)
                .filter(|(_, e)| used && !e.discarded)
                .map(|(abs, _)| abs)
                .ok_or("discard of a message not in the window")?;
            index.discard_at(abs);
        }
        T_PERSISTED | T_RESUME if used && bookmark_ok => {
            if kind == T_PERSISTED {
                index.set_persisted(slot, text);
            } else {
                index.set_resume(slot, text);
            }
        }
        T_REMOVED if used && text.is_empty() => index.remove_sub(slot),
        _ => return Err("unknown or misplaced record"),
    }
    Ok(())
}
