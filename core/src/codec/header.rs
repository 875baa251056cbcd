//! The header of a frame as a borrowed view (docs/protocol.md §1.2, §1.3, §2, §17.1).
//!
//! [`Header::parse`] scans the JSON object at the start of a frame once and records every field
//! of the header table in docs/protocol.md §2, under its abbreviated or full key, in any order,
//! with any JSON whitespace. Strings borrow the frame (or the [`Scratch`] when they contain
//! escapes); integers are parsed exactly (never through a float) whether written as numbers or
//! strings; strings may arrive as numbers. Keys the table does not know are skipped but stay
//! reachable through [`Header::iter`]. The first occurrence of a duplicate key wins.

use core::fmt;

use super::error::DecodeError;
use super::field::{Field, IntIdx, N_INT, N_STR, Slot, StrIdx};
use super::json::{ObjectIter, RawValue, Scratch};
use super::types::{AckTypes, CommandKind, Status};

/// A string field's place: in the header text, or in the unescape area.
#[derive(Clone, Copy, Default)]
pub(super) struct Sp {
    pub(super) start: u32,
    pub(super) len: u32,
}

/// The parsed header of one frame; borrows the frame and the scratch.
///
/// Fields are kept as byte ranges into the header text (valid UTF-8, see `Text`) or, for strings
/// that had escapes, into the decoded area of the scratch. `D` holds those positions: by value
/// (`Detached`, a few hundred bytes, what [`Header::parse`] returns) or borrowed
/// (`HeaderRef`, a few dozen bytes, what a session's events carry).
#[derive(Clone, Copy)]
pub struct Header<'a, D: HeaderFields = Detached> {
    raw: Text<'a>,
    esc: &'a str,
    d: D,
}

/// A header's text. Valid UTF-8 whenever it came from a parse: the scanner validates every
/// string that is not plain ASCII, and the rest is ASCII by the grammar.
#[derive(Clone, Copy)]
enum Text<'a> {
    /// Already text (the empty header).
    Str(&'a str),
    /// Not converted ([`Header::parse`], [`Detached::view`] over a session's buffer, an owned
    /// copy): each field is converted when read, so a reader of two or three fields does not
    /// pay for the whole header (a session would otherwise convert it again for every event it
    /// hands out).
    Bytes(&'a [u8]),
}

impl<'a> Text<'a> {
    #[inline]
    fn bytes(self) -> &'a [u8] {
        match self {
            Text::Str(t) => t.as_bytes(),
            Text::Bytes(b) => b,
        }
    }

    // Inlined everywhere on 64-bit targets (the parse speed); on microcontrollers that costs
    // 1.6 KB of code.
    #[cfg_attr(target_pointer_width = "64", inline(always))]
    #[cfg_attr(not(target_pointer_width = "64"), inline)]
    fn get(self, r: core::ops::Range<usize>) -> Option<&'a str> {
        match self {
            Text::Str(t) => t.get(r),
            // Over bytes a header was not parsed from (a bad image): `None`, never a panic.
            Text::Bytes(b) => match b.get(r)? {
                // One ASCII byte (a sub id such as `2`, a command `p`): from a table, without
                // a call to the UTF-8 check.
                &[c] if c.is_ascii() => ASCII.get(usize::from(c)..usize::from(c) + 1),
                v => core::str::from_utf8(v).ok(),
            },
        }
    }
}

/// Every ASCII character, in order: `ASCII[c..c + 1]` is the text of byte `c`.
pub(crate) const ASCII: &str = "\0\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\
    \x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f \
    !\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\x7f";

/// Bytes of the two lengths that start a header image ([`Header::write_image`]).
const IMAGE_LENS: usize = 8;
/// Bytes of the presence masks that start [`Detached::compact`]'s form.
const COMPACT_MASKS: usize = 12;
/// Longest compact form: every field present.
const COMPACT_MAX: usize = COMPACT_MASKS + 8 * (N_STR + N_INT);

