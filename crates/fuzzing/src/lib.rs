//! The fuzz targets of rewarm's readers of outside data, as functions of arbitrary bytes. Each gives a
//! reader the bytes and checks that it returns an error naming the file, or a value that can be used in
//! full; a panic is a failure. `fuzz/fuzz_targets/` wraps each for libFuzzer (`scripts/fuzz.sh`), and
//! `tests/replay.rs` runs every checked-in seed (`fuzz/seeds/TARGET/`) and every input a target once failed
//! on (`fuzz/regressions/TARGET/`) through them in `cargo test`.

mod data_files;
mod model_files;
mod run_files;

pub use data_files::{corpus, manifest, shard, tokenizer_json};
pub use model_files::{gguf, hf_config, safetensors, safetensors_index};
pub use run_files::{metrics_jsonl, plan_toml, state_json};

/// A target: arbitrary bytes in, a panic if the reader misbehaves.
pub type Target = fn(&[u8]);

/// Every target by name (the name of its libFuzzer binary and of its seed folders).
pub const TARGETS: &[(&str, Target)] = &[
    ("shard", shard),
    ("manifest", manifest),
    ("corpus", corpus),
    ("tokenizer_json", tokenizer_json),
    ("plan_toml", plan_toml),
    ("state_json", state_json),
    ("metrics_jsonl", metrics_jsonl),
    ("gguf", gguf),
    ("safetensors", safetensors),
    ("safetensors_index", safetensors_index),
    ("hf_config", hf_config),
];

/// An error must name the file it is about.
fn names<E: std::fmt::Display>(e: E, file: &str) {
    let text = e.to_string();
    assert!(
        text.contains(file),
        "the error does not name {file}: {text}"
    );
}
