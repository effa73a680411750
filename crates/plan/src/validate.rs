//! [`Plan::new`]: a [`PlanConfig`] validated into a [`Plan`] in named steps — the model, the sources,
//! the sequence length, the batch schedule, the optimizer and guard ranges, each stage (schedule,
//! mixture, replay, warm start, steps), the evaluation sets. This is the one place a plan is checked:
//! `rewarm-data` only asserts what is checked here. Every error names the plan file, the field and the fix.
//! The walk through the stages is in [`stages`].

use crate::config::{DataConfig, OptimizerConfig, PlanConfig};
use crate::resolved::SourcePlan;
use crate::schedule::BatchSchedule;
use crate::Plan;
use rewarm_arch::ModelConfig;
use std::path::Path;

mod stages;

#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {why}\nHINT: {fix}")]
pub struct PlanError {
    pub file: String,
    pub field: String,
    pub why: String,
    pub fix: String,
}

impl Plan {
    /// Validates a config read from `file` (relative paths in it resolve against the file's folder).
    pub fn new(config: PlanConfig, file: &Path) -> Result<Plan, PlanError> {
        let v = Validator {
            file: file.display().to_string(),
            continues: config.init_from.is_some(),
        };
        let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        let model = v.model(&config)?;
        let sources = v.sources(&config.data, &base_dir)?;
        let seq_len = v.seq_len(&config.data, &model)?;
        let batch = v.batch(&config, seq_len)?;
        v.ranges(&config)?;
        let stages = v.stages(&config, &sources, &batch, seq_len)?;
        let eval_sets = v.eval_sets(&config, &sources)?;
        let total_steps = stages.last().map_or(0, |s| s.first_step + s.steps);
        Ok(Plan {
            config,
            model,
            base_dir,
            seq_len,
            sources,
            stages,
            total_steps,
            batch,
            eval_sets,
        })
    }
}

/// Builds the errors of one plan file.
struct Validator {
    file: String,
    /// The plan continues another run's checkpoint (`init_from`).
    continues: bool,
}

impl Validator {
    fn err(&self, field: impl Into<String>, why: impl Into<String>, fix: &str) -> PlanError {
        PlanError {
            file: self.file.clone(),
            field: field.into(),
            why: why.into(),
            fix: fix.into(),
        }
    }

    fn model(&self, config: &PlanConfig) -> Result<ModelConfig, PlanError> {
        config.model.resolve().map_err(|e| PlanError {
            file: self.file.clone(),
            field: format!("model.{}", e.field),
            why: e.problem,
            fix: e.hint,
        })
    }

    fn sources(&self, data: &DataConfig, base_dir: &Path) -> Result<Vec<SourcePlan>, PlanError> {
        if data.sources.is_empty() {
            return Err(self.err(
                "data.sources",
                "no sources",
                "name at least one prepared folder: sources = { en = \"prepared/en\" }",
            ));
        }
        Ok(data
            .sources
            .iter()
            .map(|(name, dir)| SourcePlan {
                name: name.clone(),
                dir: base_dir.join(dir),
            })
            .collect())
    }

    fn source_index(
        &self,
        sources: &[SourcePlan],
        field: String,
        name: &str,
    ) -> Result<usize, PlanError> {
        sources.iter().position(|s| s.name == name).ok_or_else(|| {
            let known: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
            self.err(
                field,
                format!("unknown source `{name}` (sources: {})", known.join(", ")),
                "add it under [data.sources] or fix the name",
            )
        })
    }

    /// `data.seq_len`, by default the model's context.
    fn seq_len(&self, data: &DataConfig, model: &ModelConfig) -> Result<usize, PlanError> {
        let seq_len = data.seq_len.unwrap_or(model.max_seq_len);
        if seq_len == 0 || seq_len > model.max_seq_len {
            return Err(self.err(
                "data.seq_len",
                format!(
                    "{seq_len} tokens, the model's context is {}",
                    model.max_seq_len
                ),
                "use a sequence length between 1 and model.max_seq_len",
            ));
        }
        Ok(seq_len)
    }

    /// The batch size and its doubling points, and the micro-batch that must divide it.
    fn batch(&self, config: &PlanConfig, seq_len: usize) -> Result<BatchSchedule, PlanError> {
        let tr = &config.train;
        if tr.batch_tokens == 0 || tr.batch_tokens % seq_len as u64 != 0 {
            return Err(self.err(
                "train.batch_tokens",
                format!(
                    "{} is not a positive multiple of the sequence length {seq_len}",
                    tr.batch_tokens
                ),
                "use a whole number of sequences per batch",
            ));
        }
        let batch = config.batch_schedule(seq_len);
        batch.validate().map_err(|e| {
            self.err(
                e.field
                    .replace("batch.double_at_tokens", "train.batch_doubling_tokens"),
                format!("{}: expected {}", e.got, e.expected),
                &e.hint,
            )
        })?;
        if let Some(m) = tr.micro_batch_sequences {
            if m == 0 || batch.start_sequences % m != 0 {
                return Err(self.err(
                    "train.micro_batch_sequences",
                    format!(
                        "{m} does not divide the batch of {} sequences",
                        batch.start_sequences
                    ),
                    "pick a divisor of batch_tokens / seq_len",
                ));
            }
        }
        Ok(batch)
    }