/// The positions of a parsed header's fields, owned or borrowed: what [`Header`] and
/// [`crate::codec::Message`] are generic over (a parse returns them owned; a session's events
/// borrow them). Sealed: implemented by this crate's two forms only, so code outside it can be
/// generic over headers without depending on how the positions are kept.
pub trait HeaderFields: sealed::Sealed {}

mod sealed {
    /// Access to the positions, for this crate only.
    pub trait Sealed {
        fn positions(&self) -> &super::Detached;
    }
    impl Sealed for super::Detached {
        #[inline(always)]
        fn positions(&self) -> &super::Detached {
            self
        }
    }
    impl Sealed for &super::Detached {
        #[inline(always)]
        fn positions(&self) -> &super::Detached {
            self
        }
    }
}

impl HeaderFields for Detached {}
impl HeaderFields for &Detached {}

/// A header whose field positions are borrowed (what a session's events carry).
pub(crate) type HeaderRef<'a> = Header<'a, &'a Detached>;

/// A parsed header without its borrows: field positions and values only. A session keeps it
/// between the moment it processes a frame and the moment it hands out a view of it, and
/// re-attaches it to the same bytes with `Detached::view` instead of parsing twice.
///
/// Sealed: `pub` only so that it can be [`Header`]'s type parameter; it is not exported, so
/// no code outside this crate can name it or depend on its layout.
#[allow(unreachable_pub)]
#[derive(Clone, Copy)]
pub struct Detached {
    pub(super) command: Option<CommandKind>,
    pub(super) str_set: u32,
    pub(super) str_esc: u32,
    pub(super) int_set: u16,
    pub(super) bools: u8,
    pub(super) bool_set: u8,
    pub(super) strs: [Sp; N_STR],
    pub(super) ints: [u64; N_INT],
}

impl Detached {
    /// No fields.
    pub(crate) const EMPTY: Detached = Detached {
        command: None,
        str_set: 0,
        str_esc: 0,
        int_set: 0,
        bools: 0,
        bool_set: 0,
        strs: [Sp { start: 0, len: 0 }; N_STR],
        ints: [0; N_INT],
    };

    /// Bytes of the compact form ([`Detached::compact`]).
    pub(crate) fn compact_len(&self) -> usize {
        COMPACT_MASKS + 8 * (self.str_set.count_ones() + self.int_set.count_ones()) as usize
    }

    /// The fields in a compact form, for a copy that keeps many headers (an owned message):
    /// the presence masks, then `start`/`len` of each string and the value of each integer
    /// present, little-endian (typically under 100 bytes where `Detached` takes 300). Handed to
    /// `put` in one piece; [`Header::from_compact`] reads it back.
    pub(crate) fn compact(&self, put: impl FnOnce(&[u8])) {
        let mut out = [0u8; COMPACT_MAX];
        let mut n = 0;
        let mut w = |b: &[u8]| {
            // Always in bounds: `out` fits every field present.
            if let Some(dst) = out.get_mut(n..n + b.len()) {
                dst.copy_from_slice(b);
                n += b.len();
            }
        };
        w(&self.str_set.to_le_bytes());
        w(&self.str_esc.to_le_bytes());
        w(&self.int_set.to_le_bytes());
        w(&[self.bools, self.bool_set]);
        for (i, sp) in self.strs.iter().enumerate() {
            if self.str_set & (1 << i) != 0 {
                w(&sp.start.to_le_bytes());
                w(&sp.len.to_le_bytes());
            }
        }
        for (i, v) in self.ints.iter().enumerate() {
            if self.int_set & (1 << i) != 0 {
                w(&v.to_le_bytes());
            }
        }
        put(out.get(..n).unwrap_or(&[]));
    }

    /// View the fields again over `raw` (the header text the fields were parsed from) and
    /// `esc` (the scratch text its escaped strings were decoded into, [`Header::escaped_len`]
    /// bytes), borrowing the positions. Fields are converted to `&str` as they are read. Over
    /// other text, accessors return wrong values or `None`, never panic.
    #[inline]
    pub(crate) fn view<'a>(&'a self, raw: &'a [u8], esc: &'a str) -> HeaderRef<'a> {
        Header {
            raw: Text::Bytes(raw),
            esc,
            d: self,
        }
    }
}

