//! Connection-string parsing (`amps_core::uri`): any text either fails with a typed error
//! whose offset lies inside the text, or parses to a `Uri` whose `Display` parses back to the
//! same `Uri` (the password masked as `****`), and neither `Display` nor `Debug` depends on the
//! password.
#![no_main]

use amps_core::uri::{Secret, Uri, UriError, UriProblem, percent_decode_into};
use libfuzzer_sys::fuzz_target;

fn check_offset(e: UriError, len: usize) {
    match e {
        UriError::InvalidUri { at, .. } | UriError::InvalidTransportOption { at, .. } => {
            assert!(at <= len, "error offset {at} past the end ({len})");
        }
        UriError::UnknownTransport => {}
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let u = match Uri::parse(&text) {
        Ok(u) => u,
        Err(e) => {
            check_offset(e, text.len());
            let _ = e.to_string();
            return;
        }
    };

    // Display and Debug never depend on the password.
    let other = Uri {
        password: u.password.map(|_| Secret::new("other")),
        ..u
    };
    let shown = u.to_string();
    assert_eq!(shown, other.to_string(), "Display depends on the password");
    assert_eq!(
        format!("{u:?}"),
        format!("{other:?}"),
        "Debug depends on the password"
    );

    // Display parses back to the same connection string, password masked.
    let back = match Uri::parse(&shown) {
        Ok(b) => b,
        Err(e) => panic!("{text:?} displays as {shown:?}, which does not parse: {e:?}"),
    };
    let masked = Uri {
        password: u.password.map(|_| Secret::new("****")),
        ..u
    };
    assert_eq!(back, masked, "{text:?} displays as {shown:?}");

    // Percent-decoding into a buffer as long as the text never runs out of room.
    let mut buf = vec![0u8; text.len()];
    for part in [u.user, u.password.map(|p| p.expose()), u.options.path]
        .into_iter()
        .flatten()
    {
        if let Err(UriError::InvalidUri {
            problem: UriProblem::BufferTooSmall,
            ..
        }) = percent_decode_into(part, &mut buf, 0)
        {
            panic!("decoding {part:?} into {} bytes ran out of room", buf.len());
        }
    }
    if let Some(p) = u.password {
        let _ = p.decode_into(&mut buf);
    }
});
