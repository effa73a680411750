//! Refined schedules (Defazio, Cutkosky, Mehta, Mishchenko 2023;
//! docs/papers.md#refined-schedules-defazio-et-al-2023): an LR sequence
//! computed from the per-step gradient norms of an earlier run.
//!
//! Their last-iterate analysis gives `η_t ∝ w_t·Σ_{p>t} w_p` with `w_t = G_t^{-2}`; for constant G
//! this is exactly linear decay, the worst-case-optimal schedule. Norms are first smoothed with a
//! median filter, as in the authors' README.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::checks::{fraction, invalid, positive_lr};
use super::error::ScheduleError;
use super::{warmup_lr, Family, Warmup, WarmupStart};

/// Refined schedule (Defazio et al. 2023): `max_lr` × multipliers computed by
/// [`refined_multipliers`] from an earlier run's gradient norms, mapped onto the steps after an
/// optional warmup (linear interpolation when the recorded length differs from the stage).
/// The warmup ends at `max_lr` × the first multiplier, so the schedule stays continuous.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refined {
    pub max_lr: f64,
    /// Refined schedules warm up by themselves (F5 in docs/papers.md), so none is prepended by default.
    #[serde(default)]
    pub warmup: Warmup,
    #[serde(default)]
    pub warmup_start: WarmupStart,
    /// Per-step gradient norms of the earlier run; plan loading reads this file and calls
    /// [`super::Schedule::fill_refined_multipliers`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norms: Option<PathBuf>,
    /// Median-filter width as a fraction of the recorded steps (σ₂; no paper default, ~0.1).
    pub smoothing: f64,
    #[serde(default)]
    pub weight: RefineWeight,
    /// Filled from `grad_norms` at plan loading; written out so resolved configs are complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub multipliers: Vec<f64>,
}

impl Refined {
    /// The multipliers are there, in [0, 1], and not all 0.
    fn check_multipliers(&self) -> Result<(), ScheduleError> {
        let m = &self.multipliers;
        if m.is_empty() {
            let hint = match &self.grad_norms {
                Some(path) => format!(
                    "plan loading must read {} and call fill_refined_multipliers",
                    path.display()
                ),
                None => {
                    "set grad_norms to the per-step gradient-norm log of an earlier run".to_string()
                }
            };
            return Err(invalid("multipliers", "[]", "refined multipliers", hint));
        }
        if let Some(i) = m.iter().position(|x| !(0.0..=1.0).contains(x)) {
            return Err(invalid(
                &format!("multipliers[{i}]"),
                m[i],
                "a multiplier in [0, 1]",
                "recompute them with refined_multipliers (normalized to a maximum of 1)",
            ));
        }
        if !m.iter().any(|&x| x > 0.0) {
            return Err(invalid(
                "multipliers",
                "all 0",
                "at least one multiplier > 0",
                "record gradient norms for at least 2 steps",
            ));
        }
        Ok(())
    }
}

impl Family for Refined {
    fn validate(&self) -> Result<(), ScheduleError> {
        positive_lr("max_lr", self.max_lr)?;
        self.warmup.validate()?;
        fraction("smoothing", self.smoothing)?;
        self.check_multipliers()
    }
    fn lr_at(&self, n: u64, t: u64) -> f64 {
        let w = self.warmup.length(t);
        let first = self.max_lr * multiplier_at(&self.multipliers, 0, t - w);
        if n < w {
            warmup_lr(self.warmup_start.lr(first, 0.0), first, n, w)
        } else {
            self.max_lr * multiplier_at(&self.multipliers, n - w, t - w)
        }
    }
    fn peak_lr(&self) -> f64 {
        self.max_lr
    }
}

/// How a gradient norm becomes a refinement weight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefineWeight {
    /// `w_t = 1/‖g_t‖₁`, for per-coordinate optimizers such as Adam. Recalled, not verified, from
    /// the paper (docs/papers.md#q9-refinement-for-adam); the default because every run here uses AdamW.
    #[default]
    L1,
    /// `w_t = 1/G_t²` with G the ℓ2 norm: the SGD derivation (`find_closed_form_schedule`).
    L2,
}

/// Median-filter width for a smoothing fraction σ of T steps: `2·⌊σ·T/2⌋ + 1` (odd, ≥ 1), as in
/// the authors' README.
pub fn median_filter_width(smoothing: f64, steps: usize) -> usize {
    // `as usize` saturates: a negative or NaN product gives 0, so width 1 (no smoothing).
    2 * ((smoothing * steps as f64) as usize / 2) + 1
}

