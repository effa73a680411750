//! A run folder read back: `plan.json` (`{"plan": PlanConfig, "model": ModelConfig}`), `metrics.jsonl`
//! (`train`, `eval` and `rollback` records, see `rewarm-train`'s trainer) and `environment.json`.
//!
//! Steps count *steps done*: a `train` record with `step = s` is written after the s-th optimizer step, and
//! an `eval` record with `step = s` evaluates the model after s steps. A stage's boundary is its
//! `first_step`, the steps done before it starts, so the eval at a boundary is both the end of the stage
//! before and the starting point of the stage after.

use crate::ReportError;
use rewarm_plan::{Plan, PlanConfig};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One evaluation of one validation set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalPoint {
    pub step: u64,
    pub tokens: u64,
    pub loss: f64,
}

/// One logged training step.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainPoint {
    pub step: u64,
    pub stage: String,
    pub tokens: u64,
    pub lr: f64,
    pub loss: f64,
    pub replay_fraction: f64,
    pub tokens_by_source: BTreeMap<String, u64>,
}

/// A stage as the report needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct StageInfo {
    pub name: String,
    /// Steps done before the stage starts (its boundary).
    pub first_step: u64,
    /// Tokens seen (run-wide) before the stage.
    pub tokens_before: u64,
    /// Sources in the stage's mixture (new data; replayed sources are not "trained on" here).
    pub sources: Vec<String>,
    /// Planned replay fraction ρ.
    pub replay_fraction: f64,
}

/// Where the stage boundaries came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoundarySource {
    /// Recomputed from plan.json with `rewarm-plan` (exact).
    Plan,
    /// The first logged train record of each stage (exact when every step is logged).
    Metrics,
}

/// The model fields the report uses (FLOPs per token); unknown fields are ignored.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ModelView {
    #[serde(default)]
    pub family: String,
    pub vocab_size: u64,
    pub hidden_size: u64,
    pub num_layers: u64,
    pub num_heads: u64,
    pub num_kv_heads: u64,
    pub intermediate_size: u64,
    pub max_seq_len: u64,
    #[serde(default)]
    pub tie_embeddings: bool,
}

/// Everything the report reads from one run folder.
#[derive(Clone, Debug)]
pub struct RunData {
    /// Display name; runs are sorted by it.
    pub name: String,
    /// Name used to match the same method across workloads (performance profiles): the label inside a
    /// sweep, else `name`.
    pub method: String,
    /// The workload (sweep folder name) the run belongs to; `None` for runs given directly.
    pub group: Option<String>,
    pub dir: PathBuf,
    pub stages: Vec<StageInfo>,
    pub boundaries_from: BoundarySource,
    /// Steps the plan asks for (None when plan.json could not be resolved).
    pub planned_steps: Option<u64>,
    pub seq_len: Option<u64>,
    pub model: Option<ModelView>,
    /// The plan's `init_from` (weights from another run): all of this run's tokens are continued training.
    pub init_from: Option<String>,
    /// Validation set → points sorted by step (one per step: the last record wins after a rollback).
    pub evals: BTreeMap<String, Vec<EvalPoint>>,
    pub train: Vec<TrainPoint>,
    pub rollbacks: usize,
    /// `environment.json` fields shown in the runs table.
    pub device: Option<String>,
    pub rewarm_version: Option<String>,
}

#[derive(Deserialize)]
struct PlanFile {
    plan: serde_json::Value,
    #[serde(default)]
    model: Option<serde_json::Value>,
}

