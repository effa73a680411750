//! A run folder read back through `rewarm-runfolder`'s types: `plan.json` (the plan and its model),
//! `metrics.jsonl` (`train`, `eval` and `rollback` records) and `environment.json`.
//!
//! Steps count *steps done*: a `train` record with `step = s` is written after the s-th optimizer step, and
//! an `eval` record with `step = s` evaluates the model after s steps. A stage's boundary is its
//! `first_step`, the steps done before it starts, so the eval at a boundary is both the end of the stage
//! before and the starting point of the stage after.

use crate::ReportError;
use rewarm_arch::ModelConfig;
use rewarm_plan::{Plan, PlanFile};
use rewarm_runfolder::{
    Baselines, Environment, Record, RepresentationRecord, RunDir, RunFolderError, SweepDir,
    SweepIndex, TaskRecord, TrainRecord,
};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One evaluation of one validation set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalPoint {
    pub step: u64,
    pub tokens: u64,
    pub loss: f64,
}

/// One logged training step.
pub type TrainPoint = TrainRecord;

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BoundarySource {
    /// Recomputed from plan.json with `rewarm-plan` (exact).
    #[default]
    Plan,
    /// The first logged train record of each stage (exact when every step is logged).
    Metrics,
}

/// Everything the report reads from one run folder.
#[derive(Clone, Debug, Default)]
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
    pub model: Option<ModelConfig>,
    /// The plan's `init_from` (weights from another run): all of this run's tokens are continued training.
    pub init_from: Option<String>,
    /// Validation set → points sorted by step (one per step: the last record wins after a rollback).
    pub evals: BTreeMap<String, Vec<EvalPoint>>,
    pub train: Vec<TrainPoint>,
    pub rollbacks: usize,
    /// `[monitor]`'s measurements, by step.
    pub representation: Vec<RepresentationRecord>,
    /// `[eval] tasks`: task → its scores by step (one per step: the last record wins after a rollback).
    pub tasks: BTreeMap<String, Vec<TaskRecord>>,
    /// `environment.json` fields shown in the runs table.
    pub device: Option<String>,
    pub rewarm_version: Option<String>,
    /// The plan's seed (runs of one method differ only by it).
    pub seed: Option<u64>,
    /// `baselines.json`: count-model losses per validation set (`None` in older run folders).
    pub baselines: Option<Baselines>,
    /// Validation set → UTF-8 bytes per token of its text, for bits per byte: from baselines.json, else
    /// derived from the eval records (loss / ln 2 / bits_per_byte).
    pub bytes_per_token: BTreeMap<String, f64>,
}

impl From<RunFolderError> for ReportError {
    fn from(e: RunFolderError) -> Self {
        match e {
            RunFolderError::Format { path, why, hint } => ReportError::new(&path, why, &hint),
            other => ReportError {
                path: String::new(),
                why: other.to_string(),
                hint: "check that the run folder is readable".into(),
            },
        }
    }
}

/// What the report takes from plan.json: the stages (exact, from the plan resolved again, or from the
/// records for a plan.json of another rewarm version) and the model.
struct PlanView {
    stages: Vec<StageInfo>,
    boundaries_from: BoundarySource,
    planned_steps: Option<u64>,
    seq_len: Option<u64>,
    model: Option<ModelConfig>,
    init_from: Option<String>,
    seed: Option<u64>,
}

