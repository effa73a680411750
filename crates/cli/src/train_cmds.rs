//! `train` and `launch`: one run in this process, or in several that sum gradients every step.

use anyhow::Result;
use clap::Args;
use rewarm_jobs::branch::{BranchRequest, MomentPolicy, SchedulePolicy};
use rewarm_jobs::TrainRequest;
use rewarm_train::Injection;
use std::path::PathBuf;

#[derive(Args)]
pub struct TrainArgs {
    /// The plan .toml file.
    config: PathBuf,
    /// Run folder: metrics, checkpoints, resolved config. A folder holding a complete checkpoint resumes.
    #[arg(long)]
    run: PathBuf,
    /// `cpu`, `cuda` or `cuda:N` (default: cuda if available, else cpu).
    #[arg(long)]
    device: Option<String>,
    /// Stop after this many steps (with a checkpoint); running again resumes.
    #[arg(long)]
    stop_at_step: Option<u64>,
    /// Torch threads on CPU (overrides the plan's train.threads).
    #[arg(long)]
    threads: Option<usize>,
    /// Testing aid: make the loss of this step NaN.
    #[arg(long, hide = true)]
    inject_nan_at_step: Option<u64>,
    /// Testing aid: `SITE@STEP[=nan|inf|-inf]`, SITE one of loss, grad, batch (docs/reliability.md).
    #[arg(long, hide = true)]
    inject_non_finite: Option<Injection>,
}

pub fn train(args: TrainArgs) -> Result<()> {
    let request = TrainRequest {
        plan: args.config,
        run: args.run,
        device: args.device,
        stop_at_step: args.stop_at_step,
        threads: args.threads,
        inject_non_finite: args
            .inject_non_finite
            .or(args.inject_nan_at_step.map(Injection::nan_loss)),
    };
    report(&request)
}

/// Trains `request` and says what was done.
fn report(request: &TrainRequest) -> Result<()> {
    if let Some(done) = rewarm_jobs::train_run(request)? {
        println!(
            "{}: {} of {} steps done in {:.1} s; metrics in {}",
            request.run.display(),
            done.state.step,
            done.total_steps,
            done.seconds,
            done.metrics.display()
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct BranchArgs {
    /// The trunk: the run folder to branch from.
    trunk: PathBuf,
    /// The step of the trunk's checkpoint to branch at (default: its newest).
    #[arg(long)]
    step: Option<u64>,
    /// The plan file the trunk was trained with.
    #[arg(long)]
    plan: PathBuf,
    /// A file of [[stages]] tables: what the branch trains after the branch point.
    #[arg(long)]
    stages: PathBuf,
    /// The branch's run folder (new).
    #[arg(long)]
    run: PathBuf,
    /// Adam's moments at the branch point: keep, reset, or warmup:STEPS (reset, then STEPS steps at LR 0).
    /// Default: the first stage's own `optimizer`, else keep.
    #[arg(long)]
    optimizer: Option<MomentPolicy>,
    /// The LR at the branch point: continue (the first stage must start at the trunk's LR) or new.
    #[arg(long, default_value = "continue")]
    schedule: SchedulePolicy,
    /// `cpu`, `cuda` or `cuda:N` (default: cuda if available, else cpu).
    #[arg(long)]
    device: Option<String>,
    /// Torch threads on CPU (overrides the plan's train.threads).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn branch(args: BranchArgs) -> Result<()> {
    let branch = rewarm_jobs::branch::prepare_branch(&BranchRequest {
        trunk: args.trunk.clone(),
        step: args.step,
        plan: args.plan,
        stages: args.stages,
        run: args.run.clone(),
        moments: args.optimizer,
        schedule: args.schedule,
    })?;
    println!(
        "{}: branched from {} at step {}; plan in {}",
        args.run.display(),
        args.trunk.display(),
        branch.from_step,
        branch.plan.display()
    );
    report(&TrainRequest {
        plan: branch.plan,
        run: args.run,
        device: args.device,
        threads: args.threads,
        ..TrainRequest::default()
    })
}

#[derive(Args)]
pub struct LaunchArgs {
    /// Processes on this machine (one per GPU; on the CPU they share the cores).
    #[arg(long)]
    nproc: usize,
    /// Machines taking part.
    #[arg(long, default_value_t = 1)]
    nnodes: usize,
    /// This machine's index among them.
    #[arg(long, default_value_t = 0)]
    node_rank: usize,
    /// Address of the machine running global rank 0 (it serves the rendezvous store).
    #[arg(long, default_value = "127.0.0.1")]
    master_addr: String,
    /// Port of the rendezvous store (default: a free port, single machine only).
    #[arg(long)]
    master_port: Option<u16>,
    /// The rewarm command each process runs, after `--`: e.g. `-- train plan.toml --run runs/x`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

pub fn launch(args: LaunchArgs) -> Result<()> {
    let layout = rewarm_jobs::launch::Layout {
        nproc: args.nproc,
        nnodes: args.nnodes,
        node_rank: args.node_rank,
        master_addr: args.master_addr,
        master_port: args.master_port,
    };
    rewarm_jobs::launch::launch(&layout, &std::env::current_exe()?, &args.command)
}
