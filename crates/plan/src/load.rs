//! Reading a plan file (TOML, unknown keys rejected with their line and column) and `plan.json`, the
//! resolved plan a run folder keeps.

use crate::config::PlanConfig;
use crate::schedule::{RefineWeight, Schedule};
use crate::{Plan, PlanError};
use rewarm_runfolder::Record;
use std::path::{Path, PathBuf};

impl PlanConfig {
    /// Parses a plan; unknown keys and type errors name the file, line and key.
    pub fn from_toml(text: &str, file: &Path) -> Result<Self, PlanError> {
        toml::from_str(text).map_err(|e| PlanError {
            file: file.display().to_string(),
            field: e
                .span()
                .map(|s| place(text, s.start))
                .unwrap_or_else(|| "config".into()),
            why: e.message().trim_end().to_owned(),
            fix: "see docs/plan.md for every key and its allowed values; unknown keys are rejected so typos never pass silently".into(),
        })
    }

    /// Reads and parses a plan file, filling refined schedules from the runs they name.
    pub fn load(path: &Path) -> Result<Self, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|e| PlanError {
            file: path.display().to_string(),
            field: "file".into(),
            why: e.to_string(),
            fix: "pass the path of a plan .toml file".into(),
        })?;
        let mut config = Self::from_toml(&text, path)?;
        config.load_refined_schedules(path)?;
        Ok(config)
    }

    /// Refined schedules name a previous run's metrics.jsonl; its per-step `grad_norm`s become the
    /// schedule's multipliers (Defazio et al. 2023), so the resolved plan is self-contained.
    fn load_refined_schedules(&mut self, file: &Path) -> Result<(), PlanError> {
        let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
        for (s, stage) in self.stages.iter_mut().enumerate() {
            let Some((norms_file, weight)) = stage.schedule.unfilled_grad_norms() else {
                continue;
            };
            let err = |why: String| PlanError {
                file: file.display().to_string(),
                field: format!("stages[{s}].schedule.grad_norms"),
                why,
                fix:
                    "point at the metrics.jsonl of a finished run (its train lines carry grad_norm)"
                        .into(),
            };
            let norms = grad_norms(&base.join(norms_file), weight).map_err(err)?;
            stage
                .schedule
                .fill_refined_multipliers(&norms)
                .map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    }
}

impl Schedule {
    /// The gradient-norm file of a refined schedule whose multipliers are not filled in yet, and the norm
    /// its weight reads.
    fn unfilled_grad_norms(&self) -> Option<(PathBuf, RefineWeight)> {
        match self {
            Schedule::Refined(r) if r.multipliers.is_empty() => {
                Some((r.grad_norms.clone()?, r.weight))
            }
            _ => None,
        }
    }
}

/// The per-step gradient norms a run logged: ℓ2 (`grad_norm`) for `l2`, ℓ1 (`grad_norm_l1`) for `l1`.
fn grad_norms(metrics: &Path, weight: RefineWeight) -> Result<Vec<f64>, String> {
    let records = rewarm_runfolder::metrics_log::read(metrics).map_err(|e| e.to_string())?;
    let train = records.into_iter().filter_map(|r| match r {
        Record::Train(t) => Some(t),
        _ => None,
    });
    match weight {
        RefineWeight::L2 => Ok(train.map(|t| t.grad_norm).collect()),
        RefineWeight::L1 => train
            .map(|t| t.grad_norm_l1)
            .collect::<Option<Vec<f64>>>()
            .ok_or_else(|| {
                format!(
                    "{}: its train lines have no grad_norm_l1 (written by rewarm since it logs the ℓ1 norm); weight = \"l1\" needs it: retrain the run with this rewarm, or use weight = \"l2\"",
                    metrics.display()
                )
            }),
    }
}

/// `line L, column C` (1-based, columns in characters) of byte offset `at` in `text`, and the table it is
/// in (`in [model]`) when a table header comes before it.
fn place(text: &str, at: usize) -> String {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    let table = before
        .lines()
        .rev()
        .skip(1) // the line of the error itself
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or(l).trim());
    match table {
        Some(t) => format!("line {line}, column {column}, in {t}"),
        None => format!("line {line}, column {column}"),
    }
}

/// `plan.json` of a run folder and of each checkpoint: the plan as parsed and the model it resolved to.
pub type PlanFile = rewarm_runfolder::PlanFile<PlanConfig>;

/// The plan.json of a validated plan.
pub fn plan_file(plan: &Plan) -> PlanFile {
    PlanFile {
        plan: plan.config.clone(),
        model: plan.model.clone(),
    }
}