    /// Optimizer, repetition cap and guard values in their ranges.
    fn ranges(&self, config: &PlanConfig) -> Result<(), PlanError> {
        self.adamw_ranges("optimizer", &config.optimizer)?;
        let (g, max_epochs) = (&config.guard, config.data.max_epochs);
        let z = config.train.z_loss;
        self.in_range([("train.z_loss".into(), z, z >= 0.0)])?;
        if let Some(e) = &config.ema {
            self.in_range([("ema.decay".into(), e.decay, e.decay > 0.0 && e.decay < 1.0)])?;
        }
        if let Some(m) = &config.monitor {
            let tau = m.dormant_threshold;
            self.in_range([
                (
                    "monitor.sequences".into(),
                    m.sequences as f64,
                    m.sequences >= 2,
                ),
                (
                    "monitor.dormant_threshold".into(),
                    tau,
                    (0.0..1.0).contains(&tau),
                ),
            ])?;
        }
        if let Some(sp) = &g.spikes {
            self.in_range([
                ("guard.spikes.sigmas".into(), sp.sigmas, sp.sigmas > 0.0),
                (
                    "guard.spikes.window".into(),
                    sp.window as f64,
                    sp.window >= 2,
                ),
            ])?;
        }
        self.in_range([
            ("data.max_epochs".into(), max_epochs, max_epochs > 0.0),
            (
                "guard.lr_backoff".into(),
                g.lr_backoff,
                g.lr_backoff > 0.0 && g.lr_backoff <= 1.0,
            ),
        ])
    }

    /// AdamW's settings (`[optimizer]`, or a stage's with its overrides) in their ranges.
    fn adamw_ranges(&self, table: &str, o: &OptimizerConfig) -> Result<(), PlanError> {
        let field = |f: &str| format!("{table}.{f}");
        self.in_range([
            (field("beta1"), o.beta1, (0.0..1.0).contains(&o.beta1)),
            (field("beta2"), o.beta2, (0.0..1.0).contains(&o.beta2)),
            (field("eps"), o.eps, o.eps > 0.0),
            (field("weight_decay"), o.weight_decay, o.weight_decay >= 0.0),
            (field("clip"), o.clip, o.clip >= 0.0),
        ])
    }

    /// The first of `checks` (field, value, whether it is in range) that fails or is not finite.
    fn in_range<const N: usize>(&self, checks: [(String, f64, bool); N]) -> Result<(), PlanError> {
        for (field, v, ok) in checks {
            if !(ok && v.is_finite()) {
                return Err(self.err(
                    field,
                    format!("{v} is out of range"),
                    "see docs/plan.md for the allowed range",
                ));
            }
        }
        Ok(())
    }

    fn eval_sets(
        &self,
        config: &PlanConfig,
        sources: &[SourcePlan],
    ) -> Result<Vec<usize>, PlanError> {
        if config.eval.batch_sequences == 0 {
            return Err(self.err("eval.batch_sequences", "0", "use at least 1"));
        }
        let plain = |n: &str| {
            !n.is_empty()
                && n.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        if let Some(name) = config.eval.tasks.keys().find(|n| !plain(n)) {
            return Err(self.err(
                "eval.tasks",
                format!("task name {name:?}"),
                "name tasks with letters, digits, `_`, `-` and `.` (the name goes into metric tags)",
            ));
        }
        let sets: Vec<usize> = match &config.eval.sets {
            Some(names) => names
                .iter()
                .map(|n| self.source_index(sources, "eval.sets".into(), n))
                .collect::<Result<_, _>>()?,
            None => (0..sources.len()).collect(),
        };
        self.monitored_set(config, sources, &sets)?;
        Ok(sets)
    }

    /// `monitor.set`, when given, is one of the evaluated sets.
    fn monitored_set(
        &self,
        config: &PlanConfig,
        sources: &[SourcePlan],
        sets: &[usize],
    ) -> Result<(), PlanError> {
        let Some(name) = config.monitor.as_ref().and_then(|m| m.set.as_ref()) else {
            return Ok(());
        };
        if sets.iter().any(|&k| &sources[k].name == name) {
            return Ok(());
        }
        let evaluated: Vec<&str> = sets.iter().map(|&k| sources[k].name.as_str()).collect();
        Err(self.err(
            "monitor.set",
            format!(
                "`{name}` is not evaluated (eval sets: {})",
                evaluated.join(", ")
            ),
            "name one of the evaluated sets, or add it to eval.sets",
        ))
    }
}
