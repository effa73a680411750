//! The plain families: a constant LR, warmup + cosine (re-warm + re-decay), warmup + linear decay.

use super::checks::{at_most, fraction, peak_and_floor, positive_lr};
use super::{cosine_lr, default_one, default_warmup, fraction_to_steps, progress, warmup_lr};
use super::{Family, ScheduleError, Warmup, WarmupStart};
use crate::schedule::shapes::mix;
use serde::{Deserialize, Serialize};

/// Constant LR: Gupta et al.'s no-re-warm baseline (3e-5 = Pythia's final LR).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constant {
    pub lr: f64,
}

impl Family for Constant {
    fn validate(&self) -> Result<(), ScheduleError> {
        positive_lr("lr", self.lr)
    }
    fn lr_at(&self, _n: u64, _t: u64) -> f64 {
        self.lr
    }
    fn peak_lr(&self) -> f64 {
        self.lr
    }
}

/// Linear warmup, then cosine from `max_lr` to `min_lr`, reached at `decay_end` and held after:
/// `η = η_min + (η_max − η_min)(1 + cos(π(n − W)/(D − W)))/2` with D = `decay_end`·T
/// (Ibrahim et al. Eq. 2). Re-warm + re-decay is this schedule restarted in each stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cosine {
    pub max_lr: f64,
    /// Ibrahim et al. and Gupta et al. decay to 0.1·max_lr.
    pub min_lr: f64,
    /// Warmup length: a fraction of the stage's steps, steps, or a fraction with a floor.
    #[serde(default = "default_warmup")]
    pub warmup: Warmup,
    #[serde(default)]
    pub warmup_start: WarmupStart,
    /// Fraction of the stage at which η_min is reached; 1.0 = the end. Gupta et al. use
    /// 240/297 (η_min at 240B of 297B tokens, then constant).
    #[serde(default = "default_one")]
    pub decay_end: f64,
}

impl Family for Cosine {
    fn validate(&self) -> Result<(), ScheduleError> {
        peak_and_floor(self.max_lr, self.min_lr)?;
        self.warmup.validate()?;
        fraction("decay_end", self.decay_end)?;
        match self.warmup.fraction() {
            Some(w) => at_most("warmup", w, "decay_end", self.decay_end),
            None => Ok(()),
        }
    }
    fn lr_at(&self, n: u64, t: u64) -> f64 {
        let w = self.warmup.length(t);
        let d = fraction_to_steps(self.decay_end, t);
        if n < w {
            let start = self.warmup_start.lr(self.max_lr, self.min_lr);
            warmup_lr(start, self.max_lr, n, w)
        } else if n >= d {
            self.min_lr
        } else {
            cosine_lr(self.max_lr, self.min_lr, progress(n, w, d))
        }
    }
    fn peak_lr(&self) -> f64 {
        self.max_lr
    }
}

/// Linear warmup, then linear decay to `min_lr` at the end of the stage (Defazio et al.:
/// linear decay is worst-case optimal, F4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Linear {
    pub max_lr: f64,
    /// Defazio et al. decay to 0.
    #[serde(default)]
    pub min_lr: f64,
    #[serde(default = "default_warmup")]
    pub warmup: Warmup,
    #[serde(default)]
    pub warmup_start: WarmupStart,
}

impl Family for Linear {
    fn validate(&self) -> Result<(), ScheduleError> {
        peak_and_floor(self.max_lr, self.min_lr)?;
        self.warmup.validate()
    }
    fn lr_at(&self, n: u64, t: u64) -> f64 {
        let w = self.warmup.length(t);
        if n < w {
            let start = self.warmup_start.lr(self.max_lr, self.min_lr);
            warmup_lr(start, self.max_lr, n, w)
        } else {
            mix(self.max_lr, self.min_lr, progress(n, w, t))
        }
    }
    fn peak_lr(&self) -> f64 {
        self.max_lr
    }
}
