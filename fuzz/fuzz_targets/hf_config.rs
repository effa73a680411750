//! libFuzzer's entry for `rewarm_fuzzing::hf_config` (crates/fuzzing), which says what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rewarm_fuzzing::hf_config(data));
