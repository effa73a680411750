//! rewarm's file formats for other tools, in pure Rust with no tensors: the libraries that hold tensors
//! (`rewarm-model`, `rewarm-train`) call into this crate for bytes and metadata only.
//!
//! - [`gguf`]: a hostile-file-safe GGUF v2/v3 reader; [`quant`]: GGML types and dequantization to f32.
//! - [`gguf_import`]: a GGUF Llama → a Hugging Face `LlamaForCausalLM` folder (names, the q/k rotary
//!   permutation, config.json); [`gguf_tokenizer`]: tokenizer.json from GGUF metadata
//!   ([`gguf_spm`] for SentencePiece vocabularies).
//! - [`hf`]: Hugging Face folders: weight files (single or sharded safetensors; pickles refused),
//!   config.json, a streaming safetensors writer.
//! - [`source`]: what a path of pretrained weights is (rewarm checkpoint, HF folder, safetensors file).
//! - [`merge`]: the weighted average of several models' weights (`rewarm merge`).
//!
//! See docs/interop.md for the commands built on it.

mod error;
pub mod gguf;
pub mod gguf_import;
pub mod gguf_rope;
pub mod gguf_spm;
pub mod gguf_tokenizer;
pub mod hf;
pub mod merge;
pub mod quant;
pub mod source;

pub use error::InteropError;
pub use gguf::GgufFile;
pub use gguf_import::{import_gguf, ImportSummary};
