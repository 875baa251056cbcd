//! A corpus of malformed input: every entry yields its specific typed error, never a panic
//! (docs/protocol.md §1.4). It covers truncated and oversized frames, bad JSON, wrong types, deep
//! nesting and invalid UTF-8.

use amps_core::codec::{
    DecodeError, Field, FrameDecoder, Malformed, Message, Scratch, split_frame,
};

fn parse(bytes: &[u8]) -> Result<(), DecodeError> {
    let mut scratch = vec![0u8; bytes.len()];
    Message::parse(bytes, &mut Scratch::new(&mut scratch)).map(|_| ())
}

fn malformed(what: Malformed) -> impl Fn(&DecodeError) -> bool {
    move |e| matches!(e, DecodeError::MalformedHeader { what: w, .. } if *w == what)
}

#[test]
fn truncated_headers() {
    let full = br#"{"c":"p","t":"orders","s":12}payload"#;
    // Every strict prefix that ends inside the header is an error, never a panic.
    let header_len = full.iter().position(|&b| b == b'}').unwrap() + 1;
    for cut in 0..header_len {
        let r = parse(&full[..cut]);
        assert!(
            matches!(r, Err(DecodeError::MalformedHeader { .. })),
            "cut {cut}: {r:?}"
        );
    }
    assert!(malformed(Malformed::Truncated)(
        &parse(br#"{"c":"p""#).unwrap_err()
    ));
    assert!(malformed(Malformed::UnterminatedString)(
        &parse(br#"{"c":"p"#).unwrap_err()
    ));
}

#[test]
fn truncated_frames_wait_for_more() {
    let mut d = FrameDecoder::new(vec![0u8; 64], 64);
    d.push(b"\x00\x00\x00\x10{\"c\":");
    assert_eq!(d.next_frame(), Ok(None));
    assert_eq!(split_frame(b"\x00\x00", 64), Ok(None));
}

#[test]
fn oversized_and_empty_frames() {
    assert_eq!(
        split_frame(b"\xff\xff\xff\xff", 1024),
        Err(DecodeError::FrameTooLarge {
            len: u32::MAX,
            max: 1024
        })
    );
    assert_eq!(
        split_frame(b"\x00\x00\x00\x00{}", 1024),
        Err(DecodeError::EmptyFrame)
    );
    let mut d = FrameDecoder::new(vec![0u8; 32], u32::MAX);
    d.push(b"\x00\x01\x00\x00");
    assert!(matches!(
        d.next_frame(),
        Err(DecodeError::FrameTooLarge {
            len: 65536,
            max: 28
        })
    ));
}

#[test]
fn bad_json() {
    let cases: &[(&[u8], Malformed)] = &[
        (b"", Malformed::Truncated),
        (b"[]", Malformed::NotAnObject),
        (b"c:p", Malformed::NotAnObject),
        (b"{c:\"p\"}", Malformed::ExpectedKey),
        (br#"{"c" "p"}"#, Malformed::ExpectedColon),
        (br#"{"c":"p" "t":"x"}"#, Malformed::ExpectedCommaOrEnd),
        (br#"{"c":"p",}"#, Malformed::ExpectedKey),
        (br#"{"c":p}"#, Malformed::UnexpectedByte),
        (br#"{"c":"p","s":1.}"#, Malformed::BadNumber),
        (br#"{"c":"p","s":-}"#, Malformed::BadNumber),
        (br#"{"c":"p","s":1e}"#, Malformed::BadNumber),
        (br#"{"c":"p","t":tru}"#, Malformed::UnexpectedByte),
        (br#"{"c":"p","t":"\q"}"#, Malformed::BadEscape),
        (br#"{"c":"p","t":"\ud800"}"#, Malformed::BadEscape),
        (br#"{"c":"p","x":{"a" 1}}"#, Malformed::ExpectedColon),
        (br#"{"c":"p","x":[1 2]}"#, Malformed::ExpectedCommaOrEnd),
    ];
    for (input, what) in cases {
        let e = parse(input).unwrap_err();
        assert!(
            malformed(*what)(&e),
            "{}: {e:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn error_offsets_point_into_the_frame() {
    let input = br#"{"c":"p","t" "x"}"#;
    let Err(DecodeError::MalformedHeader { offset, .. }) = parse(input) else {
        panic!()
    };
    assert_eq!(&input[offset..], br#""x"}"#);
}

#[test]
fn wrong_types() {
    for (input, field) in [
        (&br#"{"c":"p","s":"seven"}"#[..], Field::Seq),
        (br#"{"c":"p","bs":-2}"#, Field::BatchSize),
        (br#"{"c":"p","top_n":3.5}"#, Field::TopN),
        (br#"{"c":"p","l":[1]}"#, Field::MsgLen),
        (br#"{"c":{"x":1}}"#, Field::Command),
        (br#"{"c":"p","sub_id":[1,2]}"#, Field::SubId),
        (br#"{"c":"p","send_keys":"yes"}"#, Field::SendKeys),
    ] {
        assert_eq!(
            parse(input),
            Err(DecodeError::WrongType { field }),
            "{}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(
        parse(br#"{"c":"p","s":99999999999999999999}"#),
        Err(DecodeError::NumberOutOfRange { field: Field::Seq })
    );
}

#[test]
fn deep_nesting_is_bounded() {
    let deep = format!(
        r#"{{"c":"p","zz":{}1{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(matches!(
        parse(deep.as_bytes()),
        Err(DecodeError::NestingTooDeep { .. })
    ));
    let ok = format!(r#"{{"c":"p","zz":{}1{}}}"#, "[".repeat(20), "]".repeat(20));
    assert_eq!(parse(ok.as_bytes()), Ok(()));
}

#[test]
fn invalid_utf8() {
    let input = b"{\"c\":\"p\",\"t\":\"ab\xff\"}";
    assert_eq!(parse(input), Err(DecodeError::InvalidUtf8 { offset: 16 }));
    // In a key that is skipped, it is still rejected when the header is exposed as text.
    assert!(matches!(
        parse(b"{\"c\":\"p\",\"\xc3\":1}"),
        Err(DecodeError::InvalidUtf8 { .. })
    ));
    // A binary payload after the header is fine.
    assert_eq!(parse(b"{\"c\":\"p\"}\xff\xfe\x00"), Ok(()));
}

#[test]
fn unknown_or_missing_command() {
    assert_eq!(
        parse(br#"{"c":"explode"}"#),
        Err(DecodeError::UnknownCommand)
    );
    assert_eq!(parse(br#"{"t":"x"}"#), Err(DecodeError::UnknownCommand));
    assert_eq!(parse(br#"{}"#), Err(DecodeError::UnknownCommand));
}

#[test]
fn escapes_without_scratch_are_a_typed_error() {
    assert_eq!(
        Message::parse(br#"{"c":"p","f":"a\"b"}"#, &mut Scratch::empty()).map(|_| ()),
        Err(DecodeError::ScratchFull)
    );
}
