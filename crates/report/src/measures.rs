//! What the report measures, as pure functions of evaluation series. Definitions:
//! docs/papers.md#evaluation-metrics, docs/papers.md#final-loss-and-avg, docs/papers.md#mer-forgetting-score,
//! docs/papers.md#time-to-result-algoperf-dahl-et-al-2023.
//!
//! A series is one validation set's [`EvalPoint`]s sorted by step. "The value at step b" is the last
//! evaluation at or before b (the trainer evaluates at every boundary, so at a boundary it is exact).

use crate::run::{EvalPoint, TrainPoint};

/// Final loss: the mean of the last `k` evaluations (Ibrahim et al. average the last 100 logged
/// iterations; `k` = 1 is the last evaluation). `None` for an empty series.
pub fn final_loss(series: &[EvalPoint], k: usize) -> Option<f64> {
    let k = k.max(1).min(series.len());
    if k == 0 {
        return None;
    }
    let tail = &series[series.len() - k..];
    Some(tail.iter().map(|p| p.loss).sum::<f64>() / k as f64)
}

/// The loss at `step`: the last evaluation at or before it.
pub fn value_at(series: &[EvalPoint], step: u64) -> Option<f64> {
    series.iter().rev().find(|p| p.step <= step).map(|p| p.loss)
}

/// Forgetting of an old set: final loss minus its value at `since` (the first boundary after the last stage
/// that trained on it). Positive = forgotten.
pub fn forgetting(series: &[EvalPoint], since: u64, k: usize) -> Option<f64> {
    Some(final_loss(series, k)? - value_at(series, since)?)
}

/// MER's forgetting score (Abbes et al. 2025): final loss minus the best (lowest) loss over every
/// evaluation so far. Always ≥ 0 for k = 1; the code stores the negative (`best − current`).
pub fn mer_forgetting(series: &[EvalPoint], k: usize) -> Option<f64> {
    let best = series.iter().map(|p| p.loss).fold(f64::INFINITY, f64::min);
    Some(final_loss(series, k)? - best)
}

/// Adaptation to a new set: its value at `start` (the boundary where training on it began) minus the final
/// loss. Positive = learned.
pub fn adaptation(series: &[EvalPoint], start: u64, k: usize) -> Option<f64> {
    Some(value_at(series, start)? - final_loss(series, k)?)
}

/// AVG (Ibrahim et al. Table 2): the unweighted mean of final losses over datasets. It hides where the loss
/// sits (docs/papers.md#q13-avg-hides-where-the-loss-sits), so it is always printed next to the per-set
/// losses.
pub fn average(losses: &[f64]) -> Option<f64> {
    (!losses.is_empty()).then(|| losses.iter().sum::<f64>() / losses.len() as f64)
}

/// The stability gap of one set after one boundary (De Lange et al. 2023; Guo et al. 2024).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gap {
    /// Loss at the boundary.
    pub start: f64,
    /// Largest rise above `start` within the stage (0 when it never rises).
    pub depth: f64,
    /// Steps after the boundary at which the largest rise was measured (0 when it never rises).
    pub peak_after: u64,
    /// Steps after the boundary until the loss, after its peak, is back at or below `start`:
    /// `Some(0)` when it never rose, `None` when it had not recovered by the end of the stage.
    pub recovery: Option<u64>,
}

/// The stability gap in `(boundary, end]`: depth = max(loss − loss at the boundary, 0); recovery = steps from
/// the boundary to the first evaluation after the peak with loss ≤ the boundary value. `None` without an
/// evaluation at or before the boundary or inside the stage.
pub fn stability_gap(series: &[EvalPoint], boundary: u64, end: u64) -> Option<Gap> {
    let start = value_at(series, boundary)?;
    let inside: Vec<&EvalPoint> = series
        .iter()
        .filter(|p| p.step > boundary && p.step <= end)
        .collect();
    if inside.is_empty() {
        return None;
    }
    // The first point of the largest rise (ties keep the earliest).
    let mut peak: Option<&EvalPoint> = None;
    for p in &inside {
        if p.loss > start && peak.is_none_or(|q| p.loss > q.loss) {
            peak = Some(p);
        }
    }
    let Some(peak) = peak else {
        return Some(Gap {
            start,
            depth: 0.0,
            peak_after: 0,
            recovery: Some(0),
        });
    };
    let recovery = inside
        .iter()
        .find(|p| p.step > peak.step && p.loss <= start)
        .map(|p| p.step - boundary);
    Some(Gap {
        start,
        depth: peak.loss - start,
        peak_after: peak.step - boundary,
        recovery,
    })
}

