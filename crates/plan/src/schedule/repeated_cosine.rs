//! Repeated cosine, NeoX "cosine-inf" (Ibrahim et al. §7 baseline).

use super::checks::{invalid, peak_and_floor};
use super::{cosine_lr, default_warmup, progress, warmup_lr};
use super::{Family, ScheduleError, Warmup};
use serde::{Deserialize, Serialize};

/// The stage is cut into `repeats` periods of P = T/repeats steps (period k starts at ⌊k·T/repeats⌋);
/// each warms up over `warmup`·P steps, from 0 in the first period and from `min_lr` in later ones,
/// then cosine-decays to `min_lr` at the end of the period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatedCosine {
    pub max_lr: f64,
    pub min_lr: f64,
    /// NeoX fork: num_repeats 3 in the §7 comparison.
    pub repeats: u32,
    /// Warmup length of each *period*: a fraction of it, steps, or a fraction with a floor.
    #[serde(default = "default_warmup")]
    pub warmup: Warmup,
}

impl Family for RepeatedCosine {
    fn validate(&self) -> Result<(), ScheduleError> {
        peak_and_floor(self.max_lr, self.min_lr)?;
        self.warmup.validate()?;
        if self.repeats == 0 {
            return Err(invalid(
                "repeats",
                self.repeats,
                "at least 1 period",
                "Ibrahim et al. compare 3 repeats; 1 is a single warmup + cosine",
            ));
        }
        Ok(())
    }
    fn lr_at(&self, n: u64, t: u64) -> f64 {
        if n >= t || self.repeats == 0 {
            return self.min_lr;
        }
        let r = u128::from(self.repeats);
        let period_start = |k: u128| (k * u128::from(t) / r) as u64;
        // Period k holds n when ⌊kT/R⌋ ≤ n < ⌊(k+1)T/R⌋, i.e. k = ⌈(n+1)R/T⌉ − 1.
        let k = (u128::from(n + 1) * r).div_ceil(u128::from(t)) - 1;
        let (start, end) = (period_start(k), period_start(k + 1));
        let (p, period) = (n - start, end - start);
        let w = self.warmup.length(period);
        if p < w {
            let from = if k == 0 { 0.0 } else { self.min_lr };
            warmup_lr(from, self.max_lr, p, w)
        } else {
            cosine_lr(self.max_lr, self.min_lr, progress(p, w, period))
        }
    }
    fn peak_lr(&self) -> f64 {
        self.max_lr
    }
}