/// Refined LR multipliers, one per recorded step, from per-step gradient norms.
///
/// 1. Median-filter the norms with width [`median_filter_width`]: the end is padded with
///    reflected values and the start repeats the first value (the README's
///    `np.pad(.., mode='reflect')` + `median_filter(.., mode='nearest')`).
/// 2. Weights `w_t = G_t^-2` ([`RefineWeight::L2`]) or `‖g_t‖₁^-1` ([`RefineWeight::L1`]).
/// 3. `η_t = w_t·Σ_{p>t} w_p`, so the last step gets 0; then divide by the maximum so the peak is 1.
///
/// Constant norms give exactly `(T − 1 − t)/(T − 1)`: linear decay from 1 at the first step to 0
/// at the last. The norms must be finite and > 0 (check with [`check_grad_norms`]); one norm gives
/// `[0.0]` and none gives an empty vector.
pub fn refined_multipliers(grad_norms: &[f64], smoothing: f64, weight: RefineWeight) -> Vec<f64> {
    let steps = grad_norms.len();
    let smoothed = median_filter(grad_norms, median_filter_width(smoothing, steps));
    let mut weights: Vec<f64> = smoothed
        .iter()
        .map(|&g| match weight {
            RefineWeight::L1 => 1.0 / g,
            RefineWeight::L2 => 1.0 / (g * g),
        })
        .collect();
    // Rescaling the weights changes nothing after normalization, but dividing by the largest makes
    // constant norms give weights of exactly 1.0, hence integer tail sums and exact linear decay.
    normalize_max(&mut weights);
    let mut multipliers = vec![0.0; steps];
    let mut tail_sum = 0.0;
    for t in (0..steps).rev() {
        multipliers[t] = weights[t] * tail_sum;
        tail_sum += weights[t];
    }
    normalize_max(&mut multipliers);
    multipliers
}

/// Checks recorded gradient norms before [`refined_multipliers`]: every one finite and > 0, and at
/// least two of them. `field` names where they came from (e.g. `schedule.grad_norms`).
pub fn check_grad_norms(field: &str, grad_norms: &[f64]) -> Result<(), ScheduleError> {
    if grad_norms.len() < 2 {
        return Err(ScheduleError::new(
            field,
            format!("{} values", grad_norms.len()),
            "at least 2 per-step gradient norms",
            "point it at the grad-norm log of a finished run (one value per optimizer step)",
        ));
    }
    match grad_norms.iter().position(|g| !(g.is_finite() && *g > 0.0)) {
        None => Ok(()),
        Some(i) => Err(ScheduleError::new(
            format!("{field}[{i}]"),
            grad_norms[i],
            "a finite gradient norm > 0",
            "log the pre-clip global gradient norm at every step; drop steps skipped for overflow",
        )),
    }
}

/// Divides by the largest value when that is finite and > 0 (otherwise leaves `v` unchanged).
fn normalize_max(v: &mut [f64]) {
    let max = v.iter().copied().fold(0.0, f64::max);
    if max.is_finite() && max > 0.0 {
        v.iter_mut().for_each(|x| *x /= max);
    }
}

/// Running median of an odd-width window. Position `j` < 0 repeats `x[0]`; `j` ≥ n reflects
/// without repeating the edge (`… c d | c b a …`), periodically when the window reaches past 2n.
pub(crate) fn median_filter(x: &[f64], width: usize) -> Vec<f64> {
    let n = x.len();
    if width <= 1 || n == 0 {
        return x.to_vec();
    }
    let half = (width / 2) as i64;
    let at = |j: i64| -> (i64, i64) {
        let index = if j < 0 || n == 1 {
            0
        } else if (j as usize) < n {
            j as usize
        } else {
            let period = 2 * (n - 1);
            let m = j as usize % period;
            if m < n {
                m
            } else {
                period - m
            }
        };
        (order_key(x[index]), j)
    };
    let mut window = SlidingMedian::default();
    for j in -half..=half {
        window.insert(at(j));
    }
    let mut out = Vec::with_capacity(n);
    out.push(window.median());
    for i in 1..n as i64 {
        window.remove(at(i - half - 1));
        window.insert(at(i + half));
        out.push(window.median());
    }
    out
}

