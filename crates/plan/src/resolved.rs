//! A validated plan: stages with their steps, batches, schedules and data mixtures resolved, and pure
//! functions from the global step to everything the loop needs (stage, LR, batch, data position).

//!
//! [`Plan::new`] (in `validate`) builds it from a [`PlanConfig`]; nothing here can fail.

use crate::config::{
    OptimizerConfig, OptimizerPolicy, PlanConfig, ReptileConfig, ShrinkPerturbConfig,
};
use crate::schedule::{BatchSchedule, Schedule};
use rewarm_arch::ModelConfig;
use rewarm_data::mixture::{MixturePlan, ReplaySpec, SourceMeta, StageSpec};
use std::path::PathBuf;

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

/// A stretch of a stage with one new-data mixture (a stage without `mixture_changes` is one phase). The
/// data index has one stage per phase.
#[derive(Clone, Debug, PartialEq)]
pub struct Phase {
    /// Stage sequence index of the phase's first row.
    pub first_sequence: u64,
    pub sequences: u64,
    /// New-data sources and their token fractions.
    pub mixture: Vec<(usize, f64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StagePlan {
    pub name: String,
    /// Global step at which the stage starts.
    pub first_step: u64,
    /// Steps the stage trains.
    pub steps: u64,
    /// Steps its schedule is laid out over: the stage's steps after its moment warmup (all of them, even
    /// when it stops early with `stop_after_steps`), summed over the stages one schedule spans.
    pub schedule_steps: u64,
    /// Steps of the schedule that earlier stages of its group took (0 but for `kind = "continue"`).
    pub schedule_offset: u64,
    /// This stage continues the schedule of the stage before it (`kind = "continue"`).
    pub continues_schedule: bool,
    /// Steps at LR 0 before the schedule starts (`moment_warmup_steps`).
    pub moment_warmup_steps: u64,
    /// Sequences the stage draws (replay included).
    pub sequences: u64,
    /// Tokens seen (run-wide) before the stage.
    pub tokens_before: u64,
    pub schedule: Schedule,
    pub optimizer: OptimizerPolicy,
    /// AdamW's settings in this stage: `[optimizer]` with the stage's `adamw` overrides.
    pub adamw: OptimizerConfig,
    pub shrink_perturb: Option<ShrinkPerturbConfig>,
    pub reptile: Option<ReptileConfig>,
    /// New data in this many passes over a subset (`subset_epochs`; `None`: one pass).
    pub subset_epochs: Option<u64>,
    pub mixture: Vec<(usize, f64)>,
    pub replay: Option<ReplaySpec>,
    pub segments: Vec<Segment>,
    /// The stage's phases (one unless its mixture changes part way), in order.
    pub phases: Vec<Phase>,
    /// The data index's stage of the first phase (earlier stages' phases come before).
    pub first_phase: usize,
}

impl StagePlan {
    /// Reptile meta-updates after step `n` (0-based) of the stage: after every `inner_steps`-th.
    pub fn reptile_due(&self, n: u64) -> Option<f64> {
        let r = self.reptile.as_ref()?;
        ((n + 1) % r.inner_steps == 0).then_some(r.beta)
    }

    /// The schedule's LR at step `n` of the stage: 0 during the moment warmup, then the schedule from
    /// where the stages before it in its group left it.
    pub fn lr(&self, n: u64) -> f64 {
        match n.checked_sub(self.moment_warmup_steps) {
            None => 0.0,
            Some(n) => self
                .schedule
                .lr(self.schedule_offset + n, self.schedule_steps),
        }
    }
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
    /// The data index's stage (the stage's phase) this step draws from, and the phase's sequence index
    /// of the step's first row.
    pub data_stage: usize,
    pub data_sequence: u64,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub config: PlanConfig,
    /// The model `[model]` describes (preset + overrides, validated).
    pub model: ModelConfig,
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

impl Plan {
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
        let lr = st.lr(local_step) * self.batch.lr_scale(tokens_before);
        let k = st
            .phases
            .partition_point(|p| p.first_sequence <= first_sequence)
            - 1;
        StepInfo {
            stage,
            local_step,
            batch_sequences: seg.batch_sequences,
            first_sequence,
            tokens_before,
            lr,
            data_stage: st.first_phase + k,
            data_sequence: first_sequence - st.phases[k].first_sequence,
        }
    }

    /// Every phase of every stage, in order: the data index's stages, with the stage each belongs to.
    pub fn phases(&self) -> impl Iterator<Item = (&StagePlan, &Phase)> {
        self.stages
            .iter()
            .flat_map(|st| st.phases.iter().map(move |p| (st, p)))
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

    /// The data half of the plan, given each source's training sequences of `seq_len` tokens (with no
    /// record of what an `init_from` run consumed).
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
                .phases()
                .map(|(s, p)| StageSpec {
                    name: match s.phases.len() {
                        1 => s.name.clone(),
                        _ => format!("{} from sequence {}", s.name, p.first_sequence),
                    },
                    sources: p.mixture.clone(),
                    replay: s.replay.clone(),
                    sequences: p.sequences,
                    subset_epochs: s.subset_epochs,
                })
                .collect(),
            // What the run continued (`init_from`) consumed is read from its checkpoint when the data
            // is opened (`rewarm-train`), not known to the plan.
            earlier: Vec::new(),
        }
    }

    /// Whether evaluation is due after `steps_done` steps are done: dense right after a boundary,
    /// periodic, dense before a stage end, and at every stage end.
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
        let to_end = st.steps - local;
        let last =
            to_end <= e.final_steps && e.final_every_steps > 0 && to_end % e.final_every_steps == 0;
        stage_end || periodic || dense || last
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
