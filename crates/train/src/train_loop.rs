//! The training loop (`train`) and the state it drives (`Trainer`). The loop reads top to bottom; each
//! periodic action is one `if … due` line; the state is the step counter and the tensors. How a run
//! starts (`Trainer::open`) is in [`crate::open`].

use crate::backend::dist::{ProcessGroup, World};
use crate::checkpoint::{self, CheckpointData};
use crate::ema::Ema;
use crate::error::{TrainError, TrainResult};
use crate::inject::{Injection, Injector};
use crate::interrupt::Interrupt;
use crate::monitor::Monitor;
use crate::observer::{Observer, StepRecord};
use crate::optim::AdamW;
use crate::reptile::Reptile;
use crate::run_data::Data;
use crate::spikes::SpikeGuard;
use crate::step::{accumulate_gradients, evaluate_set, window_tensors, Execution};
use crate::tasks::TaskSet;
use rewarm_data::sampler::stream_seed;
use rewarm_data::Batch;
use rewarm_model::weights::sorted_variables;
use rewarm_model::Model;
use rewarm_plan::config::{NonFinite, OptimizerPolicy};
use rewarm_plan::{Plan, StepInfo};
use rewarm_runfolder::checkpoints::{retention, Retain};
use rewarm_runfolder::records::{
    EvalRecord, Record, RepresentationRecord, RollbackRecord, TaskRecord, TrainRecord,
};
use rewarm_runfolder::{fault, MetricsLog, RunDir, RunLock, TrainState};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;
use tch::{nn, Device, Kind, Tensor};

#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub run_dir: PathBuf,
    pub device: Device,
    /// Stop (with a checkpoint) once this many steps are done; `rewarm train` again resumes.
    pub stop_at_step: Option<u64>,
    /// Torch threads on CPU, overriding the plan's `train.threads` (results can differ in the last bits
    /// with the thread count, so resume with the same one for bit-exactness).
    pub threads: Option<usize>,
    /// Testing aid: a non-finite value at one step (exercises the non-finite guard).
    pub inject_non_finite: Option<Injection>,
    /// Data parallel: this process's place among the others (`None`: one process). Each rank trains on
    /// its slice of every global batch; rank 0 alone writes metrics and checkpoints (see `backend::dist`).
    pub world: Option<World>,
    /// Stop early with a checkpoint when asked (SIGTERM): [`TrainError::Interrupted`].
    pub interrupt: Option<Interrupt>,
}

impl TrainOptions {
    /// One process on `device`, no limits, no injection.
    pub fn new(run_dir: impl Into<PathBuf>, device: Device) -> Self {
        TrainOptions {
            run_dir: run_dir.into(),
            device,
            stop_at_step: None,
            threads: None,
            inject_non_finite: None,
            world: None,
            interrupt: None,
        }
    }
}

/// Trains `plan` into `opts.run_dir`, resuming from its newest complete checkpoint if it has one. Asked
/// to stop (`opts.interrupt`), it checkpoints the step it finished and returns
/// [`TrainError::Interrupted`].
pub fn train(plan: &Plan, opts: &TrainOptions, observer: &dyn Observer) -> TrainResult<TrainState> {
    let mut t = Trainer::open(plan, opts, observer)?;
    let stop = opts
        .stop_at_step
        .unwrap_or(plan.total_steps)
        .min(plan.total_steps);
    if t.state.step == 0 && plan.config.guard.non_finite == NonFinite::Rollback {
        t.checkpoint()?; // something to roll back to
    }
    while t.state.step < stop {
        let info = plan.step(t.state.step);
        if info.local_step == 0 {
            t.begin_stage(info.stage)?;
        }
        // Loss and gradient norm are read back (a host sync on a GPU) only where something uses them,
        // and before a stop asked for (what is checkpointed must have been checked).
        let next = t.state.step + 1;
        let read_back = t.logs(next)
            || plan.eval_due(next)
            || plan.checkpoint_due(next)
            || next == stop
            || t.local_interrupt().is_some();
        if let Err(e) = t.train_step(&info, read_back) {
            t.recover_or_fail(e)?;
            continue;
        }
        if let Some(beta) = plan.stages[info.stage].reptile_due(info.local_step) {
            t.reptile
                .as_mut()
                .expect("set at the stage's start")
                .meta_update(beta);
        }
        if plan.eval_due(t.state.step) {
            t.evaluate()?;
        }
        let saved = plan.checkpoint_due(t.state.step) || t.state.step == stop;
        if saved {
            t.checkpoint()?;
        }
        if read_back && t.state.step < stop {
            t.stop_if_asked(saved)?;
        }
    }
    Ok(t.state)
}

