//! The records of `metrics.jsonl`, one JSON object per line, tagged by `kind` and stamped with the
//! schema version they were written under (docs/metrics.md has every field's meaning).
//!
//! Readers accept every version up to [`SCHEMA_VERSION`] (a line without `schema` is version 1) and
//! skip kinds they do not know, so that a newer writer's extra records do not break an older report.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The version of the record layout this build writes; bump it when a field changes meaning or type.
pub const SCHEMA_VERSION: u32 = 1;

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    #[serde(default = "first_schema")]
    pub schema: u32,
    #[serde(flatten)]
    pub record: Record,
}

fn first_schema() -> u32 {
    1
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Train(TrainRecord),
    Eval(EvalRecord),
    Rollback(RollbackRecord),
    Representation(RepresentationRecord),
    Task(TaskRecord),
    /// A kind this build does not know (written by a newer rewarm); readers skip it.
    #[serde(other)]
    Unknown,
}

impl Record {
    /// Steps done when the record was written.
    pub fn step(&self) -> Option<u64> {
        match self {
            Record::Train(r) => Some(r.step),
            Record::Eval(r) => Some(r.step),
            Record::Rollback(r) => Some(r.step),
            Record::Representation(r) => Some(r.step),
            Record::Task(r) => Some(r.step),
            Record::Unknown => None,
        }
    }
}

/// An optimizer step, written at read-back steps that are log points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainRecord {
    /// Global steps done, counting this one (the first step of a run is 1).
    pub step: u64,
    pub stage: String,
    /// Run-wide training tokens after this step (= the sum of `tokens_by_source`).
    pub tokens: u64,
    /// Cumulative tokens per source: `name` new data, `name/replay` replayed.
    #[serde(default)]
    pub tokens_by_source: BTreeMap<String, u64>,
    pub lr: f64,
    /// Mean next-token loss (nats) of the batch, before this update.
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Global ℓ1 norm of the gradients before clipping, Σ|g| (what `refined` schedules with
    /// `weight = "l1"` read); absent in files written before it was logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm_l1: Option<f64>,
    pub batch_sequences: u64,
    /// Observed replayed rows / batch rows.
    #[serde(default)]
    pub replay_fraction: f64,
    pub tokens_per_second: f64,
    /// Updates skipped as loss spikes so far (`guard.spikes`); absent when none were.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spikes_skipped: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// One validation set evaluated after `step` steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub step: u64,
    /// The stage of the last step done (the first stage at step 0).
    pub stage: String,
    pub tokens: u64,
    pub set: String,
    /// Mean cross-entropy in nats per target token over the whole fixed set.
    pub loss: f64,
    pub perplexity: f64,
    /// `None` when the source's manifest has no byte counts.
    #[serde(default)]
    pub bits_per_byte: Option<f64>,
    /// Target tokens evaluated (absent in the oldest files).
    #[serde(default)]
    pub eval_tokens: Option<u64>,
    /// Which weights were evaluated: absent for the model's own, `"ema"` for `[ema]`'s average.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
}

/// The non-finite guard restored the checkpoint of `step` after `failed_step`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub step: u64,
    pub failed_step: u64,
    pub lr_scale: f64,
}

/// The representation after `step` steps (`[monitor]`), measured on the first sequences of validation
/// set `set` at an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepresentationRecord {
    pub step: u64,
    pub stage: String,
    pub tokens: u64,
    pub set: String,
    /// RankMe (Garrido et al. 2023): exp of the entropy of the final hidden states' normalised singular
    /// values; between 1 and the hidden size.
    pub rank_me: f64,
    /// α-ReQ (Agrawal et al. 2022): the power-law decay λ_k ∝ k^−α of the hidden states' covariance
    /// eigenvalues, fitted by least squares in log–log.
    pub alpha_req: f64,
    /// Fraction of MLP units, over all layers, that are dormant (mean |activation| ≤ τ × their layer's
    /// mean; Sokar et al. 2023).
    pub dormant_fraction: f64,
    /// Per transformer layer, in order.
    pub layers: Vec<LayerStats>,
}

/// A multiple-choice task (`[eval] tasks`) scored after `step` steps, as `rewarm eval --task` scores
/// it: each choice by the summed log-probability of its tokens after the context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub step: u64,
    pub stage: String,
    pub tokens: u64,
    pub task: String,
    /// Questions scored (the whole task file).
    pub questions: u64,
    /// Fraction of questions whose gold choice has the highest summed log-probability.
    pub acc: f64,
    /// The same per byte of the choice's text (lm-evaluation-harness's `acc_norm`).
    pub acc_norm: f64,
    /// The accuracy of guessing: the mean over questions of 1 / their number of choices.
    pub chance: f64,
}

impl TaskRecord {
    /// The standard error of an accuracy p over this record's questions, √(p(1 − p)/(n − 1)), as
    /// lm-evaluation-harness reports it.
    pub fn stderr(&self, p: f64) -> f64 {
        (p * (1.0 - p) / (self.questions.max(2) - 1) as f64).sqrt()
    }
}

/// One layer's share of [`RepresentationRecord`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerStats {
    /// ‖θ_layer‖₂ over all the layer's parameters.
    pub weight_norm: f64,
    /// ‖θ_layer − θ_layer at the previous measurement‖₂; absent at the first one of a process (after a
    /// resume too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_norm: Option<f64>,
    pub dormant_fraction: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_kind_and_schema_and_read_back() {
        let line = Line {
            schema: SCHEMA_VERSION,
            record: Record::Rollback(RollbackRecord {
                step: 10,
                failed_step: 13,
                lr_scale: 0.5,
            }),
        };
        let text = serde_json::to_string(&line).unwrap();
        assert_eq!(
            text,
            r#"{"schema":1,"kind":"rollback","step":10,"failed_step":13,"lr_scale":0.5}"#
        );
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), line);
    }

    #[test]
    fn old_lines_are_schema_1_and_unknown_kinds_are_kept_apart() {
        let old = r#"{"kind":"eval","step":0,"stage":"a","tokens":0,"set":"en","loss":9.0,"perplexity":8103.0,"bits_per_byte":null}"#;
        let line: Line = serde_json::from_str(old).unwrap();
        assert_eq!(line.schema, 1);
        let Record::Eval(e) = line.record else {
            panic!("an eval record")
        };
        assert_eq!((e.bits_per_byte, e.eval_tokens), (None, None));
        let newer: Line = serde_json::from_str(r#"{"schema":1,"kind":"spike","step":4}"#).unwrap();
        assert_eq!(newer.record, Record::Unknown);
    }
}
