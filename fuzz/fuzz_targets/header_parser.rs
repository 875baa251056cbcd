//! `Message::parse` on an arbitrary frame body, then every accessor a client uses on what a
//! server sends. Checks that a scratch as long as the frame always suffices, that a parse with
//! no scratch agrees with one with room, that the header and payload split the frame, that
//! presence and values agree field by field, and that `Debug` never shows a password.
#![no_main]

use amps_core::codec::{Bookmark, Field, Message, RawValue, Scratch, options};
use libfuzzer_sys::fuzz_target;

fn fields(m: &Message<'_>) -> Vec<(Field, String)> {
    let mut out = Vec::new();
    for &f in Field::ALL {
        let h = m.header();
        let s = h.str(f).map(|v| format!("s{v}"));
        let i = h.int(f).map(|v| format!("i{v}"));
        let b = h.bool(f).map(|v| format!("b{v}"));
        let n = [&s, &i, &b].iter().filter(|x| x.is_some()).count();
        assert!(n <= 1, "{f:?} has more than one kind of value");
        assert_eq!(h.has(f), n == 1, "has({f:?}) disagrees with its value");
        if let Some(v) = s.or(i).or(b) {
            out.push((f, v));
        }
    }
    out
}

fuzz_target!(|body: &[u8]| {
    let mut big = vec![0u8; body.len()];
    let full = Message::parse(body, &mut Scratch::new(&mut big));
    let none = Message::parse(body, &mut Scratch::empty());
    let m = match (full, none) {
        (Ok(m), none) => {
            if let Ok(n) = none {
                assert_eq!(fields(&m), fields(&n), "scratch changes the result");
                assert_eq!(n.header().escaped_len(), 0);
            }
            m
        }
        (Err(amps_core::codec::DecodeError::ScratchFull), _) => {
            panic!("a scratch as long as the frame must suffice")
        }
        (Err(e), Ok(_)) => panic!("fails with room ({e:?}) but parses without"),
        (Err(_), Err(_)) => return,
    };

    let h = m.header();
    // The header is the frame's first bytes and the payload the rest.
    let raw = h.raw_bytes();
    assert_eq!(h.raw().as_bytes(), raw);
    assert!(body.starts_with(raw));
    assert_eq!(&body[raw.len()..], m.data());
    assert!(h.escaped_len() <= body.len());
    assert_eq!(m.kind(), h.command().expect("parse checks the command"));
    let known = fields(&m);

    // Every key by iteration, and the first occurrence of each by `get`.
    let mut seen: Vec<&str> = Vec::new();
    for item in h.iter() {
        let (k, _, v) = item.expect("an accepted header iterates cleanly");
        if !seen.contains(&k) {
            seen.push(k);
            assert_eq!(h.get(k), Some(v), "get({k}) is not the first occurrence");
        }
        if let RawValue::Str { raw, escaped } = v {
            assert_eq!(escaped, raw.contains('\\'));
        }
        // A known field given a value (not null) anywhere is present: the first occurrence
        // sets it, later ones are ignored, and a value of the wrong type fails the parse.
        if let Some(f) = Field::from_key(k.as_bytes())
            && v != RawValue::Null
        {
            assert!(h.has(f), "{k} has a value but {f:?} is absent");
        }
    }

    // What clients read from server messages.
    let _ = (
        m.ack_type(),
        m.is_success(),
        m.stats(),
        m.max_backlog(),
        m.oof_reason(),
    );
    let _ = (h.ack_types(), h.status(), m.data_str());
    for sid in m.sub_ids() {
        assert!(!sid.contains(','));
    }
    if let Some(bm) = h.bookmark() {
        if let Ok(b) = Bookmark::parse(bm) {
            let _ = format!("{b:?}");
        }
        for item in Bookmark::list_items(bm) {
            let _ = Bookmark::parse(item);
        }
    }
    if let Some(o) = h.options() {
        for opt in options::OptionsIter::new(o) {
            assert!(options::find(o, opt.key).is_some());
            let _ = opt.value.and_then(options::parse_duration);
        }
    }
    let mut rec_scratch = vec![0u8; body.len()];
    let mut payload_used = 0usize;
    for rec in m.sow_records(Scratch::new(&mut rec_scratch)) {
        let Ok(rec) = rec else { break };
        payload_used += rec.data.len();
        assert!(payload_used <= m.data().len());
        let _ = (
            rec.sow_key(),
            rec.header.bookmark(),
            format!("{:?}", rec.header),
        );
    }

    // A password never shows in `Debug`: its quoted value appears nowhere, unless another
    // field's value or a key contains it.
    let dbg = format!("{m:?} {h:?}");
    if let Some(pw) = h.password() {
        assert!(dbg.contains("<redacted>"));
        let quoted = format!("{pw:?}");
        let elsewhere = known
            .iter()
            .any(|(f, v)| *f != Field::Password && format!("{:?}", &v[1..]).contains(&quoted))
            || Field::ALL
                .iter()
                .any(|f| format!("{:?}", f.wire_key()).contains(&quoted))
            || pw == "<redacted>";
        assert!(
            elsewhere || !dbg.contains(&quoted),
            "Debug shows the password"
        );
    }
});
