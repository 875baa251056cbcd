//! `FrameDecoder` fed an arbitrary stream in arbitrary chunks, checked against `split_frame`
//! applied to the whole stream: the same frames in the same order, the same error at the same
//! place, whatever the chunking and buffer size; `push` takes less than offered only when a
//! complete frame (or an error) is waiting.
#![no_main]

use amps_core::codec::{FrameDecoder, PREFIX_LEN, split_frame};
use amps_fuzz::Steer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mut steer, stream) = Steer::split(data);
    // Buffer of 4..=1027 bytes (below the prefix length too), limit up to 1 KiB or unlimited.
    let cap = 4 + steer.below(1024) as usize;
    let max_frame = if steer.flag(0) {
        u32::MAX
    } else {
        steer.below(1024) as u32
    };
    let mut d = FrameDecoder::new(vec![0u8; cap], max_frame);
    let eff = d.max_frame();
    assert!(eff <= max_frame && eff as usize <= cap.saturating_sub(PREFIX_LEN));

    // The reference: frames split off the whole stream, then the error or the incomplete rest.
    let mut expect = Vec::new();
    let mut rest = stream;
    let expect_err = loop {
        match split_frame(rest, eff) {
            Ok(Some((body, used))) => {
                expect.push(body);
                rest = &rest[used..];
            }
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };

    let mut got = 0usize;
    let mut input = stream;
    let mut err = None;
    'feed: while !input.is_empty() {
        let want = steer.chunk(input.len());
        let took = d.push(&input[..want]);
        assert!(took <= want);
        assert_eq!(d.buffered() + d.free(), cap);
        input = &input[took..];
        let mut any = false;
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    assert!(got < expect.len(), "a frame the reference does not have");
                    assert_eq!(f, expect[got], "frame {got} differs");
                    got += 1;
                    any = true;
                }
                Ok(None) => break,
                Err(e) => {
                    // The decoder holds its state after an error: asking again says the same.
                    assert_eq!(d.next_frame(), Err(e));
                    err = Some(e);
                    break 'feed;
                }
            }
        }
        if took < want {
            assert!(any, "push refused bytes with no complete frame waiting");
        }
    }
    assert_eq!(got, expect.len(), "frames missing");
    assert_eq!(err, expect_err);
    if err.is_none() {
        assert_eq!(d.buffered(), rest.len(), "the incomplete tail is held");
    }
    d.clear();
    assert_eq!((d.buffered(), d.free()), (0, cap));
});
