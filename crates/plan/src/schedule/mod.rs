//! Learning-rate schedules of every paper in docs/papers.md, as pure functions of progress.
//!
//! A schedule answers one question: what is the LR at optimizer step `n` of a stage of `T` steps?
//! ([`Schedule::lr`]). Nothing else is stored, so a resumed run needs only its step counter, and
//! re-warming is not a mechanism of its own: the next stage simply starts a new schedule
//! (STYLE habit 5).
//!
//! Notation (docs/papers.md): `n` = 0-based optimizer step in the stage, `T` = steps in the stage,
//! `W` = warmup steps, `η` = learning rate.
//!
//! - **Fractions to steps.** Every phase length is a fraction of the stage (of the period, for
//!   repeated cosine), turned into steps by [`fraction_to_steps`]: `round(f·T)`, nearest step, ties
//!   away from zero, clamped to [0, T]. Ibrahim et al.'s 1% of 132,366 steps is 1,324 steps.
//! - **Warmup.** `η(n) = start + (peak − start)·(n + 1)/W` for `n < W` (Megatron's convention: the
//!   first step trains at η_max/W from 0); steps W − 1 and W are at the peak, and W = 0 puts step 0
//!   at the peak. W is a fraction of the stage, a number of steps, or a fraction with a floor
//!   ([`Warmup`]). Where it starts is a [`WarmupStart`]
//!   (docs/papers.md, Q5).
//! - **End of stage.** `n ≥ T` returns `η(T)`, the value the schedule reaches at the end (η_min for
//!   cosine, `f·η_max` for WSD, …); the last training step is `T − 1`.
//! - **Exact ends.** Interpolations are written as `a(1 − t) + b·t`, so phase ends hit their
//!   targets exactly (`η(W) == η_max`, cosine ends at `η_min`, …), which the tests compare with `==`.
//!
//! Each family is a type with its fields, its checks and its LR function side by side (files
//! `simple` for constant, cosine and linear, `wsd`, `infinite` with the anneal branch,
//! `repeated_cosine`, `refined`, `continued` for a stage that goes on with the schedule before it);
//! [`Schedule`] is the TOML `kind` that picks one.

mod batch;
mod checks;
mod continued;
mod error;
mod infinite;
mod refined;
mod repeated_cosine;
mod shapes;
mod simple;
mod warmup;
mod wsd;

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};

pub use batch::BatchSchedule;
pub use continued::Continue;
pub use error::ScheduleError;
pub use infinite::{Anneal, Infinite};
pub use refined::{
    check_grad_norms, median_filter_width, refined_multipliers, RefineWeight, Refined,
};
pub use repeated_cosine::RepeatedCosine;
pub use shapes::{AnnealShape, CooldownShape, DecayShape, WarmupStart};
pub use simple::{Constant, Cosine, Linear};
pub use warmup::{Warmup, WarmupSpec};
pub use wsd::Wsd;

use shapes::mix;

/// An LR schedule for one stage. TOML: a `[schedule]` table whose `kind` picks the family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    Constant(Constant),
    Cosine(Cosine),
    Linear(Linear),
    Wsd(Wsd),
    Infinite(Infinite),
    Anneal(Anneal),
    RepeatedCosine(RepeatedCosine),
    Refined(Refined),
    /// The previous stage's schedule goes on through this stage ([`Continue`]).
    Continue(Continue),
}

/// One schedule family: its checks and its LR as a function of the step.
pub trait Family {
    /// Checks every field; the error names it (`schedule.warmup`), the allowed range and the fix.
    fn validate(&self) -> Result<(), ScheduleError>;
    /// LR at step `n` ≤ `t` of a stage of `t` steps (`n = t`: the value at the end).
    fn lr_at(&self, n: u64, t: u64) -> f64;
    /// The largest LR the schedule reaches (the warmup target).
    fn peak_lr(&self) -> f64;
}

