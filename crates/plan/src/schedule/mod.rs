//! Learning-rate schedules of every paper in the spec (§1.2), as pure functions of progress.
//!
//! A schedule answers one question: what is the LR at optimizer step `n` of a stage of `T` steps?
//! ([`Schedule::lr`]). Nothing else is stored, so a resumed run needs only its step counter, and
//! re-warming is not a mechanism of its own: the next stage simply starts a new schedule
//! (STYLE habit 5).
//!
//! Notation (spec): `n` = 0-based optimizer step in the stage, `T` = steps in the stage,
//! `W` = warmup steps, `η` = learning rate.
//!
//! - **Fractions to steps.** Every phase length is a fraction of the stage (of the period, for
//!   repeated cosine), turned into steps by [`fraction_to_steps`]: `round(f·T)`, nearest step, ties
//!   away from zero, clamped to [0, T]. Ibrahim et al.'s 1% of 132,366 steps is 1,324 steps.
//! - **Warmup.** `η(n) = start + (peak − start)·n/W` for `n < W`; step W is the first step at the
//!   peak, and W = 0 puts step 0 at the peak. Where it starts is a [`WarmupStart`] (spec §4.5).
//! - **End of stage.** `n ≥ T` returns `η(T)`, the value the schedule reaches at the end (η_min for
//!   cosine, `f·η_max` for WSD, …); the last training step is `T − 1`.
//! - **Exact ends.** Interpolations are written as `a(1 − t) + b·t`, so phase ends hit their
//!   targets exactly (`η(W) == η_max`, cosine ends at `η_min`, …), which the tests compare with `==`.

mod batch;
mod error;
mod refined;
mod shapes;
mod validate;

use std::f64::consts::PI;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use batch::BatchSchedule;
pub use error::ScheduleError;
pub use refined::{check_grad_norms, median_filter_width, refined_multipliers, RefineWeight};
pub use shapes::{AnnealShape, CooldownShape, DecayShape, WarmupStart};

use shapes::mix;

