#![no_main]
//! Fuzz target `webhook_signatures`: see `squad_fuzz::webhook_signatures`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| squad_fuzz::webhook_signatures(data));
