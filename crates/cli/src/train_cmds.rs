//! `plan` and `train`.

use anyhow::Result;
use clap::{Args, ValueEnum};
use rewarm_jobs::{load_plan, plan_load, TrainRequest};
use rewarm_train::Injection;
use std::path::PathBuf;

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
        PlanFormat::Csv => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            match plan_load::write_csv(&plan, &mut out) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                r => r?,
            }
        }
    }
    if let Some(path) = &args.plot {
        plan_load::plot(&plan, path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
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
