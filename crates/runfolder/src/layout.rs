//! Where everything is in a run folder and a sweep folder. Only this module spells the file names.
//!
//! ```text
//! run/
//!   plan.json          the resolved plan and model  (rewarm_plan::PlanFile)
//!   plan.toml          the plan a sweep wrote for this run (sweep runs only)
//!   environment.json   version, git revision, device  (crate::Environment)
//!   baselines.json     unigram and bigram loss of each validation set  (crate::Baselines)
//!   metrics.jsonl      train / eval / rollback records  (crate::Record)
//!   train.log          output of a run a parallel sweep trained in a child process
//!   LOCK, SWEEP_LOCK   held by the trainer / the sweep that claimed the run  (crate::RunLock)
//!   ckpt/step_XXXXXXXX/  model.safetensors, optimizer.safetensors, state.json, plan.json,
//!                        consumed.json, DONE
//! sweep/
//!   sweep.json         the runs' ids, labels and parameters  (crate::SweepIndex)
//!   <id>/              one run folder per grid point
//! ```

use std::path::{Path, PathBuf};

/// A run folder (it need not exist yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether `path` is a run folder: it holds `plan.json`.
    pub fn is_run(path: &Path) -> bool {
        path.join(PLAN_JSON).is_file()
    }

    pub fn plan_json(&self) -> PathBuf {
        self.root.join(PLAN_JSON)
    }

    pub fn plan_toml(&self) -> PathBuf {
        self.root.join("plan.toml")
    }

    pub fn environment(&self) -> PathBuf {
        self.root.join("environment.json")
    }

    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.jsonl")
    }

    /// `tensorboard/`: the event file mirroring metrics.jsonl ([`crate::tensorboard`]).
    pub fn tensorboard(&self) -> PathBuf {
        self.root.join("tensorboard")
    }

    /// `baselines.json` ([`crate::Baselines`]).
    pub fn baselines(&self) -> PathBuf {
        self.root.join("baselines.json")
    }

    pub fn train_log(&self) -> PathBuf {
        self.root.join("train.log")
    }

    /// The folder holding the checkpoints.
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("ckpt")
    }

    /// The checkpoint folder of step `step` (complete or not).
    pub fn checkpoint(&self, step: u64) -> CheckpointDir {
        CheckpointDir {
            step,
            path: self.checkpoints().join(step_dir_name(step)),
        }
    }
}

const PLAN_JSON: &str = "plan.json";

/// `step_XXXXXXXX`: checkpoint folders sort by name in step order.
pub fn step_dir_name(step: u64) -> String {
    format!("step_{step:08}")
}

/// One checkpoint folder: a step's weights, optimizer moments, counters and resolved plan, finished by
/// `DONE` (see `checkpoints`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointDir {
    pub step: u64,
    pub path: PathBuf,
}

impl CheckpointDir {
    /// Weights, by Hugging Face name (safetensors).
    pub fn model(&self) -> PathBuf {
        self.path.join("model.safetensors")
    }

    /// Adam's moments, `exp_avg.<name>` and `exp_avg_sq.<name>` (safetensors).
    pub fn optimizer(&self) -> PathBuf {
        self.path.join("optimizer.safetensors")
    }

    /// The exponential moving average of the weights, when the plan keeps one (`[ema]`), by the same
    /// names as the weights.
    pub fn ema(&self) -> PathBuf {
        self.path.join("ema.safetensors")
    }

    /// Reptile's anchor weights, in a stage with `reptile` (the weights' names).
    pub fn reptile_anchor(&self) -> PathBuf {
        self.path.join("reptile_anchor.safetensors")
    }

    /// The counters ([`crate::TrainState`]).
    pub fn state(&self) -> PathBuf {
        self.path.join("state.json")
    }

    /// What the run had consumed of each source ([`crate::Consumption`]).
    pub fn consumed(&self) -> PathBuf {
        self.path.join("consumed.json")
    }

    /// The plan the checkpoint was trained with (a copy of the run's plan.json).
    pub fn plan_json(&self) -> PathBuf {
        self.path.join(PLAN_JSON)
    }

    /// Written last: a folder without it is not a checkpoint.
    pub fn done(&self) -> PathBuf {
        self.path.join("DONE")
    }
}

/// A sweep folder: one run folder per grid point and an index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepDir {
    root: PathBuf,
}

impl SweepDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        SweepDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `sweep.json` ([`crate::SweepIndex`]).
    pub fn index(&self) -> PathBuf {
        self.root.join("sweep.json")
    }

    /// The run folder of the grid point `id`.
    pub fn run(&self, id: &str) -> RunDir {
        RunDir::new(self.root.join(id))
    }
}
