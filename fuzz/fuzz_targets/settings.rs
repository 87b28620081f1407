#![no_main]
//! Fuzz target `settings`: see `squad_fuzz::settings`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| squad_fuzz::settings(data));
