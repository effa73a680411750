//! `rewarm probe batch`: the local critical batch size of a run by branched training (Merrill, Arora,
//! Groeneveld, Hajishirzi 2025, "Critical Batch Size Revisited"; docs/papers.md#critical-batch-size-merrill-et-al-2025).
//!
//! From a checkpoint of the run (batch B, schedule LR η there), one branch per factor k trains Δ tokens
//! at batch k·B and LR √k·η (Adam's rule), Adam's moments and the data going on from the checkpoint. The
//! critical batch there is the largest k·B whose loss after Δ tokens is within ε of every smaller
//! factor's. Probed at several checkpoints, it gives the doubling points of a batch-size warmup: double
//! once the critical batch exceeds twice the batch.
//!
//! The losses compared are the branches' validation loss on one set after Δ tokens (the whole split by
//! the plan's `[eval]`), and, as the paper does, their training loss smoothed by an EMA; the decision uses
//! the validation loss, a fixed set rather than batches of different sizes. A branch is an ordinary run
//! folder (`rewarm branch`'s, with the batch doubled at the branch point `log2 k` times), so a probe
//! stopped part way resumes.

use crate::branch::{prepare_branch_with, BranchRequest, SchedulePolicy};
use crate::runner::RunTrainer;
use anyhow::{anyhow, bail, Context, Result};
use rewarm_plan::config::{OptimizerPolicy, StageConfig};
use rewarm_plan::schedule::Schedule;
use rewarm_plan::{Plan, PlanConfig};
use rewarm_runfolder::records::Record;
use rewarm_runfolder::{metrics_log, RunDir};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What `rewarm probe batch` was asked.
pub struct BatchProbeRequest {
    /// The run probed and the plan it was trained with.
    pub trunk: PathBuf,
    pub plan: PathBuf,
    /// Steps of its checkpoints to probe at.
    pub steps: Vec<u64>,
    /// Batch factors k, powers of two from 1 up.
    pub factors: Vec<u64>,
    /// Tokens each branch trains (default: 10 steps of the largest batch).
    pub tokens: Option<u64>,
    /// Loss tolerance ε in nats (the paper: 0.01).
    pub epsilon: f64,
    /// The EMA's weight on the previous value (the paper: 0.5).
    pub smoothing: f64,
    /// The validation set compared (default: the source the stage draws most from).
    pub set: Option<String>,
    /// Folder of the branches: `<out>/step_<N>/x<k>`.
    pub out: PathBuf,
}

/// One branch: factor k, the steps it took, its validation loss after Δ tokens and smoothed training loss.
#[derive(Clone, Debug, PartialEq)]
pub struct Arm {
    pub factor: u64,
    pub steps: u64,
    pub lr: f64,
    pub eval_loss: f64,
    pub train_ema: f64,
}

/// The branches from one checkpoint and the critical factors they give.
#[derive(Clone, Debug, PartialEq)]
pub struct ProbePoint {
    pub step: u64,
    /// Tokens the run had seen at the checkpoint.
    pub tokens: u64,
    pub batch_sequences: u64,
    pub tokens_per_branch: u64,
    pub set: String,
    pub arms: Vec<Arm>,
    /// k* by the validation loss, and by the smoothed training loss.
    pub critical: u64,
    pub critical_by_train: u64,
}

/// Every probed checkpoint, and the batch doublings they suggest.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchProbe {
    pub epsilon: f64,
    pub points: Vec<ProbePoint>,
    pub doublings: Vec<u64>,
}

/// Probes the critical batch at each requested checkpoint, training the branches not finished yet.
pub fn probe_batch(req: &BatchProbeRequest, trainer: &dyn RunTrainer) -> Result<BatchProbe> {
    check_factors(&req.factors)?;
    let trunk = crate::load_plan(&req.plan)?;
    let mut points = Vec::new();
    for &step in &req.steps {
        points.push(probe_at(req, &trunk, step, trainer)?);
    }
    points.sort_by_key(|p| p.step);
    let doublings = suggested_doublings(&points);
    Ok(BatchProbe {
        epsilon: req.epsilon,
        points,
        doublings,
    })
}

