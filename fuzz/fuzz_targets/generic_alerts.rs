#![no_main]
//! Fuzz target `generic_alerts`: see `squad_fuzz::generic_alerts`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| squad_fuzz::generic_alerts(data));
