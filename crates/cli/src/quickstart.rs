//! `rewarm quickstart`: the embedded default job on CPU with the vendored sample, no network. Trains a
//! byte-level BPE on the English and German samples, prepares both, pretrains a small model on English and
//! continues on German three ways — constant low LR; re-warm + re-decay; re-warm + re-decay + 25% English
//! replay — against retraining from scratch on the union (the `quickstart` study), then prints
//! forgetting and adaptation and writes the report.

use crate::progress::BytesBar;
use crate::study_cmd::run_study;
use anyhow::{Context, Result};
use clap::Args;
use rewarm_data::corpus::{list_inputs, read_documents, CorpusOptions};
use rewarm_data::prepare::{prepare, PrepareOptions};
use rewarm_data::{SplitRule, Tokenizer};
use rewarm_plan::study::Size;
use std::path::{Path, PathBuf};

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
    println!("3/3 pretraining a 7M-parameter model on English, then continuing on German three ways, and the union retrain");
    let data = [
        ("en".to_owned(), prepared.join("en")),
        ("de".to_owned(), prepared.join("de")),
    ];
    let runs = run_study(
        "quickstart",
        &data,
        &args.out,
        &Size::Small.scale(),
        1,
        1,
        Some(&args.device),
    )?;
    let report = args.out.join("report");
    print_outcome(&args.out.join("pretrain"), &runs)?;
    println!(
        "report: {} (tables), {} (figures)",
        report.join("report.md").display(),
        report.join("figures").display()
    );
    Ok(())
}

/// Final loss per language for each run, with English forgetting and German adaptation relative to the
/// pretrained model (the report has the full tables and figures).
fn print_outcome(pretrain: &Path, runs: &Path) -> Result<()> {
    let final_losses = |run: &Path| -> Result<(u64, std::collections::BTreeMap<String, f64>)> {
        let records = rewarm_train::metrics::read(&run.join("metrics.jsonl"))?;
        let last = records
            .iter()
            .filter(|r| r["kind"] == "eval")
            .filter_map(|r| r["step"].as_u64())
            .max()
            .unwrap_or(0);
        let losses = records
            .iter()
            .filter(|r| r["kind"] == "eval" && r["step"] == last)
            .filter_map(|r| Some((r["set"].as_str()?.to_owned(), r["loss"].as_f64()?)))
            .collect();
        Ok((last, losses))
    };
    let (_, mut base) = final_losses(pretrain)?;
    let index: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(runs.join("sweep.json"))?)?;
    // The pretraining run evaluates English only; every continual run's step-0 evaluation is the pretrained
    // model on all sets, so take German's starting loss from there.
    if let Some(first) = index.first().and_then(|r| r["id"].as_str()) {
        for r in rewarm_train::metrics::read(&runs.join(first).join("metrics.jsonl"))? {
            if r["kind"] == "eval" && r["step"] == 0 {
                if let (Some(set), Some(loss)) = (r["set"].as_str(), r["loss"].as_f64()) {
                    base.entry(set.to_owned()).or_insert(loss);
                }
            }
        }
    }
    println!("\nvalidation loss (nats/token)    English   German   English forgetting   German adaptation");
    println!(
        "{:<30} {:>8.3} {:>8.3}",
        "pretrained on English",
        base["en"],
        base.get("de").copied().unwrap_or(f64::NAN)
    );
    for run in &index {
        let (id, label) = (
            run["id"].as_str().unwrap_or(""),
            run["label"].as_str().unwrap_or(""),
        );
        let (_, l) = final_losses(&runs.join(id))?;
        let (en, de) = (
            l.get("en").copied().unwrap_or(f64::NAN),
            l.get("de").copied().unwrap_or(f64::NAN),
        );
        println!(
            "{label:<30} {en:>8.3} {de:>8.3} {:>+20.3} {:>+19.3}",
            en - base["en"],
            de - base.get("de").copied().unwrap_or(f64::NAN)
        );
    }
    println!(
        "\nruns: {} (metrics.jsonl in each; see docs/metrics.md)",
        runs.display()
    );
    Ok(())
}