/// Time-to-target (AlgoPerf, docs/papers.md#time-to-target): the first evaluation whose loss is ≤ `target`;
/// `None` = ∞ (missed).
pub fn time_to_target(series: &[EvalPoint], target: f64) -> Option<EvalPoint> {
    series.iter().find(|p| p.loss <= target).copied()
}

/// Seconds of training until `tokens` run-wide tokens, estimated from the logged throughput: each logged
/// step's tokens since the log before it, at its tokens/s. Evaluations are not in it, as AlgoPerf stops
/// its clock for them. `None` when the log does not reach `tokens` or lacks a throughput.
pub fn train_seconds(train: &[TrainPoint], tokens: u64) -> Option<f64> {
    let (mut done, mut seconds) = (0u64, 0.0);
    for r in train {
        if done >= tokens {
            break;
        }
        if r.tokens <= done {
            continue; // a step logged again after a rollback
        }
        if r.tokens_per_second.is_nan() || r.tokens_per_second <= 0.0 {
            return None;
        }
        seconds += (r.tokens.min(tokens) - done) as f64 / r.tokens_per_second;
        done = r.tokens;
    }
    (done >= tokens).then_some(seconds)
}

/// Performance ratios `r_{s,w} = t_{s,w} / min_s t_{s,w}` from times `[method][workload]` (∞ = missed).
/// A workload no method reached gives ∞ for all.
pub fn performance_ratios(times: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let workloads = times.first().map_or(0, Vec::len);
    let best: Vec<f64> = (0..workloads)
        .map(|w| times.iter().map(|t| t[w]).fold(f64::INFINITY, f64::min))
        .collect();
    times
        .iter()
        .map(|t| {
            t.iter()
                .zip(&best)
                .map(|(&x, &b)| {
                    if x.is_finite() && b.is_finite() && b > 0.0 {
                        x / b
                    } else if x.is_finite() && b == 0.0 {
                        // A time of 0 (reached at the first evaluation): ratio 1 for the ties, ∞ otherwise.
                        if x == 0.0 {
                            1.0
                        } else {
                            f64::INFINITY
                        }
                    } else {
                        f64::INFINITY
                    }
                })
                .collect()
        })
        .collect()
}

/// The performance profile `ρ_s(τ) = (1/n)·#{w : r_{s,w} ≤ τ}` of one method's ratios.
pub fn profile(ratios: &[f64], tau: f64) -> f64 {
    if ratios.is_empty() {
        return 0.0;
    }
    ratios.iter().filter(|&&r| r <= tau).count() as f64 / ratios.len() as f64
}

/// AlgoPerf's benchmark score `B_s = (1/(r_max − 1))·∫_1^{r_max} ρ_s(τ) dτ`, integrated exactly: each
/// workload with ratio r ≤ r_max contributes (r_max − r)/(r_max − 1)/n. AlgoPerf uses r_max = 4.
pub fn algoperf_score(ratios: &[f64], r_max: f64) -> f64 {
    if ratios.is_empty() || r_max <= 1.0 {
        return 0.0;
    }
    let n = ratios.len() as f64;
    ratios
        .iter()
        .filter(|&&r| r <= r_max)
        .map(|&r| (r_max - r.max(1.0)) / (r_max - 1.0))
        .fold(0.0, |a, b| a + b) // not `sum`: an empty f64 sum is −0.0
        / n
}

/// AlgoPerf's r_max.
pub const R_MAX: f64 = 4.0;

#[cfg(test)]
mod tests {
    use super::*;

