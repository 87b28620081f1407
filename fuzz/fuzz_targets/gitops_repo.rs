#![no_main]
//! Fuzz target `gitops_repo`: see `squad_fuzz::gitops_repo`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| squad_fuzz::gitops_repo(data));
