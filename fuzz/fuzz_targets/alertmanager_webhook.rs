#![no_main]
//! Fuzz target `alertmanager_webhook`: see `squad_fuzz::alertmanager_webhook`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| squad_fuzz::alertmanager_webhook(data));
