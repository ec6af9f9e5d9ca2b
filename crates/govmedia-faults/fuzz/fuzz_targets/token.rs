//! Fuzz target `token`: see govmedia_faults::fuzzing::token.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| govmedia_faults::fuzzing::token(data));
