//! The plan file as written: serde structs with unknown keys rejected. [`crate::Plan::new`] validates them.
//!
//! ```toml
//! seed = 1
//! [model]                      # a preset plus any ModelConfig field as an override
//! preset = "small"
//! [data]
//! sources = { en = "prepared/en", de = "prepared/de" }   # prepared folders, relative to this file
//! [train]
//! batch_tokens = 16384
//! [[stages]]
//! name = "pretrain"
//! tokens = 5_000_000
//! mixture = { en = 1.0 }
//! schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4 }
//! ```

use crate::schedule::{BatchSchedule, Schedule};
use rewarm_arch::ModelTable;
use rewarm_data::{ReplayOrder, ReplayPool};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanConfig {
    /// The one seed; every random stream is derived from it by name.
    #[serde(default)]
    pub seed: u64,
    /// Initialise weights from a checkpoint or Hugging Face folder (weights only: fresh optimizer and
    /// counters). Distinct from resume, which continues a run folder.
    #[serde(default)]
    pub init_from: Option<String>,
    /// A preset plus overrides (see [`ModelTable`]).
    pub model: ModelTable,
    pub data: DataConfig,
    #[serde(default)]
    pub train: TrainConfig,
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub eval: EvalConfig,
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
    #[serde(default)]
    pub guard: GuardConfig,
    /// Keep an exponential moving average of the weights, written with every checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<EmaConfig>,
    /// Measure the representation at every evaluation (rank, spectrum decay, dormant units, per-layer
    /// weight and update norms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<MonitorConfig>,
    pub stages: Vec<StageConfig>,
}

/// `[monitor]`: at every evaluation, the final hidden states and MLP activations of the first
/// `sequences` sequences of one validation set (`set`, by default the first) give RankMe, α-ReQ and the fraction of dormant MLP
/// units; the weights give per-layer norms and the update since the last evaluation (docs/metrics.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Sequences of the fixed evaluation batch (≥ 2).
    #[serde(default = "default_monitor_sequences")]
    pub sequences: u64,
    /// A unit is dormant when its mean |activation| is at most this fraction of its layer's mean over
    /// units (Sokar et al. 2023's τ), in [0, 1).
    #[serde(default = "default_dormant_threshold")]
    pub dormant_threshold: f64,
    /// The validation set measured, e.g. the old data's to watch what forgetting does to the
    /// representation; `None`: the first evaluated set (by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
}

fn default_monitor_sequences() -> u64 {
    16
}

fn default_dormant_threshold() -> f64 {
    0.1
}

/// `[ema]`: after every step, ema ← decay·ema + (1 − decay)·θ (from the starting weights at step 0).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmaConfig {
    /// In (0, 1): the average spans about 1 / (1 − decay) steps.
    pub decay: f64,
    /// Also evaluate the average at every evaluation (eval records with `"weights": "ema"`; reports show
    /// it as a run of its own, `<label>+ema`). Doubles the cost of evaluating.
    #[serde(default)]
    pub evaluate: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Named prepared folders (paths relative to the plan file).
    pub sources: BTreeMap<String, String>,
    /// If set, every source must have been prepared with this tokenizer (`gpt2` or a tokenizer.json).
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Training sequence length in tokens (default: the model's max_seq_len).
    #[serde(default)]
    pub seq_len: Option<usize>,
    /// How many times over a source (or replay pool) may be read before it is an error. 4 epochs of
    /// repeated data are nearly as good as fresh data (Muennighoff et al. 2023); more is usually a mistake.
    #[serde(default = "default_max_epochs")]
    pub max_epochs: f64,
}

