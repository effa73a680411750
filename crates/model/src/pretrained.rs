//! Weights from outside the run: `init_from` (a rewarm checkpoint, a Hugging Face folder, or a
//! `.safetensors` file), a model loaded for inference (`rewarm sample`), and a checkpoint exported as a
//! Hugging Face folder (`rewarm export`). See docs/interop.md.
//!
//! A Hugging Face folder is recognised by its `config.json`. Its model is read from there
//! ([`ModelConfig::from_hf_config`]) and, for `init_from`, must equal the plan's `[model]` in every field
//! but `max_seq_len` (the rotary tables are computed, so any context length loads the same weights).
//! Weights come from `model.safetensors` or the shards of `model.safetensors.index.json`; pickle
//! checkpoints (`pytorch_model.bin`) are refused, never unpickled.

use crate::weights::{load_tensors_from, load_tensors_into, save_tensors, sorted_variables};
use crate::{Family, Model, ModelConfig, ModelError, ModelTable};
use rewarm_interop::hf;
use rewarm_interop::source::{self, checkpoint_dir};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

type Result<T> = std::result::Result<T, ModelError>;

fn weights_error(message: String) -> ModelError {
    ModelError::Weights(message)
}

pub use rewarm_interop::source::Source;

/// Classifies `path` ([`Source::detect`]) with the model crate's error.
pub fn detect(path: &Path) -> Result<Source> {
    Source::detect(path).map_err(interop_error)
}

fn interop_error(e: rewarm_interop::InteropError) -> ModelError {
    weights_error(e.to_string())
}

/// The model `source` describes (`None` for a bare file, which has no config).
pub fn model_config(source: &Source) -> Result<Option<ModelConfig>> {
    source.model_config().map_err(interop_error)
}