impl<'a> Header<'a> {
    /// Parse the JSON object at the start of `frame` (the bytes after the length prefix).
    ///
    /// Returns the header and its length in bytes; everything after it is the payload
    /// (docs/protocol.md, section 1.2). Escaped strings are decoded into `scratch`.
    #[inline(always)]
    pub fn parse(
        frame: &'a [u8],
        scratch: &mut Scratch<'a>,
    ) -> Result<(Header<'a>, usize), DecodeError> {
        let mut h = Header::blank(frame);
        let end = h.parse_in(frame, scratch)?;
        Ok((h, end))
    }

    /// No fields, over `text` (what [`Header::parse_in`] starts from: built in code, not
    /// copied from a constant).
    #[inline(always)]
    pub(super) fn blank(text: &'a [u8]) -> Header<'a> {
        Header {
            raw: Text::Bytes(text),
            esc: "",
            d: Detached {
                command: None,
                str_set: 0,
                str_esc: 0,
                int_set: 0,
                bools: 0,
                bool_set: 0,
                strs: [Sp { start: 0, len: 0 }; N_STR],
                ints: [0; N_INT],
            },
        }
    }

    /// [`Header::parse`] into `self`, in place (the positions are not moved afterwards):
    /// returns the header length. On error `self` holds no fields.
    #[inline(always)]
    pub(super) fn parse_in(
        &mut self,
        frame: &'a [u8],
        scratch: &mut Scratch<'a>,
    ) -> Result<usize, DecodeError> {
        let (raw, esc, end) = self.d.parse_into(frame, scratch)?;
        // The scan validated the text: each field is converted when read, so a reader of two
        // or three fields does not pay for the whole header.
        self.raw = Text::Bytes(raw);
        self.esc = esc;
        Ok(end)
    }
}

impl Header<'static> {
    /// A header with no fields.
    pub const EMPTY: Header<'static> = Header {
        raw: Text::Str(""),
        esc: "",
        d: Detached::EMPTY,
    };
}

impl<'a> Header<'a> {
    /// View an image written by [`Header::write_image`]: every accessor works as on the header
    /// it was written from, with no parsing (fields are converted as they are read). `None` if
    /// `image` is not such an image; over other bytes, accessors return wrong values or
    /// `None`, never panic.
    pub fn from_image(image: &'a [u8]) -> Option<Header<'a>> {
        let (lens, rest) = image.split_first_chunk::<IMAGE_LENS>()?;
        let [r0, r1, r2, r3, e0, e1, e2, e3] = *lens;
        let raw_len = u32::from_le_bytes([r0, r1, r2, r3]) as usize;
        let esc_len = u32::from_le_bytes([e0, e1, e2, e3]) as usize;
        let (raw, rest) = rest.split_at_checked(raw_len)?;
        let (esc, fields) = rest.split_at_checked(esc_len)?;
        let esc = core::str::from_utf8(esc).ok()?;
        Header::from_compact(fields, raw, esc)
    }
}

impl<'a> Header<'a> {
    /// Rebuild a header from the compact form of its fields ([`Detached::compact`]) and the
    /// texts it was parsed from. `None` if `fields` is not such a form. Over other texts,
    /// accessors return wrong values or `None`, never panic.
    pub(crate) fn from_compact(fields: &[u8], raw: &'a [u8], esc: &'a str) -> Option<Header<'a>> {
        fn take<const N: usize>(b: &mut &[u8]) -> Option<[u8; N]> {
            let (head, rest) = b.split_first_chunk::<N>()?;
            *b = rest;
            Some(*head)
        }
        let mut b = fields;
        let mut d = Detached::EMPTY;
        d.str_set = u32::from_le_bytes(take(&mut b)?);
        d.str_esc = u32::from_le_bytes(take(&mut b)?);
        d.int_set = u16::from_le_bytes(take(&mut b)?);
        [d.bools, d.bool_set] = take(&mut b)?;
        if d.str_set.checked_shr(N_STR as u32).unwrap_or(0) != 0
            || d.int_set.checked_shr(N_INT as u32).unwrap_or(0) != 0
        {
            return None;
        }
        for (i, sp) in d.strs.iter_mut().enumerate() {
            if d.str_set & (1 << i) != 0 {
                sp.start = u32::from_le_bytes(take(&mut b)?);
                sp.len = u32::from_le_bytes(take(&mut b)?);
            }
        }
        for (i, v) in d.ints.iter_mut().enumerate() {
            if d.int_set & (1 << i) != 0 {
                *v = u64::from_le_bytes(take(&mut b)?);
            }
        }
        if !b.is_empty() {
            return None;
        }
        d.command = d
            .view(raw, esc)
            .command_bytes()
            .and_then(CommandKind::from_wire);
        Some(Header {
            raw: Text::Bytes(raw),
            esc,
            d,
        })
    }
}