/// Maps an f64 to an i64 with the same total order (`f64::total_cmp`); its own inverse.
fn order_key(v: f64) -> i64 {
    let bits = v.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// Two ordered sets holding the lower and upper halves of the window; entries are
/// (value key, position) so equal values stay distinct. `low` holds one more entry than `high`
/// for an odd window, so its largest entry is the median: O(log width) per slide.
#[derive(Default)]
struct SlidingMedian {
    low: BTreeSet<(i64, i64)>,
    high: BTreeSet<(i64, i64)>,
}

impl SlidingMedian {
    fn insert(&mut self, entry: (i64, i64)) {
        match self.low.last() {
            Some(top) if entry > *top => self.high.insert(entry),
            _ => self.low.insert(entry),
        };
        self.rebalance();
    }

    fn remove(&mut self, entry: (i64, i64)) {
        if !self.low.remove(&entry) {
            self.high.remove(&entry);
        }
        self.rebalance();
    }

    fn rebalance(&mut self) {
        while self.low.len() > self.high.len() + 1 {
            if let Some(e) = self.low.pop_last() {
                self.high.insert(e);
            }
        }
        while self.high.len() > self.low.len() {
            if let Some(e) = self.high.pop_first() {
                self.low.insert(e);
            }
        }
    }

    fn median(&self) -> f64 {
        self.low
            .last()
            .map_or(f64::NAN, |&(key, _)| order_key_inverse(key))
    }
}

/// Inverse of [`order_key`]: the transform only flips the low 63 bits of negative values, so
/// applying it twice gives the original bits back.
fn order_key_inverse(key: i64) -> f64 {
    f64::from_bits(order_key(f64::from_bits(key as u64)) as u64)
}

/// Multiplier at step `step` of a phase of `total_steps`, mapping the phase's first and last step
/// onto the first and last recorded multiplier and interpolating linearly in between (exact
/// indexing when the lengths agree). Steps at or past the end give the last multiplier. With no
/// multipliers it falls back to the discrete linear decay `(T − 1 − n)/(T − 1)`, which is what
/// constant gradient norms would give.
pub(crate) fn multiplier_at(multipliers: &[f64], step: u64, total_steps: u64) -> f64 {
    let len = multipliers.len();
    if len == 0 {
        return if step >= total_steps {
            0.0
        } else if total_steps == 1 {
            1.0
        } else {
            (total_steps - 1 - step) as f64 / (total_steps - 1) as f64
        };
    }
    let last = multipliers[len - 1];
    if step >= total_steps {
        return last;
    }
    if len as u64 == total_steps {
        return multipliers[step as usize];
    }
    if total_steps == 1 || len == 1 {
        return multipliers[0];
    }
    let position = step as f64 * (len - 1) as f64 / (total_steps - 1) as f64;
    let i = (position.floor() as usize).min(len - 1);
    match multipliers.get(i + 1) {
        Some(&next) => super::shapes::mix(multipliers[i], next, position - i as f64),
        None => multipliers[i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute-force reference: materialize the padded signal and sort every window.
    fn naive_median_filter(x: &[f64], width: usize) -> Vec<f64> {
        let n = x.len() as i64;
        let half = (width / 2) as i64;
        let value = |j: i64| -> f64 {
            if j < 0 || n == 1 {
                return x[0];
            }
            // Reflect step by step, as numpy pads repeatedly.
            let mut j = j;
            while j >= n {
                j = 2 * (n - 1) - j;
                if j < 0 {
                    j = -j;
                }
            }
            x[j as usize]
        };
        (0..n)
            .map(|i| {
                let mut w: Vec<f64> = (i - half..=i + half).map(value).collect();
                w.sort_by(f64::total_cmp);
                w[w.len() / 2]
            })
            .collect()
    }

    #[test]
    fn order_key_roundtrips_and_orders() {
        let values = [-3.5, -0.0, 0.0, 1e-300, 2.0, f64::INFINITY];
        for pair in values.windows(2) {
            assert!(order_key(pair[0]) <= order_key(pair[1]));
        }
        for v in values {
            assert_eq!(order_key_inverse(order_key(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn median_filter_pads_start_nearest_and_end_reflect() {
        // Width 3 over [1 2 3 4 5]: first window (1, 1, 2) → 1; last window (4, 5, 4) → 4.
        assert_eq!(
            median_filter(&[1.0, 2.0, 3.0, 4.0, 5.0], 3),
            [1.0, 2.0, 3.0, 4.0, 4.0]
        );
    }

    #[test]
    fn sliding_median_matches_sorting_each_window() {
        // Deterministic pseudo-random norms (64-bit LCG), with repeats to exercise ties.
        let mut state: u64 = 42;
        let x: Vec<f64> = (0..200)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 33) % 50) as f64 / 7.0 + 0.1
            })
            .collect();
        for width in [1, 3, 5, 21, 99, 401, 1001] {
            assert_eq!(
                median_filter(&x, width),
                naive_median_filter(&x, width),
                "width {width}"
            );
        }
        for n in [1, 2, 3] {
            assert_eq!(
                median_filter(&x[..n], 7),
                naive_median_filter(&x[..n], 7),
                "n {n}"
            );
        }
    }

    #[test]
    fn filter_width_follows_readme() {
        // 2·⌊0.1·1000/2⌋ + 1 = 2·50 + 1 = 101; 2·⌊0.2·10/2⌋ + 1 = 3; σ = 0 gives 1 (no smoothing).
        assert_eq!(median_filter_width(0.1, 1000), 101);
        assert_eq!(median_filter_width(0.2, 10), 3);
        assert_eq!(median_filter_width(0.0, 1000), 1);
        assert_eq!(median_filter_width(f64::NAN, 1000), 1);
    }
}