/// A step whose loss and gradient norm (device tensors) have not been read back yet.
pub(crate) struct Pending {
    step: u64,
    stage: usize,
    lr: f64,
    loss: Tensor,
    grad_norm: Tensor,
    /// Σ|g| before clipping.
    grad_norm_l1: Tensor,
    /// Whether the spike guard skipped the update (0-d bool), when it judged the step.
    spike: Option<Tensor>,
}

pub struct Trainer<'a> {
    pub(crate) plan: &'a Plan,
    pub(crate) opts: &'a TrainOptions,
    pub(crate) observer: &'a dyn Observer,
    pub(crate) run: RunDir,
    pub model: Model,
    pub(crate) vs: nn::VarStore,
    pub(crate) opt: AdamW,
    pub(crate) data: Data,
    pub state: TrainState,
    /// Rank 0's (the only process that writes the run folder).
    pub(crate) metrics: Option<MetricsLog>,
    pub(crate) batch: Batch,
    pub(crate) plan_json: String,
    pub(crate) injector: Injector,
    /// Data parallel: the group gradients are summed over.
    pub(crate) group: Option<ProcessGroup>,
    /// Steps taken since the last read-back, whose loss and gradient norm have not been checked yet.
    pub(crate) pending: Vec<Pending>,
    /// Since when, and how many tokens, the steps since the last read-back took.
    pub(crate) interval: Option<(Instant, u64)>,
    /// Matmuls and attention in bf16 under autocast (`train.precision`).
    pub(crate) bf16: bool,
    /// The loss-spike guard (`guard.spikes`).
    pub(crate) spikes: Option<SpikeGuard>,
    /// The weights' moving average (`[ema]`).
    pub(crate) ema: Option<Ema>,
    /// Reptile's anchor, in a stage with `reptile`.
    pub(crate) reptile: Option<Reptile>,
    /// The representation monitor (`[monitor]`; rank 0 only).
    pub(crate) monitor: Option<Monitor>,
    /// `[eval] tasks`, tokenized (rank 0 only).
    pub(crate) tasks: Vec<TaskSet>,
    /// Held by rank 0 (the only writer of the run folder).
    pub(crate) _lock: Option<RunLock>,
}

/// libtorch's default generator is process-wide: seeding and drawing happen under this lock so that
/// concurrent trainers in one process (tests) cannot interleave and change each other's draws.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` with libtorch's generator seeded from the plan's seed and the stream `name`.
pub(crate) fn seeded<T>(seed: u64, name: &str, f: impl FnOnce() -> T) -> T {
    let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::manual_seed(stream_seed(seed, name) as i64);
    f()
}

impl<'a> Trainer<'a> {
    /// Stage boundary: reset or keep Adam's moments, empty the spike window, shrink-and-perturb if asked,
    /// anchor Reptile.
    fn begin_stage(&mut self, stage: usize) -> TrainResult<()> {
        let st = &self.plan.stages[stage];
        if st.optimizer == OptimizerPolicy::Reset {
            self.opt.reset();
        }
        if let Some(g) = &mut self.spikes {
            g.clear(); // a new stage's data is a new distribution
        }
        if let Some(sp) = &st.shrink_perturb {
            let stream = format!("stage/{stage}/perturb");
            let seed = self.plan.config.seed;
            crate::perturb::shrink_perturb(&self.vs, &self.plan.model, sp, (seed, &stream))?;
        }
        self.reptile = st.reptile.as_ref().map(|_| Reptile::new(&self.vs));
        self.observer.note(&format!(
            "stage `{}` begins at step {} ({} steps)",
            st.name, st.first_step, st.steps
        ));
        Ok(())
    }

