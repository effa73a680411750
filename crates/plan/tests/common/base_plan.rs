//! The plan tests' base plan (three made-up sources; two stages of 16,000 tokens, the second re-warmed
//! with 25% compute-equivalent replay of the first: sequences of 16 tokens, batches of 8 sequences, a
//! model context of 64, 125 steps per stage) and the readers of its mixture.

use rewarm_data::MixtureIndex;
use rewarm_plan::{Plan, PlanConfig, PlanError};
use std::path::Path;

pub const SEQ: u64 = 16;
pub const BATCH: u64 = 8; // sequences
pub const BATCH_TOKENS: u64 = SEQ * BATCH;
pub const MAX_LR: f64 = 1e-3;
pub const MIN_LR: f64 = 1e-4;

pub const BASE: &str = r#"seed = 7

[model]
preset = "tiny"
max_seq_len = 64

[data]
sources = { en = "prepared/en", de = "prepared/de", code = "prepared/code" }
seq_len = 16

[train]
batch_tokens = 128

[eval]
every_steps = 10
dense_steps = 6
dense_every_steps = 3

[checkpoint]
every_steps = 7

[[stages]]
name = "en"
tokens = 16_000
mixture = { en = 1.0 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.04 }

[[stages]]
name = "de"
tokens = 16_000
mixture = { de = 1.0 }
replay = { fraction = 0.25 }
schedule = { kind = "cosine", max_lr = 1e-3, min_lr = 1e-4, warmup = 0.04 }
"#;

/// Made-up training-split sizes (sequences of 16 tokens) of code, de and en: the order of
/// `plan.sources`, which is sorted by name.
pub const SOURCE_SEQUENCES: [u64; 3] = [50_000, 40_000, 30_000];

pub fn file() -> &'static Path {
    Path::new("p.toml")
}

/// The base plan with `old` replaced by `new` (which must occur).
pub fn with(old: &str, new: &str) -> String {
    assert!(BASE.contains(old), "the base plan has no `{old}`");
    BASE.replacen(old, new, 1)
}

pub fn parse(text: &str) -> Result<PlanConfig, PlanError> {
    PlanConfig::from_toml(text, file())
}

pub fn plan(text: &str) -> Result<Plan, PlanError> {
    Plan::new(parse(text).expect("parses"), file())
}

pub fn ok(text: &str) -> Plan {
    plan(text).unwrap_or_else(|e| panic!("valid plan rejected: {e}"))
}

pub fn index(plan: &Plan) -> MixtureIndex {
    MixtureIndex::new(plan.mixture_plan(&SOURCE_SEQUENCES)).expect("mixture index")
}

pub fn source(plan: &Plan, name: &str) -> usize {
    plan.sources
        .iter()
        .position(|s| s.name == name)
        .expect("source")
}

/// Planned (new, replay) sequences of a stage from `source`.
pub fn draws_of(index: &MixtureIndex, stage: usize, source: usize) -> (u64, u64) {
    let mut out = (0, 0);
    for d in index.stage_draws(stage) {
        if d.source == source {
            if d.replay {
                out.1 += d.sequences;
            } else {
                out.0 += d.sequences;
            }
        }
    }
    out
}

/// (new, replay) tokens of a stage over all sources.
pub fn stage_tokens(index: &MixtureIndex, stage: usize) -> (u64, u64) {
    index
        .stage_draws(stage)
        .iter()
        .fold((0, 0), |(new, replay), d| {
            if d.replay {
                (new, replay + d.sequences * SEQ)
            } else {
                (new + d.sequences * SEQ, replay)
            }
        })
}

#[track_caller]
pub fn within(got: f64, want: f64, tolerance: f64) {
    assert!(
        (got - want).abs() <= tolerance,
        "got {got}, want {want} ± {tolerance}"
    );
}

#[track_caller]
pub fn rel_close(got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-12 * want.abs().max(1e-300),
        "got {got:e}, want {want:e}"
    );
}
