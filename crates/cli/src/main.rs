//! The `rewarm` binary: argument parsing and printing; the logic lives in the library crates (the jobs in
//! `rewarm-jobs`). Benchmarks are the separate `rewarm-bench` binary (crates/bench).

// Commands that need libtorch are behind the default `torch` feature; without it (`--no-default-features`)
// the binary prepares data, validates plans and writes reports with no libtorch linked.
mod data_cmds;
mod interop_cmds;
#[cfg(feature = "torch")]
mod jobs_cmds;
#[cfg(feature = "torch")]
mod model_cmds;
mod plan_cmds;
#[cfg(feature = "torch")]
mod train_cmds;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "rewarm",
    version,
    about = "Continual pre-training of language models: re-warm, re-decay, replay."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Tokenize text files/folders into token shards plus manifest.json.
    Prepare(data_cmds::PrepareArgs),
    /// Validate a prepared folder against its manifest and print its statistics.
    Inspect(data_cmds::InspectArgs),
    /// Tokenizer tools.
    #[command(subcommand)]
    Tokenizer(data_cmds::TokenizerCommand),
    #[cfg(feature = "torch")]
    /// The default job on CPU with the vendored sample: pretrain on English, continue on German.
    Quickstart(jobs_cmds::QuickstartArgs),
    /// Validate a plan and print its resolved stages, tokens, FLOPs and cost before any compute.
    Plan(plan_cmds::PlanArgs),
    #[cfg(feature = "torch")]
    /// Train a plan into a run folder (resumes from its newest complete checkpoint).
    Train(train_cmds::TrainArgs),
    #[cfg(feature = "torch")]
    /// Start a new run from a checkpoint of another (weights, moments, counters, data positions) and
    /// train other stages after it: the anneal of a constant-LR trunk, a new mixture, new data.
    Branch(train_cmds::BranchArgs),
    #[cfg(feature = "torch")]
    /// Data parallel: start `train` in N processes (one per GPU, or sharing the CPU) that sum gradients
    /// every step; results match one process with the same global batch.
    Launch(train_cmds::LaunchArgs),
    #[cfg(feature = "torch")]
    /// Expand a grid over plan fields into run folders and train them (finished runs are skipped).
    Sweep(jobs_cmds::SweepArgs),
    #[cfg(feature = "torch")]
    /// Measure a run by branched training: `probe batch` finds the local critical batch size.
    #[command(subcommand)]
    Probe(jobs_cmds::ProbeCommand),
    #[cfg(feature = "torch")]
    /// Run a built-in study (the papers' experiments) end to end: warmup, max-lr, replay, union, infinite, wsd, mer, batch, shrink-perturb, stability, averaging, same-data, earlier-checkpoint, envelope, refined, smollm2 (which continues SmolLM2-135M from --init).
    Study(jobs_cmds::StudyArgs),
    /// Tables and figures from run or sweep folders: final losses, forgetting, stability gap, cost,
    /// time-to-target (report.md, report.html, figures/*.svg|png).
    Report(plan_cmds::ReportArgs),
    /// Final losses of runs trained part way, predicted per validation set by a loss-curve law that knows
    /// the LR schedule (Tissue et al. 2024), with the cost of each and the one with the lowest AVG.
    Predict(plan_cmds::PredictArgs),
    /// A run's metrics.jsonl as CSV or Parquet tables (train, eval, rollbacks, representation) for pandas
    /// or a spreadsheet.
    ExportMetrics(plan_cmds::ExportMetricsArgs),
    /// A live terminal dashboard of run or sweep folders as they train: losses per set with the stage
    /// boundaries, LR, speed, ETA and the stability gap so far (q quits).
    Watch(plan_cmds::WatchArgs),
    /// The weighted average of several checkpoints (of one run, or branches of one trunk) as a Hugging
    /// Face folder: weight averaging in place of a learning-rate decay.
    Merge(interop_cmds::MergeArgs),
    /// Import a model from another tool's format into a Hugging Face folder rewarm can train from.
    #[command(subcommand)]
    Import(interop_cmds::ImportCommand),
    #[cfg(feature = "torch")]
    /// Write a rewarm checkpoint as a Hugging Face folder (config.json, model.safetensors, tokenizer.json).
    Export(model_cmds::ExportArgs),
    #[cfg(feature = "torch")]
    /// Continue a prompt with a model (HF folder or rewarm checkpoint), streaming tokens to stdout.
    Sample(model_cmds::SampleArgs),
    #[cfg(feature = "torch")]
    /// Multiple-choice tasks (JSONL) scored by log-likelihood: accuracy and length-normalised accuracy,
    /// as lm-evaluation-harness reports them.
    Eval(model_cmds::EvalArgs),
    #[cfg(feature = "torch")]
    /// A model's logits on a text or token ids as JSON: per position the log-sum-exp, next-token
    /// log-probability and argmax, and the logits themselves (every N-th id with --stride).
    Logits(model_cmds::LogitsArgs),
    /// Any other command, in a build without libtorch: refused with the reason.
    #[cfg(not(feature = "torch"))]
    #[command(external_subcommand)]
    Other(Vec<String>),
}

