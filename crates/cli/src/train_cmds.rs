//! `plan` and `train` commands.

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use rewarm_data::{Manifest, MixtureIndex};
use rewarm_plan::summary::PlanSummary;
use rewarm_plan::{Plan, PlanConfig};
use rewarm_train::{resolve_model, Observer, StepRecord, TrainOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Loads and validates a plan file, with its model config.
pub fn load_plan(path: &Path) -> Result<(Plan, rewarm_model::ModelConfig)> {
    let config = PlanConfig::load(path)?;
    let model = resolve_model(&config.model).with_context(|| format!("{}", path.display()))?;
    let plan = Plan::new(config, path, model.max_seq_len)?;
    Ok((plan, model))
}

/// The mixture index of a plan from its sources' manifests (no shards opened). Errors name the plan file
/// and the source's key as well as the folder.
pub fn mixture_index(plan: &Plan, file: &Path) -> Result<MixtureIndex> {
    let counts = plan
        .sources
        .iter()
        .map(|s| {
            let manifest = Manifest::load(&s.dir)
                .with_context(|| format!("{}: data.sources.{}", file.display(), s.name))?;
            Ok(rewarm_data::source::sequences_in(
                manifest.train.tokens,
                plan.seq_len,
            ))
        })
        .collect::<Result<Vec<u64>>>()?;
    Ok(MixtureIndex::new(plan.mixture_plan(&counts))?)
}

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
    let (plan, model) = load_plan(&args.config)?;
    let index = mixture_index(&plan, &args.config)?;
    let summary = PlanSummary::new(&plan, &index, model.flops_per_token(plan.seq_len) as f64);
    match args.format {
        PlanFormat::Text => {
            println!(
                "model: {:?}, {} parameters",
                model.family,
                model.num_params()
            );
            print!("{}", summary.to_text());
        }
        PlanFormat::Json => println!("{}", serde_json::to_string_pretty(&summary)?),
        PlanFormat::Csv => {
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let mut write = || -> std::io::Result<()> {
                writeln!(
                    out,
                    "step,stage,local_step,lr,batch_sequences,tokens_before,replay_fraction"
                )?;
                for step in 0..plan.total_steps {
                    let s = plan.step(step);
                    let st = &plan.stages[s.stage];
                    let rho = st.replay.as_ref().map_or(0.0, |r| r.fraction);
                    writeln!(
                        out,
                        "{step},{},{},{:e},{},{},{rho}",
                        st.name, s.local_step, s.lr, s.batch_sequences, s.tokens_before
                    )?;
                }
                out.flush()
            };
            match write() {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                r => r?,
            }
        }
    }
    if let Some(path) = &args.plot {
        let points: Vec<(u64, f64, f64)> = (0..plan.total_steps)
            .map(|t| {
                let s = plan.step(t);
                (
                    t,
                    s.lr,
                    plan.stages[s.stage]
                        .replay
                        .as_ref()
                        .map_or(0.0, |r| r.fraction),
                )
            })
            .collect();
        let boundaries: Vec<(u64, String)> = plan
            .stages
            .iter()
            .map(|s| (s.first_step, s.name.clone()))
            .collect();
        rewarm_report::plot::lr_plot(path, &points, &boundaries)?;
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
    inject_non_finite: Option<rewarm_train::Injection>,
}

impl TrainArgs {
    pub fn new(config: PathBuf, run: PathBuf, device: Option<String>) -> Self {
        TrainArgs {
            config,
            run,
            device,
            stop_at_step: None,
            threads: None,
            inject_nan_at_step: None,
            inject_non_finite: None,
        }
    }
}

/// `--device`: `cpu`, `cuda`, `cuda:N`, or none (CUDA if a GPU and a CUDA libtorch are there, else CPU).
/// CUDA is reached by loading libtorch's CUDA library at run time (see `rewarm_train::cuda`).
pub fn parse_device(device: Option<&str>) -> Result<tch::Device> {
    let device = match device {
        None => {
            return Ok(match rewarm_train::cuda::check_device(0) {
                Ok(()) => tch::Device::Cuda(0),
                Err(_) => tch::Device::Cpu,
            })
        }
        Some("cpu") => tch::Device::Cpu,
        Some("cuda") => tch::Device::Cuda(0),
        Some(d) => match d.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => tch::Device::Cuda(n),
            None => bail!("--device {d}: expected cpu, cuda or cuda:N"),
        },
    };
    if let tch::Device::Cuda(i) = device {
        if let Err(why) = rewarm_train::cuda::check_device(i) {
            bail!("--device {}: {why}\nHINT: on a GPU machine, set LD_LIBRARY_PATH to the lib folder of a CUDA build of PyTorch 2.11 (python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), \"lib\"))'); or use --device cpu", device_name(device));
        }
    }
    Ok(device)
}

