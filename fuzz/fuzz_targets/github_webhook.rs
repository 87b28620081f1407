#![no_main]
//! Fuzz target `github_webhook`: see `squad_fuzz::github_webhook`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| squad_fuzz::github_webhook(data));
