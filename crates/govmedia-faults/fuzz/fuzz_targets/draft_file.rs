//! Fuzz target `draft_file`: see govmedia_faults::fuzzing::draft_file.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| govmedia_faults::fuzzing::draft_file(data));