fn default_max_epochs() -> f64 {
    4.0
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Global batch in tokens (a multiple of the sequence length).
    #[serde(default = "default_batch_tokens")]
    pub batch_tokens: u64,
    /// Sequences per forward/backward pass; the global batch is reached by gradient accumulation.
    /// Default: the whole batch at once.
    #[serde(default)]
    pub micro_batch_sequences: Option<u64>,
    /// Batch-size warmup: doubling points in tokens seen (LR × sqrt(B/B0)).
    #[serde(default)]
    pub batch_doubling_tokens: Vec<u64>,
    /// Log a training line every this many steps.
    #[serde(default = "default_log_every")]
    pub log_every_steps: u64,
    /// Torch intra-op threads on CPU (default: all cores).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Compute precision: `auto` (bf16 on CUDA, f32 on the CPU), `fp32`, or `bf16` (matmuls and attention
    /// under bf16 autocast; parameters, gradients and AdamW's state stay f32).
    #[serde(default, skip_serializing_if = "Precision::is_auto")]
    pub precision: Precision,
    /// z-loss coefficient (PaLM, OLMo 2: 1e-4): the gradients are those of the loss plus
    /// z_loss · mean(log Σ exp(logits))², which keeps the logits from drifting; 0 turns it off. The loss
    /// logged stays the cross-entropy.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub z_loss: f64,
    /// Activation checkpointing: keep only each block's input in the forward pass and recompute the
    /// block in the backward pass (about a third more compute, activation memory of one block plus L
    /// inputs). The loss is the same; the gradients are the same up to rounding.
    #[serde(default, skip_serializing_if = "is_false")]
    pub activation_checkpointing: bool,
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

/// `train.precision`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Auto,
    Fp32,
    Bf16,
}

impl Precision {
    pub fn is_auto(&self) -> bool {
        *self == Precision::Auto
    }

    /// Whether forward passes run under bf16 autocast on this device.
    pub fn bf16_on(self, cpu: bool) -> bool {
        match self {
            Precision::Auto => !cpu,
            Precision::Fp32 => false,
            Precision::Bf16 => true,
        }
    }
}

fn default_batch_tokens() -> u64 {
    16 * 1024
}
fn default_log_every() -> u64 {
    1
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            batch_tokens: default_batch_tokens(),
            micro_batch_sequences: None,
            batch_doubling_tokens: Vec::new(),
            log_every_steps: default_log_every(),
            threads: None,
            precision: Precision::Auto,
            z_loss: 0.0,
            activation_checkpointing: false,
        }
    }
}

/// AdamW with decoupled weight decay; defaults are every paper's
/// (docs/papers.md#training-primitives-and-adamw-defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Global-norm gradient clipping threshold (0 disables).
    pub clip: f64,
    /// Apply weight decay to embeddings too (norms and biases never decay).
    pub decay_embeddings: bool,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            clip: 1.0,
            decay_embeddings: false,
        }
    }
}

/// A stage's own AdamW settings (`[stages.adamw]`): each field given replaces `[optimizer]`'s for that
/// stage alone, e.g. a higher β2 during a cooldown. Which parameters decay stays the run's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beta2: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip: Option<f64>,
}

