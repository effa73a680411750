//! `state.json` of a checkpoint: the counters that, with the plan's seed, resume a run bit-exactly.

use crate::error::{Result, RunFolderError};
use crate::CheckpointDir;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

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
    /// Updates skipped as loss spikes (`guard.spikes`), all stages.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spikes_skipped: u64,
    /// The spike guard's trailing window (`guard.spikes`), to resume it exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike_window: Option<SpikeWindow>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The last steps' losses and gradient norms, oldest first, as the spike guard holds them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpikeWindow {
    pub losses: Vec<f64>,
    pub grad_norms: Vec<f64>,
}

impl TrainState {
    /// A run's state before its first step.
    pub fn start(data_fingerprint: String) -> Self {
        TrainState {
            step: 0,
            optimizer_step: 0,
            lr_scale: 1.0,
            rollbacks: 0,
            tokens_by_source: BTreeMap::new(),
            data_fingerprint,
            rewarm_version: env!("CARGO_PKG_VERSION").into(),
            spikes_skipped: 0,
            spike_window: None,
        }
    }

    /// The state saved in a checkpoint.
    pub fn load(ckpt: &CheckpointDir) -> Result<Self> {
        let path = ckpt.state();
        let text = std::fs::read_to_string(&path).map_err(|e| RunFolderError::io(&path, e))?;
        Self::parse(&path, &text)
    }

    /// The state in the text of a state.json read from `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| {
            RunFolderError::format(
                path,
                e.to_string(),
                "state.json is written by `rewarm train`; restore it or resume from another checkpoint",
            )
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("state serializes")
    }
}
