//! Predicting where a run's last stage ends from its first evaluations: a loss-curve law that knows the
//! LR schedule, fitted per validation set (`rewarm predict`).
//!
//! The law has the form of the LR-annealing law of Tissue et al. 2024 ("Scaling Law with Learning Rate
//! Annealing"), L(n) = L₀ + A·(1 + τ(n))^(−α) − C·S₂(n), with the schedule's two areas after n steps of
//! the stage, in units of the stage's peak LR η̂:
//! - the forward area τ(n) = Σ_{i<n} η_i / η̂ (steps at the peak LR, so to speak);
//! - the annealing area S₂(n) = Σ_{i<n} m_i / η̂, m_i = λ·m_{i−1} + max(η_{i−1} − η_i, 0): the LR's
//!   drops, remembered with momentum λ (rises, such as a warmup's, count zero).
//!
//! The paper writes A·S₁^(−α) for pretraining from scratch; a continued stage starts from a trained
//! model, so here the power term is finite at the boundary (1 + τ) and A may take either sign: a set the
//! stage trains on falls (A > 0), an old one rises as it is forgotten (A < 0). α is found on a grid and
//! (L₀, A, C) by least squares for each α.
//!
//! From the start of one curve the annealing term cannot be told apart from the power term: fitted freely
//! on the first quarter of the union study's runs it predicted final losses tens of nats off. So C is
//! fitted only once the evaluations used have seen at least half of the stage's annealing area
//! ([`ANNEAL_SEEN`]), and kept ≥ 0; before that C = 0 and the law is a power law in the forward area.
//! λ = 0.9 (the paper: 0.999) and the one-half were chosen on the union study's runs, the same runs the
//! docs report the errors on (docs/predict.md).
use crate::measures::final_loss;
use crate::render::{count, loss, sci, signed, Table};
use crate::run::{EvalPoint, RunData};
use rewarm_plan::{Plan, PlanFile};

/// λ, the momentum of the annealing area (Tissue et al. use 0.999; see the module doc).
pub const ANNEAL_MOMENTUM: f64 = 0.9;
/// C is fitted once the evaluations used cover at least this share of the stage's annealing area.
pub const ANNEAL_SEEN: f64 = 0.5;
/// Fewest evaluations of a set (the boundary's included) a fit uses.
pub const MIN_POINTS: usize = 5;

/// The fitted law of one validation set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Law {
    pub l0: f64,
    pub a: f64,
    pub alpha: f64,
    pub c: f64,
}

impl Law {
    /// The loss where the schedule's areas are `(τ, S₂)`.
    pub fn at(&self, (tau, s2): (f64, f64)) -> f64 {
        self.l0 + self.a * (1.0 + tau).powf(-self.alpha) - self.c * s2
    }
}

/// (τ, S₂) after 0, 1, …, len steps of LRs `lrs`, in units of their peak.
pub fn areas(lrs: &[f64]) -> Vec<(f64, f64)> {
    let peak = lrs.iter().copied().fold(0.0, f64::max);
    let unit = if peak > 0.0 { peak } else { 1.0 };
    let mut out = vec![(0.0, 0.0)];
    let (mut tau, mut s2, mut m) = (0.0, 0.0, 0.0);
    for (i, &lr) in lrs.iter().enumerate() {
        let drop = if i == 0 {
            0.0
        } else {
            (lrs[i - 1] - lr).max(0.0)
        };
        m = ANNEAL_MOMENTUM * m + drop;
        tau += lr / unit;
        s2 += m / unit;
        out.push((tau, s2));
    }
    out
}

/// The law through `points` ((τ, S₂), loss), fewest squared errors over α ∈ {0.02, 0.04, …, 3}, with C
/// fitted when `with_c` (and kept ≥ 0: a negative fit is redone without it), else 0; `None` with fewer
/// than [`MIN_POINTS`] points.
pub fn fit(points: &[((f64, f64), f64)], with_c: bool) -> Option<Law> {
    if points.len() < MIN_POINTS {
        return None;
    }
    let mut best: Option<(f64, Law)> = None;
    for step in 1..=150 {
        let alpha = step as f64 * 0.02;
        let rows: Vec<([f64; 3], f64)> = points
            .iter()
            .map(|&((tau, s2), loss)| ([1.0, (1.0 + tau).powf(-alpha), -s2], loss))
            .collect();
        let coef = match least_squares(&rows, if with_c { 3 } else { 2 }) {
            Some(c) if c[2] < 0.0 => least_squares(&rows, 2),
            other => other,
        };
        let Some(coef) = coef else {
            continue;
        };
        let law = Law {
            l0: coef[0],
            a: coef[1],
            alpha,
            c: coef[2],
        };
        let sse: f64 = points.iter().map(|&(x, l)| (law.at(x) - l).powi(2)).sum();
        if best.as_ref().is_none_or(|(e, _)| sse < *e) {
            best = Some((sse, law));
        }
    }
    best.map(|(_, law)| law)
}

