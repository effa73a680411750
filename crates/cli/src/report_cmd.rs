//! `rewarm report`: glue around `rewarm_report::write_report`.

use anyhow::Result;
use clap::Args;
use rewarm_report::{render::utc, write_report, ReportOptions};
use std::path::PathBuf;

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
    /// Final loss = mean of this many last evaluations per set.
    #[arg(long, default_value_t = 1)]
    last_evals: usize,
}

impl ReportArgs {
    pub fn new(runs: Vec<PathBuf>, out: PathBuf) -> Self {
        ReportArgs {
            runs,
            out,
            baseline: None,
            target_set: None,
            target_loss: None,
            last_evals: 1,
        }
    }
}

pub fn report(args: ReportArgs) -> Result<()> {
    // SOURCE_DATE_EPOCH makes the stamp line reproducible too.
    let now = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    let options = ReportOptions {
        last_k: args.last_evals,
        baseline: args.baseline,
        target_set: args.target_set,
        target_loss: args.target_loss,
        stamp: format!(
            "Generated {} by rewarm {}.",
            utc(now),
            env!("CARGO_PKG_VERSION")
        ),
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