impl RunData {
    /// Reads `run_dir`. Errors name the file and say what to do.
    pub fn load(run_dir: &Path) -> Result<RunData, ReportError> {
        let name = run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| run_dir.display().to_string());
        let plan_path = run_dir.join("plan.json");
        let text = std::fs::read_to_string(&plan_path).map_err(|e| {
            ReportError::new(
                &plan_path,
                e.to_string(),
                "pass a run folder written by `rewarm train` (it holds plan.json and metrics.jsonl)",
            )
        })?;
        let file: PlanFile = serde_json::from_str(&text).map_err(|e| {
            ReportError::new(
                &plan_path,
                e.to_string(),
                "plan.json is {\"plan\": …, \"model\": …} as `rewarm train` writes it",
            )
        })?;
        let model: Option<ModelView> = file
            .model
            .as_ref()
            .and_then(|m| serde_json::from_value(m.clone()).ok());
        let (train, evals, rollbacks) = read_metrics(&run_dir.join("metrics.jsonl"))?;

        // Exact boundaries from the plan when it parses as the current PlanConfig; else from the records,
        // so that old run folders still report.
        let resolved = serde_json::from_value::<PlanConfig>(file.plan.clone())
            .ok()
            .zip(model.as_ref())
            .and_then(|(config, m)| Plan::new(config, &plan_path, m.max_seq_len as usize).ok());
        let (stages, boundaries_from, planned_steps, seq_len) = match &resolved {
            Some(plan) => (
                plan.stages
                    .iter()
                    .map(|s| StageInfo {
                        name: s.name.clone(),
                        first_step: s.first_step,
                        tokens_before: s.tokens_before,
                        sources: s
                            .mixture
                            .iter()
                            .map(|&(k, _)| plan.sources[k].name.clone())
                            .collect(),
                        replay_fraction: s.replay.as_ref().map_or(0.0, |r| r.fraction),
                    })
                    .collect(),
                BoundarySource::Plan,
                Some(plan.total_steps),
                Some(plan.seq_len as u64),
            ),
            None => (
                stages_from_records(&file.plan, &train),
                BoundarySource::Metrics,
                None,
                file.plan
                    .pointer("/data/seq_len")
                    .and_then(|v| v.as_u64())
                    .or(model.as_ref().map(|m| m.max_seq_len)),
            ),
        };
        if stages.is_empty() {
            return Err(ReportError::new(
                &plan_path,
                "no stages".into(),
                "plan.json must hold the plan the run was trained with",
            ));
        }
        let env: serde_json::Value = std::fs::read_to_string(run_dir.join("environment.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        let string = |k: &str| env.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(RunData {
            method: name.clone(),
            name,
            group: None,
            dir: run_dir.to_path_buf(),
            stages,
            boundaries_from,
            planned_steps,
            seq_len,
            model,
            init_from: file
                .plan
                .get("init_from")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            evals,
            train,
            rollbacks,
            device: string("device"),
            rewarm_version: string("rewarm_version"),
        })
    }

    /// Boundaries: the first step of each stage (0 for the first).
    pub fn boundaries(&self) -> Vec<u64> {
        self.stages.iter().map(|s| s.first_step).collect()
    }

    /// Steps done at the end of the records (the last train or eval record).
    pub fn last_step(&self) -> u64 {
        let t = self.train.last().map_or(0, |p| p.step);
        let e = self
            .evals
            .values()
            .filter_map(|s| s.last())
            .map(|p| p.step)
            .max()
            .unwrap_or(0);
        t.max(e)
    }

    /// Tokens trained on at the end of the records.
    pub fn tokens(&self) -> u64 {
        self.train.last().map_or(0, |p| p.tokens)
    }

    /// The stage that the model after `steps_done` steps belongs to: step s is in stage k when
    /// first_step(k) < s ≤ first_step(k+1) (a boundary's eval closes the stage before it).
    pub fn stage_at(&self, steps_done: u64) -> usize {
        self.stages
            .iter()
            .rposition(|s| s.first_step < steps_done)
            .unwrap_or(0)
    }

    /// Stage index → end boundary (steps done when it ends; the last stage ends at the planned total or at
    /// the last record).
    pub fn stage_end(&self, k: usize) -> u64 {
        match self.stages.get(k + 1) {
            Some(s) => s.first_step,
            None => self.planned_steps.unwrap_or(0).max(self.last_step()),
        }
    }

    /// Whether the records reach the planned number of steps.
    pub fn complete(&self) -> bool {
        self.planned_steps.is_none_or(|t| self.last_step() >= t)
    }

    /// Validation-set names, sorted.
    pub fn sets(&self) -> Vec<String> {
        self.evals.keys().cloned().collect()
    }

    /// Indices of the stages whose mixture contains `set`.
    pub fn training_stages(&self, set: &str) -> Vec<usize> {
        (0..self.stages.len())
            .filter(|&k| self.stages[k].sources.iter().any(|s| s == set))
            .collect()
    }

    /// Training FLOPs per token (see [`flops_per_token`]), when the model and sequence length are known.
    pub fn flops_per_token(&self) -> Option<f64> {
        Some(flops_per_token(self.model.as_ref()?, self.seq_len?) as f64)
    }

    /// A single-stage plan mixing ≥ 2 sources: the "retrain on the union" baseline (Ibrahim et al.).
    pub fn looks_like_union(&self) -> bool {
        self.stages.len() == 1 && self.stages[0].sources.len() >= 2
    }
}

