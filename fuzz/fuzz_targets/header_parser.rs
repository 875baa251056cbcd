//! libFuzzer target: [`amps_fuzz_checks::header_parser`] (what it checks is documented there).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amps_fuzz_checks::header_parser(data));
