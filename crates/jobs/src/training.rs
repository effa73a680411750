//! One training run as the `rewarm train` command makes it: the plan loaded, data parallelism taken
//! from the launcher's environment, the device chosen, progress shown; and [`LocalTrainer`], how sweeps,
//! studies and the quickstart train their runs with this binary.

use crate::plan_load::load_plan;
use crate::progress::TrainProgress;
use crate::runner::RunTrainer;
use crate::signals::{signal_name, Stopped};
use anyhow::Result;
use rewarm_runfolder::{RunDir, TrainState};
use rewarm_train::backend::dist::World;
use rewarm_train::{Injection, TrainError, TrainOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `rewarm train` was asked.
#[derive(Clone, Debug, Default)]
pub struct TrainRequest {
    pub plan: PathBuf,
    pub run: PathBuf,
    /// `cpu`, `cuda` or `cuda:N` (`None`: CUDA when there is one).
    pub device: Option<String>,
    pub stop_at_step: Option<u64>,
    pub threads: Option<usize>,
    /// Testing aid (hidden options).
    pub inject_non_finite: Option<Injection>,
}

/// What a run did, for the binary to print (`None` for data-parallel ranks other than 0).
pub struct TrainOutcome {
    pub state: TrainState,
    pub total_steps: u64,
    pub seconds: f64,
    pub metrics: PathBuf,
}

/// Trains `request.plan` into `request.run` in this process (resuming it if it holds a checkpoint).
/// Started by `rewarm launch` (RANK, WORLD_SIZE, … set), it is one rank of a data-parallel group, on the
/// GPU of its local rank.
pub fn train_run(request: &TrainRequest) -> Result<Option<TrainOutcome>> {
    let plan = load_plan(&request.plan)?;
    let world = World::from_env()?;
    let mut device = rewarm_train::parse_device(request.device.as_deref())?;
    if let (Some(w), tch::Device::Cuda(0)) = (&world, device) {
        device = rewarm_train::parse_device(Some(&format!("cuda:{}", w.local_rank)))?;
        // one GPU per process
    }
    let writer = world.as_ref().is_none_or(|w| w.rank == 0);
    let progress = TrainProgress::new(plan.total_steps, !writer);
    let opts = TrainOptions {
        stop_at_step: request.stop_at_step,
        threads: request.threads,
        inject_non_finite: request.inject_non_finite,
        world,
        interrupt: Some(crate::signals::interrupt()?),
        ..TrainOptions::new(&request.run, device)
    };
    let result = rewarm_train::train(&plan, &opts, &progress);
    progress.finish();
    let state = match result {
        Err(TrainError::Interrupted {
            step,
            total_steps,
            signal,
        }) => {
            let message = format!(
                "{}: stopped by {} after step {step} of {total_steps}, with a checkpoint\nHINT: run the same command again to resume from step {step}",
                request.run.display(),
                signal_name(signal)
            );
            return Err(Stopped { signal, message }.into());
        }
        r => r?,
    };
    Ok(writer.then(|| TrainOutcome {
        state,
        total_steps: plan.total_steps,
        seconds: progress.started.elapsed().as_secs_f64(),
        metrics: RunDir::new(&request.run).metrics(),
    }))
}

/// Trains runs with this program: in this process, or (parallel sweeps) as a child `<this program>
/// train PLAN --run DIR --threads N [--device D] [--stop-at-step N]`.
#[derive(Clone, Debug, Default)]
pub struct LocalTrainer {
    pub device: Option<String>,
    /// Probes: stop each run this fraction into its last stage, with a checkpoint (`rewarm sweep
    /// --probe`); training the run again without it resumes it to the end.
    pub probe: Option<f64>,
}

impl LocalTrainer {
    pub fn on(device: Option<String>) -> Self {
        LocalTrainer {
            device,
            probe: None,
        }
    }

    /// Where a probe of `plan` stops: the probe's fraction of its last stage's steps (at least one).
    fn stop_at_step(&self, plan: &Path) -> Result<Option<u64>> {
        let Some(fraction) = self.probe else {
            return Ok(None);
        };
        let plan = load_plan(plan)?;
        let last = plan.stages.last().expect("a validated plan has stages");
        let steps = ((fraction * last.steps as f64).ceil() as u64).clamp(1, last.steps);
        Ok(Some(last.first_step + steps))
    }
}

impl RunTrainer for LocalTrainer {
    fn train(&self, plan: &Path, run: &Path) -> Result<()> {
        train_run(&TrainRequest {
            plan: plan.to_owned(),
            run: run.to_owned(),
            device: self.device.clone(),
            stop_at_step: self.stop_at_step(plan)?,
            ..TrainRequest::default()
        })?;
        Ok(())
    }

    fn command(&self, plan: &Path, run: &Path, threads: usize) -> Result<Command> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("train")
            .arg(plan)
            .arg("--run")
            .arg(run)
            .arg("--threads")
            .arg(threads.to_string());
        if let Some(d) = &self.device {
            cmd.arg("--device").arg(d);
        }
        if let Some(step) = self.stop_at_step(plan)? {
            cmd.arg("--stop-at-step").arg(step.to_string());
        }
        Ok(cmd)
    }
}