    /// One optimizer step: accumulate gradients over micro-batches, clip, AdamW, all on the device. The
    /// loss and gradient norm are read back only when `read_back` (a log, evaluation or checkpoint point):
    /// a step in between whose values are non-finite skips its own update on the device (AdamW's
    /// `found_inf`) and is reported, with its step number, at the next read-back. Checkpoints and metrics
    /// are only written after a read-back, so nothing non-finite is ever saved.
    fn train_step(&mut self, info: &StepInfo, read_back: bool) -> TrainResult<()> {
        let started = Instant::now();
        let step = self.state.step + 1;
        let b = info.batch_sequences as usize;
        self.data
            .mixture
            .fill(info.data_stage, info.data_sequence, b, &mut self.batch);
        let (mut loss, mut grad_norm) = self.forward_backward(step, b)?;
        self.injector
            .after_backward(step, &mut loss, &mut grad_norm, &self.opt);
        let grad_norm_l1 = self.opt.grad_norm_l1(); // before the update clips the gradients
        let lr = info.lr * self.state.lr_scale;
        self.opt.config = self.plan.stages[info.stage].adamw.clone();
        let spike = self.update(lr, &loss, &grad_norm);
        if let Some(e) = &mut self.ema {
            e.update();
        }
        self.state.step = step;
        fault::point("step:after-update").map_err(|e| TrainError::io(self.run.root(), e))?;
        self.state.optimizer_step = self.opt.step;
        self.state.tokens_by_source = self.tokens_by_source(info);
        self.pending.push(Pending {
            step,
            stage: info.stage,
            lr,
            loss,
            grad_norm,
            grad_norm_l1,
            spike,
        });
        let step_tokens = (b * self.plan.seq_len) as u64;
        self.interval.get_or_insert((started, 0)).1 += step_tokens;
        let tokens = info.tokens_before + step_tokens;
        if read_back {
            return self.read_back(info, lr, tokens);
        }
        self.observer.step(&StepRecord {
            step,
            stage: self.plan.stages[info.stage].name.clone(),
            loss: None,
            lr,
            grad_norm: None,
            tokens,
            tokens_per_second: None,
        });
        Ok(())
    }

    /// Forward and backward over this process's rows of the global batch of `b` sequences (all of them
    /// without data parallelism), in micro-batches; returns the mean loss and the gradient norm, on the
    /// device.
    fn forward_backward(&mut self, step: u64, b: usize) -> TrainResult<(Tensor, Tensor)> {
        let micro = self.plan.micro_batch_sequences(b as u64) as usize;
        let (first_row, rows) = match &self.group {
            Some(g) => g.world.slice(b)?,
            None => (0, b),
        };
        let poison = self.injector.batch_factor(step);
        let (seq_len, device, tokens) = (self.plan.seq_len, self.opts.device, &self.batch.tokens);
        let end = first_row + rows;
        let micro_batches = (first_row..end).step_by(micro).map(|first| {
            let rows = micro.min(end - first);
            let (inputs, targets) = window_tensors(tokens, seq_len, first, rows, device);
            let weight = rows as f64 / b as f64;
            let weight = if first == 0 { weight * poison } else { weight };
            (inputs, targets, weight)
        });
        let exec = Execution {
            bf16: self.bf16,
            group: self.group.as_ref(),
            z_loss: self.plan.config.train.z_loss,
            recompute: self.plan.config.train.activation_checkpointing,
        };
        accumulate_gradients(&self.model, &mut self.opt, micro_batches, exec)
    }

