//! `rewarm study <name>`: a built-in recipe end to end — pretrain D0 (when the study continues from it),
//! train the study's runs, write the report (`<out>/report`).

use crate::sweep_cmd::run_sweep;
use crate::train_cmds::{load_plan, TrainArgs};
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use rewarm_data::Manifest;
use rewarm_plan::study::{self, Scale, Size, StudySource};
use rewarm_train::checkpoint::list_complete;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct StudyArgs {
    /// warmup | max-lr | replay | union | infinite | wsd
    name: String,
    /// Prepared sources in order D0, D1[, D2] as NAME=FOLDER (e.g. --data en=prepared/en --data de=prepared/de).
    #[arg(long = "data", required = true)]
    data: Vec<String>,
    #[arg(long)]
    out: PathBuf,
    /// tiny (minutes on 2 cores) | small (tens of minutes) | base (a GPU).
    #[arg(long, default_value = "tiny")]
    size: String,
    /// Multiplies the size's token budgets (pretraining and every stage), e.g. 0.1 for a quick look. The runs
    /// get other ids than at the full budget.
    #[arg(long, default_value_t = 1.0)]
    token_scale: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Runs trained at the same time.
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    #[arg(long)]
    device: Option<String>,
}

pub fn study(args: StudyArgs) -> Result<()> {
    let size: Size = args.size.parse().map_err(|e: String| anyhow!(e))?;
    if !(args.token_scale > 0.0 && args.token_scale.is_finite()) {
        bail!(
            "--token-scale {}: expected a positive number (1 = the size's budgets)",
            args.token_scale
        );
    }
    let mut sources = Vec::new();
    for d in &args.data {
        let (name, dir) = d
            .split_once('=')
            .ok_or_else(|| anyhow!("--data {d}: expected NAME=FOLDER"))?;
        sources.push((name.to_owned(), PathBuf::from(dir)));
    }
    let runs_dir = run_study(
        &args.name,
        &sources,
        &args.out,
        &size.scale().with_token_scale(args.token_scale),
        args.seed,
        args.parallel,
        args.device.as_deref(),
    )?;
    println!(
        "runs in {}; report in {} (rewrite it with `rewarm report {} --out …`)",
        runs_dir.display(),
        args.out.join("report").join("report.md").display(),
        runs_dir.display(),
    );
    Ok(())
}

/// Pretrains D0 if the study continues from it, trains the study's runs and writes their report to
/// `<out>/report`; returns the runs folder.
pub fn run_study(
    name: &str,
    data: &[(String, PathBuf)],
    out: &Path,
    scale: &Scale,
    seed: u64,
    parallel: usize,
    device: Option<&str>,
) -> Result<PathBuf> {
    let mut sources = Vec::new();
    for (name, dir) in data {
        let manifest = Manifest::load(dir)?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("{}", dir.display()))?;
        sources.push(StudySource {
            name: name.clone(),
            dir,
            vocab_size: manifest.tokenizer.vocab_size,
        });
    }
    std::fs::create_dir_all(out)?;
    let out = out.canonicalize()?;
    // The D0 model the continual runs start from.
    let pre_dir = out.join("pretrain");
    let pre_plan_path = pre_dir.join("plan.toml");
    std::fs::create_dir_all(&pre_dir)?;
    std::fs::write(
        &pre_plan_path,
        toml::to_string(&study::pretrain_plan(&sources, scale, seed))?,
    )?;
    let (pre_plan, _) = load_plan(&pre_plan_path)?;
    let final_ckpt = pre_dir
        .join("ckpt")
        .join(rewarm_train::checkpoint::step_dir_name(
            pre_plan.total_steps,
        ));
    let s = study::build(name, &sources, scale, seed, &final_ckpt).map_err(|e| anyhow!(e))?;
    if s.pretrain.is_some()
        && list_complete(&pre_dir.join("ckpt")).last().map(|c| c.0) != Some(pre_plan.total_steps)
    {
        println!(
            "== pretraining on {} ({} steps)",
            sources[0].name, pre_plan.total_steps
        );
        crate::train_cmds::train(TrainArgs::new(
            pre_plan_path,
            pre_dir.clone(),
            device.map(str::to_owned),
        ))?;
    }
    let runs_dir = out.join("runs");
    run_sweep(&s.runs, &runs_dir, parallel, false, device)?;
    if !runs_dir.exists() {
        bail!("no runs were trained");
    }
    crate::report_cmd::report(crate::report_cmd::ReportArgs::new(
        vec![runs_dir.clone()],
        out.join("report"),
    ))?;
    Ok(runs_dir)
}
