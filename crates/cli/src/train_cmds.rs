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

pub fn parse_device(device: Option<&str>) -> Result<tch::Device> {
    Ok(match device {
        None => tch::Device::cuda_if_available(),
        Some("cpu") => tch::Device::Cpu,
        Some("cuda") => tch::Device::Cuda(0),
        Some(d) => match d.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
            Some(n) => tch::Device::Cuda(n),
            None => bail!("--device {d}: expected cpu, cuda or cuda:N"),
        },
    })
}

struct Progress {
    bar: ProgressBar,
    started: Instant,
}

impl Progress {
    /// Lines above the bar; plain stderr lines when the bar is hidden (not a terminal), so logs keep them.
    fn line(&self, text: String) {
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
            self.bar
                .println(format!("resumed from the checkpoint at step {step}"));
        }
    }
    fn step(&self, r: &StepRecord) {
        if self.bar.is_hidden() && r.step % 10 == 0 {
            eprintln!(
                "step {:>6} {} loss {:.4} lr {:.2e} grad norm {:.3} {:.0} tok/s",
                r.step, r.stage, r.loss, r.lr, r.grad_norm, r.tokens_per_second
            );
        }
        self.bar.set_position(r.step);
        self.bar.set_message(format!(
            "{} loss {:.4} lr {:.2e} {:.0} tok/s",
            r.stage, r.loss, r.lr, r.tokens_per_second
        ));
    }
    fn eval(&self, step: u64, set: &str, loss: f64) {
        self.bar
            .println(format!("step {step:>6} eval {set:<12} loss {loss:.4}"));
    }
    fn note(&self, message: &str) {
        self.line(message.to_owned());
    }
}

pub fn train(args: TrainArgs) -> Result<()> {
    let (plan, model) = load_plan(&args.config)?;
    let device = parse_device(args.device.as_deref())?;
    let bar = ProgressBar::new(plan.total_steps);
    bar.set_style(
        ProgressStyle::with_template(
            "[{elapsed_precise}] {bar:30} {pos}/{len} steps, ETA {eta} {msg}",
        )
        .expect("valid template"),
    );
    let progress = Progress {
        bar,
        started: Instant::now(),
    };
    let opts = TrainOptions {
        run_dir: args.run.clone(),
        device,
        stop_at_step: args.stop_at_step,
        threads: args.threads,
        inject_non_finite: args.inject_non_finite.or(args
            .inject_nan_at_step
            .map(rewarm_train::Injection::nan_loss)),
    };
    let state = rewarm_train::train(&plan, &model, &opts, &progress)?;
    progress.bar.finish_and_clear();
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
