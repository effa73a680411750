//! libFuzzer's entry for `rewarm_fuzzing::safetensors_index` (crates/fuzzing), which says what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rewarm_fuzzing::safetensors_index(data));
