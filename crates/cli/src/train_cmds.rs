//! `train` and `launch`: one run in this process, or in several that sum gradients every step.

use anyhow::Result;
use clap::Args;
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
    if let Some(done) = rewarm_jobs::train_run(&request)? {
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
