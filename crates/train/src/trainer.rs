//! The training loop (`train`) and the state it drives (`Trainer`). The loop reads top to bottom; each
//! periodic action is one `if … due` line; the state is the step counter and the tensors.

use crate::checkpoint::{self, CheckpointData, Retain, TrainState};
use crate::dist::{ProcessGroup, World};
use crate::error::{TrainError, TrainResult};
use crate::lock::RunLock;
use crate::metrics::MetricsWriter;
use crate::optim::AdamW;
use crate::setup::{open_data, Data};
use crate::step::{accumulate_gradients, evaluate_set, window_tensors, StepMode};
use rewarm_data::sampler::stream_seed;
use rewarm_data::Batch;
use rewarm_model::{decay_mask, Model, ModelConfig};
use rewarm_plan::config::{NonFinite, OptimizerPolicy};
use rewarm_plan::{Plan, StepInfo};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    /// its slice of every global batch; rank 0 alone writes metrics and checkpoints (see `dist`).
    pub world: Option<World>,
}

/// Testing aid: where and when a non-finite value is injected. It fires once per process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Injection {
    /// Steps are numbered as in metrics.jsonl: step N is the N-th optimizer step, logged with `"step": N`.
    pub step: u64,
    pub site: InjectSite,
    /// NaN or ±inf.
    pub value: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectSite {
    /// The step's mean loss, after the backward pass (the gradients stay finite).
    Loss,
    /// One gradient element of the first parameter, before the norm is measured.
    Gradient,
    /// The first micro-batch: its loss is scaled by the value before the backward pass, so the loss and
    /// every gradient it reaches turn non-finite, as with a batch whose forward pass overflows. (Token ids
    /// cannot be NaN; a shard that no longer matches its manifest is refused when the data is opened.)
    Batch,
}

impl Injection {
    /// The loss of step `step` is NaN (`--inject-nan-at-step`).
    pub fn nan_loss(step: u64) -> Self {
        Injection {
            step,
            site: InjectSite::Loss,
            value: f64::NAN,
        }
    }
}

impl std::str::FromStr for Injection {
    type Err = String;
    /// `SITE@STEP[=VALUE]`: SITE is `loss`, `grad` or `batch`; VALUE is `nan` (default), `inf` or `-inf`.
    fn from_str(s: &str) -> Result<Self, String> {
        let usage =
            || format!("`{s}`: expected SITE@STEP[=nan|inf|-inf] with SITE loss, grad or batch");
        let (site, rest) = s.split_once('@').ok_or_else(usage)?;
        let (step, value) = rest.split_once('=').unwrap_or((rest, "nan"));
        Ok(Injection {
            step: step.parse().map_err(|_| usage())?,
            site: match site {
                "loss" => InjectSite::Loss,
                "grad" => InjectSite::Gradient,
                "batch" => InjectSite::Batch,
                _ => return Err(usage()),
            },
            value: match value {
                "nan" => f64::NAN,
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => return Err(usage()),
            },
        })
    }
}

/// What the loop reports as it goes (the CLI draws a progress bar from it).
pub trait Observer {
    fn started(&self, _plan: &Plan, _resumed_from: Option<u64>) {}
    fn step(&self, _record: &StepRecord) {}
    fn eval(&self, _step: u64, _set: &str, _loss: f64) {}
    fn checkpoint(&self, _step: u64, _dir: &Path) {}
    fn note(&self, _message: &str) {}
}

pub struct Silent;
impl Observer for Silent {}

#[derive(Clone, Debug)]
pub struct StepRecord {
    pub step: u64,
    pub stage: String,
    /// Loss, gradient norm and speed are known at read-back steps only (see `Trainer::train_step`).
    pub loss: Option<f64>,
    pub lr: f64,
    pub grad_norm: Option<f64>,
    pub tokens: u64,
    pub tokens_per_second: Option<f64>,
}

/// A step whose loss and gradient norm (device tensors) have not been read back yet.
struct Unchecked {
    step: u64,
    stage: usize,
    lr: f64,
    loss: Tensor,
    grad_norm: Tensor,
}

