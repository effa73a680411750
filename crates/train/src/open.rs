//! How a run starts: `Trainer::open` joins the process group, takes the folder's lock, opens the data,
//! finds the checkpoint to resume (or the `init_from` weights), builds the model and optimizer in that
//! state, and opens the metrics log; and the setup it calls.

use crate::backend::dist::ProcessGroup;
use crate::ema::Ema;
use crate::error::{TrainError, TrainResult};
use crate::inject::Injector;
use crate::monitor::Monitor;
use crate::observer::Observer;
use crate::optim::AdamW;
use crate::reptile::Reptile;
use crate::resume;
use crate::run_data::open_data;
use crate::tasks::TaskSet;
use crate::train_loop::{seeded, TrainOptions, Trainer};
use rewarm_data::Batch;
use rewarm_model::weights::sorted_variables;
use rewarm_model::{decay_mask, Model};
use rewarm_plan::extend::Extension;
use rewarm_plan::{plan_file, Plan};
use rewarm_runfolder::{CheckpointDir, Environment, MetricsLog, RunDir, RunLock};
use tch::{nn, Device};

impl<'a> Trainer<'a> {
    /// Everything a run needs before its first step: the process group, the folder and its lock, the
    /// data, the model and optimizer in the state of the checkpoint resumed (or fresh), the metrics log.
    pub fn open(
        plan: &'a Plan,
        opts: &'a TrainOptions,
        observer: &'a dyn Observer,
    ) -> TrainResult<Self> {
        let group = join_group(plan, opts)?;
        let writer = group.as_ref().is_none_or(|g| g.world.rank == 0);
        let run = RunDir::new(&opts.run_dir);
        std::fs::create_dir_all(run.root()).map_err(|e| TrainError::io(run.root(), e))?;
        let lock = writer.then(|| RunLock::acquire(run.root())).transpose()?;
        set_threads(plan, opts);
        let data = open_data(plan)?;
        // Rank 0 writes the task scores; the others need not score.
        let tasks = match writer {
            true => TaskSet::open_all(plan, &data.sources[0])?,
            false => Vec::new(),
        };
        let plan_json = plan_file(plan).to_json();
        let resume = resume::checkpoint_to_resume(&run, writer, group.as_ref(), plan, observer)?;
        if writer {
            plan_file(plan).write(&run.plan_json())?;
        }
        crate::memory::check_fits(plan, opts.device, group.as_ref().map(|g| &g.world))?;
        let (model, vs, mut opt) = build_model(plan, opts.device)?;
        let state = resume::starting_state(plan, resume.as_ref(), &vs, &mut opt, &data)?;
        let (ema, reptile) = weight_copies(plan, &vs, resume.as_ref().map(|r| &r.ckpt))?;
        let resumed_from = resume.as_ref().map(|r| r.ckpt.step);
        if let Some(r) = &resume {
            note_extension(plan, &r.extension, observer);
        }
        let metrics = writer
            .then(|| MetricsLog::open(&run, resumed_from))
            .transpose()?;
        if writer {
            environment(opts, resumed_from).write(&run)?;
            crate::run_data::baselines(plan, &data).write(&run)?;
        }
        observer.started(plan, resumed_from);
        let mut t = Trainer {
            plan,
            opts,
            observer,
            run,
            model,
            vs,
            opt,
            data,
            state,
            metrics,
            batch: Batch::default(),
            plan_json,
            injector: Injector::new(opts.inject_non_finite),
            group,
            pending: Vec::new(),
            interval: None,
            bf16: plan
                .config
                .train
                .precision
                .bf16_on(opts.device == Device::Cpu),
            spikes: None,
            ema,
            reptile,
            // Rank 0 writes the measurements; the others need not measure.
            monitor: writer
                .then(|| plan.config.monitor.clone().map(Monitor::new))
                .flatten(),
            tasks,
            _lock: lock,
        };
        t.spikes = t.spike_guard();
        if resumed_from.is_none() {
            t.evaluate()?; // the starting point of every curve
        }
        Ok(t)
    }
}