/// An LR schedule for one stage. TOML: a `[schedule]` table whose `kind` picks the family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Schedule {
    /// Constant LR: Gupta et al.'s no-re-warm baseline (3e-5 = Pythia's final LR).
    Constant { lr: f64 },

    /// Linear warmup, then cosine from `max_lr` to `min_lr`, reached at `decay_end` and held after:
    /// `η = η_min + (η_max − η_min)(1 + cos(π(n − W)/(D − W)))/2` with D = `decay_end`·T
    /// (Ibrahim et al. Eq. 2). Re-warm + re-decay is this schedule restarted in each stage.
    Cosine {
        max_lr: f64,
        /// Ibrahim et al. and Gupta et al. decay to 0.1·max_lr.
        min_lr: f64,
        /// Warmup length, fraction of the stage's steps.
        #[serde(default = "default_warmup")]
        warmup: f64,
        #[serde(default)]
        warmup_start: WarmupStart,
        /// Fraction of the stage at which η_min is reached; 1.0 = the end. Gupta et al. use
        /// 240/297 (η_min at 240B of 297B tokens, then constant).
        #[serde(default = "default_one")]
        decay_end: f64,
    },

    /// Linear warmup, then linear decay to `min_lr` at the end of the stage (Defazio et al.:
    /// linear decay is worst-case optimal, F4).
    Linear {
        max_lr: f64,
        /// Defazio et al. decay to 0.
        #[serde(default)]
        min_lr: f64,
        #[serde(default = "default_warmup")]
        warmup: f64,
        #[serde(default)]
        warmup_start: WarmupStart,
    },

    /// Warmup–stable–decay (Hägele et al. 2024 `wsd_schedule`; MiniCPM): warmup to `max_lr`, hold,
    /// then decay over the last `decay_fraction` of the stage to `final_lr_ratio·max_lr`.
    Wsd {
        max_lr: f64,
        /// Hägele et al. give warmup in steps (300 by default); we keep the project-wide 1%.
        #[serde(default = "default_warmup")]
        warmup: f64,
        /// Hägele et al.: warmup starts at η_max/100.
        #[serde(default = "default_wsd_warmup_start")]
        warmup_start: WarmupStart,
        /// Hägele et al.: cooldowns of 10–20% match cosine; README example 0.2.
        #[serde(default = "default_wsd_decay_fraction")]
        decay_fraction: f64,
        #[serde(default)]
        shape: DecayShape,
        /// f in the decay formulas; Hägele et al. decay to 0.
        #[serde(default)]
        final_lr_ratio: f64,
    },

    /// Infinite schedule, four phases (Ibrahim et al. §7; Singh, Janson et al. 2025): warmup →
    /// cooldown `max_lr` → `const_lr` → constant → anneal to `min_lr`.
    ///
    /// Spec §4.4 leaves the convention open; we use the GPT-NeoX fork's (`AnnealingLR.get_lr`):
    /// with W warmup steps and `n' = n − W`, the cooldown covers `0 ≤ n' < K` and the constant phase
    /// `K ≤ n' < C_end`, where K = `cooldown_fraction`·T and C_end = `constant_fraction`·T are
    /// measured *after* warmup but as fractions of the *total* T. The anneal then runs over the
    /// remaining `L = T − W − C_end` steps. Cooldown, constant and anneal are clamped with
    /// `max(η, η_min)` as in that code, except the inverse-sqrt cooldown (≥ η_const anyway).
    /// `constant_fraction = 1 − warmup` leaves no anneal: the main run of Ibrahim et al.'s
    /// deployment recipe, annealed on a branch with [`Schedule::Anneal`].
    Infinite {
        max_lr: f64,
        /// NeoX configs: 1.65e-4 = (η_max + η_min)/2.
        const_lr: f64,
        min_lr: f64,
        #[serde(default = "default_warmup")]
        warmup: f64,
        #[serde(default)]
        warmup_start: WarmupStart,
        #[serde(default)]
        cooldown: CooldownShape,
        /// Inverse-sqrt timescale α; NeoX configs: timescale 10.
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// K/T. NeoX fork configs adam_infcos: cooldown_iters_percent 0.60.
        #[serde(default = "default_cooldown_fraction")]
        cooldown_fraction: f64,
        /// C_end/T, the end of the constant phase counted from the end of warmup (NeoX
        /// `constant_iters_percent`, not a phase length). NeoX configs: 0.85, so with 1% warmup
        /// the anneal covers the last 14%.
        #[serde(default = "default_constant_fraction")]
        constant_fraction: f64,
        #[serde(default)]
        anneal: AnnealShape,
    },

    /// Anneal branch started from a constant-phase checkpoint (Ibrahim et al. §7 deployment; spec
    /// E2): from `start_lr` (usually the main run's η_const) to `min_lr` over the whole stage.
    Anneal {
        start_lr: f64,
        min_lr: f64,
        #[serde(default)]
        shape: AnnealShape,
    },

    /// Repeated cosine, NeoX "cosine-inf" (Ibrahim et al. §7 baseline): the stage is cut into
    /// `repeats` periods of P = T/repeats steps (period k starts at ⌊k·T/repeats⌋); each warms up
    /// over `warmup`·P steps, from 0 in the first period and from `min_lr` in later ones, then
    /// cosine-decays to `min_lr` at the end of the period.
    RepeatedCosine {
        max_lr: f64,
        min_lr: f64,
        /// NeoX fork: num_repeats 3 in the §7 comparison.
        repeats: u32,
        /// Warmup length, fraction of one *period*.
        #[serde(default = "default_warmup")]
        warmup: f64,
    },

    /// Refined schedule (Defazio et al. 2023): `max_lr` × multipliers computed by
    /// [`refined_multipliers`] from an earlier run's gradient norms, mapped onto the steps after an
    /// optional warmup (linear interpolation when the recorded length differs from the stage).
    /// The warmup ends at `max_lr` × the first multiplier, so the schedule stays continuous.
    Refined {
        max_lr: f64,
        /// Refined schedules warm up by themselves (spec F5), so none is prepended by default.
        #[serde(default)]
        warmup: f64,
        #[serde(default)]
        warmup_start: WarmupStart,
        /// Per-step gradient norms of the earlier run; plan loading reads this file and calls
        /// [`Schedule::fill_refined_multipliers`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grad_norms: Option<PathBuf>,
        /// Median-filter width as a fraction of the recorded steps (σ₂; no paper default, ~0.1).
        smoothing: f64,
        #[serde(default)]
        weight: RefineWeight,
        /// Filled from `grad_norms` at plan loading; written out so resolved configs are complete.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        multipliers: Vec<f64>,
    },
}

/// Gupta et al. and Ibrahim et al. warm up over 1% of the stage.
fn default_warmup() -> f64 {
    0.01
}
fn default_one() -> f64 {
    1.0
}
/// Hägele et al. `wsd_schedule`: the warmup starts at η_max/100.
fn default_wsd_warmup_start() -> WarmupStart {
    WarmupStart::MaxOver100
}
/// Hägele et al. README example `--wsd-fract-decay 0.2` (code default 0.1).
fn default_wsd_decay_fraction() -> f64 {
    0.2
}
/// NeoX fork configs: timescale 10.
fn default_alpha() -> f64 {
    10.0
}
/// NeoX fork configs adam_infcos: cooldown_iters_percent 0.60.
fn default_cooldown_fraction() -> f64 {
    0.60
}
/// NeoX fork configs adam_infcos: constant_iters_percent 0.85.
fn default_constant_fraction() -> f64 {
    0.85
}

