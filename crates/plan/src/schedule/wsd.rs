//! Warmup–stable–decay (Hägele et al. 2024 `wsd_schedule`; MiniCPM).

use super::checks::{fraction, invalid, positive_lr};
use super::{default_warmup, fraction_to_steps, progress, warmup_lr};
use super::{DecayShape, Family, ScheduleError, Warmup, WarmupStart};
use serde::{Deserialize, Serialize};

/// Warmup to `max_lr`, hold, then decay over the last `decay_fraction` of the stage to
/// `final_lr_ratio·max_lr`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wsd {
    pub max_lr: f64,
    /// Hägele et al. give warmup in steps (300 by default); we keep the project-wide 1%.
    #[serde(default = "default_warmup")]
    pub warmup: Warmup,
    /// Hägele et al.: warmup starts at η_max/100.
    #[serde(default = "default_wsd_warmup_start")]
    pub warmup_start: WarmupStart,
    /// Hägele et al.: cooldowns of 10–20% match cosine; README example 0.2.
    #[serde(default = "default_wsd_decay_fraction")]
    pub decay_fraction: f64,
    #[serde(default)]
    pub shape: DecayShape,
    /// f in the decay formulas; Hägele et al. decay to 0.
    #[serde(default)]
    pub final_lr_ratio: f64,
}

/// Hägele et al. `wsd_schedule`: the warmup starts at η_max/100.
pub(crate) fn default_wsd_warmup_start() -> WarmupStart {
    WarmupStart::MaxOver100
}
/// Hägele et al. README example `--wsd-fract-decay 0.2` (code default 0.1).
pub(crate) fn default_wsd_decay_fraction() -> f64 {
    0.2
}

impl Family for Wsd {
    fn validate(&self) -> Result<(), ScheduleError> {
        positive_lr("max_lr", self.max_lr)?;
        self.warmup.validate()?;
        fraction("decay_fraction", self.decay_fraction)?;
        fraction("final_lr_ratio", self.final_lr_ratio)?;
        let warmup = self.warmup.fraction().unwrap_or(0.0);
        if warmup + self.decay_fraction > 1.0 + 1e-12 {
            return Err(invalid(
                "decay_fraction",
                self.decay_fraction,
                format!(
                    "<= 1 − warmup ({}) so warmup and decay do not overlap",
                    1.0 - warmup
                ),
                "shorten the warmup or the decay (Hägele et al.: 10–20% decay)",
            ));
        }
        if self.shape == DecayShape::Exponential && self.final_lr_ratio <= 0.0 {
            return Err(invalid(
                "final_lr_ratio",
                self.final_lr_ratio,
                "> 0 for shape = \"exponential\" (f^x never reaches 0)",
                "set final_lr_ratio, e.g. 0.1, or pick another shape",
            ));
        }
        Ok(())
    }
    fn lr_at(&self, n: u64, t: u64) -> f64 {
        let w = self.warmup.length(t);
        let decay_start = t - fraction_to_steps(self.decay_fraction, t);
        if n < w {
            let start = self
                .warmup_start
                .lr(self.max_lr, self.final_lr_ratio * self.max_lr);
            warmup_lr(start, self.max_lr, n, w)
        } else if n < decay_start {
            self.max_lr
        } else {
            let x = progress(n, decay_start, t);
            self.max_lr * self.shape.factor(x, self.final_lr_ratio)
        }
    }
    fn peak_lr(&self) -> f64 {
        self.max_lr
    }
}