    /// The AdamW update with the step's LR; a step whose loss or gradient norm is not finite, or is a
    /// spike (`guard.spikes`), leaves the weights as they were (decided on the device, no read-back).
    /// Returns the spike guard's verdict, when it gave one.
    fn update(&mut self, lr: f64, loss: &Tensor, grad_norm: &Tensor) -> Option<Tensor> {
        let non_finite = loss
            .isfinite()
            .logical_and(&grad_norm.isfinite().to_device(loss.device()))
            .logical_not();
        let spike = self
            .spikes
            .as_mut()
            .and_then(|g| g.check_and_push(loss, grad_norm));
        let skip = match &spike {
            Some(s) => non_finite.logical_or(&s.to_device(loss.device())),
            None => non_finite,
        };
        self.opt
            .step(lr, grad_norm, Some(&skip.to_kind(Kind::Float)));
        spike
    }

    /// The spike guard the plan asks for, holding the window of the state's checkpoint.
    pub(crate) fn spike_guard(&self) -> Option<SpikeGuard> {
        let config = self.plan.config.guard.spikes.as_ref()?;
        let saved = self.state.spike_window.as_ref();
        Some(SpikeGuard::new(config, saved, self.opts.device))
    }

    /// Reads back the pending steps (failing on the first non-finite one), logs this step and tells the
    /// observer, with the speed over the steps since the last read-back.
    fn read_back(&mut self, info: &StepInfo, lr: f64, tokens: u64) -> TrainResult<()> {
        let (loss, grad_norm, grad_norm_l1) = self.check_pending()?;
        // Over the steps since the last read-back: with a GPU running ahead, one step's wall time says
        // nothing.
        let (since, interval_tokens) = self.interval.take().expect("set by train_step");
        let tokens_per_second = interval_tokens as f64 / since.elapsed().as_secs_f64().max(1e-9);
        let stage = self.plan.stages[info.stage].name.clone();
        let step = self.state.step;
        if self.logs(step) {
            let b = info.batch_sequences;
            self.log(Record::Train(TrainRecord {
                step,
                stage: stage.clone(),
                tokens,
                tokens_by_source: self.state.tokens_by_source.clone(),
                lr,
                loss,
                grad_norm,
                grad_norm_l1: Some(grad_norm_l1),
                batch_sequences: b,
                replay_fraction: self.batch.replayed() as f64 / b as f64,
                tokens_per_second,
                spikes_skipped: self.state.spikes_skipped,
            }))?;
        }
        self.observer.step(&StepRecord {
            step,
            stage,
            loss: Some(loss),
            lr,
            grad_norm: Some(grad_norm),
            tokens,
            tokens_per_second: Some(tokens_per_second),
        });
        Ok(())
    }

    /// The signal this process was asked to stop with (single process: decides the next read-back).
    fn local_interrupt(&self) -> Option<i32> {
        match self.group {
            None => self.opts.interrupt.as_ref()?.requested(),
            Some(_) => None, // the group decides together, at read-backs
        }
    }

    /// After a read-back (nothing unchecked is pending): when a stop was asked for, checkpoints this step
    /// (unless `saved` already) and returns [`TrainError::Interrupted`].
    fn stop_if_asked(&mut self, saved: bool) -> TrainResult<()> {
        let Some(signal) = self.interrupted()? else {
            return Ok(());
        };
        if !saved {
            self.checkpoint()?;
        }
        Err(TrainError::Interrupted {
            step: self.state.step,
            total_steps: self.plan.total_steps,
            signal,
        })
    }

    /// The signal a stop was asked with. Data parallel: every process must stop at the same step, so
    /// they sum their requests (at read-backs, where they wait for each other anyway); a process that was
    /// not signalled itself reports 0.
    fn interrupted(&self) -> TrainResult<Option<i32>> {
        let local = self.opts.interrupt.as_ref().and_then(Interrupt::requested);
        let Some(g) = &self.group else {
            return Ok(local);
        };
        let votes = Tensor::from_slice(&[f32::from(local.is_some())]).to_device(self.opts.device);
        g.all_reduce_sum(&votes)?;
        let any = votes.double_value(&[0]) > 0.0;
        Ok(any.then(|| local.unwrap_or(0)))
    }

