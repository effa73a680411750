//! libFuzzer's entry for `rewarm_fuzzing::shard` (crates/fuzzing), which says what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| rewarm_fuzzing::shard(data));