impl AdamWOverrides {
    /// `base` with the fields given here replaced.
    pub fn apply(&self, base: &OptimizerConfig) -> OptimizerConfig {
        OptimizerConfig {
            beta1: self.beta1.unwrap_or(base.beta1),
            beta2: self.beta2.unwrap_or(base.beta2),
            eps: self.eps.unwrap_or(base.eps),
            weight_decay: self.weight_decay.unwrap_or(base.weight_decay),
            clip: self.clip.unwrap_or(base.clip),
            decay_embeddings: base.decay_embeddings,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every labelled validation set every this many steps (0: only at stage ends).
    pub every_steps: u64,
    /// Target tokens per validation set, at most (a fixed token set: the first sequences of its
    /// validation split). Default: the whole split, so that a final loss is measured on all of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
    /// Validation sets: source names (default: every source).
    pub sets: Option<Vec<String>>,
    /// Right after a stage boundary, evaluate every `dense_every_steps` for `dense_steps` steps, to see the
    /// stability gap (De Lange et al. 2023; Guo et al. 2024).
    pub dense_steps: u64,
    pub dense_every_steps: u64,
    /// Before every stage end, evaluate every `final_every_steps` over the last `final_steps` steps, so
    /// that the final loss (the mean of the last k evaluations) is measured at the end of the stage and not
    /// over a stretch of its decay. 0 turns it off.
    #[serde(skip_serializing_if = "is_zero")]
    pub final_steps: u64,
    #[serde(skip_serializing_if = "is_five")]
    pub final_every_steps: u64,
    /// Sequences per evaluation forward pass.
    pub batch_sequences: u64,
    /// Multiple-choice tasks scored at every evaluation, so that forgetting shows on tasks too: a name →
    /// a JSONL task file (`{"context", "choices", "gold"}` per line, the format of `rewarm eval --task`),
    /// relative to the plan's folder.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tasks: BTreeMap<String, String>,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}
fn is_five(v: &u64) -> bool {
    *v == 5
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            every_steps: 50,
            tokens: None,
            sets: None,
            dense_steps: 0,
            dense_every_steps: 5,
            final_steps: 0,
            final_every_steps: 5,
            batch_sequences: 16,
            tasks: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Save every this many steps (0: only at stage ends and at the end).
    pub every_steps: u64,
    /// Keep the newest this many periodic checkpoints.
    pub keep_last: usize,
    /// Always keep the checkpoint at the end of each stage (branch points for annealing and CPT).
    pub keep_stage_ends: bool,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            every_steps: 0,
            keep_last: 2,
            keep_stage_ends: true,
        }
    }
}

/// What to do when the loss or gradient norm is not finite.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinite {
    /// Stop with step, stage and a hint; nothing non-finite is ever saved.
    #[default]
    Stop,
    /// Roll back to the last checkpoint and continue with the LR scaled by `lr_backoff`.
    Rollback,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GuardConfig {
    pub non_finite: NonFinite,
    pub lr_backoff: f64,
    pub max_rollbacks: u32,
    /// Skip the update of a step whose loss or gradient norm is far above the last steps' (off unless
    /// given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spikes: Option<SpikeConfig>,
}

/// OLMo-core's skip-step rule: a step whose loss or gradient norm exceeds the mean of the last `window`
/// steps' by more than `sigmas` standard deviations leaves the weights and moments as they were.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpikeConfig {
    pub sigmas: f64,
    /// Steps in the trailing window; no step is skipped before it is full.
    pub window: u64,
}

impl Default for SpikeConfig {
    fn default() -> Self {
        SpikeConfig {
            sigmas: 6.0,
            window: 128,
        }
    }
}

impl Default for GuardConfig {
    fn default() -> Self {
        GuardConfig {
            non_finite: NonFinite::Stop,
            lr_backoff: 0.5,
            max_rollbacks: 3,
            spikes: None,
        }
    }
}

/// What happens to Adam's moments at the start of a stage (Ibrahim resets, MER keeps:
/// docs/papers.md#q3-optimizer-state-at-a-boundary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerPolicy {
    #[default]
    Reset,
    Keep,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayMode {
    /// Ibrahim et al.: replay takes ρ of every batch and the stage's total tokens stay fixed.
    #[default]
    ComputeEquivalent,
    /// MER (Abbes et al.): `tokens` counts new data only; replay comes on top (total = tokens / (1 − ρ)).
    Additive,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// Fraction ρ of every batch drawn from earlier stages' sources.
    pub fraction: f64,
    #[serde(default)]
    pub mode: ReplayMode,
    /// Sources to replay (default: every source earlier stages trained on), weighted by sequences seen
    /// unless `weights` are given.
    #[serde(default)]
    pub sources: Option<Vec<String>>,
    #[serde(default)]
    pub weights: Option<Vec<f64>>,
    #[serde(default)]
    pub pool: ReplayPool,
    #[serde(default)]
    pub order: ReplayOrder,
    /// A replay buffer of this many sequences (MER's reservoir): at the stage's start a uniform sample of
    /// the seen pool; replay draws only from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer_sequences: Option<u64>,
}