    /// A series from (step, loss) pairs, 100 tokens per step.
    fn s(points: &[(u64, f64)]) -> Vec<EvalPoint> {
        points
            .iter()
            .map(|&(step, loss)| EvalPoint {
                step,
                tokens: step * 100,
                loss,
            })
            .collect()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn final_loss_is_the_mean_of_the_last_k() {
        let x = s(&[(0, 9.0), (10, 4.0), (20, 3.0), (30, 2.0)]);
        assert_eq!(final_loss(&x, 1), Some(2.0));
        assert_eq!(final_loss(&x, 2), Some(2.5));
        assert_eq!(final_loss(&x, 0), Some(2.0), "k = 0 means 1");
        assert_eq!(final_loss(&x, 99), Some(4.5), "k past the series uses all");
        assert_eq!(final_loss(&[], 1), None);
    }

    #[test]
    fn forgetting_is_measured_from_the_first_boundary_after_training() {
        // Old set trained until step 30, then forgotten: 2.0 at the boundary, 2.6 at the end.
        let old = s(&[(0, 9.0), (30, 2.0), (35, 2.9), (40, 2.7), (60, 2.6)]);
        assert!(close(forgetting(&old, 30, 1).unwrap(), 0.6));
        // Between evaluations the value is the last one before: at 33 it is still 2.0.
        assert!(close(forgetting(&old, 33, 1).unwrap(), 0.6));
        // MER's score compares with the best loss ever seen, which here is the boundary value.
        assert!(close(mer_forgetting(&old, 1).unwrap(), 0.6));
        // With a better value later than the boundary, MER's score is smaller than plain forgetting.
        let dips = s(&[(30, 2.0), (40, 1.8), (60, 2.1)]);
        assert!(close(forgetting(&dips, 30, 1).unwrap(), 0.1));
        assert!(close(mer_forgetting(&dips, 1).unwrap(), 0.3));
        // Nothing before the reference step: undefined.
        assert_eq!(forgetting(&s(&[(40, 1.0)]), 30, 1), None);
    }

    #[test]
    fn adaptation_is_start_minus_end() {
        let new = s(&[(30, 9.4), (35, 7.9), (60, 6.9)]);
        assert!(close(adaptation(&new, 30, 1).unwrap(), 2.5));
        assert!(close(adaptation(&new, 30, 2).unwrap(), 9.4 - 7.4));
    }

    // Ibrahim et al. Table 2, Pile→German 0%: AVG 2.34 from 3.56 and 1.11 (rounded as in the paper).
    #[test]
    fn avg_is_the_unweighted_mean() {
        let avg = average(&[3.56, 1.11]).unwrap();
        assert!((avg - 2.335).abs() < 1e-12);
        assert_eq!(average(&[]), None);
    }

    #[test]
    fn stability_gap_depth_and_recovery() {
        // Boundary at 30 with loss 2.0: up to 2.5 at 35, 2.2 at 40, back to 1.9 at 50.
        let x = s(&[
            (20, 2.1),
            (30, 2.0),
            (35, 2.5),
            (40, 2.2),
            (50, 1.9),
            (60, 1.8),
        ]);
        let g = stability_gap(&x, 30, 60).unwrap();
        assert!(close(g.start, 2.0));
        assert!(close(g.depth, 0.5));
        assert_eq!(g.peak_after, 5);
        assert_eq!(g.recovery, Some(20));
        // Returning exactly to the boundary value counts as recovered.
        let exact = s(&[(30, 2.0), (35, 2.5), (45, 2.0)]);
        assert_eq!(stability_gap(&exact, 30, 60).unwrap().recovery, Some(15));
        // Never back within the stage: None ("never"), even if it recovers after the stage's end.
        let never = s(&[(30, 2.0), (35, 2.5), (60, 2.1), (70, 1.0)]);
        let g = stability_gap(&never, 30, 60).unwrap();
        assert!(close(g.depth, 0.5));
        assert_eq!(g.recovery, None);
        // A set that only improves has no gap.
        let down = s(&[(30, 9.0), (35, 8.0), (60, 7.0)]);
        assert_eq!(
            stability_gap(&down, 30, 60),
            Some(Gap {
                start: 9.0,
                depth: 0.0,
                peak_after: 0,
                recovery: Some(0)
            })
        );
        // Recovery is measured after the peak: a dip below the start before a later, higher peak does
        // not count.
        let late = s(&[(30, 2.0), (35, 1.9), (40, 2.4), (50, 2.0)]);
        let g = stability_gap(&late, 30, 60).unwrap();
        assert_eq!((g.peak_after, g.recovery), (10, Some(20)));
        // No evaluation inside the stage.
        assert_eq!(stability_gap(&s(&[(30, 2.0), (70, 2.5)]), 30, 60), None);
    }

    #[test]
    fn train_seconds_add_each_logged_stretch_at_its_throughput() {
        let logged = |step: u64, tokens_per_second: f64| TrainPoint {
            step,
            stage: "s".into(),
            tokens: step * 100,
            tokens_by_source: Default::default(),
            lr: 1e-3,
            loss: 3.0,
            grad_norm: 1.0,
            grad_norm_l1: None,
            batch_sequences: 1,
            replay_fraction: 0.0,
            tokens_per_second,
            spikes_skipped: 0,
        };
        // 100 tokens at 100/s, 100 at 50/s, 100 at 100/s; step 2 logged again after a rollback.
        let log = [
            logged(1, 100.0),
            logged(2, 50.0),
            logged(2, 50.0),
            logged(3, 100.0),
        ];
        assert_eq!(train_seconds(&log, 0), Some(0.0));
        assert_eq!(train_seconds(&log, 250), Some(3.5));
        assert_eq!(train_seconds(&log, 300), Some(4.0));
        assert_eq!(train_seconds(&log, 301), None);
        assert_eq!(train_seconds(&[logged(1, 0.0)], 50), None);
    }

    #[test]
    fn time_to_target_misses_are_infinite() {
        let x = s(&[(0, 9.0), (10, 5.0), (20, 3.0), (30, 2.9)]);
        assert_eq!(
            time_to_target(&x, 3.0).map(|p| (p.step, p.tokens)),
            Some((20, 2000))
        );
        assert_eq!(time_to_target(&x, 9.0).map(|p| p.step), Some(0));
        assert_eq!(time_to_target(&x, 2.0), None);
    }

    #[test]
    fn performance_profiles_and_the_algoperf_score() {
        // Two workloads. Method A: 100 and 300 steps; B: 200 and 150; C: 500 and never.
        let inf = f64::INFINITY;
        let times = vec![vec![100.0, 300.0], vec![200.0, 150.0], vec![500.0, inf]];
        let r = performance_ratios(&times);
        assert_eq!(r[0], vec![1.0, 2.0]);
        assert_eq!(r[1], vec![2.0, 1.0]);
        assert_eq!(r[2], vec![5.0, inf]);
        // ρ_A(τ): 1/2 at τ = 1, 1 from τ = 2.
        assert_eq!(profile(&r[0], 1.0), 0.5);
        assert_eq!(profile(&r[0], 1.99), 0.5);
        assert_eq!(profile(&r[0], 2.0), 1.0);
        assert_eq!(profile(&r[2], 4.0), 0.0);
        // B_A = (1/3)·∫_1^4 ρ = (1/3)·(0.5·1 + 1·2) = 5/6; the same for B; C (5× and ∞) scores 0.
        assert!(close(algoperf_score(&r[0], R_MAX), 5.0 / 6.0));
        assert!(close(algoperf_score(&r[1], R_MAX), 5.0 / 6.0));
        assert_eq!(algoperf_score(&r[2], R_MAX), 0.0);
        // Fastest everywhere scores 1.
        assert_eq!(algoperf_score(&[1.0, 1.0], R_MAX), 1.0);
        // A workload nobody reached is ∞ for everyone.
        let none = performance_ratios(&[vec![inf], vec![inf]]);
        assert_eq!(none, vec![vec![inf], vec![inf]]);
    }
}
