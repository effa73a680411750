//! Weights from outside the run: `init_from` (a rewarm checkpoint, a Hugging Face folder, or a
//! `.safetensors` file), a model loaded for inference (`rewarm sample`), and a checkpoint exported as a
//! Hugging Face folder (`rewarm export`). See docs/interop.md.
//!
//! A Hugging Face folder is recognised by its `config.json`. Its model is read from there
//! ([`ModelConfig::from_hf_config`]) and, for `init_from`, must equal the plan's `[model]` in every field
//! but `max_seq_len` (the rotary tables are computed, so any context length loads the same weights).
//! Weights come from `model.safetensors` or the shards of `model.safetensors.index.json`; pickle
//! checkpoints (`pytorch_model.bin`) are refused, never unpickled.

use crate::checkpoint::{self, DONE, MODEL_FILE, PLAN_FILE, STATE_FILE};
use crate::error::{TrainError, TrainResult};
use rewarm_interop::hf;
use rewarm_model::{Family, Model, ModelConfig};
use std::path::{Path, PathBuf};
use tch::{nn, Device, Tensor};

/// Where pretrained weights come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// A complete rewarm checkpoint folder (`step_…` with DONE); its model is in `plan.json`.
    Checkpoint(PathBuf),
    /// A Hugging Face model folder (`config.json` + safetensors weights).
    HfFolder(PathBuf),
    /// A bare safetensors file with rewarm's (= Hugging Face's) parameter names.
    File(PathBuf),
}

impl Source {
    /// Classifies `path`. A run folder resolves to its newest complete checkpoint.
    pub fn detect(path: &Path) -> TrainResult<Source> {
        let refuse_pickle = |name: &str| {
            TrainError::Config(format!(
                "{}: `{name}` is a PyTorch pickle, which rewarm never loads (unpickling can run code)\nHINT: convert it to safetensors first, e.g. in Python: `AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True)`",
                path.display()
            ))
        };
        if path.is_file() {
            let name = path
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            return if name.ends_with(".safetensors") {
                Ok(Source::File(path.to_owned()))
            } else if [".bin", ".pt", ".pth", ".ckpt"]
                .iter()
                .any(|ext| name.ends_with(ext))
            {
                Err(refuse_pickle(&name))
            } else {
                Err(TrainError::Config(format!(
                    "{}: not a weights file\nHINT: point at a rewarm checkpoint folder, a Hugging Face folder or a .safetensors file",
                    path.display()
                )))
            };
        }
        if !path.is_dir() {
            return Err(TrainError::Config(format!(
                "{}: no such file or folder\nHINT: check the path (relative paths in a plan are relative to the plan file)",
                path.display()
            )));
        }
        if path.join(STATE_FILE).exists() {
            if !path.join(DONE).exists() {
                return Err(TrainError::Checkpoint(format!(
                    "{}: checkpoint has no DONE marker (incomplete)\nHINT: use a complete checkpoint",
                    path.display()
                )));
            }
            return Ok(Source::Checkpoint(path.to_owned()));
        }
        if hf::is_hf_folder(path) {
            return Ok(Source::HfFolder(path.to_owned()));
        }
        if let Some((_, newest)) = checkpoint::list_complete(&path.join("ckpt")).pop() {
            return Ok(Source::Checkpoint(newest));
        }
        if path.join(MODEL_FILE).is_file() {
            return Ok(Source::File(path.join(MODEL_FILE)));
        }
        // Only pickles (or nothing): let the HF folder logic name what is there.
        hf::weight_files(path).map_err(|e| TrainError::Config(e.to_string()))?;
        Err(TrainError::Config(format!(
            "{}: holds no weights rewarm can read\nHINT: point at a rewarm checkpoint folder, a Hugging Face folder or a .safetensors file",
            path.display()
        )))
    }

    /// The model this source describes (`None` for a bare file, which has no config).
    pub fn model_config(&self) -> TrainResult<Option<ModelConfig>> {
        match self {
            Source::Checkpoint(dir) => checkpoint_model_config(dir).map(Some),
            Source::HfFolder(dir) => hf_model_config(dir).map(Some),
            Source::File(_) => Ok(None),
        }
    }