/// `6·(N + V·C) + 12·L·T·C`, the same formula as `rewarm_model::ModelConfig::flops_per_token` (PaLM App. B;
/// Kaplan et al. 2020), recomputed from the shapes so the report needs no tensor crate. N is the
/// non-embedding parameter count.
pub fn flops_per_token(m: &ModelView, seq_len: u64) -> u64 {
    let (v, c, l, i) = (
        m.vocab_size,
        m.hidden_size,
        m.num_layers,
        m.intermediate_size,
    );
    let kv = m.num_kv_heads * (c / m.num_heads.max(1));
    let per_layer = if m.family == "llama" {
        2 * c + (2 * c * c + 2 * c * kv) + 3 * c * i
    } else {
        2 * (c + c) + (3 * c * c + 3 * c) + (c * c + c) + (i * c + i) + (c * i + c)
    };
    let final_norm = if m.family == "llama" { c } else { 2 * c };
    let non_embedding = l * per_layer + final_norm;
    6 * (non_embedding + v * c) + 12 * l * seq_len * c
}

type Records = (Vec<TrainPoint>, BTreeMap<String, Vec<EvalPoint>>, usize);

/// Reads metrics.jsonl. A torn last line (a crash mid-write) is skipped; any other bad line is an error.
fn read_metrics(path: &Path) -> Result<Records, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ReportError::new(
            path,
            e.to_string(),
            "the run has not logged anything yet: train it first (`rewarm train PLAN --run DIR`)",
        )
    })?;
    let lines: Vec<&str> = text.lines().collect();
    let mut train: BTreeMap<u64, TrainPoint> = BTreeMap::new();
    let mut evals: BTreeMap<String, BTreeMap<u64, EvalPoint>> = BTreeMap::new();
    let mut rollbacks = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => continue,
            Err(e) => return Err(ReportError::new(
                path,
                format!("line {}: {e}", i + 1),
                "metrics.jsonl holds one JSON object per line; restore or remove the damaged line",
            )),
        };
        let num = |k: &str| v.get(k).and_then(|x| x.as_f64());
        let int = |k: &str| v.get(k).and_then(|x| x.as_u64());
        let bad = |what: &str| {
            ReportError::new(
                path,
                format!("line {}: {what} record without the fields it needs", i + 1),
                "was this file written by `rewarm train`?",
            )
        };
        match v.get("kind").and_then(|k| k.as_str()) {
            Some("train") => {
                let step = int("step").ok_or_else(|| bad("train"))?;
                train.insert(
                    step,
                    TrainPoint {
                        step,
                        stage: v
                            .get("stage")
                            .and_then(|s| s.as_str())
                            .unwrap_or_default()
                            .to_owned(),
                        tokens: int("tokens").unwrap_or(0),
                        lr: num("lr").unwrap_or(0.0),
                        loss: num("loss").unwrap_or(f64::NAN),
                        replay_fraction: num("replay_fraction").unwrap_or(0.0),
                        tokens_by_source: v
                            .get("tokens_by_source")
                            .and_then(|m| m.as_object())
                            .map(|m| {
                                m.iter()
                                    .filter_map(|(k, x)| Some((k.clone(), x.as_u64()?)))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    },
                );
            }
            Some("eval") => {
                let (Some(step), Some(set), Some(loss)) = (
                    int("step"),
                    v.get("set").and_then(|s| s.as_str()),
                    num("loss"),
                ) else {
                    return Err(bad("eval"));
                };
                let tokens = int("tokens").unwrap_or(0);
                evals
                    .entry(set.to_owned())
                    .or_default()
                    .insert(step, EvalPoint { step, tokens, loss });
            }
            Some("rollback") => rollbacks += 1,
            _ => {}
        }
    }
    Ok((
        train.into_values().collect(),
        evals
            .into_iter()
            .map(|(k, m)| (k, m.into_values().collect()))
            .collect(),
        rollbacks,
    ))
}

