//! `sweep.json`: the runs of a sweep folder, with the label and grid values of each.

use crate::atomic::write_atomic;
use crate::error::{Result, RunFolderError};
use crate::SweepDir;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One run of a sweep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepEntry {
    /// The run folder's name (a hash of its resolved plan).
    pub id: String,
    /// What the run is, in words (`replay=0.25`, `union`): the report names runs by it. Runs that differ
    /// only in their seed share a label, and the report aggregates them (mean ± sd).
    pub label: String,
    /// The run's seed when the sweep trains several seeds of each point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The grid values of this run, by plan key.
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
    /// Steps its plan trains.
    pub steps: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SweepIndex {
    pub runs: Vec<SweepEntry>,
}

impl SweepIndex {
    /// Writes the index unless it already holds these runs (several sweeps may share a folder: readers
    /// never see it half-written).
    pub fn write(&self, sweep: &SweepDir) -> Result<()> {
        let path = sweep.index();
        let json = serde_json::to_string_pretty(self).expect("serializes");
        if std::fs::read(&path).is_ok_and(|old| old == json.as_bytes()) {
            return Ok(());
        }
        write_atomic(&path, json.as_bytes()).map_err(|e| RunFolderError::io(&path, e))
    }

    /// The index of a sweep folder; `None` when it has none (runs are then named by their folders).
    pub fn read(sweep: &SweepDir) -> Result<Option<Self>> {
        crate::json_file::read_if_present(
            &sweep.index(),
            "sweep.json is written by `rewarm sweep`; run the sweep again to rewrite it",
        )
    }

    /// The label of the run in folder `id`.
    pub fn label(&self, id: &str) -> Option<&str> {
        self.runs
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.label.as_str())
    }
}
