//! `sweep`, `study` and `quickstart`: arguments in, `rewarm_jobs` does the work, results printed.

use anyhow::{anyhow, Result};
use clap::Args;
use rewarm_jobs::progress::QuickstartLines;
use rewarm_jobs::quickstart::{run_quickstart, QuickstartRequest};
use rewarm_jobs::study::{run_study, StudyRequest};
use rewarm_jobs::LocalTrainer;
use rewarm_plan::study::Size;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct SweepArgs {
    /// The sweep .toml file (base plan + grid; docs/sweeps.md).
    sweep: PathBuf,
    /// Output folder: one run folder per grid point, named by the hash of its resolved plan.
    #[arg(long)]
    out: PathBuf,
    /// Runs trained at the same time (each in its own process).
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// Train every grid point with this many seeds (the plan's seed, seed + 1, …); the report gives
    /// mean ± sd over them.
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// Expand and validate, print the runs, train nothing.
    #[arg(long)]
    dry_run: bool,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long)]
    device: Option<String>,
    /// Probes: train each run only this fraction (0–1) into its last stage, then print the final losses
    /// `rewarm predict` expects of each (docs/predict.md). The same command without it resumes the runs.
    #[arg(long)]
    probe: Option<f64>,
}

pub fn sweep(args: SweepArgs) -> Result<()> {
    if let Some(f) = args.probe.filter(|f| !(*f > 0.0 && *f <= 1.0)) {
        anyhow::bail!("--probe {f}: use a fraction of each run's last stage in (0, 1], e.g. 0.25");
    }
    let runs = rewarm_plan::sweep::with_seeds(rewarm_plan::sweep::expand(&args.sweep)?, args.seeds);
    let trainer = LocalTrainer {
        device: args.device,
        probe: args.probe,
    };
    rewarm_jobs::sweep::run_sweep(&runs, &args.out, args.parallel, args.dry_run, &trainer)?;
    if args.probe.is_some() && !args.dry_run {
        let predicted = rewarm_report::predict::predict(std::slice::from_ref(&args.out), None, 3)?;
        print!("{}", rewarm_report::predict::render(&predicted));
        println!(
            "the same command without --probe trains the runs to the end; `rewarm predict {}` predicts again",
            args.out.display()
        );
    } else {
        println!("`rewarm report {}` summarises the runs", args.out.display());
    }
    Ok(())
}

#[derive(clap::Subcommand)]
pub enum ProbeCommand {
    /// The local critical batch size at checkpoints of a run (Merrill et al. 2025): from each, branches
    /// at k × the batch with the LR × √k train the same tokens; the largest k whose loss stays within ε
    /// of every smaller k's is critical. Prints the batch-size warmup the probes suggest.
    Batch(ProbeBatchArgs),
}

#[derive(Args)]
pub struct ProbeBatchArgs {
    /// The run folder probed.
    run: PathBuf,
    /// The plan file it was trained with.
    #[arg(long)]
    plan: PathBuf,
    /// A step of one of its checkpoints (repeat for several).
    #[arg(long = "step", required = true)]
    steps: Vec<u64>,
    /// Batch factors k, rising powers of two from 1.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8")]
    factors: Vec<u64>,
    /// Tokens each branch trains (default: 10 steps of the largest batch).
    #[arg(long)]
    tokens: Option<u64>,
    /// Loss tolerance ε in nats/token.
    #[arg(long, default_value_t = 0.01)]
    epsilon: f64,
    /// EMA weight on the previous value for the smoothed training loss.
    #[arg(long, default_value_t = 0.5)]
    smoothing: f64,
    /// Validation set compared (default: the source the checkpoint's stage draws most from).
    #[arg(long)]
    set: Option<String>,
    /// Where the branches go (default: RUN/probes/batch); re-running reuses finished ones.
    #[arg(long)]
    out: Option<PathBuf>,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long)]
    device: Option<String>,
}

pub fn probe(cmd: ProbeCommand) -> Result<()> {
    let ProbeCommand::Batch(args) = cmd;
    let request = rewarm_jobs::probe::BatchProbeRequest {
        out: args
            .out
            .unwrap_or_else(|| args.run.join("probes").join("batch")),
        trunk: args.run,
        plan: args.plan,
        steps: args.steps,
        factors: args.factors,
        tokens: args.tokens,
        epsilon: args.epsilon,
        smoothing: args.smoothing,
        set: args.set,
    };
    let trainer = LocalTrainer::on(args.device);
    let probe = rewarm_jobs::probe::probe_batch(&request, &trainer)?;
    print!("{}", probe.to_text());
    Ok(())
}