/// plan.json as an older (or newer) rewarm wrote it: the stage names and mixtures are read as written.
#[derive(Deserialize)]
struct OtherVersionPlanFile {
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
        let run = RunDir::new(run_dir);
        if let Err(e) = std::fs::metadata(run.plan_json()) {
            return Err(ReportError::new(
                &run.plan_json(),
                e.to_string(),
                "pass a run folder written by `rewarm train` (it holds plan.json and metrics.jsonl)",
            ));
        }
        let records = read_metrics(&run.metrics())?;
        let view = read_plan(&run.plan_json(), &records.train)?;
        let env = Environment::read(&run);
        let baselines = Baselines::read(&run)?;
        let bytes_per_token = bytes_per_token(baselines.as_ref(), records.bytes_per_token);
        Ok(RunData {
            method: name.clone(),
            name,
            group: None,
            dir: run_dir.to_path_buf(),
            stages: view.stages,
            boundaries_from: view.boundaries_from,
            planned_steps: view.planned_steps,
            seq_len: view.seq_len,
            model: view.model,
            init_from: view.init_from,
            evals: records.evals,
            train: records.train,
            rollbacks: records.rollbacks,
            representation: records.representation,
            tasks: records.tasks,
            device: env.device,
            rewarm_version: env.rewarm_version,
            seed: view.seed,
            baselines,
            bytes_per_token,
        })
    }

    /// `nats` per token on `set` as bits per byte of the set's text; `None` without its bytes per token.
    pub fn bits_per_byte(&self, set: &str, nats: f64) -> Option<f64> {
        let b = self.bytes_per_token.get(set)?;
        Some(nats / std::f64::consts::LN_2 / b)
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

    /// Training FLOPs per token (`ModelConfig::flops_per_token`), when the model and sequence length
    /// are known.
    pub fn flops_per_token(&self) -> Option<f64> {
        Some(self.model.as_ref()?.flops_per_token(self.seq_len? as usize) as f64)
    }

    /// A single-stage plan mixing ≥ 2 sources: the "retrain on the union" baseline (Ibrahim et al.).
    pub fn looks_like_union(&self) -> bool {
        self.stages.len() == 1 && self.stages[0].sources.len() >= 2
    }
}

/// The stages of plan.json's plan resolved again with `rewarm-plan` (exact boundaries); a plan.json
/// that does not parse as this version's plan falls back to the stage names and mixtures as written and
/// the boundaries the train records show, so that old run folders still report.
fn read_plan(path: &Path, train: &[TrainPoint]) -> Result<PlanView, ReportError> {
    let exact = PlanFile::read(path)
        .ok()
        .and_then(|f| Some((Plan::new(f.plan.clone(), path).ok()?, f)));
    if let Some((plan, file)) = exact {
        return Ok(PlanView {
            stages: plan.stages.iter().map(|s| stage_info(&plan, s)).collect(),
            boundaries_from: BoundarySource::Plan,
            planned_steps: Some(plan.total_steps),
            seq_len: Some(plan.seq_len as u64),
            model: Some(file.model),
            init_from: file.plan.init_from,
            seed: Some(file.plan.seed),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        ReportError::new(
            path,
            e.to_string(),
            "pass a run folder written by `rewarm train` (it holds plan.json and metrics.jsonl)",
        )
    })?;
    let file: OtherVersionPlanFile = serde_json::from_str(&text).map_err(|e| {
        ReportError::new(
            path,
            e.to_string(),
            "plan.json is {\"plan\": …, \"model\": …} as `rewarm train` writes it",
        )
    })?;
    let model: Option<ModelConfig> = file.model.and_then(|m| serde_json::from_value(m).ok());
    let stages = stages_from_records(&file.plan, train);
    if stages.is_empty() {
        return Err(ReportError::new(
            path,
            "no stages".into(),
            "plan.json must hold the plan the run was trained with",
        ));
    }
    Ok(PlanView {
        stages,
        boundaries_from: BoundarySource::Metrics,
        planned_steps: None,
        seq_len: file
            .plan
            .pointer("/data/seq_len")
            .and_then(|v| v.as_u64())
            .or(model.as_ref().map(|m| m.max_seq_len as u64)),
        model,
        init_from: file
            .plan
            .get("init_from")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        seed: file.plan.get("seed").and_then(|v| v.as_u64()),
    })
}

fn stage_info(plan: &Plan, s: &rewarm_plan::resolved::StagePlan) -> StageInfo {
    StageInfo {
        name: s.name.clone(),
        first_step: s.first_step,
        tokens_before: s.tokens_before,
        sources: s
            .mixture
            .iter()
            .map(|&(k, _)| plan.sources[k].name.clone())
            .collect(),
        replay_fraction: s.replay.as_ref().map_or(0.0, |r| r.fraction),
    }
}

/// What metrics.jsonl holds, as a report reads it.
struct Records {
    train: Vec<TrainPoint>,
    evals: BTreeMap<String, Vec<EvalPoint>>,
    rollbacks: usize,
    /// Per set, implied by its eval records.
    bytes_per_token: BTreeMap<String, f64>,
    /// One per step (the last record wins after a rollback).
    representation: Vec<RepresentationRecord>,
    tasks: BTreeMap<String, Vec<TaskRecord>>,
}

/// Reads metrics.jsonl (a torn last line is skipped; any other bad line is an error): train records by
/// step and eval points per set, one per step (the last record wins after a rollback), the number of
/// rollbacks, and each set's bytes per token as its first eval record with `bits_per_byte` implies.
fn read_metrics(path: &Path) -> Result<Records, ReportError> {
    let mut train: BTreeMap<u64, TrainPoint> = BTreeMap::new();
    let mut evals: BTreeMap<String, BTreeMap<u64, EvalPoint>> = BTreeMap::new();
    let mut bytes_per_token: BTreeMap<String, f64> = BTreeMap::new();
    let mut rollbacks = 0;
    let mut representation: BTreeMap<u64, RepresentationRecord> = BTreeMap::new();
    let mut tasks: BTreeMap<String, BTreeMap<u64, TaskRecord>> = BTreeMap::new();
    for record in rewarm_runfolder::metrics_log::read(path)? {
        match record {
            Record::Train(t) => {
                train.insert(t.step, t);
            }
            Record::Eval(e) => {
                // bits_per_byte = loss / ln 2 / bytes_per_token (docs/metrics.md).
                let implied = e.bits_per_byte.map(|b| e.loss / std::f64::consts::LN_2 / b);
                if let Some(b) = implied.filter(|b| b.is_finite() && *b > 0.0) {
                    bytes_per_token.entry(e.set.clone()).or_insert(b);
                }
                let point = EvalPoint {
                    step: e.step,
                    tokens: e.tokens,
                    loss: e.loss,
                };
                let set = match &e.weights {
                    Some(w) => format!("{}@{w}", e.set),
                    None => e.set,
                };
                evals.entry(set).or_default().insert(e.step, point);
            }
            Record::Rollback(_) => rollbacks += 1,
            Record::Representation(r) => {
                representation.insert(r.step, r);
            }
            Record::Task(t) => {
                tasks.entry(t.task.clone()).or_default().insert(t.step, t);
            }
            Record::Unknown => {}
        }
    }
    Ok(Records {
        train: train.into_values().collect(),
        evals: evals
            .into_iter()
            .map(|(k, m)| (k, m.into_values().collect()))
            .collect(),
        rollbacks,
        bytes_per_token,
        representation: representation.into_values().collect(),
        tasks: tasks
            .into_iter()
            .map(|(k, m)| (k, m.into_values().collect()))
            .collect(),
    })
}

/// Bytes per token per set: baselines.json's (the validation split's ratio), else what the eval records
/// imply.
fn bytes_per_token(
    baselines: Option<&Baselines>,
    mut derived: BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    for (set, b) in baselines.iter().flat_map(|b| &b.sets) {
        if let Some(x) = b.bytes_per_token.filter(|x| x.is_finite() && *x > 0.0) {
            derived.insert(set.clone(), x);
        }
    }
    derived
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
        if RunDir::is_run(input) {
            runs.extend(split_averages(RunData::load(input)?));
        } else {
            runs.extend(sweep_runs(input, &mut notes)?);
        }
    }
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    check_unique_names(&runs)?;
    Ok((runs, notes))
}

