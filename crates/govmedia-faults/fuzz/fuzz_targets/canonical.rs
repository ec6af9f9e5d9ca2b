//! Fuzz target `canonical`: see govmedia_faults::fuzzing::canonical_encoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| govmedia_faults::fuzzing::canonical_encoding(data));