    /// Whether step `step` writes a training record to metrics.jsonl.
    fn logs(&self, step: u64) -> bool {
        step % self.plan.config.train.log_every_steps.max(1) == 0 || self.plan.is_stage_end(step)
    }

    /// Reads back the losses, gradient norms and spike verdicts of the steps since the last read-back (one
    /// transfer), fails with the first non-finite value, counts and reports the skipped spikes; returns
    /// the last step's loss, norm and ℓ1 norm.
    fn check_pending(&mut self) -> TrainResult<(f64, f64, f64)> {
        let pending = std::mem::take(&mut self.pending);
        let no = Tensor::from(0.0f64);
        let parts: Vec<Tensor> = pending
            .iter()
            .flat_map(|p| {
                let spike = p.spike.as_ref().unwrap_or(&no);
                [&p.loss, &p.grad_norm, &p.grad_norm_l1, spike]
            })
            .map(|t| {
                t.to_kind(Kind::Double)
                    .to_device(self.opts.device)
                    .reshape([1])
            })
            .collect();
        // (loss, norm, ℓ1 norm, spike) per step, stacked on the device and copied back at once.
        let values = Vec::<f64>::try_from(&Tensor::cat(&parts, 0).to_device(Device::Cpu))
            .expect("f64 values");
        for (p, v) in pending.iter().zip(values.chunks_exact(4)) {
            let (loss, norm) = (v[0], v[1]);
            if !loss.is_finite() || !norm.is_finite() {
                return Err(TrainError::NonFinite {
                    what: if loss.is_finite() {
                        "gradient norm"
                    } else {
                        "loss"
                    }
                    .into(),
                    step: p.step,
                    stage: self.plan.stages[p.stage].name.clone(),
                    lr: p.lr,
                });
            }
            if v[3] != 0.0 {
                self.state.spikes_skipped += 1;
                self.observer.note(&format!(
                    "step {}: loss {loss:.4} or gradient norm {norm:.3} is a spike (guard.spikes): its update was skipped",
                    p.step
                ));
            }
        }
        let last = values.len() - 4;
        Ok((values[last], values[last + 1], values[last + 2]))
    }

    /// Tokens trained on per source (`name` new data, `name/replay` replayed) once `info`'s step is done.
    fn tokens_by_source(&self, info: &StepInfo) -> BTreeMap<String, u64> {
        let index = &self.data.mixture.index;
        let l = self.plan.seq_len as u64;
        let mut out = BTreeMap::new();
        for (ds, (_, phase)) in self.plan.phases().enumerate().take(info.data_stage + 1) {
            let m = if ds == info.data_stage {
                info.data_sequence + info.batch_sequences
            } else {
                phase.sequences
            };
            for d in index.draws_in_first(ds, m) {
                let name = &self.plan.sources[d.source].name;
                let key = if d.replay {
                    format!("{name}/replay")
                } else {
                    name.clone()
                };
                *out.entry(key).or_insert(0) += d.sequences * l;
            }
        }
        out
    }

    /// Evaluates every labelled validation set on its fixed token set (and `[ema]`'s average with
    /// `evaluate = true`), then the representation and the tasks.
    pub fn evaluate(&mut self) -> TrainResult<()> {
        let step = self.state.step;
        let info = self
            .plan
            .step(step.saturating_sub(1).min(self.plan.total_steps - 1));
        let stage = self.plan.stages[info.stage].name.clone();
        let tokens = if step == 0 {
            0
        } else {
            info.tokens_before + info.batch_sequences * self.plan.seq_len as u64
        };
        self.evaluate_sets(step, &stage, tokens, None)?;
        if let Some(ema) = self.ema.as_mut().filter(|e| e.evaluated) {
            ema.swap_with_weights();
            let done = self.evaluate_sets(step, &stage, tokens, Some("ema"));
            if let Some(ema) = self.ema.as_mut() {
                ema.swap_with_weights();
            }
            done?;
        }
        self.measure_representation(step, stage.clone(), tokens)?;
        self.score_tasks(step, stage, tokens)
    }

