//! Checkpoints: a folder `ckpt/step_XXXXXXXX/` holding `model.safetensors` (Hugging Face names),
//! `optimizer.safetensors` (Adam moments), `state.json` (counters) and `plan.json` (the resolved config).
//! It is written under a temporary name, every file is fsynced, `DONE` is written last, and the folder is
//! renamed into place: loaders ignore any folder without `DONE` (llm.c habit), so a crash mid-write never
//! leaves a checkpoint that looks complete.

use crate::error::{TrainError, TrainResult};
use crate::fault;
use rewarm_interop::hf::{self, StoredTensor, WeightDtype};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

pub const DONE: &str = "DONE";
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "state.json";
pub const PLAN_FILE: &str = "plan.json";

/// Training state besides tensors: counters only. Every random stream is derived from the plan's seed
/// and these counters, so nothing else is needed to resume bit-exactly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainState {
    /// Optimizer steps done (global).
    pub step: u64,
    /// Adam's step count since its last reset (bias correction).
    pub optimizer_step: u64,
    /// LR multiplier from non-finite rollbacks (1.0 unless the guard backed off).
    pub lr_scale: f64,
    pub rollbacks: u32,
    /// Tokens trained on, per source and replay, at `step` (for the reader; derivable from the plan).
    pub tokens_by_source: BTreeMap<String, u64>,
    /// Fingerprint of the data each source held (manifest hashes), checked on resume.
    pub data_fingerprint: String,
    /// The rewarm version that wrote this checkpoint.
    pub rewarm_version: String,
}

/// Removes checkpoint folders a killed writer left half-written (call while holding the run lock).
pub fn remove_partial(ckpt_root: &Path) {
    let Ok(entries) = std::fs::read_dir(ckpt_root) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().contains(".partial-") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

pub fn step_dir_name(step: u64) -> String {
    format!("step_{step:08}")
}

/// Complete checkpoints under `ckpt_root`, oldest first.
pub fn list_complete(ckpt_root: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(ckpt_root) else {
        return Vec::new();
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name.strip_prefix("step_")?.parse().ok()?;
            e.path().join(DONE).is_file().then(|| (step, e.path()))
        })
        .collect();
    found.sort();
    found
}

fn kind_dtype(kind: Kind) -> TrainResult<Dtype> {
    match kind {
        Kind::Float => Ok(Dtype::F32),
        Kind::BFloat16 => Ok(Dtype::BF16),
        Kind::Half => Ok(Dtype::F16),
        other => Err(TrainError::Checkpoint(format!(
            "cannot save tensors of kind {other:?}"
        ))),
    }
}

fn tensor_bytes(t: &Tensor) -> Vec<u8> {
    let t = t.detach().to_device(tch::Device::Cpu).contiguous();
    let numel = t.numel();
    let elt = t.kind().elt_size_in_bytes();
    let mut bytes = vec![0u8; numel * elt];
    t.copy_data_u8(&mut bytes, numel);
    bytes
}

/// Writes tensors to a safetensors file (sorted by name) and fsyncs it.
pub fn save_tensors(path: &Path, tensors: &[(String, &Tensor)]) -> TrainResult<()> {
    let mut owned = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        owned.push((
            name.clone(),
            kind_dtype(t.kind())?,
            t.size().iter().map(|&d| d as usize).collect::<Vec<_>>(),
            tensor_bytes(t),
        ));
    }
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, d, s, b)| {
            Ok((
                n.clone(),
                TensorView::new(*d, s.clone(), b)
                    .map_err(|e| TrainError::Checkpoint(e.to_string()))?,
            ))
        })
        .collect::<TrainResult<_>>()?;
    let bytes =
        safetensors::serialize(views, None).map_err(|e| TrainError::Checkpoint(e.to_string()))?;
    write_synced(path, &bytes)
}

/// Copies tensors from a safetensors file into `targets` (by name), checking every name, shape and dtype.
/// `what` names the file's role in errors ("checkpoint weights", "optimizer state").
pub fn load_tensors_into(path: &Path, targets: &[(String, Tensor)], what: &str) -> TrainResult<()> {
    load_tensors_from(&[path.to_owned()], targets, what, &|name| {
        Some(name.to_owned())
    })
}

