#![no_main]
//! Fuzz target `manifest`: see `squad_fuzz::manifest`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| squad_fuzz::manifest(data));
