//! `rewarm quickstart`: the embedded default job on CPU with the vendored sample, no network. Trains a
//! byte-level BPE on the English and German samples, prepares both, pretrains a small model on English and
//! continues on German with the LR re-warmed and re-decayed and 25% English replay
//! (`examples/two-stage.toml`), then prints forgetting and adaptation.

use crate::progress::BytesBar;
use crate::train_cmds::{load_plan, parse_device, TrainArgs};
use anyhow::{Context, Result};
use clap::Args;
use rewarm_data::corpus::{list_inputs, read_documents, CorpusOptions};
use rewarm_data::prepare::{prepare, PrepareOptions};
use rewarm_data::{SplitRule, Tokenizer};
use std::path::{Path, PathBuf};

const PLAN: &str = include_str!("../../../examples/two-stage.toml");

#[derive(Args)]
pub struct QuickstartArgs {
    /// The vendored sample (folders en/ and de/ with train.jsonl and validation.jsonl).
    #[arg(long, default_value = "data/sample")]
    data: PathBuf,
    /// Where prepared data, the plan and the run go (re-running resumes).
    #[arg(long, default_value = "runs/quickstart")]
    out: PathBuf,
    /// `cpu`, `cuda` or `cuda:N` (default: cpu; the quickstart is sized for it).
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub fn quickstart(args: QuickstartArgs) -> Result<()> {
    let prepared = args.out.join("prepared");
    std::fs::create_dir_all(&prepared)
        .with_context(|| format!("creating {}", prepared.display()))?;
    let tokenizer_path = prepared.join("tokenizer.json");
    let train_files = |lang: &str| args.data.join(lang).join("train.jsonl");
    if !tokenizer_path.exists() {
        println!("1/3 training an 8,192-token byte-level BPE on the English and German samples");
        let (files, _) = list_inputs(&[train_files("en"), train_files("de")])?;
        let mut docs = Vec::new();
        for f in &files {
            docs.extend(read_documents(f, &CorpusOptions::default())?);
        }
        std::fs::write(
            &tokenizer_path,
            rewarm_data::tokenizer::train_bpe(docs.into_iter(), 8192)?,
        )?;
    }
    let tokenizer = Tokenizer::from_hf_file(&tokenizer_path, None)?;
    for lang in ["en", "de"] {
        let out = prepared.join(lang);
        if out.join("manifest.json").exists() {
            continue;
        }
        println!("2/3 preparing {lang}");
        let mut opts = PrepareOptions::new(vec![train_files(lang)], out);
        opts.validation_inputs = vec![args.data.join(lang).join("validation.jsonl")];
        opts.split = SplitRule::Given;
        let bar = BytesBar::new(lang);
        prepare(&opts, &tokenizer, &bar)?;
        bar.0.finish_and_clear();
    }
    let plan_path = args.out.join("two-stage.toml");
    std::fs::write(&plan_path, PLAN.replace("../prepared/", "prepared/"))?;
    let run = args.out.join("run");
    println!(
        "3/3 training {} into {} (pretrain on English, continue on German with 25% English replay)",
        plan_path.display(),
        run.display()
    );
    parse_device(Some(&args.device))?;
    crate::train_cmds::train(TrainArgs::new(
        plan_path.clone(),
        run.clone(),
        Some(args.device),
    ))?;
    let (plan, _) = load_plan(&plan_path)?;
    print_outcome(
        &run.join("metrics.jsonl"),
        plan.stages[0].steps,
        plan.total_steps,
    )
}

/// Loss per validation set at the stage boundary and at the end: forgetting (English) and adaptation
/// (German).
fn print_outcome(metrics: &Path, boundary: u64, end: u64) -> Result<()> {
    let records = rewarm_train::metrics::read(metrics)?;
    let loss = |step: u64, set: &str| {
        records
            .iter()
            .find(|r| r["kind"] == "eval" && r["step"] == step && r["set"] == set)
            .and_then(|r| r["loss"].as_f64())
            .unwrap_or(f64::NAN)
    };
    println!(
        "\nvalidation loss (nats/token)   start   after English   after German   change in stage 2"
    );
    for (set, what) in [("en", "forgetting"), ("de", "adaptation")] {
        let (a, b, c) = (loss(0, set), loss(boundary, set), loss(end, set));
        println!(
            "{set:<30} {a:>6.3} {b:>15.3} {c:>14.3} {:>+10.3} ({what})",
            c - b
        );
    }
    println!(
        "\nmetrics: {} (every eval and train step; see docs/metrics.md)",
        metrics.display()
    );
    Ok(())
}