#[derive(Args)]
pub struct StudyArgs {
    /// warmup | max-lr | replay | union | infinite | wsd | mer | batch | shrink-perturb | stability |
    /// averaging | same-data | earlier-checkpoint | envelope | refined (after wsd, --reuse its folder) |
    /// smollm2
    name: String,
    /// Prepared sources in order D0, D1[, D2] as NAME=FOLDER (e.g. --data en=prepared/en --data de=prepared/de).
    #[arg(long = "data", required = true)]
    data: Vec<String>,
    #[arg(long)]
    out: PathBuf,
    /// tiny (minutes on 2 cores: a smoke test, not evidence) | small (the CPU evidence size: 5.8M
    /// parameters, 6.1M pretraining and 3.1M stage tokens, 20–40 minutes per run on 2 cores) | base (a GPU).
    #[arg(long, default_value = "tiny")]
    size: String,
    /// Multiplies the size's token budgets (pretraining and every stage), e.g. 0.1 for a quick look. The runs
    /// get other ids than at the full budget.
    #[arg(long, default_value_t = 1.0)]
    token_scale: f64,
    /// The first seed; with --seeds N the seeds are SEED, SEED + 1, …
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train every run (and the D0 pretraining) with this many seeds; the report gives mean ± sd.
    #[arg(long, default_value_t = 1)]
    seeds: usize,
    /// Runs trained at the same time.
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    #[arg(long)]
    device: Option<String>,
    /// The model study smollm2 continues (the imported SmolLM2-135M folder); the other studies pretrain
    /// their own D0 and refuse it.
    #[arg(long)]
    init: Option<PathBuf>,
    /// Where the D0 pretraining runs go (DIR/pretrain-seed<s>; default: --out). Studies given the same
    /// DIR share them: a D0 with the same plan (same D0 data, size, --token-scale and seed) is trained
    /// once and reused; one with another plan there is refused.
    #[arg(long)]
    pretrain_dir: Option<PathBuf>,
    /// Another study's output folder (--out; repeatable): a run of this study with the same plan (same
    /// data, budgets, seed and D0) that finished there is linked in instead of trained again — e.g. the
    /// 25%-replay cosine run that union, replay and averaging all have. A D0 pretraining run there
    /// (pretrain-seed<s>, or a --pretrain-dir) with the plan of a from-scratch run is linked in too.
    #[arg(long)]
    reuse: Vec<PathBuf>,
}

pub fn study(args: StudyArgs) -> Result<()> {
    let size: Size = args.size.parse().map_err(|e: String| anyhow!(e))?;
    let scale = rewarm_jobs::study::study_scale(&args.name, size, args.token_scale)?;
    let data = rewarm_jobs::study::named_folders(&args.data)?;
    let request = StudyRequest {
        name: &args.name,
        data: &data,
        out: &args.out,
        scale,
        seed: args.seed,
        seeds: args.seeds,
        parallel: args.parallel,
        init: args.init.as_deref(),
        pretrain_dir: args.pretrain_dir.as_deref(),
        reuse: &args.reuse,
    };
    let outcome = run_study(&request, &LocalTrainer::on(args.device))?;
    print!("{}", outcome.report.to_terminal());
    println!(
        "runs in {}; report in {} (rewrite it with `rewarm report {} --out …`)",
        outcome.runs.display(),
        args.out.join("report").join("report.md").display(),
        outcome.runs.display(),
    );
    Ok(())
}

#[derive(Args)]
pub struct QuickstartArgs {
    /// The vendored sample (folders en/ and de/ with train.jsonl and validation.jsonl).
    #[arg(long, default_value = "data/sample")]
    data: PathBuf,
    /// Where prepared data, the plan and the run go (re-running resumes).
    #[arg(long, default_value = "runs/quickstart")]
    out: PathBuf,
    /// An English multiple-choice task every model is scored on at the end (skipped if missing).
    #[arg(long, default_value = "tasks/sample-en-cloze.jsonl")]
    task: PathBuf,
    /// `cpu`, `cuda` or `cuda:N` (default: cpu; the quickstart is sized for it).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// Every quickstart model's accuracy on an English multiple-choice task: forgetting seen on a task as
/// well as in the loss. Skipped, with a note, when the task file is not there.
fn quickstart_task(
    outcome: &rewarm_jobs::quickstart::QuickstartOutcome,
    task: &Path,
) -> Result<()> {
    if !task.is_file() {
        println!("(no {}: task accuracy skipped)", task.display());
        return Ok(());
    }
    let items = rewarm_jobs::tasks::read_task(task)?;
    let total = (items.len() * outcome.models.len()) as u64;
    let bar = rewarm_jobs::progress::CountBar::new("task", total);
    let tokenizer = outcome.tokenizer.to_string_lossy();
    let scores =
        rewarm_jobs::inference::score_models(&outcome.models, &tokenizer, &items, &|| bar.inc())?;
    drop(bar);
    println!(
        "\n{} ({} questions, chance {:.2}; rewarm eval, docs/interop.md):",
        task.display(),
        items.len(),
        1.0 / items[0].choices.len() as f64
    );
    println!("{:<24} {:>18} {:>18}", "model", "acc", "acc_norm");
    for (name, s) in &scores {
        println!(
            "{:<24} {:>18} {:>18}",
            name,
            format!("{:.3} ± {:.3}", s.acc, s.acc_stderr),
            format!("{:.3} ± {:.3}", s.acc_norm, s.acc_norm_stderr)
        );
    }
    Ok(())
}

pub fn quickstart(args: QuickstartArgs) -> Result<()> {
    let request = QuickstartRequest {
        data: &args.data,
        out: &args.out,
    };
    let trainer = LocalTrainer::on(Some(args.device));
    let outcome = run_quickstart(&request, &trainer, &QuickstartLines)?;
    println!("\n{}", outcome.table.to_text());
    quickstart_task(&outcome, &args.task)?;
    println!(
        "runs: {} (metrics.jsonl in each; see docs/metrics.md)",
        outcome.runs.display()
    );
    println!(
        "report: {} (tables), {} (figures)",
        outcome.report.join("report.md").display(),
        outcome.report.join("figures").display()
    );
    Ok(())
}
