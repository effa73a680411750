//! A validated plan: stages with their steps, batches, schedules and data mixtures resolved, and pure
//! functions from the global step to everything the loop needs (stage, LR, batch, data position).

use crate::config::{OptimizerPolicy, PlanConfig, ReplayMode, ShrinkPerturbConfig};
use crate::schedule::{BatchSchedule, Schedule};
use rewarm_data::mixture::{MixturePlan, ReplaySpec, SourceMeta, StageSpec};
use rewarm_data::ReplayPool;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {why}\nHINT: {fix}")]
pub struct PlanError {
    pub file: String,
    pub field: String,
    pub why: String,
    pub fix: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SourcePlan {
    pub name: String,
    pub dir: PathBuf,
}

/// A run of steps with one batch size inside a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub first_step: u64,
    pub batch_sequences: u64,
    /// Stage sequence index of the segment's first row.
    pub first_sequence: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StagePlan {
    pub name: String,
    /// Global step at which the stage starts.
    pub first_step: u64,
    pub steps: u64,
    /// Sequences the stage draws (replay included).
    pub sequences: u64,
    /// Tokens seen (run-wide) before the stage.
    pub tokens_before: u64,
    pub schedule: Schedule,
    pub optimizer: OptimizerPolicy,
    pub shrink_perturb: Option<ShrinkPerturbConfig>,
    pub mixture: Vec<(usize, f64)>,
    pub replay: Option<ReplaySpec>,
    pub segments: Vec<Segment>,
}

/// Everything the loop needs to know about one global step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepInfo {
    pub stage: usize,
    pub local_step: u64,
    pub batch_sequences: u64,
    /// Stage sequence index of the step's first row.
    pub first_sequence: u64,
    /// Tokens seen (run-wide) before this step.
    pub tokens_before: u64,
    pub lr: f64,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub config: PlanConfig,
    /// Folder of the plan file; relative paths in it resolve against this.
    pub base_dir: PathBuf,
    pub seq_len: usize,
    pub sources: Vec<SourcePlan>,
    pub stages: Vec<StagePlan>,
    pub total_steps: u64,
    pub batch: BatchSchedule,
    /// Indices of the sources evaluated as labelled validation sets.
    pub eval_sets: Vec<usize>,
}

impl PlanConfig {
    /// Parses a plan; unknown keys and type errors name the file, line and key.
    pub fn from_toml(text: &str, file: &Path) -> Result<Self, PlanError> {
        toml::from_str(text).map_err(|e| PlanError {
            file: file.display().to_string(),
            field: e
                .span()
                .map(|s| line_column(text, s.start))
                .unwrap_or_else(|| "config".into()),
            why: e.message().trim_end().to_owned(),
            fix: "see docs/plan.md for every key and its allowed values; unknown keys are rejected so typos never pass silently".into(),
        })
    }

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
            let Schedule::Refined {
                grad_norms: Some(norms_file),
                multipliers,
                ..
            } = &stage.schedule
            else {
                continue;
            };
            if !multipliers.is_empty() {
                continue;
            }
            let path = base.join(norms_file);
            let err = |why: String| PlanError {
                file: file.display().to_string(),
                field: format!("stages[{s}].schedule.grad_norms"),
                why,
                fix:
                    "point at the metrics.jsonl of a finished run (its train lines carry grad_norm)"
                        .into(),
            };
            let text = std::fs::read_to_string(&path)
                .map_err(|e| err(format!("{}: {e}", path.display())))?;
            let norms: Vec<f64> = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|v| v.get("kind").and_then(|k| k.as_str()) == Some("train"))
                .filter_map(|v| v.get("grad_norm").and_then(|g| g.as_f64()))
                .collect();
            stage
                .schedule
                .fill_refined_multipliers(&norms)
                .map_err(|e| err(e.to_string()))?;
        }
        Ok(())
    }
}

/// `line L, column C` (1-based, columns in characters) of byte offset `at` in `text`.
fn line_column(text: &str, at: usize) -> String {
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}")
}

