//! `environment.json`: what a run was trained with (rewritten at every start or resume).

use crate::atomic::write_atomic;
use crate::error::{Result, RunFolderError};
use crate::RunDir;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub rewarm_version: Option<String>,
    pub git_revision: Option<String>,
    pub libtorch: Option<String>,
    /// `Cpu` or `Cuda(N)`.
    pub device: Option<String>,
    /// Torch intra-op threads.
    pub threads: Option<i64>,
    /// Data-parallel processes.
    pub processes: Option<usize>,
    /// The checkpoint this start resumed from (`None`: a fresh start).
    pub resumed_from_step: Option<u64>,
}

impl Environment {
    pub fn write(&self, run: &RunDir) -> Result<()> {
        let path = run.environment();
        let json = serde_json::to_string_pretty(self).expect("serializes");
        write_atomic(&path, json.as_bytes()).map_err(|e| RunFolderError::io(&path, e))
    }

    /// The run's environment; an absent or unreadable file reads as empty (it is informational).
    pub fn read(run: &RunDir) -> Self {
        std::fs::read_to_string(run.environment())
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }
}