fn device_name(device: tch::Device) -> String {
    match device {
        tch::Device::Cuda(i) => format!("cuda:{i}"),
        _ => "cpu".into(),
    }
}

struct Progress {
    bar: ProgressBar,
    started: Instant,
    /// Data-parallel ranks other than 0 print nothing (rank 0 speaks for the group).
    quiet: bool,
}

impl Progress {
    /// Lines above the bar; plain stderr lines when the bar is hidden (not a terminal), so logs keep them.
    fn line(&self, text: String) {
        if self.quiet {
            return;
        }
        if self.bar.is_hidden() {
            eprintln!("{text}");
        } else {
            self.bar.println(text);
        }
    }
}

impl Observer for Progress {
    fn started(&self, plan: &Plan, resumed_from: Option<u64>) {
        self.bar.set_length(plan.total_steps);
        if let Some(step) = resumed_from {
            self.bar.set_position(step);
            self.line(format!("resumed from the checkpoint at step {step}"));
        }
    }
    fn step(&self, r: &StepRecord) {
        self.bar.set_position(r.step);
        // Loss and speed arrive at read-back steps (log, eval and checkpoint points).
        let (Some(loss), Some(grad_norm), Some(speed)) = (r.loss, r.grad_norm, r.tokens_per_second)
        else {
            return;
        };
        if self.bar.is_hidden() && !self.quiet && r.step % 10 == 0 {
            eprintln!(
                "step {:>6} {} loss {loss:.4} lr {:.2e} grad norm {grad_norm:.3} {speed:.0} tok/s",
                r.step, r.stage, r.lr
            );
        }
        self.bar.set_message(format!(
            "{} loss {loss:.4} lr {:.2e} {speed:.0} tok/s",
            r.stage, r.lr
        ));
    }
    fn eval(&self, step: u64, set: &str, loss: f64) {
        self.line(format!("step {step:>6} eval {set:<12} loss {loss:.4}"));
    }
    fn note(&self, message: &str) {
        self.line(message.to_owned());
    }
}

pub fn train(args: TrainArgs) -> Result<()> {
    let (plan, model) = load_plan(&args.config)?;
    // Data parallel when started by `rewarm launch` (or any launcher that sets RANK, WORLD_SIZE, …).
    let world = rewarm_train::dist::World::from_env()?;
    let mut device = parse_device(args.device.as_deref())?;
    if let (Some(w), tch::Device::Cuda(0)) = (&world, device) {
        device = parse_device(Some(&format!("cuda:{}", w.local_rank)))?; // one GPU per process
    }
    let bar = ProgressBar::new(plan.total_steps);
    bar.set_style(
        ProgressStyle::with_template(
            "[{elapsed_precise}] {bar:30} {pos}/{len} steps, ETA {eta} {msg}",
        )
        .expect("valid template"),
    );
    let writer = world.as_ref().is_none_or(|w| w.rank == 0);
    if !writer {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let progress = Progress {
        bar,
        started: Instant::now(),
        quiet: !writer,
    };
    let opts = TrainOptions {
        run_dir: args.run.clone(),
        device,
        stop_at_step: args.stop_at_step,
        threads: args.threads,
        inject_non_finite: args.inject_non_finite.or(args
            .inject_nan_at_step
            .map(rewarm_train::Injection::nan_loss)),
        world,
    };
    let state = rewarm_train::train(&plan, &model, &opts, &progress)?;
    progress.bar.finish_and_clear();
    if !writer {
        return Ok(());
    }
    println!(
        "{}: {} of {} steps done in {:.1} s; metrics in {}",
        args.run.display(),
        state.step,
        plan.total_steps,
        progress.started.elapsed().as_secs_f64(),
        args.run.join("metrics.jsonl").display()
    );
    Ok(())
}