/// Fallback when plan.json does not resolve: stage names and mixtures from the JSON, boundaries from the
/// first train record of each stage (a record with step s is the s-th step, so the stage began at s − 1).
fn stages_from_records(plan: &serde_json::Value, train: &[TrainPoint]) -> Vec<StageInfo> {
    let Some(stages) = plan.get("stages").and_then(|s| s.as_array()) else {
        return Vec::new();
    };
    let mut out: Vec<StageInfo> = Vec::new();
    for st in stages {
        let name = st
            .get("name")
            .and_then(|n| n.as_str())
            .unwrap_or_default()
            .to_owned();
        let first = train.iter().find(|t| t.stage == name);
        let (first_step, tokens_before) = match first {
            Some(t) => {
                let per_step = if t.step > 0 {
                    batch_tokens_near(train, t)
                } else {
                    0
                };
                (t.step - 1, t.tokens.saturating_sub(per_step))
            }
            None if out.is_empty() => (0, 0),
            // Not reached yet: after everything logged.
            None => (
                train.last().map_or(0, |t| t.step),
                train.last().map_or(0, |t| t.tokens),
            ),
        };
        out.push(StageInfo {
            name,
            first_step,
            tokens_before,
            sources: st
                .get("mixture")
                .and_then(|m| m.as_object())
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
            replay_fraction: st
                .pointer("/replay/fraction")
                .and_then(|f| f.as_f64())
                .unwrap_or(0.0),
        });
    }
    out
}

/// Tokens of one step around `t`: the difference to the previous record divided by the steps between.
fn batch_tokens_near(train: &[TrainPoint], t: &TrainPoint) -> u64 {
    match train.iter().rev().find(|p| p.step < t.step) {
        Some(p) => (t.tokens - p.tokens) / (t.step - p.step).max(1),
        None => t.tokens / t.step.max(1),
    }
}