/// The runs of the sweep folder `input`, named `<folder>/<label>`; subfolders without metrics.jsonl yet are
/// left out with a note.
fn sweep_runs(input: &Path, notes: &mut Vec<String>) -> Result<Vec<RunData>, ReportError> {
    let entries = std::fs::read_dir(input).map_err(|e| {
        ReportError::new(
            input,
            e.to_string(),
            "pass run folders (holding plan.json) or sweep folders (whose subfolders are runs)",
        )
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| RunDir::is_run(p) || RunDir::new(p).plan_toml().is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(ReportError::new(
            input,
            "neither a run folder (no plan.json) nor a sweep folder (no subfolder holds one)"
                .into(),
            "pass run folders written by `rewarm train` or sweep folders written by `rewarm sweep`",
        ));
    }
    let group = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| input.display().to_string());
    let index = SweepIndex::read(&SweepDir::new(input))?.unwrap_or_default();
    let mut runs = Vec::new();
    for dir in dirs {
        if !RunDir::new(&dir).metrics().is_file() {
            let folder = dir.file_name().unwrap_or_default().to_string_lossy();
            notes.push(format!("{group}/{folder}: no metrics.jsonl yet, left out"));
            continue;
        }
        let mut run = RunData::load(&dir)?;
        name_in_sweep(&mut run, &group, &index);
        runs.extend(split_averages(run));
    }
    Ok(runs)
}

