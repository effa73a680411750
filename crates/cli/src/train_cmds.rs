//! `plan` and `train`, and how the other commands train a run (in this process with a progress bar, or
//! as a child `rewarm train` for parallel sweeps).

use crate::progress::TrainProgress;
use anyhow::Result;
use clap::{Args, ValueEnum};
use rewarm_jobs::{load_plan, plan_load, RunTrainer};
use rewarm_train::{Injection, TrainOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Clone, Copy, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Csv,
}

#[derive(Args)]
pub struct PlanArgs {
    /// The plan .toml file.
    config: PathBuf,
    #[arg(long, value_enum, default_value = "text")]
    format: PlanFormat,
    /// Draw the learning rate (and replay fraction) over the run: SVG, or PNG when the name ends in .png.
    #[arg(long)]
    plot: Option<PathBuf>,
}

pub fn plan(args: PlanArgs) -> Result<()> {
    let plan = load_plan(&args.config)?;
    let summary = plan_load::summary(&plan, &args.config)?;
    match args.format {
        PlanFormat::Text => {
            let m = &plan.model;
            println!("model: {:?}, {} parameters", m.family, m.num_params());
            print!("{}", summary.to_text());
        }
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        PlanFormat::Csv => match write_csv(&plan) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            r => r?,
        },
    }
    if let Some(path) = &args.plot {
        let points: Vec<(u64, f64, f64)> = plan_load::steps(&plan)
            .map(|s| (s.step, s.lr, s.replay_fraction))
            .collect();
        rewarm_report::plot::lr_plot(path, &points, &plan_load::boundaries(&plan))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn write_csv(plan: &rewarm_plan::Plan) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(
        out,
        "step,stage,local_step,lr,batch_sequences,tokens_before,replay_fraction"
    )?;
    for s in plan_load::steps(plan) {
        writeln!(
            out,
            "{},{},{},{:e},{},{},{}",
            s.step,
            s.stage,
            s.local_step,
            s.lr,
            s.batch_sequences,
            s.tokens_before,
            s.replay_fraction
        )?;
    }
    out.flush()
}

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
    let plan = load_plan(&args.config)?;
    // Data parallel when started by `rewarm launch` (or any launcher that sets RANK, WORLD_SIZE, …).
    let world = rewarm_train::backend::dist::World::from_env()?;
    let mut device = rewarm_train::parse_device(args.device.as_deref())?;
    if let (Some(w), tch::Device::Cuda(0)) = (&world, device) {
        device = rewarm_train::parse_device(Some(&format!("cuda:{}", w.local_rank)))?;
        // one GPU per process
    }
    let writer = world.as_ref().is_none_or(|w| w.rank == 0);
    let progress = TrainProgress::new(plan.total_steps, !writer);
    let opts = TrainOptions {
        stop_at_step: args.stop_at_step,
        threads: args.threads,
        inject_non_finite: args
            .inject_non_finite
            .or(args.inject_nan_at_step.map(Injection::nan_loss)),
        world,
        ..TrainOptions::new(&args.run, device)
    };
    let state = rewarm_train::train(&plan, &opts, &progress)?;
    progress.finish();
    if writer {
        println!(
            "{}: {} of {} steps done in {:.1} s; metrics in {}",
            args.run.display(),
            state.step,
            plan.total_steps,
            progress.started.elapsed().as_secs_f64(),
            rewarm_runfolder::RunDir::new(&args.run).metrics().display()
        );
    }
    Ok(())
}

/// How sweeps, studies and the quickstart train a run: `rewarm train` in this process, or this binary
/// started again as a child process.
pub struct CliTrainer {
    pub device: Option<String>,
}

impl RunTrainer for CliTrainer {
    fn train(&self, plan: &Path, run: &Path) -> Result<()> {
        train(TrainArgs {
            config: plan.to_owned(),
            run: run.to_owned(),
            device: self.device.clone(),
            stop_at_step: None,
            threads: None,
            inject_nan_at_step: None,
            inject_non_finite: None,
        })
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
        Ok(cmd)
    }
}
