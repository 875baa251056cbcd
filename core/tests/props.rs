//! Property tests of the codec: encode→decode is the identity for every field, decoding does not
//! depend on how the input is chunked, and arbitrary bytes never make any parser panic.

use amps_core::codec::options::OptionsIter;
use amps_core::codec::{
    AckTypes, Bookmark, Command, CommandKind, DecodeError, FrameDecoder, Header, Message, Scratch,
    split_frame,
};
use amps_core::uri::Uri;
use proptest::prelude::*;

const SENT: [CommandKind; 12] = [
    CommandKind::Logon,
    CommandKind::Publish,
    CommandKind::DeltaPublish,
    CommandKind::Subscribe,
    CommandKind::DeltaSubscribe,
    CommandKind::Sow,
    CommandKind::SowAndSubscribe,
    CommandKind::SowAndDeltaSubscribe,
    CommandKind::SowDelete,
    CommandKind::Unsubscribe,
    CommandKind::Flush,
    CommandKind::Heartbeat,
];

/// Owned inputs for one command (the builder borrows).
#[derive(Debug, Clone)]
struct Spec {
    kind: CommandKind,
    strs: Vec<Option<String>>, // 16 string fields, in the order of `build`
    ints: Vec<Option<u64>>,    // seq, expiration, batch_size, top_n
    acks: u8,
    data: Vec<u8>,
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9_/|.-]{0,12}",
        any::<String>(),
        Just("quote\" back\\ ctl\u{1}\u{1f} tab\t nl\n é 😀".to_string()),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        proptest::sample::select(SENT.to_vec()),
        proptest::collection::vec(proptest::option::of(any_text()), 16),
        proptest::collection::vec(proptest::option::of(any::<u64>()), 4),
        0u8..64,
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(kind, mut strs, ints, acks, data)| {
            // Required fields (docs/protocol.md §6) so the command validates.
            strs[0].get_or_insert_with(|| "name".into()); // client_name
            strs[1].get_or_insert_with(|| "topic".into()); // topic
            strs[2].get_or_insert_with(|| "sub".into()); // sub_id
            Spec {
                kind,
                strs,
                ints,
                acks,
                data,
            }
        })
}

