//! A `#![no_std]` binary that links `amps-core` with default features off.
//!
//! If anything in the dependency graph pulls in `std`, this fails to build: `std` brings its own
//! `#[panic_handler]`, which collides with the one below. It is built for the host with
//! `panic=abort` (see `.ci/run`); `targets/run-checks.sh` builds `amps-core` for a real
//! bare-metal target (thumbv7em-none-eabihf, with `-Zbuild-std=core`).
#![no_std]
#![no_main]
// The C runtime calls `main` by its unmangled name; nothing else here is unsafe.
#![allow(unsafe_code)]

use amps_core::codec::{AckType, Command, Message, Scratch, split_frame};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// The precompiled `core` of a hosted target is built with unwinding and references the
/// personality routine. With `panic=abort` nothing unwinds, so it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

/// Entry point called by the C runtime. Encodes and decodes one frame so the codec is linked.
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let mut buf = [0u8; 128];
    let Ok(n) = Command::publish("t", b"{}")
        .ack(AckType::Processed)
        .encode(&mut buf)
    else {
        return 1;
    };
    let Ok(Some((body, _))) = split_frame(&buf[..n], 1024) else {
        return 2;
    };
    match Message::parse(body, &mut Scratch::empty()) {
        Ok(m) if m.topic() == Some("t") => 0,
        _ => 3,
    }
}