/// Least squares of y on the first `k` columns of the rows (the others get 0): normal equations solved by
/// Gaussian elimination with partial pivoting; `None` when they are singular.
fn least_squares(rows: &[([f64; 3], f64)], k: usize) -> Option<[f64; 3]> {
    let mut m = [[0.0f64; 4]; 3];
    for (x, y) in rows {
        for i in 0..k {
            for j in 0..k {
                m[i][j] += x[i] * x[j];
            }
            m[i][3] += x[i] * y;
        }
    }
    for col in 0..k {
        let pivot = (col..k).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-12 {
            return None;
        }
        m.swap(col, pivot);
        let pivot_row = m[col];
        for (r, row) in m.iter_mut().enumerate().take(k) {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (x, p) in row.iter_mut().zip(pivot_row).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    let mut out = [0.0; 3];
    for i in 0..k {
        out[i] = m[i][3] / m[i][i];
    }
    Some(out)
}

/// The prediction for one validation set of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct SetPrediction {
    pub set: String,
    /// The last stage trains on this set.
    pub trained: bool,
    /// An old set: not trained in the last stage but by an earlier one or the run continued
    /// (`init_from`), so its rise is forgetting. Neither: a set the run only evaluates.
    pub old: bool,
    /// Its loss at the last stage's boundary.
    pub at_boundary: f64,
    /// Evaluations used and the last step among them.
    pub points: usize,
    pub through_step: u64,
    /// The last of them (the naive prediction: nothing changes from here).
    pub last_seen: f64,
    /// The law's final loss: its mean at the stage's last `k` evaluation steps (as the report's final
    /// loss is the mean of the last `k` evaluations). `None`: too few evaluations to fit.
    pub predicted: Option<f64>,
    /// The annealing term was fitted (the evaluations used cover enough of the annealing; else C = 0).
    pub annealed: bool,
    /// The final loss measured, when the run has finished.
    pub measured: Option<f64>,
}

/// One run's predictions and what it costs.
#[derive(Clone, Debug, PartialEq)]
pub struct RunPrediction {
    pub name: String,
    pub sets: Vec<SetPrediction>,
    /// Training tokens and FLOPs of the whole plan.
    pub tokens: u64,
    pub flops: f64,
}

impl RunPrediction {
    /// The mean of the predicted final losses over the sets (AVG); `None` if one is missing.
    pub fn predicted_avg(&self) -> Option<f64> {
        let v: Option<Vec<f64>> = self.sets.iter().map(|s| s.predicted).collect();
        crate::measures::average(&v?)
    }
}

/// Predicts the end of `run`'s last stage from its evaluations up to `until` steps into that stage
/// (`None`: all of them), final losses as the mean of the last `last_k` evaluations.
pub fn predict_run(
    run: &RunData,
    until: Option<u64>,
    last_k: usize,
) -> Result<RunPrediction, String> {
    let path = run.dir.join("plan.json");
    let file = PlanFile::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let plan = Plan::new(file.plan, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    let stage = plan.stages.last().ok_or("the plan has no stages")?;
    let lrs: Vec<f64> = (0..stage.steps).map(|n| stage.lr(n)).collect();
    let areas = areas(&lrs);
    let total_s2 = areas.last().map_or(0.0, |a| a.1);
    let first = stage.first_step;
    let end = first + stage.steps;
    let finals = final_eval_steps(&plan, first, end, last_k);
    let cutoff = first + until.unwrap_or(stage.steps).min(stage.steps);
    let trained = run
        .stages
        .last()
        .map(|s| s.sources.clone())
        .unwrap_or_default();
    let continued = run.init_from.is_some() || run.stages.len() > 1;
    let finished = run.last_step() >= end;
    let sets = run
        .evals
        .iter()
        .filter_map(|(set, series)| {
            let seen: Vec<EvalPoint> = series
                .iter()
                .filter(|p| p.step >= first && p.step <= cutoff)
                .copied()
                .collect();
            let boundary = seen.first().filter(|p| p.step == first)?.loss;
            let points: Vec<((f64, f64), f64)> = seen
                .iter()
                .map(|p| (areas[(p.step - first) as usize], p.loss))
                .collect();
            let annealed = total_s2 > 0.0
                && areas[(last_step(&seen) - first) as usize].1 >= ANNEAL_SEEN * total_s2;
            let fitted = fit(&points, annealed);
            let predicted = fitted.map(|law| {
                finals
                    .iter()
                    .map(|&s| law.at(areas[(s - first) as usize]))
                    .sum::<f64>()
                    / finals.len() as f64
            });
            let last = seen.last()?;
            Some(SetPrediction {
                set: set.clone(),
                trained: trained.contains(set),
                old: continued && !trained.contains(set),
                at_boundary: boundary,
                points: seen.len(),
                through_step: last.step,
                last_seen: last.loss,
                predicted,
                annealed: fitted.is_some_and(|law| law.c > 0.0),
                measured: finished.then(|| final_loss(series, last_k)).flatten(),
            })
        })
        .collect();
    let tokens = plan.total_tokens();
    Ok(RunPrediction {
        name: run.name.clone(),
        sets,
        tokens,
        flops: tokens as f64 * plan.model.flops_per_token(plan.seq_len) as f64,
    })
}

fn last_step(points: &[EvalPoint]) -> u64 {
    points.last().map_or(0, |p| p.step)
}

/// The steps of the last `k` evaluations of the stage [first, end]: where the plan evaluates.
fn final_eval_steps(plan: &Plan, first: u64, end: u64, k: usize) -> Vec<u64> {
    let mut steps: Vec<u64> = (first + 1..=end)
        .rev()
        .filter(|&s| plan.eval_due(s))
        .take(k.max(1))
        .collect();
    steps.reverse();
    steps
}

/// The predictions as text: per run and set, the evaluations used, the last seen, the law's final loss
/// (and the measured one with both errors when the run has finished); then per run the predicted AVG and
/// forgetting and the cost, the recommendation (lowest predicted AVG), and over finished runs the mean
/// absolute error of the law and of the naive prediction (the last loss seen).
pub fn render(runs: &[RunPrediction]) -> String {
    let mut out = format!(
        "{}\n{}",
        sets_table(runs).to_markdown(),
        totals_table(runs).to_markdown()
    );
    let best = runs
        .iter()
        .filter_map(|r| Some((r.predicted_avg()?, r)))
        .min_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((avg, r)) = best.filter(|_| runs.len() > 1) {
        out += &format!(
            "\nRecommended: {} (lowest predicted AVG, {avg:.4}; {} FLOPs).\n",
            r.name,
            sci(Some(r.flops))
        );
    }
    let errors: Vec<(f64, f64)> = runs
        .iter()
        .flat_map(|r| &r.sets)
        .filter_map(|s| {
            Some((
                (s.predicted? - s.measured?).abs(),
                (s.last_seen - s.measured?).abs(),
            ))
        })
        .collect();
    if !errors.is_empty() {
        let n = errors.len() as f64;
        let (law, naive) = errors
            .iter()
            .fold((0.0, 0.0), |a, e| (a.0 + e.0, a.1 + e.1));
        out += &format!(
            "\nOver {} finished sets: mean |error| {:.4} nats (law), {:.4} (naive: the last loss seen).\n",
            errors.len(),
            law / n,
            naive / n
        );
    }
    out
}

/// One row per run and set: the evaluations used, the last seen, predicted and measured final losses.
fn sets_table(runs: &[RunPrediction]) -> Table {
    let mut t = Table::new(&[
        "run",
        "set",
        "role",
        "evals (to step)",
        "last seen",
        "predicted",
        "measured",
        "error",
        "naive error",
    ])
    .left(&[0, 1, 2]);
    for r in runs {
        for s in &r.sets {
            let c_note = if s.annealed || s.predicted.is_none() {
                ""
            } else {
                " (C = 0)"
            };
            let role = match (s.trained, s.old) {
                (true, _) => "trained",
                (false, true) => "old",
                (false, false) => "eval only",
            };
            t.rows.push(vec![
                r.name.clone(),
                s.set.clone(),
                role.into(),
                format!("{} ({})", s.points, s.through_step),
                loss(Some(s.last_seen)),
                format!("{}{c_note}", loss(s.predicted)),
                loss(s.measured),
                signed(s.predicted.zip(s.measured).map(|(p, m)| p - m)),
                signed(s.measured.map(|m| s.last_seen - m)),
            ]);
        }
    }
    t
}

/// One row per run: predicted AVG and forgetting (old sets), and the plan's cost.
fn totals_table(runs: &[RunPrediction]) -> Table {
    let mut t = Table::new(&[
        "run",
        "predicted AVG",
        "predicted forgetting",
        "tokens",
        "FLOPs",
    ])
    .left(&[0]);
    for r in runs {
        let old: Vec<f64> = r
            .sets
            .iter()
            .filter(|s| s.old)
            .filter_map(|s| Some(s.predicted? - s.at_boundary))
            .collect();
        t.rows.push(vec![
            r.name.clone(),
            loss(r.predicted_avg()),
            signed(crate::measures::average(&old)),
            count(r.tokens),
            sci(Some(r.flops)),
        ]);
    }
    t
}

/// Predictions for the runs behind `inputs` (run or sweep folders, as `rewarm report` takes them).
pub fn predict(
    inputs: &[std::path::PathBuf],
    until_fraction: Option<f64>,
    last_k: usize,
) -> Result<Vec<RunPrediction>, crate::ReportError> {
    let (runs, _) = crate::run::discover(inputs)?;
    runs.iter()
        .map(|run| {
            let until = until_fraction.map(|f| {
                let steps =
                    run.planned_steps.unwrap_or(0) - run.boundaries().last().copied().unwrap_or(0);
                (f * steps as f64).round() as u64
            });
            predict_run(run, until, last_k).map_err(|why| {
                crate::ReportError::new(
                    &run.dir.join("plan.json"),
                    why,
                    "pass run folders written by this version of rewarm",
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_by_hand() {
        // LR 2, 2, 1, 0: τ in units of the peak 2; the drops 1 (step 2) and 1 (step 3) with momentum λ.
        let a = areas(&[2.0, 2.0, 1.0, 0.0]);
        let l = ANNEAL_MOMENTUM;
        assert_eq!(a.len(), 5);
        assert_eq!(a[2], (2.0, 0.0));
        assert!((a[3].0 - 2.5).abs() < 1e-12 && (a[3].1 - 0.5).abs() < 1e-12);
        let m3 = l * 1.0 + 1.0;
        assert!((a[4].1 - (0.5 + m3 / 2.0)).abs() < 1e-12);
        // A warmup's rises anneal nothing.
        assert!(areas(&[0.5, 1.0, 1.0]).iter().all(|&(_, s2)| s2 == 0.0));
    }

    #[test]
    fn the_fit_recovers_a_law_and_extrapolates_it() {
        let truth = Law {
            l0: 2.5,
            a: 1.5,
            alpha: 0.6,
            c: 0.004,
        };
        // A cosine from 1 to 0.1 over 200 steps; the fit sees the first 60.
        let lrs: Vec<f64> = (0..200)
            .map(|n| 0.1 + 0.45 * (1.0 + (std::f64::consts::PI * n as f64 / 200.0).cos()))
            .collect();
        let ar = areas(&lrs);
        let points: Vec<_> = (0..=60)
            .step_by(6)
            .map(|n| (ar[n], truth.at(ar[n])))
            .collect();
        let law = fit(&points, true).unwrap();
        assert!((law.alpha - 0.6).abs() < 0.011, "{law:?}");
        assert!(
            (law.at(ar[200]) - truth.at(ar[200])).abs() < 1e-3,
            "{law:?}"
        );
        // A rising (forgotten) set: A < 0.
        let rising = Law { a: -1.0, ..truth };
        let points: Vec<_> = (0..=60)
            .step_by(6)
            .map(|n| (ar[n], rising.at(ar[n])))
            .collect();
        let law = fit(&points, true).unwrap();
        assert!(law.a < 0.0 && (law.at(ar[200]) - rising.at(ar[200])).abs() < 1e-3);
        // Too few points: no fit.
        assert!(fit(&points[..MIN_POINTS - 1], true).is_none());
        // Without the annealing term the law is a power law in the forward area: C = 0.
        assert_eq!(fit(&points, false).unwrap().c, 0.0);
    }
}