fn check_factors(factors: &[u64]) -> Result<()> {
    let powers = factors.iter().all(|k| k.is_power_of_two());
    let rising = factors.windows(2).all(|w| w[0] < w[1]);
    if factors.first() != Some(&1) || !powers || !rising {
        bail!("--factors {factors:?}: give rising powers of two from 1, e.g. 1,2,4,8");
    }
    Ok(())
}

/// The branches from the checkpoint at `step`: prepared, trained (or resumed), read back.
fn probe_at(
    req: &BatchProbeRequest,
    trunk: &Plan,
    step: u64,
    trainer: &dyn RunTrainer,
) -> Result<ProbePoint> {
    if step == 0 || step > trunk.total_steps {
        bail!(
            "--step {step}: the plan trains steps 1 to {}\nHINT: probe at a step of one of the run's checkpoints",
            trunk.total_steps
        );
    }
    let last = trunk.step(step - 1);
    let seen = last.tokens_before + last.batch_sequences * trunk.seq_len as u64;
    let biggest = req.factors.last().copied().unwrap_or(1);
    let tokens = req
        .tokens
        .unwrap_or(10 * biggest * last.batch_sequences * trunk.seq_len as u64);
    let stage = probe_stage(trunk, step, tokens)?;
    let set = match &req.set {
        Some(s) => s.clone(),
        None => main_source(trunk, step),
    };
    let mut arms = Vec::new();
    for &k in &req.factors {
        let run = req.out.join(format!("step_{step}")).join(format!("x{k}"));
        let plan = prepare_arm(req, (step, seen, k), &stage, &run)?;
        let branch = crate::load_plan(&plan)?;
        if !RunDir::new(&run).finished(branch.total_steps) {
            trainer.train(&plan, &run)?;
        }
        arms.push(read_arm(&run, (step, k), &set, req.smoothing)?);
    }
    let by = |f: fn(&Arm) -> f64| {
        let losses: Vec<(u64, f64)> = arms.iter().map(|a| (a.factor, f(a))).collect();
        critical_factor(&losses, req.epsilon)
    };
    Ok(ProbePoint {
        step,
        tokens: seen,
        batch_sequences: last.batch_sequences,
        tokens_per_branch: tokens,
        set,
        critical: by(|a| a.eval_loss),
        critical_by_train: by(|a| a.train_ema),
        arms,
    })
}

/// The branches' one stage: the stage holding `step` going on with its data (the mixture in effect at
/// the checkpoint) and its settings for `tokens` tokens, at a constant LR, the schedule's at the
/// checkpoint; Adam's moments kept.
fn probe_stage(trunk: &Plan, step: u64, tokens: u64) -> Result<StageConfig> {
    let holding = trunk.stage_of(step - 1);
    let st = &trunk.stages[holding];
    let info = trunk.step(step - 1);
    let phase = &st.phases[info.data_stage - st.first_phase];
    let lr = st.lr(info.local_step);
    let schedule: Schedule = toml::from_str(&format!("kind = \"constant\"\nlr = {lr:e}\n"))
        .context("the probe's constant schedule")?;
    Ok(StageConfig {
        name: "probe".into(),
        tokens,
        mixture: phase
            .mixture
            .iter()
            .map(|&(k, w)| (trunk.sources[k].name.clone(), w))
            .collect::<BTreeMap<_, _>>(),
        mixture_changes: Vec::new(),
        schedule,
        optimizer: OptimizerPolicy::Keep,
        moment_warmup_steps: 0,
        stop_after_steps: None,
        shrink_perturb: None,
        reptile: None,
        ..trunk.config.stages[holding].clone()
    })
}

/// The source the stage holding `step` draws most new data from (the default set compared).
fn main_source(trunk: &Plan, step: u64) -> String {
    let st = &trunk.stages[trunk.stage_of(step - 1)];
    let k = st
        .mixture
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |m| m.0);
    trunk.sources[k].name.clone()
}