/// Copies the weights of `source` into `vs`, whose variables must match them one to one (names, shapes);
/// a rewarm checkpoint's files are first checked against the hashes its `DONE` recorded.
pub fn load_into(source: &Source, vs: &nn::VarStore, family: Family, tied: bool) -> Result<()> {
    let targets = sorted_variables(vs);
    match source {
        Source::Checkpoint(dir) => {
            // The files must be those the checkpoint was written with (hashes in DONE).
            let ckpt = checkpoint_dir(dir);
            ckpt.verify().map_err(|e| weights_error(e.to_string()))?;
            load_tensors_into(&ckpt.model(), &targets, "checkpoint weights")
        }
        Source::File(file) => load_tensors_into(file, &targets, "weights"),
        Source::HfFolder(dir) => {
            let files = hf::weight_files(dir).map_err(interop_error)?;
            load_tensors_from(&files, &targets, "Hugging Face weights", &|name| {
                hf_name(name, family, tied)
            })
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

/// The model of a Hugging Face folder, from its config.json.
pub fn hf_model_config(dir: &Path) -> Result<ModelConfig> {
    source::hf_model_config(dir).map_err(interop_error)
}

/// The model of a rewarm checkpoint, from its plan.json.
pub fn checkpoint_model_config(dir: &Path) -> Result<ModelConfig> {
    source::checkpoint_model_config(dir).map_err(interop_error)
}

/// `init_from`: the weights of `path` into `vs`. A Hugging Face folder's config.json must describe the
/// plan's `model`; a rewarm checkpoint is checked by names and shapes only, so that a continued run may
/// change what shapes do not show (e.g. rope_theta, as in context extension).
pub fn init_weights(path: &Path, vs: &nn::VarStore, model: &ModelConfig) -> Result<()> {
    let source = detect(path)?;
    if let Source::HfFolder(dir) = &source {
        let theirs = hf_model_config(dir)?;
        if let Some((field, ours, stored)) = model.first_difference(&theirs) {
            return Err(weights_error(format!(
                "init_from = {}: its model has {field} = {stored} but the plan's [model] has {field} = {ours}\nHINT: make [model] match the folder's config.json (max_seq_len may differ), i.e.\n{}",
                path.display(),
                ModelTable::for_config(&theirs).to_plan_toml()
            )));
        }
    }
    load_into(&source, vs, model.family, model.tie_embeddings)
}

/// A model with the weights of `path` (a checkpoint, run folder or Hugging Face folder) on `device`.
pub fn load_model(path: &Path, device: Device) -> Result<(Model, nn::VarStore, Source)> {
    let source = detect(path)?;
    let Some(config) = model_config(&source)? else {
        return Err(weights_error(format!(
            "{}: a bare weights file has no model config\nHINT: point at the checkpoint or Hugging Face folder that holds it",
            path.display()
        )));
    };
    let vs = nn::VarStore::new(device);
    let model = Model::new(&vs.root(), &config)?;
    load_into(&source, &vs, config.family, config.tie_embeddings)?;
    Ok((model, vs, source))
}

/// The tokenizer an exported folder carries: its tokenizer.json and its end-of-text id (which the data
/// was prepared with, read by the caller's tokenizer library).
pub struct ExportTokenizer<'a> {
    pub path: &'a Path,
    pub eot_id: u32,
}

/// How [`export_hf`] writes the weights.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExportOptions {
    /// bf16 instead of f32 (half the bytes; rewarm's checkpoints stay f32).
    pub bf16: bool,
    /// Shards of at most this many bytes, as transformers' `max_shard_size` (a tensor larger than that
    /// gets a shard of its own); one `model.safetensors` when everything fits.
    pub max_shard_bytes: u64,
}

impl Default for ExportOptions {
    /// f32, shards of 5 GB (transformers' default).
    fn default() -> Self {
        ExportOptions {
            bf16: false,
            max_shard_bytes: 5_000_000_000,
        }
    }
}

/// Writes the rewarm checkpoint (or run folder's newest checkpoint) `from` as the Hugging Face folder
/// `out`: config.json, the weights (HF keys, in `options`' dtype, sharded with
/// `model.safetensors.index.json` past `options.max_shard_bytes`) and, if given, tokenizer.json. The
/// weights are checked by loading them into a fresh model first.
pub fn export_hf(
    from: &Path,
    out: &Path,
    tokenizer: Option<ExportTokenizer>,
    options: ExportOptions,
) -> Result<()> {
    let dir = match detect(from)? {
        Source::Checkpoint(dir) => dir,
        _ => {
            return Err(weights_error(format!(
                "{}: not a rewarm checkpoint or run folder\nHINT: export takes a `ckpt/step_…` folder or a run folder",
                from.display()
            )))
        }
    };
    let (_, vs, _) = load_model(&dir, Device::Cpu)?; // names, shapes and dtypes all check out
    let config = checkpoint_model_config(&dir)?;
    if out.exists()
        && std::fs::read_dir(out)
            .map_err(|e| ModelError::io(out, e))?
            .next()
            .is_some()
    {
        return Err(weights_error(format!(
            "{}: already exists and is not empty\nHINT: choose a new --hf folder, or remove this one",
            out.display()
        )));
    }
    std::fs::create_dir_all(out).map_err(|e| ModelError::io(out, e))?;
    let convert = |e: rewarm_interop::InteropError| weights_error(e.to_string());
    write_weights(&vs, out, options)?;
    let mut hf_config = config.to_hf_config();
    if options.bf16 {
        hf_config["torch_dtype"] = "bfloat16".into();
    }
    if let Some(tokenizer) = tokenizer {
        let bytes = check_tokenizer_json(tokenizer.path)?;
        // The document separator the data was prepared with starts and ends sequences (as in Pythia's
        // config); without it transformers' `generate` would stop at its family default id instead.
        hf_config["bos_token_id"] = tokenizer.eot_id.into();
        hf_config["eos_token_id"] = tokenizer.eot_id.into();
        hf::write_synced(&out.join(hf::TOKENIZER_FILE), &bytes).map_err(convert)?;
    }
    hf::write_json(&out.join(hf::CONFIG_FILE), &hf_config).map_err(convert)?;
    Ok(())
}

/// The weights of `vs` into `out`: one `model.safetensors`, or shards named as transformers names them
/// plus `model.safetensors.index.json` (total size and which shard holds each tensor).
fn write_weights(vs: &nn::VarStore, out: &Path, options: ExportOptions) -> Result<()> {
    let kind = if options.bf16 {
        Kind::BFloat16
    } else {
        Kind::Float
    };
    let tensors: Vec<(String, Tensor)> = sorted_variables(vs)
        .into_iter()
        .map(|(name, t)| (name, t.to_kind(kind)))
        .collect();
    let bytes: Vec<u64> = tensors
        .iter()
        .map(|(_, t)| (t.numel() * kind.elt_size_in_bytes()) as u64)
        .collect();
    let shards = shard_plan(&bytes, options.max_shard_bytes);
    let refs = |ids: &[usize]| -> Vec<(String, &Tensor)> {
        ids.iter()
            .map(|&i| (tensors[i].0.clone(), &tensors[i].1))
            .collect()
    };
    if shards.len() == 1 {
        return save_tensors(&out.join(hf::WEIGHTS_FILE), &refs(&shards[0]));
    }
    let mut weight_map = serde_json::Map::new();
    for (k, ids) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", k + 1, shards.len());
        save_tensors(&out.join(&file), &refs(ids))?;
        for &i in ids {
            weight_map.insert(tensors[i].0.clone(), file.clone().into());
        }
    }
    let index = serde_json::json!({
        "metadata": { "total_size": bytes.iter().sum::<u64>() },
        "weight_map": weight_map,
    });
    hf::write_json(&out.join(hf::INDEX_FILE), &index).map_err(|e| weights_error(e.to_string()))
}

/// Tensors (by their byte sizes, in file order) into consecutive shards of at most `max` bytes; a tensor
/// larger than `max` gets a shard of its own.
pub fn shard_plan(bytes: &[u64], max: u64) -> Vec<Vec<usize>> {
    let mut shards: Vec<Vec<usize>> = vec![Vec::new()];
    let mut size = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let last = shards.last_mut().expect("one shard at least");
        if !last.is_empty() && size + b > max {
            shards.push(vec![i]);
            size = b;
        } else {
            last.push(i);
            size += b;
        }
    }
    shards
}

/// The bytes of `path` if it is a Hugging Face tokenizer.json (a JSON object with a `model`).
pub fn check_tokenizer_json(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(|j| j.get("model").is_some())
        .map(|_| bytes.clone())
        .ok_or_else(|| {
            weights_error(format!(
                "{}: not a Hugging Face tokenizer.json\nHINT: pass the tokenizer.json the training data was prepared with",
                path.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::shard_plan;

    #[test]
    fn shards_fill_up_to_the_limit_and_a_big_tensor_stands_alone() {
        assert_eq!(shard_plan(&[4, 4, 4], 100), [vec![0, 1, 2]]);
        assert_eq!(shard_plan(&[4, 4, 4, 4], 8), [vec![0, 1], vec![2, 3]]);
        assert_eq!(
            shard_plan(&[3, 20, 3, 3], 8),
            [vec![0], vec![1], vec![2, 3]]
        );
    }
}
