//! rewarm's model descriptions as data, with no tensors: planning a run, reporting on it and reading a
//! Hugging Face `config.json` never need libtorch (ARCHITECTURE.md rule 5).
//!
//! - [`ModelConfig`]: the shape of a decoder-only transformer (GPT-NeoX/Pythia, Llama, Mistral, Qwen 2
//!   or Qwen 3), validation, parameter and FLOP counts (`config`), and its presets (`presets`);
//! - [`RopeScaling`]: Llama 3.x's RoPE scaling rule (`rope_scaling`);
//! - [`ModelTable`]: the plan's `[model]` table, a preset plus typed overrides (`table`);
//! - `hf_config`: [`ModelConfig`] ↔ Hugging Face `config.json`;
//! - [`TrainingMemory`]: the memory training a model needs at least, checked before allocation (`memory`).
//!
//! `rewarm-model` builds the tensors of a [`ModelConfig`].

mod config;
mod error;
mod hf_config;
mod memory;
mod presets;
mod rope_scaling;
mod table;

pub use config::{Family, ModelConfig};
pub use error::ConfigError;
pub use memory::{gib, TrainingMemory};
pub use presets::PRESETS;
pub use rope_scaling::{RopeScaling, RopeScalingType};
pub use table::ModelTable;
