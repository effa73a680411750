//! `plan.json` of a run folder and of each checkpoint: the plan as parsed and the model it resolved to.
//! Resuming compares the text byte for byte, so a run never continues under another plan. The plan's own
//! type lives in `rewarm-plan` (`rewarm_plan::PlanFile`); a reader that needs only the model reads
//! `PlanFile<serde::de::IgnoredAny>`.

use crate::atomic::write_atomic;
use crate::error::{Result, RunFolderError};
use rewarm_arch::ModelConfig;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanFile<P> {
    pub plan: P,
    pub model: ModelConfig,
}

impl<P: Serialize> PlanFile<P> {
    /// The exact text written to plan.json: pretty JSON with every object's keys sorted, so the text
    /// depends on the plan's content only, never on the order of fields in rewarm's types.
    pub fn to_json(&self) -> String {
        let value = serde_json::to_value(self).expect("a plan serializes");
        serde_json::to_string_pretty(&value).expect("a JSON value serializes")
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(path, self.to_json().as_bytes()).map_err(|e| RunFolderError::io(path, e))
    }
}

impl<P: DeserializeOwned> PlanFile<P> {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            RunFolderError::format(
                path,
                e.to_string(),
                "pass a run folder written by `rewarm train` (it holds plan.json and metrics.jsonl)",
            )
        })?;
        serde_json::from_str(&text).map_err(|e| {
            RunFolderError::format(
                path,
                e.to_string(),
                "plan.json is {\"plan\": …, \"model\": …} as `rewarm train` writes it; a checkpoint of another rewarm version may need that version",
            )
        })
    }
}

/// The model of a run folder or checkpoint, from its plan.json.
pub fn model_of(plan_json: &Path) -> Result<ModelConfig> {
    Ok(PlanFile::<serde::de::IgnoredAny>::read(plan_json)?.model)
}
