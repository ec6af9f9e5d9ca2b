//! Fuzz target `config`: see govmedia_faults::fuzzing::config.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| govmedia_faults::fuzzing::config(data));