    /// Evaluates every validation set with the weights the model holds now (`weights` names them in the
    /// records when they are not the model's own).
    fn evaluate_sets(
        &mut self,
        step: u64,
        stage: &str,
        tokens: u64,
        weights: Option<&str>,
    ) -> TrainResult<()> {
        for set in &self.data.eval_sets {
            let batch = self.plan.config.eval.batch_sequences as usize;
            let exec = Execution {
                bf16: self.bf16,
                group: self.group.as_ref(),
                z_loss: 0.0,
                recompute: false,
            };
            let loss = evaluate_set(&self.model, set, batch, self.opts.device, exec)?;
            let Some(metrics) = &mut self.metrics else {
                continue; // ranks other than 0 write nothing
            };
            let bits_per_byte = Some(set.bits_per_byte(loss)).filter(|b| b.is_finite());
            metrics.write(Record::Eval(EvalRecord {
                step,
                stage: stage.to_owned(),
                tokens,
                set: set.name.clone(),
                loss,
                perplexity: loss.exp(),
                bits_per_byte,
                eval_tokens: Some(set.target_tokens()),
                weights: weights.map(str::to_owned),
            }))?;
            let shown = match weights {
                Some(w) => format!("{}@{w}", set.name),
                None => set.name.clone(),
            };
            self.observer.eval(step, &shown, loss);
            fault::point("eval:mid").map_err(|e| TrainError::io(self.run.root(), e))?;
        }
        Ok(())
    }

    /// `[eval] tasks`: scores every task and logs it.
    fn score_tasks(&mut self, step: u64, stage: String, tokens: u64) -> TrainResult<()> {
        let mut records = Vec::with_capacity(self.tasks.len());
        for task in &self.tasks {
            let s = task.score(&self.model)?;
            self.observer.note(&format!(
                "step {step}: task {} acc {:.3} acc_norm {:.3} ({} questions)",
                task.name, s.acc, s.acc_norm, s.n
            ));
            records.push(TaskRecord {
                step,
                stage: stage.clone(),
                tokens,
                task: task.name.clone(),
                questions: s.n as u64,
                acc: s.acc,
                acc_norm: s.acc_norm,
                chance: task.chance(),
            });
        }
        for record in records {
            self.log(Record::Task(record))?;
        }
        Ok(())
    }

    /// `[monitor]`: measures the representation on its validation set (`monitor.set`, else the first)
    /// and logs it.
    fn measure_representation(&mut self, step: u64, stage: String, tokens: u64) -> TrainResult<()> {
        let Some(monitor) = &mut self.monitor else {
            return Ok(());
        };
        let Some(set) = monitor.pick(&self.data.eval_sets) else {
            return Ok(());
        };
        let m = monitor.measure(&self.model, &self.opt.slots, set, self.opts.device);
        let record = RepresentationRecord {
            step,
            stage,
            tokens,
            set: set.name.clone(),
            rank_me: m.rank_me,
            alpha_req: m.alpha_req,
            dormant_fraction: m.dormant_fraction,
            layers: m.layers,
        };
        self.log(Record::Representation(record))
    }

    /// Appends a record to metrics.jsonl (rank 0; the other ranks hold the same numbers).
    fn log(&mut self, record: Record) -> TrainResult<()> {
        match &mut self.metrics {
            Some(m) => Ok(m.write(record)?),
            None => Ok(()),
        }
    }

