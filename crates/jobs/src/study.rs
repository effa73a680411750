//! `rewarm study <name>`: a built-in recipe end to end — pretrain D0 (when the study continues from it),
//! train the study's runs as a sweep, write the report (`<out>/report`).

use crate::plan_load::load_plan;
use crate::runner::RunTrainer;
use crate::sweep::run_sweep;
use anyhow::{anyhow, bail, Context, Result};
use rewarm_data::Manifest;
use rewarm_plan::study::{self, Scale, Size, StudySource};
use rewarm_report::{write_report, Report, ReportOptions};
use rewarm_runfolder::RunDir;
use std::path::{Path, PathBuf};

/// A study to run: its name, its prepared sources in order D0, D1[, D2] as (name, folder), its scale.
pub struct StudyRequest<'a> {
    pub name: &'a str,
    pub data: &'a [(String, PathBuf)],
    pub out: &'a Path,
    pub scale: Scale,
    pub seed: u64,
    pub parallel: usize,
}

/// What a study produced: the folder of its runs (a sweep folder), the D0 run, and the report.
pub struct StudyOutcome {
    pub runs: PathBuf,
    pub pretrain: PathBuf,
    pub report: Report,
}

/// Pretrains D0 if the study continues from it, trains the study's runs and writes their report to
/// `<out>/report`.
pub fn run_study(request: &StudyRequest, trainer: &dyn RunTrainer) -> Result<StudyOutcome> {
    let sources = study_sources(request.data)?;
    std::fs::create_dir_all(request.out)
        .with_context(|| format!("creating {}", request.out.display()))?;
    let out = request.out.canonicalize()?;
    // The D0 model the continual runs start from.
    let pre = RunDir::new(out.join("pretrain"));
    std::fs::create_dir_all(pre.root())?;
    let pre_plan = study::pretrain_plan(&sources, &request.scale, request.seed);
    std::fs::write(pre.plan_toml(), toml::to_string(&pre_plan)?)
        .with_context(|| format!("writing {}", pre.plan_toml().display()))?;
    let pre_steps = load_plan(&pre.plan_toml())?.total_steps;
    let final_ckpt = pre.checkpoint(pre_steps).path;
    let s = study::build(
        request.name,
        &sources,
        &request.scale,
        request.seed,
        &final_ckpt,
    )
    .map_err(|e| anyhow!(e))?;
    if s.pretrain.is_some() && !pre.finished(pre_steps) {
        println!("== pretraining on {} ({pre_steps} steps)", sources[0].name);
        trainer.train(&pre.plan_toml(), pre.root())?;
    }
    let runs = out.join("runs");
    run_sweep(&s.runs, &runs, request.parallel, false, trainer)?;
    if !runs.exists() {
        bail!("no runs were trained");
    }
    let report = write_report(
        std::slice::from_ref(&runs),
        &stamped_options(),
        &out.join("report"),
    )?;
    Ok(StudyOutcome {
        runs,
        pretrain: pre.root().to_owned(),
        report,
    })
}

/// The study's sources with their absolute folders and vocabulary sizes.
fn study_sources(data: &[(String, PathBuf)]) -> Result<Vec<StudySource>> {
    data.iter()
        .map(|(name, dir)| {
            let manifest = Manifest::load(dir)?;
            Ok(StudySource {
                name: name.clone(),
                dir: dir
                    .canonicalize()
                    .with_context(|| format!("{}", dir.display()))?,
                vocab_size: manifest.tokenizer.vocab_size,
            })
        })
        .collect()
}

/// `NAME=FOLDER` arguments (`--data en=prepared/en`) as (name, folder), in order.
pub fn named_folders(args: &[String]) -> Result<Vec<(String, PathBuf)>> {
    args.iter()
        .map(|d| {
            let (name, dir) = d
                .split_once('=')
                .ok_or_else(|| anyhow!("--data {d}: expected NAME=FOLDER"))?;
            Ok((name.to_owned(), PathBuf::from(dir)))
        })
        .collect()
}

/// A size's scale with its token budgets multiplied by `token_scale` (> 0).
pub fn scaled(size: Size, token_scale: f64) -> Result<Scale> {
    if !(token_scale > 0.0 && token_scale.is_finite()) {
        bail!("--token-scale {token_scale}: expected a positive number (1 = the size's budgets)");
    }
    Ok(size.scale().with_token_scale(token_scale))
}

/// Report options stamped with the time now (`SOURCE_DATE_EPOCH` when set, so reports can be
/// reproduced byte for byte).
pub fn stamped_options() -> ReportOptions {
    let now = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    ReportOptions {
        stamp: format!(
            "Generated {} by rewarm {}.",
            rewarm_report::render::utc(now),
            env!("CARGO_PKG_VERSION")
        ),
        ..ReportOptions::default()
    }
}