    /// Copies the weights into `vs`, whose variables must match them one to one (names, shapes).
    pub fn load_into(&self, vs: &nn::VarStore, family: Family, tied: bool) -> TrainResult<()> {
        let targets = sorted_variables(vs);
        match self {
            Source::Checkpoint(dir) => {
                checkpoint::load_tensors_into(&dir.join(MODEL_FILE), &targets, "checkpoint weights")
            }
            Source::File(file) => checkpoint::load_tensors_into(file, &targets, "weights"),
            Source::HfFolder(dir) => {
                let files = hf::weight_files(dir).map_err(|e| TrainError::Config(e.to_string()))?;
                checkpoint::load_tensors_from(&files, &targets, "Hugging Face weights", &|name| {
                    hf_name(name, family, tied)
                })
            }
        }
    }
}

/// A stored HF tensor name → rewarm's parameter name, `None` for buffers that are not parameters: causal
/// masks and rotary tables older transformers saved, and the output projection of a tied model (HF
/// ignores it too). transformers 5 writes GPT-NeoX's `embed_out` as `lm_head`.
fn hf_name(name: &str, family: Family, tied: bool) -> Option<String> {
    let buffer = [
        ".attention.bias",
        ".attention.masked_bias",
        ".rotary_emb.inv_freq",
    ];
    if buffer.iter().any(|b| name.ends_with(b)) {
        return None;
    }
    match (family, name) {
        (_, "lm_head.weight" | "embed_out.weight") if tied => None,
        (Family::Neox, "lm_head.weight") => Some("embed_out.weight".into()),
        _ => Some(name.to_owned()),
    }
}

fn sorted_variables(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// The model of a Hugging Face folder, from its config.json.
pub fn hf_model_config(dir: &Path) -> TrainResult<ModelConfig> {
    let json = hf::read_config(dir).map_err(|e| TrainError::Config(e.to_string()))?;
    ModelConfig::from_hf_config(&json)
        .map_err(|e| TrainError::Config(format!("{}: {e}", dir.join(hf::CONFIG_FILE).display())))
}

/// The model of a rewarm checkpoint, from its plan.json.
pub fn checkpoint_model_config(dir: &Path) -> TrainResult<ModelConfig> {
    let path = dir.join(PLAN_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))?;
    serde_json::from_value(json["model"].clone()).map_err(|e| {
        TrainError::Checkpoint(format!(
            "{}: `model` is not a model config ({e})\nHINT: the checkpoint was written by another rewarm version",
            path.display()
        ))
    })
}

/// `init_from`: the weights of `path` into `vs`. A Hugging Face folder's config.json must describe the
/// plan's `model`; a rewarm checkpoint is checked by names and shapes only, so that a continued run may
/// change what shapes do not show (e.g. rope_theta, as in context extension).
pub fn init_weights(path: &Path, vs: &nn::VarStore, model: &ModelConfig) -> TrainResult<()> {
    let source = Source::detect(path)?;
    if let Source::HfFolder(dir) = &source {
        let theirs = hf_model_config(dir)?;
        if let Some((field, ours, stored)) = model.first_difference(&theirs) {
            return Err(TrainError::Config(format!(
                "init_from = {}: its model has {field} = {stored} but the plan's [model] has {field} = {ours}\nHINT: make [model] match the folder's config.json (max_seq_len may differ), i.e.\n{}",
                path.display(),
                model_toml(&theirs)
            )));
        }
    }
    source.load_into(vs, model.family, model.tie_embeddings)
}