pub struct Trainer<'a> {
    plan: &'a Plan,
    opts: &'a TrainOptions,
    observer: &'a dyn Observer,
    pub model: Model,
    vs: nn::VarStore,
    opt: AdamW,
    data: Data,
    pub state: TrainState,
    /// Rank 0's (the only process that writes the run folder).
    metrics: Option<MetricsWriter>,
    batch: Batch,
    plan_json: String,
    /// The testing aid `inject_non_finite` fires once per process.
    injected: bool,
    /// Data parallel: the group gradients are summed over.
    group: Option<ProcessGroup>,
    /// Steps taken since the last read-back, whose loss and gradient norm have not been checked yet.
    unchecked: Vec<Unchecked>,
    /// Since when, and how many tokens, the steps since the last read-back took.
    interval: Option<(Instant, u64)>,
    /// Matmuls and attention in bf16 under autocast (`train.precision`).
    bf16: bool,
    /// Held by rank 0 (the only writer of the run folder).
    _lock: Option<RunLock>,
}

/// libtorch's default generator is process-wide: seeding and drawing happen under this lock so that
/// concurrent trainers in one process (tests) cannot interleave and change each other's draws.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Trains `plan` into `opts.run_dir`, resuming from its newest complete checkpoint if it has one.
pub fn train(
    plan: &Plan,
    model_config: &ModelConfig,
    opts: &TrainOptions,
    observer: &dyn Observer,
) -> TrainResult<TrainState> {
    let mut t = Trainer::open(plan, model_config, opts, observer)?;
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
        // Loss and gradient norm are read back (a host sync on a GPU) only where something uses them.
        let next = t.state.step + 1;
        let read_back =
            t.logs(next) || plan.eval_due(next) || plan.checkpoint_due(next) || next == stop;
        if let Err(e) = t.train_step(&info, read_back) {
            t.recover_or_fail(e)?;
            continue;
        }
        if plan.eval_due(t.state.step) {
            t.evaluate()?;
        }
        if plan.checkpoint_due(t.state.step) || t.state.step == stop {
            t.checkpoint()?;
        }
    }
    Ok(t.state)
}