/// Gupta et al. and Ibrahim et al. warm up over 1% of the stage.
fn default_warmup() -> Warmup {
    Warmup::default()
}
fn default_one() -> f64 {
    1.0
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

/// Warmup LR at step `n` < `w` of a linear warmup from `start` to `peak` over `w` steps: Megatron's
/// convention, `start + (peak − start)·(n + 1)/w`, so the first step already trains (η_max/W from 0)
/// and the last warmup step, `w − 1`, is at the peak.
fn warmup_lr(start: f64, peak: f64, n: u64, w: u64) -> f64 {
    mix(start, peak, (n + 1) as f64 / w as f64)
}

/// Cosine from `from` (x = 0) to `to` (x = 1).
fn cosine_lr(from: f64, to: f64, x: f64) -> f64 {
    mix(from, to, (1.0 - (PI * x).cos()) / 2.0)
}

impl Schedule {
    /// The family this schedule is.
    fn family(&self) -> &dyn Family {
        match self {
            Self::Constant(f) => f,
            Self::Cosine(f) => f,
            Self::Linear(f) => f,
            Self::Wsd(f) => f,
            Self::Infinite(f) => f,
            Self::Anneal(f) => f,
            Self::RepeatedCosine(f) => f,
            Self::Refined(f) => f,
            Self::Continue(f) => f,
        }
    }

    /// LR at optimizer step `step` (0-based) of a stage of `total_steps` steps. Pure; steps at or
    /// past the end return the end-of-stage value η(T).
    pub fn lr(&self, step: u64, total_steps: u64) -> f64 {
        self.family().lr_at(step.min(total_steps), total_steps)
    }

    /// Checks every field; the error names it (`schedule.warmup`), the allowed range and the fix.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        self.family().validate()
    }

    /// The largest LR the schedule reaches (the warmup target): `lr` for a constant schedule,
    /// `start_lr` for an anneal branch, `max_lr` otherwise.
    pub fn peak_lr(&self) -> f64 {
        self.family().peak_lr()
    }

    /// Computes and stores the refined multipliers from the earlier run's gradient norms (checked
    /// with [`check_grad_norms`]). Any other schedule family is an error naming `schedule.kind`.
    pub fn fill_refined_multipliers(&mut self, grad_norms: &[f64]) -> Result<(), ScheduleError> {
        match self {
            Self::Refined(r) => {
                check_grad_norms("schedule.grad_norms", grad_norms)?;
                r.multipliers = refined_multipliers(grad_norms, r.smoothing, r.weight);
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
            Self::Constant(_) => "constant",
            Self::Cosine(_) => "cosine",
            Self::Linear(_) => "linear",
            Self::Wsd(_) => "wsd",
            Self::Infinite(_) => "infinite",
            Self::Anneal(_) => "anneal",
            Self::RepeatedCosine(_) => "repeated_cosine",
            Self::Refined(_) => "refined",
            Self::Continue(_) => "continue",
        }
    }

    /// Ibrahim et al. / Gupta et al. re-warm + re-decay: 1% warmup from 0, cosine to 0.1·max_lr at
    /// the end of the stage.
    pub fn rewarm_cosine(max_lr: f64) -> Self {
        Self::Cosine(Cosine {
            max_lr,
            min_lr: 0.1 * max_lr,
            warmup: default_warmup(),
            warmup_start: WarmupStart::Zero,
            decay_end: 1.0,
        })
    }

    /// NeoX fork `adam_inf{cos,inv}_lr3e-4_3e-5_wu-001`: 3e-4 → 1.65e-4 → 3e-5, warmup 1%,
    /// cooldown 60%, constant until 85% after warmup, exponential anneal.
    pub fn neox_infinite(cooldown: CooldownShape) -> Self {
        Self::Infinite(Infinite {
            max_lr: 3e-4,
            const_lr: 1.65e-4,
            min_lr: 3e-5,
            warmup: default_warmup(),
            warmup_start: WarmupStart::Zero,
            cooldown,
            alpha: infinite::default_alpha(),
            cooldown_fraction: infinite::default_cooldown_fraction(),
            constant_fraction: infinite::default_constant_fraction(),
            anneal: AnnealShape::Exponential,
        })
    }

    /// Hägele et al. WSD: 1% warmup from max_lr/100, (1 − √x) decay over the last 20% to 0.
    pub fn hagele_wsd(max_lr: f64) -> Self {
        Self::Wsd(Wsd {
            max_lr,
            warmup: default_warmup(),
            warmup_start: wsd::default_wsd_warmup_start(),
            decay_fraction: wsd::default_wsd_decay_fraction(),
            shape: DecayShape::OneMinusSqrt,
            final_lr_ratio: 0.0,
        })
    }
}