impl Plan {
    /// Validates a config. `model_max_seq_len` is the model's context (the default sequence length).
    pub fn new(
        config: PlanConfig,
        file: &Path,
        model_max_seq_len: usize,
    ) -> Result<Plan, PlanError> {
        let fname = file.display().to_string();
        let err = |field: String, why: String, fix: &str| PlanError {
            file: fname.clone(),
            field,
            why,
            fix: fix.into(),
        };
        let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let sources: Vec<SourcePlan> = config
            .data
            .sources
            .iter()
            .map(|(name, dir)| SourcePlan {
                name: name.clone(),
                dir: base_dir.join(dir),
            })
            .collect();
        if sources.is_empty() {
            return Err(err(
                "data.sources".into(),
                "no sources".into(),
                "name at least one prepared folder: sources = { en = \"prepared/en\" }",
            ));
        }
        let source_index = |field: String, name: &str| -> Result<usize, PlanError> {
            sources.iter().position(|s| s.name == name).ok_or_else(|| {
                let known: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
                err(
                    field,
                    format!("unknown source `{name}` (sources: {})", known.join(", ")),
                    "add it under [data.sources] or fix the name",
                )
            })
        };
        let seq_len = config.data.seq_len.unwrap_or(model_max_seq_len);
        if seq_len == 0 || seq_len > model_max_seq_len {
            return Err(err(
                "data.seq_len".into(),
                format!("{seq_len} tokens, the model's context is {model_max_seq_len}"),
                "use a sequence length between 1 and model.max_seq_len",
            ));
        }
        let tr = &config.train;
        if tr.batch_tokens == 0 || tr.batch_tokens % seq_len as u64 != 0 {
            return Err(err(
                "train.batch_tokens".into(),
                format!(
                    "{} is not a positive multiple of the sequence length {seq_len}",
                    tr.batch_tokens
                ),
                "use a whole number of sequences per batch",
            ));
        }
        let batch = config.batch_schedule(seq_len);
        batch.validate().map_err(|e| {
            err(
                e.field
                    .replace("batch.double_at_tokens", "train.batch_doubling_tokens"),
                format!("{}: expected {}", e.got, e.expected),
                &e.hint,
            )
        })?;
        if let Some(m) = tr.micro_batch_sequences {
            if m == 0 || batch.start_sequences % m != 0 {
                return Err(err(
                    "train.micro_batch_sequences".into(),
                    format!(
                        "{m} does not divide the batch of {} sequences",
                        batch.start_sequences
                    ),
                    "pick a divisor of batch_tokens / seq_len",
                ));
            }
        }
        let o = &config.optimizer;
        for (field, v, ok) in [
            ("optimizer.beta1", o.beta1, (0.0..1.0).contains(&o.beta1)),
            ("optimizer.beta2", o.beta2, (0.0..1.0).contains(&o.beta2)),
            ("optimizer.eps", o.eps, o.eps > 0.0),
            (
                "optimizer.weight_decay",
                o.weight_decay,
                o.weight_decay >= 0.0,
            ),
            ("optimizer.clip", o.clip, o.clip >= 0.0),
            (
                "data.max_epochs",
                config.data.max_epochs,
                config.data.max_epochs > 0.0,
            ),
            (
                "guard.lr_backoff",
                config.guard.lr_backoff,
                config.guard.lr_backoff > 0.0 && config.guard.lr_backoff <= 1.0,
            ),
        ] {
            if !(ok && v.is_finite()) {
                return Err(err(
                    field.into(),
                    format!("{v} is out of range"),
                    "see docs/plan.md for the allowed range",
                ));
            }
        }
        if config.stages.is_empty() {
            return Err(err(
                "stages".into(),
                "no stages".into(),
                "add at least one [[stages]] table",
            ));
        }
        let mut stages = Vec::new();
        let mut step = 0u64;
        let mut tokens_seen = 0u64;
        let mut trained: Vec<usize> = Vec::new();
        for (s, st) in config.stages.iter().enumerate() {
            let at = |f: &str| format!("stages[{s}] ({}).{f}", st.name);
            if stages.iter().any(|p: &StagePlan| p.name == st.name) {
                return Err(err(
                    at("name"),
                    "two stages share this name".into(),
                    "give every stage its own name",
                ));
            }
            st.schedule.validate().map_err(|e| {
                err(
                    at(&e.field),
                    format!("{}: expected {}", e.got, e.expected),
                    &e.hint,
                )
            })?;
            if st.mixture.is_empty() {
                return Err(err(
                    at("mixture"),
                    "empty".into(),
                    "give the stage at least one source: mixture = { en = 1.0 }",
                ));
            }
            let total_w: f64 = st.mixture.values().sum();
            let mut mixture = Vec::new();
            for (name, &w) in &st.mixture {
                if !(w.is_finite() && w > 0.0) {
                    return Err(err(
                        at(&format!("mixture.{name}")),
                        format!("weight {w}"),
                        "weights are positive token fractions",
                    ));
                }
                mixture.push((source_index(at("mixture"), name)?, w / total_w));
            }
            let replay = match &st.replay {
                Some(r) if r.fraction.is_nan() => {
                    return Err(err(
                        at("replay.fraction"),
                        "NaN".into(),
                        "a fraction of every batch: 0 ≤ ρ < 1",
                    ))
                }
                Some(r) if r.fraction > 0.0 => {
                    if r.fraction >= 1.0 {
                        return Err(err(
                            at("replay.fraction"),
                            format!("{}", r.fraction),
                            "a fraction of every batch: 0 ≤ ρ < 1",
                        ));
                    }
                    let srcs = match &r.sources {
                        Some(names) => names
                            .iter()
                            .map(|n| source_index(at("replay.sources"), n))
                            .collect::<Result<Vec<_>, _>>()?,
                        None => trained.clone(),
                    };
                    if srcs.is_empty() {
                        return Err(err(
                            at("replay"),
                            "no earlier stage to replay from".into(),
                            "name replay.sources, or remove replay from the first stage",
                        ));
                    }
                    if let Some(w) = &r.weights {
                        if w.len() != srcs.len() {
                            return Err(err(
                                at("replay.weights"),
                                format!("{} weights for {} sources", w.len(), srcs.len()),
                                "give one weight per replay source",
                            ));
                        }
                    }
                    // Seen-only replay of a source no earlier stage read has nothing to draw, and
                    // default weights (sequences seen) would give it weight 0.
                    if let Some(&k) = srcs.iter().find(|k| !trained.contains(k)) {
                        let name = &sources[k].name;
                        if r.pool == ReplayPool::Seen {
                            return Err(err(
                                at("replay.sources"),
                                format!("no earlier stage trained on `{name}`, so none of it was seen"),
                                "replay a source an earlier stage read, or set replay.pool = \"whole\" to draw from its whole training split",
                            ));
                        }
                        if r.weights.is_none() && srcs.len() > 1 {
                            return Err(err(
                                at("replay.weights"),
                                format!("no earlier stage trained on `{name}`, so it has no count of sequences seen to weight it by"),
                                "give replay.weights, one per replay source",
                            ));
                        }
                    }
                    Some(ReplaySpec {
                        fraction: r.fraction,
                        sources: srcs,
                        weights: r.weights.clone(),
                        pool: r.pool,
                        order: r.order,
                    })
                }
                Some(r) if r.fraction < 0.0 => {
                    return Err(err(
                        at("replay.fraction"),
                        format!("{}", r.fraction),
                        "0 ≤ ρ < 1",
                    ))
                }
                _ => None,
            };
            if let Some(sp) = &st.shrink_perturb {
                if !(sp.lambda.is_finite()
                    && sp.sigma.is_finite()
                    && sp.lambda >= 0.0
                    && sp.sigma >= 0.0)
                {
                    return Err(err(
                        at("shrink_perturb"),
                        format!("lambda {} sigma {}", sp.lambda, sp.sigma),
                        "use lambda in [0, 1] and sigma ≥ 0",
                    ));
                }
            }
            let rho = replay.as_ref().map_or(0.0, |r| r.fraction);
            let additive = st
                .replay
                .as_ref()
                .is_some_and(|r| r.mode == ReplayMode::Additive);
            let stage_tokens = if additive {
                (st.tokens as f64 / (1.0 - rho)).round() as u64
            } else {
                st.tokens
            };
            let target_sequences = stage_tokens.div_ceil(seq_len as u64);
            if target_sequences == 0 {
                return Err(err(
                    at("tokens"),
                    "0".into(),
                    "give the stage a positive token budget",
                ));
            }
            // Steps until the stage has drawn its sequences; the batch may grow along the way. Computed a
            // segment (a run of steps with one batch size) at a time, so that a huge token budget costs no
            // more than a small one; counts that would overflow 64 bits are an error.
            let first_step = step;
            let tokens_before = tokens_seen;
            let mut sequences = 0u64;
            let mut segments: Vec<Segment> = Vec::new();
            let overflow = || {
                err(
                    at("tokens"),
                    format!(
                        "{} tokens: the plan's step and token counts overflow 64 bits",
                        st.tokens
                    ),
                    "give the stages token budgets a run can reach",
                )
            };
            while sequences < target_sequences {
                let b = batch.sequences_at(tokens_seen);
                let batch_tokens = b.checked_mul(seq_len as u64).ok_or_else(overflow)?;
                // Steps at this batch size: until the stage has its sequences, or until the step that
                // starts at or past the next doubling point.
                let mut n = (target_sequences - sequences).div_ceil(b);
                if let Some(&next) = batch.double_at_tokens.iter().find(|&&t| t > tokens_seen) {
                    n = n.min((next - tokens_seen).div_ceil(batch_tokens));
                }
                if segments.last().is_none_or(|seg| seg.batch_sequences != b) {
                    segments.push(Segment {
                        first_step: step,
                        batch_sequences: b,
                        first_sequence: sequences,
                    });
                }
                sequences = n
                    .checked_mul(b)
                    .and_then(|x| x.checked_add(sequences))
                    .ok_or_else(overflow)?;
                tokens_seen = n
                    .checked_mul(batch_tokens)
                    .and_then(|x| x.checked_add(tokens_seen))
                    .ok_or_else(overflow)?;
                step = step.checked_add(n).ok_or_else(overflow)?;
            }
            for &(k, _) in &mixture {
                if !trained.contains(&k) {
                    trained.push(k);
                }
            }
            stages.push(StagePlan {
                name: st.name.clone(),
                first_step,
                steps: step - first_step,
                sequences,
                tokens_before,
                schedule: st.schedule.clone(),
                optimizer: st.optimizer,
                shrink_perturb: st.shrink_perturb.clone(),
                mixture,
                replay,
                segments,
            });
        }
        let eval_sets = match &config.eval.sets {
            Some(names) => names
                .iter()
                .map(|n| source_index("eval.sets".into(), n))
                .collect::<Result<Vec<_>, _>>()?,
            None => (0..sources.len()).collect(),
        };
        if config.eval.batch_sequences == 0 {
            return Err(err(
                "eval.batch_sequences".into(),
                "0".into(),
                "use at least 1",
            ));
        }
        Ok(Plan {
            config,
            base_dir,
            seq_len,
            sources,
            stages,
            total_steps: step,
            batch,
            eval_sets,
        })
    }

