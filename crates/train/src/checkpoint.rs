//! Checkpoints of a run's tensors: a folder `ckpt/step_XXXXXXXX/` (layout in `rewarm_runfolder::layout`)
//! holding `model.safetensors` (Hugging Face names), `optimizer.safetensors` (Adam moments), with `[ema]`
//! `ema.safetensors` (the weights' moving average), in a stage with Reptile `reptile_anchor.safetensors`,
//! `state.json`
//! (counters) and `plan.json` (the resolved config). It is written under a temporary name, every file is
//! fsynced, `DONE` is written last with the content hash of each file, and the folder is renamed into
//! place: loaders ignore any folder without `DONE` (llm.c habit), so a crash mid-write never leaves a
//! checkpoint that looks complete, and resume checks the hashes, so one damaged later is not loaded.

use crate::error::{TrainError, TrainResult};
use crate::optim::AdamW;
use rewarm_model::weights::{load_tensors_into, save_tensors, sorted_variables};
use rewarm_runfolder::atomic::{replace_folder, write_synced};
use rewarm_runfolder::{fault, CheckpointDir, RunDir, RunFolderError, TrainState};
use std::path::Path;
use tch::{nn, Tensor};

/// Everything one checkpoint holds, borrowed from the trainer.
pub struct CheckpointData<'a> {
    pub weights: Vec<(String, &'a Tensor)>,
    pub optimizer: Vec<(String, &'a Tensor)>,
    /// The weights' moving average (`[ema]`); empty: none, and no file.
    pub ema: Vec<(String, &'a Tensor)>,
    /// Reptile's anchor (a stage with `reptile`); empty: none, and no file.
    pub reptile_anchor: Vec<(String, &'a Tensor)>,
    pub state: &'a TrainState,
    pub plan_json: &'a str,
    /// `consumed.json`: what the run had drawn of each source.
    pub consumed_json: &'a str,
}

/// The optimizer's moments under their checkpoint names (`exp_avg.<param>`, `exp_avg_sq.<param>`).
pub fn moments(opt: &AdamW) -> Vec<(String, Tensor)> {
    let mut moments = Vec::new();
    for s in &opt.slots {
        moments.push((format!("exp_avg.{}", s.name), s.exp_avg.shallow_clone()));
        moments.push((
            format!("exp_avg_sq.{}", s.name),
            s.exp_avg_sq.shallow_clone(),
        ));
    }
    moments
}

/// Writes a complete checkpoint for `state.step` into `run`; returns its folder. On an error the
/// temporary folder is removed and every complete checkpoint is left as it was.
pub fn save(run: &RunDir, data: &CheckpointData) -> TrainResult<CheckpointDir> {
    let root = run.checkpoints();
    std::fs::create_dir_all(&root).map_err(|e| TrainError::io(&root, e))?;
    let done = run.checkpoint(data.state.step);
    let tmp = CheckpointDir {
        step: data.state.step,
        path: run.partial_checkpoint(data.state.step),
    };
    let _ = std::fs::remove_dir_all(&tmp.path);
    let result = write_files(&tmp, data).and_then(|()| commit(&tmp, &done));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp.path);
    }
    result.map(|()| done)
}

/// Visits a fault point (reliability tests); `next` is the file an injected failure is reported on.
fn inject(point: &str, next: &Path) -> TrainResult<()> {
    fault::point(point).map_err(|e| TrainError::io(next, e))
}

fn write_files(tmp: &CheckpointDir, data: &CheckpointData) -> TrainResult<()> {
    let synced =
        |path: &Path, bytes: &[u8]| write_synced(path, bytes).map_err(|e| TrainError::io(path, e));
    std::fs::create_dir(&tmp.path).map_err(|e| TrainError::io(&tmp.path, e))?;
    inject("checkpoint:begin", &tmp.model())?;
    save_tensors(&tmp.model(), &data.weights)?;
    inject("checkpoint:after-weights", &tmp.optimizer())?;
    save_tensors(&tmp.optimizer(), &data.optimizer)?;
    if !data.ema.is_empty() {
        save_tensors(&tmp.ema(), &data.ema)?;
    }
    if !data.reptile_anchor.is_empty() {
        save_tensors(&tmp.reptile_anchor(), &data.reptile_anchor)?;
    }
    inject("checkpoint:after-optimizer", &tmp.state())?;
    synced(&tmp.state(), data.state.to_json().as_bytes())?;
    synced(&tmp.plan_json(), data.plan_json.as_bytes())?;
    synced(&tmp.consumed(), data.consumed_json.as_bytes())?;
    inject("checkpoint:before-done", &tmp.done())?;
    Ok(tmp.write_done()?)
}

fn commit(tmp: &CheckpointDir, done: &CheckpointDir) -> TrainResult<()> {
    inject("checkpoint:before-rename", &done.path)?;
    // A step written again (the step-0 checkpoint of a `rollback` run that restarts at step 0) is
    // exchanged with the old one in a single rename, so the step never lacks a complete checkpoint.
    replace_folder(&tmp.path, &done.path).map_err(|e| TrainError::io(&done.path, e))?;
    inject("checkpoint:after-rename", &done.path)
}

/// Restores a checkpoint into the model's variables and the optimizer's moments; returns its counters.
pub fn load(ckpt: &CheckpointDir, vs: &nn::VarStore, opt: &mut AdamW) -> TrainResult<TrainState> {
    let state = TrainState::load(ckpt)?;
    load_tensors_into(&ckpt.model(), &sorted_variables(vs), "checkpoint weights")?;
    load_tensors_into(&ckpt.optimizer(), &moments(opt), "optimizer state")?;
    opt.step = state.optimizer_step;
    Ok(state)
}

/// The plan.json a checkpoint was trained with, as text (resume compares it byte for byte).
pub fn plan_json(ckpt: &CheckpointDir) -> TrainResult<String> {
    let path = ckpt.plan_json();
    std::fs::read_to_string(&path).map_err(|e| RunFolderError::io(&path, e).into())
}