impl<'a, D: HeaderFields> Header<'a, D> {
    #[inline(always)]
    fn f(&self) -> &Detached {
        self.d.positions()
    }

    /// Bytes [`Header::write_image`] writes.
    pub fn image_len(&self) -> usize {
        IMAGE_LENS + self.raw.bytes().len() + self.esc.len() + self.f().compact_len()
    }

    /// Write a self-contained image of this parsed header, for a copy that outlives the
    /// buffers it was parsed from (an owned message): its text, the strings decoded from its
    /// escapes and its field positions. [`Header::from_image`] views it again without parsing.
    /// The layout is private to this crate and may change between versions: images are for
    /// memory, not for storage or the wire. `put` is called a few times, in order.
    pub fn write_image(&self, mut put: impl FnMut(&[u8])) {
        let (raw, esc) = (self.raw.bytes(), self.esc.as_bytes());
        // Both fit: a header is part of a frame, whose length is a u32.
        put(&(raw.len() as u32).to_le_bytes());
        put(&(esc.len() as u32).to_le_bytes());
        put(raw);
        put(esc);
        self.f().compact(|b| put(b));
    }

    /// The fields without the borrows.
    #[inline]
    pub(crate) fn detach(&self) -> Detached {
        *self.f()
    }

    /// The same header with its positions copied (independent of `D`'s borrow).
    #[inline]
    pub(crate) fn to_owned_fields(&self) -> Header<'a> {
        Header {
            raw: self.raw,
            esc: self.esc,
            d: *self.f(),
        }
    }

    /// Bytes of scratch this header's escaped strings occupy (from the scratch's front).
    #[inline]
    pub(crate) fn escaped_len(&self) -> usize {
        self.esc.len()
    }

    /// Where string field `i` is: in the decoded escapes (true) or the header text, and its range.
    #[cfg_attr(target_pointer_width = "64", inline(always))]
    #[cfg_attr(not(target_pointer_width = "64"), inline)]
    fn span_at(&self, i: u8) -> Option<(bool, core::ops::Range<usize>)> {
        let bit = 1u32 << i;
        if self.f().str_set & bit == 0 {
            return None;
        }
        let Sp { start, len } = *self.f().strs.get(usize::from(i))?;
        Some((
            self.f().str_esc & bit != 0,
            start as usize..start as usize + len as usize,
        ))
    }

    #[cfg_attr(target_pointer_width = "64", inline(always))]
    #[cfg_attr(not(target_pointer_width = "64"), inline)]
    fn str_at(&self, i: u8) -> Option<&'a str> {
        match self.span_at(i)? {
            (true, r) => self.esc.get(r),
            (false, r) => self.raw.get(r),
        }
    }

    /// The command name as bytes, unconverted (all the command lookup needs).
    #[inline]
    pub(super) fn command_bytes(&self) -> Option<&'a [u8]> {
        self.bytes_at(StrIdx::Command as u8)
    }

    /// String field `i` as bytes, unconverted (UTF-8 whenever the header came from a parse).
    #[inline]
    fn bytes_at(&self, i: u8) -> Option<&'a [u8]> {
        match self.span_at(i)? {
            (true, r) => self.esc.as_bytes().get(r),
            (false, r) => self.raw.bytes().get(r),
        }
    }

    /// A string field as bytes, unconverted: for comparing it on a hot path without
    /// checking its UTF-8 again.
    #[inline]
    pub(crate) fn str_bytes(&self, field: Field) -> Option<&'a [u8]> {
        match field.slot() {
            Slot::Str(i) => self.bytes_at(i),
            _ => None,
        }
    }

    /// The header's JSON text exactly as received (empty if the header was attached to text
    /// that is not UTF-8, which a parse never produces).
    pub fn raw(&self) -> &'a str {
        match self.raw {
            Text::Str(t) => t,
            Text::Bytes(b) => core::str::from_utf8(b).unwrap_or(""),
        }
    }

    /// [`Header::raw`] as bytes, without converting it (for copying).
    #[inline]
    pub fn raw_bytes(&self) -> &'a [u8] {
        self.raw.bytes()
    }

    /// Every `(key, value)` of the header, known or not, keys undecoded. This is how keys the
    /// table does not know stay accessible (docs/protocol.md §1.2: servers add keys freely).
    pub fn iter(&self) -> ObjectIter<'a> {
        // The header already parsed, so this cannot fail; an empty iterator is the panic-free
        // fallback.
        ObjectIter::new(self.raw()).unwrap_or_else(|_| ObjectIter::empty())
    }

    /// The raw value of any key, including keys the table does not know. First occurrence wins.
    pub fn get(&self, key: &str) -> Option<RawValue<'a>> {
        self.iter()
            .filter_map(Result::ok)
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| v)
    }

    /// The command, if `c` names a known one.
    #[inline]
    pub fn command(&self) -> Option<CommandKind> {
        self.f().command
    }

    /// A string field (decoded), if present.
    pub fn str(&self, field: Field) -> Option<&'a str> {
        match field.slot() {
            Slot::Str(i) => self.str_at(i),
            _ => None,
        }
    }

    /// Whether `field` is present, without converting its value (a presence test on the hot
    /// path, where reading the string would convert it to `&str` first).
    #[inline]
    pub fn has(&self, field: Field) -> bool {
        let f = self.f();
        match field.slot() {
            Slot::Str(i) => f.str_set & (1 << i) != 0,
            Slot::Int(i) => f.int_set & (1 << i) != 0,
            Slot::Bool(i) => f.bool_set & (1 << i) != 0,
        }
    }

    /// An integer field, if present.
    pub fn int(&self, field: Field) -> Option<u64> {
        match field.slot() {
            Slot::Int(i) if self.f().int_set & (1 << i) != 0 => {
                self.f().ints.get(usize::from(i)).copied()
            }
            _ => None,
        }
    }

    /// A boolean field, if present.
    pub fn bool(&self, field: Field) -> Option<bool> {
        match field.slot() {
            Slot::Bool(i) if self.f().bool_set & (1 << i) != 0 => {
                Some(self.f().bools & (1 << i) != 0)
            }
            _ => None,
        }
    }

    /// The requested acks (`a` on a command) or the single type of an ack, parsed leniently:
    /// unknown names are ignored.
    pub fn ack_types(&self) -> AckTypes {
        let Some(s) = self.ack_type_str() else {
            return AckTypes::NONE;
        };
        s.split(',')
            .filter_map(super::types::AckType::from_wire)
            .fold(AckTypes::NONE, AckTypes::with)
    }

    /// The ack status, if present and known.
    pub fn status(&self) -> Option<Status> {
        self.status_str().and_then(Status::from_wire)
    }
}

