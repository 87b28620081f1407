#![no_main]
//! Fuzz target `diagnosis_messages`: see `squad_fuzz::diagnosis_messages`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| squad_fuzz::diagnosis_messages(data));
