//! `plan`, `report`, `predict`, `export-metrics` and `watch`: a plan validated and resolved, and tables,
//! figures, predictions and a live dashboard from run folders. No
//! tensors: these work in a `rewarm` built without libtorch (`cargo build -p rewarm --no-default-features`).

use anyhow::Result;
use clap::{Args, ValueEnum};
use rewarm_jobs::study::stamped_options;
use rewarm_jobs::{load_plan, plan_load};
use rewarm_report::{write_report, ReportOptions};
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
pub struct ReportArgs {
    /// Run folders (holding plan.json and metrics.jsonl) or sweep folders (whose subfolders are runs).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Output folder: report.md, report.html and figures/ (SVG and PNG).
    #[arg(long)]
    out: PathBuf,
    /// The union baseline run (default: a single-stage run mixing ≥ 2 sources among the inputs).
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Validation set for time-to-target (default: the new data of the first continual run).
    #[arg(long)]
    target_set: Option<String>,
    /// Target loss (default: the baseline's final loss on the target set).
    #[arg(long)]
    target_loss: Option<f64>,
    /// Time to target counts an evaluation only if the old data's loss is then at most NATS above the
    /// continued model's loss there when continual training began (AlgoPerf for CPT, K1).
    #[arg(long, value_name = "NATS")]
    ceiling: Option<f64>,
    /// The set the ceiling is on (default: a workload's first old set, D0's).
    #[arg(long)]
    ceiling_set: Option<String>,
    /// Final loss = mean of this many last evaluations per set.
    #[arg(long, default_value_t = 3)]
    last_evals: usize,
}

pub fn report(args: ReportArgs) -> Result<()> {
    let options = ReportOptions {
        last_k: args.last_evals,
        baseline: args.baseline,
        target_set: args.target_set,
        target_loss: args.target_loss,
        ceiling: args.ceiling,
        ceiling_set: args.ceiling_set,
        ..stamped_options()
    };
    let report = write_report(&args.runs, &options, &args.out)?;
    print!("{}", report.to_terminal());
    eprintln!(
        "wrote {0}/report.md, {0}/report.html and {1} figures under {0}/figures/",
        args.out.display(),
        report.figures.len()
    );
    Ok(())
}

#[derive(Args)]
pub struct PredictArgs {
    /// Run or sweep folders: candidates trained part way (probes: e.g. `rewarm train … --stop-at-step N`)
    /// or finished runs (then the prediction is checked against the measured final loss).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Use only the evaluations of the first this fraction of each run's last stage (0–1), as if the run
    /// had stopped there: how well would the law have predicted a finished run?
    #[arg(long)]
    until_fraction: Option<f64>,
    /// Final loss = mean of this many last evaluations per set.
    #[arg(long, default_value_t = 3)]
    last_evals: usize,
}

pub fn predict(args: PredictArgs) -> Result<()> {
    if let Some(f) = args.until_fraction.filter(|f| !(0.0..=1.0).contains(f)) {
        anyhow::bail!(
            "--until-fraction {f}: use a fraction of the last stage in [0, 1], e.g. 0.25"
        );
    }
    let runs = rewarm_report::predict::predict(&args.runs, args.until_fraction, args.last_evals)?;
    print!("{}", rewarm_report::predict::render(&runs));
    Ok(())
}

#[derive(Args)]
pub struct ExportMetricsArgs {
    /// The run folder (the one holding metrics.jsonl).
    run: PathBuf,
    /// Folder to write the train, eval, rollbacks and representation tables into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// csv (train.csv, …) or parquet (train.parquet, …; pandas.read_parquet with pyarrow).
    #[arg(long, value_enum, default_value_t = TableFormat::Csv)]
    format: TableFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TableFormat {
    Csv,
    Parquet,
}

pub fn export_metrics(args: ExportMetricsArgs) -> Result<()> {
    use rewarm_report::export::Format;
    let tables = rewarm_report::export::export_metrics(&args.run)?;
    let format = match args.format {
        TableFormat::Csv => Format::Csv,
        TableFormat::Parquet => Format::Parquet,
    };
    for path in tables.write(&args.out, format)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

#[derive(Args)]
pub struct WatchArgs {
    /// Run folders or sweep folders (every run in them), read again at every refresh.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 2.0)]
    refresh: f64,
    /// Print one frame as text and exit (for logs, or without a terminal).
    #[arg(long)]
    once: bool,
    /// The frame's size for --once, COLUMNSxROWS.
    #[arg(long, default_value = "120x40", value_parser = parse_size)]
    size: (u16, u16),
}

fn parse_size(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("`{text}`: give the size as COLUMNSxROWS, e.g. 120x40");
    let (w, h) = text.split_once('x').ok_or_else(bad)?;
    let (w, h) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if w < 20 || h < 10 {
        return Err(format!("`{text}`: at least 20x10"));
    }
    Ok((w, h))
}

pub fn watch(args: WatchArgs) -> Result<()> {
    if args.once {
        print!(
            "{}",
            rewarm_watch::snapshot(&args.runs, args.size.0, args.size.1)
        );
        return Ok(());
    }
    if !(args.refresh.is_finite() && args.refresh >= 0.1) {
        anyhow::bail!("--refresh {}: give at least 0.1 seconds", args.refresh);
    }
    rewarm_watch::watch(&args.runs, std::time::Duration::from_secs_f64(args.refresh))?;
    Ok(())
}
