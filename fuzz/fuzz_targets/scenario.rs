#![no_main]
//! Fuzz target `scenario`: see `squad_fuzz::scenario`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| squad_fuzz::scenario(data));