macro_rules! accessors {
    (str { $($name:ident => $f:ident),* $(,)? } int { $($iname:ident => $if:ident),* $(,)? }
     bool { $($bname:ident => $bf:ident),* $(,)? }) => {
        impl<'a, D: HeaderFields> Header<'a, D> {
            $(
                #[doc = concat!("The `", stringify!($f), "` field (see [`Field::", stringify!($f), "`]).")]
                #[inline]
                pub fn $name(&self) -> Option<&'a str> { self.str_at(StrIdx::$f as u8) }
            )*
            $(
                #[doc = concat!("The `", stringify!($if), "` field (see [`Field::", stringify!($if), "`]).")]
                #[inline]
                pub fn $iname(&self) -> Option<u64> {
                    let i = IntIdx::$if as usize;
                    if self.f().int_set & (1 << i) != 0 { self.f().ints.get(i).copied() } else { None }
                }
            )*
            $(
                #[doc = concat!("The `", stringify!($bf), "` field (see [`Field::", stringify!($bf), "`]).")]
                #[inline]
                pub fn $bname(&self) -> Option<bool> { self.bool(Field::$bf) }
            )*
        }
    };
}

accessors! {
    str {
        command_str => Command, command_id => CommandId, ack_type_str => AckType, topic => Topic,
        filter => Filter, options => Options, bookmark => Bookmark, sow_key => SowKey,
        sow_keys => SowKeys, correlation_id => CorrelationId, order_by => OrderBy,
        query_id => QueryId, sub_id => SubId, sub_ids => SubIds, client_name => ClientName,
        user_id => UserId, password => Password, message_type => MessageType, version => Version,
        status_str => Status, reason => Reason, timestamp => Timestamp, lease_period => LeasePeriod,
    }
    int {
        seq => Seq, msg_len => MsgLen, expiration => Expiration, batch_size => BatchSize,
        top_n => TopN, group_seq => GroupSeq, matches => Matches, topic_matches => TopicMatches,
        records_returned => RecordsReturned, records_inserted => RecordsInserted,
        records_updated => RecordsUpdated, records_deleted => RecordsDeleted, max_msgs => MaxMsgs,
    }
    bool { send_empty => SendEmpty, send_keys => SendKeys, send_oof => SendOof, data_only => DataOnly }
}