/// `config` as the `[model]` table of a plan, to paste into one: a preset (plus `max_seq_len` if it
/// differs) when one matches, else every field.
pub fn model_toml(config: &ModelConfig) -> String {
    let preset = rewarm_model::PRESETS.iter().find_map(|name| {
        let preset = ModelConfig::preset(name)?;
        preset
            .first_difference(config)
            .is_none()
            .then_some((name, preset.max_seq_len))
    });
    match preset {
        Some((name, len)) if len == config.max_seq_len => format!("[model]\npreset = \"{name}\"\n"),
        Some((name, _)) => format!(
            "[model]\npreset = \"{name}\"\nmax_seq_len = {}\n",
            config.max_seq_len
        ),
        None => {
            let table = toml::Table::try_from(config).expect("a model config is a TOML table");
            format!("[model]\n{table}")
        }
    }
}

/// A model with the weights of `path` (a checkpoint, run folder or Hugging Face folder) on `device`.
pub fn load_model(path: &Path, device: Device) -> TrainResult<(Model, nn::VarStore, Source)> {
    let source = Source::detect(path)?;
    let Some(config) = source.model_config()? else {
        return Err(TrainError::Config(format!(
            "{}: a bare weights file has no model config\nHINT: point at the checkpoint or Hugging Face folder that holds it",
            path.display()
        )));
    };
    let vs = nn::VarStore::new(device);
    let model = Model::new(&vs.root(), &config)?;
    source.load_into(&vs, config.family, config.tie_embeddings)?;
    Ok((model, vs, source))
}

/// Writes the rewarm checkpoint (or run folder's newest checkpoint) `from` as the Hugging Face folder
/// `out`: config.json, model.safetensors (copied; the names already are HF keys) and, if given,
/// tokenizer.json. The weights are checked by loading them into a fresh model first.
pub fn export_hf(from: &Path, out: &Path, tokenizer: Option<&Path>) -> TrainResult<()> {
    let dir = match Source::detect(from)? {
        Source::Checkpoint(dir) => dir,
        _ => {
            return Err(TrainError::Config(format!(
                "{}: not a rewarm checkpoint or run folder\nHINT: export takes a `ckpt/step_…` folder or a run folder",
                from.display()
            )))
        }
    };
    let (_, _, _) = load_model(&dir, Device::Cpu)?; // names, shapes and dtypes all check out
    let config = checkpoint_model_config(&dir)?;
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| TrainError::io(out, e))?
            .next()
            .is_some()
    {
        return Err(TrainError::Config(format!(
            "{}: already exists and is not empty\nHINT: choose a new --hf folder, or remove this one",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| TrainError::io(out, e))?;
    let convert = |e: rewarm_interop::InteropError| TrainError::Config(e.to_string());
    std::fs::copy(dir.join(MODEL_FILE), out.join(hf::WEIGHTS_FILE))
        .map_err(|e| TrainError::io(&out.join(hf::WEIGHTS_FILE), e))?;
    let mut hf_config = config.to_hf_config();
    if let Some(tokenizer) = tokenizer {
        let bytes = std::fs::read(tokenizer).map_err(|e| TrainError::io(tokenizer, e))?;
        tokenizers_check(tokenizer, &bytes)?;
        // The document separator the data was prepared with starts and ends sequences (as in Pythia's
        // config); without it transformers' `generate` would stop at its family default id instead.
        let eot = rewarm_data::tokenizer::Tokenizer::from_hf_file(tokenizer, None)
            .map_err(|e| TrainError::Config(e.to_string()))?
            .info()
            .eot_id;
        hf_config["bos_token_id"] = eot.into();
        hf_config["eos_token_id"] = eot.into();
        hf::write_synced(&out.join(hf::TOKENIZER_FILE), &bytes).map_err(convert)?;
    }
    hf::write_json(&out.join(hf::CONFIG_FILE), &hf_config).map_err(convert)?;
    Ok(())
}

fn tokenizers_check(path: &Path, bytes: &[u8]) -> TrainResult<()> {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .filter(|j| j.get("model").is_some())
        .map(|_| ())
        .ok_or_else(|| {
            TrainError::Config(format!(
                "{}: not a Hugging Face tokenizer.json\nHINT: pass the tokenizer.json the training data was prepared with",
                path.display()
            ))
        })
}