/// Names a run of the sweep folder `group` by its sweep.json label, which becomes its method:
/// `{group}/{label}`, or `{group}/{label}/seed={s}` when the sweep trains that label with several seeds
/// (the report aggregates such runs as one method).
fn name_in_sweep(run: &mut RunData, group: &str, index: &SweepIndex) {
    if let Some(entry) = index.runs.iter().find(|e| e.id == run.name) {
        run.method = entry.label.clone();
        // plan.json says what was trained; sweep.json's seed stands in for a plan of another version.
        run.seed = run.seed.or(entry.seed);
    }
    let seeds: BTreeSet<u64> = index
        .runs
        .iter()
        .filter(|e| e.label == run.method)
        .filter_map(|e| e.seed)
        .collect();
    run.name = match run.seed {
        Some(s) if seeds.len() > 1 => format!("{group}/{}/seed={s}", run.method),
        _ => format!("{group}/{}", run.method),
    };
    run.group = Some(group.to_owned());
}

/// `run`, and a run of its own for each other set of weights it evaluated (`[ema] evaluate`: eval records
/// with `"weights": "ema"`, read as sets `<set>@ema`): `<method>+ema`, the same run's schedule and
/// tokens with the average's losses, so every table and figure compares the average with the weights.
pub fn split_averages(mut run: RunData) -> Vec<RunData> {
    let mut others: BTreeMap<String, BTreeMap<String, Vec<EvalPoint>>> = BTreeMap::new();
    for key in run
        .evals
        .keys()
        .filter(|k| k.contains('@'))
        .cloned()
        .collect::<Vec<_>>()
    {
        let (set, weights) = key.split_once('@').unwrap_or_default();
        let series = run.evals.remove(&key).unwrap_or_default();
        others
            .entry(weights.to_owned())
            .or_default()
            .insert(set.to_owned(), series);
    }
    let twins: Vec<RunData> = others
        .into_iter()
        .map(|(weights, evals)| {
            let method = format!("{}+{weights}", run.method);
            let name = match run.name.rfind(&run.method) {
                Some(i) => format!(
                    "{}{method}{}",
                    &run.name[..i],
                    &run.name[i + run.method.len()..]
                ),
                None => format!("{}+{weights}", run.name),
            };
            RunData {
                name,
                method,
                evals,
                representation: Vec::new(),
                tasks: BTreeMap::new(),
                ..run.clone()
            }
        })
        .collect();
    std::iter::once(run).chain(twins).collect()
}

/// An error naming both folders when two of `runs` (sorted by name) share a name.
fn check_unique_names(runs: &[RunData]) -> Result<(), ReportError> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            stages: vec![stage("a", 0), stage("b", 30)],
            planned_steps: Some(60),
            ..RunData::default()
        };
        assert_eq!(run.stage_at(0), 0);
        assert_eq!(run.stage_at(30), 0);
        assert_eq!(run.stage_at(31), 1);
        assert_eq!(run.stage_end(0), 30);
        assert_eq!(run.stage_end(1), 60);
    }

    #[test]
    fn an_evaluated_average_becomes_a_run_of_its_own_named_after_the_method() {
        let mut run = crate::outcomes::tests::one_stage_run(None);
        run.name = "sweep/constant/seed=2".into();
        run.method = "constant".into();
        let ema = run.evals["de"]
            .iter()
            .map(|p| EvalPoint {
                loss: p.loss - 0.25,
                ..*p
            })
            .collect();
        run.evals.insert("de@ema".into(), ema);
        let split = split_averages(run);
        let names: Vec<(&str, &str)> = split
            .iter()
            .map(|r| (r.name.as_str(), r.method.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("sweep/constant/seed=2", "constant"),
                ("sweep/constant+ema/seed=2", "constant+ema")
            ]
        );
        let sets = |r: &RunData| r.evals.keys().cloned().collect::<Vec<_>>();
        assert_eq!(sets(&split[0]), ["de", "en"]);
        assert_eq!(sets(&split[1]), ["de"]);
        assert_eq!(split[1].evals["de"][2].loss, 5.25);
        assert_eq!(split[1].stages, split[0].stages, "the same run's schedule");
        let plain = split_averages(crate::outcomes::tests::one_stage_run(None));
        assert_eq!(plain.len(), 1);
    }
}