/// A change of a stage's new-data mixture part way through it (Levanter's weight stages; Llama 3's switch
/// to a mix of old and new data): from step `at_step` of the stage, or from the first step that starts
/// once the stage has trained `at_tokens`, new data is drawn by `mixture`. The schedule, the batch and the
/// replay fraction go on unchanged, and every source is read on from where it was: nothing is drawn twice
/// beyond what the weights ask for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_step: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_tokens: Option<u64>,
    pub mixture: BTreeMap<String, f64>,
}

/// Shrink-and-perturb at the start of a stage (Ash & Adams 2020): θ ← λθ + σ·p, p per element from
/// `noise`. λ = 1, σ = 0 is a plain warm start; with `noise = "init"`, λ = 0 and σ = 1 is a fresh
/// initialization, and σ = 1 − λ blends the trained weights toward one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShrinkPerturbConfig {
    pub lambda: f64,
    pub sigma: f64,
    /// Where p comes from.
    #[serde(default, skip_serializing_if = "PerturbNoise::is_gaussian")]
    pub noise: PerturbNoise,
    /// Shrink and perturb the one-dimensional parameters (norm gains and biases) too; `false` leaves
    /// them as trained.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub norms_and_biases: bool,
}

/// `shrink_perturb.noise`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PerturbNoise {
    /// p ~ N(0, 1) i.i.d. per element (the paper's isotropic Gaussian).
    #[default]
    Gaussian,
    /// p = a fresh draw of the model's own initializer (normal(0, 0.02) weights with the scaled residual
    /// projections, norm gains 1, biases 0), as Ash & Adams' code perturbs with a new model.
    Init,
}

impl PerturbNoise {
    fn is_gaussian(&self) -> bool {
        *self == PerturbNoise::Gaussian
    }
}

fn yes() -> bool {
    true
}

fn is_true(v: &bool) -> bool {
    *v
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    pub name: String,
    /// Training tokens of the stage (with additive replay: new-data tokens).
    pub tokens: u64,
    /// Source name → token fraction (normalized).
    pub mixture: BTreeMap<String, f64>,
    /// Changes of `mixture` part way through the stage, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mixture_changes: Vec<MixtureChange>,
    #[serde(default)]
    pub replay: Option<ReplayConfig>,
    pub schedule: Schedule,
    #[serde(default)]
    pub optimizer: OptimizerPolicy,
    /// This stage's AdamW settings where they differ from `[optimizer]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adamw: Option<AdamWOverrides>,
    /// The first this many steps of the stage train at LR 0: Adam's moments fill (after a reset) while
    /// the weights stay; the schedule starts after them (OLMoE's optimizer-state warmup).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub moment_warmup_steps: u64,
    /// End the stage after this many of its steps, its schedule still laid out over all of `tokens`: a
    /// branch point (`rewarm branch`), where the LR is the one the whole stage has there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_after_steps: Option<u64>,
    #[serde(default)]
    pub shrink_perturb: Option<ShrinkPerturbConfig>,
    /// Reptile meta-updates during the stage (MER, Abbes et al. 2025).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reptile: Option<ReptileConfig>,
    /// Read the stage's new data as this many passes over a subset of each source, 1/E of the draws
    /// (Guo et al. 2024's mitigation of the stability gap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset_epochs: Option<u64>,
}

/// Reptile's meta-update (MER's efficient form, Riemer et al. 2019; Abbes et al. 2025): every
/// `inner_steps` steps of the stage θ ← θ_anchor + β·(θ − θ_anchor), and the anchor becomes θ. Only the
/// weights move; Adam's moments are left as they are (as MER's code does). β is the fraction of the
/// k-step displacement kept: β = 1 is training without Reptile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReptileConfig {
    /// k: optimizer steps between meta-updates (the first anchor is the stage's starting weights).
    pub inner_steps: u64,
    /// β ∈ (0, 1].
    pub beta: f64,
}

impl PlanConfig {
    pub fn batch_schedule(&self, seq_len: usize) -> BatchSchedule {
        BatchSchedule {
            start_sequences: self.train.batch_tokens / seq_len as u64,
            double_at_tokens: self.train.batch_doubling_tokens.clone(),
        }
    }
}
