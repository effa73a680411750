//! The infinite schedule (Ibrahim et al. §7; Singh, Janson et al. 2025) and the anneal branch taken
//! from its constant phase.

use super::checks::{
    anneal_shape, at_most, fraction, invalid, nonnegative_lr, peak_and_floor, positive_lr,
};
use super::shapes::mix;
use super::{default_warmup, fraction_to_steps, warmup_lr};
use super::{AnnealShape, CooldownShape, Family, ScheduleError, Warmup, WarmupStart};
use serde::{Deserialize, Serialize};

/// Four phases: warmup → cooldown `max_lr` → `const_lr` → constant → anneal to `min_lr`.
///
/// docs/papers.md leaves the convention open; we use the GPT-NeoX fork's (`AnnealingLR.get_lr`):
/// with W warmup steps and `n' = n − W`, the cooldown covers `0 ≤ n' < K` and the constant phase
/// `K ≤ n' < C_end`, where K = `cooldown_fraction`·T and C_end = `constant_fraction`·T are
/// measured *after* warmup but as fractions of the *total* T. The anneal then runs over the
/// remaining `L = T − W − C_end` steps. Cooldown, constant and anneal are clamped with
/// `max(η, η_min)` as in that code, except the inverse-sqrt cooldown (≥ η_const anyway).
/// `constant_fraction = 1 − warmup` leaves no anneal: the main run of Ibrahim et al.'s
/// deployment recipe, annealed on a branch with [`Anneal`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Infinite {
    pub max_lr: f64,
    /// NeoX configs: 1.65e-4 = (η_max + η_min)/2.
    pub const_lr: f64,
    pub min_lr: f64,
    #[serde(default = "default_warmup")]
    pub warmup: Warmup,
    #[serde(default)]
    pub warmup_start: WarmupStart,
    #[serde(default)]
    pub cooldown: CooldownShape,
    /// Inverse-sqrt timescale α; NeoX configs: timescale 10.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// K/T. NeoX fork configs adam_infcos: cooldown_iters_percent 0.60.
    #[serde(default = "default_cooldown_fraction")]
    pub cooldown_fraction: f64,
    /// C_end/T, the end of the constant phase counted from the end of warmup (NeoX
    /// `constant_iters_percent`, not a phase length). NeoX configs: 0.85, so with 1% warmup
    /// the anneal covers the last 14%.
    #[serde(default = "default_constant_fraction")]
    pub constant_fraction: f64,
    #[serde(default)]
    pub anneal: AnnealShape,
}

/// NeoX fork configs: timescale 10.
pub(crate) fn default_alpha() -> f64 {
    10.0
}
/// NeoX fork configs adam_infcos: cooldown_iters_percent 0.60.
pub(crate) fn default_cooldown_fraction() -> f64 {
    0.60
}
/// NeoX fork configs adam_infcos: constant_iters_percent 0.85.
pub(crate) fn default_constant_fraction() -> f64 {
    0.85
}

impl Infinite {
    /// The phases' fractions in range and in order.
    fn check_phases(&self) -> Result<(), ScheduleError> {
        self.warmup.validate()?;
        fraction("cooldown_fraction", self.cooldown_fraction)?;
        fraction("constant_fraction", self.constant_fraction)?;
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(invalid(
                "alpha",
                self.alpha,
                "a finite timescale > 0",
                "NeoX uses 10",
            ));
        }
        at_most(
            "cooldown_fraction",
            self.cooldown_fraction,
            "constant_fraction",
            self.constant_fraction,
        )?;
        let warmup = self.warmup.fraction().unwrap_or(0.0);
        if warmup + self.constant_fraction > 1.0 + 1e-12 {
            return Err(invalid(
                "constant_fraction",
                self.constant_fraction,
                format!(
                    "<= 1 − warmup ({}): it marks the end of the constant phase counted \
                     from the end of warmup, as a fraction of all steps (NeoX convention)",
                    1.0 - warmup
                ),
                "NeoX uses 0.85 with 1% warmup; 1 − warmup means no anneal",
            ));
        }
        Ok(())
    }

    /// The LR `n_after` steps after warmup, of `after` steps after warmup in all.
    fn after_warmup(&self, n_after: u64, after: u64, t: u64) -> f64 {
        let constant_end = fraction_to_steps(self.constant_fraction, t).min(after);
        let k = fraction_to_steps(self.cooldown_fraction, t).min(constant_end);
        if n_after < k {
            let x = self
                .cooldown
                .progress(n_after as f64 / k as f64, self.alpha);
            let eta = mix(self.max_lr, self.const_lr, x);
            match self.cooldown {
                CooldownShape::InverseSqrt => eta,
                CooldownShape::Cosine | CooldownShape::Linear => eta.max(self.min_lr),
            }
        } else if n_after < constant_end || constant_end == after {
            self.const_lr.max(self.min_lr)
        } else {
            let length = after - constant_end;
            self.anneal
                .lr(self.const_lr, self.min_lr, n_after - constant_end, length)
                .max(self.min_lr)
        }
    }
}

impl Family for Infinite {
    fn validate(&self) -> Result<(), ScheduleError> {
        peak_and_floor(self.max_lr, self.min_lr)?;
        positive_lr("const_lr", self.const_lr)?;
        at_most("min_lr", self.min_lr, "const_lr", self.const_lr)?;
        at_most("const_lr", self.const_lr, "max_lr", self.max_lr)?;
        self.check_phases()?;
        anneal_shape(self.anneal, self.min_lr)
    }
    fn lr_at(&self, n: u64, t: u64) -> f64 {
        let w = self.warmup.length(t);
        if n < w {
            let start = self.warmup_start.lr(self.max_lr, self.min_lr);
            return warmup_lr(start, self.max_lr, n, w);
        }
        self.after_warmup(n - w, t - w, t)
    }
    fn peak_lr(&self) -> f64 {
        self.max_lr
    }
}

/// Anneal branch started from a constant-phase checkpoint (Ibrahim et al. §7 deployment; E2 in
/// docs/papers.md): from `start_lr` (usually the main run's η_const) to `min_lr` over the whole stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Anneal {
    pub start_lr: f64,
    pub min_lr: f64,
    #[serde(default)]
    pub shape: AnnealShape,
}

impl Family for Anneal {
    fn validate(&self) -> Result<(), ScheduleError> {
        positive_lr("start_lr", self.start_lr)?;
        nonnegative_lr("min_lr", self.min_lr)?;
        at_most("min_lr", self.min_lr, "start_lr", self.start_lr)?;
        anneal_shape(self.shape, self.min_lr)
    }
    fn lr_at(&self, n: u64, t: u64) -> f64 {
        self.shape
            .lr(self.start_lr, self.min_lr, n, t)
            .max(self.min_lr)
    }
    fn peak_lr(&self) -> f64 {
        self.start_lr
    }
}