    /// The stage holding global step `step` (< total_steps).
    pub fn stage_of(&self, step: u64) -> usize {
        self.stages.partition_point(|s| s.first_step <= step) - 1
    }

    pub fn step(&self, step: u64) -> StepInfo {
        let stage = self.stage_of(step);
        let st = &self.stages[stage];
        let seg = st.segments[st.segments.partition_point(|g| g.first_step <= step) - 1];
        let first_sequence = seg.first_sequence + (step - seg.first_step) * seg.batch_sequences;
        let tokens_before = st.tokens_before + first_sequence * self.seq_len as u64;
        let local_step = step - st.first_step;
        let lr = st.schedule.lr(local_step, st.steps) * self.batch.lr_scale(tokens_before);
        StepInfo {
            stage,
            local_step,
            batch_sequences: seg.batch_sequences,
            first_sequence,
            tokens_before,
            lr,
        }
    }

    /// Sequences per forward pass.
    pub fn micro_batch_sequences(&self, batch_sequences: u64) -> u64 {
        self.config
            .train
            .micro_batch_sequences
            .unwrap_or(batch_sequences)
            .min(batch_sequences)
    }

    pub fn total_tokens(&self) -> u64 {
        self.stages
            .iter()
            .map(|s| s.sequences * self.seq_len as u64)
            .sum()
    }