    /// Writes a checkpoint of the current step and applies retention (rank 0; the others hold the same
    /// state and go on).
    pub fn checkpoint(&mut self) -> TrainResult<()> {
        let Some(metrics) = &mut self.metrics else {
            return Ok(());
        };
        metrics.sync()?;
        self.state.spike_window = self.spikes.as_ref().map(SpikeGuard::snapshot);
        let weights = sorted_variables(&self.vs);
        let moments = checkpoint::moments(&self.opt);
        let ema = self.ema.as_ref().map_or_else(Vec::new, Ema::tensors);
        let reptile_anchor = self
            .reptile
            .as_ref()
            .map_or_else(Vec::new, Reptile::tensors);
        let consumed =
            crate::run_data::consumption(self.plan, &self.data, self.state.step).to_json();
        let data = CheckpointData {
            weights: weights.iter().map(|(n, t)| (n.clone(), t)).collect(),
            optimizer: moments.iter().map(|(n, t)| (n.clone(), t)).collect(),
            ema,
            reptile_anchor,
            state: &self.state,
            plan_json: &self.plan_json,
            consumed_json: &consumed,
        };
        let saved = checkpoint::save(&self.run, &data).map_err(|e| self.write_failed(e))?;
        self.observer.checkpoint(self.state.step, &saved.path);
        self.apply_retention()
    }

    /// A checkpoint that could not be written, with what to do and what is left to resume from.
    fn write_failed(&self, cause: TrainError) -> TrainError {
        let folder = self.run.root().display();
        let hint = match self.run.latest_checkpoint() {
            Some(c) => format!(
                "free space on its disk or make {folder} writable, then run the same command again: it resumes from the last complete checkpoint (step {}), which is intact",
                c.step
            ),
            None => format!(
                "free space on its disk or make {folder} writable, then run the same command again (no checkpoint was complete yet: it starts over)"
            ),
        };
        TrainError::CheckpointWrite {
            step: self.state.step,
            cause: Box::new(cause),
            hint,
        }
    }

    /// Deletes the checkpoints the plan's retention policy no longer keeps.
    fn apply_retention(&self) -> TrainResult<()> {
        let complete = self.run.complete_checkpoints();
        let steps: Vec<u64> = complete.iter().map(|c| c.step).collect();
        let c = &self.plan.config.checkpoint;
        let is_stage_end = |s| self.plan.is_stage_end(s);
        for (ckpt, (_, action)) in complete.iter().zip(retention(
            &steps,
            is_stage_end,
            c.keep_last,
            c.keep_stage_ends,
        )) {
            if action == Retain::Delete {
                rewarm_runfolder::checkpoints::remove(&ckpt.path)?;
            }
        }
        Ok(())
    }

    /// The non-finite guard: roll back to the last checkpoint with a lower LR if configured, else fail.
    fn recover_or_fail(&mut self, e: TrainError) -> TrainResult<()> {
        let g = &self.plan.config.guard;
        let TrainError::NonFinite { step, .. } = &e else {
            return Err(e);
        };
        if g.non_finite != NonFinite::Rollback || self.state.rollbacks >= g.max_rollbacks {
            return Err(e);
        }
        let Some(ckpt) = self.run.latest_checkpoint() else {
            return Err(e);
        };
        let (lr_scale, rollbacks) = (self.state.lr_scale * g.lr_backoff, self.state.rollbacks + 1);
        self.state = checkpoint::load(&ckpt, &self.vs, &mut self.opt)?;
        (self.ema, self.reptile) = crate::open::weight_copies(self.plan, &self.vs, Some(&ckpt))?;
        self.pending.clear();
        self.interval = None;
        self.state.lr_scale = lr_scale;
        self.state.rollbacks = rollbacks;
        self.spikes = self.spike_guard();
        if self.metrics.is_some() {
            self.metrics = Some(MetricsLog::open(&self.run, Some(ckpt.step))?);
        }
        self.log(Record::Rollback(RollbackRecord {
            step: ckpt.step,
            failed_step: *step,
            lr_scale,
        }))?;
        self.observer.note(&format!(
            "non-finite at step {step}: rolled back to step {}, LR × {lr_scale}",
            ckpt.step
        ));
        Ok(())
    }
}
