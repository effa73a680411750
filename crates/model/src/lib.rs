//! rewarm's models on libtorch (`tch`): decoder-only transformers of the GPT-NeoX/Pythia family and of
//! Llama and the Llama-like families (Mistral, Qwen2, Qwen3), with presets and parameter names equal to
//! the Hugging Face checkpoint keys.
//!
//! Names used in shape comments and docs throughout the crate:
//!
//! | name | meaning                                   | config field        |
//! |------|-------------------------------------------|---------------------|
//! | B    | batch size (sequences)                    |                     |
//! | T    | sequence length (positions)               | ≤ `max_seq_len`     |
//! | C    | model width                               | `hidden_size`       |
//! | H    | query heads                               | `num_heads`         |
//! | Hkv  | key/value heads (H in GPT-NeoX)           | `num_kv_heads`      |
//! | hd   | head dim, C / H unless set                | `head_dim`          |
//! | I    | MLP hidden width                          | `intermediate_size` |
//! | L    | transformer blocks                        | `num_layers`        |
//! | V    | vocabulary size                           | `vocab_size`        |
//!
//! ```no_run
//! use rewarm_model::{Model, ModelConfig};
//! use tch::{nn, Device, Kind, Tensor};
//!
//! let config = ModelConfig::preset("tiny").expect("a listed preset");
//! tch::manual_seed(0);
//! let vs = nn::VarStore::new(Device::Cpu);
//! let model = Model::new(&vs.root(), &config)?;
//! let tokens = Tensor::randint(512, [2, 9], (Kind::Int64, Device::Cpu)); // (B, T + 1)
//! let (inputs, targets) = (tokens.narrow(1, 0, 8), tokens.narrow(1, 1, 8));
//! let loss = model.loss(&inputs, &targets); // nats, f32 scalar
//! # Ok::<(), rewarm_model::ModelError>(())
//! ```
//!
//! The shapes (`ModelConfig`, presets, counts, Hugging Face config.json) are data in `rewarm-arch`,
//! re-exported here. Files: `neox` and `llama` (one architecture each, a struct per
//! block; `llama` serves the Llama-like families too), `stack` (the decoder both families are: embedding, blocks, norm, head), `rope` (rotary tables), `init` (initialization), `params` (weight-decay mask), `decoder` (the
//! common entry), `generate` (sampling), `weights` (tensors ↔ safetensors), `pretrained` (weights from
//! outside a run: `init_from`, inference loading, Hugging Face export).

mod decoder;
mod error;
pub mod gemv;
pub mod generate;
pub mod init;
pub mod kv_cache;
pub mod llama;
pub mod loss_head;
pub mod neox;
mod params;
pub mod pretrained;
mod recompute;
pub mod rope;
pub mod scoring;
mod stack;
pub mod weights;

pub use decoder::{Arch, Model};
pub use error::ModelError;
pub use kv_cache::KvCache;
pub use params::decay_mask;
pub use rewarm_arch::{Family, ModelConfig, ModelTable, RopeScaling, PRESETS};
pub use stack::Decoder;
