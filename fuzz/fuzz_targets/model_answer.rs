#![no_main]
//! Fuzz target `model_answer`: see `squad_fuzz::model_answer`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| squad_fuzz::model_answer(data));
