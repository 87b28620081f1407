#![no_main]
//! Fuzz target `holmes_output`: see `squad_fuzz::holmes_output`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| squad_fuzz::holmes_output(data));
