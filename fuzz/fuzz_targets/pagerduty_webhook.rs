#![no_main]
//! Fuzz target `pagerduty_webhook`: see `squad_fuzz::pagerduty_webhook`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| squad_fuzz::pagerduty_webhook(data));
