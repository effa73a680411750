//! Phase shapes shared by the schedule families: where a warmup starts and how a WSD decay, an
//! infinite-schedule cooldown or an anneal bends. Each is a pure function of `x` ∈ [0, 1], the
//! progress through its phase, so the families in `mod.rs` only decide *which* phase a step is in.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

/// Linear interpolation a → b written so that both ends are exact in floating point
/// (t = 0 gives a, t = 1 gives b); `a + (b − a)·t` is not exact at t = 1.
pub(crate) fn mix(a: f64, b: f64, t: f64) -> f64 {
    a * (1.0 - t) + b * t
}

/// Geometric interpolation a → b (a, b > 0): `a^(1−t)·b^t`. Exact at both ends because
/// `powf(v, 0) = 1` and `powf(v, 1) = v`, so an exponential anneal lands on η_min exactly.
pub(crate) fn geo_mix(a: f64, b: f64, t: f64) -> f64 {
    a.powf(1.0 - t) * b.powf(t)
}

/// Where a linear warmup starts (docs/papers.md#q5-warmup-start-value).
///
/// The papers disagree: Gupta et al. and Ibrahim et al. warm up from 0; the NeoX fork's repeated
/// cosine re-warms from η_min; Hägele et al.'s `wsd_schedule` starts at η_max/100.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarmupStart {
    /// η(0) = 0 (Gupta et al. 2023; Ibrahim et al. 2024).
    #[default]
    Zero,
    /// η(0) = the schedule's floor η_min (NeoX "cosine-inf" re-warm).
    Min,
    /// η(0) = η_max/100 (Hägele et al. 2024, `wsd_schedule`).
    #[serde(rename = "max_over_100")]
    MaxOver100,
}

impl WarmupStart {
    /// The LR at step 0 of a warmup that peaks at `max_lr` in a schedule whose floor is `min_lr`.
    pub fn lr(self, max_lr: f64, min_lr: f64) -> f64 {
        match self {
            Self::Zero => 0.0,
            Self::Min => min_lr,
            Self::MaxOver100 => max_lr / 100.0,
        }
    }
}

/// Decay shapes of Hägele et al.'s `wsd_schedule` (docs/papers.md#wsd-schedules-hägele-et-al-2024), as
/// multipliers of η_max.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayShape {
    /// `f + (1 − f)(1 − x)`.
    Linear,
    /// `f + (1 − f)(1 + cos πx)/2`.
    Cosine,
    /// `f + (1 − f)(1 − √x)`: Hägele et al.'s new cooldown, which beats linear (F2 in docs/papers.md).
    #[default]
    OneMinusSqrt,
    /// `f + (1 − f)(1 − x²)`.
    Square,
    /// `f^x` (needs f > 0).
    Exponential,
    /// `2·linear − cosine`.
    MirrorCosine,
}

impl DecayShape {
    /// Multiplier of η_max at progress `x` ∈ [0, 1] through the decay, from 1 at x = 0 to
    /// `final_ratio` (f) at x = 1. `x` outside [0, 1] is clamped.
    pub fn factor(self, x: f64, final_ratio: f64) -> f64 {
        let x = x.clamp(0.0, 1.0);
        let half_cosine = (1.0 + (PI * x).cos()) / 2.0;
        // `remaining` is the share of (1 − f) still left: 1 at x = 0, 0 at x = 1.
        let remaining = match self {
            Self::Linear => 1.0 - x,
            Self::Cosine => half_cosine,
            Self::OneMinusSqrt => 1.0 - x.sqrt(),
            Self::Square => 1.0 - x * x,
            Self::MirrorCosine => 2.0 * (1.0 - x) - half_cosine,
            Self::Exponential => return final_ratio.powf(x),
        };
        mix(final_ratio, 1.0, remaining)
    }
}

/// Cooldown shapes of the infinite schedule, η_max → η_const (NeoX `AnnealingLR.get_lr`;
/// docs/papers.md#infinite-schedule-in-the-neox-code).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CooldownShape {
    /// `η_const + (η_max − η_const)(1 + cos(πx))/2`: "Inf Cos" of Singh, Janson et al. 2025, the
    /// schedule that paper recommends, hence the default.
    #[default]
    Cosine,
    /// `η_max + (η_const − η_max)·h(x)/h(1)`, `h(x) = 1/√(1 + αx) − 1`: monotone and convex.
    InverseSqrt,
    /// `η_max − (η_max − η_const)·x` (NeoX "constant_infinite").
    Linear,
}

impl CooldownShape {
    /// How far the cooldown has gone from η_max (0) to η_const (1) at progress `x` ∈ [0, 1];
    /// `alpha` is the inverse-sqrt timescale α (ignored by the other shapes).
    pub fn progress(self, x: f64, alpha: f64) -> f64 {
        let x = x.clamp(0.0, 1.0);
        match self {
            Self::Cosine => (1.0 - (PI * x).cos()) / 2.0,
            Self::Linear => x,
            Self::InverseSqrt => {
                let h = |x: f64| 1.0 / (1.0 + alpha * x).sqrt() - 1.0;
                h(x) / h(1.0)
            }
        }
    }
}

/// Anneal shapes, η_const → η_min (docs/papers.md#infinite-schedule-in-the-neox-code,
/// #q4-infinite-schedule-conventions).
///
/// TOML: `anneal = "exponential"` or `anneal = { exponential_tau = { tau_steps = 10000.0 } }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AnnealShape {
    /// Normalized exponential `η_const·(η_min/η_const)^{Δ/L}` over the anneal length L: reaches
    /// η_min exactly at the end of the stage (NeoX code; Beyond Cosine Decay's MAE code). Needs η_min > 0.
    #[default]
    Exponential,
    /// `η_min + (η_const − η_min)·exp(−Δ/τ)`, τ in optimizer steps (one third-party port of
    /// Beyond Cosine Decay uses τ = 1e4). Approaches η_min but does not reach it at the end.
    ExponentialTau {
        /// Time constant τ in optimizer steps, > 0.
        tau_steps: f64,
    },
}

impl AnnealShape {
    /// LR `delta_steps` into an anneal of `length_steps` steps that starts at `from_lr` and ends
    /// at `min_lr`. `delta_steps >= length_steps` is the end of the anneal.
    pub fn lr(self, from_lr: f64, min_lr: f64, delta_steps: u64, length_steps: u64) -> f64 {
        match self {
            Self::Exponential => {
                if delta_steps >= length_steps {
                    min_lr
                } else {
                    geo_mix(from_lr, min_lr, delta_steps as f64 / length_steps as f64)
                }
            }
            Self::ExponentialTau { tau_steps } => {
                let delta = delta_steps.min(length_steps) as f64;
                mix(min_lr, from_lr, (-delta / tau_steps).exp())
            }
        }
    }
}