/// Copies tensors from one or more safetensors files (shards) into `targets`, checking every name, shape
/// and dtype. `rename` maps a stored name to a target name, or to `None` for a stored tensor that is not
/// a parameter (e.g. a cached rotary table); every target must be filled exactly once and every other
/// stored tensor is an error.
pub fn load_tensors_from(
    files: &[PathBuf],
    targets: &[(String, Tensor)],
    what: &str,
    rename: &dyn Fn(&str) -> Option<String>,
) -> TrainResult<()> {
    let mut filled = vec![false; targets.len()];
    let index: BTreeMap<&str, usize> = targets
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    for path in files {
        let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
        let stored = hf::read_safetensors(&bytes, path)
            .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
        for view in &stored {
            let stored_name = view.name.as_str();
            let Some(name) = rename(stored_name) else {
                continue;
            };
            let Some(&i) = index.get(name.as_str()) else {
                return Err(TrainError::Checkpoint(format!(
                    "{}: {what} holds tensor `{stored_name}`, which the model lacks\nHINT: the checkpoint belongs to another architecture or size",
                    path.display()
                )));
            };
            if std::mem::replace(&mut filled[i], true) {
                return Err(TrainError::Checkpoint(format!(
                    "{}: {what} holds tensor `{name}` twice (under `{stored_name}`)\nHINT: the checkpoint's shards overlap; download them again",
                    path.display()
                )));
            }
            copy_view(path, &name, view, &targets[i].1, what)?;
        }
    }
    if let Some(i) = filled.iter().position(|f| !f) {
        return Err(TrainError::Checkpoint(format!(
            "{}: {what} lacks {} tensors the model has, e.g. `{}`\nHINT: the checkpoint belongs to another architecture",
            files.first().map_or(String::new(), |f| f.display().to_string()),
            filled.iter().filter(|f| !**f).count(),
            targets[i].0
        )));
    }
    Ok(())
}

fn copy_view(
    path: &Path,
    name: &str,
    view: &StoredTensor,
    target: &Tensor,
    what: &str,
) -> TrainResult<()> {
    let want: Vec<usize> = target.size().iter().map(|&d| d as usize).collect();
    if view.shape != want {
        return Err(TrainError::Checkpoint(format!(
            "{}: {what} tensor `{name}` has shape {:?}, the model needs {want:?}\nHINT: the checkpoint was made for another model shape; use the same model preset and overrides",
            path.display(),
            view.shape
        )));
    }
    let kind = match view.dtype {
        Some(WeightDtype::F32) => Kind::Float,
        Some(WeightDtype::BF16) => Kind::BFloat16,
        Some(WeightDtype::F16) => Kind::Half,
        None => {
            return Err(TrainError::Checkpoint(format!(
            "{}: tensor `{name}` has unsupported dtype {}\nHINT: store weights as F32, BF16 or F16",
            path.display(),
            view.dtype_name
        )))
        }
    };
    let shape: Vec<i64> = want.iter().map(|&d| d as i64).collect();
    let src = Tensor::f_from_data_size(view.data, &shape, kind)
        .map_err(|e| TrainError::Checkpoint(e.to_string()))?;
    tch::no_grad(|| {
        target
            .shallow_clone()
            .copy_(&src.to_kind(target.kind()).to_device(target.device()))
    });
    Ok(())
}

