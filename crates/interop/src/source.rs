//! Where pretrained weights come from — a rewarm checkpoint (or run folder), a Hugging Face folder, or a
//! bare `.safetensors` file — told apart by what is on disk, with no tensors read. `init_from` in a plan,
//! `rewarm sample`/`logits` and `rewarm export` all start here; loading the weights is
//! `rewarm_model::pretrained`'s job.

use crate::{hf, InteropError};
use rewarm_arch::ModelConfig;
use rewarm_runfolder::{CheckpointDir, RunDir};
use std::path::{Path, PathBuf};

type Result<T> = std::result::Result<T, InteropError>;

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

const POINT_AT: &str =
    "point at a rewarm checkpoint folder, a Hugging Face folder or a .safetensors file";

impl Source {
    /// Classifies `path`. A run folder resolves to its newest complete checkpoint.
    pub fn detect(path: &Path) -> Result<Source> {
        if path.is_file() {
            return Self::file(path);
        }
        if !path.is_dir() {
            return Err(InteropError::invalid(
                path.display(),
                "no such file or folder",
                "check the path (relative paths in a plan are relative to the plan file)",
            ));
        }
        let ckpt = checkpoint_dir(path);
        if ckpt.state().exists() {
            if !ckpt.done().exists() {
                return Err(InteropError::invalid(
                    path.display(),
                    "checkpoint has no DONE marker (incomplete)",
                    "use a complete checkpoint",
                ));
            }
            return Ok(Source::Checkpoint(path.to_owned()));
        }
        if hf::is_hf_folder(path) {
            return Ok(Source::HfFolder(path.to_owned()));
        }
        if let Some(newest) = RunDir::new(path).latest_checkpoint() {
            return Ok(Source::Checkpoint(newest.path));
        }
        if ckpt.model().is_file() {
            return Ok(Source::File(ckpt.model()));
        }
        // Only pickles (or nothing): let the HF folder logic name what is there.
        hf::weight_files(path)?;
        Err(InteropError::invalid(
            path.display(),
            "holds no weights rewarm can read",
            POINT_AT,
        ))
    }

    /// A file: safetensors is taken, pickles are refused, anything else is not weights.
    fn file(path: &Path) -> Result<Source> {
        let name = path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        if name.ends_with(".safetensors") {
            return Ok(Source::File(path.to_owned()));
        }
        let pickle = [".bin", ".pt", ".pth", ".ckpt"];
        if pickle.iter().any(|ext| name.ends_with(ext)) {
            return Err(InteropError::invalid(
                path.display(),
                format!("`{name}` is a PyTorch pickle, which rewarm never loads (unpickling can run code)"),
                "convert it to safetensors first, e.g. in Python: `AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out, safe_serialization=True)`",
            ));
        }
        Err(InteropError::invalid(
            path.display(),
            "not a weights file",
            POINT_AT,
        ))
    }

    /// The model this source describes (`None` for a bare file, which has no config).
    pub fn model_config(&self) -> Result<Option<ModelConfig>> {
        match self {
            Source::Checkpoint(dir) => checkpoint_model_config(dir).map(Some),
            Source::HfFolder(dir) => hf_model_config(dir).map(Some),
            Source::File(_) => Ok(None),
        }
    }
}

/// A checkpoint folder known by its path (its step is not needed to read it).
pub fn checkpoint_dir(path: &Path) -> CheckpointDir {
    CheckpointDir {
        step: 0,
        path: path.to_owned(),
    }
}

/// The model of a Hugging Face folder, from its config.json.
pub fn hf_model_config(dir: &Path) -> Result<ModelConfig> {
    let json = hf::read_config(dir)?;
    ModelConfig::from_hf_config(&json).map_err(|source| InteropError::Model {
        path: dir.join(hf::CONFIG_FILE),
        source,
    })
}

/// The model of a rewarm checkpoint, from its plan.json.
pub fn checkpoint_model_config(dir: &Path) -> Result<ModelConfig> {
    Ok(rewarm_runfolder::model_of(
        &checkpoint_dir(dir).plan_json(),
    )?)
}
