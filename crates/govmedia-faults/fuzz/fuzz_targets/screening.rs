//! Fuzz target `screening`: see govmedia_faults::fuzzing::screening.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| govmedia_faults::fuzzing::screening(data));