pub fn write_synced(path: &Path, bytes: &[u8]) -> TrainResult<()> {
    let mut f = std::fs::File::create(path).map_err(|e| TrainError::io(path, e))?;
    f.write_all(bytes).map_err(|e| TrainError::io(path, e))?;
    f.sync_all().map_err(|e| TrainError::io(path, e))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Everything one checkpoint holds, borrowed from the trainer.
pub struct CheckpointData<'a> {
    pub weights: Vec<(String, &'a Tensor)>,
    pub optimizer: Vec<(String, &'a Tensor)>,
    pub state: &'a TrainState,
    pub plan_json: &'a str,
}

/// Writes a complete checkpoint for `state.step` under `ckpt_root`; returns its folder. On an error the
/// temporary folder is removed and every complete checkpoint is left as it was.
pub fn save(ckpt_root: &Path, data: &CheckpointData) -> TrainResult<PathBuf> {
    std::fs::create_dir_all(ckpt_root).map_err(|e| TrainError::io(ckpt_root, e))?;
    let name = step_dir_name(data.state.step);
    let final_dir = ckpt_root.join(&name);
    let tmp = ckpt_root.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let inject =
        |point: &str, next: &Path| fault::point(point).map_err(|e| TrainError::io(next, e));
    let result = (|| {
        std::fs::create_dir(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
        inject("checkpoint:begin", &tmp.join(MODEL_FILE))?;
        save_tensors(&tmp.join(MODEL_FILE), &data.weights)?;
        inject("checkpoint:after-weights", &tmp.join(OPTIMIZER_FILE))?;
        save_tensors(&tmp.join(OPTIMIZER_FILE), &data.optimizer)?;
        inject("checkpoint:after-optimizer", &tmp.join(STATE_FILE))?;
        let state = serde_json::to_string_pretty(data.state).expect("state serializes");
        write_synced(&tmp.join(STATE_FILE), state.as_bytes())?;
        write_synced(&tmp.join(PLAN_FILE), data.plan_json.as_bytes())?;
        inject("checkpoint:before-done", &tmp.join(DONE))?;
        write_synced(&tmp.join(DONE), b"")?;
        sync_dir(&tmp);
        inject("checkpoint:before-rename", &final_dir)?;
        if final_dir.exists() {
            // A step written again (the step-0 checkpoint of a `rollback` run that restarts at step 0):
            // move the old one aside atomically, so no half-deleted folder ever carries the final name.
            remove(&final_dir)?;
        }
        std::fs::rename(&tmp, &final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
        sync_dir(ckpt_root);
        inject("checkpoint:after-rename", &final_dir)?;
        Ok(final_dir.clone())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// Deletes a checkpoint folder without ever leaving a half-deleted folder under a checkpoint's name: it
/// is first renamed to `.step_XXXXXXXX.partial-delete-<pid>` (atomic; loaders ignore that name and the
/// next start removes it if this process dies first), then removed.
pub fn remove(dir: &Path) -> TrainResult<()> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let aside = dir.with_file_name(format!(".{name}.partial-delete-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::rename(dir, &aside).map_err(|e| TrainError::io(dir, e))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent);
    }
    fault::point("retention:mid-delete").map_err(|e| TrainError::io(&aside, e))?;
    std::fs::remove_dir_all(&aside).map_err(|e| TrainError::io(&aside, e))
}

pub fn load_state(dir: &Path) -> TrainResult<TrainState> {
    let path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::io(&path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| TrainError::Checkpoint(format!("{}: {e}", path.display())))
}

/// Keep or delete, for one checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retain {
    Keep,
    Delete,
}

/// Which checkpoints to keep: the newest `keep_last`, every stage end if `keep_stage_ends`, and always the
/// newest one (so retention never deletes the last complete checkpoint). Pure: `steps` sorted ascending.
pub fn retention(
    steps: &[u64],
    is_stage_end: impl Fn(u64) -> bool,
    keep_last: usize,
    keep_stage_ends: bool,
) -> Vec<(u64, Retain)> {
    let n = steps.len();
    steps
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let newest = i + keep_last.max(1) >= n;
            let keep = newest || (keep_stage_ends && is_stage_end(s));
            (s, if keep { Retain::Keep } else { Retain::Delete })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_keeps_newest_and_stage_ends() {
        let steps = [10, 20, 30, 40, 50];
        let plan = retention(&steps, |s| s == 20, 2, true);
        let kept: Vec<u64> = plan
            .iter()
            .filter(|(_, r)| *r == Retain::Keep)
            .map(|(s, _)| *s)
            .collect();
        assert_eq!(kept, [20, 40, 50]);
        // keep_last = 0 still keeps the newest complete checkpoint.
        let plan = retention(&steps, |_| false, 0, false);
        assert_eq!(plan.iter().filter(|(_, r)| *r == Retain::Keep).count(), 1);
        assert_eq!(plan[4], (50, Retain::Keep));
    }

    #[test]
    fn folders_without_done_are_ignored_and_tensors_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::from_slice(&[1.5f32, -2.0, 3.25]).reshape([3, 1]);
        let state = TrainState {
            step: 7,
            optimizer_step: 7,
            lr_scale: 1.0,
            rollbacks: 0,
            tokens_by_source: BTreeMap::new(),
            data_fingerprint: String::new(),
            rewarm_version: "test".into(),
        };
        let data = CheckpointData {
            weights: vec![("w".into(), &t)],
            optimizer: vec![],
            state: &state,
            plan_json: "{}",
        };
        save(dir.path(), &data).unwrap();
        std::fs::create_dir_all(dir.path().join("step_00000009")).unwrap(); // no DONE
        let found = list_complete(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, 7);
        let target = Tensor::zeros([3, 1], (Kind::Float, tch::Device::Cpu));
        load_tensors_into(
            &found[0].1.join(MODEL_FILE),
            &[("w".into(), target.shallow_clone())],
            "weights",
        )
        .unwrap();
        assert!(target.equal(&t));
        let wrong = Tensor::zeros([1, 3], (Kind::Float, tch::Device::Cpu));
        let err = load_tensors_into(
            &found[0].1.join(MODEL_FILE),
            &[("w".into(), wrong)],
            "weights",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("`w`") && err.contains("[3, 1]") && err.contains("HINT"),
            "{err}"
        );
        assert_eq!(load_state(&found[0].1).unwrap(), state);
    }
}