/// Steps in a phase of `fraction` of `total_steps`: `round(fraction·total_steps)`, nearest step,
/// ties away from zero, clamped to [0, total_steps] (a NaN fraction gives 0).
pub fn fraction_to_steps(fraction: f64, total_steps: u64) -> u64 {
    // `as` saturates: negative and NaN become 0.
    ((fraction * total_steps as f64).round() as u64).min(total_steps)
}

/// Progress of `n` through the phase `[from, to)`: 0 at `from`, 1 at or after `to`.
fn progress(n: u64, from: u64, to: u64) -> f64 {
    if n >= to {
        1.0
    } else if n <= from {
        0.0
    } else {
        (n - from) as f64 / (to - from) as f64
    }
}

/// Warmup LR at step `n` < `w` of a linear warmup from `start` to `peak` over `w` steps.
fn warmup_lr(start: f64, peak: f64, n: u64, w: u64) -> f64 {
    mix(start, peak, n as f64 / w as f64)
}

/// Cosine from `from` (x = 0) to `to` (x = 1).
fn cosine_lr(from: f64, to: f64, x: f64) -> f64 {
    mix(from, to, (1.0 - (PI * x).cos()) / 2.0)
}

impl Schedule {
    /// LR at optimizer step `step` (0-based) of a stage of `total_steps` steps. Pure; steps at or
    /// past the end return the end-of-stage value η(T).
    pub fn lr(&self, step: u64, total_steps: u64) -> f64 {
        let t = total_steps;
        let n = step.min(t);
        match *self {
            Self::Constant { lr } => lr,
            Self::Cosine {
                max_lr,
                min_lr,
                warmup,
                warmup_start,
                decay_end,
            } => {
                let w = fraction_to_steps(warmup, t);
                let d = fraction_to_steps(decay_end, t);
                if n < w {
                    warmup_lr(warmup_start.lr(max_lr, min_lr), max_lr, n, w)
                } else if n >= d {
                    min_lr
                } else {
                    cosine_lr(max_lr, min_lr, progress(n, w, d))
                }
            }
            Self::Linear {
                max_lr,
                min_lr,
                warmup,
                warmup_start,
            } => {
                let w = fraction_to_steps(warmup, t);
                if n < w {
                    warmup_lr(warmup_start.lr(max_lr, min_lr), max_lr, n, w)
                } else {
                    mix(max_lr, min_lr, progress(n, w, t))
                }
            }
            Self::Wsd {
                max_lr,
                warmup,
                warmup_start,
                decay_fraction,
                shape,
                final_lr_ratio,
            } => {
                let w = fraction_to_steps(warmup, t);
                let decay_start = t - fraction_to_steps(decay_fraction, t);
                if n < w {
                    let start = warmup_start.lr(max_lr, final_lr_ratio * max_lr);
                    warmup_lr(start, max_lr, n, w)
                } else if n < decay_start {
                    max_lr
                } else {
                    max_lr * shape.factor(progress(n, decay_start, t), final_lr_ratio)
                }
            }
            Self::Infinite {
                max_lr,
                const_lr,
                min_lr,
                warmup,
                warmup_start,
                cooldown,
                alpha,
                cooldown_fraction,
                constant_fraction,
                anneal,
            } => {
                let w = fraction_to_steps(warmup, t);
                if n < w {
                    return warmup_lr(warmup_start.lr(max_lr, min_lr), max_lr, n, w);
                }
                let after = t - w; // steps after warmup
                let constant_end = fraction_to_steps(constant_fraction, t).min(after);
                let k = fraction_to_steps(cooldown_fraction, t).min(constant_end);
                let n_after = n - w;
                if n_after < k {
                    let eta = mix(
                        max_lr,
                        const_lr,
                        cooldown.progress(n_after as f64 / k as f64, alpha),
                    );
                    match cooldown {
                        CooldownShape::InverseSqrt => eta,
                        CooldownShape::Cosine | CooldownShape::Linear => eta.max(min_lr),
                    }
                } else if n_after < constant_end || constant_end == after {
                    const_lr.max(min_lr)
                } else {
                    let length = after - constant_end;
                    anneal
                        .lr(const_lr, min_lr, n_after - constant_end, length)
                        .max(min_lr)
                }
            }
            Self::Anneal {
                start_lr,
                min_lr,
                shape,
            } => shape.lr(start_lr, min_lr, n, t).max(min_lr),
            Self::RepeatedCosine {
                max_lr,
                min_lr,
                repeats,
                warmup,
            } => {
                if n >= t || repeats == 0 {
                    return min_lr;
                }
                let r = u128::from(repeats);
                let period_start = |k: u128| (k * u128::from(t) / r) as u64;
                // Period k holds n when ⌊kT/R⌋ ≤ n < ⌊(k+1)T/R⌋, i.e. k = ⌈(n+1)R/T⌉ − 1.
                let k = (u128::from(n + 1) * r).div_ceil(u128::from(t)) - 1;
                let (start, end) = (period_start(k), period_start(k + 1));
                let (p, period) = (n - start, end - start);
                let w = fraction_to_steps(warmup, period);
                if p < w {
                    let from = if k == 0 { 0.0 } else { min_lr };
                    warmup_lr(from, max_lr, p, w)
                } else {
                    cosine_lr(max_lr, min_lr, progress(p, w, period))
                }
            }
            Self::Refined {
                max_lr,
                warmup,
                warmup_start,
                ref multipliers,
                ..
            } => {
                let w = fraction_to_steps(warmup, t);
                let first = refined::multiplier_at(multipliers, 0, t - w);
                if n < w {
                    warmup_lr(warmup_start.lr(max_lr * first, 0.0), max_lr * first, n, w)
                } else {
                    max_lr * refined::multiplier_at(multipliers, n - w, t - w)
                }
            }
        }
    }

