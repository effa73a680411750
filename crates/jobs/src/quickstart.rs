//! `rewarm quickstart`: the embedded default job on CPU with the vendored sample, no network. Fits a
//! byte-level BPE on the English sample only (D0, as Ibrahim et al. fit theirs on pretraining data),
//! prepares both languages with it, pretrains a small model on English and
//! continues on German three ways — constant low LR; re-warm + re-decay; re-warm + re-decay + 25% English
//! replay — against retraining from scratch on the union (the `quickstart` study), then tabulates
//! forgetting and adaptation and writes the report.

use crate::runner::RunTrainer;
use crate::study::{run_study, StudyRequest};
use anyhow::{Context, Result};
use rewarm_data::corpus::CorpusOptions;
use rewarm_data::prepare::{prepare, PrepareOptions, Progress};
use rewarm_data::{SplitRule, Tokenizer};
use rewarm_plan::study::Scale;
use rewarm_report::{ContinualTable, RunData};
use rewarm_runfolder::{SweepDir, SweepIndex};
use std::path::{Path, PathBuf};

/// Where the quickstart reads and writes.
pub struct QuickstartRequest<'a> {
    /// The vendored sample: folders en/ and de/ with train.jsonl and validation.jsonl.
    pub data: &'a Path,
    /// Prepared data, the runs and the report (re-running resumes).
    pub out: &'a Path,
}

/// What the quickstart produced.
pub struct QuickstartOutcome {
    pub table: ContinualTable,
    pub runs: PathBuf,
    pub report: PathBuf,
    /// The pretrained model's run folder, then each run's (label, folder): the models a task scores.
    pub models: Vec<(String, PathBuf)>,
    /// The tokenizer every model reads (fitted on the English sample).
    pub tokenizer: PathBuf,
}

/// The quickstart's steps, announced as they start (the binary prints them).
pub trait QuickstartProgress {
    fn stage(&self, text: &str);
    /// A byte counter for preparing `lang`.
    fn preparing(&self, lang: &str) -> Box<dyn Progress>;
}

pub fn run_quickstart(
    request: &QuickstartRequest,
    trainer: &dyn RunTrainer,
    progress: &dyn QuickstartProgress,
) -> Result<QuickstartOutcome> {
    let prepared = request.out.join("prepared");
    std::fs::create_dir_all(&prepared)
        .with_context(|| format!("creating {}", prepared.display()))?;
    let tokenizer = sample_tokenizer(request.data, &prepared, progress)?;
    for lang in ["en", "de"] {
        prepare_language(request.data, &prepared, lang, &tokenizer, progress)?;
    }
    progress.stage("3/3 pretraining a 2.6M-parameter Llama-style model on English, then continuing on German three ways, and the union retrain");
    let data = [
        ("en".to_owned(), prepared.join("en")),
        ("de".to_owned(), prepared.join("de")),
    ];
    let study = run_study(
        &StudyRequest {
            name: "quickstart",
            data: &data,
            out: request.out,
            scale: Scale::quickstart(),
            seed: 1,
            seeds: 1,
            parallel: 1,
            init: None,
            pretrain_dir: None,
            reuse: &[],
        },
        trainer,
    )?;
    let index = SweepIndex::read(&SweepDir::new(&study.runs))?.unwrap_or_default();
    let mut models = vec![("pretrained (en)".to_owned(), study.pretrain[0].clone())];
    models.extend(
        index
            .runs
            .iter()
            .map(|r| (r.label.clone(), study.runs.join(&r.id))),
    );
    Ok(QuickstartOutcome {
        table: continual_table(&study.pretrain[0], &study.runs)?,
        runs: study.runs,
        report: request.out.join("report"),
        models,
        tokenizer: prepared.join("tokenizer.json"),
    })
}

/// A 4,096-token byte-level BPE fitted on the English training sample only (once): the tokenizer of the
/// pretraining data, which German then has to live with, as in continual pre-training of a real model.
fn sample_tokenizer(
    data: &Path,
    prepared: &Path,
    progress: &dyn QuickstartProgress,
) -> Result<Tokenizer> {
    let path = prepared.join("tokenizer.json");
    if !path.exists() {
        progress.stage("1/3 fitting a 4,096-token byte-level BPE on the English sample");
        let inputs = [train_file(data, "en")];
        let json =
            rewarm_data::tokenizer::train_bpe_on_files(&inputs, &CorpusOptions::default(), 4096)?;
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(Tokenizer::from_hf_file(&path, None)?)
}

fn train_file(data: &Path, lang: &str) -> PathBuf {
    data.join(lang).join("train.jsonl")
}

/// The sample of `lang` prepared with its own validation file (once).
fn prepare_language(
    data: &Path,
    prepared: &Path,
    lang: &str,
    tokenizer: &Tokenizer,
    progress: &dyn QuickstartProgress,
) -> Result<()> {
    let out = prepared.join(lang);
    if out.join("manifest.json").exists() {
        return Ok(());
    }
    progress.stage(&format!("2/3 preparing {lang}"));
    let mut opts = PrepareOptions::new(vec![train_file(data, lang)], out);
    opts.validation_inputs = vec![data.join(lang).join("validation.jsonl")];
    opts.split = SplitRule::Given;
    prepare(&opts, tokenizer, progress.preparing(lang).as_ref())?;
    Ok(())
}

/// Final losses of the runs next to the pretrained model, with forgetting and adaptation.
fn continual_table(pretrain: &Path, runs: &Path) -> Result<ContinualTable> {
    let index = SweepIndex::read(&SweepDir::new(runs))?.unwrap_or_default();
    let runs = index
        .runs
        .iter()
        .map(|r| Ok((r.label.clone(), RunData::load(&runs.join(&r.id))?)))
        .collect::<Result<Vec<_>>>()?;
    // Final losses as the report takes them: the mean of the last 3 evaluations.
    Ok(ContinualTable::new(&RunData::load(pretrain)?, &runs, 3))
}