/// Writes branch `k`'s folder (unless it exists): the trunk's checkpoint at `step`, then the probe
/// stage at batch k·B (`log2 k` doublings at the `seen` tokens), evaluated only at its end, logged every
/// step, checkpointed only at its end. Returns its plan file.
fn prepare_arm(
    req: &BatchProbeRequest,
    (step, seen, k): (u64, u64, u64),
    stage: &StageConfig,
    run: &std::path::Path,
) -> Result<PathBuf> {
    let plan = RunDir::new(run).plan_toml();
    if plan.is_file() {
        return Ok(plan);
    }
    let branch = BranchRequest {
        trunk: req.trunk.clone(),
        step: Some(step),
        plan: req.plan.clone(),
        stages: PathBuf::new(),
        run: run.to_owned(),
        moments: None,
        schedule: SchedulePolicy::New,
    };
    let edit = |c: &mut PlanConfig, _: (&Plan, u64)| probe_config(c, seen, k);
    std::fs::create_dir_all(run).with_context(|| format!("creating {}", run.display()))?;
    Ok(prepare_branch_with(&branch, vec![stage.clone()], &edit)?.plan)
}

/// The branch's settings past the branch point: the batch × k from the `seen` tokens on (the trunk's
/// later doublings dropped), evaluation at the stage's end only, a training record every step, one
/// checkpoint.
fn probe_config(c: &mut PlanConfig, seen: u64, k: u64) {
    let doublings = &mut c.train.batch_doubling_tokens;
    doublings.retain(|&t| t < seen);
    doublings.extend(std::iter::repeat_n(seen, k.trailing_zeros() as usize));
    c.train.log_every_steps = 1;
    let e = &mut c.eval;
    (e.every_steps, e.dense_steps, e.dense_every_steps) = (0, 0, 0);
    (e.final_steps, e.final_every_steps) = (0, 0);
    (c.checkpoint.every_steps, c.checkpoint.keep_last) = (0, 1);
}

/// Branch `k`'s numbers from its metrics: the steps after the branch point, its LR, the final validation
/// loss on `set` and the EMA of its training losses.
fn read_arm(
    run: &std::path::Path,
    (step, k): (u64, u64),
    set: &str,
    smoothing: f64,
) -> Result<Arm> {
    let records = metrics_log::read(&RunDir::new(run).metrics())?;
    let train: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::Train(t) if t.step > step => Some(t),
            _ => None,
        })
        .collect();
    let last = train
        .last()
        .ok_or_else(|| anyhow!("{}: no training step after {step}", run.display()))?;
    let eval = records
        .iter()
        .filter_map(|r| match r {
            Record::Eval(e) if e.step == last.step && e.set == set => Some(e.loss),
            _ => None,
        })
        .next()
        .ok_or_else(|| {
            anyhow!(
                "{}: no evaluation of `{set}` at step {}\nHINT: --set names one of the plan's validation sets",
                run.display(),
                last.step
            )
        })?;
    let losses: Vec<f64> = train.iter().map(|t| t.loss).collect();
    Ok(Arm {
        factor: k,
        steps: last.step - step,
        lr: last.lr,
        eval_loss: eval,
        train_ema: ema(&losses, smoothing),
    })
}

/// The exponential moving average of `losses`, weight `smoothing` on the previous value, started at the
/// first loss.
pub fn ema(losses: &[f64], smoothing: f64) -> f64 {
    let mut it = losses.iter();
    let first = it.next().copied().unwrap_or(f64::NAN);
    it.fold(first, |s, &x| smoothing * s + (1.0 - smoothing) * x)
}

/// The critical factor k*: the largest k whose loss is within `epsilon` of every smaller factor's
/// (Merrill et al.'s rule, `L_k* ≤ L_k + ε` for all k < k*); factors in rising order, the first 1.
pub fn critical_factor(losses: &[(u64, f64)], epsilon: f64) -> u64 {
    let mut critical = losses.first().map_or(1, |l| l.0);
    for (i, &(k, loss)) in losses.iter().enumerate().skip(1) {
        if losses[..i]
            .iter()
            .all(|&(_, smaller)| loss <= smaller + epsilon)
        {
            critical = k;
        } else {
            break;
        }
    }
    critical
}

/// Batch-size warmup from the probes (Merrill et al.): going through the checkpoints in order, with the
/// batch the warmup would have by then, double at a checkpoint's tokens while its critical batch exceeds
/// twice the batch.
pub fn suggested_doublings(points: &[ProbePoint]) -> Vec<u64> {
    let mut doublings = Vec::new();
    let mut batch = points.first().map_or(0, |p| p.batch_sequences);
    for p in points {
        let critical = p.critical * p.batch_sequences;
        while critical > 2 * batch {
            batch *= 2;
            doublings.push(p.tokens);
        }
    }
    doublings
}

