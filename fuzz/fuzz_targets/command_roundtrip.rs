//! `Command` round trip: a command built from fuzzed fields is encoded, the frame is split and
//! parsed back, and every field must come back as it was set (strings exactly, escapes and
//! all; integers exactly; the payload byte for byte).
//!
//! The first byte picks where the fields come from: even, `arbitrary` draws them; odd, the rest
//! of the input is a client frame body (the corpus starts from the protocol's test vectors)
//! whose decoded fields are re-encoded, so realistic values and escapes are mutated too.
#![no_main]

use amps_core::codec::{
    AckType, AckTypes, Command, CommandKind, EncodeError, Field, Message, Scratch, split_frame,
};
use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Fields<'a> {
    kind: u8,
    strs: [Option<&'a str>; 16],
    ints: [Option<u64>; 4],
    ack: u8,
    heartbeat_start: Option<u64>,
    data: &'a [u8],
}

/// The string fields in the order of `Fields::strs`.
const STR_FIELDS: [Field; 16] = [
    Field::CommandId,
    Field::ClientName,
    Field::UserId,
    Field::Password,
    Field::SubId,
    Field::QueryId,
    Field::Topic,
    Field::Filter,
    Field::Bookmark,
    Field::Options,
    Field::SowKey,
    Field::CorrelationId,
    Field::OrderBy,
    Field::SowKeys,
    Field::MessageType,
    Field::Version,
];
/// The integer fields in the order of `Fields::ints`.
const INT_FIELDS: [Field; 4] = [Field::Seq, Field::Expiration, Field::BatchSize, Field::TopN];

fn build<'a>(f: &Fields<'a>) -> Command<'a> {
    let kind = CommandKind::ALL[usize::from(f.kind) % CommandKind::ALL.len()];
    let mut c = Command::new(kind).data(f.data);
    let s = &f.strs;
    if let Some(v) = s[0] {
        c = c.command_id(v);
    }
    if let Some(v) = s[1] {
        c = c.client_name(v);
    }
    if let Some(v) = s[2] {
        c = c.user_id(v);
    }
    if let Some(v) = s[3] {
        c = c.password(v);
    }
    if let Some(v) = s[4] {
        c = c.sub_id(v);
    }
    if let Some(v) = s[5] {
        c = c.query_id(v);
    }
    if let Some(v) = s[6] {
        c = c.topic(v);
    }
    if let Some(v) = s[7] {
        c = c.filter(v);
    }
    if let Some(v) = s[8] {
        c = c.bookmark(v);
    }
    if let Some(v) = s[9] {
        c = c.options(v);
    }
    if let Some(v) = s[10] {
        c = c.sow_key(v);
    }
    if let Some(v) = s[11] {
        c = c.correlation_id(v);
    }
    if let Some(v) = s[12] {
        c = c.order_by(v);
    }
    if let Some(v) = s[13] {
        c = c.sow_keys(v);
    }
    if let Some(v) = s[14] {
        c = c.message_type(v);
    }
    if let Some(v) = s[15] {
        c = c.version(v);
    }
    let i = &f.ints;
    if let Some(v) = i[0] {
        c = c.seq(v);
    }
    if let Some(v) = i[1] {
        c = c.expiration(v);
    }
    if let Some(v) = i[2] {
        c = c.batch_size(v);
    }
    if let Some(v) = i[3] {
        c = c.top_n(v);
    }
    for a in AckType::ALL {
        if f.ack & a as u8 != 0 {
            c = c.ack(a);
        }
    }
    if let Some(hb) = f.heartbeat_start {
        c.heartbeat_start = Some(hb);
    }
    c
}

/// The fields of a parsed client frame (`None` if it does not decode).
fn from_frame<'a>(body: &'a [u8], scratch: &'a mut [u8]) -> Option<Fields<'a>> {
    let m = Message::parse(body, &mut Scratch::new(scratch)).ok()?;
    let h = *m.header();
    let mut strs = [None; 16];
    for (slot, f) in strs.iter_mut().zip(STR_FIELDS) {
        *slot = h.str(f);
    }
    let mut ints = [None; 4];
    for (slot, f) in ints.iter_mut().zip(INT_FIELDS) {
        *slot = h.int(f);
    }
    let kind = CommandKind::ALL.iter().position(|k| *k == m.kind())? as u8;
    Some(Fields {
        kind,
        strs,
        ints,
        ack: h.ack_types().bits(),
        heartbeat_start: None,
        data: m.data(),
    })
}

fn check(f: &Fields<'_>) {
    let cmd = build(f);
    let len = match cmd.encoded_len() {
        Ok(n) => n,
        Err(EncodeError::MissingField { .. }) => {
            assert!(cmd.validate().is_err());
            return;
        }
        Err(e) => panic!("encoded_len failed: {e:?}"),
    };
    let wire = cmd.to_vec().expect("to_vec after encoded_len");
    assert_eq!(wire.len(), len);
    // Too small a buffer is an error that names the size, never a partial frame.
    if len > 0 {
        let mut short = vec![0u8; len - 1];
        assert_eq!(
            cmd.encode(&mut short),
            Err(EncodeError::BufferTooSmall { needed: len })
        );
    }
    let (body, used) = split_frame(&wire, u32::MAX)
        .expect("a valid prefix")
        .expect("a whole frame");
    assert_eq!(used, wire.len());
    let mut scratch = vec![0u8; body.len()];
    let m = match Message::parse(body, &mut Scratch::new(&mut scratch)) {
        Ok(m) => m,
        Err(e) => panic!("{cmd:?} encodes to a frame that does not parse: {e:?}"),
    };
    assert_eq!(m.kind(), cmd.kind);
    for (v, field) in f.strs.iter().zip(STR_FIELDS) {
        if field == Field::Options && f.heartbeat_start.is_some() {
            continue;
        }
        assert_eq!(m.header().str(field), *v, "{field:?}");
    }
    if let Some(hb) = f.heartbeat_start {
        assert_eq!(m.options(), Some(format!("start,{hb}").as_str()));
    }
    for (v, field) in f.ints.iter().zip(INT_FIELDS) {
        assert_eq!(m.header().int(field), *v, "{field:?}");
    }
    let mut want = AckTypes::NONE;
    for a in AckType::ALL {
        if f.ack & a as u8 != 0 {
            want = want.with(a);
        }
    }
    assert_eq!(m.ack_types(), want);
    assert_eq!(m.data(), f.data);
    // Nothing else is written: the fields set are all the header holds.
    let set = f.strs.iter().filter(|s| s.is_some()).count()
        + f.ints.iter().filter(|i| i.is_some()).count()
        + usize::from(!want.is_empty())
        + usize::from(f.heartbeat_start.is_some() && f.strs[9].is_none());
    assert_eq!(m.header().iter().count(), set + 1, "unexpected keys");
    // Debug never depends on the password (so never shows it).
    if cmd.password.is_some() {
        let other = cmd.password("other");
        assert_eq!(
            format!("{cmd:?}"),
            format!("{other:?}"),
            "Debug shows the password"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(f) = Fields::arbitrary_take_rest(Unstructured::new(rest)) {
            check(&f);
        }
    } else {
        let mut scratch = vec![0u8; rest.len()];
        if let Some(f) = from_frame(rest, &mut scratch) {
            check(&f);
        }
    }
});
