//! libFuzzer target: [`amps_fuzz_checks::frame_decoder`] (what it checks is documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amps_fuzz_checks::frame_decoder(data));