/// Tells the observer where the plan departs from the run's, if it does.
fn note_extension(plan: &Plan, extension: &Extension, observer: &dyn Observer) {
    let Some(first) = extension.changed_from else {
        return;
    };
    let added: Vec<&str> = plan
        .sources
        .iter()
        .map(|s| s.name.as_str())
        .filter(|n| !extension.sources_then.iter().any(|t| t == n))
        .collect();
    let sources = match added.is_empty() {
        true => String::new(),
        false => format!(", with new sources {}", added.join(", ")),
    };
    let from = match plan.stages.get(first) {
        Some(st) => format!("from stage `{}` on", st.name),
        None => "in the stages it leaves out".into(),
    };
    observer.note(&format!(
        "continuing under a plan that differs from the run's {from}{sources}"
    ));
}

/// Data parallel: joins the group after checking that every step's batch splits over the processes
/// (before anyone waits on a collective).
fn join_group(plan: &Plan, opts: &TrainOptions) -> TrainResult<Option<ProcessGroup>> {
    let Some(world) = &opts.world else {
        return Ok(None);
    };
    for t in 0..plan.total_steps {
        world.slice(plan.step(t).batch_sequences as usize)?;
    }
    Ok(Some(ProcessGroup::join(world, opts.device)?))
}

/// Torch threads on the CPU: the option, else the plan's, else the cores shared among this machine's
/// processes; and the host allocator tuned for training.
fn set_threads(plan: &Plan, opts: &TrainOptions) {
    match (opts.threads.or(plan.config.train.threads), &opts.world) {
        (Some(threads), _) => tch::set_num_threads(threads as i32),
        (None, Some(w)) if opts.device == Device::Cpu => {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            tch::set_num_threads((cores / w.local_size).max(1) as i32);
        }
        _ => {}
    }
    if opts.device == Device::Cpu {
        crate::backend::host_memory::reuse_freed_memory();
    }
}

/// The plan's model, initialised from the seed's `model/init` stream, and its optimizer.
fn build_model(plan: &Plan, device: Device) -> TrainResult<(Model, nn::VarStore, AdamW)> {
    let vs = nn::VarStore::new(device);
    let model = seeded(plan.config.seed, "model/init", || {
        Model::new(&vs.root(), &plan.model)
    })?;
    let decay_embeddings = plan.config.optimizer.decay_embeddings;
    let opt = AdamW::new(plan.config.optimizer.clone(), sorted_variables(&vs), |n| {
        decay_mask(n, decay_embeddings)
    });
    Ok((model, vs, opt))
}

/// What this start trains with: rewarm version, git revision, device, threads, processes.
fn environment(opts: &TrainOptions, resumed_from: Option<u64>) -> Environment {
    Environment {
        rewarm_version: Some(env!("CARGO_PKG_VERSION").into()),
        git_revision: Some(
            option_env!("REWARM_GIT_REVISION")
                .unwrap_or("unknown")
                .into(),
        ),
        libtorch: Some("2.11.0".into()),
        device: Some(format!("{:?}", opts.device)),
        threads: Some(tch::get_num_threads().into()),
        processes: Some(opts.world.as_ref().map_or(1, |w| w.size)),
        resumed_from_step: resumed_from,
    }
}

/// The weight copies the plan keeps beside the weights, `[ema]`'s average and a Reptile stage's anchor,
/// as checkpoint `ckpt` saved them (`None`: a fresh start, the average at the weights and no anchor yet).
pub(crate) fn weight_copies(
    plan: &Plan,
    vs: &nn::VarStore,
    ckpt: Option<&CheckpointDir>,
) -> TrainResult<(Option<Ema>, Option<Reptile>)> {
    let mut ema = plan
        .config
        .ema
        .as_ref()
        .map(|c| Ema::new(c.decay, c.evaluate, vs));
    let Some(ckpt) = ckpt else {
        return Ok((ema, None));
    };
    if let Some(e) = &mut ema {
        e.load(&ckpt.ema())?;
    }
    Ok((ema, Reptile::resumed(plan, ckpt.step, ckpt, vs)?))
}