fn main() -> ExitCode {
    // Like other command-line tools, end quietly when the reader of our output goes away
    // (`rewarm inspect --json | head`) instead of panicking on a broken pipe.
    // SAFETY: called first thing, before any thread starts; restores the default disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // libtorch asks about CUDA once per process and keeps the answer: when CUDA is asked for, load its
    // library before anything touches libtorch (rewarm_train::backend::cuda). Errors surface where --device is read.
    #[cfg(feature = "torch")]
    if std::env::args().any(|a| a.contains("cuda")) {
        let _ = rewarm_train::backend::cuda::load();
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prepare(args) => data_cmds::prepare(args),
        Command::Inspect(args) => data_cmds::inspect(args),
        Command::Tokenizer(cmd) => data_cmds::tokenizer(cmd),
        #[cfg(feature = "torch")]
        Command::Quickstart(args) => jobs_cmds::quickstart(args),
        Command::Plan(args) => plan_cmds::plan(args),
        #[cfg(feature = "torch")]
        Command::Train(args) => train_cmds::train(args),
        #[cfg(feature = "torch")]
        Command::Branch(args) => train_cmds::branch(args),
        #[cfg(feature = "torch")]
        Command::Launch(args) => train_cmds::launch(args),
        #[cfg(feature = "torch")]
        Command::Sweep(args) => jobs_cmds::sweep(args),
        #[cfg(feature = "torch")]
        Command::Probe(cmd) => jobs_cmds::probe(cmd),
        #[cfg(feature = "torch")]
        Command::Study(args) => jobs_cmds::study(args),
        Command::Report(args) => plan_cmds::report(args),
        Command::Predict(args) => plan_cmds::predict(args),
        Command::ExportMetrics(args) => plan_cmds::export_metrics(args),
        Command::Watch(args) => plan_cmds::watch(args),
        Command::Import(cmd) => interop_cmds::import(cmd),
        Command::Merge(args) => interop_cmds::merge(args),
        #[cfg(feature = "torch")]
        Command::Export(args) => model_cmds::export(args),
        #[cfg(feature = "torch")]
        Command::Sample(args) => model_cmds::sample(args),
        #[cfg(feature = "torch")]
        Command::Eval(args) => model_cmds::eval(args),
        #[cfg(feature = "torch")]
        Command::Logits(args) => model_cmds::logits(args),
        #[cfg(not(feature = "torch"))]
        Command::Other(words) => Err(anyhow::anyhow!(
            "`rewarm {}`: this rewarm was built without libtorch (--no-default-features), so it only prepares data, validates plans, writes reports and imports models\nHINT: use a default build (`cargo build --release -p rewarm`) for commands that train or run a model",
            words.first().map_or("", String::as_str)
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(e),
    }
}

/// Prints why a command ended early and returns its exit status: a run stopped by SIGTERM or SIGINT
/// (with its checkpoint) is not a failure but a note, with the status a signal gives (128 + its number).
fn failed(e: anyhow::Error) -> ExitCode {
    let rank = std::env::var("RANK")
        .ok()
        .filter(|_| std::env::var_os("WORLD_SIZE").is_some());
    if let Some(stopped) = e.downcast_ref::<rewarm_jobs::Stopped>() {
        if rank.as_deref().is_none_or(|r| r == "0") {
            eprintln!("{stopped}"); // rank 0 speaks for the group
        }
        return ExitCode::from(stopped.exit_status());
    }
    // Processes of a data-parallel run say which one failed.
    match rank {
        Some(rank) => eprintln!("error: [rank {rank}] {e}"),
        None => eprintln!("error: {e}"),
    }
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    ExitCode::FAILURE
}