/// The run folders behind `inputs`: a folder with plan.json is a run; otherwise its subfolders holding
/// plan.json are the runs of a sweep (named by `sweep.json`'s labels when present). Sweep subfolders without
/// metrics yet are skipped and reported in the returned notes.
pub fn discover(inputs: &[PathBuf]) -> Result<(Vec<RunData>, Vec<String>), ReportError> {
    let mut runs = Vec::new();
    let mut notes = Vec::new();
    for input in inputs {
        if input.join("plan.json").is_file() {
            runs.push(RunData::load(input)?);
            continue;
        }
        let entries = std::fs::read_dir(input).map_err(|e| {
            ReportError::new(
                input,
                e.to_string(),
                "pass run folders (holding plan.json) or sweep folders (whose subfolders are runs)",
            )
        })?;
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("plan.json").is_file() || p.join("plan.toml").is_file())
            .collect();
        dirs.sort();
        if dirs.is_empty() {
            return Err(ReportError::new(
                input,
                "neither a run folder (no plan.json) nor a sweep folder (no subfolder holds one)".into(),
                "pass run folders written by `rewarm train` or sweep folders written by `rewarm sweep`",
            ));
        }
        let group = input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| input.display().to_string());
        let labels = sweep_labels(&input.join("sweep.json"));
        for dir in dirs {
            if !dir.join("metrics.jsonl").is_file() {
                let folder = dir.file_name().unwrap_or_default().to_string_lossy();
                notes.push(format!("{group}/{folder}: no metrics.jsonl yet, left out"));
                continue;
            }
            let mut run = RunData::load(&dir)?;
            if let Some(label) = labels.get(&run.name) {
                run.method = label.clone();
            }
            run.name = format!("{group}/{}", run.method);
            run.group = Some(group.clone());
            runs.push(run);
        }
    }
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    for w in runs.windows(2) {
        if w[0].name == w[1].name {
            return Err(ReportError::new(
                &w[1].dir,
                format!(
                    "two runs are both named `{}` ({} and {})",
                    w[0].name,
                    w[0].dir.display(),
                    w[1].dir.display()
                ),
                "pass runs whose folder names differ (or put them in different sweep folders)",
            ));
        }
    }
    Ok((runs, notes))
}

/// `sweep.json` (`[{"id", "label", …}]`, written by `rewarm sweep`): run folder id → label.
fn sweep_labels(path: &Path) -> BTreeMap<String, String> {
    let Some(v) = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    else {
        return BTreeMap::new();
    };
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                r.get("id")?.as_str()?.to_owned(),
                r.get("label")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neox(v: u64, c: u64, l: u64, h: u64) -> ModelView {
        ModelView {
            family: "neox".into(),
            vocab_size: v,
            hidden_size: c,
            num_layers: l,
            num_heads: h,
            num_kv_heads: h,
            intermediate_size: 4 * c,
            max_seq_len: 128,
            tie_embeddings: false,
        }
    }

    // The same hand computation as rewarm-model's `flops_per_token_by_hand`: tiny has N = 100,096,
    // V·C = 32,768 and 12·L·T·C = 196,608 at T = 128.
    #[test]
    fn flops_per_token_matches_the_model_crate() {
        let tiny = neox(512, 64, 2, 4);
        assert_eq!(
            flops_per_token(&tiny, 128),
            6 * (100_096 + 32_768) + 196_608
        );
        // Pythia-70M: N = 18,915,328 non-embedding parameters.
        let p70 = neox(50304, 512, 6, 8);
        assert_eq!(
            flops_per_token(&p70, 2048),
            6 * (18_915_328 + 50304 * 512) + 12 * 6 * 2048 * 512
        );
    }

    #[test]
    fn stage_at_puts_the_boundary_eval_in_the_stage_before() {
        let stage = |name: &str, first_step| StageInfo {
            name: name.into(),
            first_step,
            tokens_before: 0,
            sources: vec![],
            replay_fraction: 0.0,
        };
        let run = RunData {
            name: "r".into(),
            method: "r".into(),
            group: None,
            dir: PathBuf::new(),
            stages: vec![stage("a", 0), stage("b", 30)],
            boundaries_from: BoundarySource::Plan,
            planned_steps: Some(60),
            seq_len: None,
            model: None,
            init_from: None,
            evals: BTreeMap::new(),
            train: vec![],
            rollbacks: 0,
            device: None,
            rewarm_version: None,
        };
        assert_eq!(run.stage_at(0), 0);
        assert_eq!(run.stage_at(30), 0);
        assert_eq!(run.stage_at(31), 1);
        assert_eq!(run.stage_end(0), 30);
        assert_eq!(run.stage_end(1), 60);
    }
}