impl<D: HeaderFields> fmt::Debug for Header<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for &field in Field::ALL {
            if field == Field::Password {
                if self.password().is_some() {
                    m.entry(&field.wire_key(), &"<redacted>");
                }
                continue;
            }
            if let Some(s) = self.str(field) {
                m.entry(&field.wire_key(), &s);
            } else if let Some(n) = self.int(field) {
                m.entry(&field.wire_key(), &n);
            } else if let Some(b) = self.bool(field) {
                m.entry(&field.wire_key(), &b);
            }
        }
        m.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{DecodeError, Scratch};

    #[test]
    fn the_ascii_table_holds_every_byte_in_place() {
        assert_eq!(ASCII.len(), 128);
        for c in 0u8..128 {
            assert_eq!(ASCII.as_bytes()[usize::from(c)], c);
        }
        let h = parse(r#"{"c":"p","t":"x","sub_id":"é","cid":"7"}"#).unwrap();
        assert_eq!(
            (h.topic(), h.sub_id(), h.command_id()),
            (Some("x"), Some("é"), Some("7"))
        );
    }

    #[test]
    fn fields_convert_as_ascii_as_utf8_or_not_at_all() {
        let text = r#"{"c":"p","t":"orders","x":"naïve","sub_id":"s"}"#;
        let h = parse(text).unwrap();
        assert_eq!(
            (h.topic(), h.correlation_id(), h.sub_id()),
            (Some("orders"), Some("naïve"), Some("s"))
        );
        // The same positions over bytes that are not text: `None`, never a wrong string.
        let mut d = Detached::EMPTY;
        let (raw, esc, _) = d
            .parse_into(text.as_bytes(), &mut Scratch::empty())
            .unwrap();
        let mut bad = raw.to_vec();
        bad[15] = 0xff; // inside `orders`
        assert_eq!(d.view(&bad, esc).topic(), None);
        bad[15] = b'R';
        assert_eq!(d.view(&bad, esc).topic(), Some("oRders"));
    }

    fn parse(s: &str) -> Result<Header<'_>, DecodeError> {
        Header::parse(s.as_bytes(), &mut Scratch::empty()).map(|(h, _)| h)
    }

    #[test]
    fn every_field_by_wire_key_and_alias() {
        for &field in Field::ALL {
            let keys = core::iter::once(field.wire_key()).chain(field.aliases().iter().copied());
            for key in keys {
                assert_eq!(Field::from_key(key.as_bytes()), Some(field), "{key}");
                let (json, expect_int) = match field.slot() {
                    Slot::Str(_) => (format!(r#"{{"{key}":"v1"}}"#), None),
                    Slot::Int(_) => (format!(r#"{{"{key}":42}}"#), Some(42)),
                    Slot::Bool(_) => (format!(r#"{{"{key}":true}}"#), None),
                };
                let h = parse(&json).unwrap();
                match field.slot() {
                    Slot::Str(_) => assert_eq!(h.str(field), Some("v1"), "{key}"),
                    Slot::Int(_) => assert_eq!(h.int(field), expect_int, "{key}"),
                    Slot::Bool(_) => assert_eq!(h.bool(field), Some(true), "{key}"),
                }
            }
        }
    }

    #[test]
    fn tolerates_whitespace_order_types_and_unknown_keys() {
        let h = parse(
            " {\n \"t\" : \"orders\" ,\"s\":\"7\", \"cid\": 12, \"mt\":\"json\", \"zz\":{\"deep\":[1,2]}, \"c\":\"publish\"}",
        )
        .unwrap();
        assert_eq!(h.command(), Some(CommandKind::Publish));
        assert_eq!(h.topic(), Some("orders"));
        assert_eq!(h.seq(), Some(7));
        assert_eq!(h.command_id(), Some("12"));
        assert_eq!(h.get("zz"), Some(RawValue::Nested("{\"deep\":[1,2]}")));
        assert_eq!(h.iter().count(), 6);
    }

    #[test]
    fn big_integers_are_exact() {
        let h = parse(r#"{"s":1490901822670001000,"k":"184467440737095516160"}"#).unwrap();
        assert_eq!(h.seq(), Some(1_490_901_822_670_001_000));
        assert_eq!(h.sow_key(), Some("184467440737095516160"));
        assert_eq!(
            parse(r#"{"s":18446744073709551615}"#).unwrap().seq(),
            Some(u64::MAX)
        );
        assert_eq!(
            parse(r#"{"s":18446744073709551616}"#).err(),
            Some(DecodeError::NumberOutOfRange { field: Field::Seq })
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        for (json, field) in [
            (r#"{"s":-1}"#, Field::Seq),
            (r#"{"s":1.5}"#, Field::Seq),
            (r#"{"s":"x"}"#, Field::Seq),
            (r#"{"l":true}"#, Field::MsgLen),
            (r#"{"t":{"a":1}}"#, Field::Topic),
            (r#"{"t":[1]}"#, Field::Topic),
            (r#"{"send_oof":"maybe"}"#, Field::SendOof),
        ] {
            assert_eq!(
                parse(json).err(),
                Some(DecodeError::WrongType { field }),
                "{json}"
            );
        }
    }

    #[test]
    fn escapes_need_scratch_and_decode() {
        let text = r#"{"c":"sow","f":"/name = \"x\"","t":"a\u00e9"}"#;
        assert_eq!(parse(text).err(), Some(DecodeError::ScratchFull));
        let mut buf = [0u8; 64];
        let (h, n) = Header::parse(text.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
        assert_eq!(n, text.len());
        assert_eq!(h.filter(), Some("/name = \"x\""));
        assert_eq!(h.topic(), Some("aé"));
    }

    #[test]
    fn first_duplicate_wins_and_null_is_absent() {
        let h = parse(r#"{"t":"a","topic":"b","s":1,"s":2,"x":null}"#).unwrap();
        assert_eq!(
            (h.topic(), h.seq(), h.correlation_id()),
            (Some("a"), Some(1), None)
        );
    }

    #[test]
    fn header_length_excludes_payload() {
        let f = br#"{"c":"p","t":"x"}{"id":1}"#;
        let (h, n) = Header::parse(f, &mut Scratch::empty()).unwrap();
        assert_eq!(&f[n..], br#"{"id":1}"#);
        assert_eq!(h.raw(), r#"{"c":"p","t":"x"}"#);
    }

    #[test]
    fn debug_redacts_password() {
        let h = parse(r#"{"c":"logon","pw":"secret","user_id":"u"}"#).unwrap();
        let s = format!("{h:?}");
        assert!(!s.contains("secret") && s.contains("redacted"), "{s}");
    }

    #[test]
    fn reused_slot_holds_no_fields_after_an_error() {
        let mut d = Detached::EMPTY;
        let good = br#"{"c":"p","t":"x","s":7,"send_empty":true}"#;
        let (raw, esc, _) = d.parse_into(good, &mut Scratch::empty()).unwrap();
        assert_eq!(d.view(raw, esc).topic(), Some("x"));
        // Fails in the scan, then after it (invalid UTF-8 in a string the scan accepts).
        let bad: [&[u8]; 2] = [
            br#"{"c":"p","t":"y","s":}"#,
            b"{\"c\":\"p\",\"t\":\"\xff\"}",
        ];
        for frame in bad {
            assert!(d.parse_into(frame, &mut Scratch::empty()).is_err());
            let v = d.view(raw, esc);
            assert_eq!((v.command(), v.topic(), v.seq()), (None, None, None));
            assert_eq!(v.bool(Field::SendEmpty), None);
        }
    }

    #[test]
    fn has_tells_presence_of_every_kind_of_field_without_reading_it() {
        let text = br#"{"c":"p","t":"","s":7,"send_empty":false,"lp":"1s"}"#;
        let mut d = Detached::EMPTY;
        let (raw, esc, _) = d.parse_into(text, &mut Scratch::empty()).unwrap();
        let h = d.view(raw, esc);
        for f in [
            Field::Topic,
            Field::Seq,
            Field::SendEmpty,
            Field::LeasePeriod,
        ] {
            assert!(h.has(f), "{f:?}");
        }
        for f in [
            Field::Bookmark,
            Field::BatchSize,
            Field::SendKeys,
            Field::SowKey,
        ] {
            assert!(!h.has(f), "{f:?}");
        }
        // An empty string is present, as its accessor says.
        assert_eq!(h.topic(), Some(""));
    }

    #[test]
    fn images_round_trip_and_bad_images_are_refused() {
        let text = r#"{"c":"sow","t":"a\"b","sub_id":"s","s":18446744073709551615,"bs":10,"send_empty":false,"send_keys":true,"x":"é"}"#;
        let mut buf = [0u8; 64];
        let (h, _) = Header::parse(text.as_bytes(), &mut Scratch::new(&mut buf)).unwrap();
        let mut image = alloc::vec::Vec::new();
        h.write_image(|b| image.extend_from_slice(b));
        assert_eq!(image.len(), h.image_len());
        buf.fill(0); // the image must not depend on the scratch
        let back = Header::from_image(&image).unwrap();
        assert_eq!(back.raw(), text);
        assert_eq!(back.command(), Some(CommandKind::Sow));
        assert_eq!((back.topic(), back.seq()), (Some("a\"b"), Some(u64::MAX)));
        assert_eq!(back.bool(Field::SendKeys), Some(true));
        assert_eq!(
            (back.correlation_id(), back.batch_size()),
            (Some("é"), Some(10))
        );
        // Truncated, with bytes to spare, or with presence bits beyond the table: not an image.
        assert!(Header::from_image(&image[..image.len() - 1]).is_none());
        let mut longer = image.clone();
        longer.push(0);
        assert!(Header::from_image(&longer).is_none());
        let fields_at = 8 + text.len() + 3; // after the lengths, the text and the escapes
        let mut high = image.clone();
        high[fields_at + 3] |= 0x80;
        assert!(Header::from_image(&high).is_none());
        assert!(Header::from_image(&[]).is_none());
        assert!(Header::from_image(&[255; 12]).is_none());
    }
}