    /// The largest LR the schedule reaches (the warmup target): `lr` for a constant schedule,
    /// `start_lr` for an anneal branch, `max_lr` otherwise.
    pub fn peak_lr(&self) -> f64 {
        match *self {
            Self::Constant { lr } => lr,
            Self::Anneal { start_lr, .. } => start_lr,
            Self::Cosine { max_lr, .. }
            | Self::Linear { max_lr, .. }
            | Self::Wsd { max_lr, .. }
            | Self::Infinite { max_lr, .. }
            | Self::RepeatedCosine { max_lr, .. }
            | Self::Refined { max_lr, .. } => max_lr,
        }
    }

    /// Computes and stores the refined multipliers from the earlier run's gradient norms (checked
    /// with [`check_grad_norms`]). Any other schedule family is an error naming `schedule.kind`.
    pub fn fill_refined_multipliers(&mut self, grad_norms: &[f64]) -> Result<(), ScheduleError> {
        match self {
            Self::Refined {
                smoothing,
                weight,
                multipliers,
                ..
            } => {
                check_grad_norms("schedule.grad_norms", grad_norms)?;
                *multipliers = refined_multipliers(grad_norms, *smoothing, *weight);
                Ok(())
            }
            other => Err(ScheduleError::new(
                "schedule.kind",
                other.kind_name(),
                "refined (only refined schedules take gradient norms)",
                "set kind = \"refined\" or drop the gradient-norm file",
            )),
        }
    }

    /// The TOML `kind` of this schedule.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Constant { .. } => "constant",
            Self::Cosine { .. } => "cosine",
            Self::Linear { .. } => "linear",
            Self::Wsd { .. } => "wsd",
            Self::Infinite { .. } => "infinite",
            Self::Anneal { .. } => "anneal",
            Self::RepeatedCosine { .. } => "repeated_cosine",
            Self::Refined { .. } => "refined",
        }
    }

    /// Ibrahim et al. / Gupta et al. re-warm + re-decay: 1% warmup from 0, cosine to 0.1·max_lr at
    /// the end of the stage.
    pub fn rewarm_cosine(max_lr: f64) -> Self {
        Self::Cosine {
            max_lr,
            min_lr: 0.1 * max_lr,
            warmup: default_warmup(),
            warmup_start: WarmupStart::Zero,
            decay_end: 1.0,
        }
    }

    /// NeoX fork `adam_inf{cos,inv}_lr3e-4_3e-5_wu-001`: 3e-4 → 1.65e-4 → 3e-5, warmup 1%,
    /// cooldown 60%, constant until 85% after warmup, exponential anneal.
    pub fn neox_infinite(cooldown: CooldownShape) -> Self {
        Self::Infinite {
            max_lr: 3e-4,
            const_lr: 1.65e-4,
            min_lr: 3e-5,
            warmup: default_warmup(),
            warmup_start: WarmupStart::Zero,
            cooldown,
            alpha: default_alpha(),
            cooldown_fraction: default_cooldown_fraction(),
            constant_fraction: default_constant_fraction(),
            anneal: AnnealShape::Exponential,
        }
    }

    /// Hägele et al. WSD: 1% warmup from max_lr/100, (1 − √x) decay over the last 20% to 0.
    pub fn hagele_wsd(max_lr: f64) -> Self {
        Self::Wsd {
            max_lr,
            warmup: default_warmup(),
            warmup_start: default_wsd_warmup_start(),
            decay_fraction: default_wsd_decay_fraction(),
            shape: DecayShape::OneMinusSqrt,
            final_lr_ratio: 0.0,
        }
    }
}