    /// The data half of the plan, given each source's training sequences of `seq_len` tokens.
    pub fn mixture_plan(&self, source_sequences: &[u64]) -> MixturePlan {
        MixturePlan {
            seed: self.config.seed,
            max_epochs: self.config.data.max_epochs,
            sources: self
                .sources
                .iter()
                .zip(source_sequences)
                .map(|(s, &n)| SourceMeta {
                    name: s.name.clone(),
                    sequences: n,
                })
                .collect(),
            stages: self
                .stages
                .iter()
                .map(|s| StageSpec {
                    name: s.name.clone(),
                    sources: s.mixture.clone(),
                    replay: s.replay.clone(),
                    sequences: s.sequences,
                })
                .collect(),
        }
    }

    /// Whether evaluation is due after `step` steps are done (dense right after a boundary, periodic, and at
    /// every stage end).
    pub fn eval_due(&self, steps_done: u64) -> bool {
        let e = &self.config.eval;
        if steps_done == 0 {
            return true;
        }
        let st = &self.stages[self.stage_of(steps_done - 1)];
        let local = steps_done - st.first_step;
        let stage_end = local == st.steps;
        let periodic = e.every_steps > 0 && steps_done % e.every_steps == 0;
        let dense =
            local <= e.dense_steps && e.dense_every_steps > 0 && local % e.dense_every_steps == 0;
        stage_end || periodic || dense
    }

    /// Whether a checkpoint is due after `steps_done` steps: periodic, and at every stage end.
    pub fn checkpoint_due(&self, steps_done: u64) -> bool {
        let every = self.config.checkpoint.every_steps;
        self.is_stage_end(steps_done) || (every > 0 && steps_done % every == 0)
    }

    pub fn is_stage_end(&self, steps_done: u64) -> bool {
        self.stages
            .iter()
            .any(|s| s.first_step + s.steps == steps_done)
    }
}