fn sorted_variables(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

impl<'a> Trainer<'a> {
    pub fn open(
        plan: &'a Plan,
        model_config: &ModelConfig,
        opts: &'a TrainOptions,
        observer: &'a dyn Observer,
    ) -> TrainResult<Self> {
        let group = match &opts.world {
            Some(world) => {
                // Every step's batch must split over the processes: check before anyone waits.
                for t in 0..plan.total_steps {
                    world.slice(plan.step(t).batch_sequences as usize)?;
                }
                Some(ProcessGroup::join(world, opts.device)?)
            }
            None => None,
        };
        let writer = group.as_ref().is_none_or(|g| g.world.rank == 0);
        std::fs::create_dir_all(&opts.run_dir).map_err(|e| TrainError::io(&opts.run_dir, e))?;
        let lock = writer
            .then(|| RunLock::acquire(&opts.run_dir))
            .transpose()?;
        match (opts.threads.or(plan.config.train.threads), &opts.world) {
            (Some(threads), _) => tch::set_num_threads(threads as i32),
            // Processes on one machine share its cores.
            (None, Some(w)) if opts.device == Device::Cpu => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                tch::set_num_threads((cores / w.local_size).max(1) as i32);
            }
            _ => {}
        }
        if opts.device == Device::Cpu {
            crate::host_memory::reuse_freed_memory();
        }
        let data = open_data(plan, model_config)?;
        let plan_json =
            serde_json::to_string_pretty(&json!({ "plan": &plan.config, "model": model_config }))
                .expect("serializes");
        let ckpt_root = opts.run_dir.join("ckpt");
        if writer {
            checkpoint::remove_partial(&ckpt_root);
        }
        if let Some(g) = &group {
            g.barrier()?; // the others read checkpoints once rank 0 has tidied the folder
        }
        let latest = checkpoint::list_complete(&ckpt_root).pop();
        let plan_file = opts.run_dir.join("plan.json");
        if let Some((_, dir)) = &latest {
            let saved = std::fs::read_to_string(dir.join(checkpoint::PLAN_FILE))
                .map_err(|e| TrainError::io(dir, e))?;
            if saved != plan_json {
                return Err(TrainError::Config(format!(
                    "{}: this run folder was trained with a different plan\nHINT: resume with the plan it was started with (saved in {}), or train into a new --run folder",
                    opts.run_dir.display(),
                    plan_file.display()
                )));
            }
        }
        if writer {
            checkpoint::write_synced(&plan_file, plan_json.as_bytes())?;
        }

        let vs = nn::VarStore::new(opts.device);
        let model = {
            let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
            tch::manual_seed(stream_seed(plan.config.seed, "model/init") as i64);
            Model::new(&vs.root(), model_config)?
        };
        let decay_embeddings = plan.config.optimizer.decay_embeddings;
        let mut opt = AdamW::new(plan.config.optimizer.clone(), sorted_variables(&vs), |n| {
            decay_mask(n, decay_embeddings)
        });
        let mut state = TrainState {
            step: 0,
            optimizer_step: 0,
            lr_scale: 1.0,
            rollbacks: 0,
            tokens_by_source: BTreeMap::new(),
            data_fingerprint: data.fingerprint.clone(),
            rewarm_version: env!("CARGO_PKG_VERSION").into(),
        };
        match &latest {
            Some((_, dir)) => {
                state = load_checkpoint(dir, &vs, &mut opt)?;
                if state.data_fingerprint != data.fingerprint {
                    return Err(TrainError::Config(format!(
                        "{}: the sources' data changed since this checkpoint was written\nHINT: restore the prepared folders it was trained on, or start a new run",
                        dir.display()
                    )));
                }
            }
            None => {
                if let Some(init) = &plan.config.init_from {
                    crate::pretrained::init_weights(&plan.base_dir.join(init), &vs, model_config)?;
                }
            }
        }
        let metrics = writer
            .then(|| MetricsWriter::open(&opts.run_dir, latest.as_ref().map(|_| state.step)))
            .transpose()?;
        if writer {
            let world_size = opts.world.as_ref().map_or(1, |w| w.size);
            write_environment(
                &opts.run_dir,
                opts.device,
                world_size,
                latest.as_ref().map(|l| l.0),
            )?;
        }
        observer.started(plan, latest.as_ref().map(|l| l.0));
        let bf16 = plan
            .config
            .train
            .precision
            .bf16_on(opts.device == Device::Cpu);
        let mut t = Trainer {
            plan,
            opts,
            observer,
            model,
            vs,
            opt,
            data,
            state,
            metrics,
            batch: Batch::default(),
            plan_json,
            injected: false,
            group,
            unchecked: Vec::new(),
            interval: None,
            bf16,
            _lock: lock,
        };
        if latest.is_none() {
            t.evaluate()?; // the starting point of every curve
        }
        Ok(t)
    }

    /// Stage boundary: reset or keep Adam's moments, shrink-and-perturb if asked.
    fn begin_stage(&mut self, stage: usize) -> TrainResult<()> {
        let st = &self.plan.stages[stage];
        if st.optimizer == OptimizerPolicy::Reset {
            self.opt.reset();
        }
        if let Some(sp) = &st.shrink_perturb {
            let _rng = RNG.lock().unwrap_or_else(|e| e.into_inner());
            tch::manual_seed(
                stream_seed(self.plan.config.seed, &format!("stage/{stage}/perturb")) as i64,
            );
            tch::no_grad(|| {
                for (_, p) in sorted_variables(&self.vs) {
                    let noise = p.randn_like() * sp.sigma;
                    let _ = p.shallow_clone().g_mul_scalar_(sp.lambda).g_add_(&noise);
                }
            });
        }
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
        let b = info.batch_sequences as usize;
        let micro = self.plan.micro_batch_sequences(info.batch_sequences) as usize;
        self.data
            .mixture
            .fill(info.stage, info.first_sequence, b, &mut self.batch);
        let (seq_len, device, tokens) = (self.plan.seq_len, self.opts.device, &self.batch.tokens);
        // This process's rows of the global batch (all of them without data parallelism).
        let (first_row, rows) = match &self.group {
            Some(g) => g.world.slice(b)?,
            None => (0, b),
        };
        let inject = self
            .opts
            .inject_non_finite
            .filter(|i| i.step == self.state.step + 1 && !self.injected);
        self.injected |= inject.is_some();
        let poison = inject
            .filter(|i| i.site == InjectSite::Batch)
            .map_or(1.0, |i| i.value);
        let end = first_row + rows;
        let micro_batches = (first_row..end).step_by(micro).map(|first| {
            let rows = micro.min(end - first);
            let (inputs, targets) = window_tensors(tokens, seq_len, first, rows, device);
            let weight = rows as f64 / b as f64;
            (
                inputs,
                targets,
                if first == 0 { weight * poison } else { weight },
            )
        });
        let mode = StepMode {
            bf16: self.bf16,
            group: self.group.as_ref(),
        };
        let (mut loss, mut grad_norm) =
            accumulate_gradients(&self.model, &mut self.opt, micro_batches, mode)?;
        match inject {
            Some(Injection {
                site: InjectSite::Loss,
                value,
                ..
            }) => loss = loss.full_like(value),
            Some(Injection {
                site: InjectSite::Gradient,
                value,
                ..
            }) => {
                let grad = self.opt.slots[0].param.grad();
                tch::no_grad(|| {
                    let _ = grad.view([-1]).narrow(0, 0, 1).fill_(value);
                });
                grad_norm = self.opt.grad_norm();
            }
            _ => {}
        }
        let lr = info.lr * self.state.lr_scale;
        let non_finite = loss
            .isfinite()
            .logical_and(&grad_norm.isfinite().to_device(loss.device()))
            .logical_not();
        self.opt
            .step(lr, &grad_norm, Some(&non_finite.to_kind(Kind::Float)));
        self.state.step += 1;
        crate::fault::point("step:after-update")
            .map_err(|e| TrainError::io(&self.opts.run_dir, e))?;
        self.state.optimizer_step = self.opt.step;
        self.state.tokens_by_source = self.tokens_by_source(info);
        self.unchecked.push(Unchecked {
            step: self.state.step,
            stage: info.stage,
            lr,
            loss,
            grad_norm,
        });
        let tokens = info.tokens_before + (b * self.plan.seq_len) as u64;
        let interval = self.interval.get_or_insert((started, 0));
        interval.1 += (b * self.plan.seq_len) as u64;
        let stage = &self.plan.stages[info.stage].name;
        if !read_back {
            self.observer.step(&StepRecord {
                step: self.state.step,
                stage: stage.clone(),
                loss: None,
                lr,
                grad_norm: None,
                tokens,
                tokens_per_second: None,
            });
            return Ok(());
        }
        let (loss, grad_norm) = self.check_unchecked()?;
        // Over the steps since the last read-back: with a GPU running ahead, one step's wall time says
        // nothing.
        let (since, interval_tokens) = self.interval.take().expect("set above");
        let tokens_per_second = interval_tokens as f64 / since.elapsed().as_secs_f64().max(1e-9);
        let replay_fraction = self.batch.replayed() as f64 / b as f64;
        if self.logs(self.state.step) {
            self.log(&json!({
                "kind": "train", "step": self.state.step, "stage": stage, "tokens": tokens,
                "tokens_by_source": &self.state.tokens_by_source, "lr": lr, "loss": loss, "grad_norm": grad_norm,
                "batch_sequences": b, "replay_fraction": replay_fraction, "tokens_per_second": tokens_per_second,
            }))?;
        }
        self.observer.step(&StepRecord {
            step: self.state.step,
            stage: stage.clone(),
            loss: Some(loss),
            lr,
            grad_norm: Some(grad_norm),
            tokens,
            tokens_per_second: Some(tokens_per_second),
        });
        Ok(())
    }

    /// Whether step `step` writes a training record to metrics.jsonl.
    fn logs(&self, step: u64) -> bool {
        step % self.plan.config.train.log_every_steps.max(1) == 0 || self.plan.is_stage_end(step)
    }

    /// Reads back the losses and gradient norms of the steps since the last read-back (one transfer) and
    /// fails with the first non-finite one; returns the last step's.
    fn check_unchecked(&mut self) -> TrainResult<(f64, f64)> {
        let unchecked = std::mem::take(&mut self.unchecked);
        let parts: Vec<Tensor> = unchecked
            .iter()
            .flat_map(|u| [&u.loss, &u.grad_norm])
            .map(|t| t.to_kind(Kind::Double).reshape([1]))
            .collect();
        // (loss, norm) pairs, stacked on the device and copied back at once.
        let values = Vec::<f64>::try_from(&Tensor::cat(&parts, 0).to_device(Device::Cpu))
            .expect("f64 values");
        let losses: Vec<f64> = values.iter().step_by(2).copied().collect();
        let norms: Vec<f64> = values.iter().skip(1).step_by(2).copied().collect();
        for ((u, loss), norm) in unchecked.iter().zip(&losses).zip(&norms) {
            if !loss.is_finite() || !norm.is_finite() {
                return Err(TrainError::NonFinite {
                    what: if loss.is_finite() {
                        "gradient norm"
                    } else {
                        "loss"
                    }
                    .into(),
                    step: u.step,
                    stage: self.plan.stages[u.stage].name.clone(),
                    lr: u.lr,
                });
            }
        }
        Ok((
            *losses.last().expect("one step"),
            *norms.last().expect("one step"),
        ))
    }

    /// Tokens trained on per source (`name` new data, `name/replay` replayed) once `info`'s step is done.
    fn tokens_by_source(&self, info: &StepInfo) -> BTreeMap<String, u64> {
        let index = &self.data.mixture.index;
        let l = self.plan.seq_len as u64;
        let mut out = BTreeMap::new();
        for s in 0..=info.stage {
            let m = if s == info.stage {
                info.first_sequence + info.batch_sequences
            } else {
                self.plan.stages[s].sequences
            };
            for d in index.draws_in_first(s, m) {
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

    /// Evaluates every labelled validation set on its fixed token set.
    pub fn evaluate(&mut self) -> TrainResult<()> {
        let step = self.state.step;
        let info = self
            .plan
            .step(step.saturating_sub(1).min(self.plan.total_steps - 1));
        let stage = &self.plan.stages[info.stage].name;
        let tokens = if step == 0 {
            0
        } else {
            info.tokens_before + info.batch_sequences * self.plan.seq_len as u64
        };
        for set in &self.data.eval_sets {
            let mode = StepMode {
                bf16: self.bf16,
                group: self.group.as_ref(),
            };
            let loss = evaluate_set(
                &self.model,
                set,
                self.plan.config.eval.batch_sequences as usize,
                self.opts.device,
                mode,
            )?;
            let Some(metrics) = &mut self.metrics else {
                continue; // ranks other than 0 write nothing
            };
            metrics.write(&json!({
                "kind": "eval", "step": step, "stage": stage, "tokens": tokens, "set": set.name,
                "loss": loss, "perplexity": loss.exp(), "bits_per_byte": set.bits_per_byte(loss),
                "eval_tokens": set.target_tokens(),
            }))?;
            self.observer.eval(step, &set.name, loss);
            crate::fault::point("eval:mid").map_err(|e| TrainError::io(&self.opts.run_dir, e))?;
        }
        Ok(())
    }

    /// Appends a record to metrics.jsonl (rank 0; the other ranks hold the same numbers).
    fn log(&mut self, record: &serde_json::Value) -> TrainResult<()> {
        match &mut self.metrics {
            Some(m) => m.write(record),
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
        let weights = sorted_variables(&self.vs);
        let mut moments = Vec::new();
        for s in &self.opt.slots {
            moments.push((format!("exp_avg.{}", s.name), &s.exp_avg));
            moments.push((format!("exp_avg_sq.{}", s.name), &s.exp_avg_sq));
        }
        let root = self.opts.run_dir.join("ckpt");
        let dir = checkpoint::save(
            &root,
            &CheckpointData {
                weights: weights.iter().map(|(n, t)| (n.clone(), t)).collect(),
                optimizer: moments,
                state: &self.state,
                plan_json: &self.plan_json,
            },
        )
        .map_err(|e| {
            let last = checkpoint::list_complete(&root).pop().map(|c| c.0);
            TrainError::CheckpointWrite {
                step: self.state.step,
                cause: Box::new(e),
                hint: match last {
                    Some(s) => format!(
                        "free space on its disk or make {} writable, then run the same command again: it resumes from the last complete checkpoint (step {s}), which is intact",
                        self.opts.run_dir.display()
                    ),
                    None => format!(
                        "free space on its disk or make {} writable, then run the same command again (no checkpoint was complete yet: it starts over)",
                        self.opts.run_dir.display()
                    ),
                },
            }
        })?;
        self.observer.checkpoint(self.state.step, &dir);
        let steps: Vec<u64> = checkpoint::list_complete(&root)
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let c = &self.plan.config.checkpoint;
        for (step, action) in checkpoint::retention(
            &steps,
            |s| self.plan.is_stage_end(s),
            c.keep_last,
            c.keep_stage_ends,
        ) {
            if action == Retain::Delete {
                checkpoint::remove(&root.join(checkpoint::step_dir_name(step)))?;
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
        let Some((ckpt_step, dir)) =
            checkpoint::list_complete(&self.opts.run_dir.join("ckpt")).pop()
        else {
            return Err(e);
        };
        let (lr_scale, rollbacks) = (self.state.lr_scale * g.lr_backoff, self.state.rollbacks + 1);
        self.state = load_checkpoint(&dir, &self.vs, &mut self.opt)?;
        self.unchecked.clear();
        self.interval = None;
        self.state.lr_scale = lr_scale;
        self.state.rollbacks = rollbacks;
        if self.metrics.is_some() {
            self.metrics = Some(MetricsWriter::open(&self.opts.run_dir, Some(ckpt_step))?);
        }
        self.log(&json!({ "kind": "rollback", "step": ckpt_step, "failed_step": step, "lr_scale": lr_scale }))?;
        self.observer.note(&format!(
            "non-finite at step {step}: rolled back to step {ckpt_step}, LR × {lr_scale}"
        ));
        Ok(())
    }
}

fn load_checkpoint(dir: &Path, vs: &nn::VarStore, opt: &mut AdamW) -> TrainResult<TrainState> {
    let state = checkpoint::load_state(dir)?;
    checkpoint::load_tensors_into(
        &dir.join(checkpoint::MODEL_FILE),
        &sorted_variables(vs),
        "checkpoint weights",
    )?;
    let mut moments = Vec::new();
    for s in &opt.slots {
        moments.push((format!("exp_avg.{}", s.name), s.exp_avg.shallow_clone()));
        moments.push((
            format!("exp_avg_sq.{}", s.name),
            s.exp_avg_sq.shallow_clone(),
        ));
    }
    checkpoint::load_tensors_into(
        &dir.join(checkpoint::OPTIMIZER_FILE),
        &moments,
        "optimizer state",
    )?;
    opt.step = state.optimizer_step;
    Ok(state)
}

fn write_environment(
    run_dir: &Path,
    device: Device,
    world_size: usize,
    resumed_from: Option<u64>,
) -> TrainResult<()> {
    let env = json!({
        "rewarm_version": env!("CARGO_PKG_VERSION"),
        "git_revision": option_env!("REWARM_GIT_REVISION").unwrap_or("unknown"),
        "libtorch": "2.11.0",
        "device": format!("{device:?}"),
        "threads": tch::get_num_threads(),
        "processes": world_size,
        "resumed_from_step": resumed_from,
    });
    checkpoint::write_synced(
        &run_dir.join("environment.json"),
        serde_json::to_string_pretty(&env).expect("json").as_bytes(),
    )
}