fn build(s: &Spec) -> Command<'_> {
    let mut c = Command::new(s.kind);
    let st = |i: usize| s.strs[i].as_deref();
    macro_rules! set {
        ($($i:literal => $m:ident),*) => { $( if let Some(v) = st($i) { c = c.$m(v); } )* };
    }
    set!(0 => client_name, 1 => topic, 2 => sub_id, 3 => command_id, 4 => user_id, 5 => password,
         6 => query_id, 7 => filter, 8 => bookmark, 9 => options, 10 => sow_key,
         11 => correlation_id, 12 => order_by, 13 => sow_keys, 14 => message_type, 15 => version);
    if let Some(v) = s.ints[0] {
        c = c.seq(v)
    }
    if let Some(v) = s.ints[1] {
        c = c.expiration(v)
    }
    if let Some(v) = s.ints[2] {
        c = c.batch_size(v)
    }
    if let Some(v) = s.ints[3] {
        c = c.top_n(v)
    }
    let mut acks = AckTypes::NONE;
    for a in amps_core::codec::AckType::ALL {
        if s.acks & (a as u8) != 0 {
            acks = acks.with(a);
        }
    }
    c.acks(acks).data(&s.data)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The scanner validates UTF-8 string by string (skipping strings that are plainly ASCII)
    /// instead of validating the whole header: a header must be accepted exactly when its text
    /// is valid UTF-8, wherever the bytes sit (a known field, an unknown key, a nested value,
    /// after an escape) and whatever their alignment to the scanner's eight-byte steps; and a
    /// field read back must be the bytes sent.
    #[test]
    fn headers_are_accepted_exactly_when_they_are_utf8(
        content in proptest::collection::vec(
            prop_oneof![
                4 => (0x20u8..0x7f).prop_filter("no quote or backslash", |b| *b != b'"' && *b != b'\\'),
                1 => 0x80u8..=0xff,
                1 => Just(b'\\'),
            ],
            0..40,
        ),
        place in 0usize..4,
        pad in 0usize..9,
        payload_hi in any::<bool>(),
    ) {
        // A backslash escapes the next byte; keep escapes valid (`\\"` / `\\\\`) so only UTF-8
        // decides the outcome.
        let mut body = Vec::new();
        let mut it = content.iter().peekable();
        while let Some(&b) = it.next() {
            body.push(b);
            if b == b'\\' {
                body.push(if it.peek().is_some() { b'"' } else { b'\\' });
            }
        }
        let mut h = b"{\"c\":\"p\",".to_vec();
        h.extend(std::iter::repeat_n(b' ', pad));
        let (pre, post): (&[u8], &[u8]) = match place {
            0 => (b"\"t\":\"", b"\""),
            1 => (b"\"", b"\":1"),
            2 => (b"\"zz\":[{\"a\":\"", b"\"}]"),
            _ => (b"\"x\":\"a", b"\""),
        };
        h.extend(pre);
        h.extend(&body);
        h.extend(post);
        h.push(b'}');
        let utf8 = std::str::from_utf8(&h).is_ok();
        let mut frame = h.clone();
        frame.extend(if payload_hi { &b"\xff\xfe"[..] } else { &b"ok"[..] });
        let mut scratch = vec![0u8; frame.len()];
        let r = Message::parse(&frame, &mut Scratch::new(&mut scratch));
        match r {
            Ok(m) => {
                prop_assert!(utf8, "accepted a header that is not UTF-8: {:?}", h);
                prop_assert_eq!(m.header().raw().as_bytes(), &h[..]);
                if place == 0 && !content.contains(&b'\\') {
                    prop_assert_eq!(m.topic().map(str::as_bytes), Some(&body[..]));
                }
            }
            Err(e) => {
                prop_assert!(!utf8, "rejected a UTF-8 header {:?}: {:?}", h, e);
                prop_assert!(matches!(e, DecodeError::InvalidUtf8 { .. }), "{:?}", e);
            }
        }
    }

    #[test]
    fn encode_then_decode_is_identity(s in spec()) {
        let cmd = build(&s);
        let wire = cmd.to_vec().unwrap();
        prop_assert_eq!(wire.len(), cmd.encoded_len().unwrap());
        let (body, used) = split_frame(&wire, u32::MAX).unwrap().unwrap();
        prop_assert_eq!(used, wire.len());
        let mut scratch = vec![0u8; body.len()];
        let m = Message::parse(body, &mut Scratch::new(&mut scratch)).unwrap();
        prop_assert_eq!(m.kind(), s.kind);
        prop_assert_eq!(m.client_name(), cmd.client_name);
        prop_assert_eq!(m.topic(), cmd.topic);
        prop_assert_eq!(m.sub_id(), cmd.sub_id);
        prop_assert_eq!(m.command_id(), cmd.command_id);
        prop_assert_eq!(m.user_id(), cmd.user_id);
        prop_assert_eq!(m.password(), cmd.password);
        prop_assert_eq!(m.query_id(), cmd.query_id);
        prop_assert_eq!(m.filter(), cmd.filter);
        prop_assert_eq!(m.bookmark(), cmd.bookmark);
        if s.kind != CommandKind::Heartbeat {
            prop_assert_eq!(m.options(), cmd.options);
        }
        prop_assert_eq!(m.sow_key(), cmd.sow_key);
        prop_assert_eq!(m.correlation_id(), cmd.correlation_id);
        prop_assert_eq!(m.order_by(), cmd.order_by);
        prop_assert_eq!(m.sow_keys(), cmd.sow_keys);
        prop_assert_eq!(m.message_type(), cmd.message_type);
        prop_assert_eq!(m.version(), cmd.version);
        prop_assert_eq!(m.seq(), cmd.seq);
        prop_assert_eq!(m.expiration(), cmd.expiration);
        prop_assert_eq!(m.batch_size(), cmd.batch_size);
        prop_assert_eq!(m.top_n(), cmd.top_n);
        prop_assert_eq!(m.ack_types(), cmd.ack);
        prop_assert_eq!(m.data(), &s.data[..]);
    }

    #[test]
    fn decoding_is_independent_of_chunking(
        specs in proptest::collection::vec(spec(), 1..12),
        cuts in proptest::collection::vec(1usize..40, 1..64),
    ) {
        let mut stream = Vec::new();
        for s in &specs {
            stream.extend(build(s).to_vec().unwrap());
        }
        let whole = decode_all(&stream, &[stream.len()]);
        let chunked = decode_all(&stream, &cuts);
        prop_assert_eq!(whole.len(), specs.len());
        prop_assert_eq!(whole, chunked);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut scratch = vec![0u8; bytes.len()];
        let _ = Header::parse(&bytes, &mut Scratch::new(&mut scratch));
        let mut scratch = vec![0u8; bytes.len()];
        if let Ok(m) = Message::parse(&bytes, &mut Scratch::new(&mut scratch)) {
            let mut s2 = vec![0u8; bytes.len()];
            for r in m.sow_records(Scratch::new(&mut s2)) { let _ = r; }
            let _ = m.max_backlog();
            let _ = m.sub_ids().count();
            let _ = format!("{m:?}");
        }
        let mut d = FrameDecoder::new(vec![0u8; 64], 60);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = d.push(rest);
            rest = &rest[n..];
            loop {
                match d.next_frame() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => { rest = &[]; break }
                }
            }
            if n == 0 { break }
        }
        let text = String::from_utf8_lossy(&bytes);
        let _ = Uri::parse(&text);
        let _ = Bookmark::parse(&text);
        let _ = OptionsIter::new(&text).count();
    }

    #[test]
    fn arbitrary_json_like_headers_never_panic(s in r#"[{}\[\]",:0-9a-z\\ -]{0,80}"#) {
        let mut scratch = vec![0u8; s.len()];
        let _ = Message::parse(s.as_bytes(), &mut Scratch::new(&mut scratch));
    }
}

/// Decode `stream` fed in chunks of the given sizes (cycled); returns each frame's bytes, or the
/// error that stopped decoding.
fn decode_all(stream: &[u8], cuts: &[usize]) -> Vec<Result<Vec<u8>, DecodeError>> {
    let mut d = FrameDecoder::new(vec![0u8; 1 << 16], 1 << 15);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < stream.len() {
        let n = cuts[i % cuts.len()].min(stream.len() - pos);
        i += 1;
        let mut chunk = &stream[pos..pos + n];
        pos += n;
        while !chunk.is_empty() {
            let took = d.push(chunk);
            chunk = &chunk[took..];
            loop {
                match d.next_frame() {
                    Ok(Some(f)) => {
                        let mut scratch = vec![0u8; f.len()];
                        let m = Message::parse(f, &mut Scratch::new(&mut scratch));
                        out.push(m.map(|_| f.to_vec()));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Err(e));
                        return out;
                    }
                }
            }
        }
    }
    out
}