impl BatchProbe {
    /// The terminal table: per checkpoint, each branch's numbers and the critical batch; then the
    /// suggested doubling points.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for p in &self.points {
            out.push_str(&format!(
                "step {} ({} tokens seen, batch {} sequences): {} tokens per branch, loss on `{}`\n",
                p.step, p.tokens, p.batch_sequences, p.tokens_per_branch, p.set
            ));
            out.push_str("    k    batch  steps         LR  val loss  train EMA\n");
            for a in &p.arms {
                out.push_str(&format!(
                    "{:>5} {:>8} {:>6} {:>10.3e} {:>9.4} {:>10.4}\n",
                    a.factor,
                    a.factor * p.batch_sequences,
                    a.steps,
                    a.lr,
                    a.eval_loss,
                    a.train_ema
                ));
            }
            out.push_str(&format!(
                "    critical batch: {} sequences ({}×) by the validation loss, {} ({}×) by the smoothed training loss (ε = {})\n",
                p.critical * p.batch_sequences,
                p.critical,
                p.critical_by_train * p.batch_sequences,
                p.critical_by_train,
                self.epsilon
            ));
        }
        let points: Vec<String> = self.doublings.iter().map(|t| t.to_string()).collect();
        out.push_str(&format!(
            "suggested batch_doubling_tokens = [{}] (double while the critical batch exceeds twice the batch)\n",
            points.join(", ")
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_critical_factor_is_the_largest_within_epsilon_of_every_smaller_one() {
        let l = |v: &[f64]| -> Vec<(u64, f64)> {
            [1, 2, 4, 8].into_iter().zip(v.iter().copied()).collect()
        };
        assert_eq!(critical_factor(&l(&[3.0, 3.005, 3.009, 3.02]), 0.01), 4);
        // Within ε of k = 2 but not of k = 1: the comparison is with every smaller factor.
        assert_eq!(critical_factor(&l(&[3.0, 3.008, 3.016, 3.0]), 0.01), 2);
        assert_eq!(critical_factor(&l(&[3.0, 3.02, 3.0, 3.0]), 0.01), 1);
        assert_eq!(critical_factor(&l(&[3.0, 2.9, 2.8, 2.7]), 0.01), 8);
    }

    #[test]
    fn the_ema_weights_the_previous_value_by_the_smoothing() {
        // 4 → 0.5·4 + 0.5·2 = 3 → 0.5·3 + 0.5·1 = 2
        assert_eq!(ema(&[4.0, 2.0, 1.0], 0.5), 2.0);
        assert_eq!(ema(&[4.0, 2.0], 0.0), 2.0);
    }

    fn point(step: u64, tokens: u64, batch: u64, critical: u64) -> ProbePoint {
        ProbePoint {
            step,
            tokens,
            batch_sequences: batch,
            tokens_per_branch: 0,
            set: "en".into(),
            arms: Vec::new(),
            critical,
            critical_by_train: critical,
        }
    }

    #[test]
    fn the_batch_doubles_where_the_critical_batch_first_exceeds_twice_it() {
        // B = 32: critical 2× (64) is not more than 2B; 4× (128) is → double to 64 at 2,000 tokens;
        // then 8× (256) at 6,000 exceeds 2·64 → 128, and exceeds 2·128? no (256 = 2·128).
        let p = [
            point(10, 1000, 32, 2),
            point(20, 2000, 32, 4),
            point(30, 6000, 32, 8),
        ];
        assert_eq!(suggested_doublings(&p), vec![2000, 6000]);
        assert!(suggested_doublings(&[point(10, 1000, 32, 1)]).is_empty());
        // A critical batch far above: several doublings at one point.
        assert_eq!(
            suggested_doublings(&[point(10, 1000, 32, 16)]),
            vec![1000, 1000, 1000]
        );
    }

    #[test]
    fn factors_are_rising_powers_of_two_from_one() {
        assert!(check_factors(&[1, 2, 4, 8]).is_ok());
        for bad in [&[2u64, 4][..], &[1, 3], &[1, 4, 2], &[]] {
            assert!(check_factors(bad).is_err(), "{bad:?}");
        }
    }
}
