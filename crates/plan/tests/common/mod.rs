//! Helpers shared by the plan tests: the NeoX learning rates of docs/papers.md, tolerant comparison,
//! the schedules used in several tests and a `[schedule]` TOML parser; and the head of a plan over two
//! made-up sources (en, de) with batches of 8 sequences of 16 tokens, to which tests append stages.
#![allow(dead_code)] // each test file uses a different subset

pub mod base_plan;

use rewarm_plan::schedule::{
    AnnealShape, CooldownShape, Cosine, DecayShape, Infinite, RepeatedCosine, Schedule, Warmup,
    WarmupStart, Wsd,
};

pub const MAX: f64 = 3e-4;
pub const CONST: f64 = 1.65e-4;
pub const MIN: f64 = 3e-5;

/// |a − b| within 1e-12 relative (values here are ~1e-4, far above rounding noise).
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
}

#[track_caller]
pub fn assert_close(got: f64, want: f64) {
    assert!(close(got, want), "got {got:e}, want {want:e}");
}

pub fn cosine(warmup_start: WarmupStart, warmup: f64, decay_end: f64) -> Schedule {
    Schedule::Cosine(Cosine {
        max_lr: MAX,
        min_lr: MIN,
        warmup: Warmup::Fraction(warmup),
        warmup_start,
        decay_end,
    })
}

pub fn infinite(cooldown: CooldownShape, anneal: AnnealShape) -> Schedule {
    Schedule::Infinite(Infinite {
        max_lr: MAX,
        const_lr: CONST,
        min_lr: MIN,
        warmup: Warmup::Fraction(0.01),
        warmup_start: WarmupStart::Zero,
        cooldown,
        alpha: 10.0,
        cooldown_fraction: 0.60,
        constant_fraction: 0.85,
        anneal,
    })
}

pub fn wsd(shape: DecayShape, final_lr_ratio: f64) -> Schedule {
    Schedule::Wsd(Wsd {
        max_lr: 1e-3,
        warmup: Warmup::Fraction(0.1),
        warmup_start: WarmupStart::MaxOver100,
        decay_fraction: 0.2,
        shape,
        final_lr_ratio,
    })
}

pub fn repeated_cosine() -> Schedule {
    Schedule::RepeatedCosine(RepeatedCosine {
        max_lr: MAX,
        min_lr: MIN,
        repeats: 3,
        warmup: Warmup::Fraction(0.01),
    })
}

/// Largest |η(n+1) − η(n)| over steps `from..to`, as a fraction of the peak.
pub fn max_step_change(s: &Schedule, total: u64, from: u64, to: u64) -> f64 {
    (from..to)
        .map(|n| (s.lr(n + 1, total) - s.lr(n, total)).abs())
        .fold(0.0, f64::max)
        / s.peak_lr()
}

/// Continuity across `boundary`: the step into it changes η by no more than 1e-3 of the peak
/// (the largest in-phase slope of the schedules below is the 1000-step warmup: 1e-3 per step).
#[track_caller]
pub fn assert_continuous_at(s: &Schedule, total: u64, boundary: u64) {
    let jump = max_step_change(s, total, boundary.saturating_sub(2), boundary + 2);
    assert!(
        jump <= 1.0001e-3,
        "jump of {jump} × peak around step {boundary}: {s:?}"
    );
}

#[derive(Debug, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub schedule: Schedule,
}

pub fn parse(table_body: &str) -> Result<Schedule, toml::de::Error> {
    toml::from_str::<Plan>(&format!("[schedule]\n{table_body}")).map(|p| p.schedule)
}

/// Ibrahim et al.'s re-warm cosine (1% warmup from 0, cosine to η_min at the end) with another η_min.
pub fn cosine_min(min_lr: f64) -> Schedule {
    Schedule::Cosine(Cosine {
        max_lr: MAX,
        min_lr,
        warmup: Warmup::Fraction(0.01),
        warmup_start: WarmupStart::Zero,
        decay_end: 1.0,
    })
}

/// The plan text up to its stages, as a literal for `concat!`.
#[macro_export]
macro_rules! plan_head {
    () => {
        r#"seed = 7
[model]
preset = "tiny"
max_seq_len = 64
[data]
sources = { en = "prepared/en", de = "prepared/de" }
seq_len = 16
[train]
batch_tokens = 128
"#
    };
}
